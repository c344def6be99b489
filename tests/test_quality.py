"""Reviewer quality: the per-reviewer figures on hand-computed tables, flags, and excluding a
reviewer (recorded, reversible, every statistic and the report recompute without them)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from review_app import quality, stats
from review_app.cli import main
from review_app.errors import Conflict, InputError, NotFound
from review_app.services import calibration, data, people, signoff, study_data, thresholds
from review_app.services import quality as quality_service
from tests.acting import acting, looking, person
from tests.conftest import write
from tests.stats_frames import make_pairs

# Pairs 1..4 between base (x) and finetuned (y). ana and ben agree; cal votes the other way on
# pairs 1-3 and always for the left response.
VOTES = [
    # (pair, reviewer, outcome, shown_left, ms_spent, flags, source)
    (1, "ana", "y", "base", 40_000, [], "app"),
    (1, "ben", "y", "finetuned", 35_000, [], "app"),
    (1, "cal", "x", "base", 2_000, ["recognized_model"], "app"),
    (2, "ana", "x", "base", 50_000, [], "app"),
    (2, "ben", "x", "finetuned", 30_000, [], "app"),
    (2, "cal", "y", "finetuned", 3_000, [], "app"),
    (3, "ana", "y", "finetuned", 45_000, [], "app"),
    (3, "ben", "tie", "base", 60_000, [], "app"),
    (3, "cal", "x", "base", 2_500, [], "app"),
    (4, "ana", "both_bad", "base", None, [], "import"),
    (4, "cal", "tie", "finetuned", 4_000, [], "app"),
]


def votes_frame(rows=VOTES) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "vote_id": i,
                "pair_id": pair,
                "reviewer": reviewer,
                "outcome": outcome,
                "shown_left": left,
                "ms_spent": ms,
                "flags": json.dumps(flags),
                "source": source,
            }
            for i, (pair, reviewer, outcome, left, ms, flags, source) in enumerate(rows, 1)
        ]
    )


def records(votes=None, known=None, excluded=(), n_boot=200):
    result = quality.reviewer_quality(
        votes_frame() if votes is None else votes,
        make_pairs(4),
        known or {},
        excluded,
        seed=0,
        n_boot=n_boot,
    )
    return {r.reviewer: r for r in result}


def test_agreement_with_the_others_majority():
    by_name = records()
    # ana: pair 1 others {y, x} -> tie, she said y (no); pair 2 others {x, y} -> tie (no);
    # pair 3 others {tie, x} -> tie (no); pair 4 others {tie} -> tie, both_bad counts as tie (yes).
    assert (by_name["ana"].agreement.value, by_name["ana"].agreement.n) == (0.25, 4)
    # cal: pair 1 others {y, y} -> y (no); 2 {x, x} -> x (no); 3 {y, tie} -> tie (no);
    # 4 {both_bad} -> tie (yes).
    assert (by_name["cal"].agreement.value, by_name["cal"].agreement.n) == (0.25, 4)
    # ben has no vote on pair 4: three comparisons.
    assert by_name["ben"].agreement.n == 3
    low, high = by_name["cal"].agreement.ci
    assert 0 <= low <= 0.25 <= high <= 1


def test_an_excluded_reviewer_is_nobodys_majority():
    by_name = records(excluded={"cal"})
    # Without cal, ana's others are ben alone: y=y, x=x, y!=tie; pair 4 has no other vote.
    assert (by_name["ana"].agreement.value, by_name["ana"].agreement.n) == (2 / 3, 3)
    assert by_name["cal"].excluded and not by_name["ana"].excluded
    assert by_name["cal"].agreement.n == 4  # their own record is still measured


def test_time_position_rates_and_known_answers():
    by_name = records(known={1: "y", 2: "x", 4: "both_bad"})
    cal = by_name["cal"]
    assert cal.median_seconds == pytest.approx(2.75)
    assert cal.n_timed == 4
    # cal's decisive votes: x with base left, y with finetuned left, x with base left.
    assert (cal.p_left.value, cal.p_left.n) == (1.0, 3)
    assert (cal.recognized_rate.value, cal.recognized_rate.n) == (0.25, 4)
    assert (cal.known_answer_accuracy.value, cal.known_answer_accuracy.n) == (0.0, 3)
    ana = by_name["ana"]
    assert ana.median_seconds == pytest.approx(45.0)  # the imported vote has no timing
    assert ana.recognized_rate.n == 3  # only votes cast in the app can carry the flag
    assert (ana.both_bad_rate.value, ana.both_bad_rate.n) == (0.25, 4)
    assert (ana.known_answer_accuracy.value, ana.known_answer_accuracy.n) == (1.0, 3)


def test_fast_careless_reviewers_are_flagged():
    rows = []
    for pair in range(1, 31):
        shown = ("base", "finetuned") if pair % 2 else ("finetuned", "base")
        rows.append((pair, "ana", "x", shown[0], 40_000, [], "app"))
        rows.append((pair, "ben", "x", shown[1], 50_000, [], "app"))
        # cal: 3 s per vote, always the left response, against the others on most pairs.
        left = "finetuned" if pair % 3 else "base"
        rows.append((pair, "cal", "y" if left == "finetuned" else "x", left, 3_000, [], "app"))
    votes = votes_frame(rows)
    pairs = make_pairs(30)
    result = {
        r.reviewer: r
        for r in quality.reviewer_quality(votes, pairs, {p: "x" for p in range(1, 6)}, seed=1)
    }
    flags = " | ".join(result["cal"].flags)
    assert "fast: median 3 s per vote" in flags
    assert "low agreement" in flags
    assert "picks the left response 100%" in flags
    assert "known answers: 20% right on 5" in flags
    assert result["ana"].flags == [] and result["ben"].flags == []


def test_the_ceiling_point_estimate_is_the_calibration_one():
    votes = votes_frame()
    pairs = make_pairs(4)
    humans = stats.calibrate(pairs, votes, pd.DataFrame(columns=stats.VERDICT_COLUMNS)).overall
    mine = quality.human_agreement_without_ties(votes)
    assert mine.value == pytest.approx(humans.humans.agreement_without_ties.value)
    assert mine.n == humans.humans.agreement_without_ties.n


# ---- the service: exclusions through the store ----


@pytest.fixture
def careless_demo(demo_store, settings, tmp_path):
    """The demo plus a careless reviewer, zed, who voted 'tie' on every comparison the example
    reviewers voted on."""
    study = demo_store.studies.require_study("demo")
    pairs = demo_store.frames.pairs_frame(study["id"]).set_index("pair_id")
    voted = sorted(set(demo_store.frames.votes_frame(study["id"])["pair_id"]))
    lines = ["item_id,system_a,system_b,reviewer,winner,shown_left"]
    for pair_id in voted:
        pair = pairs.loc[pair_id]
        lines.append(f"{pair.item_key},{pair.system_x},{pair.system_y},zed,{pair.system_x},")
    data.import_votes(
        demo_store,
        write(tmp_path / "zed.csv", "\n".join(lines) + "\n"),
        "demo",
        actor=person(demo_store),
    )
    return demo_store


def ceiling(store, settings) -> float:
    report = calibration.calibration_report(looking(store, "demo", settings))
    return report.calibration.overall.humans.agreement_without_ties.value


def test_excluding_a_reviewer_recomputes_the_statistics_without_them(careless_demo, settings):
    store = careless_demo
    study_id = store.studies.require_study("demo")["id"]
    with_zed = ceiling(store, settings)
    before = store.frames.calibration_data_version(study_id)
    expected = quality.human_agreement_without_ties(
        store.frames.votes_frame(study_id).query("reviewer != 'zed'")
    )
    quality_service.exclude_reviewer(
        acting(store, "demo", "demo-admin"), "zed", "voted x on everything"
    )
    assert store.frames.calibration_data_version(study_id) != before  # cached study data reloads
    assert ceiling(store, settings) == pytest.approx(expected.value)
    assert ceiling(store, settings) != pytest.approx(with_zed)
    assert "zed" not in set(store.frames.votes_frame(study_id)["reviewer"])
    assert "zed" in set(store.frames.votes_frame(study_id, with_excluded=True)["reviewer"])
    assert "zed" not in set(
        study_data.load(store, store.studies.require_study("demo"), settings).votes.reviewer
    )

    report = quality_service.reviewer_report(store, "demo", settings, None)
    zed = next(r for r in report.reviewers if r.reviewer == "zed")
    assert zed.excluded and report.ceiling.value == pytest.approx(expected.value)

    quality_service.include_reviewer(acting(store, "demo", "ann"), "zed", "checked: a test account")
    assert ceiling(store, settings) == pytest.approx(with_zed)
    history = store.quality.exclusion_history(study_id)
    assert [(h["excluded"], h["decided_by"], h["reason"]) for h in history] == [
        (1, "demo-admin", "voted x on everything"),
        (0, "ann", "checked: a test account"),
    ]


def test_exclusions_are_explained_and_append_only(careless_demo):
    store = careless_demo
    with pytest.raises(InputError, match="say why"):
        quality_service.exclude_reviewer(acting(store, "demo", "ann"), "zed", "  ")
    with pytest.raises(NotFound, match="no reviewer named 'nobody'"):
        quality_service.exclude_reviewer(acting(store, "demo", "ann"), "nobody", "why")
    with pytest.raises(Conflict, match="not excluded"):
        quality_service.include_reviewer(acting(store, "demo", "ann"), "zed", "why")
    quality_service.exclude_reviewer(acting(store, "demo", "ann"), "zed", "fast")
    with pytest.raises(Conflict, match="already excluded"):
        quality_service.exclude_reviewer(acting(store, "demo", "ann"), "zed", "fast")
    with pytest.raises(Exception, match="append-only"):
        store.db.execute("DELETE FROM reviewer_exclusions")


def test_the_report_lists_exclusions_and_its_figures_leave_them_out(careless_demo, settings):
    store = careless_demo
    thresholds.add_recommended_thresholds(acting(store, "demo", "ann"))
    thresholds.lock_thresholds(acting(store, "demo", "ann"), "a small test study")
    before = signoff.build_report(looking(store, "demo", settings))
    assert before["exclusions"] == []
    quality_service.exclude_reviewer(acting(store, "demo", "ann"), "zed", "voted x on everything")
    after = signoff.build_report(looking(store, "demo", settings))
    [listed] = after["exclusions"]
    assert listed["reviewer"] == "zed" and listed["reason"] == "voted x on everything"
    assert listed["decided_by"] == "ann" and listed["n_votes"] > 0
    assert after["report_hash"] != before["report_hash"]
    assert (
        after["human_agreement"]["without_ties"]["value"]
        != before["human_agreement"]["without_ties"]["value"]
    )
    from review_app.report import render_html, render_markdown

    assert "zed (" in render_markdown(after) and "voted x on everything" in render_html(after)


def test_known_answers_are_marked_by_item_and_comparison(demo_store, settings):
    quality_service.set_known_answer(
        acting(demo_store, "demo", "ann"), "formatting-006", "finetuned:base", "finetuned"
    )
    quality_service.set_known_answer(
        acting(demo_store, "demo", "ann"), "formatting-006", "frontier:finetuned", "tie"
    )
    marked = quality_service.known_answers(demo_store, "demo")
    assert [(m["item_key"], m["answer"]) for m in marked] == [
        ("formatting-006", "finetuned"),
        ("formatting-006", "tie"),
    ]
    with pytest.raises(InputError, match="expected finetuned, base, tie or both_bad"):
        quality_service.set_known_answer(
            acting(demo_store, "demo", "ann"), "formatting-006", "finetuned:base", "frontier"
        )
    with pytest.raises(NotFound, match="no comparison finetuned:base on item 'nope'"):
        quality_service.set_known_answer(
            acting(demo_store, "demo", "a"), "nope", "finetuned:base", "tie"
        )
    ann = acting(demo_store, "demo", "ann").actor
    report = quality_service.reviewer_report(demo_store, "demo", settings, ann)
    accuracy = {r.reviewer: r.known_answer_accuracy for r in report.reviewers}
    assert all(a.n >= 1 for a in accuracy.values())  # every example reviewer voted on it
    quality_service.remove_known_answer(
        acting(demo_store, "demo", "ann"), "formatting-006", "finetuned:base"
    )
    assert len(quality_service.known_answers(demo_store, "demo")) == 1


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_stats_exclude_include_and_known_answers(careless_demo, settings, capsys):
    _, link = people.add_reviewer(
        careless_demo, settings, "ann", "admin", actor=person(careless_demo)
    )
    admin = ("--token", link.split("token=")[1])
    # Excluding a reviewer moves the gate's figures: it acts in a named admin's name.
    code, _, err = run(capsys, "reviewers", "exclude", "zed", "--study", "demo", "--reason", "x")
    assert code != 0 and "--token" in err
    code, out, _ = run(capsys, "reviewers", "stats", "--study", "demo")
    assert code == 0 and "example-chen" in out and "flag: zed:" in out
    code, out, _ = run(capsys, "reviewers", "stats", "--study", "demo", "--json")
    document = json.loads(out)
    zed = next(r for r in document["reviewers"] if r["reviewer"] == "zed")
    assert set(zed) >= {
        "n_votes",
        "median_seconds",
        "agreement",
        "p_left",
        "recognized_rate",
        "both_bad_rate",
        "known_answer_accuracy",
        "excluded",
        "flags",
        "ceiling_without",
    }
    assert zed["ceiling_without"]["value"] > document["ceiling"]["value"]
    code, out, _ = run(
        capsys, *admin, "reviewers", "exclude", "zed", "--study", "demo", "--reason", "all x"
    )
    assert code == 0 and "excluded" in out
    code, _, err = run(
        capsys, *admin, "reviewers", "exclude", "zed", "--study", "demo", "--reason", "x"
    )
    assert code == 1 and err == "error: zed is already excluded from study 'demo'\n"
    document = json.loads(run(capsys, "reviewers", "stats", "--study", "demo", "--json")[1])
    assert document["exclusions"][0]["reason"] == "all x"
    code, _, _ = run(
        capsys, *admin, "reviewers", "include", "zed", "--study", "demo", "--reason", "ok"
    )
    assert code == 0
    code, out, _ = run(
        capsys,
        *admin,
        "known-answers",
        "set",
        "--study",
        "demo",
        "--item",
        "reasoning-003",
        "--compare",
        "finetuned:base",
        "--answer",
        "finetuned",
    )
    assert code == 0
    out = run(capsys, "known-answers", "list", "--study", "demo")[1]
    assert out.startswith("reasoning-003\tbase:finetuned\tfinetuned\tset by ann")
    code, _, _ = run(
        capsys,
        *admin,
        "known-answers",
        "remove",
        "--study",
        "demo",
        "--item",
        "reasoning-003",
        "--compare",
        "finetuned:base",
    )
    assert code == 0 and run(capsys, "known-answers", "list", "--study", "demo")[1] == ""
    actions = [e["action"] for e in careless_demo.audit.audit_entries() if e["actor"] == "ann"]
    assert actions == [
        "reviewer excluded",
        "reviewer included again",
        "known answer set",
        "known answer removed",
    ]


def test_the_quality_headline_gives_the_calibration_ceiling_with_its_interval(
    careless_demo, settings
):
    """The reviewer-quality screen's headline is the human ceiling with its 95% interval, the
    same figure and interval as the calibration screen's, with and without an exclusion."""
    from tests.test_calibration import open_page

    store = careless_demo
    for exclude in (False, True):
        if exclude:
            quality_service.exclude_reviewer(
                acting(store, "demo", "demo-admin"), "zed", "voted x on everything"
            )
        expected = ceiling_estimate(store, settings)
        report = quality_service.reviewer_report(store, "demo", settings, person(store))
        assert report.ceiling.value == pytest.approx(expected.value)
        assert report.ceiling.ci == pytest.approx(expected.ci)
        assert report.document()["ceiling"]["ci"] == pytest.approx(list(expected.ci))
        at = open_page(store, "quality.py")
        assert not at.exception
        (headline,) = [m for m in at.metric if "ceiling" in m.label]
        low, high = expected.ci
        assert f"{expected.value:.3f}" in headline.value
        assert f"[{low:.2f}, {high:.2f}]" in headline.value


def ceiling_estimate(store, settings) -> stats.Estimate:
    report = calibration.calibration_report(looking(store, "demo", settings))
    return report.calibration.overall.humans.agreement_without_ties
