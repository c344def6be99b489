"""Rubric iteration: the study's dev/test split, comparing rubric versions on dev, confirming a
judge on test, and the recorded looks at test (which comparisons the calibration screen shows)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from review_app import auth, baselines, stats
from review_app.auth import Actor
from review_app.errors import Conflict, Forbidden, InputError, NotFound
from review_app.services import audit, early_looks, study_data
from review_app.services.context import StudyContext, lock_of
from review_app.services.disagreements import HIDDEN, flipped, row_label, system_name
from review_app.services.study_data import judge_labels
from review_app.settings import Settings
from review_app.store import Store

__all__ = [
    "DEFAULT_TEST_SHARE",
    "VIEW_SPLITS",
    "assign_split",
    "choose_view_split",
    "compare_versions",
    "confirm_on_test",
    "default_view_split",
    "looks_at_test",
    "make_split",
    "record_test_look",
    "split_pair_ids",
    "split_summary",
    "test_look_count",
]

DEFAULT_TEST_SHARE = 0.3


@dataclass(frozen=True)
class SplitSummary:
    study: str
    n_dev: int
    n_test: int
    test_share: float
    seed: int
    created_by: str
    created_at: str
    by_category: dict[str, dict[str, int]]

    def line(self) -> str:
        return (
            f"study {self.study}: {self.n_dev} dev and {self.n_test} test comparisons "
            f"(test share {self.test_share:g}, seed {self.seed}, stratified by category; "
            f"recorded {self.created_at} by {self.created_by})"
        )


def assign_split(labelled: list[dict], test_share: float, seed: int) -> dict[int, str]:
    """pair_id -> 'dev' | 'test'. Items are split, not comparisons, so the comparisons of one
    item (one prompt) always land on the same side and a dev example never shows a test prompt.
    Within each category the items are shuffled with `seed` and round(share x items) go to test
    (at least one when the category has two items or more, never all of them)."""
    items_by_category: dict[str, list[str]] = {}
    for row in labelled:
        items = items_by_category.setdefault(row["category"] or "", [])
        if row["item_key"] not in items:
            items.append(row["item_key"])
    test_items: set[tuple[str, str]] = set()
    for category in sorted(items_by_category):
        items = sorted(items_by_category[category])
        rng = np.random.default_rng(
            [seed, int(hashlib.sha256(category.encode()).hexdigest(), 16) % 2**32]
        )
        order = [items[i] for i in rng.permutation(len(items))]
        n_test = round(test_share * len(items))
        if len(items) >= 2:
            n_test = min(max(n_test, 1), len(items) - 1)
        test_items.update((category, item) for item in order[:n_test])
    return {
        row["pair_id"]: "test" if (row["category"] or "", row["item_key"]) in test_items else "dev"
        for row in labelled
    }


def make_split(
    ctx: StudyContext, test_share: float = DEFAULT_TEST_SHARE, seed: int | None = None
) -> SplitSummary:
    """Split the study's human-labelled comparisons into dev and test, once (seeded, stratified
    by category, by item). A second split is refused: test stays held out."""
    actor = ctx.require("make the split")
    store, study, study_row = ctx.store, ctx.name, ctx.study
    if not 0 < test_share < 1:
        raise InputError(f"test share must be between 0 and 1 (exclusive), got {test_share}")
    seed = ctx.settings.seed if seed is None else seed
    with store.transaction():
        if store.calibration.split_record(study_row["id"]) is not None:
            raise Conflict(
                f"study {study} is already split into dev and test; a split is recorded once "
                "(re-splitting would let test labels leak into rubric choices)"
            )
        labelled = store.calibration.labelled_pairs(study_row["id"])
        if len(labelled) < 2:
            raise InputError(
                f"study {study} has {len(labelled)} comparisons with human votes; a split needs "
                "at least 2"
            )
        parts = assign_split(labelled, test_share, seed)
        store.calibration.insert_split(study_row["id"], parts, test_share, seed, actor.name)
        counts = {part: sum(1 for p in parts.values() if p == part) for part in ("dev", "test")}
        ctx.lock.change(
            actor,
            "",
            "split comparisons",
            deviates=False,
            test_share=test_share,
            seed=seed,
            **counts,
            digest=store.audit.split_digest(study_row["id"]),
        )
    return split_summary(store, study)


def split_summary(store: Store, study: str) -> SplitSummary | None:
    """The study's recorded split with its sizes per category, or None."""
    study_row = store.studies.require_study(study)
    record = store.calibration.split_record(study_row["id"])
    if record is None:
        return None
    parts = store.calibration.split_parts(study_row["id"])
    by_category: dict[str, dict[str, int]] = {}
    for row in store.calibration.labelled_pairs(study_row["id"]):
        part = parts.get(row["pair_id"])
        if part:
            counts = by_category.setdefault(
                row["category"] or "uncategorized", {"dev": 0, "test": 0}
            )
            counts[part] += 1
    return SplitSummary(
        study=study,
        n_dev=record["n_dev"],
        n_test=record["n_test"],
        test_share=record["test_share"],
        seed=record["seed"],
        created_by=record["created_by"],
        created_at=record["created_at"],
        by_category=by_category,
    )


def split_pair_ids(store: Store, study: str, split: str) -> set[int] | None:
    """The pair ids of one part of the study's split; None for "all"."""
    if split == "all":
        return None
    if split not in ("dev", "test"):
        raise InputError(f"split {split!r}: choose one of all, dev, test")
    study_row = store.studies.require_study(study)
    parts = store.calibration.split_parts(study_row["id"])
    if not parts:
        raise NotFound(
            f"study {study} has no dev/test split yet: make one with "
            f"`review-app calibrate split --study {study}`"
        )
    return {p for p, part in parts.items() if part == split}


@dataclass(frozen=True)
class VersionComparison:
    """Two judges (usually one judge with two rubric versions) compared on dev."""

    study: str
    split: str
    comparison: stats.RubricComparison
    changed: pd.DataFrame  # one row per comparison whose combined verdict changed
    outcomes_visible: bool

    def reading(self, name_a: str | None = None, name_b: str | None = None) -> str:
        """Which version agrees with the humans more, read off the paired CI of the difference
        (b minus a): only a CI that excludes 0 picks one."""
        c = self.comparison
        name_a, name_b = name_a or c.judge_a, name_b or c.judge_b
        diff = c.difference
        if diff.value is None and diff.n:
            return (
                "agreement withheld until the lock (a judge here can stand in for the outcomes; "
                "with a personal link it is shown as a recorded look)"
            )
        if diff.value is None:
            return f"no {self.split} comparison has votes and a verdict of both versions"
        if diff.ci is not None and diff.ci[0] > 0:
            return f"{name_b} agrees with the humans more (the CI excludes 0)"
        if diff.ci is not None and diff.ci[1] < 0:
            return f"{name_a} agrees with the humans more (the CI excludes 0)"
        return f"no clear difference on {self.split} (the CI includes 0)"

    def line(self) -> str:
        c = self.comparison
        return (
            f"on {self.split}: {c.judge_a} {stats.format_estimate(c.agreement_a)}; {c.judge_b} "
            f"{stats.format_estimate(c.agreement_b)}; difference {stats.format_estimate(c.difference)}; "
            f"{self.reading()}; {len(self.changed)} comparisons changed verdict"
        )


CHANGED_COLUMNS = [
    "pair_id",
    "item_key",
    "category",
    "system_x",
    "system_y",
    "verdict_a",
    "verdict_b",
    "human_majority",
    "n_votes",
]


def compare_versions(
    store: Store,
    study: str,
    judge_a: str,
    judge_b: str,
    split: str = "dev",
    settings: Settings | None = None,
    actor: Actor | None = None,
) -> VersionComparison:
    """Agreement with the humans of two judges on the study's dev comparisons (the split's
    default part; "test" counts as a look at test), a paired bootstrap CI of the difference
    (clustered by item) and the comparisons whose verdict changed, written as A and B before
    the thresholds are locked."""
    settings = settings or Settings.from_env()
    study_row = store.studies.require_study(study)
    data = study_data.load(store, study_row, settings, split=split)
    for judge in (judge_a, judge_b):
        if judge not in data.judges:
            raise NotFound(f"study {study} has no judge {judge!r}")
    comparison = stats.compare_judges(
        data.pairs,
        data.votes,
        data.verdicts,
        judge_a,
        judge_b,
        seed=settings.seed,
        n_boot=settings.bootstrap_resamples,
    )
    rows = comparison.changed.merge(data.pairs, on="pair_id")
    majority = stats.majority_labels(data.pairs, data.votes)
    lock = lock_of(store, study_row)
    visible = lock.visible
    if not visible:
        comparison = _sealed_agreement(
            StudyContext(store, settings, study_row, lock, actor), data, comparison
        )
    key = store.calibration.blinding_key()

    def name(outcome, x, y, pair_id):
        if outcome is None or (isinstance(outcome, float) and np.isnan(outcome)):
            return None
        if visible:
            return system_name(outcome, x, y)
        letters = ("B", "A") if flipped(key, int(pair_id)) else ("A", "B")
        return {"x": letters[0], "y": letters[1]}.get(outcome, outcome)

    def named(column: str) -> list:
        values = rows[column] if column in rows else rows["pair_id"].map(majority)
        return [
            name(o, x, y, p)
            for o, x, y, p in zip(
                values, rows["system_x"], rows["system_y"], rows["pair_id"], strict=True
            )
        ]

    # Sealed before the lock: nothing `export pairs` shares (the comparison's id and item are a
    # keyed label, the category is hidden, rows come in label order), else a length baseline's A or B plus the exported lengths would name
    # every majority's system.
    labels = [row_label(store.calibration.label_key(), int(p)) for p in rows["pair_id"]]
    changed = pd.DataFrame(
        {
            "pair_id": rows["pair_id"] if visible else labels,
            "item_key": rows["item_key"] if visible else labels,
            "category": rows["category"] if visible else HIDDEN,
            "system_x": rows["system_x"] if visible else "A",
            "system_y": rows["system_y"] if visible else "B",
            "verdict_a": named("outcome_a"),
            "verdict_b": named("outcome_b"),
            "human_majority": named("majority"),
            "n_votes": rows["pair_id"].map(data.votes.groupby("pair_id").size()).fillna(0),
        },
        columns=CHANGED_COLUMNS,
    )
    for column in ("verdict_a", "verdict_b", "human_majority"):
        # None, not NaN, marks "no verdict" or "no votes" (for JSON and the screen alike).
        values = changed[column].astype(object)
        changed[column] = values.where(values.notna(), None)
    if not visible:
        changed = changed.sort_values("item_key")
    if split == "test":
        record_test_look(store, study, [judge_a, judge_b], actor)
    return VersionComparison(study, split, comparison, changed.reset_index(drop=True), visible)


def _sealed_agreement(
    ctx: StudyContext, data: study_data.StudyData, comparison: stats.RubricComparison
) -> stats.RubricComparison:
    """Before the lock, the agreement of a judge that can stand in for the outcomes (see
    `early_looks.revealing_judges`) is a recorded look by the context's actor; for anyone who
    may not look, the agreement figures are withheld (the changed verdicts stay, as A and B)."""
    revealing = early_looks.revealing_judges(data)
    shown = [j for j in (comparison.judge_a, comparison.judge_b) if j in revealing]
    if not shown:
        return comparison
    if ctx.actor is not None and auth.allowed(ctx.actor, "look at outcomes"):
        agreement = {
            comparison.judge_a: comparison.agreement_a,
            comparison.judge_b: comparison.agreement_b,
        }
        figures = [
            {
                "judge": judge,
                "why": revealing[judge],
                "agreement_with_ties": agreement[judge].to_json(),
            }
            for judge in shown
        ]
        early_looks.record_look(ctx, ctx.actor, "judge agreement", figures)
        return comparison

    def blank(estimate: stats.Estimate) -> stats.Estimate:
        return stats.Estimate(value=None, n=estimate.n)

    return replace(
        comparison,
        agreement_a=blank(comparison.agreement_a),
        agreement_b=blank(comparison.agreement_b),
        difference=blank(comparison.difference),
    )


def record_test_look(store: Store, study: str, judges: list[str], actor: Actor | None) -> int:
    """Record one look at test agreement by `actor` (and its audit entry); returns how many looks
    the study has had. A look is always someone's: without an actor it is refused."""
    if actor is None:
        raise Forbidden(
            f"test agreement of study {study!r} is a recorded look: it needs a personal link"
        )
    auth.require(actor, "look at test")
    study_row = store.studies.require_study(study)
    with store.transaction():
        store.calibration.insert_test_look(study_row["id"], judges, actor.name)
        audit.record(store, actor.name, "looked at test", study_row["id"], judges=judges)
    return len(store.calibration.test_looks(study_row["id"]))


VIEW_SPLITS = ("dev", "test", "all")


def looks_at_test(store: Store, study: str, split: str) -> bool:
    """Whether figures over `split` show test agreement: test itself, or every comparison of a
    study that has a split (test's among them)."""
    if split == "test":
        return True
    return (
        split == "all"
        and store.calibration.split_record(store.studies.require_study(study)["id"]) is not None
    )


def default_view_split(store: Store, study: str) -> str:
    """What the calibration screen shows first: dev when the study has a split (so no one looks
    at test by accident), else every comparison."""
    return (
        "dev"
        if store.calibration.split_record(store.studies.require_study(study)["id"]) is not None
        else "all"
    )


def choose_view_split(
    store: Store, study: str, split: str, actor: Actor, settings: Settings | None = None
) -> int:
    """A reader chose which comparisons of a split study the calibration screen shows: test, or
    all (which includes test), is a recorded look at test, as `stats --split test` is. Returns how
    many looks the study has had."""
    if split not in VIEW_SPLITS:
        raise InputError(f"split {split!r}: choose one of {', '.join(VIEW_SPLITS)}")
    split_pair_ids(store, study, "test")  # NotFound without a split
    if split in ("test", "all"):
        judges = [j for j in judge_labels(store, study, settings) if not baselines.is_baseline(j)]
        return record_test_look(store, study, judges, actor)
    return test_look_count(store, study)


def test_look_count(store: Store, study: str) -> int:
    return len(store.calibration.test_looks(store.studies.require_study(study)["id"]))


def confirm_on_test(
    store: Store, study: str, judge: str, actor: Actor, settings: Settings | None = None
) -> stats.JudgeStats:
    """A judge's statistics on the held-out test comparisons. Every call is a recorded look at
    test: the screen shows how many there have been."""
    settings = settings or Settings.from_env()
    study_row = store.studies.require_study(study)
    data = study_data.load(store, study_row, settings, split="test")
    if judge not in data.judges:
        raise NotFound(f"study {study} has no judge {judge!r}")
    record_test_look(store, study, [judge], actor)
    found = data.overall.judge(judge)
    if found is None:
        raise NotFound(f"judge {judge!r} has no verdicts on the test comparisons of {study}")
    return found
