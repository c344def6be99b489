"""Studies (admin): create a study over an uploaded eval set, and write or replace the reviewer
guidelines of a study (versioned by content hash; every vote records the version in force)."""

import pandas as pd
import streamlit as st

from review_app import ui
from review_app.errors import ReviewAppError
from review_app.safe_markdown import render_markdown
from review_app.services import context, studies, workspace

store = ui.get_store()
actor = ui.signed_in(store, "studies")
settings = ui.settings()

st.title("Studies")
summary = workspace.workspace_summary(store)
if summary["studies"]:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "study": s["name"],
                    "eval set": s["eval_set"],
                    "comparisons": ", ".join(s["comparisons"]),
                    "reviews per pair": s["reviews_per_pair"],
                    "pairs": s["pairs"],
                    "votes": s["votes"],
                }
                for s in summary["studies"]
            ]
        ),
        hide_index=True,
    )

st.subheader("Create a study")
eval_sets = [e["name"] for e in summary["eval_sets"]]
if not eval_sets:
    st.info("Upload model outputs first (Upload data): a study compares outputs of an eval set.")
else:
    with st.container(border=True):
        name = st.text_input("Name", key="study_new_name", placeholder="e.g. release-2")
        eval_set = st.selectbox("Eval set", eval_sets, key="study_new_eval_set")
        # Only systems that answered this eval set can be compared on it.
        systems = studies.eval_set_systems(store, eval_set)
        left, right = st.columns(2)
        candidate = left.selectbox(
            "Candidate (the system the study decides on)",
            systems,
            index=None,
            placeholder="Choose the system you would ship",
            key="study_new_candidate",
        )
        others = right.multiselect(
            "Compared with",
            [s for s in systems if s != candidate],
            key="study_new_others",
        )
        left, mid, right = st.columns(3)
        k = left.number_input(
            "Reviews per pair", min_value=1, max_value=20, value=3, key="study_new_k"
        )
        criteria = mid.text_input(
            "Criteria rated 1-5 (optional)", key="study_new_criteria", placeholder="accuracy, tone"
        )
        show_reference = right.checkbox("Show reviewers the reference", key="study_new_reference")
        share = st.slider(
            "Share of items reviewers see",
            min_value=0.05,
            max_value=1.0,
            value=1.0,
            step=0.05,
            key="study_new_human_share",
            help="A seeded random share of each comparison's items, stratified by category. The "
            "rest are judged only: a threshold that names a calibrated judge corrects its verdicts "
            "on them with the human votes (prediction-powered). 1 = reviewers see every item.",
        )
        guidelines = st.text_area(
            "Guidelines for reviewers (Markdown, optional)",
            key="study_new_guidelines",
            height=160,
            placeholder="# How to judge\n\n- Correct beats polished.\n- ...",
        )
        if st.button("Create study", type="primary", key="study_create"):
            if not others:
                st.error("Not created: choose at least one system to compare the candidate with.")
                st.stop()
            if candidate is None:
                st.error("Not created: choose the candidate, the system the study decides on.")
                st.stop()
            try:
                created = studies.create_study(
                    store,
                    name.strip(),
                    eval_set,
                    [(candidate, other) for other in others],
                    reviews_per_pair=int(k),
                    show_reference=show_reference,
                    criteria=[c.strip() for c in criteria.split(",") if c.strip()],
                    actor=actor,
                    guidelines=guidelines if guidelines.strip() else None,
                    human_share=float(share) if share < 1 else None,
                )
            except ReviewAppError as exc:
                st.error(f"Not created: {ui.plain(exc)}")
            else:
                seen = (
                    f" (reviewers see {created.human_pairs}; the rest are judged only)"
                    if share < 1
                    else ""
                )
                st.success(
                    f"Study {ui.plain(created.name)}: {created.pairs_added} pairs over "
                    f"{ui.plain(created.eval_set)}{seen}; "
                    "add reviewers on the Reviewers screen."
                )

st.subheader("Archive a study")
live = [s["name"] for s in summary["studies"]]
if not live:
    st.caption("No study to archive.")
else:
    st.caption(
        "Archiving hides a study from every list and picker; its record stays. When nothing "
        "was recorded on it (no vote, verdict or lock), its eval set is unfrozen, so a corrected "
        "upload can replace its outputs."
    )
    to_archive = st.selectbox("Study", live, index=None, key="study_archive_name")
    typed = st.text_input(
        "Type the study's name to confirm", key="study_archive_confirm", disabled=not to_archive
    )
    if st.button(
        "Archive study",
        key="study_archive",
        disabled=not to_archive or typed.strip() != to_archive,
    ):
        try:
            archived = studies.archive_study(context.open_study(store, settings, to_archive, actor))
        except ReviewAppError as exc:
            st.error(f"Not archived: {ui.plain(exc)}")
        else:
            st.success(
                f"Study {ui.plain(archived.name)} archived; eval set {ui.plain(archived.eval_set)} "
                + (
                    "is unfrozen."
                    if archived.unfrozen
                    else "stays frozen: votes, verdicts or a lock refer to it."
                )
            )

st.subheader("Guidelines")
study = ui.study_picker(store)
if study is None:
    st.stop()
current = studies.study_guidelines(store, study["name"])
if current:
    st.caption(
        f"In force: version `{current['content_hash']}`, set by {ui.plain(current['set_by'] or '-')} "
        f"at {current['created_at'][:16].replace('T', ' ')} UTC. Reviewers see them above each pair."
    )
    with st.expander("As reviewers see them"):
        st.html(f"<div>{render_markdown(current['body'])}</div>")
else:
    st.caption("No guidelines yet: reviewers judge without written rules.")
history = studies.guidelines_history(store, study["name"])
if len(history) > 1:
    st.dataframe(
        pd.DataFrame(history).rename(columns={"n_votes": "votes cast under it"}), hide_index=True
    )
version = current["content_hash"] if current else "none"
text = st.text_area(
    "Markdown",
    value=current["body"] if current else "",
    height=260,
    key=f"guidelines_text_{study['id']}_{version}",
)
upload = st.file_uploader(
    "Or upload a .md file", type=["md", "markdown", "txt"], key="guidelines_file"
)
if st.button("Put these guidelines in force", type="primary", key="guidelines_save"):
    body = upload.getvalue().decode("utf-8-sig", errors="replace") if upload else text
    try:
        digest, changed = studies.set_guidelines(
            context.open_study(store, settings, study["name"], actor), body
        )
    except ReviewAppError as exc:
        st.error(f"Not changed: {ui.plain(exc)}")
    else:
        if changed:
            st.success(f"Guidelines `{digest}` in force; new votes record this version.")
        else:
            st.info("These guidelines were already in force; nothing changed.")
