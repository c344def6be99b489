"""The workspace: one SQLite file (WAL) through sqlite-utils. This is the only module that knows
SQL or table names; everything else asks it for rows, frames and atomic changes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils

from review_app.errors import NotFound
from review_app.migrations import MIGRATIONS

# Shared fragments of the frames statistics read, so the full and the lean frames can never
# select different rows.
_OUTCOME = (
    "CASE WHEN v.winner = p.system_x THEN 'x' WHEN v.winner = p.system_y THEN 'y' "
    "ELSE v.winner END AS outcome"
)
_LATEST_VOTES_OF_STUDY = (
    "FROM votes v JOIN pairs p ON p.id = v.pair_id JOIN reviewers r ON r.id = v.reviewer_id "
    "WHERE p.study_id = ? AND v.winner IS NOT NULL AND v.id = (SELECT max(v2.id) FROM votes v2 "
    "WHERE v2.pair_id = v.pair_id AND v2.reviewer_id = v.reviewer_id) ORDER BY v.id"
)
_VERDICT_ORIENTATION = (
    "CASE WHEN v.first_system = p.system_x THEN 'x' WHEN v.first_system = p.system_y "
    "THEN 'y' ELSE NULL END AS first, "
    "CASE WHEN v.winner = p.system_x THEN 'x' WHEN v.winner = p.system_y THEN 'y' "
    "WHEN v.winner = 'tie' THEN 'tie' ELSE NULL END AS outcome"
)
_VERDICTS_OF_STUDY = (
    "FROM verdicts v JOIN judge_runs j ON j.id = v.run_id JOIN pairs p ON p.id = v.pair_id "
    "WHERE j.study_id = ? ORDER BY v.id"
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Store:
    """A migrated workspace. Safe to share between threads: writes serialize on a lock and run
    in BEGIN IMMEDIATE transactions, so concurrent writers wait rather than fail."""

    def __init__(self, conn: sqlite3.Connection, path: str):
        self.path = path
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, path: str | Path) -> Store:
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        store = cls(conn, path)
        store.db.execute("PRAGMA busy_timeout = 30000")
        store.db.execute("PRAGMA foreign_keys = ON")
        if path != ":memory:":
            store.db.enable_wal()
        store.db.execute("PRAGMA synchronous = NORMAL")
        store.migrate()
        return store

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Store]:
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

    # ---- eval sets and outputs ----

    def eval_set(self, name: str) -> dict | None:
        return self._one("SELECT * FROM eval_sets WHERE name = ?", [name])

    def require_eval_set(self, name: str) -> dict:
        row = self.eval_set(name)
        if row is None:
            known = ", ".join(r["name"] for r in self._rows("SELECT name FROM eval_sets")) or "none"
            raise NotFound(f"no eval set named {name!r} (known: {known})")
        return row

    def ensure_eval_set(self, name: str) -> dict:
        row = self.eval_set(name)
        if row is None:
            self.db.execute(
                "INSERT INTO eval_sets (name, created_at) VALUES (?, ?)", [name, now_iso()]
            )
            row = self.eval_set(name)
        return row

    def eval_sets(self) -> list[dict]:
        return self._rows(
            "SELECT e.*, (SELECT count(*) FROM items i WHERE i.eval_set_id = e.id) AS n_items "
            "FROM eval_sets e ORDER BY e.name"
        )

    def item_index(self, eval_set_id: int) -> dict[str, tuple[int, str]]:
        """item_key -> (item id, fingerprint of prompt/reference/category)."""
        with self._lock:
            cursor = self.db.execute(
                "SELECT item_key, id, prompt, reference, category FROM items WHERE eval_set_id = ?",
                [eval_set_id],
            )
            return {
                key: (item_id, item_fingerprint(prompt, reference, category))
                for key, item_id, prompt, reference, category in cursor
            }

    def output_index(self, eval_set_id: int) -> dict[tuple[int, str], str]:
        """(item id, system) -> digest of the stored output text."""
        with self._lock:
            cursor = self.db.execute(
                "SELECT o.item_id, o.system, o.text FROM outputs o JOIN items i ON i.id = o.item_id "
                "WHERE i.eval_set_id = ?",
                [eval_set_id],
            )
            return {(item_id, system): text_digest(text) for item_id, system, text in cursor}

    def insert_items(self, eval_set_id: int, items: list[dict]) -> dict[str, int]:
        """Insert new items; returns item_key -> id."""
        with self._lock:
            self.db.conn.executemany(
                "INSERT INTO items (eval_set_id, item_key, prompt, reference, category, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        eval_set_id,
                        it["item_key"],
                        it["prompt"],
                        it["reference"],
                        it["category"],
                        json.dumps(it["metadata"], ensure_ascii=False),
                    )
                    for it in items
                ],
            )
            keys = [it["item_key"] for it in items]
            ids: dict[str, int] = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, item_id in self.db.execute(
                    f"SELECT item_key, id FROM items WHERE eval_set_id = ? AND item_key IN ({marks})",
                    [eval_set_id, *chunk],
                ):
                    ids[key] = item_id
            return ids

    def update_item(self, item_id: int, item: dict) -> None:
        self.db.execute(
            "UPDATE items SET prompt = ?, reference = ?, category = ?, metadata = ? WHERE id = ?",
            [
                item["prompt"],
                item["reference"],
                item["category"],
                json.dumps(item["metadata"], ensure_ascii=False),
                item_id,
            ],
        )

    def ensure_systems(self, names: Iterable[str]) -> None:
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO systems (name) VALUES (?)", [(n,) for n in set(names)]
        )

    def system_names(self) -> list[str]:
        return [r["name"] for r in self._rows("SELECT name FROM systems ORDER BY name")]

    def upsert_outputs(self, rows: list[tuple[int, str, str]]) -> None:
        """(item id, system, text) rows; an existing (item, system) is overwritten."""
        with self._lock:
            self.db.conn.executemany(
                "INSERT INTO outputs (item_id, system, text) VALUES (?, ?, ?) "
                "ON CONFLICT (item_id, system) DO UPDATE SET text = excluded.text",
                rows,
            )

    def eval_set_content_hash(self, eval_set_id: int) -> str:
        """Hash of the eval set's items (the held-out questions), in a stable order. Outputs of
        a frozen set cannot change, so the hash with the study's systems pins what was judged."""
        digest = hashlib.sha256()
        with self._lock:
            for row in self.db.execute(
                "SELECT item_key, prompt, coalesce(reference, ''), category, metadata FROM items "
                "WHERE eval_set_id = ? ORDER BY item_key",
                [eval_set_id],
            ):
                digest.update(json.dumps(row, ensure_ascii=False).encode())
        return digest.hexdigest()

    def freeze_eval_set(self, eval_set_id: int) -> str:
        content_hash = self.eval_set_content_hash(eval_set_id)
        self.db.execute(
            "UPDATE eval_sets SET content_hash = ?, frozen_at = coalesce(frozen_at, ?) WHERE id = ?",
            [content_hash, now_iso(), eval_set_id],
        )
        return content_hash

    def studies_using_eval_set(self, eval_set_id: int) -> list[str]:
        return [
            r["name"]
            for r in self._rows("SELECT name FROM studies WHERE eval_set_id = ?", [eval_set_id])
        ]

    def items_with_outputs(self, eval_set_id: int, systems: Iterable[str]) -> dict[str, set[int]]:
        """system -> ids of items of the eval set that have an output from it."""
        found: dict[str, set[int]] = {s: set() for s in systems}
        if not found:
            return found
        marks = ",".join("?" * len(found))
        with self._lock:
            for item_id, system in self.db.execute(
                f"SELECT o.item_id, o.system FROM outputs o JOIN items i ON i.id = o.item_id "
                f"WHERE i.eval_set_id = ? AND o.system IN ({marks})",
                [eval_set_id, *found],
            ):
                found[system].add(item_id)
        return found

    def item_ids_by_key(self, eval_set_id: int) -> dict[str, int]:
        return {key: item_id for key, (item_id, _) in self.item_index(eval_set_id).items()}

    # ---- studies and pairs ----

    def study(self, name: str) -> dict | None:
        return self._one("SELECT * FROM studies WHERE name = ?", [name])

    def study_by_id(self, study_id: int) -> dict | None:
        return self._one("SELECT * FROM studies WHERE id = ?", [study_id])

    def require_study(self, name: str) -> dict:
        row = self.study(name)
        if row is None:
            known = ", ".join(s["name"] for s in self.studies()) or "none"
            raise NotFound(f"no study named {name!r} (known: {known})")
        return row

    def studies(self) -> list[dict]:
        return self._rows(
            "SELECT s.*, e.name AS eval_set, "
            "(SELECT count(*) FROM pairs p WHERE p.study_id = s.id) AS n_pairs "
            "FROM studies s JOIN eval_sets e ON e.id = s.eval_set_id ORDER BY s.id"
        )

    def insert_study(
        self,
        name: str,
        eval_set_id: int,
        reviews_per_pair: int,
        show_reference: bool = False,
        criteria: list[str] | None = None,
        ask_rationale: bool = True,
    ) -> int:
        cursor = self.db.execute(
            "INSERT INTO studies (name, eval_set_id, reviews_per_pair, show_reference, criteria, "
            "ask_rationale, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                name,
                eval_set_id,
                reviews_per_pair,
                int(show_reference),
                json.dumps(criteria or []),
                int(ask_rationale),
                now_iso(),
            ],
        )
        return cursor.lastrowid

    def add_comparison(self, study_id: int, system_a: str, system_b: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO study_comparisons (study_id, system_a, system_b) VALUES (?, ?, ?)",
            [study_id, system_a, system_b],
        )

    def comparisons(self, study_id: int) -> list[tuple[str, str]]:
        return [
            (r["system_a"], r["system_b"])
            for r in self._rows(
                "SELECT system_a, system_b FROM study_comparisons WHERE study_id = ? ORDER BY id",
                [study_id],
            )
        ]

    def insert_pairs(self, study_id: int, pairs: Iterable[tuple[int, str, str]]) -> int:
        """(item id, system_x, system_y) in canonical order; existing pairs are kept."""
        with self._lock:
            before = self.db.conn.total_changes
            self.db.conn.executemany(
                "INSERT INTO pairs (study_id, item_id, system_x, system_y) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(study_id, item_id, x, y) for item_id, x, y in pairs],
            )
            return self.db.conn.total_changes - before

    def pair_id(self, study_id: int, item_id: int, system_x: str, system_y: str) -> int | None:
        row = self._one(
            "SELECT id FROM pairs WHERE study_id = ? AND item_id = ? AND system_x = ? "
            "AND system_y = ?",
            [study_id, item_id, system_x, system_y],
        )
        return row["id"] if row else None

    def pair_index(self, study_id: int) -> dict[tuple[str, str, str], int]:
        """(item_key, system_x, system_y) -> pair id."""
        with self._lock:
            cursor = self.db.execute(
                "SELECT i.item_key, p.system_x, p.system_y, p.id FROM pairs p "
                "JOIN items i ON i.id = p.item_id WHERE p.study_id = ?",
                [study_id],
            )
            return {(key, x, y): pid for key, x, y, pid in cursor}

    def pair(self, pair_id: int) -> dict:
        row = self._one(
            "SELECT p.id AS pair_id, p.study_id, p.system_x, p.system_y, i.id AS item_id, "
            "i.item_key, i.prompt, i.reference, i.category, i.metadata, "
            "ox.text AS output_x, oy.text AS output_y FROM pairs p "
            "JOIN items i ON i.id = p.item_id "
            "JOIN outputs ox ON ox.item_id = p.item_id AND ox.system = p.system_x "
            "JOIN outputs oy ON oy.item_id = p.item_id AND oy.system = p.system_y "
            "WHERE p.id = ?",
            [pair_id],
        )
        if row is None:
            raise NotFound(f"no pair with id {pair_id}")
        return row

    def pairs_frame(self, study_id: int) -> pd.DataFrame:
        """One row per pair with both outputs and their lengths (statistics input)."""
        return self._frame(
            "SELECT p.id AS pair_id, i.item_key, i.category, p.system_x, p.system_y, i.prompt, "
            "coalesce(i.reference, '') AS reference, ox.text AS output_x, oy.text AS output_y, "
            "length(i.prompt) AS len_prompt, length(ox.text) AS len_x, length(oy.text) AS len_y "
            "FROM pairs p JOIN items i ON i.id = p.item_id "
            "JOIN outputs ox ON ox.item_id = p.item_id AND ox.system = p.system_x "
            "JOIN outputs oy ON oy.item_id = p.item_id AND oy.system = p.system_y "
            "WHERE p.study_id = ? ORDER BY p.id",
            [study_id],
        )

    # ---- reviewers ----

    def reviewer(self, name: str) -> dict | None:
        return self._one("SELECT * FROM reviewers WHERE name = ?", [name])

    def reviewer_by_id(self, reviewer_id: int) -> dict | None:
        return self._one("SELECT * FROM reviewers WHERE id = ?", [reviewer_id])

    def reviewer_by_token_hash(self, token_hash: str) -> dict | None:
        return self._one("SELECT * FROM reviewers WHERE token_hash = ?", [token_hash])

    def reviewers(self) -> list[dict]:
        return self._rows(
            "SELECT r.id, r.name, r.role, r.created_at, r.revoked_at, s.name AS study, "
            "(SELECT count(DISTINCT v.pair_id) FROM votes v WHERE v.reviewer_id = r.id "
            " AND v.winner IS NOT NULL AND v.id = (SELECT max(v2.id) FROM votes v2 "
            " WHERE v2.pair_id = v.pair_id AND v2.reviewer_id = v.reviewer_id)) AS n_votes "
            "FROM reviewers r LEFT JOIN studies s ON s.id = r.study_id ORDER BY r.name"
        )

    def insert_reviewer(
        self, name: str, role: str, token_hash: str | None, study_id: int | None = None
    ) -> int:
        cursor = self.db.execute(
            "INSERT INTO reviewers (name, role, token_hash, study_id, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [name, role, token_hash, study_id, now_iso()],
        )
        return cursor.lastrowid

    def set_reviewer_token(
        self, reviewer_id: int, token_hash: str, role: str, study_id: int | None
    ) -> None:
        """A new link (and role) for a reviewer; their study changes only when one is given."""
        self.db.execute(
            "UPDATE reviewers SET token_hash = ?, role = ?, revoked_at = NULL, "
            "study_id = coalesce(?, study_id) WHERE id = ?",
            [token_hash, role, study_id, reviewer_id],
        )

    def revoke_reviewer(self, reviewer_id: int) -> None:
        self.db.execute(
            "UPDATE reviewers SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            [now_iso(), reviewer_id],
        )

    def ensure_reviewers(self, names: Iterable[str]) -> dict[str, int]:
        """Reviewers known only by name (imported votes): no token, so they cannot log in."""
        ids = {}
        for name in set(names):
            row = self.reviewer(name)
            ids[name] = row["id"] if row else self.insert_reviewer(name, "reviewer", None)
        return ids

    # ---- assignments and votes ----

    def insert_votes(self, votes: list[dict]) -> None:
        """Append votes; each dict has the votes columns except id."""
        columns = [
            "pair_id",
            "reviewer_id",
            "shown_left",
            "shown_right",
            "choice",
            "winner",
            "criteria",
            "rationale",
            "flags",
            "ms_spent",
            "source",
            "created_at",
            "supersedes",
        ]
        with self._lock:
            self.db.conn.executemany(
                f"INSERT INTO votes ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [tuple(v.get(c) for c in columns) for v in votes],
            )

    def latest_vote_keys(self, study_id: int) -> dict[tuple[int, int], dict]:
        """(pair id, reviewer id) -> the latest vote row, for import de-duplication."""
        rows = self._rows(
            "SELECT v.* FROM votes v JOIN pairs p ON p.id = v.pair_id WHERE p.study_id = ? "
            "AND v.id = (SELECT max(v2.id) FROM votes v2 WHERE v2.pair_id = v.pair_id "
            "AND v2.reviewer_id = v.reviewer_id)",
            [study_id],
        )
        return {(r["pair_id"], r["reviewer_id"]): r for r in rows}

    def votes_frame(self, study_id: int) -> pd.DataFrame:
        """The latest vote of each reviewer on each pair, retractions dropped."""
        return self._frame(
            f"SELECT v.id AS vote_id, v.pair_id, r.name AS reviewer, v.winner, {_OUTCOME}, "
            f"v.shown_left, v.rationale, v.created_at {_LATEST_VOTES_OF_STUDY}",
            [study_id],
        )

    def vote_history(self, study_id: int) -> list[dict]:
        """Every vote row of the study, superseded ones included, in insertion order."""
        return self._rows(
            "SELECT v.id, i.item_key, p.system_x, p.system_y, r.name AS reviewer, v.choice, "
            "v.winner, v.shown_left, v.shown_right, v.criteria, v.rationale, v.flags, v.ms_spent, "
            "v.source, v.created_at, v.supersedes FROM votes v JOIN pairs p ON p.id = v.pair_id "
            "JOIN items i ON i.id = p.item_id JOIN reviewers r ON r.id = v.reviewer_id "
            "WHERE p.study_id = ? ORDER BY v.id",
            [study_id],
        )

    def study_counts(self, study_id: int) -> dict[str, int]:
        row = self._one(
            "WITH live AS (SELECT v.pair_id, v.reviewer_id FROM votes v "
            " JOIN pairs p ON p.id = v.pair_id WHERE p.study_id = :s AND v.winner IS NOT NULL "
            " AND v.id = (SELECT max(v2.id) FROM votes v2 WHERE v2.pair_id = v.pair_id "
            " AND v2.reviewer_id = v.reviewer_id)) "
            "SELECT (SELECT count(*) FROM pairs WHERE study_id = :s) AS pairs, "
            "(SELECT count(*) FROM live) AS votes, "
            "(SELECT count(DISTINCT reviewer_id) FROM live) AS reviewers, "
            "(SELECT count(*) FROM judge_runs WHERE study_id = :s) AS judge_runs, "
            "(SELECT count(*) FROM verdicts v JOIN judge_runs j ON j.id = v.run_id "
            " WHERE j.study_id = :s) AS verdicts",
            {"s": study_id},
        )
        return dict(row)

    # ---- judge runs and verdicts ----

    def judge_run(self, run_id: int) -> dict | None:
        return self._one("SELECT * FROM judge_runs WHERE id = ?", [run_id])

    def ensure_imported_run(self, study_id: int, judge: str) -> int:
        """The run that holds verdicts imported from files for judge `judge`."""
        row = self._one(
            "SELECT id FROM judge_runs WHERE study_id = ? AND judge = ? AND source = 'import'",
            [study_id, judge],
        )
        if row:
            return row["id"]
        cursor = self.db.execute(
            "INSERT INTO judge_runs (study_id, label, judge, source, status, created_at, "
            "params_hash) VALUES (?, ?, ?, 'import', 'imported', ?, 'import')",
            [study_id, judge, judge, now_iso()],
        )
        return cursor.lastrowid

    def verdict_index(self, run_ids: Iterable[int]) -> dict[tuple[int, int, str], dict]:
        """(run id, pair id, first_system) -> stored verdict, for import de-duplication."""
        ids = list(run_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._rows(f"SELECT * FROM verdicts WHERE run_id IN ({marks})", ids)
        return {(r["run_id"], r["pair_id"], r["first_system"]): r for r in rows}

    def insert_verdicts(self, verdicts: list[dict]) -> int:
        """Insert verdicts; an existing (run, pair, first_system) is never duplicated."""
        columns = [
            "run_id",
            "pair_id",
            "first_system",
            "winner",
            "scores",
            "explanation",
            "raw_text",
            "parse_error",
            "finish_reason",
            "tokens_in",
            "tokens_out",
            "cost",
            "latency_ms",
            "attempts",
            "created_at",
        ]
        defaults = {"scores": "{}", "explanation": "", "raw_text": "", "tokens_in": 0}
        defaults |= {"tokens_out": 0, "attempts": 1}  # no cost: an imported verdict's is unknown
        with self._lock:
            before = self.db.conn.total_changes
            self.db.conn.executemany(
                f"INSERT INTO verdicts ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING",
                [
                    tuple(
                        v.get(c, defaults.get(c)) if v.get(c) is not None else defaults.get(c)
                        for c in columns
                    )
                    for v in verdicts
                ],
            )
            return self.db.conn.total_changes - before

    def verdicts_frame(self, study_id: int) -> pd.DataFrame:
        """Every verdict of the study's runs, labelled by run, oriented to the canonical order."""
        return self._frame(
            f"SELECT v.id AS verdict_id, v.run_id, j.label AS judge, v.pair_id, v.first_system, "
            f"{_VERDICT_ORIENTATION}, v.winner, v.explanation, v.raw_text, v.parse_error, v.cost, "
            f"v.latency_ms, v.tokens_in, v.tokens_out {_VERDICTS_OF_STUDY}",
            [study_id],
        )

    def verdict_rows(self, study_id: int) -> list[dict]:
        """Verdicts of the study for export, with item keys and judge labels."""
        return self._rows(
            "SELECT i.item_key, p.system_x, p.system_y, j.label AS judge, v.first_system, "
            "v.winner, v.explanation, v.parse_error, v.tokens_in, v.tokens_out, v.cost, "
            "v.latency_ms, v.attempts, v.created_at FROM verdicts v "
            "JOIN judge_runs j ON j.id = v.run_id JOIN pairs p ON p.id = v.pair_id "
            "JOIN items i ON i.id = p.item_id WHERE j.study_id = ? ORDER BY v.id",
            [study_id],
        )

    # ---- review ----
    # Assignment states (assignments.done): 0 open (leased to the reviewer), 1 voted, 2 skipped,
    # 3 released (the lease ran out and other reviewers filled the pair meanwhile).

    def max_pair_id(self) -> int:
        row = self._one("SELECT max(id) AS m FROM pairs")
        return row["m"] or 0

    def study_pair_ids(self, study_id: int) -> list[int]:
        with self._lock:
            cursor = self.db.execute(
                "SELECT id FROM pairs WHERE study_id = ? ORDER BY id", [study_id]
            )
            return [pair_id for (pair_id,) in cursor]

    def assignment(self, assignment_id: int) -> dict | None:
        return self._one(
            "SELECT a.*, p.study_id, p.system_x, p.system_y FROM assignments a "
            "JOIN pairs p ON p.id = a.pair_id WHERE a.id = ?",
            [assignment_id],
        )

    def open_assignments(self, reviewer_id: int, study_id: int) -> list[dict]:
        """The reviewer's open assignments in the study, the most recently leased first."""
        return self._rows(
            "SELECT * FROM assignments WHERE reviewer_id = ? AND study_id = ? AND done = 0 "
            "ORDER BY leased_until DESC, id DESC",
            [reviewer_id, study_id],
        )

    def last_position(self, reviewer_id: int, study_id: int) -> int:
        row = self._one(
            "SELECT max(position) AS m FROM assignments WHERE reviewer_id = ? AND study_id = ?",
            [reviewer_id, study_id],
        )
        return -1 if row["m"] is None else row["m"]

    def count_voted(self, reviewer_id: int, study_id: int) -> int:
        """Pairs of the study the reviewer voted on in the app (and did not undo)."""
        row = self._one(
            "SELECT count(*) AS n FROM assignments WHERE reviewer_id = ? AND study_id = ? "
            "AND done = 1",
            [reviewer_id, study_id],
        )
        return row["n"]

    def seen_pairs(self, reviewer_id: int, pair_ids: list[int]) -> set[int]:
        """Which of `pair_ids` the reviewer was ever handed or voted on (imports included)."""
        marks = ",".join("?" * len(pair_ids))
        rows = self._rows(
            f"SELECT pair_id FROM assignments WHERE reviewer_id = ? AND pair_id IN ({marks}) "
            f"UNION SELECT pair_id FROM votes WHERE reviewer_id = ? AND pair_id IN ({marks})",
            [reviewer_id, *pair_ids, reviewer_id, *pair_ids],
        )
        return {r["pair_id"] for r in rows}

    def live_reviews(self, pair_ids: list[int], now: float) -> dict[int, dict]:
        """pair id -> {study_id, system_x, system_y, n, x_left, y_left} over the reviewers who
        count towards the pair's k: a current (not retracted) vote or an unexpired lease."""
        marks = ",".join("?" * len(pair_ids))
        rows = self._rows(
            "WITH live AS ("
            " SELECT a.pair_id, a.reviewer_id, a.shown_left FROM assignments a"
            f" WHERE a.pair_id IN ({marks}) AND (a.done = 1 OR (a.done = 0 AND a.leased_until > ?))"
            " UNION"
            " SELECT v.pair_id, v.reviewer_id, v.shown_left FROM votes v"
            f" WHERE v.pair_id IN ({marks}) AND v.winner IS NOT NULL AND v.id = ("
            "  SELECT max(v2.id) FROM votes v2"
            "  WHERE v2.pair_id = v.pair_id AND v2.reviewer_id = v.reviewer_id)"
            ") SELECT p.id AS pair_id, p.study_id, p.system_x, p.system_y,"
            " count(DISTINCT l.reviewer_id) AS n,"
            " coalesce(sum(l.shown_left = p.system_x), 0) AS x_left,"
            " coalesce(sum(l.shown_left = p.system_y), 0) AS y_left"
            f" FROM pairs p LEFT JOIN live l ON l.pair_id = p.id WHERE p.id IN ({marks})"
            " GROUP BY p.id",
            [*pair_ids, now, *pair_ids, *pair_ids],
        )
        return {r["pair_id"]: r for r in rows}

    def reviewer_left_balances(
        self, reviewer_id: int, study_id: int, now: float
    ) -> dict[tuple[str, str], int]:
        """(system_x, system_y) -> (times x was shown left) - (times y was), over the reviewer's
        live assignments in the study."""
        balance: dict[tuple[str, str], int] = {}
        for row in self._rows(
            "SELECT shown_left, shown_right, count(*) AS n FROM assignments"
            " WHERE reviewer_id = ? AND study_id = ?"
            " AND (done = 1 OR (done = 0 AND leased_until > ?)) GROUP BY shown_left, shown_right",
            [reviewer_id, study_id, now],
        ):
            comparison = tuple(sorted((row["shown_left"], row["shown_right"])))
            sign = 1 if row["shown_left"] == comparison[0] else -1
            balance[comparison] = balance.get(comparison, 0) + sign * row["n"]
        return balance

    def insert_assignment(
        self,
        pair_id: int,
        reviewer_id: int,
        study_id: int,
        shown: tuple[str, str],
        position: int,
        leased_until: float,
        done: int = 0,
    ) -> int:
        """Hand a pair to a reviewer; `shown` = (system on the left, system on the right)."""
        cursor = self.db.execute(
            "INSERT INTO assignments (pair_id, reviewer_id, study_id, shown_left, shown_right, "
            "position, leased_until, done, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [pair_id, reviewer_id, study_id, *shown, position, leased_until, done, now_iso()],
        )
        return cursor.lastrowid

    def set_assignment_state(
        self, assignment_id: int, done: int, leased_until: float | None = None
    ) -> None:
        self.db.execute(
            "UPDATE assignments SET done = ?, leased_until = coalesce(?, leased_until) "
            "WHERE id = ?",
            [done, leased_until, assignment_id],
        )

    def latest_vote(self, pair_id: int, reviewer_id: int) -> dict | None:
        return self._one(
            "SELECT * FROM votes WHERE pair_id = ? AND reviewer_id = ? ORDER BY id DESC LIMIT 1",
            [pair_id, reviewer_id],
        )

    def insert_vote(self, vote: dict) -> int:
        """Append one vote (a dict of votes columns except id) and return its id."""
        columns = list(vote)
        with self._lock:
            cursor = self.db.execute(
                f"INSERT INTO votes ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [vote[c] for c in columns],
            )
            return cursor.lastrowid

    def reviewer_votes(self, reviewer_id: int, study_id: int, limit: int) -> list[dict]:
        """The reviewer's `limit` most recently handed pairs that hold a current app vote, newest
        first: the vote, its assignment and the prompt."""
        return self._rows(
            "SELECT v.id AS vote_id, v.choice, v.criteria, v.rationale, v.flags, v.created_at,"
            " a.id AS assignment_id, a.shown_left, a.shown_right, i.prompt FROM assignments a"
            " JOIN votes v ON v.id = (SELECT max(v2.id) FROM votes v2"
            "  WHERE v2.pair_id = a.pair_id AND v2.reviewer_id = a.reviewer_id)"
            " JOIN pairs p ON p.id = a.pair_id JOIN items i ON i.id = p.item_id"
            " WHERE a.reviewer_id = ? AND a.study_id = ? AND a.done = 1"
            " ORDER BY a.id DESC LIMIT ?",
            [reviewer_id, study_id, limit],
        )

    def last_vote(self, reviewer_id: int, study_id: int) -> dict | None:
        """The reviewer's most recent current app vote in the study, with its assignment."""
        return self._one(
            "SELECT v.id AS vote_id, a.id AS assignment_id, a.pair_id, a.shown_left"
            " FROM votes v JOIN assignments a ON a.pair_id = v.pair_id"
            " AND a.reviewer_id = v.reviewer_id"
            " WHERE v.reviewer_id = ? AND a.study_id = ? AND a.done = 1 AND v.winner IS NOT NULL"
            " ORDER BY v.id DESC LIMIT 1",
            [reviewer_id, study_id],
        )

    def remaining_for_reviewer(
        self, reviewer_id: int, study_id: int, reviews_per_pair: int, now: float
    ) -> int:
        """Pairs of the study the reviewer has not seen that still need a review."""
        row = self._one(
            "WITH live AS ("
            " SELECT a.pair_id, a.reviewer_id FROM assignments a JOIN pairs p ON p.id = a.pair_id"
            " WHERE p.study_id = :s AND (a.done = 1 OR (a.done = 0 AND a.leased_until > :now))"
            " UNION"
            " SELECT v.pair_id, v.reviewer_id FROM votes v JOIN pairs p ON p.id = v.pair_id"
            " WHERE p.study_id = :s AND v.winner IS NOT NULL AND v.id = ("
            "  SELECT max(v2.id) FROM votes v2"
            "  WHERE v2.pair_id = v.pair_id AND v2.reviewer_id = v.reviewer_id)"
            "), counts AS (SELECT pair_id, count(*) AS n FROM live GROUP BY pair_id)"
            " SELECT count(*) AS n FROM pairs p LEFT JOIN counts c ON c.pair_id = p.id"
            " WHERE p.study_id = :s AND coalesce(c.n, 0) < :k"
            " AND p.id NOT IN (SELECT pair_id FROM assignments WHERE reviewer_id = :r)"
            " AND p.id NOT IN (SELECT pair_id FROM votes WHERE reviewer_id = :r)",
            {"s": study_id, "now": now, "k": reviews_per_pair, "r": reviewer_id},
        )
        return row["n"]

    # ---- calibration ----

    def calibration_runs(self, study_id: int) -> list[dict]:
        """The study's judge runs, oldest first, with their rubric's name and version and how
        many verdicts each holds (the calibration screen lists them side by side)."""
        return self._rows(
            "SELECT j.id AS run_id, j.label, j.judge, j.source, j.status, j.rubric_hash, "
            "r.name AS rubric_name, r.version AS rubric_version, "
            "(SELECT count(*) FROM verdicts v WHERE v.run_id = j.id) AS n_verdicts "
            "FROM judge_runs j LEFT JOIN rubrics r ON r.id = j.rubric_id "
            "WHERE j.study_id = ? ORDER BY j.id",
            [study_id],
        )

    def calibration_data_version(self, study_id: int) -> str:
        """Changes whenever a vote, verdict, run or pair of the study is added: a cache key for
        statistics derived from them (votes and verdicts are append-only)."""
        row = self._one(
            "SELECT (SELECT count(*) || '.' || coalesce(max(v.id), 0) FROM votes v "
            " JOIN pairs p ON p.id = v.pair_id WHERE p.study_id = :s) AS votes, "
            "(SELECT count(*) || '.' || coalesce(max(v.id), 0) FROM verdicts v "
            " JOIN judge_runs j ON j.id = v.run_id WHERE j.study_id = :s) AS verdicts, "
            "(SELECT count(*) || '.' || coalesce(max(id), 0) FROM judge_runs WHERE study_id = :s) "
            " AS runs, (SELECT count(*) FROM pairs WHERE study_id = :s) AS pairs",
            {"s": study_id},
        )
        return "/".join(str(row[k]) for k in ("votes", "verdicts", "runs", "pairs"))

    def calibration_pairs_frame(self, study_id: int) -> pd.DataFrame:
        """The columns of `pairs_frame` the statistics read: no texts, only the outputs'
        lengths, since a large study's texts take seconds to load."""
        return self._frame(
            "SELECT p.id AS pair_id, i.item_key, i.category, p.system_x, p.system_y, "
            "length(ox.text) AS len_x, length(oy.text) AS len_y "
            "FROM pairs p JOIN items i ON i.id = p.item_id "
            "JOIN outputs ox ON ox.item_id = p.item_id AND ox.system = p.system_x "
            "JOIN outputs oy ON oy.item_id = p.item_id AND oy.system = p.system_y "
            "WHERE p.study_id = ? ORDER BY p.id",
            [study_id],
        )

    def calibration_votes_frame(self, study_id: int) -> pd.DataFrame:
        """The columns of `votes_frame` the statistics read (same votes: the latest of each
        reviewer on each pair, retractions dropped)."""
        return self._frame(
            f"SELECT v.id AS vote_id, v.pair_id, r.name AS reviewer, {_OUTCOME}, v.shown_left "
            f"{_LATEST_VOTES_OF_STUDY}",
            [study_id],
        )

    def calibration_verdicts_frame(self, study_id: int) -> pd.DataFrame:
        """The columns of `verdicts_frame` the statistics read, with the run id instead of its
        label (the caller names runs)."""
        return self._frame(
            f"SELECT v.id AS verdict_id, v.run_id, v.pair_id, {_VERDICT_ORIENTATION}, v.cost, "
            f"v.latency_ms {_VERDICTS_OF_STUDY}",
            [study_id],
        )

    # ---- gate ----

    def thresholds(self, study_id: int) -> list[dict]:
        rows = self._rows("SELECT * FROM thresholds WHERE study_id = ? ORDER BY id", [study_id])
        for row in rows:
            row["params"] = json.loads(row["params"])
        return rows

    def insert_threshold(
        self, study_id: int, metric: str, params: dict, comparator: str, value: float, by: str
    ) -> int:
        cursor = self.db.execute(
            "INSERT INTO thresholds (study_id, metric, params, comparator, value, created_at, "
            "created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                study_id,
                metric,
                json.dumps(params, sort_keys=True),
                comparator,
                value,
                now_iso(),
                by,
            ],
        )
        return cursor.lastrowid

    def update_threshold(
        self, threshold_id: int, metric: str, params: dict, comparator: str, value: float
    ) -> None:
        self.db.execute(
            "UPDATE thresholds SET metric = ?, params = ?, comparator = ?, value = ? WHERE id = ?",
            [metric, json.dumps(params, sort_keys=True), comparator, value, threshold_id],
        )

    def delete_threshold(self, threshold_id: int) -> None:
        self.db.execute("DELETE FROM thresholds WHERE id = ?", [threshold_id])

    def threshold_lock(self, study_id: int) -> dict | None:
        return self._one("SELECT * FROM threshold_locks WHERE study_id = ?", [study_id])

    def insert_threshold_lock(
        self, study_id: int, by: str, content_hash: str, thresholds: list[dict]
    ) -> None:
        self.db.execute(
            "INSERT INTO threshold_locks (study_id, locked_at, locked_by, content_hash, thresholds) "
            "VALUES (?, ?, ?, ?, ?)",
            [study_id, now_iso(), by, content_hash, json.dumps(thresholds, sort_keys=True)],
        )

    def insert_deviation(
        self, study_id: int, by: str, before: str, after: str, reason: str
    ) -> None:
        self.db.execute(
            "INSERT INTO threshold_deviations (study_id, changed_at, changed_by, before, after, "
            "reason) VALUES (?, ?, ?, ?, ?, ?)",
            [study_id, now_iso(), by, before, after, reason],
        )

    def deviations(self, study_id: int) -> list[dict]:
        return self._rows(
            "SELECT changed_at, changed_by, before, after, reason FROM threshold_deviations "
            "WHERE study_id = ? ORDER BY id",
            [study_id],
        )

    def outputs_of_system(self, eval_set_id: int, system: str) -> list[dict]:
        return self._rows(
            "SELECT o.id AS output_id, i.item_key, i.category, i.prompt, o.text FROM outputs o "
            "JOIN items i ON i.id = o.item_id WHERE i.eval_set_id = ? AND o.system = ? "
            "ORDER BY i.item_key",
            [eval_set_id, system],
        )

    def insert_final_review(
        self, study_id: int, output_id: int, reviewer_id: int, acceptable: bool, comment: str
    ) -> None:
        self.db.execute(
            "INSERT INTO final_reviews (study_id, output_id, reviewer_id, acceptable, comment, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [study_id, output_id, reviewer_id, int(acceptable), comment, now_iso()],
        )

    def final_reviews(self, study_id: int) -> list[dict]:
        """The latest final-review mark of each output of the study."""
        return self._rows(
            "SELECT f.output_id, i.item_key, o.system, f.acceptable, f.comment, r.name AS reviewer, "
            "f.created_at FROM final_reviews f JOIN outputs o ON o.id = f.output_id "
            "JOIN items i ON i.id = o.item_id JOIN reviewers r ON r.id = f.reviewer_id "
            "WHERE f.study_id = ? AND f.id = (SELECT max(f2.id) FROM final_reviews f2 "
            "WHERE f2.study_id = f.study_id AND f2.output_id = f.output_id) ORDER BY i.item_key",
            [study_id],
        )

    def insert_signoff(
        self,
        study_id: int,
        signer_id: int,
        decision: str,
        comment: str,
        report_hash: str,
        report: str,
    ) -> None:
        self.db.execute(
            "INSERT INTO signoffs (study_id, signer_id, decision, comment, report_hash, report, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [study_id, signer_id, decision, comment, report_hash, report, now_iso()],
        )

    def signoffs(self, study_id: int) -> list[dict]:
        return self._rows(
            "SELECT s.id, r.name AS signer, s.decision, s.comment, s.report_hash, s.created_at "
            "FROM signoffs s JOIN reviewers r ON r.id = s.signer_id WHERE s.study_id = ? "
            "ORDER BY s.id",
            [study_id],
        )

    def runs_for_report(self, study_id: int) -> list[dict]:
        """Each judge run of the study with its rubric and verdict counts, for the report."""
        return self._rows(
            "SELECT j.id, j.label, j.judge, j.source, j.rubric_hash, r.name AS rubric, "
            "r.version AS rubric_version, (SELECT count(*) FROM verdicts v WHERE v.run_id = j.id) "
            "AS n_verdicts, (SELECT coalesce(sum(v.cost), 0) FROM verdicts v "
            "WHERE v.run_id = j.id) AS cost FROM judge_runs j "
            "LEFT JOIN rubrics r ON r.id = j.rubric_id WHERE j.study_id = ? ORDER BY j.id",
            [study_id],
        )

    # ---- judge ----

    def ensure_rubric(self, name: str, version: str, content_hash: str, body: str) -> int:
        """The rubrics row for this content hash, created on first use (a new hash = a new
        version, even if the file kept its version number)."""
        self.db.execute(
            "INSERT INTO rubrics (name, version, content_hash, body, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (content_hash) DO NOTHING",
            [name, version, content_hash, body, now_iso()],
        )
        return self._one("SELECT id FROM rubrics WHERE content_hash = ?", [content_hash])["id"]

    def find_judge_run(
        self, study_id: int, judge: str, rubric_hash: str, params_hash: str
    ) -> dict | None:
        return self._one(
            "SELECT * FROM judge_runs WHERE study_id = ? AND judge = ? AND rubric_hash = ? "
            "AND params_hash = ?",
            [study_id, judge, rubric_hash, params_hash],
        )

    def judge_run_labels(self, study_id: int) -> set[str]:
        rows = self._rows("SELECT label FROM judge_runs WHERE study_id = ?", [study_id])
        return {r["label"] for r in rows}

    def insert_judge_run(
        self,
        study_id: int,
        label: str,
        judge: str,
        rubric_id: int | None,
        rubric_hash: str,
        params: dict,
        params_hash: str,
    ) -> int:
        cursor = self.db.execute(
            "INSERT INTO judge_runs (study_id, label, judge, rubric_id, rubric_hash, params, "
            "params_hash, source, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'run', "
            "'pending', ?)",
            [
                study_id,
                label,
                judge,
                rubric_id,
                rubric_hash,
                json.dumps(params, sort_keys=True),
                params_hash,
                now_iso(),
            ],
        )
        return cursor.lastrowid

    def mark_judge_run(self, run_id: int, status: str, finished: bool = False) -> None:
        """Set a run's status; `started_at` is set on the first start, `finished_at` on finish."""
        stamp = now_iso()
        self.db.execute(
            "UPDATE judge_runs SET status = ?, started_at = coalesce(started_at, ?), "
            "finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?",
            [status, stamp, int(finished), stamp, run_id],
        )

    def verdict_keys(self, run_id: int) -> set[tuple[int, str]]:
        """(pair id, first_system) of every verdict the run already holds."""
        with self._lock:
            cursor = self.db.execute(
                "SELECT pair_id, first_system FROM verdicts WHERE run_id = ?", [run_id]
            )
            return {(pair_id, first) for pair_id, first in cursor}

    def judge_run_totals(self, study_id: int) -> list[dict]:
        """Every judge run of the study with its rubric and verdict totals, newest first."""
        return self._rows(
            "SELECT j.id, j.label, j.judge, j.source, j.status, j.params, j.rubric_hash, "
            "j.created_at, j.started_at, j.finished_at, r.name AS rubric, r.version AS "
            "rubric_version, count(v.id) AS n_verdicts, "
            "coalesce(sum(v.winner IS NOT NULL), 0) AS n_parsed, "
            "coalesce(sum(v.winner IS NULL), 0) AS n_unparsed, "
            "coalesce(sum(v.tokens_in), 0) AS tokens_in, "
            "coalesce(sum(v.tokens_out), 0) AS tokens_out, coalesce(sum(v.cost), 0) AS cost, "
            "avg(v.latency_ms) AS mean_latency_ms, coalesce(sum(v.attempts), 0) AS attempts "
            "FROM judge_runs j LEFT JOIN rubrics r ON r.id = j.rubric_id "
            "LEFT JOIN verdicts v ON v.run_id = j.id WHERE j.study_id = ? "
            "GROUP BY j.id ORDER BY j.id DESC",
            [study_id],
        )

    def unparsed_verdicts(self, run_id: int, limit: int = 100) -> list[dict]:
        """Unparsed verdicts of a run with the judge's raw answer, for inspection."""
        return self._rows(
            "SELECT v.id, i.item_key, p.system_x, p.system_y, v.first_system, v.parse_error, "
            "v.finish_reason, v.raw_text, v.attempts, v.created_at FROM verdicts v "
            "JOIN pairs p ON p.id = v.pair_id JOIN items i ON i.id = p.item_id "
            "WHERE v.run_id = ? AND v.winner IS NULL ORDER BY v.id LIMIT ?",
            [run_id, limit],
        )

    # ---- end of sections ----


def text_digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def item_fingerprint(prompt: str, reference: str | None, category: str) -> str:
    return text_digest(json.dumps([prompt, reference, category], ensure_ascii=False))
