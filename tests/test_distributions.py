"""The distribution functions the statistics use (`review_app.distributions`) give the values
scipy.stats gives, bit for bit: every interval and bound built on them would move otherwise."""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

from review_app import distributions

X = np.linspace(-9, 9, 2001)
Q = np.linspace(0, 1, 2001)[1:-1]  # quantile levels strictly between 0 and 1


def test_the_normal_functions_are_scipys():
    norm = scipy_stats.norm
    assert np.array_equal(distributions.norm_cdf(X), norm.cdf(X))
    assert np.array_equal(distributions.norm_sf(X), norm.sf(X))
    assert np.array_equal(distributions.norm_pdf(X), norm.pdf(X))
    assert np.array_equal(distributions.norm_ppf(Q), norm.ppf(Q))
    assert np.array_equal(distributions.norm_isf(Q), norm.isf(Q))
    # Scalars, as the statistics pass them.
    assert float(distributions.norm_isf(0.05)) == float(norm.isf(0.05))
    assert float(distributions.norm_sf(3.2)) == float(norm.sf(3.2))


def test_students_t_quantiles_are_scipys():
    for df in (1, 2, 4, 9, 29, 99, 999):
        assert np.array_equal(distributions.t_ppf(Q, df), scipy_stats.t.ppf(Q, df)), df
    assert float(distributions.t_ppf(0.975, 11)) == float(scipy_stats.t.ppf(0.975, 11))
