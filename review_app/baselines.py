"""Baseline judges as the app sees them: how they are labelled, where they are listed, the one
every real judge must beat, and their verdicts computed for a study that has no stored run of them.
Each verdict comes from `judge.providers.baseline.baseline_choice`, the function a run calls."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from judge.providers.baseline import BASELINE_PREFIX, BASELINES, baseline_choice, is_baseline
from review_app.stats import VERDICT_COLUMNS

__all__ = ["BASELINES", "REFERENCE", "computed_verdicts", "is_baseline", "label", "order_judges"]

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


def computed_verdicts(pairs: pd.DataFrame, names: Sequence[str] = BASELINES, seed: int = 0):
    """Both-order verdict rows (`stats.VERDICT_COLUMNS`) of each baseline `name` over `pairs`,
    labelled "baseline/<name>": exactly the rows a stored run of that baseline would hold.

    Reads `pair_id, system_x, system_y, len_x, len_y`. Each call is keyed "<pair_id>:<first
    system>", the key the judge runner gives the same call, so `random` draws the same answers.
    """
    if pairs.empty or not names:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    columns = pairs[["pair_id", "system_x", "system_y", "len_x", "len_y"]]
    rows = []
    for name in names:
        for x_first in (True, False):
            for pair_id, system_x, system_y, len_x, len_y in columns.itertuples(index=False):
                if x_first:
                    first, second, lengths, sides = system_x, system_y, (len_x, len_y), "xy"
                else:
                    first, second, lengths, sides = system_y, system_x, (len_y, len_x), "yx"
                key = f"{pair_id}:{first}"
                choice = baseline_choice(name, int(lengths[0]), int(lengths[1]), key, seed)
                winner, outcome = {
                    "first": (first, sides[0]),
                    "second": (second, sides[1]),
                    "tie": ("tie", "tie"),
                }[choice]
                rows.append((label(name), pair_id, first, sides[0], winner, outcome))
    frame = pd.DataFrame(
        rows, columns=["judge", "pair_id", "first_system", "first", "winner", "outcome"]
    ).assign(
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
