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
from tests.postgres import Cluster

ROOT = Path(__file__).resolve().parent.parent


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    import os

    # The suite runs on several processes (pytest-xdist, `--dist loadgroup`). A browser module
    # shares one app server and one chromium among its tests (module fixtures), so each module
    # runs whole on one process rather than starting them again on another.
    # A module may split itself into groups of its own (marked xdist_group).
    for item in items:
        if "browser" in item.keywords and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    if os.environ.get("REVIEW_APP_LIVE_API") == "1":
        return
    skip = pytest.mark.skip(reason="live-API test: set REVIEW_APP_LIVE_API=1 to run")
    for item in items:
        if "api" in item.keywords:
            item.add_marker(skip)


def pytest_collection_finish(session):
    # On a test process of `--dist loadgroup`, a test of a group carries its group in its node
    # id ("...@group"): without it the group's tests are spread over the processes, each
    # starting the group's module fixtures (a server, a browser) again, and tests written to
    # run in order on one process no longer do.
    if not getattr(session.config.option, "loadgroup", False):
        return
    grouped = [item for item in session.items if item.get_closest_marker("xdist_group")]
    if grouped and not any("@" in item.nodeid for item in grouped):
        raise pytest.UsageError(
            f"pytest {pytest.__version__} and this pytest-xdist do not group tests marked "
            "xdist_group (install the versions pyproject.toml asks for)"
        )


def pytest_generate_tests(metafunc):
    # A module marked `both_backends` runs each of its tests on SQLite and on PostgreSQL.
    if metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session", autouse=True)
def installed_components_scanned_once():
    """Streamlit's AppTest looks through every installed package for components when it first
    runs an app: 0.16 s of CPU for each of the suite's hundreds of apps. The packages do not
    change while the tests run, so the first look's answer serves every later one."""
    from streamlit.components.v2 import manifest_scanner

    found = manifest_scanner.scan_component_manifests()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manifest_scanner, "scan_component_manifests", lambda *args, **kw: found)
        yield


@pytest.fixture(scope="session")
def postgres_cluster():
    cluster = Cluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def backend(request) -> str:
    """The database a test's workspace lives in: "sqlite" unless its module is marked
    `both_backends`, which runs it on "postgresql" too."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def postgres(backend, request):
    """The throwaway PostgreSQL server, for a test running on it (skipped, saying why, when
    none can be started here)."""
    cluster = request.getfixturevalue("postgres_cluster")
    if cluster.url is None:
        pytest.skip(f"PostgreSQL tests skipped: {cluster.reason}")
    return cluster


def _migrate(url: str) -> None:
    Store.open(url).close()


@pytest.fixture(autouse=True)
def isolated_workspace(tmp_path, monkeypatch, backend, request):
    """Point the app's one workspace variable at a workspace of this test's own: a file under
    tmp_path, or a new PostgreSQL database, so no test touches real files or another's data."""
    if backend == "postgresql":
        cluster = request.getfixturevalue("postgres")
        if "demo_store" in request.fixturenames:
            # Created once, by demo_store (a copy of the seeded demo) or by `store` asked for
            # first: a copy made and dropped unused costs the server about 0.1 s of CPU.
            db = cluster.new_url()
        else:
            # A copy of a migrated workspace: what Store.open makes of a new database, in a
            # tenth of the time.
            db = cluster.database(template=cluster.template("migrated", _migrate))
        # The files a database workspace keeps beside it (rubrics, the demo's links) go in
        # the current folder: this test's own.
        monkeypatch.chdir(tmp_path)
    else:
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
    # Pages share one store per workspace (as a server would); close this test's.
    workspace.close_shared_stores()
    if backend == "postgresql":
        cluster.drop(db)


@pytest.fixture
def settings(isolated_workspace) -> Settings:
    return Settings.from_env()


# A new workspace file as Store.open makes it (migrated, in WAL mode), once per test process.
_MIGRATED_FILE: list[Path] = []


def _start_from_migrated(db, tmp_path_factory, request) -> None:
    """Make a test's SQLite workspace, not created yet, a copy of a migrated one: a copy costs
    a tenth of the CPU of migrating a new file (0.002 s against 0.02 s), and the copy is made
    by Store.open of a new file in this same process, so a fault in creating or migrating one
    still fails every test. A test that creates its workspace itself (without the `store` or
    `cli_admin` fixture) still has Store.open do it. A PostgreSQL workspace left for
    demo_store to create is created here when the test opens it first."""
    if not isinstance(db, Path):
        cluster = request.getfixturevalue("postgres")
        if not cluster.exists(db):
            cluster.database(template=cluster.template("migrated", _migrate), url=db)
        return
    if db.exists():
        return
    if not _MIGRATED_FILE:
        path = tmp_path_factory.mktemp("migrated-template") / "workspace.db"
        Store.open(path).close()  # the last connection: the write-ahead log is folded in
        _MIGRATED_FILE.append(path)
    shutil.copyfile(_MIGRATED_FILE[0], db)


@pytest.fixture
def store(isolated_workspace, tmp_path_factory, request):
    _start_from_migrated(isolated_workspace, tmp_path_factory, request)
    s = Store.open(isolated_workspace)
    yield s
    s.close()


@pytest.fixture
def cli_admin(isolated_workspace, monkeypatch, tmp_path_factory, request) -> str:
    """An admin of the test's workspace whose token every CLI command of the test passes (as
    REVIEW_APP_TOKEN); returns the token."""
    _start_from_migrated(isolated_workspace, tmp_path_factory, request)
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


def _demo_database(cluster: Cluster, settings: Settings) -> tuple[str, dict[str, str]]:
    """The demo workspace seeded with `settings` in a template database, once per test process."""
    links: dict[str, str] = {}

    def seed(url: str) -> None:
        seeding = Store.open(url)
        try:
            links.update(demo.seed_demo(seeding, replace(settings, db=url)))
        finally:
            seeding.close()

    key = f"demo-{hash(replace(settings, db='demo-template'))}"
    name = cluster.template(key, seed)
    if links:
        _DEMO_LINKS[key] = links
    return name, _DEMO_LINKS[key]


_DEMO_LINKS: dict[str, dict[str, str]] = {}


@pytest.fixture
def demo_store(isolated_workspace, settings, request, tmp_path_factory, backend):
    """The demo workspace; `store.demo_links` holds its personal links by demo user name.

    Seeding takes about a second and hundreds of tests start from it, so it is seeded once per
    test process and each test gets its own copy of the file (what seed_demo writes does not
    depend on the file's path). A test whose workspace was opened before this fixture (it asked
    for `store` first) is seeded in place."""
    if backend == "postgresql":
        cluster = request.getfixturevalue("postgres")
        if cluster.exists(isolated_workspace):  # the test opened its workspace first
            store = request.getfixturevalue("store")
            store.demo_links = demo.seed_demo(store, settings)
            return store
        template, links = _demo_database(cluster, settings)
        cluster.database(template=template, url=isolated_workspace)
        store = request.getfixturevalue("store")
        store.demo_links = dict(links)
        return store
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
