"""Baseline judges as the app sees them: how they are labelled, where they are listed, the one
every real judge must beat, and their verdicts computed for a study that has no stored run of them.
Each verdict comes from `judge.providers.baseline.baseline_choices`, the function a run calls."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from judge.providers.baseline import BASELINE_PREFIX, BASELINES, baseline_choices, is_baseline
from review_app.stats import TIE, VERDICT_COLUMNS, VerdictCodes, X, Y, as_strings

__all__ = [
    "BASELINES",
    "REFERENCE",
    "computed_choices",
    "computed_codes",
    "computed_verdicts",
    "is_baseline",
    "label",
    "order_judges",
]

# The baseline a real judge must beat to be worth its cost (always pick the longer answer).
REFERENCE = BASELINE_PREFIX + "longest"


def label(name: str) -> str:
    """The judge label of baseline `name`, e.g. "baseline/longest"."""
    return BASELINE_PREFIX + name


def order_judges(labels: Iterable[str]) -> list[str]:
    """Judges in the order every table lists them: real judges by name, then the baselines in
    the order of BASELINES."""
    rank = {label(name): i for i, name in enumerate(BASELINES)}
    labels = set(labels)
    real = sorted(j for j in labels if not is_baseline(j))
    baselines = sorted(
        (j for j in labels if is_baseline(j)), key=lambda j: (rank.get(j, len(rank)), j)
    )
    return real + baselines


Choices = list[tuple[str, bool, np.ndarray]]


def computed_choices(
    pairs: pd.DataFrame, names: Sequence[str] = BASELINES, seed: int = 0
) -> Choices:
    """(name, x shown first, choice per pair) of each baseline `name` over `pairs`, in the
    order of the rows a stored run would hold: for each name, x shown first, then y. What
    `computed_codes` and `computed_verdicts` are made of (computed once, the random baseline
    hashes every call's key)."""
    if pairs.empty:
        return []
    pair_ids = pairs["pair_id"].to_numpy()
    system_x = as_strings(pairs["system_x"].to_numpy(dtype=object))
    system_y = as_strings(pairs["system_y"].to_numpy(dtype=object))
    len_x = pairs["len_x"].to_numpy(dtype=np.int64)
    len_y = pairs["len_y"].to_numpy(dtype=np.int64)
    # Only `random` reads the keys: built once, and only for it.
    keys_of: dict[bool, list[str]] = {}
    out = []
    for name in names:
        for x_first in (True, False):
            lengths = (len_x, len_y) if x_first else (len_y, len_x)
            if name == "random" and x_first not in keys_of:
                first = system_x if x_first else system_y
                # Python ints: formatting numpy's integers costs twice as much.
                ids = pair_ids.tolist()
                keys_of[x_first] = [f"{p}:{f}" for p, f in zip(ids, first.tolist(), strict=True)]
            keys = keys_of.get(x_first, [])
            out.append((name, x_first, baseline_choices(name, *lengths, keys, seed)))
    return out


def computed_codes(
    pairs: pd.DataFrame,
    names: Sequence[str] = BASELINES,
    seed: int = 0,
    choices: Choices | None = None,
) -> list[VerdictCodes]:
    """The verdicts of `computed_verdicts`, coded for the statistics (`stats.encode`): one
    `VerdictCodes` per baseline and order, in the same order, without building their rows.
    `choices`: `computed_choices(pairs, names, seed)` when already made."""
    if pairs.empty or not names:
        return []
    pair_ids = pairs["pair_id"].to_numpy()
    out = []
    for name, x_first, choice in (
        choices if choices is not None else computed_choices(pairs, names, seed)
    ):
        shown_first, shown_second = (X, Y) if x_first else (Y, X)
        outcome = np.where(
            choice == "first", shown_first, np.where(choice == "second", shown_second, TIE)
        )
        out.append(
            VerdictCodes(
                judge=label(name),
                pair_id=pair_ids,
                first=np.full(len(pair_ids), shown_first, dtype=np.int64),
                outcome=outcome.astype(np.int64),
            )
        )
    return out


def computed_verdicts(
    pairs: pd.DataFrame,
    names: Sequence[str] = BASELINES,
    seed: int = 0,
    choices: Choices | None = None,
):
    """Both-order verdict rows (`stats.VERDICT_COLUMNS`) of each baseline `name` over `pairs`,
    labelled "baseline/<name>": exactly the rows a stored run of that baseline would hold.

    Reads `pair_id, system_x, system_y, len_x, len_y`. Each call is keyed "<pair_id>:<first
    system>", the key the judge runner gives the same call, so `random` draws the same answers.
    `choices`: `computed_choices(pairs, names, seed)` when already made.
    """
    if pairs.empty or not names:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    pair_ids = pairs["pair_id"].to_numpy()
    system_x = as_strings(pairs["system_x"].to_numpy(dtype=object))
    system_y = as_strings(pairs["system_y"].to_numpy(dtype=object))
    frames = []
    for name, x_first, choice in (
        choices if choices is not None else computed_choices(pairs, names, seed)
    ):
        first, second = (system_x, system_y) if x_first else (system_y, system_x)
        sides = ("x", "y") if x_first else ("y", "x")
        frames.append(
            pd.DataFrame(
                {
                    "judge": label(name),
                    "pair_id": pair_ids,
                    "first_system": first,
                    "first": sides[0],
                    "winner": np.where(
                        choice == "first", first, np.where(choice == "second", second, "tie")
                    ),
                    "outcome": np.where(
                        choice == "first",
                        sides[0],
                        np.where(choice == "second", sides[1], "tie"),
                    ),
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    frame = pd.concat(frames, ignore_index=True).assign(
        verdict_id=None,
        run_id=None,
        explanation="",
        raw_text="",
        parse_error=None,
        cost=0.0,
        latency_ms=0.0,
        tokens_in=0,
        tokens_out=0,
    )
    return frame[VERDICT_COLUMNS]
