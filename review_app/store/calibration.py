"""Rubric iteration records: the dev/test split of a study's human-labelled comparisons (written
once), every look at test agreement, and juries (virtual judges over other judges)."""

from __future__ import annotations

import json

from review_app.migrations import SCORED
from review_app.store.base import Aggregate, now_iso


class CalibrationQueries(Aggregate):
    def labelled_pairs(self, study_id: int) -> list[dict]:
        """The study's comparisons with at least one human vote: pair id, item and category."""
        return self._rows(
            "SELECT p.id AS pair_id, i.item_key, i.category FROM pairs p "
            "JOIN items i ON i.id = p.item_id WHERE p.study_id = ? AND EXISTS "
            "(SELECT 1 FROM votes v WHERE v.pair_id = p.id AND v.winner IS NOT NULL) ORDER BY p.id",
            [study_id],
        )

    def insert_split(
        self, study_id: int, parts: dict[int, str], test_share: float, seed: int, by: str
    ) -> None:
        """Record the split (inside the caller's transaction); a second split is refused by the
        primary key and the append-only triggers."""
        at = now_iso()
        self.db.executemany(
            "INSERT INTO comparison_splits (study_id, pair_id, part, test_share, seed, "
            "created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(study_id, p, part, test_share, seed, by, at) for p, part in parts.items()],
        )

    def blinding_key(self) -> str:
        """The workspace's random key for the A/B orientation of comparisons before the lock."""
        return self._one("SELECT value FROM workspace_secrets WHERE name = 'blinding'")["value"]

    def label_key(self) -> str:
        """The workspace's random key for naming comparisons in rows sealed before the lock."""
        return self._one("SELECT value FROM sealed_label_key")["value"]

    def split_parts(self, study_id: int) -> dict[int, str]:
        """pair_id -> 'dev' | 'test'; empty when the study has no split."""
        rows = self._rows(
            "SELECT pair_id, part FROM comparison_splits WHERE study_id = ?", [study_id]
        )
        return {r["pair_id"]: r["part"] for r in rows}

    def split_record(self, study_id: int) -> dict | None:
        """When, by whom and how the split was made, with its sizes; None without a split."""
        row = self._one(
            "SELECT min(test_share) AS test_share, min(seed) AS seed, min(created_by) AS "
            "created_by, min(created_at) AS created_at, sum(CASE WHEN part = 'dev' THEN 1 ELSE 0 END) AS n_dev, "
            "sum(CASE WHEN part = 'test' THEN 1 ELSE 0 END) AS n_test, count(*) AS n FROM comparison_splits "
            "WHERE study_id = ?",
            [study_id],
        )
        return row if row and row["n"] else None

    def insert_test_look(self, study_id: int, judges: list[str], by: str) -> int:
        new_id = self._insert(
            "INSERT INTO test_looks (study_id, judges, looked_by, created_at) VALUES (?, ?, ?, ?)",
            [study_id, json.dumps(judges), by, now_iso()],
        )
        return new_id

    def test_looks(self, study_id: int) -> list[dict]:
        rows = self._rows(
            "SELECT id, judges, looked_by, created_at FROM test_looks WHERE study_id = ? "
            "ORDER BY id",
            [study_id],
        )
        return [{**r, "judges": json.loads(r["judges"])} for r in rows]

    def insert_jury(self, study_id: int, name: str, members: list[str], by: str) -> int:
        new_id = self._insert(
            "INSERT INTO juries (study_id, name, members, created_by, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [study_id, name, json.dumps(members), by, now_iso()],
        )
        return new_id

    def juries(self, study_id: int) -> list[dict]:
        rows = self._rows(
            "SELECT id, name, members, created_by, created_at FROM juries WHERE study_id = ? "
            "ORDER BY id",
            [study_id],
        )
        return [{**r, "members": json.loads(r["members"])} for r in rows]

    def verdict_scores(self, run_ids: list[int]) -> list[dict]:
        """pair_id, run_id and the scores JSON of every pointwise verdict of the runs."""
        if not run_ids:
            return []
        marks = ", ".join("?" for _ in run_ids)
        return self._rows(
            f"SELECT pair_id, run_id, scores FROM verdicts WHERE run_id IN ({marks}) "
            f"AND {SCORED} ORDER BY id",
            list(run_ids),
        )
