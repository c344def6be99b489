"""Imports in flight: the journal that lets a large import reach the workspace in short
transactions. A job holds locks on what it imports into, its checked rows staged in batches,
and a heartbeat; it is deleted, with everything it staged, once it is done or given up."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from review_app.store.base import Aggregate, now_iso


def import_lock(kind: str, name: str) -> str:
    """The lock an import holds on what it writes into: kind "eval_set" or "study"."""
    return f"{kind}:{name}"


def locked_what(lock: str) -> str:
    """A lock in words: "eval set 'x'", "study 'y'"."""
    kind, name = lock.split(":", 1)
    return f"{kind.replace('_', ' ')} {name!r}"


class ImportQueries(Aggregate):
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

    def stage_outputs(
        self, job_id: int, seq: int, items: list[tuple], outputs: list[tuple[str, str, str]]
    ) -> None:
        """Stage checked rows of an outputs import as batch `seq`: items as (change, item_id
        (None for an item to add), item_key, prompt, reference, category, metadata JSON),
        outputs as (item_key, system, text)."""
        if items:
            self.db.executemany(
                "INSERT INTO import_staged_items (job_id, seq, change, item_id, item_key, prompt, "
                "reference, category, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(job_id, seq, *item) for item in items],
            )
        if outputs:
            self.db.executemany(
                "INSERT INTO import_staged_outputs (job_id, seq, item_key, system, text) "
                "VALUES (?, ?, ?, ?, ?)",
                [(job_id, seq, *output) for output in outputs],
            )
        self.stage_import_batch(job_id, seq, b"")

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
        self.db.execute(
            "INSERT INTO items (eval_set_id, item_key, prompt, reference, category, metadata) "
            "SELECT ?, item_key, prompt, reference, category, metadata FROM import_staged_items "
            "WHERE job_id = ? AND seq BETWEEN ? AND ? AND change = 'add' ORDER BY id",
            [eval_set_id, *batches],
        )
        self.db.execute(
            "UPDATE items SET prompt = s.prompt, reference = s.reference, "
            "category = s.category, metadata = s.metadata FROM import_staged_items s "
            "WHERE s.job_id = ? AND s.seq BETWEEN ? AND ? AND s.change = 'replace' "
            "AND items.id = s.item_id",
            batches,
        )
        self.db.execute(
            "INSERT INTO systems (name) SELECT DISTINCT system FROM import_staged_outputs "
            "WHERE job_id = ? AND seq BETWEEN ? AND ? ON CONFLICT DO NOTHING",
            batches,
        )
        # Each output finds its item (perhaps added just above) by one index lookup.
        self.db.execute(
            "INSERT INTO outputs (item_id, system, text) "
            "SELECT (SELECT i.id FROM items i WHERE i.eval_set_id = ? AND i.item_key = s.item_key), "
            "s.system, s.text FROM import_staged_outputs s "
            "WHERE s.job_id = ? AND s.seq BETWEEN ? AND ? ORDER BY s.id "
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


def _decoded(row: dict) -> dict:
    return row | {"options": json.loads(row["options"])}
