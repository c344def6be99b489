"""The review screen: one blind pair at a time, responses "A" and "B", the study's guidelines,
keyboard shortcuts, undo and editing of earlier votes. Nothing on this page (text, widget keys,
URL) names a system: the page only ever holds an assignment handle and the two texts."""

import html
import json
import time

import streamlit as st

from review_app import ui
from review_app.errors import ReviewAppError
from review_app.safe_markdown import render_markdown
from review_app.services import review

SCORES = [1, 2, 3, 4, 5]
KEYS = (("A", "a"), ("B", "b"), ("tie", "t"), ("both_bad", "n"))
STYLE = f"<style>{(ui.ASSETS / 'review.css').read_text(encoding='utf-8')}</style>"
SCRIPT = (ui.ASSETS / "review.js").read_text(encoding="utf-8")
# Every key of the screen, shown over the page on "?" (review.js opens and closes it).
KEY_HELP = (
    '<div id="review-keys-help" class="review-keys-help" role="dialog" aria-modal="true" '
    'aria-label="Keyboard shortcuts" hidden><div class="review-keys-panel">'
    "<h2>Keyboard shortcuts</h2><dl>"
    + "".join(
        f"<dt><kbd>{k}</kbd></dt><dd>{html.escape(what)}</dd>"
        for k, what in (
            ("a", "A is better"),
            ("b", "B is better"),
            ("t", "Tie"),
            ("n", "Both bad"),
            ("s", "Skip this pair"),
            ("u", "Undo your last vote"),
            ("1-5", "Rate the next unrated criterion"),
            ("Backspace", "Remove the last rating"),
            ("Tab", "Move between the buttons and boxes"),
            ("Esc", "Leave a text box, or close this help"),
            ("?", "Show or hide this help"),
        )
    )
    + "</dl><p>Keys never act while you type in a text box.</p></div></div>"
)

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
    _pin_total(_pinned_total() - 1)  # a skipped pair never comes back to this reviewer
    _next_slot("Skipped; this pair will go to another reviewer.")


def _undo() -> None:
    try:
        undone = review.undo_last_vote(store, settings, ui.acting_user(store)["id"], study["id"])
    except ReviewAppError as exc:
        _next_slot(f"Not undone: {exc}")
        return
    _next_slot(
        "Your last vote was undone; your entries are back." if undone else "Nothing to undo."
    )


def _edit(assignment_id: int, number: int, edit: str, criteria: tuple[str, ...]) -> None:
    choice = st.session_state.get(f"{edit}-choice")
    scores = {}
    for index, name in enumerate(criteria):
        sides = {
            side: st.session_state[f"{edit}-score-{index}-{side}"]
            for side in ("A", "B")
            if st.session_state.get(f"{edit}-score-{index}-{side}") is not None
        }
        if sides:
            scores[name] = sides
    try:
        review.record_vote(
            store,
            settings,
            ui.acting_user(store)["id"],
            assignment_id,
            choice,
            criteria=scores,
            rationale=st.session_state.get(f"{edit}-rationale", ""),
            flags=[f for f in review.FLAGS if st.session_state.get(f"{edit}-flag-{f}")],
        )
    except ReviewAppError as exc:
        st.session_state[ui.REVIEW_NOTICE] = f"Not changed: {exc}"
        return
    st.session_state[ui.REVIEW_NOTICE] = f"Vote {number} changed to: {review.CHOICES[choice]}."


@st.cache_data(ttl=300, max_entries=256, show_spinner=False)
def _assigned(workspace: str, study_id: int, reviewer_id: int) -> int:
    # Reads every vote of the study (about a second at 200,000 votes), so a reload within a
    # few minutes reuses it; the session then pins it (see `_pinned_total`).
    return review.review_progress(store, reviewer_id, study_id).assigned


def _pinned_total() -> int:
    """The reviewer's share of the study, computed when their session first showed it and then
    moved only by their own skips: other reviewers taking pairs must not make it jump."""
    pinned = st.session_state.get(ui.REVIEW_TOTAL)
    if pinned and pinned[0] == study["id"]:
        return pinned[1]
    total = _assigned(store.path, study["id"], user["id"])
    _pin_total(total)
    return total


def _pin_total(total: int) -> None:
    st.session_state[ui.REVIEW_TOTAL] = (study["id"], total)


def _restore_draft(task: review.ReviewTask) -> None:
    """Fill this slot's inputs with what the reviewer had entered before undoing (once, before
    the widgets are drawn, so the widgets start from these values)."""
    if task.draft is None or st.session_state.get(ui.REVIEW_DRAFT) == slot:
        return
    st.session_state[ui.REVIEW_DRAFT] = slot
    for index, name in enumerate(task.criteria):
        for side, score in task.draft.criteria.get(name, {}).items():
            st.session_state[f"score-{slot}-{index}-{side}"] = score
    for flag in task.draft.flags:
        if flag in review.FLAGS:
            st.session_state[f"flag-{slot}-{flag}"] = True
    if task.ask_rationale:
        st.session_state[f"rationale-{slot}"] = task.draft.rationale


try:
    task = review.next_pair(store, settings, user["id"], study["id"])
except ReviewAppError as exc:  # e.g. the workspace stayed busy: say so, offer to try again
    st.warning(f"The next pair could not be handed to you: {ui.plain(exc)}")
    st.button("Try again", key="retry")
    st.stop()
done = review.votes_done(store, user["id"], study["id"])
if task is None:
    _pin_total(done)  # the queue ran out: whatever others took is no longer this reviewer's
total = max(done, _pinned_total())
st.html(STYLE)
ui.output_styles()

head, counter = st.columns([4, 1], vertical_alignment="bottom")
# The page's one H1 (screen readers and the tab outline start here), sized like a heading.
head.markdown("# Which response is better?")
counter.markdown(
    f"<div style='text-align:right'><b>{done}</b> of {total} done</div>",
    unsafe_allow_html=True,
)
if total:
    st.progress(min(done / total, 1.0))
notice = st.session_state.get(ui.REVIEW_NOTICE) or ""
tone = "refused" if notice.startswith("Not ") else "saved" if notice else ""
notice_column, raw_column = st.columns([3, 1], vertical_alignment="center")
# One element, always drawn: the notice line (its height is reserved even when empty) and the
# script that, for every new pair, scrolls to the top and keeps the keys working.
notice_column.html(
    f'<div class="review-notice {tone}" role="status">{html.escape(notice)}</div>'
    + KEY_HELP
    + f"<script>{SCRIPT}\nwindow.reviewScreen({slot});</script>",
    unsafe_allow_javascript=True,
)
raw = task is not None and raw_column.toggle("Show raw text", key="raw-text")

guidelines = review.guidelines(store, study["id"])
if guidelines:
    # Open until the reviewer has voted under this version; then one click away.
    first_read = not review.voted_under_guidelines(
        store, user["id"], study["id"], guidelines["content_hash"]
    )
    with st.expander("Guidelines", expanded=first_read, key=f"guidelines-{slot}"):
        st.html(f'<div class="review-guidelines">{render_markdown(guidelines["body"])}</div>')

if task is None:
    st.success("You have reviewed every pair available to you. Thank you!")
    st.button("Undo last vote", key="undo", shortcut="U", on_click=_undo)
else:
    shown = st.session_state.get(ui.REVIEW_SHOWN)
    if not shown or shown[0] != task.assignment_id:
        st.session_state[ui.REVIEW_SHOWN] = (task.assignment_id, time.time())
    _restore_draft(task)

    st.markdown("**Prompt**")
    with st.container(border=True):
        ui.show_output(task.prompt, raw, "review-prompt")
    if task.reference is not None:
        with st.expander("Reference answer"):
            ui.show_output(task.reference, raw)

    columns = st.columns(2, gap="medium")
    for column, side, text in ((columns[0], "A", task.text_a), (columns[1], "B", task.text_b)):
        with column:
            st.markdown(f"**Response {side}**")
            with st.container(border=True):
                ui.show_output(text, raw)
    if task.criteria:
        st.markdown("**Ratings** (optional; 1 = poor, 5 = excellent)")
        ratings = st.container(key="review-ratings")
        for index, name in enumerate(task.criteria):
            label, score_a, score_b = ratings.columns([1, 2, 2], vertical_alignment="center")
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

    # Three to a row on a phone instead of six stacked (review.css).
    buttons = st.container(key="review-votes").columns(6)
    for column, (choice, key) in zip(buttons[:4], KEYS, strict=True):
        column.button(
            review.CHOICES[choice],
            # Keys carry the slot: a second tap that reaches the server with the previous pair's
            # button is then that button's, and `_on_screen` refuses it (same for skip).
            key=f"vote-{choice}-{slot}",
            shortcut=key.upper(),
            type="primary" if choice in ("A", "B") else "secondary",
            width="stretch",
            on_click=_vote,
            args=(task.assignment_id, choice, task.criteria),
        )
    buttons[4].button(
        "Skip",
        key=f"skip-{slot}",
        shortcut="S",
        width="stretch",
        on_click=_skip,
        args=(task.assignment_id,),
    )
    buttons[5].button("Undo last vote", key="undo", shortcut="U", width="stretch", on_click=_undo)
    if task.draft is not None:
        st.caption(f"Before undoing you chose: **{review.CHOICES[task.draft.choice]}**.")
    rating_keys = " · **1-5** rate, in order · **Backspace** unrate" if task.criteria else ""
    # Keys are for a keyboard: the legend is hidden on a phone (review.css).
    st.container(key="review-key-legend").caption(
        "Keys: **a** A is better · **b** B is better · **t** tie · **n** both bad · "
        f"**s** skip · **u** undo last vote{rating_keys} · **?** all keys. Typing in a text box "
        "never triggers them; **Esc** leaves the box."
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
        # Widgets are keyed by the vote itself: a number is reused after an undo, and a saved
        # change is a new vote, so each starts from what that vote says.
        edit = f"edit-{picked['vote_id']}"
        st.markdown("**Prompt**")
        with st.container(border=True):
            ui.show_output(picked["prompt"], raw)
        sides = st.columns(2, gap="medium")
        for column, side in ((sides[0], "A"), (sides[1], "B")):
            with column:
                st.markdown(f"**Response {side}**")
                with st.container(border=True):
                    ui.show_output(picked[f"text_{side.lower()}"], raw)
        st.radio(
            "Your choice",
            list(review.CHOICES),
            index=list(review.CHOICES).index(picked["choice"]),
            format_func=review.CHOICES.get,
            horizontal=True,
            key=f"{edit}-choice",
        )
        criteria = json.loads(study["criteria"] or "[]")
        for index, name in enumerate(criteria):
            label, score_a, score_b = st.columns([1, 2, 2], vertical_alignment="center")
            label.markdown(ui.plain(name.capitalize()))
            for column, side in ((score_a, "A"), (score_b, "B")):
                column.segmented_control(
                    f"{ui.plain(name.capitalize())} of {side}",
                    SCORES,
                    default=picked["criteria"].get(name, {}).get(side),
                    format_func=lambda score, side=side: (
                        f"{side} {score}" if score == 1 else str(score)
                    ),
                    key=f"{edit}-score-{index}-{side}",
                    label_visibility="collapsed",
                )
        flag_columns = st.columns(len(review.FLAGS))
        for column, (flag, label) in zip(flag_columns, review.FLAGS.items(), strict=True):
            column.checkbox(label, value=flag in picked["flags"], key=f"{edit}-flag-{flag}")
        st.text_input("Why? (optional)", value=picked["rationale"], key=f"{edit}-rationale")
        st.button(
            "Save change",
            key="edit-save",
            on_click=_edit,
            args=(picked["assignment_id"], number, edit, tuple(criteria)),
        )
