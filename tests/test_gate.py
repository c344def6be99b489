import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from review_app import baselines, gate, stats
from review_app.auth import Actor
from review_app.cli import main
from review_app.errors import Conflict, Forbidden, InputError, OutcomesHidden
from review_app.report import render_report, report_hash
from review_app.services import data, people, signoff, studies, thresholds
from review_app.services import decision as decisions
from tests.acting import acting, looking, person
from tests.stats_frames import make_pairs, make_verdicts, make_votes

PAGES = Path(__file__).resolve().parent.parent / "review_app" / "app_pages"


def add_standard_thresholds(store, by="demo-admin"):
    thresholds.add_threshold(
        acting(store, "demo", by),
        "human_win_rate",
        {"system_a": "finetuned", "system_b": "base"},
        ">=",
        0.6,
    )
    thresholds.add_threshold(
        acting(store, "demo", by),
        "max_regression_points",
        {"system_a": "finetuned", "system_b": "base", "categories": "reasoning,formatting,safety"},
        "<=",
        5,
    )


@pytest.fixture
def locked(demo_store):
    add_standard_thresholds(demo_store)
    thresholds.lock_thresholds(acting(demo_store, "demo", "demo-admin"), "a small test study")
    return demo_store


def reviewer(store, name):
    """A demo user as the Actor their link authenticates (Forbidden once it is revoked)."""
    return Actor.of(store.people.reviewer(name))


def token(store, name):
    """A demo user's personal token, from the link the demo printed."""
    return store.demo_links[name].split("token=")[1]


def study_frames(store, study_id, seed, with_baselines=True):
    """The study's frames built straight from the store, independently of the app's study data:
    stored verdicts named by run label, plus computed baselines for those with no stored run."""
    pairs = store.frames.pairs_frame(study_id)
    verdicts = store.frames.verdicts_frame(study_id)
    if with_baselines:
        missing = [n for n in baselines.BASELINES if baselines.label(n) not in set(verdicts.judge)]
        computed = baselines.computed_verdicts(pairs, missing, seed=seed)
        verdicts = pd.concat([verdicts, computed[list(verdicts.columns)]], ignore_index=True)
    else:
        verdicts = verdicts[~verdicts.judge.map(baselines.is_baseline)].reset_index(drop=True)
    return pairs, store.frames.votes_frame(study_id), verdicts


def test_threshold_validation_names_the_problem():
    with pytest.raises(InputError, match="unknown metric 'win'"):
        gate.validate_threshold("win", {}, ">=", 1)
    with pytest.raises(InputError, match="needs the parameter system_b"):
        gate.validate_threshold("human_win_rate", {"system_a": "x"}, ">=", 0.5)
    with pytest.raises(InputError, match="not system_a"):
        gate.validate_threshold("judge_position_bias", {"judge": "j", "system_a": "x"}, "<=", 0.1)
    with pytest.raises(InputError, match="reads human votes"):
        gate.validate_threshold(
            "max_regression_points",
            {"system_a": "a", "system_b": "b", "source": "j", "judge": "j"},
            "<=",
            5,
        )


def test_a_judge_makes_a_win_rate_prediction_powered_and_none_keeps_its_hash():
    plain = gate.validate_threshold("human_win_rate", {"system_a": "a", "system_b": "b"}, ">", 0.5)
    empty = gate.validate_threshold(
        "human_win_rate", {"system_a": "a", "system_b": "b", "judge": ""}, ">", 0.5
    )
    named = gate.validate_threshold(
        "human_win_rate", {"system_a": "a", "system_b": "b", "judge": "gpt"}, ">", 0.5
    )
    assert gate.thresholds_hash([plain]) == gate.thresholds_hash([empty])
    assert named.params["judge"] == "gpt"
    assert "judge=gpt" in named.describe()
    with pytest.raises(InputError, match="comparator '=='"):
        gate.validate_threshold("final_review_acceptable_rate", {}, "==", 0.5)


# ---- the gate on a small hand-made study (no workspace, no services) ----

COMPARISON = ("finetuned", "base")


@pytest.fixture(scope="module")
def small() -> gate.GateInputs:
    """Finetuned vs base. reasoning: humans 7 wins / 13 losses (win rate 0.35, a 15-point drop),
    gpt-judge 0 of 20 (a 50-point drop); safety: humans 4 of 4; formatting: judged, never voted.
    One reviewer, so there is no human-human ceiling."""
    reasoning, safety, formatting = range(1, 21), range(21, 25), range(25, 27)
    categories = {p: "reasoning" for p in reasoning} | {p: "safety" for p in safety}
    categories |= {p: "formatting" for p in formatting}
    pairs = make_pairs(26, COMPARISON, categories=categories)
    # make_pairs orders systems by name: x = base, y = finetuned.
    votes = make_votes(
        pairs,
        [(p, "r1", "y" if p <= 7 else "x") for p in reasoning] + [(p, "r1", "y") for p in safety],
    )
    verdicts = make_verdicts(
        pairs,
        [("gpt-judge", p, None, "x") for p in reasoning]
        + [("gpt-judge", p, None, "y") for p in formatting],
    )
    return gate.GateInputs(
        stats.calibrate(pairs, votes, verdicts, n_boot=50).overall,
        stats.win_rates(pairs, votes, verdicts, [COMPARISON], n_boot=50),
        stats.category_win_rates(pairs, votes, verdicts, [COMPARISON], n_boot=50),
        {"n": 4, "acceptable": 3, "sample_size": 4},
    )


def regression_threshold(tolerance=15, categories="reasoning,formatting", source="", op="<="):
    params = {"system_a": "finetuned", "system_b": "base", "categories": categories}
    return gate.validate_threshold(
        "max_regression_points", params | {"source": source}, op, tolerance
    )


def test_each_metric_measures_itself_with_the_same_details(small):
    def measured(metric, **params):
        return gate.measure(gate.validate_threshold(metric, params, ">=", 0), small)

    pair = {"system_a": "finetuned", "system_b": "base"}
    win = measured("human_win_rate", **pair)
    assert (win.value, win.n, win.detail) == (11 / 24, 24, "11 wins, 0 ties, 13 losses")
    assert win.bounds[0] < win.value < win.bounds[1]
    assert win.ci[0] < win.bounds[0] and win.bounds[1] < win.ci[1]  # 90% inside 95%
    low = measured("human_win_rate_ci_low", **pair)
    assert low.value == win.ci[0] and low.detail == (
        f"win rate {11 / 24:.3f}, CI [{win.ci[0]:.3f}, {win.ci[1]:.3f}]"
    )
    judged = measured("judge_win_rate", judge="gpt-judge", **pair)
    assert (judged.value, judged.n, judged.detail) == (2 / 22, 22, "2 wins, 0 ties, 20 losses")
    agreement = measured("judge_agreement", judge="gpt-judge", ties="without")
    assert (agreement.value, agreement.n) == (13 / 20, 20)
    assert agreement.detail == "agreement, without ties"
    # One reviewer per comparison, every verdict decisive: strict agreement equals it here.
    assert measured("judge_agreement_strict", judge="gpt-judge").value == 13 / 20
    assert measured("judge_decisive_share", judge="gpt-judge").value == 1.0
    final = measured("final_review_acceptable_rate")
    assert (final.value, final.n, final.needed) == (0.75, 4, 4)
    assert final.detail == "3 of 4 acceptable (4 of 4 reviewed)"
    assert final.bounds == pytest.approx(stats.wilson_interval(0.75, 4, stats.Z_ONE_SIDED_95))
    worst = gate.measure(regression_threshold(categories="reasoning,safety"), small)
    # The worst suite sets the value; the smallest suite sets n (each must have enough).
    assert (worst.value, worst.n) == (15.0, 4)
    assert worst.detail == ("worst: reasoning (win rate 0.350, n=20); smallest suite: safety (n=4)")
    assert all(callable(m.measure) for m in gate.METRICS.values())


def test_a_threshold_may_name_its_systems_in_either_order(small):
    forward = gate.validate_threshold(
        "human_win_rate", {"system_a": "finetuned", "system_b": "base"}, ">=", 0.5
    )
    backward = gate.validate_threshold(
        "human_win_rate", {"system_a": "base", "system_b": "finetuned"}, "<=", 0.5
    )
    a, b = gate.measure(forward, small), gate.measure(backward, small)
    assert b.value == pytest.approx(1 - a.value)
    assert b.bounds == pytest.approx((1 - a.bounds[1], 1 - a.bounds[0]))
    assert b.detail == "13 wins, 0 ties, 11 losses"
    # "finetuned over base >= 0.5" and "base over finetuned <= 0.5" are one claim.
    outcomes = {gate.decide(t, gate.measure(t, small), 1).outcome for t in (forward, backward)}
    assert len(outcomes) == 1


def test_unmeasurable_thresholds_are_inconclusive_saying_why(small):
    cases = [
        (
            "human_win_rate",
            {"system_a": "base", "system_b": "other"},
            "no humans outcomes for base vs other",
        ),
        ("judge_agreement", {"judge": "nobody", "ties": "strict"}, "no verdicts from judge nobody"),
        (
            "judge_agreement_vs_ceiling",
            {"judge": "gpt-judge"},
            "no comparison with a decisive vote, a second vote and a verdict",
        ),
        (
            "judge_beats_baseline",
            {"judge": "gpt-judge", "baseline": "baseline/longest"},
            "no verdicts from judge baseline/longest",
        ),
        (
            "max_regression_points",
            {"system_a": "finetuned", "system_b": "base", "categories": "reasoning,formatting"},
            "category formatting has no humans outcomes",
        ),
        (
            "max_regression_points",
            {"system_a": "base", "system_b": "other"},
            "no category has outcomes for this comparison",
        ),
    ]
    thresholds = [gate.validate_threshold(m, p, ">=", 0) for m, p, _ in cases]
    results = gate.evaluate(thresholds, small, min_items=1)
    assert [r.reason for r in results] == [f"not measurable: {why}" for _, _, why in cases]
    assert {r.outcome for r in results} == {"inconclusive"}
    assert all(r.value is None for r in results)


def measurement(value, low, high, n=100):
    return gate.Measurement(value, None, (low, high), n, "d")


@pytest.mark.parametrize(
    ("comparator", "bounds", "outcome"),
    [
        (">=", (0.62, 0.7), "pass"),
        (">=", (0.6, 0.7), "pass"),  # the bound on the bar clears it
        (">=", (0.55, 0.7), "inconclusive"),  # the estimate clears it, the bound does not
        (">=", (0.4, 0.59), "fail"),
        (">", (0.6, 0.7), "inconclusive"),
        (">", (0.4, 0.6), "fail"),
        ("<=", (0.5, 0.6), "pass"),
        ("<=", (0.55, 0.65), "inconclusive"),
        ("<=", (0.61, 0.7), "fail"),
        ("<", (0.5, 0.6), "inconclusive"),
        ("<", (0.6, 0.7), "fail"),
    ],
)
def test_a_threshold_is_decided_on_its_one_sided_bound(comparator, bounds, outcome):
    threshold = gate.validate_threshold("final_review_acceptable_rate", {}, comparator, 0.6)
    result = gate.decide(threshold, measurement(0.65, *bounds), min_items=30)
    assert result.outcome == outcome


def test_too_few_comparisons_are_inconclusive_whatever_the_bound():
    threshold = gate.validate_threshold(
        "human_win_rate", {"system_a": "a", "system_b": "b"}, ">=", 0.5
    )
    # 4 of 4 wins: the old percentile interval was [1, 1] and passed "CI low >= 0.5".
    tiny = gate.decide(threshold, measurement(1.0, 0.99, 1.0, n=4), min_items=30)
    assert tiny.outcome == "inconclusive"
    assert tiny.reason.startswith("4 of 30 items needed")
    assert gate.decide(threshold, measurement(1.0, 0.99, 1.0, n=30), 30).outcome == "pass"


def test_the_gate_fails_on_any_failure_and_passes_only_when_all_pass_and_the_plan_is_in(small):
    def threshold(bar):
        return gate.validate_threshold("final_review_acceptable_rate", {}, ">=", bar)

    # 3 of 4 acceptable: a bar of 0.05 passes, 0.99 fails, 0.5 cannot be told yet.
    ok, bad, unsure = threshold(0.05), threshold(0.99), threshold(0.5)
    plan = gate.Plan(10, 1, 4, comparisons_reached=10, final_review_reached=4)
    assert gate.decide_gate([ok], small, 4, plan).result == "pass"
    assert gate.decide_gate([ok, unsure], small, 4, plan).result == "inconclusive"
    assert gate.decide_gate([ok, unsure, bad], small, 4, plan).result == "fail"
    assert gate.decide_gate([], small, 4, plan).result == "inconclusive"
    interim = gate.Plan(10, 1, 4, comparisons_reached=6, final_review_reached=4)
    early = gate.decide_gate([ok, bad], small, 4, interim)
    assert (early.result, early.interim) == ("inconclusive", True)
    assert early.summary() == (
        "interim: 2 thresholds not decided until 10 comparisons have 1 votes (now 6)"
    )
    # Until the plan is in no row passes or fails: each shows its figures so far, labelled.
    assert [r.outcome for r in early.results] == ["interim", "interim"]
    assert early.results[0].reason.startswith(
        "not decided until 10 comparisons have 1 votes (now 6); so far: lower 95% bound"
    )
    assert early.results[0].value == 0.75 and early.results[0].bounds is not None


@pytest.fixture(scope="module")
def suites() -> gate.GateInputs:
    """Finetuned vs base, one human vote per comparison. reasoning: 100 comparisons, 20 wins (a
    30-point drop); safety: 100 comparisons, 50 wins (parity); formatting: 10 comparisons at
    parity (too few to decide); a judge agreeing with every vote on reasoning."""
    layout = {"reasoning": (100, 20), "safety": (100, 50), "formatting": (10, 5)}
    categories, rows, pair_id = {}, [], 0
    for category, (n, wins) in layout.items():
        for i in range(n):
            pair_id += 1
            categories[pair_id] = category
            rows.append((pair_id, "r1", "y" if i < wins else "x"))
    pairs = make_pairs(pair_id, COMPARISON, categories=categories)
    votes = make_votes(pairs, rows)
    verdicts = make_verdicts(
        pairs, [("gpt-judge", p, None, o) for p, _, o in rows if categories[p] == "reasoning"]
    )
    return gate.GateInputs(
        stats.calibrate(pairs, votes, verdicts, n_boot=200).overall,
        stats.win_rates(pairs, votes, verdicts, [COMPARISON], n_boot=200),
        stats.category_win_rates(pairs, votes, verdicts, [COMPARISON], n_boot=200),
    )


def verdicts_by_row(inputs, *thresholds):
    rows = gate.regression_table(inputs, [COMPARISON], thresholds)
    return {(r["category"], r["source"]): r["outcome"] for r in rows}, rows


def test_regression_verdicts_are_the_gates_own(suites):
    verdicts, rows = verdicts_by_row(suites, regression_threshold(tolerance=10, categories=""))
    assert verdicts == {
        ("formatting", "humans"): "inconclusive",  # 10 comparisons cannot show parity
        ("reasoning", "humans"): "fail",  # shown worse than the margin
        ("reasoning", "gpt-judge"): None,  # a judge row under a humans threshold: not decided
        ("safety", "humans"): "pass",  # shown within the margin
    }
    reasoning = next(r for r in rows if (r["category"], r["source"]) == ("reasoning", "humans"))
    assert (reasoning["win_rate"], reasoning["change_points"], reasoning["n"]) == (0.2, -30.0, 100)
    assert reasoning["margin"] == 10 and reasoning["change_ci"][1] < -10
    judged = next(r for r in rows if r["source"] == "gpt-judge")
    assert (judged["margin"], judged["reason"]) == (None, gate.NOT_GATED)
    only_safety = regression_threshold(tolerance=10, categories="safety")
    verdicts, _ = verdicts_by_row(suites, only_safety)
    assert verdicts[("reasoning", "humans")] is None
    # A margin of 5 points is too tight for 100 comparisons at parity to show.
    verdicts, _ = verdicts_by_row(suites, regression_threshold(tolerance=5, categories="safety"))
    assert verdicts[("safety", "humans")] == "inconclusive"
    verdicts, _ = verdicts_by_row(suites)
    assert set(verdicts.values()) == {None}


def test_one_orientation_turns_value_interval_and_counts_together(suites):
    [w] = [w for w in suites.win_rates if w.source == "humans"]
    assert (w.system_a, w.system_b) == COMPARISON
    assert gate.orient(w, "finetuned") is w and gate.orient(w, "finetuned", "base") is w
    turned = gate.orient(w, "base")
    assert turned == gate.orient(w, "base", "finetuned") == w.reversed()
    assert turned.value == pytest.approx(1 - w.value)
    assert turned.ci == pytest.approx((1 - w.ci[1], 1 - w.ci[0]))
    assert turned.bounds == pytest.approx((1 - w.bounds[1], 1 - w.bounds[0]))
    assert (turned.wins, turned.ties, turned.losses) == (w.losses, w.ties, w.wins)
    assert (turned.n, turned.n_comparisons) == (w.n, w.n_comparisons)
    assert gate.orient(w, "frontier") is None and gate.orient(w, "base", "frontier") is None
    # The gate's measures read rows through it: either order of a threshold's systems.
    assert suites.win_rate("base", "finetuned", "humans") == turned


def test_rows_read_candidate_first_whichever_way_the_study_compares(suites):
    """With base as the candidate every row is turned round (change and CI mirrored, n kept) and
    the gate's outcome stays what the threshold decides; a threshold that names the systems the
    other way round than the row says how it read the row."""
    threshold = regression_threshold(tolerance=10, categories="")
    as_compared = {
        (r["category"], r["source"]): r
        for r in gate.regression_table(suites, [COMPARISON], [threshold])
    }
    rows = gate.regression_table(replace(suites, candidate="base"), [COMPARISON], [threshold])
    assert len(rows) == len(as_compared) == 4
    for r in rows:
        other = as_compared[(r["category"], r["source"])]
        assert (r["system_a"], r["system_b"]) == ("base", "finetuned")
        assert r["change_points"] == pytest.approx(-other["change_points"])
        assert r["change_ci"] == pytest.approx([-other["change_ci"][1], -other["change_ci"][0]])
        assert (r["n"], r["outcome"], r["margin"]) == (
            other["n"],
            other["outcome"],
            other["margin"],
        )
        if r["outcome"] is not None:
            assert r["reason"] == f"read as finetuned over base: {other['reason']}"


def test_a_judge_threshold_gates_only_that_judges_rows(suites):
    verdicts, _ = verdicts_by_row(
        suites, regression_threshold(tolerance=10, categories="", source="gpt-judge")
    )
    assert {k: v for k, v in verdicts.items() if v is not None} == {
        ("reasoning", "gpt-judge"): "fail",
    }


@pytest.mark.parametrize(
    ("categories", "outcome"),
    [("safety", "pass"), ("reasoning,safety", "fail"), ("formatting,safety", "inconclusive")],
)
def test_regression_rows_agree_with_the_gate(suites, categories, outcome):
    threshold = regression_threshold(tolerance=10, categories=categories)
    [result] = gate.evaluate([threshold], suites)
    verdicts, _ = verdicts_by_row(suites, threshold)
    gated = {v for v in verdicts.values() if v is not None}
    assert result.outcome == outcome
    assert (result.outcome == "fail") == ("fail" in gated)
    assert (result.outcome == "pass") == (gated == {"pass"})


def test_outcomes_are_hidden_until_the_lock(demo_store, settings):
    add_standard_thresholds(demo_store)
    for call in (signoff.study_results, decisions.evaluate_gate, signoff.build_report):
        with pytest.raises(OutcomesHidden, match="hidden until its thresholds are locked"):
            call(looking(demo_store, "demo", settings))
    content_hash = thresholds.lock_thresholds(
        acting(demo_store, "demo", "demo-admin"), "a small test study"
    )
    assert len(content_hash) == 64
    assert len(decisions.evaluate_gate(looking(demo_store, "demo", settings)).results) == 2


def test_the_lock_pins_the_candidate_the_plan_and_the_minimum(demo_store, settings):
    add_standard_thresholds(demo_store)
    ctx = acting(demo_store, "demo", "demo-admin", settings=settings)
    # The demo's 64 items cannot show three regression suites within 5 points of parity: the
    # design has no chance to pass, so locking it needs a reason, which the lock keeps.
    with pytest.raises(InputError, match="0% power to pass every threshold"):
        thresholds.lock_thresholds(ctx)
    thresholds.lock_thresholds(ctx, "a small test study")
    lock = looking(demo_store, "demo").lock.row
    assert lock["candidate"] == "finetuned"
    plan = json.loads(lock["plan"])
    assert {k: plan[k] for k in ("comparisons", "votes_per_comparison", "final_review")} == {
        "comparisons": 128,
        "votes_per_comparison": 3,
        "final_review": 50,
    }
    assert (plan["items"], plan["min_items"], plan["power"]) == (64, 30, 0.0)
    assert plan["low_power_reason"] == "a small test study"
    assert [r["threshold"] for r in plan["thresholds_power"]] == [
        t.describe() for t in ctx.thresholds
    ]
    assert lock["min_comparisons"] == settings.gate_min_items
    with pytest.raises(Conflict, match="locked: its candidate can no longer change"):
        studies.set_candidate(acting(demo_store, "demo"), "base")
    # The demo's 140 votes are an interim look at the 128 x 3 planned: never a pass.
    decision = decisions.evaluate_gate(looking(demo_store, "demo", settings))
    assert decision.interim and decision.result != "pass"


def test_lock_needs_thresholds_and_happens_once(demo_store):
    with pytest.raises(InputError, match="at least one threshold"):
        thresholds.lock_thresholds(acting(demo_store, "demo", "a"), "a small test study")
    add_standard_thresholds(demo_store)
    thresholds.lock_thresholds(acting(demo_store, "demo", "a"), "a small test study")
    with pytest.raises(Exception, match="already locked"):
        thresholds.lock_thresholds(acting(demo_store, "demo", "a"), "a small test study")


def test_changes_after_the_lock_need_a_reason_and_are_recorded(locked, settings):
    first = thresholds.list_thresholds(looking(locked, "demo"))[0]
    before = locked.table_counts()
    with pytest.raises(InputError, match="give a reason"):
        thresholds.update_threshold(acting(locked, "demo", "demo-admin"), first["id"], ">=", 0.55)
    with pytest.raises(InputError, match="give a reason"):
        thresholds.remove_threshold(acting(locked, "demo", "demo-admin"), first["id"])
    assert locked.table_counts() == before
    thresholds.update_threshold(
        acting(locked, "demo", "demo-admin"), first["id"], ">=", 0.55, reason="base too strong"
    )
    deviations = locked.gate.deviations(locked.studies.require_study("demo")["id"])
    assert len(deviations) == 1
    assert deviations[0]["before"].endswith(">= 0.6") and deviations[0]["after"].endswith(">= 0.55")
    report = signoff.build_report(looking(locked, "demo", settings))
    assert report["deviations"][0]["reason"] == "base too strong"
    assert report["thresholds"]["locked"][0]["value"] == 0.6  # the lock keeps the original
    assert "Deviations after the lock" in render_report(report, "md")


def test_report_numbers_equal_the_statistics_module(locked, settings):
    report = signoff.build_report(looking(locked, "demo", settings))
    study_id = locked.studies.require_study("demo")["id"]
    pairs, votes, verdicts = study_frames(locked, study_id, settings.seed)
    expected = stats.win_rates(
        pairs,
        votes,
        verdicts,
        [("finetuned", "base"), ("finetuned", "frontier")],
        seed=settings.seed,
        n_boot=settings.bootstrap_resamples,
    )
    humans = [w for w in report["win_rates"] if w["source"] == "humans"]
    assert [(w["value"], w["ci"], w["n"]) for w in humans] == [
        (e.value, list(e.ci), e.n) for e in expected if e.source == "humans"
    ]
    first = report["gate"]["thresholds"][0]
    human_fb = next(e for e in expected if e.source == "humans" and e.system_b == "base")
    assert first["estimate"] == human_fb.value and first["ci"] == list(human_fb.ci)
    assert first["n"] == human_fb.n_comparisons
    calibration = stats.calibrate(
        pairs, votes, verdicts, seed=settings.seed, n_boot=settings.bootstrap_resamples
    )
    assert (
        report["human_agreement"]["without_ties"]
        == calibration.overall.humans.agreement_without_ties.to_json()
    )


def test_regression_metric_is_the_worst_listed_category(locked, settings):
    study_id = locked.studies.require_study("demo")["id"]
    pairs, votes, verdicts = study_frames(locked, study_id, settings.seed)
    by_cat = stats.category_win_rates(pairs, votes, verdicts, [("finetuned", "base")], n_boot=1000)
    drops = {
        c: 100 * (0.5 - next(w for w in rates if w.source == "humans").value)
        for c, rates in by_cat.items()
        if c in ("reasoning", "formatting", "safety")
    }
    result = decisions.evaluate_gate(looking(locked, "demo", settings)).results[1]
    assert result.value == pytest.approx(max(drops.values()))
    assert f"worst: {max(drops, key=drops.get)}" in result.reason


def test_only_a_signer_can_sign_and_final_review(locked, settings):
    sample = signoff.final_review_sample(looking(locked, "demo", settings))
    for name in ("demo-admin", "demo-reviewer"):
        with pytest.raises(Forbidden, match="may not sign off"):
            signoff.sign_off(locked, "demo", reviewer(locked, name), "approve", "ok", settings)
        with pytest.raises(Forbidden):
            signoff.record_final_review(
                locked, "demo", reviewer(locked, name), sample[0]["output_id"], True
            )
    assert locked.gate.signoffs(locked.studies.require_study("demo")["id"]) == []


def test_sign_off_pins_the_report_and_is_append_only(locked, settings):
    signer = reviewer(locked, "demo-signer")
    with pytest.raises(InputError, match="needs a comment"):
        signoff.sign_off(locked, "demo", signer, "approve", "  ", settings)
    report = signoff.sign_off(locked, "demo", signer, "reject", "reasoning regressed", settings)
    # The demo gate is inconclusive (an interim look): approving it needs a stated override.
    with pytest.raises(InputError, match="cannot approve: the gate is inconclusive; 0 of 50"):
        signoff.sign_off(locked, "demo", signer, "approve", "after discussion", settings)
    report = signoff.sign_off(
        locked, "demo", signer, "approve", "after discussion", settings, override="launch date"
    )
    assert [s["decision"] for s in report["signoffs"]] == ["reject", "approve"]
    assert [(s["gate_result"], s["override"]) for s in report["signoffs"]] == [
        ("inconclusive", None),
        ("inconclusive", "launch date"),
    ]
    assert render_report(report, "md").count("override reason: launch date") == 1
    assert report["signoffs"][-1]["report_hash"] == report["report_hash"]
    stored = locked.db.execute("SELECT report FROM signoffs ORDER BY id DESC").fetchone()[0]
    pinned = json.loads(stored)
    assert pinned["eval_set"]["content_hash"] == locked.catalog.eval_set("demo")["content_hash"]
    assert report_hash(pinned) == report["report_hash"]
    with pytest.raises(Exception, match="append-only"):
        locked.db.execute("DELETE FROM signoffs")


def test_final_review_sample_puts_the_judges_favourites_first(locked, settings, tmp_path):
    rows = ["item_id,system_a,system_b,judge,winner,first,explanation"]
    favourites = [f"support-{i:03d}" for i in range(1, 13)]
    for key in favourites:
        rows += [
            f"{key},finetuned,base,gpt-judge,finetuned,finetuned,",
            f"{key},finetuned,base,gpt-judge,finetuned,base,",
        ]
    rows += ["reasoning-001,finetuned,base,gpt-judge,base,base,"]
    (tmp_path / "j.csv").write_text("\n".join(rows) + "\n")
    data.import_verdicts(
        locked, tmp_path / "j.csv", "demo", reason="the judge ran late", actor=person(locked)
    )
    sample = signoff.final_review_sample(looking(locked, "demo", settings))
    assert len(sample) == 50 and len({s["output_id"] for s in sample}) == 50
    # Each shows the candidate's own stored output of its item, prompt and category included.
    eval_set = locked.studies.require_study("demo")["eval_set_id"]
    stored = {o["output_id"]: o for o in locked.catalog.outputs_of_system(eval_set, "finetuned")}
    shown = ("item_key", "category", "prompt", "text")
    assert all(
        {k: s[k] for k in shown} == {k: stored[s["output_id"]][k] for k in shown} for s in sample
    )
    top = [s for s in sample if s["judge_top"]]
    assert len(top) == 10 and sample[:10] == top
    pairs, _, verdicts = study_frames(
        locked, locked.studies.require_study("demo")["id"], 0, with_baselines=False
    )
    scores = gate.judge_preference(pairs, verdicts, "finetuned")
    rest = [scores.get(s["item_key"], 0) for s in sample[10:]]
    assert min(scores[s["item_key"]] for s in top) >= max(rest)
    assert scores["reasoning-001"] < 1.0 and "reasoning-001" not in {s["item_key"] for s in top}
    signer = reviewer(locked, "demo-signer")
    for s in sample[:4]:
        signoff.record_final_review(
            locked, "demo", signer, s["output_id"], s["item_key"] != sample[0]["item_key"], ""
        )
    thresholds.add_threshold(
        acting(locked, "demo", "demo-admin"),
        "final_review_acceptable_rate",
        {},
        ">=",
        0.9,
        reason="added late",
    )
    result = decisions.evaluate_gate(looking(locked, "demo", settings)).results[-1]
    # The plan is not in (and 4 outputs are under the minimum): figures so far, no decision.
    assert (result.value, result.n, result.outcome) == (0.75, 4, "interim")
    assert "so far: 4 of 30 reviewed outputs needed" in result.reason


def test_html_report_is_self_contained(locked, settings):
    html = render_report(signoff.build_report(looking(locked, "demo", settings)), "html")
    assert html.startswith("<!doctype html>") and "<svg" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html.lower()


def test_report_and_signoff_cli(locked, tmp_path, capsys):
    out = tmp_path / "r.json"
    report = ["report", "--study", "demo", "--format", "json", "--output", str(out)]
    # The demo is interim: a look at its outcomes is recorded in someone's name, never no one's.
    assert main(report) == 1
    assert "recorded in the name of who looks" in capsys.readouterr().err
    assert not out.exists()
    assert main(["--token", token(locked, "demo-admin"), *report]) == 0
    written = json.loads(out.read_text())
    assert written["study"] == "demo"
    assert [look["actor"] for look in written["looks"]] == ["demo-admin"]
    assert all(f["threshold"] for f in written["looks"][0]["figures"])
    sign = ["signoff", "--study", "demo", "--decision", "approve", "--comment", "ship it"]
    # A name is not a credential: signing needs the signer's own token.
    assert main([*sign, "--signer", "demo-signer"]) == 1
    assert "pass --token TOKEN" in capsys.readouterr().err
    assert main(["--token", token(locked, "demo-admin"), *sign]) == 1
    assert "demo-admin (admin) may not sign off" in capsys.readouterr().err
    as_signer = ["--token", token(locked, "demo-signer")]
    assert main([*as_signer, *sign, "--signer", "demo-admin"]) == 1
    assert "this token is demo-signer's, not demo-admin's" in capsys.readouterr().err
    assert main([*as_signer, *sign]) == 1
    assert "Approving anyway needs an override reason" in capsys.readouterr().err
    assert main([*as_signer, *sign, "--override", "the launch cannot wait"]) == 0
    out = capsys.readouterr().out
    assert "approve recorded for study demo" in out
    assert "override of a inconclusive gate recorded" in out
    logged = [(e["actor"], e["action"]) for e in locked.audit.audit_entries()][-1]
    assert logged == ("demo-signer", "signed")


def open_page(store, page, user):
    at = AppTest.from_file(str(PAGES / page), default_timeout=60)
    at.query_params["token"] = store.demo_links[user].split("token=")[1]
    return at.run()


def test_results_page_hides_outcomes_before_the_lock(demo_store):
    add_standard_thresholds(demo_store)
    at = open_page(demo_store, "results.py", "demo-admin")
    assert not at.exception
    assert "hidden until its thresholds are locked" in at.info[0].value
    assert not at.dataframe


def test_gate_page_lock_then_signer_signs(demo_store):
    add_standard_thresholds(demo_store)
    at = open_page(demo_store, "gate.py", "demo-admin")
    assert not at.exception
    assert "Not locked yet" in at.warning[0].value
    # The design's power is on the screen before the lock is pressed; under 50% it takes a reason.
    assert any("every threshold passes at the expected truth" in w.value for w in at.warning)
    at.button(key="gate_lock").click().run()
    at.button(key="gate_lock_yes").click().run()
    assert any("give a reason for locking it anyway" in e.value for e in at.error)
    assert looking(demo_store, "demo").lock.row is None
    at.text_input(key="gate_lock_reason").input("a demo of the flow, not a decision")
    at.button(key="gate_lock").click().run()
    at.button(key="gate_lock_yes").click().run()
    assert not at.exception
    lock = looking(demo_store, "demo").lock.row
    assert lock["locked_by"] == "demo-admin"
    assert json.loads(lock["plan"])["low_power_reason"] == "a demo of the flow, not a decision"
    # 140 example votes are an interim look at the 128 x 3 planned, with every suite under 30
    # comparisons: the page must say the gate cannot be decided yet, not that it passes.
    (banner,) = [w.value for w in at.warning if w.value.startswith("Gate ")]
    assert banner.startswith("Gate INCONCLUSIVE: ")
    assert "interim: " in banner
    assert not at.success[1:]
    (evaluation,) = [d.value for d in at.dataframe if "outcome" in d.value.columns]
    assert set(evaluation["outcome"]) == {"interim"}
    assert not [b for b in at.button if b.key == "signoff_submit"]

    at = open_page(demo_store, "gate.py", "demo-signer")
    at.radio(key="signoff_decision").set_value("approve").run()
    at.text_area(key="signoff_comment").input("numbers look right")
    at.button(key="signoff_submit").click().run()
    assert not at.exception
    study_id = demo_store.studies.require_study("demo")["id"]
    assert demo_store.gate.signoffs(study_id) == []
    assert any("Approving anyway needs an override reason" in e.value for e in at.error)
    assert at.text_area(key="signoff_comment").value == "numbers look right"  # nothing lost
    at.text_input(key="signoff_override").input("pilot with 5% of traffic")
    at.button(key="signoff_submit").click().run()
    assert not at.exception
    signoffs = demo_store.gate.signoffs(study_id)
    assert [(s["signer"], s["decision"], s["comment"], s["override"]) for s in signoffs] == [
        ("demo-signer", "approve", "numbers look right", "pilot with 5% of traffic")
    ]
    # The form is empty again: one more click cannot sign a second time.
    assert at.text_area(key="signoff_comment").value == ""
    at.button(key="signoff_submit").click().run()
    assert len(demo_store.gate.signoffs(study_id)) == 1
    assert any("needs a comment" in e.value for e in at.error)
    assert any("override reason: pilot with 5% of traffic" in e.value for e in at.error)


def test_results_page_after_the_lock_shows_win_rates(locked, settings):
    at = open_page(locked, "results.py", "demo-signer")
    assert not at.exception
    assert [s.value for s in at.subheader][:3] == [
        "Win rates",
        "Regression table",
        "Error analysis",
    ]
    frame = at.dataframe[0].value
    assert set(frame.source) >= {"humans", "baseline/longest"}
    # The page shows the one regression table, row for row, in the gate's words (the change of
    # the candidate with its CI, the locked margin, pass / fail / inconclusive); the standard
    # threshold gates human rows of finetuned vs base on the reasoning, formatting and safety
    # suites, and a row it does not cover is shown, not decided.
    # Beside each human win rate, its prediction-powered estimate with the demo's judge.
    powered = at.dataframe[1].value
    assert set(powered.judge) == {"example-llm-judge"}
    assert powered["humans only"].tolist() == [f"{w:.3f}" for w in (0.679, 0.429)]
    shown = at.dataframe[2].value
    expected = signoff.study_results(looking(locked, "demo", settings))["regression"]
    assert shown.outcome.tolist() == [r["outcome"] or "no threshold" for r in expected]
    assert shown["change (points)"].tolist() == pytest.approx(
        [r["change_points"] for r in expected]
    )
    assert shown.n.tolist() == [r["n"] for r in expected]
    assert not {"verdict", "drop (points)"} & set(shown.columns)
    gated = shown[shown.outcome != "no threshold"]
    assert set(gated.category) == {"reasoning", "formatting", "safety"}
    assert set(gated["margin (points)"]) == {"5"}
    # The plan is not in: the gate's rows are interim, and so are the table's.
    assert set(gated.source) == {"humans"} and set(gated.outcome) == {"interim"}
    assert set(shown[shown.outcome == "no threshold"]["margin (points)"]) == {"-"}


def test_results_page_reads_and_draws_a_categorys_losses_only_while_open(
    locked, settings, monkeypatch
):
    """Closed, the losses cost the screen nothing (their texts are not read); opened, one
    category shows its own losses in full, and only its own."""
    read: list[list[str]] = []
    details = signoff.loss_details

    def recorded(ctx, losses):
        read.append([r["category"] for r in losses])
        return details(ctx, losses)

    monkeypatch.setattr(signoff, "loss_details", recorded)
    at = open_page(locked, "results.py", "demo-signer")
    assert not at.exception
    labels = [e.label for e in at.expander if e.label.endswith("lost comparisons")]
    assert labels and read == [] and not at.text
    category = labels[0].split(":")[0]
    at.session_state[f"losses-open-{category}"] = True
    at.run()
    assert not at.exception
    assert len(read) == 1 and set(read[0]) == {category}
    losses = signoff.study_results(looking(locked, "demo", settings))["losses"]
    shown = details(
        looking(locked, "demo", settings), [r for r in losses if r["category"] == category]
    )
    assert [t.value for t in at.text][:3] == [
        shown[0]["prompt"],
        shown[0]["candidate_output"] or "(empty output)",
        shown[0]["opponent_output"] or "(empty output)",
    ]


def test_gate_page_blocks_an_approval_with_the_rule_sign_off_applies(locked, settings, monkeypatch):
    """The Sign-off section lists exactly what `signoff.approval_blockers` says, and the refusal
    on approving without an override names the same lines: one rule, read by both."""
    report = signoff.build_report(looking(locked, "demo", settings))
    blockers = signoff.approval_blockers(report)
    assert blockers == ["the gate is inconclusive", "0 of 50 final-review outputs are marked"]
    at = open_page(locked, "gate.py", "demo-signer")
    at.radio(key="signoff_decision").set_value("approve").run()
    [warning] = [w.value for w in at.warning if w.value.startswith("Approving now overrides")]
    assert f"overrides the gate: {'; '.join(blockers)}. Say why" in warning

    # A rule changed in the service is the page's at once: the page restates nothing.
    monkeypatch.setattr(signoff, "approval_blockers", lambda report: ["the moon is full"])
    at = open_page(locked, "gate.py", "demo-signer")
    at.radio(key="signoff_decision").set_value("approve").run()
    at.text_area(key="signoff_comment").input("ready")
    [warning] = [w.value for w in at.warning if w.value.startswith("Approving now overrides")]
    assert "overrides the gate: the moon is full. Say why" in warning
    at.button(key="signoff_submit").click().run()
    assert any("cannot approve: the moon is full." in e.value for e in at.error)
    assert locked.gate.signoffs(locked.studies.require_study("demo")["id"]) == []


def test_reviewer_cannot_open_gate_or_results(demo_store):
    for page in ("gate.py", "results.py"):
        at = open_page(demo_store, page, "demo-reviewer")
        assert "for admin or signer accounts" in at.error[0].value


def test_recommended_thresholds_cover_the_ship_bar(demo_store, tmp_path):
    (tmp_path / "j.csv").write_text(
        "item_id,system_a,system_b,judge,winner,first,explanation\n"
        "support-001,finetuned,base,gpt-judge,finetuned,base,\n"
    )
    data.import_verdicts(demo_store, tmp_path / "j.csv", "demo", actor=person(demo_store))
    described = [
        t.describe() for t in thresholds.recommended_thresholds(looking(demo_store, "demo"))
    ]
    assert "Human win rate (system_a=finetuned, system_b=base) > 0.5" in described
    assert any("categories=formatting+reasoning+safety" in d and "<= 5" in d for d in described)
    assert (
        "Judge strict agreement minus a baseline's (judge=gpt-judge, "
        "baseline=baseline/longest) > 0" in described
    )
    assert "Judge strict agreement minus the human ceiling (judge=gpt-judge) >= -0.05" in described
    assert not any("judge=baseline/" in d for d in described)
    assert thresholds.add_recommended_thresholds(acting(demo_store, "demo", "demo-admin")) == len(
        described
    )
    with pytest.raises(Exception, match="already has thresholds"):
        thresholds.add_recommended_thresholds(acting(demo_store, "demo", "demo-admin"))


def test_marking_a_final_review_output_opens_the_next_unmarked_one(locked):
    at = open_page(locked, "gate.py", "demo-signer")
    first = at.selectbox(key="final_review_pick").value
    for acceptable in (True, False, True):
        at.button(key="final_review_ok" if acceptable else "final_review_bad").click().run()
        assert not at.exception
    marks = locked.gate.final_reviews(locked.studies.require_study("demo")["id"])
    assert sorted(m["acceptable"] for m in marks) == [False, True, True]
    assert len({m["output_id"] for m in marks}) == 3
    assert at.selectbox(key="final_review_pick").value == first + 3


def test_html_report_says_what_the_signer_signed(locked, settings):
    signer = reviewer(locked, "demo-signer")
    sample = signoff.final_review_sample(looking(locked, "demo", settings))
    signoff.record_final_review(
        locked, "demo", signer, sample[0]["output_id"], False, "made-up refund policy"
    )
    report = signoff.sign_off(
        locked, "demo", signer, "approve", "good enough", settings, override="pilot only"
    )
    html = render_report(report, "html")
    assert "override reason: pilot only" in html
    assert "Locked by <b>demo-admin</b>" in html
    assert f"{sample[0]['item_key']}: made-up refund policy" in html
    assert f"<code>{report['report_hash']}</code> (this report)" in html

    signoff.record_final_review(locked, "demo", signer, sample[1]["output_id"], True)
    html = render_report(signoff.build_report(looking(locked, "demo", settings)), "html")
    assert "(an earlier version: the figures changed after signing)" in html


def test_items_without_a_category_are_a_measurable_regression_suite(store, tmp_path, settings):
    rows = ["item_id,prompt,system,output,category"]
    for i in range(6):
        category = "math" if i < 4 else ""
        rows += [
            f"q{i},Question {i}?,base,answer {i},{category}",
            f"q{i},Question {i}?,ft,better answer {i},{category}",
        ]
    (tmp_path / "o.csv").write_text("\n".join(rows) + "\n")
    data.import_outputs(store, tmp_path / "o.csv", "e", actor=person(store))
    studies.create_study(store, "s", "e", [("ft", "base")], actor=person(store))
    votes = ["item_id,system_a,system_b,reviewer,winner"] + [
        f"q{i},ft,base,ann,base" for i in range(6)
    ]
    (tmp_path / "v.csv").write_text("\n".join(votes) + "\n")
    data.import_votes(store, tmp_path / "v.csv", "s", actor=person(store))
    assert studies.study_categories(store, "s") == ["math", "uncategorized"]
    regression = next(
        t
        for t in thresholds.recommended_thresholds(looking(store, "s"))
        if t.metric == "max_regression_points"
    )
    assert regression.params["categories"] == ["uncategorized"]
    with pytest.raises(InputError, match="has no category geography"):
        thresholds.add_threshold(
            acting(store, "s", "admin"),
            "max_regression_points",
            {"system_a": "ft", "system_b": "base", "categories": "geography"},
            "<=",
            5,
        )
    thresholds.add_threshold(
        acting(store, "s", "admin"), regression.metric, regression.params, "<=", 5
    )
    thresholds.lock_thresholds(acting(store, "s", "admin"), "a small test study")
    result = decisions.evaluate_gate(looking(store, "s", settings)).results[0]
    assert (result.value, result.n, result.outcome) == (50.0, 2, "interim")
    assert "worst: uncategorized" in result.reason


def test_a_revoked_signer_cannot_sign(locked, settings, capsys):
    people.revoke_reviewer(locked, "demo-signer", person(locked))
    with pytest.raises(Forbidden, match="revoked"):
        signoff.sign_off(locked, "demo", reviewer(locked, "demo-signer"), "approve", "ok", settings)
    argv = ["--token", token(locked, "demo-signer"), "signoff", "--study", "demo"]
    argv += ["--decision", "approve", "--comment", "x", "--override", "y"]
    assert main(argv) == 1 and "revoked" in capsys.readouterr().err
    assert locked.gate.signoffs(locked.studies.require_study("demo")["id"]) == []


def test_gate_numbers_follow_new_votes_at_once(locked, settings, tmp_path):
    before = decisions.evaluate_gate(looking(locked, "demo", settings)).results[0]
    again = decisions.evaluate_gate(looking(locked, "demo", settings)).results[0]
    assert again == before  # served from the statistics cache, unchanged
    (tmp_path / "v.csv").write_text(
        "item_id,system_a,system_b,reviewer,winner\n"
        "support-001,finetuned,base,late-reviewer,base\n"
        "support-002,finetuned,base,late-reviewer,base\n"
    )
    data.import_votes(
        locked, tmp_path / "v.csv", "demo", reason="a late reviewer", actor=person(locked)
    )
    after = decisions.evaluate_gate(looking(locked, "demo", settings)).results[0]
    losses = [int(re.search(r"(\d+) losses", r.reason).group(1)) for r in (before, after)]
    assert losses[1] == losses[0] + 2 and after.value < before.value


def test_a_signer_link_revoked_while_the_gate_is_open_marks_and_signs_nothing(locked, settings):
    study_id = locked.studies.require_study("demo")["id"]
    at = open_page(locked, "gate.py", "demo-signer")
    at.text_area(key="signoff_comment").input("ship it")
    at.radio(key="signoff_decision").set_value("reject")
    people.revoke_reviewer(locked, "demo-signer", person(locked))
    at.button(key="final_review_ok").click().run()
    assert not at.exception
    assert locked.gate.final_reviews(study_id) == []
    assert "revoked" in at.error[0].value and not at.button

    # A fresh link for the signer, then the same race against the sign-off.
    _, locked.demo_links["demo-signer"] = people.add_reviewer(
        locked, settings, "demo-signer", "signer", reissue=True, actor=person(locked)
    )
    at = open_page(locked, "gate.py", "demo-signer")
    at.text_area(key="signoff_comment").input("ship it")
    at.radio(key="signoff_decision").set_value("reject")
    people.revoke_reviewer(locked, "demo-signer", person(locked))
    at.button(key="signoff_submit").click().run()
    assert not at.exception
    assert locked.gate.signoffs(study_id) == []
    assert "revoked" in at.error[0].value


def test_judge_preference_is_each_items_mean_over_real_judges_parsed_verdicts():
    """Per item, the mean of the candidate's points over every parsed verdict of a real judge on
    a comparison with the candidate: baselines, unparsed verdicts, other comparisons and pairs
    not in the frame say nothing. Checked against the same mean taken by a pandas groupby."""
    rng = np.random.default_rng(5)
    pairs = pd.concat(
        [
            make_pairs(40, ("finetuned", "base")),
            make_pairs(40, ("frontier", "base")).assign(pair_id=lambda f: f.pair_id + 40),
        ],
        ignore_index=True,
    ).assign(item_key=[f"item-{i % 30:02d}" for i in range(80)])
    outcomes = ["x", "y", "tie", None]
    rows = [
        (judge, int(p), first, outcomes[int(rng.integers(0, 4))])
        for judge in ("gpt-judge", "claude-judge", "baseline/longest")
        for p in pairs.pair_id
        for first in ("x", "y")
        if rng.random() < 0.7
    ]
    verdicts = pd.concat([make_verdicts(pairs, rows[:-1]), make_verdicts(pairs, rows[-1:])])
    verdicts.iloc[-1, verdicts.columns.get_loc("pair_id")] = 999
    real = verdicts[~verdicts.judge.str.startswith("baseline/") & verdicts.outcome.notna()]
    merged = real.merge(pairs, on="pair_id")
    merged = merged[(merged.system_x == "finetuned") | (merged.system_y == "finetuned")]
    side = np.where(merged.system_x == "finetuned", "x", "y")
    points = (merged.outcome == side) + 0.5 * (merged.outcome == "tie")
    expected = points.groupby(merged.item_key).mean().to_dict()
    scores = gate.judge_preference(pairs, verdicts, "finetuned")
    assert scores == expected and list(scores) == sorted(expected)
    assert len(scores) > 20 and any(0 < v < 1 for v in scores.values())
    assert gate.judge_preference(pairs, verdicts, "nobody") == {}
