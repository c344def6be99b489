"""Each output of the corpus is split into the blocks its shape calls for and rendered so the
reader sees the characters the model wrote (the browser test checks the same in chromium)."""

from __future__ import annotations

import html
import re

import pytest

from review_app.safe_markdown import output_blocks, output_layout, render_output
from tests.rendering_corpus import CASES, FORTY_STEPS, Case

WHOLE = ("json", "csv", "yaml", "code")


def visible(rendered: str) -> str:
    """Roughly what a browser shows: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_blocks_by_shape(case: Case):
    if case.blocks[0] in WHOLE:
        assert output_layout(case.text) == case.blocks[0]
    else:
        assert output_layout(case.text) == "markdown"
        assert tuple(b.kind for b in output_blocks(case.text)) == case.blocks


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_what_the_reader_sees(case: Case):
    rendered = render_output(case.text)
    shown = visible(rendered)
    for text in case.shows:
        assert text in shown, text
    for text in case.hides:
        assert text not in shown, text
    assert rendered.count("<em>") == case.em
    assert rendered.count("<strong>") == case.strong
    for tag in case.tags:
        assert f"<{tag}" in rendered
    for tag in case.no_tags:
        assert f"<{tag}" not in rendered
    assert "<script" not in rendered


def test_fence_language_is_shown_and_kept():
    (block,) = output_blocks("```python\nprint(1)\n```")
    assert block.language == "python"
    assert 'data-lang="python"' in render_output("```python\nprint(1)\n```")


def test_a_fenced_and_an_unfenced_answer_look_different():
    fenced = render_output("```yaml\nname: Morning\ntime: '06:45'\n```")
    bare = render_output("name: Morning\ntime: '06:45'")
    assert "```yaml" in visible(fenced) and "```" not in visible(bare)


def test_prose_with_a_colon_on_every_line_is_not_yaml():
    assert len(FORTY_STEPS.splitlines()) == 39
    assert output_layout(FORTY_STEPS) == "markdown"
    assert "<pre" not in render_output(FORTY_STEPS)
