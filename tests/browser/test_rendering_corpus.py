"""The rendering corpus as chromium shows it, at desktop and phone widths: every verbatim block
reads exactly as the model wrote it (indentation, alignment, fence lines), prose shows `*` and
`_` literally where they are not emphasis, and the review screen renders an output by its blocks
with "Show raw text" still giving the exact characters."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from review_app import ui
from review_app.safe_markdown import output_blocks, output_layout, render_output
from review_app.services import data, people, studies
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import person
from tests.browser.conftest import start_server, wait_for_pair
from tests.rendering_corpus import CASES, PYTHON_AFTER_PROSE

pytestmark = pytest.mark.browser

WHOLE = ("json", "csv", "yaml", "code")


def corpus_page() -> str:
    sections = "".join(
        f'<section data-case="{i}"><div class="review-output">{render_output(c.text)}</div></section>'
        for i, c in enumerate(CASES)
    )
    return f"<!doctype html><html><head><meta charset='utf-8'>{ui._OUTPUT_STYLE}</head><body>{sections}</body></html>"


@pytest.mark.parametrize("size", [(1400, 1000), (390, 844)], ids=["wide", "phone"])
def test_the_corpus_as_the_browser_shows_it(browser, size):
    page = browser.tab(viewport={"width": size[0], "height": size[1]})
    page.set_content(corpus_page())
    for i, case in enumerate(CASES):
        section = page.locator(f'section[data-case="{i}"]')
        shown = section.inner_text()
        for text in case.shows:
            assert text in shown, (case.name, text)
        for text in case.hides:
            assert text not in shown, (case.name, text)
        assert section.locator("em").count() == case.em, case.name
        blocks = (
            [case.text.strip("\n")]
            if case.blocks[0] in WHOLE
            else [b.text for b in output_blocks(case.text) if b.kind != "prose"]
        )
        pres = section.locator("pre")
        assert pres.count() == len(blocks), case.name
        for n, text in enumerate(blocks):
            assert pres.nth(n).inner_text() == text, case.name
            if output_layout(case.text) == "markdown":
                # Never wrapped: a line too wide for a phone scrolls sideways instead.
                assert pres.nth(n).evaluate("e => getComputedStyle(e).whiteSpace") == "pre"


# ---- the review screen ----

MIXED = PYTHON_AFTER_PROSE + "\n\nSo 2*3*4 = 24.\n\n```yaml\nname: Morning\n```"
DIAGRAM = (
    "The flow:\n+-------+     +-----+\n| Start | --> | End |\n+-------+     +-----+\nThat is it."
)
SHOTS = (
    Path(os.environ.get("REVIEW_APP_SCREENSHOTS", ""))
    if os.environ.get("REVIEW_APP_SCREENSHOTS")
    else None
)


@pytest.fixture(scope="module")
def review_tokens(module_workspace, tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("corpus")
    store = Store.open(module_workspace)
    settings = Settings.from_env()
    with (folder / "outputs.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "prompt", "system", "output"])
        for i in range(4):
            writer.writerow([f"q{i}", "Fix the function and draw the flow.", "mixed", MIXED])
            writer.writerow([f"q{i}", "Fix the function and draw the flow.", "diagram", DIAGRAM])
    data.import_outputs(store, folder / "outputs.csv", "es", actor=person(store))
    studies.create_study(store, "corpus", "es", [("mixed", "diagram")], actor=person(store))
    tokens = {}
    for name in ("wide", "phone"):
        _, link = people.add_reviewer(
            store, settings, name, "reviewer", "corpus", actor=person(store)
        )
        tokens[name] = link.split("token=")[1]
    store.close()
    return tokens


@pytest.fixture(scope="module")
def review_server(module_workspace, review_tokens):
    yield from start_server(module_workspace)


@pytest.mark.parametrize("size", [(1400, 1000), (390, 844)], ids=["wide", "phone"])
def test_the_review_screen_renders_by_block_and_shows_raw_text(
    browser, review_server, review_tokens, size
):
    name = "wide" if size[0] > 600 else "phone"
    page = browser.tab(viewport={"width": size[0], "height": size[1]})
    page.goto(review_server.link(review_tokens[name]))
    wait_for_pair(page)
    code = page.locator('.review-output pre[data-layout="code"]')
    assert code.inner_text() == "def absolute(x):\n    if x < 0:\n        return -x\n    return x"
    assert page.locator('.review-output pre[data-layout="art"]').inner_text() == (
        "+-------+     +-----+\n| Start | --> | End |\n+-------+     +-----+"
    )
    mixed = page.locator(".review-output", has=page.locator('pre[data-layout="code"]'))
    assert "So 2*3*4 = 24." in mixed.inner_text() and mixed.locator("em").count() == 0
    assert mixed.locator(".fence").first.inner_text() == "```yaml"
    if SHOTS:
        page.screenshot(path=str(SHOTS / f"review-corpus-{name}.png"), full_page=True)
    page.get_by_text("Show raw text").click()
    raw = page.locator(".review-raw", has_text="def absolute")
    raw.wait_for()
    assert "```yaml\nname: Morning\n```" in raw.inner_text()
    assert page.locator('.review-output pre[data-layout="code"]').count() == 0
