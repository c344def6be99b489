"""Who sees which pair next: each reviewer's own random queue order, which system is shown on the
left, and the queue walk that picks the next free pair (`pick_next`, reads only) and leases it
(`claim_next`, through the store)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from review_app.store import Store

# Queue orders are a permutation of the study's pair ids. Reading the ids of 100,000 pairs takes
# tens of milliseconds and shuffling them one or two, so the ids are kept per study and the
# latest orders per reviewer (pairs are only ever added, so the keys are exact). A server shares
# these between its sessions' threads, hence the lock.
_PAIR_IDS: OrderedDict[tuple, np.ndarray] = OrderedDict()
_PAIR_IDS_SIZE = 8
_QUEUE_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
_QUEUE_CACHE_SIZE = 64
_CACHE_LOCK = threading.Lock()
# The queue walk reads this many queue positions per store visit, and settles for the first free
# pair (unbalanced) when no balanced one turns up among this many free pairs.
_QUEUE_BATCH = 64
_MATCH_WINDOW = 256


def queue_order(pair_ids: Sequence[int], reviewer_id: int, study_id: int, seed: int) -> np.ndarray:
    """The reviewer's queue: the study's pair ids in an order of their own, stable across
    sessions (seeded by workspace seed, study and reviewer)."""
    rng = np.random.default_rng([seed, study_id, reviewer_id])
    return rng.permutation(np.asarray(pair_ids, dtype=np.int64))


def cached_queue_order(
    cache_key: tuple, pair_ids_loader, reviewer_id: int, study_id: int, seed: int
) -> np.ndarray:
    """`queue_order`, remembered under `cache_key` (which must change when the pairs do); the
    study's pair ids are loaded once for all its reviewers."""
    key = (*cache_key, reviewer_id, study_id, seed)
    with _CACHE_LOCK:
        order = _remembered(_QUEUE_CACHE, key)
        pair_ids = _remembered(_PAIR_IDS, (*cache_key, study_id))
    if order is not None:
        return order
    if pair_ids is None:
        pair_ids = np.asarray(pair_ids_loader(), dtype=np.int64)
        with _CACHE_LOCK:
            _remember(_PAIR_IDS, (*cache_key, study_id), pair_ids, _PAIR_IDS_SIZE)
    order = queue_order(pair_ids, reviewer_id, study_id, seed)
    with _CACHE_LOCK:
        _remember(_QUEUE_CACHE, key, order, _QUEUE_CACHE_SIZE)
    return order


def _remembered(cache: OrderedDict, key: tuple) -> np.ndarray | None:
    value = cache.get(key)
    if value is not None:
        cache.move_to_end(key)
    return value


def _remember(cache: OrderedDict, key: tuple, value: np.ndarray, size: int) -> None:
    cache[key] = value
    while len(cache) > size:
        cache.popitem(last=False)


@dataclass(frozen=True)
class Candidate:
    """A pair the reviewer may be handed, with how often each of its systems was shown left by
    the reviewers who currently count towards its k reviews."""

    position: int
    pair_id: int
    comparison: tuple[str, str]
    x_left: int
    y_left: int


def side_behind(x_left: int, y_left: int) -> str | None:
    """'x' or 'y', whichever has been shown on the left less often; None when level."""
    if x_left == y_left:
        return None
    return "x" if x_left < y_left else "y"


def reviewer_side(balance: int) -> str | None:
    """The side a reviewer must see on the left next; `balance` = x shown left - y shown left."""
    return side_behind(max(balance, 0), max(-balance, 0))


def choose(
    candidates: Iterable[Candidate], reviewer_balance: Mapping[tuple[str, str], int]
) -> tuple[Candidate, str] | None:
    """The first candidate (in queue order) on which both the reviewer and the pair can stay
    balanced, and the side ('x' or 'y') to show on its left; None when there is none.

    A pair's reviews split evenly between the two orders (so with an even k every completed
    pair, hence every comparison, is exactly balanced; with an odd k the odd review takes the
    reviewer's side, or the pair id's parity when the reviewer is level). Among such pairs, the
    reviewer takes one that also keeps them seeing each system on the left half the time, within
    one. Only at the tail of a study, when the last open pairs all need the order this reviewer
    has seen more often, does the caller fall back to the pair's side (`side_behind`)."""
    for candidate in candidates:
        needs = reviewer_side(reviewer_balance.get(candidate.comparison, 0))
        pair_needs = side_behind(candidate.x_left, candidate.y_left)
        if needs is None:
            return candidate, pair_needs or ("x" if candidate.pair_id % 2 == 0 else "y")
        if pair_needs in (None, needs):
            return candidate, needs
    return None


@dataclass(frozen=True)
class Pick:
    """The pair a reviewer should be handed next and the side to show on its left, with what it
    was chosen on: the reviewer's last queue position and the pair's live reviews."""

    candidate: Candidate
    side: str
    last_position: int
    live: tuple[int, int, int]  # reviewers counting towards k, x shown left, y shown left


def pick_next(store: Store, study: dict, reviewer_id: int, seed: int, now: float) -> Pick | None:
    """Walk the reviewer's queue from where they last took a pair (wrapping round, so pairs whose
    leases ran out are offered again) and pick the first pair that is free for them and keeps
    left/right balanced (see `assignment.choose`). When none turns up within `_MATCH_WINDOW` free
    pairs, the first free pair is picked in the order that keeps that pair balanced. Reads only:
    `claim_next` leases the pick."""
    # Pairs are only ever added, so the workspace file and its highest pair id pin the order
    # (with the draw of the human subset, which changes only with its seed).
    order = cached_queue_order(
        (store.identity, store.studies.max_pair_id(), study.get("human_seed")),
        lambda: store.studies.study_pair_ids(study["id"]),
        reviewer_id,
        study["id"],
        seed,
    )
    n = len(order)
    last_position = store.review.last_position(reviewer_id, study["id"])
    start = last_position + 1
    k = study["reviews_per_pair"]
    balance = store.review.reviewer_left_balances(reviewer_id, study["id"], now)
    fallback: Candidate | None = None
    live_of: dict[int, tuple[int, int, int]] = {}
    examined = 0
    for offset in range(0, n, _QUEUE_BATCH):
        positions = [(start + i) % n for i in range(offset, min(offset + _QUEUE_BATCH, n))]
        pair_ids = [int(order[pos]) for pos in positions]
        seen = store.review.seen_pairs(reviewer_id, pair_ids)
        fresh = [
            (pos, pid) for pos, pid in zip(positions, pair_ids, strict=True) if pid not in seen
        ]
        if not fresh:
            continue
        live = store.review.live_reviews([pid for _, pid in fresh], now)
        free = [
            Candidate(
                pos,
                pid,
                (live[pid]["system_x"], live[pid]["system_y"]),
                live[pid]["x_left"],
                live[pid]["y_left"],
            )
            for pos, pid in fresh
            if pid in live
            and live[pid]["study_id"] == study["id"]
            and live[pid]["human"]
            and live[pid]["n"] < k
        ]
        live_of.update({c.pair_id: (live[c.pair_id]["n"], c.x_left, c.y_left) for c in free})
        chosen = choose(free, balance)
        if chosen is not None:
            candidate, side = chosen
            return Pick(candidate, side, last_position, live_of[candidate.pair_id])
        fallback = fallback or (free[0] if free else None)
        examined += len(free)
        if fallback is not None and examined >= _MATCH_WINDOW:
            break
    if fallback is None:
        return None
    side = side_behind(fallback.x_left, fallback.y_left) or "x"
    return Pick(fallback, side, last_position, live_of[fallback.pair_id])


def claim_next(
    store: Store,
    study: dict,
    reviewer_id: int,
    seed: int,
    now: float,
    lease: float,
    pick: Pick | None = None,
) -> int | None:
    """Lease the reviewer's next pair and return the assignment id; None when nothing is left
    for them. Call inside a write transaction. `pick`, made before the transaction began (so
    the queue walk holds no lock), is leased when nothing it was chosen on has changed since;
    otherwise the queue is walked again, now under the lock."""
    if pick is None or not _still_free(store, study["id"], reviewer_id, pick, now):
        pick = pick_next(store, study, reviewer_id, seed, now)
    if pick is None:
        return None
    return _lease(store, pick.candidate, pick.side, reviewer_id, study["id"], lease)


def _still_free(store: Store, study_id: int, reviewer_id: int, pick: Pick, now: float) -> bool:
    """Whether `pick` would still be chosen: the reviewer took no other pair meanwhile, has not
    seen this one, and the pair's live reviews are unchanged (so it is below k and the side
    shown left still balances it)."""
    pair_id = pick.candidate.pair_id
    if store.review.last_position(reviewer_id, study_id) != pick.last_position:
        return False
    if store.review.seen_pairs(reviewer_id, [pair_id]):
        return False
    live = store.review.live_reviews([pair_id], now).get(pair_id)
    return live is not None and (live["n"], live["x_left"], live["y_left"]) == pick.live


def _lease(
    store: Store,
    candidate: Candidate,
    side: str,
    reviewer_id: int,
    study_id: int,
    lease: float,
) -> int:
    x, y = candidate.comparison
    return store.review.insert_assignment(
        candidate.pair_id,
        reviewer_id,
        study_id,
        (x, y) if side == "x" else (y, x),
        candidate.position,
        lease,
    )
