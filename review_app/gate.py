"""The final human gate: threshold metrics (each owns its measure), the content hash that pins a
locked set of thresholds, their evaluation, the per-category regression verdicts, and the results
screen's error analysis. Pure functions over plain data: storage lives in the store, rendering in
report.py."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from review_app import baselines, stats
from review_app.errors import InputError
from review_app.report import format_ci

COMPARATORS = (">=", ">", "<=", "<")
HUMANS = stats.HUMANS
REGRESSION_METRIC = "max_regression_points"


@dataclass
class GateInputs:
    """Everything thresholds are evaluated against, computed once per study."""

    calibration: stats.Calibration
    win_rates: list[stats.WinRate]
    category_win_rates: dict[str, list[stats.WinRate]]
    final_review: dict[str, Any] = field(default_factory=lambda: {"n": 0, "acceptable": 0})

    def win_rate(
        self, a: str, b: str, source: str, category: str | None = None
    ) -> stats.WinRate | None:
        rates = self.win_rates if category is None else self.category_win_rates.get(category, [])
        return next(
            (w for w in rates if (w.system_a, w.system_b, w.source) == (a, b, source)), None
        )


@dataclass(frozen=True)
class Measurement:
    """One metric measured on a study; `value` is None when it cannot be, `detail` says why."""

    value: float | None
    ci: tuple[float, float] | None
    n: int | None
    detail: str


def _unmeasurable(reason: str, n: int | None = 0) -> Measurement:
    return Measurement(None, None, n, reason)


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
    return Measurement(w.value, w.ci, w.n, f"{w.wins} wins, {w.ties} ties, {w.losses} losses")


def _measure_win_rate_ci_low(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    w = _overall_win_rate(params, inputs)
    if w is None:
        return _no_win_rate(params)
    low = w.ci[0] if w.ci else None
    return Measurement(low, w.ci, w.n, f"win rate {w.value:.3f}, CI {format_ci(w.ci, digits=3)}")


def _agreement(judge: stats.JudgeStats | stats.HumanStats, ties: str) -> stats.Estimate:
    return judge.agreement_with_ties if ties == "with" else judge.agreement_without_ties


def _measure_agreement(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    judge = inputs.calibration.overall.judge(params["judge"])
    if judge is None:
        return _unmeasurable(f"no verdicts from judge {params['judge']}")
    est = _agreement(judge, params["ties"])
    if est.value is None:
        return _unmeasurable("no comparison with both a vote and a parsed verdict", est.n)
    return Measurement(est.value, est.ci, est.n, f"{params['ties']} ties")


def _measure_agreement_vs_ceiling(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    judge = _measure_agreement(params, inputs)
    if judge.value is None:
        return judge
    ceiling = _agreement(inputs.calibration.overall.humans, params["ties"])
    if ceiling.value is None:
        return _unmeasurable("no human-human overlap to measure the ceiling", judge.n)
    return Measurement(
        judge.value - ceiling.value,
        None,
        judge.n,
        f"judge {judge.value:.3f} vs humans {ceiling.value:.3f} ({params['ties']} ties)",
    )


def _measure_beats_baseline(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    overall = inputs.calibration.overall
    judge, baseline = overall.judge(params["judge"]), overall.judge(params["baseline"])
    if judge is None or baseline is None:
        missing = params["judge"] if judge is None else params["baseline"]
        return _unmeasurable(f"no verdicts from judge {missing}")
    a, b = judge.agreement_without_ties, baseline.agreement_without_ties
    if a.value is None or b.value is None:
        return _unmeasurable("agreement without ties is not measurable", a.n)
    return Measurement(
        a.value - b.value, None, a.n, f"judge {a.value:.3f} vs {params['baseline']} {b.value:.3f}"
    )


def drop_points(w: stats.WinRate | None) -> float | None:
    """How far system_a is below parity, in points: 100 x (0.5 - win rate); negative = above.

    Rounded to 9 decimals so that a win rate exactly at the tolerance (say 7/20, a 15-point drop)
    compares as equal to it instead of failing on floating-point noise (15.000000000000002)."""
    if w is None or w.value is None:
        return None
    return round(100 * (0.5 - w.value), 9)


def _measure_max_regression(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    a, b, source = params["system_a"], params["system_b"], params["source"]
    worst: tuple[float, str, stats.WinRate] | None = None
    for category in params["categories"] or sorted(inputs.category_win_rates):
        w = inputs.win_rate(a, b, source, category)
        drop = drop_points(w)
        if drop is None:
            if params["categories"]:  # a named regression suite must be measured, never skipped
                return _unmeasurable(f"category {category} has no {source} outcomes")
            continue
        if worst is None or drop > worst[0]:
            worst = (drop, category, w)
    if worst is None:
        return _unmeasurable("no category has outcomes for this comparison")
    drop, category, w = worst
    return Measurement(drop, None, w.n, f"worst: {category} (win rate {w.value:.3f}, n={w.n})")


def _measure_final_review(params: dict[str, Any], inputs: GateInputs) -> Measurement:
    n, ok = inputs.final_review["n"], inputs.final_review["acceptable"]
    if not n:
        return _unmeasurable("the final review has not been done")
    return Measurement(ok / n, None, n, f"{ok} of {n} acceptable")


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


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "human_win_rate",
            "Human win rate",
            ("system_a", "system_b"),
            ">=",
            0.6,
            "(wins + 0.5 ties) / votes of system_a over system_b, from human votes.",
            measure=_measure_win_rate,
        ),
        Metric(
            "human_win_rate_ci_low",
            "Human win rate, CI lower bound",
            ("system_a", "system_b"),
            ">=",
            0.5,
            "Lower end of the 95% bootstrap CI of the human win rate.",
            measure=_measure_win_rate_ci_low,
        ),
        Metric(
            "judge_win_rate",
            "Judge win rate",
            ("system_a", "system_b", "judge"),
            ">=",
            0.6,
            "Win rate of system_a over system_b from the judge's combined verdicts.",
            measure=_measure_win_rate,
        ),
        Metric(
            "judge_agreement",
            "Judge-human agreement",
            ("judge", "ties"),
            ">=",
            0.8,
            "Share of (vote, combined verdict) pairs that agree; ties = with | without.",
            measure=_measure_agreement,
        ),
        Metric(
            "judge_agreement_vs_ceiling",
            "Judge agreement minus human-human agreement",
            ("judge", "ties"),
            ">=",
            0.0,
            "Judge-human agreement minus the human-human ceiling (0 = as good as a human).",
            measure=_measure_agreement_vs_ceiling,
        ),
        Metric(
            "judge_beats_baseline",
            "Judge agreement minus a baseline's",
            ("judge", "baseline"),
            ">",
            0.0,
            "Judge-human agreement without ties minus the same for a baseline judge.",
            measure=_measure_beats_baseline,
        ),
        Metric(
            REGRESSION_METRIC,
            "Worst regression versus the reference system, in points",
            ("system_a", "system_b", "categories", "source"),
            "<=",
            5.0,
            "Worst category (of the listed ones; empty = all) by 100 x (0.5 - win rate of "
            "system_a over system_b); source = humans or a judge label.",
            measure=_measure_max_regression,
        ),
        Metric(
            "final_review_acceptable_rate",
            "Final review: acceptable rate",
            (),
            ">=",
            0.9,
            "Share of the signer's final-review sample marked acceptable.",
            measure=_measure_final_review,
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
    unknown = set(params) - set(spec.params)
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
            clean[name] = raw or "without"
            if clean[name] not in ("with", "without"):
                raise InputError(f"metric {metric}: ties must be 'with' or 'without'")
        elif name == "source":
            clean[name] = raw or HUMANS
        else:
            if not raw or not str(raw).strip():
                raise InputError(f"metric {metric} needs the parameter {name}")
            clean[name] = str(raw).strip()
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


@dataclass(frozen=True)
class ThresholdResult:
    threshold: Threshold
    value: float | None
    ci: tuple[float, float] | None
    n: int | None
    passed: bool
    detail: str

    def to_json(self) -> dict:
        return {
            "threshold": self.threshold.key(),
            "description": self.threshold.describe(),
            "value": self.value,
            "ci": list(self.ci) if self.ci else None,
            "n": self.n,
            "passed": self.passed,
            "detail": self.detail,
        }


def _meets(value: float, threshold: Threshold) -> bool:
    return {
        ">=": value >= threshold.value,
        ">": value > threshold.value,
        "<=": value <= threshold.value,
        "<": value < threshold.value,
    }[threshold.comparator]


def measure(threshold: Threshold, inputs: GateInputs) -> Measurement:
    """One threshold's metric measured on the study."""
    return _metric(threshold.metric).measure(threshold.params, inputs)


def evaluate(thresholds: list[Threshold], inputs: GateInputs) -> list[ThresholdResult]:
    """Each threshold against the study; one that cannot be measured fails, saying why."""
    results = []
    for t in thresholds:
        m = measure(t, inputs)
        if m.value is None:
            results.append(
                ThresholdResult(t, None, m.ci, m.n, False, f"not measurable: {m.detail}")
            )
        else:
            results.append(ThresholdResult(t, m.value, m.ci, m.n, _meets(m.value, t), m.detail))
    return results


# ---- the regression table ----


def _covers(threshold: Threshold, w: stats.WinRate, category: str) -> bool:
    """Whether a regression threshold judges this row: its comparison, in its orientation, from
    its source, in one of its categories (all of them when it lists none)."""
    p = threshold.params
    return (
        threshold.metric == REGRESSION_METRIC
        and (w.system_a, w.system_b, w.source) == (p["system_a"], p["system_b"], p["source"])
        and (not p["categories"] or category in p["categories"])
    )


def regression_verdict(w: stats.WinRate, category: str, thresholds: Iterable[Threshold]) -> str:
    """The gate's verdict on one category's win rate: "not gated" when no regression threshold
    covers it, "n/a" when it has no outcomes, "regression" when its drop alone would fail a
    covering threshold (the same number and comparison the gate uses), else "ok"."""
    covering = [t for t in thresholds if _covers(t, w, category)]
    if not covering:
        return "not gated"
    drop = drop_points(w)
    if drop is None:
        return "n/a"
    return "ok" if all(_meets(drop, t) for t in covering) else "regression"


def regression_table(
    inputs: GateInputs,
    comparisons: Iterable[Iterable[str]],
    thresholds: Iterable[Threshold] = (),
) -> list[dict]:
    """Per category and comparison, from humans and from each real judge (baselines say nothing
    about regressions): system_a's win rate, its `drop_points` below parity, and the gate's
    `verdict` under the study's regression thresholds (any other thresholds are ignored)."""
    wanted = {tuple(c) for c in comparisons}
    thresholds = list(thresholds)
    rows = []
    for category, rates in sorted(inputs.category_win_rates.items()):
        for w in rates:
            if (w.system_a, w.system_b) not in wanted or baselines.is_baseline(w.source):
                continue
            rows.append(
                {
                    "category": category,
                    "system_a": w.system_a,
                    "system_b": w.system_b,
                    "source": w.source,
                    "value": w.value,
                    "ci": list(w.ci) if w.ci else None,
                    "n": w.n,
                    "drop_points": drop_points(w),
                    "verdict": regression_verdict(w, category, thresholds),
                }
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


def _bucket(value: int, buckets) -> str:
    for low, high, label in buckets:
        if value >= low and (high is None or value < high):
            return label
    return buckets[-1][2]


def length_breakdown(pairs: pd.DataFrame, votes: pd.DataFrame, candidate: str) -> list[dict]:
    """Human outcomes of the candidate by prompt-length and by its output-length bucket."""
    outcomes = _candidate_outcomes(pairs, votes, candidate)
    rows = []
    for dimension, column, buckets in (
        ("prompt length", "len_prompt", PROMPT_BUCKETS),
        ("output length", "len_candidate", OUTPUT_BUCKETS),
    ):
        labels = [_bucket(int(v), buckets) for v in outcomes[column]] if len(outcomes) else []
        for _, _, label in buckets:
            mask = [lab == label for lab in labels]
            results = outcomes.result[mask] if len(outcomes) else pd.Series(dtype=object)
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


def candidate_losses(pairs: pd.DataFrame, votes: pd.DataFrame, candidate: str) -> list[dict]:
    """Comparisons whose human majority prefers the other system, with both outputs."""
    majority = stats.majority_labels(pairs, votes)
    rationales = votes.groupby("pair_id")["rationale"].apply(
        lambda s: [r for r in s if isinstance(r, str) and r.strip()]
    )
    out = []
    for p in pairs.itertuples():
        if candidate not in (p.system_x, p.system_y) or p.pair_id not in majority.index:
            continue
        side = "x" if p.system_x == candidate else "y"
        label = majority[p.pair_id]
        if label in ("tie", side):
            continue
        out.append(
            {
                "pair_id": int(p.pair_id),
                "category": p.category,
                "item_id": p.item_key,
                "opponent": p.system_y if side == "x" else p.system_x,
                "prompt": p.prompt,
                "candidate_output": p.output_x if side == "x" else p.output_y,
                "opponent_output": p.output_y if side == "x" else p.output_x,
                "rationales": list(rationales.get(p.pair_id, [])),
            }
        )
    return sorted(out, key=lambda r: (r["category"], r["item_id"], r["opponent"]))


def judge_preference(
    pairs: pd.DataFrame, verdicts: pd.DataFrame, candidate: str
) -> dict[str, float]:
    """item_id -> how strongly real (non-baseline) judges preferred the candidate there: the mean
    of 1 (candidate won), 0.5 (tie), 0 (lost) over its parsed verdicts."""
    if verdicts.empty:
        return {}
    real = verdicts[~verdicts.judge.astype(str).map(baselines.is_baseline).astype(bool)]
    merged = real[real.outcome.notna()].merge(pairs, on="pair_id")
    merged = merged[(merged.system_x == candidate) | (merged.system_y == candidate)]
    if merged.empty:
        return {}
    side = merged.system_x.eq(candidate).map({True: "x", False: "y"})
    points = merged.outcome.eq(side).astype(float) + 0.5 * merged.outcome.eq("tie")
    return points.groupby(merged.item_key).mean().to_dict()
