"""Graders: deterministic checks of outputs (DESIGN section 10). Owns the grader file format
(strict validation naming file, line, check and field), its content hash, running every check on
a frame of outputs at once, and the pass-rate / accuracy / macro-F1 summary. No I/O beyond
reading the grader file; storage lives in the store, use cases in `services/grading.py`.

A check's result on one output is pass or fail; `choice` checks also keep the label the output
gave (normalised), so accuracy and macro-F1 over the reference labels can be reported. A check
that does not apply to an output (another category or item, or no reference to compare with)
gives no result for it, so it never counts in n."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import regex
import yaml
from jsonschema import FormatChecker
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from judge import yaml_fields
from review_app import stats
from review_app.errors import InputError

# Every check type with its parameters: name -> required. `exact_match` and `choice` compare with
# the item's reference, the others look at the output alone.
CHECK_TYPES: dict[str, dict[str, bool]] = {
    "exact_match": {"normalize": False},
    "regex": {"pattern": True},
    "contains": {"text": True},
    "not_contains": {"text": True},
    "json_valid": {},
    "json_schema": {"schema": True},
    "max_chars": {"n": True},
    "choice": {"labels": False},
}
NEEDS_REFERENCE = ("exact_match", "choice")
# Keys every check may have besides its type's parameters.
_COMMON_KEYS = {
    "name": True,
    "type": True,
    "description": False,
    "categories": False,
    "items": False,
}
_TOP_KEYS = {"name": True, "description": False, "checks": True}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
RESULT_COLUMNS = ["output_id", "check", "passed", "label"]


@dataclass(frozen=True)
class Check:
    """One check of a grader: its type's parameters, and optionally the categories or item ids
    it is limited to (None = every output)."""

    name: str
    type: str
    params: dict[str, Any]
    categories: tuple[str, ...] | None = None
    items: tuple[str, ...] | None = None
    description: str = ""

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "params": self.params,
            "categories": list(self.categories) if self.categories is not None else None,
            "items": list(self.items) if self.items is not None else None,
            "description": self.description,
        }


@dataclass(frozen=True)
class Grader:
    """A validated grader file. `content_hash` is the SHA-256 of `canonical` (the parsed content
    as sorted JSON), so comments, key order and layout never change it and any change to a check
    does."""

    name: str
    checks: tuple[Check, ...]
    description: str = ""

    @property
    def canonical(self) -> str:
        body = {
            "name": self.name,
            "description": self.description,
            "checks": [c.to_json() for c in self.checks],
        }
        return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.canonical.encode()).hexdigest()

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)


# ---- loading ----


def load_grader(path: str | Path) -> Grader:
    """Read and validate a grader YAML file; InputError names file, line, check and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); save the grader "
            "file as UTF-8"
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read grader file: {exc.strerror or exc}") from None
    return parse_grader(text, str(path))


def parse_grader(text: str, source: str = "<grader>") -> Grader:
    """Validate grader YAML given as text; `source` names it in error messages."""
    root, data = yaml_fields.parse(text, source, InputError)
    return _Validator(source, root).grader(data)


class _Validator(yaml_fields.FieldReader):
    """Turns parsed YAML into a Grader, reporting the first problem with its line number."""

    def __init__(self, source: str, root: yaml.Node | None) -> None:
        super().__init__(source, root)
        self.check_name: str | None = None

    def fail(self, field: tuple[str | int, ...], problem: str) -> InputError:
        where = self.where(field)
        if self.check_name is not None:
            where += f": check {self.check_name!r}"
        label = yaml_fields.field_label(field)
        return InputError(f"{where}: {'field ' + label + ': ' if label else ''}{problem}")

    def names(self, value: Any, field: tuple[str | int, ...]) -> tuple[str, ...]:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.fail(field, "expected a non-empty list of names")
        out = []
        for i, v in enumerate(value):
            if isinstance(v, bool):
                raise self.fail(
                    (*field, i),
                    "YAML reads yes, no, on, off, true and false as true/false: quote it",
                )
            if not isinstance(v, str | int | float) or not str(v).strip():
                raise self.fail((*field, i), "expected a name")
            out.append(str(v).strip())
        return tuple(sorted(set(out)))

    def grader(self, data: Any) -> Grader:
        if data is None:
            raise self.fail((), "the grader file is empty")
        data = self.keys(data, _TOP_KEYS, ())
        name = self.text(data["name"], ("name",))
        if not _NAME.match(name):
            raise self.fail(("name",), "use lower-case letters, digits, '-', '_' or '.'")
        description = self.text(data.get("description", ""), ("description",), allow_empty=True)
        raw = data["checks"]
        if not isinstance(raw, list) or not raw:
            raise self.fail(("checks",), "expected a non-empty list of checks")
        checks = [self.check(c, ("checks", i)) for i, c in enumerate(raw)]
        seen: set[str] = set()
        for i, c in enumerate(checks):
            if c.name in seen:
                self.check_name = c.name
                raise self.fail(("checks", i, "name"), "two checks share this name")
            seen.add(c.name)
        return Grader(name, tuple(checks), description.strip())

    def check(self, data: Any, field: tuple[str | int, ...]) -> Check:
        self.check_name = None
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            self.check_name = data["name"]
        if not isinstance(data, dict):
            raise self.fail(field, "expected a mapping with name and type")
        for key in ("name", "type"):
            if key not in data:
                raise self.fail(field, f"missing required key {key!r}")
        name = self.text(data["name"], (*field, "name"))
        if not _NAME.match(name):
            raise self.fail((*field, "name"), "use lower-case letters, digits, '-', '_' or '.'")
        kind = data["type"]
        if not isinstance(kind, str) or kind not in CHECK_TYPES:
            raise self.fail(
                (*field, "type"), f"unknown check type {kind!r}; one of {', '.join(CHECK_TYPES)}"
            )
        self.keys(data, _COMMON_KEYS | CHECK_TYPES[kind], field)
        params = getattr(self, f"_{kind}")(data, field)
        categories = items = None
        if "categories" in data:
            categories = self.names(data["categories"], (*field, "categories"))
        if "items" in data:
            items = self.names(data["items"], (*field, "items"))
        description = self.text(data.get("description", ""), (*field, "description"), True)
        return Check(name, kind, params, categories, items, description.strip())

    # one method per check type: its parameters, validated, with defaults filled in

    def _exact_match(self, data: dict, field: tuple) -> dict:
        normalize = data.get("normalize", False)
        if not isinstance(normalize, bool):
            raise self.fail((*field, "normalize"), "expected true or false")
        return {"normalize": normalize}

    def _regex(self, data: dict, field: tuple) -> dict:
        pattern = self.text(data["pattern"], (*field, "pattern"))
        try:
            regex.compile(pattern)
        except regex.error as exc:
            raise self.fail((*field, "pattern"), f"not a valid regular expression: {exc}") from None
        return {"pattern": pattern}

    def _contains(self, data: dict, field: tuple) -> dict:
        return {"text": self.text(data["text"], (*field, "text"))}

    _not_contains = _contains

    def _json_valid(self, data: dict, field: tuple) -> dict:
        return {}

    def _json_schema(self, data: dict, field: tuple) -> dict:
        schema = data["schema"]
        if not isinstance(schema, dict | bool):
            raise self.fail((*field, "schema"), "expected a JSON Schema (a mapping)")
        try:
            validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "top level"
            raise self.fail(
                (*field, "schema"), f"not a valid JSON Schema at {where}: {exc.message}"
            ) from None
        problem = _unresolvable_reference(schema)
        if problem:
            raise self.fail((*field, "schema"), problem)
        return {"schema": schema}

    def _max_chars(self, data: dict, field: tuple) -> dict:
        n = data["n"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise self.fail((*field, "n"), "expected a whole number of characters, 0 or more")
        return {"n": n}

    def _choice(self, data: dict, field: tuple) -> dict:
        if "labels" not in data:
            return {"labels": None}
        labels = self.names(data["labels"], (*field, "labels"))
        return {"labels": sorted({normalize_text(label) for label in labels})}


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("$ref", "$dynamicRef") and isinstance(v, str)]
        return found + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


def _unresolvable_reference(schema: dict | bool) -> str | None:
    """Why a `$ref` of the schema cannot be followed (grading never fetches anything), or None.
    Only references inside the schema itself (`#/...`) are allowed."""
    for ref in _references(schema):
        if not ref.startswith("#"):
            return (
                f"$ref {ref!r} points outside the schema; grading reads no other file or URL, so "
                "put the definition under $defs and use '#/$defs/NAME'"
            )
        node: Any = schema
        for step in ref[1:].lstrip("/").split("/") if ref not in ("#", "#/") else []:
            step = step.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and step in node:
                node = node[step]
            elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
                node = node[int(step)]
            else:
                return f"$ref {ref!r} points to nothing in the schema"
    return None


# ---- running checks ----


_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Stripped, case-folded, with every run of whitespace collapsed to one space."""
    return _SPACE.sub(" ", text).strip().casefold()


def normalize(texts: pd.Series) -> pd.Series:
    """`normalize_text` of every text of a Series."""
    return texts.str.replace(_SPACE, " ", regex=True).str.strip().str.casefold()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_NOT_JSON = object()


def _parse_json(text: str) -> Any:
    """The JSON value of the whole output, or _NOT_JSON (strict: no NaN or Infinity)."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return _NOT_JSON


class _Outputs:
    """The outputs being graded, with what several checks share computed once."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.text = frame["text"].fillna("").astype(str)
        self.category = pd.Series(stats.category_names(frame["category"]), index=frame.index)
        self._json: pd.Series | None = None

    @property
    def json(self) -> pd.Series:
        if self._json is None:
            self._json = pd.Series(
                [_parse_json(t) for t in self.text], index=self.frame.index, dtype=object
            )
        return self._json

    def applies(self, check: Check) -> np.ndarray:
        mask = np.ones(len(self.frame), dtype=bool)
        if check.categories is not None:
            mask &= self.category.isin(check.categories).to_numpy()
        if check.items is not None:
            mask &= self.frame["item_key"].astype(str).isin(check.items).to_numpy()
        if check.type in NEEDS_REFERENCE:
            mask &= self.frame["reference"].notna().to_numpy()
        return mask


# A pattern like (a+)+$ can take longer than the universe's age on one output (catastrophic
# backtracking); `regex` can stop a search, `re` cannot. No sane check needs this long per output.
REGEX_SECONDS = 1.0


def _regex_passes(check: Check, text: pd.Series, items: pd.Series) -> pd.Series:
    pattern = regex.compile(check.params["pattern"])
    found = []
    for value, item in zip(text, items, strict=True):
        try:
            found.append(pattern.search(value, timeout=REGEX_SECONDS) is not None)
        except TimeoutError:
            raise InputError(
                f"check {check.name!r}: pattern {check.params['pattern']!r} ran over "
                f"{REGEX_SECONDS:g} s on the output for item {item!r} (it backtracks without "
                "end); rewrite it without nested repetition. Nothing was graded"
            ) from None
    return pd.Series(found, index=text.index, dtype=bool)


def _passes(check: Check, out: _Outputs, rows: pd.Index) -> tuple[pd.Series, pd.Series | None]:
    """(passed, label) for the outputs at `rows`; label only for `choice`."""
    text = out.text.loc[rows]
    p = check.params
    if check.type == "exact_match":
        reference = out.frame["reference"].loc[rows].astype(str)
        if p["normalize"]:
            return normalize(text) == normalize(reference), None
        return text == reference, None
    if check.type == "choice":
        label = normalize(text)
        return label == normalize(out.frame["reference"].loc[rows].astype(str)), label
    if check.type == "regex":
        return _regex_passes(check, text, out.frame["item_key"].loc[rows]), None
    if check.type == "contains":
        return text.str.contains(p["text"], regex=False), None
    if check.type == "not_contains":
        return ~text.str.contains(p["text"], regex=False), None
    if check.type == "max_chars":
        return text.str.len() <= p["n"], None
    parsed = out.json.loc[rows]
    valid = parsed.map(lambda v: v is not _NOT_JSON).astype(bool)
    if check.type == "json_valid":
        return valid, None
    validator = validator_for(p["schema"])(p["schema"], format_checker=FormatChecker())
    return (
        pd.Series(
            [v is not _NOT_JSON and validator.is_valid(v) for v in parsed], index=rows, dtype=bool
        ),
        None,
    )


def run_checks(grader: Grader, outputs: pd.DataFrame) -> pd.DataFrame:
    """Every check of `grader` on every output it applies to: one row per (output, check) with
    `passed` and, for `choice`, the `label` the output gave. `outputs` has the columns
    output_id, item_key, category, reference, text."""
    frame = outputs.reset_index(drop=True)
    out = _Outputs(frame)
    parts = []
    for check in grader.checks:
        rows = frame.index[out.applies(check)]
        if not len(rows):
            continue
        passed, label = _passes(check, out, rows)
        parts.append(
            pd.DataFrame(
                {
                    "output_id": frame["output_id"].loc[rows].to_numpy(),
                    "check": check.name,
                    "passed": passed.to_numpy(dtype=bool),
                    "label": label.to_numpy(dtype=object) if label is not None else None,
                }
            )
        )
    if not parts:
        return pd.DataFrame({c: [] for c in RESULT_COLUMNS})
    return pd.concat(parts, ignore_index=True)


# ---- the summary ----


def _rate_row(
    grader: str, check: str, system: str, category: str | None, passed: int, n: int
) -> dict:
    rate = passed / n if n else None
    ci = list(stats.wilson_interval(rate, n)) if n else None
    return {
        "grader": grader,
        "check": check,
        "system": system,
        "category": category,
        "passed": passed,
        "n": n,
        "rate": rate,
        "ci": ci,
    }


def pass_rates(results: pd.DataFrame) -> list[dict]:
    """Pass rates with Wilson 95% CIs per grader, check and system, over all outputs (category
    None) and per category. `results` has grader, check, system, category, passed."""
    if results.empty:
        return []
    frame = results.assign(
        category=stats.category_names(results["category"]), passed=results["passed"].astype(int)
    )
    keys = ["grader", "check", "system"]
    overall = frame.groupby(keys, sort=True)["passed"].agg(["sum", "count"]).reset_index()
    overall["category"] = None
    by_category = (
        frame.groupby([*keys, "category"], sort=True)["passed"].agg(["sum", "count"]).reset_index()
    )
    rows = []
    for g in (overall, by_category):
        for r in g.itertuples(index=False):
            rows.append(
                _rate_row(r.grader, r.check, r.system, r.category, int(r.sum), int(r.count))
            )
    return sorted(rows, key=lambda r: (r["grader"], r["check"], r["system"], r["category"] or ""))


def choice_scores(
    results: pd.DataFrame, labels: dict[tuple[str, str], list[str] | None]
) -> list[dict]:
    """Accuracy and macro-F1 per grader, `choice` check and system. Macro-F1 averages F1 over the
    labels (the check's `labels`, else every reference label seen); an output naming no label
    counts as wrong for its true label and adds no class. `results` has grader, check, system,
    passed, label, reference_label; `labels` maps (grader, check) of each choice check to its
    labels."""
    if not labels or results.empty:
        return []
    from sklearn.metrics import f1_score  # imported on first use: it takes half a second

    rows = []
    choice = results[
        [(g, c) in labels for g, c in zip(results["grader"], results["check"], strict=True)]
    ]
    for (grader, check, system), g in choice.groupby(["grader", "check", "system"], sort=True):
        truth = g["reference_label"].astype(str).to_numpy()
        predicted = g["label"].astype(str).to_numpy()
        names = labels[(grader, check)] or sorted(set(truth))
        macro = f1_score(truth, predicted, labels=names, average="macro", zero_division=0)
        n = len(g)
        accuracy = float(g["passed"].astype(bool).mean())
        rows.append(
            {
                "grader": grader,
                "check": check,
                "system": system,
                "accuracy": accuracy,
                "accuracy_ci": list(stats.wilson_interval(accuracy, n)),
                "macro_f1": float(macro),
                "labels": list(names),
                "n": n,
            }
        )
    return rows
