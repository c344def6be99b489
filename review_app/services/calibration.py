"""Calibration: how far each judge can be trusted, beside the human ceiling, and the disagreement
browser (the comparisons where a judge and the humans, or a judge's two orders, disagree)."""

from __future__ import annotations

import hashlib
import hmac
import io
import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from review_app import baselines, families, importers, stats
from review_app.errors import Conflict, InputError, NotFound
from review_app.services import audit, juries, study_data
from review_app.services.study_data import JudgeInfo
from review_app.settings import Settings
from review_app.store import Store

# A CI wider than this (about +-0.1) is flagged as too uncertain to read, with the votes needed.
CI_TARGET_WIDTH = 0.2
DISAGREEMENT_KINDS = ("majority", "orders")


@dataclass(frozen=True)
class CalibrationReport:
    """Everything the calibration screen and `review-app stats` show for one study."""

    study: str
    calibration: stats.Calibration
    judges: dict[str, JudgeInfo]
    assessments: dict[str, stats.Assessment]
    warnings: list[str]
    reference: str
    # Before the lock p_longer is withheld (see `stats.without_length_preference`).
    length_preference_withheld: bool = False

    LENGTH_PREFERENCE_WITHHELD = (
        "p_longer is withheld until the thresholds are locked: when one system's outputs are "
        "reliably the longer ones it reads as that system's win rate. The verbosity gap (judge "
        "minus humans) is shown."
    )

    def document(self) -> dict:
        """The `review-app stats --json` document (docs/statistics.md)."""
        return self.calibration.to_json()


def judge_labels(store: Store, study: str, settings: Settings | None = None) -> list[str]:
    """Every judge of a study as the statistics name it: runs first, then the baselines."""
    settings = settings or Settings.from_env()
    return study_data.load(store, store.require_study(study), settings).judge_order


def _reference_label(infos: dict[str, JudgeInfo]) -> str:
    """The label of the longest-output baseline: a stored run of it, else the computed one."""
    return next(
        (label for label, info in infos.items() if info.judge == baselines.REFERENCE),
        baselines.REFERENCE,
    )


def calibration_report(
    store: Store,
    study: str,
    settings: Settings | None = None,
    split: str = "all",
    looked_by: str = "",
) -> CalibrationReport:
    """Every calibration statistic of a study (docs/statistics.md), overall and per category,
    for every judge run, imported judge and baseline, with a verdict on each judge. With `split`
    "dev" or "test", on that part of the study's split only. With `looked_by`, a report that
    shows test agreement (see `looks_at_test`) is recorded as a look at test by that person;
    without, the recording is the caller's (a screen records a look once per choice)."""
    settings = settings or Settings.from_env()
    data = study_data.load(store, store.require_study(study), settings, split=split)
    if looked_by and looks_at_test(store, study, split):
        record_test_look(store, study, data.real_judges, by=looked_by)
    calibration = data.statistics.calibration
    withheld = not outcomes_visible(store, data.study)
    if withheld:
        calibration = stats.without_length_preference(calibration)
    overall = calibration.overall
    reference_label = _reference_label(data.judges)
    reference = reference_label if overall.judge(reference_label) is not None else None
    assessments = {
        j.judge: stats.assess_judge(j, overall.humans, reference) for j in overall.judges
    }
    skip = [j for j in data.judge_order if baselines.is_baseline(j)]
    return CalibrationReport(
        study=study,
        calibration=calibration,
        judges=data.judges,
        assessments=assessments,
        warnings=stats.small_n_warnings(overall, CI_TARGET_WIDTH, skip=skip),
        reference=reference_label,
        length_preference_withheld=withheld,
    )


def calibration_data_version(store: Store, study: str) -> str:
    """A key that changes whenever the study's votes, verdicts, runs or pairs change, so a page
    can cache `calibration_report` safely."""
    return store.calibration_data_version(store.require_study(study)["id"])


@dataclass(frozen=True)
class DisagreementFilters:
    """Which disagreements to list. Empty tuples mean "all"."""

    judges: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    kinds: tuple[str, ...] = DISAGREEMENT_KINDS
    min_length_difference: int = 0
    max_length_difference: int | None = None


DISAGREEMENT_COLUMNS = [
    "judge",
    "pair_id",
    "item_key",
    "category",
    "system_x",
    "system_y",
    "reason",
    "against_majority",
    "orders_disagree",
    "human_majority",
    "judge_verdict",
    "verdict_x_first",
    "verdict_y_first",
    "n_votes",
    "votes",
    "len_x",
    "len_y",
    "length_difference",
    "prompt",
    "output_x",
    "output_y",
    "explanation_x_first",
    "explanation_y_first",
    "explanation_combined",
    "raw_x_first",
    "raw_y_first",
]


def _system_name(outcome: str | None, system_x: str, system_y: str) -> str | None:
    """An x/y/tie outcome as the name of the winning system (or tie / None)."""
    return {"x": system_x, "y": system_y}.get(outcome, outcome) if outcome else None


def _vote_lines(votes: pd.DataFrame, names: dict[int, dict[str, str]] | None = None) -> pd.Series:
    """pair_id -> one line per vote: reviewer, choice, side shown left, rationale. With `names`
    (pair_id -> system -> "A" | "B") the systems are written as A and B."""
    if votes.empty:
        return pd.Series(dtype=object)

    def shown(pair_id, system):
        return names.get(pair_id, {}).get(system, system) if names and system else system

    winner = [shown(p, w) for p, w in zip(votes["pair_id"], votes["winner"], strict=True)]
    left = [shown(p, s) for p, s in zip(votes["pair_id"], votes["shown_left"], strict=True)]
    rationale = votes["rationale"].astype(object).fillna("")
    lines = (
        votes["reviewer"].astype(str)
        + ": "
        + pd.Series(winner, index=votes.index).astype(str)
        + pd.Series(left, index=votes.index).map(
            lambda s: f" (left: {s})" if isinstance(s, str) and s else ""
        )
        + rationale.map(lambda r: f" - {r}" if r else "")
    )
    return lines.groupby(votes["pair_id"]).agg("\n".join)


# The columns of a disagreement row that belong to one side each, swapped together when blinded.
_SIDE_COLUMNS = (
    ("output_x", "output_y"),
    ("len_x", "len_y"),
    ("verdict_x_first", "verdict_y_first"),
    ("explanation_x_first", "explanation_y_first"),
    ("raw_x_first", "raw_y_first"),
)
_NAMED_COLUMNS = ("human_majority", "judge_verdict", "verdict_x_first", "verdict_y_first")


def _flipped(key: str, pair_id: int) -> bool:
    """Whether the comparison's systems are written as B and A: keyed with the workspace's
    random blinding key, so nobody can recompute it from public settings."""
    return hmac.new(key.encode(), f"blind:{pair_id}".encode(), hashlib.sha256).digest()[0] % 2 == 1


def _blinded(frame: pd.DataFrame, votes: pd.DataFrame, key: str) -> pd.DataFrame:
    """The disagreement rows with each pair's systems written as A and B, in a random orientation
    per pair: whether a judge agrees with the humans still shows, which system either of them
    prefers does not (before the lock, outcomes stay hidden)."""
    out = frame.copy()
    flip = frame["pair_id"].map(lambda p: _flipped(key, int(p))).to_numpy(dtype=bool)
    for left, right in _SIDE_COLUMNS:
        a, b = frame[left].to_numpy(dtype=object), frame[right].to_numpy(dtype=object)
        out[left], out[right] = np.where(flip, b, a), np.where(flip, a, b)
    names: dict[int, dict[str, str]] = {}
    for pair_id, x, y, swap in zip(
        frame["pair_id"], frame["system_x"], frame["system_y"], flip, strict=True
    ):
        names[int(pair_id)] = {y: "A", x: "B"} if swap else {x: "A", y: "B"}
    for column in _NAMED_COLUMNS:
        out[column] = [
            names[int(p)].get(v, v) if v is not None else None
            for p, v in zip(out["pair_id"], out[column], strict=True)
        ]
    out["system_x"], out["system_y"] = "A", "B"
    out["votes"] = out["pair_id"].map(_vote_lines(votes, names)).fillna("")
    # Free text written outside the app (an imported rationale or judge explanation) may name a
    # system: those names are written as A and B too.
    for column in _FREE_TEXT_COLUMNS:
        out[column] = [
            _letters(text, names[int(p)])
            for p, text in zip(out["pair_id"], out[column], strict=True)
        ]
    return out


_FREE_TEXT_COLUMNS = (
    "votes",
    "explanation_x_first",
    "explanation_y_first",
    "explanation_combined",
    "raw_x_first",
    "raw_y_first",
)


def _letters(text: str | None, names: dict[str, str]) -> str | None:
    if not isinstance(text, str) or not text:
        return text
    pattern = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.sub(rf"\b({pattern})\b", lambda m: names[m.group(1)], text)


def _explanations(verdicts: pd.DataFrame) -> pd.DataFrame:
    """(judge, pair_id) -> explanation and raw text of each order and of a combined verdict."""
    columns = [
        f"{prefix}_{name}"
        for name in ("x_first", "y_first", "combined")
        for prefix in ("explanation", "raw")
    ]
    if verdicts.empty:
        return pd.DataFrame(
            columns=columns, index=pd.MultiIndex.from_tuples([], names=["judge", "pair_id"])
        )
    order = verdicts["first"].fillna("combined")
    frame = verdicts.assign(order=order)[["judge", "pair_id", "order", "explanation", "raw_text"]]
    frame = frame.drop_duplicates(["judge", "pair_id", "order"], keep="last")
    wide = frame.pivot(index=["judge", "pair_id"], columns="order")
    out = pd.DataFrame(index=wide.index)
    for order, name in (("x", "x_first"), ("y", "y_first"), ("combined", "combined")):
        for field, prefix in (("explanation", "explanation"), ("raw_text", "raw")):
            column = (field, order)
            out[f"{prefix}_{name}"] = wide[column] if column in wide.columns else None
    return out


def disagreements(
    store: Store,
    study: str,
    filters: DisagreementFilters | None = None,
    settings: Settings | None = None,
    split: str = "all",
) -> pd.DataFrame:
    """Comparisons where a judge's combined verdict differs from the human majority, or where
    its two orders disagree, with both outputs, the votes with their rationales and the judge's
    explanation for each order. Largest length difference first. Before the study's thresholds
    are locked the systems are written as A and B (`outcomes_visible` says which). With `split`
    "dev" or "test", only that part of the study's split (recording a look is the caller's)."""
    settings = settings or Settings.from_env()
    study_row = store.require_study(study)
    data = study_data.load(store, study_row, settings, split=split)
    texts = data.texts(store)
    pairs, votes, verdicts = texts.pairs, texts.votes, texts.verdicts
    if filters is not None and filters.judges:
        verdicts = verdicts[verdicts["judge"].isin(filters.judges)]
    combined = stats.combine_verdicts(pairs, verdicts)
    majority = stats.majority_labels(pairs, votes)
    rows = combined.merge(pairs, on="pair_id")
    rows["majority"] = rows["pair_id"].map(majority)
    against_majority = (
        rows["majority"].notna() & rows["outcome"].notna() & (rows["outcome"] != rows["majority"])
    )
    reasons = pd.Series("", index=rows.index, dtype=object)
    reasons = reasons.where(~against_majority, "disagrees with the human majority")
    reasons = reasons.where(~rows["inconsistent"], "its two orders disagree")
    reasons = reasons.where(
        ~(against_majority & rows["inconsistent"]),
        "disagrees with the human majority; its two orders disagree",
    )
    rows["reason"] = reasons
    rows["against_majority"] = against_majority
    rows["orders_disagree"] = rows["inconsistent"]
    rows = rows[rows["reason"] != ""]
    if rows.empty:
        return pd.DataFrame(columns=DISAGREEMENT_COLUMNS)

    def name_of(column: str) -> list:
        return [
            _system_name(o, x, y)
            for o, x, y in zip(rows[column], rows["system_x"], rows["system_y"], strict=True)
        ]

    rows["length_difference"] = (rows["len_x"] - rows["len_y"]).abs()
    rows["human_majority"] = name_of("majority")
    rows["judge_verdict"] = name_of("outcome")
    rows["verdict_x_first"] = name_of("outcome_first_x")
    rows["verdict_y_first"] = name_of("outcome_first_y")
    rows["n_votes"] = rows["pair_id"].map(votes.groupby("pair_id").size()).fillna(0).astype(int)
    rows["votes"] = rows["pair_id"].map(_vote_lines(votes)).fillna("")
    rows = rows.join(_explanations(verdicts), on=["judge", "pair_id"])
    for column in DISAGREEMENT_COLUMNS:
        # None, not NaN, marks "no such order" for the pages and the CSV.
        values = rows[column].astype(object)
        rows[column] = values.where(values.notna(), None)
    rows = rows.sort_values(
        ["length_difference", "judge", "pair_id"], ascending=[False, True, True]
    )
    frame = rows[DISAGREEMENT_COLUMNS].reset_index(drop=True)
    if not outcomes_visible(store, study_row):
        frame = _blinded(frame, votes, store.blinding_key())
    return filter_disagreements(frame, filters) if filters is not None else frame


def outcomes_visible(store: Store, study_row: dict) -> bool:
    """Whether the study's thresholds are locked, so screens may name which system won."""
    return store.threshold_lock(study_row["id"]) is not None


def filter_disagreements(frame: pd.DataFrame, filters: DisagreementFilters) -> pd.DataFrame:
    """The rows of a `disagreements` table that pass `filters` (a page filters without reloading)."""
    keep = pd.Series(True, index=frame.index)
    if filters.judges:
        keep &= frame["judge"].isin(filters.judges)
    if filters.categories:
        keep &= frame["category"].isin(filters.categories)
    keep &= frame["length_difference"].astype(int) >= filters.min_length_difference
    if filters.max_length_difference is not None:
        keep &= frame["length_difference"].astype(int) <= filters.max_length_difference
    wanted = pd.Series(False, index=frame.index)
    if "majority" in filters.kinds:
        wanted |= frame["against_majority"].astype(bool)
    if "orders" in filters.kinds:
        wanted |= frame["orders_disagree"].astype(bool)
    return frame[keep & wanted].reset_index(drop=True)


def disagreements_csv(frame: pd.DataFrame) -> str:
    """The disagreement table as CSV text (for admins; blinded as the table is), safe to open in
    a spreadsheet like every CSV export."""
    buffer = io.StringIO()
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    importers.write_csv(rows, frame.columns, buffer)
    return buffer.getvalue()


# ---- rubric iteration: the dev/test split, comparing versions, looks at test ----

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
    store: Store,
    study: str,
    test_share: float = DEFAULT_TEST_SHARE,
    seed: int | None = None,
    by: str = "cli",
    settings: Settings | None = None,
) -> SplitSummary:
    """Split the study's human-labelled comparisons into dev and test, once (seeded, stratified
    by category, by item). A second split is refused: test stays held out."""
    settings = settings or Settings.from_env()
    if not 0 < test_share < 1:
        raise InputError(f"test share must be between 0 and 1 (exclusive), got {test_share}")
    seed = settings.seed if seed is None else seed
    study_row = store.require_study(study)
    with store.transaction():
        if store.split_record(study_row["id"]) is not None:
            raise Conflict(
                f"study {study} is already split into dev and test; a split is recorded once "
                "(re-splitting would let test labels leak into rubric choices)"
            )
        labelled = store.labelled_pairs(study_row["id"])
        if len(labelled) < 2:
            raise InputError(
                f"study {study} has {len(labelled)} comparisons with human votes; a split needs "
                "at least 2"
            )
        parts = assign_split(labelled, test_share, seed)
        store.insert_split(study_row["id"], parts, test_share, seed, by)
        counts = {part: sum(1 for p in parts.values() if p == part) for part in ("dev", "test")}
        audit.record(
            store,
            by,
            "split comparisons",
            study_row["id"],
            test_share=test_share,
            seed=seed,
            **counts,
            digest=store.split_digest(study_row["id"]),
        )
    return split_summary(store, study)


def split_summary(store: Store, study: str) -> SplitSummary | None:
    """The study's recorded split with its sizes per category, or None."""
    study_row = store.require_study(study)
    record = store.split_record(study_row["id"])
    if record is None:
        return None
    parts = store.split_parts(study_row["id"])
    by_category: dict[str, dict[str, int]] = {}
    for row in store.labelled_pairs(study_row["id"]):
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
    study_row = store.require_study(study)
    parts = store.split_parts(study_row["id"])
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
    by: str = "compare",
) -> VersionComparison:
    """Agreement with the humans of two judges on the study's dev comparisons (the split's
    default part; "test" counts as a look at test), a paired bootstrap CI of the difference
    (clustered by item) and the comparisons whose verdict changed, written as A and B before
    the thresholds are locked."""
    settings = settings or Settings.from_env()
    study_row = store.require_study(study)
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
    visible = outcomes_visible(store, study_row)
    key = store.blinding_key()

    def name(outcome, x, y, pair_id):
        if outcome is None or (isinstance(outcome, float) and np.isnan(outcome)):
            return None
        if visible:
            return _system_name(outcome, x, y)
        letters = ("B", "A") if _flipped(key, int(pair_id)) else ("A", "B")
        return {"x": letters[0], "y": letters[1]}.get(outcome, outcome)

    def named(column: str) -> list:
        values = rows[column] if column in rows else rows["pair_id"].map(majority)
        return [
            name(o, x, y, p)
            for o, x, y, p in zip(
                values, rows["system_x"], rows["system_y"], rows["pair_id"], strict=True
            )
        ]

    changed = pd.DataFrame(
        {
            "pair_id": rows["pair_id"],
            "item_key": rows["item_key"],
            "category": rows["category"],
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
    if split == "test":
        record_test_look(store, study, [judge_a, judge_b], by=by)
    return VersionComparison(study, split, comparison, changed.reset_index(drop=True), visible)


def record_test_look(store: Store, study: str, judges: list[str], by: str) -> int:
    """Record one look at test agreement (and its audit entry); returns how many looks the study
    has had."""
    study_row = store.require_study(study)
    with store.transaction():
        store.insert_test_look(study_row["id"], judges, by)
        audit.record(store, by, "looked at test", study_row["id"], judges=judges)
    return len(store.test_looks(study_row["id"]))


VIEW_SPLITS = ("dev", "test", "all")


def looks_at_test(store: Store, study: str, split: str) -> bool:
    """Whether figures over `split` show test agreement: test itself, or every comparison of a
    study that has a split (test's among them)."""
    if split == "test":
        return True
    return split == "all" and store.split_record(store.require_study(study)["id"]) is not None


def default_view_split(store: Store, study: str) -> str:
    """What the calibration screen shows first: dev when the study has a split (so no one looks
    at test by accident), else every comparison."""
    return "dev" if store.split_record(store.require_study(study)["id"]) is not None else "all"


def choose_view_split(
    store: Store, study: str, split: str, by: str, settings: Settings | None = None
) -> int:
    """A reader chose which comparisons of a split study the calibration screen shows: test, or
    all (which includes test), is a recorded look at test, as `stats --split test` is. Returns how
    many looks the study has had."""
    if split not in VIEW_SPLITS:
        raise InputError(f"split {split!r}: choose one of {', '.join(VIEW_SPLITS)}")
    split_pair_ids(store, study, "test")  # NotFound without a split
    if split in ("test", "all"):
        judges = [j for j in judge_labels(store, study, settings) if not baselines.is_baseline(j)]
        return record_test_look(store, study, judges, by=by)
    return test_look_count(store, study)


def test_look_count(store: Store, study: str) -> int:
    return len(store.test_looks(store.require_study(study)["id"]))


def confirm_on_test(
    store: Store, study: str, judge: str, by: str, settings: Settings | None = None
) -> stats.JudgeStats:
    """A judge's statistics on the held-out test comparisons. Every call is a recorded look at
    test: the screen shows how many there have been."""
    settings = settings or Settings.from_env()
    study_row = store.require_study(study)
    data = study_data.load(store, study_row, settings, split="test")
    if judge not in data.judges:
        raise NotFound(f"study {study} has no judge {judge!r}")
    record_test_look(store, study, [judge], by)
    found = data.statistics.calibration.overall.judge(judge)
    if found is None:
        raise NotFound(f"judge {judge!r} has no verdicts on the test comparisons of {study}")
    return found


# ---- self-preference ----


def self_preference(
    store: Store, study: str, settings: Settings | None = None, split: str = "all"
) -> list[stats.SelfPreference]:
    """For every real judge whose model family is known and matches a system's: the judge's
    win-rate shift toward that system relative to the humans, on that system's comparisons
    against systems of other families (paired CI; flagged when it excludes 0). Families come
    from the names, overridden by REVIEW_APP_MODEL_FAMILIES. Before the thresholds are locked
    only the shift is given: the judge's and the humans' own win rates for the system would say
    which system the humans prefer."""
    settings = settings or Settings.from_env()
    study_row = store.require_study(study)
    data = study_data.load(store, study_row, settings, split=split)
    return self_preference_of(data, settings, visible=outcomes_visible(store, study_row))


def self_preference_of(
    data: study_data.StudyData, settings: Settings, visible: bool = True
) -> list[stats.SelfPreference]:
    """`self_preference` on study data already loaded (the sign-off report reads it once);
    without `visible`, the judge's and the humans' own win rates are left out."""
    overrides = families.parse_overrides(settings.model_families)
    pairs = data.pairs
    systems = sorted(set(pairs["system_x"]) | set(pairs["system_y"]))
    system_family = {s: families.family_of(s, overrides) for s in systems}
    out = []
    for label in data.real_judges:
        info = data.judges[label]
        family = families.family_of(label, overrides) or families.family_of(info.judge, overrides)
        if family is None:
            continue
        for system in systems:
            if system_family[system] != family:
                continue
            other = pairs["system_y"].where(pairs["system_x"] == system, pairs["system_x"])
            own = (pairs["system_x"] == system) | (pairs["system_y"] == system)
            against = own & (other.map(system_family) != family)
            found = stats.self_preference(
                pairs[against],
                data.votes,
                data.verdicts,
                label,
                system,
                seed=settings.seed,
                n_boot=settings.bootstrap_resamples,
            )
            if not visible:
                found = replace(found, judge_win_rate=None, human_win_rate=None)
            out.append(found)
    return out


# ---- pointwise scores (judges' and juries') ----


@dataclass(frozen=True)
class PointwiseScores:
    """Judges' and juries' pointwise scores: per judge, system and criterion, the mean over
    comparisons of its score (both orders averaged) and the comparisons behind it. Before the
    thresholds are locked both systems are pooled (`by_system` False): a per-system mean would
    say which system a judge prefers."""

    table: pd.DataFrame  # judge, system, criterion, mean_score, n_comparisons
    by_system: bool

    def to_json(self) -> dict:
        return {"by_system": self.by_system, "rows": self.table.to_dict("records")}


def pointwise_scores(store: Store, study: str, split: str = "all") -> PointwiseScores:
    """The pointwise scores of every judge run that has them and of every jury (the mean of its
    members' scores), on one part of the split when `split` is dev or test (not itself a look at
    test: `stats --split test` records one)."""
    study_row = store.require_study(study)
    keep = split_pair_ids(store, study, split)
    scores = juries.member_scores(store, study_row["id"])
    if keep is not None:
        scores = scores[scores["pair_id"].isin(keep)]
    frames = [scores]
    for jury in store.juries(study_row["id"]):
        own = scores[scores["judge"].isin(jury["members"])]
        frames.append(own.assign(judge=juries.jury_label(jury["name"])))
    visible = outcomes_visible(store, study_row)
    table = stats.pointwise_summary(pd.concat(frames, ignore_index=True), by_system=visible)
    return PointwiseScores(table, visible)
