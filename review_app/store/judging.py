"""Judging: rubrics (one row per content hash), judge runs (run here or imported) and their
verdicts, with the totals the judge-runs screen shows (provider batches: `store/batches.py`)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from review_app.store.base import Aggregate, now_iso


class JudgingQueries(Aggregate):
    def ensure_rubric(self, name: str, version: str, content_hash: str, body: str) -> int:
        """The rubrics row for this content hash, created on first use (a new hash = a new
        version, even if the file kept its version number)."""
        self.db.execute(
            "INSERT INTO rubrics (name, version, content_hash, body, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (content_hash) DO NOTHING",
            [name, version, content_hash, body, now_iso()],
        )
        return self._one("SELECT id FROM rubrics WHERE content_hash = ?", [content_hash])["id"]

    def rubric(self, rubric_id: int) -> dict | None:
        return self._one("SELECT * FROM rubrics WHERE id = ?", [rubric_id])

    def judge_run(self, run_id: int) -> dict | None:
        return self._one("SELECT * FROM judge_runs WHERE id = ?", [run_id])

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

    def judge_run_totals(self, study_id: int) -> list[dict]:
        """Every judge run of the study with its rubric and verdict totals, newest first."""
        return self._rows(
            "SELECT j.id, j.label, j.judge, j.source, j.status, j.params, j.rubric_hash, "
            "j.created_at, j.started_at, j.finished_at, r.name AS rubric, r.version AS "
            "rubric_version, count(v.id) AS n_verdicts, "
            "coalesce(sum(v.winner IS NOT NULL), 0) AS n_parsed, "
            "coalesce(sum(v.winner IS NULL), 0) AS n_unparsed, "
            "coalesce(sum(v.tokens_in), 0) AS tokens_in, "
            "coalesce(sum(v.tokens_out), 0) AS tokens_out, "
            "coalesce(sum(v.tokens_cached), 0) AS tokens_cached, coalesce(sum(v.cost), 0) AS cost, "
            "avg(v.latency_ms) AS mean_latency_ms, coalesce(sum(v.attempts), 0) AS attempts, "
            "(SELECT count(*) FROM judge_batches b WHERE b.run_id = j.id "
            "AND b.collected_at IS NULL) AS open_batches, "
            "(SELECT coalesce(sum(b.n_requests), 0) FROM judge_batches b WHERE b.run_id = j.id "
            "AND b.collected_at IS NULL) AS in_batches "
            "FROM judge_runs j LEFT JOIN rubrics r ON r.id = j.rubric_id "
            "LEFT JOIN verdicts v ON v.run_id = j.id WHERE j.study_id = ? "
            "GROUP BY j.id ORDER BY j.id DESC",
            [study_id],
        )

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
        new_id = self._insert(
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
        return new_id

    def imported_run_id(self, study_id: int, judge: str) -> int | None:
        """The run holding verdicts imported from files for judge `judge`, if there is one."""
        row = self._one(
            "SELECT id FROM judge_runs WHERE study_id = ? AND judge = ? AND source = 'import'",
            [study_id, judge],
        )
        return row["id"] if row else None

    def ensure_imported_run(self, study_id: int, judge: str) -> int:
        """The run that holds verdicts imported from files for judge `judge`."""
        run_id = self.imported_run_id(study_id, judge)
        if run_id is not None:
            return run_id
        new_id = self._insert(
            "INSERT INTO judge_runs (study_id, label, judge, source, status, created_at, "
            "params_hash) VALUES (?, ?, ?, 'import', 'imported', ?, 'import')",
            [study_id, judge, judge, now_iso()],
        )
        return new_id

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
        with self._reading() as db:
            cursor = db.execute(
                "SELECT pair_id, first_system FROM verdicts WHERE run_id = ?", [run_id]
            )
            return {(pair_id, first) for pair_id, first in cursor}

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
            "tokens_cached",
            "cost",
            "latency_ms",
            "attempts",
            "created_at",
        ]
        defaults = {"scores": "{}", "explanation": "", "raw_text": "", "tokens_in": 0}
        defaults |= {
            "tokens_out": 0,
            "tokens_cached": 0,
            "attempts": 1,
        }  # no cost: an imported verdict's is unknown
        with self._lock:
            last = self.store.audit.last_id("verdicts")
            changed = self.db.executemany(
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
            added = changed.rowcount
            self.store.audit.seal("verdicts", last)
            return added

    def unparsed_verdicts(self, run_id: int, limit: int = 100) -> list[dict]:
        """Unparsed verdicts of a run with the judge's raw answer, for inspection."""
        return self._rows(
            "SELECT v.id, i.item_key, p.system_x, p.system_y, v.first_system, v.parse_error, "
            "v.finish_reason, v.raw_text, v.attempts, v.created_at FROM verdicts v "
            "JOIN pairs p ON p.id = v.pair_id JOIN items i ON i.id = p.item_id "
            "WHERE v.run_id = ? AND v.winner IS NULL ORDER BY v.id LIMIT ?",
            [run_id, limit],
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
