"""Reading a small YAML definition file (a rubric, a grader) so that every problem names its file,
line and field: parsing that refuses what YAML would otherwise accept silently or expand without
bound, and the field reader validators build on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

Field = tuple[str | int, ...]
# A definition file is a few dozen entries: past this many values (an alias counted each time it is
# used) it is a file built to exhaust memory, not a definition.
MAX_NODES = 100_000
# libyaml's parser when PyYAML was built with it (it reads the same YAML with the same marks and
# messages, about ten times faster; a screen listing the rubrics parses each of them).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(
    text: str, source: str, error: Callable[[str], Exception]
) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data of YAML `text`. Invalid YAML, a key given
    twice in one mapping (YAML keeps the last silently) and anchors that expand past `MAX_NODES`
    values raise `error(message)`, the message starting with "SOURCE:LINE"."""
    try:
        root = yaml.compose(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise error(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    _check_nodes(root, source, error)
    # The tree was checked first, so constructing the data cannot blow up; a tag the safe
    # loader will not build (`!!python/object`...) is a problem in the file, not a crash.
    try:
        return root, yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{where}: not a plain definition: {problem}") from None


def _check_nodes(root: yaml.Node | None, source: str, error: Callable[[str], Exception]) -> None:
    stack = [root]
    count = 0
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise error(
                f"{source}: the file expands to more than {MAX_NODES} values (through anchors "
                "and aliases); a definition needs far fewer"
            )
        if isinstance(node, yaml.MappingNode):
            seen: set[object] = set()
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else id(key)
                if name in seen:
                    raise error(
                        f"{source}:{key.start_mark.line + 1}: key {name!r} appears twice in one "
                        "mapping; keep one"
                    )
                seen.add(name)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def field_label(field: Field) -> str:
    """A field path as written in messages: `criteria[0].name`."""
    label = ""
    for step in field:
        label += f"[{step}]" if isinstance(step, int) else (f".{step}" if label else step)
    return label


def line_of(root: yaml.Node | None, field: Field) -> int | None:
    """The line of the deepest node of `field` present in the tree (1-based)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for step in field:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == step), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            node = node.value[step] if step < len(node.value) else None
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


class FieldReader:
    """The shared checks of a definition's fields; a subclass says how a problem is worded
    (`fail`) and builds its definition from the checked fields."""

    def __init__(self, source: str, root: yaml.Node | None) -> None:
        self.source = source
        self.root = root

    def fail(self, field: Field, problem: str) -> Exception:
        raise NotImplementedError

    def where(self, field: Field) -> str:
        line = line_of(self.root, field)
        return f"{self.source}:{line}" if line else self.source

    def keys(self, data: Any, allowed: dict[str, bool], field: Field) -> dict:
        """`data` as a mapping with only `allowed` keys (name -> required) and every required
        one."""
        if not isinstance(data, dict):
            raise self.fail(field, "expected a mapping of keys to values")
        for key in data:
            if key not in allowed:
                raise self.fail(
                    (*field, key), f"unknown key; allowed keys: {', '.join(sorted(allowed))}"
                )
        for key, required in allowed.items():
            if required and key not in data:
                raise self.fail(field, f"missing required key {key!r}")
        return data

    def text(self, value: Any, field: Field, allow_empty: bool = False) -> str:
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise self.fail(field, "expected a non-empty string")
        return value
