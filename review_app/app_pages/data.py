"""Upload data (admin): model outputs into an eval set, human votes and judge verdicts into a
study, through the same importers as `review-app import` (same formats, same one-line errors,
nothing half-written)."""

import streamlit as st

from review_app import importers, ui
from review_app.errors import ReviewAppError
from review_app.services import data, studies, workspace

store = ui.get_store()
actor = ui.signed_in(store, "data")

st.title("Upload data")
st.caption(
    "CSV (with a header row) or JSONL, one row per output, vote or verdict; for outputs also "
    "AlpacaEval's model_outputs.json. The columns are in the README under *File formats*. "
    "An upload with an error changes nothing."
)

summary = workspace.workspace_summary(store)
eval_sets = [e["name"] for e in summary["eval_sets"]]
study_names = [s["name"] for s in studies.list_studies(store)]
NEW = "(new)"

kind = st.segmented_control(
    "What are you uploading?",
    list(data.UPLOAD_KINDS),
    default="outputs",
    format_func={
        "outputs": "Model outputs",
        "votes": "Human votes",
        "verdicts": "Judge verdicts",
    }.get,
    key="upload_kind",
)
kind = kind or "outputs"
COLUMNS = {
    "outputs": (importers.OUTPUT_COLUMNS, importers.OUTPUT_OPTIONAL),
    "votes": (importers.VOTE_COLUMNS, importers.VOTE_OPTIONAL),
    "verdicts": (importers.VERDICT_COLUMNS, importers.VERDICT_OPTIONAL),
}
required, optional = COLUMNS[kind]
st.caption(
    f"Columns: {', '.join(f'`{c}`' for c in required)}; optional "
    f"{', '.join(f'`{c}`' for c in optional)}."
)

with st.container(border=True):
    types = ["csv", "jsonl", "json"] if kind == "outputs" else ["csv", "jsonl"]
    upload = st.file_uploader("File", type=types, key=f"upload_file_{kind}")
    eval_set, study, replace = None, None, False
    left, right = st.columns(2)
    if kind == "outputs":
        chosen = left.selectbox("Eval set", [*eval_sets, NEW], key="upload_eval_set")
        if chosen == NEW:
            eval_set = right.text_input("New eval set name", key="upload_new_eval_set")
        else:
            eval_set = chosen
        replace = st.checkbox(
            "Replace changed outputs (refused anyway once a study froze the eval set)",
            key="upload_replace",
        )
    else:
        chosen = left.selectbox("Study", [*study_names, NEW], key="upload_study")
        if chosen == NEW:
            study = right.text_input("New study name", key="upload_new_study")
            eval_set = st.selectbox("Over eval set", eval_sets, key="upload_over_eval_set")
        else:
            study = chosen
    submitted = st.button("Import", type="primary", key="upload_submit")

if submitted:
    if upload is None:
        st.error("Choose a file to upload first.")
    else:
        try:
            result = data.import_upload(
                store,
                kind,
                upload.name,
                upload.getvalue(),
                eval_set=eval_set,
                study=study,
                replace=replace,
                actor=actor,
            )
        except ReviewAppError as exc:
            problems = getattr(exc, "problems", None)
            if problems:
                # Every wrong row at once, so one corrected upload can succeed.
                st.error(
                    f"Nothing imported: {len(problems)} problems in {ui.plain(upload.name)}.\n\n"
                    + "\n".join(f"- {ui.plain(p)}" for p in problems)
                )
            else:
                st.error(f"Nothing imported. {ui.plain(exc)}")
        else:
            st.success(f"Imported {ui.plain(result.line())}")

st.subheader("In this workspace")
summary = workspace.workspace_summary(store)  # again: the upload above may have added to it
left, right = st.columns(2)
with left:
    st.markdown("**Eval sets**")
    for es in summary["eval_sets"]:
        frozen = " · frozen" if es["frozen"] else ""
        st.markdown(f"- {ui.plain(es['name'])}: {es['items']} items{frozen}")
    if not summary["eval_sets"]:
        st.caption("None yet.")
with right:
    st.markdown("**Studies**")
    for s in summary["studies"]:
        st.markdown(f"- {ui.plain(s['name'])}: {s['pairs']} pairs, {s['votes']} votes")
    if not summary["studies"]:
        st.caption("None yet: create one on the Studies screen after uploading outputs.")
