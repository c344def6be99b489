"""Decision rules judged by their error rates, not their arithmetic: simulated studies with fixed
seeds, each asking how often a rule says the wrong thing (a false pass, a false fail, an interval
that misses the truth), and the adversarial cases that used to bend the gate."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from review_app import gate, planning, stats
from review_app.cli import main
from review_app.services import data, signoff, studies, thresholds
from review_app.services import decision as decisions
from tests.acting import acting, looking, person
from tests.conftest import write
from tests.stats_frames import make_pairs, make_verdicts, make_votes, no_verdicts

COMPARISON = ("tuned", "base")
# The system on each side of the pairs make_pairs builds (in name order).
SYSTEM_ON = dict(zip("xy", sorted(COMPARISON), strict=True))
WIN = gate.validate_threshold("human_win_rate", {"system_a": "tuned", "system_b": "base"}, ">", 0.5)


def simulated_votes(rng, n_comparisons: int, k: int, win_rate: float, spread: float = 1.0):
    """k votes on each of n comparisons of tuned vs base. Each comparison has its own chance that
    tuned wins (item difficulty: a logit-normal around `win_rate`), so an item's votes agree
    more than chance would make them: the clustering a real study has."""
    pairs, layout = _vote_layout(n_comparisons, k)  # x = base, y = tuned
    logit = np.log(win_rate / (1 - win_rate))
    p = 1 / (1 + np.exp(-(logit + spread * rng.standard_normal(n_comparisons))))
    outcomes = ["y" if rng.random() < p[pid - 1] else "x" for pid in layout["pair_id"]]
    votes = layout.copy()
    votes["outcome"] = outcomes
    votes["winner"] = [SYSTEM_ON[outcome] for outcome in outcomes]
    return pairs.copy(), votes, float(p.mean())


@functools.cache
def _vote_layout(n_comparisons: int, k: int):
    """The pairs and the votes' every column but their outcomes, the same on every draw: the
    simulations draw thousands of studies of one layout, and building the frames cost as much
    as the statistics they test."""
    pairs = make_pairs(n_comparisons, COMPARISON)
    rows = [(pid, f"r{j}", "x") for pid in range(1, n_comparisons + 1) for j in range(k)]
    return pairs, make_votes(pairs, rows)


def human_win_rate(pairs, votes, n_boot=200):
    (w,) = stats.win_rates(pairs, votes, no_verdicts(), [COMPARISON], n_boot=n_boot)
    return w


NO_CALIBRATION = stats.calibrate(
    make_pairs(0), make_votes(make_pairs(0), []), no_verdicts()
).overall


def win_inputs(pairs, votes, n_boot=200) -> gate.GateInputs:
    return gate.GateInputs(NO_CALIBRATION, [human_win_rate(pairs, votes, n_boot)], {})


def decide_win(pairs, votes, plan=None, n_boot=200):
    return gate.decide_gate([WIN], win_inputs(pairs, votes, n_boot), stats.MIN_COMPARISONS, plan)


# ---- false passes ----


@pytest.mark.parametrize(("n_comparisons", "runs"), [(5, 200), (10, 200), (30, 1000), (100, 1000)])
def test_a_candidate_no_better_than_its_reference_passes_at_most_5_percent(n_comparisons, runs):
    """Three votes per comparison, items of varying difficulty, a true win rate of one half, and
    the recommended "human win rate > 0.5": before, 4 of 4 votes passed it."""
    rng = np.random.default_rng(n_comparisons)
    passes = sum(
        decide_win(*simulated_votes(rng, n_comparisons, 3, 0.5)[:2], n_boot=1000).result == "pass"
        for _ in range(runs)
    )
    assert passes / runs <= 0.05


def test_looking_after_every_10_votes_cannot_pass_a_candidate_at_parity_more_often():
    """A user who checks the gate after every 10 comparisons and ships at the first pass. Without
    the planned sample that raises the false pass rate; with it every interim look is
    inconclusive, so only the planned final look can pass."""
    rng = np.random.default_rng(7)
    runs, n, looks = 200, 100, range(30, 101, 10)
    peeking_without_plan = peeking_with_plan = final_only = 0
    for _ in range(runs):
        pairs, votes, _ = simulated_votes(rng, n, 1, 0.5)
        outcomes_no_plan, outcomes_plan = [], []
        for look in looks:
            inputs = win_inputs(pairs, votes[votes["pair_id"] <= look])
            plan = gate.Plan(n, 1, 0, comparisons_reached=look)
            outcomes_no_plan.append(gate.decide_gate([WIN], inputs).result)
            outcomes_plan.append(gate.decide_gate([WIN], inputs, plan=plan).result)
        assert all(o != "pass" for o in outcomes_plan[:-1])  # interim: never a pass
        peeking_without_plan += "pass" in outcomes_no_plan
        peeking_with_plan += "pass" in outcomes_plan
        final_only += outcomes_no_plan[-1] == "pass"
    assert peeking_with_plan == final_only
    assert peeking_with_plan / runs <= 0.05
    assert peeking_without_plan > final_only  # why the plan is there


def test_a_real_improvement_is_found_with_the_planned_sample():
    rng = np.random.default_rng(11)
    runs = 100
    # The fewest comparisons at which `plan` promises 80% power for a true win rate of 0.65.
    needed = next(
        n
        for n in range(30, 1000)
        if planning.design_power(
            [WIN],
            planning.StudyShape({COMPARISON: {"general": n}}, 0, "tuned"),
            planning.Design(1, 0),
            {"human_win_rate": 0.65},
        ).power
        >= 0.8
    )
    passes = sum(
        decide_win(*simulated_votes(rng, needed, 1, 0.65, spread=0.0)[:2]).result == "pass"
        for _ in range(runs)
    )
    # `plan` promises 80% power at the stated effect; allow for simulation noise.
    assert passes / runs >= 0.75


# ---- regression suites as non-inferiority ----


def regression_inputs(rng, per_suite: int, drops: dict[str, float]):
    categories, rows, pid, p_by_pair = {}, [], 0, {}
    for suite, drop in drops.items():
        for _ in range(per_suite):
            pid += 1
            categories[pid] = suite
            p_by_pair[pid] = 0.5 - drop / 100
    pairs = make_pairs(pid, COMPARISON, categories=categories)
    rows = [(p, "r1", "y" if rng.random() < p_by_pair[p] else "x") for p in range(1, pid + 1)]
    votes = make_votes(pairs, rows)
    return gate.GateInputs(
        stats.calibrate(pairs.iloc[:0], votes.iloc[:0], no_verdicts()).overall,
        [],
        stats.category_win_rates(pairs, votes, no_verdicts(), [COMPARISON], n_boot=100),
    )


REGRESSION = gate.validate_threshold(
    "max_regression_points",
    {"system_a": "tuned", "system_b": "base", "categories": "a,b"},
    "<=",
    5,
)


def test_a_suite_at_parity_rarely_fails_and_one_10_points_down_rarely_passes():
    rng = np.random.default_rng(3)
    runs = 200
    at_parity = [
        gate.evaluate([REGRESSION], regression_inputs(rng, 50, {"a": 0, "b": 0}))[0].outcome
        for _ in range(runs)
    ]
    hidden = [
        gate.evaluate([REGRESSION], regression_inputs(rng, 50, {"a": 0, "b": 10}))[0].outcome
        for _ in range(runs)
    ]
    # Before: 59% false fails at parity (point estimate vs the bar) and 13% false passes.
    assert at_parity.count("fail") / runs <= 0.05
    assert hidden.count("pass") / runs <= 0.05


# ---- intervals ----


@pytest.mark.parametrize(("n_comparisons", "floor"), [(10, 0.93), (25, 0.94), (60, 0.94)])
def test_win_rate_intervals_cover_the_truth(n_comparisons, floor):
    rng = np.random.default_rng(n_comparisons)
    runs, covered = 400, 0
    for _ in range(runs):
        truth = rng.uniform(0.3, 0.9)
        pairs, votes, _ = simulated_votes(rng, n_comparisons, 3, truth)
        # The truth of this study design: the expected share over the item population.
        low, high = human_win_rate(pairs, votes).ci
        covered += low <= population_mean(truth) <= high
    assert covered / runs >= floor


def population_mean(win_rate: float) -> float:
    """E[logistic(logit(win_rate) + Z)]: the win rate over the item population (the spread of
    simulated_votes' items, 1). logistic(logit(w) + z) = 1 / (1 + (1 - w) / w * exp(-z)), so
    each call is a multiply and a reciprocal over the draws' exp(-z), computed once: the same
    figure but for its last bit (the coverage tests count the same runs covered)."""
    return float((1 / (1 + (1 - win_rate) / win_rate * EXP_MINUS_STANDARD_NORMALS)).mean())


# The draws population_mean integrates over: the same for every call (drawn once, not per call).
STANDARD_NORMALS = np.random.default_rng(0).standard_normal(200_000)
EXP_MINUS_STANDARD_NORMALS = np.exp(-STANDARD_NORMALS)


def test_strict_agreement_intervals_cover_the_truth_when_items_have_two_comparisons():
    """Each item is compared twice (tuned vs base and tuned vs frontier) with one difficulty for
    both, three votes each; a judge right with probability 0.8 per comparison. The interval
    resamples whole items, so the shared difficulty does not make it too narrow."""
    rng = np.random.default_rng(5)
    runs, covered, n_items = 300, 0, 25
    truth = 0.8  # a vote is always decisive here; the judge matches the "true" side 80%
    for _ in range(runs):
        rows, verdict_rows, pair_rows = [], [], []
        pid = 0
        for item in range(n_items):
            hard = rng.random() < 0.5
            for other in ("base", "frontier"):
                pid += 1
                x, y = sorted(("tuned", other))
                pair_rows.append((pid, f"item-{item}", x, y))
                side = "x" if rng.random() < (0.3 if hard else 0.7) else "y"
                for j in range(3):
                    # Reviewers see the better side with 90% chance.
                    vote = side if rng.random() < 0.9 else ("y" if side == "x" else "x")
                    rows.append((pid, f"r{j}", vote))
                judged = side if rng.random() < truth else ("y" if side == "x" else "x")
                verdict_rows.append(("j", pid, None, judged))
        pairs = make_pairs(pid, ("a", "b"))
        pairs["item_key"] = [r[1] for r in pair_rows]
        pairs["system_x"] = [r[2] for r in pair_rows]
        pairs["system_y"] = [r[3] for r in pair_rows]
        votes = make_votes(pairs, rows)
        verdicts = make_verdicts(pairs, verdict_rows)
        judge = stats.analyse(pairs, votes, verdicts, n_boot=200).judge("j")
        low, high = judge.agreement_strict.ci
        # Expected strict agreement: judge right (0.8) x voter right (0.9) + both wrong.
        covered += low <= 0.8 * 0.9 + 0.2 * 0.1 <= high
    assert covered / runs >= 0.93


# ---- abstention and the human ceiling ----


def judged_study(rng, n: int, judge_error: float, abstain_on_hard: bool):
    """n comparisons, 3 reviewers who see the better side with 90% chance (95% on easy items,
    80% on hard ones); a judge wrong `judge_error` of the time, or (abstainer) right on easy items
    and, on hard ones, always picking whichever answer it is shown first: inconsistent, a tie."""
    pairs = make_pairs(n, COMPARISON)
    votes_rows, verdict_rows = [], []
    for pid in range(1, n + 1):
        hard = rng.random() < 0.3
        truth = "x" if rng.random() < 0.5 else "y"
        other = "y" if truth == "x" else "x"
        accuracy = 0.8 if hard else 0.95
        for j in range(3):
            votes_rows.append((pid, f"r{j}", truth if rng.random() < accuracy else other))
        if abstain_on_hard and hard:
            verdict_rows += [("j", pid, "x", "x"), ("j", pid, "y", "y")]
        else:
            said = other if rng.random() < judge_error else truth
            verdict_rows += [("j", pid, "x", said), ("j", pid, "y", said)]
    votes = make_votes(pairs, votes_rows)
    verdicts = make_verdicts(pairs, verdict_rows)
    return stats.analyse(pairs, votes, verdicts, n_boot=300).judge("j")


def test_an_abstaining_judge_does_not_look_better_than_an_honest_one():
    rng = np.random.default_rng(2)
    honest = judged_study(rng, 200, judge_error=0.1, abstain_on_hard=False)
    abstainer = judged_study(rng, 200, judge_error=0.0, abstain_on_hard=True)
    # Ties excluded, the abstainer looks better: it only answers where answering is easy.
    assert abstainer.agreement_without_ties.value > honest.agreement_without_ties.value
    # Strictly, its ties are disagreements, and it answers far less often.
    assert abstainer.agreement_strict.value < honest.agreement_strict.value
    assert abstainer.decisive_share.value < 0.8 < honest.decisive_share.value
    assert honest.vs_ceiling.verdict == "within"
    assert abstainer.vs_ceiling.verdict == "below"


@pytest.mark.parametrize("n", [10, 50])
def test_a_judge_10_points_worse_than_humans_is_almost_never_within_the_ceiling(n):
    rng = np.random.default_rng(n)
    runs = 150
    within = 0
    for _ in range(runs):
        pairs = make_pairs(n, COMPARISON)
        votes_rows, verdict_rows = [], []
        for pid in range(1, n + 1):
            truth = "x" if rng.random() < 0.5 else "y"
            other = "y" if truth == "x" else "x"
            for j in range(3):
                votes_rows.append((pid, f"r{j}", truth if rng.random() < 0.9 else other))
            # Humans agree with each other 0.82 of the time; this judge 10 points less.
            said = truth if rng.random() < 0.78 else other
            verdict_rows.append(("j", pid, None, said))
        judge = stats.analyse(
            pairs, make_votes(pairs, votes_rows), make_verdicts(pairs, verdict_rows), n_boot=200
        ).judge("j")
        within += judge.vs_ceiling.verdict == "within"
    # Before: 91% of 10-comparison studies and 56% of 50-comparison ones read "within".
    assert within / runs <= 0.05


# ---- the adversarial cases, through the app ----


OUTPUTS = "item_id,prompt,system,output,category\n" + "".join(
    f"q{i},Question {i}?,{s},Answer {i} from {s},general\n"
    for i in range(40)
    for s in ("tuned", "base")
)


def test_a_file_that_names_the_reference_first_still_decides_on_the_candidate(
    store, tmp_path, settings, capsys, cli_admin
):
    data.import_outputs(store, write(tmp_path / "o.csv", OUTPUTS), "e", actor=person(store))
    # The file names base first: the comparison is base:tuned as typed.
    votes = "item_id,system_a,system_b,reviewer,winner\n" + "".join(
        f"q{i},base,tuned,ann,{'tuned' if i % 4 else 'base'}\n" for i in range(40)
    )
    write(tmp_path / "v.csv", votes)
    code = main(["import", "votes", str(tmp_path / "v.csv"), "--study", "s", "--eval-set", "e"])
    out = capsys.readouterr().out
    assert code == 0
    assert "candidate: base (inferred: the first system of the first comparison, base:tuned" in out
    studies.set_candidate(acting(store, "s"), "tuned")
    # Either orientation: "tuned over base" is measurable on a base:tuned study.
    thresholds.add_threshold(
        acting(store, "s", "ann"),
        "human_win_rate",
        {"system_a": "tuned", "system_b": "base"},
        ">",
        0.5,
    )
    thresholds.lock_thresholds(acting(store, "s", "ann", settings=settings), "a small test study")
    (result,) = decisions.evaluate_gate(looking(store, "s", settings)).results
    assert result.value == pytest.approx(30 / 40)
    assert result.outcome == "pass"
    assert looking(store, "s").lock.row["candidate"] == "tuned"


def test_four_votes_do_not_pass_the_ci_low_threshold(store, tmp_path, settings):
    data.import_outputs(store, write(tmp_path / "o.csv", OUTPUTS), "e", actor=person(store))
    votes = "item_id,system_a,system_b,reviewer,winner\n" + "".join(
        f"q{i},tuned,base,ann,tuned\n" for i in range(4)
    )
    data.import_votes(
        store, write(tmp_path / "v.csv", votes), "s", eval_set="e", actor=person(store)
    )
    thresholds.add_threshold(
        acting(store, "s", "ann"),
        "human_win_rate_ci_low",
        {"system_a": "tuned", "system_b": "base"},
        ">=",
        0.5,
    )
    thresholds.lock_thresholds(acting(store, "s", "ann", settings=settings), "a small test study")
    decision = decisions.evaluate_gate(looking(store, "s", settings))
    (result,) = decision.results
    # 4 of 4: the interval no longer collapses to [1, 1], and 4 comparisons decide nothing.
    assert result.value < 0.6 and result.ci[1] == 1.0
    assert result.outcome == "inconclusive" and result.reason.startswith("4 of 30 items")
    assert decision.result == "inconclusive"


def test_the_calibration_screen_stats_and_the_gate_tell_one_story(demo_store, settings):
    from review_app.services import calibration

    report = calibration.calibration_report(looking(demo_store, "demo", settings))
    judge = report.calibration.overall.judge("example-llm-judge")
    document = next(j for j in report.document()["judges"] if j["judge"] == "example-llm-judge")
    assert document["vs_ceiling"]["verdict"] == judge.vs_ceiling.verdict
    thresholds.add_recommended_thresholds(
        acting(demo_store, "demo", "demo-admin", settings=settings)
    )
    thresholds.lock_thresholds(
        acting(demo_store, "demo", "demo-admin", settings=settings), "a small test study"
    )
    ctx = looking(demo_store, "demo", settings)
    decision = decisions.evaluate_gate(ctx)
    (ceiling,) = [r for r in decision.results if r.threshold.metric == "judge_agreement_vs_ceiling"]
    # The demo is interim, so the row shows its figures undecided; the rule it will be decided
    # by, applied to the same figures, says what the calibration screen says.
    assert ceiling.outcome == "interim"
    (ruled,) = [
        r
        for r in gate.evaluate(
            ctx.thresholds, decisions.gate_inputs(ctx, ctx.data()), ctx.min_items
        )
        if r.threshold.metric == "judge_agreement_vs_ceiling"
    ]
    # The interim row shows its bounds at this look's sequential boundary; at 95% they are the
    # calibration screen's.
    assert ruled.value == ceiling.value
    measured = gate.measure(ruled.threshold, decisions.gate_inputs(ctx, ctx.data()))
    assert gate.at_boundary(measured, decision.look.boundary).bounds == ceiling.bounds
    expected = {"within": "pass", "below": "fail", "inconclusive": "inconclusive"}
    assert ruled.outcome == expected[judge.vs_ceiling.verdict]
    assert report.assessments["example-llm-judge"].ok == (judge.vs_ceiling.verdict == "within")
    built = signoff.build_report(looking(demo_store, "demo", settings))
    reported = next(j for j in built["judges"] if j["judge"] == "example-llm-judge")
    assert reported["vs_ceiling"]["verdict"] == judge.vs_ceiling.verdict
