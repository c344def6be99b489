"""Use cases of the app. Streamlit pages and the CLI both call these and nothing lower, so the two
can never disagree. Each function takes the `Store` first and returns plain data."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from judge.errors import FatalProviderError, JudgeError, RubricError
from judge.pricing import Estimate, PriceTable, estimate_cost, load_prices
from judge.providers.base import get_provider, split_spec
from judge.providers.baseline import BASELINES
from judge.rubric import Rubric, load_rubric
from judge.runner import (
    CallResult,
    JudgeCall,
    JudgeParams,
    Progress,
    RunOptions,
    RunSummary,
    build_calls,
    missing_calls,
    render_call,
    run_judge,
)
from review_app import assignment, auth, gate, importers, stats
from review_app.errors import Conflict, Forbidden, InputError, NotFound, OutcomesHidden
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
    """Import votes; the study is created over `eval_set` first when it does not exist yet
    (in the same transaction, so a failed import leaves no empty study behind)."""
    with store.transaction():
        _study_for_import(store, study, eval_set)
        return importers.import_votes(store, path, study)


def import_verdicts(store: Store, path: str | Path, study: str, eval_set: str | None = None):
    """Import verdicts, creating the study as `import_votes` does."""
    with store.transaction():
        _study_for_import(store, study, eval_set)
        return importers.import_verdicts(store, path, study)


def _study_for_import(store: Store, study: str, eval_set: str | None) -> None:
    row = store.study(study)
    if row is not None:
        if eval_set is not None and store.require_eval_set(eval_set)["id"] != row["eval_set_id"]:
            raise Conflict(f"study {study!r} uses a different eval set than {eval_set!r}")
        return
    if eval_set is None:
        raise NotFound(
            f"no study named {study!r}; pass --eval-set NAME to create it over that eval set"
        )
    create_study(store, study, eval_set, comparisons=[])


# The columns of each export, in order (also the header of an export with no rows).
EXPORT_COLUMNS = {
    "votes": importers.VOTE_COLUMNS + importers.VOTE_OPTIONAL,
    "verdicts": importers.VERDICT_COLUMNS + importers.VERDICT_OPTIONAL,
    "pairs": (
        "pair_id",
        "item_id",
        "category",
        "system_x",
        "system_y",
        "prompt",
        "output_x",
        "output_y",
    ),
}
EXPORTS = tuple(EXPORT_COLUMNS)


def export_rows(store: Store, what: str, study: str) -> Iterator[dict]:
    """Rows of an export, in the same columns the importers read (so exports round-trip).
    The study and export kind are checked before the first row is asked for."""
    if what not in EXPORTS:
        raise InputError(f"unknown export {what!r}; choose one of {', '.join(EXPORTS)}")
    return _export_rows(store, what, store.require_study(study))


def _export_rows(store: Store, what: str, study_row: dict) -> Iterator[dict]:
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
            store.set_reviewer_token(existing["id"], auth.hash_token(token), role, study_id)
    return store.reviewer(name), auth.personal_link(settings.base_url, token)


def reviewer_named(store: Store, name: str) -> dict:
    row = store.reviewer(name)
    if row is None:
        raise NotFound(f"no reviewer named {name!r}")
    return row


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
    """Forbidden unless the reviewer's link is active and their role is one of `roles`."""
    if reviewer.get("revoked_at"):
        raise Forbidden(f"{reviewer['name']}'s link has been revoked")
    if reviewer["role"] not in roles:
        raise Forbidden(f"this screen is for {' or '.join(roles)} accounts")


# ---- demo ----


def seed_demo(store: Store, settings: Settings, data_dir: Path = DEMO_DIR) -> dict[str, str]:
    """Load the demo eval set, study, example votes and example judge verdicts (idempotent),
    run the baseline judges, and return fresh personal links for the demo users, by name."""
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
    import_verdicts(store, data_dir / "verdicts.csv", DEMO_STUDY)
    seed_demo_judges(store, settings)
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
    # Pairs are only ever added, so the workspace file and its highest pair id pin the order.
    workspace = id(store) if store.path == ":memory:" else store.path
    order = assignment.cached_queue_order(
        (workspace, store.max_pair_id()),
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
            if pid in live and live[pid]["study_id"] == study["id"] and live[pid]["n"] < k
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


# ---- calibration ----

# A CI wider than this (about +-0.1) is flagged as too uncertain to read, with the votes needed.
CI_TARGET_WIDTH = 0.2
DISAGREEMENT_KINDS = ("majority", "orders")
COMPUTED_BASELINE = "baseline (computed)"


@dataclass(frozen=True)
class JudgeInfo:
    """Where a judge's verdicts come from, for listing judges side by side."""

    label: str
    judge: str
    rubric: str
    source: str


@dataclass(frozen=True)
class CalibrationReport:
    """Everything the calibration screen and `review-app stats` show for one study."""

    study: str
    calibration: stats.Calibration
    judges: dict[str, JudgeInfo]
    assessments: dict[str, stats.Assessment]
    warnings: list[str]
    reference: str

    def document(self) -> dict:
        """The `review-app stats --json` document (docs/statistics.md)."""
        return self.calibration.to_json()


def _study_judges(store: Store, study_id: int) -> tuple[dict[int, str], dict[str, JudgeInfo]]:
    """Unique labels of the study's runs that hold verdicts (a label shared by several runs gets
    "#<run id>"), and every judge's origin, including the baselines that have no stored run."""
    runs = [r for r in store.calibration_runs(study_id) if r["n_verdicts"]]
    label_counts = Counter(r["label"] for r in runs)
    labels = {
        r["run_id"]: r["label"] if label_counts[r["label"]] == 1 else f"{r['label']} #{r['run_id']}"
        for r in runs
    }
    infos = {}
    for run in runs:
        rubric = f"{run['rubric_name']} v{run['rubric_version']}" if run["rubric_name"] else ""
        label = labels[run["run_id"]]
        infos[label] = JudgeInfo(label, run["judge"], rubric, run["source"])
    stored = {info.judge for info in infos.values()}
    for name in stats.BASELINES:
        label = stats.BASELINE_PREFIX + name
        if label not in stored:
            infos[label] = JudgeInfo(label, label, "", COMPUTED_BASELINE)
    return labels, infos


def _calibration_frames(
    store: Store, study_id: int, seed: int, with_texts: bool
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, JudgeInfo]]:
    """The study's pairs, votes and verdicts, with baseline verdicts computed for every baseline
    that has no stored run, and each run's verdicts labelled uniquely. Without `with_texts`, only
    the columns the statistics read (much faster on a large study)."""
    if with_texts:
        pairs = store.pairs_frame(study_id)
        votes = store.votes_frame(study_id)
        verdicts = store.verdicts_frame(study_id)
    else:
        pairs = store.calibration_pairs_frame(study_id)
        votes = store.calibration_votes_frame(study_id)
        verdicts = store.calibration_verdicts_frame(study_id)
    labels, infos = _study_judges(store, study_id)
    verdicts["judge"] = verdicts["run_id"].map(labels)
    missing = [
        info.judge.removeprefix(stats.BASELINE_PREFIX)
        for info in infos.values()
        if info.source == COMPUTED_BASELINE
    ]
    computed = stats.baseline_verdicts(pairs, missing, seed=seed)[list(verdicts.columns)]
    if len(verdicts) and len(computed):
        verdicts = pd.concat([verdicts, computed], ignore_index=True)
    elif len(computed):
        verdicts = computed
    return pairs, votes, verdicts, infos


def judge_labels(store: Store, study: str) -> list[str]:
    """Every judge of a study as the statistics name it: runs first, then the baselines."""
    _, infos = _study_judges(store, store.require_study(study)["id"])
    return stats.ordered_judges(infos)


def _reference_label(infos: dict[str, JudgeInfo]) -> str:
    """The label of the longest-output baseline: a stored run of it, else the computed one."""
    return next(
        (label for label, info in infos.items() if info.judge == stats.REFERENCE_BASELINE),
        stats.REFERENCE_BASELINE,
    )


def calibration_report(
    store: Store, study: str, settings: Settings | None = None
) -> CalibrationReport:
    """Every calibration statistic of a study (docs/statistics.md), overall and per category,
    for every judge run, imported judge and baseline, with a verdict on each judge."""
    settings = settings or Settings.from_env()
    study_row = store.require_study(study)
    pairs, votes, verdicts, infos = _calibration_frames(
        store, study_row["id"], settings.seed, with_texts=False
    )
    calibration = stats.calibrate(
        pairs, votes, verdicts, seed=settings.seed, n_boot=settings.bootstrap_resamples
    )
    overall = calibration.overall
    reference_label = _reference_label(infos)
    reference = overall.judge(reference_label)
    assessments = {
        j.judge: stats.assess_judge(j, overall.humans, reference) for j in overall.judges
    }
    return CalibrationReport(
        study=study,
        calibration=calibration,
        judges=infos,
        assessments=assessments,
        warnings=stats.small_n_warnings(overall, CI_TARGET_WIDTH),
        reference=reference_label,
    )


def calibration_data_version(store: Store, study: str) -> str:
    """A key that changes whenever the study's votes, verdicts, runs or pairs change, so a page
    can cache `calibration_report` safely."""
    return store.calibration_data_version(store.require_study(study)["id"])


def _ci_text(estimate: stats.Estimate | None) -> str:
    if estimate is None or estimate.ci is None:
        return ""
    return f"[{estimate.ci[0]:.2f}, {estimate.ci[1]:.2f}]"


def _value(estimate: stats.Estimate | None) -> float | None:
    return None if estimate is None else estimate.value


def judge_table(report: CalibrationReport) -> pd.DataFrame:
    """One row per judge with its agreement beside the human ceiling, bias, cost and verdict."""
    humans = report.calibration.overall.humans
    rows = []
    for judge in report.calibration.overall.judges:
        info = report.judges.get(judge.judge)
        rows.append(
            {
                "judge": judge.judge,
                "model": info.judge if info else "",
                "rubric": info.rubric if info else "",
                "source": info.source if info else "",
                "agreement w/o ties": judge.agreement_without_ties.value,
                "CI w/o ties": _ci_text(judge.agreement_without_ties),
                "n w/o ties": judge.agreement_without_ties.n,
                "human ceiling w/o ties": humans.agreement_without_ties.value,
                "agreement w/ ties": judge.agreement_with_ties.value,
                "CI w/ ties": _ci_text(judge.agreement_with_ties),
                "n w/ ties": judge.agreement_with_ties.n,
                "human ceiling w/ ties": humans.agreement_with_ties.value,
                "kappa w/o ties": judge.kappa_without_ties.value,
                "kappa w/ ties": judge.kappa_with_ties.value,
                "consistency": _value(judge.consistency),
                "p_first": _value(judge.p_first),
                "p_longer": judge.p_longer.value,
                "humans p_longer": humans.p_longer.value,
                "unparsed": judge.n_unparsed,
                "verdicts": judge.n_verdicts,
                "cost per 1,000": judge.cost_per_1000,
                "verdict": report.assessments[judge.judge].text,
            }
        )
    return pd.DataFrame(rows)


def category_table(report: CalibrationReport) -> pd.DataFrame:
    """Agreement without ties per category and judge, beside that category's human ceiling."""
    rows = []
    for category, analysis in report.calibration.by_category.items():
        ceiling = analysis.humans.agreement_without_ties
        for judge in analysis.judges:
            estimate = judge.agreement_without_ties
            rows.append(
                {
                    "category": category,
                    "judge": judge.judge,
                    "agreement w/o ties": estimate.value,
                    "CI": _ci_text(estimate),
                    "n": estimate.n,
                    "human ceiling": ceiling.value,
                    "human CI": _ci_text(ceiling),
                    "human n": ceiling.n,
                    "p_longer": judge.p_longer.value,
                }
            )
    return pd.DataFrame(rows)


def reviewer_kappa_table(report: CalibrationReport) -> pd.DataFrame:
    """Reviewer x reviewer Cohen's kappa, both directions, for pairs with enough shared votes."""
    rows = []
    for entry in report.calibration.overall.humans.reviewer_kappa:
        rows.append({"reviewer": entry.a, "other": entry.b, "kappa": entry.kappa, "n": entry.n})
        rows.append({"reviewer": entry.b, "other": entry.a, "kappa": entry.kappa, "n": entry.n})
    return pd.DataFrame(rows, columns=["reviewer", "other", "kappa", "n"])


def confusion_table(report: CalibrationReport, judge: str) -> pd.DataFrame:
    """The judge's combined verdicts (columns) against the human majority (rows)."""
    stats_of = report.calibration.overall.judge(judge)
    if stats_of is None:
        raise NotFound(f"no judge named {judge!r} in study {report.study!r}")
    names = ["x (first by name)", "y (second by name)", "tie"]
    return pd.DataFrame(
        stats_of.vs_majority.confusion,
        index=pd.Index([f"humans: {n}" for n in names], name="majority"),
        columns=[f"judge: {n}" for n in names],
    )


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


def _vote_lines(votes: pd.DataFrame) -> pd.Series:
    """pair_id -> one line per vote: reviewer, choice, side shown left, rationale."""
    if votes.empty:
        return pd.Series(dtype=object)
    left = votes["shown_left"].astype(object)
    rationale = votes["rationale"].astype(object).fillna("")
    lines = (
        votes["reviewer"].astype(str)
        + ": "
        + votes["winner"].astype(str)
        + left.map(lambda s: f" (left: {s})" if s else "")
        + rationale.map(lambda r: f" - {r}" if r else "")
    )
    return lines.groupby(votes["pair_id"]).agg("\n".join)


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
) -> pd.DataFrame:
    """Comparisons where a judge's combined verdict differs from the human majority, or where
    its two orders disagree: unblinded, with both outputs, the votes with their rationales and
    the judge's explanation for each order. Largest length difference first."""
    settings = settings or Settings.from_env()
    study_row = store.require_study(study)
    pairs, votes, verdicts, _ = _calibration_frames(
        store, study_row["id"], settings.seed, with_texts=True
    )
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
    return filter_disagreements(frame, filters) if filters is not None else frame


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
    """The disagreement table as CSV text (unblinded: for admins only)."""
    return frame.to_csv(index=False)


# ---- statistics inputs ----


def study_frames(store: Store, study_id: int, seed: int, with_baselines: bool = True):
    """(pairs with texts, votes, verdicts) of a study, labelled exactly as on the calibration
    screen, so the gate's numbers can never differ from it. Baselines without a stored run are
    computed unless `with_baselines` is False."""
    pairs, votes, verdicts, infos = _calibration_frames(store, study_id, seed, with_texts=True)
    if not with_baselines:
        computed = {label for label, info in infos.items() if info.source == COMPUTED_BASELINE}
        verdicts = verdicts[~verdicts["judge"].isin(computed)].reset_index(drop=True)
    return pairs, votes, verdicts


# ---- gate ----

FINAL_REVIEW_SIZE = 50
FINAL_REVIEW_TOP = 10


def candidate_system(store: Store, study_row: dict) -> str:
    """The system the study decides on: the first system of its first comparison."""
    comparisons = store.comparisons(study_row["id"])
    if not comparisons:
        raise NotFound(f"study {study_row['name']!r} has no comparisons")
    return comparisons[0][0]


def study_comparisons(store: Store, study: str) -> list[tuple[str, str]]:
    """The study's comparisons as (system_a, system_b), in the order they were declared."""
    return store.comparisons(store.require_study(study)["id"])


def threshold_deviations(store: Store, study: str) -> list[dict]:
    """Threshold changes made after the lock, oldest first."""
    return store.deviations(store.require_study(study)["id"])


def list_studies(store: Store) -> list[dict]:
    return store.studies()


def study_categories(store: Store, study: str) -> list[str]:
    """The study's categories, named as the statistics name them."""
    pairs = store.calibration_pairs_frame(store.require_study(study)["id"])
    return sorted(set(stats.category_names(pairs["category"])))


def list_thresholds(store: Store, study: str) -> list[dict]:
    study_row = store.require_study(study)
    out = []
    for row in store.thresholds(study_row["id"]):
        t = gate.Threshold(row["metric"], row["params"], row["comparator"], row["value"])
        out.append({"id": row["id"], "threshold": t, "description": t.describe()})
    return out


def recommended_thresholds(store: Store, study: str) -> list[gate.Threshold]:
    """A starting set in the spirit of the usual ship bar: the candidate beats the reference
    system, no regression suite drops more than 5 points, each real judge agrees with humans as
    well as humans do and beats baseline/longest, and the final review is 90% acceptable. The
    largest category is taken as the target task; every other category as a regression suite."""
    study_row = store.require_study(study)
    comparisons = store.comparisons(study_row["id"])
    if not comparisons:
        return []
    a, b = comparisons[0]
    # Baselines are left out, so the seed (which only draws baseline/random) does not matter.
    pairs, _, verdicts = study_frames(store, study_row["id"], seed=0, with_baselines=False)
    sizes = pd.Series(stats.category_names(pairs["category"])).value_counts()
    suites = sorted(sizes.index[1:]) if len(sizes) > 1 else []
    specs = [
        ("human_win_rate", {"system_a": a, "system_b": b}, ">=", 0.6),
        ("human_win_rate_ci_low", {"system_a": a, "system_b": b}, ">=", 0.5),
        ("max_regression_points", {"system_a": a, "system_b": b, "categories": suites}, "<=", 5.0),
        ("final_review_acceptable_rate", {}, ">=", 0.9),
    ]
    judges = sorted(set(verdicts.judge)) if not verdicts.empty else []
    for judge in (j for j in judges if not j.startswith(stats.BASELINE_PREFIX)):
        specs += [
            ("judge_agreement", {"judge": judge, "ties": "without"}, ">=", 0.8),
            ("judge_agreement_vs_ceiling", {"judge": judge, "ties": "without"}, ">=", 0.0),
            ("judge_beats_baseline", {"judge": judge, "baseline": "baseline/longest"}, ">", 0.0),
        ]
    return [gate.validate_threshold(*spec) for spec in specs]


def add_recommended_thresholds(store: Store, study: str, by: str) -> int:
    """Add the recommended set to a study that has no thresholds yet; returns how many."""
    with store.transaction():
        study_row = store.require_study(study)
        if store.thresholds(study_row["id"]):
            raise Conflict(f"study {study!r} already has thresholds; edit them instead")
        chosen = recommended_thresholds(store, study)
        for t in chosen:
            store.insert_threshold(study_row["id"], t.metric, t.params, t.comparator, t.value, by)
    return len(chosen)


def _require_reason_after_lock(store: Store, study_id: int, reason: str) -> bool:
    locked = store.threshold_lock(study_id) is not None
    if locked and not reason.strip():
        raise InputError(
            "the thresholds are locked: a change is recorded as a deviation and needs a reason"
        )
    return locked


def add_threshold(
    store: Store,
    study: str,
    metric: str,
    params: dict,
    comparator: str | None,
    value: float,
    by: str,
    reason: str = "",
) -> int:
    threshold = gate.validate_threshold(
        metric,
        params,
        comparator or gate.METRICS.get(metric, gate.METRICS["human_win_rate"]).comparator,
        value,
    )
    unknown = set(threshold.params.get("categories", [])) - set(study_categories(store, study))
    if unknown:
        raise InputError(
            f"study {study!r} has no category {', '.join(sorted(unknown))}; "
            f"its categories: {', '.join(study_categories(store, study))}"
        )
    with store.transaction():
        study_row = store.require_study(study)
        locked = _require_reason_after_lock(store, study_row["id"], reason)
        new_id = store.insert_threshold(
            study_row["id"],
            threshold.metric,
            threshold.params,
            threshold.comparator,
            threshold.value,
            by,
        )
        if locked:
            store.insert_deviation(study_row["id"], by, "(none)", threshold.describe(), reason)
    return new_id


def update_threshold(
    store: Store,
    study: str,
    threshold_id: int,
    comparator: str,
    value: float,
    by: str,
    reason: str = "",
) -> None:
    with store.transaction():
        study_row = store.require_study(study)
        current = _threshold_row(store, study_row, threshold_id)
        before = gate.Threshold(
            current["metric"], current["params"], current["comparator"], current["value"]
        )
        after = gate.validate_threshold(before.metric, before.params, comparator, value)
        if after == before:
            return
        locked = _require_reason_after_lock(store, study_row["id"], reason)
        store.update_threshold(
            threshold_id, after.metric, after.params, after.comparator, after.value
        )
        if locked:
            store.insert_deviation(study_row["id"], by, before.describe(), after.describe(), reason)


def remove_threshold(
    store: Store, study: str, threshold_id: int, by: str, reason: str = ""
) -> None:
    with store.transaction():
        study_row = store.require_study(study)
        current = _threshold_row(store, study_row, threshold_id)
        locked = _require_reason_after_lock(store, study_row["id"], reason)
        store.delete_threshold(threshold_id)
        if locked:
            before = gate.Threshold(
                current["metric"], current["params"], current["comparator"], current["value"]
            )
            store.insert_deviation(study_row["id"], by, before.describe(), "(removed)", reason)


def _threshold_row(store: Store, study_row: dict, threshold_id: int) -> dict:
    row = next((r for r in store.thresholds(study_row["id"]) if r["id"] == threshold_id), None)
    if row is None:
        raise NotFound(f"study {study_row['name']!r} has no threshold {threshold_id}")
    return row


def lock_thresholds(store: Store, study: str, by: str) -> str:
    """Pre-register the study's thresholds (who, when, content hash); outcomes become visible."""
    with store.transaction():
        study_row = store.require_study(study)
        if store.threshold_lock(study_row["id"]) is not None:
            raise Conflict(f"the thresholds of study {study!r} are already locked")
        thresholds = [t["threshold"] for t in list_thresholds(store, study)]
        if not thresholds:
            raise InputError("add at least one threshold before locking")
        content_hash = gate.thresholds_hash(thresholds)
        store.insert_threshold_lock(
            study_row["id"], by, content_hash, [t.key() for t in thresholds]
        )
    return content_hash


def threshold_lock(store: Store, study: str) -> dict | None:
    return store.threshold_lock(store.require_study(study)["id"])


def _require_outcomes_visible(store: Store, study_row: dict) -> None:
    if store.threshold_lock(study_row["id"]) is None:
        raise OutcomesHidden(
            f"outcomes of study {study_row['name']!r} stay hidden until its thresholds are "
            "locked, so the pass bar cannot be tuned to the results"
        )


# (workspace, study, data version, seed, resamples) -> (calibration, win rates, by category).
# The gate and results screens rerun on every click; their statistics only change with the data.
_STATISTICS_CACHE: OrderedDict[tuple, tuple] = OrderedDict()
_STATISTICS_CACHE_SIZE = 8
_STATISTICS_LOCK = threading.Lock()


def _study_statistics(store: Store, study_row: dict, settings: Settings) -> tuple:
    key = (
        str(Path(store.path).resolve()) if store.path != ":memory:" else id(store),
        study_row["id"],
        store.calibration_data_version(study_row["id"]),
        settings.seed,
        settings.bootstrap_resamples,
    )
    with _STATISTICS_LOCK:
        if key in _STATISTICS_CACHE:
            _STATISTICS_CACHE.move_to_end(key)
            return _STATISTICS_CACHE[key]
    pairs, votes, verdicts, _ = _calibration_frames(
        store, study_row["id"], settings.seed, with_texts=False
    )
    comparisons = store.comparisons(study_row["id"])
    n_boot, seed = settings.bootstrap_resamples, settings.seed
    value = (
        stats.calibrate(pairs, votes, verdicts, seed=seed, n_boot=n_boot),
        stats.win_rates(pairs, votes, verdicts, comparisons, seed=seed, n_boot=n_boot),
        stats.category_win_rates(pairs, votes, verdicts, comparisons, seed=seed, n_boot=n_boot),
    )
    with _STATISTICS_LOCK:
        _STATISTICS_CACHE[key] = value
        while len(_STATISTICS_CACHE) > _STATISTICS_CACHE_SIZE:
            _STATISTICS_CACHE.popitem(last=False)
    return value


def gate_inputs(store: Store, study_row: dict, settings: Settings) -> gate.GateInputs:
    calibration, rates, by_category = _study_statistics(store, study_row, settings)
    marks = store.final_reviews(study_row["id"])
    final = {"n": len(marks), "acceptable": sum(1 for m in marks if m["acceptable"])}
    return gate.GateInputs(calibration, rates, by_category, final)


def evaluate_gate(store: Store, study: str, settings: Settings) -> list[gate.ThresholdResult]:
    study_row = store.require_study(study)
    _require_outcomes_visible(store, study_row)
    thresholds = [t["threshold"] for t in list_thresholds(store, study)]
    return gate.evaluate(thresholds, gate_inputs(store, study_row, settings))


def study_results(store: Store, study: str, settings: Settings) -> dict:
    """Everything the results screen shows; OutcomesHidden until the thresholds are locked."""
    study_row = store.require_study(study)
    _require_outcomes_visible(store, study_row)
    inputs = gate_inputs(store, study_row, settings)
    pairs, votes, verdicts = study_frames(store, study_row["id"], settings.seed)
    candidate = candidate_system(store, study_row)
    return {
        "candidate": candidate,
        "comparisons": store.comparisons(study_row["id"]),
        "win_rates": inputs.win_rates,
        "category_win_rates": inputs.category_win_rates,
        "regression": gate.regression_table(inputs, store.comparisons(study_row["id"])),
        "regression_threshold": next(
            (
                t["threshold"]
                for t in list_thresholds(store, study)
                if t["threshold"].metric == "max_regression_points"
            ),
            None,
        ),
        "by_length": gate.length_breakdown(pairs, votes, candidate),
        "losses": gate.candidate_losses(pairs, votes, candidate),
        "trend": study_trend(store, study_row, settings),
    }


def study_trend(store: Store, study_row: dict, settings: Settings) -> list[dict]:
    """Human win rates of every locked study on the same eval set, oldest first."""
    rows = []
    for other in store.studies():
        if (
            other["eval_set_id"] != study_row["eval_set_id"]
            or store.threshold_lock(other["id"]) is None
        ):
            continue
        pairs, votes, _ = study_frames(store, other["id"], settings.seed, with_baselines=False)
        empty = store.verdicts_frame(other["id"]).iloc[0:0]
        for w in stats.win_rates(
            pairs,
            votes,
            empty,
            store.comparisons(other["id"]),
            seed=settings.seed,
            n_boot=settings.bootstrap_resamples,
        ):
            rows.append(
                {"study": other["name"], "created_at": other["created_at"]} | gate.win_rate_json(w)
            )
    return rows


def final_review_sample(
    store: Store,
    study: str,
    size: int = FINAL_REVIEW_SIZE,
    top: int = FINAL_REVIEW_TOP,
    settings: Settings | None = None,
) -> list[dict]:
    """The candidate's outputs the signer reviews: the `top` the judges rated highest, then a
    seeded random sample of the rest, with the latest mark of each."""
    import random

    settings = settings or Settings.from_env()
    study_row = store.require_study(study)
    candidate = candidate_system(store, study_row)
    outputs = store.outputs_of_system(study_row["eval_set_id"], candidate)
    pairs, _, verdicts = study_frames(store, study_row["id"], settings.seed, with_baselines=False)
    scores = gate.judge_preference(pairs, verdicts, candidate)
    ranked = sorted(
        (o for o in outputs if o["item_key"] in scores),
        key=lambda o: (-scores[o["item_key"]], o["item_key"]),
    )
    chosen = ranked[:top]
    chosen_ids = {o["output_id"] for o in chosen}
    rest = [o for o in outputs if o["output_id"] not in chosen_ids]
    random.Random(f"{settings.seed}:{study_row['name']}").shuffle(rest)
    chosen += rest[: max(0, size - len(chosen))]
    marks = {m["output_id"]: m for m in store.final_reviews(study_row["id"])}
    top_ids = {o["output_id"] for o in ranked[:top]}
    return [
        o
        | {
            "system": candidate,
            "judge_top": o["output_id"] in top_ids,
            "mark": marks.get(o["output_id"]),
        }
        for o in chosen
    ]


def record_final_review(
    store: Store, study: str, reviewer: dict, output_id: int, acceptable: bool, comment: str = ""
) -> None:
    require_role(reviewer, "signer")
    with store.transaction():
        study_row = store.require_study(study)
        candidate = candidate_system(store, study_row)
        valid = {
            o["output_id"] for o in store.outputs_of_system(study_row["eval_set_id"], candidate)
        }
        if output_id not in valid:
            raise NotFound(f"output {output_id} is not an output of {candidate} in study {study!r}")
        store.insert_final_review(study_row["id"], output_id, reviewer["id"], acceptable, comment)


def build_report(store: Store, study: str, settings: Settings) -> dict:
    """The sign-off report: pinned hashes, thresholds and their results, statistics, final
    review, deviations and sign-offs. Its `report_hash` covers everything but the sign-offs."""
    from review_app.store import now_iso

    study_row = store.require_study(study)
    _require_outcomes_visible(store, study_row)
    inputs = gate_inputs(store, study_row, settings)
    thresholds = [t["threshold"] for t in list_thresholds(store, study)]
    results = gate.evaluate(thresholds, inputs)
    lock = store.threshold_lock(study_row["id"])
    es = next(e for e in store.eval_sets() if e["id"] == study_row["eval_set_id"])
    marks = store.final_reviews(study_row["id"])
    overall = inputs.calibration.overall
    runs = {r["label"]: r for r in store.runs_for_report(study_row["id"])}
    judges = []
    for j in overall.judges:
        run = runs.get(j.judge, {})
        judges.append(
            {
                "judge": j.judge,
                "model": run.get("judge", j.judge),
                "rubric": run.get("rubric"),
                "rubric_version": run.get("rubric_version"),
                "rubric_hash": run.get("rubric_hash") or None,
                "source": run.get("source", COMPUTED_BASELINE),
                "n_verdicts": j.n_verdicts,
                "n_unparsed": j.n_unparsed,
                "agreement_with_ties": j.agreement_with_ties.to_json(),
                "agreement_without_ties": j.agreement_without_ties.to_json(),
                "cost": j.cost_total,
            }
        )
    report = {
        "study": study_row["name"],
        "generated_at": now_iso(),
        "eval_set": {
            "name": es["name"],
            "n_items": es["n_items"],
            "content_hash": es["content_hash"],
        },
        "candidate": candidate_system(store, study_row),
        "comparisons": [list(c) for c in store.comparisons(study_row["id"])],
        "thresholds": {
            "locked_at": lock["locked_at"],
            "locked_by": lock["locked_by"],
            "content_hash": lock["content_hash"],
            "locked": json.loads(lock["thresholds"]),
            "current": [t.key() for t in thresholds],
        },
        "deviations": store.deviations(study_row["id"]),
        "results": [r.to_json() for r in results],
        "gate_passed": bool(results) and all(r.passed for r in results),
        "win_rates": [gate.win_rate_json(w) for w in inputs.win_rates],
        "regression": gate.regression_table(inputs, store.comparisons(study_row["id"])),
        "human_agreement": {
            "with_ties": overall.humans.agreement_with_ties.to_json(),
            "without_ties": overall.humans.agreement_without_ties.to_json(),
        },
        "judges": judges,
        "final_review": {
            "system": candidate_system(store, study_row),
            "sample_size": len(final_review_sample(store, study, settings=settings)),
            "n": inputs.final_review["n"],
            "acceptable": inputs.final_review["acceptable"],
            "rejected": [
                {"item_id": m["item_key"], "comment": m["comment"], "reviewer": m["reviewer"]}
                for m in marks
                if not m["acceptable"]
            ],
        },
    }
    report["report_hash"] = gate.report_hash(report)
    report["signoffs"] = store.signoffs(study_row["id"])
    return report


REPORT_FORMATS = ("md", "html", "json")


def render_report(report: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "md":
        return gate.render_markdown(report)
    if fmt == "html":
        return gate.render_html(report)
    raise InputError(f"unknown report format {fmt!r}; choose one of {', '.join(REPORT_FORMATS)}")


def sign_off(
    store: Store, study: str, signer: dict, decision: str, comment: str, settings: Settings
) -> dict:
    """Append the signer's approval or rejection, pinning the report and its hash."""
    require_role(signer, "signer")
    if decision not in ("approve", "reject"):
        raise InputError(f"decision {decision!r}: choose approve or reject")
    if not comment.strip():
        raise InputError("a sign-off needs a comment saying why")
    report = build_report(store, study, settings)
    with store.transaction():
        study_row = store.require_study(study)
        body = {k: v for k, v in report.items() if k != "signoffs"}
        store.insert_signoff(
            study_row["id"],
            signer["id"],
            decision,
            comment.strip(),
            report["report_hash"],
            json.dumps(body, sort_keys=True, default=str),
        )
    return build_report(store, study, settings)


# ---- judge ----


RUBRICS_DIR = Path(__file__).resolve().parent.parent / "rubrics"
DEMO_RUBRIC = RUBRICS_DIR / "general-pairwise.yaml"
BASELINE_PREFIX = stats.BASELINE_PREFIX


@dataclass(frozen=True)
class RubricChoice:
    """A rubric file offered to the user; `error` says why it cannot be used."""

    path: Path
    rubric: Rubric | None
    error: str | None = None

    @property
    def title(self) -> str:
        if self.rubric is None:
            return f"{self.path.name} (invalid)"
        return f"{self.rubric.name} v{self.rubric.version} ({self.rubric.mode})"


def available_rubrics(settings: Settings) -> list[RubricChoice]:
    """The shipped rubrics, then those in `REVIEW_APP_RUBRICS`; invalid files are listed with
    their error rather than hidden."""
    folders = [RUBRICS_DIR]
    if settings.judge_rubrics_dir:
        folders.append(Path(settings.judge_rubrics_dir))
    choices = []
    for folder in folders:
        for path in sorted(folder.glob("*.y*ml")):
            try:
                choices.append(RubricChoice(path, load_rubric(path)))
            except RubricError as exc:
                choices.append(RubricChoice(path, None, str(exc)))
    return choices


@dataclass(frozen=True)
class JudgePlan:
    """What a judge run would do: the calls still missing and what they would cost.

    `run_id` is the existing run these settings resume, or None for a new run.
    """

    study: str
    study_id: int
    judge: str
    label: str
    rubric: Rubric
    rubric_body: str
    rubric_hash: str
    params: JudgeParams
    run_id: int | None
    n_pairs: int
    n_total: int
    calls: list[JudgeCall]
    estimate: Estimate

    @property
    def n_missing(self) -> int:
        return len(self.calls)

    @property
    def n_stored(self) -> int:
        return self.n_total - self.n_missing

    def line(self) -> str:
        """One line for the CLI and the page: calls and cost before anything is sent."""
        if self.estimate.cost is None:
            cost = (
                f"cost unknown: no price for {self.judge} "
                "(add it to a price file, see REVIEW_APP_JUDGE_PRICES)"
            )
        else:
            cost = (
                f"estimated cost ${self.estimate.cost:.4f} (at most ${self.estimate.max_cost:.4f})"
            )
        return (
            f"{self.label}: {self.n_missing} calls to send, {self.n_stored} of {self.n_total} "
            f"already stored ({self.n_pairs} pairs, "
            f"{'both orders' if self.params.both_orders else 'single order'}); {cost}"
        )


@dataclass(frozen=True)
class JudgeRunOutcome:
    run_id: int
    label: str
    status: str
    progress: Progress
    failures: list[str]

    def line(self) -> str:
        p = self.progress
        cost = "cost unknown" if p.cost_unknown else f"cost ${p.cost:.4f}"
        return (
            f"run {self.run_id} {self.label}: {p.done - p.failed} verdicts stored "
            f"({p.parsed} parsed, {p.unparsed} unparsed), {p.failed} failed; "
            f"tokens {p.tokens_in} in / {p.tokens_out} out; {cost}; {p.elapsed_s:.1f}s; "
            f"status {self.status}"
        )


def _prices(settings: Settings) -> PriceTable:
    try:
        return load_prices(settings.judge_prices or None)
    except JudgeError as exc:
        raise InputError(str(exc)) from exc


def _is_baseline(judge: str) -> bool:
    return judge.startswith(BASELINE_PREFIX)


def _run_label(store: Store, study_id: int, judge: str, rubric: Rubric, params: JudgeParams) -> str:
    """A readable label, unique in the study: statistics and reports show judges by it.

    Baselines ignore the rubric, so they are labelled by name alone, as the statistics expect.
    """
    label = judge if _is_baseline(judge) else f"{judge} · {rubric.name} v{rubric.version}"
    if not params.both_orders:
        label += " · single order"
    taken = store.judge_run_labels(study_id)
    if label not in taken:
        return label
    n = 2
    while f"{label} #{n}" in taken:
        n += 1
    return f"{label} #{n}"


def plan_judge_run(
    store: Store,
    settings: Settings,
    study: str,
    rubric_path: str | Path,
    judge: str,
    both_orders: bool = True,
    seed: int | None = None,
) -> JudgePlan:
    """Everything `start_judge_run` would do, without calling any model (the dry run).

    A run is identified by study, judge, rubric content hash and parameters; when such a run
    exists, only its missing calls are planned.
    """
    try:
        split_spec(judge)
        rubric = load_rubric(rubric_path)
    except JudgeError as exc:
        raise InputError(str(exc)) from exc
    study_row = store.require_study(study)
    params = JudgeParams(
        max_tokens=settings.judge_max_tokens,
        both_orders=both_orders,
        seed=settings.seed if seed is None else seed,
    )
    # A baseline's answers do not depend on the rubric: one run per baseline and parameters.
    rubric_hash = "" if _is_baseline(judge) else rubric.content_hash
    run = store.find_judge_run(study_row["id"], judge, rubric_hash, params.params_hash)
    pairs = store.pairs_frame(study_row["id"]).to_dict("records")
    calls = build_calls(pairs, both_orders=params.both_orders, seed=params.seed)
    done = store.verdict_keys(run["id"]) if run else set()
    missing = missing_calls(calls, done)
    prompt_chars = []
    if not _is_baseline(judge):
        item_keys = {p["pair_id"]: p["item_key"] for p in pairs}
        for call in missing:
            try:
                messages = render_call(rubric, call)
            except RubricError as exc:
                raise InputError(f"{rubric_path}: item {item_keys[call.pair_id]}: {exc}") from exc
            prompt_chars.append(sum(len(m["content"]) for m in messages))
    else:
        prompt_chars = [0] * len(missing)
    return JudgePlan(
        study=study,
        study_id=study_row["id"],
        judge=judge,
        label=run["label"] if run else _run_label(store, study_row["id"], judge, rubric, params),
        rubric=rubric,
        rubric_body=Path(rubric_path).read_text(encoding="utf-8"),
        rubric_hash=rubric_hash,
        params=params,
        run_id=run["id"] if run else None,
        n_pairs=len(pairs),
        n_total=len(calls),
        calls=missing,
        estimate=estimate_cost(_prices(settings), judge, prompt_chars, params.max_tokens),
    )


def start_judge_run(
    store: Store,
    settings: Settings,
    study: str,
    rubric_path: str | Path,
    judge: str,
    both_orders: bool = True,
    seed: int | None = None,
    concurrency: int = 8,
    rpm: int | None = None,
    tpm: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    provider_options: dict | None = None,
    on_start: Callable[[JudgePlan], None] | None = None,
) -> JudgeRunOutcome:
    """Judge the study's pairs, sending only the calls this run does not hold yet.

    Each finished call is committed on its own, so a killed process loses at most the calls in
    flight and re-running the same command resumes. Calls whose retries ran out are listed in
    the outcome (status "incomplete"); re-running sends them again. `on_start` receives the plan
    once the judge is ready (credentials found), before the first call.
    """
    if concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {concurrency}")
    for name, value in (("--rpm", rpm), ("--tpm", tpm)):
        if value is not None and value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")
    plan = plan_judge_run(store, settings, study, rubric_path, judge, both_orders, seed)
    prices = _prices(settings)
    try:
        provider = get_provider(judge, **(provider_options or {}))
    except JudgeError as exc:
        raise InputError(str(exc)) from exc
    with store.transaction():
        rubric_id = None
        if not _is_baseline(judge):
            rubric = plan.rubric
            rubric_id = store.ensure_rubric(
                rubric.name, rubric.version, rubric.content_hash, plan.rubric_body
            )
        run = store.find_judge_run(plan.study_id, judge, plan.rubric_hash, plan.params.params_hash)
        if run is None:
            run_id = store.insert_judge_run(
                plan.study_id,
                plan.label,
                judge,
                rubric_id,
                plan.rubric_hash,
                plan.params.as_dict(),
                plan.params.params_hash,
            )
        else:
            run_id = run["id"]
        store.mark_judge_run(run_id, "running")
    # Another process may have stored verdicts since the plan: never send those again.
    calls = missing_calls(plan.calls, store.verdict_keys(run_id))
    if on_start:
        on_start(plan)

    def persist(result: CallResult) -> None:
        with store.transaction():
            store.insert_verdicts([_verdict_row(run_id, result)])

    options = RunOptions(
        concurrency=concurrency,
        rpm=rpm,
        tpm=tpm,
        timeout_s=settings.judge_timeout,
        max_attempts=settings.judge_max_attempts,
        parse_retries=settings.judge_parse_retries,
        backoff_cap_s=settings.judge_backoff_cap,
        retry_after_cap_s=settings.judge_retry_after_cap,
    )

    async def run_all() -> RunSummary:
        try:
            return await run_judge(
                provider,
                plan.rubric,
                calls,
                persist,
                params=plan.params,
                options=options,
                prices=prices,
                on_progress=on_progress,
            )
        finally:
            await provider.aclose()

    try:
        summary = asyncio.run(run_all())
    except FatalProviderError as exc:
        with store.transaction():
            store.mark_judge_run(run_id, "failed", finished=True)
        raise InputError(str(exc)) from exc
    except BaseException:
        with store.transaction():
            store.mark_judge_run(run_id, "interrupted", finished=True)
        raise
    status = "incomplete" if summary.failures else "complete"
    with store.transaction():
        store.mark_judge_run(run_id, status, finished=True)
    failures = [
        f"pair {f.call.pair_id} ({f.call.first_system} first): {f.error}" for f in summary.failures
    ]
    return JudgeRunOutcome(run_id, plan.label, status, summary.progress, failures)


def _verdict_row(run_id: int, result: CallResult) -> dict:
    call, verdict = result.call, result.verdict
    scores = {}
    if verdict.scores:
        scores = {
            call.first_system: verdict.scores["first"],
            call.second_system: verdict.scores["second"],
        }
    return {
        "run_id": run_id,
        "pair_id": call.pair_id,
        "first_system": call.first_system,
        "winner": result.winner_system,
        "scores": json.dumps(scores),
        "explanation": verdict.explanation,
        "raw_text": result.raw_text,
        "parse_error": verdict.parse_error,
        "finish_reason": result.finish_reason,
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
        "cost": result.cost,  # None when the judge has no price in the table: unknown, not free
        "latency_ms": result.latency_ms,
        "attempts": result.attempts,
        "created_at": now_iso(),
    }


def judge_runs(store: Store, settings: Settings, study: str) -> list[dict]:
    """The study's judge runs with totals, newest first. `missing` is how many calls a re-run
    would send; `cost` is None when the judge's price is unknown."""
    study_row = store.require_study(study)
    n_pairs = store.study_counts(study_row["id"])["pairs"]
    prices = _prices(settings)
    runs = []
    for row in store.judge_run_totals(study_row["id"]):
        params = json.loads(row["params"] or "{}")
        expected = None
        if row["source"] == "run":
            expected = n_pairs * (2 if params.get("both_orders", True) else 1)
        known_price = row["source"] != "run" or prices.price(row["judge"]) is not None
        runs.append(
            {
                "id": row["id"],
                "label": row["label"],
                "judge": row["judge"],
                "rubric": f"{row['rubric']} v{row['rubric_version']}" if row["rubric"] else "",
                "source": row["source"],
                "status": row["status"],
                "verdicts": row["n_verdicts"],
                "parsed": row["n_parsed"],
                "unparsed": row["n_unparsed"],
                "missing": None if expected is None else max(0, expected - row["n_verdicts"]),
                "tokens_in": row["tokens_in"],
                "tokens_out": row["tokens_out"],
                "cost": row["cost"] if known_price else None,
                "mean_latency_ms": row["mean_latency_ms"],
                "attempts": row["attempts"],
                "started_at": row["started_at"],
                "finished_at": row["finished_at"],
            }
        )
    return runs


def judge_run_failures(store: Store, run_id: int, limit: int = 100) -> list[dict]:
    """Unparsed verdicts of a run with their reason and the judge's raw answer."""
    if store.judge_run(run_id) is None:
        raise NotFound(f"no judge run with id {run_id}")
    return store.unparsed_verdicts(run_id, limit)


def seed_demo_judges(store: Store, settings: Settings) -> None:
    """Baseline-judge runs (all four, both orders) on the demo study, so calibration has judges
    to show without any API key. Idempotent: a complete run sends nothing."""
    for name in BASELINES:
        start_judge_run(store, settings, DEMO_STUDY, DEMO_RUBRIC, BASELINE_PREFIX + name)


# ---- end of sections ----
