"""The human share, prediction-powered thresholds and sequential looks on a real workspace:
reviewers see only the human subset, the lock pins it and the judge, a judge's verdicts on the
judged-only items sharpen the human win rate, and a look may conclude early at its boundary."""

from __future__ import annotations

import csv
import json

import pytest

from review_app import planning
from review_app.errors import Conflict, InputError
from review_app.services import data, decision, plans, review, studies, thresholds
from review_app.settings import Settings
from tests.acting import acting, looking, person
from tests.conftest import write

N_ITEMS = 120


def _outputs(tmp_path, n_items: int = N_ITEMS):
    rows = ["item_id,prompt,system,output,category"]
    for i in range(n_items):
        category = "math" if i % 3 == 0 else "writing"
        for system in ("base", "tuned"):
            # Lengths differ both ways, so a length-controlled win rate can be estimated.
            pad = "x" * (i % 7 if system == "tuned" else i % 5)
            rows.append(
                f"q{i:03d},Question {i}?,{system},Answer of {system} to {i}.{pad},{category}"
            )
    return write(tmp_path / "outputs.csv", "\n".join(rows) + "\n")


def _study(store, tmp_path, share: float | None = 0.5, k: int = 1):
    data.import_outputs(store, _outputs(tmp_path), "es", actor=person(store))
    return studies.create_study(
        store,
        "s",
        "es",
        [("tuned", "base")],
        reviews_per_pair=k,
        actor=person(store),
        human_share=share,
    )


def _pairs(store):
    return store.studies.pairs_for_subset(store.studies.require_study("s")["id"])


def _write_rows(path, by: str, rows):
    """A votes (`by` = "reviewer") or verdicts (`by` = "judge") file of `rows`."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "system_a", "system_b", by, "winner"])
        writer.writerows(rows)
    return path


def _write_votes(path, rows):
    return _write_rows(path, "reviewer", rows)


def _write_verdicts(path, rows):
    return _write_rows(path, "judge", rows)


def test_a_human_share_sends_a_seeded_stratified_subset_to_reviewers(store, tmp_path, settings):
    summary = _study(store, tmp_path, 0.25)
    pairs = _pairs(store)
    human = [p for p in pairs if p["human"]]
    # ceil(0.25 x 40) math items and ceil(0.25 x 80) writing items.
    assert summary.human_pairs == len(human) == 10 + 20
    assert sum(p["category"] == "math" for p in human) == 10
    entry = next(e for e in store.audit.audit_entries(None) if e["action"] == "human share set")
    detail = json.loads(entry["detail"])
    assert detail["hash"] == planning.subset_hash({p["pair_id"] for p in human})
    assert detail["share"] == 0.25 and detail["seed"]
    # Reviewers are only ever handed pairs of the subset, and the study's total counts those.
    reviewer = person(store, "rita", "reviewer")
    study_id = store.studies.require_study("s")["id"]
    seen = set()
    while (task := review.next_pair(store, settings, reviewer.reviewer_id, study_id)) is not None:
        seen.add(store.review.assignment(task.assignment_id)["pair_id"])
        review.record_vote(store, settings, reviewer.reviewer_id, task.assignment_id, "A")
    assert seen == {p["pair_id"] for p in human}
    assert store.studies.study_counts(study_id)["human_pairs"] == 30
    # `export pairs` says which pairs reviewers see.
    exported = list(data.export_rows(store, "pairs", "s"))
    assert sum(row["human"] for row in exported) == 30
    assert {row["human"] for row in exported} == {True, False}


def test_a_vote_on_a_judged_only_pair_is_refused_naming_the_line(store, tmp_path):
    _study(store, tmp_path, 0.5)
    outside = next(p for p in _pairs(store) if not p["human"])
    inside = next(p for p in _pairs(store) if p["human"])
    path = _write_votes(
        tmp_path / "votes.csv",
        [
            [inside["item_key"], "tuned", "base", "ann", "tuned"],
            [outside["item_key"], "tuned", "base", "ann", "tuned"],
        ],
    )
    with pytest.raises(
        InputError, match=rf"votes.csv:3: field 'item_id': pair {outside['pair_id']} .*judged only"
    ):
        data.import_votes(store, path, "s", actor=person(store))
    assert store.studies.study_counts(store.studies.require_study("s")["id"])["votes"] == 0


def test_the_share_changes_before_votes_leave_it_and_never_after_the_lock(
    store, tmp_path, settings
):
    _study(store, tmp_path, None)
    admin = acting(store, "s", settings=settings)
    line = plans.change_plan(admin, human_share=0.5)
    assert "50% of each comparison's items" in line
    assert sum(p["human"] for p in _pairs(store)) == 60
    voted = next(p for p in _pairs(store) if p["human"])
    data.import_votes(
        store,
        _write_votes(tmp_path / "v.csv", [[voted["item_key"], "tuned", "base", "ann", "tuned"]]),
        "s",
        actor=person(store),
    )
    # A redraw that would leave a voted pair judged only is refused, whatever the draw.
    with pytest.raises(Conflict, match="already have votes"):
        for _ in range(20):
            plans.change_plan(acting(store, "s", settings=settings), human_share=0.05)


def _judged_study(
    store, tmp_path, settings, share=0.5, tuned_wins=0.75, judge_agrees=0.9, unjudged=0
):
    """A study over 120 items: humans vote once on the human share, a judge on every item but
    the last `unjudged`."""
    import random

    rng = random.Random(3)
    _study(store, tmp_path, share)
    votes, verdicts = [], []
    for p in _pairs(store):
        winner = "tuned" if rng.random() < tuned_wins else "base"
        judged = (
            winner if rng.random() < judge_agrees else ("base" if winner == "tuned" else "tuned")
        )
        verdicts.append([p["item_key"], "tuned", "base", "grader", judged])
        if p["human"]:
            votes.append([p["item_key"], "tuned", "base", "ann", winner])
    verdicts = verdicts[: len(verdicts) - unjudged]
    data.import_votes(store, _write_votes(tmp_path / "votes.csv", votes), "s", actor=person(store))
    data.import_verdicts(
        store, _write_verdicts(tmp_path / "verdicts.csv", verdicts), "s", actor=person(store)
    )


def _lock(store, settings, threshold_params, metric="human_win_rate", value=0.5):
    admin = acting(store, "s", settings=settings)
    thresholds.add_threshold(admin, metric, threshold_params, ">" if value == 0.5 else "<=", value)
    thresholds.lock_thresholds(acting(store, "s", settings=settings), "a small test study")


def test_a_prediction_powered_threshold_reads_every_judged_item(store, tmp_path, settings):
    _judged_study(store, tmp_path, settings)
    _lock(store, settings, {"system_a": "tuned", "system_b": "base", "judge": "grader"})
    lock = store.gate.threshold_lock(store.studies.require_study("s")["id"])
    plan = json.loads(lock["plan"])
    assert plan["ppi_judges"]["grader"]["runs"]
    assert plan["human_subset"]["share"] == 0.5
    assert plan["sequential"]["alpha"] == 0.05
    result = decision.evaluate_gate(looking(store, "s", settings))
    (row,) = [r.to_json() for r in result.results]
    assert row["method"] == "ppi" and row["judge"] == "grader"
    assert row["n_human"] == 60 and row["n_judge"] == 60
    assert 0 < row["lambda"] <= 1
    # A judge that agrees with the humans 90% of the time is worth more human votes than it has.
    assert row["effective_n"] > 60
    assert row["outcome"] == "pass"


def test_a_judge_run_after_the_lock_unpins_the_prediction_powered_threshold(
    store, tmp_path, settings
):
    _judged_study(store, tmp_path, settings, unjudged=1)
    _lock(store, settings, {"system_a": "tuned", "system_b": "base", "judge": "grader"})
    item = _pairs(store)[-1]["item_key"]
    data.import_verdicts(
        store,
        _write_verdicts(tmp_path / "more.csv", [[item, "tuned", "base", "grader", "tuned"]]),
        "s",
        actor=person(store),
        reason="the verdict that was missing",
    )
    result = decision.evaluate_gate(looking(store, "s", settings))
    (row,) = result.results
    assert row.outcome == "inconclusive"
    assert "changed after the lock" in row.reason


def test_dev_split_votes_do_not_correct_the_judge(store, tmp_path, settings):
    from review_app.services import rubric_iteration

    _judged_study(store, tmp_path, settings)
    rubric_iteration.make_split(acting(store, "s", settings=settings), 0.5)
    _lock(store, settings, {"system_a": "tuned", "system_b": "base", "judge": "grader"})
    (row,) = decision.evaluate_gate(looking(store, "s", settings)).results
    parts = store.calibration.split_parts(store.studies.require_study("s")["id"])
    dev = sum(part == "dev" for part in parts.values())
    assert dev > 0
    assert row.method["n_human"] == 60 - dev


def test_a_threshold_naming_a_judge_without_verdicts_cannot_be_locked(store, tmp_path, settings):
    _study(store, tmp_path, 0.5)
    admin = acting(store, "s", settings=settings)
    thresholds.add_threshold(
        admin,
        "human_win_rate",
        {"system_a": "tuned", "system_b": "base", "judge": "nobody"},
        ">",
        0.5,
    )
    with pytest.raises(InputError, match="judge 'nobody'"):
        thresholds.lock_thresholds(acting(store, "s", settings=settings), "a small test study")


def test_a_look_concludes_early_when_the_boundary_is_crossed(store, tmp_path, settings):
    """Half of a 120-comparison plan in, every vote for the candidate: the look's boundary is
    crossed, so the gate passes early; the look and its boundary are on the record."""
    data.import_outputs(store, _outputs(tmp_path), "es", actor=person(store))
    studies.create_study(
        store, "s", "es", [("tuned", "base")], reviews_per_pair=1, actor=person(store)
    )
    _lock(store, settings, {"system_a": "tuned", "system_b": "base"})
    half = [[p["item_key"], "tuned", "base", "ann", "tuned"] for p in _pairs(store)[:60]]
    data.import_votes(
        store,
        _write_votes(tmp_path / "votes.csv", half),
        "s",
        actor=person(store),
        reason="first half",
    )
    result = decision.evaluate_gate(looking(store, "s", settings))
    assert result.interim and result.concluded_early and result.result == "pass"
    assert result.look.fraction == pytest.approx(0.5)
    assert result.look.boundary > 2.5
    assert "decided early" in result.results[0].reason
    (look,) = decision.interim_looks(looking(store, "s", settings))
    assert look["look"]["boundary"] == pytest.approx(result.look.boundary, abs=1e-4)
    assert look["result"] == "pass"


def test_a_look_at_a_close_call_stays_interim(store, tmp_path, settings):
    data.import_outputs(store, _outputs(tmp_path), "es", actor=person(store))
    studies.create_study(
        store, "s", "es", [("tuned", "base")], reviews_per_pair=1, actor=person(store)
    )
    _lock(store, settings, {"system_a": "tuned", "system_b": "base"})
    rows = [
        [p["item_key"], "tuned", "base", "ann", "tuned" if i % 5 < 3 else "base"]
        for i, p in enumerate(_pairs(store)[:60])
    ]
    data.import_votes(
        store, _write_votes(tmp_path / "votes.csv", rows), "s", actor=person(store), reason="half"
    )
    result = decision.evaluate_gate(looking(store, "s", settings))
    assert result.interim and not result.concluded_early
    assert result.results[0].outcome == "interim"


def test_the_subset_is_reproducible_from_its_seed_and_stratified():
    rows = [
        {"pair_id": i, "system_x": "a", "system_y": "b", "item_key": f"q{i}", "category": c}
        for i, c in enumerate(["x"] * 30 + ["y"] * 10)
    ]
    first = planning.human_subset(rows, 0.3, "seed-1")
    assert first == planning.human_subset(rows, 0.3, "seed-1")
    assert first != planning.human_subset(rows, 0.3, "seed-2")
    assert sum(i < 30 for i in first) == 9 and sum(i >= 30 for i in first) == 3
    with pytest.raises(InputError, match="human share"):
        planning.human_subset(rows, 0, "s")


def test_the_plan_counts_the_votes_a_judge_and_looks_save():
    win = planning.gate.validate_threshold(
        "human_win_rate", {"system_a": "tuned", "system_b": "base", "judge": "j"}, ">", 0.5
    )
    shape = planning.StudyShape(
        {("tuned", "base"): {"general": 2000}},
        0,
        "tuned",
        human_share=0.1,
        judge_correlation={"j": 0.6},
    )
    humans_only = planning.design_power(
        [win],
        planning.StudyShape({("tuned", "base"): {"general": 2000}}, 0, "tuned", human_share=0.1),
        planning.Design(1, 0),
        {"human_win_rate": 0.6},
    )
    labels = planning.expected_labels(humans_only, shape, "j")
    assert labels.fixed == 200
    assert labels.sequential < labels.fixed
    # 1 - rho^2 = 0.64 of the votes, a little more since the judge's items are finite.
    assert 0.6 < labels.target_with_judge / labels.target_fixed < 0.7
    assert labels.target_sequential / labels.target_fixed < 0.8
    # A prediction-powered threshold's power counts the judge's help.
    assert (
        planning.design_power([win], shape, planning.Design(1, 0), {"human_win_rate": 0.6}).power
        > humans_only.power
    )


def test_flipping_a_pair_in_or_out_of_the_human_subset_in_the_file_shows(store, tmp_path):
    from review_app.services import audit

    _study(store, tmp_path, 0.5)
    assert audit.verify(store, "s", Settings.from_env()) == []
    outside = next(p for p in _pairs(store) if not p["human"])
    with store.transaction():
        store.db.execute("UPDATE pairs SET human = 1 WHERE id = ?", [outside["pair_id"]])
    (problem,) = audit.verify(store, "s", Settings.from_env())
    assert "the human subset changed since it was drawn" in problem


def test_a_prediction_powered_length_controlled_win_rate(store, tmp_path, settings):
    # The human subset is drawn with a fresh seed each time (no one may choose it): a win clear
    # enough to pass whichever 60 of the 120 items it puts before the humans.
    _judged_study(store, tmp_path, settings, tuned_wins=0.85)
    _lock(
        store,
        settings,
        {"system_a": "tuned", "system_b": "base", "judge": "grader"},
        metric="human_lc_win_rate",
    )
    (row,) = [r.to_json() for r in decision.evaluate_gate(looking(store, "s", settings)).results]
    assert row["method"] == "ppi" and row["n_human"] == 60 and row["n_judge"] == 60
    assert row["reason"].startswith("lower 95% bound") and "length-controlled" in row["reason"]
    # (how much the judge buys for the intercept alone varies with the subset's random draw)
    assert 0 <= row["lambda"] <= 1 and row["effective_n"] > 0
    assert row["outcome"] == "pass"


def test_an_imported_judges_correlation_before_the_lock_is_a_recorded_look(
    store, tmp_path, settings
):
    """An imported judge could be an oracle: its correlation with the humans is a figure that
    stands in for the outcomes, so the plan shows it only to someone who may look, on the
    record."""
    from review_app.services import early_looks
    from tests.acting import reading

    _judged_study(store, tmp_path, settings)
    thresholds.add_threshold(
        acting(store, "s", settings=settings),
        "human_win_rate",
        {"system_a": "tuned", "system_b": "base", "judge": "grader"},
        ">",
        0.5,
    )
    anonymous = plans.plan_study(reading(store, "s", settings))
    assert anonymous.labels.correlation is None
    study_id = store.studies.require_study("s")["id"]
    assert early_looks.early_looks(store, study_id) == []
    admin = plans.plan_study(acting(store, "s", settings=settings))
    assert admin.labels.correlation > 0.5
    (look,) = early_looks.early_looks(store, study_id)
    assert look["what"] == "judge correlation for the plan"


def test_a_good_judge_does_not_stand_in_for_the_minimum_of_human_votes(store, tmp_path, settings):
    """24 voted items and a judge that agrees with them 90% of the time on 96 more: the estimate
    is worth more than 30 voted items, but the minimum counts the items humans voted on."""
    _judged_study(store, tmp_path, settings, share=0.2)
    _lock(store, settings, {"system_a": "tuned", "system_b": "base", "judge": "grader"})
    (row,) = decision.evaluate_gate(looking(store, "s", settings)).results
    assert row.method["n_human"] == 24 and row.method["effective_n"] > 24
    assert row.outcome == "inconclusive"
    assert row.reason.startswith("24 of 30 items needed")
