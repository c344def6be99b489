"""The DataFrames the statistics read (pairs, votes, verdicts of a study) and the data version
that tells a cache when they changed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from review_app.migrations import SCORED
from review_app.store.base import Aggregate
from review_app.store.quality import EXCLUDED_REVIEWERS

# Each frame's columns in order, with whether its lean form (texts=False) has them. The lean
# form leaves out texts and labels: on a large study the texts take seconds to load and the
# statistics never read them. Both forms share one FROM/WHERE, so they select the same rows.
_PAIR_COLUMNS = (
    ("p.id AS pair_id", True),
    ("i.item_key", True),
    ("i.category", True),
    ("p.system_x", True),
    ("p.system_y", True),
    ("p.human", True),
    ("i.prompt", False),
    ("coalesce(i.reference, '') AS reference", False),
    ("ox.text AS output_x", False),
    ("oy.text AS output_y", False),
    ("length(i.prompt) AS len_prompt", False),
    ("length(ox.text) AS len_x", True),
    ("length(oy.text) AS len_y", True),
)
_PAIRS = (
    "FROM pairs p JOIN items i ON i.id = p.item_id "
    "JOIN outputs ox ON ox.item_id = p.item_id AND ox.system = p.system_x "
    "JOIN outputs oy ON oy.item_id = p.item_id AND oy.system = p.system_y "
)
_PAIRS_OF_STUDY = _PAIRS + "WHERE p.study_id = ? ORDER BY p.id"

_VOTE_COLUMNS = (
    ("v.id AS vote_id", True),
    ("v.pair_id", True),
    ("r.name AS reviewer", True),
    ("v.winner", False),
    (
        "CASE WHEN v.winner = p.system_x THEN 'x' WHEN v.winner = p.system_y THEN 'y' "
        "ELSE v.winner END AS outcome",
        True,
    ),
    ("v.shown_left", True),
    ("v.rationale", False),
    ("v.created_at", False),
    ("v.ms_spent", False),
    ("v.flags", False),
    ("v.source", False),
    ("v.criteria", False),
)
_LATEST_VOTES_OF_STUDY = (
    "FROM votes v JOIN pairs p ON p.id = v.pair_id JOIN reviewers r ON r.id = v.reviewer_id "
    "WHERE p.study_id = ? AND v.winner IS NOT NULL AND v.id = (SELECT max(v2.id) FROM votes v2 "
    "WHERE v2.pair_id = v.pair_id AND v2.reviewer_id = v.reviewer_id)"
)
_NOT_EXCLUDED = f" AND v.reviewer_id NOT IN ({EXCLUDED_REVIEWERS})"

_VERDICT_COLUMNS = (
    ("v.id AS verdict_id", True),
    ("v.run_id", True),
    ("j.label AS judge", False),
    ("v.pair_id", True),
    ("v.first_system", False),
    (
        "CASE WHEN v.first_system = p.system_x THEN 'x' WHEN v.first_system = p.system_y "
        "THEN 'y' ELSE NULL END AS first",
        True,
    ),
    (
        "CASE WHEN v.winner = p.system_x THEN 'x' WHEN v.winner = p.system_y THEN 'y' "
        "WHEN v.winner = 'tie' THEN 'tie' ELSE NULL END AS outcome",
        True,
    ),
    ("v.winner", False),
    ("v.explanation", False),
    ("v.raw_text", False),
    ("v.parse_error", False),
    ("v.cost", True),
    ("v.latency_ms", True),
    ("v.tokens_in", False),
    ("v.tokens_out", False),
)
_VERDICTS_OF_STUDY = (
    "FROM verdicts v JOIN judge_runs j ON j.id = v.run_id JOIN pairs p ON p.id = v.pair_id "
    "WHERE j.study_id = ?"
)


# The lean frames' numeric columns (every other lean column is text): known in advance, so the
# rows become arrays directly, not through pandas' type inference and string conversion.
_LEAN_INTEGERS = ("pair_id", "human", "len_x", "len_y", "vote_id", "verdict_id", "run_id")
_LEAN_FLOATS = ("cost", "latency_ms")


def _select(columns: tuple[tuple[str, bool], ...], texts: bool) -> str:
    return "SELECT " + ", ".join(sql for sql, lean in columns if texts or lean)


class FrameQueries(Aggregate):
    def _study_frame(self, sql: str, params: list, texts: bool) -> pd.DataFrame:
        if texts:
            return self._frame(sql, params)
        return self._plain_frame(sql, params, integers=_LEAN_INTEGERS, floats=_LEAN_FLOATS)

    def pairs_frame(self, study_id: int, texts: bool = True) -> pd.DataFrame:
        """One row per pair with its outputs' lengths; with `texts`, also the prompt, the
        reference (empty, not NULL, when absent), both outputs and the prompt's length."""
        sql = f"{_select(_PAIR_COLUMNS, texts)} {_PAIRS_OF_STUDY}"
        return self._study_frame(sql, [study_id], texts)

    def pair_ids(self, study_id: int) -> list[int]:
        """The ids of the pairs `pairs_frame` gives, in its order."""
        return [
            r["pair_id"]
            for r in self._rows(f"SELECT p.id AS pair_id {_PAIRS_OF_STUDY}", [study_id])
        ]

    def pair_with_texts(self, study_id: int, pair_id: int) -> dict | None:
        """One row of `pairs_frame(study_id)`, texts included (None when the study has no such
        pair)."""
        where = _PAIRS + "WHERE p.study_id = ? AND p.id = ?"
        rows = self._frame(f"{_select(_PAIR_COLUMNS, True)} {where}", [study_id, pair_id])
        return rows.to_dict("records")[0] if len(rows) else None

    def votes_frame(
        self, study_id: int, texts: bool = True, with_excluded: bool = False
    ) -> pd.DataFrame:
        """The latest vote of each reviewer on each pair, retractions dropped, with its outcome
        ('x', 'y', 'tie' or 'both_bad'); with `texts`, also the winning system, rationale, time,
        seconds spent, flags, source and criterion ratings. Reviewers excluded from the study are left out (every
        statistic recomputes without them) unless `with_excluded`."""
        where, params = _LATEST_VOTES_OF_STUDY, [study_id]
        if not with_excluded:
            where, params = where + _NOT_EXCLUDED, [study_id, study_id]
        return self._study_frame(
            f"{_select(_VOTE_COLUMNS, texts)} {where} ORDER BY v.id", params, texts
        )

    def verdicts_frame(self, study_id: int, texts: bool = True) -> pd.DataFrame:
        """Every verdict of the study's runs, in the order they were stored (by id), oriented to
        the canonical order; with `texts`, also the run's label as `judge`, the judge's answer
        and its token counts."""
        sql = f"{_select(_VERDICT_COLUMNS, texts)} {_VERDICTS_OF_STUDY}"
        if texts:
            return self._study_frame(f"{sql} ORDER BY v.id", [study_id], texts)
        # The lean rows come in the index's order and are put in order here: SQLite sorting
        # every row in a temporary B-tree cost more than sorting their ids.
        frame = self._study_frame(sql, [study_id], texts)
        order = np.argsort(frame["verdict_id"].to_numpy(), kind="stable")
        return frame.take(order).reset_index(drop=True)

    def calibration_data_version(self, study_id: int) -> str:
        """Changes whenever a vote, verdict, run, pair, reviewer exclusion, known answer, jury or
        the split of the study changes: a cache key for statistics derived from them (votes, verdicts and
        exclusions are append-only; a known answer changes its row's time)."""
        row = self._one(
            "SELECT (SELECT count(*) || '.' || coalesce(max(v.id), 0) FROM votes v "
            " JOIN pairs p ON p.id = v.pair_id WHERE p.study_id = :s) AS votes, "
            "(SELECT count(*) || '.' || coalesce(max(v.id), 0) FROM verdicts v "
            " JOIN judge_runs j ON j.id = v.run_id WHERE j.study_id = :s) AS verdicts, "
            "(SELECT count(*) || '.' || coalesce(max(id), 0) FROM judge_runs WHERE study_id = :s) "
            " AS runs, (SELECT count(*) FROM pairs WHERE study_id = :s) AS pairs, "
            "(SELECT count(*) || '.' || coalesce(max(id), 0) FROM reviewer_exclusions "
            " WHERE study_id = :s) AS exclusions, "
            "(SELECT count(*) || '.' || coalesce(max(created_at), '') FROM known_answers "
            " WHERE study_id = :s) AS known, "
            "(SELECT count(*) FROM juries WHERE study_id = :s) AS juries, "
            "(SELECT count(*) FROM comparison_splits WHERE study_id = :s) AS split",
            {"s": study_id},
        )
        keys = ("votes", "verdicts", "runs", "pairs", "exclusions", "known", "juries", "split")
        return "/".join(str(row[k]) for k in keys)

    def criteria_frame(self, study_id: int) -> pd.DataFrame:
        """The criterion ratings ({criterion: {system: 1-5}}, JSON) of every vote of the study
        that has any, edits and excluded reviewers included (pick the counted ones by
        `votes_frame`'s vote_id): vote_id, pair_id, criteria."""
        return self._plain_frame(
            "SELECT v.id AS vote_id, v.pair_id, v.criteria FROM votes v "
            "JOIN pairs p ON p.id = v.pair_id "
            "WHERE p.study_id = ? AND v.criteria NOT IN ('', '{}')",
            [study_id],
            integers=["vote_id", "pair_id"],
        )

    def scores_frame(self, study_id: int) -> pd.DataFrame:
        """The pointwise scores ({system: {criterion: score}}, JSON) of the study's verdicts
        that have any (both orders): run_id, pair_id, scores."""
        return self._plain_frame(
            "SELECT v.run_id, v.pair_id, v.scores FROM verdicts v "
            "JOIN judge_runs j ON j.id = v.run_id "
            f"WHERE j.study_id = ? AND v.{SCORED}",
            [study_id],
            integers=["run_id", "pair_id"],
        )
