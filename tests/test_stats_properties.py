"""Properties of the calibration statistics that must hold for any study (hypothesis), and
bootstrap CIs that cover known true values at about the nominal rate (seeded simulation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from review_app import stats
from tests.stats_frames import make_pairs, make_verdicts, make_votes

OUTCOMES = ["x", "y", "tie", "both_bad"]
VERDICT_OUTCOMES = ["x", "y", "tie", None]
REVIEWERS = ["ann", "bob", "cy", "dee"]
SWAP = {"x": "y", "y": "x"}


@st.composite
def studies(draw):
    """A random small study: lengths, votes (some without shown_left), verdicts of two judges
    in one, both or no order, some unparsed, plus an imported order-combined judge."""
    n = draw(st.integers(min_value=1, max_value=12))
    lengths = {i: (draw(st.integers(0, 120)), draw(st.integers(0, 120))) for i in range(1, n + 1)}
    pairs = make_pairs(n, lengths=lengths)
    vote_rows, verdict_rows = [], []
    for pair_id in range(1, n + 1):
        for reviewer in draw(st.lists(st.sampled_from(REVIEWERS), unique=True, max_size=4)):
            outcome = draw(st.sampled_from(OUTCOMES))
            left = draw(st.sampled_from(["x", "y", None]))
            vote_rows.append((pair_id, reviewer, outcome, left))
        for judge in ("j1", "j2"):
            for first in draw(st.lists(st.sampled_from(["x", "y"]), unique=True, max_size=2)):
                verdict_rows.append(
                    (judge, pair_id, first, draw(st.sampled_from(VERDICT_OUTCOMES)))
                )
        if draw(st.booleans()):
            verdict_rows.append(
                ("imported", pair_id, None, draw(st.sampled_from(["x", "y", "tie"])))
            )
    return pairs, make_votes(pairs, vote_rows), make_verdicts(pairs, verdict_rows)


def rename_systems(pairs: pd.DataFrame, votes: pd.DataFrame, verdicts: pd.DataFrame):
    """The same study with base -> zeta and finetuned -> alpha: the canonical order flips, so every
    x/y outcome, order and length swaps sides."""
    names = {"base": "zeta", "finetuned": "alpha"}
    renamed = pairs.copy()
    renamed["system_x"] = pairs["system_y"].map(names)
    renamed["system_y"] = pairs["system_x"].map(names)
    for a, b in (("output_x", "output_y"), ("len_x", "len_y")):
        renamed[a], renamed[b] = pairs[b], pairs[a]
    new_votes = votes.copy()
    new_votes["outcome"] = votes["outcome"].map(lambda o: SWAP.get(o, o))
    new_votes["winner"] = votes["winner"].map(lambda w: names.get(w, w))
    new_votes["shown_left"] = votes["shown_left"].map(lambda s: names.get(s) if s else None)
    new_verdicts = verdicts.copy()
    new_verdicts["outcome"] = verdicts["outcome"].map(lambda o: SWAP.get(o, o))
    new_verdicts["first"] = verdicts["first"].map(lambda f: SWAP.get(f))
    new_verdicts["first_system"] = verdicts["first_system"].map(lambda s: names.get(s, ""))
    new_verdicts["winner"] = verdicts["winner"].map(lambda w: names.get(w, w))
    return renamed, new_votes, new_verdicts


def assert_same(a, b):
    """Two JSON documents equal up to floating-point noise."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, float):
        assert b == pytest.approx(a, abs=1e-9)
    else:
        assert a == b


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(studies())
def test_renaming_systems_changes_no_statistic(study):
    original = stats.study_report(*study, n_boot=30)
    renamed_study = rename_systems(*study)
    renamed = stats.study_report(*renamed_study, n_boot=30)
    assert_same(original, renamed)
    # Win rates follow the systems, whatever their names' order.
    before = stats.win_rates(*study, [("finetuned", "base")], n_boot=30)
    after = stats.win_rates(*renamed_study, [("alpha", "zeta")], n_boot=30)
    for a, b in zip(before, after, strict=True):
        assert (a.source, a.n, a.wins, a.ties, a.losses) == (
            b.source,
            b.n,
            b.wins,
            b.ties,
            b.losses,
        )
        assert a.value == b.value or a.value == pytest.approx(b.value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(studies())
def test_a_judge_agrees_with_itself_perfectly(study):
    pairs, _, verdicts = study
    combined = stats.combine_verdicts(pairs, verdicts)
    # The judge's own combined verdicts, cast as the votes of one reviewer per judge.
    mine = combined[(combined["judge"] == "j1") & combined["outcome"].notna()]
    votes = make_votes(
        pairs, [(p, "j1-as-human", o) for p, o in zip(mine.pair_id, mine.outcome, strict=True)]
    )
    judge = stats.analyse(pairs, votes, verdicts, n_boot=20).judge("j1")
    if judge is None:
        return
    for estimate in (judge.agreement_with_ties, judge.agreement_without_ties):
        assert estimate.value in (None, 1.0)
        # Perfect agreement reaches the top of its interval, which stays honest about n: it
        # never collapses to [1, 1] (Wilson), and narrows as comparisons are added.
        if estimate.value is not None:
            low, high = estimate.ci
            assert high == 1.0 and low < 1.0
    assert judge.agreement_with_ties.n == len(mine)
    for estimate in (judge.kappa_with_ties, judge.kappa_without_ties):
        assert estimate.value is None or estimate.value == pytest.approx(1.0)
    assert judge.vs_majority.accuracy in (None, 1.0)


@settings(max_examples=40, deadline=None)
@given(studies())
def test_reviewer_kappa_of_identical_reviewers_is_one(study):
    pairs, votes, _ = study
    twin = votes.assign(reviewer="twin")
    original = votes[votes["reviewer"] == "ann"]
    both = pd.concat([original, twin[votes["reviewer"] == "ann"]], ignore_index=True)
    humans = stats.analyse(pairs, both, make_verdicts(pairs, []), n_boot=0).humans
    for entry in humans.reviewer_kappa:
        assert entry.n == len(original)
        assert entry.kappa is None or entry.kappa == pytest.approx(1.0)
    assert humans.agreement_with_ties.value in (None, 1.0)


# ---- coverage of the bootstrap CIs ----


def simulate_study(rng, n_pairs, reviewer_accuracy, judge_accuracy, p_first):
    """Comparisons with a hidden true winner; three reviewers who each report it with
    `reviewer_accuracy`; an imported judge right with `judge_accuracy`; a positional judge that
    picks whichever output it is shown first with probability `p_first`, in both orders."""
    pairs = make_pairs(n_pairs)
    ids = pairs["pair_id"].to_numpy()
    truth = rng.integers(0, 2, n_pairs)
    labels = np.array(["x", "y"])
    vote_rows = []
    for reviewer in ("ann", "bob", "cy"):
        right = rng.random(n_pairs) < reviewer_accuracy
        said = np.where(right, truth, 1 - truth)
        vote_rows += list(zip(ids, [reviewer] * n_pairs, labels[said], strict=True))
    right = rng.random(n_pairs) < judge_accuracy
    verdict_rows = [
        ("noisy", p, None, o)
        for p, o in zip(ids, labels[np.where(right, truth, 1 - truth)], strict=True)
    ]
    for first, other in (("x", "y"), ("y", "x")):
        picks_first = rng.random(n_pairs) < p_first
        verdict_rows += [
            ("positional", p, first, first if f else other)
            for p, f in zip(ids, picks_first, strict=True)
        ]
    return pairs, make_votes(pairs, vote_rows), make_verdicts(pairs, verdict_rows)


def test_bootstrap_cis_cover_true_values_at_about_the_nominal_rate():
    rng = np.random.default_rng(2026)
    q, r, p = 0.8, 0.7, 0.65
    truths = {
        "human agreement": q**2 + (1 - q) ** 2,
        "judge agreement": q * r + (1 - q) * (1 - r),
        "p_first": p,
    }
    covered = dict.fromkeys(truths, 0)
    n_studies = 200
    for i in range(n_studies):
        analysis = stats.analyse(*simulate_study(rng, 60, q, r, p), seed=i, n_boot=200)
        estimates = {
            "human agreement": analysis.humans.agreement_without_ties,
            "judge agreement": analysis.judge("noisy").agreement_without_ties,
            "p_first": analysis.judge("positional").p_first,
        }
        for name, estimate in estimates.items():
            lo, hi = estimate.ci
            covered[name] += lo <= truths[name] <= hi
    rates = {name: count / n_studies for name, count in covered.items()}
    # 95% nominal (about 0.945 over 800 studies); with 200 studies the binomial sd is 0.015, so
    # accept 0.88-0.99 (about 4 sd below, 3 above).
    for name, rate in rates.items():
        assert 0.88 <= rate <= 0.99, f"{name}: coverage {rate:.3f} ({rates})"
