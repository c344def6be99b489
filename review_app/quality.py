"""Reviewer quality as pure functions over the store's frames: per reviewer their votes, time
per vote, agreement with the other reviewers' majority (95% bootstrap CI), position preference,
"I know which model" and both-bad rates, accuracy on known-answer comparisons, and flags that
point an admin at fast or careless reviewers. No I/O, no SQL, no Streamlit.

Definitions (docs/statistics.md, "Reviewer quality"):
- Outcomes are oriented to the pair's canonical order; `both_bad` counts as a tie when votes
  are compared, as in the calibration statistics.
- The others' majority on a comparison is the unique most frequent outcome among the votes of
  the other reviewers who count (excluded reviewers never do), else `tie`; a reviewer's
  agreement is the share of their votes on comparisons the others voted on that equal it. It is
  flagged as low when its 95% CI lies below the agreement of the other reviewers measured the
  same way with this reviewer left out.
- `p_left` is the share of a reviewer's decisive votes (not tie or both bad) with a known shown
  order that went to the response shown on the left.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from review_app.stats import Estimate

# A median under this many seconds per vote is too fast to have read two responses.
FAST_SECONDS = 8.0
# Flags need this many observations; below it a rate says little about a reviewer.
MIN_FOR_FLAG = 10
# Known-answer comparisons are meant to be clear: missing more than this share is a flag.
KNOWN_ANSWER_FLOOR = 0.7
MIN_KNOWN_FOR_FLAG = 3

RECOGNIZED_FLAG = "recognized_model"
_TIE_OF = {"x": "x", "y": "y", "tie": "tie", "both_bad": "tie"}


@dataclass(frozen=True)
class ReviewerQuality:
    """One reviewer's record in a study. Rates are None when there is nothing to count."""

    reviewer: str
    n_votes: int
    median_seconds: float | None
    n_timed: int
    agreement: Estimate
    p_left: Estimate
    recognized_rate: Estimate
    both_bad_rate: Estimate
    known_answer_accuracy: Estimate
    others_agreement: float | None = None
    excluded: bool = False
    flags: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        out = asdict(self)
        for name in _ESTIMATES:
            out[name] = getattr(self, name).to_json()
        return out


_ESTIMATES = ("agreement", "p_left", "recognized_rate", "both_bad_rate", "known_answer_accuracy")


def human_agreement_without_ties(votes: pd.DataFrame) -> Estimate:
    """Human-human agreement with ties excluded (point estimate, as in stats.calibrate): over
    every pair of decisive votes by two reviewers on one comparison, the share that agree."""
    decisive = votes[votes["outcome"].isin(["x", "y"])]
    counts = decisive.groupby(["pair_id", "outcome"]).size().unstack(fill_value=0)
    if counts.empty:
        return Estimate(None, 0)
    nx = counts.get("x", pd.Series(0, index=counts.index)).to_numpy()
    ny = counts.get("y", pd.Series(0, index=counts.index)).to_numpy()
    agree = int((nx * (nx - 1) // 2 + ny * (ny - 1) // 2).sum())
    total = int(((nx + ny) * (nx + ny - 1) // 2).sum())
    return Estimate(agree / total if total else None, total)


def _others_agreement_without(
    frame: pd.DataFrame, reviewer: str, excluded: set[str]
) -> float | None:
    """How often the other counted reviewers agree with their own others' majority once this
    reviewer is left out: the bar a reviewer's agreement is held against (with three reviews per
    pair, one careless reviewer splits the others' majority and lowers everyone's agreement)."""
    mine = frame["reviewer"] == reviewer
    touched = frame["pair_id"].isin(frame.loc[mine, "pair_id"])
    others = ~mine & ~frame["reviewer"].isin(excluded)
    untouched_hits = frame.loc[~touched & others, "majority_hit"]
    subset = frame[touched & ~mine]
    recomputed = pd.Series(_majority_hits(subset, excluded | {reviewer}), index=subset.index)
    hits = pd.concat([untouched_hits, recomputed[others[subset.index]]]).dropna()
    return float(hits.mean()) if len(hits) else None


def _bootstrap_share(hits: np.ndarray, rng: np.random.Generator, n_boot: int) -> Estimate:
    """The share of True in `hits` with a 95% percentile bootstrap interval over its entries."""
    n = len(hits)
    if n == 0:
        return Estimate(None, 0)
    value = float(hits.mean())
    if n_boot <= 0:
        return Estimate(value, n)
    draws = rng.integers(0, n, size=(n_boot, n))
    shares = hits[draws].mean(axis=1)
    low, high = np.percentile(shares, [2.5, 97.5])
    return Estimate(value, n, (float(low), float(high)))


def _share(hits: Iterable[bool]) -> Estimate:
    values = list(hits)
    return Estimate(sum(values) / len(values) if values else None, len(values))


_CLASSES = ("x", "y", "tie")


def _majority_hits(frame: pd.DataFrame, excluded: set[str]) -> np.ndarray:
    """Per vote: 1.0 when it equals the others' majority, 0.0 when not, NaN when no other
    counted reviewer voted on that comparison."""
    counted = frame[~frame["reviewer"].isin(excluded)]
    table = (
        counted.groupby(["pair_id", "coded"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=list(_CLASSES), fill_value=0)
    )
    totals = table.reindex(frame["pair_id"]).fillna(0).to_numpy(dtype=float)
    own = np.stack([(frame["coded"] == c).to_numpy() for c in _CLASSES], axis=1)
    own = own & ~frame["reviewer"].isin(excluded).to_numpy()[:, None]
    others = totals - own
    top = others.max(axis=1)
    unique = (others == top[:, None]).sum(axis=1) == 1
    majority = np.where(unique, others.argmax(axis=1), _CLASSES.index("tie"))
    mine = np.array([_CLASSES.index(c) for c in frame["coded"]])
    return np.where(others.sum(axis=1) > 0, (mine == majority).astype(float), np.nan)


def reviewer_quality(
    votes: pd.DataFrame,
    pairs: pd.DataFrame,
    known_answers: Mapping[int, str],
    excluded: Iterable[str] = (),
    seed: int = 0,
    n_boot: int = 1000,
) -> list[ReviewerQuality]:
    """Every reviewer's record, by name. `votes` is the store's full votes frame including
    excluded reviewers (columns pair_id, reviewer, outcome, shown_left, ms_spent, flags,
    source); `pairs` has pair_id, system_x, system_y; `known_answers` maps a pair id to its
    known outcome ('x', 'y', 'tie' or 'both_bad'). Excluded reviewers get a record too, but
    nobody is compared with their votes."""
    excluded = set(excluded)
    if votes.empty:
        return []
    systems = pairs.set_index("pair_id")[["system_x", "system_y"]]
    frame = votes.join(systems, on="pair_id")
    frame = frame.assign(coded=frame["outcome"].map(_TIE_OF)).reset_index(drop=True)
    frame = frame.assign(majority_hit=_majority_hits(frame, excluded))
    rng = np.random.default_rng(seed)
    records = []
    for reviewer, own in frame.groupby("reviewer", sort=True):
        hits = own["majority_hit"].dropna().to_numpy() == 1.0
        agreement = _bootstrap_share(hits, rng, n_boot)
        sided = own[own["outcome"].isin(["x", "y"]) & own["shown_left"].notna()]
        left_system = np.where(sided["outcome"] == "x", sided["system_x"], sided["system_y"])
        p_left = _bootstrap_share(
            (left_system == sided["shown_left"].to_numpy()).astype(bool), rng, n_boot
        )
        app = own[own["source"] == "app"]
        recognized = _share(RECOGNIZED_FLAG in json.loads(f or "[]") for f in app["flags"])
        answers = own["pair_id"].map(known_answers)
        known = (own["outcome"] == answers)[answers.notna()]
        timed = own["ms_spent"].dropna()
        others_agreement = _others_agreement_without(frame, reviewer, excluded)
        record = ReviewerQuality(
            reviewer=reviewer,
            n_votes=len(own),
            median_seconds=float(timed.median()) / 1000 if len(timed) else None,
            n_timed=len(timed),
            agreement=agreement,
            p_left=p_left,
            recognized_rate=recognized,
            both_bad_rate=_share(own["outcome"] == "both_bad"),
            known_answer_accuracy=_share(known),
            others_agreement=others_agreement,
            excluded=reviewer in excluded,
        )
        records.append(record)
    return [_flagged(r) for r in records]


def _flagged(record: ReviewerQuality) -> ReviewerQuality:
    """The record with the reasons an admin should look at this reviewer, in words."""
    flags = []
    if record.median_seconds is not None and record.n_timed >= MIN_FOR_FLAG:
        if record.median_seconds < FAST_SECONDS:
            flags.append(
                f"fast: median {record.median_seconds:.0f} s per vote (under {FAST_SECONDS:.0f} s)"
            )
    ci, bar = record.agreement.ci, record.others_agreement
    if bar is not None and ci is not None and record.agreement.n >= MIN_FOR_FLAG and ci[1] < bar:
        flags.append(
            f"low agreement: {record.agreement.value:.2f} with the others' majority (95% CI up "
            f"to {ci[1]:.2f}), while the others agree {bar:.2f} among themselves"
        )
    p_left = record.p_left
    if (
        p_left.ci is not None
        and p_left.n >= MIN_FOR_FLAG
        and not p_left.ci[0] <= 0.5 <= p_left.ci[1]
    ):
        side = "left" if p_left.value > 0.5 else "right"
        flags.append(
            f"position: picks the {side} response {max(p_left.value, 1 - p_left.value):.0%} of the time"
        )
    known = record.known_answer_accuracy
    if known.n >= MIN_KNOWN_FOR_FLAG and known.value < KNOWN_ANSWER_FLOOR:
        flags.append(f"known answers: {known.value:.0%} right on {known.n}")
    return replace(record, flags=flags)
