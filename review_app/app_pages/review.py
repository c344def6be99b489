"""The review screen: one blind pair at a time, responses "A" and "B", keyboard shortcuts, undo and
editing of earlier votes. Nothing on this page (text, widget keys, URL) names a system: the page
only ever holds an assignment handle and the two texts."""

import time

import streamlit as st

from review_app import ui
from review_app.errors import ReviewAppError
from review_app.safe_markdown import render_markdown
from review_app.services import review

SCORES = [1, 2, 3, 4, 5]
KEYS = (("A", "a"), ("B", "b"), ("tie", "t"), ("both_bad", "n"))
STYLE = """<style>
.review-output { font-size: 0.95rem; line-height: 1.5; overflow-wrap: anywhere;
  max-height: 46vh; overflow-y: auto; }
.review-prompt { max-height: 20vh; }
.review-output p:last-child { margin-bottom: 0; }
.review-output pre { background: rgba(128,128,128,0.1); padding: 0.6rem; border-radius: 0.4rem;
  overflow-x: auto; white-space: pre; }
.review-output table { border-collapse: collapse; margin: 0.5rem 0; }
.review-output th, .review-output td { border: 1px solid rgba(128,128,128,0.4);
  padding: 0.2rem 0.5rem; }
.review-output h1, .review-output h2, .review-output h3 { font-size: 1.05rem;
  margin: 0.6rem 0 0.3rem; }
.review-empty { color: gray; font-style: italic; }
</style>"""

store = ui.get_store()
user = ui.current_user(store)
settings = ui.settings()
st.session_state.setdefault(ui.REVIEW_SLOT, 0)
slot = st.session_state[ui.REVIEW_SLOT]

study = review.review_study(store, user)
if study is None:
    st.title("Review")
    st.info("There is nothing to review yet. Ask the study admin to set up a study.")
    st.stop()


def _next_slot(notice: str | None = None) -> None:
    st.session_state[ui.REVIEW_SLOT] = slot + 1
    st.session_state[ui.REVIEW_SHOWN] = None
    st.session_state[ui.REVIEW_NOTICE] = notice


def _on_screen(assignment_id: int) -> bool:
    """Whether the button pressed belongs to the pair now on screen. A key pressed while the
    page is still redrawing arrives with the previous pair's button; acting on it would edit
    the vote just cast, so it is ignored instead."""
    shown = st.session_state.get(ui.REVIEW_SHOWN)
    if shown and shown[0] == assignment_id:
        return True
    st.session_state[ui.REVIEW_NOTICE] = "Not saved: that key came before the pair was shown."
    return False


def _vote(assignment_id: int, choice: str, criteria: tuple[str, ...]) -> None:
    if not _on_screen(assignment_id):
        return
    ms_spent = int((time.time() - st.session_state[ui.REVIEW_SHOWN][1]) * 1000)
    scores = {}
    for index, name in enumerate(criteria):
        sides = {}
        for side in ("A", "B"):
            value = st.session_state.get(f"score-{slot}-{index}-{side}")
            if value is not None:
                sides[side] = value
        if sides:
            scores[name] = sides
    flags = [flag for flag in review.FLAGS if st.session_state.get(f"flag-{slot}-{flag}")]
    try:
        review.record_vote(
            store,
            settings,
            ui.acting_user(store)["id"],
            assignment_id,
            choice,
            criteria=scores,
            rationale=st.session_state.get(f"rationale-{slot}", ""),
            flags=flags,
            ms_spent=ms_spent,
        )
    except ReviewAppError as exc:
        _next_slot(f"Not saved: {exc}")
        return
    _next_slot(f"Saved: {review.CHOICES[choice]}.")


def _skip(assignment_id: int) -> None:
    if not _on_screen(assignment_id):
        return
    try:
        review.skip_pair(store, ui.acting_user(store)["id"], assignment_id)
    except ReviewAppError as exc:
        _next_slot(f"Not skipped: {exc}")
        return
    _next_slot("Skipped; this pair will go to another reviewer.")


def _undo() -> None:
    try:
        undone = review.undo_last_vote(store, settings, ui.acting_user(store)["id"], study["id"])
    except ReviewAppError as exc:
        _next_slot(f"Not undone: {exc}")
        return
    _next_slot("Your last vote was undone; vote on it again." if undone else "Nothing to undo.")


def _edit(assignment_id: int, number: int, flags: list[str], criteria: dict) -> None:
    choice = st.session_state.get(f"edit-choice-{number}")
    try:
        review.record_vote(
            store,
            settings,
            ui.acting_user(store)["id"],
            assignment_id,
            choice,
            criteria=criteria,
            rationale=st.session_state.get(f"edit-rationale-{number}", ""),
            flags=flags,
        )
    except ReviewAppError as exc:
        st.session_state[ui.REVIEW_NOTICE] = f"Not changed: {exc}"
        return
    st.session_state[ui.REVIEW_NOTICE] = f"Vote {number} changed to: {review.CHOICES[choice]}."


def _show_text(text: str, raw: bool, extra_class: str = "") -> None:
    if not text.strip():
        st.html('<div class="review-empty">(empty response)</div>')
    elif raw:
        st.code(
            text, language=None, wrap_lines=True, height=360 if text.count("\n") > 15 else "content"
        )
    else:
        st.html(f'<div class="review-output {extra_class}">{render_markdown(text)}</div>')


@st.cache_data(ttl=300, max_entries=256, show_spinner=False)
def _assigned(db_path: str, study_id: int, reviewer_id: int) -> int:
    # Reads every vote of the study; the figure stays put while the reviewer works (each vote
    # moves one pair from "to hand out" to "done"), so a few minutes' cache is faithful.
    return review.review_progress(store, reviewer_id, study_id).assigned


task = review.next_pair(store, settings, user["id"], study["id"])
done = review.votes_done(store, user["id"], study["id"])
assigned = max(done, _assigned(store.path, study["id"], user["id"]))
st.html(STYLE)

head, counter = st.columns([4, 1], vertical_alignment="bottom")
head.markdown("#### Which response is better?")
counter.markdown(
    f"<div style='text-align:right'><b>{done}</b> of {assigned} done</div>",
    unsafe_allow_html=True,
)
if assigned:
    st.progress(min(done / assigned, 1.0))
notice = st.session_state.get(ui.REVIEW_NOTICE)
if notice:
    (st.warning if notice.startswith("Not ") else st.success)(notice)

if task is None:
    st.success("You have reviewed every pair available to you. Thank you!")
    st.button("Undo last vote", key="undo", shortcut="U", on_click=_undo)
else:
    shown = st.session_state.get(ui.REVIEW_SHOWN)
    if not shown or shown[0] != task.assignment_id:
        st.session_state[ui.REVIEW_SHOWN] = (task.assignment_id, time.time())
    raw = st.toggle("Show raw text", key="raw-text")

    st.markdown("**Prompt**")
    with st.container(border=True):
        _show_text(task.prompt, raw, "review-prompt")
    if task.reference is not None:
        with st.expander("Reference answer"):
            _show_text(task.reference, raw)

    columns = st.columns(2, gap="medium")
    for column, side, text in ((columns[0], "A", task.text_a), (columns[1], "B", task.text_b)):
        with column:
            st.markdown(f"**Response {side}**")
            with st.container(border=True):
                _show_text(text, raw)
    if task.criteria:
        st.markdown("**Ratings** (optional; 1 = poor, 5 = excellent)")
        for index, name in enumerate(task.criteria):
            label, score_a, score_b = st.columns([1, 2, 2], vertical_alignment="center")
            label.markdown(ui.plain(name.capitalize()))
            for column, side in ((score_a, "A"), (score_b, "B")):
                column.segmented_control(
                    f"{ui.plain(name.capitalize())} of {side}",
                    SCORES,
                    format_func=lambda score, side=side: (
                        f"{side} {score}" if score == 1 else str(score)
                    ),
                    key=f"score-{slot}-{index}-{side}",
                    label_visibility="collapsed",
                )

    buttons = st.columns(6)
    for column, (choice, key) in zip(buttons[:4], KEYS, strict=True):
        column.button(
            review.CHOICES[choice],
            key=f"vote-{choice}",
            shortcut=key.upper(),
            type="primary" if choice in ("A", "B") else "secondary",
            width="stretch",
            on_click=_vote,
            args=(task.assignment_id, choice, task.criteria),
        )
    buttons[4].button(
        "Skip",
        key="skip",
        shortcut="S",
        width="stretch",
        on_click=_skip,
        args=(task.assignment_id,),
    )
    buttons[5].button("Undo last vote", key="undo", shortcut="U", width="stretch", on_click=_undo)
    st.caption(
        "Keys: **a** A is better · **b** B is better · **t** tie · **n** both bad · "
        "**s** skip · **u** undo last vote. Typing in a text box never triggers them."
    )

    flag_columns = st.columns(len(review.FLAGS))
    for column, (flag, label) in zip(flag_columns, review.FLAGS.items(), strict=True):
        column.checkbox(label, key=f"flag-{slot}-{flag}")
    if task.ask_rationale:
        st.text_area(
            "Why? (optional)",
            key=f"rationale-{slot}",
            placeholder="What made the difference?",
            height=80,
        )

earlier = review.my_votes(store, user["id"], study["id"])
if earlier:
    with st.expander(f"Edit an earlier vote ({len(earlier)})"):
        by_number = {vote["number"]: vote for vote in earlier}
        number = st.selectbox(
            "Vote",
            list(by_number),
            format_func=lambda n: (
                f"{n}. {review.CHOICES[by_number[n]['choice']]} · {by_number[n]['prompt'][:70]}"
            ),
            key="edit-number",
        )
        picked = by_number[number]
        st.text(picked["prompt"])
        st.radio(
            "Your choice",
            list(review.CHOICES),
            index=list(review.CHOICES).index(picked["choice"]),
            format_func=review.CHOICES.get,
            horizontal=True,
            key=f"edit-choice-{number}",
        )
        st.text_input("Why? (optional)", value=picked["rationale"], key=f"edit-rationale-{number}")
        st.button(
            "Save change",
            key="edit-save",
            on_click=_edit,
            args=(picked["assignment_id"], number, picked["flags"], picked["criteria"]),
        )
