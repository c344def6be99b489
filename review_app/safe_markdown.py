"""Model outputs as safe HTML: Markdown (code blocks, tables, lists) rendered with raw HTML shown as
text, images replaced by their alt text, and only http(s)/mailto links, so an output can never run
script or make the reviewer's browser load anything. And names or other user text escaped to
appear literally inside Markdown (screens, the Markdown report)."""

from __future__ import annotations

import html
import re

import nh3
from markdown_it import MarkdownIt

_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code",
    "pre", "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "a",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}


def _image_as_text(renderer, tokens, idx, options, env) -> str:
    # An image would be a remote load (tracking pixel, unblinding hint): show its alt text.
    alt = "".join(child.content for child in tokens[idx].children or [])
    return f"<em>[image: {html.escape(alt or 'no description')}]</em>"


_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])
_MD.add_render_rule("image", _image_as_text)


def render_markdown(text: str) -> str:
    """Sanitized HTML for `text`; raw HTML in the text appears literally, as the model wrote it."""
    return nh3.clean(
        _MD.render(text),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        filter_style_properties={"text-align"},
        link_rel="noopener noreferrer nofollow",
    )


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
