"""Strict parsing of a judge model's answer into a Verdict.

Anything that is not exactly the answer the rubric asked for (a refusal, a truncated or empty
answer, malformed JSON, a label outside the allowed set, a missing score) becomes an unparsed
verdict carrying its reason: never a tie, never a loss.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from judge.rubric import Rubric

Choice = Literal["first", "second", "tie"]

_LABEL_TO_CHOICE: dict[str, Choice] = {"A": "first", "B": "second", "tie": "tie"}
# Some OpenAI-compatible servers wrap JSON in one Markdown code fence despite the schema; that
# wrapping is unambiguous, so it is the only leniency allowed.
_FENCE = re.compile(r"^```(?:json)?\s*\n(.*)\n```$", re.DOTALL)


@dataclass(frozen=True)
class Verdict:
    """One judge decision about two responses as shown (first = "A", second = "B").

    `winner` is None when the answer could not be parsed; `parse_error` then says why.
    `scores` (pointwise rubrics) maps "first"/"second" to {criterion: score}.
    """

    winner: Choice | None
    explanation: str = ""
    scores: dict[str, dict[str, int]] | None = None
    parse_error: str | None = None

    @property
    def parsed(self) -> bool:
        return self.winner is not None


def unparsed(reason: str) -> Verdict:
    return Verdict(winner=None, parse_error=reason)


def parse_verdict(
    rubric: Rubric, text: str, finish_reason: str = "stop", refusal: str | None = None
) -> Verdict:
    """Parse the raw answer text of one call against `rubric`.

    `finish_reason` is the provider's normalised stop reason ("stop", "length", "refusal",
    "content_filter", ...); `refusal` is a refusal message the provider reported separately.
    """
    if refusal:
        return unparsed(f"refusal: {refusal.strip()[:200]}")
    if finish_reason == "refusal":
        return unparsed("refusal: the model declined to answer")
    if finish_reason == "content_filter":
        return unparsed("refusal: the provider's content filter stopped the answer")
    if finish_reason == "length":
        return unparsed("truncated: the answer hit the max_tokens limit (length stop)")
    stripped = text.strip()
    if not stripped:
        return unparsed("empty answer")
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as exc:
        return unparsed(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    if not isinstance(data, dict):
        return unparsed(f"malformed answer: expected a JSON object, got {type(data).__name__}")
    explanation = data.get("explanation", "")
    if not isinstance(explanation, str):
        return unparsed("malformed answer: 'explanation' is not a string")
    expected = {"explanation", "winner"} if rubric.mode == "pairwise" else {"explanation", "scores"}
    extra = sorted(set(data) - expected)
    if extra:
        return unparsed(f"malformed answer: unexpected key(s) {', '.join(map(repr, extra))}")
    if rubric.mode == "pairwise":
        return _pairwise(rubric, data, explanation)
    return _pointwise(rubric, data, explanation)


def _pairwise(rubric: Rubric, data: dict[str, Any], explanation: str) -> Verdict:
    if "winner" not in data:
        return unparsed("malformed answer: missing 'winner'")
    label = data["winner"]
    if not isinstance(label, str) or label not in rubric.labels:
        return unparsed(
            f"label {label!r} is not one of the allowed labels {', '.join(rubric.labels)}"
        )
    return Verdict(winner=_LABEL_TO_CHOICE[label], explanation=explanation)


def _pointwise(rubric: Rubric, data: dict[str, Any], explanation: str) -> Verdict:
    scores = data.get("scores")
    if not isinstance(scores, dict) or set(scores) != {"A", "B"}:
        return unparsed("malformed answer: 'scores' must have exactly the keys 'A' and 'B'")
    mapped: dict[str, dict[str, int]] = {}
    totals: dict[str, float] = {}
    for label, position in (("A", "first"), ("B", "second")):
        given = scores[label]
        if not isinstance(given, dict):
            return unparsed(f"malformed answer: scores[{label!r}] is not an object")
        names = {c.name for c in rubric.criteria}
        if set(given) != names:
            missing = sorted(names - set(given))
            extra = sorted(set(given) - names)
            problem = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(extra)}"
            return unparsed(f"malformed answer: scores[{label!r}]: {problem}")
        total = 0.0
        for criterion in rubric.criteria:
            value = given[criterion.name]
            low, high = criterion.scale or (0, 0)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                return unparsed(
                    f"score {value!r} for {label}.{criterion.name} is outside {low}-{high}"
                )
            # Normalise each criterion to 0..1 so a 1-10 criterion does not outweigh a 1-5 one.
            total += criterion.weight * (value - low) / (high - low)
        mapped[position] = dict(given)
        totals[position] = total
    if abs(totals["first"] - totals["second"]) < 1e-9:
        winner: Choice = "tie"
    else:
        winner = "first" if totals["first"] > totals["second"] else "second"
    return Verdict(winner=winner, explanation=explanation, scores=mapped)
