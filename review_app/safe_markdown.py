"""Model outputs as safe HTML that shows what the model wrote: Markdown (code blocks, tables,
lists) with single newlines kept as line breaks, and JSON, CSV, YAML or code shown verbatim in a
monospace block. Raw HTML is shown as text, images as their alt text, and only http(s)/mailto
links are kept, so an output can never run script or make the reviewer's browser load anything.
Also names and other user text escaped to show literally inside Markdown (screens, the report)."""

from __future__ import annotations

import csv
import html
import json
import re

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
    """Sanitized HTML for a model output, faithful to its layout: verbatim (monospace, every
    space and newline kept) when it is JSON, CSV, YAML or code; otherwise Markdown in which a
    single newline is a line break."""
    layout = output_layout(text)
    if layout == MARKDOWN:
        return _clean(_MD_OUTPUT.render(text))
    verbatim = html.escape(text.strip("\n"))
    return f'<pre class="verbatim" data-layout="{layout}" dir="auto">{verbatim}</pre>'


def output_layout(text: str) -> str:
    """How an output is laid out: JSON, CSV, YAML or CODE when the whole output is that kind of
    structured text (Markdown would collapse its newlines and indentation), else MARKDOWN."""
    stripped = text.strip()
    if not stripped or stripped.startswith("```"):
        return MARKDOWN  # empty, or the model fenced it itself: Markdown keeps the layout
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
            sentences = sum(1 for line in lines if re.search(r"[.!?]\s+\S", line))
            return sentences == 0
    return False


_YAML_LINE = re.compile(r"^(\s*#.*|\s*-\s+\S.*|\s*-\s*|\s*[\w\"'][\w \"'.-]*:(\s.*)?)$")


def _is_yaml(stripped: str, lines: list[str]) -> bool:
    """A mapping of two or more keys whose every line is a key, a list entry or a comment."""
    if not all(_YAML_LINE.match(line) for line in lines):
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
