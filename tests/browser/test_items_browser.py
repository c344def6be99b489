"""The Items screen in a real browser, on the demo, at a wide and a phone-sized window: the
search narrows the list, outputs are rendered as on the review screen, nothing overflows the
window sideways, and nothing on it is an outcome until the thresholds are locked. With
REVIEW_APP_SCREENSHOTS=DIR screenshots are taken and kept in DIR."""

from __future__ import annotations

from dataclasses import replace

import pytest
from playwright.sync_api import expect

from review_app.services import demo
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import lock_on_win_rate
from tests.browser.conftest import photograph, start_server, wait_idle

pytestmark = pytest.mark.browser

SIZES = {"wide": (1400, 1000), "phone": (390, 844)}
# Outcomes the demo has (a judge's name, its graders' failures, the reviewers' names).
OUTCOMES = ("example-llm-judge", "Failed", "Disagreement", "example-ana")


@pytest.fixture(scope="module")
def links(module_workspace):
    store = Store.open(module_workspace)
    try:
        links = demo.seed_demo(store, replace(Settings.from_env(), db=module_workspace))
    finally:
        store.close()
    return {name: link.split("token=")[1] for name, link in links.items()}


@pytest.fixture(scope="module")
def server(module_workspace, links):
    yield from start_server(module_workspace)


def open_items(browser, server, token: str, size: str):
    width, height = SIZES[size]
    page = browser.tab(viewport={"width": width, "height": height})
    page.goto(f"{server.url}/items?token={token}")
    page.get_by_role("heading", name="Items", exact=True).wait_for()
    wait_drawn(page)
    return page


def wait_drawn(page) -> None:
    """Wait until the script run is over and the page is drawn to its end (the page buttons
    below the last item), the first item's prompt in place of its placeholder."""
    wait_idle(page)
    page.get_by_role("button", name="Next page").wait_for()
    page.locator(".review-output").first.wait_for(state="visible")


def search(page, text: str) -> None:
    box = page.get_by_label("Search prompts and outputs")
    box.fill(text)
    box.press("Enter")
    page.get_by_text("1 item", exact=False).first.wait_for()
    wait_drawn(page)


def overflow(page) -> int:
    """How far the page is wider than the window (0 when nothing overflows sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


@pytest.mark.parametrize("size", SIZES)
def test_before_the_lock_the_items_show_outputs_and_no_outcome(links, server, browser, size):
    page = open_items(browser, server, links["demo-signer"], size)
    main = page.locator('[data-testid="stMain"]')
    assert "Until the study's thresholds are locked" in main.inner_text()
    photograph(page, f"items-{size}.png")
    assert overflow(page) <= 0
    search(page, "maya")
    text = main.inner_text()
    assert "1 item, 3 outputs" in text and "support-001" in text
    # The prompt and three outputs, and the reference answer inside its expander.
    outside = page.locator(".review-output").count()
    assert outside - page.locator('[data-testid="stExpander"] .review-output').count() == 4
    for outcome in OUTCOMES:
        assert outcome not in text
    assert page.get_by_label("Grader check").count() == 0
    photograph(page, f"items-search-{size}.png", full_page=True)
    assert overflow(page) <= 0


@pytest.mark.parametrize("size", SIZES)
def test_after_the_lock_failed_checks_and_disagreements_show(
    module_workspace, links, server, browser, size
):
    store = Store.open(module_workspace)
    try:
        if store.gate.threshold_lock(store.studies.require_study("demo")["id"]) is None:
            lock_on_win_rate(store, replace(Settings.from_env(), db=module_workspace))
    finally:
        store.close()
    page = open_items(browser, server, links["demo-admin"], size)
    main = page.locator('[data-testid="stMain"]')
    page.get_by_text("Failed: ", exact=False).first.wait_for()
    page.get_by_text("Filters: category, system, length", exact=False).click()
    # The filters open by animating their height. A select clicked meanwhile is scrolled into
    # view as its box still moves, and its list, which closes when the page scrolls under it,
    # closed as soon as it opened: wait until the animation is over.
    page.wait_for_function(
        "() => document.getAnimations().every((a) => a.playState !== 'running')", polling=100
    )
    # The select lists its options as its text changes: type the choice's name, then wait for
    # that option to be listed and click it (pressing Enter before the list opened chose
    # nothing under load).
    judge = page.get_by_role("combobox", name="Disagrees with the human majority")
    judge.click()
    judge.press_sequentially("any judge")
    expect(judge).to_have_attribute("aria-expanded", "true")
    page.get_by_role("option", name="any judge", exact=True).click()
    # The comparisons on which the demo's judge and the human majority differ.
    page.get_by_text("20 items", exact=True).wait_for()
    wait_drawn(page)
    assert "example-llm-judge chose" in main.inner_text()
    photograph(page, f"items-locked-{size}.png")
    assert overflow(page) <= 0


def test_an_admin_sidebar_lists_every_screen(links, server, browser):
    page = open_items(browser, server, links["demo-admin"], "wide")
    links_shown = page.locator('[data-testid="stSidebarNavLink"]')
    # A link's text is its icon's name, then its title.
    titles = [links_shown.nth(i).inner_text().split()[-1] for i in range(links_shown.count())]
    assert titles[-3:] == ["Results", "Scorecard", "Items"]
    assert all(links_shown.nth(i).is_visible() for i in range(links_shown.count()))
    assert page.get_by_text("View 3 more").count() == 0
