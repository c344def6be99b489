"""The review screen through Streamlit's AppTest: votes, undo, edits, skip, refusals, blinding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from review_app.services import people
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
    rid = store.reviewer(reviewer_name)["id"]
    handed = store.open_assignments(rid, study["id"])[0]
    pair = store.pair(handed["pair_id"])
    left_is_x = handed["shown_left"] == pair["system_x"]
    right = pair["system_y"] if left_is_x else pair["system_x"]
    left_text, right_text = (
        (pair["output_x"], pair["output_y"]) if left_is_x else (pair["output_y"], pair["output_x"])
    )
    return handed, right, left_text, right_text


def html_bodies(at: AppTest) -> str:
    return "\n".join(str(e.proto) for e in at.get("html"))


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
    at.button(key="vote-B").click().run()
    assert not at.exception
    [vote] = store.vote_history(study["id"])
    assert (vote["choice"], vote["winner"]) == ("B", right)
    assert (vote["shown_left"], vote["shown_right"]) == (handed["shown_left"], right)
    assert json.loads(vote["criteria"]) == {"accuracy": {right: 4}}
    assert json.loads(vote["flags"]) == ["recognized_model"]
    assert vote["rationale"] == "B is clearer"
    assert vote["ms_spent"] is not None and vote["ms_spent"] >= 0
    assert "Saved: B is better." in [s.value for s in at.success]
    # The next pair is on screen with fresh (empty) inputs.
    assert store.open_assignments(store.reviewer("rita")["id"], study["id"])
    assert at.text_area(key="rationale-1").value == ""


def test_undo_brings_the_pair_back_and_retracts_the_vote(store, study, token):
    at = open_page(token)
    first, *_ = shown_pair(store, "rita", study)
    at.button(key="vote-A").click().run()
    at.button(key="undo").click().run()
    assert not at.exception
    again, *_ = shown_pair(store, "rita", study)
    assert again["id"] == first["id"]
    assert [v["choice"] for v in store.vote_history(study["id"])] == ["A", "retracted"]
    assert store.votes_frame(study["id"]).empty
    assert "undone" in at.success[0].value


def test_editing_an_earlier_vote_supersedes_it(store, study, token):
    at = open_page(token)
    first, right, *_ = shown_pair(store, "rita", study)
    at.button(key="vote-A").click().run()
    at.button(key="vote-tie").click().run()
    at.selectbox(key="edit-number").select(1).run()
    at.radio(key="edit-choice-1").set_value("B")
    at.text_input(key="edit-rationale-1").input("on second thought")
    at.button(key="edit-save").click().run()
    assert not at.exception
    history = store.vote_history(study["id"])
    assert [v["choice"] for v in history] == ["A", "tie", "B"]
    assert history[2]["supersedes"] == history[0]["id"]
    assert history[2]["winner"] == right and history[2]["rationale"] == "on second thought"
    frame = store.votes_frame(study["id"])
    assert sorted(frame.winner) == sorted([right, "tie"])


def test_skip_moves_on_without_a_vote(store, study, token):
    at = open_page(token)
    first, *_ = shown_pair(store, "rita", study)
    at.button(key="skip").click().run()
    assert not at.exception
    second, *_ = shown_pair(store, "rita", study)
    assert second["id"] != first["id"]
    assert store.vote_history(study["id"]) == []


def test_progress_shows_done_and_assigned(store, study, token):
    at = open_page(token)
    at.button(key="vote-A").click().run()
    progress = next(m.value for m in at.markdown if "done" in m.value)
    assert "<b>1</b> of 24 done" in progress


@pytest.mark.parametrize("show", [True, False])
def test_the_reference_is_shown_only_when_the_study_says_so(store, settings, tmp_path, show):
    make_study(store, tmp_path, show_reference=show)
    token = add_reviewer(store, settings, "rita")
    at = open_page(token)
    assert not at.exception
    references = [e for e in at.expander if e.label == "Reference answer"]
    assert len(references) == int(show)
    assert ("<p>Ref " in html_bodies(at)) is show


@pytest.mark.parametrize("bad", [None, "", "not-a-real-token"])
def test_an_invalid_token_is_refused(store, study, token, bad):
    at = open_page(bad)
    assert not at.exception
    assert at.title[0].value == "Access denied"
    assert not at.button


def test_a_revoked_token_is_refused(store, study, token):
    people.revoke_reviewer(store, "rita")
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
    assert any("Which response is better?" in m.value for m in at.markdown)


def test_no_system_or_study_name_reaches_the_reviewer(store, study, token):
    at = open_page(token)
    at.button(key="vote-A").click().run()
    at.button(key="vote-B").click().run()
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
    at.button(key="vote-A").click().run()
    at.button(key="vote-A").click().run()
    assert not at.exception
    assert "reviewed every pair" in at.success[-1].value
    assert len(store.votes_frame(study["id"])) == 2


def test_a_key_pressed_before_the_pair_is_shown_changes_nothing(store, study, token):
    at = open_page(token)
    at.button(key="vote-A").click().run()
    # The next pair's buttons are not drawn yet when a fast key press arrives: the press comes
    # with the previous pair's button, which must not turn into an edit of the vote just cast.
    at.session_state["review_shown"] = None
    at.button(key="vote-B").click().run()
    assert not at.exception
    assert [v["choice"] for v in store.vote_history(study["id"])] == ["A"]
    assert "before the pair was shown" in at.warning[0].value


@pytest.mark.parametrize("button", ["vote-A", "vote-both_bad", "skip", "undo", "edit-save"])
def test_a_link_revoked_while_the_tab_is_open_records_nothing_more(store, study, token, button):
    at = open_page(token)
    at.button(key="vote-A").click().run()  # one vote, so undo and edit have something to act on
    history = store.vote_history(study["id"])
    assignments = store.open_assignments(store.reviewer("rita")["id"], study["id"])
    # The page is drawn with the buttons live; the admin revokes the link; then the click lands.
    people.revoke_reviewer(store, "rita")
    at.button(key=button).click().run()
    assert not at.exception
    assert store.vote_history(study["id"]) == history
    assert store.open_assignments(store.reviewer("rita")["id"], study["id"]) == assignments
    assert "revoked" in at.error[0].value and not at.button
