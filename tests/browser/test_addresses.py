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
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(f"{server.url}/review?token={tokens['demo-reviewer']}")
    wait_for_pair(page)
    heading = page.get_by_role("heading", level=1, name="Which response is better?")
    assert heading.is_visible()
    assert page.get_by_text("Page not found").count() == 0
    shots = os.environ.get("REVIEW_APP_SCREENSHOTS")
    if shots:
        page.screenshot(path=str(Path(shots) / f"review-direct-{size[0]}.png"))
    page.close()


@pytest.mark.parametrize(("user", "screen"), [("demo-reviewer", "review"), ("demo-signer", "gate")])
def test_the_bare_address_lands_on_the_roles_screen_address(tokens, server, browser, user, screen):
    page = browser.new_page()
    page.goto(f"{server.url}/?token={tokens[user]}")
    page.wait_for_url(re.compile(rf"/{screen}\?token="))
    wait_idle(page)
    assert page.get_by_text("Page not found").count() == 0
    page.close()
