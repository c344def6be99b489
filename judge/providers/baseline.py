"""Baseline judges that need no model: always pick the longer, the shorter, the first, or a seeded
random response. A real judge is only worth its cost if it beats these on human agreement."""

from __future__ import annotations

import hashlib
from typing import Literal

from judge.errors import JudgeError
from judge.providers.base import Completion, JudgeRequest

BASELINES: tuple[str, ...] = ("longest", "shortest", "first", "random")
# A baseline judge is named "baseline/<name>" wherever judges are named (specs, run labels).
BASELINE_PREFIX = "baseline/"

Choice = Literal["first", "second", "tie"]


def is_baseline(judge: str) -> bool:
    """Whether a judge spec or label names a baseline judge."""
    return judge.startswith(BASELINE_PREFIX)


def baseline_choice(
    name: str, first_length: int, second_length: int, key: str, seed: int = 0
) -> Choice:
    """Return which of two responses (as shown first / second, by their lengths in characters)
    the baseline `name` prefers. This is the only place a baseline decides: the provider below
    and the verdicts the app computes for baselines without a stored run both call it.

    `key` identifies the call (the runner uses "<pair id>:<system shown first>", e.g. "17:base"); with `seed` it makes the random
    baseline deterministic per call, so re-running a baseline reproduces it exactly.
    """
    if name == "longest":
        return _by_length(first_length, second_length)
    if name == "shortest":
        return _by_length(second_length, first_length)
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
