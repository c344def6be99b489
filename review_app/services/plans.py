"""A study's plan: what it collects (k votes on each comparison, a final review of N of the
candidate's outputs), the power of that design to pass every threshold at the expected truth
(`planning`), the smallest design that reaches the target, and changes to the plan before the
lock. Reads no outcome, so all of it is safe before the lock."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from review_app import auth, gate, planning, ppi, stats
from review_app.errors import Conflict, InputError
from review_app.services import audit, early_looks
from review_app.services.context import StudyContext
from review_app.store import Store

__all__ = [
    "FINAL_REVIEW_SIZE",
    "FINAL_REVIEW_TOP",
    "MAX_REVIEWS_PER_PAIR",
    "change_plan",
    "check_reviews_per_pair",
    "current_design",
    "design_power",
    "final_review_size",
    "human_subset_record",
    "judge_correlations",
    "plan_study",
    "set_human_share",
    "study_shape",
]

# The signer's final review by default: this many of the candidate's outputs, the judges'
# favourites first.
FINAL_REVIEW_SIZE = 50
FINAL_REVIEW_TOP = 10


# More votes per comparison than this is a typing slip, not a plan.
MAX_REVIEWS_PER_PAIR = 100


def check_reviews_per_pair(k: int) -> None:
    """InputError unless 1 <= k <= MAX_REVIEWS_PER_PAIR."""
    if k < 1:
        raise InputError(f"reviews per pair must be at least 1, got {k}")
    if k > MAX_REVIEWS_PER_PAIR:
        raise InputError(f"reviews per pair must be at most {MAX_REVIEWS_PER_PAIR}, got {k}")


def final_review_size(store: Store, study_row: dict) -> int:
    """The final-review sample the study plans: its own size, else `FINAL_REVIEW_SIZE`, at most
    the candidate's outputs."""
    outputs = store.catalog.count_outputs_of_system(
        study_row["eval_set_id"], study_row["candidate"]
    )
    wanted = study_row.get("final_review_size") or FINAL_REVIEW_SIZE
    return min(wanted, outputs)


def study_shape(ctx: StudyContext) -> planning.StudyShape:
    """The items each threshold would read (per comparison and category, per category, per
    system) and the candidate's outputs: the study's pairs, no outcome."""

    def shape() -> planning.StudyShape:
        pairs = ctx.data().pairs
        pairs = pairs.assign(category=stats.category_names(pairs["category"]))
        suites = {}
        for a, b in ctx.data().comparisons:
            x, y = sorted((a, b))
            of = pairs[(pairs["system_x"] == x) & (pairs["system_y"] == y)]
            suites[(a, b)] = of.groupby("category")["item_key"].nunique().astype(int).to_dict()
        systems = {}
        for column in ("system_x", "system_y"):
            for system, items in pairs.groupby(column)["item_key"]:
                systems[system] = systems.get(system, set()) | set(items)
        candidate = ctx.candidate or ""
        share = ctx.study.get("human_share")
        return planning.StudyShape(
            suites,
            ctx.store.catalog.count_outputs_of_system(ctx.study["eval_set_id"], candidate)
            if candidate
            else 0,
            candidate,
            pairs.groupby("category")["item_key"].nunique().astype(int).to_dict(),
            {s: len(items) for s, items in systems.items()},
            1.0 if share is None else float(share),
            judge_correlations(ctx, gate.judges_named(ctx.thresholds)),
        )

    return ctx.memo("study shape", shape)


def judge_correlations(ctx: StudyContext, judges: list[str]) -> dict[str, float]:
    """Per judge, the correlation of its per-item score with the humans' mean score, over the
    dev split when the study has one (what the rubric was tuned on), else over every voted
    comparison: what the plan assumes a prediction-powered threshold gains. A calibration
    figure (how well the judge predicts the humans); before the lock, that of a judge whose
    agreement could stand in for the outcomes is a recorded look, left out for anyone who may
    not look."""
    if not judges:
        return {}
    data = ctx.data()
    parts = ctx.store.calibration.split_parts(ctx.id)
    dev = {pid for pid, part in parts.items() if part == "dev"}
    # Before the lock, a judge whose agreement can stand in for the outcomes gives its
    # correlation only as a recorded look (`early_looks`), to someone who may look.
    revealing = {} if ctx.lock.visible else early_looks.revealing_judges(data)
    may_look = ctx.actor is not None and auth.allowed(ctx.actor, "look at outcomes")
    out = {}
    for judge in judges:
        if judge not in data.judges or (judge in revealing and not may_look):
            continue
        combined = stats.combine_verdicts(
            data.pairs, data.verdicts[data.verdicts["judge"].astype(str) == judge]
        )
        scores = ppi.item_scores(data.pairs, data.votes, combined, judge)
        scores = scores[scores["y"].notna() & scores["judged"]]
        if dev:
            scores = scores[scores["pair_id"].isin(dev)]
        if len(scores) < 10 or scores["y"].std() == 0 or scores["f"].std() == 0:
            continue
        out[judge] = float(max(0.0, np.corrcoef(scores["y"], scores["f"])[0, 1]))
        if judge in revealing:
            figures = [
                {"judge": judge, "why": revealing[judge], "correlation": round(out[judge], 4)}
            ]
            early_looks.record_look(ctx, ctx.actor, "judge correlation for the plan", figures)
    return out


def set_human_share(store: Store, study_id: int, share: float, by: str) -> dict:
    """Draw the study's human subset at `share` with a fresh seed (`planning.human_subset`) and
    record it (share, seed, the subset's hash) in the audit log, inside the caller's
    transaction. Refused when a pair that would leave the subset already has votes."""
    rows = store.studies.pairs_for_subset(study_id)
    seed = secrets.token_hex(8)
    chosen = planning.human_subset(rows, share, seed)
    voted_out = [r["pair_id"] for r in rows if r["pair_id"] not in chosen and r["votes"]]
    if voted_out:
        raise Conflict(
            f"{len(voted_out)} pair(s) that would be judged only already have votes (pair "
            f"{voted_out[0]} first): a human share is chosen before reviewing starts"
        )
    store.studies.set_human_subset(study_id, share, seed, chosen)
    record = {
        "share": share,
        "seed": seed,
        "hash": planning.subset_hash(chosen),
        "human_pairs": len(chosen),
        "pairs": len(rows),
    }
    audit.record(store, by, "human share set", study_id, **record)
    return record


def human_subset_record(ctx: StudyContext) -> dict:
    """The study's human subset as it is now: share, seed and the hash of its pair ids (what
    the lock pins)."""
    rows = ctx.store.studies.pairs_for_subset(ctx.id)
    chosen = {r["pair_id"] for r in rows if r["human"]}
    return {
        "share": ctx.study.get("human_share", 1.0),
        "seed": ctx.study.get("human_seed"),
        "hash": planning.subset_hash(chosen),
        "human_pairs": len(chosen),
        "pairs": len(rows),
    }


def current_design(ctx: StudyContext) -> planning.Design:
    """What the study collects as it is planned now."""
    return planning.Design(
        ctx.study["reviews_per_pair"],
        final_review_size(ctx.store, ctx.study) if ctx.candidate else 0,
    )


def design_power(
    ctx: StudyContext, expectations: Mapping[str, float] | None = None
) -> planning.DesignPower:
    """The chance that every threshold of the study passes at its current design."""
    return planning.design_power(
        ctx.thresholds, study_shape(ctx), current_design(ctx), expectations, ctx.min_items
    )


def plan_study(
    ctx: StudyContext, expectations: Mapping[str, float] | None = None, judge: str | None = None
) -> planning.Proposal:
    """The current design's power, the smallest design that passes every threshold with 80%
    power at the expected truth (`planning.propose`), and the human votes expected at that
    truth, fixed and sequential, with and without `judge` (by default the judge the study's
    prediction-powered thresholds name)."""
    judge = judge or next(iter(gate.judges_named(ctx.thresholds)), None)
    shape = study_shape(ctx)
    if judge is not None:
        if judge not in ctx.data().judges:
            raise InputError(f"no judge named {judge!r} in study {ctx.name!r}")
        correlations = {**shape.judge_correlation, **judge_correlations(ctx, [judge])}
        shape = replace(shape, judge_correlation=correlations)
    proposal = planning.propose(
        ctx.thresholds, shape, current_design(ctx), expectations, ctx.min_items
    )
    humans_only = planning.design_power(
        ctx.thresholds,
        replace(shape, judge_correlation={}),
        current_design(ctx),
        expectations,
        ctx.min_items,
    )
    labels = planning.expected_labels(humans_only, shape, judge)
    return replace(proposal, labels=labels)


def change_plan(
    ctx: StudyContext,
    reviews_per_pair: int | None = None,
    final_review: int | None = None,
    human_share: float | None = None,
) -> str:
    """Change the votes per comparison, the final-review sample or the human share before the
    lock (admin only, audited); returns a line saying what the plan is now."""
    actor = ctx.require("change the plan")
    if reviews_per_pair is None and final_review is None and human_share is None:
        raise InputError("give the reviews per pair, the final-review size or the human share")
    if human_share is not None and not 0 < human_share <= 1:
        raise InputError(f"the human share must be in (0, 1], got {human_share:g}")
    if reviews_per_pair is not None:
        check_reviews_per_pair(reviews_per_pair)
    if final_review is not None and final_review < 1:
        raise InputError(f"the final review needs at least 1 output, got {final_review}")
    with ctx.store.transaction():
        ctx.lock.require_unlocked("the plan")
        before = {
            "reviews_per_pair": ctx.study["reviews_per_pair"],
            "final_review": ctx.study.get("final_review_size") or FINAL_REVIEW_SIZE,
        }
        ctx.store.studies.set_plan(ctx.id, reviews_per_pair, final_review)
        if human_share is not None:
            set_human_share(ctx.store, ctx.id, human_share, actor.name)
        row = ctx.store.studies.require_study(ctx.name)
        after = {
            "reviews_per_pair": row["reviews_per_pair"],
            "final_review": row["final_review_size"] or FINAL_REVIEW_SIZE,
        }
        if human_share is not None:
            before["human_share"] = ctx.study.get("human_share", 1.0)
            after["human_share"] = row["human_share"]
        audit.record(ctx.store, actor.name, "plan changed", ctx.id, before=before, after=after)
    share = row.get("human_share", 1.0)
    return (
        f"study {ctx.name}: {after['reviews_per_pair']} vote(s) per comparison, a final review "
        f"of {after['final_review']} outputs"
        + (f", reviewers on {share:.0%} of each comparison's items" if share < 1 else "")
    )
