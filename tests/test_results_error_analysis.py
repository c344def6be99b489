"""The Results screen's error analysis read without every text of the study: the length buckets
from prompt lengths in SQL, the losses from the lean frames, and the texts and rationales of
only the losses drawn, the same as read from the full text frames."""

import pytest

from review_app import gate, stats
from review_app.services import signoff
from tests.acting import lock_on_win_rate, looking

pytestmark = pytest.mark.both_backends


def test_the_losses_drawn_carry_the_texts_and_rationales_of_their_comparison(demo_store, settings):
    lock_on_win_rate(demo_store, settings)
    ctx = looking(demo_store, "demo", settings)
    results = signoff.study_results(ctx)
    data = ctx.data()
    pairs, votes = data.vote_texts(demo_store)
    candidate = data.candidate

    # The losses: comparisons whose human majority prefers the other system.
    majority = stats.majority_labels(pairs, votes)
    mine = pairs[(pairs.system_x == candidate) | (pairs.system_y == candidate)]
    side = mine.system_x.eq(candidate).map({True: "x", False: "y"})
    label = mine.pair_id.map(majority)
    lost = set(mine.pair_id[label.notna() & (label != "tie") & (label != side)])
    assert lost, "the demo's candidate loses some comparisons"
    assert {r["pair_id"] for r in results["losses"]} == lost

    details = signoff.loss_details(ctx, results["losses"])
    assert [d["pair_id"] for d in details] == [r["pair_id"] for r in results["losses"]]
    by_id = pairs.set_index("pair_id")
    for d in details:
        p = by_id.loc[d["pair_id"]]
        x_side = p.system_x == candidate
        assert d["prompt"] == p.prompt
        assert d["candidate_output"] == (p.output_x if x_side else p.output_y)
        assert d["opponent_output"] == (p.output_y if x_side else p.output_x)
        assert d["opponent"] == (p.system_y if x_side else p.system_x)
        said = votes[votes.pair_id == d["pair_id"]].rationale
        assert d["rationales"] == [r for r in said if isinstance(r, str) and r.strip()]
    assert any(d["rationales"] for d in details), "the demo's votes give some rationales"


def test_the_length_buckets_count_every_vote_on_the_candidate(demo_store, settings):
    lock_on_win_rate(demo_store, settings)
    ctx = looking(demo_store, "demo", settings)
    rows = signoff.study_results(ctx)["by_length"]
    data = ctx.data()
    assert rows == gate.length_breakdown(*data.vote_texts(demo_store), data.candidate)
    pairs = data.pairs
    involved = pairs[(pairs.system_x == data.candidate) | (pairs.system_y == data.candidate)]
    n_votes = int(data.votes.pair_id.isin(involved.pair_id).sum())
    for dimension in ("prompt length", "output length"):
        assert sum(r["n"] for r in rows if r["dimension"] == dimension) == n_votes
    assert len({r["bucket"] for r in rows if r["n"]}) > 2, "the demo's lengths fill some buckets"
