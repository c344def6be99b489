"""A scripted in-process judge for tests and benchmarks. It is deliberately not in the provider
registry: users can never choose it as a judge.

It answers from a script (one entry per call, in order: a Completion to return or a ProviderError
to raise), then from `default`, and records every request it was sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable

from judge.providers.base import Completion, JudgeRequest


def answer_a(request: JudgeRequest) -> Completion:
    """Default answer: a well-formed pairwise verdict for response A."""
    return Completion(
        text=json.dumps({"explanation": "A is better.", "winner": "A"}),
        tokens_in=100,
        tokens_out=20,
    )


class ScriptedProvider:
    """A fake provider. `latency_s` is awaited before each answer, like a network round trip."""

    def __init__(
        self,
        script: Iterable[Completion | Exception] = (),
        default: Callable[[JudgeRequest], Completion] = answer_a,
        name: str = "fake/scripted",
        latency_s: float = 0.0,
    ) -> None:
        self.name = name
        self.script = list(script)
        self.default = default
        self.latency_s = latency_s
        self.requests: list[JudgeRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def complete(self, request: JudgeRequest) -> Completion:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            step = self.script.pop(0) if self.script else self.default(request)
        finally:
            self.in_flight -= 1
        if isinstance(step, Exception):
            raise step
        return step

    async def aclose(self) -> None:
        return None
