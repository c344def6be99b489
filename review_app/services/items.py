"""The items browser (admins and signers): a study's items and the outputs of the systems it
compares, searched and filtered by text, category, system and length, one page at a time.

Grader results and human/judge disagreements are outcomes: before the study's thresholds are
locked the browser neither filters by them nor shows them (nor votes, verdicts or anything
counted from them), so what it lists is what `export pairs` already gives. After the lock each
output shows the grader checks it failed and each item the judges that disagree with the human
majority on it; showing them before the planned sample is in is a recorded look, as on the
scorecard."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from review_app import baselines
from review_app.errors import InputError
from review_app.services import decision, disagreements, grading
from review_app.services.context import StudyContext

__all__ = [
    "ANY_JUDGE",
    "BrowsedItem",
    "BrowsedOutput",
    "BrowserChoices",
    "ItemFilters",
    "ItemPage",
    "PAGE_SIZE",
    "browse_items",
    "browser_choices",
]

PAGE_SIZE = 25
# `ItemFilters.disagreeing_judge` for "any judge that is not a baseline".
ANY_JUDGE = "any judge"


@dataclass(frozen=True)
class ItemFilters:
    """Which outputs to list; an item is listed with those of its outputs that match. Empty
    tuples and None mean "any". `check` and `disagreeing_judge` filter on outcomes, so they are
    refused before the lock."""

    text: str = ""  # in the prompt or the output, case-insensitive
    categories: tuple[str, ...] = ()
    systems: tuple[str, ...] = ()
    min_length: int | None = None  # characters of the output
    max_length: int | None = None
    check: str | None = None  # a grader check...
    check_passed: bool = False  # ...that the output passed (True) or failed (False)
    disagreeing_judge: str | None = None  # ANY_JUDGE or a judge label

    @property
    def outcome_filters(self) -> list[str]:
        """The filters set here that read outcomes."""
        named = (("grader result", self.check), ("disagreement", self.disagreeing_judge))
        return [name for name, value in named if value is not None]


@dataclass(frozen=True)
class BrowsedOutput:
    system: str
    text: str
    length: int
    # The grader checks (of the versions in force) this output failed: None before the lock.
    failed_checks: tuple[str, ...] | None = None


@dataclass(frozen=True)
class BrowsedItem:
    item_key: str
    category: str
    prompt: str
    reference: str | None
    outputs: list[BrowsedOutput]
    # After the lock, one line per judge that disagrees with the human majority on one of the
    # item's comparisons; empty before it.
    disagreements: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ItemPage:
    """One page of matching items; `page` is 1-based and within 1..pages."""

    items: list[BrowsedItem]
    page: int
    pages: int
    n_items: int
    n_outputs: int
    outcomes_visible: bool


@dataclass(frozen=True)
class BrowserChoices:
    """What the filters offer: no outcome before the lock (no checks and no judges then)."""

    categories: list[str]
    systems: list[str]
    longest: int
    outcomes_visible: bool
    checks: list[str]
    judges: list[str]


def browser_choices(ctx: StudyContext) -> BrowserChoices:
    ctx.require("browse items")
    store, visible = ctx.store, ctx.lock.visible
    return BrowserChoices(
        categories=store.catalog.study_categories(ctx.id),
        systems=_systems(ctx),
        longest=store.catalog.longest_output(ctx.id),
        outcomes_visible=visible,
        checks=grading.check_names(ctx) if visible else [],
        judges=[ANY_JUDGE, *_judges(ctx)] if visible else [],
    )


def browse_items(ctx: StudyContext, filters: ItemFilters, page: int = 1) -> ItemPage:
    """Page `page` (clamped to the pages there are) of the study's items with outputs matching
    `filters`, by item key, `PAGE_SIZE` items a page, each with its matching outputs by system.
    Forbidden unless the actor may browse items; OutcomesHidden for an outcome filter before
    the lock; InputError for a filter naming no category, system, check or judge of the study."""
    ctx.require("browse items")
    if filters.outcome_filters:
        ctx.lock.require_visible()
    _refuse_unknown(ctx, filters)
    matches = ctx.store.catalog.matching_outputs(
        ctx.id,
        filters.text.strip(),
        filters.categories,
        filters.systems,
        filters.min_length,
        filters.max_length,
    )
    visible = ctx.lock.visible
    failed: dict[tuple[str, str], tuple[str, ...]] = {}
    disagreeing: dict[str, list[tuple[str, tuple[str, str]]]] = {}
    if visible:
        # What follows shows outcomes: before the planned sample is in, that is a recorded look.
        decision.evaluate_gate(ctx)
        failed = _failed_checks(ctx)
        disagreeing = _disagreements(ctx, filters.disagreeing_judge or ANY_JUDGE)
    keys = list(zip(matches["item_key"], matches["system"], strict=True))
    keep = np.ones(len(matches), dtype=bool)
    if filters.check is not None:
        passed = _check_results(ctx, filters.check)
        keep &= np.array([passed.get(k) is filters.check_passed for k in keys], dtype=bool)
    if filters.disagreeing_judge is not None:
        pairs = {(item, s) for item, rows in disagreeing.items() for _, two in rows for s in two}
        keep &= np.array([k in pairs for k in keys], dtype=bool)
    matches = matches[keep]
    item_keys = list(dict.fromkeys(matches["item_key"]))
    pages = max(1, math.ceil(len(item_keys) / PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = item_keys[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    rows = ctx.store.catalog.outputs_by_id(
        matches.loc[matches["item_key"].isin(shown), "output_id"]
    )
    by_item = dict(tuple(rows.groupby("item_key", sort=False)))
    items = []
    for item_key in shown:
        outputs = by_item[item_key]
        first = outputs.iloc[0]
        items.append(
            BrowsedItem(
                item_key=item_key,
                category=first["category"],
                prompt=first["prompt"],
                reference=first["reference"],
                outputs=[
                    BrowsedOutput(
                        o.system,
                        o.text,
                        int(o.length),
                        failed.get((item_key, o.system), ()) if visible else None,
                    )
                    for o in outputs.itertuples()
                ],
                disagreements=[line for line, _ in disagreeing.get(item_key, [])],
            )
        )
    return ItemPage(items, page, pages, len(item_keys), len(matches), visible)


def _systems(ctx: StudyContext) -> list[str]:
    return sorted({s for pair in ctx.store.studies.comparisons(ctx.id) for s in pair})


def _judges(ctx: StudyContext) -> list[str]:
    """The study's judges that are not baselines (a baseline disagrees by construction)."""
    return [j for j in ctx.data().judge_order if not baselines.is_baseline(j)]


def _refuse_unknown(ctx: StudyContext, filters: ItemFilters) -> None:
    """InputError naming the filter when it names something the study does not have."""
    if filters.min_length is not None and filters.min_length < 0:
        raise InputError(f"minimum length {filters.min_length}: a length is 0 or more characters")
    if (
        filters.min_length is not None
        and filters.max_length is not None
        and filters.max_length < filters.min_length
    ):
        raise InputError(
            f"length range {filters.min_length}-{filters.max_length}: the maximum is below the "
            "minimum"
        )
    known = {
        "category": (filters.categories, ctx.store.catalog.study_categories(ctx.id)),
        "system": (filters.systems, _systems(ctx)),
    }
    if filters.check is not None:
        known["grader check"] = ((filters.check,), grading.check_names(ctx))
    if filters.disagreeing_judge not in (None, ANY_JUDGE):
        known["judge"] = ((filters.disagreeing_judge,), _judges(ctx))
    for what, (asked, offered) in known.items():
        unknown = [a for a in asked if a not in offered]
        if unknown:
            raise InputError(
                f"{what} {unknown[0]!r} is not in study {ctx.name!r}; choose one of "
                f"{', '.join(offered) or '(none)'}"
            )


def _check_results(ctx: StudyContext, check: str) -> dict[tuple[str, str], bool]:
    """(item key, system) -> whether the output passed `check` (every version in force)."""
    results = grading.results_in_force(ctx)
    results = results[results["check"] == check]
    passed = results.groupby(["item_key", "system"], observed=True)["passed"].all()
    return {key: bool(value) for key, value in passed.items()}


def _failed_checks(ctx: StudyContext) -> dict[tuple[str, str], tuple[str, ...]]:
    if not grading.graders_in_force(ctx):
        return {}
    results = grading.results_in_force(ctx)
    failed = results[~results["passed"]]
    return {
        (item, system): tuple(sorted(set(group["check"].astype(str))))
        for (item, system), group in failed.groupby(["item_key", "system"], observed=True)
    }


def _disagreements(ctx: StudyContext, judge: str) -> dict[str, list[tuple[str, tuple[str, str]]]]:
    """item key -> (line, its two systems) for each comparison of the item on which `judge`
    (ANY_JUDGE: any judge that is not a baseline) disagrees with the human majority."""
    judges = _judges(ctx) if judge == ANY_JUDGE else [judge]
    if not judges:
        return {}
    frame = disagreements.disagreements(
        ctx.store,
        ctx.name,
        disagreements.DisagreementFilters(judges=tuple(judges), kinds=("majority",)),
        ctx.settings,
    )
    found: dict[str, list[tuple[str, tuple[str, str]]]] = {}
    for row in frame.itertuples():
        line = (
            f"{row.system_x} vs {row.system_y}: {row.judge} chose {row.judge_verdict}; "
            f"human majority: {row.human_majority} ({row.n_votes} votes)"
        )
        found.setdefault(row.item_key, []).append((line, (row.system_x, row.system_y)))
    return found
