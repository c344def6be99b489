"""Reviewer quality (admin): each reviewer's votes, time per vote, agreement with the others'
majority, position preference, "I know which model" and both-bad rates, known-answer accuracy
and flags; excluding a reviewer from the statistics (recorded, reversible); known answers."""

import pandas as pd
import streamlit as st

from review_app import ui
from review_app.auth import Actor
from review_app.errors import ReviewAppError
from review_app.report import format_ci
from review_app.services import calibration, quality, studies, workspace
from review_app.settings import Settings

store = ui.get_store()
actor = ui.signed_in(store, "quality")
settings = ui.settings()

st.title("Reviewer quality")
ctx = ui.study_context(store, actor, settings)
study = ctx.study if ctx else None
if study is None:
    st.stop()
name = study["name"]


@st.cache_data(ttl=600, max_entries=8, show_spinner="Measuring reviewers...")
def load_report(
    study: str, version: str, settings: Settings, looked_by: Actor
) -> quality.QualityReport:
    """The report at one data version (exclusions and known answers are part of it), for one
    person: before the lock their seeing known-answer accuracy is a recorded look."""
    # Its own connection: a cached call may run on another thread than the page's store.
    own_store = workspace.open_store(settings)
    try:
        return quality.reviewer_report(own_store, study, settings, looked_by)
    finally:
        own_store.close()


def _rate(estimate, digits: int = 2) -> str:
    return "—" if estimate.value is None else f"{estimate.value:.{digits}f} (n={estimate.n})"


version = calibration.calibration_data_version(store, name)
report = load_report(name, version, settings, actor)
ceiling = report.ceiling
st.metric(
    "Human ceiling: agreement between reviewers, ties excluded (95% CI)",
    "n/a" if ceiling.value is None else f"{ceiling.value:.3f} {format_ci(ceiling.ci)}",
    help=f"n = {ceiling.n} pairs of votes on {ceiling.items} items; excluded reviewers are left "
    "out. The same figure and interval as on the calibration screen (a bootstrap over items).",
)
if not report.reviewers:
    st.info("No votes yet.")
    st.stop()


def _agreement(estimate) -> str:
    if estimate.value is None:
        return "nobody else voted on the same pairs"
    return f"{estimate.value:.2f} {format_ci(estimate.ci)} n={estimate.n}"


def _seconds(record) -> str:
    if record.median_seconds is None:
        return "imported"
    return f"{record.median_seconds:.0f} s (n={record.n_timed})"


st.dataframe(
    pd.DataFrame(
        [
            {
                "reviewer": r.reviewer + (" (excluded)" if r.excluded else ""),
                "votes": r.n_votes,
                "flags": f"⚠ {len(r.flags)}" if r.flags else "—",
                "median time": _seconds(r),
                "agreement with majority (95% CI)": _agreement(r.agreement),
                "p_left": _rate(r.p_left),
                "knows model": _rate(r.recognized_rate),
                "both bad": _rate(r.both_bad_rate),
                "known answers": _rate(r.known_answer_accuracy),
                "ceiling without": report.ceiling_without[r.reviewer].value,
            }
            for r in report.reviewers
        ]
    ),
    hide_index=True,
    column_config={
        "ceiling without": st.column_config.NumberColumn(
            format="%.3f", help="The human ceiling if this reviewer were excluded"
        )
    },
    key="quality_table",
)
st.caption(
    "Agreement: share of a reviewer's votes equal to the majority of the other (counted) "
    "reviewers on the same comparison, both bad counted as a tie. p_left: share of their "
    "decisive votes that went to the left response. Median time counts votes cast in the app. "
    "Ceiling without: the human ceiling above if this reviewer were excluded. "
    "Definitions: docs/statistics.md."
)
for r in report.reviewers:
    for flag in r.flags:
        st.warning(f"**{ui.plain(r.reviewer)}**: {ui.plain(flag)}")

st.subheader("Exclude or include a reviewer")
st.caption(
    "An excluded reviewer's votes leave every statistic of this study (calibration, the gate, "
    "results, the report), which lists the exclusion. It is recorded with who, when and why, "
    "and can be undone."
)
names = [r.reviewer for r in report.reviewers]
left, right = st.columns([1, 2])
target = left.selectbox("Reviewer", names, key="quality_target")
excluded = next(r.excluded for r in report.reviewers if r.reviewer == target)
reason = right.text_input(
    "Why? (required, recorded)",
    key="quality_reason",
    placeholder="e.g. median 3 s per vote; did not read the responses",
)
if st.button(
    f"Include {ui.plain(target)} again" if excluded else f"Exclude {ui.plain(target)}",
    type="primary",
    key="quality_decide",
):
    decide = quality.include_reviewer if excluded else quality.exclude_reviewer
    try:
        decide(ctx, target, reason)
    except ReviewAppError as exc:
        st.error(f"Nothing changed: {ui.plain(exc)}")
    else:
        st.rerun()
if report.history:
    st.dataframe(
        pd.DataFrame(report.history).assign(
            excluded=lambda f: f["excluded"].map({True: "excluded", False: "included again"})
        ),
        hide_index=True,
        column_config={"excluded": "decision"},
        key="quality_history",
    )

st.subheader("Known answers")
st.caption(
    "Comparisons whose right answer you know. Reviewers meet them blind in their queues like "
    "any other pair; their votes on them measure their accuracy."
)
marked = quality.known_answers(store, name)
if marked:
    st.dataframe(
        pd.DataFrame(marked)[["item_key", "system_x", "system_y", "answer", "set_by"]],
        hide_index=True,
        key="quality_known",
    )
comparisons = studies.study_comparisons(store, name)
items = studies.study_items(store, name)
with st.expander("Mark a known answer", expanded=not marked):
    left, mid, right = st.columns(3)
    item = left.selectbox("Item", items, key="known_item")
    compare = mid.selectbox("Comparison", [f"{a}:{b}" for a, b in comparisons], key="known_compare")
    answers = [*compare.split(":"), "tie", "both_bad"] if compare else []
    answer = right.selectbox("Right answer", answers, key="known_answer")
    mark, remove = st.columns(2)
    if mark.button("Mark", key="known_mark"):
        try:
            quality.set_known_answer(ctx, item, compare, answer)
        except ReviewAppError as exc:
            st.error(f"Not marked: {ui.plain(exc)}")
        else:
            st.rerun()
    if marked and remove.button("Remove this item's known answer", key="known_remove"):
        try:
            quality.remove_known_answer(ctx, item, compare)
        except ReviewAppError as exc:
            st.error(f"Not removed: {ui.plain(exc)}")
        else:
            st.rerun()
