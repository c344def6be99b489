"""Review: which pair each reviewer was handed (assignments and their leases) and the votes
they cast, which are append-only (a change or an undo is a new vote superseding the old)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from review_app.store.base import Aggregate, now_iso


class AssignmentState(IntEnum):
    """The `assignments.done` column. The store writes these into its SQL as literals (not
    parameters), so the query planner still sees constants."""

    OPEN = 0  # leased to the reviewer, not answered yet
    VOTED = 1
    SKIPPED = 2
    RELEASED = 3  # the lease ran out and other reviewers filled the pair meanwhile


def _counts_towards_k(now: str) -> str:
    """SQL: assignment `a` holds one of its pair's k places (voted, or open with a lease that has
    not run out); `now` is the query's placeholder for the current time."""
    return (
        f"(a.done = {AssignmentState.VOTED:d} "
        f"OR (a.done = {AssignmentState.OPEN:d} AND a.leased_until > {now}))"
    )


def _live(marks: str) -> str:
    """SQL: (pair_id, reviewer_id, shown_left) of every reviewer counting towards the k of the
    pairs in `marks` (`?` placeholders, given twice: the pair ids, the current time, the pair
    ids): an unexpired lease or a current (not retracted) vote."""
    return (
        " SELECT a.pair_id, a.reviewer_id, a.shown_left FROM assignments a"
        f" WHERE a.pair_id IN ({marks}) AND {_counts_towards_k('?')}"
        " UNION"
        " SELECT v.pair_id, v.reviewer_id, v.shown_left FROM votes v"
        f" WHERE v.pair_id IN ({marks}) AND v.winner IS NOT NULL AND v.id = ("
        "  SELECT max(v2.id) FROM votes v2"
        "  WHERE v2.pair_id = v.pair_id AND v2.reviewer_id = v.reviewer_id)"
    )


# SQL: the queue position of the last pair the reviewer :r was handed in the study :s (the walk
# goes on from there, also after it has wrapped round).
_LAST_POSITION = (
    "SELECT position FROM assignments WHERE reviewer_id = :r AND study_id = :s"
    " ORDER BY id DESC LIMIT 1"
)

# SQL: a pair's live reviews over `pairs p LEFT JOIN live l`: how many, and how often each of
# its systems was shown on the left.
_LIVE_COUNTS = (
    "count(DISTINCT l.reviewer_id) AS n,"
    " coalesce(sum(CASE WHEN l.shown_left = p.system_x THEN 1 ELSE 0 END), 0) AS x_left,"
    " coalesce(sum(CASE WHEN l.shown_left = p.system_y THEN 1 ELSE 0 END), 0) AS y_left"
)


def _balance(rows: Iterable[dict]) -> dict[tuple[str, str], int]:
    """(system_x, system_y) -> (times x was shown left) - (times y was), from rows of
    (shown_left, shown_right, n)."""
    balance: dict[tuple[str, str], int] = {}
    for row in rows:
        comparison = tuple(sorted((row["shown_left"], row["shown_right"])))
        sign = 1 if row["shown_left"] == comparison[0] else -1
        balance[comparison] = balance.get(comparison, 0) + sign * row["n"]
    return balance


class ReviewQueries(Aggregate):
    def assignment(self, assignment_id: int) -> dict | None:
        return self._one(
            "SELECT a.*, p.study_id, p.system_x, p.system_y FROM assignments a "
            "JOIN pairs p ON p.id = a.pair_id WHERE a.id = ?",
            [assignment_id],
        )

    def handed(self, assignment_id: int) -> dict | None:
        """An assignment as its reviewer sees it, in one query: its id, pair_id, reviewer_id, the
        prompt and reference, `text_a` and `text_b` (the outputs shown left and right), and the
        choice and `supersedes` of the reviewer's latest vote on the pair (`latest_choice`,
        `latest_supersedes`, None when there is none)."""
        return self._one(
            "SELECT a.id, a.pair_id, a.reviewer_id, i.prompt, i.reference,"
            " ol.text AS text_a, o_r.text AS text_b,"
            " lv.choice AS latest_choice, lv.supersedes AS latest_supersedes"
            " FROM assignments a JOIN pairs p ON p.id = a.pair_id JOIN items i ON i.id = p.item_id"
            " JOIN outputs ol ON ol.item_id = p.item_id AND ol.system = a.shown_left"
            " JOIN outputs o_r ON o_r.item_id = p.item_id AND o_r.system = a.shown_right"
            " LEFT JOIN votes lv ON lv.id = (SELECT max(v.id) FROM votes v"
            "  WHERE v.pair_id = a.pair_id AND v.reviewer_id = a.reviewer_id)"
            " WHERE a.id = ?",
            [assignment_id],
        )

    def open_assignments(self, reviewer_id: int, study_id: int) -> list[dict]:
        """The reviewer's open assignments in the study, the most recently leased first."""
        return self._rows(
            "SELECT * FROM assignments WHERE reviewer_id = ? AND study_id = ? "
            f"AND done = {AssignmentState.OPEN:d} ORDER BY leased_until DESC, id DESC",
            [reviewer_id, study_id],
        )

    def last_position(self, reviewer_id: int, study_id: int) -> int:
        row = self._one(
            "SELECT max(position) AS m FROM assignments WHERE reviewer_id = ? AND study_id = ?",
            [reviewer_id, study_id],
        )
        return -1 if row["m"] is None else row["m"]

    def count_voted(self, reviewer_id: int, study_id: int) -> int:
        """Pairs of the study the reviewer voted on in the app (and did not undo)."""
        row = self._one(
            "SELECT count(*) AS n FROM assignments WHERE reviewer_id = ? AND study_id = ? "
            f"AND done = {AssignmentState.VOTED:d}",
            [reviewer_id, study_id],
        )
        return row["n"]

    def seen_pairs(self, reviewer_id: int, pair_ids: list[int]) -> set[int]:
        """Which of `pair_ids` the reviewer was ever handed or voted on (imports included)."""
        marks = ",".join("?" * len(pair_ids))
        rows = self._rows(
            f"SELECT pair_id FROM assignments WHERE reviewer_id = ? AND pair_id IN ({marks}) "
            f"UNION SELECT pair_id FROM votes WHERE reviewer_id = ? AND pair_id IN ({marks})",
            [reviewer_id, *pair_ids, reviewer_id, *pair_ids],
        )
        return {r["pair_id"] for r in rows}

    def live_reviews(self, pair_ids: list[int], now: float) -> dict[int, dict]:
        """pair id -> {study_id, system_x, system_y, human, n, x_left, y_left} over the reviewers
        who count towards the pair's k: a current (not retracted) vote or an unexpired lease."""
        marks = ",".join("?" * len(pair_ids))
        rows = self._rows(
            f"WITH live AS ({_live(marks)})"
            " SELECT p.id AS pair_id, p.study_id, p.system_x, p.system_y, p.human,"
            f" {_LIVE_COUNTS} FROM pairs p LEFT JOIN live l ON l.pair_id = p.id"
            f" WHERE p.id IN ({marks}) GROUP BY p.id",
            [*pair_ids, now, *pair_ids, *pair_ids],
        )
        return {r["pair_id"]: r for r in rows}

    def free_pairs(
        self, reviewer_id: int, study_id: int, pair_ids: list[int], k: int, now: float
    ) -> dict[int, dict]:
        """pair id -> {system_x, system_y, n, x_left, y_left} (as `live_reviews`) for those of
        `pair_ids` the reviewer may be handed: pairs of the study shown to reviewers, that they
        were never handed nor voted on (imports included), with fewer than k live reviews. One
        query, each pair found through its key and the (pair, reviewer) indexes."""
        marks = ",".join("?" * len(pair_ids))
        rows = self._rows(
            f"WITH live AS ({_live(marks)})"
            f" SELECT p.id AS pair_id, p.system_x, p.system_y, {_LIVE_COUNTS}"
            " FROM pairs p LEFT JOIN live l ON l.pair_id = p.id"
            f" WHERE p.id IN ({marks}) AND p.study_id = ? AND p.human = 1"
            " AND NOT EXISTS (SELECT 1 FROM assignments s"
            "  WHERE s.pair_id = p.id AND s.reviewer_id = ?)"
            " AND NOT EXISTS (SELECT 1 FROM votes s WHERE s.pair_id = p.id AND s.reviewer_id = ?)"
            " GROUP BY p.id, p.system_x, p.system_y HAVING count(DISTINCT l.reviewer_id) < ?",
            [*pair_ids, now, *pair_ids, *pair_ids, study_id, reviewer_id, reviewer_id, k],
        )
        return {r["pair_id"]: r for r in rows}

    def standing(self, reviewer_id: int, study_id: int, now: float) -> dict:
        """Where the reviewer stands in the study, in one query: `open`, their open assignments
        (id, pair_id, leased_until), the most recently leased first; `last_position`, the
        queue position of the last pair they were handed (-1 for none); `balance`, as
        `reviewer_left_balances`."""
        rows = self._rows(
            "SELECT 'open' AS kind, id, pair_id, leased_until, NULL AS shown_left,"
            " NULL AS shown_right, NULL AS n FROM assignments"
            f" WHERE reviewer_id = :r AND study_id = :s AND done = {AssignmentState.OPEN:d}"
            f" UNION ALL SELECT 'last', NULL, NULL, NULL, NULL, NULL, ({_LAST_POSITION})"
            " UNION ALL SELECT 'left', NULL, NULL, NULL, shown_left, shown_right, count(*)"
            f" FROM assignments a WHERE reviewer_id = :r AND study_id = :s"
            f" AND {_counts_towards_k(':now')} GROUP BY shown_left, shown_right",
            {"r": reviewer_id, "s": study_id, "now": now},
        )
        held = [
            {"id": r["id"], "pair_id": r["pair_id"], "leased_until": r["leased_until"]}
            for r in rows
            if r["kind"] == "open"
        ]
        held.sort(key=lambda r: (r["leased_until"], r["id"]), reverse=True)
        last = next(r["n"] for r in rows if r["kind"] == "last")
        return {
            "open": held,
            "last_position": -1 if last is None else last,
            "balance": _balance(r for r in rows if r["kind"] == "left"),
        }

    def held(self, reviewer_id: int, study_id: int) -> dict:
        """{open: how many open assignments the reviewer has in the study, last_position: as in
        `standing`}, both from the reviewer's index."""
        row = self._one(
            f"SELECT ({_LAST_POSITION}) AS last_position,"
            " (SELECT count(*) FROM assignments WHERE reviewer_id = :r AND study_id = :s"
            f"  AND done = {AssignmentState.OPEN:d}) AS open",
            {"r": reviewer_id, "s": study_id},
        )
        last = row["last_position"]
        return {"open": row["open"], "last_position": -1 if last is None else last}

    def reviewer_left_balances(
        self, reviewer_id: int, study_id: int, now: float
    ) -> dict[tuple[str, str], int]:
        """(system_x, system_y) -> (times x was shown left) - (times y was), over the reviewer's
        live assignments in the study."""
        return _balance(
            self._rows(
                "SELECT shown_left, shown_right, count(*) AS n FROM assignments a"
                f" WHERE reviewer_id = ? AND study_id = ? AND {_counts_towards_k('?')}"
                " GROUP BY shown_left, shown_right",
                [reviewer_id, study_id, now],
            )
        )

    def remaining_for_reviewer(
        self, reviewer_id: int, study_id: int, reviews_per_pair: int, now: float
    ) -> int:
        """Pairs of the study the reviewer has not seen that still need a review."""
        row = self._one(
            "WITH live AS ("
            " SELECT a.pair_id, a.reviewer_id FROM assignments a JOIN pairs p ON p.id = a.pair_id"
            f" WHERE p.study_id = :s AND {_counts_towards_k(':now')}"
            " UNION"
            " SELECT v.pair_id, v.reviewer_id FROM votes v JOIN pairs p ON p.id = v.pair_id"
            " WHERE p.study_id = :s AND v.winner IS NOT NULL AND v.id = ("
            "  SELECT max(v2.id) FROM votes v2"
            "  WHERE v2.pair_id = v.pair_id AND v2.reviewer_id = v.reviewer_id)"
            "), counts AS (SELECT pair_id, count(*) AS n FROM live GROUP BY pair_id)"
            " SELECT count(*) AS n FROM pairs p LEFT JOIN counts c ON c.pair_id = p.id"
            " WHERE p.study_id = :s AND p.human = 1 AND coalesce(c.n, 0) < :k"
            " AND p.id NOT IN (SELECT pair_id FROM assignments WHERE reviewer_id = :r)"
            " AND p.id NOT IN (SELECT pair_id FROM votes WHERE reviewer_id = :r)",
            {"s": study_id, "now": now, "k": reviews_per_pair, "r": reviewer_id},
        )
        return row["n"]

    def insert_assignment(
        self,
        pair_id: int,
        reviewer_id: int,
        study_id: int,
        shown: tuple[str, str],
        position: int,
        leased_until: float,
        state: AssignmentState = AssignmentState.OPEN,
    ) -> int:
        """Hand a pair to a reviewer; `shown` = (system on the left, system on the right)."""
        new_id = self._insert(
            "INSERT INTO assignments (pair_id, reviewer_id, study_id, shown_left, shown_right, "
            "position, leased_until, done, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [pair_id, reviewer_id, study_id, *shown, position, leased_until, int(state), now_iso()],
        )
        return new_id

    def set_assignment_state(
        self, assignment_id: int, state: AssignmentState, leased_until: float | None = None
    ) -> None:
        self.db.execute(
            "UPDATE assignments SET done = ?, leased_until = coalesce(?, leased_until) "
            "WHERE id = ?",
            [int(state), leased_until, assignment_id],
        )

    def insert_vote(self, vote: dict) -> int:
        """Append one vote (a dict of votes columns except id) and return its id. The time it
        entered the workspace is the store's to record, whatever the vote says."""
        vote = {**vote, "entered_at": now_iso()}
        columns = list(vote)
        with self._lock:
            new_id = self._insert(
                f"INSERT INTO votes ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [vote[c] for c in columns],
            )
            self.store.audit.seal("votes", new_id - 1)
            return new_id

    def insert_votes(self, votes: list[dict]) -> None:
        """Append votes; each dict has the votes columns except id."""
        columns = [
            "pair_id",
            "reviewer_id",
            "shown_left",
            "shown_right",
            "choice",
            "winner",
            "criteria",
            "rationale",
            "flags",
            "ms_spent",
            "source",
            "created_at",
            "supersedes",
        ]
        entered_at = now_iso()
        with self._lock:
            last = self.store.audit.last_id("votes")
            self.db.executemany(
                f"INSERT INTO votes ({', '.join(columns)}, entered_at) "
                f"VALUES ({', '.join('?' * len(columns))}, ?)",
                [(*(v.get(c) for c in columns), entered_at) for v in votes],
            )
            self.store.audit.seal("votes", last)

    def append_votes(self, votes: list[dict]) -> int:
        """Append imported votes (dicts of the same votes columns, pair_id and reviewer_id among
        them, without id and supersedes), each superseding the reviewer's latest vote on its pair.
        A vote the reviewer cast in the app is never superseded: the import checks for one, and
        this statement skips the row should the reviewer have voted in the app since the check.
        Returns how many rows were appended."""
        if not votes:
            return 0
        columns = list(votes[0])
        # When a vote entered the workspace is the store's to record, whatever the file says.
        entered_at = now_iso()
        latest = (
            "FROM votes WHERE pair_id = :pair_id AND reviewer_id = :reviewer_id "
            "ORDER BY id DESC LIMIT 1"
        )
        with self._lock:
            last = self.store.audit.last_id("votes")
            cursor = self.db.executemany(
                f"INSERT INTO votes ({', '.join(columns)}, entered_at, supersedes) "
                f"SELECT {', '.join(':' + c for c in columns)}, :entered_at, (SELECT id {latest}) "
                f"WHERE coalesce((SELECT source {latest}), '') != 'app'",
                [{**vote, "entered_at": entered_at} for vote in votes],
            )
            added = cursor.rowcount
            self.store.audit.seal("votes", last)
        return added

    def latest_vote(self, pair_id: int, reviewer_id: int) -> dict | None:
        return self._one(
            "SELECT * FROM votes WHERE pair_id = ? AND reviewer_id = ? ORDER BY id DESC LIMIT 1",
            [pair_id, reviewer_id],
        )

    def voted_under_guidelines(self, reviewer_id: int, study_id: int, content_hash: str) -> bool:
        """Whether the reviewer cast any vote in the study under that version of its guidelines."""
        row = self._one(
            "SELECT 1 AS yes FROM votes v JOIN pairs p ON p.id = v.pair_id "
            "WHERE v.reviewer_id = ? AND v.guidelines_hash = ? AND p.study_id = ? LIMIT 1",
            [reviewer_id, content_hash, study_id],
        )
        return row is not None

    def vote(self, vote_id: int) -> dict | None:
        return self._one("SELECT * FROM votes WHERE id = ?", [vote_id])

    def latest_vote_keys(self, study_id: int) -> dict[tuple[int, int], dict]:
        """(pair id, reviewer id) -> the latest vote row, for import de-duplication."""
        rows = self._rows(
            "SELECT v.* FROM votes v JOIN pairs p ON p.id = v.pair_id WHERE p.study_id = ? "
            "AND v.id = (SELECT max(v2.id) FROM votes v2 WHERE v2.pair_id = v.pair_id "
            "AND v2.reviewer_id = v.reviewer_id)",
            [study_id],
        )
        return {(r["pair_id"], r["reviewer_id"]): r for r in rows}

    def last_vote(self, reviewer_id: int, study_id: int) -> dict | None:
        """The reviewer's most recent current app vote in the study, with its assignment."""
        return self._one(
            "SELECT v.id AS vote_id, a.id AS assignment_id, a.pair_id, a.shown_left"
            " FROM votes v JOIN assignments a ON a.pair_id = v.pair_id"
            " AND a.reviewer_id = v.reviewer_id"
            f" WHERE v.reviewer_id = ? AND a.study_id = ? AND a.done = {AssignmentState.VOTED:d}"
            " AND v.winner IS NOT NULL"
            " ORDER BY v.id DESC LIMIT 1",
            [reviewer_id, study_id],
        )

    def reviewer_votes(self, reviewer_id: int, study_id: int, limit: int) -> list[dict]:
        """The reviewer's `limit` most recently handed pairs that hold a current app vote, newest
        first: the vote, its assignment, the prompt and the two outputs as shown (A left)."""
        return self._rows(
            "SELECT v.id AS vote_id, v.choice, v.criteria, v.rationale, v.flags, v.created_at,"
            " a.id AS assignment_id, a.shown_left, a.shown_right, i.prompt,"
            " ol.text AS text_a, o_r.text AS text_b FROM assignments a"
            " JOIN votes v ON v.id = (SELECT max(v2.id) FROM votes v2"
            "  WHERE v2.pair_id = a.pair_id AND v2.reviewer_id = a.reviewer_id)"
            " JOIN pairs p ON p.id = a.pair_id JOIN items i ON i.id = p.item_id"
            " JOIN outputs ol ON ol.item_id = p.item_id AND ol.system = a.shown_left"
            " JOIN outputs o_r ON o_r.item_id = p.item_id AND o_r.system = a.shown_right"
            f" WHERE a.reviewer_id = ? AND a.study_id = ? AND a.done = {AssignmentState.VOTED:d}"
            " ORDER BY a.id DESC LIMIT ?",
            [reviewer_id, study_id, limit],
        )

    def vote_history(self, study_id: int) -> list[dict]:
        """Every vote row of the study, superseded ones included, in insertion order."""
        return self._rows(
            "SELECT v.id, i.item_key, p.system_x, p.system_y, r.name AS reviewer, v.choice, "
            "v.winner, v.shown_left, v.shown_right, v.criteria, v.rationale, v.flags, v.ms_spent, "
            "v.source, v.created_at, v.supersedes, v.guidelines_hash FROM votes v JOIN pairs p ON p.id = v.pair_id "
            "JOIN items i ON i.id = p.item_id JOIN reviewers r ON r.id = v.reviewer_id "
            "WHERE p.study_id = ? ORDER BY v.id",
            [study_id],
        )
