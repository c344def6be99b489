"""What reviewers see is what they judge, in a real browser at desktop (1440x900) and phone
(390x844) sizes: line breaks and CSV/JSON layout kept (review screen and the signer's final
review), guidelines shown, each new pair starting at its top, no vote on an unseen pair, and a
keyboard loop that survives clicks, Escape, digits for ratings and undo."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from review_app.services import data, people, studies, thresholds
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import acting, person
from tests.browser.conftest import (
    done_count,
    start_server,
    wait_count_moves,
    wait_done,
    wait_for_pair,
    wait_idle,
)

pytestmark = pytest.mark.browser

STUDY = "fidelity"
CSV_ANSWER = "name,quantity\nLumen bulb,3\nhub,1\nmotion sensor,2\ndimmer switch,1"
JSON_ANSWER = '{\n  "name": "Morning",\n  "rooms": [\n    "Kitchen",\n    "Hallway"\n  ]\n}'
LETTER = "Hi Maya,\nSorry about the trouble.\n" + "\n".join(
    f"{n}. Step {n}: hold the button, then wait for the ring." for n in range(1, 31)
)
PROMPT = "Convert this list to CSV with the header name,quantity:\n3 Lumen bulbs\n1 hub"
GUIDELINES = "# House rules\n\n- Name the **reset time**: 10 seconds.\n- At most 120 words."
SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
RATED = ("accuracy", "tone")


def write_outputs(path: Path, n_items: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "prompt", "system", "output", "category"])
        for i in range(n_items):
            for system, text in (("csv", CSV_ANSWER), ("letter", LETTER), ("json", JSON_ANSWER)):
                writer.writerow([f"q{i:03d}", PROMPT, system, text, "formatting"])
    return path


@pytest.fixture(scope="module")
def tokens(module_workspace, tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("fidelity")
    store = Store.open(module_workspace)
    settings = Settings.from_env()
    data.import_outputs(store, write_outputs(folder / "outputs.csv", 12), "es", actor=person(store))
    studies.create_study(
        store,
        STUDY,
        "es",
        [("csv", "letter"), ("csv", "json")],
        reviews_per_pair=8,
        criteria=list(RATED),
        guidelines=GUIDELINES,
        actor=person(store),
    )
    thresholds.add_threshold(
        acting(store, STUDY, "ada"), "final_review_acceptable_rate", {}, ">=", 0.5, reason=""
    )
    thresholds.lock_thresholds(acting(store, STUDY, "ada"), "a small test study")
    names = ("desktop", "phone", "keys", "escape", "undo", "tab", "double")
    tokens = {}
    for name in names:
        _, link = people.add_reviewer(store, settings, name, "reviewer", STUDY, actor=person(store))
        tokens[name] = link.split("token=")[1]
    _, link = people.add_reviewer(store, settings, "sam", "signer", STUDY, actor=person(store))
    tokens["sam"] = link.split("token=")[1]
    store.close()
    return tokens


@pytest.fixture(scope="module")
def server(module_workspace, tokens):
    yield from start_server(module_workspace)


def open_page(browser, server, token: str, size: str, path: str = ""):
    width, height = SIZES[size]
    page = browser.tab(
        viewport={"width": width, "height": height},
        has_touch=size == "phone",
        is_mobile=size == "phone",
    )
    page.goto(f"{server.url}/{path}?token={token}")
    return page


def votes_of(module_workspace, name: str) -> list[dict]:
    store = Store.open(module_workspace)
    try:
        history = store.review.vote_history(store.studies.require_study(STUDY)["id"])
        return [v for v in history if v["reviewer"] == name]
    finally:
        store.close()


def main_scroll(page) -> float:
    return page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollTop")


def wait_at_top(page) -> None:
    """Wait for the new pair's scroll to the top (its timers run late on a loaded machine)."""
    page.wait_for_function("() => document.querySelector('[data-testid=stMain]').scrollTop === 0")


def scroll_down(page) -> None:
    """Scroll the page and the response boxes to their bottoms, once the page can scroll."""
    page.wait_for_function(
        "() => { const main = document.querySelector('[data-testid=stMain]');"
        " main.scrollTop = 10000;"
        " for (const box of document.querySelectorAll('.review-output')) box.scrollTop = 10000;"
        " return main.scrollTop > 0; }"
    )


def in_view(page, locator) -> bool:
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    return (
        box is not None and 0 <= box["y"] < height and box["y"] + min(box["height"], 40) <= height
    )


@pytest.mark.parametrize("size", list(SIZES))
def test_outputs_keep_their_lines_and_the_guidelines_are_shown(browser, server, tokens, size):
    page = open_page(browser, server, tokens[size], size)
    wait_for_pair(page)
    prompt = page.locator(".review-prompt")
    assert "CSV with the header name,quantity:\n3 Lumen bulbs\n1 hub" in prompt.inner_text()
    csv_block = page.locator('pre.verbatim[data-layout="csv"]')
    assert csv_block.inner_text() == CSV_ANSWER
    other = page.locator(
        '.review-output:not(.review-prompt):not(:has(pre[data-layout="csv"]))'
    ).first
    text = other.inner_text()
    assert text == JSON_ANSWER or text.startswith("Hi Maya,\nSorry about the trouble.\n")
    # First visit: the guidelines are open and rendered (bold, list), not raw Markdown.
    rule = page.locator(".review-guidelines strong", has_text="reset time")
    assert rule.is_visible()
    assert "**" not in page.locator(".review-guidelines").inner_text()
    page.keyboard.press("t")
    wait_done(page, 1)
    assert not rule.is_visible()  # then one click away
    page.get_by_text("Guidelines", exact=True).click()
    rule.wait_for(state="visible")


def test_the_signers_final_review_keeps_the_layout_too(browser, server, tokens):
    page = open_page(browser, server, tokens["sam"], "desktop", "gate")
    page.get_by_text(re.compile(r"^\d+ of \d+ reviewed$")).wait_for()
    wait_idle(page)
    assert page.locator('pre.verbatim[data-layout="csv"]').first.inner_text() == CSV_ANSWER


def test_each_new_pair_starts_at_its_top_on_a_phone(browser, server, tokens, module_workspace):
    page = open_page(browser, server, tokens["phone"], "phone")
    wait_for_pair(page)
    start = done_count(page)
    for number in range(1, 4):
        button = page.get_by_role("button", name="A is better")
        # The buttons are far below the prompt: the page scrolls to show them.
        page.wait_for_function(
            "button => { button.scrollIntoView({block: 'center'});"
            " return document.querySelector('[data-testid=stMain]').scrollTop > 0; }",
            arg=button.element_handle(),
        )
        box = button.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.touchscreen.tap(x, y)
        wait_done(page, start + number)
        # The new prompt is in view (the vote buttons stay in their bar at the bottom, so a tap
        # there soon after a new pair must be held back: the double-tap test).
        wait_at_top(page)
        assert in_view(page, page.locator(".review-prompt"))
        wait_for_pair(page)
    assert len(votes_of(module_workspace, "phone")) == start + 3


def test_a_double_tap_never_votes_on_the_next_pair(browser, server, tokens, module_workspace):
    page = open_page(browser, server, tokens["double"], "desktop")
    wait_for_pair(page)
    for gap in (60, 250, 500):
        start = done_count(page)
        button = page.get_by_role("button", name="B is better")
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.click(x, y)
        page.wait_for_timeout(gap)
        page.mouse.click(x, y)
        # The first click's vote lands (however slow the machine), then a second one would have
        # had time to land too.
        wait_count_moves(page, start)
        page.wait_for_timeout(1500)
        wait_idle(page)
        recorded = len(votes_of(module_workspace, "double"))
        assert (done_count(page), recorded) == (start + 1, start + 1), (
            f"two clicks {gap} ms apart: the counter shows {done_count(page)}, "
            f"{recorded} votes recorded"
        )
    assert [v["choice"] for v in votes_of(module_workspace, "double")] == ["B", "B", "B"]


def test_a_long_pair_on_a_desktop_starts_at_its_top(browser, server, tokens):
    page = open_page(browser, server, tokens["desktop"], "desktop")
    wait_for_pair(page)
    start = done_count(page)
    for number in range(1, 3):
        scroll_down(page)
        page.keyboard.press("b")
        wait_done(page, start + number)
        wait_at_top(page)
        page.wait_for_timeout(300)  # the boxes drawn after the page are reset a moment later
        assert in_view(page, page.locator(".review-prompt"))
        inner = page.evaluate(
            "() => [...document.querySelectorAll('.review-output')].map(b => b.scrollTop)"
        )
        assert inner == [0] * len(inner)


def test_a_vote_key_works_after_ticking_a_box(browser, server, tokens, module_workspace):
    page = open_page(browser, server, tokens["keys"], "desktop")
    wait_for_pair(page)
    page.get_by_text("Broken output", exact=True).click()
    wait_idle(page)
    page.keyboard.press("b")
    wait_done(page, 1)
    [vote] = votes_of(module_workspace, "keys")
    assert vote["choice"] == "B" and json.loads(vote["flags"]) == ["broken_output"]


def test_escape_leaves_the_rationale_box_and_digits_rate(browser, server, tokens, module_workspace):
    page = open_page(browser, server, tokens["escape"], "desktop")
    wait_for_pair(page)
    box = page.get_by_role("textbox", name="Why? (optional)")
    box.click()
    box.press_sequentially("A forgets 1 hub; tn")
    page.keyboard.press("Escape")
    for digit in "4255":
        page.keyboard.press(digit)
        page.wait_for_timeout(400)
        wait_idle(page)
    page.keyboard.press("Backspace")  # takes back the last rating
    page.wait_for_timeout(400)
    wait_idle(page)
    page.keyboard.press("a")
    wait_done(page, 1)
    [vote] = votes_of(module_workspace, "escape")
    assert (vote["choice"], vote["rationale"]) == ("A", "A forgets 1 hub; tn")
    scores = json.loads(vote["criteria"])
    left, right = vote["shown_left"], vote["shown_right"]
    assert scores == {"accuracy": {left: 4, right: 2}, "tone": {left: 5}}


def test_tab_reaches_the_vote_buttons_before_the_ratings(browser, server, tokens):
    page = open_page(browser, server, tokens["tab"], "desktop")
    wait_for_pair(page)
    page.locator(".review-prompt").click()
    for _ in range(20):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const c = document.activeElement.closest('[class*=\"st-key-\"]');"
            " return c ? [...c.classList].find(k => k.startsWith('st-key-')) : ''; }"
        )
        assert not focused.startswith("st-key-score-"), "Tab went through the ratings"
        if focused.startswith("st-key-vote-A-"):
            break
    else:
        pytest.fail("Tab never reached the vote buttons")


def test_undo_brings_the_pair_back_with_its_rationale_ratings_and_flags(
    browser, server, tokens, module_workspace
):
    page = open_page(browser, server, tokens["undo"], "desktop")
    wait_for_pair(page)
    prompt_texts = page.locator(".review-output").all_inner_texts()
    page.get_by_role("textbox", name="Why? (optional)").fill("B keeps the header")
    page.keyboard.press("Escape")
    page.get_by_text("I think I know which model wrote this", exact=True).click()
    wait_idle(page)
    page.keyboard.press("3")
    page.wait_for_timeout(400)
    wait_idle(page)
    page.keyboard.press("b")
    wait_done(page, 1)
    page.keyboard.press("u")
    wait_done(page, 0)
    page.wait_for_timeout(300)
    assert page.locator(".review-output").all_inner_texts() == prompt_texts  # the same pair
    assert page.get_by_role("textbox", name="Why? (optional)").input_value() == "B keeps the header"
    assert page.get_by_role("checkbox", name="I think I know which model wrote this").is_checked()
    assert not page.get_by_role("checkbox", name="Broken output").is_checked()
    checked = page.locator('[class*="st-key-score-"] button[aria-checked="true"]')
    assert checked.all_inner_texts() == ["3"]
    page.get_by_text("Before undoing you chose: B is better.").wait_for()
