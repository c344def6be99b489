"""Shared fixtures: every test gets its own workspace file under tmp_path (never ./review.db)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from review_app.services import demo, workspace
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import token_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    import os

    # The suite runs on several processes (pytest-xdist, `--dist loadgroup`). A browser module
    # shares one app server and one chromium among its tests (module fixtures), so each module
    # runs whole on one process rather than starting them again on another.
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
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
    # Links and the server's address come from these; a value in the shell must not leak in.
    for name in (
        "REVIEW_APP_PUBLIC_URL",
        "REVIEW_APP_HOST",
        "REVIEW_APP_PORT",
        "REVIEW_APP_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
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


# Seeded demo workspaces of this process, by the settings they were seeded with: (file, links).
_DEMO_TEMPLATES: dict[Settings, tuple[Path, dict[str, str]]] = {}


def _demo_template(settings: Settings, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The demo workspace seeded with `settings`, once per test process, in a file of its own
    that no test opens: tests get copies of it."""
    key = replace(settings, db=Path("demo-template.db"))
    if key not in _DEMO_TEMPLATES:
        path = tmp_path_factory.mktemp("demo-template") / "workspace.db"
        seeding = Store.open(path)
        try:
            links = demo.seed_demo(seeding, replace(settings, db=path))
        finally:
            seeding.close()  # the last connection: the write-ahead log is folded into the file
        _DEMO_TEMPLATES[key] = (path, links)
    return _DEMO_TEMPLATES[key]


@pytest.fixture
def demo_store(isolated_workspace, settings, request, tmp_path_factory):
    """The demo workspace; `store.demo_links` holds its personal links by demo user name.

    Seeding takes about a second and hundreds of tests start from it, so it is seeded once per
    test process and each test gets its own copy of the file (what seed_demo writes does not
    depend on the file's path). A test whose workspace was opened before this fixture (it asked
    for `store` first) is seeded in place."""
    if not isolated_workspace.exists():
        template, links = _demo_template(settings, tmp_path_factory)
        shutil.copyfile(template, isolated_workspace)
        store = request.getfixturevalue("store")
        store.demo_links = dict(links)
        return store
    store = request.getfixturevalue("store")
    store.demo_links = demo.seed_demo(store, settings)
    return store


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
