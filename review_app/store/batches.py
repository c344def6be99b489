"""Provider batches of judge runs: each batch with the requests it holds (recorded before it is
sent), its provider id and latest status, and whether its answers have been collected."""

from __future__ import annotations

from review_app.store.base import Aggregate, now_iso


class JudgeBatchQueries(Aggregate):
    def insert_judge_batch(
        self, run_id: int, key: str, requests: dict[str, tuple[int, str]]
    ) -> int:
        """Record a batch about to be sent with its requests (custom_id -> pair id, first
        system); returns its id."""
        batch_id = self._insert(
            "INSERT INTO judge_batches (run_id, key, n_requests, created_at) VALUES (?, ?, ?, ?)",
            [run_id, key, len(requests), now_iso()],
        )
        with self._lock:
            self.db.executemany(
                "INSERT INTO judge_batch_requests (batch_id, custom_id, pair_id, first_system) "
                "VALUES (?, ?, ?, ?)",
                [
                    (batch_id, custom_id, pair, first)
                    for custom_id, (pair, first) in requests.items()
                ],
            )
        return batch_id

    def update_judge_batch(
        self,
        batch_id: int,
        provider_batch_id: str,
        state: str,
        provider_status: str,
        succeeded: int,
        errored: int,
        error: str | None,
    ) -> None:
        """What the provider last said about a batch; `sent_at` is set when it is first seen."""
        stamp = now_iso()
        self.db.execute(
            "UPDATE judge_batches SET batch_id = ?, state = ?, provider_status = ?, "
            "n_succeeded = ?, n_errored = ?, error = coalesce(?, error), "
            "sent_at = coalesce(sent_at, ?), updated_at = ? WHERE id = ?",
            [provider_batch_id, state, provider_status, succeeded, errored, error, stamp, stamp]
            + [batch_id],
        )

    def collect_judge_batch(
        self, batch_id: int, answered: int, failed: int, error: str | None
    ) -> None:
        """Every answer of the batch is stored; its requests without one are free again."""
        stamp = now_iso()
        self.db.execute(
            "UPDATE judge_batches SET state = 'collected', n_answered = ?, n_failed = ?, "
            "error = coalesce(error, ?), collected_at = ?, updated_at = ? WHERE id = ?",
            [answered, failed, error, stamp, stamp, batch_id],
        )

    def open_judge_batches(self, run_id: int) -> list[dict]:
        """The run's batches not yet collected, oldest first."""
        return self._rows(
            "SELECT * FROM judge_batches WHERE run_id = ? AND collected_at IS NULL ORDER BY id",
            [run_id],
        )

    def judge_batch_requests(self, batch_id: int) -> dict[str, tuple[int, str]]:
        """custom_id -> (pair id, first system) of every request in the batch."""
        with self._lock:
            cursor = self.db.execute(
                "SELECT custom_id, pair_id, first_system FROM judge_batch_requests "
                "WHERE batch_id = ?",
                [batch_id],
            )
            return {custom_id: (pair, first) for custom_id, pair, first in cursor}

    def open_batch_keys(self, run_id: int) -> set[tuple[int, str]]:
        """(pair id, first system) of every request in the run's batches not yet collected."""
        with self._lock:
            cursor = self.db.execute(
                "SELECT r.pair_id, r.first_system FROM judge_batch_requests r "
                "JOIN judge_batches b ON b.id = r.batch_id "
                "WHERE b.run_id = ? AND b.collected_at IS NULL",
                [run_id],
            )
            return {(pair, first) for pair, first in cursor}

    def provider_batch_ids(self) -> set[str]:
        """Every provider batch id recorded in the workspace."""
        rows = self._rows("SELECT batch_id FROM judge_batches WHERE batch_id IS NOT NULL")
        return {r["batch_id"] for r in rows}

    def study_judge_batches(self, study_id: int) -> list[dict]:
        """Every batch of the study's judge runs with its run's label, newest first."""
        return self._rows(
            "SELECT b.id, b.run_id, j.label, j.judge, b.batch_id, b.state, b.provider_status, "
            "b.n_requests, b.n_succeeded, b.n_errored, b.n_answered, b.n_failed, b.error, "
            "b.created_at, b.sent_at, b.updated_at, b.collected_at FROM judge_batches b "
            "JOIN judge_runs j ON j.id = b.run_id WHERE j.study_id = ? ORDER BY b.id DESC",
            [study_id],
        )
