"""What a visitor sees when the served app fails: a generic message, never a traceback (which
names files, queries and data), whether or not they hold a valid link."""

from __future__ import annotations

import sqlite3

import pytest

from review_app.store import Store
from tests.browser.conftest import start_server, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def broken_workspace(module_workspace):
    """A workspace whose reviewers table is gone, so checking any link raises an uncaught
    sqlite3 error inside the page."""
    Store.open(module_workspace).close()
    conn = sqlite3.connect(module_workspace)
    conn.execute("DROP TABLE reviewers")
    conn.commit()
    conn.close()
    return module_workspace


@pytest.fixture(scope="module")
def server(broken_workspace):
    yield from start_server(broken_workspace)


def test_an_exception_shows_no_traceback_to_a_visitor(server, browser):
    page = browser.new_page()
    try:
        page.goto(server.link("not-a-real-token"))
        error = page.locator('[data-testid="stException"]')
        error.wait_for()
        wait_idle(page)
        text = page.locator("body").inner_text()
        assert "error" in error.inner_text().lower()  # the failure is visible, its details not
        for detail in ("Traceback", "no such table", "OperationalError", "reviewers", ".py"):
            assert detail not in text, detail
    finally:
        page.close()
