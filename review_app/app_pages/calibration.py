"""Calibration: can a judge stand in for the human reviewers? Every judge beside the human
ceiling and the baselines, with bias, cost, small-n warnings, reviewer agreement and categories."""

import pandas as pd
import streamlit as st

from review_app import auth, stats, ui
from review_app.errors import NotFound, ReviewAppError
from review_app.report import format_ci
from review_app.services import (
    calibration,
    context,
    judging,
    quality,
    rubric_editor,
    rubric_iteration,
)

# Whiskers and reference lines: a mid grey that reads on the light and the dark theme alike.
WHISKER = "#8f9aab"
BIAS_AXIS = "share won (0.5 = no bias)"

store = ui.get_store()
actor = ui.signed_in(store, "calibration")

st.title("Calibration")
settings = ui.settings()
ctx = ui.study_context(store, actor, settings)
if ctx is None:
    st.stop()
study = ctx.study
split = rubric_iteration.split_summary(store, study["name"])
view = ui.split_view(store, study, settings) if split is not None else "all"
# Computed once per data version and shared with the other screens (services.study_data).
with st.spinner("Computing the statistics..."):
    report = calibration.calibration_report(ctx, view, looked_by=None)
overall = report.calibration.overall
humans = overall.humans
shown = {"dev": "Dev comparisons only. ", "test": "Test comparisons only. ", "all": ""}[view]
st.caption(
    f"{shown}{overall.n_comparisons} comparisons, {overall.n_votes} votes "
    f"({humans.n_both_bad} both bad) by {humans.n_reviewers} reviewers. "
    "Agreement is with ties counted, with ties excluded, and strict (a judge's tie, inconsistent "
    "pair or unparsed answer counts against it). Intervals are 95%, resampling whole items "
    "(Wilson intervals for shares). Definitions: docs/statistics.md."
)
excluded = quality.excluded_reviewers(store, study["name"])
if excluded:
    st.caption(
        f"Left out of every figure (excluded on the Reviewer quality screen): "
        f"{', '.join(ui.plain(name) for name in excluded)}."
    )

st.subheader("Human ceiling")
# Two rows of tiles, so no label is cut short, each with its interval in view.
cols = [*st.columns(4), *st.columns(4)[:3]]
for col, (label, estimate) in zip(
    cols,
    [
        ("Strict agreement", humans.agreement_strict),
        ("Agreement w/o ties", humans.agreement_without_ties),
        ("Agreement w/ ties", humans.agreement_with_ties),
        ("Kappa w/o ties", humans.kappa_without_ties),
        ("Fleiss' kappa", humans.fleiss_kappa),
        ("Krippendorff's alpha", humans.krippendorff_alpha),
        ("p_left", humans.p_left),
    ],
    strict=True,
):
    ci = f", 95% CI {format_ci(estimate.ci)}" if estimate.ci else ""
    col.metric(
        label,
        "n/a" if estimate.value is None else f"{estimate.value:.2f}",
        help=f"n = {estimate.n}{ci}",
    )
    col.caption(
        (f"95% CI {format_ci(estimate.ci)} · " if estimate.ci else "no interval yet · ")
        + f"n = {estimate.n}"
    )


def times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def two_decimals(frame: pd.DataFrame) -> dict:
    """Show every fraction column with two decimals (the tables hold full precision)."""
    return {
        column: st.column_config.NumberColumn(format="%.2f")
        for column in frame.columns
        if pd.api.types.is_float_dtype(frame[column])
    }


# ---- display tables (the report holds full precision; these choose what a reader sees) ----


def _ci_text(estimate: stats.Estimate | None) -> str:
    return "" if estimate is None or estimate.ci is None else format_ci(estimate.ci)


def _value(estimate: stats.Estimate | None) -> float | None:
    return None if estimate is None else estimate.value


def _bias(estimate: stats.Estimate | None) -> str:
    """A share whose 95% interval excludes 0.5 is a bias the data shows, not noise."""
    if estimate is None or estimate.value is None:
        return ""
    flag = " · biased" if estimate.ci and not estimate.ci[0] <= 0.5 <= estimate.ci[1] else ""
    return f"{estimate.value:.2f} {_ci_text(estimate)}{flag}"


def judge_table(report: calibration.CalibrationReport) -> pd.DataFrame:
    """One row per judge with its agreement beside the human ceiling, bias, cost and verdict."""
    humans = report.calibration.overall.humans
    rows = []
    for judge in report.calibration.overall.judges:
        info = report.judges.get(judge.judge)
        rows.append(
            {
                "judge": judge.judge,
                "model": info.judge if info else "",
                "rubric": info.rubric if info else "",
                "source": info.source if info else "",
                "vs human ceiling": judge.vs_ceiling.verdict,
                "strict agreement": judge.agreement_strict.value,
                "CI strict": _ci_text(judge.agreement_strict),
                "human ceiling strict": humans.agreement_strict.value,
                "strict minus ceiling": judge.vs_ceiling.diff.value,
                "CI of the difference": _ci_text(judge.vs_ceiling.diff),
                "decisive share": judge.decisive_share.value,
                "agreement w/o ties": judge.agreement_without_ties.value,
                "CI w/o ties": _ci_text(judge.agreement_without_ties),
                "n w/o ties": judge.agreement_without_ties.n,
                "human ceiling w/o ties": humans.agreement_without_ties.value,
                "agreement w/ ties": judge.agreement_with_ties.value,
                "CI w/ ties": _ci_text(judge.agreement_with_ties),
                "n w/ ties": judge.agreement_with_ties.n,
                "human ceiling w/ ties": humans.agreement_with_ties.value,
                "kappa w/o ties": judge.kappa_without_ties.value,
                "kappa w/ ties": judge.kappa_with_ties.value,
                "consistency": _value(judge.consistency),
                "p_first": _bias(judge.p_first),
                "p_longer": _bias(judge.p_longer),
                "humans p_longer": _bias(humans.p_longer),
                "verbosity gap": judge.verbosity_gap.value,
                "CI verbosity gap": _ci_text(judge.verbosity_gap),
                "unparsed": judge.n_unparsed,
                "verdicts": judge.n_verdicts,
                "cost per 1,000": judge.cost_per_1000,
                "verdict": report.assessments[judge.judge].text,
            }
        )
    return pd.DataFrame(rows)


def category_table(report: calibration.CalibrationReport) -> pd.DataFrame:
    """Agreement without ties per category and judge, beside that category's human ceiling."""
    rows = []
    for category, analysis in report.calibration.by_category.items():
        ceiling = analysis.humans.agreement_without_ties
        for judge in analysis.judges:
            estimate = judge.agreement_without_ties
            rows.append(
                {
                    "category": category,
                    "judge": judge.judge,
                    "agreement w/o ties": estimate.value,
                    "CI": _ci_text(estimate),
                    "n": estimate.n,
                    "human ceiling": ceiling.value,
                    "human CI": _ci_text(ceiling),
                    "human n": ceiling.n,
                    "p_longer": judge.p_longer.value,
                }
            )
    return pd.DataFrame(rows)


def reviewer_kappa_table(report: calibration.CalibrationReport) -> pd.DataFrame:
    """Reviewer x reviewer Cohen's kappa, both directions, for pairs with enough shared votes."""
    rows = []
    for entry in report.calibration.overall.humans.reviewer_kappa:
        rows.append({"reviewer": entry.a, "other": entry.b, "kappa": entry.kappa, "n": entry.n})
        rows.append({"reviewer": entry.b, "other": entry.a, "kappa": entry.kappa, "n": entry.n})
    return pd.DataFrame(rows, columns=["reviewer", "other", "kappa", "n"])


def confusion_table(report: calibration.CalibrationReport, judge: str) -> pd.DataFrame:
    """The judge's combined verdicts (columns) against the human majority (rows)."""
    stats_of = report.calibration.overall.judge(judge)
    if stats_of is None:
        raise NotFound(f"no judge named {judge!r} in study {report.study!r}")
    names = ["x (first by name)", "y (second by name)", "tie"]
    return pd.DataFrame(
        stats_of.vs_majority.confusion,
        index=pd.Index([f"humans: {n}" for n in names], name="majority"),
        columns=[f"judge: {n}" for n in names],
    )


def for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """A table as a reader should see it: no column that is empty in every row, and a dash
    where a figure does not exist (never a raw None or nan)."""
    shown = frame.copy()
    for column in list(shown.columns):
        values = shown[column]
        if values.map(
            lambda v: v is None or v == "" or (isinstance(v, float) and pd.isna(v))
        ).all():
            shown = shown.drop(columns=column)
        elif pd.api.types.is_float_dtype(values) and values.isna().any():
            shown[column] = values.map(lambda v: "—" if pd.isna(v) else f"{v:.2f}")
        elif values.dtype == object or pd.api.types.is_string_dtype(values):
            shown[column] = values.map(lambda v: "—" if v is None or v == "" else v)
    return shown


st.subheader("Judges")
table = for_display(judge_table(report))
st.dataframe(
    table,
    hide_index=True,
    column_config={
        **two_decimals(table),
        "cost per 1,000": st.column_config.NumberColumn(format="$%.2f"),
        "verdict": st.column_config.TextColumn(width="large"),
    },
)
for label, assessment in report.assessments.items():
    text = f"**{ui.plain(label)}**: {ui.plain(assessment.text)}"
    (st.success if assessment.ok else st.markdown)(text)
for warning in report.warnings:
    st.warning(ui.plain(warning))

if not table.empty:
    chart_data = pd.DataFrame(
        [
            {
                "judge": j.judge,
                "agreement": j.agreement_without_ties.value,
                "low": j.agreement_without_ties.ci[0] if j.agreement_without_ties.ci else None,
                "high": j.agreement_without_ties.ci[1] if j.agreement_without_ties.ci else None,
            }
            for j in overall.judges
        ]
    ).dropna(subset=["agreement"])
if not table.empty and not chart_data.empty:
    st.subheader("Agreement without ties, against the human ceiling")
    judge_axis = ui.encode("judge", "nominal", sort=None, title=None, axis={"labelLimit": 300})
    scale = {"domain": [0, 1]}
    title = "agreement without ties"
    datasets = {"judges": chart_data}
    layers = [
        {
            "data": {"name": "judges"},
            "mark": {"type": "rule", "color": WHISKER, "strokeWidth": 2},
            "encoding": {
                "x": ui.encode("low", "quantitative", title=title, scale=scale),
                "x2": {"field": "high"},
                "y": judge_axis,
            },
        },
        {
            "data": {"name": "judges"},
            "mark": {"type": "point", "filled": True, "size": 80},
            "encoding": {
                "x": ui.encode("agreement", "quantitative", title=title, scale=scale),
                "y": judge_axis,
                "tooltip": [
                    ui.encode("judge", "nominal"),
                    *(ui.encode(f, "quantitative") for f in ("agreement", "low", "high")),
                ],
            },
        },
    ]
    if humans.agreement_without_ties.ci is not None:
        low, high = humans.agreement_without_ties.ci
        datasets["band"] = pd.DataFrame({"low": [low], "high": [high]})
        layers.insert(
            0,
            {
                "data": {"name": "band"},
                "mark": {"type": "rect", "color": "firebrick", "opacity": 0.1},
                "encoding": {
                    "x": ui.encode("low", "quantitative", title=title),
                    "x2": {"field": "high"},
                },
            },
        )
    if humans.agreement_without_ties.value is not None:
        datasets["ceiling"] = pd.DataFrame({"ceiling": [humans.agreement_without_ties.value]})
        layers.append(
            {
                "data": {"name": "ceiling"},
                "mark": {"type": "rule", "color": "firebrick", "strokeDash": [4, 4]},
                "encoding": {"x": ui.encode("ceiling", "quantitative", title=title)},
            }
        )
    ui.chart({"layer": layers}, **datasets)
    st.caption(
        "Dashed line and shaded band: human-human agreement without ties and its 95% interval. "
        "Bars: each judge's 95% interval."
    )

if not table.empty:
    st.subheader("Position and length bias")
    rows = [("humans", "p_first", humans.p_left), ("humans", "p_longer", humans.p_longer)]
    for judge in overall.judges:
        rows += [(judge.judge, "p_first", judge.p_first), (judge.judge, "p_longer", judge.p_longer)]
    bias = pd.DataFrame(
        [
            {
                "judge": who,
                "bias": which,
                "share": est.value,
                "low": est.ci[0] if est.ci else None,
                "high": est.ci[1] if est.ci else None,
            }
            for who, which, est in rows
            if est is not None and est.value is not None
        ]
    )
    if not bias.empty:
        judge_axis = ui.encode("judge", "nominal", sort=None, title=None)
        offset = ui.encode("bias", "nominal")
        bars = {
            "mark": {"type": "bar"},
            "encoding": {
                "x": ui.encode("share", "quantitative", title=BIAS_AXIS, scale={"domain": [0, 1]}),
                "y": {**judge_axis, "axis": {"labelLimit": 300}},
                "color": ui.encode("bias", "nominal"),
                "yOffset": offset,
                "tooltip": [
                    ui.encode("judge", "nominal"),
                    ui.encode("bias", "nominal"),
                    *(ui.encode(f, "quantitative") for f in ("share", "low", "high")),
                ],
            },
        }
        whiskers = {
            "mark": {"type": "rule", "strokeWidth": 1.5},
            "encoding": {
                "x": ui.encode("low", "quantitative", title=BIAS_AXIS),
                "x2": {"field": "high"},
                "y": judge_axis,
                "yOffset": offset,
                "color": {"value": WHISKER},
            },
        }
        half = {
            "data": {"name": "half"},
            "mark": {"type": "rule", "strokeDash": [4, 4], "color": WHISKER},
            "encoding": {"x": ui.encode("x", "quantitative", title=BIAS_AXIS)},
        }
        ui.chart(
            {"data": {"name": "bias"}, "layer": [bars, whiskers, half]},
            bias=bias,
            half=pd.DataFrame({"x": [0.5]}),
        )
        st.caption(
            "0.5 is unbiased; lines are 95% intervals, and an interval that misses 0.5 is marked "
            "'biased' in the judges table. p_first: share won by the output shown first (humans: "
            "shown left). p_longer: share won by the longer output when lengths differ by more "
            "than 30 characters."
        )
if not table.empty and report.length_preference_withheld:
    st.caption(report.LENGTH_PREFERENCE_WITHHELD)

st.subheader("Reviewer x reviewer agreement")
kappas = reviewer_kappa_table(report)
if kappas.empty:
    st.info("No two reviewers share 10 comparisons yet, so there is no kappa matrix.")
else:
    ui.chart(
        {
            "data": {"name": "kappas"},
            "mark": {"type": "rect"},
            "encoding": {
                "x": ui.encode("other", "nominal", title=None, axis={"labelAngle": 0}),
                "y": ui.encode("reviewer", "nominal", title=None),
                "color": ui.encode(
                    "kappa", "quantitative", scale={"domain": [-1, 1], "scheme": "redblue"}
                ),
                "tooltip": [
                    ui.encode("reviewer", "nominal"),
                    ui.encode("other", "nominal"),
                    ui.encode("kappa", "quantitative"),
                    ui.encode("n", "quantitative"),
                ],
            },
        },
        kappas=kappas,
    )
    st.dataframe(kappas, hide_index=True, column_config=two_decimals(kappas))
    st.caption(
        "Cohen's kappa between two reviewers over the comparisons both voted on (at least 10). "
        "A reviewer whose row is near 0 is voting close to at random."
    )

if overall.judges:
    st.subheader("Confusion against the human majority")
    chosen = st.selectbox(
        "Judge", [j.judge for j in overall.judges], key="calibration_confusion_judge"
    )
    if context.lock_of(store, study).visible:
        st.dataframe(confusion_table(report, chosen))
    else:
        # Its rows are the systems in name order: their totals would say which one humans prefer.
        st.info(
            "The confusion table names the systems, so it shows once the thresholds are locked."
        )
    majority = overall.judge(chosen).vs_majority
    if majority.accuracy is not None:
        st.caption(
            f"n = {majority.n}; accuracy {majority.accuracy:.2f} "
            f"{format_ci(majority.accuracy_ci)}, macro F1 {majority.macro_f1:.2f} "
            f"{format_ci(majority.macro_f1_ci)} (95% CIs over items); macro precision "
            f"{majority.macro_precision:.2f}, recall {majority.macro_recall:.2f}."
        )

st.subheader("By category")
categories = category_table(report)
plotted = categories.dropna(subset=["agreement w/o ties"])
if not plotted.empty:
    title = "agreement without ties"
    ceilings = {
        "data": {"name": "ceilings"},
        "mark": {"type": "tick", "color": "firebrick", "thickness": 3, "size": 24},
        "encoding": {
            "x": ui.encode("human ceiling", "quantitative", title=title),
            "y": ui.encode("category", "nominal"),
            "tooltip": [
                ui.encode("category", "nominal"),
                ui.encode("human ceiling", "quantitative"),
            ],
        },
    }
    points = {
        "data": {"name": "categories"},
        "mark": {"type": "point", "filled": True, "size": 70},
        "encoding": {
            "x": ui.encode(
                "agreement w/o ties", "quantitative", title=title, scale={"domain": [0, 1]}
            ),
            "y": ui.encode("category", "nominal", title=None),
            "color": ui.encode("judge", "nominal", sort=None),
            "tooltip": [
                ui.encode("category", "nominal"),
                ui.encode("judge", "nominal"),
                ui.encode("agreement w/o ties", "quantitative"),
                ui.encode("CI", "nominal"),
                ui.encode("n", "quantitative"),
            ],
        },
    }
    ui.chart(
        {"height": {"step": 32}, "layer": [ceilings, points]},
        ceilings=plotted.drop_duplicates("category").dropna(subset=["human ceiling"]),
        categories=plotted,
    )
    st.caption("Red tick: the category's human-human agreement without ties.")
shown_categories = for_display(categories)
st.dataframe(shown_categories, hide_index=True, column_config=two_decimals(shown_categories))

pointwise = calibration.pointwise_scores(ctx, view)
if not pointwise.table.empty:
    st.subheader("Pointwise scores")
    st.dataframe(
        pointwise.table.rename(
            columns={"mean_score": "mean score", "n_comparisons": "comparisons"}
        ),
        hide_index=True,
        column_config={"mean score": st.column_config.NumberColumn(format="%.2f")},
        key="calibration_pointwise",
    )
    st.caption(
        "Each judge's mean score per criterion: a comparison's score is the mean over the judge's "
        "verdicts on it (both orders); a jury's is the mean over its judges' verdicts."
        + (
            ""
            if pointwise.by_system
            else " Both systems are pooled until the thresholds are locked: a mean per system "
            "would say which one the judge prefers."
        )
    )

# ---- rubric iteration: split, versions compared on dev, looks at test, self-preference ----

st.header("Rubric iteration")
if split is None:
    st.info(
        "Split the human-labelled comparisons into dev (to choose a rubric version on) and test "
        "(to confirm it once). The split is recorded once and cannot be redone."
    )
    if auth.allowed(actor, "make the split"):
        with st.form("calibration_split"):
            share = st.number_input(
                "Test share", min_value=0.05, max_value=0.95, value=0.3, step=0.05
            )
            seed = st.number_input("Seed", min_value=0, value=settings.seed, step=1)
            if st.form_submit_button("Split into dev and test"):
                st.session_state[ui.CONFIRMING] = "calibration_split"
                st.session_state["calibration_split_asked"] = (float(share), int(seed))
        asked = st.session_state.get("calibration_split_asked")
        if st.session_state.get(ui.CONFIRMING) == "calibration_split" and asked:
            if ui.confirm_button(
                "Split into dev and test",
                "calibration_split",
                f"Split with test share {asked[0]:g} and seed {asked[1]}? The split is recorded "
                "once and cannot be redone.",
            ):
                try:
                    made = rubric_iteration.make_split(
                        context.open_study(store, settings, study["name"], actor), *asked
                    )
                    # Drawn again from the top, so the tables switch to dev.
                    st.session_state["calibration_split_made"] = made.line()
                    st.rerun()
                except ReviewAppError as exc:
                    st.error(ui.plain(exc))
if split is not None:
    made_line = st.session_state.pop("calibration_split_made", None)
    if made_line:
        st.success(ui.plain(made_line))
    looks = rubric_iteration.test_look_count(store, study["name"])
    made_at = split.created_at[:16].replace("T", " ")
    st.markdown(
        f"**Dev** {split.n_dev} comparisons, **test** {split.n_test} (test share "
        f"{split.test_share:g}, seed {split.seed}, made {made_at} UTC by "
        f"{ui.plain(split.created_by)}). **Test looked at {times(looks)}.**"
    )
    st.caption(
        f"The tables above show the {view} comparisons (the Comparisons choice at the top). "
        "Choose between versions on dev here, then confirm the chosen one on test. Few-shot "
        "examples may come from dev comparisons only (a rubric with an example from test is "
        "refused when judging)."
    )
    real = [j.judge for j in overall.judges if not j.judge.startswith("baseline/")]
    choices = real + [j.judge for j in overall.judges if j.judge.startswith("baseline/")]
    if len(choices) >= 2:
        st.subheader("Compare two versions on dev")
        st.caption(
            "Pick two judges (usually one model with two rubric versions). Agreement is with the "
            "human votes on the dev comparisons both judged, ties counted."
        )
        left, right = st.columns(2)
        version_a = left.selectbox("Version 1", choices, index=0, key="iteration_a")
        version_b = right.selectbox("Version 2", choices, index=1, key="iteration_b")
        if version_a == version_b:
            st.info("Choose two different judges.")
        else:
            try:
                compared = rubric_iteration.compare_versions(
                    store, study["name"], version_a, version_b, "dev", settings, actor
                )
            except ReviewAppError as exc:
                st.error(ui.plain(exc))
                compared = None
        if version_a != version_b and compared is not None:
            c = compared.comparison
            m1, m2, m3 = st.columns(3)
            for col, label, est, signed in (
                (m1, "Version 1 agreement", c.agreement_a, False),
                (m2, "Version 2 agreement", c.agreement_b, False),
                (m3, "Version 2 - version 1", c.difference, True),
            ):
                col.metric(
                    label,
                    "n/a"
                    if est.value is None
                    else (f"{est.value:+.2f}" if signed else f"{est.value:.2f}"),
                    help=f"n = {est.n} votes; 95% CI {format_ci(est.ci) if est.ci else 'n/a'}",
                )
            diff = c.difference
            reading = compared.reading("version 1", "version 2")
            st.markdown(
                f"Difference {'n/a' if diff.value is None else f'{diff.value:+.2f}'}, 95% CI "
                f"{format_ci(diff.ci) if diff.ci else 'n/a'} (paired: items resampled with both "
                f"versions' verdicts; {diff.n} votes): **{reading}**."
            )
            visible = compared.outcomes_visible
            st.caption(
                f"{len(compared.changed)} dev comparisons changed verdict between the versions."
                + (
                    ""
                    if visible
                    else " Until the thresholds are locked the two responses of each comparison "
                    "are written as A and B (in a random order per comparison), so no system "
                    "is named."
                )
            )
            changed = compared.changed.rename(
                columns={
                    "pair_id": "comparison",
                    "item_key": "item",
                    "verdict_a": "version 1 says",
                    "verdict_b": "version 2 says",
                    "human_majority": "human majority",
                    "n_votes": "votes",
                }
            )
            if not visible:
                changed = changed.drop(columns=["system_x", "system_y"])
            st.dataframe(changed, hide_index=True, key="iteration_changed")
    if choices:
        st.subheader("Confirm on test")
        confirmed_judge = st.selectbox("Judge to confirm", choices, key="iteration_confirm")
        if st.button("Look at test agreement (recorded)", key="iteration_look"):
            try:
                found = rubric_iteration.confirm_on_test(
                    store, study["name"], confirmed_judge, actor, settings
                )
                st.success(
                    f"{ui.plain(confirmed_judge)} on test: agreement with ties "
                    f"{stats.format_estimate(found.agreement_with_ties)}, without ties "
                    f"{stats.format_estimate(found.agreement_without_ties)}, strict "
                    f"{stats.format_estimate(found.agreement_strict)}. Test has now been looked at "
                    f"{times(rubric_iteration.test_look_count(store, study['name']))}."
                )
            except ReviewAppError as exc:
                st.error(ui.plain(exc))

# The shifts only (what is shown below): no system's win rate, so no gate evaluation and no look.
preferences = calibration.self_preference_shifts(ctx, view)
if preferences:
    st.subheader("Self-preference")
    for p in preferences:
        if p.shift.value is None:
            continue
        text = (
            f"{ui.plain(p.judge)} vs humans on {ui.plain(p.system)} (same family): win-rate "
            f"shift {p.shift.value:+.2f}, 95% CI {format_ci(p.shift.ci) if p.shift.ci else 'n/a'}"
            f", n = {p.shift.n}"
        )
        (st.warning if p.flagged else st.markdown)(("Flagged: " if p.flagged else "") + text)

# ---- rubric editor ----

st.header("Rubric editor")
rubric_files = [c for c in judging.available_rubrics(settings) if c.rubric is not None]
start = st.selectbox("Start from", [c.path.name for c in rubric_files], key="editor_start")
start_text = next(c.path for c in rubric_files if c.path.name == start).read_text(encoding="utf-8")
# YAML is read by its indentation: the editor shows it in a fixed-width font, lines unwrapped.
st.html(
    "<style>.st-key-editor textarea { font-family: ui-monospace, SFMono-Regular, Menlo, "
    "Consolas, monospace; font-size: .85rem; white-space: pre; overflow-x: auto; }</style>"
)
# The file's text is the box's own starting value, and each file has a box of its own (choosing
# another file starts from that file). Put into the session's state instead, the text went to
# the browser only with the run that put it there: a box the browser first drew from a later
# run started empty, sent itself back empty with the next click, and the editor lost the rubric.
text = st.container(key="editor").text_area(
    "Rubric YAML",
    value=start_text,
    height=400,
    key=f"editor_text:{start}",
    help="Checked each time you apply a change (click outside the box, or Ctrl+Enter).",
)
checked = rubric_editor.check_rubric(text)
if checked.error:
    st.error(ui.plain(checked.error))
else:
    rubric = checked.rubric
    st.success(
        f"Valid: {ui.plain(rubric.name)} v{ui.plain(rubric.version)} ({rubric.mode}), "
        f"hash {rubric.content_hash[:12]}"
    )
    try:
        messages = rubric_editor.sample_prompt(store, study["name"], rubric, settings)
    except ReviewAppError as exc:
        st.warning(ui.plain(exc))
    else:
        with st.expander("Prompt for a sample pair (responses as A and B)"):
            for message in messages:
                st.caption(message["role"])
                st.code(message["content"], language=None, wrap_lines=True)
    if auth.allowed(actor, "save a rubric"):
        st.caption(
            f"Saves {ui.plain(rubric.name)}-v{ui.plain(rubric.version)}.yaml to "
            f"{ui.plain(rubric_editor.editor_folder(settings))}, offered on the Judge runs "
            "screen: change `version:` to save a new version."
        )
    if auth.allowed(actor, "save a rubric") and st.button("Save as new version", key="editor_save"):
        try:
            saved = rubric_editor.save_rubric_version(store, settings, text, ui.acting(store))
            st.success(f"Saved as {ui.plain(saved.name)}; choose it on the Judge runs screen.")
        except ReviewAppError as exc:
            st.error(ui.plain(exc))
