"""The two databases a workspace can live in, behind one small interface: SQLite (a file path,
the embedded default, through sqlite-utils) and PostgreSQL (a `postgresql://` URL, psycopg 3,
for several servers sharing one workspace).

The store writes one dialect: the SQL both accept, with `?` and `:name` placeholders and
`RETURNING id` for new rows. This module owns every difference that remains: placeholders, the
DDL types (an auto-numbered id, 8-byte floats, byte-order text comparison like SQLite's), the
append-only triggers, the one-writer rule across processes and the errors each driver raises,
turned into the same domain errors."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import sqlite_utils

from review_app.errors import Busy, Unreachable, UnusableWorkspace
from review_app.settings import is_server_url, shown_location

# How long a write waits for another connection's transaction (an import's batch, a second
# process) before giving up with `Busy`. Transactions are kept short, so this is never reached
# in normal use.
BUSY_TIMEOUT_S = 30


class Database:
    """One connection to a workspace, in the store's dialect. Subclasses are the two backends."""

    dialect: str

    def execute(self, sql: str, params: Iterable[Any] | dict = ()) -> Any:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | dict]) -> Any:
        raise NotImplementedError

    def query(self, sql: str, params: Iterable[Any] | dict = ()) -> Iterator[dict]:
        cursor = self.execute(sql, params)
        names = [d[0] for d in cursor.description]
        for row in cursor.fetchall():
            yield dict(zip(names, row, strict=True))

    def trace(self, callback) -> None:
        """Call `callback(sql)` with every statement this connection runs (for tests that
        prove a screen writes nothing)."""
        raise NotImplementedError

    # Whether a private transaction (see `begin_write`) still holds up every other writer.
    private_writes_wait: bool

    def begin_write(self, private: bool = False) -> None:
        """Start the one write transaction the whole workspace allows at a time (every process
        and server included), waiting up to BUSY_TIMEOUT_S for another to finish. A `private`
        one writes only rows no other transaction reads or writes (an import's staged rows):
        it needs no turn where the backend allows several writers at once."""
        raise NotImplementedError

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        raise NotImplementedError

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested part of the open transaction that can fail alone."""
        name = f"sp_{threading.get_ident()}_{id(self)}"
        self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            if self.in_transaction:
                self.execute(f"ROLLBACK TO SAVEPOINT {name}")
                self.execute(f"RELEASE SAVEPOINT {name}")
            raise
        else:
            self.execute(f"RELEASE SAVEPOINT {name}")

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # ---- what differs in the schema ----

    def table_names(self) -> list[str]:
        raise NotImplementedError

    def guard_triggers(self) -> list[dict]:
        """Every trigger of the workspace: {name, table, sql}, its definition in the form
        `CREATE TRIGGER name BEFORE event ON table BEGIN SELECT RAISE(ABORT, 'message'); END`
        when it is an unconditional refusal (on either backend), else its own definition."""
        raise NotImplementedError

    def ddl(self, sql: str) -> str:
        """A schema statement written for SQLite, in this backend's dialect."""
        return sql

    def references(self) -> dict[str, set[str]]:
        """table -> the other tables its foreign keys point at."""
        raise NotImplementedError

    def primary_key(self, table: str) -> list[str]:
        """The columns of the table's primary key, in order (every column when it has none)."""
        raise NotImplementedError

    def continue_numbering(self, table: str) -> None:
        """After rows were written with their ids given, new rows of `table` are numbered
        after them."""

    def joined(self, expression: str) -> str:
        """SQL for the comma-joined texts of `expression` over a group."""
        return f"group_concat({expression})"

    def schema_prelude(self) -> list[str]:
        """What the migrations need to exist first (the function the triggers call)."""
        return []

    def append_only_trigger(self, table: str, event: str, message: str) -> list[str]:
        """The statements that (re)create the trigger refusing `event` on `table`."""
        name = f"{table}_append_only_{event.lower()}"
        return [
            f"DROP TRIGGER IF EXISTS {name}",
            f"CREATE TRIGGER {name} BEFORE {event} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
        ]


# ---------------------------------------------------------------------------------------------
# SQLite


class SQLiteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: str, read_only: bool = False):
        # Autocommit (isolation_level None): transactions are only the explicit ones. Python's
        # implicit BEGIN would leave a write made outside a transaction holding the shared
        # connection's write lock until some later commit, stalling every other writer.
        self.conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
        )
        self.utils = sqlite_utils.Database(self.conn)
        self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if read_only:
            self.conn.execute("PRAGMA query_only = ON")

    def execute(self, sql: str, params: Iterable[Any] | dict = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | dict]) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    def query(self, sql: str, params: Iterable[Any] | dict = ()) -> Iterator[dict]:
        return self.utils.query(sql, params)

    def trace(self, callback) -> None:
        self.conn.set_trace_callback(callback)

    # SQLite has one writer for everything: a private transaction waits like any other.
    private_writes_wait = True

    def begin_write(self, private: bool = False) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            raise Busy(
                f"the workspace stayed busy with other changes for {BUSY_TIMEOUT_S} s; "
                "nothing was saved, try again"
            ) from exc

    def rollback(self) -> None:
        self.utils.rollback()

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def close(self) -> None:
        self.conn.close()

    def table_names(self) -> list[str]:
        return [
            r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]

    def primary_key(self, table: str) -> list[str]:
        columns = list(self.conn.execute(f'PRAGMA table_info("{table}")'))
        keyed = sorted((c[5], c[1]) for c in columns if c[5])
        return [name for _, name in keyed] or [c[1] for c in columns]

    def references(self) -> dict[str, set[str]]:
        return {
            table: {
                row[2]
                for row in self.conn.execute(f'PRAGMA foreign_key_list("{table}")')
                if row[2] != table
            }
            for table in self.table_names()
        }

    def guard_triggers(self) -> list[dict]:
        return [
            {"name": name, "table": table, "sql": sql}
            for name, table, sql in self.conn.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"
            )
        ]


# ---------------------------------------------------------------------------------------------
# PostgreSQL

# Every statement of the store is written for SQLite's placeholders; psycopg takes `%s` and
# `%(name)s` (and then a literal `%` must be doubled). Quoted strings and identifiers are copied
# as they are.
_TOKENS = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|(?<![:\w]):([A-Za-z_]\w*)|%|(?<!NOT )\bIN \(\)"
)


@lru_cache(maxsize=4096)
def to_psycopg(sql: str, with_params: bool = True) -> str:
    """`sql` with SQLite placeholders turned into psycopg's (and `IN ()` into what PostgreSQL
    accepts). With parameters, psycopg reads every `%` as a placeholder, in quotes too, so a
    literal one is doubled; without, the text goes as it is."""

    def replace(match: re.Match) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%" if with_params else "%"
        if token == "IN ()":  # an empty list: SQLite takes it (nothing is in it), PostgreSQL not
            return "IN (NULL)"
        if match.group(1):
            return f"%({match.group(1)})s"
        if with_params and token[0] in "'\"":
            return token.replace("%", "%%")
        return token

    return _TOKENS.sub(replace, sql)


_UNREACHABLE = "the workspace's database server did not answer; nothing was saved, try again"

# The DDL types: SQLite's auto-numbered `INTEGER PRIMARY KEY`, its 8-byte REAL, and its text
# comparison by bytes (pairs are stored with system_x < system_y, and orderings must agree).
_DDL = [
    (
        re.compile(r"\bid INTEGER PRIMARY KEY\b"),
        "id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\)\s*WITHOUT ROWID\s*$"), ")"),
    (re.compile(r"\bTEXT\b(?! COLLATE)"), 'TEXT COLLATE "C"'),
]
_SQLITE_GUARD = re.compile(
    r"CREATE TRIGGER (?:IF NOT EXISTS )?(\w+) BEFORE (UPDATE|DELETE) ON (\w+)\s+"
    r"BEGIN SELECT RAISE\(ABORT, '((?:[^']|'')*)'\);\s*END;?",
    re.S,
)
# How a guard looks on PostgreSQL: a row trigger calling the one refusing function.
_PG_GUARD = re.compile(
    r"CREATE TRIGGER (\w+) BEFORE (UPDATE|DELETE) ON (?:public\.)?(\w+) FOR EACH ROW "
    r"EXECUTE FUNCTION (?:public\.)?review_app_refuse\('((?:[^']|'')*)'\)"
)
REFUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION review_app_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation'; END
$$"""


class PostgresDatabase(Database):
    dialect = "postgresql"

    # One number for the whole workspace: a write transaction holds this advisory lock until it
    # ends, so writes are serialised across every server exactly as SQLite serialises them
    # (BEGIN IMMEDIATE), and what a transaction read stays true until it commits.
    WRITE_LOCK = 0x7265_7669_6577  # "review"

    def __init__(self, url: str, read_only: bool = False):
        import psycopg

        self._psycopg = psycopg
        self._url, self._read_only = url, read_only
        self._trace = None
        self.conn = self._connect()

    def _connect(self) -> Any:
        psycopg, url = self._psycopg, self._url
        try:
            conn = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=10,
                cursor_factory=psycopg.ClientCursor,
            )
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnusableWorkspace(
                f"workspace {shown_location(url)}: cannot connect: {first}"
            ) from exc
        _adapt(conn)
        if self._read_only:
            conn.execute("SET default_transaction_read_only = on")
        return conn

    def execute(self, sql: str, params: Iterable[Any] | dict = ()) -> Any:
        if not isinstance(params, dict):
            params = list(params)
        if self._trace:
            self._trace(sql)
        outside = not self.in_transaction
        with _errors():
            try:
                return self.conn.execute(to_psycopg(sql, bool(params)), params or None)
            except self._psycopg.OperationalError:
                # The server went away (a restart): a statement outside a transaction is
                # simply run again on a new connection; inside one, the change is lost and
                # says so, and the next one connects again.
                if not self.conn.broken:
                    raise
                self._reopen()
                if not outside:
                    raise Unreachable(_UNREACHABLE) from None
                return self.conn.execute(to_psycopg(sql, bool(params)), params or None)

    def _reopen(self) -> None:
        try:
            self.conn.close()
        except Exception:  # already gone
            pass
        try:
            self.conn = self._connect()
        except UnusableWorkspace as exc:
            raise Unreachable(f"{_UNREACHABLE} ({exc})") from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | dict]) -> Any:
        if self._trace:
            self._trace(sql)
        rows = list(rows)
        values = _ROW_VALUES.fullmatch(sql)
        if values and rows and not isinstance(rows[0], dict):
            return self._insert_many(values, rows)
        cursor = self.conn.cursor()
        with _errors():
            cursor.executemany(to_psycopg(sql), rows)
        return cursor

    def _insert_many(self, values: re.Match, rows: list[Sequence[Any]]) -> Any:
        """Many rows of one `INSERT ... VALUES (?, ...)` as a few multi-row statements: one
        round trip per few hundred rows instead of one per row, so an import's transactions
        stay as short as on SQLite."""
        head, row, tail = values.group(1), values.group(2), values.group(3) or ""
        added, cursor = 0, None
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            sql = f"{head} VALUES {', '.join([row] * len(chunk))}{tail}"
            cursor = self.execute(sql, [value for r in chunk for value in r])
            added += max(cursor.rowcount, 0)
        return _Counted(added)

    def trace(self, callback) -> None:
        self._trace = callback

    # A private transaction takes no advisory lock: its rows are its own (PostgreSQL's row
    # locks keep it apart from others), so it neither waits for writers nor holds them up.
    private_writes_wait = False

    def begin_write(self, private: bool = False) -> None:
        if self._trace:
            self._trace("BEGIN")
        if self.conn.broken or self.conn.closed:
            self._reopen()
        # One round trip: a vote's transaction is a few short statements, so three more
        # exchanges with the server for its start would cost as much as its own work.
        # The lock waits for another writer as long as SQLite would, then gives up with Busy.
        begin = (
            "BEGIN"
            if private
            else f"BEGIN; SET LOCAL lock_timeout = {int(BUSY_TIMEOUT_S * 1000)}; "
            f"SELECT pg_advisory_xact_lock({self.WRITE_LOCK:d})"
        )
        with _errors():
            try:
                try:
                    self.conn.execute(begin)
                except self._psycopg.OperationalError:
                    if not self.conn.broken:
                        raise
                    self._reopen()
                    self.conn.execute(begin)
            except BaseException:
                self.rollback()
                raise

    def rollback(self) -> None:
        if self.conn.broken:  # the server went away: nothing of the transaction is left
            return
        if self.in_transaction:
            self.conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        if self.conn.broken:
            return False
        status = self.conn.info.transaction_status
        return status != self._psycopg.pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.conn.close()

    def table_names(self) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]

    def references(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {table: set() for table in self.table_names()}
        for table, target in self.conn.execute(
            "SELECT c.relname, t.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
            "JOIN pg_class t ON t.oid = k.confrelid WHERE k.contype = 'f' "
            "AND c.relnamespace = current_schema()::regnamespace"
        ):
            if target != table:
                found[table].add(target)
        return found

    def primary_key(self, table: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)",
            [table],
        ).fetchall()
        if rows:
            return [r[0] for r in rows]
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "AND table_schema = current_schema() ORDER BY ordinal_position",
                [table],
            )
        ]

    def continue_numbering(self, table: str) -> None:
        numbered = self.conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = 'id' "
            "AND table_schema = current_schema() AND is_identity = 'YES'",
            [table],
        ).fetchone()
        if not numbered:
            return
        sequence = self.conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table]).fetchone()
        if sequence and sequence[0]:
            self.conn.execute(
                f"SELECT setval(%s, coalesce((SELECT max(id) FROM {table}), 0) + 1, false)",
                [sequence[0]],
            )

    def guard_triggers(self) -> list[dict]:
        rows = self.conn.execute(
            "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid), t.tgenabled, "
            "p.proname, pg_get_functiondef(p.oid) FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
        ).fetchall()
        found = []
        for name, table, definition, enabled, function, body in rows:
            match = _PG_GUARD.fullmatch(definition)
            # It refuses only when enabled and its function is still the refusing one.
            if match and enabled == "O" and _refuses(function, body):
                event, message = match.group(2), match.group(4).replace("''", "'")
                definition = (
                    f"CREATE TRIGGER {name} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
                )
            found.append({"name": name, "table": table, "sql": definition})
        return found

    def ddl(self, sql: str) -> str:
        guard = _SQLITE_GUARD.fullmatch(sql.strip())
        if guard:
            name, event, table, message = guard.groups()
            return self._trigger_sql(name, table, event, message)
        if not re.match(r"\s*(CREATE|ALTER) TABLE\b", sql):
            return sql
        for pattern, replacement in _DDL:
            sql = pattern.sub(replacement, sql)
        return sql

    def schema_prelude(self) -> list[str]:
        return [REFUSE_FUNCTION]

    def joined(self, expression: str) -> str:
        return f"string_agg({expression}, ',')"

    def append_only_trigger(self, table: str, event: str, message: str) -> list[str]:
        name = f"{table}_append_only_{event.lower()}"
        return [
            f"DROP TRIGGER IF EXISTS {name} ON {table}",
            self._trigger_sql(name, table, event, message),
        ]

    @staticmethod
    def _trigger_sql(name: str, table: str, event: str, message: str) -> str:
        return (
            f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW "
            f"EXECUTE FUNCTION review_app_refuse('{message}')"
        )


_REFUSE_BODY = " ".join(REFUSE_FUNCTION.split("$$")[1].split())


# `INSERT INTO t (a, b) VALUES (?, ?) [ON CONFLICT ...]`, the one row's values being placeholders
# or plain literals.
_ROW_VALUES = re.compile(
    r"\s*(INSERT INTO [^()]+\([^()]*\))\s+VALUES\s*(\([^()]*\))(\s+ON CONFLICT .*)?\s*", re.S
)
_ROWS_PER_STATEMENT = 500


class _Counted:
    """What `executemany` returns when it ran several statements: their total row count."""

    def __init__(self, rowcount: int):
        self.rowcount = rowcount


def _refuses(function: str, definition: str) -> bool:
    """Whether a trigger function is the refusing one, unchanged: its whole body, nothing else."""
    parts = definition.split("$function$")
    return (
        function == "review_app_refuse"
        and len(parts) == 3
        and " ".join(parts[1].split()) == _REFUSE_BODY
        and "LANGUAGE plpgsql" in parts[0]
    )


def _adapt(conn: Any) -> None:
    """Values come and go as they do with SQLite: a Python bool is stored as 0 or 1 (the schema's
    flags are INTEGER columns), and an average or a big sum comes back as a float or an int,
    not a Decimal."""
    from psycopg.adapt import Dumper, Loader

    class BoolAsInt(Dumper):
        def dump(self, obj: bool) -> bytes:
            return b"1" if obj else b"0"

        def quote(self, obj: bool) -> bytes:
            return b"1" if obj else b"0"

    class NumericAsNumber(Loader):
        def load(self, data: Any) -> int | float:
            text = bytes(data).decode()
            if "." in text or "e" in text.lower() or text in ("NaN", "Infinity", "-Infinity"):
                return float(text)
            return int(text)

    conn.adapters.register_dumper(bool, BoolAsInt)
    conn.adapters.register_loader("numeric", NumericAsNumber)


@contextmanager
def _errors() -> Iterator[None]:
    """A lock not granted in time is `Busy`, as with SQLite's busy timeout."""
    from psycopg import errors

    try:
        yield
    except errors.LockNotAvailable as exc:
        raise Busy(
            f"the workspace stayed busy with other changes for {BUSY_TIMEOUT_S} s; "
            "nothing was saved, try again"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def driver_errors() -> tuple[type[Exception], ...]:
    """Every error either database driver raises."""
    import psycopg

    return (sqlite3.Error, psycopg.Error)


def refused_errors() -> tuple[type[Exception], ...]:
    """The errors either backend raises when a constraint or an append-only trigger refuses a
    change."""
    import psycopg

    return (sqlite3.IntegrityError, psycopg.IntegrityError)


def connect(location: str, read_only: bool = False) -> Database:
    """A connection to the workspace at `location` (a file path or a postgresql:// URL)."""
    if is_server_url(location):
        return PostgresDatabase(location, read_only)
    return SQLiteDatabase(location, read_only)
