"""Hostile names in a real browser: an admin and a signer walk every screen of a study whose names
are Markdown images pointing at attacker.example, opening every drop-down list; the browser
never asks that host for anything and the names show as typed."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from review_app.settings import Settings
from review_app.store import Store
from tests import hostile_names
from tests.browser.conftest import start_server, wait_idle

pytestmark = pytest.mark.browser

SCREENS = {
    "admin": (
        *("", "home", "data", "studies", "people", "quality", "judge", "calibration"),
        *("disagreements", "results", "gate", "items"),
    ),
    "signer": ("gate", "results", "items"),
}


@pytest.fixture(scope="module")
def workspace(module_workspace, tmp_path_factory):
    store = Store.open(module_workspace)
    try:
        return hostile_names.build(store, Settings.from_env(), tmp_path_factory.mktemp("data"))
    finally:
        store.close()


@pytest.fixture(scope="module")
def server(module_workspace, workspace):
    yield from start_server(module_workspace)


@pytest.mark.parametrize("who", SCREENS)
def test_no_screen_fetches_anything_a_name_points_at(server, workspace, browser, who):
    """Up to 30 s and more on a busy machine: it opens every screen `who` may see, each a full
    page load and script run, since any of them could fetch what a hostile name points at."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        for screen in SCREENS[who]:
            page.goto(f"{server.url}/{screen}?token={workspace[who]}")
            page.get_by_text(hostile_names.HOST).first.wait_for()
            wait_idle(page)
            lists = page.locator('[data-baseweb="select"]')
            for i in range(lists.count()):
                lists.nth(i).click()
                page.wait_for_timeout(200)
                page.keyboard.press("Escape")
            # The names show as typed, Markdown source and all.
            assert f"](//{hostile_names.HOST}/" in page.locator("body").inner_text(), screen
            outside = [url for url in requests if urlparse(url).hostname not in ("127.0.0.1",)]
            assert outside == [], screen
        assert page.locator("img[src*='attacker']").count() == 0
    finally:
        context.close()
