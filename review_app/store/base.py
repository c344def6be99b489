"""The connections every store module shares: opening and migrating the workspace (a SQLite file
or a PostgreSQL database, see `connection`), the one writer (a lock and write transactions that
exclude every other writer of the workspace), a small pool of read-only readers, and the helpers
that turn SQL into rows and frames; and `Aggregate`, the base of each module's queries, which
runs them on its store's connections."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd

from review_app.errors import UnusableWorkspace
from review_app.migrations import MIGRATIONS
from review_app.settings import is_server_url, shown_location
from review_app.store.connection import (
    Database,
    connect,
)

if TYPE_CHECKING:
    from review_app.store import Store

# Reader connections per store. In WAL mode readers never wait for the writer, so a page that
# only reads is not held up by votes or an import; a few cover the server's concurrent runs.
READERS = 4


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# Rows per batch when a frame is read (`_plain_frame`).
_FRAME_BATCH = 8_192


def _object_table(rows: list[tuple], width: int) -> np.ndarray:
    """The rows as one 2-D object array, read column by column after: transposing the rows in
    Python (`zip(*rows)`) costs twice as much. A value that is itself a sequence would add a
    dimension: then each row is placed as it is."""
    table = np.array(rows, dtype=object)
    if table.shape != (len(rows), width):
        table = np.empty((len(rows), width), dtype=object)
        for k, row in enumerate(rows):
            for j, value in enumerate(row):
                table[k, j] = value
    return table


class StoreBase:
    """A migrated workspace, safe to share between threads (one per server process).

    Writes go through one connection: a transaction holds a re-entrant lock from its start to
    its end, and the database's own write lock (BEGIN IMMEDIATE on SQLite, an advisory lock on
    PostgreSQL), so concurrent writers, in this process or any other, wait rather than fail.
    Reads outside the calling thread's own transaction use a pool of `READERS` read-only
    connections and never take that lock; reads inside it use the writer, so a transaction
    sees its own changes. Connections are opened once and reused, never per page run."""

    def __init__(
        self,
        db: Database,
        path: str,
        readers: int = READERS,
        signing_key: str | None = None,
    ):
        # Where the workspace lives: a SQLite file path (or ":memory:") or a postgresql:// URL.
        self.path = path
        # The key (`REVIEW_APP_SIGNING_KEY`, kept outside the workspace) every audit entry this
        # store appends is keyed with; None appends unkeyed entries.
        self.signing_key = signing_key or None
        self.db = db
        self._lock = threading.RLock()
        self._depth = 0
        self._owner: int | None = None  # the thread inside the open transaction
        # An in-memory database exists only in its one connection: no readers then.
        self._max_readers = 0 if path == ":memory:" else readers
        self._readers: list[Database] = []  # idle readers
        self._opened_readers = 0
        self._pool = threading.Condition()
        self._closed = False

    @property
    def dialect(self) -> str:
        return self.db.dialect

    @property
    def private_writes_wait(self) -> bool:
        """Whether a private transaction (see `transaction`) still holds up other writers."""
        return self.db.private_writes_wait

    @property
    def identity(self) -> object:
        """What names this workspace in caches shared by the stores of one process: the file's
        absolute path, the database URL, or the store itself for an in-memory database."""
        if self.path == ":memory:":
            return id(self)
        if is_server_url(self.path):
            return self.path
        return str(Path(self.path).resolve())

    @classmethod
    def open(cls, path: str | Path, readers: int = READERS, signing_key: str | None = None) -> Self:
        """Open (creating and migrating if needed) the workspace at `path` (a file path or a
        postgresql:// URL), keying the audit entries it appends with `signing_key` when given.
        A workspace written by a newer version, a file that is not SQLite, or a database that
        cannot be reached is refused with UnusableWorkspace before anything is written."""
        path = str(path)
        if is_server_url(path):
            return cls._open_server(path, readers, signing_key)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        store = cls(connect(path), path, readers, signing_key)
        try:
            store._refuse_newer_schema()
            store.db.execute("PRAGMA foreign_keys = ON")
            if path != ":memory:":
                store.db.utils.enable_wal()
                # A large import passes through the write-ahead log; keep the file small after.
                store.db.execute("PRAGMA journal_size_limit = 67108864")
            store.db.execute("PRAGMA synchronous = NORMAL")
            store.migrate()
        except sqlite3.DatabaseError as exc:
            store.close()
            raise UnusableWorkspace(f"workspace {path}: {exc}") from exc
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def _open_server(cls, url: str, readers: int, signing_key: str | None) -> Self:
        import psycopg

        store = cls(connect(url), url, readers, signing_key)
        try:
            store._refuse_newer_schema()
            store.migrate()
        except psycopg.Error as exc:
            store.close()
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnusableWorkspace(f"workspace {shown_location(url)}: {detail}") from exc
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        with self._pool:
            self._closed = True
            for reader in self._readers:
                reader.close()
            self._readers.clear()
        self.db.close()

    @contextmanager
    def transaction(self, private: bool = False) -> Iterator[Self]:
        """One logical change: everything inside commits together or not at all. A `private`
        change writes only rows no other transaction reads or writes (an import's staged rows),
        so it need not take the workspace's turn (see `Database.begin_write`)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    with self.db.savepoint():
                        yield self
                finally:
                    self._depth -= 1
                return
            self.db.begin_write(private)
            self._depth, self._owner = 1, threading.get_ident()
            try:
                yield self
            except BaseException:
                self.db.rollback()
                raise
            else:
                try:
                    self.db.commit()
                except BaseException:
                    self.db.rollback()
                    raise
            finally:
                self._depth, self._owner = 0, None

    @contextmanager
    def _reading(self) -> Iterator[Database]:
        """A connection to read with: the writer inside this thread's own transaction (to see
        its changes), otherwise an idle reader, so reads never queue behind a write."""
        if self._max_readers == 0 or self._owner == threading.get_ident():
            with self._lock:
                yield self.db
            return
        reader = self._checkout_reader()
        try:
            yield reader
        finally:
            with self._pool:
                if self._closed:
                    reader.close()
                else:
                    self._readers.append(reader)
                    self._pool.notify()

    def open_readers(self) -> None:
        """Open every reader now (a server's store), so none is opened while serving."""
        readers = [self._checkout_reader() for _ in range(self._max_readers)]
        with self._pool:
            self._readers.extend(readers)
            self._pool.notify_all()

    def _checkout_reader(self) -> Database:
        with self._pool:
            while not self._readers and self._opened_readers >= self._max_readers:
                self._pool.wait()
            if self._readers:
                return self._readers.pop()
            self._opened_readers += 1
        try:
            return connect(self.path, read_only=True)
        except BaseException:
            with self._pool:
                self._opened_readers -= 1
                self._pool.notify()
            raise

    def _rows(self, sql: str, params: Iterable[Any] | dict = ()) -> list[dict]:
        with self._reading() as db:
            return list(db.query(sql, params))

    def _one(self, sql: str, params: Iterable[Any] | dict = ()) -> dict | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _plain_frame(
        self,
        sql: str,
        params: Iterable[Any] | dict = (),
        integers: Iterable[str] = (),
        floats: Iterable[str] = (),
    ) -> pd.DataFrame:
        """Like `_frame`, for many rows whose columns' types are known: texts stay Python
        strings (object dtype, None for NULL) instead of being converted one by one to a string
        array and back; the columns named in `integers` are int64 (never NULL), those in
        `floats` float64 (NaN for NULL)."""
        integers, floats = set(integers), set(floats)

        def column(name: str, values: np.ndarray) -> np.ndarray:
            if name in integers:
                return values.astype(np.int64)
            if name in floats:
                return values.astype(np.float64)
            # A copy: a view would keep the whole batch (every row's values) alive.
            return values.copy()

        # Read and converted a batch at a time: the rows of a whole study at once (a tuple and
        # a number object per value) held tens of megabytes of fresh memory at the peak.
        parts: list[list[np.ndarray]] = []
        with self._reading() as db:
            cursor = db.execute(sql, params)
            names = [d[0] for d in cursor.description]
            while rows := cursor.fetchmany(_FRAME_BATCH):
                table = _object_table(rows, len(names))
                parts.append([column(name, table[:, k]) for k, name in enumerate(names)])
        columns = (
            [np.concatenate(pieces) for pieces in zip(*parts, strict=True)]
            if parts
            else [column(name, np.empty(0, dtype=object)) for name in names]
        )
        # Texts as object Series: a bare object array would become pandas' string type.
        return pd.DataFrame(
            {
                name: values if values.dtype != object else pd.Series(values, dtype=object)
                for name, values in zip(names, columns, strict=True)
            }
        )

    def _frame(self, sql: str, params: Iterable[Any] | dict = ()) -> pd.DataFrame:
        with self._reading() as db:
            cursor = db.execute(sql, params)
            names = [d[0] for d in cursor.description]
            frame = pd.DataFrame.from_records(cursor.fetchall(), columns=names, coerce_float=True)
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
        # The write transaction excludes every other writer: two servers starting at once on
        # one new database migrate it one after the other, the second finding nothing to do.
        with self.transaction():
            self.db.execute(
                self.db.ddl(
                    "CREATE TABLE IF NOT EXISTS _migrations "
                    "(version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, "
                    "applied_at TEXT NOT NULL)"
                )
            )
            for statement in self.db.schema_prelude():
                self.db.execute(statement)
            applied = {row["version"] for row in self._rows("SELECT version FROM _migrations")}
            # By number, whatever the list's order; a number may be missing (reserved).
            for version, name, apply in sorted(MIGRATIONS, key=lambda m: m[0]):
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
        with self._reading() as db:
            if "_migrations" not in db.table_names():  # a new workspace
                return set()
        return {row["version"] for row in self._rows("SELECT version FROM _migrations")}

    def schema_version(self) -> int:
        row = self._one("SELECT max(version) AS v FROM _migrations")
        return row["v"] or 0

    def table_counts(self) -> dict[str, int]:
        """Row count of every table; used to prove a failed change left nothing behind."""
        with self._reading() as db:
            names = db.table_names()
        return {n: self._one(f'SELECT count(*) AS n FROM "{n}"')["n"] for n in sorted(names)}


class Aggregate:
    """One aggregate's queries, reached as an attribute of the store (`store.gate`,
    `store.review`, ...). It owns no connection: the writer, its lock and transactions, the
    readers and the row and frame helpers are its store's, so every aggregate of a store shares
    one writer and one pool of readers, and a query inside `store.transaction()` sees the
    transaction's changes whichever aggregate made them. Another aggregate's queries are
    reached through the store (`self.store.studies.require_study(...)`)."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def db(self) -> Database:
        """The store's writer."""
        return self.store.db

    @property
    def _lock(self):  # the writer's re-entrant lock
        return self.store._lock

    def transaction(self) -> AbstractContextManager[Store]:
        return self.store.transaction()

    def _reading(self) -> AbstractContextManager[Database]:
        return self.store._reading()

    def _rows(self, sql: str, params: Iterable[Any] | dict = ()) -> list[dict]:
        return self.store._rows(sql, params)

    def _insert(self, sql: str, params: Iterable[Any] | dict = ()) -> int:
        """Run one INSERT on the writer and return the new row's id."""
        return self.db.execute(f"{sql} RETURNING id", params).fetchone()[0]

    def _one(self, sql: str, params: Iterable[Any] | dict = ()) -> dict | None:
        return self.store._one(sql, params)

    def _plain_frame(
        self,
        sql: str,
        params: Iterable[Any] | dict = (),
        integers: Iterable[str] = (),
        floats: Iterable[str] = (),
    ) -> pd.DataFrame:
        return self.store._plain_frame(sql, params, integers, floats)

    def _frame(self, sql: str, params: Iterable[Any] | dict = ()) -> pd.DataFrame:
        return self.store._frame(sql, params)
