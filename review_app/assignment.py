"""Who sees which pair next: each reviewer's own random queue order, and which system is shown on
the left. Pure functions; `services` reads the counts they need from the store and writes the result.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

# Queue orders are a permutation of the study's pair ids; computing one for 100,000 pairs takes a
# few milliseconds, so the latest few are kept (pairs are only ever added, so the key is exact).
_QUEUE_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
_QUEUE_CACHE_SIZE = 64


def queue_order(pair_ids: Sequence[int], reviewer_id: int, study_id: int, seed: int) -> np.ndarray:
    """The reviewer's queue: the study's pair ids in an order of their own, stable across
    sessions (seeded by workspace seed, study and reviewer)."""
    rng = np.random.default_rng([seed, study_id, reviewer_id])
    return rng.permutation(np.asarray(pair_ids, dtype=np.int64))


def cached_queue_order(
    cache_key: tuple, pair_ids_loader, reviewer_id: int, study_id: int, seed: int
) -> np.ndarray:
    """`queue_order`, remembered under `cache_key` (which must change when the pairs do)."""
    key = (*cache_key, reviewer_id, study_id, seed)
    order = _QUEUE_CACHE.get(key)
    if order is None:
        order = queue_order(pair_ids_loader(), reviewer_id, study_id, seed)
        _QUEUE_CACHE[key] = order
        if len(_QUEUE_CACHE) > _QUEUE_CACHE_SIZE:
            _QUEUE_CACHE.popitem(last=False)
    else:
        _QUEUE_CACHE.move_to_end(key)
    return order


def choose_left(reviewer_balance: int, pair_x_left: int, pair_y_left: int, pair_id: int) -> str:
    """'x' or 'y': which system of the pair (canonical order) to show on the left.

    `reviewer_balance` is (times x was shown left) - (times y was) for this reviewer within the
    comparison. The reviewer's balance comes first, so each reviewer sees each system on the left
    half the time within one, in every comparison. When the reviewer is balanced, the pair's own
    live reviews decide (so its k reviews split evenly), then the pair id's parity (so across a
    comparison the odd review out alternates sides)."""
    if reviewer_balance > 0:
        return "y"
    if reviewer_balance < 0:
        return "x"
    if pair_x_left != pair_y_left:
        return "x" if pair_x_left < pair_y_left else "y"
    return "x" if pair_id % 2 == 0 else "y"
