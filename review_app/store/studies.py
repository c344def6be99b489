"""Studies, the system comparisons each one makes, and its pairs (an item shown with the
outputs of two systems, stored in canonical order)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from review_app.errors import NotFound
from review_app.store.base import Aggregate, now_iso


class StudyQueries(Aggregate):
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

    def studies(self, archived: bool = True) -> list[dict]:
        """Every study, oldest first; without the archived ones unless `archived`."""
        return self._rows(
            "SELECT s.*, e.name AS eval_set, "
            "(SELECT count(*) FROM pairs p WHERE p.study_id = s.id) AS n_pairs, "
            "(SELECT count(*) FROM pairs p WHERE p.study_id = s.id AND p.human = 1) AS n_human_pairs "
            "FROM studies s JOIN eval_sets e ON e.id = s.eval_set_id "
            + ("" if archived else "WHERE s.status != 'archived' ")
            + "ORDER BY s.id"
        )

    def set_status(self, study_id: int, status: str) -> None:
        self.db.execute("UPDATE studies SET status = ? WHERE id = ?", [status, study_id])

    def has_record(self, study_id: int) -> bool:
        """Whether anything was recorded on the study: a vote, a verdict or a threshold lock."""
        row = self._one(
            "SELECT EXISTS (SELECT 1 FROM votes v JOIN pairs p ON p.id = v.pair_id "
            " WHERE p.study_id = :s) "
            "OR EXISTS (SELECT 1 FROM verdicts v JOIN judge_runs j ON j.id = v.run_id "
            " WHERE j.study_id = :s) "
            "OR EXISTS (SELECT 1 FROM threshold_locks WHERE study_id = :s) AS recorded",
            {"s": study_id},
        )
        return bool(row["recorded"])

    def insert_study(
        self,
        name: str,
        eval_set_id: int,
        reviews_per_pair: int,
        show_reference: bool = False,
        criteria: list[str] | None = None,
        ask_rationale: bool = True,
        candidate: str | None = None,
    ) -> int:
        new_id = self._insert(
            "INSERT INTO studies (name, eval_set_id, reviews_per_pair, show_reference, criteria, "
            "ask_rationale, created_at, candidate) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                name,
                eval_set_id,
                reviews_per_pair,
                int(show_reference),
                json.dumps(criteria or []),
                int(ask_rationale),
                now_iso(),
                candidate,
            ],
        )
        return new_id

    def set_candidate(self, study_id: int, candidate: str) -> None:
        self.db.execute("UPDATE studies SET candidate = ? WHERE id = ?", [candidate, study_id])

    def set_human_subset(
        self, study_id: int, share: float, seed: str, human_pair_ids: Iterable[int]
    ) -> None:
        """Send exactly `human_pair_ids` of the study to reviewers (the rest are judged only)."""
        self.db.execute(
            "UPDATE studies SET human_share = ?, human_seed = ? WHERE id = ?",
            [share, seed, study_id],
        )
        self.db.execute("UPDATE pairs SET human = 0 WHERE study_id = ?", [study_id])
        ids = list(human_pair_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            self.db.execute(
                f"UPDATE pairs SET human = 1 WHERE id IN ({','.join('?' * len(chunk))})", chunk
            )

    def pairs_for_subset(self, study_id: int) -> list[dict]:
        """Every pair of the study with what the human subset is drawn by: its comparison,
        item key and category, whether it is in the subset now and its votes."""
        return self._rows(
            "SELECT p.id AS pair_id, p.system_x, p.system_y, i.item_key, i.category, p.human, "
            "(SELECT count(*) FROM votes v WHERE v.pair_id = p.id) AS votes "
            "FROM pairs p JOIN items i ON i.id = p.item_id WHERE p.study_id = ? ORDER BY p.id",
            [study_id],
        )

    def set_plan(
        self, study_id: int, reviews_per_pair: int | None = None, final_review: int | None = None
    ) -> None:
        """Change what the study plans to collect (None keeps a part as it is)."""
        if reviews_per_pair is not None:
            self.db.execute(
                "UPDATE studies SET reviews_per_pair = ? WHERE id = ?", [reviews_per_pair, study_id]
            )
        if final_review is not None:
            self.db.execute(
                "UPDATE studies SET final_review_size = ? WHERE id = ?", [final_review, study_id]
            )

    def most_votes_on_a_pair(self, study_id: int) -> int:
        """The largest number of reviewers whose latest vote on one of the study's pairs counts."""
        row = self._one(
            "SELECT max(n) AS n FROM (SELECT count(DISTINCT v.reviewer_id) AS n FROM votes v "
            "JOIN pairs p ON p.id = v.pair_id WHERE p.study_id = ? AND v.winner IS NOT NULL "
            "GROUP BY v.pair_id)",
            [study_id],
        )
        return int(row["n"] or 0)

    def study_counts(self, study_id: int) -> dict[str, int]:
        row = self._one(
            "WITH live AS (SELECT v.pair_id, v.reviewer_id FROM votes v "
            " JOIN pairs p ON p.id = v.pair_id WHERE p.study_id = :s AND v.winner IS NOT NULL "
            " AND v.id = (SELECT max(v2.id) FROM votes v2 WHERE v2.pair_id = v.pair_id "
            " AND v2.reviewer_id = v.reviewer_id)) "
            "SELECT (SELECT count(*) FROM pairs WHERE study_id = :s) AS pairs, "
            "(SELECT count(*) FROM pairs WHERE study_id = :s AND human = 1) AS human_pairs, "
            "(SELECT count(*) FROM live) AS votes, "
            "(SELECT count(DISTINCT reviewer_id) FROM live) AS reviewers, "
            "(SELECT count(*) FROM judge_runs WHERE study_id = :s) AS judge_runs, "
            "(SELECT count(*) FROM verdicts v JOIN judge_runs j ON j.id = v.run_id "
            " WHERE j.study_id = :s) AS verdicts",
            {"s": study_id},
        )
        return dict(row)

    def app_votes(self, study_id: int) -> int:
        """Votes that count which reviewers cast in the app (not imported from a file)."""
        row = self._one(
            "SELECT count(*) AS n FROM votes v JOIN pairs p ON p.id = v.pair_id "
            "WHERE p.study_id = ? AND v.winner IS NOT NULL AND v.source = 'app' "
            "AND v.id = (SELECT max(v2.id) FROM votes v2 WHERE v2.pair_id = v.pair_id "
            "AND v2.reviewer_id = v.reviewer_id)",
            [study_id],
        )
        return int(row["n"])

    def insert_guidelines(self, study_id: int, content_hash: str, body: str, by: str) -> None:
        """Append a version of the study's guidelines; the latest one is in force."""
        self.db.execute(
            "INSERT INTO study_guidelines (study_id, content_hash, body, set_by, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [study_id, content_hash, body, by, now_iso()],
        )

    def current_guidelines(self, study_id: int) -> dict | None:
        """The guidelines in force (content_hash, body, set_by, created_at), or None."""
        return self._one(
            "SELECT content_hash, body, set_by, created_at FROM study_guidelines "
            "WHERE study_id = ? ORDER BY id DESC LIMIT 1",
            [study_id],
        )

    def guidelines_history(self, study_id: int) -> list[dict]:
        """Every version of the study's guidelines, oldest first, with how many votes each
        was in force for."""
        return self._rows(
            "SELECT g.content_hash, g.set_by, g.created_at, (SELECT count(*) FROM votes v "
            " JOIN pairs p ON p.id = v.pair_id WHERE p.study_id = g.study_id "
            " AND v.guidelines_hash = g.content_hash AND v.winner IS NOT NULL) AS n_votes "
            "FROM study_guidelines g WHERE g.study_id = ? ORDER BY g.id",
            [study_id],
        )

    def add_comparison(self, study_id: int, system_a: str, system_b: str) -> None:
        self.db.execute(
            "INSERT INTO study_comparisons (study_id, system_a, system_b) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
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
            changed = self.db.executemany(
                "INSERT INTO pairs (study_id, item_id, system_x, system_y) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(study_id, item_id, x, y) for item_id, x, y in pairs],
            )
            return changed.rowcount

    def pair_id(self, study_id: int, item_id: int, system_x: str, system_y: str) -> int | None:
        row = self._one(
            "SELECT id FROM pairs WHERE study_id = ? AND item_id = ? AND system_x = ? "
            "AND system_y = ?",
            [study_id, item_id, system_x, system_y],
        )
        return row["id"] if row else None

    def judge_only_pair_ids(self, study_id: int) -> list[int]:
        """The pairs of the study outside its human share (judged only)."""
        rows = self._rows("SELECT id FROM pairs WHERE study_id = ? AND human = 0", [study_id])
        return [r["id"] for r in rows]

    def pair_index(self, study_id: int) -> dict[tuple[str, str, str], int]:
        """(item_key, system_x, system_y) -> pair id."""
        with self._reading() as db:
            cursor = db.execute(
                "SELECT i.item_key, p.system_x, p.system_y, p.id FROM pairs p "
                "JOIN items i ON i.id = p.item_id WHERE p.study_id = ?",
                [study_id],
            )
            return {(key, x, y): pid for key, x, y, pid in cursor}

    def pair_ids_by_item(
        self, study_id: int, keys: Iterable[tuple[int, str, str]] | None = None
    ) -> dict[tuple[int, str, str], int]:
        """(item id, system_x, system_y) -> pair id: every pair of the study, or those of
        `keys` it holds."""
        sql = "SELECT item_id, system_x, system_y, id FROM pairs WHERE study_id = ?"
        if keys is None:
            with self._reading() as db:
                return {(i, x, y): pid for i, x, y, pid in db.execute(sql, [study_id])}
        found = {}
        with self._reading() as db:
            for item_id, x, y in keys:
                row = db.execute(
                    sql + " AND item_id = ? AND system_x = ? AND system_y = ?",
                    [study_id, item_id, x, y],
                ).fetchone()
                if row:
                    found[(item_id, x, y)] = row[3]
        return found

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

    def max_pair_id(self) -> int:
        row = self._one("SELECT max(id) AS m FROM pairs")
        return row["m"] or 0

    def study_pair_ids(self, study_id: int) -> list[int]:
        with self._reading() as db:
            cursor = db.execute(
                "SELECT id FROM pairs WHERE study_id = ? AND human = 1 ORDER BY id", [study_id]
            )
            return [pair_id for (pair_id,) in cursor]
