"""Imports that never stall reviewers: rows are checked and staged out of sight, then published in
short transactions. A failed or interrupted check leaves nothing behind; an import interrupted
after every row passed is finished by the next one; other imports and study creation wait."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from review_app import importers
from review_app.errors import Conflict
from review_app.services import data, review, studies
from review_app.store import Store, import_lock
from review_app.store.connection import connect, driver_errors
from tests.acting import person, token_for
from tests.review_fixtures import add_reviewer, make_study

pytestmark = pytest.mark.both_backends

ROOT = Path(__file__).resolve().parent.parent


def write_outputs(path: Path, rows: int, eval_prefix: str = "bulk") -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for n in range(rows):
            row = {
                "item_id": f"{eval_prefix}-{n // 2:06d}",
                "prompt": f"Bulk question {n // 2}: how do I reset the hub?",
                "system": ("bulk-a", "bulk-b")[n % 2],
                "output": f"Answer {n}: hold the button for ten seconds, then wait. " * 4,
            }
            handle.write(json.dumps(row) + "\n")
    return path


def cli_import(db: Path, source: Path, eval_set: str = "bulk") -> subprocess.Popen:
    """`review-app import outputs` in a process of its own, as a user (an admin) would run it."""
    store = Store.open(db)
    try:
        token = token_for(store, "importer")
    finally:
        store.close()
    return subprocess.Popen(
        [sys.executable, "-m", "review_app.cli", "--db", str(db), "--token", token]
        + ["import", "outputs", str(source), "--eval-set", eval_set],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def kill_when(db: Path, process: subprocess.Popen, state: str, min_batches: int = 1) -> None:
    """SIGKILL `process` once its import is in `state` with at least `min_batches` staged."""
    watcher = connect(str(db))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, "the import ended before it could be interrupted"
            try:
                row = watcher.execute(
                    "SELECT j.state, (SELECT count(*) FROM import_batches b WHERE b.job_id = j.id)"
                    " FROM import_jobs j"
                ).fetchone()
            except driver_errors():  # the workspace is still being created
                row = None
            if row and row[0] == state and row[1] >= min_batches:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return
            time.sleep(0.002)
        raise AssertionError(f"the import never reached {state!r}")
    finally:
        watcher.close()


def test_reviewers_vote_without_waiting_while_a_large_import_runs(
    store, settings, tmp_path, isolated_workspace, record_property
):
    """Votes go through while rows are checked and while they are published: many votes start
    and end within each phase. An import that held the workspace's write lock for a whole phase
    would let at most the one vote it blocked end there. How long a vote waits is a figure of
    the load benchmark (`max_vote_wait_during_import_ms`, target 1 s), not of this test: on a
    shared machine a time bound here fails for the machine's load, not the import's."""
    study = make_study(store, tmp_path, n_items=300, reviews_per_pair=3)
    names = [f"r{n}" for n in range(4)]
    for name in names:
        add_reviewer(store, settings, name)
    ids = [store.people.reviewer(name)["id"] for name in names]
    source = write_outputs(tmp_path / "bulk.jsonl", 40_000)
    process = cli_import(isolated_workspace, source)

    def phase() -> str | None:
        jobs = store.imports.import_jobs()
        return jobs[0]["state"] if jobs else None

    within = {"staging": 0, "publishing": 0}
    waits = []
    while process.poll() is None:
        reviewer_id = ids[len(waits) % len(ids)]
        before = phase()
        started = time.monotonic()
        task = review.next_pair(store, settings, reviewer_id, study["id"])
        review.record_vote(store, settings, reviewer_id, task.assignment_id, "A")
        waits.append(time.monotonic() - started)
        if before in within and phase() == before:
            within[before] += 1
        time.sleep(0.02)
    out, err = process.communicate()
    assert process.returncode == 0, err
    assert "40000 outputs added" in out
    record_property("max_vote_wait_s", round(max(waits), 3))  # in --junitxml reports
    assert within["staging"] >= 3 and within["publishing"] >= 3, within
    assert store.table_counts()["import_jobs"] == 0


def test_an_import_killed_while_checking_leaves_nothing_behind(store, tmp_path, isolated_workspace):
    make_study(store, tmp_path)
    person(store, "importer")  # the admin the import acts as is not the import's to undo
    before = store.table_counts()
    process = cli_import(isolated_workspace, write_outputs(tmp_path / "bulk.jsonl", 30_000))
    kill_when(isolated_workspace, process, "staging", min_batches=2)
    assert store.table_counts()["import_batches"] >= 2  # staged, but out of sight
    assert store.catalog.eval_set("bulk") is None
    lines = data.recover_imports(store)
    assert len(lines) == 1 and lines[0].startswith("discarded the unfinished import")
    assert store.table_counts() == before
    if store.db.dialect == "sqlite":  # its staging file is gone too
        assert not list(isolated_workspace.parent.glob(f"{isolated_workspace.name}-import-*"))


def test_a_staging_file_left_by_a_committed_import_is_deleted_by_the_next_recovery(
    store, tmp_path, isolated_workspace
):
    """A process that dies after its import was committed, before deleting its staging file,
    leaves a file no job owns; the next recovery (a server start, the next import) deletes it,
    and never the file of an import still in flight."""
    if store.db.dialect != "sqlite":
        pytest.skip("imports stage in a file of their own only beside a SQLite workspace")
    make_study(store, tmp_path)
    process = cli_import(isolated_workspace, write_outputs(tmp_path / "bulk.jsonl", 30_000))
    kill_when(isolated_workspace, process, "staging", min_batches=1)
    [job] = store.imports.import_jobs()
    in_flight = store.imports.staging_file_path(job["id"])
    assert in_flight.exists()
    orphan = store.imports.staging_file_path(job["id"] + 1000)
    orphan.write_bytes(b"rows of an import committed before its process died")
    unrelated = isolated_workspace.parent / f"{isolated_workspace.name}-import-notes.txt"
    unrelated.write_text("not a staging file", encoding="utf-8")
    assert store.imports.delete_orphaned_staging_files() == 1
    assert not orphan.exists() and in_flight.exists() and unrelated.exists()
    data.recover_imports(store)  # the killed import is discarded, its own file with it
    assert not in_flight.exists() and unrelated.exists()


def test_an_import_killed_while_publishing_is_finished_by_the_next_one(
    store, tmp_path, isolated_workspace
):
    source = write_outputs(tmp_path / "bulk.jsonl", 30_000)
    process = cli_import(isolated_workspace, source)
    kill_when(isolated_workspace, process, "publishing")
    again = cli_import(isolated_workspace, source)
    out, err = again.communicate()
    assert again.returncode == 0, err
    assert out.splitlines()[0] == f"finished the interrupted import of {source} into bulk"
    assert out.splitlines()[1].endswith("nothing new; 30000 unchanged")
    counts = store.table_counts()
    assert counts["outputs"] == 30_000 and counts["items"] == 15_000
    assert counts["import_jobs"] == counts["import_batches"] == counts["import_locks"] == 0


def test_an_error_while_publishing_is_finished_by_the_next_import(store, tmp_path, monkeypatch):
    monkeypatch.setattr(importers, "BATCH_ROWS", 100)
    source = write_outputs(tmp_path / "bulk.jsonl", 1_000)
    written = []
    real_publish = importers.publish_outputs

    def failing_publish(store, eval_set, job_id, first, last):
        if len(written) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        written.append((first, last))
        real_publish(store, eval_set, job_id, first, last)

    monkeypatch.setattr(importers, "publish_outputs", failing_publish)
    with pytest.raises(Conflict, match="the next import or server start finishes it"):
        data.import_outputs(store, source, "bulk", actor=person(store))
    assert 0 < store.table_counts()["outputs"] < 1_000
    monkeypatch.setattr(importers, "publish_outputs", real_publish)
    summary = data.import_outputs(
        store, source, "bulk", actor=person(store)
    )  # finishes the first, then a no-op
    assert summary.added == {} and summary.unchanged == 1_000
    assert store.table_counts()["outputs"] == 1_000


def test_votes_in_many_batches_create_the_study_pairs_and_reviewers_once(
    store, tmp_path, monkeypatch
):
    monkeypatch.setattr(importers, "BATCH_ROWS", 3)
    make_study(store, tmp_path, n_items=6)
    lines = ["item_id,system_a,system_b,reviewer,winner"]
    for i in range(6):
        for reviewer in ("ann", "bob"):
            lines.append(f"q{i:04d},zq-sentinel-alpha-4f1c,zq-sentinel-bravo-9b7e,{reviewer},tie")
    source = tmp_path / "votes.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = data.import_votes(store, source, "imported", eval_set="es", actor=person(store))
    assert summary.added == {"votes added": 12}
    study = store.studies.require_study("imported")
    assert len(store.frames.pairs_frame(study["id"])) == 6
    assert len(store.studies.comparisons(study["id"])) == 1
    assert {r["name"] for r in store.people.reviewers()} >= {"ann", "bob"}
    changed = source.read_text().replace("ann,tie", "ann,zq-sentinel-alpha-4f1c")
    source.write_text(changed, encoding="utf-8")
    assert data.import_votes(store, source, "imported", actor=person(store)).added == {
        "votes added": 6
    }
    history = store.review.vote_history(study["id"])
    superseded = {v["supersedes"] for v in history if v["supersedes"]}
    assert len(history) == 18 and len(superseded) == 6  # each of ann's changed votes


# ---- locks ----


def hold_import(store: Store, *locks: str) -> int:
    """An import in flight in this (live) process, holding `locks`."""
    with store.transaction():
        job_id = store.imports.insert_import_job(
            "outputs", "big.jsonl", "e", {}, os.getpid(), data.HOST
        )
        store.imports.insert_import_locks(job_id, locks)
    return job_id


def test_no_study_is_created_over_an_eval_set_being_imported(store, tmp_path):
    make_study(store, tmp_path)
    hold_import(store, import_lock("eval_set", "es"))
    with pytest.raises(Conflict, match="big.jsonl is being imported into eval set 'es'"):
        studies.create_study(
            store, "second", "es", [("zq-sentinel-alpha-4f1c", "base")], actor=person(store)
        )
    assert store.studies.study("second") is None


def test_a_second_import_into_the_same_target_waits_for_the_first(store, tmp_path):
    hold_import(store, import_lock("eval_set", "e"))
    source = write_outputs(tmp_path / "more.jsonl", 10)
    with pytest.raises(Conflict, match="is being imported into eval set 'e'.*once it has finished"):
        data.import_outputs(store, source, "e", actor=person(store))
    assert data.import_outputs(store, source, "other", actor=person(store)).added == {
        "items added": 5,
        "outputs added": 10,
    }


def test_an_import_whose_process_died_no_longer_holds_its_lock(store, tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with store.transaction():
        job_id = store.imports.insert_import_job(
            "outputs", "old.jsonl", "e", {}, gone.pid, data.HOST
        )
        store.imports.insert_import_locks(job_id, [import_lock("eval_set", "e")])
        store.imports.stage_import_batch(job_id, 1, b"[]")
    source = write_outputs(tmp_path / "new.jsonl", 10)
    assert data.import_outputs(store, source, "e", actor=person(store)).added == {
        "items added": 5,
        "outputs added": 10,
    }
    assert store.imports.import_jobs() == []


# ---- what an import records and stages ----


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_the_audit_entry_of_an_import_names_the_sha256_of_the_file_it_read(store, tmp_path, suffix):
    source = tmp_path / f"outputs{suffix}"
    if suffix == ".csv":
        source.write_text(
            "item_id,prompt,system,output\nq1,Hi?,sys-a,Hello\nq1,Hi?,sys-b,Hey\n"
            "q2,Bye?,sys-a,Goodbye",  # a last line without a line end is hashed too
            encoding="utf-8",
        )
    else:
        write_outputs(source, 7)
    data.import_outputs(store, source, "hashed", actor=person(store))
    data.import_outputs(store, source, "hashed", actor=person(store))  # nothing new
    entries = [
        json.loads(e["detail"])
        for e in store.audit.audit_entries()
        if e["action"] == "outputs imported"
    ]
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    assert [e["sha256"] for e in entries] == [expected, expected]


def test_staged_outputs_are_out_of_sight_until_published_and_gone_after(
    store, tmp_path, monkeypatch
):
    monkeypatch.setattr(importers, "BATCH_ROWS", 10)
    source = write_outputs(tmp_path / "bulk.jsonl", 100)
    seen, jobs = [], set()
    real_publish = importers.publish_outputs

    def watching_publish(store, eval_set, job_id, first, last):
        jobs.add(job_id)
        seen.append((first, last, store.table_counts()["outputs"], staged_outputs(store, job_id)))
        real_publish(store, eval_set, job_id, first, last)

    monkeypatch.setattr(importers, "publish_outputs", watching_publish)
    summary = data.import_outputs(store, source, "bulk", actor=person(store))
    assert summary.added == {"items added": 50, "outputs added": 100}
    # Each outputs batch of 10 rows carries 5 items too: 100 rows of changes in 15 batches.
    first_seen = seen[0]
    assert first_seen[:3] == (1, 1, 0)  # nothing published before the first publish
    assert first_seen[3] > 0  # yet every checked row is staged
    assert [f for f, *_ in seen] == [1] + [last + 1 for _, last, *_ in seen[:-1]]
    assert seen[-1][1] == 15
    counts = store.table_counts()
    assert counts["outputs"] == 100 and counts["items"] == 50
    assert counts["import_staged_outputs"] == counts["import_staged_items"] == 0
    (job_id,) = jobs
    staging_file = store.imports.staging_file_path(job_id)
    assert staging_file is None or not staging_file.exists()
    eval_set = store.catalog.eval_set("bulk")["id"]
    texts = {r["item_key"]: r["text"] for r in store.catalog.outputs_of_system(eval_set, "bulk-b")}
    assert texts["bulk-000049"].startswith("Answer 99: hold the button")


def staged_outputs(store: Store, job_id: int) -> int:
    """How many outputs the import `job_id` has staged: in its staging file (a SQLite file
    workspace), else in the workspace's staging table."""
    path = store.imports.staging_file_path(job_id)
    if path is None:
        return store.table_counts()["import_staged_outputs"]
    staging = sqlite3.connect(path)
    try:
        return staging.execute("SELECT count(*) FROM import_staged_outputs").fetchone()[0]
    finally:
        staging.close()


def test_a_replacing_import_updates_items_and_outputs_in_place(store, tmp_path):
    source = write_outputs(tmp_path / "bulk.jsonl", 4)
    data.import_outputs(store, source, "bulk", actor=person(store))
    rows = [json.loads(line) for line in source.read_text().splitlines()]
    rows[0]["prompt"] = rows[1]["prompt"] = "A better question?"
    rows[3]["output"] = "A better answer."
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    summary = data.import_outputs(store, source, "bulk", replace=True, actor=person(store))
    assert summary.added == {"items replaced": 1, "outputs replaced": 1}
    eval_set = store.catalog.eval_set("bulk")["id"]
    outputs = {
        (r["item_key"], r["prompt"], r["text"])
        for r in store.catalog.outputs_of_system(eval_set, "bulk-b")
    }
    assert ("bulk-000000", "A better question?", rows[1]["output"]) in outputs
    assert ("bulk-000001", rows[3]["prompt"], "A better answer.") in outputs
    assert store.table_counts()["outputs"] == 4


def test_an_import_copies_the_log_into_the_workspace_after_each_of_its_transactions(
    store, tmp_path, isolated_workspace, monkeypatch
):
    """Publishing into a SQLite file, an import checkpoints the write-ahead log itself after
    each transaction (in the pause kept for waiting votes), not inside its commits: the rows
    reach the workspace file transaction by transaction, and once no import of the store is
    publishing, the writer checkpoints after its commits again."""
    if store.db.dialect != "sqlite":
        pytest.skip("a PostgreSQL workspace has no write-ahead log of the app's to copy")
    monkeypatch.setattr(importers, "BATCH_ROWS", 200)
    source = write_outputs(tmp_path / "bulk.jsonl", 4_000)  # 1 MB: SQLite alone would wait
    file_sizes = []
    real_publish = importers.publish_outputs

    def watching_publish(store, eval_set, job_id, first, last):
        file_sizes.append(isolated_workspace.stat().st_size)
        real_publish(store, eval_set, job_id, first, last)

    monkeypatch.setattr(importers, "publish_outputs", watching_publish)
    data.import_outputs(store, source, "bulk", actor=person(store))
    assert len(file_sizes) >= 3
    assert file_sizes == sorted(set(file_sizes))  # grew before each transaction

    def automatic_checkpoint() -> int:
        return store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]

    assert automatic_checkpoint() == 1000
    first, second = (store.imports.log_checkpointed_by_caller() for _ in range(2))
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert automatic_checkpoint() == 0  # the second import still checkpoints by itself
    second.__exit__(None, None, None)
    assert automatic_checkpoint() == 1000
