"""A study's plan: what it collects (k votes on each comparison, a final review of N of the
candidate's outputs), the power of that design to pass every threshold at the expected truth
(`planning`), the smallest design that reaches the target, and changes to the plan before the
lock. Reads no outcome, so all of it is safe before the lock."""

from __future__ import annotations

from collections.abc import Mapping

from review_app import planning, stats
from review_app.errors import InputError
from review_app.services import audit
from review_app.services.context import StudyContext
from review_app.services.studies import check_reviews_per_pair
from review_app.store import Store

__all__ = [
    "FINAL_REVIEW_SIZE",
    "FINAL_REVIEW_TOP",
    "change_plan",
    "current_design",
    "design_power",
    "final_review_size",
    "plan_study",
    "study_shape",
]

# The signer's final review by default: this many of the candidate's outputs, the judges'
# favourites first.
FINAL_REVIEW_SIZE = 50
FINAL_REVIEW_TOP = 10


def final_review_size(store: Store, study_row: dict) -> int:
    """The final-review sample the study plans: its own size, else `FINAL_REVIEW_SIZE`, at most
    the candidate's outputs."""
    outputs = len(store.catalog.outputs_of_system(study_row["eval_set_id"], study_row["candidate"]))
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
        return planning.StudyShape(
            suites,
            len(ctx.store.catalog.outputs_of_system(ctx.study["eval_set_id"], candidate))
            if candidate
            else 0,
            candidate,
            pairs.groupby("category")["item_key"].nunique().astype(int).to_dict(),
            {s: len(items) for s, items in systems.items()},
        )

    return ctx.memo("study shape", shape)


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
    ctx: StudyContext, expectations: Mapping[str, float] | None = None
) -> planning.Proposal:
    """The current design's power and the smallest design that passes every threshold with
    80% power at the expected truth (`planning.propose`)."""
    return planning.propose(
        ctx.thresholds, study_shape(ctx), current_design(ctx), expectations, ctx.min_items
    )


def change_plan(
    ctx: StudyContext, reviews_per_pair: int | None = None, final_review: int | None = None
) -> str:
    """Change the votes per comparison or the final-review sample before the lock (admin only,
    audited); returns a line saying what the plan is now."""
    actor = ctx.require("change the plan")
    if reviews_per_pair is None and final_review is None:
        raise InputError("give the reviews per pair, the final-review size, or both")
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
        row = ctx.store.studies.require_study(ctx.name)
        after = {
            "reviews_per_pair": row["reviews_per_pair"],
            "final_review": row["final_review_size"] or FINAL_REVIEW_SIZE,
        }
        audit.record(ctx.store, actor.name, "plan changed", ctx.id, before=before, after=after)
    return (
        f"study {ctx.name}: {after['reviews_per_pair']} vote(s) per comparison, a final review "
        f"of {after['final_review']} outputs"
    )
