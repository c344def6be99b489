"""The HTML report in chromium: the override box never draws over the lines around it (the
APPROVE line, the signed hash), and on a phone the page is as wide as the phone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from review_app.report import render_report
from tests.test_report_render import HASH, make_report

pytestmark = pytest.mark.browser

SIGNED = {
    "signer": "sam",
    "decision": "approve",
    "created_at": "2026-01-03",
    "comment": "ship it",
    "report_hash": HASH,
    "gate_result": "inconclusive",
    "override": "the launch date is fixed by contract; the interim figures are good enough",
}


def overlaps(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


@pytest.mark.parametrize("size", [(1400, 1000), (390, 844)], ids=["wide", "phone"])
def test_the_override_box_stands_clear_and_the_page_fits(browser, size):
    html = render_report(make_report(signoffs=[SIGNED]), "html")
    context = browser.new_context(
        viewport={"width": size[0], "height": size[1]}, is_mobile=size[0] < 600
    )
    page = context.new_page()
    page.set_content(html)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= size[0]
    item = page.locator("li", has_text="APPROVE")
    box = item.locator(".override").bounding_box()
    approve = item.locator("b", has_text="APPROVE").bounding_box()
    signed_hash = item.locator("small").bounding_box()
    assert not overlaps(box, approve) and not overlaps(box, signed_hash)
    # The override at the top of the report stands clear of the gate line above it.
    top = page.locator("p.override").first.bounding_box()
    verdict = page.locator(".verdict").bounding_box()
    assert not overlaps(top, verdict)
    shots = os.environ.get("REVIEW_APP_SCREENSHOTS")
    if shots:
        page.screenshot(path=str(Path(shots) / f"report-{size[0]}.png"), full_page=True)
    context.close()
