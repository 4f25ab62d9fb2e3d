"""The normal, Student t and chi-square distributions and Fisher's exact test without
scipy; the rest of ``scipy.stats`` only when asked for.

Importing ``scipy.special`` costs 0.17-0.2 s of CPU and ``scipy.stats`` 0.5-1 s, more
than a whole analysis takes. The tests of the default analysis need only these, so they
come from ``_special`` (plain Python, exact to double precision: see its docstring and
``tests/test_stats_special.py``). Modules use it as ``from smart_suggest.stats import
_dist as _st``: ``_st.norm.sf(z)`` takes a number (and returns a float) or an array (and
returns an array), and any other name (``_st.binomtest``, ``_st.beta``) is looked up in
``scipy.stats`` on first use.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _special as _sf

__all__ = ["chi2", "fisher_exact", "norm", "t"]


def _map(fn: Callable[..., float], *args: Any) -> Any:
    """``fn`` on numbers, or element-wise over arrays (broadcast) as scipy's ufuncs do."""
    if all(isinstance(a, (int, float)) for a in args):
        return fn(*(float(a) for a in args))
    import numpy as np

    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in args))
    if arrays[0].ndim == 0:
        return fn(*(float(a) for a in arrays))
    # A ufunc over Python floats: ~0.2 us an element (P(best) grids have 20,001 points).
    return np.frompyfunc(fn, len(arrays), 1)(*arrays).astype(np.float64)


def _t_cdf(x: float, df: float) -> float:
    return _sf.stdtr_pair(df, x)[0]


def _t_sf(x: float, df: float) -> float:
    return _sf.stdtr_pair(df, x)[1]


def _t_isf(q: float, df: float) -> float:
    # P(T > x) = q  <=>  x = -ppf(q) by symmetry; q itself is exact, 1 - q need not be.
    return -_sf.stdtrit(df, q)


def _chi2_cdf(x: float, df: float) -> float:
    return _sf.chdtr_pair(df, x)[0]


def _chi2_sf(x: float, df: float) -> float:
    return _sf.chdtr_pair(df, x)[1]


def _chi2_isf(q: float, df: float) -> float:
    return _sf.chdtri(df, q)


def _norm_sf(x: float) -> float:
    return _sf.ndtr(-x)


def _norm_isf(q: float) -> float:
    return -_sf.ndtri(q)


class _Normal:
    """Standard normal: ``cdf``, ``sf``, ``ppf``, ``isf`` (scalars or arrays)."""

    @staticmethod
    def cdf(x: Any) -> Any:
        return _map(_sf.ndtr, x)

    @staticmethod
    def sf(x: Any) -> Any:
        return _map(_norm_sf, x)

    @staticmethod
    def ppf(q: Any) -> Any:
        return _map(_sf.ndtri, q)

    @staticmethod
    def isf(q: Any) -> Any:
        return _map(_norm_isf, q)


class _StudentT:
    """Student t with ``df`` degrees of freedom (``df = inf`` is the normal)."""

    @staticmethod
    def cdf(x: Any, df: Any) -> Any:
        return _map(_t_cdf, x, df)

    @staticmethod
    def sf(x: Any, df: Any) -> Any:
        return _map(_t_sf, x, df)

    @staticmethod
    def ppf(q: Any, df: Any) -> Any:
        return _map(lambda q_, df_: _sf.stdtrit(df_, q_), q, df)

    @staticmethod
    def isf(q: Any, df: Any) -> Any:
        return _map(_t_isf, q, df)


class _ChiSquare:
    """Chi-square with ``df`` degrees of freedom."""

    @staticmethod
    def cdf(x: Any, df: Any) -> Any:
        return _map(_chi2_cdf, x, df)

    @staticmethod
    def sf(x: Any, df: Any) -> Any:
        return _map(_chi2_sf, x, df)

    @staticmethod
    def isf(q: Any, df: Any) -> Any:
        return _map(_chi2_isf, q, df)


norm = _Normal()
t = _StudentT()
chi2 = _ChiSquare()


@dataclass(frozen=True, slots=True)
class FisherResult:
    statistic: float  # the sample odds ratio, as scipy reports it
    pvalue: float


def fisher_exact(table: Any, alternative: str = "two-sided") -> Any:
    """Fisher's exact test of a 2x2 table; two-sided here, one-sided from scipy.stats."""
    if alternative != "two-sided":
        from scipy import stats

        return stats.fisher_exact(table, alternative=alternative)
    (a, b), (c, d) = ((int(v) for v in row) for row in table)
    if min(a, b, c, d) < 0:
        raise ValueError("All values in `table` must be nonnegative.")
    odds = a * d / (c * b) if c > 0 and b > 0 else math.inf
    if 0 in (a + b, c + d, a + c, b + d):
        return FisherResult(math.nan, 1.0)
    return FisherResult(odds, _sf.fisher_exact_two_sided(((a, b), (c, d))))


def __getattr__(name: str) -> Any:
    # Everything else (binomtest, beta, ...) comes from scipy.stats, imported on first use.
    if name.startswith("__"):
        raise AttributeError(name)
    from scipy import stats

    return getattr(stats, name)
