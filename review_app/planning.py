"""Study designs and their power: for a set of thresholds, the chance that every one of them
passes when the truth is the stated one (`expected_truth`), at a design (votes per comparison,
final-review outputs) over the study's comparisons, and the smallest design that reaches the
target. Pure functions over the study's shape (how many comparisons each threshold reads), so a
plan reads no outcome and is safe before the lock.

The model (docs/statistics.md, "Plans"): each threshold is decided on its one-sided 95% bound,
approximated by a normal test on the units it counts (comparisons, or outputs decided exactly by
the binomial and Wilson's bound); the k votes of one comparison are correlated (an item-level
intra-class correlation `VOTE_CORRELATION`), so k votes are worth less than k comparisons; the
chance that all thresholds pass is the product of their powers (suites of a regression threshold
are disjoint; thresholds read off the same votes are positively correlated, which only makes
the product a lower bound)."""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from review_app import distributions, gate, sequential, stats
from review_app.errors import InputError

# The correlation of two votes on one comparison. Simulated studies with item difficulty spread
# as in real ones (a logit-normal with sd 1) have about 0.17; 0.3 is on the safe side.
VOTE_CORRELATION = 0.3
# The standard deviation of a per-comparison difference of agreement shares (judge minus
# ceiling, judge minus baseline, verbosity gap) and of a per-output pass/fail change: these lie
# in [-1, 1] and are mostly 0, so 0.5 is an upper value.
DIFFERENCE_SD = 0.5
# Superiority bars are planned for a truth this far beyond the bar, non-inferiority margins for
# exact parity, the final review for this acceptable share.
SUPERIORITY_EFFECT = 0.05
FINAL_REVIEW_TRUTH = 0.97
TARGET_POWER = 0.8
# Below this power a lock needs a recorded reason.
LOCK_POWER_FLOOR = 0.5
MAX_VOTES_PER_COMPARISON = 7
# A signer reads every output of the final review: a plan never asks for more than this.
MAX_FINAL_REVIEW = 1000

# Metrics decided on human votes: their units carry k correlated votes each.
_HUMAN_VOTED = {"human_win_rate", "human_win_rate_ci_low", "human_lc_win_rate"}


def ppi_variance_ratio(correlation: float, human: int, items: int) -> float:
    """The variance of a prediction-powered mean over the humans-only one at the same `human`
    labels, when the judge scores all `items` (the tuned weight at its optimum, large samples):
    1 - rho^2 x (the share of items without human labels)."""
    if items <= 0 or human >= items:
        return 1.0
    return 1 - correlation**2 * (items - human) / items


def ppi_labels_needed(correlation: float, human_only: int, items: int) -> int:
    """Human labels that give a prediction-powered mean the variance of `human_only` labels
    alone, with the judge on all `items`: n' = n (1 - rho^2) / (1 - rho^2 n / N)."""
    rho2 = correlation**2
    if items <= 0 or human_only >= items:
        return human_only
    return math.ceil(human_only * (1 - rho2) / (1 - rho2 * human_only / items))


def human_subset(pairs: Sequence[Mapping], share: float, seed: str) -> set[int]:
    """The pair ids reviewers see at `share`: in each comparison and category, the
    ceil(share x n) items ranked first by a hash of the seed and the item key (so the draw is
    random, stratified, and reproducible from the seed). `pairs` rows carry pair_id, system_x,
    system_y, item_key, category."""
    if not 0 < share <= 1:
        raise InputError(f"the human share must be in (0, 1], got {share:g}")
    strata: dict[tuple, list[tuple[str, int]]] = {}
    for p in pairs:
        key = (p["system_x"], p["system_y"], p["category"] or "")
        rank = hashlib.sha256(
            f"{seed}\x1f{p['system_x']}\x1f{p['system_y']}\x1f{p['item_key']}".encode()
        ).hexdigest()
        strata.setdefault(key, []).append((rank, p["pair_id"]))
    chosen: set[int] = set()
    for members in strata.values():
        members.sort()
        take = math.ceil(share * len(members) - 1e-9)
        chosen.update(pair_id for _, pair_id in members[:take])
    return chosen


def subset_hash(pair_ids: Sequence[int] | set[int]) -> str:
    """A digest of a human subset (its sorted pair ids): what the audit log and the lock pin."""
    return hashlib.sha256(",".join(map(str, sorted(pair_ids))).encode()).hexdigest()


@dataclass(frozen=True)
class StudyShape:
    """What a plan needs to know about a study, none of it an outcome: the items of each
    comparison per category ({(a, b): {category: items}}), the items of each category and of
    each system, and how many of the candidate's outputs the final review could sample."""

    suites: Mapping[tuple[str, str], Mapping[str, int]]
    candidate_outputs: int
    candidate: str = ""
    category_items: Mapping[str, int] = field(default_factory=dict)
    system_items: Mapping[str, int] = field(default_factory=dict)
    # The share of each comparison's items reviewers see (the rest are judged only).
    human_share: float = 1.0
    # Per judge, the correlation of its per-item score with the humans' (on the dev split, or
    # every voted comparison without one): what a prediction-powered threshold gains from it.
    judge_correlation: Mapping[str, float] = field(default_factory=dict)

    def human_items(self, n: int) -> int:
        """Of `n` items, how many carry human votes."""
        return min(n, math.ceil(n * self.human_share - 1e-9))

    def items(self, a: str, b: str, category: str | None = None) -> int:
        suites = self.suites.get((a, b)) or self.suites.get((b, a)) or {}
        return sum(suites.values()) if category is None else int(suites.get(category, 0))

    def categories(self, a: str, b: str) -> list[str]:
        return sorted(self.suites.get((a, b)) or self.suites.get((b, a)) or {})

    @property
    def all_items(self) -> int:
        return max((sum(s.values()) for s in self.suites.values()), default=0)

    def scaled(self, factor: float) -> StudyShape:
        """The same study with `factor` times as many items in every suite."""

        def grow(counts: Mapping[str, int]) -> dict[str, int]:
            return {k: math.ceil(v * factor) for k, v in counts.items()}

        return StudyShape(
            {c: grow(s) for c, s in self.suites.items()},
            self.candidate_outputs,
            self.candidate,
            grow(self.category_items),
            grow(self.system_items),
            self.human_share,
            self.judge_correlation,
        )


@dataclass(frozen=True)
class Design:
    """What a study collects: k votes on each of its comparisons, and a final review of this
    many of the candidate's outputs."""

    votes_per_comparison: int
    final_review: int

    def describe(self) -> str:
        return (
            f"{self.votes_per_comparison} vote(s) per comparison, a final review of "
            f"{self.final_review} outputs"
        )


@dataclass(frozen=True)
class ThresholdPower:
    """One threshold at a design: the truth it is planned for, the units it reads (per suite for
    a regression), the chance it passes at that truth and at its bar (a false pass)."""

    description: str
    metric: str
    truth: float
    units: int
    power: float
    false_pass: float
    basis: str

    def to_json(self) -> dict:
        return {
            "description": self.description,
            "metric": self.metric,
            "truth": self.truth,
            "units": self.units,
            "power": round(self.power, 4),
            "false_pass": round(self.false_pass, 4),
            "basis": self.basis,
        }


@dataclass(frozen=True)
class DesignPower:
    """A design and the chance that every threshold passes under it (the product of `rows`)."""

    design: Design
    rows: list[ThresholdPower]
    items: int
    expectations: dict[str, float] = field(default_factory=dict)

    @property
    def power(self) -> float:
        return math.prod(r.power for r in self.rows) if self.rows else 0.0

    def to_json(self) -> dict:
        return {
            "votes_per_comparison": self.design.votes_per_comparison,
            "final_review": self.design.final_review,
            "items": self.items,
            "power": round(self.power, 4),
            "expectations": dict(self.expectations),
            "thresholds": [r.to_json() for r in self.rows],
        }


# Looks the planner assumes a sequential study takes: one after every tenth of the plan.
PLANNED_LOOKS = 10


@dataclass(frozen=True)
class ExpectedLabels:
    """Human votes at the stated truth, read off the least powered threshold decided on human
    votes (the one that decides when the study can stop): what the current design collects
    (`fixed`) and is expected to collect when it stops at the first look whose boundary is
    crossed (looks after every tenth of the plan; `sequential`, with its power); and for
    `TARGET_POWER`, the votes humans alone need (fixed, and expected with looks), and with a
    judge's prediction-powered estimates over the study's items (None where the study has too
    few items for the target)."""

    binding: str
    fixed: int
    sequential: float
    sequential_power: float
    target_fixed: int | None = None
    target_sequential: float | None = None
    judge: str | None = None
    correlation: float | None = None
    target_with_judge: int | None = None
    target_with_judge_sequential: float | None = None

    def to_json(self) -> dict:
        def rounded(x: float | None) -> float | None:
            return None if x is None else round(x, 1)

        return {
            "binding_threshold": self.binding,
            "looks": PLANNED_LOOKS,
            "fixed": self.fixed,
            "sequential": rounded(self.sequential),
            "sequential_power": round(self.sequential_power, 4),
            "target_power": TARGET_POWER,
            "target_fixed": self.target_fixed,
            "target_sequential": rounded(self.target_sequential),
            "judge": self.judge,
            "correlation": None if self.correlation is None else round(self.correlation, 4),
            "target_with_judge": self.target_with_judge,
            "target_with_judge_sequential": rounded(self.target_with_judge_sequential),
        }

    def lines(self) -> list[str]:
        target = f"{TARGET_POWER:.0%}"
        lines = [
            f"human votes at the stated truth (the least powered: {self.binding}):",
            f"  this design: {self.fixed}; stopping at the first decisive look (a look after "
            f"every tenth of the plan): {self.sequential:.0f} expected, power "
            f"{self.sequential_power:.0%}",
        ]
        if self.target_fixed is None:
            lines.append(f"  for {target} power: not estimable (the design has no power yet)")
            return lines
        lines.append(
            f"  for {target} power, humans alone: {self.target_fixed} fixed, "
            f"{self.target_sequential:.0f} expected with looks"
        )
        if self.judge is not None and self.correlation is None:
            lines.append(
                f"  with {self.judge}: no correlation with the humans to plan with (it needs 10 "
                "voted comparisons it judged; before the lock, an imported or one-sided judge's "
                "needs a personal token and is a recorded look)"
            )
        elif self.judge is not None and self.target_with_judge is None:
            lines.append(
                f"  with {self.judge} (correlation {self.correlation:.2f}): the study has too few "
                "items for the judge to stand in for humans on the rest"
            )
        elif self.judge is not None:
            lines.append(
                f"  prediction-powered with {self.judge} judging every item (correlation "
                f"{self.correlation:.2f} with the humans): {self.target_with_judge} fixed, "
                f"{self.target_with_judge_sequential:.0f} expected with looks"
            )
        return lines


def expected_labels(
    humans_only: DesignPower, shape: StudyShape, judge: str | None = None
) -> ExpectedLabels | None:
    """`ExpectedLabels` of a design whose power is computed for humans alone (None without a
    threshold read off human votes)."""
    human_rows = [
        r
        for r in humans_only.rows
        if r.metric in _HUMAN_VOTED or r.metric == gate.REGRESSION_METRIC
    ]
    if not human_rows:
        return None
    binding = min(human_rows, key=lambda r: r.power)
    k = humans_only.design.votes_per_comparison
    items = sum(sum(s.values()) for s in shape.suites.values())
    human = sum(shape.human_items(n) for s in shape.suites.values() for n in s.values())
    z = float(distributions.norm_isf(0.05))
    drift = z + float(distributions.norm_ppf(min(max(binding.power, 1e-9), 1 - 1e-9)))
    looks = sequential.boundaries(tuple((i + 1) / PLANNED_LOOKS for i in range(PLANNED_LOOKS)))
    ups, downs = sequential.stopping(looks, drift)
    stops = [u + d for u, d in zip(ups, downs, strict=True)]
    stops[-1] = 1 - sum(stops[:-1])
    fraction = sum(q * look.fraction for q, look in zip(stops, looks, strict=True))
    fields = {
        "binding": binding.description,
        "fixed": human * k,
        "sequential": human * k * fraction,
        "sequential_power": sum(ups),
        "judge": judge,
    }
    if drift > 0.25 and human:
        # A label's variance share is 1/n: the labels for the target grow as the squared drift.
        target_drift = z + float(distributions.norm_ppf(TARGET_POWER))
        needed = math.ceil(human * (target_drift / drift) ** 2)
        ratio = sequential.expected(target_drift, PLANNED_LOOKS).expected_ratio
        fields |= {"target_fixed": needed * k, "target_sequential": needed * k * ratio}
        rho = shape.judge_correlation.get(judge) if judge else None
        if rho is not None:
            fields["correlation"] = rho
            if needed <= items:
                with_judge = ppi_labels_needed(rho, needed, items) * k
                fields |= {
                    "target_with_judge": with_judge,
                    "target_with_judge_sequential": with_judge * ratio,
                }
    elif judge is not None and judge in shape.judge_correlation:
        fields["correlation"] = shape.judge_correlation[judge]
    return ExpectedLabels(**fields)


@dataclass(frozen=True)
class Proposal:
    """The study's current design and its power, the smallest design over the study's items that
    reaches `TARGET_POWER` (None when none does), and otherwise how many times the study's items
    the current k would need (`items_factor`, None when even that cannot reach it); `labels`,
    the human votes expected at the stated truth (`ExpectedLabels`)."""

    current: DesignPower
    proposed: DesignPower | None
    items_factor: float | None
    labels: ExpectedLabels | None = None

    def to_json(self) -> dict:
        return {
            "target": TARGET_POWER,
            "current": self.current.to_json(),
            "proposed": self.proposed.to_json() if self.proposed else None,
            "items_factor": self.items_factor,
            "labels": self.labels.to_json() if self.labels else None,
        }

    def lines(self) -> list[str]:
        """The plan in words: each threshold at the current design, then `conclusion`."""
        current = self.current
        lines = [f"current design: {current.design.describe()}, over {current.items} items"]
        for r in current.rows:
            lines.append(
                f"  {r.description}: planned for {r.truth:g}; power {r.power:.0%}, false pass at the "
                f"bar {r.false_pass:.1%} ({r.units} units; {r.basis})"
            )
        return lines + self.conclusion() + (self.labels.lines() if self.labels else [])

    def conclusion(self) -> list[str]:
        """The chance that every threshold passes now, and what reaches the target."""
        lines = [f"chance that every threshold passes: {self.current.power:.0%}"]
        target = f"{TARGET_POWER:.0%}"
        if self.proposed is not None:
            d = self.proposed
            lines.append(f"smallest design with {target}: {d.design.describe()} ({d.power:.0%})")
            lines.append(
                f"  set it with: review-app study plan STUDY --reviews-per-pair "
                f"{d.design.votes_per_comparison}"
                + (f" --final-review {d.design.final_review}" if d.design.final_review else "")
            )
        elif self.items_factor is not None:
            lines.append(
                f"no design over these items reaches {target}: it needs about "
                f"{self.items_factor:g} times as many items"
            )
        else:
            lines.append(f"no design reaches {target}, even with 50 times as many items")
        return lines


# ---- the truth a plan is made for ----


def parse_expectations(pairs: Sequence[str]) -> dict[str, float]:
    """`METRIC=VALUE` pairs as {metric: value}; InputError names a bad one."""
    out: dict[str, float] = {}
    for raw in pairs:
        metric, sep, value = raw.partition("=")
        metric = metric.strip()
        if not sep or metric not in gate.METRICS:
            raise InputError(
                f"--expect {raw!r}: give METRIC=VALUE with METRIC one of {', '.join(gate.METRICS)}"
            )
        try:
            out[metric] = float(value)
        except ValueError:
            raise InputError(f"--expect {raw!r}: {value!r} is not a number") from None
        low, high = _EXPECT_RANGE[gate.METRICS[metric].kind]
        if not low <= out[metric] <= high:
            raise InputError(
                f"--expect {raw!r}: a {metric} lies between {low:g} and {high:g}, not {value}"
            )
    return out


# Where each kind of metric can lie: a share, points below parity, a difference of shares, the
# distance of a share from one half.
_EXPECT_RANGE = {
    "share": (0.0, 1.0),
    "points": (-100.0, 100.0),
    "difference": (-1.0, 1.0),
    "from_half": (0.0, 0.5),
}


def _non_inferiority(t: gate.Threshold) -> bool:
    """Whether the bar is a margin around parity (a regression, a bias, a gap to the ceiling),
    planned at exact parity, rather than a superiority bar, planned a little beyond it."""
    kind = gate.METRICS[t.metric].kind
    if kind in ("points", "from_half"):
        return True
    if kind == "difference":
        up = t.comparator in (">=", ">")
        return (t.value < 0) if up else (t.value > 0)
    return False


def expected_truth(t: gate.Threshold, expectations: Mapping[str, float] | None = None) -> float:
    """The truth a threshold is planned for, in its own units: the stated one, else parity for a
    non-inferiority margin, `FINAL_REVIEW_TRUTH` for the final review, else the bar moved
    `SUPERIORITY_EFFECT` in the passing direction (clipped to what a share can be)."""
    if expectations and t.metric in expectations:
        return float(expectations[t.metric])
    if t.metric == gate.FINAL_REVIEW_METRIC:
        return FINAL_REVIEW_TRUTH
    if _non_inferiority(t):
        return 0.0
    up = t.comparator in (">=", ">")
    truth = t.value + (SUPERIORITY_EFFECT if up else -SUPERIORITY_EFFECT)
    return min(max(truth, 0.0), 1.0) if gate.METRICS[t.metric].kind == "share" else truth


# ---- power of one test ----


def vote_variance_factor(k: int, correlation: float = VOTE_CORRELATION) -> float:
    """The variance of a comparison's mean of k votes, as a share of one vote's variance."""
    return correlation + (1 - correlation) / max(k, 1)


def normal_power(delta: float, sd_bar: float, sd_truth: float, n: int) -> float:
    """The chance that a one-sided 95% bound over n units clears the bar when the truth is
    `delta` beyond it in the passing direction (negative: short of it), with the per-unit
    standard deviations at the bar and at the truth."""
    if n <= 0:
        return 0.0
    if sd_truth <= 0:
        return 1.0 if delta * math.sqrt(n) > stats.Z_ONE_SIDED_95 * sd_bar else 0.0
    return float(
        distributions.norm_cdf((delta * math.sqrt(n) - stats.Z_ONE_SIDED_95 * sd_bar) / sd_truth)
    )


@functools.lru_cache(maxsize=65536)
def _passes_needed(bar: float, n: int, strict: bool) -> int | None:
    """The fewest passes out of n whose Wilson one-sided 95% lower bound clears the bar (the
    bound grows with the passes, so a binary search finds it)."""

    def clears(passes: int) -> bool:
        low = stats.wilson_interval(passes / n, n, stats.Z_ONE_SIDED_95)[0]
        return low > bar or (low >= bar and not strict)

    if not clears(n):
        return None
    low, high = 0, n
    while low < high:
        middle = (low + high) // 2
        if clears(middle):
            high = middle
        else:
            low = middle + 1
    return low


def wilson_power(truth: float, bar: float, n: int, strict: bool = False) -> float:
    """The exact chance that Wilson's one-sided 95% lower bound over n outputs clears the bar
    (>=, or > when `strict`) when each output passes with probability `truth`."""
    if n <= 0:
        return 0.0
    needed = _passes_needed(float(bar), int(n), strict)
    if needed is None:
        return 0.0
    # Imported here, where it is needed: scipy.stats takes about a second to import, and
    # scipy.special's binomial tail differs from its in the last bits.
    from scipy.stats import binom

    return float(binom.sf(needed - 1, n, min(max(truth, 0.0), 1.0)))


def _share_power(truth: float, bar: float, up: bool, n: int, factor: float) -> float:
    p0, p1 = (min(max(p, 1e-6), 1 - 1e-6) for p in (bar, truth))
    delta = (p1 - p0) if up else (p0 - p1)
    return normal_power(
        delta, math.sqrt(p0 * (1 - p0) * factor), math.sqrt(p1 * (1 - p1) * factor), n
    )


def _suite_units(t: gate.Threshold, shape: StudyShape, a: str, b: str) -> dict[str, int]:
    """Items per suite: of the comparison (a regression), or of the category, at most as many
    as either system has (a grader's change, which needs no comparison between them)."""
    named = t.params.get("categories") or []
    if t.metric == gate.REGRESSION_METRIC:
        return {c: shape.items(a, b, c) for c in (named or shape.categories(a, b))}
    cap = min(shape.system_items.get(a, 0), shape.system_items.get(b, 0))
    return {c: min(shape.category_items.get(c, 0), cap) for c in (named or shape.category_items)}


def _ppi_judge(t: gate.Threshold, shape: StudyShape) -> str | None:
    """The judge a prediction-powered threshold names, when the plan knows its correlation."""
    judge = t.params.get("judge") if t.metric in gate.PPI_METRICS else None
    return judge if judge and judge in shape.judge_correlation else None


def _human_units(t: gate.Threshold, shape: StudyShape, items: int) -> tuple[int, float]:
    """Of `items`, the human-labelled ones, and the variance ratio a prediction-powered
    threshold's judge buys over them (1 for humans only)."""
    n = shape.human_items(items)
    judge = _ppi_judge(t, shape)
    if judge is None:
        return n, 1.0
    return n, ppi_variance_ratio(shape.judge_correlation[judge], n, items)


def _ppi_basis(t: gate.Threshold, shape: StudyShape) -> str:
    judge = _ppi_judge(t, shape)
    share = f"; humans on {shape.human_share:.0%} of items" if shape.human_share < 1 else ""
    if judge is None:
        return share
    rho = shape.judge_correlation[judge]
    return f"{share}; prediction-powered with {judge} (correlation {rho:.2f} with humans)"


def _threshold_power(
    t: gate.Threshold, truth: float, shape: StudyShape, design: Design, min_items: int
) -> tuple[float, float, int, str]:
    """(power at `truth`, power at the bar, units, basis) of one threshold at a design."""
    metric = gate.METRICS[t.metric]
    up = t.comparator in (">=", ">")
    strict = t.comparator in (">", "<")
    k = design.votes_per_comparison
    p = t.params
    if t.metric == gate.FINAL_REVIEW_METRIC:
        n = design.final_review
        return (
            wilson_power(truth, t.value, n, strict),
            wilson_power(t.value, t.value, n, strict),
            n,
            "exact binomial, Wilson's bound over the reviewed outputs",
        )
    if t.metric == "grader_pass_rate":
        system = p.get("system") or shape.candidate
        n = shape.system_items.get(system, 0)
        if p.get("category"):
            n = min(n, shape.category_items.get(p["category"], 0))
        return (
            wilson_power(truth, t.value, n, strict) if up else 0.0,
            wilson_power(t.value, t.value, n, strict) if up else 0.0,
            n,
            "exact binomial, Wilson's bound over the graded outputs",
        )
    if metric.kind == "points":
        a = p.get("system_a") or shape.candidate
        b = p["system_b"]
        human = t.metric == gate.REGRESSION_METRIC and p.get("source", stats.HUMANS) == stats.HUMANS
        factor = vote_variance_factor(k) if human else 1.0
        sd = None if t.metric == gate.REGRESSION_METRIC else DIFFERENCE_SD * math.sqrt(factor)
        suites = _suite_units(t, shape, a, b)
        if not suites:
            return 0.0, 0.0, 0, "no suite of this comparison in the study"
        power = false = 1.0
        for items in suites.values():
            n, ratio = _human_units(t, shape, items) if human else (items, 1.0)
            if n < min_items:
                power = false = 0.0
                break
            # Points below parity: the bar is a margin m, the truth a drop d (0 = parity).
            p0, p1 = 0.5 - t.value / 100, 0.5 - truth / 100
            if sd is None:
                power *= _share_power(p1, p0, True, n, factor * ratio)
                false *= _share_power(p0, p0, True, n, factor * ratio)
            else:
                power *= normal_power((t.value - truth) / 100, sd, sd, n)
                false *= normal_power(0.0, sd, sd, n)
        smallest = min(suites.values())
        if human:
            smallest = _human_units(t, shape, smallest)[0]
        basis = f"in each of {len(suites)} suite(s), every one must pass" + _ppi_basis(t, shape)
        return power, false, smallest, basis
    if metric.kind == "difference":
        n = shape.all_items
        if n < min_items:
            return 0.0, 0.0, n, f"fewer than {min_items} items"
        delta = (truth - t.value) if up else (t.value - truth)
        return (
            normal_power(delta, DIFFERENCE_SD, DIFFERENCE_SD, n),
            normal_power(0.0, DIFFERENCE_SD, DIFFERENCE_SD, n),
            n,
            f"paired difference per comparison, sd {DIFFERENCE_SD} assumed",
        )
    if metric.kind == "from_half":
        n = shape.all_items
        if n < min_items:
            return 0.0, 0.0, n, f"fewer than {min_items} items"
        return (
            _share_power(0.5 + truth, 0.5 + t.value, False, n, 1.0),
            _share_power(0.5 + t.value, 0.5 + t.value, False, n, 1.0),
            n,
            "distance of p_first from one half",
        )
    # A share over comparisons: a win rate of one comparison, or a judge's share over all.
    if "system_a" in p and "system_b" in p:
        n = shape.items(p["system_a"], p["system_b"])
    else:
        n = shape.all_items
    ratio = 1.0
    if t.metric in _HUMAN_VOTED:
        n, ratio = _human_units(t, shape, n)
    if n < min_items:
        return 0.0, 0.0, n, f"fewer than {min_items} items"
    factor = (vote_variance_factor(k) if t.metric in _HUMAN_VOTED else 1.0) * ratio
    basis = (
        f"{k} correlated votes per comparison (correlation {VOTE_CORRELATION})"
        + _ppi_basis(t, shape)
        if t.metric in _HUMAN_VOTED
        else "one verdict per comparison"
    )
    return (
        _share_power(truth, t.value, up, n, factor),
        _share_power(t.value, t.value, up, n, factor),
        n,
        basis,
    )


def design_power(
    thresholds: Sequence[gate.Threshold],
    shape: StudyShape,
    design: Design,
    expectations: Mapping[str, float] | None = None,
    min_items: int = stats.MIN_COMPARISONS,
) -> DesignPower:
    """Each threshold's power at `design` and the chance that all of them pass."""
    rows = []
    for t in thresholds:
        truth = expected_truth(t, expectations)
        power, false, units, basis = _threshold_power(t, truth, shape, design, min_items)
        rows.append(ThresholdPower(t.describe(), t.metric, truth, units, power, false, basis))
    return DesignPower(design, rows, shape.all_items, dict(expectations or {}))


def _final_review_for(
    thresholds: Sequence[gate.Threshold],
    shape: StudyShape,
    k: int,
    expectations: Mapping[str, float] | None,
    min_items: int,
) -> DesignPower | None:
    """At k votes per comparison, the smallest final review (of at most `MAX_FINAL_REVIEW`
    outputs) with which every threshold passes with `TARGET_POWER`, or None."""
    if not any(t.metric == gate.FINAL_REVIEW_METRIC for t in thresholds):
        found = design_power(thresholds, shape, Design(k, 0), expectations, min_items)
        return found if found.power >= TARGET_POWER else None
    others = [t for t in thresholds if t.metric != gate.FINAL_REVIEW_METRIC]
    rest = design_power(others, shape, Design(k, 0), expectations, min_items).power if others else 1
    if rest < TARGET_POWER:
        return None
    reviews = [t for t in thresholds if t.metric == gate.FINAL_REVIEW_METRIC]
    for n in range(1, min(shape.candidate_outputs, MAX_FINAL_REVIEW) + 1):
        review = design_power(reviews, shape, Design(k, n), expectations, min_items).power
        if rest * review >= TARGET_POWER:
            return design_power(thresholds, shape, Design(k, n), expectations, min_items)
    return None


def propose(
    thresholds: Sequence[gate.Threshold],
    shape: StudyShape,
    current: Design,
    expectations: Mapping[str, float] | None = None,
    min_items: int = stats.MIN_COMPARISONS,
) -> Proposal:
    """The current design's power and the smallest design that reaches `TARGET_POWER` over the
    study's items: the fewest votes per comparison, then the smallest final review. When none
    does, how many times the study's items the current k would need."""
    if not thresholds:
        raise InputError("the study has no thresholds to plan for")
    now = design_power(thresholds, shape, current, expectations, min_items)
    for k in range(1, MAX_VOTES_PER_COMPARISON + 1):
        found = _final_review_for(thresholds, shape, k, expectations, min_items)
        if found is not None:
            return Proposal(now, found, None)
    factor = None
    review = Design(current.votes_per_comparison, shape.candidate_outputs)
    for step in range(2, 201):  # 1.25x, 1.5x, ... up to 50x the study's items
        scale = step * 0.25
        scaled = shape.scaled(scale)
        if design_power(thresholds, scaled, review, expectations, min_items).power >= TARGET_POWER:
            factor = scale
            break
    return Proposal(now, None, factor)
