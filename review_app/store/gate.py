"""The release gate's records: thresholds, their lock and any deviation after it, the final
review of outputs, sign-offs, and the judge runs a sign-off report cites."""

from __future__ import annotations

import json

from review_app.store.base import Aggregate, now_iso

# The eval set bound to the first parameter and every eval set with the same content hash (a
# re-imported copy): a study over either can show the same outcomes.
_SAME_CONTENT = (
    "SELECT b.id FROM eval_sets a JOIN eval_sets b ON b.id = a.id OR "
    "(a.content_hash IS NOT NULL AND b.content_hash = a.content_hash) WHERE a.id = ?"
)


# A comparison's two systems, joined into one text per study.
_SYSTEMS = "c.system_a || ',' || c.system_b"


class GateQueries(Aggregate):
    # ---- the Results screen's error analysis (lengths and lost comparisons, not every text) ----

    def prompt_lengths(self, study_id: int) -> dict[int, int]:
        """pair id -> the length of its item's prompt, for every pair of the study."""
        rows = self._rows(
            "SELECT p.id AS pair_id, length(i.prompt) AS len_prompt FROM pairs p "
            "JOIN items i ON i.id = p.item_id WHERE p.study_id = ?",
            [study_id],
        )
        return {r["pair_id"]: r["len_prompt"] for r in rows}

    def pair_texts(self, pair_ids: list[int]) -> list[dict]:
        """The prompt and both outputs of each pair named (pair_id, prompt, output_x,
        output_y), for the few comparisons a screen draws in full."""
        if not pair_ids:
            return []
        marks = ", ".join("?" for _ in pair_ids)
        return self._rows(
            "SELECT p.id AS pair_id, i.prompt, ox.text AS output_x, oy.text AS output_y "
            "FROM pairs p JOIN items i ON i.id = p.item_id "
            "JOIN outputs ox ON ox.item_id = p.item_id AND ox.system = p.system_x "
            "JOIN outputs oy ON oy.item_id = p.item_id AND oy.system = p.system_y "
            f"WHERE p.id IN ({marks})",
            list(pair_ids),
        )

    def vote_rationales(self, pair_ids: list[int]) -> list[dict]:
        """Every non-blank rationale of a vote on the pairs named (vote_id, pair_id, rationale),
        in vote order; the caller keeps the votes it counts."""
        if not pair_ids:
            return []
        marks = ", ".join("?" for _ in pair_ids)
        return self._rows(
            "SELECT id AS vote_id, pair_id, rationale FROM votes "
            f"WHERE pair_id IN ({marks}) AND rationale IS NOT NULL AND rationale <> '' "
            "ORDER BY id",
            list(pair_ids),
        )

    def thresholds(self, study_id: int) -> list[dict]:
        rows = self._rows("SELECT * FROM thresholds WHERE study_id = ? ORDER BY id", [study_id])
        for row in rows:
            row["params"] = json.loads(row["params"])
        return rows

    def insert_threshold(
        self, study_id: int, metric: str, params: dict, comparator: str, value: float, by: str
    ) -> int:
        new_id = self._insert(
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
        return new_id

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
        self,
        study_id: int,
        by: str,
        content_hash: str,
        thresholds: list[dict],
        candidate: str,
        plan: dict,
        min_comparisons: int,
        graders: list[dict] | None = None,
    ) -> None:
        """The lock; `graders` pins the grader versions ({name, content_hash}) in use."""
        self.db.execute(
            "INSERT INTO threshold_locks (study_id, locked_at, locked_by, content_hash, thresholds, "
            "candidate, plan, min_comparisons, graders) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                study_id,
                now_iso(),
                by,
                content_hash,
                json.dumps(thresholds, sort_keys=True),
                candidate,
                json.dumps(plan, sort_keys=True),
                min_comparisons,
                json.dumps(graders or [], sort_keys=True),
            ],
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
        gate_result: str,
        override: str | None,
        token_version: int | None = None,
        link: str | None = None,
    ) -> None:
        self.db.execute(
            "INSERT INTO signoffs (study_id, signer_id, decision, comment, report_hash, report, "
            "created_at, gate_result, override, token_version, link) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                study_id,
                signer_id,
                decision,
                comment,
                report_hash,
                report,
                now_iso(),
                gate_result,
                override,
                token_version,
                link,
            ],
        )

    def signoffs(self, study_id: int) -> list[dict]:
        return self._rows(
            "SELECT s.id, r.name AS signer, s.decision, s.comment, s.report_hash, s.created_at, "
            "s.gate_result, s.override, s.token_version, s.link "
            "FROM signoffs s JOIN reviewers r ON r.id = s.signer_id WHERE s.study_id = ? "
            "ORDER BY s.id",
            [study_id],
        )

    def signoff_reports(self, study_id: int) -> list[dict]:
        """Each sign-off with the report body it pinned, for verification."""
        return self._rows(
            "SELECT id, report_hash, report FROM signoffs WHERE study_id = ? ORDER BY id",
            [study_id],
        )

    def locks_on_eval_set(self, eval_set_id: int) -> list[dict]:
        """Every study lock over an eval set or a copy of it (another eval set with the same
        content hash), with the study's name and comparisons' systems."""
        return self._rows(
            "SELECT s.id AS study_id, s.name AS study, l.id AS lock_id, l.locked_at, "
            f"(SELECT {self.db.joined(_SYSTEMS)} FROM study_comparisons c "
            "WHERE c.study_id = s.id) AS systems FROM threshold_locks l "
            f"JOIN studies s ON s.id = l.study_id WHERE s.eval_set_id IN ({_SAME_CONTENT}) "
            "ORDER BY l.id",
            [eval_set_id],
        )

    def studies_on_same_content(self, study_id: int) -> list[dict]:
        """Every other study over the study's eval set or a copy of it (same content hash):
        study_id, study, eval_set, created_at, systems, locked_at (None while unlocked)."""
        return self._rows(
            "SELECT s.id AS study_id, s.name AS study, e.name AS eval_set, s.created_at, "
            f"(SELECT {self.db.joined(_SYSTEMS)} FROM study_comparisons c "
            "WHERE c.study_id = s.id) AS systems, l.locked_at FROM studies s "
            "JOIN eval_sets e ON e.id = s.eval_set_id "
            "LEFT JOIN threshold_locks l ON l.study_id = s.id "
            f"WHERE s.id != ? AND s.eval_set_id IN ({_SAME_CONTENT}) ORDER BY s.id",
            [
                study_id,
                self._one("SELECT eval_set_id FROM studies WHERE id = ?", [study_id])[
                    "eval_set_id"
                ],
            ],
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
