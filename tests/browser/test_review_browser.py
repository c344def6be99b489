"""The review screen in a real browser: keyboard-only labelling across a reload, shortcuts that
stay quiet while typing, blinding of everything a reviewer can reach, and inert hostile output."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from review_app.auth import SCREENS as SCREEN_LIST
from review_app.services import data, people, review, studies
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import person
from tests.browser.conftest import (
    done_count,
    start_server,
    wait_done,
    wait_for_pair,
)
from tests.review_fixtures import SENTINELS, STUDY, make_study, write_outputs

pytestmark = pytest.mark.browser

SAFETY_STUDY = "zq-sentinel-safety-6e0a"
SCREENS = ("", *(screen for screen, *_ in SCREEN_LIST))


@pytest.fixture(scope="module")
def workspace(module_workspace, tmp_path_factory):
    """The sentinel study (reviewers kim and lee) and a one-pair study whose output is hostile
    (reviewer sally). Returns tokens by reviewer name."""
    folder = tmp_path_factory.mktemp("data")
    store = Store.open(module_workspace)
    settings = Settings.from_env()
    make_study(store, folder, n_items=12, reviews_per_pair=2, criteria=["accuracy"])
    data.import_outputs(
        store,
        write_outputs(folder / "hostile.csv", 1, hostile_item=0),
        "hostile",
        actor=person(store),
    )
    studies.create_study(
        store,
        SAFETY_STUDY,
        "hostile",
        [(SENTINELS[0], SENTINELS[1])],
        reviews_per_pair=1,
        actor=person(store),
    )
    tokens = {}
    for name, study in (("kim", STUDY), ("lee", STUDY), ("sally", SAFETY_STUDY)):
        _, link = people.add_reviewer(store, settings, name, "reviewer", study, actor=person(store))
        tokens[name] = link.split("token=")[1]
    store.close()
    return tokens


@pytest.fixture(scope="module")
def server(module_workspace, workspace):
    yield from start_server(module_workspace)


@pytest.fixture
def page(browser):
    return browser.tab(viewport={"width": 1400, "height": 900})


@pytest.fixture
def own_page(browser):
    """A tab of its own, for a test that listens to the page's dialogs and requests."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    yield context.new_page()
    context.close()


def screen_texts(page) -> tuple[str, str]:
    outputs = page.locator(".review-output")
    return outputs.nth(1).inner_text(), outputs.nth(2).inner_text()


def test_keyboard_only_labelling_survives_a_reload(server, workspace, page, module_workspace):
    page.goto(server.link(workspace["kim"]))
    wait_for_pair(page)
    keys = ["a", "b", "t", "n", "a", "b", "b", "a", "t", "a"]
    expected = {"a": "A", "b": "B", "t": "tie", "n": "both_bad"}
    for number, key in enumerate(keys, start=1):
        if number == 6:
            before = screen_texts(page)
            page.reload()
            wait_for_pair(page)
            assert screen_texts(page) == before  # the same pair, in the same order
            assert done_count(page) == 5
        page.keyboard.press(key)
        wait_done(page, number)

    store = Store.open(module_workspace)
    try:
        kim = store.people.reviewer("kim")["id"]
        history = [v for v in store.review.vote_history(store.studies.require_study(STUDY)["id"])]
        votes = [v for v in history if v["reviewer"] == "kim"]
        assert [v["choice"] for v in votes] == [expected[k] for k in keys]
        assert all(v["supersedes"] is None and v["ms_spent"] is not None for v in votes)
        assert len({(v["item_key"], v["system_x"], v["system_y"]) for v in votes}) == 10
        assert (
            review.review_progress(store, kim, store.studies.require_study(STUDY)["id"]).done == 10
        )
    finally:
        store.close()


def test_typing_a_rationale_never_triggers_a_shortcut(server, workspace, page, module_workspace):
    page.goto(server.link(workspace["lee"]))
    wait_for_pair(page)
    start = done_count(page)
    box = page.get_by_label("Why? (optional)")
    box.click()
    box.press_sequentially("a bad answer, but not both: tsun")
    page.wait_for_timeout(800)
    assert done_count(page) == start
    assert box.input_value() == "a bad answer, but not both: tsun"
    page.get_by_text("Which response is better?").click()  # leave the box, then vote
    page.wait_for_timeout(300)
    page.keyboard.press("b")
    wait_done(page, start + 1)

    store = Store.open(module_workspace)
    try:
        votes = [
            v
            for v in store.review.vote_history(store.studies.require_study(STUDY)["id"])
            if v["reviewer"] == "lee"
        ]
        assert [(v["choice"], v["rationale"]) for v in votes] == [
            ("B", "a bad answer, but not both: tsun")
        ]
    finally:
        store.close()


def test_nothing_a_reviewer_can_reach_names_a_system(server, workspace, page):
    """About 30 s on a busy machine: it opens every screen of the app with a reviewer's link,
    each a full page load and script run, as blinding has to hold on all of them."""
    seen = []
    page.goto(server.link(workspace["lee"]))
    wait_for_pair(page)
    before = done_count(page)
    page.keyboard.press("t")
    wait_done(page, before + 1)
    page.get_by_text("Show raw text").click()
    page.get_by_text(re.compile(r"^Edit an earlier vote")).click()
    page.wait_for_timeout(1000)
    seen.append((page.url, page.content()))
    for screen in SCREENS:
        page.goto(f"{server.url}/{screen}?token={workspace['lee']}")
        page.get_by_text("Signed in as").wait_for()
        # Every screen a reviewer asks for ends on the review screen: wait until it is drawn,
        # not a fixed time (a busy machine draws it later).
        wait_for_pair(page)
        page.wait_for_timeout(300)
        seen.append((page.url, page.content()))
    for url, content in seen:
        assert "Response A" in content or "nothing" in content.lower()
        for secret in (*SENTINELS, STUDY, SAFETY_STUDY, workspace["kim"], workspace["sally"]):
            assert secret not in url and secret not in content, (secret, url)


def test_hostile_output_renders_inert(server, workspace, own_page):
    page = own_page
    dialogs, requests = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(server.link(workspace["sally"]))
    wait_for_pair(page)
    page.wait_for_timeout(1500)
    content = page.content()
    assert "<script>window.__pwned" not in content
    assert "&lt;script&gt;window.__pwned" in content  # shown as text, as the model wrote it
    assert page.locator(".review-output img").count() == 0
    assert page.locator(".review-output a[href^='javascript']").count() == 0
    assert page.locator(".review-output table").count() == 1
    assert page.locator(".review-output pre code").count() == 1
    page.get_by_text("Show raw text").click()
    page.wait_for_timeout(1500)
    assert "tracking pixel" in page.content()
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    outside = [url for url in requests if urlparse(url).hostname not in ("127.0.0.1", None)]
    assert outside == [] and requests
