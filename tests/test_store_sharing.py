"""One store shared by every session of a server: reads never wait for another thread's write,
a transaction sees its own changes, a stuck writer surfaces as `Busy` (never "database is
locked"), connections are bounded, and page runs share the store instead of opening their own."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from review_app.errors import Busy
from review_app.services import review, workspace
from review_app.store import Store, connection
from review_app.store import base as store_base
from review_app.store.connection import driver_errors
from tests.review_fixtures import add_reviewer, make_study
from tests.test_review_page import press

pytestmark = pytest.mark.both_backends

APP_DIR = Path(__file__).resolve().parent.parent / "review_app"
REVIEW_PAGE = str(APP_DIR / "app_pages" / "review.py")
WRITES = ("BEGIN", "INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


class WriteLog:
    """Every write statement the store's one writer connection executes."""

    def __init__(self, store: Store):
        self.statements: list[str] = []
        store.db.trace(self._trace)

    def _trace(self, sql: str) -> None:
        if sql.lstrip().upper().startswith(WRITES):
            self.statements.append(sql)


def test_a_read_does_not_wait_for_another_threads_transaction(store):
    store_ready, release = threading.Event(), threading.Event()

    def writer():
        with store.transaction():
            store.catalog.ensure_eval_set("held")
            store_ready.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    store_ready.wait(10)
    started = time.monotonic()
    seen = [row["name"] for row in store.catalog.eval_sets()]
    waited = time.monotonic() - started
    release.set()
    thread.join()
    assert waited < 1
    assert seen == []  # the other thread's change is not committed yet
    assert [row["name"] for row in store.catalog.eval_sets()] == ["held"]


def test_a_transaction_reads_its_own_changes(store):
    with store.transaction():
        store.catalog.ensure_eval_set("mine")
        assert [row["name"] for row in store.catalog.eval_sets()] == ["mine"]
        assert store.catalog.eval_set("mine") is not None


def test_readers_are_bounded_and_reused(store):
    barrier = threading.Barrier(12)
    errors: list[BaseException] = []

    def read():
        try:
            barrier.wait(10)
            for _ in range(20):
                store.catalog.eval_sets()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store._opened_readers <= store_base.READERS
    before = open_files()
    for _ in range(50):
        store.catalog.eval_sets()
    assert open_files() == before


def test_readers_cannot_write(store):
    with store._reading() as reader, pytest.raises(driver_errors(), match="readonly|read-only"):
        reader.execute("INSERT INTO systems (name) VALUES ('x')")


def test_a_writer_held_up_too_long_gets_busy_in_domain_words(isolated_workspace, monkeypatch):
    monkeypatch.setattr(connection, "BUSY_TIMEOUT_S", 0.2)
    store = Store.open(isolated_workspace)
    other = connection.connect(str(isolated_workspace))
    other.begin_write()
    try:
        with pytest.raises(Busy, match="busy with other changes") as caught:
            with store.transaction():
                store.catalog.ensure_eval_set("late")
        assert "locked" not in str(caught.value)
    finally:
        other.rollback()
        other.close()
    with store.transaction():  # the store is usable again once the other writer is done
        store.catalog.ensure_eval_set("late")
    assert store.catalog.eval_set("late") is not None
    store.close()


def test_a_failed_commit_leaves_no_transaction_open(store, backend):
    if backend == "postgresql":
        pytest.skip("a commit that fails is made here with SQLite's deferred foreign keys")
    # A deferred foreign key fails at COMMIT; the store must roll back, not stay mid-transaction.
    with pytest.raises(sqlite3.IntegrityError):
        with store.transaction():
            store.db.execute("PRAGMA defer_foreign_keys = ON")
            store.db.execute(
                "INSERT INTO items (eval_set_id, item_key, prompt) VALUES (99, 'k', 'p')"
            )
    assert not store.db.in_transaction
    with store.transaction():
        store.catalog.ensure_eval_set("after")
    assert store.catalog.eval_set("after") is not None


def test_twenty_reviewers_share_one_store(store, settings, tmp_path):
    study = make_study(store, tmp_path, n_items=40, reviews_per_pair=2)
    ids = []
    for n in range(20):
        add_reviewer(store, settings, f"s{n:02d}")
        ids.append(store.people.reviewer(f"s{n:02d}")["id"])
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(ids))

    def vote_all(reviewer_id: int) -> None:
        try:
            barrier.wait(10)
            while (task := review.next_pair(store, settings, reviewer_id, study["id"])) is not None:
                review.record_vote(store, settings, reviewer_id, task.assignment_id, "A")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=vote_all, args=(rid,)) for rid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    history = store.review.vote_history(study["id"])
    assert len(history) == 40 * 2 * 2  # every pair of both comparisons, k = 2
    keys = [(v["item_key"], v["system_x"], v["system_y"], v["reviewer"]) for v in history]
    assert len(set(keys)) == len(keys)


# ---- the web app ----


def test_page_runs_share_one_store_and_open_no_files(store, settings, tmp_path):
    study = make_study(store, tmp_path)
    token = add_reviewer(store, settings, "rosa")
    at = AppTest.from_file(REVIEW_PAGE, default_timeout=30)
    at.query_params["token"] = token
    at.run()
    shared = workspace.shared_store(settings)
    before = open_files()
    for _ in range(5):
        press(at, "vote-A").click().run()
        assert not at.exception
        other = AppTest.from_file(REVIEW_PAGE, default_timeout=30)
        other.query_params["token"] = token
        other.run()
        assert not other.exception
    assert workspace.shared_store(settings) is shared
    assert open_files() <= before
    assert review.votes_done(store, store.people.reviewer("rosa")["id"], study["id"]) == 5


def test_showing_the_review_screen_again_writes_nothing(store, settings, tmp_path):
    make_study(store, tmp_path)
    token = add_reviewer(store, settings, "rosa")
    at = AppTest.from_file(REVIEW_PAGE, default_timeout=30)
    at.query_params["token"] = token
    at.run()
    log = WriteLog(workspace.shared_store(settings))
    at.run()  # a rerun: a reload, or any widget that is not a vote
    at.toggle(key="raw-text").set_value(True).run()
    assert not at.exception
    assert log.statements == []
    press(at, "vote-A").click().run()  # a vote writes (the vote, then the next lease)
    assert any(s.startswith("INSERT INTO votes") for s in log.statements)


@pytest.mark.parametrize("page", ["home", "results", "gate", "disagreements", "judge_runs"])
def test_opening_an_admin_screen_writes_nothing(demo_store, settings, page):
    token = demo_store.demo_links["demo-admin"].split("token=")[1]
    log = WriteLog(workspace.shared_store(settings))
    at = AppTest.from_file(str(APP_DIR / "app_pages" / f"{page}.py"), default_timeout=60)
    at.query_params["token"] = token
    at.run()
    assert not at.exception
    assert log.statements == []


def test_opening_the_calibration_screen_writes_one_look_then_nothing(demo_store, settings):
    """Before the lock the demo's imported judge's agreement is a recorded look: the first
    opening writes it, opening again (the same figures) writes nothing."""
    token = demo_store.demo_links["demo-admin"].split("token=")[1]
    at = AppTest.from_file(str(APP_DIR / "app_pages" / "calibration.py"), default_timeout=60)
    at.query_params["token"] = token
    at.run()
    assert not at.exception
    log = WriteLog(workspace.shared_store(settings))
    again = AppTest.from_file(str(APP_DIR / "app_pages" / "calibration.py"), default_timeout=60)
    again.query_params["token"] = token
    again.run()
    assert not again.exception
    assert log.statements == []


def test_a_reviewer_with_nothing_left_causes_no_write(store, settings, tmp_path):
    study = make_study(store, tmp_path, n_items=2, reviews_per_pair=1)
    add_reviewer(store, settings, "ada")
    rid = store.people.reviewer("ada")["id"]
    while (task := review.next_pair(store, settings, rid, study["id"])) is not None:
        review.record_vote(store, settings, rid, task.assignment_id, "tie")
    log = WriteLog(store)
    assert review.next_pair(store, settings, rid, study["id"]) is None
    assert log.statements == []


def test_the_lease_is_renewed_only_once_half_has_run_out(store, settings, tmp_path):
    study = make_study(store, tmp_path)
    add_reviewer(store, settings, "ada")
    rid = store.people.reviewer("ada")["id"]
    now = 1_000_000.0
    first = review.next_pair(store, settings, rid, study["id"], now=now)
    log = WriteLog(store)
    lease = settings.lease_minutes * 60
    again = review.next_pair(store, settings, rid, study["id"], now=now + lease * 0.4)
    assert again == first and log.statements == []
    later = review.next_pair(store, settings, rid, study["id"], now=now + lease * 0.6)
    assert later == first and log.statements
    held = store.review.open_assignments(rid, study["id"])[0]
    assert held["leased_until"] == pytest.approx(now + lease * 1.6)


def test_a_pair_taken_between_the_pick_and_the_lease_is_not_leased(store, settings, tmp_path):
    from review_app import assignment

    study = make_study(store, tmp_path, n_items=4, reviews_per_pair=1)
    for name in ("ada", "bo"):
        add_reviewer(store, settings, name)
    ada, bo = store.people.reviewer("ada")["id"], store.people.reviewer("bo")["id"]
    now = time.time()
    pick = assignment.pick_next(store, study, ada, settings.seed, now)
    # Meanwhile bo is handed that very pair (k = 1, so it is full).
    with store.transaction():
        store.review.insert_assignment(
            pick.candidate.pair_id,
            bo,
            study["id"],
            pick.candidate.comparison,
            0,
            now + 600,
        )
    with store.transaction():
        handed = assignment.claim_next(store, study, ada, settings.seed, now, now + 600, pick)
    assert store.review.assignment(handed)["pair_id"] != pick.candidate.pair_id


def test_a_write_outside_a_transaction_does_not_keep_the_workspace_locked(
    store, tmp_path, monkeypatch
):
    # Such a write is a mistake, but on the shared connection an implicit transaction left open
    # would block every other writer until something happened to commit it.
    store.catalog.ensure_systems(["stray"])
    monkeypatch.setattr(connection, "BUSY_TIMEOUT_S", 0.1)
    other = connection.connect(store.path)
    other.begin_write()
    other.rollback()
    other.close()
    assert not store.db.in_transaction


def test_a_workspace_held_by_another_writer_is_a_message_on_the_review_screen(
    store, settings, tmp_path, monkeypatch
):
    make_study(store, tmp_path)
    token = add_reviewer(store, settings, "rosa")
    monkeypatch.setattr(connection, "BUSY_TIMEOUT_S", 0.2)
    other = connection.connect(store.path)
    other.begin_write()  # e.g. another program writing for longer than the wait
    try:
        at = AppTest.from_file(REVIEW_PAGE, default_timeout=30)
        at.query_params["token"] = token
        at.run()
    finally:
        other.rollback()
        other.close()
    assert not at.exception
    assert "could not be handed to you" in at.warning[0].value
    assert "locked" not in at.warning[0].value
    at.button(key="retry").click().run()
    assert not at.exception and press(at, "vote-A")
