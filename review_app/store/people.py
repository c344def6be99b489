"""Reviewers: who they are, their role and study, and the hash of their personal link
(a reviewer known only from imported votes has none and cannot log in)."""

from __future__ import annotations

from collections.abc import Iterable

from review_app.store.base import Aggregate, now_iso


class ReviewerQueries(Aggregate):
    def reviewer(self, name: str) -> dict | None:
        return self._one("SELECT * FROM reviewers WHERE name = ?", [name])

    def reviewer_by_id(self, reviewer_id: int) -> dict | None:
        return self._one("SELECT * FROM reviewers WHERE id = ?", [reviewer_id])

    def reviewer_by_token_hash(self, token_hash: str) -> dict | None:
        return self._one("SELECT * FROM reviewers WHERE token_hash = ?", [token_hash])

    def reviewers(self) -> list[dict]:
        return self._rows(
            "SELECT r.id, r.name, r.role, r.created_at, r.revoked_at, s.name AS study, "
            "r.token_hash IS NOT NULL AS has_link, "
            "(SELECT count(DISTINCT v.pair_id) FROM votes v WHERE v.reviewer_id = r.id "
            " AND v.winner IS NOT NULL AND v.id = (SELECT max(v2.id) FROM votes v2 "
            " WHERE v2.pair_id = v.pair_id AND v2.reviewer_id = v.reviewer_id)) AS n_votes "
            "FROM reviewers r LEFT JOIN studies s ON s.id = r.study_id ORDER BY r.name"
        )

    def insert_reviewer(
        self, name: str, role: str, token_hash: str | None, study_id: int | None = None
    ) -> int:
        new_id = self._insert(
            "INSERT INTO reviewers (name, role, token_hash, study_id, created_at, token_version) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [name, role, token_hash, study_id, now_iso(), 1 if token_hash else 0],
        )
        return new_id

    def set_reviewer_token(
        self, reviewer_id: int, token_hash: str, role: str, study_id: int | None
    ) -> None:
        """A new link (and role) for a reviewer, one version up; their study changes only when
        one is given."""
        self.db.execute(
            "UPDATE reviewers SET token_hash = ?, role = ?, revoked_at = NULL, "
            "token_version = token_version + 1, study_id = coalesce(?, study_id) WHERE id = ?",
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
