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
from dataclasses import dataclass, replace

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
        return replace(
            self,
            system_a=self.system_b,
            system_b=self.system_a,
            value=None if self.value is None else 1 - self.value,
            ci=_flip(self.ci),
            bounds=_flip(self.bounds),
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
    return _per_comparison(win_rate, pairs, scores, judge, comparisons)


def _per_comparison(estimate, pairs, scores, judge, comparisons) -> list[PredictionPowered]:
    """`estimate(a, b, judge, rows, system_x_is_a)` of each comparison over its rows of
    `scores`, for the comparisons the judge judged."""
    out = []
    for a, b in comparisons:
        x, y = min(a, b), max(a, b)
        rows = ((pairs["system_x"] == x) & (pairs["system_y"] == y)).to_numpy()
        if rows.any() and scores["judged"].to_numpy()[rows].any():
            out.append(estimate(a, b, judge, scores[rows], system_x_is_a=(a == x)))
    return out


# ---- logistic regression (the length-controlled win rate) ----


def _expit(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))


def _logistic_point(
    x: np.ndarray, y: np.ndarray, yhat: np.ndarray, xu: np.ndarray, yhatu: np.ndarray, lam: float
) -> np.ndarray:
    """The coefficients minimising the rectified logistic loss
    (1/n) l(X, Y) + lam [(1/N) l(Xu, f_u) - (1/n) l(X, f)], by Newton's method (its Hessian,
    (1 - lam)/n X'WX + lam/N Xu'WuXu, does not depend on the labels, so it is convex), or None
    when it has no finite minimum: near lam = 1 the labelled terms are linear in the
    coefficients, and a judge that contradicts the humans can make them fall without bound."""
    n, big_n = len(y), len(yhatu)
    theta = np.zeros(x.shape[1])
    for _ in range(100):
        mu, muu = _expit(x @ theta), _expit(xu @ theta)
        grad = x.T @ (mu - y) / n - lam * x.T @ (mu - yhat) / n
        hess = (1 - lam) * (x.T * (mu * (1 - mu))) @ x / n
        if big_n:
            grad = grad + lam * xu.T @ (muu - yhatu) / big_n
            hess = hess + lam * (xu.T * (muu * (1 - muu))) @ xu / big_n
        step = np.linalg.solve(hess + 1e-12 * np.eye(len(theta)), grad)
        theta = theta - step
        if not np.all(np.isfinite(theta)) or np.max(np.abs(theta)) > _DIVERGED:
            return None
        if np.max(np.abs(step)) < 1e-12:
            return theta
    return None


# Coefficients this large (odds of e^50) mean the fit is running off to infinity.
_DIVERGED = 50.0


def _logistic_stats(theta, x, y, yhat, xu, yhatu, use_unlabelled: bool):
    """Per-observation gradients (labels, predictions, unlabelled predictions) and the inverse
    Hessian at `theta`, as ppi_py's `_logistic_get_stats` computes them."""
    n, big_n = len(y), len(yhatu)
    mu, muu = _expit(x @ theta), _expit(xu @ theta)
    if use_unlabelled:
        hess = ((x.T * (mu * (1 - mu))) @ x + (xu.T * (muu * (1 - muu))) @ xu) / (n + big_n)
    else:
        hess = (x.T * (mu * (1 - mu))) @ x / n
    grads = x * (mu - y)[:, None]
    grads_hat = x * (mu - yhat)[:, None]
    grads_hat_u = xu * (muu - yhatu)[:, None] if use_unlabelled else np.zeros_like(xu)
    if np.linalg.cond(hess) > 1e12:
        return None
    return grads, grads_hat, grads_hat_u, np.linalg.inv(hess)


def _tuned_glm_weight(grads, grads_hat, grads_hat_u, inv_hessian) -> float:
    """PPI++'s weight for a GLM (the trace of the variance over all coefficients), clipped."""
    n, big_n = len(grads), len(grads_hat_u)
    gc = grads - grads.mean(axis=0)
    hc = grads_hat - grads_hat.mean(axis=0)
    cov = (gc.T @ hc + hc.T @ gc) / n
    var = np.cov(np.concatenate([grads_hat, grads_hat_u]).T)
    num = np.trace(inv_hessian @ cov @ inv_hessian)
    den = 2 * (1 + n / big_n) * np.trace(inv_hessian @ var @ inv_hessian)
    return float(np.clip(num / den, 0.0, 1.0)) if den > 0 else 0.0


@dataclass(frozen=True)
class LogisticEstimate:
    """Prediction-powered logistic regression coefficients with their standard errors."""

    coef: np.ndarray
    se: np.ndarray
    lam: float
    n_human: int
    n_judge: int


def logistic(
    x: np.ndarray,
    y: np.ndarray,
    yhat: np.ndarray,
    xu: np.ndarray,
    yhatu: np.ndarray,
    lam: float | None = None,
) -> LogisticEstimate | None:
    """PPI++ logistic regression of labels in [0, 1] on covariates `x` (with their column of
    ones), as the authors' `ppi_logistic_ci` computes it (the weight tuned at the plain PPI
    estimate, then again at the tuned one; a sandwich variance). When the plain PPI fit has no
    finite minimum the weight is tuned at the humans-only fit instead. None when it cannot be
    fitted (fewer labels than coefficients, no unlabelled items to weigh, or no finite fit)."""
    x, xu = np.asarray(x, float), np.asarray(xu, float)
    y, yhat, yhatu = (np.asarray(a, float) for a in (y, yhat, yhatu))
    n, big_n = len(y), len(yhatu)
    if n <= x.shape[1] or big_n == 0:
        return None
    if lam is None:
        for start in (1.0, 0.0):
            for _ in range(2):  # at the start's fit, then again at the tuned fit
                theta = _logistic_point(x, y, yhat, xu, yhatu, start)
                at = None if theta is None else _logistic_stats(theta, x, y, yhat, xu, yhatu, True)
                if at is None:
                    break
                start = _tuned_glm_weight(*at)
            else:
                lam = start
                break
        if lam is None:
            return None
    theta = _logistic_point(x, y, yhat, xu, yhatu, lam)
    at = None if theta is None else _logistic_stats(theta, x, y, yhat, xu, yhatu, lam != 0)
    if at is None:
        return None
    grads, grads_hat, grads_hat_u, inv_h = at
    d = x.shape[1]
    var_u = np.cov((lam * grads_hat_u).T).reshape(d, d)
    var = np.cov((grads - lam * grads_hat).T).reshape(d, d)
    sigma = inv_h @ (n / big_n * var_u + var) @ inv_h
    return LogisticEstimate(theta, np.sqrt(np.diag(sigma) / n), float(lam), n, big_n)


def lc_win_rate(
    system_a: str, system_b: str, judge: str, scores: pd.DataFrame, system_x_is_a: bool
) -> PredictionPowered:
    """The prediction-powered length-controlled win rate of `system_a` over `system_b`: the
    logistic regression of the outcome on the normalised length difference (AlpacaEval 2's
    feature, as `ranking.length_controlled_win_rate` uses it), read at zero difference, from
    `item_scores` rows of one comparison that also carry `human` and `len_diff` (x minus y)."""
    from review_app import ranking  # ranking imports the statistics this module builds on

    y = scores["y"].to_numpy(float)
    f = scores["f"].to_numpy(float)
    diff = scores["len_diff"].to_numpy(float)
    if not system_x_is_a:
        y, f, diff = 1 - y, 1 - f, -diff
    labelled = scores["human"].to_numpy(bool) & ~np.isnan(y)
    reason = ranking.not_estimable_reason(diff)
    feature = np.linspace(-1.0, 1.0, ranking.LC_BINS)[ranking.normalised_length(diff)]
    x = np.column_stack([np.ones(len(y)), feature])
    fit = (
        None
        if reason
        else logistic(x[labelled], y[labelled], f[labelled], x[~labelled], f[~labelled])
    )
    n_human, n_judge = int(labelled.sum()), int((~labelled).sum())
    if fit is None or not np.isfinite(fit.se[0]):
        why = reason or f"{n_human} items with votes and {n_judge} judged only cannot be fitted"
        return PredictionPowered(
            system_a, system_b, judge, None, None, None, 0.0, n_human, n_judge, 0.0, why
        )
    b0, se = fit.coef[0], fit.se[0]
    value = float(_expit(np.array([b0]))[0])

    def at(z: float) -> tuple[float, float]:
        low, high = _expit(np.array([b0 - z * se, b0 + z * se]))
        return (float(low), float(high))

    # The humans-only logistic fit's intercept variance over this one's: the voted items worth.
    plain = logistic(x[labelled], y[labelled], f[labelled], x[~labelled], f[~labelled], lam=0.0)
    effective = n_human * float(plain.se[0] / se) ** 2 if plain is not None and se > 0 else n_human
    return PredictionPowered(
        system_a,
        system_b,
        judge,
        value,
        at(stats.Z_95),
        at(stats.Z_ONE_SIDED_95),
        fit.lam,
        n_human,
        n_judge,
        effective,
    )


def lc_win_rates(
    pairs: pd.DataFrame,
    votes: pd.DataFrame,
    combined: pd.DataFrame,
    judge: str,
    comparisons: Sequence[tuple[str, str]],
) -> list[PredictionPowered]:
    """`lc_win_rate` of each comparison with `judge` (`pairs` as for `win_rates`, with len_x
    and len_y)."""
    scores = item_scores(pairs, votes, combined, judge)
    scores["human"] = pairs["human"].to_numpy(bool)
    scores["len_diff"] = (pairs["len_x"] - pairs["len_y"]).to_numpy(float)
    return _per_comparison(lc_win_rate, pairs, scores, judge, comparisons)
