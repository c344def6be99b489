"""Assignment and voting through the service layer: k reviews per pair from k reviewers, leases,
per-reviewer queues, left/right counterbalancing, skip, undo and edits."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pytest

from review_app import assignment
from review_app.errors import Conflict, InputError, NotFound
from review_app.services import data, review
from review_app.store import Store
from tests.acting import acting, person
from tests.review_fixtures import SENTINELS, SYSTEM_X, SYSTEM_Y, add_reviewer, make_study

pytestmark = pytest.mark.both_backends


def reviewer_id(store, name):
    return store.people.reviewer(name)["id"]


def label_all(store, settings, name, study, choice="A", now=None):
    """Vote `choice` on everything the reviewer is handed; returns the assignment ids in order."""
    rid = reviewer_id(store, name)
    handed = []
    while (task := review.next_pair(store, settings, rid, study["id"], now=now)) is not None:
        handed.append(task.assignment_id)
        review.record_vote(store, settings, rid, task.assignment_id, choice, now=now)
    return handed


def test_a_vote_stores_winner_and_shown_order(store, settings, tmp_path):
    study = make_study(store, tmp_path, criteria=["accuracy"])
    add_reviewer(store, settings, "rita")
    rid = reviewer_id(store, "rita")
    task = review.next_pair(store, settings, rid, study["id"])
    handed = store.review.assignment(task.assignment_id)
    pair = store.studies.pair(handed["pair_id"])
    left = handed["shown_left"]
    right = pair["system_y"] if left == pair["system_x"] else pair["system_x"]
    assert task.text_a == pair["output_x" if left == pair["system_x"] else "output_y"]

    review.record_vote(
        store,
        settings,
        rid,
        task.assignment_id,
        "B",
        criteria={"accuracy": {"A": 2, "B": 5}},
        rationale="  B answers the question.  ",
        flags=["broken_output"],
        ms_spent=4200,
    )
    [vote] = store.review.vote_history(study["id"])
    assert (vote["choice"], vote["winner"]) == ("B", right)
    assert (vote["shown_left"], vote["shown_right"]) == (left, right)
    assert json.loads(vote["criteria"]) == {"accuracy": {left: 2, right: 5}}
    assert vote["rationale"] == "B answers the question."
    assert json.loads(vote["flags"]) == ["broken_output"]
    assert vote["ms_spent"] == 4200


@pytest.mark.parametrize("choice", ["tie", "both_bad"])
def test_tie_and_both_bad_are_stored_as_such(store, settings, tmp_path, choice):
    study = make_study(store, tmp_path)
    add_reviewer(store, settings, "rita")
    rid = reviewer_id(store, "rita")
    task = review.next_pair(store, settings, rid, study["id"])
    review.record_vote(store, settings, rid, task.assignment_id, choice)
    assert store.frames.votes_frame(study["id"]).winner.tolist() == [choice]


def test_the_task_a_reviewer_sees_names_no_system(store, settings, tmp_path):
    study = make_study(store, tmp_path)
    add_reviewer(store, settings, "rita")
    task = review.next_pair(store, settings, reviewer_id(store, "rita"), study["id"])
    assert not any(name in repr(task) for name in SENTINELS)


def test_each_pair_gets_exactly_k_votes_from_k_reviewers(store, settings, tmp_path):
    study = make_study(store, tmp_path, n_items=10, reviews_per_pair=2)
    for name in ("r1", "r2", "r3", "r4"):
        add_reviewer(store, settings, name)
        label_all(store, settings, name, study)
    votes = store.frames.votes_frame(study["id"])
    per_pair = votes.groupby("pair_id").reviewer.agg(["count", "nunique"])
    assert len(per_pair) == 20
    assert (per_pair["count"] == 2).all() and (per_pair["nunique"] == 2).all()
    # The four reviewers shared the 40 reviews between them; a fifth finds nothing left.
    assert votes.reviewer.value_counts().sum() == 40
    add_reviewer(store, settings, "r5")
    assert review.next_pair(store, settings, reviewer_id(store, "r5"), study["id"]) is None


def test_a_reviewer_never_sees_a_pair_twice(store, settings, tmp_path):
    study = make_study(store, tmp_path, n_items=6, reviews_per_pair=3)
    add_reviewer(store, settings, "rita")
    rid = reviewer_id(store, "rita")
    seen = []
    while (task := review.next_pair(store, settings, rid, study["id"])) is not None:
        seen.append(store.review.assignment(task.assignment_id)["pair_id"])
        if len(seen) % 3 == 0:
            review.skip_pair(store, rid, task.assignment_id)
        else:
            review.record_vote(store, settings, rid, task.assignment_id, "A")
    assert len(seen) == len(set(seen)) == 12


def test_each_reviewer_has_their_own_queue_order(store, settings, tmp_path):
    study = make_study(store, tmp_path, n_items=30, reviews_per_pair=3)
    orders = {}
    for name in ("r1", "r2"):
        add_reviewer(store, settings, name)
        handed = label_all(store, settings, name, study)
        orders[name] = [store.review.assignment(a)["pair_id"] for a in handed]
    assert sorted(orders["r1"]) == sorted(orders["r2"])
    assert orders["r1"] != orders["r2"]
    assert orders["r1"] != sorted(orders["r1"])


def test_a_reload_gets_the_same_pair_back(store, settings, tmp_path):
    study = make_study(store, tmp_path)
    add_reviewer(store, settings, "rita")
    rid = reviewer_id(store, "rita")
    first = review.next_pair(store, settings, rid, study["id"])
    again = review.next_pair(store, settings, rid, study["id"])
    assert again == first


def test_left_right_is_balanced_per_reviewer_and_comparison(store, settings, tmp_path):
    study = make_study(store, tmp_path, n_items=25, reviews_per_pair=3)
    for name in ("r1", "r2", "r3", "r4"):
        add_reviewer(store, settings, name)
    # Interleave the reviewers so their votes land on each other's pairs.
    active = ["r1", "r2", "r3", "r4"]
    while active:
        for name in list(active):
            rid = reviewer_id(store, name)
            task = review.next_pair(store, settings, rid, study["id"])
            if task is None:
                active.remove(name)
                continue
            review.record_vote(store, settings, rid, task.assignment_id, "A")
    history = store.review.vote_history(study["id"])
    assert len(history) == 150
    left_counts = Counter(
        (v["reviewer"], v["system_x"], v["system_y"], v["shown_left"] == v["system_x"])
        for v in history
    )
    for reviewer in ("r1", "r2", "r3", "r4"):
        for x, y in ((SENTINELS[0], SENTINELS[1]), (SENTINELS[0], SENTINELS[2])):
            shown_x = left_counts[(reviewer, x, y, True)]
            shown_y = left_counts[(reviewer, x, y, False)]
            assert abs(shown_x - shown_y) <= 1, (reviewer, x, y, shown_x, shown_y)


def test_an_expired_lease_lets_another_reviewer_take_the_pair(store, settings, tmp_path):
    study = make_study(store, tmp_path, n_items=1, reviews_per_pair=1)
    for name in ("slow", "fast"):
        add_reviewer(store, settings, name)
    slow, fast = reviewer_id(store, "slow"), reviewer_id(store, "fast")
    t0 = 1_000_000.0
    settings = replace(settings, lease_minutes=30)
    held = review.next_pair(store, settings, slow, study["id"], now=t0)
    # Both pairs of the one item: slow holds one, fast may take only the other while leased.
    other = review.next_pair(store, settings, fast, study["id"], now=t0 + 60)
    assert (
        store.review.assignment(other.assignment_id)["pair_id"]
        != store.review.assignment(held.assignment_id)["pair_id"]
    )
    review.record_vote(store, settings, fast, other.assignment_id, "A", now=t0 + 61)
    assert review.next_pair(store, settings, fast, study["id"], now=t0 + 120) is None

    late = t0 + 31 * 60
    taken = review.next_pair(store, settings, fast, study["id"], now=late)
    assert (
        store.review.assignment(taken.assignment_id)["pair_id"]
        == store.review.assignment(held.assignment_id)["pair_id"]
    )
    review.record_vote(store, settings, fast, taken.assignment_id, "B", now=late + 1)
    with pytest.raises(Conflict, match="reviewed by others"):
        review.record_vote(store, settings, slow, held.assignment_id, "A", now=late + 2)
    assert len(store.frames.votes_frame(study["id"])) == 2


def test_an_expired_lease_still_counts_when_nobody_took_the_pair(store, settings, tmp_path):
    study = make_study(store, tmp_path, n_items=1, reviews_per_pair=1)
    add_reviewer(store, settings, "slow")
    rid = reviewer_id(store, "slow")
    held = review.next_pair(store, settings, rid, study["id"], now=0.0)
    assert review.next_pair(store, settings, rid, study["id"], now=10_000.0) == held
    review.record_vote(store, settings, rid, held.assignment_id, "A", now=20_000.0)
    assert len(store.frames.votes_frame(study["id"])) == 1


def test_skip_hands_the_pair_to_someone_else(store, settings, tmp_path):
    study = make_study(store, tmp_path, n_items=1, reviews_per_pair=1)
    for name in ("r1", "r2"):
        add_reviewer(store, settings, name)
    r1, r2 = reviewer_id(store, "r1"), reviewer_id(store, "r2")
    first = review.next_pair(store, settings, r1, study["id"])
    review.skip_pair(store, r1, first.assignment_id)
    second = review.next_pair(store, settings, r1, study["id"])
    assert second.assignment_id != first.assignment_id
    review.record_vote(store, settings, r1, second.assignment_id, "A")
    assert review.next_pair(store, settings, r1, study["id"]) is None
    taken = review.next_pair(store, settings, r2, study["id"])
    assert taken.prompt == first.prompt and taken.text_a in (first.text_a, first.text_b)
    with pytest.raises(Conflict):
        review.record_vote(store, settings, r1, first.assignment_id, "A")


def test_undo_retracts_the_last_vote_and_shows_the_pair_again(store, settings, tmp_path):
    study = make_study(store, tmp_path)
    add_reviewer(store, settings, "rita")
    rid = reviewer_id(store, "rita")
    first = review.next_pair(store, settings, rid, study["id"])
    review.record_vote(store, settings, rid, first.assignment_id, "A")
    second = review.next_pair(store, settings, rid, study["id"])
    review.record_vote(store, settings, rid, second.assignment_id, "B")

    assert review.undo_last_vote(store, settings, rid, study["id"])
    assert review.next_pair(store, settings, rid, study["id"]) == replace(
        second, draft=review.Draft("B", "", (), {})
    )
    history = store.review.vote_history(study["id"])
    assert [v["choice"] for v in history] == ["A", "B", "retracted"]
    assert history[2]["supersedes"] == history[1]["id"] and history[2]["winner"] is None
    assert len(store.frames.votes_frame(study["id"])) == 1
    assert review.review_progress(store, rid, study["id"]).done == 1

    review.record_vote(store, settings, rid, second.assignment_id, "tie")
    assert store.frames.votes_frame(study["id"]).winner.tolist()[-1] == "tie"
    assert store.review.vote_history(study["id"])[-1]["supersedes"] == history[2]["id"]


def test_undo_brings_back_everything_the_reviewer_entered(store, settings, tmp_path):
    study = make_study(store, tmp_path, criteria=["accuracy", "tone"])
    add_reviewer(store, settings, "rita")
    rid = reviewer_id(store, "rita")
    task = review.next_pair(store, settings, rid, study["id"])
    review.record_vote(
        store,
        settings,
        rid,
        task.assignment_id,
        "B",
        criteria={"accuracy": {"A": 2, "B": 5}, "tone": {"B": 4}},
        rationale="B names the reset time",
        flags=["broken_output", "recognized_model"],
    )
    review.undo_last_vote(store, settings, rid, study["id"])
    back = review.next_pair(store, settings, rid, study["id"])
    assert back.assignment_id == task.assignment_id
    assert back.draft == review.Draft(
        choice="B",
        rationale="B names the reset time",
        flags=("broken_output", "recognized_model"),
        criteria={"accuracy": {"A": 2, "B": 5}, "tone": {"B": 4}},
    )
    # Voting again clears the draft: the next undo restores that vote instead.
    review.record_vote(store, settings, rid, back.assignment_id, "tie")
    assert review.next_pair(store, settings, rid, study["id"]).draft is None


def test_a_vote_records_the_guidelines_in_force(store, settings, tmp_path):
    from review_app.services import studies

    study = make_study(store, tmp_path)
    add_reviewer(store, settings, "rita")
    rid = reviewer_id(store, "rita")
    first = review.next_pair(store, settings, rid, study["id"])
    review.record_vote(store, settings, rid, first.assignment_id, "A")
    digest, changed = studies.set_guidelines(
        acting(store, study["name"]), "# Rules\n\nPrefer short."
    )
    assert changed and len(digest) == 16
    assert studies.set_guidelines(acting(store, study["name"]), "# Rules\n\nPrefer short.\n") == (
        digest,
        False,
    )
    second = review.next_pair(store, settings, rid, study["id"])
    assert not review.voted_under_guidelines(store, rid, study["id"], digest)
    review.record_vote(store, settings, rid, second.assignment_id, "B")
    assert [v["guidelines_hash"] for v in store.review.vote_history(study["id"])] == [None, digest]
    assert review.voted_under_guidelines(store, rid, study["id"], digest)
    [version] = studies.guidelines_history(store, study["name"])
    assert (version["content_hash"], version["n_votes"]) == (digest, 1)


def test_undo_with_nothing_to_undo(store, settings, tmp_path):
    study = make_study(store, tmp_path)
    add_reviewer(store, settings, "rita")
    assert not review.undo_last_vote(store, settings, reviewer_id(store, "rita"), study["id"])


def test_editing_an_earlier_vote_appends_a_superseding_row(store, settings, tmp_path):
    study = make_study(store, tmp_path)
    add_reviewer(store, settings, "rita")
    rid = reviewer_id(store, "rita")
    label_first = review.next_pair(store, settings, rid, study["id"])
    review.record_vote(store, settings, rid, label_first.assignment_id, "A", rationale="first")
    review.record_vote(
        store,
        settings,
        rid,
        review.next_pair(store, settings, rid, study["id"]).assignment_id,
        "A",
    )
    [_, earlier] = review.my_votes(store, rid, study["id"])  # newest first
    assert earlier["number"] == 1 and earlier["choice"] == "A"
    review.record_vote(store, settings, rid, earlier["assignment_id"], "B", rationale="changed")
    history = store.review.vote_history(study["id"])
    assert len(history) == 3 and history[2]["supersedes"] == history[0]["id"]
    frame = store.frames.votes_frame(study["id"])
    assert len(frame) == 2
    assert [v["choice"] for v in review.my_votes(store, rid, study["id"])] == ["A", "B"]


def test_another_reviewers_pair_cannot_be_voted(store, settings, tmp_path):
    study = make_study(store, tmp_path)
    for name in ("r1", "r2"):
        add_reviewer(store, settings, name)
    task = review.next_pair(store, settings, reviewer_id(store, "r1"), study["id"])
    with pytest.raises(NotFound):
        review.record_vote(store, settings, reviewer_id(store, "r2"), task.assignment_id, "A")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"choice": "left"},
        {"choice": "A", "flags": ["nope"]},
        {"choice": "A", "criteria": {"accuracy": {"A": 6}}},
        {"choice": "A", "criteria": {"tone": {"A": 3}}},
    ],
)
def test_malformed_votes_are_refused_and_change_nothing(store, settings, tmp_path, kwargs):
    study = make_study(store, tmp_path, criteria=["accuracy"])
    add_reviewer(store, settings, "rita")
    rid = reviewer_id(store, "rita")
    task = review.next_pair(store, settings, rid, study["id"])
    with pytest.raises(InputError):
        review.record_vote(store, settings, rid, task.assignment_id, **kwargs)
    assert store.review.vote_history(study["id"]) == []


def test_imported_votes_count_towards_k(store, settings, tmp_path):
    study = make_study(store, tmp_path, n_items=1, reviews_per_pair=1)
    (tmp_path / "votes.csv").write_text(
        "item_id,system_a,system_b,reviewer,winner\n"
        f"q0000,{SYSTEM_X},{SYSTEM_Y},offline,{SYSTEM_X}\n",
        encoding="utf-8",
    )
    data.import_votes(store, tmp_path / "votes.csv", study["name"], actor=person(store))
    add_reviewer(store, settings, "rita")
    rid = reviewer_id(store, "rita")
    label_all(store, settings, "rita", study)
    assert review.next_pair(store, settings, rid, study["id"]) is None
    assert len(store.frames.votes_frame(study["id"])) == 2  # one imported, one for the other pair


def test_progress_counts_done_and_assigned(store, settings, tmp_path):
    study = make_study(store, tmp_path, n_items=5, reviews_per_pair=1)
    add_reviewer(store, settings, "rita")
    rid = reviewer_id(store, "rita")
    assert review.review_progress(store, rid, study["id"]) == review.ReviewProgress(0, 10)
    task = review.next_pair(store, settings, rid, study["id"])
    review.record_vote(store, settings, rid, task.assignment_id, "A")
    assert review.review_progress(store, rid, study["id"]) == review.ReviewProgress(1, 10)


def test_choose_keeps_reviewer_and_pair_balanced():
    comparison = ("x-sys", "y-sys")

    def candidate(pair_id, x_left, y_left):
        return assignment.Candidate(pair_id, pair_id, comparison, x_left, y_left)

    # A level reviewer follows the pair; a level pair follows its id's parity.
    assert assignment.choose([candidate(7, 1, 0)], {}) == (candidate(7, 1, 0), "y")
    assert assignment.choose([candidate(8, 0, 0)], {})[1] == "x"
    assert assignment.choose([candidate(9, 0, 0)], {})[1] == "y"
    # A reviewer who saw x on the left more often needs y: the pair needing x waits.
    picked = assignment.choose([candidate(1, 0, 1), candidate(2, 1, 0)], {comparison: 1})
    assert picked == (candidate(2, 1, 0), "y")
    assert assignment.choose([candidate(1, 0, 1)], {comparison: 1}) is None


def test_migration_2_fills_in_study_and_shown_order_of_earlier_assignments(tmp_path, settings):
    """A workspace that had assignments before migration 2 keeps them, with study and order."""
    store = Store.open(tmp_path / "v1.db")
    study = make_study(store, tmp_path, n_items=1)
    add_reviewer(store, settings, "rita")
    rid = reviewer_id(store, "rita")
    task = review.next_pair(store, settings, rid, study["id"])
    before = store.review.assignment(task.assignment_id)
    # Turn the workspace back into what migration 1 alone produced.
    with store.transaction():
        store.db.execute("DROP INDEX assignments_reviewer_study")
        store.db.execute("DROP INDEX assignments_reviewer_latest")  # migration 19 reads these
        store.db.execute("DROP INDEX assignments_reviewer_shown")
        store.db.execute("ALTER TABLE assignments DROP COLUMN shown_right")
        store.db.execute("ALTER TABLE assignments DROP COLUMN study_id")
        store.db.execute("DELETE FROM _migrations WHERE version IN (2, 19)")
    store.close()

    store = Store.open(tmp_path / "v1.db")
    after = store.review.assignment(task.assignment_id)
    assert (after["study_id"], after["shown_left"], after["shown_right"]) == (
        study["id"],
        before["shown_left"],
        before["shown_right"],
    )
    assert review.next_pair(store, settings, rid, study["id"]) == task
    store.close()


def test_a_hundred_reviewers_share_one_read_of_the_studys_pairs():
    # More reviewers than remembered orders must not mean a read of every pair per vote: the
    # study's pair ids are read once, and each reviewer's order is computed from its key.
    loads = []
    # A workspace of this run's own: the cache is the process's, and this test runs once per
    # backend in one process.
    workspace = object()

    def load():
        loads.append(1)
        return list(range(1, 1001))

    orders = []
    for reviewer in [*range(100), *range(100)]:
        pair_ids = assignment.study_pair_ids((workspace, 1000, None, 7), load)
        orders.append(assignment.queue_order(pair_ids, reviewer, 7, 0).tolist())
    assert len(loads) == 1
    assert sorted(orders[0]) == list(range(1, 1001))
    assert orders[0] == orders[100] != orders[1]


def test_any_stretch_of_a_queue_is_the_same_stretch_of_its_whole_order():
    # The walk reads only the stretch it needs; it must be the reviewer's one order.
    keys = assignment.queue_keys(5, 7, 0)
    for n in (1, 2, 3, 17, 64, 1000, 4097):
        span = assignment.queue_span(n)
        positions, whole = assignment.queue_stretch(0, span, n, keys)
        assert sorted(whole.tolist()) == list(range(n))
        first, count = span - 5, min(span, 40)  # a stretch that wraps round
        stretch, indexes = assignment.queue_stretch(first % span, count, n, keys)
        expected = [
            (p, i)
            for p, i in zip(positions.tolist(), whole.tolist(), strict=True)
            if (p - first) % span < count
        ]
        expected.sort(key=lambda pi: (pi[0] - first) % span)
        assert list(zip(stretch.tolist(), indexes.tolist(), strict=True)) == expected
