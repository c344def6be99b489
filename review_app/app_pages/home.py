"""Workspace overview for admins and signers: eval sets, systems and studies with their counts."""

import pandas as pd
import streamlit as st

from review_app import ui
from review_app.services import workspace

store = ui.get_store()
actor = ui.signed_in(store, "home")

st.title("Workspace")
summary = workspace.workspace_summary(store)
if not summary["studies"]:
    st.info(
        "No study yet. Upload model outputs (Upload data), then create one on the Studies screen "
        "(or `review-app import outputs` and `review-app study create`)."
    )
for study in summary["studies"]:
    st.subheader(f"Study: {ui.plain(study['name'])}")
    cols = st.columns(5)
    cols[0].metric("Pairs", study["pairs"])
    cols[1].metric("Votes", study["votes"])
    cols[2].metric("Reviewers", study["reviewers"])
    cols[3].metric("Judge runs", study["judge_runs"])
    cols[4].metric("Verdicts", study["verdicts"])
    st.caption(
        f"Eval set **{ui.plain(study['eval_set'])}** · "
        f"candidate **{ui.plain(study['candidate'] or '(not named)')}** · "
        f"comparisons: {ui.plain(', '.join(study['comparisons']))} · "
        f"{study['reviews_per_pair']} reviews per pair"
    )
st.subheader("Eval sets")
st.dataframe(pd.DataFrame(summary["eval_sets"]), hide_index=True)
st.caption(f"Systems: {ui.plain(', '.join(summary['systems']) or 'none')}")
