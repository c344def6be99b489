"""Imports in flight: the journal that lets a large import reach the workspace in short
transactions. A job holds locks on what it imports into, its checked rows staged in batches,
and a heartbeat; it is deleted, with everything it staged, once it is done or given up.

An outputs import into a SQLite file stages its rows in a file of its own beside the workspace
(`StagingFile`): written without the workspace's write lock or its log, read once by the
publishing INSERT ... SELECT statements, deleted with the job. Elsewhere (PostgreSQL, a
workspace in memory) they are staged in the workspace's own staging tables."""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from review_app.errors import Conflict
from review_app.store.base import Aggregate, now_iso

# The staged rows' tables, in the workspace (migration 18) and in a staging file alike.
_STAGED_ITEM_COLUMNS = (
    "job_id, seq, change, item_id, item_key, prompt, reference, category, metadata"
)
_STAGED_OUTPUT_COLUMNS = "job_id, seq, item_key, system, text"
_STAGED_ITEMS = """CREATE TABLE import_staged_items (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    change TEXT NOT NULL CHECK (change IN ('add', 'replace')),
    item_id INTEGER,
    item_key TEXT NOT NULL,
    prompt TEXT NOT NULL,
    reference TEXT,
    category TEXT NOT NULL,
    metadata TEXT NOT NULL
)"""
_STAGED_OUTPUTS = """CREATE TABLE import_staged_outputs (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    item_key TEXT NOT NULL,
    system TEXT NOT NULL,
    text TEXT NOT NULL
)"""


def import_lock(kind: str, name: str) -> str:
    """The lock an import holds on what it writes into: kind "eval_set" or "study"."""
    return f"{kind}:{name}"


def locked_what(lock: str) -> str:
    """A lock in words: "eval set 'x'", "study 'y'"."""
    kind, name = lock.split(":", 1)
    return f"{kind.replace('_', ' ')} {name!r}"


# The writer checkpoints the log after a commit that leaves it this many pages long (SQLite's
# default), except while an import publishes (`ImportQueries.log_checkpointed_by_caller`).
AUTOCHECKPOINT_PAGES = 1000


class ImportQueries(Aggregate):
    def __init__(self, store):
        super().__init__(store)
        self._publishing = 0  # this store's imports publishing now

    def insert_import_job(
        self, kind: str, file: str, target: str, options: dict, pid: int, host: str
    ) -> int:
        new_id = self._insert(
            "INSERT INTO import_jobs (kind, file, target, options, state, pid, host, started_at, "
            "heartbeat_at) VALUES (?, ?, ?, ?, 'staging', ?, ?, ?, ?)",
            [kind, file, target, json.dumps(options), pid, host, now_iso(), time.time()],
        )
        return new_id

    def import_job(self, job_id: int) -> dict | None:
        row = self._one("SELECT * FROM import_jobs WHERE id = ?", [job_id])
        return _decoded(row) if row else None

    def import_jobs(self) -> list[dict]:
        """Every import in flight, oldest first."""
        return [_decoded(row) for row in self._rows("SELECT * FROM import_jobs ORDER BY id")]

    def import_lock_holder(self, names: Iterable[str]) -> dict | None:
        """The job in flight that holds one of the lock `names`, if any."""
        names = list(names)
        if not names:
            return None
        marks = ",".join("?" * len(names))
        row = self._one(
            "SELECT j.*, l.name AS lock_name FROM import_locks l "
            f"JOIN import_jobs j ON j.id = l.job_id WHERE l.name IN ({marks}) ORDER BY j.id",
            names,
        )
        return _decoded(row) if row else None

    def insert_import_locks(self, job_id: int, names: Iterable[str]) -> None:
        self.db.executemany(
            "INSERT INTO import_locks (name, job_id) VALUES (?, ?)",
            [(name, job_id) for name in names],
        )

    def stage_import_batch(self, job_id: int, seq: int, payload: bytes) -> None:
        self.db.execute(
            "INSERT INTO import_batches (job_id, seq, payload) VALUES (?, ?, ?)",
            [job_id, seq, payload],
        )
        self.touch_import_job(job_id)

    def next_import_batches(self, job_id: int, limit: int) -> list[tuple[int, bytes]]:
        """The job's `limit` lowest-numbered batches not published yet: (seq, payload)."""
        return [
            (row["seq"], row["payload"])
            for row in self._rows(
                "SELECT seq, payload FROM import_batches WHERE job_id = ? ORDER BY seq LIMIT ?",
                [job_id, limit],
            )
        ]

    def delete_import_batches_through(self, job_id: int, seq: int) -> None:
        """Forget the job's batches numbered up to `seq`, with the rows they staged."""
        for table in ("import_staged_items", "import_staged_outputs", "import_batches"):
            self.db.execute(f"DELETE FROM {table} WHERE job_id = ? AND seq <= ?", [job_id, seq])
        self.touch_import_job(job_id)

    def delete_import_batches(self, job_id: int, limit: int) -> int:
        """Delete up to `limit` of the job's batches; returns how many were deleted."""
        seqs = [seq for seq, _ in self.next_import_batches(job_id, limit)]
        if seqs:
            self.delete_import_batches_through(job_id, seqs[-1])
        return len(seqs)

    def staging_file_path(self, job_id: int) -> Path | None:
        """Where outputs import `job_id` stages its rows when the workspace is a SQLite file
        (see `StagingFile`); None: in the workspace's staging tables."""
        if not self._stages_in_files():
            return None
        return Path(f"{self.store.path}-import-{job_id}")

    def _stages_in_files(self) -> bool:
        return self.db.dialect == "sqlite" and self.store.path != ":memory:"

    def open_staging_file(self, job_id: int) -> StagingFile | None:
        """A new, empty staging file for the job (see `staging_file_path`), or None."""
        path = self.staging_file_path(job_id)
        return StagingFile(path) if path is not None else None

    def delete_staging_file(self, job_id: int) -> None:
        """Forget the rows the job staged in a file (once the job is gone or given up)."""
        path = self.staging_file_path(job_id)
        if path is not None:
            path.unlink(missing_ok=True)

    def delete_orphaned_staging_files(self) -> int:
        """Delete the staging files no import in flight owns (their process died after its
        import was committed, before deleting the file); returns how many."""
        if not self._stages_in_files():
            return 0
        prefix = f"{Path(self.store.path).name}-import-"
        # Files first, then jobs: a job is recorded before its file is made, so a file seen
        # here whose job is not found below is no running import's.
        found = {
            int(path.name[len(prefix) :]): path
            for path in Path(self.store.path).parent.glob(f"{prefix}*")
            if path.name[len(prefix) :].isdigit()
        }
        owned = {job["id"] for job in self.import_jobs()}
        orphans = [path for job_id, path in found.items() if job_id not in owned]
        for path in orphans:
            path.unlink(missing_ok=True)
        return len(orphans)

    def stage_outputs(
        self, job_id: int, seq: int, items: list[tuple], outputs: list[tuple[str, str, str]]
    ) -> None:
        """Stage checked rows of an outputs import as batch `seq` in the workspace's staging
        tables: items as (change, item_id (None for an item to add), item_key, prompt,
        reference, category, metadata JSON), outputs as (item_key, system, text)."""
        _insert_staged(self.db, job_id, seq, items, outputs)
        self.stage_import_batch(job_id, seq, b"")

    @contextlib.contextmanager
    def staged_outputs(self, job_id: int, in_file: bool) -> Iterator[None]:
        """While the job's staged outputs are published: its staging file, when it staged
        `in_file`, attached to the writer (outside any transaction, as SQLite requires)."""
        if not in_file:
            yield
            return
        path = self.staging_file_path(job_id)
        if path is None or not path.exists():
            raise Conflict(
                f"import {job_id}: its staged rows ({path}) are gone; import the file again"
            )
        with self._lock:
            self.db.execute(f"ATTACH DATABASE ? AS {_schema(job_id)}", [str(path)])
        try:
            yield
        finally:
            with self._lock:
                self.db.execute(f"DETACH DATABASE {_schema(job_id)}")

    @contextlib.contextmanager
    def log_checkpointed_by_caller(self) -> Iterator[Callable[[], None]]:
        """While an import publishes into a SQLite file: its write-ahead log is copied into
        the workspace (checkpointed) when the import calls the function yielded, after each of
        its transactions, instead of inside each commit. A checkpoint holds no write lock, so
        the import runs it in the pause it keeps for waiting votes, and the time a vote may
        wait (a transaction's) is measured without it. The writer checkpoints after its
        commits again once no import of this store is publishing."""
        if self.db.dialect != "sqlite" or self.store.path == ":memory:":  # no log to copy
            yield lambda: None
            return

        def checkpoint() -> None:
            with self._lock:
                self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

        with self._lock:
            self._publishing += 1
            if self._publishing == 1:
                self.db.execute("PRAGMA wal_autocheckpoint = 0")
        try:
            yield checkpoint
        finally:
            with self._lock:
                self._publishing -= 1
                if self._publishing == 0:
                    self.db.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")

    def _staged_schema(self, job_id: int) -> str:
        """The prefix naming where the job's staged rows are: its attached staging file, or
        the workspace's own tables."""
        attached = self.db.execute("PRAGMA database_list") if self.db.dialect == "sqlite" else []
        return f"{_schema(job_id)}." if any(r[1] == _schema(job_id) for r in attached) else ""

    def publish_staged_outputs(self, job_id: int, eval_set_id: int, first: int, last: int) -> None:
        """Write the items and outputs staged in batches `first`..`last` into the eval set,
        in the order they were staged: new items added, replaced ones updated, outputs added
        or overwritten. Set-based: the texts go from table to table inside the database.
        Every statement is driven by the staged rows, found by the (job, batch) index, and
        reaches the workspace's rows by a unique index, whatever the planner believes of the
        tables' sizes: joined on the eval set's items instead, PostgreSQL planned the staged
        rows (no statistics yet) against the items just inserted as a nested loop comparing
        every pair, seconds under the write lock and growing with the eval set."""
        batches = [job_id, first, last]
        staged = self._staged_schema(job_id)
        self.db.execute(
            "INSERT INTO items (eval_set_id, item_key, prompt, reference, category, metadata) "
            "SELECT ?, item_key, prompt, reference, category, metadata "
            f"FROM {staged}import_staged_items "
            "WHERE job_id = ? AND seq BETWEEN ? AND ? AND change = 'add' ORDER BY seq, id",
            [eval_set_id, *batches],
        )
        self.db.execute(
            "UPDATE items SET prompt = s.prompt, reference = s.reference, "
            f"category = s.category, metadata = s.metadata FROM {staged}import_staged_items s "
            "WHERE s.job_id = ? AND s.seq BETWEEN ? AND ? AND s.change = 'replace' "
            "AND items.id = s.item_id",
            batches,
        )
        self.db.execute(
            f"INSERT INTO systems (name) SELECT DISTINCT system FROM {staged}import_staged_outputs "
            "WHERE job_id = ? AND seq BETWEEN ? AND ? ON CONFLICT DO NOTHING",
            batches,
        )
        # Each output finds its item (perhaps added just above) by one index lookup.
        self.db.execute(
            "INSERT INTO outputs (item_id, system, text) "
            "SELECT (SELECT i.id FROM items i WHERE i.eval_set_id = ? AND i.item_key = s.item_key), "
            f"s.system, s.text FROM {staged}import_staged_outputs s "
            "WHERE s.job_id = ? AND s.seq BETWEEN ? AND ? ORDER BY s.seq, s.id "
            "ON CONFLICT (item_id, system) DO UPDATE SET text = excluded.text",
            [eval_set_id, *batches],
        )

    def set_import_state(self, job_id: int, state: str, options: dict) -> None:
        self.db.execute(
            "UPDATE import_jobs SET state = ?, options = ?, heartbeat_at = ? WHERE id = ?",
            [state, json.dumps(options), time.time(), job_id],
        )

    def touch_import_job(self, job_id: int, heartbeat: float | None = None) -> None:
        self.db.execute(
            "UPDATE import_jobs SET heartbeat_at = ? WHERE id = ?",
            [time.time() if heartbeat is None else heartbeat, job_id],
        )

    def take_over_import_job(self, job: dict, pid: int, host: str) -> bool:
        """Make this process the job's owner, unless another process did so first (the job's
        owner and heartbeat must still be those of `job`)."""
        cursor = self.db.execute(
            "UPDATE import_jobs SET pid = ?, host = ?, heartbeat_at = ? "
            "WHERE id = ? AND pid = ? AND host = ? AND heartbeat_at = ?",
            [pid, host, time.time(), job["id"], job["pid"], job["host"], job["heartbeat_at"]],
        )
        return cursor.rowcount == 1

    def delete_import_job(self, job_id: int) -> None:
        """Forget a job whose batches are gone, releasing its locks."""
        self.db.execute("DELETE FROM import_locks WHERE job_id = ?", [job_id])
        self.db.execute("DELETE FROM import_jobs WHERE id = ?", [job_id])


class StagingFile:
    """The rows an outputs import has checked, in a SQLite file of their own: no other
    connection reads it before the import is committed, so it is written without a journal or
    waiting for the disk, and made durable once, by `close`, before the import is committed
    (from then on it is only read). A failed import deletes it. Each batch is written by a
    thread of its own while the import checks the next one (SQLite lets go of Python's lock
    while it writes); one batch at most waits to be written."""

    def __init__(self, path: Path):
        path.unlink(missing_ok=True)  # left by an import whose job was since forgotten
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # Its rows are about a kilobyte each: large pages take them with fewer page splits.
        self.conn.execute("PRAGMA page_size = 65536")
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute(_STAGED_ITEMS)
        self.conn.execute(_STAGED_OUTPUTS)
        self.conn.execute("CREATE INDEX import_staged_items_batch ON import_staged_items (seq)")
        self.conn.execute("CREATE INDEX import_staged_outputs_batch ON import_staged_outputs (seq)")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-staging")
        self._writing: Future | None = None

    def stage(self, job_id: int, seq: int, items: list[tuple], outputs: list[tuple]) -> None:
        """Write one batch of rows, as `ImportQueries.stage_outputs` takes them, once the
        batch before it is written (raising what stopped that one)."""
        self._written()
        self._writing = self._writer.submit(self._write, job_id, seq, items, outputs)

    def _write(self, job_id: int, seq: int, items: list[tuple], outputs: list[tuple]) -> None:
        batch = f"{int(job_id)}, {int(seq)}"
        self.conn.execute("BEGIN")
        _insert_rows(self.conn, "import_staged_items", _STAGED_ITEM_COLUMNS, batch, items)
        _insert_rows(self.conn, "import_staged_outputs", _STAGED_OUTPUT_COLUMNS, batch, outputs)
        self.conn.execute("COMMIT")

    def _written(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def close(self, durable: bool = True) -> None:
        """Close the file once every batch is written, every row on disk when `durable`
        (raising what stopped a write); not `durable`, a failed write is not raised."""
        try:
            self._written()
        except Exception:
            if durable:
                raise
        finally:
            self._writer.shutdown()
            self.conn.close()
        if not durable:
            return
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _insert_staged(db, job_id: int, seq: int, items: list[tuple], outputs: list[tuple]) -> None:
    # The job and batch are the same for every row: written into the statement, they are not
    # bound again for each one.
    batch = f"{int(job_id)}, {int(seq)}"
    if items:
        db.executemany(
            f"INSERT INTO import_staged_items ({_STAGED_ITEM_COLUMNS}) "
            f"VALUES ({batch}, ?, ?, ?, ?, ?, ?, ?)",
            items,
        )
    if outputs:
        db.executemany(
            f"INSERT INTO import_staged_outputs ({_STAGED_OUTPUT_COLUMNS}) VALUES ({batch}, ?, ?, ?)",
            outputs,
        )


# A staging file takes its rows this many to a statement. Python's sqlite3 lets go of Python's
# lock while SQLite runs a statement and takes it back after: once per row, the thread writing
# the file and the one checking the next batch hand the lock back and forth at every row, and
# the checking one spends about as long waiting for it as the writing saves (and the statement
# is cheaper too: 0.31 s of CPU for the benchmark's 100,000 rows, against 0.43 s one by one).
ROWS_PER_STATEMENT = 64


def _insert_rows(conn, table: str, columns: str, batch: str, rows: list[tuple]) -> None:
    """Insert `rows` of batch `batch` ("job, seq") into a staging file's `table`."""
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        conn.execute(
            f"INSERT INTO {table} ({columns}) VALUES {_row_marks(batch, len(chunk[0]), len(chunk))}",
            list(itertools.chain.from_iterable(chunk)),
        )


@functools.lru_cache(maxsize=64)
def _row_marks(batch: str, width: int, rows: int) -> str:
    """The VALUES of `rows` rows of batch `batch`, `width` placeholders each."""
    return ", ".join([f"({batch}, {', '.join('?' * width)})"] * rows)


def _schema(job_id: int) -> str:
    """The name a job's staging file is attached under."""
    return f"import_{int(job_id)}"


def _decoded(row: dict) -> dict:
    return row | {"options": json.loads(row["options"])}
