"""Judge runs (admins): choose study, rubric and judge; see the calls and estimated cost before
starting; watch progress; read failures with the judge's raw answer; totals per run."""

import pandas as pd
import streamlit as st

from review_app import baselines, ui
from review_app.errors import ReviewAppError
from review_app.services import judging

store = ui.get_store()
user = ui.current_user(store)
ui.require_role(user, "admin")
settings = ui.settings()

st.title("Judge runs")
study = ui.study_picker(store)
if study is None:
    st.stop()

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
c1, c2, c3 = st.columns(3)
concurrency = c1.number_input("Concurrency", 1, 256, 8, key="judge_concurrency")
rpm = c2.number_input("Requests per minute (0 = no limit)", 0, 10**7, 0, key="judge_rpm")
tpm = c3.number_input("Tokens per minute (0 = no limit)", 0, 10**9, 0, key="judge_tpm")


def make_plan():
    try:
        return judging.plan_judge_run(
            store, settings, study["name"], rubric_choice.path, judge, both_orders
        )
    except ReviewAppError as exc:
        st.error(ui.plain(exc))
        return None


def show_plan(plan) -> None:
    # Drawn into one placeholder so the figures can be redrawn once a run has finished.
    with plan_box.container():
        m1, m2, m3 = st.columns(3)
        m1.metric("Calls to send", plan.n_missing)
        m2.metric("Already stored", f"{plan.n_stored} / {plan.n_total}")
        cost = plan.estimate.cost
        m3.metric("Estimated cost", "unknown" if cost is None else f"${cost:.4f}")
        st.caption(ui.plain(plan.line()))


plan = make_plan()
if plan is not None:
    plan_box = st.empty()
    show_plan(plan)
    start = st.button(
        "Start run" if plan.n_stored == 0 else "Resume run",
        key="judge_start",
        type="primary",
        disabled=plan.n_missing == 0,
    )
    if start:
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
                store,
                settings,
                study["name"],
                rubric_choice.path,
                judge,
                both_orders=both_orders,
                concurrency=int(concurrency),
                rpm=int(rpm) or None,
                tpm=int(tpm) or None,
                on_progress=show,
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

st.subheader("Runs")
runs = judging.judge_runs(store, settings, study["name"])
if not runs:
    st.info("No judge run on this study yet.")
else:
    table = pd.DataFrame(runs)
    table["cost"] = table["cost"].map(lambda c: "unknown" if c is None else f"${c:.4f}")
    columns = ["id", "label", "status", "verdicts", "parsed", "unparsed", "missing"]
    columns += ["tokens_in", "tokens_out", "cost", "mean_latency_ms", "attempts", "finished_at"]
    labels = {
        "id": "Run",
        "label": "Judge",
        "status": "Status",
        "verdicts": "Verdicts",
        "parsed": "Parsed",
        "unparsed": "Unparsed",
        "missing": "Missing",
        "tokens_in": "Tokens in",
        "tokens_out": "Tokens out",
        "cost": "Cost",
        "attempts": "Attempts",
        "finished_at": "Finished",
    }
    config = {name: st.column_config.Column(label) for name, label in labels.items()}
    config["mean_latency_ms"] = st.column_config.NumberColumn("Mean latency (ms)", format="%.0f")
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
