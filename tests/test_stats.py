"""Hand-computed tables for every statistic of DESIGN section 5 (review_app.stats)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from review_app import baselines, stats
from tests.stats_frames import make_pairs, make_verdicts, make_votes, no_verdicts, no_votes

N_BOOT = 200


def analyse(pairs, votes, verdicts, **kwargs):
    return stats.analyse(pairs, votes, verdicts, n_boot=kwargs.pop("n_boot", N_BOOT), **kwargs)


def judge_of(analysis: stats.Analysis, label: str) -> stats.JudgeStats:
    judge = analysis.judge(label)
    assert judge is not None, f"{label} missing from {[j.judge for j in analysis.judges]}"
    return judge


# ---- combined verdict ----


def test_combined_verdict_agreeing_disagreeing_single_and_unparsed_orders():
    pairs = make_pairs(5)
    verdicts = make_verdicts(
        pairs,
        [
            ("j", 1, "x", "x"),
            ("j", 1, "y", "x"),  # both orders agree -> x
            ("j", 2, "x", "x"),
            ("j", 2, "y", "y"),  # orders disagree -> tie, inconsistent
            ("j", 3, "y", "y"),  # single order -> y
            ("j", 4, "x", None),
            ("j", 4, "y", "tie"),  # unparsed order ignored -> tie from the other
            ("j", 5, "x", None),  # only unparsed -> no combined verdict
        ],
    )
    combined = stats.combine_verdicts(pairs, verdicts).set_index("pair_id")
    assert combined["outcome"].to_dict() == {1: "x", 2: "tie", 3: "y", 4: "tie", 5: None}
    assert combined["inconsistent"].to_dict() == {1: False, 2: True, 3: False, 4: False, 5: False}
    assert combined.loc[2, "outcome_first_x"] == "x"
    assert combined.loc[2, "outcome_first_y"] == "y"
    assert combined.loc[3, "outcome_first_x"] is None
    assert combined["n_unparsed"].to_dict() == {1: 0, 2: 0, 3: 0, 4: 1, 5: 1}

    judge = judge_of(analyse(pairs, no_votes(), verdicts), "j")
    assert (judge.n_verdicts, judge.n_unparsed) == (8, 2)
    assert (judge.n_combined, judge.n_inconsistent) == (4, 1)


def test_order_combined_imported_verdict_is_used_as_is():
    pairs = make_pairs(2)
    verdicts = make_verdicts(pairs, [("imported", 1, None, "y"), ("imported", 2, None, "tie")])
    combined = stats.combine_verdicts(pairs, verdicts).set_index("pair_id")
    assert combined["outcome"].to_dict() == {1: "y", 2: "tie"}
    judge = judge_of(analyse(pairs, no_votes(), verdicts), "imported")
    # Nothing about position can be measured without single-order verdicts.
    assert judge.consistency is None and judge.p_first is None


# ---- agreement ----


@pytest.fixture
def small_study():
    """Four comparisons, two or three reviewers, one judge with mixed orders.

    votes                       judge (x first / y first)  -> combined
    1: ann x, bob x, cy x       x / x                      -> x
    2: ann y, bob tie           x / y                      -> tie (inconsistent)
    3: ann both_bad, bob y      unparsed / y               -> y
    4: ann x                    (order-combined) x         -> x
    """
    pairs = make_pairs(4, lengths={1: (200, 100), 2: (140, 100), 3: (100, 131), 4: (100, 130)})
    votes = make_votes(
        pairs,
        [
            (1, "ann", "x", "x"),
            (1, "bob", "x", "y"),
            (1, "cy", "x", None),
            (2, "ann", "y", "x"),
            (2, "bob", "tie", "y"),
            (3, "ann", "both_bad", "x"),
            (3, "bob", "y", "y"),
            (4, "ann", "x", "x"),
        ],
    )
    verdicts = make_verdicts(
        pairs,
        [
            ("j", 1, "x", "x", 0.002),
            ("j", 1, "y", "x", 0.002),
            ("j", 2, "x", "x", 0.002),
            ("j", 2, "y", "y", 0.002),
            ("j", 3, "x", None, 0.002),
            ("j", 3, "y", "y", 0.002),
            ("j", 4, None, "x", 0.002),
        ],
    )
    return pairs, votes, verdicts


def test_judge_human_agreement_with_and_without_ties(small_study):
    judge = judge_of(analyse(*small_study), "j")
    # With ties: pair 1 3/3, pair 2 1/2 (bob's tie = judge's tie), pair 3 1/2
    # (both_bad counts as tie; judge says y), pair 4 1/1.
    assert judge.agreement_with_ties.value == pytest.approx(6 / 8)
    assert judge.agreement_with_ties.n == 8
    # Without ties: pair 2 dropped (judge tie), bob's tie and ann's both_bad dropped:
    # pair 1 3/3, pair 3 1/1, pair 4 1/1.
    assert judge.agreement_without_ties.value == pytest.approx(1.0)
    assert judge.agreement_without_ties.n == 5


def test_human_human_agreement_counts_every_pair_of_reviewers(small_study):
    humans = analyse(*small_study).humans
    # Pair 1: 3 reviewers -> 3 vote pairs, all agree. Pair 2: 1 pair (y, tie) disagree.
    # Pair 3: 1 pair (both_bad, y) disagree. Pair 4: a single vote -> no pair.
    assert humans.agreement_with_ties.value == pytest.approx(3 / 5)
    assert humans.agreement_with_ties.n == 5
    # Without ties only pair 1 remains.
    assert humans.agreement_without_ties.value == pytest.approx(1.0)
    assert humans.agreement_without_ties.n == 3
    assert humans.n_votes == 8
    assert humans.n_both_bad == 1
    assert humans.n_reviewers == 3


def test_judge_kappa_matches_cohen_on_the_per_vote_pairs(small_study):
    judge = judge_of(analyse(*small_study), "j")
    # (human, judge) for every vote on a judged comparison.
    human = ["x", "x", "x", "y", "tie", "tie", "y", "x"]
    judged = ["x", "x", "x", "tie", "tie", "y", "y", "x"]
    assert judge.kappa_with_ties.value == pytest.approx(cohen_kappa_score(human, judged))
    assert judge.kappa_with_ties.n == 8
    # Without ties the decisive pairs all agree, on both classes: kappa 1.
    assert judge.kappa_without_ties.value == pytest.approx(1.0)


def test_human_kappa_is_cohen_over_both_orders_of_each_pair_of_votes():
    pairs = make_pairs(4)
    votes = make_votes(
        pairs,
        [
            (1, "a", "x"),
            (1, "b", "x"),
            (2, "a", "y"),
            (2, "b", "x"),
            (3, "a", "y"),
            (3, "b", "y"),
            (4, "a", "tie"),
            (4, "b", "y"),
        ],
    )
    humans = analyse(pairs, votes, no_verdicts()).humans
    first = ["x", "y", "y", "tie"]
    second = ["x", "x", "y", "y"]
    expected = cohen_kappa_score(first + second, second + first)
    assert humans.kappa_with_ties.value == pytest.approx(expected)
    decisive_first, decisive_second = first[:3], second[:3]
    expected_2 = cohen_kappa_score(
        decisive_first + decisive_second, decisive_second + decisive_first
    )
    assert humans.kappa_without_ties.value == pytest.approx(expected_2)
    assert humans.kappa_without_ties.n == 3


def test_kappa_is_none_when_every_label_is_the_same_class():
    pairs = make_pairs(3)
    votes = make_votes(pairs, [(i, r, "x") for i in (1, 2, 3) for r in ("a", "b")])
    verdicts = make_verdicts(pairs, [("j", i, None, "x") for i in (1, 2, 3)])
    analysis = analyse(pairs, votes, verdicts)
    assert analysis.humans.agreement_with_ties.value == 1.0
    assert analysis.humans.kappa_with_ties.value is None
    assert analysis.humans.kappa_with_ties.ci is None
    assert judge_of(analysis, "j").kappa_with_ties.value is None
    assert analysis.humans.fleiss_kappa.value is None


# ---- reviewer x reviewer kappa, Fleiss, Krippendorff ----


def test_reviewer_kappas_are_the_same_counted_by_pair_index_or_by_sorted_keys(monkeypatch):
    # Few reviewers: their pairs' tables are counted in one array indexed by the pair; many:
    # by the sorted keys of the pairs that occur. Both give the same pairs in the same order.
    rng = np.random.default_rng(8)
    n = 300
    pairs = make_pairs(n)
    rows = [
        (i + 1, f"r{r:02d}", str(rng.choice(["x", "y", "tie"])))
        for i in range(n)
        for r in rng.choice(12, size=3, replace=False)
    ]
    enc = stats.encode(pairs, make_votes(pairs, rows), no_verdicts())
    dense = stats._reviewer_kappa(enc, min_shared=1)
    monkeypatch.setattr(stats, "_DENSE_REVIEWER_PAIRS", 0)
    assert stats._reviewer_kappa(enc, min_shared=1) == dense
    assert len(dense) == 66  # every pair of the 12 reviewers shares some comparison


def test_reviewer_kappa_matrix_needs_ten_shared_comparisons_and_exposes_a_careless_reviewer():
    rng = np.random.default_rng(3)
    n = 20
    pairs = make_pairs(n)
    truth = rng.choice(["x", "y"], size=n)
    careless = rng.choice(["x", "y", "tie"], size=n)
    rows = []
    for i in range(n):
        rows += [(i + 1, "ann", truth[i]), (i + 1, "bob", truth[i]), (i + 1, "cy", careless[i])]
    # dee voted on only 3 pairs: she counts for human agreement but not in the matrix.
    rows += [(i + 1, "dee", truth[i]) for i in range(3)]
    votes = make_votes(pairs, rows)
    humans = analyse(pairs, votes, no_verdicts()).humans
    matrix = {(r.a, r.b): r for r in humans.reviewer_kappa}
    assert set(matrix) == {("ann", "bob"), ("ann", "cy"), ("bob", "cy")}
    assert matrix[("ann", "bob")].kappa == pytest.approx(1.0)
    assert matrix[("ann", "bob")].n == n
    assert matrix[("ann", "cy")].kappa == pytest.approx(cohen_kappa_score(truth, careless))
    assert matrix[("ann", "cy")].kappa < 0.5
    # dee's 3 votes add 3 agreeing vote pairs with ann and bob and 3 with cy.
    assert humans.agreement_with_ties.n == 3 * n + 3 * 3


def test_fleiss_kappa_matches_the_published_example():
    # Fleiss (1971) as reproduced on Wikipedia: 10 subjects, 14 raters, 5 categories, kappa 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    result = stats.fleiss_kappa(np.array(table))
    assert result.value == pytest.approx(0.2099, abs=1e-4)
    assert result.n == 10


def test_fleiss_kappa_with_unequal_raters_skips_single_votes():
    # Items: (2 x), (1 x, 1 y), (3 y), (1 tie) -> the last has one vote and is skipped.
    table = np.array([[2, 0, 0], [1, 1, 0], [0, 3, 0], [0, 0, 1]])
    # P_i: 1, 0, 1 -> mean 2/3; p = (3/7, 4/7, 0) -> Pe = 25/49.
    expected = (2 / 3 - 25 / 49) / (1 - 25 / 49)
    result = stats.fleiss_kappa(table)
    assert result.value == pytest.approx(expected)
    assert result.n == 3


def test_krippendorff_alpha_matches_the_published_nominal_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers, 12 units,
    # missing values, nominal alpha = 0.743.
    units = [
        {1: 3},
        {2: 3, 3: 1},
        {3: 4},
        {3: 4},
        {2: 4},
        {1: 1, 2: 1, 3: 1, 4: 1},
        {4: 4},
        {1: 3, 2: 1},
        {2: 4},
        {5: 3},
        {1: 2},
        {3: 1},
    ]
    table = np.zeros((len(units), 5))
    for i, unit in enumerate(units):
        for value, count in unit.items():
            table[i, value - 1] = count
    result = stats.krippendorff_alpha_nominal(table)
    assert result.value == pytest.approx(0.743, abs=5e-4)
    assert result.n == 11


def test_fleiss_and_krippendorff_use_comparisons_with_two_votes(small_study):
    humans = analyse(*small_study).humans
    # Comparisons with >= 2 votes: 1 (x x x), 2 (y tie), 3 (tie y); both_bad is a tie.
    table = np.array([[3, 0, 0], [0, 1, 1], [0, 1, 1]])
    assert humans.fleiss_kappa.value == pytest.approx(stats.fleiss_kappa(table).value)
    assert humans.fleiss_kappa.n == 3
    assert humans.krippendorff_alpha.value == pytest.approx(
        stats.krippendorff_alpha_nominal(table).value
    )


# ---- majority and judge vs majority ----


def test_majority_label_is_the_unique_most_frequent_outcome_else_tie():
    pairs = make_pairs(5)
    votes = make_votes(
        pairs,
        [
            (1, "a", "x"),
            (1, "b", "x"),
            (1, "c", "y"),  # x wins 2-1
            (2, "a", "x"),
            (2, "b", "y"),  # 1-1 -> tie
            (3, "a", "both_bad"),
            (3, "b", "tie"),
            (3, "c", "y"),  # both_bad and tie together beat y
            (4, "a", "y"),  # single vote
        ],
    )
    majority = stats.majority_labels(pairs, votes)
    assert majority.to_dict() == {1: "x", 2: "tie", 3: "tie", 4: "y"}


def test_judge_vs_majority_matches_scikit_learn():
    pairs = make_pairs(6)
    votes = make_votes(
        pairs,
        [
            (1, "a", "x"),
            (2, "a", "y"),
            (3, "a", "tie"),
            (4, "a", "x"),
            (5, "a", "y"),
            (6, "a", "x"),
        ],
    )
    verdicts = make_verdicts(
        pairs,
        [("j", 1, None, "x"), ("j", 2, None, "x"), ("j", 3, None, "tie"), ("j", 4, None, "y")]
        + [("j", 5, None, "y"), ("j", 6, None, "x")],
    )
    result = judge_of(analyse(pairs, votes, verdicts), "j").vs_majority
    truth = ["x", "y", "tie", "x", "y", "x"]
    predicted = ["x", "x", "tie", "y", "y", "x"]
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, average="macro", zero_division=0
    )
    assert result.accuracy == pytest.approx(accuracy_score(truth, predicted))
    assert result.macro_precision == pytest.approx(precision)
    assert result.macro_recall == pytest.approx(recall)
    assert result.macro_f1 == pytest.approx(f1)
    assert result.n == 6
    assert result.confusion == confusion_matrix(truth, predicted, labels=["x", "y", "tie"]).tolist()


# ---- position and verbosity ----


def test_position_bias_of_judge_and_humans(small_study):
    analysis = analyse(*small_study)
    judge = judge_of(analysis, "j")
    # Parsed non-tie single-order verdicts: 1x:x (first won), 1y:x (lost), 2x:x (won),
    # 2y:y (won), 3y:y (won) -> 4/5. Pair 4's order-combined verdict has no position.
    assert judge.p_first.value == pytest.approx(4 / 5)
    assert judge.p_first.n == 5
    # Both orders parsed: pairs 1 (agree) and 2 (disagree); pair 3 lost an order to parsing.
    assert judge.consistency.value == pytest.approx(1 / 2)
    assert judge.consistency.n == 2
    # Humans, non-tie votes with a known shown_left: ann 1 (x left, x won), bob 1 (y left, x won),
    # ann 2 (x left, y won), bob 3 (y left, y won), ann 4 (x left, x won). cy's shown_left is
    # missing; bob's tie and ann's both_bad do not count.
    assert analysis.humans.p_left.value == pytest.approx(3 / 5)
    assert analysis.humans.p_left.n == 5


def test_p_longer_counts_only_differences_above_30_characters(small_study):
    analysis = analyse(*small_study)
    # Length differences: 1 -> x longer by 100, 2 -> x by 40, 3 -> y by 31, 4 -> y by 30 (too
    # small). Human non-tie votes: pair 1 three x (longer won), 2 one y (shorter won),
    # 3 one y (longer won).
    assert analysis.humans.p_longer.value == pytest.approx(4 / 5)
    assert analysis.humans.p_longer.n == 5
    # Judge combined: 1 x (longer), 2 tie (excluded), 3 y (longer), 4 ineligible.
    judge = judge_of(analysis, "j")
    assert judge.p_longer.value == pytest.approx(1.0)
    assert judge.p_longer.n == 2


# ---- cost ----


def test_cost_per_1000_verdicts_includes_unparsed_calls(small_study):
    judge = judge_of(analyse(*small_study), "j")
    assert judge.cost_total == pytest.approx(7 * 0.002)
    assert judge.cost_per_1000 == pytest.approx(2.0)
    assert judge.mean_latency_ms == pytest.approx(100.0)


def test_unparsed_verdicts_are_excluded_not_counted_as_ties(small_study):
    pairs, votes, verdicts = small_study
    parsed_only = verdicts[verdicts["outcome"].notna()]
    with_unparsed = judge_of(analyse(pairs, votes, verdicts), "j")
    without = judge_of(analyse(pairs, votes, parsed_only), "j")
    assert with_unparsed.agreement_with_ties == without.agreement_with_ties
    assert with_unparsed.kappa_with_ties == without.kappa_with_ties
    assert with_unparsed.n_unparsed == 1 and without.n_unparsed == 0


# ---- win rates ----


def test_win_rates_are_oriented_by_the_comparison_given():
    pairs = make_pairs(3, systems=("finetuned", "base"))  # canonical: x=base, y=finetuned
    votes = make_votes(
        pairs,
        [(1, "a", "y"), (1, "b", "y"), (2, "a", "x"), (2, "b", "tie"), (3, "a", "both_bad")],
    )
    verdicts = make_verdicts(
        pairs,
        [("j", 1, "x", "y"), ("j", 1, "y", "y"), ("j", 2, "x", "x"), ("j", 2, "y", "y")]
        + [("j", 3, "x", None)],
    )
    rates = stats.win_rates(pairs, votes, verdicts, [("finetuned", "base")], n_boot=N_BOOT)
    by_source = {r.source: r for r in rates}
    humans = by_source["humans"]
    # finetuned: 2 wins, 1 loss, 1 tie, 1 both_bad -> (2 + 0.5 * 2) / 5
    assert (humans.wins, humans.losses, humans.ties, humans.both_bad) == (2, 1, 2, 1)
    assert humans.value == pytest.approx(3 / 5)
    assert humans.n == 5
    judge = by_source["j"]
    # Combined: pair 1 finetuned, pair 2 tie (inconsistent), pair 3 unparsed -> not counted.
    assert (judge.wins, judge.ties, judge.losses, judge.n) == (1, 1, 0, 2)
    assert judge.value == pytest.approx(0.75)

    reverse = {
        r.source: r for r in stats.win_rates(pairs, votes, verdicts, [("base", "finetuned")])
    }
    assert reverse["humans"].value == pytest.approx(1 - humans.value)
    assert reverse["j"].value == pytest.approx(1 - judge.value)
    lo, hi = humans.ci
    assert lo <= humans.value <= hi


def test_category_win_rates_split_by_category():
    pairs = make_pairs(4, categories={1: "safety", 2: "safety", 3: "target", 4: "target"})
    votes = make_votes(pairs, [(1, "a", "y"), (2, "a", "y"), (3, "a", "x"), (4, "a", "tie")])
    rates = stats.category_win_rates(pairs, votes, no_verdicts(), [("finetuned", "base")])
    assert set(rates) == {"safety", "target"}
    assert rates["safety"][0].value == pytest.approx(1.0)
    assert rates["target"][0].value == pytest.approx(0.25)


# ---- bootstrap ----


def test_bootstrap_is_deterministic_for_a_seed_and_covers_the_estimate():
    rng = np.random.default_rng(5)
    pairs = make_pairs(30)
    votes = make_votes(
        pairs, [(i, r, rng.choice(["x", "y", "tie"])) for i in range(1, 31) for r in "abc"]
    )
    verdicts = make_verdicts(
        pairs, [("j", i, f, rng.choice(["x", "y"])) for i in range(1, 31) for f in "xy"]
    )
    first = stats.study_report(pairs, votes, verdicts, seed=7, n_boot=300)
    again = stats.study_report(pairs, votes, verdicts, seed=7, n_boot=300)
    other = stats.study_report(pairs, votes, verdicts, seed=8, n_boot=300)
    assert first == again
    assert first["humans"]["agreement"] != other["humans"]["agreement"]
    for agreement in (first["humans"]["agreement"], first["judges"][0]["agreement"]):
        for key in ("with_ties", "without_ties"):
            lo, hi = agreement[key]["ci"]
            assert lo <= agreement[key]["value"] <= hi
            assert hi - lo > 0


def test_bootstrap_totals_resample_whole_rows():
    matrix = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    totals = stats.bootstrap_totals(matrix, np.random.default_rng(0), 500)
    # Each resample draws 3 rows: the second column always totals 3, the first 0..3.
    assert np.all(totals[:, 1] == 3)
    assert set(np.unique(totals[:, 0])) <= {0.0, 1.0, 2.0, 3.0}
    assert totals[:, 0].mean() == pytest.approx(2.0, abs=0.15)


@pytest.mark.parametrize("n_items", [300, 3000])
def test_the_resamples_do_not_depend_on_how_they_are_chunked(n_items, monkeypatch):
    """Resamples are drawn and counted in chunks sized by the number of items (and a large
    study's counted one resample at a time): however they are cut, the counts are the same,
    so no figure depends on the chunking."""

    def drawn() -> np.ndarray:
        stats._WEIGHTS.clear()  # drawn afresh, not read from the process's cache
        return np.concatenate(stats.ItemResamples(7, n_items, 250).chunks())

    default = drawn()
    assert default.shape == (250, n_items) and np.all(default.sum(axis=1) == n_items)
    for draws, by_row in ((n_items * 7, 10**9), (n_items * 7, 0), (n_items, 0)):
        monkeypatch.setattr(stats, "_CHUNK_DRAWS", draws)
        monkeypatch.setattr(stats, "_ROW_BY_ROW", by_row)
        assert np.array_equal(drawn(), default)
    stats._WEIGHTS.clear()


def test_counts_drawn_one_resample_at_a_time_widen_to_hold_the_largest_count():
    # Stored as bytes while every count fits one; a count beyond 255 (every draw of the third
    # resample on one row) widens the whole chunk, the rows counted before it included.
    class Lopsided:
        def __init__(self):
            self.calls = 0

        def integers(self, low, high, size):
            self.calls += 1
            return np.zeros(size, dtype=np.int64) if self.calls == 3 else np.arange(size) % high

    counts = stats._counted_row_by_row(Lopsided(), 300, 5)
    assert counts.dtype == np.uint16
    assert counts[2, 0] == 300 and counts[2, 1:].sum() == 0
    assert np.all(counts[[0, 1, 3, 4]] == 1)
    assert stats._counted_row_by_row(np.random.default_rng(0), 300, 5).dtype == np.uint8


def test_shared_item_resamples_give_each_block_its_own_totals():
    # Blocks over the whole study, over parts of it (categories), over scattered items, over
    # all items but a few (padded with zeros rather than split off) and over none: each block's
    # totals, summed cell by cell, equal its own product with the resamples.
    rng = np.random.default_rng(11)
    n_items = 1200
    resamples = stats.ItemResamples(seed=4, n_items=n_items, n_boot=60)
    every = np.arange(n_items)

    def rows(items, width, top=4):
        return (rng.integers(0, top, size=(len(items), width)) / 2, items)[::-1]

    blocks = [
        rows(every, 5),
        rows(every[:700], 3),
        rows(every[700:], 2),
        rows(np.sort(rng.choice(700, size=300, replace=False)), 4),
        rows(np.delete(every, [3, 500, 1100]), 2),
        rows(every[:0], 2),
    ]
    # A column equal to another block's over the same items: multiplied once, counted for both.
    blocks.append((every[:700], blocks[0][1][:700, :2].copy()))
    assert len(np.unique(stats._cells(_held(blocks, n_items)))) > 2
    shared = resamples.totals_of(blocks)
    for (items, by_item), totals in zip(blocks, shared, strict=True):
        assert totals.shape == (60, by_item.shape[1])
        assert np.array_equal(totals, resamples.totals(items, by_item))
    assert np.any(shared[0] != 0)


def _held(blocks, n_items):
    held = np.zeros((n_items, len(blocks)), dtype=bool)
    for b, (items, _) in enumerate(blocks):
        held[items, b] = True
    return held


def test_an_encoded_study_with_coded_baselines_gives_the_figures_of_its_frames():
    # The app codes the computed baselines straight from the pairs (`computed_codes`) instead of
    # building their rows (`computed_verdicts`): every figure must be the same either way.
    rng = np.random.default_rng(8)
    lengths = {p: (int(rng.integers(0, 400)), int(rng.integers(0, 400))) for p in range(1, 61)}
    categories = {p: ("code", "chat", "")[p % 3] for p in range(1, 61)}
    pairs = make_pairs(60, lengths=lengths, categories=categories)
    votes = make_votes(
        pairs,
        [
            (p, r, ("x", "y", "tie", "both_bad")[int(rng.integers(0, 4))], ("x", "y")[p % 2])
            for p in range(1, 61)
            for r in ("ana", "bo", "cy")[: 1 + p % 3]
        ],
    )
    stored = make_verdicts(
        pairs,
        [
            ("gpt", p, first, (None, "x", "y", "tie")[int(rng.integers(0, 4))])
            for p in range(1, 61)
            for first in ("x", "y")
        ],
    )
    frames = pd.concat([stored, baselines.computed_verdicts(pairs, seed=3)], ignore_index=True)
    order = ["gpt", *(baselines.label(name) for name in baselines.BASELINES)]
    options = {"seed": 2, "n_boot": 80}
    expected = stats.study_figures(pairs, votes, frames, judge_order=order, **options)
    enc = stats.encode(pairs, votes, stored, order, baselines.computed_codes(pairs, seed=3))
    found = stats.study_figures_of(enc, **options)
    assert found[0].to_json() == expected[0].to_json()
    assert found[1:] == expected[1:]
    assert stats.favouring_judges_of(enc, 0.9) == stats.favouring_judges(pairs, frames, 0.9)

    # What the gate reads, then each category's calibration, on their own: the same figures as
    # all of them at once (their resampled totals are exact sums, however they are grouped).
    overall, rates, category_rates = stats.gate_figures_of(enc, **options)
    by_category = stats.category_analyses_of(enc, **options)
    assert stats.Calibration(overall, by_category).to_json() == expected[0].to_json()
    assert overall == expected[0].overall and by_category == expected[0].by_category
    assert (rates, category_rates) == expected[1:]
    assert stats.analysis_of(enc, **options) == expected[0].overall


# ---- report document and degenerate inputs ----


def test_empty_study_gives_none_not_nan():
    pairs = make_pairs(0)
    report = stats.study_report(pairs, no_votes(), no_verdicts(), n_boot=50)
    json.dumps(report, allow_nan=False)
    assert report["n_comparisons"] == 0
    assert report["n_votes"] == 0
    empty = {"value": None, "n": 0, "n_items": 0, "ci": None}
    assert report["humans"]["agreement"]["with_ties"] == empty
    assert report["humans"]["fleiss_kappa"] == {"value": None, "n": 0, "n_items": 0}
    assert report["judges"] == []
    assert report["by_category"] == {}


def test_report_without_votes_still_describes_the_judges():
    pairs = make_pairs(2)
    verdicts = make_verdicts(pairs, [("j", 1, "x", "x"), ("j", 1, "y", "y"), ("j", 2, "x", None)])
    report = stats.study_report(pairs, no_votes(), verdicts, n_boot=50)
    json.dumps(report, allow_nan=False)
    (judge,) = report["judges"]
    assert judge["agreement"]["with_ties"] == {"value": None, "n": 0, "n_items": 0, "ci": None}
    # One comparison whose orders disagree: 0 of 1, but one comparison proves little.
    assert judge["consistency"]["value"] == 0.0 and judge["consistency"]["n"] == 1
    assert judge["consistency"]["ci"][0] == 0.0 and judge["consistency"]["ci"][1] > 0.7
    assert judge["n_unparsed"] == 1
    assert judge["vs_majority"]["accuracy"] is None


def test_by_category_equals_the_report_on_that_category_alone():
    categories = {i: ("safety" if i % 3 == 0 else "target") for i in range(1, 13)}
    pairs = make_pairs(12, categories=categories)
    rng = np.random.default_rng(1)
    votes = make_votes(
        pairs, [(i, r, rng.choice(["x", "y", "tie"])) for i in range(1, 13) for r in "ab"]
    )
    verdicts = make_verdicts(
        pairs, [("j", i, f, rng.choice(["x", "y"])) for i in range(1, 13) for f in "xy"]
    )
    report = stats.study_report(pairs, votes, verdicts, n_boot=50)
    assert set(report["by_category"]) == {"safety", "target"}
    safety_pairs = pairs[pairs["category"] == "safety"]
    alone = stats.study_report(
        safety_pairs,
        votes[votes["pair_id"].isin(safety_pairs["pair_id"])],
        verdicts[verdicts["pair_id"].isin(safety_pairs["pair_id"])],
        n_boot=50,
    )
    section = report["by_category"]["safety"]
    assert section["n_comparisons"] == 4
    assert "by_category" not in section
    assert section["humans"]["agreement"]["with_ties"]["value"] == pytest.approx(
        alone["humans"]["agreement"]["with_ties"]["value"]
    )
    assert section["judges"][0]["agreement"] == {
        key: {**value, "ci": section["judges"][0]["agreement"][key]["ci"]}
        for key, value in alone["judges"][0]["agreement"].items()
    }


def test_missing_category_is_reported_as_uncategorized():
    pairs = make_pairs(2)
    pairs["category"] = [None, ""]
    report = stats.study_report(pairs, no_votes(), no_verdicts(), n_boot=10)
    assert list(report["by_category"]) == ["uncategorized"]


def test_rows_for_unknown_pairs_are_ignored(small_study):
    pairs, votes, verdicts = small_study
    stray_votes = pd.concat([votes, votes.assign(pair_id=999)], ignore_index=True)
    stray_verdicts = pd.concat([verdicts, verdicts.assign(pair_id=999)], ignore_index=True)
    assert stats.study_report(pairs, stray_votes, stray_verdicts, n_boot=50) == (
        stats.study_report(pairs, votes, verdicts, n_boot=50)
    )


# ---- plain-language helpers ----


def _judge(
    label: str,
    strict: float | None,
    diff: tuple[float, tuple[float, float]] | None = None,
    verdict: str = "inconclusive",
    versus: dict[str, tuple[float, tuple[float, float]]] | None = None,
) -> stats.JudgeStats:
    """A judge with strict agreement `strict`, judge - ceiling `diff` = (value, one-sided
    bounds) and its verdict, and strict differences against other judges."""
    empty = stats.Estimate(None, 0)

    def paired(value_and_bounds):
        if value_and_bounds is None:
            return empty
        value, bounds = value_and_bounds
        return stats.Estimate(value, 100, bounds, units=100, bounds=bounds)

    return stats.JudgeStats(
        judge=label,
        n_verdicts=100,
        n_unparsed=0,
        n_combined=100,
        n_inconsistent=0,
        agreement_with_ties=empty,
        agreement_without_ties=empty,
        kappa_with_ties=empty,
        kappa_without_ties=empty,
        vs_majority=stats.MajorityAgreement(None, None, None, None, 0, []),
        consistency=None,
        p_first=None,
        p_longer=empty,
        cost_total=0.0,
        cost_per_1000=0.0,
        mean_latency_ms=None,
        agreement_strict=stats.Estimate(strict, 100),
        decisive_share=empty,
        vs_ceiling=stats.CeilingVerdict(paired(diff), 0.05, verdict),
        verbosity_gap=empty,
        strict_vs={name: paired(v) for name, v in (versus or {}).items()},
    )


def _humans(strict: float | None) -> stats.HumanStats:
    empty = stats.Estimate(None, 0)
    return stats.HumanStats(
        n_votes=10,
        n_both_bad=0,
        n_reviewers=2,
        agreement_with_ties=empty,
        agreement_without_ties=empty,
        kappa_with_ties=empty,
        kappa_without_ties=empty,
        fleiss_kappa=empty,
        krippendorff_alpha=empty,
        reviewer_kappa=[],
        p_left=empty,
        p_longer=empty,
        agreement_strict=stats.Estimate(strict, 50),
    )


def test_assessment_passes_a_judge_within_the_ceiling_and_ahead_of_longest():
    judge = _judge(
        "gpt",
        0.78,
        diff=(-0.02, (-0.04, 0.0)),
        verdict="within",
        versus={"baseline/longest": (0.17, (0.1, 0.24))},
    )
    verdict = stats.assess_judge(judge, _humans(0.80), "baseline/longest")
    assert verdict.ok
    assert verdict.text == (
        "within the human ceiling: strict agreement 0.78 (n=100) vs humans 0.80 (n=50); "
        "ahead of baseline/longest by +0.17"
    )


def test_assessment_says_exactly_why_a_judge_fails():
    judge = _judge(
        "gpt",
        0.60,
        diff=(-0.2, (-0.25, -0.15)),
        verdict="below",
        versus={"baseline/x": (-0.1, (-0.15, -0.05))},
    )
    below = stats.assess_judge(judge, _humans(0.80), "baseline/x")
    assert not below.ok
    assert "below the human ceiling by more than 0.05" in below.text
    assert "not ahead of baseline/x: -0.10 strict agreement" in below.text

    unsure = _judge("gpt", 0.78, diff=(-0.02, (-0.09, 0.05)), verdict="inconclusive")
    text = stats.assess_judge(unsure, _humans(0.80), None).text
    assert text.startswith("not yet shown within the human ceiling (margin 0.05, 100 comparisons)")

    no_ceiling = stats.assess_judge(_judge("gpt", 0.9), _humans(None), None)
    assert not no_ceiling.ok
    assert "no human ceiling" in no_ceiling.text


def test_votes_needed_scales_with_the_square_of_the_width():
    # CI width 0.4 at n = 25: halving the width takes 4x the data, 75 more.
    assert stats.votes_needed(stats.Estimate(0.5, 25, (0.3, 0.7)), 0.2) == 75
    # A narrow bootstrap CI does not beat the binomial width at p = 0.5:
    # (2 * 1.96 / 0.2)^2 * 0.25 - 4 = 92.04 -> 93 in all, 68 more.
    assert stats.votes_needed(stats.Estimate(0.5, 25, (0.45, 0.55)), 0.2) == 68
    assert stats.votes_needed(stats.Estimate(None, 0), 0.2) == 93
    # 3 of 3 agree: the bootstrap CI collapses to [1, 1] but 3 votes prove little.
    assert stats.votes_needed(stats.Estimate(1.0, 3, (1.0, 1.0)), 0.2) > 20
    assert stats.votes_needed(stats.Estimate(0.9, 2000, (0.88, 0.92)), 0.2) == 0


def test_small_n_warnings_name_the_statistic_and_how_many_more_are_needed(small_study):
    pairs, votes, verdicts = small_study
    verdicts = pd.concat([verdicts, baselines.computed_verdicts(pairs)], ignore_index=True)
    analysis = analyse(pairs, votes, verdicts)
    computed = [baselines.label(name) for name in baselines.BASELINES]
    warnings = stats.small_n_warnings(analysis, target_width=0.1, skip=computed)
    # Human agreement without ties: 3 of 3 agree, but n = 3 proves little (and the interval
    # says so: it does not collapse to [1, 1]).
    (human,) = [w for w in warnings if w.startswith("human-human agreement without ties: 1.00 [")]
    assert "(n=3) is too uncertain to read; about " in human
    assert "[1.00, 1.00]" not in human
    assert any(w.startswith("j agreement without ties") and "more" in w for w in warnings)
    assert not any(w.startswith("baseline/") for w in warnings)
    with_baselines = stats.small_n_warnings(analysis, target_width=0.1)
    assert any(w.startswith("baseline/longest agreement without ties") for w in with_baselines)
    assert stats.small_n_warnings(analysis, target_width=10.0) == []


def test_a_judge_with_an_unknown_price_has_no_cost_rather_than_zero():
    from tests.stats_frames import make_pairs, make_verdicts, no_votes

    pairs = make_pairs(2)
    verdicts = make_verdicts(
        pairs,
        [("paid", 1, "x", "x", 0.002), ("paid", 2, "x", "y", 0.004), ("local", 1, "x", "x", None)],
    )
    analysis = stats.analyse(pairs, no_votes(), verdicts, n_boot=10)
    assert analysis.judge("paid").cost_total == pytest.approx(0.006)
    assert analysis.judge("paid").cost_per_1000 == pytest.approx(3.0)
    assert (
        analysis.judge("local").cost_total is None and analysis.judge("local").cost_per_1000 is None
    )


# ---- coding the frames ----


def test_a_small_study_is_coded_as_pandas_codes_a_large_one(monkeypatch):
    """Below `stats._SMALL` values, `encode` codes columns with dicts instead of pandas: every
    array it gives must be the one pandas' path gives, edge cases included (missing and empty
    categories, unknown pairs, unparsed and order-combined verdicts, an unknown outcome, a
    missing price, computed verdicts, reviewers and judges out of name order)."""
    categories = {1: "b", 2: None, 3: "", 4: "a"}
    pairs = make_pairs(6, ("tuned", "base"), lengths={2: (40, 300)}, categories=categories)
    votes = make_votes(
        pairs,
        [(1, "zoe", "x", "y"), (1, "amy", "tie"), (2, "amy", "both_bad", "x"), (3, "bob", "y")]
        + [(4, "zoe", "y", "x"), (5, "bob", "maybe"), (6, "amy", "x", "y")],
    )
    votes.loc[len(votes)] = votes.iloc[0].to_dict() | {"pair_id": 99}
    verdicts = make_verdicts(
        pairs,
        [("zeta", 1, "x", "x"), ("zeta", 1, "y", None), ("alpha", 2, None, "tie")]
        + [("alpha", 3, "y", "y", None), ("zeta", 4, "x", "y"), ("alpha", 5, "x", "x")],
    )
    verdicts.loc[len(verdicts)] = verdicts.iloc[0].to_dict() | {"pair_id": 99}
    computed = baselines.computed_codes(pairs, ("longest", "random"))
    # Every category a string, one of them empty: the large path's shortcut for strings.
    named = pairs.assign(category=pairs["category"].fillna("b"))
    cases = [
        (pairs, votes, verdicts, ("zeta",), computed),
        (named, votes, verdicts, ("zeta",), computed),
        (pairs, votes, no_verdicts(), (), ()),
        (pairs.iloc[:0], no_votes(), no_verdicts(), (), ()),
    ]
    for case in cases:
        small = stats.encode(*case)
        monkeypatch.setattr(stats, "_SMALL", -1)
        large = stats.encode(*case)
        monkeypatch.undo()
        for name, value in vars(large).items():
            if name == "judge_codes":
                continue
            mine = getattr(small, name)
            if isinstance(value, np.ndarray):
                assert mine.dtype == value.dtype, name
                np.testing.assert_array_equal(mine, value, err_msg=name)
            else:
                assert mine == value, name
    coded = stats.encode(*cases[0])
    assert list(coded.categories) == ["b", "uncategorized", "uncategorized", "a"] + ["general"] * 2
    assert list(coded.reviewers) == ["amy", "bob", "zoe"]
    assert coded.judges[0] == "zeta"
