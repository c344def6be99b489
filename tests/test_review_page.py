"""The review screen through Streamlit's AppTest: votes, undo, edits, skip, refusals, blinding."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from review_app.services import people, review
from tests.acting import acting, person
from tests.review_fixtures import SENTINELS, STUDY, add_reviewer, make_study

APP_DIR = Path(__file__).resolve().parent.parent / "review_app"
REVIEW_PAGE = str(APP_DIR / "app_pages" / "review.py")


def open_page(token: str | None, page: str = REVIEW_PAGE) -> AppTest:
    at = AppTest.from_file(page, default_timeout=30)
    if token is not None:
        at.query_params["token"] = token
    return at.run()


def everything_shown(at: AppTest) -> str:
    """Every value, label, key and piece of HTML the page rendered, as one string."""
    parts = [str(at.query_params)]

    def walk(node):
        for attr in ("value", "label", "body", "key", "help", "placeholder", "options"):
            try:
                value = getattr(node, attr, None)
            except Exception:  # some element kinds raise on attributes they lack
                value = None
            if value is not None:
                parts.append(str(value))
        parts.append(str(getattr(node, "proto", "")))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


@pytest.fixture
def study(store, tmp_path):
    return make_study(store, tmp_path, criteria=["accuracy"])


@pytest.fixture
def token(store, settings, study):
    return add_reviewer(store, settings, "rita")


def shown_pair(store, reviewer_name, study):
    """The assignment on the reviewer's screen (their most recently leased open one) and the
    texts of its left and right systems."""
    rid = store.people.reviewer(reviewer_name)["id"]
    handed = store.review.open_assignments(rid, study["id"])[0]
    pair = store.studies.pair(handed["pair_id"])
    left_is_x = handed["shown_left"] == pair["system_x"]
    right = pair["system_y"] if left_is_x else pair["system_x"]
    left_text, right_text = (
        (pair["output_x"], pair["output_y"]) if left_is_x else (pair["output_y"], pair["output_x"])
    )
    return handed, right, left_text, right_text


def html_bodies(at: AppTest) -> str:
    return "\n".join(str(e.proto) for e in at.get("html"))


def open_earlier_votes(at: AppTest) -> AppTest:
    """Open "Edit an earlier vote" (its content is drawn only while it is open)."""
    at.session_state["edit-open"] = True
    return at.run()


def press(at: AppTest, name: str):
    """The review screen's button `name` ("vote-A", "skip", ...) for the pair on screen (its
    key carries the pair's slot)."""
    return at.button(key=f"{name}-{at.session_state['review_slot'] % 16}")


def notice(at: AppTest) -> str:
    """The one-line notice above the pair ("Saved: ...", "Not saved: ..."), as plain text."""
    for element in at.get("html"):
        body = element.proto.body
        if 'class="review-notice' in body:
            found = re.search(r'<div class="review-notice[^"]*"[^>]*>(.*?)</div>', body)
            return html.unescape(found.group(1))
    raise AssertionError("the review screen drew no notice line")


def test_a_vote_writes_one_row_with_the_winner_and_shown_order(store, study, token):
    at = open_page(token)
    assert not at.exception
    handed, right, left_text, right_text = shown_pair(store, "rita", study)
    bodies = html_bodies(at)
    assert left_text in bodies and right_text in bodies
    assert bodies.index(left_text) < bodies.index(right_text)

    at.segmented_control(key="score-0-0-B").set_value(4)
    at.checkbox(key="flag-0-recognized_model").check()
    at.text_area(key="rationale-0").input("B is clearer")
    press(at, "vote-B").click().run()
    assert not at.exception
    [vote] = store.review.vote_history(study["id"])
    assert (vote["choice"], vote["winner"]) == ("B", right)
    assert (vote["shown_left"], vote["shown_right"]) == (handed["shown_left"], right)
    assert json.loads(vote["criteria"]) == {"accuracy": {right: 4}}
    assert json.loads(vote["flags"]) == ["recognized_model"]
    assert vote["rationale"] == "B is clearer"
    assert vote["ms_spent"] is not None and vote["ms_spent"] >= 0
    assert notice(at) == "Saved: B is better."
    # The next pair is on screen with fresh (empty) inputs.
    assert store.review.open_assignments(store.people.reviewer("rita")["id"], study["id"])
    assert at.text_area(key="rationale-1").value == ""


def test_undo_brings_the_pair_back_and_retracts_the_vote(store, study, token):
    at = open_page(token)
    first, *_ = shown_pair(store, "rita", study)
    press(at, "vote-A").click().run()
    at.button(key="undo").click().run()
    assert not at.exception
    again, *_ = shown_pair(store, "rita", study)
    assert again["id"] == first["id"]
    assert [v["choice"] for v in store.review.vote_history(study["id"])] == ["A", "retracted"]
    assert store.frames.votes_frame(study["id"]).empty
    assert "undone" in notice(at)


def test_editing_an_earlier_vote_supersedes_it(store, study, token):
    at = open_page(token)
    first, right, *_ = shown_pair(store, "rita", study)
    press(at, "vote-A").click().run()
    press(at, "vote-tie").click().run()
    open_earlier_votes(at).selectbox(key="edit-number").select(1).run()
    vote_id = store.review.vote_history(study["id"])[0]["id"]
    at.radio(key=f"edit-{vote_id}-choice").set_value("B")
    at.text_input(key=f"edit-{vote_id}-rationale").input("on second thought")
    at.button(key="edit-save").click().run()
    assert not at.exception
    history = store.review.vote_history(study["id"])
    assert [v["choice"] for v in history] == ["A", "tie", "B"]
    assert history[2]["supersedes"] == history[0]["id"]
    assert history[2]["winner"] == right and history[2]["rationale"] == "on second thought"
    frame = store.frames.votes_frame(study["id"])
    assert sorted(frame.winner) == sorted([right, "tie"])


def test_an_edit_shows_both_outputs_and_changes_ratings_and_flags(store, study, token):
    at = open_page(token)
    _, _, left_text, right_text = shown_pair(store, "rita", study)
    slot = at.session_state["review_slot"]
    at.button_group(key=f"score-{slot}-0-A").set_value(4).run()
    press(at, "vote-A").click().run()
    # Undone and voted again: the edit form shows the vote that counts, not the undone one.
    at.button(key="undo").click().run()
    press(at, "vote-tie").click().run()
    press(at, "vote-B").click().run()
    open_earlier_votes(at).selectbox(key="edit-number").select(1).run()
    vote = store.review.vote_history(study["id"])[-2]
    edit = f"edit-{vote['id']}"
    assert at.radio(key=f"{edit}-choice").value == "tie"
    shown = html_bodies(at)
    assert html.escape(left_text) in shown and html.escape(right_text) in shown
    # The ratings restored after the undo went with the vote that counts.
    assert at.button_group(key=f"{edit}-score-0-A").value == 4
    at.button_group(key=f"{edit}-score-0-A").set_value(None)
    at.button_group(key=f"{edit}-score-0-B").set_value(2)
    at.checkbox(key=f"{edit}-flag-{next(iter(review.FLAGS))}").check()
    at.button(key="edit-save").click().run()
    assert not at.exception
    latest = store.review.vote_history(study["id"])[-1]
    assert latest["supersedes"] == vote["id"] and latest["choice"] == "tie"
    assert json.loads(latest["flags"]) == [next(iter(review.FLAGS))]
    assert list(json.loads(latest["criteria"])["accuracy"].values()) == [2]


def test_skip_moves_on_without_a_vote(store, study, token):
    at = open_page(token)
    first, *_ = shown_pair(store, "rita", study)
    press(at, "skip").click().run()
    assert not at.exception
    second, *_ = shown_pair(store, "rita", study)
    assert second["id"] != first["id"]
    assert store.review.vote_history(study["id"]) == []


def test_progress_shows_done_and_assigned(store, study, token):
    at = open_page(token)
    press(at, "vote-A").click().run()
    assert progress_text(at) == "<b>1</b> done · 23 left"


@pytest.mark.parametrize("show", [True, False])
def test_the_reference_is_shown_only_when_the_study_says_so(store, settings, tmp_path, show):
    make_study(store, tmp_path, show_reference=show)
    token = add_reviewer(store, settings, "rita")
    at = open_page(token)
    assert not at.exception
    assert html_bodies(at).count("<summary>Reference answer</summary>") == int(show)
    assert (">Ref " in html_bodies(at)) is show


@pytest.mark.parametrize("bad", [None, "", "not-a-real-token"])
def test_an_invalid_token_is_refused(store, study, token, bad):
    at = open_page(bad)
    assert not at.exception
    assert at.title[0].value == "Access denied"
    assert not at.button


def test_a_revoked_token_is_refused(store, study, token):
    people.revoke_reviewer(store, "rita", person(store))
    at = open_page(token)
    assert "revoked" in at.error[0].value
    assert not at.button


def test_a_reviewer_is_refused_the_admin_screens(store, study, token):
    at = open_page(token, str(APP_DIR / "app_pages" / "home.py"))
    assert not at.exception
    assert "for admin or signer accounts" in at.error[0].value
    assert not at.metric


def test_a_reviewer_lands_on_the_review_screen(store, study, token):
    at = open_page(token, str(APP_DIR / "streamlit_app.py"))
    assert not at.exception
    assert ">Which response is better?</h1>" in html_bodies(at)


def test_no_system_or_study_name_reaches_the_reviewer(store, study, token):
    at = open_page(token)
    press(at, "vote-A").click().run()
    press(at, "vote-B").click().run()
    at.button(key="undo").click().run()
    at.toggle(key="raw-text").set_value(True).run()
    assert not at.exception
    shown = everything_shown(at)
    assert "Response A" in shown  # the walk does see the page
    for secret in (*SENTINELS, STUDY):
        assert secret not in shown
    # Widget keys and everything the page keeps between reruns are blind too.
    state = str(at.session_state)
    assert "rationale-" in state
    assert not any(secret in state for secret in (*SENTINELS, STUDY))


def test_a_finished_queue_says_so(store, settings, tmp_path):
    study = make_study(store, tmp_path, n_items=1, reviews_per_pair=1)
    token = add_reviewer(store, settings, "rita")
    at = open_page(token)
    press(at, "vote-A").click().run()
    press(at, "vote-A").click().run()
    assert not at.exception
    assert "reviewed every pair" in at.success[-1].value
    assert len(store.frames.votes_frame(study["id"])) == 2


def test_a_key_pressed_before_the_pair_is_shown_changes_nothing(store, study, token):
    at = open_page(token)
    press(at, "vote-A").click().run()
    # The next pair's buttons are not drawn yet when a fast key press arrives: the press comes
    # with the previous pair's button, which must not turn into an edit of the vote just cast.
    at.session_state["review_shown"] = None
    press(at, "vote-B").click().run()
    assert not at.exception
    assert [v["choice"] for v in store.review.vote_history(study["id"])] == ["A"]
    assert "before the pair was shown" in notice(at)


def test_guidelines_are_open_on_the_first_visit_then_one_click_away(store, study, token):
    from review_app.services import studies

    studies.set_guidelines(
        acting(store, STUDY, "ada"), "# House rules\n\n- Name the **reset time**."
    )
    at = open_page(token)
    [guidelines] = [e for e in at.expander if e.label == "Guidelines"]
    assert guidelines.proto.expanded
    assert "<strong>reset time</strong>" in html_bodies(at)
    press(at, "vote-A").click().run()
    [guidelines] = [e for e in at.expander if e.label == "Guidelines"]
    assert not guidelines.proto.expanded  # voted under this version: collapsed, one click away
    studies.set_guidelines(acting(store, STUDY, "ada"), "# House rules v2")
    at = open_page(token)
    assert [e for e in at.expander if e.label == "Guidelines"][0].proto.expanded  # new version
    [vote] = store.review.vote_history(study["id"])
    assert vote["guidelines_hash"] == studies.guidelines_history(store, STUDY)[0]["content_hash"]


def test_undo_brings_the_pair_back_with_everything_entered(store, study, token):
    at = open_page(token)
    first, *_ = shown_pair(store, "rita", study)
    at.segmented_control(key="score-0-0-A").set_value(2)
    at.segmented_control(key="score-0-0-B").set_value(5)
    at.checkbox(key="flag-0-broken_output").check()
    at.text_area(key="rationale-0").input("A skips step 2")
    press(at, "vote-B").click().run()
    assert at.text_area(key="rationale-1").value == ""
    at.button(key="undo").click().run()
    assert not at.exception
    again, *_ = shown_pair(store, "rita", study)
    assert again["id"] == first["id"]
    assert at.text_area(key="rationale-2").value == "A skips step 2"
    assert at.segmented_control(key="score-2-0-A").value == 2
    assert at.segmented_control(key="score-2-0-B").value == 5
    assert at.checkbox(key="flag-2-broken_output").value is True
    assert at.checkbox(key="flag-2-recognized_model").value is False
    assert any("Before undoing you chose: **B is better**" in c.value for c in at.caption)
    # Voting again keeps what was restored (and what the reviewer changed).
    at.text_area(key="rationale-2").input("A skips step 2 and 3")
    press(at, "vote-B").click().run()
    vote = store.review.vote_history(study["id"])[-1]
    assert (vote["choice"], vote["rationale"]) == ("B", "A skips step 2 and 3")
    assert json.loads(vote["flags"]) == ["broken_output"]
    assert len(json.loads(vote["criteria"])["accuracy"]) == 2


def test_the_progress_total_does_not_drift_when_others_take_pairs(store, study, token, settings):
    from review_app.services import review

    at = open_page(token)
    left = int(re.search(r"(\d+) left", progress_text(at)).group(1))
    # Another reviewer takes pairs meanwhile: the share this reviewer was shown stays put.
    add_reviewer(store, settings, "omar")
    other = store.people.reviewer("omar")["id"]
    for _ in range(5):
        task = review.next_pair(store, settings, other, study["id"])
        review.record_vote(store, settings, other, task.assignment_id, "A")
    press(at, "vote-A").click().run()
    assert progress_text(at) == f"<b>1</b> done · {left - 1} left"
    press(at, "skip").click().run()  # a skipped pair never comes back: one fewer to do
    assert progress_text(at) == f"<b>1</b> done · {left - 2} left"
    at.button(key="undo").click().run()
    assert progress_text(at) == f"<b>0</b> done · {left - 1} left"


def progress_text(at: AppTest) -> str:
    return re.search(r"<b>\d+</b> done · \d+ left", html_bodies(at)).group(0)


def test_the_notice_line_is_there_before_any_vote(store, study, token):
    # Its place is reserved from the first pair on, so the first "Saved" moves nothing.
    at = open_page(token)
    assert notice(at) == ""
    press(at, "vote-A").click().run()
    assert notice(at) == "Saved: A is better."


@pytest.mark.parametrize("button", ["vote-A", "vote-both_bad", "skip", "undo", "edit-save"])
def test_a_link_revoked_while_the_tab_is_open_records_nothing_more(store, study, token, button):
    at = open_page(token)
    press(at, "vote-A").click().run()  # one vote, so undo and edit have something to act on
    if button == "edit-save":
        open_earlier_votes(at)
    history = store.review.vote_history(study["id"])
    assignments = store.review.open_assignments(store.people.reviewer("rita")["id"], study["id"])
    # The page is drawn with the buttons live; the admin revokes the link; then the click lands.
    people.revoke_reviewer(store, "rita", person(store))
    (at.button(key=button) if button in ("undo", "edit-save") else press(at, button)).click().run()
    assert not at.exception
    assert store.review.vote_history(study["id"]) == history
    assert (
        store.review.open_assignments(store.people.reviewer("rita")["id"], study["id"])
        == assignments
    )
    assert "revoked" in at.error[0].value and not at.button


def test_a_sessions_widget_bookkeeping_stays_bounded_however_many_votes(store, settings, tmp_path):
    """Streamlit remembers every widget key a session has seen: keys that grew with each vote
    made a long session's memory grow with each vote (the load benchmark's 30-minute run)."""
    make_study(store, tmp_path, n_items=30, reviews_per_pair=1, criteria=["accuracy"])
    at = open_page(add_reviewer(store, settings, "rita"))
    known = []
    for _ in range(40):
        press(at, "vote-A").click().run()
        assert not at.exception
        known.append(len(at._session_state._state._key_id_mapper.id_key_mapping))
    assert store.review.count_voted(store.people.reviewer("rita")["id"], 1) == 40
    assert known[-1] == known[20], known
