"""Attacks on graders, the scorecard, rubric iteration, juries and self-preference: an admin who
wants outcomes before the lock or to bend a locked decision, a careless user, a statistician.
Each attempt must be refused with a one-line error, recorded, or answered honestly."""

from __future__ import annotations

import json
import sqlite3

import pytest

from review_app import cli, graders
from review_app.errors import InputError
from review_app.services import audit, calibration, grading, juries, people, thresholds
from review_app.settings import Settings
from tests.conftest import write

FAMILIES = "example-llm-judge=openai,finetuned=openai"


def _lock_demo(store, settings) -> None:
    people.add_reviewer(store, settings, "ada", "admin", "demo")
    thresholds.add_recommended_thresholds(store, "demo", "ada")
    thresholds.lock_thresholds(store, "demo", "ada", settings)


def _strict_json(text: str) -> dict:
    document = json.loads(text)
    json.dumps(document, allow_nan=False)
    return document


# ---- outcomes before the lock ----


def test_self_preference_names_no_win_rate_before_the_lock(demo_store, monkeypatch, capsys):
    monkeypatch.setenv("REVIEW_APP_MODEL_FAMILIES", FAMILIES)
    settings = Settings.from_env()
    assert cli.main(["stats", "--study", "demo", "--json"]) == 0
    found = _strict_json(capsys.readouterr().out)["self_preference"]
    assert [(p["judge"], p["system"]) for p in found] == [("example-llm-judge", "finetuned")]
    # The shift (judge minus humans) is a bias figure; the humans' own win rate is an outcome.
    assert found[0]["shift"]["value"] is not None
    assert found[0]["human_win_rate"] is None and found[0]["judge_win_rate"] is None
    assert cli.main(["stats", "--study", "demo"]) == 0
    text = capsys.readouterr().out
    (line,) = [x for x in text.splitlines() if "self-preference of" in x]
    assert "for finetuned" in line and "humans" not in line and "(judge" not in line

    _lock_demo(demo_store, settings)
    (after,) = calibration.self_preference(demo_store, "demo", settings)
    assert after.human_win_rate is not None and after.judge_win_rate is not None
    assert after.shift.value == pytest.approx(found[0]["shift"]["value"])
