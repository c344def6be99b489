"""Reviewer quality for admins: per-reviewer records and the human ceiling with and without each
reviewer, excluding a reviewer from a study's statistics (a recorded, reversible decision) and
the comparisons with a known answer that measure reviewers' accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from review_app import auth, quality, stats
from review_app.auth import Actor
from review_app.errors import Conflict, InputError, NotFound
from review_app.services import early_looks
from review_app.services.context import StudyContext, lock_of
from review_app.services.studies import parse_comparison
from review_app.settings import Settings
from review_app.stats import Estimate
from review_app.store import Store

__all__ = [
    "QualityReport",
    "current_exclusions",
    "exclude_reviewer",
    "excluded_reviewers",
    "include_reviewer",
    "known_answers",
    "remove_known_answer",
    "reviewer_report",
    "set_known_answer",
]


@dataclass(frozen=True)
class QualityReport:
    """A study's reviewers: each one's record, the human ceiling (agreement without ties) with
    the current exclusions (with its 95% interval, as on the calibration screen) and without
    each reviewer in turn (point estimates), and every exclusion decision so far."""

    study: str
    reviewers: list[quality.ReviewerQuality]
    ceiling: Estimate
    ceiling_without: dict[str, Estimate]
    history: list[dict]

    def document(self) -> dict:
        """The JSON `review-app reviewers stats --json` prints."""
        return {
            "study": self.study,
            "ceiling": self.ceiling.to_json(),
            "reviewers": [
                r.to_json() | {"ceiling_without": self.ceiling_without[r.reviewer].to_json(False)}
                for r in self.reviewers
            ],
            "exclusions": self.history,
        }


def reviewer_report(
    store: Store, study: str, settings: Settings, looked_by: Actor | None
) -> QualityReport:
    """Every reviewer of the study with their record and flags. Before the lock, known-answer
    accuracy is a recorded look by `looked_by` (answers set to one system on the voted items
    would make it read that system's wins), and withheld when nobody who may look is named."""
    study_row = store.studies.require_study(study)
    study_id = study_row["id"]
    votes = store.frames.votes_frame(study_id, texts=True, with_excluded=True)
    pairs = store.frames.pairs_frame(study_id, texts=False)
    history = store.quality.exclusion_history(study_id)
    excluded = _currently_excluded(history)
    known = known_outcomes(store, study_id)
    ctx = StudyContext(store, settings, study_row, lock_of(store, study_row), looked_by)
    sealed = bool(known) and not ctx.lock.visible
    if sealed and (looked_by is None or not auth.allowed(looked_by, "look at outcomes")):
        known = {}
    records = quality.reviewer_quality(
        votes,
        pairs,
        known,
        excluded,
        seed=settings.seed,
        n_boot=settings.bootstrap_resamples,
    )
    if sealed and known:
        figures = [
            {"reviewer": r.reviewer, "known_answer_accuracy": r.known_answer_accuracy.to_json()}
            for r in records
            if r.known_answer_accuracy.n
        ]
        if figures:
            early_looks.record_look(ctx, looked_by, "known-answer accuracy", figures)
    counted = votes[~votes["reviewer"].isin(excluded)]
    ceiling_without = {
        r.reviewer: quality.human_agreement_without_ties(counted[counted["reviewer"] != r.reviewer])
        for r in records
    }
    return QualityReport(
        study=study,
        reviewers=records,
        ceiling=_ceiling(pairs, counted, settings),
        ceiling_without=ceiling_without,
        history=[
            {k: h[k] for k in ("reviewer", "excluded", "reason", "decided_by", "created_at")}
            | {"excluded": bool(h["excluded"])}
            for h in history
        ],
    )


def _ceiling(pairs: pd.DataFrame, votes: pd.DataFrame, settings: Settings) -> Estimate:
    """The human ceiling with its 95% interval, exactly as the calibration screen gives it: the
    same statistic of the same votes, resampled over the same items from the same seed."""
    no_verdicts = pd.DataFrame(columns=stats.VERDICT_COLUMNS)
    analysis = stats.analyse(
        pairs, votes, no_verdicts, seed=settings.seed, n_boot=settings.bootstrap_resamples
    )
    return analysis.humans.agreement_without_ties


def _currently_excluded(history: list[dict]) -> set[str]:
    state: dict[str, bool] = {}
    for decision in history:
        state[decision["reviewer"]] = bool(decision["excluded"])
    return {name for name, excluded in state.items() if excluded}


def current_exclusions(store: Store, study_id: int) -> list[dict]:
    """The reviewers excluded from the study now, each with the decision that excluded them
    (reviewer, reason, decided_by, created_at) and the votes it leaves out."""
    latest: dict[str, dict] = {}
    for decision in store.quality.exclusion_history(study_id):
        latest[decision["reviewer"]] = decision
    excluded = [d for _, d in sorted(latest.items()) if d["excluded"]]
    if not excluded:
        return []
    counts = store.quality.current_vote_counts(study_id, [d["reviewer_id"] for d in excluded])
    return [
        {
            "reviewer": d["reviewer"],
            "reason": d["reason"],
            "decided_by": d["decided_by"],
            "created_at": d["created_at"],
            "n_votes": counts.get(d["reviewer_id"], 0),
        }
        for d in excluded
    ]


def excluded_reviewers(store: Store, study: str) -> list[str]:
    """The names of the reviewers excluded from the study now, sorted."""
    return sorted(
        _currently_excluded(
            store.quality.exclusion_history(store.studies.require_study(study)["id"])
        )
    )


def exclude_reviewer(ctx: StudyContext, reviewer: str, reason: str) -> None:
    """Leave a reviewer's votes out of every statistic of the study (calibration, gate, report)
    from now on; recorded with who, when and why (after the lock, as a deviation), and
    reversible with `include_reviewer`."""
    _decide(ctx, reviewer, True, reason)


def include_reviewer(ctx: StudyContext, reviewer: str, reason: str) -> None:
    """Count an excluded reviewer's votes again (recorded like the exclusion)."""
    _decide(ctx, reviewer, False, reason)


def _decide(ctx: StudyContext, reviewer: str, exclude: bool, reason: str) -> None:
    actor = ctx.require("exclude a reviewer")
    reason = reason.strip()
    if not reason:
        raise InputError(f"say why {reviewer} is {'excluded' if exclude else 'included again'}")
    store = ctx.store
    with store.transaction():
        row = store.people.reviewer(reviewer)
        if row is None:
            raise NotFound(f"no reviewer named {reviewer!r}")
        excluded = row["id"] in store.quality.excluded_reviewer_ids(ctx.id)
        if excluded == exclude:
            state = "already excluded from" if exclude else "not excluded from"
            raise Conflict(f"{reviewer} is {state} study {ctx.name!r}")
        store.quality.insert_exclusion(ctx.id, row["id"], exclude, reason, actor.name)
        ctx.lock.change(
            actor,
            reason,
            "reviewer excluded" if exclude else "reviewer included again",
            f"{reviewer}'s votes {'counted' if exclude else 'left out'}",
            f"{reviewer}'s votes {'left out' if exclude else 'counted'}",
            reviewer=reviewer,
        )


# ---- known answers ----

ANSWER_WORDS = ("tie", "both_bad")


def known_outcomes(store: Store, study_id: int) -> dict[int, str]:
    """Pair id -> the known outcome in the pair's canonical terms ('x', 'y', 'tie', 'both_bad')."""
    out = {}
    for row in store.quality.known_answers(study_id):
        answer = row["answer"]
        out[row["pair_id"]] = {row["system_x"]: "x", row["system_y"]: "y"}.get(answer, answer)
    return out


def known_answers(store: Store, study: str) -> list[dict]:
    """The study's known-answer comparisons (item_key, system_x, system_y, answer, set_by,
    created_at), by item."""
    return store.quality.known_answers(store.studies.require_study(study)["id"])


def _pair_of(store: Store, study_row: dict, item: str, compare: str) -> tuple[int, str, str]:
    a, b = parse_comparison(compare)
    x, y = sorted((a, b))
    pair_id = store.studies.pair_index(study_row["id"]).get((item, x, y))
    if pair_id is None:
        raise NotFound(f"study {study_row['name']!r} has no comparison {a}:{b} on item {item!r}")
    return pair_id, a, b


def set_known_answer(ctx: StudyContext, item: str, compare: str, answer: str) -> None:
    """Mark a comparison (item, SYSTEM:SYSTEM) with its known correct answer: one of the two
    systems, `tie` or `both_bad`. Reviewers meet it blind in their queues like any other pair;
    their votes on it measure their accuracy."""
    actor = ctx.require("set a known answer")
    with ctx.store.transaction():
        pair_id, a, b = _pair_of(ctx.store, ctx.study, item, compare)
        if answer not in (a, b, *ANSWER_WORDS):
            raise InputError(f"answer {answer!r}: expected {a}, {b}, tie or both_bad")
        ctx.store.quality.set_known_answer(ctx.id, pair_id, answer, actor.name)
        ctx.lock.change(
            actor,
            "",
            "known answer set",
            deviates=False,
            item=item,
            compare=compare,
            answer=answer,
        )


def remove_known_answer(ctx: StudyContext, item: str, compare: str) -> None:
    """Take a comparison's known answer away (recorded in the audit log with who did it)."""
    actor = ctx.require("set a known answer")
    with ctx.store.transaction():
        pair_id, _, _ = _pair_of(ctx.store, ctx.study, item, compare)
        if pair_id not in known_outcomes(ctx.store, ctx.id):
            raise NotFound(f"item {item!r} ({compare}) has no known answer")
        ctx.store.quality.clear_known_answer(pair_id)
        ctx.lock.change(
            actor, "", "known answer removed", deviates=False, item=item, compare=compare
        )
