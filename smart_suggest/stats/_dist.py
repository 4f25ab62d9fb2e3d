"""The normal, Student t and chi-square distributions from ``scipy.special``; the rest of
``scipy.stats`` only when asked for.

Importing ``scipy.stats`` loads every distribution it has (0.5-1 s of CPU), more than a
whole analysis takes. The tests here need three distributions, and ``scipy.stats``
computes them with these same ``scipy.special`` routines (``norm``: ndtr/ndtri; ``t``:
stdtr/stdtrit; ``chi2``: chdtr/chdtrc/chdtri), so the numbers are identical. Modules use
it as ``from smart_suggest.stats import _dist as _st``: ``_st.norm.sf(z)`` works as before,
and any other name (``_st.fisher_exact``) is looked up in ``scipy.stats`` on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special as _sp

__all__ = ["chi2", "norm", "t"]


def _edges(out: Any, *cases: tuple[Any, float]) -> Any:
    """``out`` with the value of the first true condition of each case, as scipy.stats
    sets the ends of the support before calling these routines (scalar in, scalar out)."""
    for cond, value in cases:
        out = np.where(cond, value, out)
    return out[()]


class _Normal:
    """Standard normal: ``cdf``, ``sf``, ``ppf``, ``isf`` (scalars or arrays)."""

    @staticmethod
    def cdf(x: Any) -> Any:
        return _sp.ndtr(x)

    @staticmethod
    def sf(x: Any) -> Any:
        return _sp.ndtr(-x)

    @staticmethod
    def ppf(q: Any) -> Any:
        return _sp.ndtri(q)

    @staticmethod
    def isf(q: Any) -> Any:
        return -_sp.ndtri(q)


class _StudentT:
    """Student t with ``df`` degrees of freedom (``df = inf`` is the normal)."""

    @staticmethod
    def cdf(x: Any, df: Any) -> Any:
        return _sp.stdtr(df, x)

    @staticmethod
    def sf(x: Any, df: Any) -> Any:
        return _sp.stdtr(df, -x)

    @staticmethod
    def ppf(q: Any, df: Any) -> Any:
        q = np.asarray(q, dtype=np.float64)
        return _edges(_sp.stdtrit(df, q), (q == 0, -np.inf), (q == 1, np.inf))

    @staticmethod
    def isf(q: Any, df: Any) -> Any:
        q = np.asarray(q, dtype=np.float64)
        return _edges(-_sp.stdtrit(df, q), (q == 0, np.inf), (q == 1, -np.inf))


class _ChiSquare:
    """Chi-square with ``df`` degrees of freedom."""

    @staticmethod
    def cdf(x: Any, df: Any) -> Any:
        x = np.asarray(x, dtype=np.float64)
        return _edges(_sp.chdtr(df, x), (x < 0, 0.0), (x == np.inf, 1.0))

    @staticmethod
    def sf(x: Any, df: Any) -> Any:
        x = np.asarray(x, dtype=np.float64)
        return _edges(_sp.chdtrc(df, x), (x < 0, 1.0), (x == np.inf, 0.0))

    @staticmethod
    def isf(q: Any, df: Any) -> Any:
        return _sp.chdtri(df, q)


norm = _Normal()
t = _StudentT()
chi2 = _ChiSquare()


def __getattr__(name: str) -> Any:
    # Everything else (fisher_exact, ...) comes from scipy.stats, imported on first use.
    if name.startswith("__"):
        raise AttributeError(name)
    from scipy import stats

    return getattr(stats, name)
