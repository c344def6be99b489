"""Grading: grader definitions (one row per content hash) and their results, one row per (grader
version, study, output, check), written once: grading again with the same grader adds nothing."""

from __future__ import annotations

import pandas as pd

from review_app.store.base import Aggregate, now_iso


class GradingQueries(Aggregate):
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
            changed = self.db.executemany(
                "INSERT INTO grader_results (grader_id, study_id, output_id, check_name, passed, "
                "label) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                ((grader_id, study_id, o, c, p, lab) for o, c, p, lab in rows),
            )
            return changed.rowcount

    def study_graders(self, study_id: int) -> list[dict]:
        """Each grader version with results on the study, oldest first, with its result count."""
        # Graders are few and results many: each count is a range of the results' primary key.
        return self._rows(
            "SELECT g.id, g.name, g.content_hash, g.body, g.created_at, (SELECT count(*) FROM "
            "grader_results r WHERE r.study_id = :s AND r.grader_id = g.id) AS n_results "
            "FROM graders g WHERE EXISTS (SELECT 1 FROM grader_results r WHERE r.study_id = :s "
            "AND r.grader_id = g.id) ORDER BY g.id",
            {"s": study_id},
        )

    def has_grader_results(self, study_id: int) -> bool:
        return (
            self._one(
                "SELECT EXISTS (SELECT 1 FROM grader_results WHERE study_id = ?) AS yes", [study_id]
            )["yes"]
            == 1
        )

    def grader_results(self, study_id: int, grader_ids: list[int]) -> pd.DataFrame:
        """The results of these grader versions on the study, one row per (output, check), with
        the grader's name and hash and the output's system, item, category and reference."""
        marks = ",".join("?" * len(grader_ids)) or "NULL"
        # The results alone (numbers and a few distinct names), then each output's details once:
        # joining them in SQL would read an output's texts once per check.
        results = self._frame(
            'SELECT r.grader_id, r.check_name AS "check", r.output_id, r.passed, r.label '
            f"FROM grader_results r WHERE r.study_id = ? AND r.grader_id IN ({marks}) "
            "ORDER BY r.grader_id, r.output_id",
            [study_id, *grader_ids],
        )
        graders = self._frame(
            f"SELECT id AS grader_id, name AS grader, content_hash AS grader_hash FROM graders "
            f"WHERE id IN ({marks})",
            grader_ids,
        )
        outputs = self._frame(
            "SELECT o.id AS output_id, o.system, i.item_key, i.category, i.reference "
            "FROM outputs o JOIN items i ON i.id = o.item_id WHERE o.id IN (SELECT DISTINCT "
            f"output_id FROM grader_results WHERE study_id = ? AND grader_id IN ({marks}))",
            [study_id, *grader_ids],
        )
        for name in ("check", "label"):
            results[name] = results[name].astype("category")
        frame = results.merge(graders, on="grader_id").merge(outputs, on="output_id")
        columns = ["grader", "grader_hash", "check", "system", "item_key", "category"]
        return frame[[*columns, "reference", "passed", "label"]]
