"""Baseline judges that need no model: always pick the longer, the shorter, the first, or a seeded
random response. A real judge is only worth its cost if it beats these on human agreement."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

import numpy as np

from judge.errors import JudgeError
from judge.providers.base import Completion, JudgeRequest

BASELINES: tuple[str, ...] = ("longest", "shortest", "first", "random")
# A baseline judge is named "baseline/<name>" wherever judges are named (specs, run labels).
BASELINE_PREFIX = "baseline/"

Choice = Literal["first", "second", "tie"]


def is_baseline(judge: str) -> bool:
    """Whether a judge spec or label names a baseline judge."""
    return judge.startswith(BASELINE_PREFIX)


def baseline_choices(
    name: str,
    first_lengths: Sequence[int],
    second_lengths: Sequence[int],
    keys: Sequence[str],
    seed: int = 0,
) -> np.ndarray:
    """Which of two responses (shown first / second, by their lengths in characters) the baseline
    `name` prefers, for many calls at once: an array of "first" | "second" | "tie".

    This is the only place a baseline decides: the provider below asks it about one call, and the
    verdicts the app computes for baselines without a stored run ask it about every call. `keys`
    identify the calls (the runner uses "<pair id>:<system shown first>", e.g. "17:base"); with
    `seed` they make the random baseline deterministic per call, so a re-run reproduces it.
    """
    first = np.asarray(first_lengths, dtype=np.int64)
    second = np.asarray(second_lengths, dtype=np.int64)
    if name == "longest":
        return np.where(first > second, "first", np.where(first < second, "second", "tie"))
    if name == "shortest":
        return np.where(first < second, "first", np.where(first > second, "second", "tie"))
    if name == "first":
        return np.full(len(first), "first")
    if name == "random":
        # The low bit of each call's hash; one loop over many calls, so the names are looked up
        # once (a study's statistics hash every pair in both orders).
        sha256, prefix = hashlib.sha256, f"{seed}:"
        odd = np.fromiter(
            (sha256(f"{prefix}{key}".encode()).digest()[0] & 1 for key in keys),
            dtype=np.uint8,
            count=len(keys),
        )
        return np.where(odd == 0, "first", "second")
    raise ValueError(f"unknown baseline judge {name!r}; choose one of {', '.join(BASELINES)}")


def baseline_choice(
    name: str, first_length: int, second_length: int, key: str, seed: int = 0
) -> Choice:
    """`baseline_choices` for one call."""
    return str(baseline_choices(name, [first_length], [second_length], [key], seed)[0])


class BaselineProvider:
    """`baseline/<name>` as a judge provider: decides locally, costs nothing, never fails.

    The random baseline is seeded by the run's seed and the call's key, so a re-run reproduces it.
    """

    uses_prompt = False

    def __init__(self, model: str, **_options: object) -> None:
        if model not in BASELINES:
            raise JudgeError(
                f"unknown baseline judge {model!r}; choose one of "
                + ", ".join(BASELINE_PREFIX + b for b in BASELINES)
            )
        self.name = BASELINE_PREFIX + model
        self.model = model

    async def complete(self, request: JudgeRequest) -> Completion:
        choice = baseline_choice(
            self.model, len(request.first_text), len(request.second_text), request.key, request.seed
        )
        return Completion(text=f"{self.name} chose {choice}", choice=choice)

    async def aclose(self) -> None:
        return None
