"""A judge that does not exist (a typo such as baseline/longer) gets no plan and no Start
button, and `judge --dry-run` exits non-zero whenever the run itself would be refused."""

import pytest

from review_app.cli import main
from review_app.errors import InputError
from review_app.services import judging
from tests.test_judge_page import open_page

ARGS = ["judge", "--study", "demo", "--rubric", str(judging.DEMO_RUBRIC)]


def test_an_unknown_baseline_gets_no_plan(demo_store, settings):
    with pytest.raises(InputError, match="unknown baseline|choose one of"):
        judging.plan_judge_run(demo_store, settings, "demo", judging.DEMO_RUBRIC, "baseline/longer")


def test_the_judge_screen_offers_no_start_for_a_typo(demo_store):
    at = open_page(demo_store)
    at.text_input(key="judge_name").input("baseline/longer").run()
    assert not at.exception
    assert any("baseline/longest" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "judge_start"]
    assert not at.metric


def test_a_dry_run_that_would_fail_exits_non_zero(demo_store, capsys, monkeypatch):
    assert main([*ARGS, "--judge", "baseline/longer", "--dry-run"]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("error: ") and err.count("\\n") <= 1 and "longest" in err
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main([*ARGS, "--judge", "openai/gpt-4o-mini", "--dry-run"]) == 1
    out, err = capsys.readouterr()
    assert "calls" in out and "OPENAI_API_KEY" in err
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    assert main([*ARGS, "--judge", "openai/gpt-4o-mini", "--dry-run"]) == 0
    assert main([*ARGS, "--judge", "baseline/first", "--dry-run", "--seed", "3"]) == 0
