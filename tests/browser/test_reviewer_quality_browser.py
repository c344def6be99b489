"""Reviewer quality in a real browser: a hasty reviewer is flagged, the admin excludes them with a
reason through the screen, and the human ceiling on Calibration moves by exactly the amount the
statistics give without their votes; the admin screens fit a phone and name their tabs."""

from __future__ import annotations

import re

import pytest

from review_app import quality
from review_app.services import demo, people, review, thresholds
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import acting, person
from tests.browser.conftest import start_server, wait_idle

pytestmark = pytest.mark.browser

HASTY = "hasty-hugo"


@pytest.fixture(scope="module")
def tokens(module_workspace) -> dict[str, str]:
    """The demo plus a reviewer who voted "A is better" on 40 pairs at 2 s each."""
    store = Store.open(module_workspace)
    settings = Settings.from_env()
    links = demo.seed_demo(store, settings)
    hasty, _ = people.add_reviewer(
        store, settings, HASTY, "reviewer", demo.DEMO_STUDY, actor=person(store)
    )
    study_id = store.studies.require_study(demo.DEMO_STUDY)["id"]
    for _ in range(40):
        task = review.next_pair(store, settings, hasty["id"], study_id)
        review.record_vote(store, settings, hasty["id"], task.assignment_id, "A", ms_spent=2000)
    store.close()
    return {name: link.split("token=")[1] for name, link in links.items()}


@pytest.fixture(scope="module")
def server(module_workspace, tokens):
    yield from start_server(module_workspace)


def open_screen(browser, server, token: str, path: str, heading: str, size=(1440, 900)):
    page = browser.tab(viewport={"width": size[0], "height": size[1]})
    page.goto(f"{server.url}/{path}?token={token}")
    page.get_by_role("heading", name=heading, exact=True).wait_for()
    wait_idle(page)
    return page


def choose(page, key: str, option: str) -> None:
    """Pick `option` in the selectbox with widget key `key`, as a keyboard user would."""
    box = page.locator(f".st-key-{key} input")
    box.click()
    box.fill(option)
    box.press("Enter")
    wait_idle(page)


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]', has_text=label)
    return box.locator('[data-testid="stMetricValue"]').inner_text()


def test_excluding_a_hasty_reviewer_moves_the_ceiling_by_the_expected_amount(
    server, tokens, browser, module_workspace
):
    store = Store.open(module_workspace)
    study_id = store.studies.require_study(demo.DEMO_STUDY)["id"]
    votes = store.frames.votes_frame(study_id)
    store.close()
    everyone = quality.human_agreement_without_ties(votes).value
    without = quality.human_agreement_without_ties(votes[votes.reviewer != HASTY]).value
    assert round(everyone, 2) != round(without, 2)

    admin = tokens[demo.DEMO_ADMIN]
    page = open_screen(browser, server, admin, "calibration", "Calibration")
    assert metric(page, "Agreement w/o ties") == f"{everyone:.2f}"

    page.goto(f"{server.url}/quality?token={admin}")
    page.get_by_role("heading", name="Reviewer quality", exact=True).wait_for()
    wait_idle(page)
    assert page.title() == "Reviewer quality"
    # The ceiling with its interval: "0.580 [0.51, 0.65]".
    assert re.fullmatch(rf"{everyone:.3f} \[[0-9.]+, [0-9.]+\]", metric(page, "Human ceiling"))
    page.get_by_text(re.compile(rf"^{HASTY}: fast: median 2 s per vote")).wait_for()
    choose(page, "quality_target", HASTY)
    exclude = page.get_by_role("button", name=f"Exclude {HASTY}")
    exclude.wait_for()
    reason = page.get_by_role("textbox", name="Why? (required, recorded)")
    reason.fill("2 s per vote, always the left response")
    reason.press("Enter")
    wait_idle(page)
    exclude.click()
    page.get_by_role("button", name=f"Include {HASTY} again").wait_for()
    wait_idle(page)
    assert metric(page, "Human ceiling").startswith(f"{without:.3f} [")

    page.goto(f"{server.url}/calibration?token={admin}")
    page.get_by_role("heading", name="Calibration", exact=True).wait_for()
    wait_idle(page)
    assert metric(page, "Agreement w/o ties") == f"{without:.2f}"
    page.get_by_text(re.compile(rf"Left out of every figure .*: {HASTY}\.")).wait_for()

    store = Store.open(module_workspace)
    try:
        [decision] = store.quality.exclusion_history(study_id)
        assert (decision["reviewer"], decision["decided_by"], decision["reason"]) == (
            HASTY,
            demo.DEMO_ADMIN,
            "2 s per vote, always the left response",
        )
    finally:
        store.close()


@pytest.mark.parametrize(
    "path, heading",
    [("quality", "Reviewer quality"), ("data", "Upload data"), ("people", "Reviewers")],
)
def test_admin_screens_fit_a_phone_and_name_their_tab(server, tokens, browser, path, heading):
    page = open_screen(browser, server, tokens[demo.DEMO_ADMIN], path, heading, size=(390, 844))
    assert page.title() == heading
    width = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollWidth")
    assert width <= 390  # nothing pushes the page sideways
    assert page.locator('[data-testid="stException"]').count() == 0


def test_the_signer_lands_on_the_gate_and_gate_comes_before_results(server, tokens, browser):
    page = browser.tab(viewport={"width": 1440, "height": 900})
    page.goto(f"{server.url}/?token={tokens['demo-signer']}")
    page.get_by_role("heading", name="Gate", exact=True).wait_for()
    assert page.title() == "Gate"
    links = page.locator('[data-testid="stSidebarNavLink"]').all_inner_texts()
    names = [link.strip().splitlines()[-1] for link in links]  # after the icon's name
    assert names.index("Gate") < names.index("Results")


def test_the_results_chart_fits_a_phone_in_dark_mode(server, tokens, browser, module_workspace):
    store = Store.open(module_workspace)
    try:
        if store.gate.threshold_lock(store.studies.require_study(demo.DEMO_STUDY)["id"]) is None:
            thresholds.add_recommended_thresholds(acting(store, demo.DEMO_STUDY, "ada"))
            thresholds.lock_thresholds(acting(store, demo.DEMO_STUDY, "ada"), "a small test study")
    finally:
        store.close()
    page = browser.tab(viewport={"width": 390, "height": 844}, color_scheme="dark")
    page.goto(f"{server.url}/results?token={tokens[demo.DEMO_ADMIN]}")
    page.get_by_role("heading", name="Win rates").wait_for()
    wait_idle(page)
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    charts.first.locator("canvas, svg").first.wait_for()
    assert charts.count() == 2  # one per comparison, each as wide as the screen
    for box in (charts.nth(i).bounding_box() for i in range(charts.count())):
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
