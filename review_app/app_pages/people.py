"""Reviewers (admin): add reviewers, admins and signers and copy their personal links, re-issue a
lost link, and revoke one. A link is shown once: only its hash is stored."""

import pandas as pd
import streamlit as st

from review_app import auth, ui
from review_app.errors import ReviewAppError
from review_app.services import people, studies

store = ui.get_store()
actor = ui.signed_in(store, "people")
settings = ui.settings()
link_base = ui.link_base(settings, "people")


def _add(study: str | None) -> None:
    # Callbacks run before the page is drawn, so the table below already lists the change.
    state = st.session_state
    try:
        added, link = people.add_reviewer(
            store,
            settings,
            state["people_name"],
            state["people_role"],
            study,
            actor=ui.acting(store),
            link_base=link_base,
        )
    except ReviewAppError as exc:
        state[ui.PEOPLE_ISSUED] = None
        state[ui.PEOPLE_NOTICE] = f"Not added: {exc}"
        return
    state[ui.PEOPLE_ISSUED] = (added["name"], added["role"], link)
    state[ui.PEOPLE_NOTICE] = None


def _revoke() -> None:
    name = st.session_state["people_revoke_name"]
    try:
        people.revoke_reviewer(store, name, ui.acting(store))
    except ReviewAppError as exc:
        st.session_state[ui.PEOPLE_NOTICE] = f"Not revoked: {exc}"
        return
    st.session_state[ui.PEOPLE_ISSUED] = None
    st.session_state[ui.PEOPLE_NOTICE] = (
        f"Revoked: {name}'s link no longer works; their votes stay."
    )


st.title("Reviewers")

st.subheader("Add a reviewer or issue a new link")
study_names = [s["name"] for s in studies.list_studies(store)]
with st.container(border=True):
    left, mid, right = st.columns(3)
    left.text_input("Name", key="people_name", placeholder="e.g. maya")
    mid.selectbox("Role", list(auth.ROLES), key="people_role")
    study = right.selectbox(
        "Study",
        study_names,
        index=len(study_names) - 1 if study_names else None,
        key="people_study",
    )
    st.caption(
        "An existing name gets a new link (the old one stops working) and the role chosen here."
    )
    # Said before a link is issued: a link on the wrong address has to be issued again.
    st.caption(ui.link_base_caption(link_base))
    st.button("Add and issue link", type="primary", key="people_add", on_click=_add, args=(study,))

notice = st.session_state.get(ui.PEOPLE_NOTICE)
if notice:
    (st.error if notice.startswith("Not ") else st.success)(ui.plain(notice))
issued = st.session_state.get(ui.PEOPLE_ISSUED)
if issued:
    issued_name, issued_role, link = issued
    st.success(
        f"Personal link for **{ui.plain(issued_name)}** ({issued_role}). Copy it now and send it "
        "to them privately; it is not shown again."
    )
    st.code(link, language=None)

st.subheader("Everyone")
everyone = people.list_reviewers(store)
if not everyone:
    st.info("Nobody yet.")
    st.stop()
st.dataframe(
    pd.DataFrame(
        [
            {
                "name": r["name"],
                "role": r["role"],
                "study": r["study"] or "-",
                "pairs voted": r["n_votes"],
                "link": "revoked"
                if r["revoked_at"]
                else "active"
                if r["has_link"]
                else "none (imported votes)",
                "added": r["created_at"][:16].replace("T", " "),
            }
            for r in everyone
        ]
    ),
    hide_index=True,
)

# Your own link is not offered: revoking it would lock you out mid-session.
active = [
    r["name"] for r in everyone if r["has_link"] and not r["revoked_at"] and r["name"] != actor.name
]
if active:
    st.subheader("Revoke a link")
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    name = left.selectbox("Reviewer", active, key="people_revoke_name")
    with right:
        if ui.confirm_button(
            "Revoke",
            "people_revoke",
            f"Revoke {ui.plain(name)}'s link? It stops working at once and cannot be restored "
            "(their votes stay; issuing a new link gives them a different one).",
        ):
            _revoke()
            st.rerun()
