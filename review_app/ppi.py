"""Prediction-powered inference (PPI++; Angelopoulos, Duchi and Zrnic 2024): a mean estimated
from a few human labels and many judge predictions, valid however biased the judge is.

The judge predicts every item; humans label a random subset. The estimate is the judge's mean
over the unlabelled items, corrected by the human-minus-judge difference on the labelled ones,
with a weight `lambda` in [0, 1] tuned to minimise the variance: 0 gives the humans-only mean, 1
plain PPI. A judge that predicts the humans well narrows the interval; one that predicts them
badly gets a weight near 0 and costs (almost) nothing. The labelled and unlabelled items are
disjoint samples of the same population (the labelled ones drawn at random), as the method
requires.

Also here: win rates of one comparison per source estimated this way, the unit being the item
(its votes averaged), in the shape the gate reads (`PredictionPowered`, oriented like a
`stats.WinRate`). Pure functions over arrays and frames; the numbers match the authors'
`ppi_py.ppi_mean_ci` (tests compare them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from review_app import stats

METHOD = "ppi"
# Human scores of one vote for system x, by outcome code (x, y, tie; both_bad counts as a tie).
_SCORE = {"x": 1.0, "y": 0.0, "tie": 0.5, "both_bad": 0.5}


@dataclass(frozen=True)
class MeanEstimate:
    """A prediction-powered mean: the estimate, its standard error, the tuned weight and the
    sample sizes; `effective_n` is the number of human labels alone that would give the same
    standard error (more than `n_human` when the judge helps)."""

    value: float
    se: float
    lam: float
    n_human: int
    n_judge: int
    effective_n: float

    def interval(self, z: float) -> tuple[float, float]:
        return (self.value - z * self.se, self.value + z * self.se)


def tuned_weight(y: np.ndarray, yhat: np.ndarray, yhat_unlabelled: np.ndarray) -> float:
    """The PPI++ power-tuning weight for a mean: cov(Y, f) / ((1 + n/N) var(f)), clipped to
    [0, 1], with the covariance taken around the plain PPI estimate (as ppi_py does)."""
    n, big_n = len(y), len(yhat_unlabelled)
    if big_n == 0 or n < 2:
        return 0.0
    plain = yhat_unlabelled.mean() + (y - yhat).mean()
    grads = y - plain
    grads_hat = yhat - plain
    covariance = 2 * ((grads - grads.mean()) * (grads_hat - grads_hat.mean())).sum() / n
    variance = np.var(np.concatenate([yhat, yhat_unlabelled]), ddof=1)
    if not variance > 0:
        return 0.0
    lam = covariance / (2 * (1 + n / big_n) * variance)
    return float(np.clip(lam, 0.0, 1.0))


def mean(
    y: np.ndarray, yhat: np.ndarray, yhat_unlabelled: np.ndarray, lam: float | None = None
) -> MeanEstimate | None:
    """The PPI++ mean of labels `y` (with the judge's predictions `yhat` on the same items) and
    the judge's predictions on unlabelled items; None with fewer than two labels."""
    y, yhat, unl = (np.asarray(a, dtype=float) for a in (y, yhat, yhat_unlabelled))
    n, big_n = len(y), len(unl)
    if n < 2:
        return None
    if lam is None:
        lam = tuned_weight(y, yhat, unl)
    rectifier = y - lam * yhat
    value = float(rectifier.mean() + (lam * unl.mean() if big_n else 0.0))
    variance = rectifier.var() / n + ((lam * unl).var() / big_n if big_n else 0.0)
    se = math.sqrt(variance)
    human_variance = y.var()
    effective = human_variance / variance if variance > 0 else float(n)
    return MeanEstimate(value, se, float(lam), n, big_n, float(effective))


@dataclass(frozen=True)
class PredictionPowered:
    """The win rate of `system_a` over `system_b` estimated from human votes and one judge's
    verdicts (`METHOD`): `value`, a 95% CI and one-sided 95% bounds, over `n_items` items of
    which `n_human` carry human votes (not in the dev split) and `n_judge` only the judge's."""

    system_a: str
    system_b: str
    judge: str
    value: float | None
    ci: tuple[float, float] | None
    bounds: tuple[float, float] | None
    lam: float
    n_human: int
    n_judge: int
    effective_n: float
    reason: str = ""

    source = stats.HUMANS

    @property
    def n_items(self) -> int:
        return self.n_human + self.n_judge

    @property
    def n_comparisons(self) -> int:
        return self.n_items

    def reversed(self) -> PredictionPowered:
        """The same estimate read as b over a (1 - a over b)."""
        flip = _flip
        return PredictionPowered(
            self.system_b,
            self.system_a,
            self.judge,
            None if self.value is None else 1 - self.value,
            flip(self.ci),
            flip(self.bounds),
            self.lam,
            self.n_human,
            self.n_judge,
            self.effective_n,
            self.reason,
        )

    def method(self) -> dict:
        """What a JSON row says about how it was estimated."""
        return {
            "method": METHOD,
            "judge": self.judge,
            "lambda": round(self.lam, 6),
            "n_human": self.n_human,
            "n_judge": self.n_judge,
            "effective_n": round(self.effective_n, 1),
        }


def _flip(interval: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if interval is None else (1 - interval[1], 1 - interval[0])


def _clip(low: float, high: float) -> tuple[float, float]:
    return (max(0.0, low), min(1.0, high))


def item_scores(
    pairs: pd.DataFrame, votes: pd.DataFrame, combined: pd.DataFrame, judge: str
) -> pd.DataFrame:
    """Per comparison (pair_id): `y`, the mean human score for system x over its votes (NaN
    when none), and `f`, the judge's combined verdict as a score for x (1, 0, or 0.5 for a tie,
    orders that disagree or an unparsed answer; 0.5 too where the judge has no verdict: any
    fixed rule keeps the estimate valid)."""
    frame = pairs[["pair_id"]].copy()
    scores = votes["outcome"].map(_SCORE)
    y = scores.groupby(votes["pair_id"]).mean() if len(votes) else pd.Series(dtype=float)
    frame["y"] = frame["pair_id"].map(y).astype(float)
    mine = combined[combined["judge"] == judge]
    f = mine.set_index("pair_id")["outcome"].map(_SCORE).astype(float)
    f = f.where(~mine.set_index("pair_id")["inconsistent"].astype(bool), 0.5)
    frame["f"] = frame["pair_id"].map(f).fillna(0.5).astype(float)
    frame["judged"] = frame["pair_id"].isin(mine["pair_id"])
    return frame


def win_rate(
    system_a: str,
    system_b: str,
    judge: str,
    scores: pd.DataFrame,
    system_x_is_a: bool,
) -> PredictionPowered:
    """The prediction-powered win rate of `system_a` over `system_b` from `item_scores` rows
    of one comparison (one row per item) that also carry `human` (the item is in the human
    subset and not in the dev split: its votes correct the judge)."""
    labelled = scores["human"].to_numpy(bool) & scores["y"].notna().to_numpy()
    y = scores["y"].to_numpy(float)[labelled]
    f = scores["f"].to_numpy(float)
    if not system_x_is_a:
        y, f = 1 - y, 1 - f
    estimate = mean(y, f[labelled], f[~labelled])
    if estimate is None:
        return PredictionPowered(
            system_a,
            system_b,
            judge,
            None,
            None,
            None,
            0.0,
            len(y),
            int((~labelled).sum()),
            0.0,
            reason=f"{len(y)} items with human votes (2 needed)",
        )
    ci = _clip(*estimate.interval(stats.Z_95))
    bounds = _clip(*estimate.interval(stats.Z_ONE_SIDED_95))
    return PredictionPowered(
        system_a,
        system_b,
        judge,
        min(1.0, max(0.0, estimate.value)),
        ci,
        bounds,
        estimate.lam,
        estimate.n_human,
        estimate.n_judge,
        estimate.effective_n,
    )


def win_rates(
    pairs: pd.DataFrame,
    votes: pd.DataFrame,
    combined: pd.DataFrame,
    judge: str,
    comparisons: Sequence[tuple[str, str]],
    category: str | None = None,
) -> list[PredictionPowered]:
    """`win_rate` of each comparison (system_a, system_b) with `judge`, over every pair of the
    study (in `category` when given). `pairs` carries `human` (1 for the human subset outside
    the dev split), `category`, `system_x`, `system_y`; `combined` is `stats.combine_verdicts`."""
    scores = item_scores(pairs, votes, combined, judge)
    scores["human"] = pairs["human"].to_numpy(bool)
    if category is not None:
        keep = stats.category_names(pairs["category"]) == category
        scores, pairs = scores[keep], pairs[keep]
    out = []
    for a, b in comparisons:
        x, y = min(a, b), max(a, b)
        rows = ((pairs["system_x"] == x) & (pairs["system_y"] == y)).to_numpy()
        if rows.any() and scores["judged"].to_numpy()[rows].any():
            out.append(win_rate(a, b, judge, scores[rows], system_x_is_a=(a == x)))
    return out
