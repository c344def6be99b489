"""Baseline judges that need no model: always pick the longer, the shorter, the first, or a seeded
random response. A real judge is only worth its cost if it beats these on human agreement."""

from __future__ import annotations

import hashlib
from typing import Literal

BASELINES: tuple[str, ...] = ("longest", "shortest", "first", "random")

Choice = Literal["first", "second", "tie"]


def baseline_choice(
    name: str, first_text: str, second_text: str, key: str, seed: int = 0
) -> Choice:
    """Return which of two responses (as shown first / second) the baseline `name` prefers.

    `key` identifies the call (for example "pair-17:first=base"); with `seed` it makes the random
    baseline deterministic per call, so re-running a baseline reproduces it exactly.
    """
    if name == "longest":
        return _by_length(len(first_text), len(second_text))
    if name == "shortest":
        return _by_length(len(second_text), len(first_text))
    if name == "first":
        return "first"
    if name == "random":
        digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
        return "first" if digest[0] % 2 == 0 else "second"
    raise ValueError(f"unknown baseline judge {name!r}; choose one of {', '.join(BASELINES)}")


def _by_length(first_len: int, second_len: int) -> Choice:
    if first_len == second_len:
        return "tie"
    return "first" if first_len > second_len else "second"
