"""The gate (admin, signer): name the candidate, pre-register and lock thresholds, see each pass,
fail or inconclusive, do the final review of a sample of the candidate's outputs, sign off (an
override of a gate that did not pass needs a reason), and download the report."""

import pandas as pd
import streamlit as st

from review_app import auth, baselines, gate, planning, report, ui
from review_app.errors import OutcomesHidden, ReportChanged, ReviewAppError
from review_app.report import format_ci
from review_app.services import decision as decisions
from review_app.services import grading, plans, signoff, studies, thresholds

store = ui.get_store()
actor = ui.signed_in(store, "gate")
settings = ui.settings()

st.title("Gate")
ctx = ui.study_context(store, actor, settings)
if ctx is None:
    st.stop()
study, name = ctx.study, ctx.name
lock = ctx.lock.row
listed = thresholds.list_thresholds(ctx)

comparisons = ctx.data().comparisons
systems = sorted({s for c in comparisons for s in c})
st.subheader("1. Thresholds")
if lock:
    st.caption(
        f"Candidate **{ui.plain(lock['candidate'] or study['candidate'])}**, pinned by the lock."
    )
elif systems:
    current = study["candidate"] if study["candidate"] in systems else systems[0]
    chosen = st.selectbox(
        "Candidate (the system this gate decides on)",
        systems,
        index=systems.index(current),
        key="gate_candidate",
    )
    if chosen != study["candidate"]:
        try:
            studies.set_candidate(ctx, chosen)
            st.rerun()
        except ReviewAppError as exc:
            st.error(ui.plain(exc))
if lock:
    st.success(
        f"Locked by **{ui.plain(lock['locked_by'])}** at {lock['locked_at']} · hash `{lock['content_hash'][:16]}`. "
        "Any change from now on is recorded as a deviation in the report."
    )
    pinned = grading.pinned_graders(lock)
    if pinned:
        st.caption(
            "Graders pinned: "
            + ", ".join(f"{ui.plain(g['name'])} `{g['content_hash'][:12]}`" for g in pinned)
        )
else:
    st.warning(
        "Not locked yet. Outcome numbers (win rates, regressions, the gate result) stay hidden "
        "until the thresholds are locked, so nobody can set the bar after seeing the results."
    )
if listed:
    st.dataframe(
        pd.DataFrame([{"id": t["id"], "threshold": t["description"]} for t in listed]),
        hide_index=True,
    )
else:
    st.info("No thresholds yet: add the pass criteria below, or start from the recommended set.")
    recommended = thresholds.recommended_thresholds(ctx)
    if recommended:
        st.markdown("\n".join(f"- {ui.plain(t.describe())}" for t in recommended))
        if st.button("Add the recommended set", key="gate_recommended"):
            try:
                thresholds.add_recommended_thresholds(ctx)
                st.rerun()
            except ReviewAppError as exc:
                st.error(ui.plain(exc))

judges = ctx.data().judge_order
with st.expander("Add a threshold", expanded=not listed):
    metric = st.selectbox(
        "Metric",
        list(gate.METRICS),
        format_func=lambda m: gate.METRICS[m].label,
        key="gate_metric",
    )
    spec = gate.METRICS[metric]
    st.caption(spec.help)
    params = {}
    cols = st.columns(max(1, len(spec.params)))
    for col, param in zip(cols, spec.params, strict=False):
        with col:
            if param in ("system_a", "system_b"):
                default = comparisons[0][0 if param == "system_a" else 1] if comparisons else None
                params[param] = st.selectbox(
                    param,
                    systems,
                    index=systems.index(default) if default in systems else 0,
                    key=f"gate_param_{param}",
                )
            elif param in ("judge", "baseline", "source"):
                options = (["humans"] if param == "source" else []) + judges
                default = (
                    baselines.REFERENCE if param == "baseline" else options[0] if options else None
                )
                params[param] = st.selectbox(
                    param,
                    options,
                    index=options.index(default) if default in options else 0,
                    key=f"gate_param_{param}",
                )
            elif param == "ties":
                # No default in the rule: the page offers the one that an abstaining judge
                # cannot game first, and the threshold names whichever is chosen.
                params[param] = st.selectbox(
                    param, ["strict", "with", "without"], key="gate_param_ties"
                )
            elif param == "categories":
                categories = studies.study_categories(store, name)
                params[param] = st.multiselect(
                    "categories (empty = all)", categories, key="gate_param_categories"
                )
            elif param == "check":
                checks = grading.check_names(ctx)
                if checks:
                    params[param] = st.selectbox("grader check", checks, key="gate_param_check")
                else:
                    params[param] = st.text_input("grader check", key="gate_param_check")
            elif param == "system":
                params[param] = st.selectbox(
                    param,
                    ["", *systems],
                    format_func=lambda s: s or "the candidate",
                    key="gate_param_system",
                )
            elif param == "category":
                params[param] = st.selectbox(
                    param,
                    ["", *studies.study_categories(store, name)],
                    format_func=lambda c: c or "all",
                    key="gate_param_category",
                )
            elif param == "grader":
                params[param] = st.selectbox(
                    param,
                    ["", *grading.grader_names(ctx)],
                    format_func=lambda g: g or "the one with this check",
                    key="gate_param_grader",
                )
    c1, c2 = st.columns(2)
    comparator = c1.selectbox(
        "Comparator",
        gate.COMPARATORS,
        index=gate.COMPARATORS.index(spec.comparator),
        key="gate_comparator",
    )
    value = c2.number_input("Value", value=float(spec.example), step=0.01, key="gate_value")
    reason = (
        st.text_input("Reason for this deviation (required after the lock)", key="gate_reason")
        if lock
        else ""
    )
    if st.button("Add threshold", key="gate_add"):
        try:
            thresholds.add_threshold(ctx, metric, params, comparator, value, reason)
            st.rerun()
        except ReviewAppError as exc:
            st.error(ui.plain(exc))

if listed:
    with st.expander("Remove a threshold"):
        choice = st.selectbox(
            "Threshold",
            [t["id"] for t in listed],
            format_func=lambda i: next(t["description"] for t in listed if t["id"] == i),
            key="gate_remove_choice",
        )
        remove_reason = st.text_input("Reason", key="gate_remove_reason") if lock else ""
        if st.button("Remove", key="gate_remove"):
            try:
                thresholds.remove_threshold(ctx, choice, remove_reason)
                st.rerun()
            except ReviewAppError as exc:
                st.error(ui.plain(exc))

if not lock and listed:
    # The design's power is shown before the lock is pressed: a study that cannot pass at the
    # expected truth should be re-planned, not locked and then overridden.
    proposal = plans.plan_study(ctx)
    power = proposal.current.power
    show = st.success if power >= planning.TARGET_POWER else st.warning
    show(
        f"Chance that every threshold passes at the expected truth with this design "
        f"({proposal.current.design.describe()}): **{power:.0%}**."
        + (
            " Under 50%: a good candidate would most likely not pass, so locking it takes a "
            "reason, recorded in the report."
            if power < planning.LOCK_POWER_FLOOR
            else ""
        )
    )
    with st.expander("The plan, threshold by threshold"):
        st.caption(
            "Planned from the bars and the study's items alone (no outcome is read): superiority "
            "bars for a truth 0.05 beyond the bar, non-inferiority margins at parity, the final "
            "review at 0.97 acceptable. `review-app plan --expect METRIC=VALUE` plans for another "
            "truth; `review-app study plan` changes the design."
        )
        st.dataframe(
            pd.DataFrame([r.to_json() for r in proposal.current.rows]),
            hide_index=True,
            column_config={
                "power": st.column_config.NumberColumn(format="%.3f"),
                "false_pass": st.column_config.NumberColumn("false pass at the bar", format="%.3f"),
            },
        )
        for line in proposal.conclusion()[1:]:
            st.markdown(ui.plain(line))
    lock_reason = (
        st.text_input(
            "Reason for locking a design under 50% power (recorded in the report)",
            key="gate_lock_reason",
        )
        if power < planning.LOCK_POWER_FLOOR
        else ""
    )
    if ui.confirm_button(
        "Lock thresholds",
        "gate_lock",
        "Lock these thresholds? The lock cannot be undone: from then on outcomes are shown, and "
        "every change to a threshold, the candidate or the plan is a deviation the report lists.",
        primary=True,
    ):
        try:
            thresholds.lock_thresholds(ctx, lock_reason)
            st.rerun()
        except ReviewAppError as exc:
            st.error(ui.plain(exc))

st.subheader("2. Evaluation")
try:
    decision = decisions.evaluate_gate(ctx)
except OutcomesHidden as exc:
    st.info(ui.plain(exc))
    # The steps after it are listed, so the whole path to a decision is in view from the start.
    st.subheader("3. Final human review")
    st.caption(
        "Once the thresholds are locked, a signer reads a sample of the candidate's outputs and "
        "marks each acceptable or not."
    )
    st.subheader("4. Sign-off")
    st.caption(
        "Once the thresholds are locked, a signer approves or rejects the candidate against "
        "them; the signed report records the decision."
    )
    st.stop()


def decided_on(r) -> float | None:
    """The one bound a threshold is decided on: the lower one-sided bound for `>`/`>=`, the
    upper one for `<`/`<=` (at 95%, or at an interim look's sequential boundary)."""
    if r.bounds is None:
        return None
    return r.bounds[0] if r.threshold.comparator in (">", ">=") else r.bounds[1]


# A figure not measured yet (a final review not started, no votes) reads as a dash, never as
# an empty cell the table draws as "None"; the reason below says why.
NOTHING = "—"


def _figure(value: float | None) -> str:
    return NOTHING if value is None else f"{value:.3f}"


table = pd.DataFrame(
    [
        {
            "threshold": r.threshold.describe(),
            "estimate": _figure(r.value),
            "decided-on bound": _figure(decided_on(r)),
            "two-sided 95% CI": format_ci(r.ci, digits=3) if r.ci else NOTHING,
            "items": r.n_items or NOTHING,
            "comparisons": r.n,
            "outcome": r.outcome,
        }
        for r in decision.results
    ]
)
if "items" in table and (table["items"] == NOTHING).any():
    # Counts beside a dash are text (Arrow holds one type per column): the cells Streamlit would
    # draw after failing to convert the column, without the failure and its logged traceback.
    table["items"] = table["items"].astype("string")
banner = {"pass": st.success, "fail": st.error}.get(decision.result, st.warning)
banner(f"Gate {decision.result.upper()}: {decision.summary()}.")
st.caption(
    f"Candidate **{ui.plain(study['candidate'] or '(none)')}**. Each threshold is decided on its "
    f"one-sided 95% bound, on at least {decision.min_items} items; until the planned sample is "
    "in, every threshold is interim (figures so far, nothing decided) and each look at them is "
    "recorded in your name."
)
if decision.plan is not None and decision.plan.power is not None:
    st.caption(
        f"Locked design's chance that every threshold passes at the expected truth: "
        f"**{decision.plan.power:.0%}**."
    )
st.dataframe(
    table,
    hide_index=True,
    column_config={
        # Narrow enough that a phone shows the figures beside it (the rest scrolls sideways).
        "threshold": st.column_config.TextColumn(width="medium"),
    },
)
# Reasons are sentences: listed in full below the table rather than cut off in a cell.
st.markdown(
    "\n".join(
        f"- **{ui.plain(r.threshold.describe())}**: {r.outcome}, {ui.plain(r.reason)}"
        for r in decision.results
    )
)
st.caption(
    "The outcome is decided on the one-sided 95% bound (the lower one for a minimum, the upper "
    "one for a maximum); the two-sided 95% interval beside it is wider, so its end differs. At "
    "an interim look the decided-on bound is moved out to the look's sequential boundary, so "
    "an early decision needs much stronger evidence. "
    "Comparisons count each compared pair once, its votes combined; the Results screen gives "
    "items, comparisons and votes in their own columns."
)
if decision.look is not None and decision.interim:
    look = decision.look
    st.caption(
        f"Sequential design: this is look {look.index} at {look.fraction:.0%} of the plan; a "
        f"threshold concludes early only past the boundary z = {look.boundary:.2f} (alpha spent "
        f"so far {look.alpha_spent:.4f} of 0.05)."
    )
powered = decisions.prediction_powered(ctx, ctx.data())
if powered:
    with st.expander("Prediction-powered win rates (the judge's verdicts on every comparison)"):
        st.caption(ui.plain(report.PPI_NOTE))
        st.dataframe(pd.DataFrame(report.prediction_powered_table(powered)), hide_index=True)
deviations = thresholds.threshold_deviations(ctx)
if deviations:
    st.warning(f"{len(deviations)} change(s) after the lock (shown in the report):")
    st.dataframe(pd.DataFrame(deviations), hide_index=True)

st.subheader("3. Final human review")
sample = signoff.final_review_sample(ctx)
done = sum(1 for s in sample if s["mark"])
st.progress(done / len(sample) if sample else 0.0, text=f"{done} of {len(sample)} reviewed")
if not auth.allowed(actor, "mark the final review"):
    st.caption("Only a signer marks the final-review sample.")
elif sample:
    labels = [
        f"{'✓ ' if s['mark'] and s['mark']['acceptable'] else '✗ ' if s['mark'] else ''}"
        f"{s['item_key']} ({s['category']}){' · judge top' if s['judge_top'] else ''}"
        for s in sample
    ]
    st.session_state.setdefault(
        ui.FINAL_REVIEW_PICK, next((i for i, s in enumerate(sample) if not s["mark"]), 0)
    )
    index = st.selectbox(
        "Output", range(len(sample)), format_func=lambda i: labels[i], key=ui.FINAL_REVIEW_PICK
    )
    item = sample[index]
    # The signer judges the output as reviewers saw it: the same faithful rendering.
    ui.output_styles()
    raw = st.toggle("Show raw text", key="final_review_raw")
    st.markdown("**Prompt**")
    with st.container(border=True):
        ui.show_output(item["prompt"], raw)
    st.markdown(f"**{ui.plain(item['system'])} answered**")
    with st.container(border=True):
        ui.show_output(item["text"], raw)
    comment_key = f"final_review_comment_{index}"
    st.text_input("Comment", key=comment_key)

    def mark(acceptable: bool) -> None:
        # A callback, so the picker can move on to the next unmarked output before it is drawn.
        comment = st.session_state.get(comment_key, "")
        try:
            signoff.record_final_review(
                store, name, ui.acting(store), item["output_id"], acceptable, comment
            )
        except ReviewAppError as exc:
            st.session_state[ui.FINAL_REVIEW_NOTICE] = str(exc)
            return
        marked = {i for i, s in enumerate(sample) if s["mark"]} | {index}
        after = [i for i in range(index + 1, len(sample)) if i not in marked]
        before = [i for i in range(index) if i not in marked]
        st.session_state[ui.FINAL_REVIEW_PICK] = (after or before or [index])[0]

    ok_col, bad_col = st.columns(2)
    ok_col.button("Acceptable", key="final_review_ok", on_click=mark, args=(True,))
    bad_col.button("Not acceptable", key="final_review_bad", on_click=mark, args=(False,))
    refused = st.session_state.pop(ui.FINAL_REVIEW_NOTICE, None)
    if refused:
        st.error(f"Not marked: {ui.plain(refused)}")

st.subheader("4. Sign-off")
signed = signoff.build_report(ctx)
for line in report.override_lines(signed["signoffs"]):
    st.error(ui.plain(line))
for x in signed["exclusions"]:
    st.warning(
        f"Every figure leaves out **{ui.plain(x['reviewer'])}** ({x['n_votes']} votes), excluded "
        f"by {ui.plain(x['decided_by'])} at {x['created_at']}: {ui.plain(x['reason'])}"
    )
for line in report.link_lines(signed):
    st.warning(ui.plain(line))
for s in signed["signoffs"]:
    st.markdown(
        f"**{s['decision'].upper()}** by {ui.plain(s['signer'])} at {s['created_at']} "
        f"({ui.plain(report.link_text(s))}): {ui.plain(s['comment'])}"
    )
if auth.allowed(actor, "sign off"):
    unmet = signoff.approval_blockers(signed)
    st.caption(f"You are signing report `{signed['report_hash'][:8]}`, the one shown here.")

    def sign(seen: dict) -> None:
        # A callback: on success the form is emptied before it is drawn again, so one more
        # click cannot sign twice by accident. `seen` is the report drawn with the button: if
        # anything changed since, nothing is signed and the difference is shown.
        try:
            signoff.sign_off(
                store,
                name,
                ui.acting(store),
                st.session_state[ui.SIGNOFF_DECISION],
                st.session_state.get(ui.SIGNOFF_COMMENT, ""),
                settings,
                override=st.session_state.get(ui.SIGNOFF_OVERRIDE, ""),
                seen=seen,
            )
        except ReportChanged as exc:
            st.session_state[ui.SIGNOFF_NOTICE] = ("changed", exc.differences)
            return
        except ReviewAppError as exc:
            st.session_state[ui.SIGNOFF_NOTICE] = ("error", str(exc))
            return
        st.session_state[ui.SIGNOFF_COMMENT] = ""
        st.session_state[ui.SIGNOFF_OVERRIDE] = ""
        st.session_state[ui.SIGNOFF_NOTICE] = ("success", "Signed: the sign-off is recorded.")

    st.radio("Decision", ["approve", "reject"], horizontal=True, key=ui.SIGNOFF_DECISION)
    st.text_area("Comment (required)", key=ui.SIGNOFF_COMMENT)
    if unmet and st.session_state.get(ui.SIGNOFF_DECISION) == "approve":
        st.warning(
            f"Approving now overrides the gate: {'; '.join(unmet)}. Say why; the reason is "
            "recorded and shown at the top of the report."
        )
        st.text_input("Override reason (required to approve)", key=ui.SIGNOFF_OVERRIDE)
    st.button("Sign", type="primary", key="signoff_submit", on_click=sign, args=(signed,))
    kind, message = st.session_state.pop(ui.SIGNOFF_NOTICE, (None, None))
    if kind == "changed":
        st.error(
            "Not signed: the report changed after you opened it. What changed is below; the page "
            "now shows the new report. Read it, then sign again."
        )
        st.markdown("\n".join(f"- {ui.plain(line)}" for line in message) or "- its audit record")
    elif kind:
        (st.error if kind == "error" else st.success)(ui.plain(message))
else:
    st.caption("Only a signer can approve or reject.")
cols = st.columns(3)
for col, fmt, mime in zip(
    cols, report.REPORT_FORMATS, ("text/markdown", "text/html", "application/json"), strict=True
):
    col.download_button(
        f"Download report ({fmt})",
        report.render_report(signed, fmt),
        file_name=f"report-{name}.{fmt}",
        mime=mime,
        key=f"report_{fmt}",
    )
