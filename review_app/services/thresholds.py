"""Pre-registration: a study's thresholds, the recommended starting set, the lock (with the
planned design and its power) and the deviations recorded for changes after it. Outcomes stay
hidden until the lock."""

from __future__ import annotations

import pandas as pd

from review_app import baselines, gate, planning, sequential, stats
from review_app.errors import Conflict, InputError, NotFound
from review_app.services import audit, decision, plans, study_data
from review_app.services.context import StudyContext
from review_app.services.studies import study_categories
from review_app.store import Store

__all__ = [
    "add_recommended_thresholds",
    "add_threshold",
    "graders_to_pin",
    "list_thresholds",
    "lock_thresholds",
    "looks_before_lock",
    "planned_sample",
    "recommended_thresholds",
    "remove_threshold",
    "study_thresholds",
    "threshold_deviations",
    "update_threshold",
]


def threshold_deviations(ctx: StudyContext) -> list[dict]:
    """Changes made after the lock, oldest first."""
    return ctx.store.gate.deviations(ctx.id)


def list_thresholds(ctx: StudyContext) -> list[dict]:
    """The study's thresholds with their ids and descriptions, in the order they were added."""
    return [
        {"id": row["id"], "threshold": t, "description": t.describe()}
        for row, t in zip(ctx.threshold_rows, ctx.thresholds, strict=True)
    ]


def study_thresholds(store: Store, study_row: dict) -> list[gate.Threshold]:
    """The study's thresholds, in the order they were added."""
    return [
        gate.Threshold(row["metric"], row["params"], row["comparator"], row["value"])
        for row in store.gate.thresholds(study_row["id"])
    ]


def recommended_thresholds(ctx: StudyContext) -> list[gate.Threshold]:
    """A starting set in the spirit of the usual ship bar, each decided on its one-sided 95%
    bound: the candidate beats the system of the study's first comparison (win rate above one
    half), no regression suite is more than 5 points below parity (non-inferiority), each real
    judge is within the human ceiling (its calibration verdict) and beats baseline/longest, and
    the final review is 90% acceptable. The largest category is taken as the target task; every
    other category as a regression suite."""
    data = study_data.load(ctx.store, ctx.study, ctx.settings)
    candidate = data.candidate
    against = next((c for c in data.comparisons if candidate in c), None)
    if against is None:
        return []
    other = against[1] if against[0] == candidate else against[0]
    sizes = pd.Series(stats.category_names(data.pairs["category"])).value_counts()
    suites = sorted(sizes.index[1:]) if len(sizes) > 1 else []
    systems = {"system_a": candidate, "system_b": other}
    specs = [
        ("human_win_rate", systems, ">", 0.5),
        ("max_regression_points", systems | {"categories": suites}, "<=", 5.0),
        (gate.FINAL_REVIEW_METRIC, {}, ">=", 0.9),
    ]
    for judge in data.real_judges:
        specs += [
            ("judge_agreement_vs_ceiling", {"judge": judge}, ">=", -ctx.settings.ceiling_margin),
            ("judge_beats_baseline", {"judge": judge, "baseline": baselines.REFERENCE}, ">", 0.0),
        ]
    return [gate.validate_threshold(*spec) for spec in specs]


def add_recommended_thresholds(ctx: StudyContext) -> int:
    """Add the recommended set to a study that has no thresholds yet; returns how many."""
    actor = ctx.require("change the thresholds")
    chosen = recommended_thresholds(ctx)
    with ctx.store.transaction():
        if ctx.store.gate.thresholds(ctx.id):
            raise Conflict(f"study {ctx.name!r} already has thresholds; edit them instead")
        for t in chosen:
            ctx.store.gate.insert_threshold(
                ctx.id, t.metric, t.params, t.comparator, t.value, actor.name
            )
        ctx.lock.change(
            actor,
            "",
            "recommended thresholds added",
            deviates=False,
            thresholds=[t.key() for t in chosen],
        )
    return len(chosen)


def add_threshold(
    ctx: StudyContext,
    metric: str,
    params: dict,
    comparator: str | None,
    value: float,
    reason: str = "",
) -> int:
    actor = ctx.require("change the thresholds")
    threshold = gate.validate_threshold(
        metric,
        params,
        comparator or gate.METRICS.get(metric, gate.METRICS["human_win_rate"]).comparator,
        value,
    )
    named = set(threshold.params.get("categories", []))
    named |= {threshold.params["category"]} if threshold.params.get("category") else set()
    categories = study_categories(ctx.store, ctx.name)
    unknown = named - set(categories)
    if unknown:
        raise InputError(
            f"study {ctx.name!r} has no category {', '.join(sorted(unknown))}; "
            f"its categories: {', '.join(categories)}"
        )
    # A bar on a system the study does not compare can never be measured: refused, not kept
    # as a threshold that stays inconclusive (a look-alike name would pass unnoticed).
    systems = {s for pair in ctx.store.studies.comparisons(ctx.id) for s in pair}
    for key in ("system", "system_a", "system_b"):
        named_system = threshold.params.get(key)
        if named_system and systems and named_system not in systems:
            raise InputError(
                f"{key} {named_system!r}: study {ctx.name!r} compares no such system; its "
                f"systems: {', '.join(sorted(systems))}"
            )
    ctx.lock.require_reason(reason, "a new threshold")
    with ctx.store.transaction():
        new_id = ctx.store.gate.insert_threshold(
            ctx.id,
            threshold.metric,
            threshold.params,
            threshold.comparator,
            threshold.value,
            actor.name,
        )
        ctx.lock.change(
            actor,
            reason,
            "threshold added",
            "(none)",
            threshold.describe(),
            threshold=threshold.key(),
        )
    return new_id


def update_threshold(
    ctx: StudyContext, threshold_id: int, comparator: str, value: float, reason: str = ""
) -> None:
    actor = ctx.require("change the thresholds")
    with ctx.store.transaction():
        current = _threshold_row(ctx, threshold_id)
        before = gate.Threshold(
            current["metric"], current["params"], current["comparator"], current["value"]
        )
        after = gate.validate_threshold(before.metric, before.params, comparator, value)
        if after == before:
            return
        ctx.lock.require_reason(reason, "a changed threshold")
        ctx.store.gate.update_threshold(
            threshold_id, after.metric, after.params, after.comparator, after.value
        )
        ctx.lock.change(
            actor,
            reason,
            "threshold changed",
            before.describe(),
            after.describe(),
            before_threshold=before.key(),
            after_threshold=after.key(),
        )


def remove_threshold(ctx: StudyContext, threshold_id: int, reason: str = "") -> None:
    actor = ctx.require("change the thresholds")
    with ctx.store.transaction():
        current = _threshold_row(ctx, threshold_id)
        ctx.lock.require_reason(reason, "a removed threshold")
        ctx.store.gate.delete_threshold(threshold_id)
        before = gate.Threshold(
            current["metric"], current["params"], current["comparator"], current["value"]
        )
        ctx.lock.change(
            actor,
            reason,
            "threshold removed",
            before.describe(),
            "(removed)",
            threshold_id=threshold_id,
        )


def _threshold_row(ctx: StudyContext, threshold_id: int) -> dict:
    row = next((r for r in ctx.store.gate.thresholds(ctx.id) if r["id"] == threshold_id), None)
    if row is None:
        raise NotFound(f"study {ctx.name!r} has no threshold {threshold_id}")
    return row


def planned_sample(ctx: StudyContext, reason: str = "") -> dict:
    """What the lock plans to collect before the gate may decide (every pair with its k votes,
    the final-review sample), the design's power to pass every threshold at the expected truth
    (`plans.design_power`), and the reason given for locking a design under
    `planning.LOCK_POWER_FLOOR`. InputError when such a design has no reason."""
    study_row = ctx.study
    power = plans.design_power(ctx)
    ppi_judges = gate.judges_named(ctx.thresholds)
    plan = {
        "comparisons": ctx.store.studies.study_counts(study_row["id"])["human_pairs"],
        "votes_per_comparison": study_row["reviews_per_pair"],
        "final_review": plans.final_review_size(ctx.store, study_row),
        "items": power.items,
        "min_items": ctx.min_items,
        "power": round(power.power, 4),
        "thresholds_power": [
            {"threshold": r.description, "truth": r.truth, "power": round(r.power, 4)}
            for r in power.rows
        ],
        # Every look before the plan is in may conclude at the design's boundary.
        "sequential": {
            "method": sequential.METHOD,
            "alpha": sequential.ALPHA,
            "information": "comparisons with their planned votes / planned comparisons",
        },
        "human_subset": plans.human_subset_record(ctx),
    }
    if ppi_judges:
        for judge in ppi_judges:
            if judge not in ctx.data().judges:
                raise InputError(
                    f"a threshold names judge {judge!r}, which has no verdicts in study "
                    f"{ctx.name!r}: run or import it before locking"
                )
        plan["ppi_judges"] = decision.judge_pins(ctx, ppi_judges)
    if power.power < planning.LOCK_POWER_FLOOR:
        if not reason.strip():
            raise InputError(
                f"the planned design has {power.power:.0%} power to pass every threshold at the "
                f"expected truth (under {planning.LOCK_POWER_FLOOR:.0%}): change the plan "
                "(`review-app plan` proposes one) or give a reason for locking it anyway"
            )
        plan["low_power_reason"] = reason.strip()
    return plan


def graders_to_pin(store: Store, study_row: dict) -> list[dict]:
    """The grader versions a lock pins: per grader name, the latest version graded on the
    study ({name, content_hash}, by name)."""
    latest = {g["name"]: g["content_hash"] for g in store.grading.study_graders(study_row["id"])}
    return [{"name": name, "content_hash": latest[name]} for name in sorted(latest)]


def lock_thresholds(ctx: StudyContext, reason: str = "") -> str:
    """Pre-register the study's thresholds (who, when, content hash) with the candidate, the
    planned sample, its power and the minimum items per threshold; outcomes become visible. A
    design under `planning.LOCK_POWER_FLOOR` power needs a `reason`, recorded with it."""
    actor = ctx.require("lock the thresholds")
    minimum = ctx.settings.gate_min_items
    # The design's power reads the study's pairs: computed before the transaction, so a lock
    # never holds reviewers' votes while a study loads, then checked against what is locked.
    plan = planned_sample(ctx, reason)
    planned_for = gate.thresholds_hash(ctx.thresholds)
    with ctx.store.transaction():
        ctx.lock.require_unlocked("the lock")
        study_row = ctx.store.studies.require_study(ctx.name)
        thresholds = study_thresholds(ctx.store, study_row)
        if not thresholds:
            raise InputError("add at least one threshold before locking")
        if not study_row["candidate"]:
            raise InputError(f"name the candidate of study {ctx.name!r} before locking")
        content_hash = gate.thresholds_hash(thresholds)
        if content_hash != planned_for:
            raise Conflict("the thresholds changed while the lock was being prepared: lock again")
        graders = graders_to_pin(ctx.store, study_row)
        ctx.store.gate.insert_threshold_lock(
            ctx.id,
            actor.name,
            content_hash,
            [t.key() for t in thresholds],
            candidate=study_row["candidate"],
            plan=plan,
            min_comparisons=minimum,
            graders=graders,
        )
        audit.record(
            ctx.store,
            actor.name,
            "thresholds locked",
            ctx.id,
            content_hash=content_hash,
            candidate=study_row["candidate"],
            plan=plan,
            min_comparisons=minimum,
            votes=ctx.store.audit.votes_digest(ctx.id),
            graders=graders,
        )
    return content_hash


def looks_before_lock(ctx: StudyContext) -> list[dict]:
    """Other studies over the same eval set and systems whose thresholds were locked (their
    outcomes visible) before this study's: the outcomes this lock could already have seen."""
    study_row, lock = ctx.study, ctx.lock.row
    systems = {s for c in ctx.data().comparisons for s in c}
    looks = []
    for other in ctx.store.gate.locks_on_eval_set(study_row["eval_set_id"]):
        shared = systems & set((other["systems"] or "").split(","))
        if other["study_id"] == study_row["id"] or len(shared) < 2:
            continue
        # Locks are append-only, so their ids order them even within one clock tick.
        if lock is None or other["lock_id"] < lock["id"]:
            looks.append(
                {
                    "study": other["study"],
                    "locked_at": other["locked_at"],
                    "systems": sorted(shared),
                }
            )
    return looks
