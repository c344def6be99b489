"""The ship decision: the gate's evaluation, the results screen, the signer's final review, the
sign-off report and the append-only sign-off. Each reads the study's data once
(`study_data.load`) and passes it on."""

from __future__ import annotations

import json

from review_app import auth, gate, report, stats
from review_app.auth import Actor
from review_app.errors import InputError, NotFound, ReportChanged
from review_app.services import audit, calibration, grading, people, scorecard, study_data
from review_app.services.context import StudyContext, open_study
from review_app.services.decision import (
    evaluate_gate,
    final_review_choice,
    final_review_marks,
    interim_looks,
    locked_inputs,
    prediction_powered,
    regression_table,
)
from review_app.services.early_looks import seen_before_lock
from review_app.services.quality import current_exclusions
from review_app.services.study_data import COMPUTED_BASELINE, StudyData
from review_app.services.thresholds import looks_before_lock
from review_app.settings import Settings
from review_app.store import Store, now_iso

__all__ = [
    "approval_blockers",
    "build_report",
    "final_review_sample",
    "loss_details",
    "record_final_review",
    "sign_off",
    "study_results",
]


def _locked_data(ctx: StudyContext) -> StudyData:
    """The study's data; OutcomesHidden until its thresholds are locked."""
    ctx.lock.require_visible()
    return ctx.data()


def study_results(ctx: StudyContext) -> dict:
    """Everything the results screen shows; OutcomesHidden until the thresholds are locked. It
    shows the gate's outcomes, so before the planned sample is in it is a recorded look."""
    data = _locked_data(ctx)
    evaluate_gate(ctx)
    inputs = locked_inputs(ctx)
    return {
        "candidate": data.candidate,
        "comparisons": data.comparisons,
        "win_rates": inputs.win_rates,
        "category_win_rates": inputs.category_win_rates,
        "regression": regression_table(ctx, data, inputs),
        "prediction_powered": prediction_powered(ctx, data),
        "regression_thresholds": [t for t in ctx.thresholds if t.metric == gate.REGRESSION_METRIC],
        # Once per data version, not on every rerun; from lengths, not texts (a large study's
        # texts take a second to load): `loss_details` reads the texts of the losses drawn.
        "by_length": data.memo(
            "length breakdown",
            lambda: gate.length_breakdown(
                data.pairs.assign(
                    len_prompt=data.pairs["pair_id"].map(ctx.store.gate.prompt_lengths(ctx.id))
                ),
                data.votes,
                data.candidate,
            ),
        ),
        "losses": data.memo(
            "candidate losses",
            # The majority from the study's encoding, which the gate has made already.
            lambda: gate.candidate_losses(
                data.pairs, stats.majority_labels_of(data.encoded), data.candidate
            ),
        ),
        "trend": study_trend(ctx),
    }


def loss_details(ctx: StudyContext, losses: list[dict]) -> list[dict]:
    """Losses of `study_results` with their prompt, both outputs and the rationales of the
    votes the figures count, read for these comparisons only."""
    ctx.lock.require_visible()
    pair_ids = [loss["pair_id"] for loss in losses]
    counted = set(ctx.data().votes["vote_id"])
    rationales = [r for r in ctx.store.gate.vote_rationales(pair_ids) if r["vote_id"] in counted]
    return gate.loss_texts(losses, ctx.store.gate.pair_texts(pair_ids), rationales)


def study_trend(ctx: StudyContext) -> list[dict]:
    """Human win rates of every locked study on the same eval set, oldest first (each study's
    own win rates, as its results screen shows them; no calibration is computed for them)."""
    eval_set_id = ctx.study["eval_set_id"]
    locked = {lock["study_id"] for lock in ctx.store.gate.locks_on_eval_set(eval_set_id)}
    rows = []
    for other in ctx.store.studies.studies():
        if other["eval_set_id"] != eval_set_id or other["id"] not in locked:
            continue
        data = (
            ctx.data() if other["id"] == ctx.id else study_data.load(ctx.store, other, ctx.settings)
        )
        for w in data.win_rates[0]:
            if w.source == gate.HUMANS:
                rows.append(
                    {"study": other["name"], "created_at": other["created_at"]}
                    | report.win_rate_json(w)
                )
    return rows


def final_review_sample(ctx: StudyContext) -> list[dict]:
    """The candidate's outputs the signer reviews (`decision.final_review_choice`: the ones
    the judges rated highest, then a seeded random sample of the rest), with the latest mark of
    each."""
    chosen, top_ids = final_review_choice(ctx)
    marks = {m["output_id"]: m for m in final_review_marks(ctx)}
    candidate = ctx.data().candidate
    return [
        o
        | {
            "system": candidate,
            "judge_top": o["output_id"] in top_ids,
            "mark": marks.get(o["output_id"]),
        }
        for o in chosen
    ]


def record_final_review(
    store: Store,
    study: str,
    signer: Actor,
    output_id: int,
    acceptable: bool,
    comment: str = "",
    settings: Settings | None = None,
) -> None:
    """The signer's mark of one output of the final-review sample (acceptable or not), in their
    name; a later mark of the same output replaces it in the figures."""
    auth.require(signer, "mark the final review")
    settings = settings or Settings.from_env()
    # Read before the write: a study's outputs are frozen with its eval set, and loading them
    # inside the transaction would hold every reviewer's vote for as long as the load takes.
    data = study_data.load(store, store.studies.require_study(study), settings)
    valid = {o["output_id"] for o in data.candidate_outputs(store)}
    if output_id not in valid:
        raise NotFound(
            f"output {output_id} is not an output of {data.candidate} in study {study!r}"
        )
    with store.transaction():
        store.gate.insert_final_review(
            data.study["id"], output_id, signer.reviewer_id, acceptable, comment
        )
        audit.record(
            store,
            signer.name,
            "final review mark",
            data.study["id"],
            output_id=output_id,
            acceptable=acceptable,
            comment=comment,
        )


def build_report(ctx: StudyContext) -> dict:
    """The sign-off report: pinned hashes, thresholds and their results, statistics, excluded
    reviewers, judges' self-preference, final review, deviations and sign-offs, each naming the
    link it was made with and who issued that link. Its `report_hash` covers the figures (what
    a sign-off pins); its `document_hash`, which the signature signs, covers everything it
    shows, sign-offs and the audit entry that includes them too."""
    store, settings = ctx.store, ctx.settings
    data = _locked_data(ctx)
    study_row = ctx.study
    inputs = locked_inputs(ctx)
    thresholds = ctx.thresholds
    lock = ctx.lock.row
    decision = evaluate_gate(ctx)
    es = next(e for e in store.catalog.eval_sets() if e["id"] == study_row["eval_set_id"])
    marks = final_review_marks(ctx)
    overall = inputs.calibration
    runs = {r["label"]: r for r in store.gate.runs_for_report(study_row["id"])}
    judges = []
    for j in overall.judges:
        run = runs.get(j.judge, {})
        judges.append(
            {
                "judge": j.judge,
                "model": run.get("judge", j.judge),
                "rubric": run.get("rubric"),
                "rubric_version": run.get("rubric_version"),
                "rubric_hash": run.get("rubric_hash") or None,
                "source": run.get(
                    "source",
                    data.judges[j.judge].source if j.judge in data.judges else COMPUTED_BASELINE,
                ),
                "n_verdicts": j.n_verdicts,
                "n_unparsed": j.n_unparsed,
                "agreement_with_ties": j.agreement_with_ties.to_json(),
                "agreement_without_ties": j.agreement_without_ties.to_json(),
                "agreement_strict": j.agreement_strict.to_json(),
                "decisive_share": j.decisive_share.to_json(),
                "vs_ceiling": j.vs_ceiling.to_json(),
                "cost": j.cost_total,
            }
        )
    built = {
        "study": study_row["name"],
        "generated_at": now_iso(),
        "eval_set": {
            "name": es["name"],
            "n_items": es["n_items"],
            # Recomputed from the items, not the hash stored at the freeze: an eval set
            # edited in the file shows here as a hash that differs from the one frozen.
            "content_hash": store.catalog.eval_set_content_hash(es["id"]),
            "frozen_hash": es["content_hash"],
        },
        "candidate": data.candidate,
        "comparisons": [list(c) for c in data.comparisons],
        "thresholds": {
            "locked_at": lock["locked_at"],
            "locked_by": lock["locked_by"],
            "content_hash": lock["content_hash"],
            "candidate": lock.get("candidate"),
            "locked": json.loads(lock["thresholds"]),
            "current": [t.key() for t in thresholds],
        },
        "deviations": store.gate.deviations(study_row["id"]),
        "looks_before_lock": looks_before_lock(ctx),
        "votes_by_source": store.audit.votes_by_source(study_row["id"]),
        "gate": decision.to_json(),
        # The design the lock recorded (votes per comparison, final review, power at the
        # expected truth) and every look at outcomes before it was complete.
        "design": ctx.lock.plan,
        "looks": interim_looks(ctx),
        "seen_before_lock": seen_before_lock(ctx),
        "win_rates": [report.win_rate_json(w) for w in inputs.win_rates],
        # The human win rates beside their prediction-powered estimates with each judge.
        "prediction_powered": prediction_powered(ctx, data),
        "regression": regression_table(ctx, data, inputs),
        "scorecard": scorecard.scorecard(ctx),
        "human_agreement": {
            "with_ties": overall.humans.agreement_with_ties.to_json(),
            "without_ties": overall.humans.agreement_without_ties.to_json(),
            "strict": overall.humans.agreement_strict.to_json(),
        },
        # Reviewers whose votes every figure above leaves out, with who decided and why.
        "exclusions": current_exclusions(store, study_row["id"]),
        "judges": judges,
        # Each judge against each compared system of its own model family: its win-rate shift
        # toward that system relative to the humans, with a paired CI, flagged when it excludes 0.
        "self_preference": [p.to_json() for p in calibration.self_preference_of(data, settings)],
        "final_review": {
            "system": data.candidate,
            "sample_size": inputs.final_review["sample_size"],
            "n": inputs.final_review["n"],
            "acceptable": inputs.final_review["acceptable"],
            "rejected": [
                {"item_id": m["item_key"], "comment": m["comment"], "reviewer": m["reviewer"]}
                for m in marks
                if not m["acceptable"]
            ],
        },
    }
    if grading.graders_in_force(ctx):
        built["graders"] = grading.grader_summary(ctx)
    # The study's latest governance entry, sign-offs aside (the report covers everything but
    # its sign-offs, so signing must not change it): its hash pins every entry before it.
    entries = store.audit.audit_entries(study_row["id"])
    logged = [e for e in entries if e["action"] != "signed"]
    built["audit"] = {"head": logged[-1]["hash"] if logged else None, "entries": len(logged)}
    built["report_hash"] = report.report_hash(built)
    return _with_signoffs(store, settings, built, study_row["id"])


def _with_signoffs(store: Store, settings: Settings, built: dict, study_id: int) -> dict:
    """The report with its sign-offs as they stand, and the hash and signature that cover it."""
    built["signoffs"] = signoffs_with_links(store, study_id)
    # The latest entry, sign-offs included: a workspace rolled back to before a sign-off this
    # report shows no longer has it, and `audit verify --report` says so.
    entries = store.audit.audit_entries(study_id)
    built["audit_head"] = {
        "head": entries[-1]["hash"] if entries else None,
        "entries": len(entries),
    }
    built["document_hash"] = report.document_hash(built)
    built["signature"] = audit.signature(settings, built["document_hash"])
    return built


def signoffs_with_links(store: Store, study_id: int) -> list[dict]:
    """The study's sign-offs, each with the link it was made with (`link`): its version, how
    and when it was issued and by whom, per the audit log; `issued` False when the audit log
    never issued that link to the signer (its token was put in the file)."""
    issues = people.link_issues(store)
    found = []
    for row in store.gate.signoffs(study_id):
        given = [i for i in issues.get(row["signer"], []) if i["action"] != "link revoked"]
        fingerprinted = [i for i in given if i["link"]]
        if row["link"] and fingerprinted:
            match = next((i for i in fingerprinted if i["link"] == row["link"]), None)
        else:  # a sign-off or links recorded before links had fingerprints
            match = next((i for i in reversed(given) if i["at"] <= row["created_at"]), None)
        link = {"version": row["token_version"], "fingerprint": row["link"]}
        if match is not None:
            link |= {
                "issued": True,
                "action": match["action"],
                "by": match["by"],
                "at": match["at"],
                "version": row["token_version"] or match["version"],
            }
        else:
            link["issued"] = not fingerprinted
        found.append(
            {k: v for k, v in row.items() if k not in ("token_version", "link")} | {"link": link}
        )
    return found


def approval_blockers(report: dict) -> list[str]:
    """What stands in the way of approving the study as `report` (`build_report`) shows it, one
    line each: a gate that did not pass, a final review not done. `sign_off` refuses an approval
    while any remains unless the signer gives an override reason; the Gate screen lists the same
    lines above that reason's field."""
    blockers = []
    gate_result = report["gate"]["result"]
    if gate_result != "pass":
        blockers.append(f"the gate is {gate_result}")
    final = report["final_review"]
    if final["n"] < final["sample_size"]:
        blockers.append(f"{final['n']} of {final['sample_size']} final-review outputs are marked")
    return blockers


def sign_off(
    store: Store,
    study: str,
    signer: Actor,
    decision: str,
    comment: str,
    settings: Settings,
    override: str = "",
    seen: dict | None = None,
) -> dict:
    """Append the signer's approval or rejection, pinning the report and its hash, and the
    version and fingerprint of the signer's link; returns the report with its sign-offs.
    `seen` is the report the signer read: when the report now differs, nothing is signed
    (ReportChanged names the differences). Approving a gate that did not pass, or before the
    final review is done, is refused unless the signer gives an override reason, which the
    report shows."""
    auth.require(signer, "sign off")
    if decision not in ("approve", "reject"):
        raise InputError(f"decision {decision!r}: choose approve or reject")
    if not comment.strip():
        raise InputError("a sign-off needs a comment saying why")
    ctx = open_study(store, settings, study, signer)
    signed = build_report(ctx)
    if seen is not None and seen.get("report_hash") != signed["report_hash"]:
        changed = report.differences(seen, signed)
        raise ReportChanged(
            f"not signed: the report changed since you read it (report "
            f"{str(seen.get('report_hash'))[:8]} then, {signed['report_hash'][:8]} now): "
            + "; ".join(changed or ["its audit record"])
            + ". Read the new report before signing it",
            changed,
        )
    gate_result = signed["gate"]["result"]
    unmet = approval_blockers(signed)
    override = override.strip()
    if decision == "approve" and unmet and not override:
        raise InputError(
            f"cannot approve: {'; '.join(unmet)}. Approving anyway needs an override reason, "
            "which the report shows"
        )
    if decision == "reject" or not unmet:
        override = ""
    study_id = ctx.id
    with store.transaction():
        body = {k: v for k, v in signed.items() if k != "signoffs"}
        store.gate.insert_signoff(
            study_id,
            signer.reviewer_id,
            decision,
            comment.strip(),
            signed["report_hash"],
            json.dumps(body, sort_keys=True, default=str),
            gate_result=gate_result,
            override=override or None,
            token_version=signer.link_version,
            link=signer.link,
        )
        audit.record(
            store,
            signer.name,
            "signed",
            study_id,
            decision=decision,
            report_hash=signed["report_hash"],
            gate_result=gate_result,
            override=override or None,
            votes=store.audit.votes_digest(study_id),
            link=signer.link,
            link_version=signer.link_version,
        )
        return _with_signoffs(store, settings, signed, study_id)
