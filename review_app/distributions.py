"""The normal and Student's t distribution functions the statistics use, from scipy.special.

They are the very functions `scipy.stats.norm` and `scipy.stats.t` call (same values, bit for
bit, on every argument the statistics pass), without importing scipy.stats: that import takes
about a second in every process that loads the statistics (each command of the CLI, the server,
each worker of a test run), and its wrappers cost tens of microseconds a call where these cost
one. Pure functions of floats or numpy arrays."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

_SQRT_2PI = math.sqrt(2 * math.pi)


def norm_cdf(x):
    """P(Z <= x) for a standard normal Z."""
    return special.ndtr(x)


def norm_sf(x):
    """P(Z > x) for a standard normal Z, accurate far in the upper tail."""
    return special.ndtr(np.negative(x))


def norm_ppf(q):
    """The standard normal quantile: the x with P(Z <= x) = q."""
    return special.ndtri(q)


def norm_isf(q):
    """The x with P(Z > x) = q."""
    return np.negative(special.ndtri(q))


def norm_pdf(x):
    """The standard normal density."""
    x = np.asarray(x, dtype=float)
    return np.exp(-(x**2) / 2.0) / _SQRT_2PI


def t_ppf(q, df):
    """Student's t quantile on `df` degrees of freedom, for 0 < q < 1."""
    return special.stdtrit(df, q)
