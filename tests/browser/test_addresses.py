"""Every screen has its own address, the landing one included: /review opened directly shows
the review screen (not "Page not found"), and the bare address takes each role to its screen
under that address. The review screen's heading is the page's H1."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from review_app.services import demo
from review_app.settings import Settings
from review_app.store import Store
from tests.browser.conftest import start_server, wait_for_pair, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def tokens(module_workspace) -> dict[str, str]:
    store = Store.open(module_workspace)
    links = demo.seed_demo(store, Settings.from_env())
    store.close()
    return {name: link.split("token=")[1] for name, link in links.items()}


@pytest.fixture(scope="module")
def server(module_workspace, tokens):
    yield from start_server(module_workspace)


@pytest.mark.parametrize("size", [(1400, 1000), (390, 844)], ids=["wide", "phone"])
def test_review_opened_directly_is_the_review_screen(tokens, server, browser, size):
    page = browser.tab(viewport={"width": size[0], "height": size[1]})
    page.goto(f"{server.url}/review?token={tokens['demo-reviewer']}")
    wait_for_pair(page)
    heading = page.get_by_role("heading", level=1, name="Which response is better?")
    assert heading.is_visible()
    assert page.get_by_text("Page not found").count() == 0
    shots = os.environ.get("REVIEW_APP_SCREENSHOTS")
    if shots:
        page.screenshot(path=str(Path(shots) / f"review-direct-{size[0]}.png"))


@pytest.mark.parametrize(("user", "screen"), [("demo-reviewer", "review"), ("demo-signer", "gate")])
def test_the_bare_address_lands_on_the_roles_screen_address(tokens, server, browser, user, screen):
    page = browser.tab()
    page.goto(f"{server.url}/?token={tokens[user]}")
    page.wait_for_url(re.compile(rf"/{screen}\?token="))
    wait_idle(page)
    assert page.get_by_text("Page not found").count() == 0


def test_question_mark_shows_every_key(tokens, server, browser):
    page = browser.tab(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server.url}/review?token={tokens['demo-reviewer']}")
    wait_for_pair(page)
    panel = page.locator("#review-keys-help")
    assert not panel.is_visible()
    page.keyboard.press("?")
    panel.wait_for(state="visible")
    assert "Undo your last vote" in panel.inner_text() and "Backspace" in panel.inner_text()
    shots = os.environ.get("REVIEW_APP_SCREENSHOTS")
    if shots:
        page.screenshot(path=str(Path(shots) / "review-keys-help.png"))
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")


def test_on_a_phone_the_vote_buttons_sit_three_to_a_row_and_no_key_legend(tokens, server, browser):
    page = browser.tab(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(f"{server.url}/review?token={tokens['demo-reviewer']}")
    wait_for_pair(page)
    names = ("A is better", "B is better", "Tie", "Both bad", "Skip", "Undo last vote")
    rows = {round(page.get_by_role("button", name=n).bounding_box()["y"]) for n in names}
    assert len(rows) == 2
    assert not page.get_by_text(re.compile(r"^Keys: ")).is_visible()
    shots = os.environ.get("REVIEW_APP_SCREENSHOTS")
    if shots:
        page.get_by_role("button", name="A is better").scroll_into_view_if_needed()
        page.screenshot(path=str(Path(shots) / "review-phone-buttons.png"))
