"""Reviewer quality records: exclusions of a reviewer from a study's statistics (append-only
decisions; the latest per reviewer is in force) and the comparisons with a known answer."""

from __future__ import annotations

from review_app.store.base import Aggregate, now_iso

# SQL: the ids of the reviewers currently excluded from study `?` (their latest decision).
EXCLUDED_REVIEWERS = (
    "SELECT e.reviewer_id FROM reviewer_exclusions e WHERE e.study_id = ? AND e.excluded = 1 "
    "AND e.id = (SELECT max(e2.id) FROM reviewer_exclusions e2 "
    "WHERE e2.study_id = e.study_id AND e2.reviewer_id = e.reviewer_id)"
)


class QualityQueries(Aggregate):
    def insert_exclusion(
        self, study_id: int, reviewer_id: int, excluded: bool, reason: str, by: str
    ) -> int:
        """Record that a reviewer is excluded from (or included again in) a study's statistics."""
        new_id = self._insert(
            "INSERT INTO reviewer_exclusions (study_id, reviewer_id, excluded, reason, "
            "decided_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [study_id, reviewer_id, int(excluded), reason, by, now_iso()],
        )
        return new_id

    def excluded_reviewer_ids(self, study_id: int) -> set[int]:
        return {r["reviewer_id"] for r in self._rows(EXCLUDED_REVIEWERS, [study_id])}

    def exclusion_history(self, study_id: int) -> list[dict]:
        """Every exclusion and re-inclusion in the study, oldest first, with the reviewer's name."""
        return self._rows(
            "SELECT e.id, r.name AS reviewer, e.reviewer_id, e.excluded, e.reason, e.decided_by, "
            "e.created_at FROM reviewer_exclusions e JOIN reviewers r ON r.id = e.reviewer_id "
            "WHERE e.study_id = ? ORDER BY e.id",
            [study_id],
        )

    def current_vote_counts(self, study_id: int, reviewer_ids: list[int]) -> dict[int, int]:
        """Reviewer id -> comparisons of the study their latest vote decides (not retracted)."""
        marks = ",".join("?" * len(reviewer_ids))
        rows = self._rows(
            "SELECT v.reviewer_id, count(*) AS n FROM votes v JOIN pairs p ON p.id = v.pair_id "
            f"WHERE p.study_id = ? AND v.reviewer_id IN ({marks}) AND v.winner IS NOT NULL "
            "AND v.id = (SELECT max(v2.id) FROM votes v2 WHERE v2.pair_id = v.pair_id "
            "AND v2.reviewer_id = v.reviewer_id) GROUP BY v.reviewer_id",
            [study_id, *reviewer_ids],
        )
        return {r["reviewer_id"]: r["n"] for r in rows}

    def set_known_answer(self, study_id: int, pair_id: int, answer: str, by: str) -> None:
        self.db.execute(
            "INSERT INTO known_answers (pair_id, study_id, answer, set_by, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (pair_id) DO UPDATE SET answer = excluded.answer, "
            "set_by = excluded.set_by, created_at = excluded.created_at",
            [pair_id, study_id, answer, by, now_iso()],
        )

    def clear_known_answer(self, pair_id: int) -> None:
        self.db.execute("DELETE FROM known_answers WHERE pair_id = ?", [pair_id])

    def known_answers(self, study_id: int) -> list[dict]:
        """The study's known-answer comparisons: pair, item, systems, the answer, who set it."""
        return self._rows(
            "SELECT k.pair_id, i.item_key, p.system_x, p.system_y, k.answer, k.set_by, "
            "k.created_at FROM known_answers k JOIN pairs p ON p.id = k.pair_id "
            "JOIN items i ON i.id = p.item_id WHERE k.study_id = ? ORDER BY i.item_key, p.id",
            [study_id],
        )
