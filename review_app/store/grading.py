"""Grading: grader definitions (one row per content hash) and their results, one row per (grader
version, study, output, check), written once: grading again with the same grader adds nothing."""

from __future__ import annotations

import pandas as pd

from review_app.store.base import StoreBase, now_iso


class GradingQueries(StoreBase):
    def ensure_grader(self, name: str, content_hash: str, body: str) -> int:
        """The graders row for this content hash, created on first use (a changed grader is a
        new row, even under the same name)."""
        self.db.execute(
            "INSERT INTO graders (name, content_hash, body, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (content_hash) DO NOTHING",
            [name, content_hash, body, now_iso()],
        )
        return self._one("SELECT id FROM graders WHERE content_hash = ?", [content_hash])["id"]

    def grading_outputs(self, study_id: int) -> pd.DataFrame:
        """Every output of every system in the study's comparisons, with its item's key,
        category and reference: what a grader runs on."""
        return self._frame(
            "SELECT o.id AS output_id, i.item_key, i.category, i.reference, o.system, o.text "
            "FROM studies s JOIN items i ON i.eval_set_id = s.eval_set_id "
            "JOIN outputs o ON o.item_id = i.id WHERE s.id = ? AND o.system IN ("
            "SELECT system_a FROM study_comparisons WHERE study_id = s.id UNION "
            "SELECT system_b FROM study_comparisons WHERE study_id = s.id) ORDER BY o.id",
            [study_id],
        )

    def insert_grader_results(self, grader_id: int, study_id: int, results: pd.DataFrame) -> int:
        """Store results (output_id, check, passed, label); those already stored for this grader
        version are left as they are. Returns how many rows were new."""
        labels = results["label"].astype(object).where(results["label"].notna(), None)
        rows = zip(
            results["output_id"].astype(int).tolist(),
            results["check"].tolist(),
            results["passed"].astype(int).tolist(),
            labels.tolist(),
            strict=True,
        )
        with self._lock:
            before = self.db.conn.total_changes
            self.db.conn.executemany(
                "INSERT INTO grader_results (grader_id, study_id, output_id, check_name, passed, "
                "label) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                ((grader_id, study_id, o, c, p, lab) for o, c, p, lab in rows),
            )
            return self.db.conn.total_changes - before

    def study_graders(self, study_id: int) -> list[dict]:
        """Each grader version with results on the study, oldest first, with its result count."""
        return self._rows(
            "SELECT g.id, g.name, g.content_hash, g.body, g.created_at, count(*) AS n_results "
            "FROM grader_results r JOIN graders g ON g.id = r.grader_id WHERE r.study_id = ? "
            "GROUP BY g.id ORDER BY g.id",
            [study_id],
        )

    def grader_results(self, study_id: int, grader_ids: list[int]) -> pd.DataFrame:
        """The results of these grader versions on the study, one row per (output, check), with
        the grader's name and hash and the output's system, item, category and reference."""
        marks = ",".join("?" * len(grader_ids)) or "NULL"
        return self._frame(
            'SELECT g.name AS grader, g.content_hash AS grader_hash, r.check_name AS "check", '
            "o.system, i.item_key, i.category, i.reference, r.passed, r.label "
            "FROM grader_results r JOIN graders g ON g.id = r.grader_id "
            "JOIN outputs o ON o.id = r.output_id JOIN items i ON i.id = o.item_id "
            f"WHERE r.study_id = ? AND r.grader_id IN ({marks}) ORDER BY r.grader_id, o.id",
            [study_id, *grader_ids],
        )
