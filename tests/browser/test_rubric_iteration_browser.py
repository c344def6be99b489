"""Rubric iteration on the demo in a real browser: the admin splits the labelled comparisons into
dev and test on the Calibration screen, which then shows dev, compares two judges on dev with the
paired CI of their difference, and saves a new rubric version from the editor."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from review_app.services import demo, rubric_iteration
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import person
from tests.browser.conftest import start_server, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def rubric_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("rubrics")


@pytest.fixture(scope="module")
def token(module_workspace) -> str:
    store = Store.open(module_workspace)
    links = demo.seed_demo(store, Settings.from_env())
    store.close()
    return links["demo-admin"].split("token=")[1]


@pytest.fixture(scope="module")
def server(module_workspace, token, rubric_folder):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REVIEW_APP_RUBRICS", str(rubric_folder))
        yield from start_server(module_workspace)


def test_split_compare_on_dev_and_save_a_rubric_version(
    server, token, browser, module_workspace, rubric_folder
):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{server.url}/calibration?token={token}")
        page.get_by_role("heading", name="Rubric iteration").wait_for()
        wait_idle(page, 60_000)
        assert page.get_by_role("radiogroup").count() == 0  # no split, nothing to choose

        page.get_by_role("button", name="Split into dev and test").click()
        page.get_by_role("button", name="Yes, split into dev and test").click()
        page.get_by_text(re.compile(r"Test looked at 0 times")).wait_for()
        wait_idle(page, 30_000)
        store = Store.open(module_workspace)
        try:
            summary = rubric_iteration.split_summary(store, "demo")
        finally:
            store.close()
        assert summary is not None and summary.created_by == "demo-admin"
        # The tables switch to dev straight away: no one sees test by accident.
        expect(page.get_by_role("radio", name=re.compile(r"^dev"))).to_be_checked()
        expect(
            page.get_by_text(f"Dev comparisons only. {summary.n_dev} comparisons")
        ).to_be_visible()

        # Compare the example judge with the shortest-output baseline on dev.
        page.get_by_role("heading", name="Compare two versions on dev").scroll_into_view_if_needed()
        version_2 = page.locator(".st-key-iteration_b input")
        version_2.click()
        version_2.fill("baseline/shortest")
        version_2.press("Enter")
        store = Store.open(module_workspace)
        try:
            diff = rubric_iteration.compare_versions(
                store, "demo", "example-llm-judge", "baseline/shortest", actor=person(store)
            ).comparison.difference
        finally:
            store.close()
        reading = page.get_by_text(
            f"Difference {diff.value:+.2f}, 95% CI [{diff.ci[0]:.2f}, {diff.ci[1]:.2f}]"
        )
        # The comparison drawn is the event that the choice's script run has begun; until that
        # run ends, Streamlit keeps the box's old copy on the page beside the new one.
        reading.wait_for()
        wait_idle(page, 30_000)
        expect(version_2).to_have_value("baseline/shortest")
        expect(reading).to_be_visible()
        assert re.search(
            r"version [12] agrees with the humans more|no clear difference", reading.inner_text()
        )
        expect(page.get_by_text(re.compile(r"\d+ dev comparisons changed verdict"))).to_be_visible()

        # A new version from the editor: bump the version, apply, save.
        editor = page.locator(".st-key-editor textarea")
        editor.scroll_into_view_if_needed()
        # The box is drawn before the browser fills in its text: wait for the rubric in it.
        expect(editor).to_have_value(re.compile(r"version: 1"))
        text = editor.input_value()
        editor.fill(text.replace("version: 1", "version: 2", 1))
        editor.press("Control+Enter")
        page.get_by_text("Valid: general-pairwise v2").wait_for()
        wait_idle(page, 30_000)
        page.get_by_role("button", name="Save as new version").click()
        page.get_by_text(re.compile(r"Saved as general-pairwise-v2\.yaml")).wait_for()
        saved = rubric_folder / "general-pairwise-v2.yaml"
        assert "version: 2" in saved.read_text(encoding="utf-8")
        # Only dev was shown and compared: test has not been looked at.
        store = Store.open(module_workspace)
        try:
            assert rubric_iteration.test_look_count(store, "demo") == 0
        finally:
            store.close()
    except Exception:
        page.screenshot(path=str(module_workspace.parent / "failure.png"))
        print("screenshot:", module_workspace.parent / "failure.png")
        raise
    finally:
        context.close()
