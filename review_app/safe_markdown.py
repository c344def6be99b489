"""Model outputs as safe HTML that shows what the model wrote: a whole JSON, CSV, YAML or code
output verbatim; otherwise block by block (prose as Markdown with single newlines kept and
literal `*`/`_` where they are not emphasis; fenced, indented, code, diff and diagram blocks
verbatim, fences shown). Raw HTML is shown as text, images as their alt text, and only
http(s)/mailto links are kept, so an output can never run script or load anything.
Also names and other user text escaped to show literally inside Markdown (screens, the report)."""

from __future__ import annotations

import csv
import html
import json
import re
from dataclasses import dataclass

import nh3
import yaml
from markdown_it import MarkdownIt

_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code",
    "pre", "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "a",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}
# Each block finds its own direction, so a Hebrew or Arabic line reads right to left beside
# English ones.
_DIRECTION = {tag: {"dir": "auto"} for tag in ("p", "li", "td", "th", "blockquote", "h1", "h2")}

# Layouts an output is shown in: Markdown, or verbatim for structured text.
MARKDOWN, JSON, CSV, YAML, CODE = "markdown", "json", "csv", "yaml", "code"


def _image_as_text(renderer, tokens, idx, options, env) -> str:
    # An image would be a remote load (tracking pixel, unblinding hint): show its alt text.
    alt = "".join(child.content for child in tokens[idx].children or [])
    return f"<em>[image: {html.escape(alt or 'no description')}]</em>"


def _parser(breaks: bool) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": breaks})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("image", _image_as_text)
    return md


_MD = _parser(breaks=False)
# Model outputs: a single newline is a line break, as the model (and a chat window) meant it.
_MD_OUTPUT = _parser(breaks=True)


def _clean(rendered: str) -> str:
    return nh3.clean(
        rendered,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        set_tag_attribute_values=_DIRECTION,
        url_schemes={"http", "https", "mailto"},
        filter_style_properties={"text-align"},
        link_rel="noopener noreferrer nofollow",
    )


def render_markdown(text: str) -> str:
    """Sanitized HTML for Markdown `text` (guidelines, notes); raw HTML in the text appears
    literally. Single newlines join lines, as Markdown does."""
    return _clean(_MD.render(text))


def render_output(text: str) -> str:
    """Sanitized HTML for a model output, faithful to its layout. A whole output that is JSON,
    CSV, YAML or code is one verbatim monospace block (every space and newline kept).
    Otherwise each block is shown by its own shape (`output_blocks`): prose as Markdown in which
    a single newline is a line break and `*` or `_` that is not emphasis stays literal; a fenced
    block verbatim under its fence (so ```` ```yaml ```` shows that the model fenced it); an
    indented block, code after a sentence, a diff or an ASCII diagram verbatim."""
    layout = output_layout(text)
    if layout != MARKDOWN:
        return _verbatim(text.strip("\n"), layout)
    return "".join(_render_block(block) for block in output_blocks(text))


def output_layout(text: str) -> str:
    """How an output is laid out as a whole: JSON, CSV, YAML or CODE when the whole output is
    that kind of structured text (Markdown would collapse its newlines and indentation), else
    MARKDOWN (then each of its blocks is shown by its own shape)."""
    stripped = text.strip()
    if not stripped or _FENCE_OPEN.match(stripped.splitlines()[0]):
        return MARKDOWN  # empty, or the model fenced it itself: the fence is shown as written
    if _is_json(stripped):
        return JSON
    lines = [line for line in stripped.splitlines() if line.strip()]
    if len(lines) < 2:
        return MARKDOWN
    if _is_csv(lines):
        return CSV
    if _is_yaml(stripped, lines):
        return YAML
    if _is_code(lines):
        return CODE
    return MARKDOWN


# Kinds of block inside an output that is not structured as a whole.
PROSE, FENCE, DIFF, ART = "prose", "fence", "diff", "art"


@dataclass(frozen=True)
class Block:
    """One block of an output: `kind` (PROSE, FENCE, CODE, DIFF or ART) and its lines as
    written; a fenced block also has its opening fence line and whether it was closed."""

    kind: str
    text: str
    fence: str = ""
    closed: bool = True

    @property
    def language(self) -> str:
        """The language a fence names (```` ```python ```` -> "python"), else ""."""
        match = _FENCE_OPEN.match(self.fence)
        return match.group(3) if match else ""


_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*(([^`\s]*)[^`]*)$")
# A line Markdown makes a list item of, and one that is a thematic break or heading underline.
_LIST_ITEM = re.compile(r"^\s*([-*+]|\d{1,9}[.)])\s+\S")
_RULE = re.compile(r"^\s*([-=*_])(\s*\1){2,}\s*$")
_INDENTED = re.compile(r"^( {2,}|\t)\S")
# A line that can only be source code: a block statement ending in ":" or "{", a definition,
# an import, a return, a decorator, a preprocessor line, a closing brace.
_STRONG_CODE = re.compile(
    r"^\s*((def|class|async def)\s+\w+.*:\s*$|(if|elif|for|while|with|try|except|else|finally)"
    r"\b.*:\s*$|import\s+[\w.]+|from\s+[\w.]+\s+import\s|return\b|@\w+|#include\b|"
    r"(function|fn|func|public|private|static|const|let|var)\s+\w+.*[;{=(]|.*[{;]\s*$|[}\])];?\s*$)"
)
_DIFF_START = re.compile(r"^(diff --git |--- \S|\+\+\+ \S|@@ -\d)")
_DIFF_LINE = re.compile(r"^([ +\-\\]|@@ |diff |index |$)")
# A Markdown table's delimiter row (`|---|:--:|`): the table is Markdown, not a drawing.
_TABLE_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_BOX = re.compile(r"[\u2500-\u259f]")
_ART_SYMBOLS = set("|+-=_/\\<>^*#.:~'`()[]o")


def output_blocks(text: str) -> list[Block]:
    """The blocks of an output, in order: fenced blocks, diffs, indented or code blocks and
    ASCII diagrams (each kept verbatim) between runs of prose (Markdown)."""
    lines = text.replace("\r\n", "\n").strip("\n").split("\n")
    blocks: list[Block] = []
    prose: list[str] = []

    def add(kind: str, start: int, end: int, **extra) -> None:
        if prose:
            blocks.append(Block(PROSE, "\n".join(prose)))
            prose.clear()
        blocks.append(Block(kind, "\n".join(lines[start:end]), **extra))

    i = 0
    while i < len(lines):
        line = lines[i]
        opening = _FENCE_OPEN.match(line)
        if opening:
            marker = opening.group(1)
            close = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}\s*$")
            end = i + 1
            while end < len(lines) and not close.match(lines[end]):
                end += 1
            add(FENCE, i + 1, end, fence=line.strip(), closed=end < len(lines))
            i = end + 1
            continue
        in_list = bool(prose) and _in_list(prose)
        kind = _verbatim_start(lines, i, in_list)
        if kind is not None:
            end = _verbatim_end(lines, i, kind)
            add(kind, i, end)
            i = end
            continue
        prose.append(line)
        i += 1
    if prose:
        blocks.append(Block(PROSE, "\n".join(prose)))
    return [b for b in blocks if b.kind == FENCE or b.text.strip()]


def _in_list(prose: list[str]) -> bool:
    """Whether the prose so far ends inside a list (an indented line continues the item)."""
    for line in reversed(prose):
        if not line.strip():
            return False
        if _LIST_ITEM.match(line):
            return True
        if not _INDENTED.match(line):
            return False
    return False


def _is_art(line: str) -> bool:
    """A line of an ASCII diagram or box drawing: box characters, or mostly drawing symbols."""
    if _BOX.search(line):
        return True
    ink = [c for c in line if not c.isspace()]
    if len(ink) < 3 or _RULE.match(line) or _LIST_ITEM.match(line) or _table_row(line):
        return False
    return sum(c in _ART_SYMBOLS for c in ink) >= 0.6 * len(ink)


def _table_row(line: str) -> bool:
    return "|" in line and "+" not in line and _TABLE_DELIMITER.match(line) is not None


def _verbatim_start(lines: list[str], i: int, in_list: bool) -> str | None:
    """The kind of verbatim block that starts at line i, or None for prose."""
    line = lines[i]
    if _DIFF_START.match(line):
        return DIFF
    if _is_art(line):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        return ART if _is_art(following) or _aligned(following) else None
    if _LIST_ITEM.match(line) or in_list:
        return None
    if _INDENTED.match(line) or _STRONG_CODE.match(line):
        return CODE
    return None


def _aligned(line: str) -> bool:
    """A diagram line with drawing between words (`| A | --> | B |`, `A    B`)."""
    inner = line.strip()
    return bool(inner) and ("|" in inner or "  " in inner or _BOX.search(inner) is not None)


def _verbatim_end(lines: list[str], start: int, kind: str) -> int:
    """The end (exclusive) of the verbatim block of `kind` starting at `start`. A blank line
    stays inside the block when the block goes on after it."""
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if not line.strip():
            after = end + 1
            while after < len(lines) and not lines[after].strip():
                after += 1
            if after < len(lines) and kind == CODE and _INDENTED.match(lines[after]):
                end = after
                continue
            break
        if kind == DIFF:
            if not _DIFF_LINE.match(line):
                break
        elif kind == ART:
            if not (_is_art(line) or _aligned(line)):
                break
        elif not (_INDENTED.match(line) or _STRONG_CODE.match(line) or _CODE_LINE.match(line)):
            break
        end += 1
    return end


def _verbatim(text: str, layout: str, language: str = "") -> str:
    lang = f' data-lang="{html.escape(language)}"' if language else ""
    body = html.escape(text)
    if layout == FENCE:
        body = f"<code>{body}</code>"  # what the model marked as code, as Markdown renders it
    return f'<pre class="verbatim" data-layout="{layout}"{lang} dir="auto">{body}</pre>'


def _render_block(block: Block) -> str:
    if block.kind == PROSE:
        return _clean(_MD_OUTPUT.render(_literal_symbols(block.text)))
    if block.kind != FENCE:
        return _verbatim(block.text, block.kind)
    closing = block.fence[: len(block.fence) - len(block.fence.lstrip(block.fence[0]))]
    return (
        f'<div class="fenced"><div class="fence">{html.escape(block.fence)}</div>'
        + _verbatim(block.text, FENCE, block.language)
        + (f'<div class="fence">{html.escape(closing)}</div>' if block.closed else "")
        + "</div>"
    )


_CODE_SPAN = re.compile(r"(`+)[^`].*?\1|`+", re.S)
# `*` between two word characters is arithmetic or a wildcard (2*3*4, a*b), never emphasis a
# model meant; `__name__` is a Python name, not bold.
_INTRAWORD_STARS = re.compile(r"(?<=[\w)\]])\*+(?=[\w(\[])")
_DUNDER = re.compile(r"(?<![\w\\])__(\w+?)__(?!\w)")


def _literal_symbols(markdown: str) -> str:
    """`markdown` with the `*` and `_` that are not emphasis escaped, outside code spans."""
    out, last = [], 0
    for span in _CODE_SPAN.finditer(markdown):
        out.append(_escape_symbols(markdown[last : span.start()]))
        out.append(span.group(0))
        last = span.end()
    out.append(_escape_symbols(markdown[last:]))
    return "".join(out)


def _escape_symbols(text: str) -> str:
    text = _INTRAWORD_STARS.sub(lambda m: "\\*" * len(m.group(0)), text)
    return _DUNDER.sub(r"\_\_\1\_\_", text)


def _is_json(stripped: str) -> bool:
    if stripped[0] not in "[{":
        return False
    try:
        return isinstance(json.loads(stripped), (dict, list))
    except ValueError:
        return False


# A line that Markdown gives a meaning to (heading, list, quote, table row).
_MARKDOWN_LINE = re.compile(r"^\s*(#{1,6}\s|[-*+]\s|\d+[.)]\s|>|\|)")


def _is_csv(lines: list[str]) -> bool:
    """Every line splits into the same number (two or more) of fields on one delimiter, and no
    line reads as Markdown or as a sentence."""
    if any(_MARKDOWN_LINE.match(line) for line in lines):
        return False
    for delimiter in (",", "\t", ";"):
        try:
            widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        except csv.Error:
            continue
        if len(widths) == 1 and widths.pop() >= 2:
            # Prose with a comma per line ("Hi, Maya.") is not a table: fields of a table row
            # are short and rarely end a sentence.
            sentences = sum(
                1 for line in lines if re.search(r"[.!?]\s+\S", line) or _SENTENCE.search(line)
            )
            return sentences <= 0.2 * len(lines)
    return False


# A sentence: a word of three letters or more, then its end, then a space or the line's end.
_SENTENCE = re.compile(r"[^\W\d_]{3,}[.!?](\s|$)")
_YAML_LINE = re.compile(r"^(\s*#.*|\s*-\s+\S.*|\s*-\s*|\s*[\w\"'][\w \"'.-]*:(\s.*)?)$")


def _is_yaml(stripped: str, lines: list[str]) -> bool:
    """A mapping of two or more keys whose every line is a key, a list entry or a comment."""
    if not all(_YAML_LINE.match(line) for line in lines):
        return False
    # "Step 1: Hold the button for ten seconds." on every line is prose with colons, not data.
    sentences = sum(1 for line in lines if _SENTENCE.search(line))
    if sentences > 0.2 * len(lines):
        return False
    if all(re.match(r"^\s*-", line) for line in lines if not line.lstrip().startswith("#")):
        return False  # a plain bulleted list: Markdown renders it as the list it is
    try:
        parsed = yaml.safe_load(stripped)
    except yaml.YAMLError:
        return False
    return isinstance(parsed, dict) and len(parsed) >= 2


_CODE_LINE = re.compile(
    r"^(\s{2,}\S|\t|\s*(def|class|import|from|return|function|const|let|var|for|while|if|elif|"
    r"else|try|except|catch|public|private|package|using|#include|SELECT|INSERT|UPDATE|"
    r"DELETE|CREATE|WITH|echo|sudo|export|cd|ls|ps|kill|pkill|grep|chmod|systemctl|apt|docker|"
    r"python3?|pip|npm|git|curl|wget)\b|.*[;{}]\s*$|.*\)\s*$|"
    r"\s*#!|\s*//|\s*\w+(\.\w+)*\s*=\s*\S)"
)


def _is_code(lines: list[str]) -> bool:
    """Most lines look like source code (keywords, braces, semicolons, assignments, indented
    blocks) and few read as prose sentences."""
    if not (_CODE_LINE.match(lines[0]) or _STRONG_CODE.match(lines[0])):
        return False  # a sentence, then code: the sentence stays prose (see output_blocks)
    code = sum(1 for line in lines if _CODE_LINE.match(line))
    prose = sum(1 for line in lines if re.search(r"[A-Za-z]{3,}[.!?](\s|$)", line))
    return code >= 0.7 * len(lines) and prose <= 0.2 * len(lines)


# Characters with a Markdown meaning anywhere in a line (links and images need "[", HTML "<",
# math "$", entities "&"), and those that mean something only at the start of a line.
_INLINE = re.compile(r"([\\`*_\[\]<|~$&])")
_LINE_START = re.compile(r"^([ \t]*)([#>+\-=]|\d+(?=[.)]))", re.M)


def escape_markdown(text: object) -> str:
    """`text` as Markdown that renders exactly those characters: a name such as
    `![x](//host/p.png)` shows as typed instead of making the browser fetch an image."""
    escaped = _INLINE.sub(r"\\\1", str(text))
    return _LINE_START.sub(_escape_line_start, escaped)


def _escape_line_start(match: re.Match) -> str:
    indent, marker = match.groups()
    # An ordered-list number keeps its digits; the "." or ")" after it is escaped instead.
    return f"{indent}{marker}\\" if marker[0].isdigit() else f"{indent}\\{marker}"
