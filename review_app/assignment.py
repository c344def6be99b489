"""Who sees which pair next: each reviewer's own random queue order, which system is shown on the
left, and the queue walk that picks the next free pair (`pick_next`, reads only) and leases it
(`claim_next`, through the store)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from review_app.store import Store

# A reviewer's queue is a keyed pseudo-random permutation of the study's pair ids, computed on
# demand from its key for the stretch the walk reads, so no server keeps an order per reviewer,
# however many reviewers there are. The study's pair ids (tens of milliseconds to read at 100,000
# pairs) are kept per study; pairs are only ever added, so their key is exact. A server shares
# them between its sessions' threads, hence the lock.
_PAIR_IDS: OrderedDict[tuple, np.ndarray] = OrderedDict()
_PAIR_IDS_SIZE = 8
_CACHE_LOCK = threading.Lock()
# The queue walk reads about this many pairs on its first store visit (it nearly always finds
# the pick there) and this many on each further one, and settles for the first free pair
# (unbalanced) when no balanced one turns up among this many free pairs.
_FIRST_BATCH = 16
_QUEUE_BATCH = 64
_MATCH_WINDOW = 256
# Rounds of the Feistel network behind the permutation (four make it pseudo-random), and the
# multipliers of its round function (splitmix64's finaliser).
_ROUNDS = 4
_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def queue_keys(reviewer_id: int, study_id: int, seed: int) -> np.ndarray:
    """The round keys of a reviewer's queue, fixed by workspace seed, study and reviewer."""
    digest = hashlib.blake2b(f"{seed}:{study_id}:{reviewer_id}".encode(), digest_size=8 * _ROUNDS)
    return np.frombuffer(digest.digest(), dtype=np.uint64)


def _half_bits(n: int) -> int:
    return max(1, ((n - 1).bit_length() + 1) // 2)


def queue_span(n: int) -> int:
    """The positions of a queue over n pairs: the smallest power of four that holds n (so
    between n and 4n). A position holds a pair when its permuted value is below n; the others
    are passed over, which keeps the order a permutation of the n pairs."""
    return 1 << (2 * _half_bits(n))


def queue_stretch(
    first: int, count: int, n: int, keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The `count` queue positions from `first` on (wrapping round at `queue_span(n)`) that hold
    a pair, and the indexes into the study's pair ids of the pairs they hold: a Feistel network
    over the queue's positions, keyed by the reviewer's `keys`."""
    bits = _half_bits(n)
    mask, shift = np.uint64((1 << bits) - 1), np.uint64(bits)
    positions = (first + np.arange(count, dtype=np.int64)) % queue_span(n)
    x = positions.astype(np.uint64)
    left, right = x >> shift, x & mask
    with np.errstate(over="ignore"):
        for key in keys:
            mixed = right ^ key
            mixed = (mixed ^ (mixed >> np.uint64(30))) * _MIX[0]
            mixed = (mixed ^ (mixed >> np.uint64(27))) * _MIX[1]
            mixed = mixed ^ (mixed >> np.uint64(31))
            left, right = right, left ^ (mixed & mask)
    indexes = ((left << shift) | right).astype(np.int64)
    kept = indexes < n
    return positions[kept], indexes[kept]


def queue_order(pair_ids: Sequence[int], reviewer_id: int, study_id: int, seed: int) -> np.ndarray:
    """The reviewer's whole queue: the study's pair ids in an order of their own, stable across
    sessions (keyed by workspace seed, study and reviewer). The walk computes only the stretch
    it reads (`queue_stretch`)."""
    pair_ids = np.asarray(pair_ids, dtype=np.int64)
    n = len(pair_ids)
    if n == 0:
        return pair_ids
    keys = queue_keys(reviewer_id, study_id, seed)
    return pair_ids[queue_stretch(0, queue_span(n), n, keys)[1]]


def study_pair_ids(cache_key: tuple, pair_ids_loader) -> np.ndarray:
    """The study's pair ids in id order, remembered under `cache_key` (which must change when
    the pairs do), so they are read once for all its reviewers."""
    with _CACHE_LOCK:
        pair_ids = _PAIR_IDS.get(cache_key)
        if pair_ids is not None:
            _PAIR_IDS.move_to_end(cache_key)
            return pair_ids
    pair_ids = np.asarray(pair_ids_loader(), dtype=np.int64)
    with _CACHE_LOCK:
        _PAIR_IDS[cache_key] = pair_ids
        while len(_PAIR_IDS) > _PAIR_IDS_SIZE:
            _PAIR_IDS.popitem(last=False)
    return pair_ids


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


def pick_next(
    store: Store,
    study: dict,
    reviewer_id: int,
    seed: int,
    now: float,
    standing: dict | None = None,
) -> Pick | None:
    """Walk the reviewer's queue from where they last took a pair (wrapping round, so pairs whose
    leases ran out are offered again) and pick the first pair that is free for them and keeps
    left/right balanced (see `assignment.choose`). When none turns up within `_MATCH_WINDOW` free
    pairs, the first free pair is picked in the order that keeps that pair balanced. Reads only:
    `claim_next` leases the pick. `standing` is the reviewer's `store.review.standing` at `now`
    when the caller has it. Each stretch of the queue is one indexed query
    (`store.review.free_pairs`); the first stretch nearly always holds the pick."""
    # Pairs are only ever added, so the workspace file and its highest pair id pin the ids
    # (with the draw of the human subset, which changes only with its seed).
    pair_ids = study_pair_ids(
        (store.identity, store.studies.max_pair_id(), study.get("human_seed"), study["id"]),
        lambda: store.studies.study_pair_ids(study["id"]),
    )
    n = len(pair_ids)
    if n == 0:
        return None
    if standing is None:
        standing = store.review.standing(reviewer_id, study["id"], now)
    last_position = standing["last_position"]
    keys = queue_keys(reviewer_id, study["id"], seed)
    k = study["reviews_per_pair"]
    span = queue_span(n)
    fallback: Candidate | None = None
    live_of: dict[int, tuple[int, int, int]] = {}
    examined = walked = 0
    while walked < span:
        size = _FIRST_BATCH if walked == 0 else _QUEUE_BATCH
        count = min(span - walked, -(-size * span // n))
        positions, indexes = queue_stretch(last_position + 1 + walked, count, n, keys)
        walked += count
        if not len(positions):
            continue
        batch = pair_ids[indexes].tolist()
        live = store.review.free_pairs(reviewer_id, study["id"], batch, k, now)
        free = [
            Candidate(
                int(pos),
                pid,
                (live[pid]["system_x"], live[pid]["system_y"]),
                live[pid]["x_left"],
                live[pid]["y_left"],
            )
            for pos, pid in zip(positions, batch, strict=True)
            if pid in live
        ]
        live_of.update({c.pair_id: (live[c.pair_id]["n"], c.x_left, c.y_left) for c in free})
        chosen = choose(free, standing["balance"])
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


def claim_pick(
    store: Store, study: dict, reviewer_id: int, now: float, lease: float, pick: Pick
) -> int | None:
    """Lease `pick`, made before the write transaction began (so the queue walk holds no lock),
    when nothing it was chosen on has changed since: the reviewer holds no open pair and took
    none meanwhile, has not seen this one, and the pair's live reviews are unchanged (so it is
    below k and the side shown left still balances it). None, leasing nothing, otherwise. Call
    inside a write transaction."""
    pair_id = pick.candidate.pair_id
    held = store.review.held(reviewer_id, study["id"])
    if held["open"] or held["last_position"] != pick.last_position:
        return None
    live = store.review.free_pairs(
        reviewer_id, study["id"], [pair_id], study["reviews_per_pair"], now
    ).get(pair_id)
    if live is None or (live["n"], live["x_left"], live["y_left"]) != pick.live:
        return None
    return _lease(store, pick.candidate, pick.side, reviewer_id, study["id"], lease)


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
    for them. Call inside a write transaction. `pick` (see `claim_pick`) is leased when it is
    still free; otherwise the queue is walked again, now under the lock."""
    if pick is not None:
        handed = claim_pick(store, study, reviewer_id, now, lease, pick)
        if handed is not None:
            return handed
    pick = pick_next(store, study, reviewer_id, seed, now)
    if pick is None:
        return None
    return _lease(store, pick.candidate, pick.side, reviewer_id, study["id"], lease)


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
