"""The Scorecard screen in a real browser: on a study over the demo eval set where three
reviewers voted in the app and rated every output on three criteria, and on the demo study
itself (imported votes with ratings, graders, a judge). With REVIEW_APP_UPDATE_DOCS=1 it also
redraws docs/scorecard.png from the demo."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from review_app import gate
from review_app.services import demo, people, review, studies, thresholds
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import acting, person
from tests.browser.conftest import photograph, start_server, wait_drawn

DOCS = Path(__file__).resolve().parents[2] / "docs"
STUDY = "launch-review"
# How good each system is on each criterion (1-5), and on the whole (logit scale).
QUALITY = {
    "base": {"accuracy": 3.0, "tone": 2.6, "format": 2.2},
    "finetuned": {"accuracy": 4.0, "tone": 4.3, "format": 4.5},
    "frontier": {"accuracy": 4.5, "tone": 4.0, "format": 4.1},
}
STRENGTH = {"base": -0.8, "finetuned": 0.3, "frontier": 0.6}


def seed_rated_study(store: Store, settings: Settings) -> dict[str, str]:
    """The demo eval set, a study of finetuned vs base and vs frontier, three reviewers who
    vote on every pair in the app with 1-5 ratings, and locked thresholds; returns links."""
    rng = np.random.default_rng(3)
    demo.seed_demo(store, settings)
    studies.create_study(
        store,
        STUDY,
        demo.DEMO_EVAL_SET,
        [("finetuned", "base"), ("finetuned", "frontier")],
        reviews_per_pair=3,
        criteria=list(QUALITY["base"]),
        actor=person(store),
    )
    study_id = store.studies.require_study(STUDY)["id"]
    for name in ("rosa", "omar", "lena"):
        reviewer, _ = people.add_reviewer(
            store, settings, name, "reviewer", STUDY, actor=person(store)
        )
        while (task := review.next_pair(store, settings, reviewer["id"], study_id)) is not None:
            handed = store.review.assignment(task.assignment_id)
            left, right = handed["shown_left"], handed["shown_right"]
            gap = STRENGTH[left] - STRENGTH[right]
            u = rng.random()
            p_left = 1 / (1 + np.exp(-2 * gap))
            choice = "tie" if u < 0.12 else "A" if rng.random() < p_left else "B"
            ratings = {
                criterion: {
                    side: int(np.clip(round(QUALITY[system][criterion] + rng.normal(0, 0.7)), 1, 5))
                    for side, system in (("A", left), ("B", right))
                }
                for criterion in QUALITY["base"]
            }
            review.record_vote(
                store, settings, reviewer["id"], task.assignment_id, choice, criteria=ratings
            )
    admin, link = people.add_reviewer(store, settings, "ada", "admin", STUDY, actor=person(store))
    thresholds.add_threshold(
        acting(store, STUDY, admin["name"]),
        gate.REGRESSION_METRIC,
        {"system_a": "finetuned", "system_b": "base", "source": "humans"},
        "<=",
        5.0,
    )
    thresholds.lock_thresholds(
        acting(store, STUDY, admin["name"], settings=settings), "a small test study"
    )
    thresholds.add_recommended_thresholds(acting(store, demo.DEMO_STUDY, admin["name"]))
    thresholds.lock_thresholds(
        acting(store, demo.DEMO_STUDY, admin["name"], settings=settings), "a small test study"
    )
    return {"ada": link.split("token=")[1]}


@pytest.fixture(scope="module")
def rated_workspace(module_workspace):
    store = Store.open(module_workspace)
    try:
        tokens = seed_rated_study(store, replace(Settings.from_env(), db=module_workspace))
    finally:
        store.close()
    return module_workspace, tokens


@pytest.fixture(scope="module")
def server(rated_workspace):
    yield from start_server(rated_workspace[0])


def test_the_scorecard_reads_like_one_table_per_system(rated_workspace, server, browser):
    token = rated_workspace[1]["ada"]
    page = browser.tab(viewport={"width": 1400, "height": 2200})
    page.goto(f"{server.url}/scorecard?token={token}")
    page.get_by_role("heading", name="Scorecard", exact=True).wait_for()
    # The newest study is selected first.
    assert page.locator(".st-key-study_picker input").input_value() == STUDY
    page.get_by_role("heading", name="Ranking").wait_for()
    page.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
    wait_drawn(page)
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert "Regression table: finetuned vs base" in text
    assert "as a share of frontier" in text


def test_the_demo_scorecard_shows_graders_criteria_and_three_systems(
    rated_workspace, server, browser
):
    token = rated_workspace[1]["ada"]
    page = browser.tab(viewport={"width": 1400, "height": 2000})
    page.goto(f"{server.url}/scorecard?token={token}")
    picker = page.locator(".st-key-study_picker input")
    picker.wait_for()
    picker.click()
    page.keyboard.type(demo.DEMO_STUDY)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Ranking").wait_for()
    page.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
    wait_drawn(page)
    assert picker.input_value() == demo.DEMO_STUDY
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert "Regression table: finetuned vs base" in text
    # The candidate's ratings as a share of the best other system's: a third system is there.
    assert "finetuned as a share of frontier: accuracy (humans)" in text
    photograph(page, "scorecard.png", full_page=True)
    if os.environ.get("REVIEW_APP_UPDATE_DOCS") == "1":
        page.screenshot(path=str(DOCS / "scorecard.png"), full_page=True)
