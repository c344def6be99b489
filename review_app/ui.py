"""What every page shares: the server's one store, who is signed in (from the personal link),
role checks, and the names of the few session-state keys (UI position only; the database is the
truth)."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import pandas as pd
import streamlit as st

# Streamlit builds its emoji catalog (0.3-0.8 s) the first time an alert's text is not ASCII:
# build it when the app is first loaded, not on an admin's first click on the Gate screen.
import streamlit.emojis  # noqa: F401

from review_app import auth, links, report
from review_app.auth import Actor
from review_app.errors import Forbidden, ReviewAppError, UnusableWorkspace
from review_app.safe_markdown import escape_markdown, render_output
from review_app.services import context, people, rubric_iteration, studies, workspace
from review_app.services.context import StudyContext
from review_app.settings import Settings
from review_app.store import Store

_log = logging.getLogger(__name__)

# Session-state keys, all in one place.
TOKEN = "auth_token"
STUDY = "selected_study"
REVIEW_SLOT = "review_slot"  # bumps after every vote/skip/undo so the next pair gets fresh widgets
REVIEW_SHOWN = "review_shown"  # (assignment id, time it was first shown) for time-per-vote
REVIEW_NOTICE = "review_notice"  # one-line feedback shown above the next pair
REVIEW_TOTAL = "review_total"  # (study id, pairs in the reviewer's share) pinned for the session
REVIEW_DRAFT = "review_draft"  # the turn (REVIEW_SLOT) whose widgets were filled from an undo
FINAL_REVIEW_PICK = "final_review_pick"  # gate: the output of the final-review sample on screen
FINAL_REVIEW_NOTICE = "final_review_notice"  # gate: why the last mark was not recorded
SIGNOFF_DECISION = "signoff_decision"  # gate: approve | reject
SIGNOFF_COMMENT = "signoff_comment"
SIGNOFF_OVERRIDE = "signoff_override"  # the reason for approving a gate that did not pass
SIGNOFF_NOTICE = "signoff_notice"  # (kind, message) of the last sign-off attempt
PEOPLE_ISSUED = (
    "people_issued"  # (name, role, link) just issued on the Reviewers screen, shown once
)
PEOPLE_NOTICE = "people_notice"  # one-line outcome of the last action on the Reviewers screen
ITEMS_TURNED = "items_turned"  # items: the page was turned at the bottom; show its top
CONFIRMING = "confirming"  # the key of the irreversible action waiting for its second click


ASSETS = Path(__file__).resolve().parent / "assets"
_OUTPUT_STYLE = f"<style>{(ASSETS / 'outputs.css').read_text(encoding='utf-8')}</style>"


def confirm_button(
    label: str, key: str, consequence: str, *, primary: bool = False, disabled: bool = False
) -> bool:
    """A button for an action that cannot be undone, acting only on a second, explicit click:
    the first shows `consequence` with "Yes, <label>" (key `<key>_yes`) and "Cancel". Returns
    True on the run the action is confirmed (the plain button is drawn again on that run)."""
    asking = st.session_state.get(CONFIRMING) == key
    # A button's click is in the session state on the run it causes, before it is drawn.
    confirmed = asking and bool(st.session_state.get(f"{key}_yes"))
    if asking and (confirmed or st.session_state.get(f"{key}_cancel")):
        st.session_state[CONFIRMING] = asking = None
    if not asking:
        if st.button(label, key=key, type="primary" if primary else "secondary", disabled=disabled):
            st.session_state[CONFIRMING] = key
            st.rerun()
        return confirmed
    with st.container(border=True, key=f"{key}_confirm"):
        st.warning(consequence)
        yes, no = st.columns(2)
        yes.button(f"Yes, {label[0].lower()}{label[1:]}", key=f"{key}_yes", type="primary")
        no.button("Cancel", key=f"{key}_cancel")
    return False


def settings() -> Settings:
    return Settings.from_env()


def link_base(settings: Settings, screen: str) -> links.LinkBase:
    """The address personal links shown on `screen` start with: the public URL when set, else
    the address this browser reached the app at (so a link copied here opens the app wherever
    it is served: another port, a proxy's host and path)."""
    return links.link_base(settings, links.browser_base(st.context.url, screen))


def link_base_caption(base: links.LinkBase) -> str:
    """Markdown for beside the links a screen issues: which address they start with, and how
    to choose another."""
    # In code, the address reads as text rather than a link to click (a browser would write a
    # backtick in it as %60 anyway).
    url = f"`{base.url.replace('`', '%60')}`"
    if base.source == "public":
        return f"Links start with {url}, the app's public address (`REVIEW_APP_PUBLIC_URL`)."
    where = "the address you opened the app at" if base.source == "browser" else "this server"
    local = " It opens only on this machine." if links.on_this_machine_only(base.url) else ""
    return (
        f"Links start with {url}, {where}.{local} If reviewers reach the app at another "
        "address, set `REVIEW_APP_PUBLIC_URL` (or `serve --public-url`)."
    )


def get_store() -> Store:
    """The store every session of this server shares (thread-safe; see `workspace.shared_store`).
    Stops the page with one line when this version cannot open the workspace (its path stays
    out of the browser; the server log has it)."""
    try:
        return workspace.shared_store(settings())
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
        st.set_page_config(page_title="Access denied")
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


def output_styles() -> None:
    """The styles `show_output` relies on; once per page run, before the first output."""
    st.html(_OUTPUT_STYLE)


def output_html(text: str, raw: bool, extra_class: str = "") -> str:
    """What `show_output` draws, as HTML, for a screen that draws several outputs in one
    element (the review screen: one element per pair instead of a dozen)."""
    if not text.strip():
        return '<div class="review-empty">(empty response)</div>'
    if raw:
        return f'<pre class="review-raw {extra_class}">{html.escape(text)}</pre>'
    return f'<div class="review-output {extra_class}">{render_output(text)}</div>'


def show_output(text: str, raw: bool, extra_class: str = "") -> None:
    """A model output (or prompt) as the model wrote it: the faithful rendering (line breaks,
    JSON/CSV/code verbatim, no raw HTML, nothing remote), or with `raw` the exact characters."""
    if not text.strip():
        st.html('<div class="review-empty">(empty response)</div>')
    elif raw:
        st.code(
            text, language=None, wrap_lines=True, height=360 if text.count("\n") > 15 else "content"
        )
    else:
        st.html(f'<div class="review-output {extra_class}">{render_output(text)}</div>')


def signed_in(store: Store, screen: str) -> Actor:
    """The signed-in person as the Actor this page run acts for; stops the page unless their
    role opens `screen` (auth.ROLE_SCREENS is the one list of who opens what)."""
    user = current_user(store)
    if screen not in auth.ROLE_SCREENS[user["role"]]:
        roles = [r for r in auth.ROLES if screen in auth.ROLE_SCREENS[r]]
        st.error(f"this screen is for {' or '.join(roles)} accounts")
        st.stop()
    return Actor.of(user)


def acting(store: Store) -> Actor:
    """The Actor for a widget callback, authenticated again (see `acting_user`)."""
    return Actor.of(acting_user(store))


def study_context(store: Store, actor: Actor, settings: Settings) -> StudyContext | None:
    """The study chosen in the picker, resolved once for this page run; None without studies."""
    study = study_picker(store)
    if study is None:
        return None
    return context.open_study(store, settings, study["name"], actor)


def study_picker(store: Store, label: str = "Study") -> dict | None:
    """A study selector remembered across pages; None when the workspace has no study."""
    all_studies = studies.list_studies(store)
    if not all_studies:
        st.info("No study yet. An admin creates one on the Studies screen.")
        return None
    names = [s["name"] for s in all_studies]
    current = st.session_state.get(STUDY)
    index = names.index(current) if current in names else len(names) - 1
    choice = st.selectbox(label, names, index=index, key="study_picker")
    st.session_state[STUDY] = choice
    return next(s for s in all_studies if s["name"] == choice)


SPLIT_WORDS = {
    "dev": "dev (to choose a rubric on)",
    "test": "test (a recorded look)",
    "all": "all (includes test: a recorded look)",
}


def split_view(store: Store, study: dict, settings: Settings, screen: str = "calibration") -> str:
    """Which comparisons of a split study a screen shows: dev first, so no one sees test
    agreement by accident; switching to test or all records one look at test (as
    `stats --split test` does), once per switch rather than per redraw."""
    view = st.radio(
        "Comparisons",
        rubric_iteration.VIEW_SPLITS,
        index=0,
        horizontal=True,
        format_func=SPLIT_WORDS.get,
        key=f"{screen}_view_{study['id']}",
        help="Dev is where rubric versions are chosen. Test and all include the held-out test "
        "comparisons: each switch to them is counted as a look at test.",
    )
    seen_key = f"{screen}_view_seen_{study['id']}"
    if view != "dev" and st.session_state.get(seen_key) != view:
        try:
            rubric_iteration.choose_view_split(store, study["name"], view, acting(store), settings)
        except ReviewAppError as exc:
            st.error(plain(exc))
            st.stop()
    st.session_state[seen_key] = view
    return view


def regression_table(rows: list[dict], comparison: bool = True) -> None:
    """The study's one regression table (`gate.regression_table`), drawn alike on the Results
    and Scorecard screens, with the note that says how to read it."""
    st.caption(report.REGRESSION_NOTE)
    st.dataframe(
        pd.DataFrame(report.regression_rows(rows, comparison)),
        hide_index=True,
        column_config={
            "win rate": st.column_config.NumberColumn(format="%.3f"),
            "change (points)": st.column_config.NumberColumn(format="%+.1f"),
        },
    )


# ---- charts ----


def encode(field: str, kind: str, **options) -> dict:
    """One Vega-Lite channel: `field` of type `kind` (quantitative, nominal...), every type
    stated so nothing is guessed from an empty column."""
    return {"field": field, "type": kind, **options}


def chart(spec: dict, **datasets: pd.DataFrame) -> None:
    """A Vega-Lite chart as wide as the screen, from a spec whose layers name their data
    (`{"data": {"name": NAME}}`) among `datasets`. A dict spec, not altair: altair builds and
    checks an object per channel against its schema, 0.1-0.2 s per chart on every render."""
    st.vega_lite_chart({**spec, "datasets": datasets}, width="stretch")
