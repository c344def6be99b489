"""What every page shares: the store for this run, who is signed in (from the personal link),
role checks, and the names of the few session-state keys (UI position only; the database is the
truth)."""

from __future__ import annotations

import logging

import streamlit as st

from review_app.errors import Forbidden, UnusableWorkspace
from review_app.safe_markdown import escape_markdown
from review_app.services import people, studies, workspace
from review_app.settings import Settings
from review_app.store import Store

_log = logging.getLogger(__name__)

# Session-state keys, all in one place.
TOKEN = "auth_token"
STUDY = "selected_study"
REVIEW_SLOT = "review_slot"  # bumps after every vote/skip/undo so the next pair gets fresh widgets
REVIEW_SHOWN = "review_shown"  # (assignment id, time it was first shown) for time-per-vote
REVIEW_NOTICE = "review_notice"  # one-line feedback shown above the next pair
FINAL_REVIEW_PICK = "final_review_pick"  # gate: the output of the final-review sample on screen
FINAL_REVIEW_NOTICE = "final_review_notice"  # gate: why the last mark was not recorded
SIGNOFF_DECISION = "signoff_decision"  # gate: approve | reject
SIGNOFF_COMMENT = "signoff_comment"
SIGNOFF_OVERRIDE = "signoff_override"  # the reason for approving a gate that did not pass
SIGNOFF_NOTICE = "signoff_notice"  # (kind, message) of the last sign-off attempt


def settings() -> Settings:
    return Settings.from_env()


def get_store() -> Store:
    """The workspace for this script run; stops the page with one line when this version cannot
    open it (the file's path stays out of the browser)."""
    # A connection per script run: Streamlit may run reruns on different threads.
    try:
        return workspace.open_store(settings())
    except UnusableWorkspace as exc:
        _log.error("%s", exc)
        st.error("The workspace cannot be opened by this version of the app; ask its admin.")
        st.stop()


def _token() -> str | None:
    return st.query_params.get("token") or st.session_state.get(TOKEN)


def current_user(store: Store) -> dict:
    """The signed-in reviewer, from `?token=` (kept in the URL so a reload keeps working);
    stops the page with a refusal when the token is missing, unknown or revoked."""
    token = _token()
    try:
        user = people.authenticate(store, token)
    except Forbidden as exc:
        st.session_state.pop(TOKEN, None)
        st.title("Access denied")
        st.error(plain(exc))
        st.stop()
    st.session_state[TOKEN] = token
    if st.query_params.get("token") != token:
        st.query_params["token"] = token
    return user


def acting_user(store: Store) -> dict:
    """The signed-in reviewer as the workspace knows them at this moment; Forbidden when their
    link was revoked. A widget callback runs before the page is drawn again, holding the user
    read when it was last drawn: it calls this first, so a link revoked (or a role changed) while
    the tab stayed open cannot record one more vote, mark or sign-off."""
    return people.authenticate(store, _token())


def plain(text: object) -> str:
    """`text` escaped for st.markdown, st.caption, st.success, expander labels..., which would
    otherwise render Markdown in user data (an image in a name, prompt or rationale would make
    the browser fetch it)."""
    return escape_markdown(text)


def require_role(user: dict, *roles: str) -> None:
    """Stop the page unless the user has one of `roles`."""
    try:
        people.require_role(user, *roles)
    except Forbidden as exc:
        st.error(plain(exc))
        st.stop()


def study_picker(store: Store, label: str = "Study") -> dict | None:
    """A study selector remembered across pages; None when the workspace has no study."""
    all_studies = studies.list_studies(store)
    if not all_studies:
        st.info("No study yet. Create one with `review-app study create`.")
        return None
    names = [s["name"] for s in all_studies]
    current = st.session_state.get(STUDY)
    index = names.index(current) if current in names else len(names) - 1
    choice = st.selectbox(label, names, index=index, key="study_picker")
    st.session_state[STUDY] = choice
    return next(s for s in all_studies if s["name"] == choice)
