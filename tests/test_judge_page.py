"""The judge-runs screen (admins): plan before starting, start a run, totals, failures."""

from __future__ import annotations

from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

from judge.fake_server import FakeJudgeServer, Reply
from review_app.services import judging
from tests.acting import acting
from tests.conftest import ROOT

PAGE = str(ROOT / "review_app" / "app_pages" / "judge_runs.py")


def open_page(store, user: str = "demo-admin") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["token"] = store.demo_links[user].split("token=")[1]
    return at.run()


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def run_rows(store, label: str) -> int:
    return store.db.execute(
        "SELECT count(*) FROM verdicts v JOIN judge_runs j ON j.id = v.run_id WHERE j.label = ?",
        [label],
    ).fetchone()[0]


@pytest.fixture
def server(monkeypatch):
    with FakeJudgeServer() as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        yield fake


def test_admin_sees_the_plan_and_the_seeded_baseline_runs(demo_store):
    at = open_page(demo_store)
    assert not at.exception
    assert at.title[0].value == "Judge runs"
    # baseline/longest is already complete in the demo: nothing to send, nothing to start.
    assert metric(at, "Calls to send") == "0"
    assert metric(at, "Already stored") == "256 / 256"
    assert at.button(key="judge_start").disabled
    table = at.dataframe[0].value
    assert set(table["label"]) == {
        f"baseline/{b}" for b in ("longest", "shortest", "first", "random")
    } | {"example-llm-judge"}
    assert set(table["status"]) == {"complete", "imported"}
    # The example judge's four unparsed answers are listed with their raw text.
    assert at.selectbox(key="judge_failures_run").value.endswith("example-llm-judge (4 unparsed)")
    assert len(at.expander) == 4


def test_starting_a_run_from_the_page_stores_its_verdicts(demo_store):
    at = open_page(demo_store)
    at.text_input(key="judge_name").set_value("baseline/random").run()
    at.checkbox(key="judge_both_orders").uncheck().run()
    assert metric(at, "Calls to send") == "128"
    assert metric(at, "Estimated cost") == "$0.0000"
    at.button(key="judge_start").click().run()
    assert not at.exception
    assert "128 verdicts stored" in at.success[0].value
    assert run_rows(demo_store, "baseline/random · single order") == 128
    assert metric(at, "Calls to send") == "0"


def test_cost_is_shown_before_starting_a_paid_judge(demo_store, server):
    at = open_page(demo_store)
    at.text_input(key="judge_name").set_value("openai/gpt-4o-mini").run()
    assert metric(at, "Calls to send") == "256"
    assert metric(at, "Estimated cost").startswith("$")
    assert server.count == 0
    at.text_input(key="judge_name").set_value("openai/unpriced-local-model").run()
    assert metric(at, "Estimated cost") == "unknown"


def test_unparsed_answers_are_shown_with_the_raw_output(demo_store, server, settings):
    server.answer = lambda request: Reply(content="Response A, clearly.")
    judging.start_judge_run(
        acting(demo_store, "demo", settings=replace(settings, judge_parse_retries=0)),
        ROOT / "rubrics" / "general-pairwise.yaml",
        "openai/gpt-4o-mini",
        both_orders=False,
    )
    at = open_page(demo_store)
    assert not at.exception
    assert "(128 unparsed)" in at.selectbox(key="judge_failures_run").value
    assert at.expander and "malformed JSON" in at.expander[0].label
    assert at.code[0].value == "Response A, clearly."


def test_a_bad_judge_name_is_explained_not_crashed(demo_store):
    at = open_page(demo_store)
    at.text_input(key="judge_name").set_value("gpt-4o").run()
    assert not at.exception
    assert "PROVIDER/MODEL" in at.error[0].value
    # Nothing to start a judge run with; only the graders' own control remains.
    assert [b.key for b in at.button] == ["grader_run"]


def test_a_missing_key_is_reported_when_starting(demo_store, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    at = open_page(demo_store)
    at.text_input(key="judge_name").set_value("anthropic/claude-haiku-4-5").run()
    at.button(key="judge_start").click().run()
    assert not at.exception
    assert "ANTHROPIC\\_API\\_KEY" in at.error[0].value  # Markdown that shows the name as typed


def test_reviewers_cannot_open_the_judge_screen(demo_store):
    at = open_page(demo_store, "demo-reviewer")
    assert not at.exception
    assert "for admin accounts" in at.error[0].value
    assert not at.button


def test_the_app_offers_the_judge_screen_to_admins(demo_store):
    at = AppTest.from_file(str(ROOT / "review_app" / "streamlit_app.py"), default_timeout=60)
    at.query_params["token"] = demo_store.demo_links["demo-admin"].split("token=")[1]
    at.run()
    at.switch_page("app_pages/judge_runs.py").run()
    assert not at.exception
    assert at.title[0].value == "Judge runs"


def test_the_split_picker_is_disabled_and_explained_without_a_split(demo_store):
    at = open_page(demo_store)
    (picker,) = at.radio
    assert picker.label == "Comparisons to judge"
    assert picker.disabled and picker.value == "all"
    assert "no dev/test split" in picker.help
    assert any("No dev/test split on this study" in c.value for c in at.caption)
    assert metric(at, "Already stored") == "256 / 256"


def test_judging_only_dev_then_test_from_the_page(demo_store, settings):
    from review_app.services import rubric_iteration

    split = rubric_iteration.make_split(
        acting(demo_store, "demo", "demo-admin", settings=settings), 0.3, 7
    )
    dev = rubric_iteration.split_pair_ids(demo_store, "demo", "dev")
    at = open_page(demo_store)
    (picker,) = at.radio
    assert not picker.disabled and picker.value == "all"
    at.text_input(key="judge_name").set_value("baseline/random").run()
    at.checkbox(key="judge_both_orders").uncheck().run()
    assert metric(at, "Calls to send") == "128"
    at.radio[0].set_value("dev").run()
    assert metric(at, "Calls to send") == str(split.n_dev)
    assert any(f"({split.n_dev} dev pairs" in c.value for c in at.caption)
    at.button(key="judge_start").click().run()
    assert not at.exception
    assert f"{split.n_dev} verdicts stored" in at.success[0].value
    judged = {
        row[0]
        for row in demo_store.db.execute(
            "SELECT v.pair_id FROM verdicts v JOIN judge_runs j ON j.id = v.run_id "
            "WHERE j.label = ?",
            ["baseline/random · single order"],
        )
    }
    assert judged == dev  # only dev comparisons were judged
    assert metric(at, "Calls to send") == "0"

    at.radio[0].set_value("test").run()
    assert metric(at, "Calls to send") == str(split.n_test)
    at.radio[0].set_value("all").run()
    assert metric(at, "Calls to send") == str(128 - split.n_dev)
    # Judging is not a look at test: nothing about agreement is shown.
    assert rubric_iteration.test_look_count(demo_store, "demo") == 0
