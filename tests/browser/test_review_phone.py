"""The review screen on a phone (390x844) and a tap the browser handles late, in a real browser:
the vote buttons stay at the bottom of the screen while the reviewer scrolls long responses and
their ratings; the progress bar is full when every pair is done; a tap made before the next pair
had been on screen for a moment never votes on it, however late the busy browser handles it."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from review_app.services import data, people, studies
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import person
from tests.browser.conftest import (
    SETTLE_MS,
    done_count,
    start_server,
    wait_done,
    wait_for_pair,
    wait_idle,
)

pytestmark = pytest.mark.browser

STUDY = "phone"
LONG = "\n".join(
    f"{n}. Hold the button for ten seconds, then wait for the ring." for n in range(40)
)
ITEMS = 3
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def tokens(module_workspace, tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("phone")
    source = folder / "outputs.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "prompt", "system", "output", "category"])
        for i in range(ITEMS):
            for system in ("long", "short"):
                text = LONG if system == "long" else f"Short answer {i}."
                writer.writerow(
                    [f"q{i}", f"How do I reset the hub ({i})?", system, text, "support"]
                )
    store = Store.open(module_workspace)
    data.import_outputs(store, source, "es", actor=person(store))
    studies.create_study(
        store,
        STUDY,
        "es",
        [("long", "short")],
        reviews_per_pair=3,
        criteria=["accuracy", "tone", "clarity"],
        actor=person(store),
    )
    tokens = {}
    for name in ("sticky", "finish", "late"):
        _, link = people.add_reviewer(
            store, Settings.from_env(), name, "reviewer", STUDY, actor=person(store)
        )
        tokens[name] = link.split("token=")[1]
    store.close()
    return tokens


@pytest.fixture(scope="module")
def server(module_workspace, tokens):
    yield from start_server(module_workspace)


def open_phone(browser, server, token: str):
    page = browser.tab(viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(f"{server.url}/review?token={token}")
    wait_for_pair(page)
    return page


def scroll_to(page, share: float) -> None:
    """Scroll the page to `share` (0..1) of its height and wait until it got there."""
    page.evaluate(
        "(share) => { const main = document.querySelector('[data-testid=stMain]');"
        " main.scrollTop = share * (main.scrollHeight - main.clientHeight); }",
        share,
    )
    page.wait_for_function(
        "(share) => { const main = document.querySelector('[data-testid=stMain]');"
        " const target = Math.round(share * (main.scrollHeight - main.clientHeight));"
        " return Math.abs(main.scrollTop - target) <= 1; }",
        arg=share,
    )


def fully_in_view(page, name: str) -> bool:
    box = page.get_by_role("button", name=name).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]


def test_the_vote_buttons_stay_in_view_while_a_phone_scrolls_the_pair(browser, server, tokens):
    page = open_phone(browser, server, tokens["sticky"])
    # The page is several screens long: two long responses, then three rows of ratings.
    assert page.evaluate(
        "() => { const m = document.querySelector('[data-testid=stMain]');"
        " return m.scrollHeight > 2 * m.clientHeight; }"
    )
    for share in (0, 0.3, 0.6):
        scroll_to(page, share)
        for name in ("A is better", "B is better", "Tie", "Both bad"):
            assert fully_in_view(page, name), f"{name!r} out of view at {share:.0%} of the page"
    shots = os.environ.get("REVIEW_APP_SCREENSHOTS")
    if shots:
        page.screenshot(path=str(Path(shots) / "review-phone-sticky.png"))
    # What is in view is what a tap reaches: the bar votes from the middle of response B.
    start = done_count(page)
    page.wait_for_timeout(SETTLE_MS)  # a tap in a new pair's first moment is held back
    page.get_by_role("button", name="Tie").tap()
    wait_done(page, start + 1)


def test_the_progress_bar_is_full_when_every_pair_is_done(browser, server, tokens):
    page = open_phone(browser, server, tokens["finish"])
    for number in range(1, ITEMS + 1):
        wait_for_pair(page)
        page.keyboard.press("a")
        wait_done(page, number)
    page.get_by_text("You have reviewed every pair available to you").wait_for()
    assert page.get_by_text(f"{ITEMS} done · 0 left", exact=True).is_visible()
    bar = page.get_by_role("progressbar")
    track = bar.bounding_box()
    done = bar.locator(".review-progress-done").bounding_box()
    assert track["width"] > 100 and done["width"] == pytest.approx(track["width"], abs=0.5)
    shots = os.environ.get("REVIEW_APP_SCREENSHOTS")
    if shots:
        page.screenshot(path=str(Path(shots) / "review-phone-finished.png"))


def test_a_tap_the_busy_browser_handles_late_never_votes_on_the_next_pair(
    browser, server, tokens, module_workspace
):
    """A second tap made 0.1 s after the next pair appeared, that the browser (busy drawing that
    pair) handles only a second later, was aimed at the pair before: it records nothing."""
    page = open_phone(browser, server, tokens["late"])
    start = done_count(page)
    page.get_by_role("button", name="B is better").tap()
    wait_done(page, start + 1)
    wait_for_pair(page)  # the new pair has been on screen for longer than the settle time
    box = page.get_by_role("button", name="B is better").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # When the tap happened, as the browser stamps its events: 0.1 s after the pair appeared.
    happened = page.evaluate("() => (performance.timeOrigin + window.__reviewShownAt + 100) / 1000")
    # Every click the page receives, seen before the page's own handlers.
    page.evaluate(
        "() => window.addEventListener('click', (e) => { window.__taps = "
        "[...(window.__taps || []), e]; }, true)"
    )
    cdp = page.context.new_cdp_session(page)
    for kind in ("mousePressed", "mouseReleased"):
        cdp.send(
            "Input.dispatchMouseEvent",
            {
                "type": kind,
                "x": x,
                "y": y,
                "button": "left",
                "clickCount": 1,
                "timestamp": happened,
            },
        )
    cdp.detach()
    # The browser has handled the tap (the call above returns then): it was held back.
    assert page.evaluate("() => window.__taps.map((e) => e.defaultPrevented)") == [True]
    wait_idle(page)
    store = Store.open(module_workspace)
    try:
        history = store.review.vote_history(store.studies.require_study(STUDY)["id"])
    finally:
        store.close()
    assert [v["choice"] for v in history if v["reviewer"] == "late"] == ["B"]
    assert done_count(page) == start + 1


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", [(1400, 1000), PHONE], ids=["wide", "phone"])
def test_the_vote_bar_wears_the_pages_own_background(browser, server, tokens, size, scheme):
    """In the light and the dark theme the phone's vote bar hides what scrolls beneath it with
    the page's own colour (a white bar on a dark page would be a hole in it); on a wide screen
    the buttons sit in the page's flow, one row of six."""
    width, height = size if isinstance(size, tuple) else (size["width"], size["height"])
    phone = width < 640
    page = browser.tab(
        viewport={"width": width, "height": height},
        is_mobile=phone,
        has_touch=phone,
        color_scheme=scheme,
    )
    page.goto(f"{server.url}/review?token={tokens['sticky']}")
    wait_for_pair(page)
    colours = page.evaluate(
        "() => { const bar = document.querySelector('.st-key-review-votes').parentElement;"
        " const app = document.querySelector('[data-testid=stApp]');"
        " return [getComputedStyle(bar).position, getComputedStyle(bar).backgroundColor,"
        " getComputedStyle(app).backgroundColor]; }"
    )
    position, bar, app = colours
    if phone:
        assert position == "sticky" and bar == app, colours
    else:
        assert position != "sticky", colours
        names = ("A is better", "B is better", "Tie", "Both bad", "Skip", "Undo last vote")
        rows = {round(page.get_by_role("button", name=n).bounding_box()["y"]) for n in names}
        assert len(rows) == 1
    shots = os.environ.get("REVIEW_APP_SCREENSHOTS")
    if shots:
        page.screenshot(path=str(Path(shots) / f"review-{width}-{scheme}.png"), full_page=True)
