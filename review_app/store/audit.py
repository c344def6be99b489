"""The audit log: one append-only, hash-chained row per governance action (who, when, what), and
the digests `audit verify` compares with what the log recorded."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from review_app.migrations import APPEND_ONLY_TABLES
from review_app.store.base import Aggregate, now_iso

GENESIS = "0" * 64


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    """The hash that chains an entry to the one before it: any edit, insertion or removal
    breaks every hash after it."""
    body = {key: entry[key] for key in ("at", "actor", "action", "study_id", "detail")}
    payload = json.dumps({"prev": prev_hash, **body}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


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
        self.db.execute(
            "INSERT INTO audit_log (at, actor, action, study_id, detail, prev_hash, hash) "
            "VALUES (:at, :actor, :action, :study_id, :detail, :prev_hash, :hash)",
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
            sql = " ".join(row["sql"].upper().split())
            if row["tbl_name"] not in found or " WHEN " in sql:
                continue
            if "BEGIN SELECT RAISE(ABORT," not in sql.replace("( ", "(").replace(" ,", ","):
                continue
            for event in ("UPDATE", "DELETE"):
                if f" BEFORE {event} ON " in sql:
                    found[row["tbl_name"]].add(event)
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
