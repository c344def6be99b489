"""Rubric files: strict validation of the YAML format described in `rubrics/README.md`, the
rubric's content hash, the JSON schema of the answer it asks for, and prompt rendering.

A rubric is data, not code: every key is known, every template variable is named, and the content
hash changes whenever anything that reaches the judge model changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml

from judge import yaml_fields
from judge.errors import RubricError
from judge.verdict import parse_verdict

Mode = Literal["pairwise", "pointwise"]

# Variables a template may use. `criteria` is rendered from the rubric itself; the others come
# from the item being judged. Responses are always called A (shown first) and B (shown second).
ITEM_VARIABLES: tuple[str, ...] = ("prompt", "response_a", "response_b", "reference", "category")
TEMPLATE_VARIABLES: tuple[str, ...] = (*ITEM_VARIABLES, "criteria")
REQUIRED_VARIABLES: tuple[str, ...] = ("prompt", "response_a", "response_b")
# Item fields that may be absent; a rubric using one cannot judge an item without it.
OPTIONAL_VARIABLES: tuple[str, ...] = ("reference", "category")

PAIRWISE_LABELS: tuple[str, ...] = ("A", "B", "tie")

_TOP_KEYS = {
    "name": True,
    "version": True,
    "mode": True,
    "description": False,
    "instructions": True,
    "template": True,
    "criteria": True,
    "allow_tie": False,
    "examples": False,
}
_CRITERION_KEYS = {"name": True, "description": True, "scale": False, "weight": False}
_EXAMPLE_KEYS = {
    "prompt": True,
    "response_a": True,
    "response_b": True,
    "reference": False,
    "category": False,
    "answer": True,
    "note": False,
}
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class Criterion:
    """One thing the judge weighs. `scale` and `weight` apply in pointwise mode only."""

    name: str
    description: str
    scale: tuple[int, int] | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class Example:
    """A few-shot example: an item, its two responses, and the answer a good judge gives."""

    prompt: str
    response_a: str
    response_b: str
    answer: dict[str, Any]
    reference: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class Rubric:
    """A validated rubric. Build one with `load_rubric` or `parse_rubric`."""

    name: str
    version: str
    mode: Mode
    instructions: str
    template: str
    criteria: tuple[Criterion, ...]
    allow_tie: bool
    examples: tuple[Example, ...]
    description: str
    content_hash: str
    source: str

    @property
    def variables(self) -> frozenset[str]:
        """Template variables this rubric uses (in its instructions or template)."""
        return frozenset(_VARIABLE.findall(self.instructions + "\n" + self.template))

    @property
    def static_messages(self) -> int:
        """How many leading rendered messages are the same for every item: the system prompt
        (instructions and criteria) and the few-shot turns. Providers cache this prefix, so it
        always comes first; instructions that use an item variable make it empty."""
        if set(_VARIABLE.findall(self.instructions)) & set(ITEM_VARIABLES):
            return 0
        return 1 + 2 * len(self.examples)

    @property
    def labels(self) -> tuple[str, ...]:
        """Labels a pairwise answer may give as `winner`."""
        return PAIRWISE_LABELS if self.allow_tie else PAIRWISE_LABELS[:2]

    @property
    def schema_name(self) -> str:
        return f"{self.mode}_verdict"

    def output_schema(self) -> dict[str, Any]:
        """JSON schema of the answer, in the strict subset both OpenAI and Anthropic accept.

        The explanation comes first so the model reasons before it commits to a verdict.
        """
        if self.mode == "pairwise":
            properties: dict[str, Any] = {
                "explanation": {"type": "string"},
                "winner": {"type": "string", "enum": list(self.labels)},
            }
            return _object(properties)
        per_response = _object(
            {
                c.name: {"type": "integer", "enum": list(range(c.scale[0], c.scale[1] + 1))}
                for c in self.criteria
                if c.scale is not None
            }
        )
        return _object(
            {
                "explanation": {"type": "string"},
                "scores": _object({"A": per_response, "B": per_response}),
            }
        )

    def render(
        self,
        prompt: str,
        response_a: str,
        response_b: str,
        reference: str | None = None,
        category: str | None = None,
    ) -> list[dict[str, str]]:
        """Render the chat messages for one call: system, few-shot turns, then the item.

        Raises RubricError naming any variable the rubric needs that the item does not have.
        """
        values = {
            "prompt": prompt,
            "response_a": response_a,
            "response_b": response_b,
            "reference": reference,
            "category": category,
        }
        # An empty response is valid (a model can answer nothing); a missing reference is not.
        missing = sorted(v for v in self.variables if v in OPTIONAL_VARIABLES and not values.get(v))
        if missing:
            raise RubricError(
                f"rubric {self.name!r} needs {', '.join(missing)} but the item has none; "
                "choose a rubric that does not use it, or import the item with it"
            )
        if self.static_messages:
            start = [dict(message) for message in self._static_start]
        else:
            # The instructions use an item variable: only the examples are the same every time.
            system = {"role": "system", "content": self._fill(self.instructions, values)}
            start = [system, *(dict(message) for message in self._static_start[1:])]
        return [*start, {"role": "user", "content": self._fill(self.template, values)}]

    @cached_property
    def _static_start(self) -> tuple[dict[str, str], ...]:
        """The system prompt (as rendered without an item) and the few-shot turns, rendered once
        per rubric: every call of a run shares these strings."""
        turns = [{"role": "system", "content": self._fill(self.instructions, {})}]
        for example in self.examples:
            example_values = {
                "prompt": example.prompt,
                "response_a": example.response_a,
                "response_b": example.response_b,
                "reference": example.reference,
                "category": example.category,
            }
            turns.append({"role": "user", "content": self._fill(self.template, example_values)})
            turns.append(
                {"role": "assistant", "content": json.dumps(example.answer, ensure_ascii=False)}
            )
        return tuple(turns)

    def _fill(self, text: str, values: dict[str, str | None]) -> str:
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "criteria":
                return self._criteria_text()
            return values.get(name) or ""

        # One pass: text that comes from an item is never re-scanned for {{variables}}.
        return _VARIABLE.sub(substitute, text)

    def _criteria_text(self) -> str:
        lines = []
        for c in self.criteria:
            scale = f" (score {c.scale[0]}-{c.scale[1]})" if c.scale else ""
            lines.append(f"- {c.name}{scale}: {c.description.strip()}")
        return "\n".join(lines)


def load_rubric(path: str | Path) -> Rubric:
    """Read and validate a rubric YAML file. Raises RubricError naming file, line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(f"{path}: cannot read rubric: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise RubricError(
            f"{path}:{line}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    return parse_rubric(text, source=str(path))


def parse_rubric(text: str, source: str = "<rubric>") -> Rubric:
    """Validate rubric YAML given as text; `source` names it in error messages."""
    root, data = yaml_fields.parse(text, source, RubricError)
    return _Validator(source, root).rubric(data)


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


class _Validator(yaml_fields.FieldReader):
    """Turns parsed YAML into a Rubric, reporting the first problem with its line number."""

    def fail(self, field: tuple[str | int, ...], problem: str) -> RubricError:
        label = yaml_fields.field_label(field)
        return RubricError(f"{self.where(field)}: {label + ': ' if label else ''}{problem}")

    def rubric(self, data: Any) -> Rubric:
        if data is None:
            raise self.fail((), "the rubric file is empty")
        data = self.keys(data, _TOP_KEYS, ())
        name = self.text(data["name"], ("name",))
        if not _NAME.match(name):
            raise self.fail(("name",), "use lower-case letters, digits, '-', '_' or '.'")
        version = data["version"]
        if isinstance(version, bool) or not isinstance(version, int | float | str):
            raise self.fail(("version",), "expected a number or a string such as 2 or '2.1'")
        # A version names files and runs (`name-vVERSION.yaml`): no path or hidden characters.
        if not _VERSION.match(str(version)):
            raise self.fail(
                ("version",),
                "use letters, digits, '.', '-' or '_', starting with one of the first two",
            )
        mode = data["mode"]
        if mode not in ("pairwise", "pointwise"):
            raise self.fail(("mode",), "expected 'pairwise' or 'pointwise'")
        allow_tie = data.get("allow_tie", True)
        if not isinstance(allow_tie, bool):
            raise self.fail(("allow_tie",), "expected true or false")
        if mode == "pointwise" and "allow_tie" in data:
            raise self.fail(("allow_tie",), "only pairwise rubrics take allow_tie")
        instructions = self.text(data["instructions"], ("instructions",))
        template = self.text(data["template"], ("template",))
        self.check_variables(instructions, ("instructions",))
        self.check_variables(template, ("template",))
        used = set(_VARIABLE.findall(template))
        for variable in REQUIRED_VARIABLES:
            if variable not in used:
                raise self.fail(("template",), f"never uses {{{{{variable}}}}}")
        criteria = self.criteria(data["criteria"], mode)
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail(("description",), "expected a string")
        partial = Rubric(
            name=name,
            version=str(version),
            mode=mode,
            instructions=instructions,
            template=template,
            criteria=criteria,
            allow_tie=allow_tie,
            examples=(),
            description=description,
            content_hash="",
            source=self.source,
        )
        examples = self.examples(data.get("examples", []), partial)
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
        content_hash = hashlib.sha256(canonical.encode()).hexdigest()
        return replace(partial, examples=examples, content_hash=content_hash)

    def check_variables(self, text: str, field: tuple[str | int, ...]) -> None:
        for variable in _VARIABLE.findall(text):
            if variable not in TEMPLATE_VARIABLES:
                raise self.fail(
                    field,
                    f"unknown variable {{{{{variable}}}}}; "
                    f"available: {', '.join(TEMPLATE_VARIABLES)}",
                )

    def criteria(self, value: Any, mode: str) -> tuple[Criterion, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(("criteria",), "expected a non-empty list of criteria")
        result = []
        seen: set[str] = set()
        for i, raw in enumerate(value):
            field = ("criteria", i)
            raw = self.keys(raw, _CRITERION_KEYS, field)
            name = self.text(raw["name"], (*field, "name"))
            if not _NAME.match(name):
                raise self.fail((*field, "name"), "use lower-case letters, digits, '-', '_' or '.'")
            if name in seen:
                raise self.fail((*field, "name"), f"criterion {name!r} appears twice")
            seen.add(name)
            scale = None
            if "scale" in raw:
                low_high = raw["scale"]
                if (
                    not isinstance(low_high, list)
                    or len(low_high) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in low_high)
                    or low_high[0] >= low_high[1]
                ):
                    raise self.fail((*field, "scale"), "expected [lowest, highest], e.g. [1, 5]")
                scale = (low_high[0], low_high[1])
            elif mode == "pointwise":
                raise self.fail(field, "pointwise criteria need a scale, e.g. scale: [1, 5]")
            weight = raw.get("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
                raise self.fail((*field, "weight"), "expected a positive number")
            if mode == "pairwise" and ("scale" in raw or "weight" in raw):
                key = "scale" if "scale" in raw else "weight"
                raise self.fail((*field, key), "only pointwise criteria take scale and weight")
            description = self.text(raw["description"], (*field, "description"))
            result.append(Criterion(name, description, scale, float(weight)))
        return tuple(result)

    def examples(self, value: Any, rubric: Rubric) -> tuple[Example, ...]:
        if not isinstance(value, list):
            raise self.fail(("examples",), "expected a list of examples")
        result = []
        for i, raw in enumerate(value):
            field = ("examples", i)
            raw = self.keys(raw, _EXAMPLE_KEYS, field)
            texts = {}
            for key in ("prompt", "response_a", "response_b", "reference", "category", "note"):
                if key in raw:
                    texts[key] = self.text(raw[key], (*field, key), allow_empty=True)
            for variable in rubric.variables & set(OPTIONAL_VARIABLES):
                if not texts.get(variable):
                    raise self.fail(field, f"missing {variable!r}, which the template uses")
            answer = raw["answer"]
            verdict = parse_verdict(rubric, json.dumps(answer) if isinstance(answer, dict) else "")
            if verdict.parse_error:
                raise self.fail((*field, "answer"), verdict.parse_error)
            result.append(
                Example(
                    prompt=texts["prompt"],
                    response_a=texts["response_a"],
                    response_b=texts["response_b"],
                    answer=answer,
                    reference=texts.get("reference"),
                    category=texts.get("category"),
                )
            )
        return tuple(result)


def field_location(text: str, source: str, field: tuple[str | int, ...]) -> str:
    """ "FILE:LINE: FIELD" for a field of rubric YAML `text` (as rubric errors name it), so a
    check made outside this module can point at the same place."""
    try:
        root = yaml.compose(text, Loader=yaml_fields.SAFE_LOADER)
    except yaml.YAMLError:
        root = None
    line = yaml_fields.line_of(root, field)
    label = yaml_fields.field_label(field)
    return f"{source}:{line}: {label}" if line else f"{source}: {label}"
