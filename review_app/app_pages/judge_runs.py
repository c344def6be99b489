"""Judge runs (admins): choose study, rubric and judge; see the calls and estimated cost before
starting; watch progress, or send the run as provider batches and check or cancel them; read
failures with the judge's raw answer; totals per run; run the deterministic graders."""

import pandas as pd
import streamlit as st

from review_app import baselines, ui
from review_app.errors import ReviewAppError
from review_app.services import grading, judging, rubric_iteration

store = ui.get_store()
actor = ui.signed_in(store, "judge")
settings = ui.settings()

st.title("Judge runs")
ctx = ui.study_context(store, actor, settings)
if ctx is None:
    st.stop()
study = ctx.study

choices = judging.available_rubrics(settings)
for invalid in (c for c in choices if c.error):
    st.warning(
        f"Rubric file {ui.plain(invalid.path.name)} cannot be used: {ui.plain(invalid.error)}"
    )
rubrics = {c.title: c for c in choices if c.rubric is not None}
if not rubrics:
    st.error("No valid rubric file found.")
    st.stop()

left, right = st.columns(2)
rubric_title = left.selectbox("Rubric", list(rubrics), key="judge_rubric")
rubric_choice = rubrics[rubric_title]
left.caption(ui.plain(rubric_choice.rubric.description))
judge = right.text_input(
    "Judge (provider/model)",
    value=baselines.REFERENCE,
    key="judge_name",
    help="openai/MODEL, anthropic/MODEL (keys from OPENAI_API_KEY / ANTHROPIC_API_KEY; "
    "OPENAI_BASE_URL for an OpenAI-compatible server), or "
    + ", ".join(baselines.label(name) for name in baselines.BASELINES)
    + ".",
).strip()
both_orders = right.checkbox(
    "Judge both orders", value=True, key="judge_both_orders", help="Unticked: one seeded order."
)
batch = right.checkbox(
    "Batch: cheaper, slower",
    value=False,
    key="judge_batch",
    help="Send the calls through the provider's batch API (openai/ and anthropic/ judges) at half "
    "the price. Answers come back within 24 hours: check the batches below to collect them.",
)
has_split = rubric_iteration.split_summary(store, study["name"]) is not None
JUDGE_SPLITS = {
    "all": "all comparisons",
    "dev": "dev (to choose a rubric on)",
    "test": "test (to confirm a chosen rubric)",
}
split = right.radio(
    "Comparisons to judge",
    list(JUDGE_SPLITS),
    index=0,
    horizontal=True,
    format_func=JUDGE_SPLITS.get,
    key=f"judge_split_{study['id']}",
    disabled=not has_split,
    help="Judge only one part of the study's dev/test split: iterate on dev, then judge test "
    "once with the chosen rubric."
    if has_split
    else "This study has no dev/test split. An admin makes one on the Calibration screen "
    "(or with `review-app calibrate split`).",
)
if not has_split:
    split = "all"
    right.caption(
        "No dev/test split on this study: every comparison is judged. Make a split on the "
        "Calibration screen to judge dev and test separately."
    )
if not batch:
    c1, c2, c3 = st.columns(3)
    concurrency = c1.number_input("Concurrency", 1, 256, 8, key="judge_concurrency")
    rpm = c2.number_input("Requests per minute (0 = no limit)", 0, 10**7, 0, key="judge_rpm")
    tpm = c3.number_input("Tokens per minute (0 = no limit)", 0, 10**9, 0, key="judge_tpm")


def make_plan():
    try:
        return judging.plan_judge_run(
            store,
            settings,
            study["name"],
            rubric_choice.path,
            judge,
            both_orders,
            batch=batch,
            split=split,
        )
    except ReviewAppError as exc:
        st.error(ui.plain(exc))
        return None


def show_batch_outcome(outcome) -> None:
    line = ui.plain(outcome.line())
    if outcome.status == "complete":
        st.success(line)
    elif outcome.status in ("batched", "cancelling"):
        st.info(line + ". Check the batches below to collect the answers.")
    else:
        st.warning(line + ". Send the run again to resend the calls without an answer.")
    for failure in outcome.failures[:20]:
        st.text(failure)


def show_plan(plan) -> None:
    # Drawn into one placeholder so the figures can be redrawn once a run has finished.
    with plan_box.container():
        m1, m2, m3 = st.columns(3)
        m1.metric("Calls to send", plan.n_missing)
        m2.metric("Already stored", f"{plan.n_stored} / {plan.n_total}")
        cost = plan.estimate.cost
        m3.metric("Estimated cost", "unknown" if cost is None else f"${cost:.4f}")
        if plan.n_in_batches:
            st.caption(f"{plan.n_in_batches} calls are waiting in open batches (below).")
        st.caption(ui.plain(plan.line()))


plan = make_plan()
if plan is not None:
    plan_box = st.empty()
    show_plan(plan)
    if batch:
        label = "Send batch"
    else:
        label = "Start run" if plan.n_stored == 0 else "Resume run"
    reason = ""
    if ctx.lock.locked and plan.n_missing:
        reason = st.text_input(
            "Reason (the thresholds are locked: this run is listed in the report as a deviation)",
            key="judge_reason",
        )
    start = st.button(label, key="judge_start", type="primary", disabled=plan.n_missing == 0)
    if start and batch:
        try:
            outcome = judging.start_batch_run(
                ctx,
                rubric_choice.path,
                judge,
                both_orders=both_orders,
                wait=False,
                split=split,
                reason=reason,
            )
        except ReviewAppError as exc:
            st.error(ui.plain(exc))
        else:
            show_batch_outcome(outcome)
            plan = make_plan()
            if plan is not None:
                show_plan(plan)
    elif start:
        bar = st.progress(0.0, text="starting")

        def show(progress) -> None:
            fraction = progress.done / progress.total if progress.total else 1.0
            bar.progress(
                fraction,
                text=f"{progress.done}/{progress.total} calls · {progress.unparsed} unparsed · "
                f"{progress.failed} failed",
            )

        try:
            outcome = judging.start_judge_run(
                ctx,
                rubric_choice.path,
                judge,
                both_orders=both_orders,
                concurrency=int(concurrency),
                rpm=int(rpm) or None,
                tpm=int(tpm) or None,
                on_progress=show,
                split=split,
                reason=reason,
            )
        except ReviewAppError as exc:
            st.error(ui.plain(exc))
        else:
            if outcome.status == "complete":
                st.success(ui.plain(outcome.line()))
            else:
                st.warning(
                    ui.plain(outcome.line())
                    + ". Start the run again to send only the failed calls."
                )
                for failure in outcome.failures[:20]:
                    st.text(failure)
            plan = make_plan()
            if plan is not None:
                show_plan(plan)

batches = judging.judge_batches(store, study["name"])
if batches:
    st.subheader("Batches")
    open_runs = {
        f"{b['run_id']}: {b['label']}": b["run_id"] for b in batches if b["state"] != "collected"
    }
    if open_runs:
        b1, b2, b3 = st.columns([2, 1, 1])
        picked_run = b1.selectbox("Run with open batches", list(open_runs), key="judge_batch_run")
        refresh = b2.button("Check batches", key="judge_batch_refresh")
        cancel = b3.button("Cancel batches", key="judge_batch_cancel")
        if refresh or cancel:
            action = judging.cancel_batch_run if cancel else judging.refresh_batch_run
            try:
                outcome = action(store, settings, open_runs[picked_run])
            except ReviewAppError as exc:
                st.error(ui.plain(exc))
            else:
                show_batch_outcome(outcome)
                batches = judging.judge_batches(store, study["name"])
    batch_table = pd.DataFrame(batches)
    batch_columns = {
        "run_id": "Run",
        "label": "Judge",
        "batch_id": "Provider batch",
        "state": "State",
        "provider_status": "Provider status",
        "n_requests": "Requests",
        "n_succeeded": "Answered",
        "n_errored": "Failed",
        "error": "Error",
        "sent_at": "Sent",
        "collected_at": "Collected",
    }
    st.dataframe(
        batch_table[list(batch_columns)],
        hide_index=True,
        column_config={k: st.column_config.Column(v) for k, v in batch_columns.items()},
        key="judge_batches_table",
    )

st.subheader("Runs")
runs = judging.judge_runs(store, settings, study["name"])
if not runs:
    st.info("No judge run on this study yet.")
else:
    table = pd.DataFrame(runs)
    table["cost"] = table["cost"].map(lambda c: "unknown" if c is None else f"${c:.4f}")
    # An imported run sends no calls: it has nothing missing, no latency, no attempts and no end.
    # A dash says so (an empty cell is drawn as "None").
    for column in ("missing", "mean_latency_ms", "attempts"):
        table[column] = table[column].map(lambda v: "-" if pd.isna(v) else f"{v:.0f}")
    table["finished_at"] = table["finished_at"].map(
        lambda at: "-" if pd.isna(at) else at[:16].replace("T", " ")
    )
    columns = ["id", "label", "status", "verdicts", "parsed", "unparsed", "missing"]
    columns += ["in_batches", "tokens_in", "tokens_out", "tokens_cached", "cost"]
    columns += ["mean_latency_ms", "attempts", "finished_at"]
    labels = {
        "id": "Run",
        "label": "Judge",
        "status": "Status",
        "verdicts": "Verdicts",
        "parsed": "Parsed",
        "unparsed": "Unparsed",
        "missing": "Missing",
        "in_batches": "In open batches",
        "tokens_in": "Tokens in",
        "tokens_out": "Tokens out",
        "tokens_cached": "Cached tokens in",
        "cost": "Cost",
        "attempts": "Attempts",
        "finished_at": "Finished",
    }
    config = {name: st.column_config.Column(label) for name, label in labels.items()}
    config["mean_latency_ms"] = st.column_config.Column("Mean latency (ms)")
    st.dataframe(table[columns], hide_index=True, column_config=config, key="judge_runs_table")

    st.subheader("Failures")
    failing = {
        f"{r['id']}: {r['label']} ({r['unparsed']} unparsed)": r for r in runs if r["unparsed"]
    }
    if not failing:
        st.caption("Every stored verdict parsed.")
    else:
        picked = st.selectbox("Run", list(failing), key="judge_failures_run")
        for row in judging.judge_run_failures(store, failing[picked]["id"], limit=50):
            title = f"{row['item_key']} · {row['first_system']} first · {row['parse_error']}"
            with st.expander(ui.plain(title)):
                st.caption(
                    f"finish reason {ui.plain(row['finish_reason'])} · {row['attempts']} attempts"
                )
                st.code(row["raw_text"] or "(empty answer)", language=None)

st.subheader("Graders")
st.caption(
    "Deterministic checks of every output of the study's systems (valid JSON, a schema, a "
    "pattern, the length limit...). The lock pins the grader versions run before it; pass rates "
    "show in the report once the thresholds are locked."
)
grader_choices = grading.available_graders()
for invalid in (c for c in grader_choices if c.error):
    st.warning(
        f"Grader file {ui.plain(invalid.path.name)} cannot be used: {ui.plain(invalid.error)}"
    )
valid_graders = {c.title: c for c in grader_choices if c.grader is not None}
if valid_graders:
    locked = ctx.lock.locked
    g1, g2 = st.columns([2, 1])
    grader_title = g1.selectbox("Grader", list(valid_graders), key="grader_file")
    grader_reason = (
        g1.text_input(
            "Reason, if the lock did not pin this grader version (recorded as a deviation)",
            key="grader_reason",
        )
        if locked
        else ""
    )
    if g2.button("Run graders", key="grader_run"):
        try:
            graded = grading.grade(ctx, valid_graders[grader_title].path, grader_reason)
        except ReviewAppError as exc:
            st.error(ui.plain(exc))
        else:
            st.success(ui.plain(graded.line()))
in_force = grading.graders_in_force(ctx)
if in_force:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "grader": g["name"],
                    "version": g["content_hash"][:12],
                    "results": g["n_results"],
                    "pinned by the lock": g["pinned"],
                }
                for g in in_force
            ]
        ),
        hide_index=True,
        key="grader_versions_table",
    )
else:
    st.caption("No grader has run on this study yet.")
