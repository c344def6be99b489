"""Twenty reviewers voting at once on one workspace file, each through its own connection (as
separate app sessions would): no vote lost or duplicated, no "database is locked", k per pair."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from review_app.services import review
from review_app.store import Store
from tests.review_fixtures import add_reviewer, make_study

pytestmark = pytest.mark.both_backends

REVIEWERS = 20
ITEMS = 250  # two comparisons -> 500 pairs; 4 reviews each -> 2,000 votes
K = 4


def test_twenty_reviewers_voting_at_once(store, settings, tmp_path, isolated_workspace):
    """About 25 s on PostgreSQL, 5 s on SQLite: 2,000 votes by twenty threads at once is what
    it takes for a pair handed twice, a vote lost or doubled, or an unbalanced left/right to
    show under contention for the write lock."""
    study = make_study(store, tmp_path, n_items=ITEMS, reviews_per_pair=K)
    names = [f"r{i:02d}" for i in range(REVIEWERS)]
    for name in names:
        add_reviewer(store, settings, name)
    ids = {name: store.people.reviewer(name)["id"] for name in names}
    errors: list[BaseException] = []
    recorded: Counter[str] = Counter()
    start = threading.Barrier(REVIEWERS)

    def reviewer(name: str) -> None:
        own = Store.open(isolated_workspace)
        try:
            start.wait()
            choices = ("A", "B", "tie", "both_bad")
            while (task := review.next_pair(own, settings, ids[name], study["id"])) is not None:
                choice = choices[recorded[name] % 4]
                review.record_vote(own, settings, ids[name], task.assignment_id, choice)
                recorded[name] += 1
        except BaseException as exc:  # reported below; a thread must not die silently
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=reviewer, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    history = store.review.vote_history(study["id"])
    assert len(history) == sum(recorded.values()) == ITEMS * 2 * K
    assert all(v["supersedes"] is None for v in history)  # nothing voted twice
    per_pair = Counter((v["item_key"], v["system_x"], v["system_y"]) for v in history)
    assert len(per_pair) == ITEMS * 2 and set(per_pair.values()) == {K}
    distinct = {(v["item_key"], v["system_x"], v["system_y"], v["reviewer"]) for v in history}
    assert len(distinct) == len(history)

    # Left/right: with an even k every pair is shown in both orders equally often, so each
    # comparison is balanced exactly; reviewers are balanced too except in the tail (see
    # assignment.choose), which tests/test_review_service.py checks without threads.
    by_pair = Counter()
    by_comparison = Counter()
    for v in history:
        side = 1 if v["shown_left"] == v["system_x"] else -1
        by_pair[(v["item_key"], v["system_x"], v["system_y"])] += side
        by_comparison[(v["system_x"], v["system_y"])] += side
    assert set(by_pair.values()) == {0}
    assert len(by_comparison) == 2
    assert max(abs(d) for d in by_comparison.values()) <= 1, by_comparison
