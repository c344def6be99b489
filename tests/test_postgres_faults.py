"""A PostgreSQL workspace when things go wrong: a database that cannot be reached or is of a
newer schema is one line and nothing written; the server restarted under a running store is
reconnected to; a process killed in the middle of a change leaves nothing half-written and
nobody waiting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from review_app.errors import Unreachable, UnusableWorkspace
from review_app.store import Store
from review_app.store.connection import connect
from tests.review_fixtures import make_study

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def url(postgres):
    location = postgres.database(template=postgres.template("migrated", _migrate))
    yield location
    postgres.drop(location)


def _migrate(location: str) -> None:
    Store.open(location).close()


def test_a_database_that_cannot_be_reached_is_one_line(postgres):
    for location, says in (
        ("postgresql://postgres@127.0.0.1:1/none", "cannot connect"),
        (f"{postgres.url}/no_such_database", 'database "no_such_database" does not exist'),
        (postgres.url.replace("postgres@", "nobody:secret@") + "/postgres", "cannot connect"),
    ):
        with pytest.raises(UnusableWorkspace) as caught:
            Store.open(location)
        message = str(caught.value)
        assert says in message and "\n" not in message and "secret" not in message


def test_a_database_of_a_newer_schema_is_refused_before_anything_is_written(url):
    store = Store.open(url)
    with store.transaction():
        store.db.execute(
            "INSERT INTO _migrations (version, name, applied_at) VALUES (999, 'future', 'x')"
        )
    counts = store.table_counts()
    store.close()
    with pytest.raises(UnusableWorkspace, match="schema version 999, newer than this"):
        Store.open(url)
    raw = connect(url)  # the refusal wrote nothing
    try:
        assert (
            raw.execute("SELECT count(*) FROM _migrations").fetchone()[0] == counts["_migrations"]
        )
    finally:
        raw.close()


def test_a_store_carries_on_after_the_database_restarts(postgres, url, tmp_path):
    store = Store.open(url)
    store.open_readers()
    try:
        study = make_study(store, tmp_path, n_items=4)
        postgres.restart()
        # Reads reconnect on their own; so does the next write.
        assert store.studies.require_study(study["name"])["id"] == study["id"]
        with store.transaction():
            store.catalog.ensure_eval_set("after-restart")
        assert store.catalog.eval_set("after-restart") is not None
    finally:
        store.close()


def test_a_change_cut_off_by_a_restart_is_lost_whole_and_says_so(postgres, url):
    store = Store.open(url)
    try:
        with pytest.raises(Unreachable, match="nothing was saved, try again"):
            with store.transaction():
                store.catalog.ensure_eval_set("half")
                postgres.restart()
                store.catalog.ensure_eval_set("other half")
        assert store.catalog.eval_set("half") is None
        with store.transaction():
            store.catalog.ensure_eval_set("whole")
        assert store.catalog.eval_set("whole") is not None
    finally:
        store.close()


def test_a_process_killed_mid_change_leaves_nothing_and_holds_nothing(url):
    script = (
        "import sys, time\n"
        "from review_app.store import Store\n"
        "store = Store.open(sys.argv[1])\n"
        "with store.transaction():\n"
        "    store.catalog.ensure_eval_set('killed')\n"
        "    print('inside', flush=True)\n"
        "    time.sleep(600)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, url], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert process.stdout.readline().strip() == "inside"  # the change is under way
        process.kill()
        process.wait()
    finally:
        process.kill()
    store = Store.open(url)
    try:
        assert store.catalog.eval_set("killed") is None
        with store.transaction():  # the killed writer's lock went with its connection
            store.catalog.ensure_eval_set("next")
        assert store.catalog.eval_set("next") is not None
    finally:
        store.close()
