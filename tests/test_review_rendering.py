"""Model outputs render faithfully (line breaks, JSON/CSV/YAML/code verbatim, tables, lists, long
tokens, right-to-left text) and can neither run script nor load anything remote."""

from __future__ import annotations

import re

import pytest

from review_app.safe_markdown import output_layout, render_markdown, render_output
from tests.review_fixtures import HOSTILE

CSV_ANSWER = "name,quantity\nLumen bulb,3\nhub,1\nmotion sensor,2\ndimmer switch,1"
PRETTY_JSON = '{\n  "name": "Morning",\n  "rooms": ["Kitchen", "Hallway"],\n  "time": "06:45"\n}'
YAML_ANSWER = 'name: Morning\nrooms:\n  - Kitchen\n  - Hallway\ntime: "06:45"\nbrightness: 80'
PYTHON = "import os\n\ndef tidy(path):\n    for name in os.listdir(path):\n        print(name)\n"
SHELL = "pkill -f my_script.py\nps aux | grep python\nsudo systemctl restart app\n"
LETTER = "Hi Maya,\nSorry about that.\nHold the button for 10 seconds.\n— Brightwell Support"
NESTED = "- rooms\n  - kitchen\n  - hallway\n- scenes\n  1. morning\n  2. evening\n"
TABLE = "| plan | price |\n|---|---|\n| Plus | $3.99 |\n| Free | $0 |\n"
LONG_TOKEN = "https://example.org/" + "a" * 400
RTL = "שלום, איך אפשר לעזור?\nمرحبا، كيف يمكنني المساعدة؟"


def text_of(rendered: str) -> str:
    return re.sub(r"<[^>]+>", "", rendered)


@pytest.mark.parametrize(
    "text, layout",
    [
        (CSV_ANSWER, "csv"),
        ("a\tb\n1\t2\n3\t4", "csv"),
        (PRETTY_JSON, "json"),
        ('["jo.kim@example.org", "billing@brightwell.example"]', "json"),
        (YAML_ANSWER, "yaml"),
        (PYTHON, "code"),
        (SHELL, "code"),
        (LETTER, "markdown"),
        (NESTED, "markdown"),
        (TABLE, "markdown"),
        ("- one\n- two\n- three", "markdown"),
        ("Hi, Maya.\nYes, it works. Try it.", "markdown"),
        ("```csv\nname,quantity\nhub,1\n```", "markdown"),
        ("yes", "markdown"),
        ("", "markdown"),
        (LONG_TOKEN, "markdown"),
        (RTL, "markdown"),
    ],
)
def test_each_output_gets_the_layout_it_was_written_in(text, layout):
    assert output_layout(text) == layout


@pytest.mark.parametrize("text", [CSV_ANSWER, PRETTY_JSON, YAML_ANSWER, PYTHON, SHELL])
def test_structured_outputs_are_shown_verbatim(text):
    rendered = render_output(text)
    assert rendered.startswith('<pre class="verbatim"')
    # Every line and every indent survives: the text inside the block is the output itself.
    inner = re.sub(r"^<pre[^>]*>|</pre>$", "", rendered)
    assert inner.replace("&quot;", '"').replace("&#x27;", "'") == text.strip("\n").replace(
        "&", "&amp;"
    ).replace("<", "&lt;").replace(">", "&gt;")


def test_single_newlines_are_line_breaks():
    rendered = render_output(LETTER)
    assert rendered.count("<br />") == 3 or rendered.count("<br>") == 3
    assert "Hi Maya,<br" in rendered


def test_guidelines_keep_markdowns_own_paragraphs():
    # Guidelines are Markdown written for Markdown: a wrapped line joins its paragraph.
    assert "<br" not in render_markdown("one long\nwrapped sentence")


def test_tables_nested_lists_and_long_tokens_render():
    table = render_output(TABLE)
    assert "<table>" in table and re.search(r"<td[^>]*>\$3\.99</td>", table)
    nested = render_output(NESTED)
    assert re.search(r"<ul>\s*<li[^>]*>rooms\s*<ul>", nested) and "<ol>" in nested
    assert "a" * 400 in render_output(LONG_TOKEN)


def test_right_to_left_lines_find_their_own_direction():
    rendered = render_output(RTL)
    assert '<p dir="auto">' in rendered and "שלום" in rendered and "مرحبا" in rendered


def test_structured_output_is_still_inert():
    rendered = render_output('{"html": "<script>alert(1)</script>", "img": "<img src=x>"}')
    assert "<script" not in rendered and "<img" not in rendered
    assert "&lt;script&gt;" in rendered


def test_raw_html_is_shown_as_text_not_markup():
    for render in (render_markdown, render_output):
        html = render(HOSTILE)
        assert "<script" not in html and "<img" not in html
        assert "&lt;script&gt;" in html  # the reviewer still sees what the model wrote
        assert "onerror=" not in re.sub(r"&lt;.*?&gt;", "", html, flags=re.S)


def test_no_javascript_links_and_no_images():
    html = render_output(HOSTILE + "\n[ok](https://example.org) <javascript:alert(1)>\n")
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs == ["https://example.org"]
    assert "<em>[image: tracking pixel]</em>" in html
    assert "203.0.113.9" not in html


def test_tables_code_and_lists_render():
    html = render_output(HOSTILE + "\n1. first\n2. second\n\n**bold** and `code`\n")
    assert "<table>" in html and re.search(r"<td[^>]*>Plus</td>", html)
    assert re.search(
        r'<div class="fence">```python</div><pre[^>]*data-lang="python"[^>]*>'
        r"<code>print\(&#x27;hello&#x27;\)</code></pre>",
        html,
    )
    assert "<ol>" in html and "<strong>bold</strong>" in html and "<code>code</code>" in html


def test_links_cannot_open_the_reviewers_page():
    html = render_output("[site](https://example.org)")
    assert 'rel="noopener noreferrer nofollow"' in html


def test_plain_text_is_kept():
    assert render_output("") == ""
    assert "Tom &amp; Jerry" in text_of(render_output("Tom & Jerry"))
