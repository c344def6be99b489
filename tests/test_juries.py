"""Juries: a virtual judge over several judges' combined verdicts (majority, documented tie-break,
mean of pointwise scores), stored so thresholds can name it, calibrated like any judge."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from review_app import gate, stats
from review_app.cli import main
from review_app.errors import Conflict, InputError
from review_app.services import (
    calibration,
    disagreements,
    juries,
    rubric_iteration,
    study_data,
    thresholds,
)
from review_app.services import decision as decisions
from tests.acting import acting, looking

PAIRS = pd.DataFrame(
    {
        "pair_id": [1],
        "item_key": ["q1"],
        "category": ["c"],
        "system_x": ["base"],
        "system_y": ["tuned"],
        "len_x": [10],
        "len_y": [12],
    }
)


def _verdicts(ballots: dict[str, tuple[str | None, ...]]) -> pd.DataFrame:
    """One row per (member, order): a 1-tuple is an order-combined verdict, a 2-tuple the
    outcomes with x shown first and with y shown first; None is unparsed."""
    rows = []
    for judge, outcomes in ballots.items():
        firsts = [None] if len(outcomes) == 1 else ["x", "y"]
        for first, outcome in zip(firsts, outcomes, strict=True):
            rows.append((judge, 1, first, outcome, 0.01))
    frame = pd.DataFrame(rows, columns=["judge", "pair_id", "first", "outcome", "cost"])
    frame["latency_ms"] = np.nan
    return frame


@pytest.mark.parametrize(
    ("ballots", "expected"),
    [
        ({"a": ("x",), "b": ("x",), "c": ("y",)}, "x"),
        ({"a": ("x",), "b": ("y",), "c": ("tie",)}, "tie"),  # no unique top: tie
        ({"a": ("x",), "b": ("tie",), "c": ("tie",)}, "tie"),
        ({"a": ("x",), "b": ("x",), "c": ("tie",)}, "x"),
        ({"a": ("y",), "b": ("y",), "c": (None,)}, "y"),  # two of three spoke
        ({"a": ("x",), "b": (None,), "c": (None,)}, None),  # one of three: unparsed
        ({"a": ("x",), "b": ("y",)}, "tie"),
        ({"a": ("x",), "b": (None,)}, None),  # half of two is not a majority
        ({"a": ("x", "y"), "b": ("x", "x"), "c": ("y", "y")}, "tie"),  # a's orders disagree
        ({"a": ("x", None), "b": ("x", "x"), "c": ("y", "y")}, "x"),  # one order stands
    ],
)
def test_jury_majority_and_tie_break(ballots, expected):
    members = list(ballots) if len(ballots) > 1 else ["a", "b"]
    frame = stats.jury_verdicts(PAIRS, _verdicts(ballots), members, "jury/p")
    assert list(frame.columns) == stats.VERDICT_COLUMNS
    (row,) = frame.to_dict("records")
    assert row["outcome"] == expected
    assert row["first"] is None and row["judge"] == "jury/p"
    assert row["winner"] == {"x": "base", "y": "tuned"}.get(expected, expected)
    assert (row["parse_error"] is None) == (expected is not None)
    n_rows = sum(len(v) for v in ballots.values())
    assert row["cost"] == pytest.approx(0.01 * n_rows)


def test_a_member_without_any_verdict_counts_against_the_majority():
    frame = stats.jury_verdicts(PAIRS, _verdicts({"a": ("x",)}), ["a", "b", "c"], "jury/p")
    assert frame["outcome"].tolist() == [None]


def test_jury_scores_are_the_mean_of_the_members():
    scores = pd.DataFrame(
        [(1, "base", "accuracy", 4), (1, "base", "accuracy", 2), (1, "tuned", "accuracy", 5)],
        columns=["pair_id", "system", "criterion", "score"],
    )
    means = stats.jury_scores(scores).set_index(["system", "criterion"])["score"]
    assert means[("base", "accuracy")] == 3 and means[("tuned", "accuracy")] == 5


MEMBERS = ["example-llm-judge", "baseline/longest", "baseline/shortest"]


def test_a_jury_is_calibrated_like_any_judge(demo_store, settings):
    jury = juries.create_jury(acting(demo_store, "demo", "ann", settings=settings), "trio", MEMBERS)
    assert jury["label"] == "jury/trio"
    data = study_data.load(demo_store, demo_store.studies.require_study("demo"), settings)
    assert "jury/trio" in data.judge_order and "jury/trio" in data.real_judges
    # Its verdicts are the majority of its members' combined verdicts, pair by pair.
    combined = stats.combine_verdicts(data.pairs, data.verdicts)
    ballots = combined[combined["judge"].isin(MEMBERS)].dropna(subset=["outcome"])
    jury_rows = combined[combined["judge"] == "jury/trio"].set_index("pair_id")["outcome"]
    checked = 0
    for pair_id, group in ballots.groupby("pair_id"):
        counts = Counter(group["outcome"]).most_common()
        if len(group) * 2 <= len(MEMBERS):
            expected = None
        elif len(counts) > 1 and counts[0][1] == counts[1][1]:
            expected = "tie"
        else:
            expected = counts[0][0]
        assert jury_rows.get(pair_id) == expected
        checked += 1
    assert checked > 50

    report = calibration.calibration_report(looking(demo_store, "demo", settings))
    row = next(j for j in report.document()["judges"] if j["judge"] == "jury/trio")
    assert row["agreement"]["without_ties"]["ci"] is not None
    assert row["vs_ceiling"]["verdict"] in ("within", "below", "inconclusive")
    assert "jury/trio" in report.assessments


def test_a_jury_can_be_named_in_a_threshold(demo_store, settings):
    juries.create_jury(acting(demo_store, "demo", "ann", settings=settings), "trio", MEMBERS)
    thresholds.add_threshold(
        acting(demo_store, "demo", "ann"),
        "judge_agreement",
        {"judge": "jury/trio", "ties": "without"},
        None,
        0.5,
    )
    data = study_data.load(demo_store, demo_store.studies.require_study("demo"), settings)
    inputs = decisions.gate_inputs(looking(demo_store, "demo", settings), data)
    (threshold,) = thresholds.study_thresholds(demo_store, demo_store.studies.require_study("demo"))
    measured = gate.measure(threshold, inputs)
    judge = data.statistics.calibration.overall.judge("jury/trio")
    assert measured.value == pytest.approx(judge.agreement_without_ties.value)
    assert measured.n > 0


def test_bad_juries_are_refused_and_change_nothing(demo_store, settings):
    juries.create_jury(acting(demo_store, "demo", "ann", settings=settings), "trio", MEMBERS)
    before = demo_store.table_counts()
    for name, members, error, match in (
        ("trio", MEMBERS[:2], Conflict, "already has a jury or judge named jury/trio"),
        ("solo", MEMBERS[:1], InputError, "at least two"),
        ("twice", [MEMBERS[0], MEMBERS[0]], InputError, "named twice"),
        ("ghost", [MEMBERS[0], "openai/nobody"], InputError, "no judge 'openai/nobody'"),
        ("nested", [MEMBERS[0], "jury/trio"], InputError, "is a jury"),
        ("bad name", MEMBERS, InputError, "jury name"),
    ):
        with pytest.raises(error, match=match):
            juries.create_jury(acting(demo_store, "demo", "ann", settings=settings), name, members)
    assert demo_store.table_counts() == before


def test_jury_command(demo_store, capsys, cli_admin):
    assert (
        main(["jury", "--study", "demo", "--name", "pair", "--judges", ",".join(MEMBERS[:2])]) == 0
    )
    assert "jury/pair" in capsys.readouterr().out
    assert main(["jury", "--study", "demo"]) == 0
    assert "jury/pair\texample-llm-judge, baseline/longest" in capsys.readouterr().out
    assert main(["jury", "--study", "demo", "--name", "x"]) == 1
    assert "both --name and --judges" in capsys.readouterr().err
    assert main(["stats", "--study", "demo", "--json"]) == 0
    labels = [j["judge"] for j in json.loads(capsys.readouterr().out)["judges"]]
    assert "jury/pair" in labels
    study_id = demo_store.studies.require_study("demo")["id"]
    assert [e["action"] for e in demo_store.audit.audit_entries(study_id)].count(
        "created jury"
    ) == 1


def test_jury_explanation_names_systems_so_blinding_can_hide_them():
    ballots = {"a": ("x",), "b": ("y",), "c": (None,)}
    (row,) = stats.jury_verdicts(PAIRS, _verdicts(ballots), ["a", "b", "c"], "jury/p").to_dict(
        "records"
    )
    assert row["explanation"] == "a: base; b: tuned; c: unparsed"


def test_before_the_lock_jury_rows_in_the_disagreements_name_no_system(demo_store, settings):
    # Over judges that cannot stand in for the outcomes (an imported judge, a length baseline
    # favouring one system, is left out before the lock).
    members = ["baseline/first", "baseline/random"]
    juries.create_jury(acting(demo_store, "demo", "ann", settings=settings), "pair", members)
    frame = disagreements.disagreements(
        demo_store, "demo", disagreements.DisagreementFilters(judges=("jury/pair",)), settings
    )
    assert len(frame) > 0
    text = " ".join(frame["explanation_combined"].astype(str))
    assert "finetuned" not in text and "frontier" not in text
    assert ": A" in text or ": B" in text


def two_scored_runs(demo_store, settings):
    """Two pointwise runs on the demo's first comparison (x scored 4 and 2, y 3 and 3, in both
    orders) and jury `pw` over them; returns the comparison's pair id and systems."""
    study_id = demo_store.studies.require_study("demo")["id"]
    pair = demo_store.frames.pairs_frame(study_id).iloc[0]
    x, y = pair["system_x"], pair["system_y"]
    with demo_store.transaction():
        runs = [
            demo_store.judging.insert_judge_run(study_id, label, label, None, "", {}, label)
            for label in ("openai/judge-one", "openai/judge-two")
        ]
        rows = []
        for run, (sx, sy) in zip(runs, ((4, 2), (2, 2)), strict=True):
            for first in (x, y):
                rows.append(
                    {
                        "run_id": run,
                        "pair_id": int(pair["pair_id"]),
                        "first_system": first,
                        "winner": x if sx > sy else "tie",
                        "scores": json.dumps({x: {"accuracy": sx}, y: {"accuracy": sy + 1}}),
                        "created_at": "2026-01-01T00:00:00",
                    }
                )
        demo_store.judging.insert_verdicts(rows)
    juries.create_jury(
        acting(demo_store, "demo", settings=settings),
        "pw",
        ["openai/judge-one", "openai/judge-two"],
    )
    return int(pair["pair_id"]), x, y


def test_jury_pointwise_scores_are_the_members_mean_over_both_orders(demo_store, settings):
    _, x, y = two_scored_runs(demo_store, settings)
    scores = juries.jury_scores(demo_store, "demo", "pw", settings).set_index("system")["score"]
    assert scores[x] == 3.0 and scores[y] == 3.0
    with pytest.raises(InputError, match="no jury named nope"):
        juries.jury_scores(demo_store, "demo", "nope", settings)


def test_pointwise_scores_of_judges_and_juries_are_shown_by_stats(demo_store, settings, capsys):
    pair_id, x, y = two_scored_runs(demo_store, settings)
    # Before the lock both systems are pooled: a mean per system would say who wins.
    pooled = calibration.pointwise_scores(looking(demo_store, "demo"))
    assert not pooled.by_system
    rows = {r["judge"]: r for r in pooled.to_json()["rows"]}
    assert set(rows) == {"openai/judge-one", "openai/judge-two", "jury/pw"}
    assert rows["openai/judge-one"]["mean_score"] == 3.5  # (4 + 3) / 2
    assert rows["openai/judge-two"]["mean_score"] == 2.5  # (2 + 3) / 2
    assert rows["jury/pw"]["mean_score"] == 3.0
    assert {r["system"] for r in rows.values()} == {stats.POOLED_SYSTEMS}
    assert {r["n_comparisons"] for r in rows.values()} == {1}

    assert main(["stats", "--study", "demo", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["pointwise_scores"] == json.loads(json.dumps(pooled.to_json()))
    assert main(["stats", "--study", "demo"]) == 0
    out = capsys.readouterr().out
    assert "pointwise scores" in out and "systems pooled until the thresholds are locked" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("jury/pw ") and "all sys" in ln)
    assert line.split()[-2:] == ["3.00", "1"]
    assert x not in line and y not in line

    thresholds.add_threshold(
        acting(demo_store, "demo", "demo-admin"),
        "human_win_rate",
        {"system_a": "finetuned", "system_b": "base"},
        ">=",
        0.5,
    )
    thresholds.lock_thresholds(
        acting(demo_store, "demo", "demo-admin", settings=settings), "a small test study"
    )
    by_system = calibration.pointwise_scores(looking(demo_store, "demo"))
    assert by_system.by_system
    means = by_system.table.set_index(["judge", "system"])["mean_score"]
    assert means[("jury/pw", x)] == 3.0 and means[("jury/pw", y)] == 3.0
    assert means[("openai/judge-one", x)] == 4.0 and means[("openai/judge-two", y)] == 3.0

    # On one part of a split: the comparison is on dev or on test, never both.
    rubric_iteration.make_split(acting(demo_store, "demo", "demo-admin", settings=settings), 0.3, 1)
    part = (
        "dev" if pair_id in rubric_iteration.split_pair_ids(demo_store, "demo", "dev") else "test"
    )
    other = {"dev": "test", "test": "dev"}[part]
    assert len(calibration.pointwise_scores(looking(demo_store, "demo"), part).table) == 6
    assert calibration.pointwise_scores(looking(demo_store, "demo"), other).table.empty
