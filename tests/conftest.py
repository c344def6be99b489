"""Shared fixtures: every test gets its own workspace file under tmp_path (never ./review.db)."""

from __future__ import annotations

from pathlib import Path

import pytest

from review_app.services import demo, workspace
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import token_for

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    import os

    if os.environ.get("REVIEW_APP_LIVE_API") == "1":
        return
    skip = pytest.mark.skip(reason="live-API test: set REVIEW_APP_LIVE_API=1 to run")
    for item in items:
        if "api" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_workspace(tmp_path, monkeypatch):
    """Point the app's one workspace variable at tmp_path so no test touches real files."""
    db = tmp_path / "workspace.db"
    monkeypatch.setenv("REVIEW_APP_DB", str(db))
    yield db
    # Pages share one store per workspace file (as a server would); close this test's.
    workspace.close_shared_stores()


@pytest.fixture
def settings(isolated_workspace) -> Settings:
    return Settings.from_env()


@pytest.fixture
def store(isolated_workspace):
    s = Store.open(isolated_workspace)
    yield s
    s.close()


@pytest.fixture
def cli_admin(isolated_workspace, monkeypatch) -> str:
    """An admin of the test's workspace whose token every CLI command of the test passes (as
    REVIEW_APP_TOKEN); returns the token."""
    store = Store.open(isolated_workspace)
    try:
        token = token_for(store, "admin", "admin")
    finally:
        store.close()
    monkeypatch.setenv("REVIEW_APP_TOKEN", token)
    return token


@pytest.fixture
def demo_store(store, settings):
    """The demo workspace; `store.demo_links` holds fresh personal links by demo user name."""
    store.demo_links = demo.seed_demo(store, settings)
    return store


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
