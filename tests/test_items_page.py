"""The Items screen through AppTest: admins and signers search, filter and page a study's items;
reviewers are refused; before the lock nothing on it is an outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.acting import lock_on_win_rate

PAGE = Path(__file__).resolve().parent.parent / "review_app" / "app_pages" / "items.py"


def open_items(store, who: str) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.query_params["token"] = store.demo_links[who].split("token=")[1]
    return at.run()


def texts(at: AppTest) -> str:
    return "\n".join(
        str(e.value) for e in (*at.markdown, *at.caption, *at.info, *at.error, *at.warning)
    )


def filter_key(at: AppTest, name: str) -> str:
    """The key of a filter widget (filters are kept per study: `items_<study id>_<name>`)."""
    widgets = (*at.multiselect, *at.selectbox, *at.radio, *at.slider)
    [key] = [w.key for w in widgets if w.key and w.key.endswith(f"_{name}")]
    return key


def count_line(at: AppTest) -> str:
    return next(m.value for m in at.markdown if " item" in m.value and "output" in m.value)


@pytest.mark.parametrize("who", ["demo-admin", "demo-signer"])
def test_admins_and_signers_search_the_items(demo_store, who):
    at = open_items(demo_store, who)
    assert not at.exception
    assert at.title[0].value == "Items"
    assert count_line(at).startswith("**") and "items**" in count_line(at)
    at.text_input(key="items_text").input("maya").run()
    assert not at.exception
    shown = texts(at)
    assert "support-001" in shown and "formatting-001" not in shown
    assert count_line(at) == "**1 item**, 3 outputs"
    assert [e.label for e in at.expander][0].startswith("Filters: category, system, length")
    at.multiselect(key=filter_key(at, "categories")).select("reasoning").run()
    assert "Filters (1 set)" in [e.label for e in at.expander]
    assert "No item matches these filters." in texts(at)


def test_a_reviewer_is_refused(demo_store):
    at = open_items(demo_store, "demo-reviewer")
    assert not at.exception
    assert "this screen is for admin or signer accounts" in at.error[0].value
    assert not at.text_input and not at.markdown


def test_before_the_lock_it_shows_no_outcome(demo_store):
    at = open_items(demo_store, "demo-admin")
    assert not at.exception
    keys = {w.key for w in (*at.selectbox, *at.radio)}
    assert not {k for k in keys if k.endswith(("_check", "_judge", "_check_result"))}
    shown = texts(at)
    assert "Until the study's thresholds are locked this screen shows no outcome" in shown
    for outcome in ("example-llm-judge", "Failed", "Disagreement", "demo-reviewer", "votes"):
        assert outcome not in shown.replace("no votes", "")


def test_pages_and_the_raw_toggle(demo_store):
    at = open_items(demo_store, "demo-admin")
    [page] = [n for n in at.number_input if n.key.startswith("items_page_")]
    assert page.value == 1 and page.label == "Page (of 3)"
    first = [m.value for m in at.markdown if m.value.startswith("**") and " · " in m.value]
    page.set_value(2).run()
    assert not at.exception
    second = [m.value for m in at.markdown if m.value.startswith("**") and " · " in m.value]
    assert first and second and not set(first) & set(second)
    assert "Page 2 of 3" in texts(at)
    at.button(key="items_next").click().run()
    assert "Page 3 of 3" in texts(at) and at.button(key="items_next").disabled
    at.button(key="items_previous").click().run()
    assert "Page 2 of 3" in texts(at)
    [page] = [n for n in at.number_input if n.key.startswith("items_page_")]
    assert page.value == 2
    at.toggle(key="items_raw").set_value(True).run()
    assert not at.exception and at.code  # raw text is shown as the exact characters
    # A new search starts again on its first page.
    at.text_input(key="items_text").input("the").run()
    [page] = [n for n in at.number_input if n.key.startswith("items_page_")]
    assert page.value == 1


def test_after_the_lock_grader_and_disagreement_filters(demo_store, settings):
    lock_on_win_rate(demo_store, settings)
    at = open_items(demo_store, "demo-signer")
    assert not at.exception
    assert "The study's thresholds are locked" in texts(at)
    at.selectbox(key=filter_key(at, "check")).select("json-valid").run()
    assert not at.exception
    failed = [c.value for c in at.caption if c.value.startswith("Failed: ")]
    assert failed and all("json-valid" in c for c in failed)
    at.radio(key=filter_key(at, "check_result")).set_value("passed").run()
    assert not any("json-valid" in c.value for c in at.caption if c.value.startswith("Failed"))
    at.selectbox(key=filter_key(at, "check")).select("(any)").run()
    at.selectbox(key=filter_key(at, "judge")).select("any judge").run()
    assert not at.exception
    lines = [c.value for c in at.caption if c.value.startswith("Disagreement: ")]
    assert lines and all("example-llm-judge" in line for line in lines)
