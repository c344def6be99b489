"""Figures on too little data are honest: no interval where none can be estimated, never a
NaN, and every JSON document the commands print is strict JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from review_app import cli
from review_app.services import decision as decisions
from review_app.services import people, thresholds
from tests.acting import acting, lock_as_ada, looking, person, token_for
from tests.conftest import write

FAMILIES = "example-llm-judge=openai,finetuned=openai"


def strict_json(text: str) -> dict:
    """A JSON document that is strict JSON (no NaN or infinity)."""
    document = json.loads(text)
    json.dumps(document, allow_nan=False)
    return document


def _obs(rows):

    return pd.DataFrame(rows, columns=["item", "system_a", "system_b", "score"])


def test_bradley_terry_on_too_little_data_gives_no_interval_and_never_crashes():
    from review_app import ranking

    assert ranking.bradley_terry(_obs([])) == []
    # One comparison, or several on one item: resampling items cannot give an interval.
    for rows in ([("i1", "a", "b", 1.0)], [("i1", "a", "b", 1.0), ("i1", "a", "b", 0.0)]):
        ratings = ranking.bradley_terry(_obs(rows), n_boot=200)
        assert [r.ci for r in ratings] == [None, None]
        json.dumps([r.to_json() for r in ratings], allow_nan=False)
    # All ties: every system at 1000, none unbeaten.
    ties = [(f"i{k}", "a", "b", 0.5) for k in range(8)] + [
        (f"i{k}", "a", "c", 0.5) for k in range(8)
    ]
    ratings = ranking.bradley_terry(_obs(ties), n_boot=200)
    assert {r.system: round(r.rating, 6) for r in ratings} == {"a": 1000, "b": 1000, "c": 1000}
    assert not any(r.unbeaten for r in ratings)


def test_length_controlled_win_rate_at_one_length_and_on_one_item():
    import pandas as pd

    from review_app import ranking

    rng = np.random.default_rng(3)
    scores = rng.choice([0.0, 0.5, 1.0], size=40, p=[0.3, 0.1, 0.6])
    same = pd.DataFrame({"item": [f"i{k}" for k in range(40)], "score": scores, "len_diff": 0})
    lc = ranking.length_controlled_win_rate(same, n_boot=200)
    assert lc.n == 40 and lc.value == pytest.approx(scores.mean(), abs=0.01)
    assert lc.ci is not None and lc.ci[0] <= lc.value <= lc.ci[1]
    # One comparison at equal length: a value, but no interval from one item.
    one = pd.DataFrame({"item": ["i1"], "score": [1.0], "len_diff": [0]})
    lc = ranking.length_controlled_win_rate(one, n_boot=200)
    assert lc.ci is None and lc.n == 1 and lc.value is not None and np.isfinite(lc.value)
    # One comparison of different lengths: length and quality cannot be told apart.
    one = pd.DataFrame({"item": ["i1"], "score": [1.0], "len_diff": [5]})
    lc = ranking.length_controlled_win_rate(one, n_boot=200)
    assert lc.value is None and lc.reason.startswith(ranking.NOT_ESTIMABLE)
    empty = pd.DataFrame({"item": [], "score": [], "len_diff": []})
    lc = ranking.length_controlled_win_rate(empty)
    assert (lc.value, lc.ci, lc.n, lc.reason) == (None, None, 0, "no comparisons")


def test_the_scorecard_of_a_study_without_votes_is_honest_json(
    store, settings, tmp_path, capsys, monkeypatch
):
    from review_app import gate
    from tests.review_fixtures import STUDY, SYSTEM_X, SYSTEM_Y, make_study

    make_study(store, tmp_path, n_items=6)
    people.add_reviewer(store, settings, "ada", "admin", STUDY, actor=person(store))
    thresholds.add_threshold(
        acting(store, STUDY, "ada"),
        gate.REGRESSION_METRIC,
        {"system_a": SYSTEM_X, "system_b": SYSTEM_Y, "source": "humans"},
        "<=",
        5.0,
    )
    thresholds.lock_thresholds(acting(store, STUDY, "ada", settings=settings), "a small test study")
    # No vote is in, so the study is interim: each look is read in someone's name.
    monkeypatch.setenv("REVIEW_APP_TOKEN", token_for(store, "ada"))
    assert cli.main(["scorecard", "--study", STUDY, "--json"]) == 0
    card = strict_json(capsys.readouterr().out)
    assert card["outcomes_visible"] is True
    assert not card["ranking"].get("humans")
    assert all(w["win_rate"] is None and w["lc_win_rate"] is None for w in card["win_rates"])
    assert cli.main(["scorecard", "--study", STUDY]) == 0
    assert "nan" not in capsys.readouterr().out.lower()
    assert cli.main(["report", "--study", STUDY, "--format", "json"]) == 0
    strict_json(capsys.readouterr().out)


def test_a_check_that_applies_to_no_output_has_no_rate_and_no_nan(
    demo_store, settings, tmp_path, cli_admin
):
    from review_app.services import grading

    grader = (
        "name: sparse\nchecks:\n  - name: nowhere\n    type: json_valid\n    categories: [none-such]\n"
        "  - name: short\n    type: max_chars\n    n: 100000\n"
    )
    grading.grade(acting(demo_store, "demo", "ada"), write(tmp_path / "sparse.yaml", grader))
    thresholds.add_threshold(
        acting(demo_store, "demo", "ada"),
        "grader_pass_rate",
        {"check": "nowhere", "grader": "sparse"},
        ">=",
        0.5,
    )
    lock_as_ada(demo_store, settings, recommended=False)
    summary = grading.grader_summary(looking(demo_store, "demo"))
    json.dumps(summary, allow_nan=False)
    checks = {(g["grader"], g["check"]) for g in summary["graders"]}
    assert ("sparse", "short") in checks and ("sparse", "nowhere") not in checks
    decision = decisions.evaluate_gate(looking(demo_store, "demo", settings))
    (nowhere,) = [r for r in decision.results if r.threshold.params.get("check") == "nowhere"]
    assert nowhere.outcome == "interim" and "so far: not measurable" in nowhere.reason


def test_every_json_document_of_the_new_commands_isstrict_json(
    demo_store, settings, capsys, monkeypatch, cli_admin
):
    from tests.conftest import ROOT

    monkeypatch.setenv("REVIEW_APP_MODEL_FAMILIES", FAMILIES)
    grader = str(ROOT / "graders" / "demo-format.yaml")
    judges = "example-llm-judge,baseline/longest"
    assert cli.main(["jury", "--study", "demo", "--name", "pair", "--judges", judges]) == 0
    assert cli.main(["calibrate", "split", "--study", "demo"]) == 0
    capsys.readouterr()
    commands = [
        ["stats", "--study", "demo", "--json"],
        ["stats", "--study", "demo", "--json", "--split", "dev"],
        ["stats", "--study", "demo", "--json", "--split", "test"],
        ["calibrate", "show", "--study", "demo", "--json"],
        [
            "calibrate",
            "compare",
            "--study",
            "demo",
            "--judges",
            "example-llm-judge,jury/pair",
            "--json",
        ],
        ["calibrate", "confirm", "--study", "demo", "--judge", "jury/pair", "--json"],
        ["scorecard", "--study", "demo", "--json"],
        ["grade", "--study", "demo", "--grader", grader, "--json"],
    ]
    for locked in (False, True):
        if locked:
            monkeypatch.setenv("REVIEW_APP_TOKEN", lock_as_ada(demo_store, settings))
            commands.append(["report", "--study", "demo", "--format", "json"])
        for args in commands:
            assert cli.main(args) == 0, args
            document = strict_json(capsys.readouterr().out)
            if not locked:
                text = json.dumps(document)
                assert 'win_rate": 0' not in text and '"rate": 0' not in text, args
