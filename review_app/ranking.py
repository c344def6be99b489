"""Scorecard statistics as pure functions: Bradley-Terry ratings of many systems at once, the
length-controlled win rate, and per-system means of 1-5 ratings, each with a bootstrap CI over
items. No I/O, no SQL, no Streamlit (DESIGN section 10; the pairwise statistics are in stats.py).

Observations come as one frame with a row per observation: `item` (what the bootstrap resamples),
`system_a`, `system_b`, `score` (1 = a won, 0.5 = tie or both bad, 0 = b won) and, for the
length-controlled win rate, `len_diff` (len a - len b). Every statistic is a function of column
totals over items, so one resample is one product of item weights with an item x column matrix,
and all statistics of a scorecard share the same resamples (`Resampler`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

from review_app import distributions, stats

# Elo scale: a 400-point gap means ten-to-one odds; the systems' mean rating is this.
ELO_SCALE = 400.0
ELO_MEAN = 1000.0
# A virtual tie between every two systems, weighing this many comparisons in all: negligible
# beside real data, it keeps a system that never loses (or never wins) at a finite rating.
BT_PRIOR_GAMES = 0.1
# The length-controlled fit's normalised length differences are rounded to this many steps
# over [-1, 1] (a resolution of 0.01, far below what a logistic fit can tell apart).
LC_BINS = 201
# A tiny ridge on the length-controlled fit keeps it finite when one side always wins.
LC_RIDGE = 1e-3
_NEWTON_STEPS = 40
# A block of columns with more than this share of its cells filled is multiplied as dense.
_DENSE_SHARE = 0.02


@dataclass(frozen=True)
class Rating:
    """A system's Bradley-Terry rating on the Elo scale with its 95% bootstrap CI; `n` is the
    number of observations it took part in, `unbeaten` that it won every one of them (its rating
    is then finite only thanks to the virtual ties, see `bradley_terry`). `group` numbers the
    connected groups of the comparison graph (0 = the largest): ratings in different groups were
    never linked by any chain of comparisons, so only the virtual ties place them on one scale
    and they cannot be ranked against each other."""

    system: str
    rating: float
    ci: tuple[float, float] | None
    n: int
    wins: float
    unbeaten: bool = False
    group: int = 0

    def to_json(self) -> dict:
        return {
            "system": self.system,
            "rating": self.rating,
            "ci": list(self.ci) if self.ci is not None else None,
            "n": self.n,
            "unbeaten": self.unbeaten,
            "group": self.group,
        }


@dataclass(frozen=True)
class Mean:
    """A mean of 1-5 ratings with its 95% bootstrap CI over items and the ratings behind it."""

    value: float | None
    ci: tuple[float, float] | None
    n: int


# ---- shared resampling ----


class Resampler:
    """Column totals over items, observed and under `n_boot` resamples of items drawn with
    replacement from `numpy.random.default_rng(seed)`. Statistics register their columns with
    `add` and read them back from `run`'s result by the returned slice."""

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items
        self._blocks: list[sparse.csr_matrix] = []
        self._width = 0

    def add(self, items: np.ndarray, columns: np.ndarray, values: np.ndarray, k: int) -> slice:
        """Register k columns: each observation adds its value to its column of its item."""
        block = sparse.csr_matrix(
            sparse.coo_matrix(
                (np.asarray(values, dtype=np.float64), (np.asarray(items), np.asarray(columns))),
                shape=(self.n_items, k),
            )
        )
        self._blocks.append(block)
        start = self._width
        self._width += k
        return slice(start, self._width)

    def run(self, seed: int, n_boot: int) -> tuple[np.ndarray, np.ndarray]:
        """(observed totals (K,), resampled totals (n_boot, K))."""
        if not self._blocks:
            return np.zeros(0), np.zeros((n_boot, 0))
        # Blocks most items fill (ratings, rankings) are multiplied as dense matrices, whose
        # product is many times faster; sparse ones (length bins) stay sparse.
        dense = [b.nnz > _DENSE_SHARE * b.shape[0] * b.shape[1] for b in self._blocks]
        order = [i for i, d in enumerate(dense) if d] + [i for i, d in enumerate(dense) if not d]
        starts = np.cumsum([0] + [b.shape[1] for b in self._blocks])
        columns = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in order])
        dense_part = [self._blocks[i].toarray().astype(np.float32) for i in order if dense[i]]
        dense_matrix = (
            np.hstack(dense_part) if dense_part else np.zeros((self.n_items, 0), np.float32)
        )
        sparse_part = [self._blocks[i] for i in order if not dense[i]]
        # float32 like the dense part: exact for these counts and values, half the memory read.
        sparse_t = (
            sparse.hstack(sparse_part, format="csr").T.tocsr().astype(np.float32)
            if sparse_part
            else sparse.csr_matrix((0, self.n_items), dtype=np.float32)
        )
        width = dense_matrix.shape[1] + sparse_t.shape[0]
        observed = np.concatenate([np.asarray(b.sum(axis=0)).ravel() for b in self._blocks])
        out = np.zeros((n_boot, width))
        if self.n_items == 0:
            return observed, out
        # The study's own resamples of its items (`stats.ItemResamples`, drawn from the seed as
        # they always were here), so a scorecard rendered beside the statistics does not draw
        # them again: the process keeps them.
        chunks = stats.ItemResamples(seed, self.n_items, n_boot).chunks()
        chunk = np.zeros((max((len(c) for c in chunks), default=0), width))
        start = 0
        with stats.one_blas_thread():
            for counts in chunks:
                size = len(counts)
                weights = counts.astype(np.float32)
                part = chunk[:size]
                part[:, : dense_matrix.shape[1]] = weights @ dense_matrix
                if sparse_t.shape[0]:
                    # The sparse product reads the weights item by item: made row-major here
                    # in one pass (a transposed view is copied into that order by the product).
                    by_item = np.ascontiguousarray(counts.T, dtype=np.float32)
                    part[:, dense_matrix.shape[1] :] = (sparse_t @ by_item).T
                out[start : start + size, columns] = part
                start += size
        return observed, out


def _ci(samples: np.ndarray, one_sided: bool = False) -> tuple[float, float] | None:
    """The 95% percentile interval of bootstrap samples; with `one_sided`, the one-sided 95%
    lower and upper bounds (the 5th and 95th percentiles)."""
    samples = samples[np.isfinite(samples)]
    if len(samples) == 0:
        return None
    low, high = np.percentile(samples, [5.0, 95.0] if one_sided else [2.5, 97.5])
    return (float(low), float(high))


# ---- Bradley-Terry ----


def _pair_index(k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(k, 1)


def fit_bradley_terry(
    score: np.ndarray, games: np.ndarray, prior_games: float = BT_PRIOR_GAMES
) -> np.ndarray:
    """Maximum-likelihood log-strengths (natural log, mean 0) of k systems, for a batch.

    `score[..., i, j]` is what system i scored against j (wins + 0.5 ties), `games[..., i, j]`
    the comparisons between them (symmetric). A virtual tie worth `prior_games` comparisons
    between every two systems (half a win each) keeps every strength finite: without it a system
    that never loses has an infinite maximum-likelihood strength. Newton's method on the
    log-likelihood, batched over the leading axes."""
    score = np.asarray(score, dtype=np.float64)
    games = np.asarray(games, dtype=np.float64)
    k = score.shape[-1]
    off = 1.0 - np.eye(k)
    games = games + prior_games * off
    score = score + 0.5 * prior_games * off
    wins = score.sum(axis=-1)
    theta = np.zeros(score.shape[:-1])
    centre = np.full((k, k), 1.0 / k)
    for _ in range(_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(theta[..., None, :] - theta[..., :, None]))  # P(i beats j)
        grad = wins - (games * p).sum(axis=-1)
        curvature = games * p * (1 - p)
        laplacian = np.eye(k) * curvature.sum(axis=-1)[..., None] - curvature
        # The likelihood ignores a common shift; pinning the mean makes the step unique.
        step = np.linalg.solve(laplacian + centre, grad[..., None])[..., 0]
        theta = theta + step
        theta = theta - theta.mean(axis=-1, keepdims=True)
        if np.max(np.abs(step), initial=0.0) < 1e-10:
            break
    return theta


def elo(theta: np.ndarray) -> np.ndarray:
    """Natural-log strengths on the Elo scale, centred so that the mean rating is 1000."""
    ratings = ELO_SCALE * theta / np.log(10)
    return ratings - ratings.mean(axis=-1, keepdims=True) + ELO_MEAN


@dataclass
class _Ranking:
    systems: list[str]
    columns: slice
    n: np.ndarray
    wins: np.ndarray
    not_won: np.ndarray  # comparisons each system lost or tied
    group: np.ndarray  # each system's connected group of the comparison graph, largest first


def _add_ranking(resampler: Resampler, obs: pd.DataFrame, systems: Sequence[str]) -> _Ranking:
    k = len(systems)
    index = pd.Index(list(systems))
    a = index.get_indexer(obs["system_a"])
    b = index.get_indexer(obs["system_b"])
    i, j = np.minimum(a, b), np.maximum(a, b)
    score_low = np.where(a < b, obs["score"], 1 - obs["score"]).astype(np.float64)
    rows, cols = _pair_index(k)
    m = len(rows)
    lookup = np.full((k, k), -1, dtype=np.int64)
    lookup[rows, cols] = np.arange(m)
    pair_code = lookup[i, j]
    items = obs["item"].to_numpy()
    # Columns: the lower-indexed system's score per system pair, then the games per pair.
    scored = resampler.add(items, pair_code, score_low, m)
    resampler.add(items, pair_code, np.ones(len(obs)), m)
    n = np.bincount(a, minlength=k) + np.bincount(b, minlength=k)
    s = obs["score"].to_numpy(dtype=np.float64)
    wins = np.bincount(a, weights=s, minlength=k) + np.bincount(b, weights=1 - s, minlength=k)
    # A tie is half a loss: only a system that won every comparison has no finite MLE.
    not_won = np.bincount(a, weights=(s < 1).astype(float), minlength=k)
    not_won += np.bincount(b, weights=(s > 0).astype(float), minlength=k)
    columns = slice(scored.start, scored.start + 2 * m)
    return _Ranking(list(systems), columns, n, wins, not_won, comparison_groups(a, b, k))


def comparison_groups(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """The connected group of each of k systems in the graph whose edges are the comparisons
    (a[i], b[i]), numbered by size, largest first (ties by lowest system index)."""
    graph = sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(k, k))
    _, labels = csgraph.connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    first = np.array([np.flatnonzero(labels == g)[0] for g in range(len(sizes))])
    order = sorted(range(len(sizes)), key=lambda g: (-sizes[g], first[g]))
    rank = np.empty(len(sizes), dtype=np.int64)
    rank[order] = np.arange(len(sizes))
    return rank[labels]


def _ratings(ranking: _Ranking, totals: np.ndarray) -> np.ndarray:
    """Elo ratings (..., k) from the ranking's column totals (..., 2m)."""
    k = len(ranking.systems)
    rows, cols = _pair_index(k)
    m = len(rows)
    t = totals[..., ranking.columns]
    score = np.zeros((*t.shape[:-1], k, k))
    games = np.zeros_like(score)
    score[..., rows, cols] = t[..., :m]
    score[..., cols, rows] = t[..., m:] - t[..., :m]
    games[..., rows, cols] = t[..., m:]
    games[..., cols, rows] = t[..., m:]
    return elo(fit_bradley_terry(score, games))


def _rating_results(ranking: _Ranking, observed: np.ndarray, resampled: np.ndarray) -> list[Rating]:
    point = _ratings(ranking, observed)
    boot = _ratings(ranking, resampled) if len(resampled) else np.zeros((0, len(ranking.systems)))
    out = [
        Rating(
            system=system,
            rating=float(point[s]),
            ci=_ci(boot[:, s]) if len(boot) else None,
            n=int(ranking.n[s]),
            wins=float(ranking.wins[s]),
            unbeaten=bool(ranking.n[s] > 0 and ranking.not_won[s] == 0),
            group=int(ranking.group[s]),
        )
        for s, system in enumerate(ranking.systems)
    ]
    return sorted(out, key=lambda r: -r.rating)


def bradley_terry(obs: pd.DataFrame, seed: int = 0, n_boot: int = 1000) -> list[Rating]:
    """Bradley-Terry ratings of every system in `obs` (one row per observation: item,
    system_a, system_b, score), best first: maximum likelihood with a tie as half a win for each
    side, on the Elo scale centred at 1000, with 95% percentile bootstrap CIs over items.

    A system that never loses would have an infinite maximum-likelihood rating; a virtual tie
    worth `BT_PRIOR_GAMES` comparisons between every two systems keeps it finite (and is
    reported through `Rating.unbeaten`). Systems never linked by a chain of comparisons are in
    different `Rating.group`s: their ratings are not comparable."""
    if obs.empty:
        return []
    items = _item_codes(obs)
    resampler = Resampler(int(items.max()) + 1 if len(items) else 0)
    ranking = _add_ranking(resampler, obs.assign(item=items), systems_of(obs))
    observed, resampled = resampler.run(seed, n_boot)
    return _rating_results(ranking, observed, _if_resamplable(resampled, items))


def _if_resamplable(resampled: np.ndarray, items: np.ndarray) -> np.ndarray:
    """The resamples, or none when the observations come from fewer than two items: resampling
    one item only repeats it, and a zero-width "interval" would claim a certainty there is not
    (no CI is given then)."""
    return resampled if len(np.unique(items)) >= 2 else resampled[:0]


def systems_of(obs: pd.DataFrame) -> list[str]:
    return sorted({str(s) for s in (*obs["system_a"].unique(), *obs["system_b"].unique())})


def _item_codes(obs: pd.DataFrame) -> np.ndarray:
    return pd.factorize(obs["item"].astype(str))[0].astype(np.int64)


# ---- length-controlled win rate ----

# The length-controlled win rate is read at zero length difference, so comparisons must lie on
# both sides of it: when fewer than this share of them are on the minority side (or exactly at
# equal length), length and quality cannot be told apart and the fit only extrapolates.
LC_MIN_MINORITY = 0.10
NOT_ESTIMABLE = "lengths do not overlap: not estimable"


def normalised_length(len_diff: np.ndarray) -> np.ndarray:
    """AlpacaEval 2's length feature: tanh of the length difference over its standard deviation,
    rounded to the fit's bins."""
    len_diff = np.asarray(len_diff, dtype=np.float64)
    sd = float(len_diff.std()) if len(len_diff) else 0.0
    x = np.tanh(len_diff / sd) if sd > 0 else np.zeros_like(len_diff)
    return np.rint((x + 1) * (LC_BINS - 1) / 2).astype(np.int64)


_BIN_X = np.linspace(-1.0, 1.0, LC_BINS)


def length_overlap(len_diff: np.ndarray) -> tuple[int, int]:
    """(comparisons on the minority side of zero length difference or exactly at it, all
    comparisons), from one length difference per comparison."""
    d = np.asarray(len_diff, dtype=np.float64)
    minority = min(int((d < 0).sum()), int((d > 0).sum())) + int((d == 0).sum())
    return minority, len(d)


def not_estimable_reason(len_diff: np.ndarray) -> str:
    """Why the length-controlled win rate of these comparisons (one length difference each)
    cannot be estimated, or "" when it can: see `LC_MIN_MINORITY`."""
    minority, n = length_overlap(len_diff)
    if n == 0:
        return "no comparisons"
    if minority < LC_MIN_MINORITY * n:
        return (
            f"{NOT_ESTIMABLE} ({minority} of {n} comparisons on the minority side of equal "
            f"length, fewer than {LC_MIN_MINORITY:.0%})"
        )
    return ""


def fit_length_controlled(score_sum: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Win rate read at zero length difference, for a batch: a logistic regression of the
    outcome (ties as half) on the normalised length difference, from totals per length bin
    (..., LC_BINS); nan where there is nothing to fit."""
    beta = _fit_logistic(score_sum, count)
    value = 1.0 / (1.0 + np.exp(-beta[..., 0]))
    return np.where(np.asarray(count).sum(axis=-1) > 0, value, np.nan)


def _fit_logistic(score_sum: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(intercept, slope) of the length-controlled fit (see `fit_length_controlled`), batched."""
    s = np.asarray(score_sum, dtype=np.float64)
    n = np.asarray(count, dtype=np.float64)
    beta = np.zeros((*s.shape[:-1], 2))
    x = _BIN_X
    for _ in range(_NEWTON_STEPS):
        eta = beta[..., :1] + beta[..., 1:] * x
        p = 1.0 / (1.0 + np.exp(-eta))
        resid = s - n * p
        w = n * p * (1 - p)
        g0 = resid.sum(axis=-1) - LC_RIDGE * beta[..., 0]
        g1 = (resid * x).sum(axis=-1) - LC_RIDGE * beta[..., 1]
        h00 = w.sum(axis=-1) + LC_RIDGE
        h01 = (w * x).sum(axis=-1)
        h11 = (w * x * x).sum(axis=-1) + LC_RIDGE
        det = h00 * h11 - h01 * h01
        d0 = (h11 * g0 - h01 * g1) / det
        d1 = (h00 * g1 - h01 * g0) / det
        beta = beta + np.stack([d0, d1], axis=-1)
        if np.max(np.abs(np.stack([d0, d1])), initial=0.0) < 1e-10:
            break
    return beta


def _acceleration(items: np.ndarray, bins: np.ndarray, score: np.ndarray) -> float:
    """BCa's acceleration of the intercept of the length-controlled fit: the skewness of each
    item's empirical influence on it (the infinitesimal jackknife: the fit's Newton step for
    the item's observations alone, so no refit per item)."""
    s = np.bincount(bins, weights=score, minlength=LC_BINS)
    n = np.bincount(bins, minlength=LC_BINS).astype(np.float64)
    b0, b1 = _fit_logistic(s, n)
    x = _BIN_X[bins]
    p = 1.0 / (1.0 + np.exp(-(b0 + b1 * x)))
    w = p * (1 - p)
    h = np.array([[w.sum() + LC_RIDGE, (w * x).sum()], [(w * x).sum(), (w * x * x).sum()]])
    h[1, 1] += LC_RIDGE
    first_row = np.linalg.solve(h, np.array([1.0, 0.0]))  # H is symmetric: row 0 of its inverse
    influence = (score - p) * (first_row[0] + first_row[1] * x)
    per_item = np.bincount(items, weights=influence)
    spread = float((per_item**2).sum())
    return float((per_item**3).sum() / (6 * spread**1.5)) if spread > 0 else 0.0


def _bca(
    boot: np.ndarray, value: float, acceleration: float, levels: Sequence[float]
) -> tuple[float, float] | None:
    """Bias-corrected and accelerated bootstrap quantiles (Efron 1987) at the two `levels`: the
    percentile interval moved for the estimator's median bias and skew, which the plain one
    leaves in small samples (a few comparisons on one side of equal length pull it hard)."""
    boot = boot[np.isfinite(boot)]
    if len(boot) == 0:
        return None
    below = (np.sum(boot < value) + 0.5 * np.sum(boot == value)) / len(boot)
    z0 = distributions.norm_ppf(np.clip(below, 1 / (len(boot) + 1), len(boot) / (len(boot) + 1)))
    z = distributions.norm_ppf(np.asarray(levels)) + z0
    adjusted = distributions.norm_cdf(z0 + z / (1 - acceleration * z))
    low, high = np.percentile(boot, 100 * adjusted)
    return (float(low), float(high))


@dataclass(frozen=True)
class LengthControlled:
    """Win rate of system_a over system_b read at zero length difference, from one source, with
    its 95% CI (shown) and one-sided 95% lower and upper bounds (decided on), both from the
    bootstrap over items. `n` counts observations (votes or combined verdicts), `n_comparisons`
    the comparisons behind them. `value` is None when it cannot be estimated and `reason` says
    why (lengths that do not overlap, see `LC_MIN_MINORITY`)."""

    source: str
    system_a: str
    system_b: str
    value: float | None
    ci: tuple[float, float] | None
    n: int
    bounds: tuple[float, float] | None = None
    n_comparisons: int = 0
    reason: str = ""

    def reversed(self) -> LengthControlled:
        """Read the other way round: b over a = 1 - a over b (CI and bounds mirrored)."""
        return LengthControlled(
            source=self.source,
            system_a=self.system_b,
            system_b=self.system_a,
            value=None if self.value is None else 1 - self.value,
            ci=_reflect(self.ci),
            n=self.n,
            bounds=_reflect(self.bounds),
            n_comparisons=self.n_comparisons,
            reason=self.reason,
        )


def _reflect(interval: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if interval is None else (1 - interval[1], 1 - interval[0])


@dataclass
class _LengthControlled:
    columns: slice
    n: int
    n_comparisons: int
    n_items: int
    reason: str
    acceleration: float


def _add_length_controlled(resampler: Resampler, obs: pd.DataFrame) -> _LengthControlled:
    """Register one comparison's length-controlled columns: score and count per length bin.
    A comparison is an item here (one pair of the two systems per item)."""
    bins = normalised_length(obs["len_diff"].to_numpy())
    items = obs["item"].to_numpy()
    scored = resampler.add(items, bins, obs["score"].to_numpy(dtype=float), LC_BINS)
    resampler.add(items, bins, np.ones(len(obs)), LC_BINS)
    per_comparison = obs.groupby("item", sort=False)["len_diff"].first().to_numpy()
    reason = not_estimable_reason(per_comparison)
    return _LengthControlled(
        slice(scored.start, scored.start + 2 * LC_BINS),
        len(obs),
        len(per_comparison),
        len(per_comparison),
        reason,
        0.0
        if reason
        else _acceleration(pd.factorize(items)[0], bins, obs["score"].to_numpy(float)),
    )


def _lc_value(lc: _LengthControlled, totals: np.ndarray) -> np.ndarray:
    t = totals[..., lc.columns]
    return fit_length_controlled(t[..., :LC_BINS], t[..., LC_BINS:])


def _lc_result(
    lc: _LengthControlled,
    observed: np.ndarray,
    resampled: np.ndarray,
    source: str = "",
    system_a: str = "",
    system_b: str = "",
) -> LengthControlled:
    """The estimate with its BCa bootstrap CI and bounds from the shared totals; none of them
    when the lengths do not overlap (a number there would be the ridge's, not the data's)."""
    named = {"source": source, "system_a": system_a, "system_b": system_b}
    counts = {"n": lc.n, "n_comparisons": lc.n_comparisons}
    if lc.reason:
        return LengthControlled(**named, value=None, ci=None, **counts, reason=lc.reason)
    value = float(_lc_value(lc, observed))
    if not np.isfinite(value):
        return LengthControlled(**named, value=None, ci=None, **counts, reason="nothing to fit")
    boot = _lc_value(lc, resampled) if lc.n_items >= 2 and len(resampled) else np.zeros(0)
    return LengthControlled(
        **named,
        value=value,
        ci=_bca(boot, value, lc.acceleration, (0.025, 0.975)),
        **counts,
        bounds=_bca(boot, value, lc.acceleration, (0.05, 0.95)),
    )


def length_controlled_win_rate(
    obs: pd.DataFrame,
    seed: int = 0,
    n_boot: int = 1000,
    source: str = "",
    system_a: str = "",
    system_b: str = "",
) -> LengthControlled:
    """The length-controlled win rate of system_a over system_b (AlpacaEval 2 style, read at zero
    length difference) with its bootstrap CI and bounds over items, from one row per observation
    of one comparison of two systems: item, score, len_diff (len a - len b)."""
    items = _item_codes(obs)
    resampler = Resampler(int(items.max()) + 1 if len(items) else 0)
    lc = _add_length_controlled(resampler, obs.assign(item=items))
    observed, resampled = resampler.run(seed, n_boot)
    return _lc_result(lc, observed, resampled, source, system_a, system_b)


def _oriented_length_rows(obs: pd.DataFrame, a: str, b: str) -> pd.DataFrame | None:
    """The observations of comparison (a, b) read as a over b (score and len_diff turned round
    where the row has them the other way), or None when there are none."""
    forward = (obs["system_a"] == a) & (obs["system_b"] == b)
    backward = (obs["system_a"] == b) & (obs["system_b"] == a)
    if not (forward | backward).any():
        return None
    rows = obs[forward | backward]
    flip = (rows["system_a"] == b).to_numpy()
    return rows.assign(
        score=np.where(flip, 1 - rows["score"], rows["score"]),
        len_diff=np.where(flip, -rows["len_diff"], rows["len_diff"]),
    )


def length_controlled_win_rates(
    obs: pd.DataFrame,
    comparisons: Sequence[tuple[str, str]],
    n_items: int,
    seed: int = 0,
    n_boot: int = 1000,
) -> list[LengthControlled]:
    """The length-controlled win rate of each comparison per source, alone: the same figures
    `scorecard_statistics` gives (the resamples depend only on the seed and the items), without
    its rankings and means. `obs` and `n_items` as there."""
    resampler = Resampler(n_items)
    lcs = []
    for source, of_source in obs.groupby("source", sort=False, observed=True):
        for a, b in comparisons:
            rows = _oriented_length_rows(of_source, a, b)
            if rows is not None:
                lcs.append((source, a, b, _add_length_controlled(resampler, rows)))
    observed, resampled = resampler.run(seed, n_boot)
    return [_lc_result(lc, observed, resampled, s, a, b) for s, a, b, lc in lcs]


# ---- everything a scorecard needs, on shared resamples ----


@dataclass(frozen=True)
class ScorecardStatistics:
    rankings: dict[str, list[Rating]]
    length_controlled: list[LengthControlled]
    means: pd.DataFrame  # rating keys..., value, ci, n (the rolled-up key None = all)


def _group_codes(frame: pd.DataFrame, keys: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """A code per row for its combination of `keys`, and the combinations (one row per code)."""
    codes, uniques = [], []
    for key in keys:
        c, u = pd.factorize(frame[key])
        codes.append(c)
        uniques.append(np.asarray(u, dtype=object))
    dims = tuple(max(1, len(u)) for u in uniques)
    combined = np.ravel_multi_index(codes, dims) if len(frame) else np.zeros(0, np.int64)
    present, inverse = np.unique(combined, return_inverse=True)
    parts = np.unravel_index(present, dims)
    names = pd.DataFrame({k: u[p] for k, u, p in zip(keys, uniques, parts, strict=True)})
    return inverse.astype(np.int64), names


def scorecard_statistics(
    obs: pd.DataFrame,
    comparisons: Sequence[tuple[str, str]],
    ratings: pd.DataFrame,
    rating_keys: Sequence[str],
    rollup: str,
    n_items: int,
    seed: int = 0,
    n_boot: int = 1000,
    length_controlled: list[LengthControlled] | None = None,
) -> ScorecardStatistics:
    """Rankings per source, the length-controlled win rate of each comparison per source, and
    the mean rating per group of `rating_keys` and per group without `rollup` (reported with
    `rollup` None), all on the same resamples of items.

    `obs`: one row per observation with source, item, system_a, system_b, score (1 = system_a
    won, 0.5 tie, 0 lost) and len_diff (len a - len b); `ratings`: totals of ratings with item,
    total, n and the `rating_keys` columns. Items are integer codes below `n_items`.
    `length_controlled`: `length_controlled_win_rates` of the same observations, seed and
    resamples when already computed (the figures are the same either way: each figure's
    resampled totals depend only on the seed and the items, not on the figures beside it)."""
    resampler = Resampler(n_items)
    sources = list(dict.fromkeys(obs["source"].unique()))
    rankings = {}
    lcs: list[tuple[str, str, str, _LengthControlled]] = []
    for source, of_source in obs.groupby("source", sort=False, observed=True):
        rankings[source] = _add_ranking(resampler, of_source, systems_of(of_source))
        if length_controlled is not None:
            continue
        for a, b in comparisons:
            rows = _oriented_length_rows(of_source, a, b)
            if rows is not None:
                lcs.append((source, a, b, _add_length_controlled(resampler, rows)))

    groups, names = _group_codes(ratings, rating_keys)
    k = len(names)
    items = ratings["item"].to_numpy()
    sums = resampler.add(items, groups, ratings["total"].to_numpy(float), k)
    counts = resampler.add(items, groups, ratings["n"].to_numpy(float), k)
    kept = [key for key in rating_keys if key != rollup]
    parent, parents = _group_codes(names, kept)
    # Totals of a parent group are sums of its groups' totals, in every resample alike.
    to_parent = np.zeros((k, len(parents)))
    to_parent[np.arange(k), parent] = 1.0

    observed, resampled = resampler.run(seed, n_boot)
    if length_controlled is None:
        length_controlled = [_lc_result(lc, observed, resampled, s, a, b) for s, a, b, lc in lcs]
    frames = []
    for table, rollup_value, mapping in ((names, None, None), (parents, True, to_parent)):
        o_sum, o_n = observed[sums], observed[counts]
        r_sum, r_n = resampled[:, sums], resampled[:, counts]
        if mapping is not None:
            o_sum, o_n, r_sum, r_n = o_sum @ mapping, o_n @ mapping, r_sum @ mapping, r_n @ mapping
        means = _ratio_means(o_sum, o_n, r_sum, r_n)
        table = table.copy()
        if rollup_value:
            table[rollup] = None
        table["value"] = [m.value for m in means]
        table["ci"] = [m.ci for m in means]
        table["n"] = [m.n for m in means]
        frames.append(table[[*rating_keys, "value", "ci", "n"]])
    source_items = {s: obs.loc[obs["source"] == s, "item"].to_numpy() for s in sources}
    return ScorecardStatistics(
        {
            s: _rating_results(rankings[s], observed, _if_resamplable(resampled, source_items[s]))
            for s in sources
        },
        length_controlled,
        pd.concat(frames, ignore_index=True),
    )


def _ratio_means(
    o_sum: np.ndarray, o_n: np.ndarray, r_sum: np.ndarray, r_n: np.ndarray
) -> list[Mean]:
    with np.errstate(divide="ignore", invalid="ignore"):
        point = o_sum / o_n
        boot = r_sum / r_n
    return [
        Mean(
            value=float(point[g]) if o_n[g] > 0 else None,
            ci=_ci(boot[:, g]) if o_n[g] > 0 and len(boot) else None,
            n=int(o_n[g]),
        )
        for g in range(len(o_sum))
    ]
