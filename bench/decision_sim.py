"""Benchmark: how often the gate's and the calibration verdict's decisions are right, measured
by simulating studies with a known truth and running them through the project's own functions
(`stats.calibrate`, `stats.win_rates`, `stats.category_win_rates`, `gate.measure`).

Sections of the JSON object printed on the last line:

- `coverage: {metric: {size: share}}`: the share of simulated studies whose one-sided 95% bounds
  are both on the right side of the truth (the worse of the lower and the upper bound; both
  sides are in `coverage_sides` as [lower, upper]). A size "30" is 30 items with one comparison
  each; "30x3" is 30 items with three comparisons each (the calibration differences: each
  comparison with 3 votes and one verdict per judge) or three votes on each item's one
  comparison (the win rates, which count votes). Metrics: `vs_ceiling` (judge strict agreement
  minus the human ceiling), `beats_baseline` (judge minus a baseline judge), `verbosity_gap`,
  `regression` (one suite's drop below parity, as the gate measures it), `win_rate` and
  `pass_rate_change` (a grader check's pass-rate drop, one output per item and system).
- `within_at_margin: {size: rate}`: how often a judge exactly 5 points below the human ceiling
  is called "within" it.
- `plan_power: {design: {planned, pass_rate, false_pass}}`: four regression suites (margin 5,
  truth at parity) and a final review (bar 0.9, truth 0.97) at the design `review-app plan`
  proposes for 80%: the planned power, the pass rate in simulated studies at that truth, and the
  false pass rates with one suite exactly at the margin or the final review at its bar.
- `interim_rows_pass_at_parity`: at parity, looking after every 10 comparisons, how often some
  threshold row reads `pass` before the plan is in (interim rows never pass: 0 by design);
  `gate_false_pass_with_looks`: how often the gate passes at any of those looks, the last
  included (the fixed-sample false pass rate, at most 5%).
- `simulations`: studies simulated per size (a fifth of them, at least 4, for `plan_power`);
  `targets`: the targets and whether they are met.

Items vary in difficulty (easy and hard items, or a logit-normal chance per item), so the
comparisons and votes of one item agree more than chance would make them. Fixed seeds.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import norm

from review_app import gate, planning, stats

SIZES = (10, 25, 30, 50, 100)
PER_ITEM = (1, 3)
MIN_ITEMS = 30
COVERAGE_TARGET = 0.94
WITHIN_AT_MARGIN_TARGET = 0.05
PLAN_PASS_TARGET = 0.78
FALSE_PASS_TARGET = 0.05

# Calibration studies: 30% hard items, on which reviewers and the judge are less reliable.
HARD_SHARE = 0.3
REVIEWER_ACCURACY = {"easy": 0.95, "hard": 0.75}
JUDGE_HARD_PENALTY = 0.15
BASELINE_ACCURACY = 0.6
LONGER_IS_BETTER = 0.6  # chance that the better output of a comparison is the longer one
VOTES_PER_COMPARISON = 3
OPPONENTS = ("base", "frontier", "previous")
CANDIDATE = "tuned"
JUDGE, BASELINE = "judge", "baseline"
MARGIN = stats.CEILING_MARGIN

# Win-rate studies: each item's chance that the candidate wins is logit-normal around the mean.
ITEM_SPREAD = 1.0
REGRESSION_DROP = 5.0  # points: a suite exactly at the non-inferiority margin
PASS_RATES = {"candidate": 0.85, "reference": 0.90}  # a check's pass rates: 5 points worse
PASS_CORRELATION = 0.6  # how much one item's difficulty drives both systems' results


def size_key(n_items: int, per_item: int) -> str:
    return str(n_items) if per_item == 1 else f"{n_items}x{per_item}"


# ---- calibration studies ----


def _judge_accuracy_at(diff: float) -> dict[str, float]:
    """The judge's accuracy on easy and hard items that puts its strict agreement exactly `diff`
    from the human ceiling. A comparison with 3 decisive votes: the humans' strict agreement is
    q^2 + (1 - q)^2, the judge's a q + (1 - a)(1 - q), for reviewer accuracy q and judge accuracy
    a; both are linear in the easy accuracy, so it is solved directly."""
    weights = {"easy": 1 - HARD_SHARE, "hard": HARD_SHARE}
    humans = sum(w * (q * q + (1 - q) ** 2) for w, q in zip(weights.values(), _q(), strict=True))
    offset = {"easy": 0.0, "hard": -JUDGE_HARD_PENALTY}
    slope = sum(weights[k] * (2 * REVIEWER_ACCURACY[k] - 1) for k in weights)
    intercept = sum(
        weights[k] * (offset[k] * (2 * REVIEWER_ACCURACY[k] - 1) + 1 - REVIEWER_ACCURACY[k])
        for k in weights
    )
    easy = (humans + diff - intercept) / slope
    return {"easy": easy, "hard": easy - JUDGE_HARD_PENALTY}


def _q() -> tuple[float, float]:
    return REVIEWER_ACCURACY["easy"], REVIEWER_ACCURACY["hard"]


JUDGE_ACCURACY = _judge_accuracy_at(-MARGIN)


def calibration_truth() -> dict[str, float]:
    """The population values of the three differences in the simulated design."""
    out = {"vs_ceiling": 0.0, "beats_baseline": 0.0, "verbosity_gap": 0.0}
    for kind, weight in (("easy", 1 - HARD_SHARE), ("hard", HARD_SHARE)):
        q, a = REVIEWER_ACCURACY[kind], JUDGE_ACCURACY[kind]
        judge = a * q + (1 - a) * (1 - q)
        out["vs_ceiling"] += weight * (judge - (q * q + (1 - q) ** 2))
        baseline = BASELINE_ACCURACY * q + (1 - BASELINE_ACCURACY) * (1 - q)
        out["beats_baseline"] += weight * (judge - baseline)
        out["verbosity_gap"] += weight * (2 * LONGER_IS_BETTER - 1) * (a - q)
    return out


def calibration_study(
    rng: np.random.Generator, n_items: int, per_item: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Frames of a study of `n_items` items, each compared with `per_item` opponents; every
    comparison has 3 decisive votes, one order-combined verdict of the judge and one of a
    baseline judge, and outputs whose lengths differ (so every comparison counts for p_longer)."""
    n = n_items * per_item
    item = np.repeat(np.arange(n_items), per_item)
    hard = np.repeat(rng.random(n_items) < HARD_SHARE, per_item)
    q = np.where(hard, REVIEWER_ACCURACY["hard"], REVIEWER_ACCURACY["easy"])
    a = np.where(hard, JUDGE_ACCURACY["hard"], JUDGE_ACCURACY["easy"])
    opponent = np.tile(np.array(OPPONENTS[:per_item], dtype=object), n_items)
    system_x = np.where(opponent < CANDIDATE, opponent, CANDIDATE)
    system_y = np.where(opponent < CANDIDATE, CANDIDATE, opponent)
    better = rng.integers(0, 2, n)  # 0 = x, 1 = y
    longer_is_better = rng.random(n) < LONGER_IS_BETTER
    longer = np.where(longer_is_better, better, 1 - better)
    pair_id = np.arange(1, n + 1)
    pairs = pd.DataFrame(
        {
            "pair_id": pair_id,
            "item_key": [f"item-{i}" for i in item],
            "category": "general",
            "system_x": system_x,
            "system_y": system_y,
            "len_x": np.where(longer == 0, 200, 100),
            "len_y": np.where(longer == 1, 200, 100),
        }
    )
    labels = np.array(["x", "y"], dtype=object)
    right = rng.random((n, VOTES_PER_COMPARISON)) < q[:, None]
    said = np.where(right, better[:, None], 1 - better[:, None])
    votes = pd.DataFrame(
        {
            "pair_id": np.repeat(pair_id, VOTES_PER_COMPARISON),
            "reviewer": np.tile([f"r{j}" for j in range(VOTES_PER_COMPARISON)], n),
            "outcome": labels[said.ravel()],
            "shown_left": None,
        }
    )
    judge_said = np.where(rng.random(n) < a, better, 1 - better)
    baseline_said = np.where(rng.random(n) < BASELINE_ACCURACY, better, 1 - better)
    verdicts = pd.DataFrame(
        {
            "judge": np.repeat([JUDGE, BASELINE], n),
            "pair_id": np.tile(pair_id, 2),
            "first": None,
            "outcome": labels[np.concatenate([judge_said, baseline_said])],
            "cost": 0.0,
            "latency_ms": np.nan,
        }
    )
    return pairs, votes, verdicts


@functools.cache
def _calibration_runs(
    n_items: int, per_item: int, runs: int, n_boot: int, seed: int
) -> tuple[dict, ...]:
    """Per simulated study: each difference's one-sided bounds and the calibration verdict."""
    rng = np.random.default_rng([seed, n_items, per_item])
    out = []
    for run in range(runs):
        frames = calibration_study(rng, n_items, per_item)
        judge = stats.calibrate(*frames, seed=run, n_boot=n_boot).overall.judge(JUDGE)
        out.append(
            {
                "vs_ceiling": judge.vs_ceiling.diff.bounds,
                "beats_baseline": judge.strict_vs[BASELINE].bounds,
                "verbosity_gap": judge.verbosity_gap.bounds,
                "verdict": judge.vs_ceiling.verdict,
            }
        )
    return tuple(out)


# ---- win rates, regression suites, grader checks ----


def population_win_rate(mean: float, spread: float = ITEM_SPREAD) -> float:
    """E[logistic(logit(mean) + spread Z)], Z standard normal: the win rate over the item
    population (Gauss-Hermite quadrature)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    return float((expit(logit(mean) + spread * nodes) * weights).sum() / weights.sum())


def _mean_for(win_rate: float) -> float:
    """The logit-normal centre whose population win rate is `win_rate` (bisection)."""
    low, high = 0.01, 0.99
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if population_win_rate(middle) < win_rate else (low, middle)
    return (low + high) / 2


def win_rate_study(
    rng: np.random.Generator, n_items: int, votes: int, mean: float, category: str = "general"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """`n_items` comparisons of the candidate with base (one per item), `votes` votes each; each
    item has its own chance that the candidate wins, logit-normal around `mean`."""
    pair_id = np.arange(1, n_items + 1)
    pairs = pd.DataFrame(
        {
            "pair_id": pair_id,
            "item_key": [f"item-{i}" for i in pair_id],
            "category": category,
            "system_x": "base",
            "system_y": CANDIDATE,
            "len_x": 100,
            "len_y": 100,
        }
    )
    chance = expit(logit(mean) + ITEM_SPREAD * rng.standard_normal(n_items))
    wins = rng.random((n_items, votes)) < chance[:, None]
    frame = pd.DataFrame(
        {
            "pair_id": np.repeat(pair_id, votes),
            "reviewer": np.tile([f"r{j}" for j in range(votes)], n_items),
            "outcome": np.where(wins.ravel(), "y", "x"),
            "shown_left": None,
        }
    )
    return pairs, frame, pd.DataFrame(columns=stats.VERDICT_COLUMNS)


REGRESSION = gate.validate_threshold(
    gate.REGRESSION_METRIC,
    {"system_a": CANDIDATE, "system_b": "base", "categories": "suite"},
    "<=",
    REGRESSION_DROP,
)
PASS_RATE_CHANGE = gate.validate_threshold(
    "grader_pass_rate_change",
    {"check": "valid", "system_a": CANDIDATE, "system_b": "base", "categories": "suite"},
    "<=",
    REGRESSION_DROP,
)


def _win_rate_bounds(rng, n_items, votes, n_boot, seed) -> tuple[float, float] | None:
    frames = win_rate_study(rng, n_items, votes, 0.5)
    (w,) = stats.win_rates(*frames, [(CANDIDATE, "base")], seed=seed, n_boot=n_boot)
    return w.bounds


def _regression_bounds(rng, n_items, votes, n_boot, seed) -> tuple[float, float] | None:
    mean = _mean_for(0.5 - REGRESSION_DROP / 100)
    frames = win_rate_study(rng, n_items, votes, mean, category="suite")
    inputs = gate.GateInputs(
        calibration=stats.calibrate(*(f.iloc[:0] for f in frames)).overall,
        win_rates=[],
        category_win_rates=stats.category_win_rates(
            *frames, [(CANDIDATE, "base")], seed=seed, n_boot=n_boot
        ),
    )
    return gate.measure(REGRESSION, inputs).bounds


def grader_results(rng: np.random.Generator, n_items: int) -> pd.DataFrame:
    """One result of one check per item and system, the two systems' results on an item
    correlated through the item's difficulty."""
    difficulty = rng.standard_normal(n_items)
    rows = []
    for system, rate in ((CANDIDATE, PASS_RATES["candidate"]), ("base", PASS_RATES["reference"])):
        noise = rng.standard_normal(n_items)
        latent = PASS_CORRELATION * difficulty + np.sqrt(1 - PASS_CORRELATION**2) * noise
        rows.append(
            pd.DataFrame(
                {
                    "grader": "bench",
                    "check": "valid",
                    "system": system,
                    "item_key": [f"item-{i}" for i in range(n_items)],
                    "category": "suite",
                    "passed": latent < norm.ppf(rate),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _pass_rate_change_bounds(rng, n_items, votes, n_boot, seed) -> tuple[float, float] | None:
    empty = stats.calibrate(*(f.iloc[:0] for f in win_rate_study(rng, 0, 1, 0.5))).overall
    inputs = gate.GateInputs(empty, [], {}, graders=grader_results(rng, n_items))
    return gate.measure(PASS_RATE_CHANGE, inputs).bounds


WIN_RATE_DESIGNS = {
    # metric: (bounds of one simulated study, the truth, per-item sizes it is simulated at)
    "regression": (_regression_bounds, REGRESSION_DROP, PER_ITEM),
    "win_rate": (_win_rate_bounds, 0.5, PER_ITEM),
    "pass_rate_change": (
        _pass_rate_change_bounds,
        100 * (PASS_RATES["reference"] - PASS_RATES["candidate"]),
        (1,),
    ),
}


# ---- sections ----


def _sides(bounds: list, truth: float) -> tuple[float, float]:
    """Share of studies whose lower bound is at or below the truth, and whose upper bound is at
    or above it (a study without bounds counts as a miss on both sides)."""
    lower = sum(b is not None and b[0] <= truth + 1e-12 for b in bounds) / len(bounds)
    upper = sum(b is not None and b[1] >= truth - 1e-12 for b in bounds) / len(bounds)
    return round(lower, 4), round(upper, 4)


def coverage_section(
    sizes: tuple[int, ...] = SIZES, runs: int = 1000, n_boot: int = 1000, seed: int = 0
) -> dict:
    """{coverage: {metric: {size: share}}, coverage_sides: {metric: {size: [lower, upper]}}}."""
    sides: dict[str, dict[str, tuple[float, float]]] = {}
    truth = calibration_truth()
    for n_items in sizes:
        for per_item in PER_ITEM:
            key = size_key(n_items, per_item)
            records = _calibration_runs(n_items, per_item, runs, n_boot, seed)
            for metric in ("vs_ceiling", "beats_baseline", "verbosity_gap"):
                bounds = [r[metric] for r in records]
                sides.setdefault(metric, {})[key] = _sides(bounds, truth[metric])
            for metric, (simulate, value, shapes) in WIN_RATE_DESIGNS.items():
                if per_item not in shapes:
                    continue
                rng = np.random.default_rng([seed, n_items, per_item, len(metric)])
                bounds = [simulate(rng, n_items, per_item, n_boot, run) for run in range(runs)]
                sides.setdefault(metric, {})[key] = _sides(bounds, value)
    return {
        "coverage": {m: {k: min(s) for k, s in by.items()} for m, by in sides.items()},
        "coverage_sides": {m: {k: list(s) for k, s in by.items()} for m, by in sides.items()},
    }


def within_at_margin_section(
    sizes: tuple[int, ...] = SIZES, runs: int = 1000, n_boot: int = 1000, seed: int = 0
) -> dict:
    """{within_at_margin: {size: rate}}: a judge exactly `MARGIN` below the human ceiling called
    "within" it (the same simulated studies as `coverage_section`'s vs_ceiling)."""
    rates = {}
    for n_items in sizes:
        for per_item in PER_ITEM:
            records = _calibration_runs(n_items, per_item, runs, n_boot, seed)
            within = sum(r["verdict"] == "within" for r in records) / len(records)
            rates[size_key(n_items, per_item)] = round(within, 4)
    return {"within_at_margin": rates}


# ---- plans and looks ----

REFERENCE = "base"
# The correlation of two votes on one comparison in the simulated studies (the plan assumes a
# larger one, 0.3, to stay on the safe side).
SIMULATED_CORRELATION = 0.2


def _suite_frames(
    rng: np.random.Generator, suites: dict[str, tuple[int, float]], k: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairs and k votes per pair: per suite (items, true win rate of the candidate), each
    comparison with its own chance (Beta with that mean and `SIMULATED_CORRELATION`)."""
    concentration = 1 / SIMULATED_CORRELATION - 1
    pair_rows, vote_rows, pair_id = [], [], 0
    for category, (items, truth) in suites.items():
        p = rng.beta(truth * concentration, (1 - truth) * concentration, items)
        wins = rng.random((items, k)) < p[:, None]
        for i in range(items):
            pair_id += 1
            pair_rows.append(
                (pair_id, f"{category}-{i}", category, REFERENCE, CANDIDATE, 100, 100, 10)
            )
            for j in range(k):
                vote_rows.append((pair_id, f"r{j}", "y" if wins[i, j] else "x"))
    pairs = pd.DataFrame(
        pair_rows,
        columns=[
            "pair_id",
            "item_key",
            "category",
            "system_x",
            "system_y",
            "len_x",
            "len_y",
            "len_prompt",
        ],
    ).assign(prompt="p", reference=None, output_x="x", output_y="y")
    votes = pd.DataFrame(vote_rows, columns=["pair_id", "reviewer", "outcome"])
    system = pairs.set_index("pair_id")
    votes = votes.assign(
        vote_id=np.arange(1, len(votes) + 1),
        winner=np.where(
            votes["outcome"] == "x",
            system.loc[votes["pair_id"], "system_x"].to_numpy(),
            system.loc[votes["pair_id"], "system_y"].to_numpy(),
        ),
        shown_left=None,
        rationale="",
        created_at="2026-01-01T00:00:00",
    )
    return pairs, votes


def _no_verdicts() -> pd.DataFrame:
    return pd.DataFrame(columns=stats.VERDICT_COLUMNS)


def _gate_inputs(pairs, votes, reviewed: int, acceptable: int, n_boot: int) -> gate.GateInputs:
    comparisons = [(CANDIDATE, REFERENCE)]
    verdicts = _no_verdicts()
    return gate.GateInputs(
        None,
        stats.win_rates(pairs, votes, verdicts, comparisons, n_boot=n_boot),
        stats.category_win_rates(pairs, votes, verdicts, comparisons, n_boot=n_boot),
        {"n": reviewed, "acceptable": acceptable, "sample_size": reviewed},
        candidate=CANDIDATE,
    )


def _regression(categories: list[str]) -> gate.Threshold:
    return gate.validate_threshold(
        "max_regression_points",
        {"system_a": CANDIDATE, "system_b": REFERENCE, "categories": categories},
        "<=",
        5,
    )


REVIEW_THRESHOLD = gate.validate_threshold("final_review_acceptable_rate", {}, ">=", 0.9)


def _planned(suites: int, items: int) -> tuple[list[gate.Threshold], planning.DesignPower]:
    """A regression threshold over `suites` suites and a final review, planned over `items`
    items per suite: the smallest design the planner calls 80%."""
    names = [f"suite{i}" for i in range(suites)]
    thresholds = [_regression(names), REVIEW_THRESHOLD]
    shape = planning.StudyShape(
        {(CANDIDATE, REFERENCE): {n: items for n in names}},
        400,
        CANDIDATE,
        {n: items for n in names},
        {CANDIDATE: items * suites, REFERENCE: items * suites},
    )
    proposal = planning.propose(thresholds, shape, planning.Design(3, 50))
    assert proposal.proposed is not None, "the planner found no design"
    return thresholds, proposal.proposed


def plan_power_section(
    simulations: int, n_boot: int, items: int = 600, suites: int = 4, seed: int = 11
) -> dict:
    """{design: {pass_rate, planned, false_pass}}: four regression suites of `items` items each
    (margin 5, truth at parity) and a final review (bar 0.9, truth 0.97), at the design the
    planner proposes for 80%; its pass rate in simulated studies at that truth, and its false
    pass rate with one suite exactly at the margin (the other three at parity) and with the
    final review at the bar."""
    rng = np.random.default_rng(seed)
    thresholds, design = _planned(suites, items)
    k, reviewed = design.design.votes_per_comparison, design.design.final_review

    def passes(truths: list[float], acceptable_share: float) -> bool:
        layout = {f"suite{i}": (items, t) for i, t in enumerate(truths)}
        pairs, votes = _suite_frames(rng, layout, k)
        acceptable = int(rng.binomial(reviewed, acceptable_share))
        inputs = _gate_inputs(pairs, votes, reviewed, acceptable, n_boot)
        return gate.decide_gate(thresholds, inputs, MIN_ITEMS).result == "pass"

    truth = planning.FINAL_REVIEW_TRUTH
    honest = sum(passes([0.5] * suites, truth) for _ in range(simulations))
    at_margin = sum(passes([0.45] + [0.5] * (suites - 1), truth) for _ in range(simulations))
    review_at_bar = sum(passes([0.5] * suites, 0.9) for _ in range(simulations))
    name = f"{suites} suites x {items} items, k={k}, final review {reviewed}"
    return {
        "plan_power": {
            name: {
                "planned": round(design.power, 4),
                "pass_rate": round(honest / simulations, 4),
                "false_pass": {
                    "one_suite_at_the_margin": round(at_margin / simulations, 4),
                    "final_review_at_the_bar": round(review_at_bar / simulations, 4),
                },
            }
        }
    }


WIN_THRESHOLD = gate.validate_threshold(
    "human_win_rate", {"system_a": CANDIDATE, "system_b": REFERENCE}, ">", 0.5
)


def looks_section(simulations: int, n_boot: int, items: int = 100, every: int = 10, seed: int = 5):
    """At parity, a study of `items` comparisons x 3 votes looked at after every `every`
    comparisons: how often some interim row reads `pass` (`interim_rows_pass_at_parity`) and how
    often the gate passes at any look, the last included (`gate_false_pass_with_looks`)."""
    rng = np.random.default_rng(seed)
    row_passes = gate_passes = 0
    for _ in range(simulations):
        pairs, votes = _suite_frames(rng, {"general": (items, 0.5)}, 3)
        seen_row_pass = seen_gate_pass = False
        for reached in range(every, items + 1, every):
            shown = votes[votes["pair_id"] <= reached]
            inputs = _gate_inputs(pairs[pairs["pair_id"] <= reached], shown, 0, 0, n_boot)
            plan = gate.Plan(items, 3, 0, comparisons_reached=reached)
            decision = gate.decide_gate([WIN_THRESHOLD], inputs, 30, plan)
            if reached < items and any(r.outcome == "pass" for r in decision.results):
                seen_row_pass = True
            if decision.result == "pass":
                seen_gate_pass = True
        row_passes += seen_row_pass
        gate_passes += seen_gate_pass
    return {
        "interim_rows_pass_at_parity": round(row_passes / simulations, 4),
        "gate_false_pass_with_looks": round(gate_passes / simulations, 4),
    }


def _from_minimum(by_size: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in by_size.items() if int(k.split("x")[0]) >= MIN_ITEMS}


def targets_section(figures: dict) -> dict:
    """The targets, and which sizes (from the minimum number of items up) miss them."""
    misses = [
        f"coverage {metric} {key}: {value}"
        for metric, by_size in figures.get("coverage", {}).items()
        for key, value in _from_minimum(by_size).items()
        if value < COVERAGE_TARGET
    ]
    misses += [
        f"within_at_margin {key}: {value}"
        for key, value in _from_minimum(figures.get("within_at_margin", {})).items()
        if value > WITHIN_AT_MARGIN_TARGET
    ]
    for name, plan in figures.get("plan_power", {}).items():
        if plan["pass_rate"] < PLAN_PASS_TARGET:
            misses.append(f"plan pass rate {name}: {plan['pass_rate']}")
        misses += [
            f"plan false pass {name} {case}: {rate}"
            for case, rate in plan["false_pass"].items()
            if rate > FALSE_PASS_TARGET
        ]
    for key in ("interim_rows_pass_at_parity", "gate_false_pass_with_looks"):
        if figures.get(key, 0) > (0 if key.startswith("interim") else FALSE_PASS_TARGET):
            misses.append(f"{key}: {figures[key]}")
    return {
        "targets": {
            "coverage_at_least": COVERAGE_TARGET,
            "within_at_margin_at_most": WITHIN_AT_MARGIN_TARGET,
            "plan_pass_rate_at_least": PLAN_PASS_TARGET,
            "false_pass_at_most": FALSE_PASS_TARGET,
            "interim_rows_pass_at_parity_at_most": 0,
            "from_items": MIN_ITEMS,
            "met": not misses,
            "misses": misses,
        }
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="simulated studies per size")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--small", action="store_true", help="one size, few runs (a smoke test)")
    args = parser.parse_args(argv)
    sizes, runs, n_boot = SIZES, args.runs, args.n_boot
    if args.small:
        sizes, runs, n_boot = (MIN_ITEMS,), 8, 100
    start = time.perf_counter()
    figures: dict = {}
    figures |= coverage_section(sizes, runs, n_boot)
    figures |= within_at_margin_section(sizes, runs, n_boot)
    if args.small:
        figures |= plan_power_section(4, n_boot, items=400, suites=1)
    else:
        figures |= plan_power_section(max(4, runs // 5), n_boot)
    figures |= looks_section(runs, n_boot, items=40 if args.small else 100)
    figures["simulations"] = runs
    figures["bootstrap_resamples"] = n_boot
    figures |= targets_section(figures)
    figures["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
