"""Use cases of the app. Streamlit pages and the CLI both call these and nothing lower, so the two
can never disagree. Each function takes the `Store` first and returns plain data."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from review_app import assignment, auth, importers
from review_app.errors import Conflict, Forbidden, InputError, NotFound
from review_app.settings import Settings
from review_app.store import Store, now_iso

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
DEMO_STUDY = "demo"
DEMO_EVAL_SET = "demo"
DEMO_USERS = (("demo-admin", "admin"), ("demo-reviewer", "reviewer"), ("demo-signer", "signer"))


def open_store(settings: Settings | None = None) -> Store:
    settings = settings or Settings.from_env()
    return Store.open(settings.db_path)


# ---- workspace ----


def workspace_summary(store: Store) -> dict:
    """Counts a home page or `review-app info` shows."""
    studies = []
    for study in store.studies():
        counts = store.study_counts(study["id"])
        comparisons = store.comparisons(study["id"])
        studies.append(
            {
                "name": study["name"],
                "eval_set": study["eval_set"],
                "comparisons": [f"{a} vs {b}" for a, b in comparisons],
                "reviews_per_pair": study["reviews_per_pair"],
                **counts,
            }
        )
    return {
        "eval_sets": [
            {"name": e["name"], "items": e["n_items"], "frozen": bool(e["frozen_at"])}
            for e in store.eval_sets()
        ],
        "systems": store.system_names(),
        "studies": studies,
    }


# ---- imports and exports ----


def import_outputs(store: Store, path: str | Path, eval_set: str, replace: bool = False):
    return importers.import_outputs(store, path, eval_set, replace=replace)


def import_votes(store: Store, path: str | Path, study: str, eval_set: str | None = None):
    return importers.import_votes(store, path, study, eval_set)


def import_verdicts(store: Store, path: str | Path, study: str, eval_set: str | None = None):
    return importers.import_verdicts(store, path, study, eval_set)


EXPORTS = ("votes", "verdicts", "pairs")


def export_rows(store: Store, what: str, study: str) -> Iterator[dict]:
    """Rows of an export, in the same columns the importers read (so exports round-trip)."""
    study_row = store.require_study(study)
    if what == "votes":
        frame = store.votes_frame(study_row["id"])
        pairs = store.pairs_frame(study_row["id"]).set_index("pair_id")
        for vote in frame.itertuples():
            pair = pairs.loc[vote.pair_id]
            yield {
                "item_id": pair.item_key,
                "system_a": pair.system_x,
                "system_b": pair.system_y,
                "reviewer": vote.reviewer,
                "winner": vote.winner,
                "shown_left": vote.shown_left or "",
                "rationale": vote.rationale,
                "created_at": vote.created_at,
            }
    elif what == "verdicts":
        for v in store.verdict_rows(study_row["id"]):
            yield {
                "item_id": v["item_key"],
                "system_a": v["system_x"],
                "system_b": v["system_y"],
                "judge": v["judge"],
                "winner": v["winner"] or "",
                "first": v["first_system"],
                "explanation": v["explanation"],
            }
    elif what == "pairs":
        for p in store.pairs_frame(study_row["id"]).itertuples():
            yield {
                "pair_id": int(p.pair_id),
                "item_id": p.item_key,
                "category": p.category,
                "system_x": p.system_x,
                "system_y": p.system_y,
                "prompt": p.prompt,
                "output_x": p.output_x,
                "output_y": p.output_y,
            }
    else:
        raise InputError(f"unknown export {what!r}; choose one of {', '.join(EXPORTS)}")


# ---- studies ----


@dataclass(frozen=True)
class StudySummary:
    name: str
    eval_set: str
    pairs_added: int
    skipped_items: dict[str, int]
    eval_set_hash: str


def parse_comparison(text: str) -> tuple[str, str]:
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise InputError(f"--compare {text!r}: expected SYSTEM:SYSTEM, e.g. finetuned:base")
    a, b = (p.strip() for p in parts)
    if a == b:
        raise InputError(f"--compare {text!r}: a system cannot be compared with itself")
    return a, b


def create_study(
    store: Store,
    name: str,
    eval_set: str,
    comparisons: Iterable[tuple[str, str]],
    reviews_per_pair: int = 3,
    show_reference: bool = False,
    criteria: list[str] | None = None,
) -> StudySummary:
    """Create a study and its pairs (one per item and comparison, canonical order), freezing the
    eval set. Items missing an output from either system are skipped and counted."""
    comparisons = list(comparisons)
    if reviews_per_pair < 1:
        raise InputError(f"--reviews-per-pair must be at least 1, got {reviews_per_pair}")
    with store.transaction():
        if store.study(name) is not None:
            raise Conflict(f"a study named {name!r} already exists")
        es = store.require_eval_set(eval_set)
        known = set(store.system_names())
        for a, b in comparisons:
            for system in (a, b):
                if system not in known:
                    raise NotFound(
                        f"--compare {a}:{b}: no system named {system!r} "
                        f"(known: {', '.join(sorted(known)) or 'none'})"
                    )
        study_id = store.insert_study(name, es["id"], reviews_per_pair, show_reference, criteria)
        skipped: dict[str, int] = {}
        added = 0
        all_items = set(store.item_ids_by_key(es["id"]).values())
        for a, b in comparisons:
            store.add_comparison(study_id, a, b)
            having = store.items_with_outputs(es["id"], [a, b])
            both = having[a] & having[b]
            skipped[f"{a}:{b}"] = len(all_items - both)
            x, y = sorted((a, b))
            added += store.insert_pairs(study_id, [(item_id, x, y) for item_id in sorted(both)])
        content_hash = store.freeze_eval_set(es["id"])
    return StudySummary(name, eval_set, added, skipped, content_hash)


# ---- reviewers ----


def add_reviewer(
    store: Store, settings: Settings, name: str, role: str, study: str | None = None
) -> tuple[dict, str]:
    """Create a reviewer (or re-issue the token of an existing one) and return their link."""
    if role not in auth.ROLES:
        raise InputError(f"--role {role!r}: choose one of {', '.join(auth.ROLES)}")
    name = name.strip()
    if not name:
        raise InputError("reviewer name is empty")
    token = auth.new_token()
    with store.transaction():
        study_id = store.require_study(study)["id"] if study else None
        existing = store.reviewer(name)
        if existing is None:
            store.insert_reviewer(name, role, auth.hash_token(token), study_id)
        else:
            store.set_reviewer_token(existing["id"], auth.hash_token(token), role)
    return store.reviewer(name), auth.personal_link(settings.base_url, token)


def list_reviewers(store: Store) -> list[dict]:
    return store.reviewers()


def revoke_reviewer(store: Store, name: str) -> None:
    with store.transaction():
        row = store.reviewer(name)
        if row is None:
            raise NotFound(f"no reviewer named {name!r}")
        store.revoke_reviewer(row["id"])


def authenticate(store: Store, token: str | None) -> dict:
    """The reviewer a token belongs to; Forbidden if it is missing, unknown or revoked."""
    if not token:
        raise Forbidden("this app needs your personal link (it ends in ?token=...)")
    row = store.reviewer_by_token_hash(auth.hash_token(token))
    if row is None:
        raise Forbidden("this link is not valid; ask the study admin for a new one")
    if row["revoked_at"]:
        raise Forbidden("this link has been revoked; ask the study admin for a new one")
    return row


def require_role(reviewer: dict, *roles: str) -> None:
    if reviewer["role"] not in roles:
        raise Forbidden(f"this screen is for {' or '.join(roles)} accounts")


# ---- demo ----


def seed_demo(store: Store, settings: Settings, data_dir: Path = DEMO_DIR) -> dict[str, str]:
    """Load the demo eval set, study and example votes (idempotent) and return fresh personal
    links for the demo users, by name."""
    import_outputs(store, data_dir / "outputs.jsonl", DEMO_EVAL_SET)
    if store.study(DEMO_STUDY) is None:
        create_study(
            store,
            DEMO_STUDY,
            DEMO_EVAL_SET,
            [("finetuned", "base"), ("finetuned", "frontier")],
            reviews_per_pair=3,
            show_reference=False,
            criteria=["accuracy", "helpfulness", "tone", "format"],
        )
    import_votes(store, data_dir / "votes.csv", DEMO_STUDY)
    links = {}
    for name, role in DEMO_USERS:
        _, links[name] = add_reviewer(store, settings, name, role, DEMO_STUDY)
    return links


# ---- review ----

CHOICES = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both bad"}
FLAGS = {
    "recognized_model": "I think I know which model wrote this",
    "broken_output": "Broken output",
}
OPEN, VOTED, SKIPPED, RELEASED = 0, 1, 2, 3
_QUEUE_BATCH = 64
_MATCH_WINDOW = 256


@dataclass(frozen=True)
class ReviewTask:
    """One pair as a reviewer sees it: responses "A" (left) and "B" (right), never who wrote
    them. `assignment_id` is the handle for voting; it encodes nothing about the systems."""

    assignment_id: int
    prompt: str
    reference: str | None
    text_a: str
    text_b: str
    criteria: tuple[str, ...]
    ask_rationale: bool


@dataclass(frozen=True)
class ReviewProgress:
    done: int
    assigned: int


def review_study(store: Store, user: dict) -> dict | None:
    """The study a user reviews: their own, else the most recent one."""
    if user.get("study_id"):
        return store.study_by_id(user["study_id"])
    studies = store.studies()
    return store.study_by_id(studies[-1]["id"]) if studies else None


def next_pair(
    store: Store, settings: Settings, reviewer_id: int, study_id: int, now: float | None = None
) -> ReviewTask | None:
    """The pair the reviewer should see now, leased to them; None when nothing is left for them.

    An open pair (one they were shown, or one they just undid) comes back first, so a reload
    continues where they were. Otherwise the next pair in their own queue order that they have
    never seen and that still needs reviews; claiming runs in one write transaction, so
    concurrent reviewers never take a pair past its k reviews."""
    now = time.time() if now is None else now
    lease = now + settings.lease_minutes * 60
    study = store.study_by_id(study_id)
    if study is None:
        raise NotFound(f"no study with id {study_id}")
    k = study["reviews_per_pair"]
    with store.transaction():
        for open_one in store.open_assignments(reviewer_id, study_id):
            pair_id = open_one["pair_id"]
            if (
                open_one["leased_until"] > now
                or store.live_reviews([pair_id], now)[pair_id]["n"] < k
            ):
                store.set_assignment_state(open_one["id"], OPEN, lease)
                return _review_task(store, study, open_one["id"])
            store.set_assignment_state(open_one["id"], RELEASED)
        claimed = _claim_next(store, study, reviewer_id, settings.seed, now, lease)
    return None if claimed is None else _review_task(store, study, claimed)


def _claim_next(
    store: Store, study: dict, reviewer_id: int, seed: int, now: float, lease: float
) -> int | None:
    """Walk the reviewer's queue from where they last took a pair (wrapping round, so pairs whose
    leases ran out are offered again) and lease the first pair that is free for them and keeps
    left/right balanced (see `assignment.choose`). When none turns up within `_MATCH_WINDOW` free
    pairs, the first free pair is taken in the order that keeps that pair balanced."""
    order = assignment.cached_queue_order(
        (store.path, store.max_pair_id()),
        lambda: store.study_pair_ids(study["id"]),
        reviewer_id,
        study["id"],
        seed,
    )
    n = len(order)
    start = store.last_position(reviewer_id, study["id"]) + 1
    k = study["reviews_per_pair"]
    balance = store.reviewer_left_balances(reviewer_id, study["id"], now)
    fallback: assignment.Candidate | None = None
    examined = 0
    for offset in range(0, n, _QUEUE_BATCH):
        positions = [(start + i) % n for i in range(offset, min(offset + _QUEUE_BATCH, n))]
        pair_ids = [int(order[pos]) for pos in positions]
        seen = store.seen_pairs(reviewer_id, pair_ids)
        fresh = [
            (pos, pid) for pos, pid in zip(positions, pair_ids, strict=True) if pid not in seen
        ]
        if not fresh:
            continue
        live = store.live_reviews([pid for _, pid in fresh], now)
        free = [
            assignment.Candidate(
                pos,
                pid,
                (live[pid]["system_x"], live[pid]["system_y"]),
                live[pid]["x_left"],
                live[pid]["y_left"],
            )
            for pos, pid in fresh
            if live[pid]["n"] < k
        ]
        chosen = assignment.choose(free, balance)
        if chosen is not None:
            candidate, side = chosen
            return _lease(store, candidate, side, reviewer_id, study["id"], lease)
        fallback = fallback or (free[0] if free else None)
        examined += len(free)
        if fallback is not None and examined >= _MATCH_WINDOW:
            break
    if fallback is None:
        return None
    side = assignment.side_behind(fallback.x_left, fallback.y_left) or "x"
    return _lease(store, fallback, side, reviewer_id, study["id"], lease)


def _lease(
    store: Store,
    candidate: assignment.Candidate,
    side: str,
    reviewer_id: int,
    study_id: int,
    lease: float,
) -> int:
    x, y = candidate.comparison
    return store.insert_assignment(
        candidate.pair_id,
        reviewer_id,
        study_id,
        (x, y) if side == "x" else (y, x),
        candidate.position,
        lease,
    )


def _review_task(store: Store, study: dict, assignment_id: int) -> ReviewTask:
    handed = store.assignment(assignment_id)
    pair = store.pair(handed["pair_id"])
    left_is_x = handed["shown_left"] == pair["system_x"]
    return ReviewTask(
        assignment_id=assignment_id,
        prompt=pair["prompt"],
        reference=pair["reference"] if study["show_reference"] else None,
        text_a=pair["output_x"] if left_is_x else pair["output_y"],
        text_b=pair["output_y"] if left_is_x else pair["output_x"],
        criteria=tuple(json.loads(study["criteria"] or "[]")),
        ask_rationale=bool(study["ask_rationale"]),
    )


def _own_assignment(store: Store, reviewer_id: int, assignment_id: int) -> dict:
    handed = store.assignment(assignment_id)
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
    Voting again on the same pair (an edit) appends a row that supersedes the previous one."""
    now = time.time() if now is None else now
    if choice not in CHOICES:
        raise InputError(f"choice {choice!r}: expected one of {', '.join(CHOICES)}")
    flags = sorted(set(flags))
    unknown = [f for f in flags if f not in FLAGS]
    if unknown:
        raise InputError(f"unknown flag {unknown[0]!r}; expected one of {', '.join(FLAGS)}")
    with store.transaction():
        handed = _own_assignment(store, reviewer_id, assignment_id)
        if handed["done"] in (SKIPPED, RELEASED):
            raise Conflict(
                "you skipped this pair or it went to another reviewer; it cannot be voted"
            )
        study = store.study_by_id(handed["study_id"])
        pair_id = handed["pair_id"]
        if handed["done"] == OPEN and handed["leased_until"] <= now:
            if store.live_reviews([pair_id], now)[pair_id]["n"] >= study["reviews_per_pair"]:
                store.set_assignment_state(assignment_id, RELEASED)
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
        previous = store.latest_vote(pair_id, reviewer_id)
        vote_id = store.insert_vote(
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
            }
        )
        store.set_assignment_state(assignment_id, VOTED)
    return vote_id


def skip_pair(store: Store, reviewer_id: int, assignment_id: int) -> None:
    """Give an open pair back: it goes to other reviewers and never returns to this one."""
    with store.transaction():
        handed = _own_assignment(store, reviewer_id, assignment_id)
        if handed["done"] != OPEN:
            raise Conflict("only the pair on screen can be skipped")
        store.set_assignment_state(assignment_id, SKIPPED)


def undo_last_vote(
    store: Store, settings: Settings, reviewer_id: int, study_id: int, now: float | None = None
) -> bool:
    """Retract the reviewer's most recent vote (a new row superseding it) and put that pair back
    on their screen. False when there is nothing to undo."""
    now = time.time() if now is None else now
    with store.transaction():
        last = store.last_vote(reviewer_id, study_id)
        if last is None:
            return False
        handed = store.assignment(last["assignment_id"])
        store.insert_vote(
            {
                "pair_id": handed["pair_id"],
                "reviewer_id": reviewer_id,
                "shown_left": handed["shown_left"],
                "shown_right": handed["shown_right"],
                "choice": "retracted",
                "winner": None,
                "source": "app",
                "created_at": now_iso(),
                "supersedes": last["vote_id"],
            }
        )
        store.set_assignment_state(handed["id"], OPEN, now + settings.lease_minutes * 60)
    return True


def my_votes(store: Store, reviewer_id: int, study_id: int, limit: int = 50) -> list[dict]:
    """The reviewer's `limit` most recent votes, newest first, numbered in the order the pairs
    were handed to them (1 = first): {number, assignment_id, choice, prompt, rationale, flags,
    criteria ({criterion: {"A"/"B": score}})}. Nothing in them names a system."""
    rows = []
    number = store.count_voted(reviewer_id, study_id)
    for vote in store.reviewer_votes(reviewer_id, study_id, limit):
        side_of = {vote["shown_left"]: "A", vote["shown_right"]: "B"}
        criteria = {
            name: {side_of[system]: score for system, score in by_system.items()}
            for name, by_system in json.loads(vote["criteria"] or "{}").items()
        }
        rows.append(
            {
                "number": number,
                "assignment_id": vote["assignment_id"],
                "choice": vote["choice"],
                "prompt": vote["prompt"],
                "rationale": vote["rationale"],
                "flags": json.loads(vote["flags"] or "[]"),
                "criteria": criteria,
            }
        )
        number -= 1
    return rows


def votes_done(store: Store, reviewer_id: int, study_id: int) -> int:
    """Pairs of the study the reviewer has voted on in the app (undone votes excluded)."""
    return store.count_voted(reviewer_id, study_id)


def review_progress(
    store: Store, reviewer_id: int, study_id: int, now: float | None = None
) -> ReviewProgress:
    """Votes done by the reviewer, and how many pairs they were or can still be handed. The
    second figure reads every vote of the study (about a second at 200,000 votes): the page
    keeps it for a few minutes; it stays put while the reviewer works, since each vote moves
    one pair from "still to hand out" to "done"."""
    now = time.time() if now is None else now
    study = store.study_by_id(study_id)
    done = store.count_voted(reviewer_id, study_id)
    remaining = store.remaining_for_reviewer(reviewer_id, study_id, study["reviews_per_pair"], now)
    open_now = len(store.open_assignments(reviewer_id, study_id))
    return ReviewProgress(done=done, assigned=done + open_now + remaining)


# ---- end of sections ----
