"""Prediction-powered means against the authors' implementation (ppi_py), their validity with a
biased judge, and the group-sequential boundaries' error rates."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from review_app import ppi, sequential, stats

# ppi_py's logistic fit starts from scikit-learn with an option newer releases deprecate.
pytestmark = pytest.mark.filterwarnings("ignore:'penalty' was deprecated:FutureWarning")


@pytest.fixture(scope="module")
def ppi_py():
    """The authors' implementation, imported only where a test compares with it: with numba and
    scikit-learn it costs about 0.45 s of CPU, which every test process would pay when it
    collects this module."""
    # ppi_py compiles its logistic loops with numba on their first call: 10 to 40 s in each test
    # process, for sizes that run in a fraction of a second interpreted (the same arithmetic).
    # Set before ppi_py imports numba, which reads it then.
    os.environ.setdefault("NUMBA_DISABLE_JIT", "1")
    return pytest.importorskip("ppi_py", reason="the ppi-python reference is a test dependency")


def _sample(rng: np.random.Generator, n: int, big_n: int, agreement: float):
    """Human scores with ties (0, 0.5, 1) and a judge agreeing with them at `agreement`."""
    truth = rng.random(n + big_n) < 0.6
    y = np.where(truth, 1.0, 0.0)
    y[rng.random(n + big_n) < 0.1] = 0.5
    f = np.where(rng.random(n + big_n) < agreement, y, 1 - y)
    return y[:n], f[:n], f[n:]


@pytest.mark.parametrize(
    "seed,n,big_n,agreement", [(1, 80, 400, 0.8), (2, 300, 900, 0.6), (3, 40, 40, 0.9)]
)
def test_mean_matches_the_reference_implementation(ppi_py, seed, n, big_n, agreement):
    y, f, unl = _sample(np.random.default_rng(seed), n, big_n, agreement)
    ours = ppi.mean(y, f, unl)
    low, high = ours.interval(stats.Z_95)
    ref_low, ref_high = ppi_py.ppi_mean_ci(y, f, unl, alpha=0.05)
    ref_point = ppi_py.ppi_mean_pointestimate(y, f, unl)
    assert ours.value == pytest.approx(float(np.squeeze(ref_point)), abs=5e-4)
    assert low == pytest.approx(float(np.squeeze(ref_low)), abs=5e-4)
    assert high == pytest.approx(float(np.squeeze(ref_high)), abs=5e-4)
    # (with lam=None ppi_py drops `alternative` when it recurses: pass the tuned weight)
    one_sided = ppi_py.ppi_mean_ci(y, f, unl, alpha=0.05, alternative="larger", lam=ours.lam)
    assert ours.interval(stats.Z_ONE_SIDED_95)[0] == pytest.approx(
        float(np.squeeze(one_sided[0])), abs=5e-4
    )


def test_a_fixed_weight_matches_the_reference_too(ppi_py):
    y, f, unl = _sample(np.random.default_rng(4), 60, 200, 0.7)
    for lam in (0.0, 0.5, 1.0):
        low, high = ppi.mean(y, f, unl, lam=lam).interval(stats.Z_95)
        ref = ppi_py.ppi_mean_ci(y, f, unl, alpha=0.05, lam=lam)
        assert (low, high) == pytest.approx(tuple(float(np.squeeze(r)) for r in ref), abs=5e-4)


def test_a_useless_judge_costs_nothing_and_a_good_one_narrows_the_interval():
    rng = np.random.default_rng(5)
    y, _, _ = _sample(rng, 200, 0, 0.5)
    noise = rng.random(200)
    useless = ppi.mean(y, noise, rng.random(2000))
    assert useless.lam < 0.35
    assert useless.effective_n >= 0.97 * 200
    y, f, unl = _sample(rng, 200, 2000, 0.9)
    good = ppi.mean(y, f, unl)
    assert good.lam > 0.5
    assert good.effective_n > 1.5 * 200


def _judge_frames(rng, n_items, share, bias):
    """A study-shaped sample: pairs with a human flag, one vote on each human pair, and a judge
    that always prefers the longer answer (`bias`), else agrees with the vote 80% of the time."""
    pairs = pd.DataFrame(
        {
            "pair_id": np.arange(n_items),
            "item_key": [f"i{i}" for i in range(n_items)],
            "category": "",
            "system_x": "base",
            "system_y": "tuned",
            "human": rng.random(n_items) < share,
        }
    )
    tuned_wins = rng.random(n_items) < 0.6
    tuned_longer = rng.random(n_items) < 0.7
    votes = pd.DataFrame(
        {
            "pair_id": pairs["pair_id"][pairs["human"]],
            "outcome": np.where(tuned_wins, "y", "x")[pairs["human"]],
        }
    )
    if bias:
        judged = np.where(tuned_longer, "y", "x")
    else:
        agree = rng.random(n_items) < 0.8
        judged = np.where(agree == tuned_wins, "y", "x")
    combined = pd.DataFrame(
        {"judge": "j", "pair_id": pairs["pair_id"], "outcome": judged, "inconsistent": False}
    )
    return pairs, votes, combined


@pytest.mark.parametrize("bias", [False, True])
def test_the_win_rate_interval_covers_the_truth_however_biased_the_judge(bias):
    """Coverage of the one-sided lower bound (truth 0.6) over 400 simulated studies."""
    rng = np.random.default_rng(6 + bias)
    misses = 0
    runs = 400
    for _ in range(runs):
        pairs, votes, combined = _judge_frames(rng, 400, 0.3, bias)
        (w,) = ppi.win_rates(pairs, votes, combined, "j", [("tuned", "base")])
        misses += w.bounds[0] > 0.6
    # 5% expected; binomial sd over 400 runs is 1.1 points.
    assert misses / runs <= 0.08


def test_win_rates_orient_and_count_like_the_gate_expects():
    rng = np.random.default_rng(8)
    pairs, votes, combined = _judge_frames(rng, 200, 0.4, False)
    (forward,) = ppi.win_rates(pairs, votes, combined, "j", [("tuned", "base")])
    (backward,) = ppi.win_rates(pairs, votes, combined, "j", [("base", "tuned")])
    assert forward.value == pytest.approx(1 - backward.value)
    assert forward.reversed().value == pytest.approx(backward.value)
    assert forward.n_human == int(pairs["human"].sum())
    assert forward.n_human + forward.n_judge == 200
    assert forward.method()["method"] == "ppi"


def test_one_look_is_the_fixed_design():
    (look,) = sequential.boundaries((1.0,))
    assert look.boundary == pytest.approx(stats.Z_ONE_SIDED_95)
    assert look.alpha_spent == pytest.approx(0.05)


def test_looks_spend_the_level_once_in_all():
    """Under the null the chance of ever crossing, with 20 looks, is the level (simulated and
    integrated)."""
    looks = sequential.boundaries(tuple((k + 1) / 20 for k in range(20)))
    ups, downs = sequential.stopping(looks, 0.0)
    assert sum(ups) == pytest.approx(0.05, abs=1e-3)
    rng = np.random.default_rng(9)
    fractions = np.array([look.fraction for look in looks])
    bounds = np.array([look.boundary for look in looks])
    steps = rng.normal(size=(40000, 20)) * np.sqrt(np.diff(np.r_[0, fractions]))
    z = steps.cumsum(axis=1) / np.sqrt(fractions)
    assert (z >= bounds).any(axis=1).mean() == pytest.approx(0.05, abs=0.006)


def test_a_repeated_look_is_the_same_look_and_later_looks_cost_at_the_end():
    first = sequential.look_at([], 0.5)
    assert sequential.look_at([0.5], 0.5) == first
    final = sequential.look_at([0.25, 0.5, 0.75], 1.0)
    assert stats.Z_ONE_SIDED_95 < final.boundary < 1.8


def test_stopping_early_saves_labels_at_the_truth():
    drift = norm.isf(0.05) + norm.ppf(0.8)
    design = sequential.expected(drift, n_looks=10)
    assert design.power == pytest.approx(0.8, abs=0.01)
    assert design.expected_ratio < 0.85
    assert design.max_ratio < 1.1


@pytest.mark.parametrize("seed,n,big_n", [(1, 150, 600), (2, 80, 300)])
def test_logistic_regression_matches_the_reference_implementation(ppi_py, seed, n, big_n):
    """The length-controlled win rate's fit: PPI++ logistic regression, coefficients and 95%
    intervals as `ppi_py.ppi_logistic_ci` gives them."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n + big_n), rng.uniform(-1, 1, n + big_n)])
    y = (rng.random(n + big_n) < 1 / (1 + np.exp(-(0.4 + 1.2 * x[:, 1])))).astype(float)
    f = np.where(rng.random(n + big_n) < 0.8, y, 1 - y)
    ours = ppi.logistic(x[:n], y[:n], f[:n], x[n:], f[n:])
    low, high = ppi_py.ppi_logistic_ci(x[:n], y[:n], f[:n], x[n:], f[n:], alpha=0.05)
    assert ours.coef - stats.Z_95 * ours.se == pytest.approx(low, abs=5e-4)
    assert ours.coef + stats.Z_95 * ours.se == pytest.approx(high, abs=5e-4)
    # (ppi_py's interval tunes the weight once more than its point estimate: compare the
    # point at the interval's weight)
    point = ppi_py.ppi_logistic_pointestimate(x[:n], y[:n], f[:n], x[n:], f[n:], lam=ours.lam)
    assert ours.coef == pytest.approx(point, abs=5e-4)


def test_a_judge_that_contradicts_the_humans_gives_the_humans_only_fit_not_an_error():
    """At weight 1 a judge that always contradicts the humans makes the rectified loss fall
    without bound; the weight is then tuned at the humans-only fit, which drops the judge."""
    rng = np.random.default_rng(12)
    n, big_n = 40, 200
    x = np.column_stack([np.ones(n + big_n), rng.uniform(-1, 1, n + big_n)])
    y = (np.arange(n) % 8 != 0).astype(float)  # humans: mostly the first system
    f = 1 - y  # the judge says the opposite of every vote
    fu = np.ones(big_n)
    assert ppi._logistic_point(x[:n], y, f, x[n:], fu, 1.0) is None
    fit = ppi.logistic(x[:n], y, f, x[n:], fu)
    assert fit is not None and fit.lam == 0.0
    plain = ppi.logistic(x[:n], y, f, x[n:], fu, lam=0.0)
    assert fit.coef == pytest.approx(plain.coef)
