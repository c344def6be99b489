"""The final human gate: threshold metrics (each owns its measure), the content hash that pins a
locked set of thresholds, their evaluation, the orientation of win-rate rows (`orient`), the one
regression table every screen shows, and the results screen's error analysis. Pure functions
over plain data: storage lives in the store, rendering in report.py."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from review_app import baselines, ppi, ranking, sequential, stats
from review_app.errors import InputError
from review_app.report import format_ci

COMPARATORS = (">=", ">", "<=", "<")
HUMANS = stats.HUMANS
REGRESSION_METRIC = "max_regression_points"
FINAL_REVIEW_METRIC = "final_review_acceptable_rate"
# Metrics that may name a `judge` whose verdicts on every comparison sharpen the human votes
# (prediction-powered inference, `ppi`); without one they read the human votes alone.
PPI_METRICS = ("human_win_rate", "human_lc_win_rate", REGRESSION_METRIC)

# A prediction-powered win rate of (judge, system_a, system_b, category or None), or why there
# is none (the judge is not pinned by the lock, its rubric changed, it has no verdicts).
PPILookup = Callable[[str, str, str, "str | None"], "ppi.PredictionPowered | str"]


def judges_named(
    thresholds: Iterable[Threshold], metrics: Iterable[str] = PPI_METRICS
) -> list[str]:
    """The judges that prediction-powered thresholds (of `metrics`) name, sorted."""
    metrics = set(metrics)
    return sorted(
        {t.params["judge"] for t in thresholds if t.metric in metrics and t.params.get("judge")}
    )


def _no_ppi(judge: str, a: str, b: str, category: str | None) -> str:
    return "prediction-powered estimates are not available here"


@dataclass
class GateInputs:
    """Everything thresholds are evaluated against, computed once per study."""

    # The study's calibration over all its comparisons (no category's: no threshold reads one).
    calibration: stats.Analysis | None
    win_rates: list[stats.WinRate]
    category_win_rates: dict[str, list[stats.WinRate]]
    # {"n": outputs marked, "acceptable": marked acceptable, "sample_size": outputs in the sample}
    final_review: dict[str, Any] = field(default_factory=lambda: {"n": 0, "acceptable": 0})
    # Grader results in force (the versions the lock pinned): one row per (output, check) with
    # grader, check, system, item_key, category, passed.
    graders: pd.DataFrame | None = None
    # The system thresholds default to when they name none.
    candidate: str = ""
    # Length-controlled win rates of each comparison per source (humans, each real judge).
    lc_win_rates: list[ranking.LengthControlled] = field(default_factory=list)
    # Prediction-powered win rates and length-controlled win rates (category None), computed
    # on first use per judge.
    ppi_win_rate: PPILookup = _no_ppi
    ppi_lc_win_rate: PPILookup = _no_ppi

    def win_rate(
        self, a: str, b: str, source: str, category: str | None = None
    ) -> stats.WinRate | None:
        """The win rate of `a` over `b`, whichever way round the study compares them (`orient`)."""
        rates = self.win_rates if category is None else self.category_win_rates.get(category, [])
        for w in rates:
            if w.source == source and (oriented := orient(w, a, b)) is not None:
                return oriented
        return None


# A row of outcomes of system_a over system_b: a raw or a length-controlled win rate.
Row = TypeVar("Row", stats.WinRate, ranking.LengthControlled)


def orient(w: Row, first: str, second: str | None = None) -> Row | None:
    """`w` read as the win rate of `first` over `second` (over whichever system `w` compares
    `first` with, when `second` is None): as it is, or turned round (b over a is 1 - a over b:
    value, CI and bounds mirrored, wins and losses swapped, ties and n kept); None when `w` does
    not compare them. The one place a win-rate row is turned round: the gate's measures, the
    regression table (candidate first) and every screen that shows it read rows through it."""
    if w.system_a == first and second in (None, w.system_b):
        return w
    if w.system_b == first and second in (None, w.system_a):
        return w.reversed()
    return None


@dataclass(frozen=True)
class Measurement:
    """One metric measured on a study: its estimate, 95% CI (shown), one-sided 95% lower and upper
    bounds (decided on), the comparisons behind it (`n`) and the distinct items behind those
    (`n_items`: the independent units; an output of the final review or of a grader is its own
    item's), and a detail line; `value` is None when it cannot be measured, `detail` says why.
    `needed` overrides the minimum number of comparisons when the metric counts something else
    (outputs of the final review)."""

    value: float | None
    ci: tuple[float, float] | None
    bounds: tuple[float, float] | None
    n: int
    detail: str
    needed: int | None = None
    unit: str = "comparisons"
    # None: each unit is its own item (a measurement built from per-item figures).
    n_items: int | None = None
    # How it was estimated, when not from the human votes alone (`ppi.PredictionPowered.method`).
    method: dict | None = None

    @property
    def items(self) -> int:
        return self.n if self.n_items is None else self.n_items


def _unmeasurable(reason: str, n: int = 0) -> Measurement:
    return Measurement(None, None, None, n, reason)


def _of(est: stats.Estimate, detail: str) -> Measurement:
    return Measurement(est.value, est.ci, est.bounds, est.units, detail, n_items=est.items)


# ---- one measure per metric: (threshold params, inputs) -> Measurement ----


def _overall_win_rate(params: dict[str, Any], inputs: GateInputs) -> stats.WinRate | None:
    """The measured win rate a threshold names: from humans, or from its `judge` if it has one."""
    w = inputs.win_rate(params["system_a"], params["system_b"], params.get("judge", HUMANS))
    return w if w is not None and w.value is not None else None


def _no_win_rate(params: dict[str, Any]) -> Measurement:
    source = params.get("judge", HUMANS)
    return _unmeasurable(f"no {source} outcomes for {params['system_a']} vs {params['system_b']}")


def _measure_win_rate(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    w = _overall_win_rate(params, inputs)
    if w is None:
        return _no_win_rate(params)
    detail = f"{w.wins} wins, {w.ties} ties, {w.losses} losses"
    return Measurement(w.value, w.ci, w.bounds, w.n_comparisons, detail, n_items=w.n_items)


def _ppi(params: dict[str, Any], inputs: GateInputs, category: str | None = None):
    """The prediction-powered win rate a threshold's `judge` gives, or why there is none."""
    a, b = params["system_a"], params["system_b"]
    found = inputs.ppi_win_rate(params["judge"], a, b, category)
    if isinstance(found, str):
        return found
    if found.value is None:
        return f"prediction-powered win rate with {params['judge']}: {found.reason}"
    return found


def _ppi_measurement(w: ppi.PredictionPowered) -> Measurement:
    detail = (
        f"prediction-powered with {w.judge}: {w.n_human} items with human votes, "
        f"{w.n_judge} judged only, worth {w.effective_n:.0f} human-voted items"
    )
    # The minimum counts the human-voted items: the correction rests on them.
    return Measurement(
        w.value, w.ci, w.bounds, w.n_human, detail, n_items=w.n_human, method=w.method()
    )


def _measure_human_win_rate(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    """The human win rate, prediction-powered when the threshold names a judge."""
    if not params.get("judge"):
        return _measure_win_rate(params, inputs)
    found = _ppi(params, inputs)
    return _unmeasurable(found) if isinstance(found, str) else _ppi_measurement(found)


def _measure_win_rate_ci_low(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    """Kept for thresholds locked before every metric was decided on its bound: the 95% CI's
    lower end, compared as a number (the minimum sample still applies)."""
    w = _overall_win_rate(params, inputs)
    if w is None or w.ci is None:
        return _no_win_rate(params)
    low = w.ci[0]
    detail = f"win rate {w.value:.3f}, CI {format_ci(w.ci, digits=3)}"
    return Measurement(low, w.ci, (low, low), w.n_comparisons, detail, n_items=w.n_items)


def _measure_lc_win_rate(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    """The length-controlled win rate a threshold names (from humans, or from its `judge`),
    oriented as it names its systems; unmeasurable when the lengths do not overlap."""
    a, b, source = params["system_a"], params["system_b"], params.get("judge", HUMANS)
    lc = next(
        (o for w in inputs.lc_win_rates if w.source == source and (o := orient(w, a, b))),
        None,
    )
    if lc is None:
        return _unmeasurable(f"no {source} outcomes for {a} vs {b}")
    if lc.value is None:
        return _unmeasurable(f"length-controlled win rate: {lc.reason}", lc.n_comparisons)
    detail = f"length-controlled win rate over {lc.n} observations"
    # One comparison of the two systems per item: its comparisons are its items.
    return Measurement(
        lc.value, lc.ci, lc.bounds, lc.n_comparisons, detail, n_items=lc.n_comparisons
    )


def _measure_human_lc_win_rate(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    """The human length-controlled win rate, prediction-powered when the threshold names a
    judge (its logistic fit corrected by the human votes)."""
    if not params.get("judge"):
        return _measure_lc_win_rate(params, inputs)
    judge = params["judge"]
    found = inputs.ppi_lc_win_rate(judge, params["system_a"], params["system_b"], None)
    if isinstance(found, str):
        return _unmeasurable(found)
    if found.value is None:
        return _unmeasurable(f"length-controlled win rate with {judge}: {found.reason}")
    m = _ppi_measurement(found)
    return replace(m, detail=f"length-controlled, {m.detail}")


def _judge(params: dict[str, Any], inputs: GateInputs) -> stats.JudgeStats | None:
    return inputs.calibration.judge(params["judge"])


def _agreement(judge: stats.JudgeStats | stats.HumanStats, ties: str) -> stats.Estimate:
    return {
        "with": judge.agreement_with_ties,
        "without": judge.agreement_without_ties,
        "strict": judge.agreement_strict,
    }[ties]


def _judge_estimate(
    params: dict[str, Any],
    inputs: GateInputs,
    pick: Callable[[stats.JudgeStats], stats.Estimate | None],
    what: str,
) -> Measurement:
    """A measurement read off one judge's statistics."""
    judge = _judge(params, inputs)
    if judge is None:
        return _unmeasurable(f"no verdicts from judge {params['judge']}")
    est = pick(judge)
    if est is None or est.value is None:
        return _unmeasurable(f"no {what} for judge {params['judge']}", est.units if est else 0)
    return _of(est, what)


def _measure_agreement(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    ties = params.get("ties", "without")
    return _judge_estimate(params, inputs, lambda j: _agreement(j, ties), f"agreement, {ties} ties")


def _measure_agreement_strict(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    return _judge_estimate(params, inputs, lambda j: j.agreement_strict, "strict agreement")


def _measure_decisive_share(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    return _judge_estimate(params, inputs, lambda j: j.decisive_share, "decisive share")


def _measure_consistency(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    return _judge_estimate(params, inputs, lambda j: j.consistency, "consistency across orders")


def _measure_verbosity_gap(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    return _judge_estimate(
        params, inputs, lambda j: j.verbosity_gap, "p_longer minus the humans' p_longer"
    )


def _measure_position_bias(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    """|p_first - 0.5|: how far the judge leans to the answer shown first, either way."""
    m = _judge_estimate(params, inputs, lambda j: j.p_first, "p_first")
    if m.value is None or m.bounds is None:
        return m
    low, high = (b - 0.5 for b in m.bounds)
    bounds = (0.0 if low <= 0 <= high else min(abs(low), abs(high)), max(abs(low), abs(high)))
    detail = f"p_first {m.value:.3f}, one-sided bounds {format_ci(m.bounds, digits=3)}"
    return Measurement(abs(m.value - 0.5), None, bounds, m.n, detail, n_items=m.n_items)


def _measure_agreement_vs_ceiling(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    """The judge's one calibration verdict (`vs_ceiling`): its strict agreement minus the human
    ceiling's, on the same resamples."""
    judge = _judge(params, inputs)
    if judge is None:
        return _unmeasurable(f"no verdicts from judge {params['judge']}")
    diff = judge.vs_ceiling.diff
    if diff.value is None:
        return _unmeasurable("no comparison with a decisive vote, a second vote and a verdict")
    humans = inputs.calibration.humans.agreement_strict
    detail = (
        f"strict agreement {judge.agreement_strict.value:.3f} vs humans {humans.value:.3f}; "
        f"calibration verdict: {judge.vs_ceiling.verdict}"
    )
    return _of(diff, detail)


def _measure_beats_baseline(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    overall = inputs.calibration
    judge, baseline = overall.judge(params["judge"]), overall.judge(params["baseline"])
    if judge is None or baseline is None:
        missing = params["judge"] if judge is None else params["baseline"]
        return _unmeasurable(f"no verdicts from judge {missing}")
    diff = judge.strict_vs.get(params["baseline"])
    if diff is None or diff.value is None:
        return _unmeasurable("strict agreement is not measurable on shared comparisons")
    a, b = judge.agreement_strict.value, baseline.agreement_strict.value
    return _of(diff, f"strict agreement: judge {a:.3f} vs {params['baseline']} {b:.3f}")


def drop_points(w: stats.WinRate | None) -> float | None:
    """How far system_a is below parity, in points: 100 x (0.5 - win rate); negative = above.

    Rounded to 9 decimals so that a win rate exactly at the tolerance (say 7/20, a 15-point drop)
    compares as equal to it instead of failing on floating-point noise (15.000000000000002)."""
    if w is None or w.value is None:
        return None
    return round(100 * (0.5 - w.value), 9)


def _drop_bounds(w: stats.WinRate) -> tuple[float, float] | None:
    """One-sided bounds of the drop: the win rate's upper bound gives the drop's lower one."""
    if w.bounds is None:
        return None
    return (round(100 * (0.5 - w.bounds[1]), 9), round(100 * (0.5 - w.bounds[0]), 9))


def _suite_measurement(w: stats.WinRate | ppi.PredictionPowered | None) -> Measurement | None:
    drop = drop_points(w)
    if drop is None:
        return None
    ci = None if w.ci is None else (100 * (0.5 - w.ci[1]), 100 * (0.5 - w.ci[0]))
    if isinstance(w, ppi.PredictionPowered):
        # The minimum counts the human-voted items: the correction rests on them.
        detail = f"win rate {w.value:.3f}, prediction-powered with {w.judge}"
        return Measurement(
            drop, ci, _drop_bounds(w), w.n_human, detail, n_items=w.n_human, method=w.method()
        )
    return Measurement(
        drop, ci, _drop_bounds(w), w.n_comparisons, f"win rate {w.value:.3f}", n_items=w.n_items
    )


def _ppi_suite(params: dict[str, Any], inputs: GateInputs, category: str) -> Measurement | None:
    found = _ppi(params, inputs, category)
    return None if isinstance(found, str) else _suite_measurement(found)


def _measure_max_regression(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    """Non-inferiority of every suite: the worst suite's drop below parity, with bounds that make
    the threshold pass only when every suite's upper bound clears the margin and fail when any
    suite's lower bound exceeds it; each suite must have the minimum number of comparisons.
    With a `judge`, each suite's win rate is prediction-powered."""
    a, b, source = params["system_a"], params["system_b"], params["source"]
    if params.get("judge") and source != HUMANS:
        return _unmeasurable("a prediction-powered regression reads human votes (source humans)")
    suites: dict[str, Measurement] = {}
    for category in params["categories"] or sorted(inputs.category_win_rates):
        if params.get("judge"):
            suite = _ppi_suite(params, inputs, category)
        else:
            suite = _suite_measurement(inputs.win_rate(a, b, source, category))
        if suite is None:
            if params["categories"]:  # a named regression suite must be measured, never skipped
                return _unmeasurable(f"category {category} has no {source} outcomes")
            continue
        suites[category] = suite
    if not suites:
        return _unmeasurable("no category has outcomes for this comparison")
    return _worst_suite(suites)


def _worst_suite(suites: dict[str, Measurement]) -> Measurement:
    """Non-inferiority over several suites at once: the worst suite's value (points below
    parity) with bounds that pass only when every suite's upper bound clears the margin and fail
    when any suite's lower bound exceeds it; n (and n_items) is the smallest suite's."""
    worst = max(suites, key=lambda c: suites[c].value)
    bounded = [m.bounds for m in suites.values() if m.bounds is not None]
    bounds = None
    if len(bounded) == len(suites):
        bounds = (max(low for low, _ in bounded), max(high for _, high in bounded))
    smallest = min(suites, key=lambda c: suites[c].n)
    detail = f"worst: {worst} ({suites[worst].detail}, n={suites[worst].n})"
    if suites[smallest].n < suites[worst].n:
        detail += f"; smallest suite: {smallest} (n={suites[smallest].n})"
    return Measurement(
        suites[worst].value,
        suites[worst].ci,
        bounds,
        suites[smallest].n,
        detail,
        unit=suites[smallest].unit,
        n_items=min(m.items for m in suites.values()),
        method=suites[worst].method,
    )


def _grader_rows(params: dict[str, Any], inputs: GateInputs) -> pd.DataFrame | str:
    """The results of the threshold's check (of its `grader`, when named), or why there are
    none: a check name two graders share must say which grader it means."""
    frame = inputs.graders
    if frame is None or frame.empty:
        return "no grader results: run `review-app grade` on the study"
    rows = frame[frame["check"] == params["check"]]
    if params.get("grader"):
        rows = rows[rows["grader"] == params["grader"]]
    if rows.empty:
        return f"no results of grader check {params['check']}"
    owners = sorted(rows["grader"].unique())
    if len(owners) > 1:
        return f"check {params['check']} is in graders {', '.join(owners)}: name the grader"
    return rows.assign(category=stats.category_names(rows["category"]))


def _share_measurement(passed: int, n: int, n_items: int, detail: str) -> Measurement:
    """A pass rate over n outputs of `n_items` items with Wilson intervals (95% shown, one-sided
    95% bounds)."""
    share = passed / n
    return Measurement(
        share,
        stats.wilson_interval(share, n),
        stats.wilson_interval(share, n, stats.Z_ONE_SIDED_95),
        n,
        detail,
        unit="outputs",
        n_items=n_items,
    )


def _measure_grader_pass_rate(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    rows = _grader_rows(params, inputs)
    if isinstance(rows, str):
        return _unmeasurable(rows)
    system = params.get("system") or inputs.candidate
    rows = rows[rows["system"] == system]
    if params.get("category"):
        rows = rows[rows["category"] == params["category"]]
    where = f"{system}{', ' + params['category'] if params.get('category') else ''}"
    if rows.empty:
        return _unmeasurable(f"check {params['check']} has no results for {where}")
    passed, n = int(rows["passed"].sum()), len(rows)
    detail = f"{passed} of {n} outputs of {where} pass"
    return _share_measurement(passed, n, rows["item_key"].nunique(), detail)


def _suite_change(
    keys_a: np.ndarray, passed_a: np.ndarray, keys_b: np.ndarray, passed_b: np.ndarray
) -> Measurement | None:
    """How far system a's pass rate is below system b's on the items both were graded on, in
    points (100 x (rate b - rate a)), with Newcombe's paired interval: the 95% CI shown, the
    one-sided 95% bounds decided on. Each system's results are given as item keys and whether
    each passed."""
    index_b = pd.Index(keys_b)
    if index_b.is_unique:
        # One result per output (the usual case): a lookup, many times cheaper than a merge in
        # the simulations that decide thousands of studies.
        found = index_b.get_indexer(keys_a)
        hit = found >= 0
        items = keys_a[hit]
        passed_a, passed_b = passed_a[hit], passed_b[found[hit]]
    else:
        both = pd.DataFrame({"item_key": keys_a, "passed": passed_a}).merge(
            pd.DataFrame({"item_key": keys_b, "passed": passed_b}),
            on="item_key",
            suffixes=("_a", "_b"),
        )
        passed_a, passed_b = both["passed_a"].to_numpy(bool), both["passed_b"].to_numpy(bool)
        items = both["item_key"].to_numpy()
    if not len(passed_a):
        return None
    diff, ci = stats.paired_difference_interval(passed_a, passed_b)
    _, bounds = stats.paired_difference_interval(passed_a, passed_b, stats.Z_ONE_SIDED_95)
    n = len(passed_a)
    detail = f"pass rates {passed_a.mean():.3f} vs {passed_b.mean():.3f}"
    return Measurement(
        round(-100 * diff, 9),
        (-100 * ci[1], -100 * ci[0]),
        (round(-100 * bounds[1], 9), round(-100 * bounds[0], 9)),
        n,
        detail,
        unit="outputs",
        n_items=pd.unique(items).size,
    )


def _measure_grader_pass_rate_change(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    """Non-inferiority of a check's pass rate versus a reference system, per category (of the
    listed ones; empty = all), combined exactly as the worst regression suite is."""
    rows = _grader_rows(params, inputs)
    if isinstance(rows, str):
        return _unmeasurable(rows)
    a, b = params.get("system_a") or inputs.candidate, params["system_b"]
    # Plain arrays, selected by masks: a suite is a few comparisons of these, where selecting
    # frames of text columns cost most of a gate evaluation.
    categories = rows["category"].to_numpy(object)
    system = rows["system"].to_numpy(object)
    keys, passed = rows["item_key"].to_numpy(object), rows["passed"].to_numpy(bool)
    of_a, of_b = system == a, system == b
    suites: dict[str, Measurement] = {}
    for category in params["categories"] or sorted(set(categories)):
        in_suite = categories == category
        in_a, in_b = in_suite & of_a, in_suite & of_b
        suite = _suite_change(keys[in_a], passed[in_a], keys[in_b], passed[in_b])
        if suite is None:
            if params["categories"]:
                return _unmeasurable(f"category {category} has no results of {a} and {b}")
            continue
        suites[category] = suite
    if not suites:
        return _unmeasurable(f"no category has results of both {a} and {b}")
    return _worst_suite(suites)


def _measure_final_review(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    final = inputs.final_review
    n, ok = final["n"], final["acceptable"]
    sample = final.get("sample_size") or n
    if not n:
        return _unmeasurable("the final review has not been done")
    share = ok / n
    return Measurement(
        share,
        stats.wilson_interval(share, n),
        stats.wilson_interval(share, n, stats.Z_ONE_SIDED_95),
        n,
        f"{ok} of {n} acceptable ({n} of {sample} reviewed)",
        needed=sample,
        unit="reviewed outputs",
        n_items=n,
    )


# ---- the registry ----


@dataclass(frozen=True)
class Metric:
    """A gate metric: what it measures, which parameters it takes, its usual comparator, and the
    function that measures it from a threshold's parameters."""

    name: str
    label: str
    params: tuple[str, ...]
    comparator: str
    example: float
    help: str
    measure: Callable[[dict[str, Any], GateInputs], Measurement] = field(repr=False)
    # How `planning` models the metric: a share of comparisons, a paired difference of
    # two shares, points below parity per suite, or distance of a share from one half.
    kind: str = "share"
    # Parameters that may be left empty (the metric says what empty means).
    optional: tuple[str, ...] = ()


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "human_win_rate",
            "Human win rate",
            ("system_a", "system_b"),
            ">",
            0.5,
            "(wins + 0.5 ties) / votes of system_a over system_b, from human votes (either "
            "order: b over a is 1 - a over b). With judge=NAME, prediction-powered: that "
            "judge's verdicts on every comparison corrected by the human votes (PPI++).",
            measure=_measure_human_win_rate,
        ),
        Metric(
            "human_win_rate_ci_low",
            "Human win rate, CI lower bound",
            ("system_a", "system_b"),
            ">=",
            0.5,
            "Lower end of the 95% CI of the human win rate, compared as a number. Prefer "
            "human_win_rate, which is decided on its own one-sided bound.",
            measure=_measure_win_rate_ci_low,
        ),
        Metric(
            "judge_win_rate",
            "Judge win rate",
            ("system_a", "system_b", "judge"),
            ">",
            0.5,
            "Win rate of system_a over system_b from the judge's combined verdicts.",
            measure=_measure_win_rate,
        ),
        Metric(
            "human_lc_win_rate",
            "Human length-controlled win rate",
            ("system_a", "system_b"),
            ">",
            0.5,
            "The human win rate of system_a over system_b read at equal length (a logistic "
            "regression on the length difference, AlpacaEval 2 style): a win bought by longer "
            "answers does not pass. Not measurable when fewer than 10% of comparisons lie on "
            "the minority side of equal length. With judge=NAME, prediction-powered.",
            measure=_measure_human_lc_win_rate,
        ),
        Metric(
            "judge_lc_win_rate",
            "Judge length-controlled win rate",
            ("system_a", "system_b", "judge"),
            ">",
            0.5,
            "The judge's win rate of system_a over system_b read at equal length, as "
            "human_lc_win_rate.",
            measure=_measure_lc_win_rate,
        ),
        Metric(
            "judge_agreement",
            "Judge-human agreement",
            ("judge", "ties"),
            ">=",
            0.8,
            "Share of (vote, combined verdict) pairs that agree; ties = with | without | strict, "
            "required (strict: a judge's tie, inconsistent or unparsed answer disagrees with a "
            "decisive vote; without rewards a judge that abstains).",
            measure=_measure_agreement,
        ),
        Metric(
            "judge_agreement_strict",
            "Judge-human strict agreement",
            ("judge",),
            ">=",
            0.8,
            "Share of decisive human votes the judge's combined verdict matches; abstaining "
            "(a tie, inconsistent orders, an unparsed answer) counts as disagreeing.",
            measure=_measure_agreement_strict,
        ),
        Metric(
            "judge_decisive_share",
            "Judge decisive share",
            ("judge",),
            ">=",
            0.8,
            "Share of voted comparisons where the judge's combined verdict is parsed, "
            "consistent across orders and not a tie.",
            measure=_measure_decisive_share,
        ),
        Metric(
            "judge_agreement_vs_ceiling",
            "Judge strict agreement minus the human ceiling",
            ("judge",),
            ">=",
            -0.05,
            "The judge's calibration verdict: strict agreement minus the humans' (paired); "
            ">= -margin passes exactly when the calibration screen says 'within'.",
            measure=_measure_agreement_vs_ceiling,
            kind="difference",
        ),
        Metric(
            "judge_beats_baseline",
            "Judge strict agreement minus a baseline's",
            ("judge", "baseline"),
            ">",
            0.0,
            "Strict agreement of the judge minus that of a baseline judge, paired.",
            measure=_measure_beats_baseline,
            kind="difference",
        ),
        Metric(
            "judge_consistency",
            "Judge consistency across orders",
            ("judge",),
            ">=",
            0.8,
            "Share of comparisons judged in both orders whose two verdicts agree.",
            measure=_measure_consistency,
        ),
        Metric(
            "judge_position_bias",
            "Judge position bias",
            ("judge",),
            "<=",
            0.1,
            "|p_first - 0.5|: how far the judge leans to the answer shown first.",
            measure=_measure_position_bias,
            kind="from_half",
        ),
        Metric(
            "judge_verbosity_gap",
            "Judge verbosity gap",
            ("judge",),
            "<=",
            0.1,
            "The judge's p_longer minus the humans' (paired): extra preference for longer answers.",
            measure=_measure_verbosity_gap,
            kind="difference",
        ),
        Metric(
            REGRESSION_METRIC,
            "Worst regression versus the reference system, in points",
            ("system_a", "system_b", "categories", "source"),
            "<=",
            5.0,
            "Non-inferiority per category (of the listed ones; empty = all): 100 x (0.5 - win "
            "rate of system_a over system_b); fails when a suite is shown worse than the margin, "
            "passes when every suite is shown within it; source = humans or a judge label; "
            "with judge=NAME (source humans) each suite is prediction-powered.",
            measure=_measure_max_regression,
            kind="points",
        ),
        Metric(
            FINAL_REVIEW_METRIC,
            "Final review: acceptable rate",
            (),
            ">=",
            0.9,
            "Share of the signer's final-review sample marked acceptable.",
            measure=_measure_final_review,
        ),
        Metric(
            "grader_pass_rate",
            "Grader pass rate",
            ("check", "system", "category", "grader"),
            ">=",
            0.95,
            "Share of a system's outputs that pass a grader check (system empty = the candidate; "
            "category empty = all; grader needed only when two graders have a check of that "
            "name), decided on its Wilson bound over outputs, with the grader version the lock "
            "pinned.",
            measure=_measure_grader_pass_rate,
            optional=("system", "category", "grader"),
        ),
        Metric(
            "grader_pass_rate_change",
            "Grader pass-rate drop versus the reference system, in points",
            ("check", "system_a", "system_b", "categories", "grader"),
            "<=",
            5.0,
            "Non-inferiority per category (of the listed ones; empty = all): 100 x (pass rate of "
            "system_b - pass rate of system_a) on the items both were graded on (system_a empty "
            "= the candidate), with a paired interval; fails when a suite is shown worse than the "
            "margin, passes when every suite is shown within it.",
            measure=_measure_grader_pass_rate_change,
            kind="points",
            optional=("system_a", "grader"),
        ),
    )
}


def _metric(name: str) -> Metric:
    if name not in METRICS:
        raise InputError(f"unknown metric {name!r}; choose one of {', '.join(METRICS)}")
    return METRICS[name]


# ---- thresholds and the lock ----


@dataclass(frozen=True)
class Threshold:
    metric: str
    params: dict[str, Any]
    comparator: str
    value: float

    def key(self) -> dict:
        return {
            "metric": self.metric,
            "params": self.params,
            "comparator": self.comparator,
            "value": self.value,
        }

    def describe(self) -> str:
        metric = METRICS[self.metric]
        args = ", ".join(
            f"{k}={'+'.join(v) if isinstance(v, list) else v}"
            for k, v in self.params.items()
            if v not in ("", None, [])
        )
        return f"{metric.label}{f' ({args})' if args else ''} {self.comparator} {self.value:g}"


def validate_threshold(
    metric: str, params: dict[str, Any], comparator: str, value: float
) -> Threshold:
    """A Threshold with its parameters checked; InputError names what is wrong."""
    spec = _metric(metric)
    if comparator not in COMPARATORS:
        raise InputError(f"comparator {comparator!r}: choose one of {', '.join(COMPARATORS)}")
    allowed = set(spec.params) | ({"judge"} if metric in PPI_METRICS else set())
    unknown = set(params) - allowed
    if unknown:
        raise InputError(
            f"metric {metric} takes {', '.join(spec.params) or 'no parameters'}; "
            f"not {', '.join(sorted(unknown))}"
        )
    clean: dict[str, Any] = {}
    for name in spec.params:
        raw = params.get(name)
        if name == "categories":
            if isinstance(raw, str):
                raw = [c.strip() for c in raw.split(",") if c.strip()]
            clean[name] = sorted(raw or [])
        elif name == "ties":
            # No default: `without` rewards a judge that abstains, so the threshold must say.
            if not raw or not str(raw).strip():
                raise InputError(
                    f"metric {metric} needs the parameter ties: with, without or strict"
                )
            clean[name] = str(raw).strip()
            if clean[name] not in ("with", "without", "strict"):
                raise InputError(f"metric {metric}: ties must be 'with', 'without' or 'strict'")
        elif name == "source":
            clean[name] = raw or HUMANS
        elif name in spec.optional:
            clean[name] = str(raw).strip() if raw is not None else ""
        else:
            if not raw or not str(raw).strip():
                raise InputError(f"metric {metric} needs the parameter {name}")
            clean[name] = str(raw).strip()
    if metric in PPI_METRICS and str(params.get("judge") or "").strip():
        # Kept only when named, so thresholds without one keep their content hash.
        clean["judge"] = str(params["judge"]).strip()
        if clean.get("source", HUMANS) != HUMANS:
            raise InputError(
                f"metric {metric}: a prediction-powered threshold (judge=) reads human votes; "
                "leave source as humans"
            )
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"threshold value {value!r} is not a number") from None
    return Threshold(metric, clean, comparator, number)


def thresholds_hash(thresholds: list[Threshold]) -> str:
    """Content hash of a set of thresholds, independent of their order."""
    canonical = sorted(json.dumps(t.key(), sort_keys=True) for t in thresholds)
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


# ---- evaluation ----

OUTCOMES = ("pass", "fail", "inconclusive", "interim")


@dataclass(frozen=True)
class ThresholdResult:
    """One threshold decided: `pass` or `fail` only when its one-sided 95% bound is clear of the
    bar on at least the minimum number of items, else `inconclusive`; `interim` while the planned
    sample is not in (the estimate and bound are shown, nothing is decided); `reason` says why."""

    threshold: Threshold
    value: float | None
    ci: tuple[float, float] | None
    bounds: tuple[float, float] | None
    n: int
    outcome: str
    reason: str
    n_items: int = 0
    method: dict | None = None

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    def to_json(self) -> dict:
        t = self.threshold
        return {
            "metric": t.metric,
            "params": t.params,
            "comparator": t.comparator,
            "value": t.value,
            "description": t.describe(),
            "estimate": self.value,
            "ci": list(self.ci) if self.ci else None,
            "bounds": list(self.bounds) if self.bounds else None,
            "n": self.n,
            "n_items": self.n_items,
            "outcome": self.outcome,
            "reason": self.reason,
            **(self.method or {}),
        }


def _clears(bounds: tuple[float, float], threshold: Threshold) -> str:
    """pass / fail / inconclusive of a one-sided 95% bound against the bar: for >= and > the
    lower bound must clear it to pass and the upper bound fall short to fail; <= and < mirror."""
    low, high = bounds
    bar = threshold.value
    return {
        ">=": "pass" if low >= bar else "fail" if high < bar else "inconclusive",
        ">": "pass" if low > bar else "fail" if high <= bar else "inconclusive",
        "<=": "pass" if high <= bar else "fail" if low > bar else "inconclusive",
        "<": "pass" if high < bar else "fail" if low >= bar else "inconclusive",
    }[threshold.comparator]


def measure(threshold: Threshold, inputs: GateInputs) -> Measurement:
    """One threshold's metric measured on the study."""
    return _metric(threshold.metric).measure(threshold.params, inputs)


def _units(m: Measurement) -> tuple[int, str]:
    """What the minimum counts for a measurement: its items, the independent units (the
    comparisons and votes of one item move together); an output counts as its item's."""
    return m.items, ("items" if m.unit == "comparisons" else m.unit)


def at_boundary(m: Measurement, z: float) -> Measurement:
    """`m` with its one-sided bounds moved from z_0.95 to `z` (a sequential look's boundary):
    each bound's distance from the estimate scaled by z / z_0.95, exact for the normal-based
    bounds and close for the score and bootstrap ones at the sizes a gate decides on."""
    if m.bounds is None or m.value is None or z == stats.Z_ONE_SIDED_95:
        return m
    scale = z / stats.Z_ONE_SIDED_95
    low, high = m.bounds
    return replace(
        m, bounds=(m.value - (m.value - low) * scale, m.value + (high - m.value) * scale)
    )


def decide(
    threshold: Threshold,
    m: Measurement,
    min_items: int,
    until: str | None = None,
    look: sequential.Look | None = None,
) -> ThresholdResult:
    """A measurement's outcome against its threshold (see `ThresholdResult`). With `until` (what
    the plan still waits for) the outcome is `interim`: the figures so far, not a decision,
    unless the sequential design's `look` lets this look conclude: its bound at the look's
    boundary clears the bar (pass) or its opposite bound falls short of it (fail). At the
    planned sample a `look` after interim ones decides at its (slightly higher) boundary."""
    if look is not None:
        m = at_boundary(m, look.boundary)
    needed = min_items if m.needed is None else min(min_items, m.needed)
    have, unit = _units(m)
    level = "95%" if look is None or look.boundary == stats.Z_ONE_SIDED_95 else "sequential"
    if m.value is None:
        outcome, reason = "inconclusive", f"not measurable: {m.detail}"
    elif have < needed:
        outcome, reason = "inconclusive", f"{have} of {needed} {unit} needed; {m.detail}"
    elif m.bounds is None:
        outcome, reason = "inconclusive", f"no confidence bound; {m.detail}"
    else:
        outcome = _clears(m.bounds, threshold)
        bound = m.bounds[0] if threshold.comparator in (">=", ">") else m.bounds[1]
        side = "lower" if threshold.comparator in (">=", ">") else "upper"
        reason = f"{side} {level} bound {bound:.3f} vs {threshold.comparator} {threshold.value:g}"
        if outcome == "inconclusive":
            reason += " (the interval straddles the bar: more data decides)"
        reason += f"; {m.detail}"
    if look is not None and look.boundary != stats.Z_ONE_SIDED_95:
        reason += (
            f" (look {look.index} at {look.fraction:.0%} of the plan: boundary z = "
            f"{look.boundary:.2f}, alpha spent {look.alpha_spent:.4f})"
        )
    if until is not None:
        if look is not None and outcome in ("pass", "fail"):
            reason = f"decided early, before {until}: {reason}"
        else:
            outcome, reason = "interim", f"not decided until {until}; so far: {reason}"
    return ThresholdResult(
        threshold,
        m.value,
        m.ci,
        m.bounds,
        m.n,
        outcome,
        reason,
        n_items=m.items,
        method=m.method,
    )


def evaluate(
    thresholds: list[Threshold],
    inputs: GateInputs,
    min_items: int = stats.MIN_COMPARISONS,
    until: str | None = None,
    look: sequential.Look | None = None,
) -> list[ThresholdResult]:
    """Each threshold measured and decided on the study (`interim` with `until`, unless the
    sequential `look` concludes it)."""
    return [decide(t, measure(t, inputs), min_items, until, look) for t in thresholds]


@dataclass(frozen=True)
class Plan:
    """The sample the lock planned (comparisons with their k votes, and the final-review sample)
    and how much of it is in. Until it is complete every threshold is `interim` and the gate
    `inconclusive`, so a look at the numbers part way can neither pass nor fail it."""

    comparisons: int
    votes_per_comparison: int
    final_review: int
    comparisons_reached: int = 0
    final_review_reached: int = 0
    # The chance that every threshold passes at the expected truth, as computed at the lock.
    power: float | None = None

    @property
    def complete(self) -> bool:
        return (
            self.comparisons_reached >= self.comparisons
            and self.final_review_reached >= self.final_review
        )

    def until(self) -> str | None:
        """What the plan still waits for, in words; None once it is complete."""
        if self.complete:
            return None
        waiting = []
        if self.comparisons_reached < self.comparisons:
            waiting.append(
                f"{self.comparisons} comparisons have {self.votes_per_comparison} votes "
                f"(now {self.comparisons_reached})"
            )
        if self.final_review_reached < self.final_review:
            waiting.append(
                f"{self.final_review} final-review outputs are marked "
                f"(now {self.final_review_reached})"
            )
        return " and ".join(waiting)

    def to_json(self) -> dict:
        return {
            "comparisons": self.comparisons,
            "reached": self.comparisons_reached,
            "votes_per_comparison": self.votes_per_comparison,
            "final_review": {"planned": self.final_review, "reached": self.final_review_reached},
            "complete": self.complete,
            "power": self.power,
        }

    def describe(self) -> str:
        return (
            f"{self.comparisons_reached} of {self.comparisons} comparisons have their "
            f"{self.votes_per_comparison} votes; {self.final_review_reached} of "
            f"{self.final_review} final-review outputs marked"
        )


@dataclass(frozen=True)
class GateDecision:
    """The gate: `fail` if any threshold fails, `pass` if every threshold passes, else
    `inconclusive`; while the planned sample is not in (`interim`) every threshold is `interim`
    and the gate `inconclusive`, unless the lock's sequential design lets this `look` conclude
    (`concluded_early`: a threshold failed, or all passed, at the look's boundary)."""

    result: str
    results: list[ThresholdResult]
    plan: Plan | None
    min_items: int
    look: sequential.Look | None = None

    @property
    def interim(self) -> bool:
        return self.plan is not None and not self.plan.complete

    @property
    def concluded_early(self) -> bool:
        return self.interim and self.result in ("pass", "fail")

    def to_json(self) -> dict:
        return {
            "result": self.result,
            "interim": self.interim,
            "concluded_early": self.concluded_early,
            "min_items": self.min_items,
            "planned": self.plan.to_json() if self.plan else None,
            "look": self.look.to_json() if self.look else None,
            "thresholds": [r.to_json() for r in self.results],
        }

    def summary(self) -> str:
        counts = {o: sum(r.outcome == o for r in self.results) for o in OUTCOMES}
        if self.concluded_early:
            return (
                f"concluded early ({self.result}) at look {self.look.index}, "
                f"{self.look.fraction:.0%} of the plan: {counts['pass']} pass, "
                f"{counts['fail']} fail, {counts['interim']} interim of {len(self.results)}"
            )
        if self.interim:
            return f"interim: {len(self.results)} thresholds not decided until {self.plan.until()}"
        return (
            f"{counts['pass']} pass, {counts['fail']} fail, {counts['inconclusive']} inconclusive "
            f"of {len(self.results)} thresholds"
        )


def decide_gate(
    thresholds: list[Threshold],
    inputs: GateInputs,
    min_items: int = stats.MIN_COMPARISONS,
    plan: Plan | None = None,
    look: sequential.Look | None = None,
) -> GateDecision:
    """Every threshold decided, and the gate's one result (see `GateDecision`); `look` is the
    lock's sequential design at this evaluation (None for a lock without one)."""
    until = plan.until() if plan is not None else None
    results = evaluate(thresholds, inputs, min_items, until, look)
    if any(r.outcome == "fail" for r in results):
        result = "fail"
    elif results and all(r.outcome == "pass" for r in results):
        result = "pass"
    else:
        result = "inconclusive"
    return GateDecision(result, results, plan, min_items, look)


# ---- the regression table ----

# What a row says in place of an outcome when no locked regression threshold decides it.
NOT_GATED = (
    "no locked max_regression_points threshold covers this row (its comparison, source and "
    "category): the change is shown, not decided"
)


def change_points(w: stats.WinRate | None) -> float | None:
    """How far system_a is above parity, in points: 100 x (win rate - 0.5); negative = worse
    than system_b. The regression table's sign (the gate decides on its negative, `drop_points`)."""
    drop = drop_points(w)
    return None if drop is None else 0.0 - drop


def _change_ci(w: stats.WinRate) -> list[float] | None:
    """The win rate's 95% CI as an interval of the change in points."""
    return None if w.ci is None else [100 * (w.ci[0] - 0.5), 100 * (w.ci[1] - 0.5)]


def _oriented(threshold: Threshold, w: Row, category: str) -> Row | None:
    """The row as the regression threshold reads it (its systems in its order), or None when the
    threshold does not judge this row: another comparison, source or category (a threshold with
    no categories covers all of them)."""
    p = threshold.params
    if threshold.metric != REGRESSION_METRIC or w.source != p["source"]:
        return None
    # A prediction-powered threshold decides the rows of its judge's estimates, and only those.
    if p.get("judge") != getattr(w, "judge", None):
        return None
    if p["categories"] and category not in p["categories"]:
        return None
    return orient(w, p["system_a"], p["system_b"])


def regression_verdict(
    w: stats.WinRate | ppi.PredictionPowered,
    category: str,
    thresholds: Iterable[Threshold],
    min_items: int = stats.MIN_COMPARISONS,
    until: str | None = None,
    look: sequential.Look | None = None,
) -> dict:
    """The gate's decision on one suite (one category's win rate from one source), in the gate's
    words: `outcome` pass, fail or inconclusive, decided exactly as the gate decides each
    regression threshold that covers the row (its comparison, source and categories) on this
    suite alone, combined as the gate combines thresholds (fail if one fails, pass if all pass);
    `margin` (points) and `reason` are the deciding threshold's; `interim` with `until`, as the
    gate's thresholds are while its plan is not reached. With no covering threshold (or
    no outcomes to decide on), `outcome` and `margin` are None and `reason` says why
    (`NOT_GATED`)."""
    decided = []
    reason = NOT_GATED
    for t in thresholds:
        oriented = _oriented(t, w, category)
        if oriented is None:
            continue
        suite = _suite_measurement(oriented)
        if suite is None:
            if not t.params["categories"]:
                # As in the gate: a category without outcomes is no suite of "every category".
                reason = f"no {w.source} outcomes in this category, so no suite to decide"
                continue
            suite = _unmeasurable(f"category {category} has no {w.source} outcomes")
        result = decide(t, suite, min_items, until, look)
        reason = result.reason
        if oriented.system_a != w.system_a:
            reason = f"read as {oriented.system_a} over {oriented.system_b}: {reason}"
        decided.append((result.outcome, t.value, reason))
    if not decided:
        return {"outcome": None, "margin": None, "reason": reason}
    outcome, margin, reason = next(
        (d for want in ("fail", "inconclusive", "interim") for d in decided if d[0] == want),
        min(decided, key=lambda d: d[1]),  # every one passes: the tightest margin
    )
    return {"outcome": outcome, "margin": margin, "reason": reason}


def regression_table(
    inputs: GateInputs,
    comparisons: Iterable[Iterable[str]],
    thresholds: Iterable[Threshold] = (),
    min_items: int = stats.MIN_COMPARISONS,
    until: str | None = None,
    look: sequential.Look | None = None,
) -> list[dict]:
    """The one regression table: the Results screen, the scorecard and the report all show it,
    and its outcomes are the gate's. One row per category, comparison and source (humans and
    each real judge; baselines say nothing about regressions): the win rate of system_a over
    system_b with its 95% CI, read with the candidate first (`orient`; a comparison without the
    candidate keeps the study's order), the `change_points` of system_a versus system_b with the
    same interval in points, `n` comparisons (what the gate's minimum counts), and
    `regression_verdict`'s outcome, margin and reason under the study's regression thresholds
    (any other thresholds are ignored). A prediction-powered regression threshold adds a row of
    its judge's estimate per suite (source "humans + JUDGE (PPI)"), which it alone decides."""
    wanted = {frozenset(c) for c in comparisons}
    thresholds = list(thresholds)
    ppi_judges = judges_named(thresholds, (REGRESSION_METRIC,))
    rows = []
    for category, rates in sorted(inputs.category_win_rates.items()):
        for w in rates:
            if frozenset((w.system_a, w.system_b)) not in wanted or baselines.is_baseline(w.source):
                continue
            w = (orient(w, inputs.candidate) if inputs.candidate else None) or w
            estimates: list = [w]
            if w.source == HUMANS:
                for judge in ppi_judges:
                    found = inputs.ppi_win_rate(judge, w.system_a, w.system_b, category)
                    if not isinstance(found, str) and found.value is not None:
                        estimates.append(found)
            for e in estimates:
                rows.append(
                    {
                        "category": category,
                        "system_a": e.system_a,
                        "system_b": e.system_b,
                        "source": e.source if e is w else f"{HUMANS} + {e.judge} (PPI)",
                        "win_rate": e.value,
                        "win_rate_ci": list(e.ci) if e.ci else None,
                        "change_points": change_points(e),
                        "change_ci": _change_ci(e),
                        "n": e.n_comparisons if e is w else e.n_human,
                    }
                    | regression_verdict(e, category, thresholds, min_items, until, look)
                )
    return rows


# ---- error analysis ----

PROMPT_BUCKETS = ((0, 200, "short prompt (< 200 chars)"), (200, 600, "medium prompt (200-600)"))
PROMPT_BUCKETS += ((600, None, "long prompt (> 600)"),)
OUTPUT_BUCKETS = ((0, 300, "short output (< 300 chars)"), (300, 1000, "medium output (300-1000)"))
OUTPUT_BUCKETS += ((1000, None, "long output (> 1000)"),)


def _candidate_outcomes(pairs: pd.DataFrame, votes: pd.DataFrame, candidate: str) -> pd.DataFrame:
    """One row per human vote on a pair with the candidate: its result (win/tie/loss/both_bad)."""
    involved = pairs[(pairs.system_x == candidate) | (pairs.system_y == candidate)]
    merged = votes.merge(involved, on="pair_id")
    if merged.empty:
        return merged.assign(result=[], len_candidate=[])
    side = merged.system_x.eq(candidate).map({True: "x", False: "y"})
    result = merged.outcome.where(merged.outcome.isin(["tie", "both_bad"]), None)
    result = result.where(result.notna(), merged.outcome.eq(side).map({True: "win", False: "loss"}))
    len_candidate = merged.len_x.where(side == "x", merged.len_y)
    return merged.assign(result=result, len_candidate=len_candidate)


def _bucket_index(values: np.ndarray, buckets) -> np.ndarray:
    """The index of each value's bucket: the first whose [low, high) holds it, else the last."""
    values = values.astype(np.int64)
    index = np.full(len(values), len(buckets) - 1)
    for i in reversed(range(len(buckets))):
        low, high, _ = buckets[i]
        index[(values >= low) & ((values < high) if high is not None else True)] = i
    return index


def length_breakdown(pairs: pd.DataFrame, votes: pd.DataFrame, candidate: str) -> list[dict]:
    """Human outcomes of the candidate by prompt-length and by its output-length bucket."""
    outcomes = _candidate_outcomes(pairs, votes, candidate)
    rows = []
    for dimension, column, buckets in (
        ("prompt length", "len_prompt", PROMPT_BUCKETS),
        ("output length", "len_candidate", OUTPUT_BUCKETS),
    ):
        index = _bucket_index(outcomes[column].to_numpy(), buckets)
        result = outcomes["result"].to_numpy(object) if len(outcomes) else np.array([], object)
        for i, (_, _, label) in enumerate(buckets):
            results = result[index == i]
            n = len(results)
            counts = {k: int((results == k).sum()) for k in ("win", "tie", "both_bad", "loss")}
            score = counts["win"] + 0.5 * (counts["tie"] + counts["both_bad"])
            rows.append(
                {
                    "dimension": dimension,
                    "bucket": label,
                    "n": n,
                    **counts,
                    "win_rate": score / n if n else None,
                }
            )
    return rows


def candidate_losses(pairs: pd.DataFrame, majority: pd.Series, candidate: str) -> list[dict]:
    """Comparisons whose human majority (`majority`, as `stats.majority_labels` gives it)
    prefers the other system (pair_id, category, item_id, opponent, and `side`: the candidate's,
    x or y), by category, item and opponent. Read from the lean frames: `loss_texts` adds the
    texts of the few a screen draws in full."""
    mine = pairs[(pairs.system_x == candidate) | (pairs.system_y == candidate)]
    label = mine.pair_id.map(majority)
    side = mine.system_x.eq(candidate).map({True: "x", False: "y"})
    lost = mine[label.notna() & (label != "tie") & (label != side)]
    out = [
        {
            "pair_id": int(p.pair_id),
            "category": p.category,
            "item_id": p.item_key,
            "opponent": p.system_y if p.system_x == candidate else p.system_x,
            "side": "x" if p.system_x == candidate else "y",
        }
        for p in lost.itertuples()
    ]
    return sorted(out, key=lambda r: (r["category"], r["item_id"], r["opponent"]))


def loss_texts(losses: list[dict], texts: list[dict], rationales: list[dict]) -> list[dict]:
    """`losses` (from `candidate_losses`) with the prompt, the candidate's and the opponent's
    output (`texts`: pair_id, prompt, output_x, output_y) and the rationales of the counted
    votes on each, in vote order (`rationales`: pair_id, rationale)."""
    by_pair = {t["pair_id"]: t for t in texts}
    said: dict[int, list[str]] = {}
    for r in rationales:
        if isinstance(r["rationale"], str) and r["rationale"].strip():
            said.setdefault(r["pair_id"], []).append(r["rationale"])
    out = []
    for loss in losses:
        t = by_pair[loss["pair_id"]]
        mine, theirs = ("output_x", "output_y") if loss["side"] == "x" else ("output_y", "output_x")
        out.append(
            loss
            | {
                "prompt": t["prompt"],
                "candidate_output": t[mine],
                "opponent_output": t[theirs],
                "rationales": said.get(loss["pair_id"], []),
            }
        )
    return out


def judge_preference(
    pairs: pd.DataFrame, verdicts: pd.DataFrame, candidate: str
) -> dict[str, float]:
    """item_id -> how strongly real (non-baseline) judges preferred the candidate there: the mean
    of 1 (candidate won), 0.5 (tie), 0 (lost) over its parsed verdicts, by item id."""
    if verdicts.empty:
        return {}
    # On arrays, each judge's label tested once: every screen with the gate asks this of every
    # verdict of the study.
    judges = verdicts["judge"].astype(str)
    named = [j for j in judges.unique() if baselines.is_baseline(j)]
    at = pd.Index(pairs["pair_id"]).get_indexer(verdicts["pair_id"])
    outcome = verdicts["outcome"].to_numpy(dtype=object)
    keep = (at >= 0) & ~judges.isin(named).to_numpy() & pd.notna(outcome)
    at, outcome = at[keep], outcome[keep]
    mine_x = pairs["system_x"].to_numpy(dtype=object)[at] == candidate
    mine = mine_x | (pairs["system_y"].to_numpy(dtype=object)[at] == candidate)
    if not mine.any():
        return {}
    side = np.where(mine_x, "x", "y").astype(object)
    points = (outcome == side).astype(float) + 0.5 * (outcome == "tie")
    items, keys = pd.factorize(pairs["item_key"].to_numpy(dtype=object)[at][mine], sort=True)
    # Exact sums (halves), so each mean is the one a groupby gives.
    means = np.bincount(items, points[mine]) / np.bincount(items)
    return dict(zip(keys.tolist(), means.tolist(), strict=True))
