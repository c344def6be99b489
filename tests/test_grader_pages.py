"""The graders on the admin screens through AppTest: Run graders on the Judge runs screen, and
the grader metrics in the Gate screen's threshold form."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from review_app.services import thresholds
from review_app.services.demo import DEMO_STUDY
from tests.acting import acting, looking
from tests.conftest import ROOT

PAGES = ROOT / "review_app" / "app_pages"


def open_page(store, page: str, user: str = "demo-admin") -> AppTest:
    at = AppTest.from_file(str(PAGES / page), default_timeout=60)
    at.query_params["token"] = store.demo_links[user].split("token=")[1]
    return at.run()


def result_rows(store) -> int:
    return store.db.execute("SELECT count(*) FROM grader_results").fetchone()[0]


def test_run_graders_lists_the_demo_grader_and_adds_nothing_twice(demo_store):
    at = open_page(demo_store, "judge_runs.py")
    assert not at.exception
    versions = at.dataframe[-1].value
    assert list(versions["grader"]) == ["demo-format"]
    assert list(versions["results"]) == [result_rows(demo_store)]
    assert list(versions["pinned by the lock"]) == [False]
    before = result_rows(demo_store)
    at.selectbox(key="grader_file").select_index(
        next(i for i, o in enumerate(at.selectbox(key="grader_file").options) if "demo-format" in o)
    ).run()
    at.button(key="grader_run").click().run()
    assert not at.exception
    assert any(f"(0 new, {before} already stored)" in s.value for s in at.success)
    assert result_rows(demo_store) == before


def test_a_grader_that_fits_no_output_is_explained_and_changes_nothing(demo_store):
    at = open_page(demo_store, "judge_runs.py")
    options = at.selectbox(key="grader_file").options
    at.selectbox(key="grader_file").select_index(
        next(i for i, o in enumerate(options) if "intent-labels" in o)
    ).run()
    before = demo_store.table_counts()
    at.button(key="grader_run").click().run()
    assert not at.exception
    assert any("no check of grader intent-labels applies" in e.value for e in at.error)
    assert demo_store.table_counts() == before


def test_after_the_lock_the_page_asks_for_a_reason_and_shows_the_pin(demo_store):
    thresholds.add_threshold(
        acting(demo_store, DEMO_STUDY, "a"), "grader_pass_rate", {"check": "json-valid"}, ">=", 0.9
    )
    thresholds.lock_thresholds(acting(demo_store, DEMO_STUDY, "demo-admin"), "a small test study")
    at = open_page(demo_store, "judge_runs.py")
    assert not at.exception
    assert at.text_input(key="grader_reason") is not None
    assert list(at.dataframe[-1].value["pinned by the lock"]) == [True]
    gate = open_page(demo_store, "gate.py")
    assert not gate.exception
    assert any("Graders pinned: demo-format" in c.value for c in gate.caption)


def test_the_gate_form_offers_the_grader_checks(demo_store):
    at = open_page(demo_store, "gate.py")
    at.selectbox(key="gate_metric").set_value("grader_pass_rate").run()
    assert not at.exception
    checks = at.selectbox(key="gate_param_check").options
    assert "json-valid" in checks and "signed-off" in checks
    at.selectbox(key="gate_param_check").set_value("json-valid")
    at.number_input(key="gate_value").set_value(0.95)
    at.button(key="gate_add").click().run()
    assert not at.exception
    (listed,) = thresholds.list_thresholds(looking(demo_store, DEMO_STUDY))
    assert listed["threshold"].metric == "grader_pass_rate"
    assert listed["threshold"].params == {
        "check": "json-valid",
        "system": "",
        "category": "",
        "grader": "",
    }
