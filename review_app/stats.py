"""Calibration statistics as pure functions: DataFrames of pairs, votes and verdicts in, named
results out (agreement, kappa, bias, win rates, bootstrap CIs). No I/O, no SQL, no Streamlit.

The definitions follow DESIGN section 5 and are documented for users in docs/statistics.md.

Input frames are the store's (see `store.frames.pairs_frame`, `votes_frame`, `verdicts_frame`); only
these columns are read: pairs `pair_id, item_key, category, system_x, system_y, len_x, len_y`;
votes `pair_id, reviewer, outcome, shown_left`; verdicts `judge, pair_id, first, outcome, cost,
latency_ms`.

Conventions used throughout:
- A comparison is one pair (item, {x, y}); outcomes are oriented to the pair's canonical order
  and coded x=0, y=1, tie=2 (`both_bad` counts as a tie for agreement and is counted on its own).
- Unparsed verdicts (outcome None) are excluded everywhere and counted as `n_unparsed`.
- Votes and verdicts whose pair is not in `pairs` are ignored.
- A statistic with nothing to count (n = 0), or whose formula divides by zero (a kappa when every
  label is the same class), has value None and CI None, never NaN.
- Every confidence interval comes from one bootstrap over items (whole items with all their
  comparisons, votes and verdicts), `n_boot` resamples from `numpy.random.default_rng(seed)`
  drawn once over every item and shared by every figure (`ItemResamples`):
  shares get a Wilson interval at the bootstrap's design effect, differences of two shares a
  studentized bootstrap interval, kappas the percentiles. Resamples in which a statistic is
  undefined are skipped.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from review_app import distributions

X, Y, TIE = 0, 1, 2
LABELS: tuple[str, str, str] = ("x", "y", "tie")
# DESIGN section 5: a length difference of more than this many characters makes one output "longer".
LONGER_MARGIN = 30
# DESIGN section 5: reviewer pairs need this many shared comparisons for a kappa worth reading.
MIN_SHARED_FOR_REVIEWER_KAPPA = 10
# A judge is "within the human ceiling" when its strict agreement is at worst this far below the
# humans' (at the one-sided 95% bound), on at least this many comparisons.
CEILING_MARGIN = 0.05
MIN_COMPARISONS = 30
UNCATEGORIZED = "uncategorized"
HUMANS = "humans"

_OUTCOME_CODES = {"x": X, "y": Y, "tie": TIE, "both_bad": TIE}
_FIRST_CODES = {"x": X, "y": Y}
# Draws per chunk of resamples (each chunk is drawn, counted and multiplied at once): a chunk
# of a large study holds more resamples, and BLAS multiplies 250 resamples in a third less time
# per resample than 50, while a huge study's draws (8 bytes each) stay near 32 MB at a time.
# The chunks depend only on the number of rows, never on the machine or its load, and each
# resample's totals are exact sums, so no figure depends on them.
_CHUNK_DRAWS = 4_000_000


def _chunk_size(n_rows: int) -> int:
    """Resamples per chunk of `n_rows` rows."""
    return max(1, _CHUNK_DRAWS // max(n_rows, 1))


# ---- results ----


@dataclass(frozen=True)
class Estimate:
    """A statistic with the number of observations behind it and, when bootstrapped, its 95% CI.

    `units` is the number of comparisons that contribute to it and `items` the number of distinct
    items behind them (the independent units the bootstrap resamples; an item compared with two
    systems gives two comparisons); `bounds` are its one-sided 95% lower and upper confidence
    bounds, on which the gate decides."""

    value: float | None
    n: int
    ci: tuple[float, float] | None = None
    units: int = 0
    bounds: tuple[float, float] | None = None
    items: int = 0

    def to_json(self, with_ci: bool = True) -> dict:
        out: dict = {"value": self.value, "n": self.n, "n_items": self.items}
        if with_ci:
            out["ci"] = list(self.ci) if self.ci is not None else None
        return out


@dataclass(frozen=True)
class CeilingVerdict:
    """A judge's strict agreement minus the human ceiling's, on the same resamples (a paired
    interval), and what it says: `within` when the one-sided 95% lower bound is above -margin,
    `below` when the upper bound is under -margin, else `inconclusive` (also below the minimum
    number of items, so a small study never reads as `within`)."""

    diff: Estimate
    margin: float
    verdict: str

    def to_json(self) -> dict:
        ci = self.diff.ci
        return {
            "diff": self.diff.value,
            "ci": list(ci) if ci is not None else None,
            "n": self.diff.units,
            "n_items": self.diff.items,
            "margin": self.margin,
            "verdict": self.verdict,
        }


def _ties_json(with_ties: Estimate, without_ties: Estimate) -> dict:
    return {"with_ties": with_ties.to_json(), "without_ties": without_ties.to_json()}


@dataclass(frozen=True)
class ReviewerKappa:
    """Cohen's kappa (3 classes) between two reviewers over the comparisons both voted on."""

    a: str
    b: str
    kappa: float | None
    n: int


@dataclass(frozen=True)
class MajorityAgreement:
    """A judge's combined verdicts scored against the human majority label of each comparison.

    `confusion[i][j]` counts comparisons whose majority label is LABELS[i] and whose combined
    verdict is LABELS[j].
    """

    accuracy: float | None
    macro_precision: float | None
    macro_recall: float | None
    macro_f1: float | None
    n: int
    confusion: list[list[int]]
    # 95% intervals over the study's item resamples: accuracy is a share (the interval every
    # share gets); macro F1 gets Wilson's at the design effect of its resampled variance.
    accuracy_ci: tuple[float, float] | None = None
    macro_f1_ci: tuple[float, float] | None = None

    def to_json(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "accuracy_ci": list(self.accuracy_ci) if self.accuracy_ci else None,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "macro_f1_ci": list(self.macro_f1_ci) if self.macro_f1_ci else None,
            "n": self.n,
        }


@dataclass(frozen=True)
class HumanStats:
    """How reviewers agree with each other, and their own position and length preferences."""

    n_votes: int
    n_both_bad: int
    n_reviewers: int
    agreement_with_ties: Estimate
    agreement_without_ties: Estimate
    kappa_with_ties: Estimate
    kappa_without_ties: Estimate
    fleiss_kappa: Estimate
    krippendorff_alpha: Estimate
    reviewer_kappa: list[ReviewerKappa]
    p_left: Estimate
    p_longer: Estimate
    # Over (decisive vote, another reviewer's vote) on one comparison: the share that are equal,
    # a tie counting as a disagreement. The ceiling a judge's `agreement_strict` is held to.
    agreement_strict: Estimate

    def to_json(self) -> dict:
        return {
            "agreement": _ties_json(self.agreement_with_ties, self.agreement_without_ties),
            "agreement_strict": self.agreement_strict.to_json(),
            "kappa": _ties_json(self.kappa_with_ties, self.kappa_without_ties),
            "fleiss_kappa": self.fleiss_kappa.to_json(with_ci=False),
            "krippendorff_alpha": self.krippendorff_alpha.to_json(with_ci=False),
            "reviewer_kappa": [
                {"a": r.a, "b": r.b, "kappa": r.kappa, "n": r.n} for r in self.reviewer_kappa
            ],
            "p_left": self.p_left.to_json(),
            "p_longer": self.p_longer.to_json(),
        }


@dataclass(frozen=True)
class JudgeStats:
    """One judge (a run, an imported judge name or a baseline) measured against the humans.

    `consistency` and `p_first` are None for a judge with no single-order verdicts at all (for
    example imported order-combined verdicts), since neither can be measured then.
    """

    judge: str
    n_verdicts: int
    n_unparsed: int
    n_combined: int
    n_inconsistent: int
    agreement_with_ties: Estimate
    agreement_without_ties: Estimate
    kappa_with_ties: Estimate
    kappa_without_ties: Estimate
    vs_majority: MajorityAgreement
    consistency: Estimate | None
    p_first: Estimate | None
    p_longer: Estimate
    cost_total: float | None
    cost_per_1000: float | None
    mean_latency_ms: float | None
    # Abstention cannot help these: a tie, an inconsistent pair or an unparsed answer counts as a
    # disagreement with every decisive vote (strict), and as not decisive (decisive_share).
    agreement_strict: Estimate
    decisive_share: Estimate
    vs_ceiling: CeilingVerdict
    # The judge's p_longer minus the humans' (paired): how much more it prefers longer answers.
    verbosity_gap: Estimate
    # Strict agreement minus each other judge's, on the same resamples (beats-baseline checks).
    strict_vs: dict[str, Estimate] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "judge": self.judge,
            "n_verdicts": self.n_verdicts,
            "n_unparsed": self.n_unparsed,
            "agreement": _ties_json(self.agreement_with_ties, self.agreement_without_ties),
            "agreement_strict": self.agreement_strict.to_json(),
            "decisive_share": self.decisive_share.to_json(),
            "vs_ceiling": self.vs_ceiling.to_json(),
            "kappa": _ties_json(self.kappa_with_ties, self.kappa_without_ties),
            "vs_majority": self.vs_majority.to_json(),
            "consistency": self.consistency.to_json() if self.consistency is not None else None,
            "p_first": self.p_first.to_json() if self.p_first is not None else None,
            "p_longer": self.p_longer.to_json(),
            "verbosity_gap": self.verbosity_gap.to_json(),
        }


@dataclass(frozen=True)
class Analysis:
    """Every statistic of one set of comparisons (a whole study or one category)."""

    n_comparisons: int
    n_votes: int
    humans: HumanStats
    judges: list[JudgeStats]

    def judge(self, label: str) -> JudgeStats | None:
        return next((j for j in self.judges if j.judge == label), None)

    def to_json(self) -> dict:
        return {
            "n_comparisons": self.n_comparisons,
            "n_votes": self.n_votes,
            "humans": self.humans.to_json(),
            "judges": [j.to_json() for j in self.judges],
        }


@dataclass(frozen=True)
class Calibration:
    """A study's analysis overall and per category; `to_json()` is the `stats --json` document."""

    overall: Analysis
    by_category: dict[str, Analysis] = field(default_factory=dict)

    def to_json(self) -> dict:
        out = self.overall.to_json()
        out["by_category"] = {name: a.to_json() for name, a in self.by_category.items()}
        return out


# Judges that pick by length alone: their p_longer is known without looking.
LENGTH_BASELINES = ("baseline/longest", "baseline/shortest")


def without_length_preference(calibration: Calibration) -> Calibration:
    """The calibration with every p_longer (humans' and judges') withheld: value and interval
    blank, the count kept. When one system's outputs are reliably the longer ones, p_longer is
    that system's win rate, so before the thresholds are locked it must not be read. The
    verbosity gap (judge minus humans, paired) stays: it carries no direction on its own,
    except for a length baseline's, which is withheld too."""

    def blank(estimate: Estimate) -> Estimate:
        return Estimate(value=None, n=estimate.n, items=estimate.items)

    def judge(j):
        j = replace(j, p_longer=blank(j.p_longer))
        # A length baseline's own p_longer is known (1 or 0), so its gap gives the humans' away.
        if j.judge in LENGTH_BASELINES:
            j = replace(j, verbosity_gap=blank(j.verbosity_gap))
        return j

    def analysis(a: Analysis) -> Analysis:
        return replace(
            a,
            humans=replace(a.humans, p_longer=blank(a.humans.p_longer)),
            judges=[judge(j) for j in a.judges],
        )

    return Calibration(
        overall=analysis(calibration.overall),
        by_category={name: analysis(a) for name, a in calibration.by_category.items()},
    )


@dataclass(frozen=True)
class WinRate:
    """How often `system_a` beats `system_b`: (wins + 0.5 ties) / n, from one source.

    `source` is "humans" (one observation per vote) or a judge label (one per combined verdict).
    `ties` includes `both_bad` votes, which are also counted on their own.
    """

    system_a: str
    system_b: str
    source: str
    value: float | None
    ci: tuple[float, float] | None
    n: int
    wins: int
    ties: int
    losses: int
    both_bad: int = 0
    n_comparisons: int = 0
    bounds: tuple[float, float] | None = None  # one-sided 95% lower and upper bounds
    n_items: int = 0  # distinct items behind the comparisons (what the bootstrap resamples)

    def reversed(self) -> WinRate:
        """The same outcomes read the other way round: b over a = 1 - a over b (ties stay half)."""
        return WinRate(
            system_a=self.system_b,
            system_b=self.system_a,
            source=self.source,
            value=None if self.value is None else 1 - self.value,
            ci=_reflect(self.ci),
            n=self.n,
            wins=self.losses,
            ties=self.ties,
            losses=self.wins,
            both_bad=self.both_bad,
            n_comparisons=self.n_comparisons,
            bounds=_reflect(self.bounds),
            n_items=self.n_items,
        )


def _reflect(interval: tuple[float, float] | None) -> tuple[float, float] | None:
    """An interval of a share p as an interval of 1 - p."""
    return None if interval is None else (1 - interval[1], 1 - interval[0])


@dataclass(frozen=True)
class Assessment:
    """A plain-language verdict on whether a judge can stand in for human reviewers."""

    ok: bool
    text: str


# ---- encoding ----


@dataclass
class _Encoded:
    """Frames turned into integer arrays indexed by comparison (0..P-1), ready for numpy."""

    pair_ids: np.ndarray
    items: np.ndarray  # (P,) int code of each comparison's item: the bootstrap resamples items
    systems: np.ndarray  # (P, 2) object: system_x, system_y
    categories: np.ndarray  # (P,) str
    len_diff: np.ndarray  # (P,) len_x - len_y
    vote_pair: np.ndarray
    vote_label: np.ndarray  # 0, 1, 2
    vote_both_bad: np.ndarray  # bool
    vote_reviewer: np.ndarray  # int codes into reviewers
    vote_left: np.ndarray  # 0 = x shown left, 1 = y shown left, -1 unknown
    reviewers: np.ndarray  # names, sorted
    verdict_pair: np.ndarray
    verdict_judge: np.ndarray  # int codes into judges, sorted
    verdict_outcome: np.ndarray  # 0, 1, 2, -1 = unparsed
    verdict_first: np.ndarray  # 0, 1, -1 = order-combined
    verdict_cost: np.ndarray
    verdict_latency: np.ndarray  # NaN when unknown
    judges: list[str]
    # `_judge_codes` of each judge, computed on first use.
    judge_codes: dict[int, _JudgeCodes] = field(default_factory=dict, repr=False)

    @property
    def n_pairs(self) -> int:
        return len(self.pair_ids)

    def judge_rows(self, judge_code: int) -> slice:
        """The verdicts of one judge (`verdict_judge` is sorted)."""
        start, stop = np.searchsorted(self.verdict_judge, [judge_code, judge_code + 1])
        return slice(int(start), int(stop))

    def subset(self, mask: np.ndarray) -> _Encoded:
        """The comparisons where `mask` is true, with their votes and verdicts."""
        new_index = np.cumsum(mask) - 1
        keep_v = mask[self.vote_pair]
        keep_j = mask[self.verdict_pair]
        return _Encoded(
            pair_ids=self.pair_ids[mask],
            items=self.items[mask],
            systems=self.systems[mask],
            categories=self.categories[mask],
            len_diff=self.len_diff[mask],
            vote_pair=new_index[self.vote_pair[keep_v]],
            vote_label=self.vote_label[keep_v],
            vote_both_bad=self.vote_both_bad[keep_v],
            vote_reviewer=self.vote_reviewer[keep_v],
            vote_left=self.vote_left[keep_v],
            reviewers=self.reviewers,
            verdict_pair=new_index[self.verdict_pair[keep_j]],
            verdict_judge=self.verdict_judge[keep_j],
            verdict_outcome=self.verdict_outcome[keep_j],
            verdict_first=self.verdict_first[keep_j],
            verdict_cost=self.verdict_cost[keep_j],
            verdict_latency=self.verdict_latency[keep_j],
            judges=self.judges,
        )


# What `encode` gives: a study as every statistic reads it.
Encoded = _Encoded


# Below this many values a column is coded with Python dicts: pandas' hash tables cost more to
# set up than the work on a small study, and a simulation codes thousands of small studies. Both
# ways give the same codes (tests/test_stats.py compares them).
_SMALL = 2_000


def _all_str(values: np.ndarray) -> bool:
    if len(values) <= _SMALL:
        return all(type(v) is str for v in values.tolist())
    return pd.api.types.infer_dtype(values, skipna=False) == "string"


def as_strings(values: np.ndarray) -> np.ndarray:
    """`pd.Series(values).astype(str)` as an object array, without the conversion when every
    value already is a string (pandas' string arrays cost more than the work they feed)."""
    if _all_str(values):
        return np.asarray(values, dtype=object)
    return pd.Series(values, dtype=object).astype(str).to_numpy(dtype=object)


def _positions(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The position of each of `values` among `keys` (distinct), -1 where absent:
    `pd.Index(keys).get_indexer(values)`."""
    if len(keys) <= _SMALL and len(values) <= _SMALL:
        where = {k: i for i, k in enumerate(keys.tolist())}
        if len(where) == len(keys):  # else pandas raises on the repeated key
            return np.fromiter((where.get(v, -1) for v in values.tolist()), np.int64, len(values))
    return np.asarray(pd.Index(keys).get_indexer(values), dtype=np.int64)


def _codes(values: np.ndarray, mapping: dict[str, int]) -> np.ndarray:
    """Integer code per value of `values` from `mapping`; -1 for missing or unknown values."""
    if len(values) <= _SMALL:
        return np.fromiter((mapping.get(v, -1) for v in values.tolist()), np.int64, len(values))
    # One comparison per known value: the mappings are a few labels, and comparing is half
    # the cost of hashing every value.
    values = np.asarray(values, dtype=object)
    codes = np.full(len(values), -1, dtype=np.int64)
    for value, code in mapping.items():
        codes[values == value] = code
    return codes


def _factorize(values: np.ndarray, sort: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`pd.factorize(pd.Series(values).astype(str), sort)` as (codes, names as an object
    array): names in order of first appearance, or sorted."""
    all_str = _all_str(values)
    if len(values) <= _SMALL and all_str:
        first: dict[str, int] = {}
        for v in values.tolist():
            first.setdefault(v, len(first))
        names = sorted(first) if sort else list(first)
        where = first if not sort else {name: i for i, name in enumerate(names)}
        codes = np.fromiter((where[v] for v in values.tolist()), np.int64, len(values))
        return codes, np.array(names, dtype=object)
    if all_str:
        codes, names = pd.factorize(np.asarray(values, dtype=object), sort=sort)
    else:
        codes, names = pd.factorize(pd.Series(values, dtype=object).astype(str), sort=sort)
    return np.asarray(codes, dtype=np.int64), np.asarray(names, dtype=object)


def category_names(series: pd.Series) -> np.ndarray:
    """Category names as every statistic reports them (missing or empty -> "uncategorized")."""
    return _category_names(series.to_numpy(dtype=object))


def _category_names(values: np.ndarray) -> np.ndarray:
    if len(values) > _SMALL and _all_str(values):
        named = np.array(values, dtype=object)
        named[named == ""] = UNCATEGORIZED
        return named
    missing = pd.isna(values)
    if len(values) <= _SMALL and _all_str(values[~missing]):
        named = zip(values.tolist(), missing.tolist(), strict=True)
        return np.array([UNCATEGORIZED if m else v or UNCATEGORIZED for v, m in named], object)
    series = pd.Series(values, dtype=object)
    names = series.where(series.notna(), UNCATEGORIZED).astype(str)
    return names.replace("", UNCATEGORIZED).to_numpy(dtype=object)


def _numbers(values: np.ndarray) -> np.ndarray:
    """Float per value, NaN where missing or not a number."""
    if values.dtype.kind == "f":
        return values.astype(np.float64)
    return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=np.float64)


def _judge_order(labels: Iterable[str], judge_order: Sequence[str]) -> list[str]:
    """The judges present, those named in `judge_order` first in its order, then the rest by name."""
    present = set(labels)
    listed = [j for j in dict.fromkeys(judge_order) if j in present]
    return listed + sorted(present - set(listed))


@dataclass(frozen=True)
class VerdictCodes:
    """One judge's verdicts already coded, for verdicts computed here rather than stored (the
    baselines'): each verdict's pair, the side shown first (X or Y) and its outcome (X, Y or
    TIE). Encoded as verdicts of no cost and no latency, as their rows would say."""

    judge: str
    pair_id: np.ndarray
    first: np.ndarray
    outcome: np.ndarray


def encode(
    pairs: pd.DataFrame,
    votes: pd.DataFrame,
    verdicts: pd.DataFrame,
    judge_order: Sequence[str] = (),
    computed: Sequence[VerdictCodes] = (),
) -> _Encoded:
    """The frames as the statistics read them, coded once (`study_figures_of`, `calibrate_of`,
    `win_rates_of`, `favouring_judges_of` take the result): the verdicts are those of
    `verdicts` followed by each of `computed`, as if their rows had been appended to it."""
    # Each column is read out of its frame once, as an array: on the many small studies of a
    # simulation, pandas' per-operation cost was most of the work.
    pair_ids = pairs["pair_id"].to_numpy()
    systems = np.column_stack(
        [pairs[c].to_numpy(dtype=object) for c in ("system_x", "system_y")]
    ).reshape(len(pairs), 2)
    len_diff = (
        pairs["len_x"].to_numpy(dtype=np.int64) - pairs["len_y"].to_numpy(dtype=np.int64)
        if len(pairs)
        else np.zeros(0, dtype=np.int64)
    )

    # Rows are dropped column by column (only the columns read), not by filtering whole frames.
    outcomes = votes["outcome"].to_numpy(dtype=object)
    vote_pair = _positions(pair_ids, votes["pair_id"].to_numpy())
    vote_label = _codes(outcomes, _OUTCOME_CODES)
    keep = (vote_pair >= 0) & (vote_label >= 0)
    vote_pair = vote_pair[keep]
    vote_label = vote_label[keep]
    reviewer_codes, reviewers = _factorize(votes["reviewer"].to_numpy(dtype=object)[keep], True)
    left = votes["shown_left"].to_numpy(dtype=object)[keep]
    vote_both_bad = outcomes[keep] == "both_bad"
    vote_systems = systems[vote_pair] if len(vote_pair) else np.empty((0, 2), dtype=object)
    vote_left = np.full(len(vote_pair), -1, dtype=np.int64)
    if len(vote_pair):
        vote_left[left == vote_systems[:, 0]] = X
        vote_left[left == vote_systems[:, 1]] = Y

    verdict_pair = _positions(pair_ids, verdicts["pair_id"].to_numpy())
    keep = verdict_pair >= 0
    verdict_pair = verdict_pair[keep]
    # A few judges over many verdicts: each verdict's judge is coded once (factorize), then the
    # few codes are mapped to the judges' order.
    label_codes, labels = _factorize(verdicts["judge"].to_numpy(dtype=object)[keep])
    labels = labels.tolist()
    outcome = _codes(verdicts["outcome"].to_numpy(dtype=object)[keep], _OUTCOME_CODES)
    first = _codes(verdicts["first"].to_numpy(dtype=object)[keep], _FIRST_CODES)
    # NaN = unknown (a judge with no price); it makes that judge's total unknown.
    cost = _numbers(verdicts["cost"].to_numpy()[keep])
    latency = _numbers(verdicts["latency_ms"].to_numpy()[keep])
    if computed:
        parts = [(label_codes, verdict_pair, outcome, first)]
        for part in computed:
            if part.judge not in labels:
                labels.append(part.judge)
            part_pair = _positions(pair_ids, part.pair_id)
            known = part_pair >= 0
            code = np.full(int(known.sum()), labels.index(part.judge), dtype=np.int64)
            parts.append((code, part_pair[known], part.outcome[known], part.first[known]))
        label_codes, verdict_pair, outcome, first = (
            np.concatenate(c) for c in zip(*parts, strict=True)
        )
        # Computed verdicts cost nothing and take no time, as their rows say.
        cost, latency = (
            np.concatenate([stored, np.zeros(len(label_codes) - len(stored))])
            for stored in (cost, latency)
        )
    judges = _judge_order(labels, judge_order)
    judge_codes = _positions(np.array(judges, dtype=object), np.array(labels, dtype=object))
    judge_codes = judge_codes[label_codes]
    # Verdicts grouped by judge (in their order within a judge), so that a judge's verdicts are
    # one slice (`_Encoded.judge_rows`) in the study and in every subset of it.
    by_judge = np.argsort(judge_codes, kind="stable")

    return _Encoded(
        pair_ids=pair_ids,
        items=_factorize(pairs["item_key"].to_numpy(dtype=object))[0],
        systems=systems,
        categories=_category_names(pairs["category"].to_numpy(dtype=object)),
        len_diff=len_diff,
        vote_pair=vote_pair.astype(np.int64),
        vote_label=vote_label,
        vote_both_bad=np.asarray(vote_both_bad, dtype=bool),
        vote_reviewer=reviewer_codes,
        vote_left=vote_left,
        reviewers=reviewers,
        verdict_pair=verdict_pair.astype(np.int64)[by_judge],
        verdict_judge=judge_codes[by_judge],
        verdict_outcome=np.asarray(outcome, dtype=np.int64)[by_judge],
        verdict_first=np.asarray(first, dtype=np.int64)[by_judge],
        verdict_cost=cost[by_judge],
        verdict_latency=latency[by_judge],
        judges=judges,
    )


# ---- per-comparison building blocks ----


def _human_counts(enc: _Encoded) -> np.ndarray:
    """(P, 3) number of votes per comparison and label."""
    flat = np.bincount(enc.vote_pair * 3 + enc.vote_label, minlength=3 * enc.n_pairs)
    return flat.reshape(enc.n_pairs, 3)


def _majority(counts: np.ndarray) -> np.ndarray:
    """The unique most frequent label per comparison, else tie; -1 where nobody voted."""
    top = counts.max(axis=1)
    unique_top = (counts == top[:, None]).sum(axis=1) == 1
    label = np.where(unique_top, counts.argmax(axis=1), TIE)
    return np.where(counts.sum(axis=1) > 0, label, -1)


@dataclass
class _JudgeCodes:
    """One judge's verdicts reduced to one combined outcome per comparison."""

    combined: np.ndarray  # (P,) 0, 1, 2, -1 = no parsed verdict
    seen: np.ndarray  # (P,) bool: the judge answered there (parsed or not)
    inconsistent: np.ndarray  # (P,) bool
    first_x: np.ndarray  # (P,) outcome when x was shown first, -1 if none
    first_y: np.ndarray  # (P,) outcome when y was shown first, -1 if none
    single_pair: np.ndarray  # pair index of each parsed single-order verdict
    single_won_first: np.ndarray  # per parsed single-order verdict: the one shown first won
    single_non_tie: np.ndarray  # bool per parsed single-order verdict
    has_single_order: bool
    n_verdicts: int
    n_unparsed: int
    cost_total: float | None
    mean_latency_ms: float | None


def _judge_codes(enc: _Encoded, judge_code: int) -> _JudgeCodes:
    """One judge's verdicts on `enc` reduced per comparison (once per encoded frames)."""
    if judge_code not in enc.judge_codes:
        enc.judge_codes[judge_code] = _reduce_judge(enc, judge_code)
    return enc.judge_codes[judge_code]


def _reduce_judge(enc: _Encoded, judge_code: int) -> _JudgeCodes:
    rows = enc.judge_rows(judge_code)
    pair = enc.verdict_pair[rows]
    outcome = enc.verdict_outcome[rows]
    first = enc.verdict_first[rows]
    parsed = outcome >= 0
    n_pairs = enc.n_pairs

    counts = np.bincount(pair[parsed] * 3 + outcome[parsed], minlength=3 * n_pairs)
    counts = counts.reshape(n_pairs, 3)
    distinct = (counts > 0).sum(axis=1)
    combined = np.where(distinct == 1, counts.argmax(axis=1), TIE)
    combined = np.where(distinct == 0, -1, combined)

    first_x = np.full(n_pairs, -1, dtype=np.int64)
    first_y = np.full(n_pairs, -1, dtype=np.int64)
    sel = parsed & (first == X)
    first_x[pair[sel]] = outcome[sel]
    sel = parsed & (first == Y)
    first_y[pair[sel]] = outcome[sel]

    single = parsed & (first >= 0)
    latency = enc.verdict_latency[rows]
    latency = latency[~np.isnan(latency)]
    return _JudgeCodes(
        combined=combined,
        seen=np.bincount(pair, minlength=n_pairs) > 0,
        inconsistent=distinct > 1,
        first_x=first_x,
        first_y=first_y,
        single_pair=pair[single],
        single_won_first=outcome[single] == first[single],
        single_non_tie=outcome[single] != TIE,
        has_single_order=bool((first >= 0).any()),
        n_verdicts=len(pair),
        n_unparsed=int((~parsed).sum()),
        cost_total=_finite_or_none(float(enc.verdict_cost[rows].sum())),
        mean_latency_ms=float(latency.mean()) if len(latency) else None,
    )


# ---- bootstrap ----


class _Columns:
    """Per-comparison columns whose totals every bootstrapped statistic is computed from.

    Each statistic here is a function of column totals, so one resample is one weighted sum of
    rows; all statistics of a report share the same resamples. A column equal to one already
    added (a denominator shared by a share and a kappa, the marginals of two kappas) is kept
    once: every later step costs per column.
    """

    def __init__(self, n_rows: int) -> None:
        self.n_rows = n_rows
        self._cols: list[np.ndarray] = []
        self._sums: list[float] = []
        # Equal columns have equal sums; columns with equal sums are compared in full.
        self._by_sum: dict[float, list[int]] = {}

    def add(self, values: np.ndarray) -> int:
        column = np.asarray(values, dtype=np.float32)
        total = float(column.sum(dtype=np.float64))
        same = self._by_sum.setdefault(total, [])
        for known in same:
            if np.array_equal(self._cols[known], column):
                return known
        self._cols.append(column)
        self._sums.append(total)
        same.append(len(self._cols) - 1)
        return len(self._cols) - 1

    def column(self, index: int) -> np.ndarray:
        return self._cols[index]

    def release(self) -> None:
        """Let the per-comparison columns go (their sums stay): once summed per item, no step
        reads them, and on a large study they were most of a render's memory."""
        self._cols = None  # type: ignore[assignment]  # a later add or by_item fails loudly

    def totals(self) -> np.ndarray:
        """Each column's total (exact: the columns hold integers and halves)."""
        return np.array(self._sums, dtype=np.float64)

    def by_item(self, item_rows: np.ndarray, n_items: int, spare: int = 0) -> np.ndarray:
        """(n_items, K + spare) the columns summed per item (`item_rows` gives each row's
        item, 0..n_items - 1), column-major: every later step reads it column by column. The
        sums are exact in any order. The last `spare` columns are left for the caller to fill:
        one array instead of a copy per added column block, as fresh memory costs more than
        the sums.

        In float32, as the resample products take them: exact for these integers and halves
        while an item's sum stays under 2**24 (and a product of two, under 4,096 each: about 90
        votes on one comparison). Half the fresh memory of float64 and no copy for the product:
        on a large study, the kernel's zeroing of fresh pages cost more than these sums."""
        out = np.empty((len(self._cols) + spare, n_items), dtype=np.float32)
        whole = len(item_rows) == n_items and np.array_equal(item_rows, np.arange(n_items))
        for k, column in enumerate(self._cols):
            # One row per item, in item order: nothing to add.
            out[k] = column if whole else np.bincount(item_rows, column, minlength=n_items)
        return out.T


_BLAS: ThreadpoolController | None = None


def one_blas_thread():
    """A context in which BLAS runs on one thread. Bootstrap products are small, and on a busy
    machine a second BLAS thread spinning for a core makes them several times slower, never
    faster. The libraries are looked up once per process: looking them up (what
    `threadpool_limits` does on every call) costs milliseconds, more than a small product."""
    global _BLAS
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def bootstrap_totals(matrix: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Column totals of `n_boot` resamples (with replacement) of the rows of `matrix`.

    Returns an (n_boot, K) array. Each resample is a vector of row counts drawn uniformly with
    replacement, so a resample's totals are one matrix product.
    """
    n_rows, n_cols = matrix.shape
    out = np.zeros((n_boot, n_cols))
    if n_rows == 0 or n_cols == 0 or n_boot == 0:
        return out
    # Identical columns (shared denominators, a count registered by two statistics) have
    # identical totals: the product is taken once per distinct column.
    distinct, inverse = _distinct_columns(matrix)
    # float32 is exact for these integer counts and halves the product's cost.
    m32 = distinct.astype(np.float32, copy=False)
    with one_blas_thread():
        for start, weights in _resample_weights(rng, n_rows, n_boot):
            out[start : start + len(weights)] = (weights.astype(np.float32) @ m32)[:, inverse]
    return out


def _distinct_columns(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct columns of `matrix` (in order of first appearance) and, for each column,
    the index of its distinct twin."""
    n_rows, n_cols = matrix.shape
    # Equal columns have equal fingerprints (their exact sum, and a weighted sum in the
    # matrix's own type, so that the matrix is not copied: the same arithmetic on equal
    # columns); columns with equal fingerprints are compared in full, so a coincidence costs a
    # comparison, never a wrong twin.
    weights = (np.arange(n_rows) % 1021 + 1).astype(matrix.dtype)
    with one_blas_thread():
        weighted = weights @ matrix
    sums = matrix.sum(axis=0, dtype=np.float64)
    if n_cols:
        # Usually every column equals the first column of its fingerprint: checked for all
        # columns at once, without a step per column.
        _, first, group = np.unique(
            np.stack([sums, weighted], axis=1), axis=0, return_index=True, return_inverse=True
        )
        twin = first[np.asarray(group).ravel()]
        # Only the columns that are not their own twin need reading.
        copies = np.flatnonzero(twin != np.arange(n_cols))
        if (matrix[:, copies] == matrix[:, twin[copies]]).all():
            keep = np.unique(twin)
            return matrix[:, keep], np.searchsorted(keep, twin)
    fingerprints = zip(sums.tolist(), weighted.tolist(), strict=True)
    candidates: dict[tuple[float, float], list[int]] = {}
    keep: list[int] = []
    inverse = np.empty(n_cols, dtype=np.intp)
    for j, fingerprint in enumerate(fingerprints):
        same = candidates.setdefault(fingerprint, [])
        if same:
            # Compared with every candidate at once (usually one: the fingerprint rarely lies).
            known = [keep[k] for k in same]
            equal = (matrix[:, known] == matrix[:, j : j + 1]).all(axis=0)
            if equal.any():
                inverse[j] = same[int(np.argmax(equal))]
                continue
        same.append(len(keep))
        inverse[j] = len(keep)
        keep.append(j)
    return matrix[:, keep], inverse


# Resample weights by the generator state they were drawn from: `bootstrap_totals` callers that
# start from the same seed over the same rows draw the same resamples, and drawing them costs more
# than the products. Kept as small integers within a byte budget; a hit leaves the generator where
# drawing would. `ItemResamples` keeps its matrices here too, so the bound covers both.
_WEIGHTS: OrderedDict[tuple, tuple[list[np.ndarray], dict]] = OrderedDict()
_WEIGHTS_BUDGET = 64 * 2**20
_WEIGHTS_LOCK = threading.Lock()


# From this many rows a chunk's resamples are counted one by one (a step per resample costs
# more than it saves on small studies, which simulations draw by the thousand).
_ROW_BY_ROW = 2_048


def _resample_weights(
    rng: np.random.Generator, n_rows: int, n_boot: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(first resample, counts of each row in each resample of the chunk) for `n_boot`
    resamples of `n_rows` rows, in chunks of `_chunk_size(n_rows)`, as drawn from `rng`."""
    state = rng.bit_generator.state
    key = (repr(state), n_rows, n_boot)
    with _WEIGHTS_LOCK:
        hit = _WEIGHTS.get(key)
        if hit is not None:
            _WEIGHTS.move_to_end(key)
    if hit is not None:
        chunks, after = hit
        rng.bit_generator.state = after
        start = 0
        for chunk in chunks:
            yield start, chunk
            start += len(chunk)
        return
    chunks = []
    chunk = _chunk_size(n_rows)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        if n_rows >= _ROW_BY_ROW:
            weights = _counted_row_by_row(rng, n_rows, size)
        else:
            rows = rng.integers(0, n_rows, size=(size, n_rows))
            rows += (np.arange(size) * n_rows)[:, None]
            weights = np.bincount(rows.ravel(), minlength=size * n_rows).reshape(size, n_rows)
            weights = weights.astype(np.min_scalar_type(weights.max()))
        chunks.append(weights)
        yield start, chunks[-1]
    _keep_weights(key, chunks, rng.bit_generator.state)


def _counted_row_by_row(rng: np.random.Generator, n_rows: int, size: int) -> np.ndarray:
    """The counts of `size` resamples of `n_rows` rows, drawn one resample at a time (the
    same draws as one `rng.integers(0, n_rows, size=(size, n_rows))`), in the smallest unsigned
    type that holds the largest count, as the chunked count stores them.

    Each resample's draws and counts fit in the cache and the same small buffers serve every
    resample: a whole chunk's draws (tens of MB) would be fresh memory each time, and the
    kernel's zeroing of fresh pages cost more than the counting."""
    weights = np.empty((size, n_rows), dtype=np.uint8)
    largest = 0
    for k in range(size):
        counts = np.bincount(rng.integers(0, n_rows, size=n_rows), minlength=n_rows)
        top = int(counts.max())
        if top > largest:
            largest = top
            wider = np.min_scalar_type(largest)
            if wider != weights.dtype:
                weights = weights.astype(wider)
        weights[k] = counts
    return weights


def _keep_weights(key: tuple, chunks: list[np.ndarray], after: dict) -> None:
    """Keep drawn resamples under `key`, evicting the least recently used beyond the budget."""
    if sum(c.nbytes for c in chunks) > _WEIGHTS_BUDGET:
        return
    with _WEIGHTS_LOCK:
        _WEIGHTS[key] = (chunks, after)
        while sum(c.nbytes for v in _WEIGHTS.values() for c in v[0]) > _WEIGHTS_BUDGET:
            _WEIGHTS.popitem(last=False)


class ItemResamples:
    """The one cluster bootstrap over items that every figure of a render shares.

    `n_boot` resamples of the `n_items` items of a study (coded 0..n_items - 1 as `encode` codes
    them), drawn once from `numpy.random.default_rng(seed)`: each resample is the count of each
    item in it. A figure over some of the items (a category, one comparison) takes its totals
    from the same resamples restricted to its items: its weights are the counts of its own items
    in each resample, so it needs no draws of its own. Each figure's interval is the interval of
    a bootstrap over items as before (the number of its items in a resample varies a little,
    which a ratio of totals does not feel); figures of one render are correlated through the
    shared draws, which changes no single interval's coverage.

    The draws depend only on (seed, n_items, n_boot), so they are kept in the process-wide
    resample cache (`_WEIGHTS_BUDGET` bytes, least recently used first out) and reused by the
    next render of the same study, or of another study with as many items."""

    def __init__(self, seed: int, n_items: int, n_boot: int) -> None:
        self.seed, self.n_items, self.n_boot = seed, n_items, n_boot
        self._chunks: list[np.ndarray] | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, enc: _Encoded, seed: int, n_boot: int) -> ItemResamples:
        """The resamples of every item of `enc` (a whole encoded study, not a subset)."""
        return cls(seed, int(enc.items.max()) + 1 if len(enc.items) else 0, n_boot)

    def chunks(self) -> list[np.ndarray]:
        """The item counts of every resample, in chunks of `_chunk_size(n_items)` resamples (drawn
        from the seed as `bootstrap_totals` draws rows, so a figure over every item gets the same
        resamples it would get there)."""
        with self._lock:
            if self._chunks is None:
                rng = np.random.default_rng(self.seed)
                self._chunks = [w for _, w in _resample_weights(rng, self.n_items, self.n_boot)]
            return self._chunks

    def totals(self, items: np.ndarray, by_item: np.ndarray) -> np.ndarray:
        """(n_boot, K) column totals of `by_item` (one row per item, item codes `items`, sorted)
        in every resample."""
        n_cols = by_item.shape[1]
        out = np.zeros((self.n_boot, n_cols))
        if len(items) == 0 or n_cols == 0 or self.n_boot == 0:
            return out
        everything = len(items) == self.n_items
        distinct, inverse = _distinct_columns(by_item)
        # float32 is exact for these counts (integers and halves) and halves the product's cost.
        m32 = distinct.astype(np.float32, copy=False)
        start = 0
        with one_blas_thread():
            for chunk in self.chunks():
                weights = chunk if everything else chunk[:, items]
                out[start : start + len(chunk)] = (weights.astype(np.float32) @ m32)[:, inverse]
                start += len(chunk)
        return out

    def totals_of(self, blocks: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """`totals(items, by_item)` of each block, from as few products as the blocks allow.

        The items fall into cells (`_cells`): e.g. one category, held by the whole study's
        blocks and by that category's. Each cell's rows of every block holding any of its items
        (zeros for the items a block lacks, which add nothing) make one product with the cell's
        resample counts, and a block's totals are the sum of its cells'. A column that several
        blocks share over a cell (a category's figure and the same figure of the whole study,
        restricted to that category) is then multiplied once, and the resamples are read once
        per cell instead of once per block. The sums are exact (integers and halves), so they
        add up in any order."""
        out = [np.zeros((self.n_boot, by_item.shape[1])) for _, by_item in blocks]
        if not blocks:
            return out
        universe = np.unique(np.concatenate([np.asarray(items) for items, _ in blocks]))
        held = np.zeros((len(universe), len(blocks)), dtype=bool)
        for b, (items, _) in enumerate(blocks):
            held[np.searchsorted(universe, items), b] = True
        cell_of = _cells(held)
        for cell in range(int(cell_of.max()) + 1 if len(cell_of) else 0):
            in_cell = cell_of == cell
            cell_items = universe[in_cell]
            holders = np.flatnonzero(held[in_cell].any(axis=0))
            # The cell's matrix is built column-major (each block's columns are rows of its
            # transpose, filled in place): finding its equal columns reads it column by column,
            # three to four times faster than across rows.
            edges = np.cumsum([0, *(blocks[b][1].shape[1] for b in holders)])
            columns = np.zeros((edges[-1], len(cell_items)), dtype=np.float32)
            for b, start, stop in zip(holders, edges[:-1], edges[1:], strict=True):
                items, by_item = blocks[b]
                if held[in_cell, b].all():
                    rows = np.searchsorted(items, cell_items)
                    np.take(by_item.T, rows, axis=1, out=columns[start:stop])
                else:
                    present = held[in_cell, b]
                    rows = np.searchsorted(items, cell_items[present])
                    columns[start:stop, present] = by_item.T[:, rows]
            boots = self.totals(cell_items, columns.T)
            for b, start, stop in zip(holders, edges[:-1], edges[1:], strict=True):
                out[b] += boots[:, start:stop]
        return out


# A cell is split in two only when each part keeps this share of its items and at least
# _MIN_CELL of them: a smaller part saves fewer multiplications than its own product costs, so
# the blocks that lack it are padded with zeros instead.
_SPLIT_SHARE = 0.1
_MIN_CELL = 256


def _cells(held: np.ndarray) -> np.ndarray:
    """The cell (0, 1, ...) of each item (row of `held`, items x blocks): items held by the
    same blocks share a cell, except that a block holding almost all of a cell, or only a
    sliver of it, does not split it (see _SPLIT_SHARE)."""
    cell_of = np.zeros(len(held), dtype=np.int64)
    # Block by block (`np.unique(held, axis=0)` sorts whole rows, many times slower).
    for b in range(held.shape[1]):
        sizes = np.bincount(cell_of)
        inside = np.bincount(cell_of, weights=held[:, b], minlength=len(sizes))
        smaller = np.minimum(inside, sizes - inside)
        split = smaller >= np.maximum(_SPLIT_SHARE * sizes, _MIN_CELL)
        if split.any():
            refined = cell_of * 2 + (held[:, b] & split[cell_of])
            cell_of = np.unique(refined, return_inverse=True)[1].ravel()
    return cell_of


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# Two-sided 95% (shown) and one-sided 95% (decided on) normal quantiles.
Z_95 = 1.959963984540054
Z_ONE_SIDED_95 = 1.6448536269514722


def _percentiles(samples: np.ndarray, low: float, high: float) -> tuple[float, float] | None:
    samples = samples[np.isfinite(samples)]
    if len(samples) == 0:
        return None
    lo, hi = np.percentile(samples, [low, high])
    return (float(lo), float(hi))


def _percentile_ci(samples: np.ndarray) -> tuple[float, float] | None:
    return _percentiles(samples, 2.5, 97.5)


@functools.lru_cache(maxsize=4096)  # a quantile costs microseconds; levels and sizes repeat
def _quantile(level: float, units: int) -> float:
    """Student's t quantile on units - 1 degrees of freedom: the variance behind an interval is
    itself estimated from `units` comparisons, which a normal quantile would ignore."""
    if units < 2:
        return float(distributions.t_ppf(level, 1))
    return float(distributions.t_ppf(level, units - 1))


def wilson_interval(share: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval of a share observed over `n` (possibly effective) observations.
    Unlike a percentile bootstrap it never collapses to a point at 0% or 100%."""
    if n <= 0:
        return (0.0, 1.0)
    z2n = z * z / n
    centre = (share + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(share * (1 - share) / n + z2n / (4 * n))
    # At 0% or 100% the interval's own end is exact, not a rounding error away from it.
    low = 0.0 if share <= 0 else max(0.0, centre - half)
    high = 1.0 if share >= 1 else min(1.0, centre + half)
    return (low, high)


def paired_difference_interval(
    a: np.ndarray, b: np.ndarray, z: float = Z_95
) -> tuple[float, tuple[float, float]] | None:
    """The difference of two shares observed on the same units (share of `a` minus share of `b`,
    each a pass/fail per unit) and its interval: Newcombe's hybrid score interval for paired
    proportions (1998, method 10, with his continuity-corrected correlation), built from the
    two shares' Wilson intervals, so like them it never collapses to a point at 0% or 100%.
    None when there are no units."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    n = len(a)
    if n == 0:
        return None
    both, only_a = int((a & b).sum()), int((a & ~b).sum())
    only_b = int((~a & b).sum())
    neither = n - both - only_a - only_b
    p1, p2 = (both + only_a) / n, (both + only_b) / n
    l1, u1 = wilson_interval(p1, n, z)
    l2, u2 = wilson_interval(p2, n, z)
    cross = both * neither - only_a * only_b
    if cross > 0:
        cross = max(cross - n / 2, 0.0)
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = cross / math.sqrt(margins) if margins > 0 else 0.0
    diff = p1 - p2
    below = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    above = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    low = max(-1.0, diff - math.sqrt(max(below, 0.0)))
    high = min(1.0, diff + math.sqrt(max(above, 0.0)))
    return diff, (low, high)


def effective_n(share: float, n: float, units: int, boot_variance: float | None) -> float:
    """How many independent observations a share is worth (Kish's design effect).

    Votes on one comparison, and comparisons of one item, are correlated; the bootstrap over
    items measures the share's real variance, and n / (variance / binomial variance) is the number
    of independent observations with the same variance. It is never more than `n` (a design
    effect below 1 is noise or ties, not extra information), and where the bootstrap cannot tell
    (every outcome the same) no more than the number of comparisons behind the share."""
    binomial = share * (1 - share) / n
    if boot_variance is None or boot_variance <= 0 or binomial <= 0:
        return float(min(n, units))
    return n / max(1.0, boot_variance / binomial)


Statistic = Callable[[np.ndarray], np.ndarray]


def _ratio(num: int, den: int) -> Statistic:
    def stat(t: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return t[..., num] / t[..., den]

    return stat


def _kappa(agree: int, n: int, rows: Sequence[int], cols: Sequence[int], scale: float) -> Statistic:
    """Cohen's kappa from totals: observed agreement and chance agreement from the marginals.

    `rows`/`cols` are the marginal totals per class of the two raters; `scale * n` is the number
    of rated pairs they were counted over.
    """

    def stat(t: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            total = t[..., n] * scale
            observed = t[..., agree] / t[..., n]
            chance = sum(t[..., r] * t[..., c] for r, c in zip(rows, cols, strict=True)) / total**2
            kappa = (observed - chance) / (1.0 - chance)
            # Chance agreement of 1 (one class only) leaves kappa undefined, not infinite.
            return np.where(np.isclose(chance, 1.0), np.nan, kappa)

    return stat


@dataclass(frozen=True)
class _Spec:
    """One registered statistic: a share (Wilson interval with the bootstrap's design effect),
    another function of totals (percentile interval), or the difference of two registered shares
    on the same resamples (a paired, studentized interval: `studentized_difference`)."""

    kind: str  # "share" | "percentile" | "difference"
    n_col: int = -1
    stat: Statistic | None = None
    parts: tuple[int, int] = (-1, -1)
    num_col: int = -1


def studentized_difference(
    value: float,
    variance: float,
    samples: np.ndarray,
    sample_variances: np.ndarray,
    items: int,
    low: float = -1.0,
    high: float = 1.0,
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The 95% interval and the one-sided 95% bounds of a difference from a studentized
    (bootstrap-t) resampling: each resample's difference is standardised by its own linearised
    standard error, t* = (resample - value) / se*, and the bounds are value - q(t*) se at t*'s
    quantiles. Unlike percentiles of the resampled differences, this corrects for the skew of a
    difference that is mostly 0 or a small gain with rare large losses, and for the bootstrap's
    too-narrow spread in small samples. `variance` is the plug-in linearised variance; it is
    scaled by items / (items - 1), as an unbiased variance would be. Bounds are clipped to
    [low, high]. None when the spread is zero (every item says the same), where no interval
    beyond the point can be read from the data."""
    if items < 2 or not variance > 0:
        return None
    se = math.sqrt(variance * items / (items - 1))
    defined = np.isfinite(samples)
    samples, sample_se = samples[defined], np.sqrt(np.maximum(sample_variances[defined], 0.0))
    if len(samples) == 0:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (samples - value) / sample_se
    # A resample with no spread: exactly the estimate is no deviation at all; any other value
    # is a deviation larger than any finite one.
    t = np.where(sample_se > 0, t, np.where(samples == value, 0.0, np.sign(samples - value) * 1e9))
    q025, q05, q95, q975 = np.percentile(t, [2.5, 5.0, 95.0, 97.5])

    def clip(x: float) -> float:
        return float(min(max(x, low), high))

    ci = (clip(value - q975 * se), clip(value - q025 * se))
    bounds = (clip(value - q95 * se), clip(value - q05 * se))
    return ci, bounds


@dataclass(frozen=True)
class _Block:
    """An estimator's columns summed per item (`by_item`, one row per item of `items`, sorted),
    with what its estimates read besides their bootstrap totals."""

    items: np.ndarray
    by_item: np.ndarray
    product_col: dict[tuple[int, int], int]
    # (comparisons, items) counted by each statistic, by the columns it counts the positive
    # rows of (`_Estimator._counted_columns`)
    counted: dict[tuple[int, ...], tuple[int, int]]


class _Estimator:
    """Collects statistics over shared columns, then bootstraps them all at once.

    Rows are comparisons; the resamples draw whole items (a row group per item), since the
    comparisons of one item (fine-tune vs base and vs frontier) are not independent.

    A difference of two shares, Ra - Rb with R = N / D over item totals, is studentized with its
    linearised variance sum_i u_i^2, u_i = (Na_i - Ra Da_i) / Da - (Nb_i - Rb Db_i) / Db. That is
    a quadratic form g' S g in the gradient g = (1/Da, -Ra/Da, -1/Db, Rb/Db) of totals and the
    matrix S of sums over items of products of their totals, so each product of two columns is
    one more bootstrapped column: every resample's variance comes out of the same matrix
    product as its totals.

    `block()` gives the per-item rows to bootstrap and `estimates()` the statistics from their
    totals in each resample, so that the blocks of several estimators (and other figures over
    the same items) share one product (`ItemResamples.totals_of`)."""

    def __init__(self, n_rows: int, items: np.ndarray | None = None) -> None:
        self.columns = _Columns(n_rows)
        self._items = np.arange(n_rows) if items is None else np.asarray(items)
        self._specs: list[_Spec] = []

    def add_ratio(self, num: np.ndarray, den: np.ndarray) -> int:
        n_col = self.columns.add(den)
        num_col = self.columns.add(num)
        self._specs.append(_Spec("share", n_col, _ratio(num_col, n_col), num_col=num_col))
        return len(self._specs) - 1

    def add_kappa(
        self,
        agree: np.ndarray,
        n: np.ndarray,
        rows: Sequence[np.ndarray],
        cols: Sequence[np.ndarray] | None,
        scale: float = 1.0,
    ) -> int:
        """Register a kappa; `cols=None` means both raters share the `rows` marginals."""
        n_col = self.columns.add(n)
        agree_col = self.columns.add(agree)
        row_cols = [self.columns.add(r) for r in rows]
        col_cols = row_cols if cols is None else [self.columns.add(c) for c in cols]
        stat = _kappa(agree_col, n_col, row_cols, col_cols, scale)
        self._specs.append(_Spec("percentile", n_col, stat))
        return len(self._specs) - 1

    def add_difference(self, a: int, b: int) -> int:
        """Share `a` minus share `b` (both already registered with `add_ratio`), paired."""
        if self._specs[a].kind != "share" or self._specs[b].kind != "share":
            raise ValueError("a paired difference is of two shares registered with add_ratio")
        self._specs.append(_Spec("difference", parts=(a, b)))
        return len(self._specs) - 1

    def _slots(self, spec: _Spec) -> tuple[int, int, int, int]:
        """The columns (Na, Da, Nb, Db) of a difference's two shares."""
        a, b = (self._specs[i] for i in spec.parts)
        return a.num_col, a.n_col, b.num_col, b.n_col

    def block(self) -> _Block:
        """The per-item rows to bootstrap: each column's sums per item, then the products of
        columns the differences' variances need."""
        # Rows of one item move together: resample the items' summed rows.
        item_codes, item_rows = np.unique(self._items, return_inverse=True)
        products = sorted(
            {
                (min(i, j), max(i, j))
                for spec in self._specs
                if spec.kind == "difference"
                for i in self._slots(spec)
                for j in self._slots(spec)
            }
        )
        by_item = self.columns.by_item(item_rows, len(item_codes), spare=len(products))
        n_columns = by_item.shape[1] - len(products)
        product_col = {pair: n_columns + k for k, pair in enumerate(products)}
        # Filled column by column (rows of its transpose), in place: it stays column-major.
        rows = by_item.T
        for (i, j), k in product_col.items():
            np.multiply(rows[i], rows[j], out=rows[k])
        counted = {}
        for key in dict.fromkeys(self._counted_columns(spec) for spec in self._specs):
            rows_counted = self._counted(key)
            items_counted = np.bincount(item_rows[rows_counted], minlength=len(item_codes))
            counted[key] = (int(rows_counted.sum()), int(np.count_nonzero(items_counted)))
        self.columns.release()
        return _Block(item_codes, by_item, product_col, counted)

    def estimates(self, block: _Block, boots: np.ndarray) -> list[Estimate]:
        """Every registered statistic with its interval, from `block`'s totals in each resample
        (`boots`, as `ItemResamples.totals` gives them)."""
        n_boot = len(boots)
        # Each statistic reads a few columns of every resample: column-major, each is one run.
        boots = np.asfortranarray(boots)
        product_col = block.product_col
        totals = self.columns.totals()
        all_totals = block.by_item.sum(axis=0, dtype=np.float64)
        values: list[np.ndarray] = []
        estimates: list[Estimate] = []
        for spec in self._specs:
            units, items = block.counted[self._counted_columns(spec)]
            if spec.kind == "difference":
                a, b = spec.parts
                samples = values[a] - values[b]
                values.append(samples)
                value = (
                    None
                    if estimates[a].value is None or estimates[b].value is None
                    else estimates[a].value - estimates[b].value
                )
                n = min(estimates[a].n, estimates[b].n)
                estimates.append(
                    self._difference_estimate(
                        value, n, units, items, samples, spec, product_col, all_totals, boots
                    )
                )
                continue
            samples = spec.stat(boots)
            values.append(samples)
            n = int(round(totals[spec.n_col]))
            value = _finite_or_none(spec.stat(totals)) if n > 0 else None
            if spec.kind == "share" and value is not None:
                estimates.append(self._share_estimate(value, n, units, items, samples, n_boot))
            else:
                estimates.append(self._percentile_estimate(value, n, units, items, samples, n_boot))
        return estimates

    def _counted_columns(self, spec: _Spec) -> tuple[int, ...]:
        """The columns whose positive rows a statistic counts: its denominator's, or for a
        difference both of its parts'."""
        if spec.kind == "difference":
            a, b = (self._specs[i] for i in spec.parts)
            return (a.n_col, b.n_col)
        return (spec.n_col,)

    def _counted(self, columns: tuple[int, ...]) -> np.ndarray:
        """The comparisons contributing to a statistic (`_counted_columns`: positive in each
        of them), as a mask over rows."""
        column = self.columns.column
        mask = column(columns[0]) > 0
        for other in columns[1:]:
            mask &= column(other) > 0
        return mask

    def _linearised_variance(
        self, spec: _Spec, product_col: dict[tuple[int, int], int], totals: np.ndarray
    ) -> np.ndarray:
        """sum_i u_i^2 of a difference (see the class docstring) for each row of `totals`
        (column totals of the item matrix with its product columns)."""
        slots = self._slots(spec)
        na, da, nb, db = (totals[..., c] for c in slots)
        # The (4, 4) products of the slots, read in one indexing step.
        square_cols = np.array(
            [[product_col[(min(i, j), max(i, j))] for j in slots] for i in slots]
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            gradient = np.stack([1 / da, -na / da**2, -1 / db, nb / db**2], axis=-1)
            squares = totals[..., square_cols]
            return np.einsum("...s,...st,...t->...", gradient, squares, gradient)

    def _difference_estimate(
        self,
        value: float | None,
        n: int,
        units: int,
        items: int,
        samples: np.ndarray,
        spec: _Spec,
        product_col: dict[tuple[int, int], int],
        totals: np.ndarray,
        boots: np.ndarray,
    ) -> Estimate:
        n_boot = len(boots)
        if value is None or n_boot == 0:
            return Estimate(value=value, n=n, units=units, items=items)
        interval = studentized_difference(
            value,
            float(self._linearised_variance(spec, product_col, totals)),
            samples,
            self._linearised_variance(spec, product_col, boots),
            items,
        )
        if interval is None:
            return self._percentile_estimate(value, n, units, items, samples, n_boot)
        ci, bounds = interval
        return Estimate(value=value, n=n, ci=ci, units=units, bounds=bounds, items=items)

    @staticmethod
    def _percentile_estimate(
        value: float | None, n: int, units: int, items: int, samples: np.ndarray, n_boot: int
    ) -> Estimate:
        if value is None or n_boot == 0:
            return Estimate(value=value, n=n, units=units, items=items)
        return Estimate(
            value=value,
            n=n,
            ci=_percentile_ci(samples),
            units=units,
            bounds=_percentiles(samples, 5.0, 95.0),
            items=items,
        )

    @staticmethod
    def _share_estimate(
        value: float, n: int, units: int, items: int, samples: np.ndarray, n_boot: int
    ) -> Estimate:
        finite = samples[np.isfinite(samples)] if n_boot else samples[:0]
        variance = float(finite.var()) if len(finite) > 1 else None
        if variance is not None and units > 1:
            # The bootstrap variance of a mean over m units is (m - 1) / m of the unbiased one.
            variance *= units / (units - 1)
        n_eff = effective_n(value, n, units, variance)
        return Estimate(
            value=value,
            n=n,
            ci=wilson_interval(value, n_eff, _quantile(0.975, units)),
            units=units,
            bounds=wilson_interval(value, n_eff, _quantile(0.95, units)),
            items=items,
        )


# ---- statistics without a bootstrap ----


def fleiss_kappa(counts: np.ndarray) -> Estimate:
    """Fleiss' kappa from an (items, classes) table of rating counts.

    Items with fewer than 2 ratings are left out; items may have different numbers of ratings
    (each item's agreement is the share of agreeing rater pairs). n = items used.
    """
    counts = np.asarray(counts, dtype=np.float64)
    per_item = counts.sum(axis=1)
    counts = counts[per_item >= 2]
    per_item = per_item[per_item >= 2]
    if len(counts) == 0:
        return Estimate(None, 0)
    item_agreement = ((counts**2).sum(axis=1) - per_item) / (per_item * (per_item - 1))
    observed = item_agreement.mean()
    shares = counts.sum(axis=0) / per_item.sum()
    chance = (shares**2).sum()
    if np.isclose(chance, 1.0):
        return Estimate(None, len(counts))
    return Estimate(float((observed - chance) / (1 - chance)), len(counts))


def krippendorff_alpha_nominal(counts: np.ndarray) -> Estimate:
    """Krippendorff's alpha for nominal data from an (units, values) table of rating counts.

    Units with fewer than 2 ratings are not pairable and are left out. alpha = 1 - D_o / D_e with
    the coincidence-matrix definitions; n = units used.
    """
    counts = np.asarray(counts, dtype=np.float64)
    per_unit = counts.sum(axis=1)
    counts = counts[per_unit >= 2]
    per_unit = per_unit[per_unit >= 2]
    if len(counts) == 0:
        return Estimate(None, 0)
    matching = (counts * (counts - 1)).sum(axis=1) / (per_unit - 1)
    total = per_unit.sum()
    by_value = counts.sum(axis=0)
    observed_disagreement = 1.0 - matching.sum() / total
    expected_disagreement = 1.0 - (by_value * (by_value - 1)).sum() / (total * (total - 1))
    if np.isclose(expected_disagreement, 0.0):
        return Estimate(None, len(counts))
    return Estimate(float(1.0 - observed_disagreement / expected_disagreement), len(counts))


def _cohen_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Cohen's kappa for a stack of (..., k, k) confusion tables; NaN where undefined."""
    confusion = confusion.astype(np.float64)
    n = confusion.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = np.trace(confusion, axis1=-2, axis2=-1) / n
        chance = (confusion.sum(axis=-1) * confusion.sum(axis=-2)).sum(axis=-1) / n**2
        kappa = (observed - chance) / (1 - chance)
    return np.where(np.isclose(chance, 1.0) | (n == 0), np.nan, kappa)


# Up to this many possible pairs of reviewers, their confusion tables are counted in one array
# indexed by the pair (9 counts each): 16,384 pairs is 128 reviewers, 1.2 MB.
_DENSE_REVIEWER_PAIRS = 16_384


def _reviewer_kappa(enc: _Encoded, min_shared: int) -> list[ReviewerKappa]:
    if len(enc.vote_pair) == 0:
        return []
    # Every ordered pair of votes on one comparison (a self-join on the comparison): the votes
    # sorted by comparison, each repeated once per vote of its comparison, against each of them.
    order = np.argsort(enc.vote_pair, kind="stable")
    pair = enc.vote_pair[order]
    size = np.bincount(pair)[pair]
    start = np.searchsorted(pair, pair)
    left = np.repeat(np.arange(len(pair)), size)
    right = start[left] + np.arange(len(left)) - np.repeat(np.cumsum(size) - size, size)
    left, right = order[left], order[right]
    reviewer_x, reviewer_y = enc.vote_reviewer[left], enc.vote_reviewer[right]
    kept = reviewer_x < reviewer_y
    if not kept.any():
        return []
    key = reviewer_x[kept] * len(enc.reviewers) + reviewer_y[kept]
    cells = enc.vote_label[left[kept]] * 3 + enc.vote_label[right[kept]]
    if len(enc.reviewers) ** 2 <= _DENSE_REVIEWER_PAIRS:
        # Every possible pair of reviewers has its cells: counted without sorting the keys,
        # then the pairs that share a comparison kept (in key order, as sorting gives them).
        confusion = np.bincount(key * 9 + cells, minlength=len(enc.reviewers) ** 2 * 9)
        confusion = confusion.reshape(-1, 3, 3)
        keys = np.flatnonzero(confusion.sum(axis=(1, 2)))
        confusion = confusion[keys]
    else:
        keys, group = np.unique(key, return_inverse=True)
        confusion = np.bincount(group * 9 + cells, minlength=len(keys) * 9)
        confusion = confusion.reshape(len(keys), 3, 3)
    shared = confusion.sum(axis=(1, 2))
    kappas = _cohen_from_confusion(confusion)
    out = []
    for k, n, kappa in zip(keys, shared, kappas, strict=True):
        if n >= min_shared:
            a, b = divmod(int(k), len(enc.reviewers))
            out.append(
                ReviewerKappa(
                    str(enc.reviewers[a]), str(enc.reviewers[b]), _finite_or_none(kappa), int(n)
                )
            )
    return out


def _macro_scores(confusions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Macro precision, recall and F1 of each (3, 3) confusion table in `confusions` (shape
    (..., 3, 3)), over the classes that occur in either labelling of that table.

    Same convention as scikit-learn's `precision_recall_fscore_support(average="macro",
    zero_division=0)` with its default labels, computed from the confusion table for speed.
    """
    hits = np.diagonal(confusions, axis1=-2, axis2=-1).astype(np.float64)
    truth_totals = confusions.sum(axis=-1)
    predicted_totals = confusions.sum(axis=-2)
    present = (truth_totals + predicted_totals) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted_totals > 0, hits / predicted_totals, 0.0)
        recall = np.where(truth_totals > 0, hits / truth_totals, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        classes = present.sum(axis=-1)
        return tuple(  # type: ignore[return-value]
            np.where(classes > 0, (m * present).sum(axis=-1) / classes, np.nan)
            for m in (precision, recall, f1)
        )


def _confusion_block(
    truth: np.ndarray, predicted: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The confusion table's 9 cells (truth * 3 + predicted) counted per item: the block whose
    bootstrap totals `_majority_agreement` reads (items sorted, as `ItemResamples.totals`
    takes them)."""
    item_codes, item_rows = np.unique(items, return_inverse=True)
    by_item = np.bincount(
        item_rows * 9 + truth * 3 + predicted, minlength=9 * len(item_codes)
    ).reshape(len(item_codes), 9)
    return item_codes, by_item.astype(np.float32)


def _majority_agreement(
    truth: np.ndarray,
    predicted: np.ndarray,
    n_items: int,
    boots: np.ndarray,
    accuracy: Estimate,
) -> MajorityAgreement:
    """Accuracy and macro precision/recall/F1 against the majority, over the classes that occur
    in either labelling. `n_items` is the number of the comparisons' items and `boots` the
    totals of their `_confusion_block` in each of the study's shared item resamples;
    `accuracy` is the same share as registered with the study's estimator (for its interval).
    Macro F1's interval is Wilson's at the design effect of its variance over the resamples."""
    cell = truth * 3 + predicted
    confusion = np.bincount(cell, minlength=9).reshape(3, 3)
    n = int(confusion.sum())
    if n == 0:
        return MajorityAgreement(None, None, None, None, 0, confusion.tolist())
    precision, recall, f1 = (float(m) for m in _macro_scores(confusion))
    f1_ci = None
    if len(boots):
        # Like every share: Wilson's interval at the design effect the resamples measure. The
        # resamples' own percentiles covered 0.895 at 30 items x 3 comparisons; this 0.945.
        _, _, boot_f1 = _macro_scores(boots.reshape(-1, 3, 3))
        finite = boot_f1[np.isfinite(boot_f1)]
        variance = float(finite.var(ddof=1)) if len(finite) > 1 else None
        f1_ci = wilson_interval(f1, effective_n(f1, n, n_items, variance))
    return MajorityAgreement(
        accuracy=float(np.trace(confusion) / n),
        macro_precision=precision,
        macro_recall=recall,
        macro_f1=f1,
        n=n,
        confusion=confusion.tolist(),
        accuracy_ci=accuracy.ci,
        macro_f1_ci=f1_ci,
    )


# ---- analysis ----


def _longer_side(len_diff: np.ndarray) -> np.ndarray:
    """X or Y where one output is longer by more than LONGER_MARGIN characters, else -1."""
    return np.where(len_diff > LONGER_MARGIN, X, np.where(len_diff < -LONGER_MARGIN, Y, -1))


def _ceiling_verdict(diff: Estimate, margin: float, min_items: int) -> str:
    if diff.bounds is None or diff.items < min_items:
        return "inconclusive"
    if diff.bounds[0] > -margin:
        return "within"
    if diff.bounds[1] < -margin:
        return "below"
    return "inconclusive"


def _analyse(
    enc: _Encoded,
    resamples: ItemResamples,
    margin: float = CEILING_MARGIN,
    min_items: int = MIN_COMPARISONS,
) -> Analysis:
    blocks, finish = _analysis_parts(enc, margin, min_items)
    return finish(resamples.totals_of(blocks))


# Blocks to bootstrap (items, per-item rows), as `ItemResamples.totals_of` takes them.
_Blocks = list[tuple[np.ndarray, np.ndarray]]
_Figure = TypeVar("_Figure")


def _analysis_parts(
    enc: _Encoded, margin: float, min_items: int
) -> tuple[_Blocks, Callable[[list[np.ndarray]], Analysis]]:
    """The blocks an analysis bootstraps (`ItemResamples.totals_of`), and the function that
    makes the analysis from their totals: apart, so that several analyses share one product."""
    n_pairs = enc.n_pairs
    est = _Estimator(n_pairs, enc.items)
    counts = _human_counts(enc)
    h_x, h_y = counts[:, X], counts[:, Y]
    n_all = counts.sum(axis=1)
    n_decisive = h_x + h_y
    longer = _longer_side(enc.len_diff)
    eligible = longer >= 0

    # Humans: every unordered pair of votes by two reviewers on one comparison. For kappa each
    # unordered pair is counted in both orders, so both "raters" share the marginals h_k * (n - 1).
    pairs_all = n_all * (n_all - 1) / 2
    agree_all = (counts * (counts - 1) / 2).sum(axis=1)
    h_agree_wt = est.add_ratio(agree_all, pairs_all)
    h_kappa_wt = est.add_kappa(
        agree_all, pairs_all, [counts[:, k] * (n_all - 1) for k in range(3)], None, scale=2
    )
    pairs_decisive = n_decisive * (n_decisive - 1) / 2
    agree_decisive = (h_x * (h_x - 1) + h_y * (h_y - 1)) / 2
    h_agree_wot = est.add_ratio(agree_decisive, pairs_decisive)
    h_kappa_wot = est.add_kappa(
        agree_decisive,
        pairs_decisive,
        [h_x * (n_decisive - 1), h_y * (n_decisive - 1)],
        None,
        scale=2,
    )
    known_left = (enc.vote_left >= 0) & (enc.vote_label != TIE)
    left_n = np.bincount(enc.vote_pair[known_left], minlength=n_pairs)
    left_won = np.bincount(
        enc.vote_pair[known_left],
        weights=(enc.vote_label[known_left] == enc.vote_left[known_left]),
        minlength=n_pairs,
    )
    h_p_left = est.add_ratio(left_won, left_n)
    longer_won = np.where(longer == X, h_x, np.where(longer == Y, h_y, 0))
    h_p_longer = est.add_ratio(longer_won, np.where(eligible, n_decisive, 0))
    # Strict: ordered pairs (a decisive vote, another reviewer's vote); a tie never matches.
    h_strict = est.add_ratio(h_x * (h_x - 1) + h_y * (h_y - 1), n_decisive * (n_all - 1))

    majority = _majority(counts)
    judge_specs = []
    judge_codes = []
    for code in range(len(enc.judges)):
        jc = _judge_codes(enc, code)
        if jc.n_verdicts == 0:
            continue
        judge_codes.append((code, jc))
        c = jc.combined
        judged = c >= 0
        c_safe = np.where(judged, c, 0)
        agree = np.where(judged, counts[np.arange(n_pairs), c_safe], 0)
        n_wt = np.where(judged, n_all, 0)
        spec = {
            "agree_wt": est.add_ratio(agree, n_wt),
            "kappa_wt": est.add_kappa(
                agree,
                n_wt,
                [n_wt * (c == k) for k in range(3)],
                [np.where(judged, counts[:, k], 0) for k in range(3)],
            ),
        }
        decisive = judged & (c != TIE)
        agree_d = np.where(decisive, agree, 0)
        n_wot = np.where(decisive, n_decisive, 0)
        spec["agree_wot"] = est.add_ratio(agree_d, n_wot)
        spec["kappa_wot"] = est.add_kappa(
            agree_d,
            n_wot,
            [n_wot * (c == k) for k in (X, Y)],
            [np.where(decisive, counts[:, k], 0) for k in (X, Y)],
        )
        both = (jc.first_x >= 0) & (jc.first_y >= 0)
        spec["consistency"] = est.add_ratio(both & (jc.first_x == jc.first_y), both)
        non_tie = jc.single_non_tie
        spec["p_first"] = est.add_ratio(
            np.bincount(
                jc.single_pair[non_tie], weights=jc.single_won_first[non_tie], minlength=n_pairs
            ),
            np.bincount(jc.single_pair[non_tie], minlength=n_pairs),
        )
        spec["p_longer"] = est.add_ratio(decisive & eligible & (c == longer), decisive & eligible)
        spec["verbosity_gap"] = est.add_difference(spec["p_longer"], h_p_longer)
        # Every decisive vote on a comparison the judge answered: only a decisive, matching
        # combined verdict agrees (a tie, an inconsistent pair or an unparsed answer does not).
        answered = jc.seen & (n_decisive > 0)
        spec["agree_strict"] = est.add_ratio(agree_d, np.where(answered, n_decisive, 0))
        spec["decisive"] = est.add_ratio(jc.seen & (n_all > 0) & decisive, jc.seen & (n_all > 0))
        both_known = (majority >= 0) & judged
        spec["vs_majority"] = est.add_ratio(both_known & (majority == c), both_known)
        spec["vs_ceiling"] = est.add_difference(spec["agree_strict"], h_strict)
        judge_specs.append(spec)
    strict_vs = {
        (a, b): est.add_difference(spec_a["agree_strict"], spec_b["agree_strict"])
        for a, spec_a in enumerate(judge_specs)
        for b, spec_b in enumerate(judge_specs)
        if a != b
    }

    # Each judge's confusion with the majority, per item, bootstrapped on the same product as
    # every other figure of the analysis.
    confusions = []
    for _code, jc in judge_codes:
        both_known = (majority >= 0) & (jc.combined >= 0)
        confusions.append(
            (
                both_known,
                _confusion_block(
                    majority[both_known], jc.combined[both_known], enc.items[both_known]
                ),
            )
        )
    block = est.block()
    blocks = [(block.items, block.by_item), *(c for _, c in confusions)]

    def finish(totals: list[np.ndarray]) -> Analysis:
        boots, *confusion_boots = totals
        estimates = est.estimates(block, boots)
        # Fleiss' kappa and Krippendorff's alpha use the comparisons with at least two votes.
        rated_items = len(np.unique(enc.items[n_all >= 2]))

        humans = HumanStats(
            n_votes=len(enc.vote_pair),
            n_both_bad=int(enc.vote_both_bad.sum()),
            n_reviewers=len(np.unique(enc.vote_reviewer)),
            agreement_with_ties=estimates[h_agree_wt],
            agreement_without_ties=estimates[h_agree_wot],
            kappa_with_ties=estimates[h_kappa_wt],
            kappa_without_ties=estimates[h_kappa_wot],
            fleiss_kappa=replace(fleiss_kappa(counts), items=rated_items),
            krippendorff_alpha=replace(krippendorff_alpha_nominal(counts), items=rated_items),
            reviewer_kappa=_reviewer_kappa(enc, MIN_SHARED_FOR_REVIEWER_KAPPA),
            p_left=estimates[h_p_left],
            p_longer=estimates[h_p_longer],
            agreement_strict=estimates[h_strict],
        )

        judges = []
        for a, ((code, jc), spec) in enumerate(zip(judge_codes, judge_specs, strict=True)):
            both_known, (confusion_items, _) = confusions[a]
            vs_ceiling = estimates[spec["vs_ceiling"]]
            judges.append(
                JudgeStats(
                    judge=enc.judges[code],
                    n_verdicts=jc.n_verdicts,
                    n_unparsed=jc.n_unparsed,
                    n_combined=int((jc.combined >= 0).sum()),
                    n_inconsistent=int(jc.inconsistent.sum()),
                    agreement_with_ties=estimates[spec["agree_wt"]],
                    agreement_without_ties=estimates[spec["agree_wot"]],
                    kappa_with_ties=estimates[spec["kappa_wt"]],
                    kappa_without_ties=estimates[spec["kappa_wot"]],
                    vs_majority=_majority_agreement(
                        majority[both_known],
                        jc.combined[both_known],
                        len(confusion_items),
                        confusion_boots[a],
                        estimates[spec["vs_majority"]],
                    ),
                    consistency=estimates[spec["consistency"]] if jc.has_single_order else None,
                    p_first=estimates[spec["p_first"]] if jc.has_single_order else None,
                    p_longer=estimates[spec["p_longer"]],
                    cost_total=jc.cost_total,
                    cost_per_1000=(
                        None if jc.cost_total is None else 1000 * jc.cost_total / jc.n_verdicts
                    ),
                    mean_latency_ms=jc.mean_latency_ms,
                    agreement_strict=estimates[spec["agree_strict"]],
                    decisive_share=estimates[spec["decisive"]],
                    vs_ceiling=CeilingVerdict(
                        vs_ceiling, margin, _ceiling_verdict(vs_ceiling, margin, min_items)
                    ),
                    verbosity_gap=estimates[spec["verbosity_gap"]],
                    strict_vs={
                        enc.judges[judge_codes[b][0]]: estimates[index]
                        for (first, b), index in strict_vs.items()
                        if first == a
                    },
                )
            )
        return Analysis(
            n_comparisons=n_pairs, n_votes=len(enc.vote_pair), humans=humans, judges=judges
        )

    return blocks, finish


def calibrate(
    pairs: pd.DataFrame,
    votes: pd.DataFrame,
    verdicts: pd.DataFrame,
    seed: int = 0,
    n_boot: int = 1000,
    judge_order: Sequence[str] = (),
    margin: float = CEILING_MARGIN,
    min_items: int = MIN_COMPARISONS,
) -> Calibration:
    """Every statistic of DESIGN section 5, for the whole study and for each category. Judges
    are listed in `judge_order` (any others after it, by name). `margin` and `min_items`
    decide each judge's verdict against the human ceiling."""
    enc = encode(pairs, votes, verdicts, judge_order)
    return calibrate_of(enc, seed, n_boot, margin, min_items)


def calibrate_of(
    enc: _Encoded,
    seed: int = 0,
    n_boot: int = 1000,
    margin: float = CEILING_MARGIN,
    min_items: int = MIN_COMPARISONS,
) -> Calibration:
    """`calibrate` of a study already encoded (`encode`)."""
    return _calibrate(
        enc, _by_category(enc), ItemResamples.of(enc, seed, n_boot), margin, min_items
    )


def _by_category(enc: _Encoded) -> dict[str, _Encoded]:
    return {
        category: enc.subset(enc.categories == category) for category in sorted(set(enc.categories))
    }


def _calibrate(
    enc: _Encoded,
    categories: dict[str, _Encoded],
    resamples: ItemResamples,
    margin: float,
    min_items: int,
) -> Calibration:
    options = {"margin": margin, "min_items": min_items}
    overall = _analyse(enc, resamples, **options)
    by_category = {
        category: _analyse(subset, resamples, **options) for category, subset in categories.items()
    }
    return Calibration(overall=overall, by_category=by_category)


def study_figures(
    pairs: pd.DataFrame,
    votes: pd.DataFrame,
    verdicts: pd.DataFrame,
    comparisons: Sequence[tuple[str, str]] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    judge_order: Sequence[str] = (),
    margin: float = CEILING_MARGIN,
    min_items: int = MIN_COMPARISONS,
) -> tuple[Calibration, list[WinRate], dict[str, list[WinRate]]]:
    """`calibrate`, `win_rates` and `category_win_rates` of the same frames, the same figures
    each gives on its own, with the frames encoded and split by category once."""
    enc = encode(pairs, votes, verdicts, judge_order)
    return study_figures_of(enc, comparisons, seed, n_boot, margin, min_items)


def study_figures_of(
    enc: _Encoded,
    comparisons: Sequence[tuple[str, str]] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    margin: float = CEILING_MARGIN,
    min_items: int = MIN_COMPARISONS,
) -> tuple[Calibration, list[WinRate], dict[str, list[WinRate]]]:
    """`study_figures` of a study already encoded (`encode`)."""
    categories = _by_category(enc)
    # Every figure's blocks first, then their totals from one `totals_of`: a category's figures
    # and the study's, restricted to that category, share its product.
    parts = [_analysis_parts(enc, margin, min_items)]
    parts += [_analysis_parts(sub, margin, min_items) for sub in categories.values()]
    parts += _win_rate_parts_of(enc, categories, comparisons)
    figures = _finished(parts, ItemResamples.of(enc, seed, n_boot))
    n = len(categories)
    overall, by_category = figures[0], dict(zip(categories, figures[1 : 1 + n], strict=True))
    category_rates = dict(zip(categories, figures[2 + n :], strict=True))
    return Calibration(overall=overall, by_category=by_category), figures[1 + n], category_rates


def gate_figures_of(
    enc: _Encoded,
    comparisons: Sequence[tuple[str, str]] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    margin: float = CEILING_MARGIN,
    min_items: int = MIN_COMPARISONS,
) -> tuple[Analysis, list[WinRate], dict[str, list[WinRate]]]:
    """What the gate reads, from one product: the study's overall analysis and its win rates
    overall and per category. That is `study_figures_of` without each category's own analysis
    (`category_analyses_of`), which only the calibration screen and `stats` show; every figure
    is the same, on the same resamples (their totals are exact sums). Both parts apart cost more
    than `study_figures_of` at once (two products, the split by category twice)."""
    categories = _by_category(enc)
    parts = [_analysis_parts(enc, margin, min_items)]
    parts += _win_rate_parts_of(enc, categories, comparisons)
    overall, rates, *category_rates = _finished(parts, ItemResamples.of(enc, seed, n_boot))
    return overall, rates, dict(zip(categories, category_rates, strict=True))


def category_analyses_of(
    enc: _Encoded,
    seed: int = 0,
    n_boot: int = 1000,
    margin: float = CEILING_MARGIN,
    min_items: int = MIN_COMPARISONS,
) -> dict[str, Analysis]:
    """Each category's analysis: the part of `study_figures_of` that `gate_figures_of` leaves
    out, the same figures on the same resamples."""
    categories = _by_category(enc)
    parts = [_analysis_parts(sub, margin, min_items) for sub in categories.values()]
    return dict(zip(categories, _finished(parts, ItemResamples.of(enc, seed, n_boot)), strict=True))


def _win_rate_parts_of(
    enc: _Encoded,
    categories: dict[str, _Encoded],
    comparisons: Sequence[tuple[str, str]] | None,
) -> list[tuple[_Blocks, Callable[[list[np.ndarray]], list[WinRate]]]]:
    """The win rates' parts: the study's, then each category's."""
    parts = [_win_rate_parts(enc, comparisons)]
    parts += [_win_rate_parts(sub, _present(sub, comparisons)) for sub in categories.values()]
    return parts


def _finished(
    parts: Sequence[tuple[_Blocks, Callable[[list[np.ndarray]], _Figure]]],
    resamples: ItemResamples,
) -> list[_Figure]:
    """Each part's figures, from one product of every part's blocks (`totals_of`)."""
    totals = resamples.totals_of([b for blocks, _ in parts for b in blocks])
    figures = []
    start = 0
    for blocks, finish in parts:
        figures.append(finish(totals[start : start + len(blocks)]))
        start += len(blocks)
    return figures


def analysis_of(
    enc: _Encoded,
    seed: int = 0,
    n_boot: int = 1000,
    margin: float = CEILING_MARGIN,
    min_items: int = MIN_COMPARISONS,
) -> Analysis:
    """The overall analysis of a study already encoded (`encode`), as `calibrate_of` gives it."""
    return _analyse(enc, ItemResamples.of(enc, seed, n_boot), margin, min_items)


def analyse(
    pairs: pd.DataFrame,
    votes: pd.DataFrame,
    verdicts: pd.DataFrame,
    seed: int = 0,
    n_boot: int = 1000,
    judge_order: Sequence[str] = (),
) -> Analysis:
    """Every statistic of DESIGN section 5 over all comparisons in `pairs` (no category split)."""
    enc = encode(pairs, votes, verdicts, judge_order)
    return _analyse(enc, ItemResamples.of(enc, seed, n_boot))


def study_report(
    pairs: pd.DataFrame,
    votes: pd.DataFrame,
    verdicts: pd.DataFrame,
    seed: int = 0,
    n_boot: int = 1000,
    judge_order: Sequence[str] = (),
) -> dict:
    """The `review-app stats --json` document of DESIGN section 5 (JSON-ready, None for n = 0)."""
    return calibrate(pairs, votes, verdicts, seed, n_boot, judge_order).to_json()


# ---- per-comparison views ----


def combine_verdicts(pairs: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """One row per (judge, comparison) with at least one verdict.

    Columns: judge, pair_id, outcome ('x'|'y'|'tie', None when every verdict was unparsed),
    inconsistent (the orders disagreed), outcome_first_x / outcome_first_y (each order's parsed
    outcome or None), n_unparsed.
    """
    empty_votes = pd.DataFrame(columns=["pair_id", "reviewer", "outcome", "shown_left"])
    enc = encode(pairs, empty_votes, verdicts)
    names = np.array([*LABELS, None], dtype=object)  # index -1 -> None
    frames = []
    for code, judge in enumerate(enc.judges):
        jc = _judge_codes(enc, code)
        rows = enc.verdict_judge == code
        seen = np.bincount(enc.verdict_pair[rows], minlength=enc.n_pairs) > 0
        unparsed = np.bincount(
            enc.verdict_pair[rows], weights=enc.verdict_outcome[rows] < 0, minlength=enc.n_pairs
        )
        frames.append(
            pd.DataFrame(
                {
                    "judge": judge,
                    "pair_id": enc.pair_ids[seen],
                    # object dtype keeps None for "no verdict" (a str column would hold NaN).
                    "outcome": pd.Series(names[jc.combined[seen]], dtype=object),
                    "inconsistent": jc.inconsistent[seen],
                    "outcome_first_x": pd.Series(names[jc.first_x[seen]], dtype=object),
                    "outcome_first_y": pd.Series(names[jc.first_y[seen]], dtype=object),
                    "n_unparsed": unparsed[seen].astype(int),
                }
            )
        )
    columns = [
        "judge",
        "pair_id",
        "outcome",
        "inconsistent",
        "outcome_first_x",
        "outcome_first_y",
        "n_unparsed",
    ]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def favouring_judges(pairs: pd.DataFrame, verdicts: pd.DataFrame, share: float) -> list[str]:
    """The judges (by name) whose combined verdicts name one system on more than `share` of the
    comparisons with a combined verdict that system is in."""
    empty_votes = pd.DataFrame(columns=["pair_id", "reviewer", "outcome", "shown_left"])
    return favouring_judges_of(encode(pairs, empty_votes, verdicts), share)


def favouring_judges_of(enc: _Encoded, share: float) -> list[str]:
    """`favouring_judges` of a study already encoded (`encode`; its votes are not read)."""
    system_codes, systems = pd.factorize(enc.systems.ravel())
    system_codes = system_codes.reshape(-1, 2)
    out = []
    for code, judge in enumerate(enc.judges):
        combined = _judge_codes(enc, code).combined
        sides = system_codes[combined >= 0]
        outcome = combined[combined >= 0]
        involved = np.bincount(sides.ravel(), minlength=len(systems))
        named = outcome < TIE
        wins = np.bincount(sides[named, outcome[named]], minlength=len(systems))
        with np.errstate(divide="ignore", invalid="ignore"):
            shares = wins / involved
        if (shares[involved > 0] > share).any():
            out.append(str(judge))
    return sorted(out)


def majority_labels(pairs: pd.DataFrame, votes: pd.DataFrame) -> pd.Series:
    """The human majority label ('x'|'y'|'tie') per pair_id, for comparisons with any vote."""
    empty = pd.DataFrame(columns=["pair_id", "judge", "outcome", "first", "cost", "latency_ms"])
    return majority_labels_of(encode(pairs, votes, empty))


def majority_labels_of(enc: _Encoded) -> pd.Series:
    """`majority_labels` of a study already encoded (its verdicts play no part)."""
    majority = _majority(_human_counts(enc))
    voted = majority >= 0
    return pd.Series(
        np.array(LABELS, dtype=object)[majority[voted]],
        index=pd.Index(enc.pair_ids[voted], name="pair_id"),
        name="majority",
    )


# ---- win rates ----


def _comparisons_of(enc: _Encoded) -> list[tuple[str, str]]:
    """The (system_x, system_y) of the comparisons, in order of first appearance."""
    x, y = (map(str, column) for column in enc.systems.T)
    return list(dict.fromkeys(zip(x, y, strict=True)))


def _win_rates(
    enc: _Encoded,
    comparisons: Sequence[tuple[str, str]] | None,
    resamples: ItemResamples,
) -> list[WinRate]:
    blocks, finish = _win_rate_parts(enc, comparisons)
    return finish(resamples.totals_of(blocks))


def _win_rate_parts(
    enc: _Encoded, comparisons: Sequence[tuple[str, str]] | None
) -> tuple[_Blocks, Callable[[list[np.ndarray]], list[WinRate]]]:
    """The blocks the win rates bootstrap, and the function that makes them from their totals
    (as `_analysis_parts`)."""
    # Every comparison's estimator first, then their intervals from one product. A comparison's
    # rows are the study's restricted to it: its votes' counts and each judge's combined verdict
    # depend on its own votes and verdicts only.
    figures = []
    all_counts = _human_counts(enc)
    for system_a, system_b in comparisons if comparisons is not None else _comparisons_of(enc):
        forward = (enc.systems[:, 0] == system_a) & (enc.systems[:, 1] == system_b)
        backward = (enc.systems[:, 0] == system_b) & (enc.systems[:, 1] == system_a)
        chosen = forward | backward
        a_side = X if system_a < system_b else Y
        counts = all_counts[chosen]
        est = _Estimator(len(counts), enc.items[chosen])
        sources: list[tuple[str, np.ndarray]] = [(HUMANS, counts)]
        both_bad = {HUMANS: int(enc.vote_both_bad[chosen[enc.vote_pair]].sum())}
        for code, judge in enumerate(enc.judges):
            reduced = _judge_codes(enc, code)
            if not reduced.seen[chosen].any():
                continue
            combined = reduced.combined[chosen]
            judge_counts = np.stack([combined == k for k in range(3)], axis=1).astype(np.int64)
            sources.append((judge, judge_counts))
        specs = []
        for _source, c in sources:
            score = c[:, a_side] + 0.5 * c[:, TIE]
            specs.append(est.add_ratio(score, c.sum(axis=1)))
        figures.append((system_a, system_b, a_side, sources, both_bad, specs, est, est.block()))
    blocks = [(block.items, block.by_item) for *_, block in figures]

    def finish(boots: list[np.ndarray]) -> list[WinRate]:
        out = []
        for (system_a, system_b, a_side, sources, both_bad, specs, est, block), totals in zip(
            figures, boots, strict=True
        ):
            estimates = est.estimates(block, totals)
            for (source, c), spec in zip(sources, specs, strict=True):
                e = estimates[spec]
                out.append(
                    WinRate(
                        system_a=system_a,
                        system_b=system_b,
                        source=source,
                        value=e.value,
                        ci=e.ci,
                        n=e.n,
                        wins=int(c[:, a_side].sum()),
                        ties=int(c[:, TIE].sum()),
                        losses=int(c[:, 1 - a_side].sum()),
                        both_bad=both_bad.get(source, 0),
                        n_comparisons=e.units,
                        bounds=e.bounds,
                        n_items=e.items,
                    )
                )
        return out

    return blocks, finish


def win_rates(
    pairs: pd.DataFrame,
    votes: pd.DataFrame,
    verdicts: pd.DataFrame,
    comparisons: Sequence[tuple[str, str]] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    judge_order: Sequence[str] = (),
) -> list[WinRate]:
    """Win rate of system_a over system_b for each comparison, from humans and from each judge.

    `comparisons` orients each one, e.g. [("finetuned", "base")]; by default every (system_x,
    system_y) found in `pairs`, in canonical order.
    """
    enc = encode(pairs, votes, verdicts, judge_order)
    return _win_rates(enc, comparisons, ItemResamples.of(enc, seed, n_boot))


def win_rates_of(
    enc: _Encoded,
    comparisons: Sequence[tuple[str, str]] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
) -> tuple[list[WinRate], dict[str, list[WinRate]]]:
    """`win_rates` and `category_win_rates` of a study already encoded (`encode`)."""
    resamples = ItemResamples.of(enc, seed, n_boot)
    return (
        _win_rates(enc, comparisons, resamples),
        _category_win_rates(_by_category(enc), comparisons, resamples),
    )


def category_win_rates(
    pairs: pd.DataFrame,
    votes: pd.DataFrame,
    verdicts: pd.DataFrame,
    comparisons: Sequence[tuple[str, str]] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    judge_order: Sequence[str] = (),
) -> dict[str, list[WinRate]]:
    """`win_rates` within each category (comparisons with no pair in a category are omitted)."""
    enc = encode(pairs, votes, verdicts, judge_order)
    resamples = ItemResamples.of(enc, seed, n_boot)
    return _category_win_rates(_by_category(enc), comparisons, resamples)


def _category_win_rates(
    categories: dict[str, _Encoded],
    comparisons: Sequence[tuple[str, str]] | None,
    resamples: ItemResamples,
) -> dict[str, list[WinRate]]:
    return {
        category: _win_rates(sub, _present(sub, comparisons), resamples)
        for category, sub in categories.items()
    }


def _present(enc: _Encoded, comparisons: Sequence[tuple[str, str]] | None) -> list[tuple[str, str]]:
    """`comparisons` (by default every one of `enc`) that have a pair in `enc`."""
    present = set(_comparisons_of(enc))
    return [
        (a, b)
        for a, b in (comparisons if comparisons is not None else _comparisons_of(enc))
        if (a, b) in present or (b, a) in present
    ]


# The columns of a verdicts frame (`store.frames.verdicts_frame`), as computed baselines produce them.
VERDICT_COLUMNS: list[str] = [
    "verdict_id",
    "run_id",
    "judge",
    "pair_id",
    "first_system",
    "first",
    "winner",
    "outcome",
    "explanation",
    "raw_text",
    "parse_error",
    "cost",
    "latency_ms",
    "tokens_in",
    "tokens_out",
]


# ---- plain-language helpers ----


def _fmt(estimate: Estimate) -> str:
    if estimate.value is None:
        return f"n/a (n={estimate.n})"
    if estimate.ci is None:
        return f"{estimate.value:.2f} (n={estimate.n})"
    lo, hi = estimate.ci
    return f"{estimate.value:.2f} [{lo:.2f}, {hi:.2f}] (n={estimate.n})"


def format_estimate(estimate: Estimate) -> str:
    """An estimate as one phrase: value, 95% CI and n ("0.71 [0.62, 0.79] (n=140)")."""
    return _fmt(estimate)


def assess_judge(judge: JudgeStats, humans: HumanStats, reference: str | None) -> Assessment:
    """Whether `judge` can stand in for the reviewers: its one calibration verdict against the
    human ceiling (`vs_ceiling`, strict agreement, paired) and whether it beats the reference
    baseline `reference` (its strict agreement minus the reference's, paired, above zero at the
    one-sided 95% bound). Abstaining (ties, inconsistent orders, unparsed answers) cannot help.
    """
    ceiling = judge.vs_ceiling
    diff = ceiling.diff
    if judge.agreement_strict.value is None:
        return Assessment(
            False,
            "cannot tell: no comparison has both a decisive human vote and this judge's answer",
        )
    if humans.agreement_strict.value is None:
        return Assessment(
            False,
            "cannot tell: no comparison has a decisive vote and a second reviewer's vote, so "
            "there is no human ceiling to compare with",
        )
    gap = (
        f"strict agreement {_fmt(judge.agreement_strict)} vs humans {_fmt(humans.agreement_strict)}"
    )
    problems = []
    if ceiling.verdict == "below":
        problems.append(f"below the human ceiling by more than {ceiling.margin:.2f}: {gap}")
    elif ceiling.verdict == "inconclusive":
        problems.append(
            f"not yet shown within the human ceiling (margin {ceiling.margin:.2f}, "
            f"{diff.units} comparisons): {gap}"
        )
    ahead = ""
    if reference is not None and reference != judge.judge:
        versus = judge.strict_vs.get(reference)
        if versus is None or versus.value is None or versus.bounds is None:
            problems.append(f"cannot compare with {reference}: no shared comparisons")
        elif versus.bounds[0] > 0:
            ahead = f"; ahead of {reference} by {versus.value:+.2f}"
        elif versus.bounds[1] <= 0:
            problems.append(f"not ahead of {reference}: {versus.value:+.2f} strict agreement")
        else:
            problems.append(f"not yet shown ahead of {reference}: {versus.value:+.2f}")
    elif reference is None:
        problems.append("no reference baseline verdicts to compare with")
    if problems:
        return Assessment(False, "; ".join(problems))
    return Assessment(True, f"within the human ceiling: {gap}{ahead}")


def votes_needed(estimate: Estimate, target_width: float) -> int:
    """How many more observations would bring a proportion's 95% CI under `target_width`.

    Takes the larger of two projections: the observed bootstrap CI shrinking as 1/sqrt(n), and
    the Agresti-Coull binomial width 2 * 1.96 * sqrt(p(1 - p) / (n + 4)) with p = (k + 2) /
    (n + 4). The second keeps a tiny sample whose bootstrap CI collapsed to one point (3 votes
    out of 3 agree: CI [1, 1]) from looking precise. Returns 0 when the CI is narrow enough.
    """
    if target_width <= 0:
        raise ValueError("target_width must be positive")
    needed = 0.0
    if estimate.ci is not None and estimate.n > 0:
        width = estimate.ci[1] - estimate.ci[0]
        needed = estimate.n * (width / target_width) ** 2
    share = 0.5 if estimate.value is None else estimate.value
    adjusted = (share * estimate.n + 2) / (estimate.n + 4)
    needed = max(needed, (2 * 1.96 / target_width) ** 2 * adjusted * (1 - adjusted) - 4)
    return max(0, math.ceil(needed - 1e-9) - estimate.n)


def small_n_warnings(
    analysis: Analysis, target_width: float = 0.2, skip: Collection[str] = ()
) -> list[str]:
    """Plain-language warnings for agreements too uncertain to read, with the data still needed.

    An agreement is flagged when `votes_needed` says its 95% CI is (or would honestly be) wider
    than `target_width`. Covers the human ceiling and every judge not in `skip`.
    """
    checks: list[tuple[str, Estimate, str]] = [
        (
            "human-human agreement without ties",
            analysis.humans.agreement_without_ties,
            "pairs of decisive votes by two reviewers on one comparison",
        )
    ]
    for judge in analysis.judges:
        if judge.judge in skip:
            continue
        checks.append(
            (
                f"{judge.judge} agreement without ties",
                judge.agreement_without_ties,
                "decisive votes on comparisons the judge decided",
            )
        )
    warnings = []
    for name, estimate, unit in checks:
        more = votes_needed(estimate, target_width)
        if not more:
            continue
        if estimate.n == 0:
            warnings.append(f"{name}: no data yet; about {more} {unit} are needed")
        else:
            warnings.append(
                f"{name}: {_fmt(estimate)} is too uncertain to read; about {more} more {unit} "
                f"would narrow its CI under {target_width:.2f}"
            )
    return warnings


# ---- rubric iteration, self-preference and juries ----

_SCORE_OF_X = np.array([1.0, 0.0, 0.5])  # x, y, tie as a score for system x


def _ratio_difference(
    items: np.ndarray,
    columns: Sequence[np.ndarray],
    statistic: Callable[[np.ndarray], np.ndarray],
    seed: int,
    n_boot: int,
    n: int,
) -> Estimate:
    """`statistic` of per-comparison column totals, with a 95% percentile CI from resampling whole
    items (every comparison of an item together: a paired, clustered bootstrap)."""
    matrix = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    if len(matrix) == 0:
        return Estimate(None, 0)
    _, item_codes = np.unique(np.asarray(items, dtype=object).astype(str), return_inverse=True)
    by_item = np.zeros((int(item_codes.max()) + 1, matrix.shape[1]))
    np.add.at(by_item, item_codes, matrix)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = statistic(by_item.sum(axis=0)[None, :])[0]
        samples = statistic(bootstrap_totals(by_item, np.random.default_rng(seed), n_boot))
    return Estimate(
        _finite_or_none(value),
        n,
        _percentile_ci(samples) if n_boot else None,
        units=len(matrix),
        bounds=_percentiles(samples, 5.0, 95.0) if n_boot else None,
        items=len(by_item),
    )


@dataclass(frozen=True)
class RubricComparison:
    """Two judges (rubric versions) on the same comparisons: each one's agreement with the human
    votes (ties counted), the difference b - a with a paired CI, and the comparisons whose
    combined verdict changed (`pair_id, outcome_a, outcome_b`)."""

    judge_a: str
    judge_b: str
    agreement_a: Estimate
    agreement_b: Estimate
    difference: Estimate
    changed: pd.DataFrame


def compare_judges(
    pairs: pd.DataFrame,
    votes: pd.DataFrame,
    verdicts: pd.DataFrame,
    judge_a: str,
    judge_b: str,
    seed: int = 0,
    n_boot: int = 1000,
) -> RubricComparison:
    """Agreement of `judge_a` and `judge_b` with the humans over the comparisons both judged
    (parsed combined verdicts) that have votes: one (vote, verdict) pair per vote, ties counted,
    `both_bad` as a tie. The difference's CI resamples items, each with both judges' verdicts."""
    combined = combine_verdicts(pairs, verdicts[verdicts["judge"].isin([judge_a, judge_b])])
    combined = combined[combined["outcome"].notna()]
    wide = combined.pivot(index="pair_id", columns="judge", values="outcome")
    for judge in (judge_a, judge_b):
        if judge not in wide.columns:
            wide[judge] = None
    wide = wide[wide[judge_a].notna() & wide[judge_b].notna()]
    changed = pd.DataFrame(
        {
            "pair_id": wide.index[wide[judge_a] != wide[judge_b]].to_numpy(),
            "outcome_a": wide.loc[wide[judge_a] != wide[judge_b], judge_a].to_numpy(dtype=object),
            "outcome_b": wide.loc[wide[judge_a] != wide[judge_b], judge_b].to_numpy(dtype=object),
        }
    )
    labels = votes["outcome"].replace("both_bad", "tie")
    joined = pd.DataFrame({"pair_id": votes["pair_id"], "label": labels}).join(
        wide, on="pair_id", how="inner"
    )
    joined = joined[joined["label"].isin(LABELS)]
    item_of = pairs.set_index("pair_id")["item_key"]
    per_pair = pd.DataFrame(
        {
            "n": joined.groupby("pair_id").size(),
            "a": (joined["label"] == joined[judge_a]).groupby(joined["pair_id"]).sum(),
            "b": (joined["label"] == joined[judge_b]).groupby(joined["pair_id"]).sum(),
        }
    ).fillna(0)
    items = item_of.reindex(per_pair.index).to_numpy(dtype=object)
    n_votes = int(per_pair["n"].sum())
    columns = (per_pair["a"].to_numpy(), per_pair["b"].to_numpy(), per_pair["n"].to_numpy())
    estimates = [
        _ratio_difference(items, columns, stat, seed, n_boot, n_votes)
        for stat in (
            lambda t: t[:, 0] / t[:, 2],
            lambda t: t[:, 1] / t[:, 2],
            lambda t: (t[:, 1] - t[:, 0]) / t[:, 2],
        )
    ]
    return RubricComparison(judge_a, judge_b, *estimates, changed)


@dataclass(frozen=True)
class SelfPreference:
    """A judge's win rate for `system` minus the humans' on the same comparisons (each
    comparison weighted once: the judge's combined verdict against the mean of its votes), with
    a paired 95% CI; `flagged` when the CI excludes 0."""

    judge: str
    system: str
    judge_win_rate: float | None
    human_win_rate: float | None
    shift: Estimate

    @property
    def flagged(self) -> bool:
        ci = self.shift.ci
        return ci is not None and (ci[0] > 0 or ci[1] < 0)

    def to_json(self) -> dict:
        return {
            "judge": self.judge,
            "system": self.system,
            "judge_win_rate": self.judge_win_rate,
            "human_win_rate": self.human_win_rate,
            "shift": self.shift.to_json(),
            "flagged": self.flagged,
        }


def self_preference(
    pairs: pd.DataFrame,
    votes: pd.DataFrame,
    verdicts: pd.DataFrame,
    judge: str,
    system: str,
    seed: int = 0,
    n_boot: int = 1000,
) -> SelfPreference:
    """How much more often `judge` picks `system` than the humans do, on the comparisons of
    `system` that have both a parsed combined verdict of the judge and at least one vote. A tie
    (or `both_bad`) is half a win."""
    mine = pairs[(pairs["system_x"] == system) | (pairs["system_y"] == system)]
    combined = combine_verdicts(mine, verdicts[verdicts["judge"] == judge])
    combined = combined[combined["outcome"].notna()].set_index("pair_id")["outcome"]
    codes = votes["outcome"].map(_OUTCOME_CODES)
    voted = votes.assign(code=codes)[codes.notna() & votes["pair_id"].isin(combined.index)]
    # Scores are 0, 0.5 or 1: their sums, and so their means, are exact in any order.
    score = pd.Series(_SCORE_OF_X[voted["code"].to_numpy(dtype=int)], index=voted.index)
    human_x = score.groupby(voted["pair_id"]).mean()
    frame = mine.set_index("pair_id").loc[human_x.index]
    judge_x = combined.loc[human_x.index].map({"x": 1.0, "y": 0.0, "tie": 0.5}).astype(float)
    is_x = (frame["system_x"] == system).to_numpy()
    judge_s = np.where(is_x, judge_x.to_numpy(), 1.0 - judge_x.to_numpy())
    human_s = np.where(is_x, human_x.to_numpy(), 1.0 - human_x.to_numpy())
    n = len(judge_s)
    shift = _ratio_difference(
        frame["item_key"].to_numpy(dtype=object),
        (judge_s - human_s, np.ones(n)),
        lambda t: t[:, 0] / t[:, 1],
        seed,
        n_boot,
        n,
    )
    return SelfPreference(
        judge,
        system,
        float(judge_s.mean()) if n else None,
        float(human_s.mean()) if n else None,
        shift,
    )


JURY_PREFIX = "jury/"


def jury_verdicts(
    pairs: pd.DataFrame, verdicts: pd.DataFrame, members: Sequence[str], label: str
) -> pd.DataFrame:
    """The order-combined verdicts (`VERDICT_COLUMNS`) of a jury of `members` over `pairs`.

    Each member's combined verdict of a comparison is one ballot (its two orders combined as
    everywhere: disagreeing orders are a tie). The jury's verdict is the unique most frequent
    ballot; when two outcomes share the top count it is a tie. A comparison on which half of the
    members or fewer have a parsed ballot gets an unparsed jury verdict (no majority of the jury
    spoke). Its cost is the members' cost on that comparison."""
    members = list(dict.fromkeys(members))
    mine = verdicts[verdicts["judge"].isin(members)]
    combined = combine_verdicts(pairs, mine)
    if combined.empty:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    ballots = combined[combined["outcome"].notna()]
    counts = (
        pd.crosstab(ballots["pair_id"], ballots["outcome"])
        .reindex(columns=list(LABELS), fill_value=0)
        .reindex(combined["pair_id"].unique(), fill_value=0)
    )
    top = counts.max(axis=1)
    unique_top = counts.eq(top, axis=0).sum(axis=1) == 1
    winner = counts.idxmax(axis=1).where(unique_top, "tie")
    spoke = counts.sum(axis=1) * 2 > len(members)
    outcome = pd.Series(
        np.where(spoke.to_numpy(), winner.to_numpy(dtype=object), None), index=counts.index
    )
    systems = pairs.set_index("pair_id").loc[counts.index, ["system_x", "system_y"]]
    named = [
        {"x": x, "y": y}.get(o, o) if o is not None else None
        for o, x, y in zip(outcome, systems["system_x"], systems["system_y"], strict=True)
    ]
    # Ballots by the winning system's name (a screen that hides names writes them as A and B;
    # x and y would give away the systems' name order).
    sides = pairs.set_index("pair_id")[["system_x", "system_y"]]
    ballot_x = combined["pair_id"].map(sides["system_x"])
    ballot_y = combined["pair_id"].map(sides["system_y"])
    ballot = np.select(
        [combined["outcome"] == "x", combined["outcome"] == "y", combined["outcome"] == "tie"],
        [ballot_x, ballot_y, "tie"],
        "unparsed",
    )
    ballot_text = (
        (combined["judge"] + ": " + pd.Series(ballot, index=combined.index, dtype=object))
        .groupby(combined["pair_id"])
        .agg("; ".join)
    )
    cost = pd.to_numeric(mine["cost"], errors="coerce").groupby(mine["pair_id"]).sum(min_count=1)
    frame = pd.DataFrame(
        {
            "verdict_id": None,
            "run_id": None,
            "judge": label,
            "pair_id": counts.index.to_numpy(),
            "first_system": None,
            "first": None,
            "winner": named,
            "outcome": pd.Series(outcome.to_numpy(dtype=object), dtype=object),
            "explanation": ballot_text.reindex(counts.index).to_numpy(dtype=object),
            "raw_text": "",
            "parse_error": np.where(
                spoke.to_numpy(), None, "half of the jury or fewer gave a parsed verdict"
            ),
            "cost": cost.reindex(counts.index).to_numpy(dtype=float),
            "latency_ms": np.nan,
            "tokens_in": 0,
            "tokens_out": 0,
        }
    )
    return frame[VERDICT_COLUMNS]


def jury_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """The jury's pointwise scores: the mean over its members' verdicts (both orders) of each
    system's score on each criterion. `scores` has one row per member score: `pair_id, system,
    criterion, score`; the result has the same columns, one row per (pair, system, criterion)."""
    if scores.empty:
        return pd.DataFrame(columns=["pair_id", "system", "criterion", "score"])
    keys = ["pair_id", "system", "criterion"]
    return scores.groupby(keys, as_index=False)["score"].mean()


POOLED_SYSTEMS = "all systems"


def pointwise_summary(scores: pd.DataFrame, by_system: bool = True) -> pd.DataFrame:
    """Judges' pointwise scores summarised: per judge, system and criterion the mean over
    comparisons of each comparison's mean score (over the judge's verdicts on it, both orders),
    and how many comparisons it covers. `scores` has one row per verdict score: `judge, pair_id,
    system, criterion, score` (a jury's rows are its members' scores under the jury's label).
    With `by_system` False both systems of a comparison are pooled (system `all systems`), so
    the table does not say which system a judge prefers. Judges keep their order of appearance."""
    columns = ["judge", "system", "criterion", "mean_score", "n_comparisons"]
    if scores.empty:
        return pd.DataFrame(columns=columns)
    per_pair = scores.groupby(
        ["judge", "pair_id", "system", "criterion"], as_index=False, sort=False
    )["score"].mean()
    if not by_system:
        per_pair = per_pair.groupby(["judge", "pair_id", "criterion"], as_index=False, sort=False)[
            "score"
        ].mean()
        per_pair["system"] = POOLED_SYSTEMS
    out = per_pair.groupby(["judge", "system", "criterion"], as_index=False, sort=False).agg(
        mean_score=("score", "mean"), n_comparisons=("pair_id", "nunique")
    )
    order = {judge: i for i, judge in enumerate(dict.fromkeys(scores["judge"]))}
    out = out.sort_values(
        ["judge", "system", "criterion"],
        key=lambda c: c.map(order) if c.name == "judge" else c,
        kind="stable",
    )
    return out[columns].reset_index(drop=True)
