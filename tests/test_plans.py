"""Plans a good candidate can pass, and every look on the record: the power model against exact
figures and simulated studies, the smallest design it proposes, plans changed before the lock
and fitted to imported votes, the lock's power floor, and interim looks recorded in someone's
name (never a pass before the planned sample is in)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binom

from review_app import gate, planning, stats
from review_app.cli import main
from review_app.errors import Conflict, Forbidden, InputError
from review_app.report import render_report
from review_app.services import decision as decisions
from review_app.services import plans, signoff, thresholds
from tests.acting import acting, looking, reading, token_for
from tests.conftest import write
from tests.stats_frames import make_pairs, make_votes, no_verdicts

WIN = gate.validate_threshold("human_win_rate", {"system_a": "tuned", "system_b": "base"}, ">", 0.5)
REGRESSION = gate.validate_threshold(
    "max_regression_points",
    {"system_a": "tuned", "system_b": "base", "categories": []},
    "<=",
    5,
)
REVIEW = gate.validate_threshold("final_review_acceptable_rate", {}, ">=", 0.9)


def shape(items_per_suite: int, suites: int = 1, outputs: int = 200) -> planning.StudyShape:
    names = [f"suite{i}" for i in range(suites)]
    return planning.StudyShape(
        {("tuned", "base"): {n: items_per_suite for n in names}},
        outputs,
        "tuned",
        {n: items_per_suite for n in names},
        {"tuned": items_per_suite * suites, "base": items_per_suite * suites},
    )


# ---- the model ----


def test_the_final_review_power_is_the_exact_binomial_chance_of_clearing_wilsons_bound():
    # A bar of 0.9 on 50 outputs needs 49 of them (Wilson's one-sided lower bound of 48/50 is
    # under 0.9): a candidate that is truly 95% acceptable passes 28% of the time.
    assert stats.wilson_interval(49 / 50, 50, stats.Z_ONE_SIDED_95)[0] >= 0.9
    assert stats.wilson_interval(48 / 50, 50, stats.Z_ONE_SIDED_95)[0] < 0.9
    assert planning.wilson_power(0.95, 0.9, 50) == pytest.approx(binom.sf(48, 50, 0.95))
    assert planning.wilson_power(0.95, 0.9, 50) == pytest.approx(0.279, abs=0.001)
    # At the bar itself it passes at most 5% of the time: the bound is one-sided 95%.
    assert planning.wilson_power(0.9, 0.9, 50) <= 0.05


def test_the_truth_a_plan_is_made_for():
    assert planning.expected_truth(WIN) == pytest.approx(0.55)
    assert planning.expected_truth(REGRESSION) == 0.0  # a margin: planned at parity
    assert planning.expected_truth(REVIEW) == 0.97
    ceiling = gate.validate_threshold("judge_agreement_vs_ceiling", {"judge": "j"}, ">=", -0.05)
    beats = gate.validate_threshold(
        "judge_beats_baseline", {"judge": "j", "baseline": "baseline/longest"}, ">", 0
    )
    assert planning.expected_truth(ceiling) == 0.0
    assert planning.expected_truth(beats) == pytest.approx(0.05)
    assert planning.expected_truth(WIN, {"human_win_rate": 0.6}) == 0.6
    assert planning.parse_expectations(["human_win_rate=0.6"]) == {"human_win_rate": 0.6}
    with pytest.raises(InputError, match="--expect 'win=0.6': give METRIC=VALUE"):
        planning.parse_expectations(["win=0.6"])
    with pytest.raises(InputError, match="'high' is not a number"):
        planning.parse_expectations(["human_win_rate=high"])


def test_every_suite_must_pass_so_four_suites_need_far_more_than_one():
    one = planning.design_power([REGRESSION], shape(300), planning.Design(3, 0))
    four = planning.design_power([REGRESSION], shape(300, suites=4), planning.Design(3, 0))
    assert four.power == pytest.approx(one.power**4)
    assert four.power < 0.8 * one.power
    # Below the minimum a suite cannot be decided at all.
    assert planning.design_power([REGRESSION], shape(20), planning.Design(3, 0)).power == 0.0


def test_the_proposal_is_the_fewest_votes_then_the_smallest_final_review_that_reach_80():
    proposal = planning.propose([WIN, REVIEW], shape(400), planning.Design(1, 50))
    assert proposal.current.power < 0.8
    best = proposal.proposed
    assert best is not None and best.power >= planning.TARGET_POWER
    k, n = best.design.votes_per_comparison, best.design.final_review
    fewer_votes = planning.design_power([WIN, REVIEW], shape(400), planning.Design(k - 1, 200))
    smaller_review = planning.design_power([WIN, REVIEW], shape(400), planning.Design(k, n - 1))
    assert k == 1 or fewer_votes.power < planning.TARGET_POWER
    assert smaller_review.power < planning.TARGET_POWER
    lines = proposal.lines()
    assert lines[-1] == (
        f"  set it with: review-app study plan STUDY --reviews-per-pair {k} --final-review {n}"
    )


def test_a_study_too_small_for_any_design_says_how_many_items_it_needs():
    proposal = planning.propose([REGRESSION], shape(60, suites=4), planning.Design(3, 0))
    assert proposal.proposed is None
    assert proposal.items_factor is not None and proposal.items_factor > 2
    assert proposal.lines()[-1].startswith("no design over these items reaches 80%")


def simulated_suite(rng, n_items: int, k: int, win_rate: float, correlation: float = 0.2):
    """k votes on each of n comparisons, each comparison with its own chance that tuned wins
    (a Beta distribution with mean `win_rate`, so the truth is exactly the stated one, and the
    given correlation between two votes on one comparison): the clustering of a real study."""
    pairs = make_pairs(n_items, ("tuned", "base"))  # x = base, y = tuned
    concentration = 1 / correlation - 1
    p = rng.beta(win_rate * concentration, (1 - win_rate) * concentration, n_items)
    rows = [
        (pid, f"r{j}", "y" if rng.random() < p[pid - 1] else "x")
        for pid in range(1, n_items + 1)
        for j in range(k)
    ]
    return pairs, make_votes(pairs, rows)


def test_a_design_planned_for_80_percent_passes_about_that_often_in_simulated_studies():
    """The plan's promise checked through the gate's own functions: at the stated truth (a win
    rate of 0.55) the design the planner calls 80% passes at least about 80% of simulated
    studies (the vote correlation assumed is on the safe side of the simulated one)."""
    for n_items in range(30, 2000, 10):
        if planning.design_power([WIN], shape(n_items), planning.Design(3, 0)).power >= 0.8:
            break
    rng = np.random.default_rng(7)
    passed, sims = 0, 100
    for _ in range(sims):
        pairs, votes = simulated_suite(rng, n_items, 3, 0.55)
        (w,) = stats.win_rates(pairs, votes, no_verdicts(), [("tuned", "base")], n_boot=200)
        inputs = gate.GateInputs(None, [w], {})
        passed += gate.decide(WIN, gate.measure(WIN, inputs), 30).outcome == "pass"
    assert passed / sims >= 0.74, (n_items, passed)


# ---- plans on a study ----


def test_a_plan_changes_before_the_lock_only_by_an_admin_and_is_recorded(demo_store, settings):
    with pytest.raises(Forbidden, match="may not change the plan"):
        plans.change_plan(acting(demo_store, "demo", "sig", role="signer"), 5)
    line = plans.change_plan(acting(demo_store, "demo", settings=settings), 5, 80)
    assert line == "study demo: 5 vote(s) per comparison, a final review of 80 outputs"
    study = demo_store.studies.require_study("demo")
    assert (study["reviews_per_pair"], study["final_review_size"]) == (5, 80)
    (entry,) = [
        e for e in demo_store.audit.audit_entries(study["id"]) if e["action"] == "plan changed"
    ]
    assert json.loads(entry["detail"]) == {
        "before": {"reviews_per_pair": 3, "final_review": 50},
        "after": {"reviews_per_pair": 5, "final_review": 80},
    }
    with pytest.raises(InputError, match="at least 1, got 0"):
        plans.change_plan(acting(demo_store, "demo"), 0)
    thresholds.add_recommended_thresholds(acting(demo_store, "demo"))
    thresholds.lock_thresholds(acting(demo_store, "demo"), "a demo")
    with pytest.raises(Conflict, match="the plan can no longer change"):
        plans.change_plan(acting(demo_store, "demo"), 3)
    # The lock planned the changed design: 64 outputs is all the candidate has.
    plan = looking(demo_store, "demo").lock.plan
    assert (plan["votes_per_comparison"], plan["final_review"]) == (5, 64)


def test_the_lock_records_the_designs_power_and_refuses_a_weak_one_without_a_reason(
    demo_store, settings
):
    thresholds.add_recommended_thresholds(acting(demo_store, "demo"))
    power = plans.design_power(looking(demo_store, "demo", settings))
    assert power.power < planning.LOCK_POWER_FLOOR
    with pytest.raises(InputError, match="power to pass every threshold at the expected truth"):
        thresholds.lock_thresholds(acting(demo_store, "demo", settings=settings))
    assert looking(demo_store, "demo").lock.row is None
    thresholds.lock_thresholds(acting(demo_store, "demo", settings=settings), "a pilot")
    built = signoff.build_report(looking(demo_store, "demo", settings))
    assert built["design"]["power"] == round(power.power, 4)
    assert built["design"]["low_power_reason"] == "a pilot"
    markdown = render_report(built, "md")
    assert "Locked under 50% power because: a pilot" in markdown


def test_plan_command_prints_the_power_and_the_proposal(demo_store, capsys, monkeypatch):
    thresholds.add_recommended_thresholds(acting(demo_store, "demo"))
    assert main(["plan", "--study", "demo"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("current design: 3 vote(s) per comparison, a final review of 50")
    assert "Final review: acceptable rate >= 0.9: planned for 0.97; power 56%" in out
    assert "chance that every threshold passes: 0%" in out
    assert main(["plan", "--study", "demo", "--json", "--expect", "human_win_rate=0.7"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["current"]["expectations"] == {"human_win_rate": 0.7}
    assert main(["plan", "--study", "demo", "--expect", "nope"]) == 1
    assert "give METRIC=VALUE" in capsys.readouterr().err


def test_a_study_made_by_an_import_plans_the_votes_it_was_given(tmp_path, capsys, cli_admin):
    write(
        tmp_path / "o.csv",
        "item_id,prompt,system,output,category\n"
        + "".join(f"q{i},P{i}?,{s},A{i}{s},geo\n" for i in range(4) for s in ("base", "ft")),
    )
    assert main(["import", "outputs", str(tmp_path / "o.csv"), "--eval-set", "e"]) == 0
    votes = "item_id,system_a,system_b,reviewer,winner\n" + "".join(
        f"q{i},ft,base,{r},ft\n" for i in range(4) for r in (["ann", "bob"] if i == 0 else ["ann"])
    )
    write(tmp_path / "v.csv", votes)
    code = main(["import", "votes", str(tmp_path / "v.csv"), "--study", "new", "--eval-set", "e"])
    out = capsys.readouterr().out
    assert code == 0
    assert "reviews per pair: 2 (the most votes any comparison got in this import" in out
    assert main(["study", "plan", "new", "--reviews-per-pair", "1"]) == 0
    assert capsys.readouterr().out.startswith("study new: 1 vote(s) per comparison")


# ---- looks ----


@pytest.fixture
def interim(demo_store, settings):
    thresholds.add_recommended_thresholds(acting(demo_store, "demo"))
    thresholds.lock_thresholds(acting(demo_store, "demo", settings=settings), "a demo")
    return demo_store


def looks(store):
    study = store.studies.require_study("demo")
    return [e for e in store.audit.audit_entries(study["id"]) if e["action"] == decisions.LOOK]


def test_an_interim_look_is_recorded_in_the_lookers_name_and_shows_no_pass(interim, settings):
    with pytest.raises(Forbidden, match="recorded in the name of who looks"):
        decisions.evaluate_gate(reading(interim, "demo", settings))
    assert looks(interim) == []
    decision = decisions.evaluate_gate(acting(interim, "demo", "demo-admin", settings=settings))
    assert decision.interim and decision.result == "inconclusive"
    assert {r.outcome for r in decision.results} == {"interim"}
    assert all(r.reason.startswith("not decided until 128 comparisons") for r in decision.results)
    (look,) = looks(interim)
    detail = json.loads(look["detail"])
    assert look["actor"] == "demo-admin"
    assert [f["threshold"] for f in detail["figures"]] == [
        r.threshold.describe() for r in decision.results
    ]
    assert detail["plan"]["reached"] == decision.plan.comparisons_reached
    # The same figures seen again by the same person add nothing; someone else's look does.
    decisions.evaluate_gate(acting(interim, "demo", "demo-admin", settings=settings))
    assert len(looks(interim)) == 1
    decisions.evaluate_gate(
        acting(interim, "demo", "demo-signer", role="signer", settings=settings)
    )
    assert [e["actor"] for e in looks(interim)] == ["demo-admin", "demo-signer"]
    # A reviewer may not look at outcomes at all.
    with pytest.raises(Forbidden, match="may not look at outcomes"):
        decisions.evaluate_gate(acting(interim, "demo", "rita", role="reviewer", settings=settings))


def test_the_report_lists_every_interim_look(interim, settings):
    decisions.evaluate_gate(acting(interim, "demo", "demo-admin", settings=settings))
    built = signoff.build_report(acting(interim, "demo", "demo-signer", role="signer"))
    assert [look["actor"] for look in built["looks"]] == ["demo-admin", "demo-signer"]
    markdown = render_report(built, "md")
    assert "### Looks before the planned sample was in" in markdown
    assert "by demo-admin, 20 of 128 comparisons in; look 1, boundary z = " in markdown
    assert "alpha spent 0.0000" in markdown
    assert {r["outcome"] for r in built["gate"]["thresholds"]} == {"interim"}
    assert {r["outcome"] for r in built["regression"] if r["outcome"]} == {"interim"}


def test_scorecard_and_results_are_looks_too(interim, settings, capsys):
    assert main(["scorecard", "--study", "demo"]) == 1
    assert "recorded in the name of who looks" in capsys.readouterr().err
    token = token_for(interim, "demo-admin")
    assert main(["--token", token, "scorecard", "--study", "demo", "--json"]) == 0
    assert [e["actor"] for e in looks(interim)] == ["demo-admin"]
    signoff.study_results(acting(interim, "demo", "demo-signer", role="signer"))
    assert [e["actor"] for e in looks(interim)] == ["demo-admin", "demo-signer"]


@pytest.mark.parametrize(
    "raw",
    [
        "human_win_rate=-1",
        "human_win_rate=1.5",
        "max_regression_points=nan",
        "judge_position_bias=0.7",
    ],
)
def test_an_expected_truth_outside_what_its_metric_can_be_is_refused(raw):
    with pytest.raises(InputError, match="lies between"):
        planning.parse_expectations([raw])
