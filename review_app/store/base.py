"""The connection every store module shares: opening and migrating the workspace file, one
lock, transactions, and the helpers that turn SQL into rows and frames."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import pandas as pd
import sqlite_utils

from review_app.errors import UnusableWorkspace
from review_app.migrations import MIGRATIONS


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class StoreBase:
    """A migrated workspace. Safe to share between threads: writes serialize on a lock and run
    in BEGIN IMMEDIATE transactions, so concurrent writers wait rather than fail."""

    def __init__(self, conn: sqlite3.Connection, path: str):
        self.path = path
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, path: str | Path) -> Self:
        """Open (creating and migrating if needed) the workspace at `path`. A file written by a
        newer version, or that is not SQLite, is refused with UnusableWorkspace before anything
        is written to it."""
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        store = cls(conn, path)
        try:
            store.db.execute("PRAGMA busy_timeout = 30000")
            store._refuse_newer_schema()
            store.db.execute("PRAGMA foreign_keys = ON")
            if path != ":memory:":
                store.db.enable_wal()
            store.db.execute("PRAGMA synchronous = NORMAL")
            store.migrate()
        except sqlite3.DatabaseError as exc:
            store.close()
            raise UnusableWorkspace(f"workspace {path}: {exc}") from exc
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Self]:
        """One logical change: everything inside commits together or not at all."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    with self.db.atomic():
                        yield self
                finally:
                    self._depth -= 1
                return
            self.db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self.db.rollback()
                raise
            else:
                self.db.execute("COMMIT")
            finally:
                self._depth = 0

    def _rows(self, sql: str, params: Iterable[Any] | dict = ()) -> list[dict]:
        with self._lock:
            return list(self.db.query(sql, params))

    def _one(self, sql: str, params: Iterable[Any] | dict = ()) -> dict | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _frame(self, sql: str, params: Iterable[Any] | dict = ()) -> pd.DataFrame:
        with self._lock:
            frame = pd.read_sql_query(sql, self.db.conn, params=params)
        # Text columns hold None (not NaN) for SQL NULL, so callers can test `is None`.
        for column in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[column]):
                values = frame[column].astype(object)
                frame[column] = values.where(values.notna(), None)
        return frame

    # ---- schema ----

    def migrate(self) -> None:
        """Apply the migrations this workspace lacks. An up-to-date workspace is only read, so
        the app opening it on every page run never queues behind reviewers' writes."""
        if self._applied_versions() >= {version for version, _, _ in MIGRATIONS}:
            return
        with self.transaction():
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS _migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            applied = {row["version"] for row in self._rows("SELECT version FROM _migrations")}
            for version, name, apply in MIGRATIONS:
                if version in applied:
                    continue
                apply(self.db)
                self.db.execute(
                    "INSERT INTO _migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, now_iso()),
                )

    def _refuse_newer_schema(self) -> None:
        # Migrating or even writing to a schema this code does not know could corrupt it for the
        # version that wrote it; so read-only checks come first, before WAL mode is switched on.
        unknown = self._applied_versions() - {version for version, _, _ in MIGRATIONS}
        if unknown:
            known = max(version for version, _, _ in MIGRATIONS)
            raise UnusableWorkspace(
                f"workspace {self.path} has schema version {max(unknown)}, newer than this "
                f"review-app knows (up to {known}); open it with the newer version that wrote it"
            )

    def _applied_versions(self) -> set[int]:
        try:
            return {row["version"] for row in self._rows("SELECT version FROM _migrations")}
        except sqlite3.OperationalError:  # a new file: no _migrations table yet
            return set()

    def schema_version(self) -> int:
        row = self._one("SELECT max(version) AS v FROM _migrations")
        return row["v"] or 0

    def table_counts(self) -> dict[str, int]:
        """Row count of every table; used to prove a failed change left nothing behind."""
        names = [r["name"] for r in self._rows("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: self._one(f"SELECT count(*) AS n FROM [{n}]")["n"] for n in sorted(names)}
