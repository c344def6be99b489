"""The review screen: one blind pair at a time, responses "A" and "B", the study's guidelines,
keyboard shortcuts, undo and editing of earlier votes. Nothing on this page (text, widget keys,
URL) names a system: the page only ever holds an assignment handle and the two texts.

A vote, skip or undo reruns only the pair area (`_pair_area`, a fragment), not the app's shell
and this page's setup: that is most of the server's work per vote."""

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

study = review.review_study(store, user)
if study is None:
    st.title("Review")
    st.info("There is nothing to review yet. Ask the study admin to set up a study.")
    st.stop()


# Streamlit keeps, for the life of a session, its bookkeeping of every widget key it has seen:
# keys that grew with every vote made the server's memory grow with every vote (about 6 kB).
# The keys cycle through this many slots instead: still a new key for each next pair, and a
# tap that reaches the server with a button of a pair long gone cannot meet its key again.
KEY_SLOTS = 16


def _turn() -> int:
    """How many times the pair on screen has changed in this session (read from the session,
    since a fragment run keeps this module's globals)."""
    return st.session_state[ui.REVIEW_SLOT]


def _slot() -> int:
    """The pair's slot, which its widget keys carry: it moves on with every vote, skip and undo,
    so the next pair's widgets are new ones."""
    return _turn() % KEY_SLOTS


def _next_slot(notice: str | None = None) -> None:
    st.session_state[ui.REVIEW_SLOT] = _turn() + 1
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
    slot = _slot()
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
        reviewer_id = ui.acting_user(store)["id"]
        review.skip_pair(store, reviewer_id, assignment_id)
    except ReviewAppError as exc:
        _next_slot(f"Not skipped: {exc}")
        return
    _pin_total(_pinned_total(reviewer_id) - 1)  # a skipped pair never comes back to this reviewer
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


@st.cache_data(max_entries=16, show_spinner=False)
def _guidelines_html(content_hash: str, body: str) -> str:
    # The same version is shown on every pair: render it once per server, not per vote.
    return render_markdown(body)


def _pinned_total(reviewer_id: int) -> int:
    """The reviewer's share of the study, computed when their session first showed it and then
    moved only by their own skips: other reviewers taking pairs must not make it jump."""
    pinned = st.session_state.get(ui.REVIEW_TOTAL)
    if pinned and pinned[0] == study["id"]:
        return pinned[1]
    total = _assigned(store.path, study["id"], reviewer_id)
    _pin_total(total)
    return total


def _pin_total(total: int) -> None:
    st.session_state[ui.REVIEW_TOTAL] = (study["id"], total)


def _restore_draft(task: review.ReviewTask, slot: int) -> None:
    """Fill this slot's inputs with what the reviewer had entered before undoing (once, before
    the widgets are drawn, so the widgets start from these values)."""
    if task.draft is None or st.session_state.get(ui.REVIEW_DRAFT) == _turn():
        return
    st.session_state[ui.REVIEW_DRAFT] = _turn()
    for index, name in enumerate(task.criteria):
        for side, score in task.draft.criteria.get(name, {}).items():
            st.session_state[f"score-{slot}-{index}-{side}"] = score
    for flag in task.draft.flags:
        if flag in review.FLAGS:
            st.session_state[f"flag-{slot}-{flag}"] = True
    if task.ask_rationale:
        st.session_state[f"rationale-{slot}"] = task.draft.rationale


def _signed_in() -> dict:
    """The reviewer, checked again on every run of the pair area (a vote reruns only it, not
    the shell that signs people in): a link revoked meanwhile shows no further pair."""
    try:
        return ui.acting_user(store)
    except ReviewAppError as exc:
        st.error(ui.plain(exc))
        st.stop()


st.html(STYLE)
ui.output_styles()


@st.fragment
def _pair_area() -> None:
    """Everything a vote changes: progress, notice, guidelines, the pair, its buttons and the
    reviewer's earlier votes."""
    me = _signed_in()
    slot = _slot()
    try:
        task = review.next_pair(store, settings, me["id"], study["id"])
    except ReviewAppError as exc:  # e.g. the workspace stayed busy: say so, offer to try again
        st.warning(f"The next pair could not be handed to you: {ui.plain(exc)}")
        st.button("Try again", key="retry")
        return
    done = review.votes_done(store, me["id"], study["id"])
    if task is None:
        _pin_total(done)  # the queue ran out: whatever others took is no longer this reviewer's
    total = max(done, _pinned_total(me["id"]))
    _head(done, total, st.session_state.get(ui.REVIEW_NOTICE) or "", slot)
    raw = task is not None and st.toggle("Show raw text", key="raw-text")
    _guidelines(me["id"], slot)
    if task is None:
        st.success("You have reviewed every pair available to you. Thank you!")
        st.button("Undo last vote", key="undo", shortcut="U", on_click=_undo)
    else:
        _pair(task, raw, slot)
    if done:
        _earlier_votes(me["id"], raw)


EARLIER = 50  # how many of the reviewer's latest votes can be edited


def _head(done: int, total: int, notice: str, slot: int) -> None:
    """One element: the heading, the progress, the notice line and the screen's script."""
    left = max(total - done, 0)
    share = 100.0 if not left else round(100 * done / total, 2)
    tone = "refused" if notice.startswith("Not ") else "saved" if notice else ""
    st.html(
        # The page's one H1 (screen readers and the tab outline start here).
        '<div class="review-head"><h1 id="which-response-is-better">Which response is better?'
        f'</h1><div class="review-count" title="{html.escape(LEFT_MEANS)}">'
        f"<b>{done}</b> done · {left} left</div></div>"
        f'<div class="review-progress" role="progressbar" aria-label="Your progress"'
        f' aria-valuemin="0" aria-valuemax="{total}" aria-valuenow="{done}">'
        f'<div class="review-progress-done" style="width: {share}%"></div></div>'
        # The notice line: its height is reserved even when empty, so a notice moves nothing.
        f'<div class="review-notice {tone}" role="status">{html.escape(notice)}</div>'
        + KEY_HELP
        # For every new pair: scroll to the top and keep the keys working (review.js).
        + f"<script>{SCRIPT}\nwindow.reviewScreen({slot});</script>",
        unsafe_allow_javascript=True,
    )


# What "left" counts (the counter's tooltip and the shortcuts panel). Each of the reviewer's
# own votes and skips moves one pair from "left" to "done"; pairs that other reviewers complete
# first leave it only when the reviewer comes back, so it never jumps while they work.
LEFT_MEANS = (
    "Left: pairs you have not been shown yet that still need a review. "
    "Pairs other reviewers complete first leave it, so it can be smaller when you come back."
)


# Session key: (study id, reviewer id, guidelines hash) once the reviewer has voted under them.
VOTED_UNDER = "review_voted_under_guidelines"


def _guidelines(reviewer_id: int, slot: int) -> None:
    guidelines = review.guidelines(store, study["id"])
    if not guidelines:
        return
    # Open until the reviewer has voted under this version; then one click away. Once they
    # have, they always will have (an undo appends a row, it removes none), so the session
    # remembers it instead of asking the workspace on every vote.
    version = (study["id"], reviewer_id, guidelines["content_hash"])
    first_read = st.session_state.get(VOTED_UNDER) != version
    if first_read and review.voted_under_guidelines(
        store, reviewer_id, study["id"], guidelines["content_hash"]
    ):
        st.session_state[VOTED_UNDER] = version
        first_read = False
    with st.expander("Guidelines", expanded=first_read, key=f"guidelines-{slot}"):
        body = _guidelines_html(guidelines["content_hash"], guidelines["body"])
        st.html(f'<div class="review-guidelines">{body}</div>')


def _pair_html(task: review.ReviewTask, raw: bool) -> str:
    """The prompt, the reference answer (when shown) and responses A and B as one element: side
    by side on a wide screen, one above the other on a phone (review.css)."""
    parts = [
        '<p class="review-label"><strong>Prompt</strong></p>',
        f'<div class="review-box">{ui.output_html(task.prompt, raw, "review-prompt")}</div>',
    ]
    if task.reference is not None:
        parts.append(
            '<details class="review-reference"><summary>Reference answer</summary>'
            f'<div class="review-box">{ui.output_html(task.reference, raw)}</div></details>'
        )
    parts.append('<div class="review-sides">')
    for side, text in (("A", task.text_a), ("B", task.text_b)):
        parts.append(
            f'<div class="review-side"><p class="review-label"><strong>Response {side}</strong>'
            f'</p><div class="review-box">{ui.output_html(text, raw)}</div></div>'
        )
    parts.append("</div>")
    return "".join(parts)


def _pair(task: review.ReviewTask, raw: bool, slot: int) -> None:
    shown = st.session_state.get(ui.REVIEW_SHOWN)
    if not shown or shown[0] != task.assignment_id:
        st.session_state[ui.REVIEW_SHOWN] = (task.assignment_id, time.time())
    _restore_draft(task, slot)
    st.html(_pair_html(task, raw))

    if task.criteria:
        st.markdown("**Ratings** (optional; 1 = poor, 5 = excellent)")
        ratings = st.container(key="review-ratings")
        for index, name in enumerate(task.criteria):
            row = ratings.container(
                horizontal=True, vertical_alignment="center", key=f"rating-row-{index}"
            )
            row.markdown(ui.plain(name.capitalize()))
            for side in ("A", "B"):
                row.segmented_control(
                    f"{ui.plain(name.capitalize())} of {side}",
                    SCORES,
                    format_func=lambda score, side=side: (
                        f"{side} {score}" if score == 1 else str(score)
                    ),
                    key=f"score-{slot}-{index}-{side}",
                    label_visibility="collapsed",
                )

    # One row of six on a wide screen; on a phone three to a row, kept in view at the bottom of
    # the screen while the reviewer scrolls the pair and the ratings (review.css).
    buttons = st.container(key="review-votes", horizontal=True, gap="small")
    for choice, key in KEYS:
        buttons.button(
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
    buttons.button(
        "Skip",
        key=f"skip-{slot}",
        shortcut="S",
        width="stretch",
        on_click=_skip,
        args=(task.assignment_id,),
    )
    buttons.button("Undo last vote", key="undo", shortcut="U", width="stretch", on_click=_undo)
    if task.draft is not None:
        st.caption(f"Before undoing you chose: **{review.CHOICES[task.draft.choice]}**.")
    # Keys are for a keyboard: the legend is hidden on a phone (review.css).
    st.html(LEGEND_WITH_RATINGS if task.criteria else LEGEND)

    flags = st.container(horizontal=True, gap="medium")
    for flag, label in review.FLAGS.items():
        flags.checkbox(label, key=f"flag-{slot}-{flag}")
    if task.ask_rationale:
        st.text_area(
            "Why? (optional)",
            key=f"rationale-{slot}",
            placeholder="What made the difference?",
            height=80,
        )


def _legend(rating_keys: str) -> str:
    return (
        '<div class="review-key-legend">Keys: <b>a</b> A is better · <b>b</b> B is better · '
        "<b>t</b> tie · <b>n</b> both bad · <b>s</b> skip · <b>u</b> undo last vote"
        f"{rating_keys} · <b>?</b> all keys. Typing in a text box never triggers them; "
        "<b>Esc</b> leaves the box.</div>"
    )


LEGEND = _legend("")
LEGEND_WITH_RATINGS = _legend(" · <b>1-5</b> rate, in order · <b>Backspace</b> unrate")


def _earlier_votes(reviewer_id: int, raw: bool) -> None:
    # Drawn only while open: closed, it costs a vote nothing (its votes are read when opened).
    # One label whatever the count: a widget's label is part of its identity, and a new
    # identity per vote is more of the session's widget bookkeeping (see KEY_SLOTS).
    box = st.expander("Edit an earlier vote", key="edit-open", on_change="rerun")
    if not box.open:
        return
    with box:
        earlier = review.my_votes(store, reviewer_id, study["id"], EARLIER)
        if not earlier:
            return
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


_pair_area()
