"""The disagreement browser: comparisons where a judge and the humans, or a judge's two orders,
disagree; its filters, the sealing of its rows before the lock (systems as A and B, nothing that
joins a row to an export), and its CSV."""

from __future__ import annotations

import hashlib
import hmac
import io
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from review_app import importers, stats
from review_app.services import early_looks, study_data
from review_app.services.context import lock_of
from review_app.settings import Settings
from review_app.store import Store

__all__ = [
    "DISAGREEMENT_COLUMNS",
    "DISAGREEMENT_KINDS",
    "DisagreementFilters",
    "HIDDEN",
    "LENGTH_BUCKETS",
    "disagreements",
    "disagreements_csv",
    "filter_disagreements",
    "flipped",
    "judges_shown",
    "length_bucket",
    "row_label",
    "system_name",
]

DISAGREEMENT_KINDS = ("majority", "orders")


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


# What a sealed row shows in place of a text that an export also carries.
HIDDEN = "(hidden until the thresholds are locked)"
# Before the lock a length difference is shown only as the lower bound of its bucket: exact
# differences would pick the comparison out of `export pairs`.
LENGTH_BUCKETS = (0, 30, 100, 300, 1000)


def length_bucket(difference: int) -> int:
    """The lower bound of the bucket `difference` (characters) falls in."""
    return max(b for b in LENGTH_BUCKETS if b <= difference)


def row_label(key: str, pair_id: int) -> str:
    """A sealed comparison's name, keyed with the workspace's label key
    (`store.calibration.label_key()`): it matches nothing in an export and cannot be recomputed
    from one, yet the rows of one comparison (one per judge, in any orientation) share it."""
    return "#" + hmac.new(key.encode(), f"row:{pair_id}".encode(), hashlib.sha256).hexdigest()[:8]


def system_name(outcome: str | None, system_x: str, system_y: str) -> str | None:
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


def flipped(key: str, pair_id: int) -> bool:
    """Whether the comparison's systems are written as B and A: keyed with the workspace's
    random blinding key, so nobody can recompute it from public settings."""
    return hmac.new(key.encode(), f"blind:{pair_id}".encode(), hashlib.sha256).digest()[0] % 2 == 1


def _blinded(frame: pd.DataFrame, votes: pd.DataFrame, key: str, label_key: str) -> pd.DataFrame:
    """The disagreement rows sealed: each pair's systems written as A and B, in a random
    orientation per pair, so whether a judge agrees with the humans still shows and which system
    either of them prefers does not. Nothing a sealed row carries is in an export (`export
    pairs` has each comparison's id, item, category, prompt and outputs by system), so no join
    puts the names back: the comparison is named by a keyed label, its texts and category are
    hidden, its lengths are given only as a bucket of their difference, and rows are ordered by
    that bucket and label rather than by the comparison's position in the study. The label
    stands in for both `pair_id` and `item_key`."""
    out = frame.copy()
    flip = frame["pair_id"].map(lambda p: flipped(key, int(p))).to_numpy(dtype=bool)
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
    out["pair_id"] = [row_label(label_key, int(p)) for p in frame["pair_id"]]
    out["item_key"] = out["pair_id"]
    for column in ("category", "prompt", "output_x", "output_y"):
        out[column] = HIDDEN
    out["len_x"], out["len_y"] = None, None
    out["length_difference"] = [length_bucket(int(d)) for d in frame["length_difference"]]
    out = out.sort_values(["length_difference", "judge", "item_key"], ascending=[False, True, True])
    return out.reset_index(drop=True)


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
    are locked the rows are sealed: systems as A and B, and nothing an export shares (see
    `_blinded`), and judges that can stand in for the outcomes (`early_looks`) are left out. With `split`
    "dev" or "test", only that part of the study's split (recording a look is the caller's)."""
    settings = settings or Settings.from_env()
    study_row = store.studies.require_study(study)
    data = study_data.load(store, study_row, settings, split=split)
    texts = data.texts(store)
    pairs, votes, verdicts = texts.pairs, texts.votes, texts.verdicts
    if filters is not None and filters.judges:
        verdicts = verdicts[verdicts["judge"].isin(filters.judges)]
    visible = lock_of(store, study_row).visible
    if not visible:
        # Counting an oracle's disagreements with the majority counts the candidate's losses:
        # judges that can stand in for the outcomes are left out until the lock.
        verdicts = verdicts[~verdicts["judge"].isin(early_looks.revealing_judges(data))]
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
            system_name(o, x, y)
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
    if not visible:
        frame = _blinded(
            frame, votes, store.calibration.blinding_key(), store.calibration.label_key()
        )
    return filter_disagreements(frame, filters) if filters is not None else frame


def judges_shown(store: Store, study: str, settings: Settings | None = None) -> list[str]:
    """The judges whose disagreements `disagreements` can show now, runs first, then the
    baselines: every judge of the study, less those left out before the lock (judges that can
    stand in for the outcomes). A judge that agrees everywhere is shown, with none."""
    settings = settings or Settings.from_env()
    study_row = store.studies.require_study(study)
    data = study_data.load(store, study_row, settings)
    hidden = set() if lock_of(store, study_row).visible else early_looks.revealing_judges(data)
    return [j for j in data.judge_order if j not in hidden]


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
