"""Builders for the pairs / votes / verdicts frames the store produces, from short tuples, so
statistics tests can state small hand-computed tables in a few lines."""

from __future__ import annotations

import pandas as pd

from review_app import stats

PAIR_COLUMNS = [
    "pair_id",
    "item_key",
    "category",
    "system_x",
    "system_y",
    "prompt",
    "reference",
    "output_x",
    "output_y",
    "len_prompt",
    "len_x",
    "len_y",
]
VOTE_COLUMNS = [
    "vote_id",
    "pair_id",
    "reviewer",
    "winner",
    "outcome",
    "shown_left",
    "rationale",
    "created_at",
]
# The same columns the store's verdict frames and the synthesized baselines carry.
VERDICT_COLUMNS = stats.VERDICT_COLUMNS


def make_pairs(
    n: int,
    systems: tuple[str, str] = ("base", "finetuned"),
    lengths: dict[int, tuple[int, int]] | None = None,
    categories: dict[int, str] | None = None,
) -> pd.DataFrame:
    """Pairs 1..n between two systems; outputs of equal length unless `lengths` says otherwise."""
    system_x, system_y = sorted(systems)
    ids = range(1, n + 1)
    lens = [(lengths or {}).get(pair_id, (100, 100)) for pair_id in ids]
    prompts = [f"prompt {pair_id}" for pair_id in ids]
    return _frame(
        {
            "pair_id": list(ids),
            "item_key": [f"item-{pair_id}" for pair_id in ids],
            "category": [(categories or {}).get(pair_id, "general") for pair_id in ids],
            "system_x": [system_x] * n,
            "system_y": [system_y] * n,
            "prompt": prompts,
            "reference": [None] * n,
            "output_x": ["x" * len_x for len_x, _ in lens],
            "output_y": ["y" * len_y for _, len_y in lens],
            "len_prompt": [len(prompt) for prompt in prompts],
            "len_x": [len_x for len_x, _ in lens],
            "len_y": [len_y for _, len_y in lens],
        },
        PAIR_COLUMNS,
    )


def _frame(columns: dict[str, list], names: list[str]) -> pd.DataFrame:
    """The frame of these columns (lists, one value a row): the same frame as from one record
    a row, in a fraction of the time (the simulations build thousands)."""
    if not columns[names[0]]:
        return pd.DataFrame(columns=names)
    return pd.DataFrame({name: columns[name] for name in names})


def _system(side, systems: tuple[str, str], otherwise):
    """The system on `side` ('x' or 'y') of a pair; `otherwise` for any other side."""
    if side == "x":
        return systems[0]
    if side == "y":
        return systems[1]
    return otherwise


def _systems_by_pair(pairs: pd.DataFrame) -> dict[int, tuple[str, str]]:
    """(system_x, system_y) by pair id: a dict, as the simulations build thousands of frames and a
    row lookup in pandas costs more than the statistics they test."""
    systems = zip(pairs["system_x"], pairs["system_y"], strict=True)
    return dict(zip(pairs["pair_id"], systems, strict=True))


def make_votes(pairs: pd.DataFrame, rows: list[tuple]) -> pd.DataFrame:
    """Votes from (pair_id, reviewer, outcome[, shown_left as 'x'|'y'|None]) tuples."""
    by_pair = _systems_by_pair(pairs)
    systems = [by_pair[row[0]] for row in rows]
    ids = range(1, len(rows) + 1)
    return _frame(
        {
            "vote_id": list(ids),
            "pair_id": [row[0] for row in rows],
            "reviewer": [row[1] for row in rows],
            "winner": [_system(row[2], xy, row[2]) for row, xy in zip(rows, systems, strict=True)],
            "outcome": [row[2] for row in rows],
            "shown_left": [
                _system(row[3], xy, None) if len(row) > 3 and row[3] else None
                for row, xy in zip(rows, systems, strict=True)
            ],
            "rationale": [f"because {i}" for i in ids],
            "created_at": [f"2026-01-01T00:00:{i % 60:02d}" for i in ids],
        },
        VOTE_COLUMNS,
    )


def make_verdicts(pairs: pd.DataFrame, rows: list[tuple]) -> pd.DataFrame:
    """Verdicts from (judge, pair_id, first as 'x'|'y'|None, outcome or None[, cost]) tuples."""
    by_pair = _systems_by_pair(pairs)
    systems = [by_pair[row[1]] for row in rows]
    ids = range(1, len(rows) + 1)
    n = len(rows)
    return _frame(
        {
            "verdict_id": list(ids),
            "run_id": [1] * n,
            "judge": [row[0] for row in rows],
            "pair_id": [row[1] for row in rows],
            "first_system": [
                _system(row[2], xy, "") for row, xy in zip(rows, systems, strict=True)
            ],
            "first": [row[2] for row in rows],
            "winner": [_system(row[3], xy, row[3]) for row, xy in zip(rows, systems, strict=True)],
            "outcome": [row[3] for row in rows],
            "explanation": [f"explanation {i}" for i in ids],
            "raw_text": [f"raw {i}" for i in ids],
            "parse_error": [None if row[3] is not None else "no verdict found" for row in rows],
            "cost": [row[4] if len(row) > 4 else 0.0 for row in rows],
            "latency_ms": [100.0] * n,
            "tokens_in": [10] * n,
            "tokens_out": [5] * n,
        },
        VERDICT_COLUMNS,
    )


def no_votes() -> pd.DataFrame:
    return pd.DataFrame(columns=VOTE_COLUMNS)


def no_verdicts() -> pd.DataFrame:
    return pd.DataFrame(columns=VERDICT_COLUMNS)
