"""Model outputs render as Markdown that can neither run script nor load anything remote."""

from __future__ import annotations

import re

from review_app.safe_markdown import render_markdown
from tests.review_fixtures import HOSTILE


def test_raw_html_is_shown_as_text_not_markup():
    html = render_markdown(HOSTILE)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html  # the reviewer still sees what the model wrote
    assert "onerror=" not in re.sub(r"&lt;.*?&gt;", "", html, flags=re.S)


def test_no_javascript_links_and_no_images():
    html = render_markdown(HOSTILE + "\n[ok](https://example.org) <javascript:alert(1)>\n")
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs == ["https://example.org"]
    assert "<em>[image: tracking pixel]</em>" in html
    assert "203.0.113.9" not in html


def test_tables_code_and_lists_render():
    html = render_markdown(HOSTILE + "\n1. first\n2. second\n\n**bold** and `code`\n")
    assert "<table>" in html and "<td>Plus</td>" in html
    assert "<pre><code>print('hello')" in html or "<pre><code>print(&#39;hello&#39;)" in html
    assert "<ol>" in html and "<strong>bold</strong>" in html and "<code>code</code>" in html


def test_links_cannot_open_the_reviewers_page():
    html = render_markdown("[site](https://example.org)")
    assert 'rel="noopener noreferrer nofollow"' in html


def test_plain_text_is_kept():
    assert render_markdown("") == ""
    assert "Tom &amp; Jerry" in render_markdown("Tom & Jerry")
