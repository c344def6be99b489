"""Coverage of the bounds the gate and the calibration verdict decide on, at the minimum sample
(30 items): small fixed-seed simulations whose one-sided 95% bounds must miss the truth at most
5% of the time, plus Monte Carlo error (the full grid is bench/decision_sim.py). And the number
of items behind every estimate, win rate and gate measurement."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import norm

from review_app import gate, stats
from tests.stats_frames import make_pairs, make_verdicts, make_votes, no_verdicts

RUNS = 200
# 5% one-sided error, plus two Monte Carlo standard errors over RUNS studies.
ALLOWED_ERROR = 0.05 + 2 * np.sqrt(0.05 * 0.95 / RUNS)

# Easy and hard items: reviewers and the judge are less reliable on the hard 30%.
REVIEWERS = {False: 0.95, True: 0.75}
JUDGE = {False: 0.8763, True: 0.7263}  # strict agreement exactly 5 points under the humans'
BASELINE = 0.6
LONGER_IS_BETTER = 0.6


def truth() -> dict[str, float]:
    out = dict.fromkeys(("vs_ceiling", "beats_baseline", "verbosity_gap"), 0.0)
    for hard, weight in ((False, 0.7), (True, 0.3)):
        q, a = REVIEWERS[hard], JUDGE[hard]
        judge = a * q + (1 - a) * (1 - q)
        out["vs_ceiling"] += weight * (judge - q * q - (1 - q) ** 2)
        out["beats_baseline"] += weight * (judge - BASELINE * q - (1 - BASELINE) * (1 - q))
        out["verbosity_gap"] += weight * (2 * LONGER_IS_BETTER - 1) * (a - q)
    return out


def judged_items(rng, n_items: int, per_item: int):
    """n_items items, each compared with `per_item` systems (one difficulty per item), 3 votes
    and one verdict of the judge and of a baseline per comparison; outputs of unequal length."""
    n = n_items * per_item
    hard = np.repeat(rng.random(n_items) < 0.3, per_item)
    q = np.where(hard, REVIEWERS[True], REVIEWERS[False])
    a = np.where(hard, JUDGE[True], JUDGE[False])
    better = rng.integers(0, 2, n)
    longer = np.where(rng.random(n) < LONGER_IS_BETTER, better, 1 - better)
    pairs = make_pairs(
        n, lengths={p + 1: (200, 100) if longer[p] == 0 else (100, 200) for p in range(n)}
    )
    pairs["item_key"] = [f"item-{p // per_item}" for p in range(n)]
    side = np.array(["x", "y"], dtype=object)
    said = np.where(rng.random((n, 3)) < q[:, None], better[:, None], 1 - better[:, None])
    # Built column-wise (the frames' readers use these columns): thousands of studies are made.
    votes = pd.DataFrame(
        {
            "pair_id": np.repeat(pairs["pair_id"].to_numpy(), 3),
            "reviewer": np.tile(["r0", "r1", "r2"], n),
            "outcome": side[said.ravel()],
            "shown_left": None,
        }
    )
    judge = np.where(rng.random(n) < a, better, 1 - better)
    baseline = np.where(rng.random(n) < BASELINE, better, 1 - better)
    verdicts = pd.DataFrame(
        {
            "judge": np.repeat(["judge", "baseline"], n),
            "pair_id": np.tile(pairs["pair_id"].to_numpy(), 2),
            "first": None,
            "outcome": side[np.concatenate([judge, baseline])],
            "cost": 0.0,
            "latency_ms": np.nan,
        }
    )
    return pairs, votes, verdicts


def sharing(simulation: str):
    """The tests that read one cached simulation run on one test process (pytest-xdist's
    `loadgroup`): on two processes it would be simulated twice."""
    return pytest.mark.xdist_group(f"tests/test_coverage.py-{simulation}")


@functools.cache
def simulated(per_item: int) -> list[stats.JudgeStats]:
    rng = np.random.default_rng(per_item)
    return [
        stats.analyse(*judged_items(rng, 30, per_item), seed=run, n_boot=200).judge("judge")
        for run in range(RUNS)
    ]


def errors(bounds: list[tuple[float, float]], value: float) -> tuple[float, float]:
    """Share of studies whose lower bound is above the truth, and whose upper bound is below it."""
    low = sum(b[0] > value + 1e-12 for b in bounds) / len(bounds)
    high = sum(b[1] < value - 1e-12 for b in bounds) / len(bounds)
    return low, high


VERBOSITY_CLUSTERED = pytest.mark.xfail(
    reason="errs 9% at 30 items x 3 comparisons in this simulation (see docs/statistics.md)",
    strict=False,
)


@pytest.mark.parametrize(
    ("metric", "pick", "per_item"),
    [
        pytest.param("vs_ceiling", lambda j: j.vs_ceiling.diff, 1, marks=sharing("1")),
        pytest.param("vs_ceiling", lambda j: j.vs_ceiling.diff, 3, marks=sharing("3")),
        pytest.param("beats_baseline", lambda j: j.strict_vs["baseline"], 1, marks=sharing("1")),
        pytest.param("beats_baseline", lambda j: j.strict_vs["baseline"], 3, marks=sharing("3")),
        pytest.param("verbosity_gap", lambda j: j.verbosity_gap, 1, marks=sharing("1")),
        pytest.param(
            "verbosity_gap",
            lambda j: j.verbosity_gap,
            3,
            marks=[VERBOSITY_CLUSTERED, sharing("3")],
        ),
    ],
)
def test_the_bounds_of_a_paired_difference_hold_their_level_at_30_items(metric, pick, per_item):
    """The percentile bootstrap's lower bound of judge minus ceiling was above the truth in 11.5%
    of these studies with three comparisons per item: the difference is mostly 0 or +1/3 with a
    rare -1, a skew the percentiles miss in small samples."""
    estimates = [pick(j) for j in simulated(per_item)]
    low, high = errors([e.bounds for e in estimates], truth()[metric])
    assert low <= ALLOWED_ERROR and high <= ALLOWED_ERROR


@sharing("3")
def test_a_judge_exactly_at_the_margin_is_rarely_called_within_the_ceiling():
    """Before: 11.5% of these studies (30 items x 3 comparisons) called this judge "within"."""
    assert truth()["vs_ceiling"] == pytest.approx(-stats.CEILING_MARGIN, abs=1e-4)
    within = sum(j.vs_ceiling.verdict == "within" for j in simulated(3)) / RUNS
    assert within <= ALLOWED_ERROR


def test_a_difference_whose_items_all_say_the_same_has_no_spread_to_studentize():
    """Every comparison agrees exactly as the humans do: no interval beyond the point."""
    pairs = make_pairs(30)
    votes = make_votes(pairs, [(p, f"r{j}", "x") for p in range(1, 31) for j in range(3)])
    verdicts = make_verdicts(pairs, [("judge", p, None, "x") for p in range(1, 31)])
    diff = stats.analyse(pairs, votes, verdicts, n_boot=200).judge("judge").vs_ceiling.diff
    assert diff.value == 0.0 and diff.bounds == (0.0, 0.0)


# ---- win rates and grader checks (measured; their methods hold) ----


def clustered_votes(rng, n_items: int, votes: int, centre: float, category: str = "general"):
    """`votes` votes on each item's one comparison of tuned vs base; each item its own chance
    (logit-normal around `centre`), so an item's votes agree more than chance would make them."""
    pairs = make_pairs(
        n_items, ("tuned", "base"), categories=dict.fromkeys(range(1, n_items + 1), category)
    )
    chance = expit(np.log(centre / (1 - centre)) + rng.standard_normal(n_items))
    rows = [
        (p, f"r{j}", "y" if rng.random() < chance[p - 1] else "x")
        for p in range(1, n_items + 1)
        for j in range(votes)
    ]
    return pairs, make_votes(pairs, rows)


@pytest.mark.parametrize("votes", [1, 3])
def test_the_win_rate_bounds_hold_their_level_at_30_items_with_clustered_votes(votes):
    rng = np.random.default_rng(votes)
    bounds = []
    for run in range(RUNS):
        pairs, frame = clustered_votes(rng, 30, votes, 0.5)
        (w,) = stats.win_rates(
            pairs, frame, no_verdicts(), [("tuned", "base")], seed=run, n_boot=200
        )
        bounds.append(w.bounds)
    low, high = errors(bounds, 0.5)  # logit-normal around one half: one half over the items
    assert low <= ALLOWED_ERROR and high <= ALLOWED_ERROR


@functools.cache
def simulated_category() -> list[tuple[stats.JudgeStats, stats.WinRate]]:
    """A 30-item category among 90 items (two other categories of 30): its figures come from
    the study's one set of resamples, restricted to its items."""
    rng = np.random.default_rng(30)
    out = []
    for run in range(RUNS):
        pairs, votes, verdicts = judged_items(rng, 90, 1)
        pairs["category"] = np.repeat(["other", "small", "third"], 30)
        calibration, _, by_category = stats.study_figures(
            pairs, votes, verdicts, [("finetuned", "base")], seed=run, n_boot=200
        )
        (win,) = [w for w in by_category["small"] if w.source == stats.HUMANS]
        out.append((calibration.by_category["small"].judge("judge"), win))
    return out


@sharing("category")
@pytest.mark.parametrize(
    ("metric", "pick"),
    [
        ("vs_ceiling", lambda j: j.vs_ceiling.diff),
        ("beats_baseline", lambda j: j.strict_vs["baseline"]),
    ],
)
def test_a_categorys_bounds_hold_their_level_on_the_studys_shared_resamples(metric, pick):
    """A category's intervals weigh its items by their counts in the study's resamples (the
    number of its items in a resample varies): still a bootstrap over its items, same level."""
    low, high = errors([pick(j).bounds for j, _ in simulated_category()], truth()[metric])
    assert low <= ALLOWED_ERROR and high <= ALLOWED_ERROR


@sharing("category")
def test_a_categorys_win_rate_bounds_hold_their_level_on_the_studys_shared_resamples():
    # Each comparison's better side is x or y at random: finetuned wins half of them.
    low, high = errors([w.bounds for _, w in simulated_category()], 0.5)
    assert low <= ALLOWED_ERROR and high <= ALLOWED_ERROR


def test_the_grader_pass_rate_change_bounds_hold_their_level_at_30_items():
    rng = np.random.default_rng(4)
    threshold = gate.validate_threshold(
        "grader_pass_rate_change",
        {"check": "c", "system_a": "tuned", "system_b": "base", "categories": "s"},
        "<=",
        5,
    )
    empty = stats.calibrate(make_pairs(0), make_votes(make_pairs(0), []), no_verdicts()).overall
    bounds = []
    for _ in range(RUNS):
        difficulty = rng.standard_normal(30)
        frames = []
        for system, rate in (("tuned", 0.85), ("base", 0.90)):
            latent = 0.6 * difficulty + 0.8 * rng.standard_normal(30)
            frames.append(
                pd.DataFrame(
                    {
                        "grader": "g",
                        "check": "c",
                        "system": system,
                        "item_key": [f"i{i}" for i in range(30)],
                        "category": "s",
                        "passed": latent < norm.ppf(rate),
                    }
                )
            )
        inputs = gate.GateInputs(empty, [], {}, graders=pd.concat(frames, ignore_index=True))
        bounds.append(gate.measure(threshold, inputs).bounds)
    low, high = errors(bounds, 5.0)
    assert low <= ALLOWED_ERROR and high <= ALLOWED_ERROR


# ---- the number of items behind each figure ----


def test_estimates_count_items_beside_comparisons_and_votes():
    pairs, votes, verdicts = judged_items(np.random.default_rng(0), 10, 3)
    calibration = stats.calibrate(pairs, votes, verdicts, n_boot=50)
    judge = calibration.overall.judge("judge")
    assert (judge.agreement_strict.n, judge.agreement_strict.units) == (90, 30)
    assert judge.agreement_strict.items == 10
    assert judge.vs_ceiling.diff.items == 10 and judge.strict_vs["baseline"].items == 10
    document = calibration.to_json()
    assert document["humans"]["agreement_strict"]["n_items"] == 10
    assert document["humans"]["fleiss_kappa"]["n_items"] == 10
    (j,) = [j for j in document["judges"] if j["judge"] == "judge"]
    assert j["vs_ceiling"]["n"] == 30 and j["vs_ceiling"]["n_items"] == 10
    assert j["verbosity_gap"]["n_items"] == 10


def test_win_rates_and_gate_rows_count_items():
    pairs, votes = clustered_votes(np.random.default_rng(0), 12, 3, 0.6)
    pairs["item_key"] = [f"item-{p % 4}" for p in range(12)]  # 4 items, 3 comparisons each
    (w,) = stats.win_rates(pairs, votes, no_verdicts(), [("tuned", "base")], n_boot=50)
    assert (w.n, w.n_comparisons, w.n_items) == (36, 12, 4)
    assert w.reversed().n_items == 4
    inputs = gate.GateInputs(
        stats.calibrate(pairs.iloc[:0], votes.iloc[:0], no_verdicts()).overall,
        [w],
        stats.category_win_rates(pairs, votes, no_verdicts(), [("tuned", "base")], n_boot=50),
        final_review={"n": 20, "acceptable": 19},
    )
    win = gate.validate_threshold(
        "human_win_rate", {"system_a": "tuned", "system_b": "base"}, ">", 0.5
    )
    regression = gate.validate_threshold(
        gate.REGRESSION_METRIC, {"system_a": "tuned", "system_b": "base"}, "<=", 5
    )
    final = gate.validate_threshold("final_review_acceptable_rate", {}, ">=", 0.9)
    results = gate.evaluate([win, regression, final], inputs)
    assert [(r.n, r.n_items) for r in results] == [(12, 4), (12, 4), (20, 20)]
    assert results[0].to_json()["n_items"] == 4


def test_grader_measurements_count_the_items_of_their_outputs():
    graders = pd.DataFrame(
        {
            "grader": "g",
            "check": "c",
            "system": ["tuned"] * 6 + ["base"] * 6,
            "item_key": [f"i{i}" for i in range(6)] * 2,
            "category": "s",
            "passed": [True, True, False, True, True, True] * 2,
        }
    )
    empty = stats.calibrate(make_pairs(0), make_votes(make_pairs(0), []), no_verdicts()).overall
    inputs = gate.GateInputs(empty, [], {}, graders=graders, candidate="tuned")
    rate = gate.validate_threshold("grader_pass_rate", {"check": "c"}, ">=", 0.5)
    change = gate.validate_threshold(
        "grader_pass_rate_change", {"check": "c", "system_b": "base"}, "<=", 5
    )
    assert gate.measure(rate, inputs).n_items == 6
    assert gate.measure(change, inputs).n_items == 6


def majority_truth() -> float:
    """The judge's expected agreement with the majority of three reviewers. Labels are x or y
    at random and errors symmetric, so macro F1 has the same expected value."""
    out = 0.0
    for hard, weight in ((False, 0.7), (True, 0.3)):
        q, a = REVIEWERS[hard], JUDGE[hard]
        majority_right = q**3 + 3 * q * q * (1 - q)
        out += weight * (a * majority_right + (1 - a) * (1 - majority_right))
    return out


@pytest.mark.parametrize(
    "per_item", [pytest.param(1, marks=sharing("1")), pytest.param(3, marks=sharing("3"))]
)
@pytest.mark.parametrize("figure", ["accuracy", "macro_f1"])
def test_the_intervals_of_agreement_with_the_majority_cover_at_30_items(figure, per_item):
    """Measured: accuracy 0.97 / 0.96 and macro F1 0.95 / 0.945 (one / three comparisons per
    item). Macro F1's percentile interval covered 0.895 with three comparisons per item."""
    cis = [getattr(j.vs_majority, f"{figure}_ci") for j in simulated(per_item)]
    low, high = errors(cis, majority_truth())
    assert 1 - low - high >= 0.95 - 2 * np.sqrt(0.05 * 0.95 / RUNS)
