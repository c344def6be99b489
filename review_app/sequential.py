"""Group-sequential decisions: a gate that may conclude at any recorded look without raising
its false pass rate above the level (Lan and DeMets 1983, alpha spending over information
fractions).

The one-sided level (5%) is spent as the information grows, by the O'Brien-Fleming-type
function alpha(t) = 2 - 2 Phi(z_{1 - alpha/2} / sqrt(t)): almost nothing early, nearly all of it
at the planned sample, so a study without interim looks is decided exactly as a fixed design
(the boundary at t = 1 is z_0.95) and one with looks pays little at the end. Looks need not be
planned: each look's boundary is the z at which the chance of crossing there for the first time,
under the null, equals the alpha newly spent since the previous look, computed by numerical
integration over the Brownian motion of the score statistic (Jennison and Turnbull, ch. 19).

Both sides use the same boundary: a threshold passes early when its bound at the boundary
clears the bar, and fails early when the opposite bound falls short of it. Each side is
computed as if the other did not exist (non-binding), which only makes it conservative.

Pure functions; the decision benchmark and tests simulate the error rates."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq

from review_app import distributions

ALPHA = 0.05
METHOD = "group sequential, O'Brien-Fleming-type alpha spending (Lan-DeMets)"
# Grid of the score process: points per unit of standard deviation, and how far down it goes.
_POINTS_PER_SD = 24
_LOWER_SDS = 8.0
_TOP = 12.0
# A boundary no statistic reaches: the alpha left to spend at a look is too small to matter.
_NEVER = 40.0


def spent(t: float, alpha: float = ALPHA) -> float:
    """The one-sided alpha spent by information fraction `t` (0 at 0, `alpha` at 1)."""
    if t <= 0:
        return 0.0
    t = min(t, 1.0)
    return float(
        2 - 2 * distributions.norm_cdf(distributions.norm_ppf(1 - alpha / 2) / math.sqrt(t))
    )


@dataclass(frozen=True)
class Look:
    """One look: its position among the looks, information fraction, the z boundary a
    one-sided statistic must reach to conclude there, and the alpha spent so far."""

    index: int
    fraction: float
    boundary: float
    alpha_spent: float

    def to_json(self) -> dict:
        return {
            "look": self.index,
            "fraction": round(self.fraction, 6),
            "boundary": round(self.boundary, 4),
            "alpha_spent": round(self.alpha_spent, 6),
        }


def fractions_of(looks: Sequence[float]) -> tuple[float, ...]:
    """The distinct information fractions of a list of looks, increasing, each in (0, 1]
    (a look beyond the plan counts as the final one; a repeated fraction is the same look)."""
    return tuple(sorted({min(1.0, round(t, 9)) for t in looks if t > 0}))


def _grid(upper: float, sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Points from -_LOWER_SDS sd to `upper` and their trapezoid weights."""
    lower = min(-_LOWER_SDS * sd, upper - sd)
    n = max(32, int((upper - lower) / sd * _POINTS_PER_SD))
    x = np.linspace(lower, upper, n + 1)
    w = np.full(n + 1, (upper - lower) / n)
    w[0] = w[-1] = w[0] / 2
    return x, w


@lru_cache(maxsize=256)
def boundaries(fractions: tuple[float, ...], alpha: float = ALPHA) -> tuple[Look, ...]:
    """The boundary of each look at `fractions` (increasing, in (0, 1]): look k concludes when
    Z_k >= boundary_k, where under the null Z_k = B(t_k) / sqrt(t_k) for a Brownian motion B;
    the chance of first crossing at look k is alpha(t_k) - alpha(t_{k-1})."""
    looks: list[Look] = []
    previous_t, previous_spent = 0.0, 0.0
    x = w = density = None  # sub-density of B(t) on the continuation region
    for index, t in enumerate(fractions, start=1):
        spend = spent(t, alpha) - previous_spent
        sd_t = math.sqrt(t)
        if x is None:
            c = min(_NEVER, float(distributions.norm_isf(spend)))
        else:
            step = math.sqrt(t - previous_t)
            mass = w * density

            def crossing(c: float, mass=mass, x=x, step=step, sd_t=sd_t, spend=spend) -> float:
                return float(mass @ distributions.norm_sf((c * sd_t - x) / step)) - spend

            c = (
                _NEVER
                if crossing(_NEVER) >= 0
                else float(brentq(crossing, -2.0, _NEVER, xtol=1e-7))
            )
        looks.append(Look(index, t, c, spent(t, alpha)))
        # The continuation region's sub-density at this look, for the next one.
        # (the sub-density above _TOP sd is negligible: the grid stops there)
        new_x, new_w = _grid(min(c, _TOP) * sd_t, sd_t)
        if x is None:
            density = distributions.norm_pdf(new_x / sd_t) / sd_t
        else:
            kernel = distributions.norm_pdf((new_x[:, None] - x[None, :]) / step) / step
            density = kernel @ (w * density)
        x, w = new_x, new_w
        previous_t, previous_spent = t, spent(t, alpha)
    return tuple(looks)


def look_at(history: Sequence[float], now: float, alpha: float = ALPHA) -> Look:
    """The boundary of a look at fraction `now` after looks at the fractions in `history`
    (those at or beyond `now` are ignored: a look repeated at the same fraction is the same
    look)."""
    now = min(1.0, round(now, 9))
    earlier = [t for t in fractions_of(history) if t < now]
    if now <= 0:  # no information yet: nothing can be concluded
        return Look(len(earlier) + 1, 0.0, _NEVER, 0.0)
    return boundaries(tuple(earlier) + (now,), alpha)[-1]


def stopping(looks: Sequence[Look], drift: float) -> tuple[list[float], list[float]]:
    """Under a drift (E[B(t)] = drift x t, so a fixed design's final z has mean `drift`), the
    chance of stopping at each look by crossing the upper boundary (a pass) and the lower one
    (a fail: Z <= -boundary)."""
    ups, downs = [], []
    x = w = density = None
    previous_t = 0.0
    for look in looks:
        t, c = look.fraction, look.boundary
        sd_t, step = math.sqrt(t), math.sqrt(t - previous_t)
        high, low = min(c, _TOP) * sd_t, -min(c, _TOP) * sd_t
        if x is None:
            ups.append(float(distributions.norm_sf((high - drift * t) / sd_t)))
            downs.append(float(distributions.norm_cdf((low - drift * t) / sd_t)))
        else:
            mass = w * density
            mean = x + drift * (t - previous_t)
            ups.append(float(mass @ distributions.norm_sf((high - mean) / step)))
            downs.append(float(mass @ distributions.norm_cdf((low - mean) / step)))
        n = max(64, int((high - low) / sd_t * _POINTS_PER_SD))
        new_x = np.linspace(low, high, n + 1)
        new_w = np.full(n + 1, (high - low) / n)
        new_w[0] = new_w[-1] = new_w[0] / 2
        if x is None:
            density = distributions.norm_pdf((new_x - drift * t) / sd_t) / sd_t
        else:
            kernel = distributions.norm_pdf(
                (new_x[:, None] - (x[None, :] + drift * (t - previous_t))) / step
            )
            density = (kernel / step) @ (w * density)
        x, w = new_x, new_w
        previous_t = t
    return ups, downs


@dataclass(frozen=True)
class Expected:
    """A sequential design against its fixed counterpart at one drift: the chance it passes,
    the largest sample it may take, and the sample it takes on average, both relative to the
    fixed design with the same power."""

    power: float
    max_ratio: float
    expected_ratio: float


def expected(drift: float, n_looks: int = 10, alpha: float = ALPHA) -> Expected:
    """The sequential design with `n_looks` equally spaced looks that has the fixed design's
    power at `drift` (the fixed design's mean z): its maximum and expected sample over the
    fixed design's, found by stretching the maximum sample until the power is matched."""
    target = float(distributions.norm_sf(distributions.norm_isf(alpha) - drift))
    looks = boundaries(tuple((k + 1) / n_looks for k in range(n_looks)), alpha)

    def power(inflation: float) -> float:
        return sum(stopping(looks, drift * math.sqrt(inflation))[0])

    inflation = 1.0
    if power(1.0) < target:
        inflation = float(brentq(lambda r: power(r) - target, 1.0, 2.0, xtol=1e-4))
    ups, downs = stopping(looks, drift * math.sqrt(inflation))
    stop = np.array(ups) + np.array(downs)
    stop[-1] = 1 - stop[:-1].sum()
    average = float(sum(p * look.fraction for p, look in zip(stop, looks, strict=True)))
    return Expected(sum(ups), inflation, inflation * average)
