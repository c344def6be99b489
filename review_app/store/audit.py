"""The audit log: one append-only, hash-chained row per governance action (who, when, what), and
the digests `audit verify` compares with what the log recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from review_app.migrations import APPEND_ONLY_TABLES, SEALED, seal_hash, seal_rows
from review_app.store.base import Aggregate, now_iso

GENESIS = "0" * 64

# The one shape of trigger that protects a table (whitespace collapsed, none around punctuation):
# before every UPDATE (of any column) or DELETE, abort, with no condition anywhere (no WHEN, no
# WHERE, no other statement: nothing but the RAISE).
_GUARD = re.compile(
    r"CREATE TRIGGER (?:IF NOT EXISTS )?\S+ BEFORE (UPDATE|DELETE) ON \S+ "
    r"(?:FOR EACH ROW )?BEGIN SELECT RAISE\(ABORT,'(?:[^']|'')*'\);END;?"
)


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    """The hash that chains an entry to the one before it: any edit, insertion or removal
    breaks every hash after it."""
    body = {key: entry[key] for key in ("at", "actor", "action", "study_id", "detail")}
    payload = json.dumps({"prev": prev_hash, **body}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def keyed(key: str, purpose: str, text: str) -> str:
    """HMAC-SHA256 of `text` under the signing key, for one `purpose` (an audit entry, an
    anchor, a report), so a signature made for one can never pass for another."""
    return hmac.new(key.encode(), f"{purpose}\n{text}".encode(), hashlib.sha256).hexdigest()


def entry_mac(key: str, hash_: str) -> str:
    """An entry's keyed signature: of its hash, which chains every entry before it, so one
    keyed entry vouches for the whole log up to it."""
    return keyed(key, "review-app audit entry", hash_)


class AuditQueries(Aggregate):
    def append_audit(
        self, actor: str, action: str, study_id: int | None, detail: dict[str, Any]
    ) -> dict:
        """Append one entry (inside the caller's transaction, so it lands with the change)."""
        last = self._one("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
        entry = {
            "at": now_iso(),
            "actor": actor,
            "action": action,
            "study_id": study_id,
            "detail": json.dumps(detail, sort_keys=True, default=str),
        }
        prev = last["hash"] if last else GENESIS
        entry["prev_hash"] = prev
        entry["hash"] = entry_hash(prev, entry)
        key = self.store.signing_key
        entry["mac"] = entry_mac(key, entry["hash"]) if key else None
        self.db.execute(
            "INSERT INTO audit_log (at, actor, action, study_id, detail, prev_hash, hash, mac) "
            "VALUES (:at, :actor, :action, :study_id, :detail, :prev_hash, :hash, :mac)",
            entry,
        )
        return entry

    def audit_entries(self, study_id: int | None = None) -> list[dict]:
        """The whole chain in order, or one study's entries."""
        if study_id is None:
            return self._rows("SELECT * FROM audit_log ORDER BY id")
        return self._rows("SELECT * FROM audit_log WHERE study_id = ? ORDER BY id", [study_id])

    def append_only_triggers(self) -> dict[str, set[str]]:
        """table -> the events (UPDATE, DELETE) its triggers refuse now. A trigger counts by
        what it does, not by its name: one that does not abort the change, or only under a
        condition, protects nothing."""
        found: dict[str, set[str]] = {table: set() for table in APPEND_ONLY_TABLES}
        for row in self._rows(
            "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL"
        ):
            if row["tbl_name"] not in found:
                continue
            sql = re.sub(r" ?([(),;]) ?", r"\1", " ".join(row["sql"].upper().split()))
            match = _GUARD.fullmatch(sql)
            if match:
                found[row["tbl_name"]].add(match.group(1))
        return found

    def trigger_names(self) -> set[str]:
        return {
            r["name"] for r in self._rows("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }

    def last_id(self, table: str) -> int:
        """The highest row id of a sealed table (0 when empty), read before writing to it."""
        row = self.db.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
        return row[0]

    def seal(self, table: str, after_id: int) -> None:
        """Seal the rows of `table` just written (ids above `after_id`), in the same
        transaction."""
        seal_rows(self.db, table, after_id)

    def seal_problems(self, table: str, study_id: int) -> dict[str, list[int]]:
        """The study's rows of a sealed table that do not match their seals, by kind:
        'unsealed' (written into the file, not by the app), 'changed' (content differs from
        its seal), 'removed' (a seal whose row is gone) and 'out of order' (a seal that does
        not follow the one before it: one was removed or put in)."""
        select, id_column = SEALED[table]
        alias = id_column.split(".")[0]
        study_column = select.split("SELECT ")[1].split(",")[0]
        with self._reading() as db:
            rows = db.execute(
                f"{select} WHERE {study_column} = ? ORDER BY {alias}.id", [study_id]
            ).fetchall()
            seals = db.execute(
                "SELECT row_id, prev_hash, hash FROM row_seals WHERE tbl = ? AND study_id = ? "
                "ORDER BY row_id",
                [table, study_id],
            ).fetchall()
        found: dict[str, list[int]] = {
            "unsealed": [],
            "changed": [],
            "removed": [],
            "out of order": [],
        }
        by_id = {row_id: (prev, digest) for row_id, prev, digest in seals}
        prev = GENESIS
        for row_id, seal_prev, digest in seals:
            if seal_prev != prev:
                found["out of order"].append(row_id)
            prev = digest
        present = set()
        for row in rows:
            present.add(row[1])
            seal = by_id.get(row[1])
            if seal is None:
                found["unsealed"].append(row[1])
            elif seal_hash(seal[0], table, tuple(row)) != seal[1]:
                found["changed"].append(row[1])
        found["removed"] = [row_id for row_id in by_id if row_id not in present]
        return found

    def grader_results_digest(self, study_id: int, content_hash: str) -> dict:
        """A digest of every stored result of one grader version on a study: recorded when
        results are added, so an edited or removed result shows in `audit verify`."""
        rows = self.db.execute(
            "SELECT r.output_id, r.check_name, r.passed, r.label FROM grader_results r "
            "JOIN graders g ON g.id = r.grader_id WHERE r.study_id = ? AND g.content_hash = ? "
            "ORDER BY r.output_id, r.check_name",
            [study_id, content_hash],
        ).fetchall()
        digest = hashlib.sha256(json.dumps([list(r) for r in rows]).encode()).hexdigest()
        return {"results": len(rows), "sha256": digest}

    def split_digest(self, study_id: int) -> dict:
        """A digest of a study's dev/test split rows, recorded with the split."""
        rows = self.db.execute(
            "SELECT pair_id, part, test_share, seed FROM comparison_splits WHERE study_id = ? "
            "ORDER BY pair_id",
            [study_id],
        ).fetchall()
        digest = hashlib.sha256(json.dumps([list(r) for r in rows]).encode()).hexdigest()
        return {"rows": len(rows), "sha256": digest}

    def votes_digest(self, study_id: int, up_to_id: int | None = None) -> dict:
        """A digest of every vote row of a study (up to a vote id): recorded at the lock and at
        each sign-off, so a vote edited or removed behind the triggers' back shows."""
        rows = self.db.execute(
            "SELECT v.id, v.pair_id, v.reviewer_id, v.choice, v.winner, v.shown_left, "
            "v.created_at, v.entered_at, v.source, v.supersedes FROM votes v "
            "JOIN pairs p ON p.id = v.pair_id WHERE p.study_id = ? AND v.id <= ? ORDER BY v.id",
            [study_id, up_to_id if up_to_id is not None else 2**62],
        ).fetchall()
        digest = hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()
        return {"votes": len(rows), "max_vote_id": rows[-1][0] if rows else 0, "digest": digest}

    def votes_by_source(self, study_id: int) -> dict[str, int]:
        """How many of the study's vote rows came from the app and from each imported file."""
        rows = self._rows(
            "SELECT v.source, count(*) AS n FROM votes v JOIN pairs p ON p.id = v.pair_id "
            "WHERE p.study_id = ? GROUP BY v.source ORDER BY v.source",
            [study_id],
        )
        return {r["source"]: r["n"] for r in rows}

    def study_rows(self, table: str, study_id: int) -> list[dict]:
        """Every row of one of a study's governance tables (those with a study_id), oldest
        first, for `audit verify` to match against the audit log."""
        if table not in APPEND_ONLY_TABLES and table != "known_answers":
            raise ValueError(f"not a governance table: {table}")
        order = "pair_id" if table == "known_answers" else "id"  # known answers: one per pair
        rows = self._rows(f"SELECT * FROM {table} WHERE study_id = ? ORDER BY {order}", [study_id])
        names = {r["id"]: r["name"] for r in self._rows("SELECT id, name FROM reviewers")}
        for row in rows:
            for column in ("reviewer_id", "signer_id"):
                if column in row:
                    row["person"] = names.get(row[column], f"reviewer #{row[column]}")
        return rows
