"""File formats in and out (README "File formats"): outputs, votes and verdicts as CSV or JSONL,
and AlpacaEval `model_outputs.json`. Files are streamed and every row is checked before anything
is written: `check_*` reads a file against the workspace and yields the changes to make in
batches (an error names file, line and field); `publish_*` writes one batch inside the caller's
transaction. `services.data` runs the two, so an import never holds the workspace for long."""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from review_app.errors import Conflict, InputError
from review_app.names import name_problem, normal_name
from review_app.store import Store, item_fingerprint, now_iso, text_digest

OUTPUT_COLUMNS = ("item_id", "prompt", "system", "output")
OUTPUT_OPTIONAL = ("reference", "category")
VOTE_COLUMNS = ("item_id", "system_a", "system_b", "reviewer", "winner")
VOTE_OPTIONAL = ("shown_left", "rationale", "created_at", "criteria")
VERDICT_COLUMNS = ("item_id", "system_a", "system_b", "judge", "winner")
VERDICT_OPTIONAL = ("first", "explanation")
SPECIAL_WINNERS = ("tie", "both_bad")
# A batch of changes is staged in one transaction, which other writers (reviewers' votes) wait
# for: two megabytes keep it to a few tens of milliseconds, and take long enough to check that
# the pause an import keeps between its transactions (`services.data`) has passed by then.
BATCH_ROWS = 4000
BATCH_CHARS = 2_000_000
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection"):
# CSV exports put a single quote before such text, and CSV imports take it off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Python's csv module refuses fields over 131,072 characters; an output or prompt can be longer.
CSV_FIELD_LIMIT = 2**31 - 1


@dataclass
class ImportSummary:
    """What an import changed; `unchanged` counts rows already present exactly as given."""

    file: str
    rows: int = 0
    added: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)
    # The file's SHA-256, fed as the import reads it (complete once every row was read).
    sha256: Any = field(default_factory=hashlib.sha256, repr=False, compare=False)

    def count(self, what: str, n: int = 1) -> None:
        if n:
            self.added[what] = self.added.get(what, 0) + n

    def line(self) -> str:
        changes = ", ".join(f"{n} {what}" for what, n in self.added.items() if n) or "nothing new"
        notes = "".join(f"; {note}" for note in self.notes)
        return f"{self.file}: {self.rows} rows read; {changes}; {self.unchanged} unchanged{notes}"


# ---- reading rows ----


def read_rows(
    path: str | Path, digest: Any = None
) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    """Yield (line number, row) from a CSV, JSONL or JSON-array file, streaming where possible;
    a CSV row with the wrong number of fields comes as the InputError that describes it. Every
    byte read is also fed to `digest` (a hashlib object) when given, so a file read to its end
    is hashed in the same pass."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _read_csv(path, digest)
    elif suffix in (".jsonl", ".ndjson"):
        yield from _read_jsonl(path, digest)
    elif suffix == ".json":
        yield from _read_json_array(path, digest)
    else:
        raise InputError(f"{path}: unknown file type {suffix!r}; use .csv, .jsonl or .json")


# Files are read in blocks of whole lines about this size: hashed, screened and decoded a block
# at a time rather than a line at a time.
READ_BLOCK = 1 << 20


def _blocks(handle: IO[bytes], digest: Any) -> Iterator[bytes]:
    """The bytes of `handle` in blocks of whole lines (the last one may lack its line end),
    each fed to `digest` when given."""
    pending: list[bytes] = []
    while chunk := handle.read(READ_BLOCK):
        if digest is not None:
            digest.update(chunk)
        cut = chunk.rfind(b"\n") + 1
        if not cut:  # a line longer than a block
            pending.append(chunk)
            continue
        pending.append(chunk[:cut])
        yield b"".join(pending)
        pending = [chunk[cut:]] if cut < len(chunk) else []
    if pending:
        yield b"".join(pending)


def _decoded_blocks(
    path: Path, handle: IO[bytes], digest: Any
) -> Iterator[tuple[int, list[str], str]]:
    """The lines of `handle` a block at a time (`_blocks`), split at "\n" only (as a binary
    file iterates): (the number of the line before the block, its lines without their line
    ends, the file's last line when it lacks a line end, else ""); a NUL byte or invalid UTF-8
    is refused naming its line."""
    number = 0
    for block in _blocks(handle, digest):
        if number == 0 and block.startswith(b"\xef\xbb\xbf"):
            block = block[3:]
        try:
            if b"\x00" in block:
                raise ValueError
            text = block.decode("utf-8")
        except ValueError:
            _refuse_line(path, number, block)
            raise
        lines = text.split("\n")
        last = lines.pop()  # "" when the block ends with a line end
        yield number, lines, last
        number += len(lines) + (1 if last else 0)


def _decoded_lines(path: Path, handle: IO[bytes], digest: Any) -> Iterator[tuple[int, str]]:
    """(line number, text with its line end) of every line of `handle` (`_decoded_blocks`)."""
    for number, lines, last in _decoded_blocks(path, handle, digest):
        lines = [line + "\n" for line in lines]
        if last:
            lines.append(last)
        yield from enumerate(lines, start=number + 1)


def _refuse_line(path: Path, number: int, block: bytes) -> None:
    """Raise the error of the first line of `block` (after line `number`) holding a NUL byte
    or invalid UTF-8."""
    for offset, raw in enumerate(block.split(b"\n"), start=1):
        if b"\x00" in raw:
            raise InputError.at(
                str(path), number + offset, None, "contains a NUL byte (is it a binary file?)"
            )
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError.at(
                str(path),
                number + offset,
                None,
                f"is not valid UTF-8 (byte {exc.start + 1} of the line)",
            ) from None


def _read_csv(path: Path, digest: Any = None) -> Iterator[tuple[int, dict[str, Any]]]:
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    with path.open("rb") as handle:
        lines = (text for _, text in _decoded_lines(path, handle, digest))
        reader = csv.reader(lines, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: the file is empty (expected a header row)")
            header = [h.strip() for h in header]
            _check_header(path, header)
            row_start = reader.line_num + 1
            for values in reader:
                line = row_start
                row_start = reader.line_num + 1
                if not values or values == [""]:
                    continue
                if len(values) != len(header):
                    # Reported with the file's other wrong rows (see _Problems).
                    yield (
                        line,
                        InputError.at(
                            str(path),
                            line,
                            None,
                            f"has {len(values)} fields but the header has {len(header)}",
                        ),
                    )
                    continue
                yield line, dict(zip(header, map(csv_text, values), strict=True))
        except csv.Error as exc:
            raise InputError.at(str(path), reader.line_num, None, f"malformed CSV: {exc}") from None


def _check_header(path: Path, header: list[str]) -> None:
    seen = set()
    for name in header:
        if not name:
            raise InputError.at(str(path), 1, None, "the header has an empty column name")
        if name in seen:
            raise InputError.at(str(path), 1, name, "column appears twice in the header")
        seen.add(name)


def _read_jsonl(path: Path, digest: Any = None) -> Iterator[tuple[int, dict[str, Any]]]:
    empty = True
    with path.open("rb") as handle:
        for before, lines, last in _decoded_blocks(path, handle, digest):
            if last:
                lines.append(last)
            for number, text in enumerate(lines, start=before + 1):
                if not text or text.isspace():
                    continue
                empty = False
                try:
                    row, end = _SCAN(text, 0)
                except Exception:  # the long way names what is wrong
                    row, end = _json_value(path, number, text), len(text)
                if end != len(text):
                    row = _json_value(path, number, text)
                if type(row) is not dict:
                    raise InputError.at(
                        str(path), number, None, f"expected a JSON object, got {_kind(row)}"
                    )
                # Only a line with an escape, a list or a second object needs looking into:
                # three searches for one character each (a line starts with its object's "{").
                if "\\" in text or "[" in text or text.find("{", 1) >= 0:
                    _screen_json_line(path, number, row, text)
                yield number, row
    if empty:
        raise InputError(f"{path}: the file is empty (expected one JSON object per line)")


def _screen_json_line(path: Path, number: int, row: dict[str, Any], text: str) -> None:
    """Check a JSONL row as `_check_json_row` does, for what its line may hold."""
    escapes = _ESCAPES.search(text)
    may_hold_surrogates = escapes and _SURROGATE_ESCAPE.search(text)
    may_hold_nul = bool(escapes) and "\\u0000" in text
    # Without a second bracket, no value of the row is a list or an object.
    may_nest = "[" in text or text.count("{") > 1
    if may_hold_surrogates or may_hold_nul or may_nest:
        _check_json_row(RowReader(str(path), number, row), may_hold_surrogates, may_hold_nul)


def _read_json_array(path: Path, digest: Any = None) -> Iterator[tuple[int, dict[str, Any]]]:
    raw = path.read_bytes()
    if digest is not None:
        digest.update(raw)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError.at(str(path), line, None, "is not valid UTF-8") from None
    data = _json_value(path, None, text)
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON array of objects, got {_kind(data)}")
    if not data:
        raise InputError(f"{path}: the file is an empty list")
    escapes = _SURROGATE_ESCAPE.search(text)
    nul = "\\u0000" in text
    # JSON arrays carry no line numbers per element, so errors name the element ("row").
    for index, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            raise InputError(f"{path}: row {index}: expected a JSON object, got {_kind(row)}")
        _check_json_row(RowReader(str(path), index, row, "row"), escapes, nul)
        yield index, row


# JSON values nested deeper than this are refused: no field of ours needs more, and a deeper value
# could exhaust the stack of the JSON encoder when the row is stored.
MAX_NESTING = 100
# A \ud800-\udfff escape in JSON text; only such an escape can produce a lone surrogate (raw
# UTF-8 is decoded strictly), so rows without one skip the slower check.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# An escape of a surrogate or of NUL: one search finds whether a line may hold either.
_ESCAPES = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON keeps the last of two equal keys silently: one row could say two things.
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return found


# One decoder for every row: `json.loads` with a hook builds a new one per call.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)
# Its scanner, called directly for a line that is one object and nothing else (every line of a
# well-formed file); any other line goes through `_json_value`.
_SCAN = _DECODER.scan_once


def _json_value(path: Path, line: int | None, text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except _DuplicateKey as exc:
        raise InputError.at(
            str(path), line, exc.key, "appears twice in one object; keep one"
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError.at(
            str(path), line or exc.lineno, None, f"invalid JSON: {exc.msg}"
        ) from None
    except RecursionError:
        raise InputError.at(str(path), line, None, "JSON nested too deeply") from None
    except ValueError:  # Python refuses integers of more than 4,300 digits
        raise InputError.at(
            str(path), line, None, "invalid JSON: a number has too many digits"
        ) from None


def _check_json_row(reader: RowReader, may_hold_surrogates: object, may_hold_nul: bool) -> None:
    """Refuse what the workspace cannot store: values nested more than MAX_NESTING deep, text
    with a lone surrogate (not a character, so not valid UTF-8 either), and the NUL character
    (`\\u0000`), refused as it is in a CSV file."""
    for name, value in reader.row.items():
        if isinstance(value, (dict, list)) and _nesting(value) > MAX_NESTING:
            raise reader.error(name, f"is nested more than {MAX_NESTING} levels deep")
        if may_hold_nul and _holds_nul([name, value]):
            raise reader.error(
                name.replace("\x00", "\\u0000"),
                "holds a NUL character (\\u0000), which is not text",
            )
        if may_hold_surrogates:
            try:
                json.dumps([name, value], ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise reader.error(
                    name.encode("utf-8", "backslashreplace").decode(),
                    "holds a lone surrogate escape (such as \\ud800), which is not text",
                ) from None


def _holds_nul(value: Any) -> bool:
    """Whether any text in `value` (keys included) holds the NUL character."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _nesting(value: Any) -> int:
    """How deeply lists and objects nest in `value` (walked without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            break
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class RowReader:
    """Typed access to one row's fields, raising errors that name file, line and field."""

    def __init__(self, file: str, line: int, row: dict[str, Any], where: str = "line"):
        self.file, self.line, self.row, self.where = file, line, row, where

    def error(self, field_name: str | None, message: str) -> InputError:
        where = (
            f"{self.file}:{self.line}" if self.where == "line" else f"{self.file}: row {self.line}"
        )
        if field_name:
            where += f": field '{field_name}'"
        return InputError(f"{where}: {message}")

    def text(self, name: str, required: bool = True, allow_empty: bool = False) -> str | None:
        if name not in self.row or self.row[name] is None:
            if required:
                raise self.error(name, "is missing")
            return None
        value = self.row[name]
        if not isinstance(value, str):
            raise self.error(name, f"expected text, got {_kind(value)} {json.dumps(value)}")
        if required and not allow_empty and not value.strip():
            raise self.error(name, "is empty")
        return value


def _name(reader: RowReader, field: str) -> str:
    """A name field (system, reviewer, judge): NFC-normalised, refused when it holds an
    invisible or control character or takes a prefix reserved for the app's own judges."""
    value, problem = _checked_name(reader.text(field))
    if problem:
        raise reader.error(field, problem)
    return value


@functools.lru_cache(maxsize=4096)
def _checked_name(raw: str) -> tuple[str, str | None]:
    # A file names the same few systems, reviewers or judges on every row: each is checked once.
    value = normal_name(raw)
    if not value:
        return value, "is empty"
    problem = name_problem(value)
    return value, f"{value!r} {problem}" if problem else None


def _same_name(reader: RowReader, field: str) -> str | None:
    """An optional field naming one of the row's systems, normalised as names are."""
    value = reader.text(field, required=False)
    return normal_name(value) or None if value is not None else None


def _require_columns(reader: RowReader, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in reader.row]
    if missing:
        raise reader.error(missing[0], f"required column is missing (need {', '.join(columns)})")


# ---- batches ----


class _Problems:
    """The wrong rows of one file, collected so that an upload reports all of them at once
    (the first MAX_PROBLEMS, and how many more) instead of one per attempt."""

    def __init__(self, file: str):
        self.file = file
        self.messages: list[str] = []
        self.count = 0

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, exc: InputError) -> None:
        self.count += 1
        if len(self.messages) < MAX_PROBLEMS:
            self.messages.append(str(exc))

    @contextlib.contextmanager
    def of_row(self) -> Iterator[None]:
        """Check one row: an InputError it raises is recorded, and the next row is checked."""
        try:
            yield
        except InputError as exc:
            self.add(exc)

    def raise_any(self) -> None:
        """One InputError naming every wrong row (its `problems` lists them); the message of
        a single wrong row is that row's own."""
        if not self.messages:
            return
        if self.count == 1:
            raise InputError(self.messages[0])
        rows = [self._where(m) for m in self.messages]
        more = self.count - len(rows)
        error = InputError(
            f"{self.file}: {self.count} rows are wrong, nothing was imported: "
            + "; ".join(rows)
            + (f"; and {more} more" if more else "")
        )
        error.problems = rows + ([f"and {more} more"] if more else [])
        raise error

    def _where(self, message: str) -> str:
        rest = message.removeprefix(f"{self.file}:").lstrip()
        return f"line {rest}" if rest[:1].isdigit() else rest


def _whole(row: dict[str, Any] | InputError) -> dict[str, Any]:
    """A row as read, or the error that made it unreadable (a CSV row with the wrong number of
    fields), raised where the row is checked so it is reported with the others."""
    if isinstance(row, InputError):
        raise row
    return row


# An upload lists at most this many wrong rows (and counts the rest).
MAX_PROBLEMS = 20


def _text_size(change: dict) -> int:
    return sum(len(value) for value in change.values() if isinstance(value, str))


def _batches(changes: Iterable[dict], size=_text_size) -> Iterator[list[dict]]:
    """Group changes into batches small enough to write in one short transaction, `size`
    telling the characters of text a change writes."""
    batch: list[dict] = []
    chars = 0
    for change in changes:
        batch.append(change)
        chars += size(change)
        if len(batch) >= BATCH_ROWS or chars >= BATCH_CHARS:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


# ---- outputs ----


def check_outputs(
    store: Store, path: str | Path, eval_set: str, replace: bool, summary: ImportSummary
) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """Check an outputs file for `eval_set` (created when first written) and yield the changes
    it makes, in batches of the rows the store stages (`ImportQueries.stage_outputs`): items to
    add or replace as (change "add" | "replace", item id (None for an item to add), item_key,
    prompt, reference, category, metadata JSON), outputs to add or replace as (item_key,
    system, text). Re-importing the same file yields nothing; a changed output or item is
    refused unless `replace` (and never once a study has frozen the eval set). Reads only."""
    path = Path(path)
    file = str(path)
    alpaca = path.suffix.lower() == ".json"
    checker = _OutputChecker(store, store.catalog.eval_set(eval_set), file, replace, summary)
    problems = _Problems(file)
    for line, row in read_rows(path, summary.sha256):
        summary.rows += 1
        try:
            if alpaca:
                full = checker.check(line, *_alpaca_row(RowReader(file, line, row, "row")))
            else:
                full = checker.check(line, *_output_row(file, line, row))
        except InputError as exc:
            problems.add(exc)
            continue
        if full:
            batch = checker.take()
            if not problems:  # a file with a wrong row is refused whole: no batch is kept
                yield batch
    problems.raise_any()
    if checker.size:
        yield checker.take()


def publish_outputs(store: Store, eval_set: str, job_id: int, first: int, last: int) -> None:
    """Write the staged batches `first`..`last` (inside the caller's transaction)."""
    es = store.catalog.ensure_eval_set(eval_set)
    store.imports.publish_staged_outputs(job_id, es["id"], first, last)


_OUTPUT_FIELDS = frozenset(OUTPUT_COLUMNS + OUTPUT_OPTIONAL)
# An output row as read: (item_key, prompt, system, output, reference, category, metadata).
OutputRow = tuple[str, str, str, str, str | None, str, dict[str, Any]]


def _output_row(file: str, line: int, row: dict[str, Any] | InputError) -> OutputRow:
    # Most rows are well-formed: they are taken in a few checks, the others go the long way,
    # which names what is wrong.
    if type(row) is dict:
        key, prompt, system, output = (
            row.get("item_id"),
            row.get("prompt"),
            row.get("system"),
            row.get("output"),
        )
        reference, category = row.get("reference"), row.get("category")
        if (
            type(key) is str
            and type(prompt) is str
            and type(system) is str
            and type(output) is str
            and (reference is None or type(reference) is str)
            and (category is None or type(category) is str)
            and prompt
            and not prompt.isspace()
            and (key := key.strip())
        ):
            name, problem = _checked_system(system)
            if problem is None:
                return (
                    key,
                    prompt,
                    name,
                    output,
                    reference if reference else None,
                    category.strip() if category else "",
                    {}
                    if row.keys() <= _OUTPUT_FIELDS
                    else {k: v for k, v in row.items() if k not in _OUTPUT_FIELDS},
                )
    return _checked_output_row(RowReader(file, line, _whole(row)))


def _checked_output_row(reader: RowReader) -> OutputRow:
    _require_columns(reader, OUTPUT_COLUMNS)
    metadata = {k: v for k, v in reader.row.items() if k not in OUTPUT_COLUMNS + OUTPUT_OPTIONAL}
    reference = reader.text("reference", required=False)
    key = reader.text("item_id").strip()
    prompt = reader.text("prompt")
    system = _system_name(reader, "system")
    output = reader.text("output", allow_empty=True)
    category = (reader.text("category", required=False) or "").strip()
    return key, prompt, system, output, reference if reference else None, category, metadata


def _alpaca_row(reader: RowReader) -> OutputRow:
    _require_columns(reader, ("instruction", "output", "generator"))
    instruction = reader.text("instruction")
    known = ("instruction", "output", "generator", "dataset")
    return (
        "alpaca-" + hashlib.sha256(instruction.encode()).hexdigest()[:12],
        instruction,
        _system_name(reader, "generator"),
        reader.text("output", allow_empty=True),
        None,
        (reader.text("dataset", required=False) or "").strip(),
        {k: v for k, v in reader.row.items() if k not in known},
    )


def _system_name(reader: RowReader, name: str) -> str:
    value, problem = _checked_system(reader.text(name))
    if problem:
        raise reader.error(name, problem)
    return value


@functools.lru_cache(maxsize=4096)
def _checked_system(raw: str) -> tuple[str, str | None]:
    value, problem = _checked_name(raw)
    if problem is None and value in SPECIAL_WINNERS:
        problem = f"{value!r} is reserved for outcomes; rename the system"
    return value, problem


class _OutputChecker:
    """Checks output rows against the file so far and the workspace, collecting the rows to
    stage in batches small enough to write in one short transaction."""

    def __init__(
        self, store: Store, eval_set: dict | None, file: str, replace: bool, summary: ImportSummary
    ):
        self.file, self.replace, self.summary = file, replace, summary
        self.frozen_by = (
            store.catalog.studies_using_eval_set(eval_set["id"])
            if eval_set and eval_set["frozen_at"]
            else []
        )
        self.items = store.catalog.item_index(eval_set["id"]) if eval_set else {}
        self.outputs = store.catalog.output_index(eval_set["id"]) if eval_set else {}
        self.file_items: dict[str, tuple[int, int]] = {}
        self.file_outputs: dict[tuple[str, str], tuple[int, int]] = {}
        self.staged_items: list[tuple] = []
        self.staged_outputs: list[tuple[str, str, str]] = []
        self.size = self.chars = 0

    def take(self) -> tuple[list[tuple], list[tuple[str, str, str]]]:
        """The batch collected so far (items, outputs); the next one starts empty."""
        batch = (self.staged_items, self.staged_outputs)
        self.staged_items, self.staged_outputs = [], []
        self.size = self.chars = 0
        return batch

    def check(
        self,
        line: int,
        key: str,
        prompt: str,
        system: str,
        output: str,
        reference: str | None,
        category: str,
        metadata: dict[str, Any],
    ) -> bool:
        """Check one row (an `OutputRow`), collecting the changes it makes (an item to add or
        replace, an output to add or replace); returns whether the batch is full."""
        # Rows of the file are told apart by Python's hash, which two different texts share
        # with a chance of 2**-64 (and seeded per process, so no file can aim for it); stored
        # rows, by their digests.
        same_item = hash((prompt, reference, category))
        seen = self.file_items.get(key)
        if seen is None:
            self.file_items[key] = (line, same_item)
            self._check_item(line, key, prompt, reference, category, metadata)
        elif seen[1] != same_item:
            raise InputError(
                f"{self.file}:{line}: item '{key}' has a different prompt, reference or category "
                f"than on line {seen[0]}"
            )
        same_output = hash(output)
        pair = (key, system)
        earlier = self.file_outputs.get(pair)
        if earlier:
            if earlier[1] != same_output:
                raise InputError(
                    f"{self.file}:{line}: item '{key}' system '{system}' appears again with a "
                    f"different output (first on line {earlier[0]})"
                )
            self.summary.unchanged += 1
            return False
        self.file_outputs[pair] = (line, same_output)
        item = self.items.get(key)
        stored = self.outputs.get((item[0], system)) if item else None
        if stored is not None:
            if stored == text_digest(output):
                self.summary.unchanged += 1
                return False
            if self.frozen_by:
                raise self._frozen(line, f"the output of '{system}' for item '{key}' would change")
            if not self.replace:
                raise Conflict(
                    f"{self.file}:{line}: item '{key}' already has a different "
                    f"output from '{system}'; pass --replace to overwrite it"
                )
            self.summary.count("outputs replaced")
        else:
            self.summary.count("outputs added")
        self.staged_outputs.append((key, system, output))
        self.size += 1
        self.chars += len(output)
        return self.size >= BATCH_ROWS or self.chars >= BATCH_CHARS

    def _check_item(
        self,
        line: int,
        key: str,
        prompt: str,
        reference: str | None,
        category: str,
        metadata: dict[str, Any],
    ) -> None:
        stored = self.items.get(key)
        if stored is not None:
            if stored[1] == item_fingerprint(prompt, reference, category):
                return
            if self.frozen_by:
                raise self._frozen(line, f"item '{key}' would change")
            if not self.replace:
                raise Conflict(
                    f"{self.file}:{line}: item '{key}' already exists with a different prompt, "
                    "reference or category; pass --replace to overwrite it"
                )
            self.summary.count("items replaced")
            change, item_id = "replace", stored[0]
        else:
            if self.frozen_by:
                raise self._frozen(line, f"item '{key}' would be added")
            self.summary.count("items added")
            change, item_id = "add", None
        metadata_json = json.dumps(metadata, ensure_ascii=False) if metadata else "{}"
        self.staged_items.append((change, item_id, key, prompt, reference, category, metadata_json))
        self.size += 1
        self.chars += len(prompt)

    def _frozen(self, line: int, what: str) -> Conflict:
        return Conflict(
            f"{self.file}:{line}: {what}, but the eval set is frozen by study "
            f"{', '.join(self.frozen_by)}; import changed items into a new eval set"
        )


# ---- votes and verdicts ----


class _PairChecker:
    """Checks the (item_id, system_a, system_b) of a row against the study's eval set and names
    the pair as (item id, system_x, system_y), whether or not the study holds it yet."""

    def __init__(self, store: Store, eval_set_id: int, study: dict | None):
        self.store, self.eval_set_id = store, eval_set_id
        self.item_ids = store.catalog.item_ids_by_key(eval_set_id)
        self.pair_ids = (
            {
                (self.item_ids[key], x, y): pair_id
                for (key, x, y), pair_id in store.studies.pair_index(study["id"]).items()
            }
            if study
            else {}
        )
        self.compared = (
            {frozenset(c) for c in store.studies.comparisons(study["id"])} if study else set()
        )
        self.study_name = study["name"] if study else ""
        self.outputs_of: dict[str, set[int]] = {}

    def check(self, reader: RowReader) -> tuple[tuple[int, str, str], str, str]:
        key = reader.text("item_id").strip()
        a, b = _name(reader, "system_a"), _name(reader, "system_b")
        if key not in self.item_ids:
            raise reader.error("item_id", f"unknown item '{key}' (not in the study's eval set)")
        if a == b:
            raise reader.error("system_b", f"compares '{a}' with itself")
        for name, system in (("system_a", a), ("system_b", b)):
            if system not in self.outputs_of:
                found = self.store.catalog.items_with_outputs(self.eval_set_id, [system])
                self.outputs_of[system] = found[system]
            if self.item_ids[key] not in self.outputs_of[system]:
                raise reader.error(name, f"system '{system}' has no output for item '{key}'")
        if self.compared and frozenset((a, b)) not in self.compared:
            # A study's comparisons are fixed when it is made; an import adding one would add
            # pairs nobody planned (or locked thresholds on).
            compared = ", ".join(sorted(":".join(sorted(c)) for c in self.compared))
            raise reader.error(
                "system_b",
                f"study '{self.study_name}' does not compare {a} with {b} (it compares "
                f"{compared}); import these into a study that does",
            )
        x, y = sorted((a, b))
        return (self.item_ids[key], x, y), a, b


class StudyWriter:
    """Writes checked batches of votes or verdicts into a study (inside the caller's
    transaction), creating the comparisons, pairs, reviewers and imported judge runs they need.
    Ids are remembered from batch to batch: while an import runs, it alone adds these to its
    study. A writer whose transaction failed must not be used again."""

    def __init__(self, store: Store, study_id: int):
        self.store, self.study_id = store, study_id
        self.comparisons = set(store.studies.comparisons(study_id))
        self.pair_ids: dict[tuple[int, str, str], int] | None = None
        self.reviewer_ids: dict[str, int] = {}
        self.run_ids: dict[str, int] = {}

    def votes(self, changes: list[dict]) -> int:
        """Append the votes; returns how many were left out because their reviewer voted on
        the pair in the app after the import checked it (an app vote is never replaced)."""
        pair_ids = self._pairs(changes)
        names = {c["reviewer"] for c in changes} - self.reviewer_ids.keys()
        self.reviewer_ids.update(self.store.people.ensure_reviewers(names))
        return len(changes) - self.store.review.append_votes(
            [
                {name: c[name] for name in VOTE_FIELDS}
                | {"pair_id": pair_id, "reviewer_id": self.reviewer_ids[c["reviewer"]]}
                for c, pair_id in zip(changes, pair_ids, strict=True)
            ]
        )

    def verdicts(self, changes: list[dict]) -> None:
        pair_ids = self._pairs(changes)
        for judge in {c["judge"] for c in changes} - self.run_ids.keys():
            self.run_ids[judge] = self.store.judging.ensure_imported_run(self.study_id, judge)
        self.store.judging.insert_verdicts(
            [
                {
                    "run_id": self.run_ids[c["judge"]],
                    "pair_id": pair_id,
                    "first_system": c["first"],
                    "winner": c["winner"],
                    "explanation": c["explanation"],
                    "raw_text": c["explanation"],
                    "parse_error": None if c["winner"] else "imported without a winner",
                    "created_at": c["created_at"],
                }
                for c, pair_id in zip(changes, pair_ids, strict=True)
            ]
        )

    def _pairs(self, changes: list[dict]) -> list[int]:
        """The pair id of every change, adding the pairs (and comparisons) the study lacks."""
        if self.pair_ids is None:
            self.pair_ids = self.store.studies.pair_ids_by_item(self.study_id)
        keys = [(c["item_id"], *sorted((c["system_a"], c["system_b"]))) for c in changes]
        missing: dict[tuple[int, str, str], None] = {}
        for change, key in zip(changes, keys, strict=True):
            if key in self.pair_ids or key in missing:
                continue
            a, b = change["system_a"], change["system_b"]
            if (a, b) not in self.comparisons and (b, a) not in self.comparisons:
                self.store.studies.add_comparison(self.study_id, a, b)
                self.comparisons.add((a, b))
            missing[key] = None
        if missing:
            self.store.studies.insert_pairs(self.study_id, list(missing))
            self.pair_ids.update(self.store.studies.pair_ids_by_item(self.study_id, list(missing)))
        return [self.pair_ids[key] for key in keys]


def _winner(reader: RowReader, a: str, b: str, allowed_special: tuple[str, ...], empty_ok: bool):
    value = reader.text("winner", allow_empty=empty_ok)
    value = normal_name(value) if value is not None else ""
    if value == "" and empty_ok:
        return None
    if value not in (a, b, *allowed_special):
        options = ", ".join(repr(o) for o in (a, b, *allowed_special))
        raise reader.error("winner", f"{value!r} is not one of {options}")
    return value


def _timestamp(reader: RowReader, name: str) -> str | None:
    value = reader.text(name, required=False)
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise reader.error(name, f"{value!r} is not an ISO-8601 timestamp") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when > datetime.now(UTC) + timedelta(days=1):
        raise reader.error(name, f"{value!r} is in the future")
    return value.strip()


# What a staged vote carries besides its pair and reviewer (see `StudyWriter.votes`).
VOTE_FIELDS = (
    "shown_left",
    "shown_right",
    "choice",
    "winner",
    "criteria",
    "rationale",
    "flags",
    "source",
    "created_at",
)


def _criteria(reader: RowReader, a: str, b: str, allowed: set[str]) -> str:
    """The optional `criteria` field: a JSON object {criterion: {system: score 1-5}} naming only
    the row's two systems, as stored (canonical JSON; "{}" when absent or empty)."""
    value = reader.row.get("criteria")
    if value is None or (isinstance(value, str) and not value.strip()):
        return "{}"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise reader.error("criteria", "is not JSON") from None
    if not isinstance(value, dict):
        raise reader.error("criteria", 'expected an object like {"accuracy": {"SYSTEM": 4}}')
    for name, scores in value.items():
        if allowed and name not in allowed:
            raise reader.error(
                "criteria",
                f"criterion {name!r} is not rated in this study ({', '.join(sorted(allowed))})",
            )
        if not isinstance(scores, dict) or not scores:
            raise reader.error("criteria", f"criterion {name!r}: expected {{system: score}}")
        for system, score in scores.items():
            if system not in (a, b):
                raise reader.error(
                    "criteria", f"criterion {name!r}: {system!r} is neither '{a}' nor '{b}'"
                )
            if isinstance(score, bool) or score not in (1, 2, 3, 4, 5):
                raise reader.error(
                    "criteria", f"criterion {name!r}: {system} score {score!r} is not 1-5"
                )
    return json.dumps(value, sort_keys=True)


def check_votes(
    store: Store, path: str | Path, study: dict | None, eval_set_id: int, summary: ImportSummary
) -> Iterator[list[dict]]:
    """Check a votes file against `study` (None: the study the import creates over the eval
    set) and yield the votes to append, in batches. A vote equal to the reviewer's latest on
    that pair is skipped; a different one is appended and supersedes it (votes are never
    overwritten). Reads only."""
    return _batches(_vote_changes(store, Path(path), study, eval_set_id, summary))


def _vote_changes(
    store: Store, path: Path, study: dict | None, eval_set_id: int, summary: ImportSummary
) -> Iterator[dict]:
    pairs = _PairChecker(store, eval_set_id, study)
    judge_only = set(store.studies.judge_only_pair_ids(study["id"])) if study else set()
    latest = store.review.latest_vote_keys(study["id"]) if study else {}
    # A study that names its criteria takes ratings of those only; one that names none takes any.
    allowed_criteria = set(json.loads(study["criteria"] or "[]")) if study else set()
    reviewer_ids: dict[str, int | None] = {}
    in_file: dict[tuple[tuple[int, str, str], str], int] = {}
    problems = _Problems(str(path))
    for line, row in read_rows(path, summary.sha256):
        with problems.of_row():
            summary.rows += 1
            reader = RowReader(str(path), line, _whole(row))
            _require_columns(reader, VOTE_COLUMNS)
            pair, a, b = pairs.check(reader)
            if pairs.pair_ids.get(pair) in judge_only:
                raise reader.error(
                    "item_id",
                    f"pair {pairs.pair_ids[pair]} ({a} vs {b}) is judged only, outside the "
                    "study's human share: no human votes are collected on it",
                )
            reviewer = _name(reader, "reviewer")
            winner = _winner(reader, a, b, SPECIAL_WINNERS, empty_ok=False)
            shown_left = _same_name(reader, "shown_left")
            if shown_left is not None and shown_left not in (a, b):
                raise reader.error("shown_left", f"{shown_left!r} is neither '{a}' nor '{b}'")
            rationale = reader.text("rationale", required=False) or ""
            criteria = _criteria(reader, a, b, allowed_criteria)
            created_at = _timestamp(reader, "created_at") or now_iso()
            earlier = in_file.get((pair, reviewer))
            if earlier:
                raise reader.error(
                    "reviewer", f"'{reviewer}' already voted on this pair on line {earlier}"
                )
            in_file[(pair, reviewer)] = line
            if reviewer not in reviewer_ids:
                known = store.people.reviewer(reviewer)
                reviewer_ids[reviewer] = known["id"] if known else None
            previous = latest.get((pairs.pair_ids.get(pair), reviewer_ids[reviewer]))
            if previous and (
                previous["winner"],
                previous["shown_left"],
                previous["rationale"],
                json.loads(previous["criteria"] or "{}"),
            ) == (winner, shown_left, rationale, json.loads(criteria)):
                summary.unchanged += 1
                continue
            if previous and previous["source"] == "app":
                raise reader.error(
                    "reviewer",
                    f"'{reviewer}' voted on this pair in the app; an import cannot replace a vote "
                    "a reviewer cast",
                )
            other = {a: b, b: a}
            summary.count("votes added")
            yield {
                "item_id": pair[0],
                "system_a": a,
                "system_b": b,
                "reviewer": reviewer,
                "shown_left": shown_left,
                "shown_right": other[shown_left] if shown_left else None,
                "choice": _choice_label(winner, shown_left, other),
                "winner": winner,
                "criteria": criteria,
                "rationale": rationale,
                "flags": "[]",
                "source": f"import:{path.name}",
                "created_at": created_at,
            }
    problems.raise_any()


def _choice_label(winner: str, shown_left: str | None, other: dict[str, str]) -> str:
    """What the reviewer clicked, in screen terms (A = left), when the shown order is known."""
    if winner in SPECIAL_WINNERS:
        return winner
    if shown_left is None:
        return "unknown"
    return "A" if winner == shown_left else "B"


def check_verdicts(
    store: Store, path: str | Path, study: dict | None, eval_set_id: int, summary: ImportSummary
) -> Iterator[list[dict]]:
    """Check a verdicts file against `study` (None: the study the import creates) and yield the
    verdicts to add, in batches; one imported run per judge name, empty `winner` = unparsed.
    A verdict already stored identically is skipped; a different one is refused. Reads only."""
    return _batches(_verdict_changes(store, Path(path), study, eval_set_id, summary))


def _verdict_changes(
    store: Store, path: Path, study: dict | None, eval_set_id: int, summary: ImportSummary
) -> Iterator[dict]:
    pairs = _PairChecker(store, eval_set_id, study)
    stored: dict[tuple[str, int, str], dict] = {}  # (judge, pair id, first) -> stored verdict
    judges: set[str] = set()
    in_file: dict[tuple[str, tuple[int, str, str], str], int] = {}
    problems = _Problems(str(path))
    for line, row in read_rows(path, summary.sha256):
        with problems.of_row():
            summary.rows += 1
            reader = RowReader(str(path), line, _whole(row))
            _require_columns(reader, VERDICT_COLUMNS)
            pair, a, b = pairs.check(reader)
            judge = _name(reader, "judge")
            winner = _winner(reader, a, b, ("tie",), empty_ok=True)
            first = _same_name(reader, "first") or ""
            if first and first not in (a, b):
                raise reader.error("first", f"{first!r} is neither '{a}' nor '{b}'")
            explanation = reader.text("explanation", required=False) or ""
            if judge not in judges:
                judges.add(judge)
                run_id = store.judging.imported_run_id(study["id"], judge) if study else None
                if run_id is not None:
                    for (_, pair_id, order), verdict in store.judging.verdict_index(
                        [run_id]
                    ).items():
                        stored[(judge, pair_id, order)] = verdict
            key = (judge, pair, first)
            if key in in_file:
                raise reader.error(
                    "judge",
                    f"'{judge}' already has a verdict for this pair and order on line {in_file[key]}",
                )
            in_file[key] = line
            previous = stored.get((judge, pairs.pair_ids.get(pair), first))
            if previous is not None:
                if (previous["winner"], previous["explanation"]) == (winner, explanation):
                    summary.unchanged += 1
                    continue
                raise Conflict(
                    f"{path}:{line}: '{judge}' already has a different verdict for this pair and "
                    "order; import it under another judge name"
                )
            summary.count("verdicts added")
            yield {
                "item_id": pair[0],
                "system_a": a,
                "system_b": b,
                "judge": judge,
                "first": first,
                "winner": winner,
                "explanation": explanation,
                "created_at": now_iso(),
            }
    problems.raise_any()


# ---- exports ----


def csv_cell(value: Any) -> Any:
    """`value` as an exported CSV cell: text a spreadsheet would run as a formula gets a single
    quote in front. Text already starting with quotes before such a character gets one more, so
    `csv_text` restores every value exactly and exports import back unchanged."""
    if isinstance(value, str) and value.lstrip("'").startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(cell: str) -> str:
    """An imported CSV cell with the quote `csv_cell` added taken off again."""
    if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def write_csv(rows: Iterable[dict], columns: Iterable[str], handle: IO[str]) -> int:
    """Write rows as CSV with a header (even when there are no rows), every cell made safe to
    open in a spreadsheet (`csv_cell`); returns the number of rows written. Every CSV the app
    exports goes through here."""
    columns = list(columns)
    # CRLF line ends (RFC 4180) also make the writer quote a field holding a lone CR, which it
    # would otherwise write bare, splitting the row for any reader.
    writer = csv.writer(handle, lineterminator="\r\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([csv_cell(row.get(column)) for column in columns])
        count += 1
    return count


def export_rows(rows: Iterable[dict], fmt: str, handle: IO[str], columns: Iterable[str]) -> int:
    """Write rows as CSV (`write_csv`) or as JSONL (exactly as stored); returns the number of
    rows written."""
    if fmt not in ("csv", "jsonl"):
        raise InputError(f"unknown export format {fmt!r}; use csv or jsonl")
    if fmt == "csv":
        return write_csv(rows, columns, handle)
    count = 0
    for row in rows:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count
