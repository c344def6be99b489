"""Disagreement browser (admin): comparisons where a judge differs from the human majority or
from itself across orders, with both outputs, the votes and the judge's reasons. Systems are A
and B until the study's thresholds are locked."""

import pandas as pd
import streamlit as st

from review_app import baselines, ui
from review_app.services import (
    calibration,
    context,
    disagreements,
    rubric_iteration,
    workspace,
)
from review_app.settings import Settings

store = ui.get_store()
actor = ui.signed_in(store, "disagreements")

st.title("Disagreements")
study = ui.study_picker(store)
if study is None:
    st.stop()
visible = context.lock_of(store, study).visible
st.caption(
    "Only admins can open this screen. "
    + (
        "System names are shown: the study's thresholds are locked."
        if visible
        else "Until the thresholds are locked each pair's systems are written as A and B, in a "
        "random orientation per pair, and the texts, categories and exact lengths are hidden: "
        "agreement shows, which system is preferred does not. Imported judges and judges that "
        "favour one system on more than 90% of comparisons are left out until the lock."
    )
)


@st.cache_data(ttl=600, max_entries=4, show_spinner="Finding disagreements...")
def load_disagreements(
    study: str, version: str, visible: bool, settings: Settings, split: str
) -> pd.DataFrame:
    """Every disagreement for one data version; filters apply to it without reloading."""
    return disagreements.disagreements(
        workspace.shared_store(settings), study, settings=settings, split=split
    )


settings = ui.settings()
has_split = rubric_iteration.split_summary(store, study["name"]) is not None
view = ui.split_view(store, study, settings, "disagreements") if has_split else "all"
version = calibration.calibration_data_version(store, study["name"])
everything = load_disagreements(study["name"], version, visible, settings, view)
# Only the judges this view can show are offered: before the lock a judge that could stand in
# for the outcomes has no rows, and choosing it by default showed "0 disagreements".
judges = disagreements.judges_shown(store, study["name"], settings)
real_judges = [j for j in judges if not baselines.is_baseline(j)]
categories = sorted(set(everything["category"]))
longest = int(everything["length_difference"].max()) if len(everything) else 0

cols = st.columns(4)
chosen_judges = cols[0].multiselect(
    "Judges", judges, default=real_judges or judges, key="disagreements_judges"
)
chosen_categories = cols[1].multiselect(
    "Categories", categories, default=categories, key="disagreements_categories"
)
kinds = cols[2].multiselect(
    "Disagreeing with",
    list(disagreements.DISAGREEMENT_KINDS),
    default=list(disagreements.DISAGREEMENT_KINDS),
    format_func={"majority": "the human majority", "orders": "itself across orders"}.get,
    key="disagreements_kinds",
)
low, high = cols[3].slider(
    "Length difference (characters)",
    min_value=0,
    max_value=max(longest, 1),
    value=(0, max(longest, 1)),
    key="disagreements_length",
)

filters = disagreements.DisagreementFilters(
    judges=tuple(chosen_judges),
    categories=tuple(chosen_categories),
    kinds=tuple(kinds),
    min_length_difference=low,
    max_length_difference=high,
)
# Empty selections mean "nothing chosen" here, not "all".
if chosen_judges and chosen_categories and kinds:
    frame = disagreements.filter_disagreements(everything, filters)
else:
    frame = everything.iloc[0:0]

st.markdown(f"**{len(frame)} disagreements**")
summary_columns = {
    "judge": "judge",
    "item_key": "item",
    "category": "category",
    "reason": "reason",
    "human_majority": "human majority",
    "judge_verdict": "judge verdict",
    "verdict_x_first": "first system shown first",
    "verdict_y_first": "second system shown first",
    "n_votes": "votes",
    "length_difference": "length difference",
}
# A missing value reads as words, not as an empty cell (drawn as "None"): a comparison nobody
# voted on has no majority, a verdict in one order only has no other order.
table = frame[list(summary_columns)].astype(object)
table["human_majority"] = table["human_majority"].map(lambda v: "no votes" if pd.isna(v) else v)
st.dataframe(
    table.where(table.notna(), "-"),
    hide_index=True,
    column_config={k: st.column_config.Column(v) for k, v in summary_columns.items()},
    key="disagreements_table",
)
st.download_button(
    "Download CSV",
    disagreements.disagreements_csv(frame),
    file_name=f"{study['name']}-disagreements.csv",
    mime="text/csv",
    key="disagreements_csv",
)

if len(frame):
    labels = [f"{row.item_key} · {row.judge}" for row in frame.itertuples()]
    picked = st.selectbox(
        "Look at", range(len(frame)), format_func=labels.__getitem__, key="disagreements_row"
    )
    row = frame.iloc[picked]
    p = ui.plain

    def shown(value, missing: str = "-") -> str:
        """A cell as text: an absent value (None, or NaN in the frame) reads as `missing`."""
        return missing if value is None or pd.isna(value) or value == "" else str(value)

    # Before the lock the category reads "(hidden until ...)": separators, not parentheses.
    st.subheader(f"{p(row['item_key'])} · {p(row['category'])} · {p(row['judge'])}")
    st.markdown(
        f"Human majority: **{p(shown(row['human_majority'], 'no votes'))}** · judge: "
        f"**{p(shown(row['judge_verdict']))}** (shown {p(row['system_x'])} first: "
        f"{p(shown(row['verdict_x_first']))}; shown {p(row['system_y'])} first: "
        f"{p(shown(row['verdict_y_first']))}) · {p(row['reason'])}"
    )
    ui.output_styles()
    raw = st.toggle("Show raw text", key="disagreements_raw")
    with st.container(border=True):
        ui.show_output(row["prompt"], raw)
    left, right = st.columns(2)
    for col, side in ((left, "x"), (right, "y")):
        with col:
            length = row["len_" + side]
            # Before the lock lengths are not shown per side (see services.disagreements).
            shown = "" if length is None else f" ({length} characters)"
            st.markdown(f"**{p(row['system_' + side])}**{shown}")
            with st.container(border=True):
                ui.show_output(row["output_" + side], raw)
    st.markdown("**Human votes**")
    st.text(row["votes"] or "no votes")
    st.markdown("**Judge's explanation**")
    for side, title in (("x", row["system_x"]), ("y", row["system_y"])):
        explanation = row[f"explanation_{side}_first"]
        if explanation is not None:
            st.markdown(f"With {p(title)} shown first:")
            st.text(explanation or "(no explanation)")
            with st.expander(f"Raw reply, {p(title)} first"):
                st.code(row[f"raw_{side}_first"] or "", language=None, wrap_lines=True)
    if row["explanation_combined"] is not None:
        st.markdown("Order-combined verdict:")
        st.text(row["explanation_combined"] or "(no explanation)")
