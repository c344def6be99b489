"""Reviewing: the pair a reviewer sees next, their vote, skip and undo, their recent votes and
progress. Screen terms (A = left, B = right) are turned into system names here and nowhere else."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from review_app import assignment
from review_app.errors import Conflict, InputError, NotFound
from review_app.settings import Settings
from review_app.store import AssignmentState, Store, now_iso

__all__ = [
    "CHOICES",
    "Draft",
    "FLAGS",
    "ReviewProgress",
    "ReviewTask",
    "guidelines",
    "my_votes",
    "next_pair",
    "record_vote",
    "review_progress",
    "review_study",
    "skip_pair",
    "undo_last_vote",
    "voted_under_guidelines",
    "votes_done",
]

CHOICES = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both bad"}
# The choice of the vote row an undo appends (it supersedes the vote and has no winner).
RETRACTED = "retracted"
FLAGS = {
    "recognized_model": "I think I know which model wrote this",
    "broken_output": "Broken output",
}


@dataclass(frozen=True)
class Draft:
    """What a reviewer had entered on a pair before undoing their vote on it, in screen terms
    (criteria as {criterion: {"A"/"B": score}}), so the pair comes back as they left it."""

    choice: str
    rationale: str
    flags: tuple[str, ...]
    criteria: dict[str, dict[str, int]]


@dataclass(frozen=True)
class ReviewTask:
    """One pair as a reviewer sees it: responses "A" (left) and "B" (right), never who wrote
    them. `assignment_id` is the handle for voting; it encodes nothing about the systems.
    `draft` holds the reviewer's entries when the pair is back after an undo."""

    assignment_id: int
    prompt: str
    reference: str | None
    text_a: str
    text_b: str
    criteria: tuple[str, ...]
    ask_rationale: bool
    draft: Draft | None = None


@dataclass(frozen=True)
class ReviewProgress:
    done: int
    assigned: int


def review_study(store: Store, user: dict) -> dict | None:
    """The study a user reviews: their own, else the most recent one."""
    if user.get("study_id"):
        return store.studies.study_by_id(user["study_id"])
    studies = store.studies.studies(archived=False)
    return store.studies.study_by_id(studies[-1]["id"]) if studies else None


def next_pair(
    store: Store, settings: Settings, reviewer_id: int, study_id: int, now: float | None = None
) -> ReviewTask | None:
    """The pair the reviewer should see now, leased to them; None when nothing is left for them.

    An open pair (one they were shown, or one they just undid) comes back first, so a reload
    continues where they were; showing it again writes nothing until half of its lease has run
    out. Otherwise the next pair in their own queue order that they have never seen and that
    still needs reviews: the queue is read outside any write, then the pair is leased in one
    short write transaction that re-checks it, so concurrent reviewers never take a pair past
    its k reviews. A reviewer with nothing left causes no write at all."""
    now = time.time() if now is None else now
    lease_seconds = settings.lease_minutes * 60
    study = store.studies.study_by_id(study_id)
    if study is None:
        raise NotFound(f"no study with id {study_id}")
    standing = store.review.standing(reviewer_id, study_id, now)
    held = standing["open"]
    if held and held[0]["leased_until"] > now + lease_seconds / 2:
        return _review_task(store, study, held[0]["id"])
    pick = None
    if not held:
        pick = assignment.pick_next(store, study, reviewer_id, settings.seed, now, standing)
        if pick is None:
            return None
    lease = now + lease_seconds
    with store.transaction():
        handed = None
        if pick is not None:
            handed = assignment.claim_pick(store, study, reviewer_id, now, lease, pick)
        if handed is None:
            handed = _renew_or_claim(store, settings, study, reviewer_id, now)
    return None if handed is None else _review_task(store, study, handed)


def _renew_or_claim(
    store: Store, settings: Settings, study: dict, reviewer_id: int, now: float
) -> int | None:
    """Inside a write transaction: renew the lease of the reviewer's open pair that can still
    be theirs (releasing those others filled meanwhile), else walk their queue for a new one."""
    lease = now + settings.lease_minutes * 60
    for open_one in store.review.open_assignments(reviewer_id, study["id"]):
        pair_id = open_one["pair_id"]
        if (
            open_one["leased_until"] > now
            or store.review.live_reviews([pair_id], now)[pair_id]["n"] < study["reviews_per_pair"]
        ):
            store.review.set_assignment_state(open_one["id"], AssignmentState.OPEN, lease)
            return open_one["id"]
        store.review.set_assignment_state(open_one["id"], AssignmentState.RELEASED)
    return assignment.claim_next(store, study, reviewer_id, settings.seed, now, lease)


def _review_task(store: Store, study: dict, assignment_id: int) -> ReviewTask:
    handed = store.review.handed(assignment_id)
    return ReviewTask(
        assignment_id=assignment_id,
        prompt=handed["prompt"],
        reference=handed["reference"] if study["show_reference"] else None,
        text_a=handed["text_a"],
        text_b=handed["text_b"],
        criteria=tuple(json.loads(study["criteria"] or "[]")),
        ask_rationale=bool(study["ask_rationale"]),
        draft=_undone_draft(store, handed),
    )


def _undone_draft(store: Store, handed: dict) -> Draft | None:
    """The entries of the vote the reviewer last undid on this pair, if their latest vote on it
    is that undo (a reload after an undo brings them back too)."""
    if handed["latest_choice"] != RETRACTED or handed["latest_supersedes"] is None:
        return None
    undone = store.review.vote(handed["latest_supersedes"])
    side_of = {undone["shown_left"]: "A", undone["shown_right"]: "B"}
    criteria = {
        name: {side_of[system]: score for system, score in by_system.items() if system in side_of}
        for name, by_system in json.loads(undone["criteria"] or "{}").items()
    }
    return Draft(
        choice=undone["choice"],
        rationale=undone["rationale"] or "",
        flags=tuple(json.loads(undone["flags"] or "[]")),
        criteria=criteria,
    )


def guidelines(store: Store, study_id: int) -> dict | None:
    """The study's guidelines in force (content_hash, body), or None."""
    return store.studies.current_guidelines(study_id)


def voted_under_guidelines(
    store: Store, reviewer_id: int, study_id: int, content_hash: str
) -> bool:
    """Whether the reviewer has voted in the study while these guidelines were in force (until
    then the review screen shows them open)."""
    return store.review.voted_under_guidelines(reviewer_id, study_id, content_hash)


def _own_assignment(store: Store, reviewer_id: int, assignment_id: int) -> dict:
    handed = store.review.assignment(assignment_id)
    if handed is None or handed["reviewer_id"] != reviewer_id:
        raise NotFound("this pair is not in your queue")
    return handed


def record_vote(
    store: Store,
    settings: Settings,
    reviewer_id: int,
    assignment_id: int,
    choice: str,
    criteria: dict[str, dict[str, int]] | None = None,
    rationale: str = "",
    flags: Iterable[str] = (),
    ms_spent: int | None = None,
    now: float | None = None,
) -> int:
    """Record the reviewer's vote on a pair they were handed and return the vote id.

    `choice` is in screen terms ("A" = left, "B", "tie", "both_bad"); it is stored with the
    winning system and the shown order. `criteria` maps criterion -> {"A": 1..5, "B": 1..5}.
    Voting again on the same pair (an edit) appends a row that supersedes the previous one. The
    vote records the hash of the study's guidelines in force when it is cast."""
    now = time.time() if now is None else now
    if choice not in CHOICES:
        raise InputError(f"choice {choice!r}: expected one of {', '.join(CHOICES)}")
    flags = sorted(set(flags))
    unknown = [f for f in flags if f not in FLAGS]
    if unknown:
        raise InputError(f"unknown flag {unknown[0]!r}; expected one of {', '.join(FLAGS)}")
    with store.transaction():
        handed = _own_assignment(store, reviewer_id, assignment_id)
        if handed["done"] in (AssignmentState.SKIPPED, AssignmentState.RELEASED):
            raise Conflict(
                "you skipped this pair or it went to another reviewer; it cannot be voted"
            )
        study = store.studies.study_by_id(handed["study_id"])
        pair_id = handed["pair_id"]
        if handed["done"] == AssignmentState.OPEN and handed["leased_until"] <= now:
            if store.review.live_reviews([pair_id], now)[pair_id]["n"] >= study["reviews_per_pair"]:
                store.review.set_assignment_state(assignment_id, AssignmentState.RELEASED)
                raise Conflict(
                    "this pair was reserved for you for "
                    f"{settings.lease_minutes:g} minutes and has since been reviewed by others"
                )
        shown_left, shown_right = handed["shown_left"], handed["shown_right"]
        by_side = {"A": shown_left, "B": shown_right}
        allowed = set(json.loads(study["criteria"] or "[]"))
        scores: dict[str, dict[str, int]] = {}
        for name, sides in (criteria or {}).items():
            if name not in allowed:
                raise InputError(f"criterion {name!r} is not rated in this study")
            for side, score in sides.items():
                if side not in by_side or score not in (1, 2, 3, 4, 5):
                    raise InputError(f"criterion {name!r}: expected scores 1-5 for A and B")
                scores.setdefault(name, {})[by_side[side]] = score
        previous = store.review.latest_vote(pair_id, reviewer_id)
        in_force = store.studies.current_guidelines(study["id"])
        vote_id = store.review.insert_vote(
            {
                "pair_id": pair_id,
                "reviewer_id": reviewer_id,
                "shown_left": shown_left,
                "shown_right": shown_right,
                "choice": choice,
                "winner": by_side.get(choice, choice),
                "criteria": json.dumps(scores, sort_keys=True),
                "rationale": rationale.strip(),
                "flags": json.dumps(flags),
                "ms_spent": ms_spent,
                "source": "app",
                "created_at": now_iso(),
                "supersedes": previous["id"] if previous else None,
                "guidelines_hash": in_force["content_hash"] if in_force else None,
            }
        )
        store.review.set_assignment_state(assignment_id, AssignmentState.VOTED)
    return vote_id


def skip_pair(store: Store, reviewer_id: int, assignment_id: int) -> None:
    """Give an open pair back: it goes to other reviewers and never returns to this one."""
    with store.transaction():
        handed = _own_assignment(store, reviewer_id, assignment_id)
        if handed["done"] != AssignmentState.OPEN:
            raise Conflict("only the pair on screen can be skipped")
        store.review.set_assignment_state(assignment_id, AssignmentState.SKIPPED)


def undo_last_vote(
    store: Store, settings: Settings, reviewer_id: int, study_id: int, now: float | None = None
) -> bool:
    """Retract the reviewer's most recent vote (a new row superseding it) and put that pair back
    on their screen. False when there is nothing to undo."""
    now = time.time() if now is None else now
    with store.transaction():
        last = store.review.last_vote(reviewer_id, study_id)
        if last is None:
            return False
        handed = store.review.assignment(last["assignment_id"])
        store.review.insert_vote(
            {
                "pair_id": handed["pair_id"],
                "reviewer_id": reviewer_id,
                "shown_left": handed["shown_left"],
                "shown_right": handed["shown_right"],
                "choice": RETRACTED,
                "winner": None,
                "source": "app",
                "created_at": now_iso(),
                "supersedes": last["vote_id"],
            }
        )
        store.review.set_assignment_state(
            handed["id"], AssignmentState.OPEN, now + settings.lease_minutes * 60
        )
    return True


def my_votes(store: Store, reviewer_id: int, study_id: int, limit: int = 50) -> list[dict]:
    """The reviewer's `limit` most recent votes, newest first, numbered in the order the pairs
    were handed to them (1 = first): {number, vote_id, assignment_id, choice, prompt, text_a,
    text_b (the outputs as shown), rationale, flags, criteria ({criterion: {"A"/"B": score}})}.
    Nothing in them names a system."""
    rows = []
    number = store.review.count_voted(reviewer_id, study_id)
    for vote in store.review.reviewer_votes(reviewer_id, study_id, limit):
        side_of = {vote["shown_left"]: "A", vote["shown_right"]: "B"}
        criteria = {
            name: {side_of[system]: score for system, score in by_system.items()}
            for name, by_system in json.loads(vote["criteria"] or "{}").items()
        }
        rows.append(
            {
                "number": number,
                "vote_id": vote["vote_id"],
                "assignment_id": vote["assignment_id"],
                "choice": vote["choice"],
                "prompt": vote["prompt"],
                "text_a": vote["text_a"],
                "text_b": vote["text_b"],
                "rationale": vote["rationale"],
                "flags": json.loads(vote["flags"] or "[]"),
                "criteria": criteria,
            }
        )
        number -= 1
    return rows


def votes_done(store: Store, reviewer_id: int, study_id: int) -> int:
    """Pairs of the study the reviewer has voted on in the app (undone votes excluded)."""
    return store.review.count_voted(reviewer_id, study_id)


def review_progress(
    store: Store, reviewer_id: int, study_id: int, now: float | None = None
) -> ReviewProgress:
    """Votes done by the reviewer, and how many pairs they were or can still be handed. The
    second figure reads every vote of the study (about a second at 200,000 votes): the page
    keeps it for a few minutes; it stays put while the reviewer works, since each vote moves
    one pair from "still to hand out" to "done"."""
    now = time.time() if now is None else now
    study = store.studies.study_by_id(study_id)
    done = store.review.count_voted(reviewer_id, study_id)
    remaining = store.review.remaining_for_reviewer(
        reviewer_id, study_id, study["reviews_per_pair"], now
    )
    open_now = len(store.review.open_assignments(reviewer_id, study_id))
    return ReviewProgress(done=done, assigned=done + open_now + remaining)
