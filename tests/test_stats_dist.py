"""The distributions used at start-up (``stats._special``, no scipy) give scipy.stats'
numbers to 1e-12 relative on the same grid; their accuracy against mpmath, also where
scipy is off, is pinned in test_stats_special.py."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from smart_suggest.stats import _dist

XS = [-40.0, -8.5, -1.96, -0.5, 0.0, 1e-9, 0.3, 1.0, 2.5, 7.0, 38.0, np.inf, -np.inf, np.nan]
QS = [0.0, 1e-300, 1e-12, 0.001, 0.025, 0.05, 0.3, 0.5, 0.8, 0.975, 1 - 1e-12, 1.0, np.nan]
DFS = [0.5, 1.0, 2.0, 3.7, 10.0, 99.5, 1e4, 1e9, np.inf]


def same(a: object, b: object) -> bool:
    """Equal to 1e-12 relative (nan equals nan, infinities exactly; below 1e-300 absolute)."""
    fa, fb = float(a), float(b)  # type: ignore[arg-type]
    if np.isnan(fa) or np.isnan(fb) or np.isinf(fa) or np.isinf(fb):
        return (np.isnan(fa) and np.isnan(fb)) or fa == fb
    return abs(fa - fb) <= 1e-12 * abs(fa) or abs(fa - fb) < 1e-300


def mp_tail(name: str, method: str, x: float, df: float) -> float:
    """The reference where scipy is off (t at df = 1 and x = 1e-9: scipy says 0.5)."""
    import mpmath

    with mpmath.workdps(40):
        x_, df_ = mpmath.mpf(x), mpmath.mpf(df)
        if name == "t":
            tail = mpmath.betainc(df_ / 2, mpmath.mpf(1) / 2, 0, df_ / (df_ + x_ * x_), True) / 2
            lower, upper = (tail, 1 - tail) if x < 0 else (1 - tail, tail)
        else:
            lower = mpmath.gammainc(df_ / 2, 0, x_ / 2, regularized=True)
            upper = mpmath.gammainc(df_ / 2, x_ / 2, mpmath.inf, regularized=True)
        return float(lower if method == "cdf" else upper)


@pytest.mark.parametrize("method", ["cdf", "sf"])
def test_tails_identical(method: str) -> None:
    for x in XS:
        assert same(getattr(stats.norm, method)(x), getattr(_dist.norm, method)(x)), x
        for df in DFS:
            for name in ("t", "chi2"):
                ref = getattr(getattr(stats, name), method)(x, df)
                got = getattr(getattr(_dist, name), method)(x, df)
                if not same(ref, got) and np.isfinite(x) and np.isfinite(df):
                    ref = mp_tail(name, method, x, df)
                assert same(ref, got), (name, method, x, df, ref, got)


@pytest.mark.parametrize("method", ["ppf", "isf"])
def test_quantiles_identical(method: str) -> None:
    for q, df in itertools.product(QS, DFS):
        assert same(getattr(stats.norm, method)(q), getattr(_dist.norm, method)(q)), q
        ref, got = getattr(stats.t, method)(q, df), getattr(_dist.t, method)(q, df)
        if not same(ref, got) and np.isinf(got):
            # scipy stops near 1e154; the true quantile is beyond the largest double when
            # even there the tail is still above q.
            edge = 1.7976931348623157e308
            tail = min(q, 1 - q)
            assert mp_tail("t", "sf", edge, df) > tail, ("t", method, q, df, ref, got)
            continue
        if not same(ref, got) and np.isfinite(got):
            # scipy is off in the far tails (+inf for the 1e-300 quantile at df 3.7):
            # the tail of mpmath at our quantile is q.
            back = mp_tail("t", "cdf" if method == "ppf" else "sf", got, df)
            assert back == pytest.approx(q, rel=1e-11), ("t", method, q, df, ref, got)
            continue
        assert same(ref, got), ("t", method, q, df, ref, got)
    for q, df in itertools.product(QS, DFS):
        ref, got = stats.chi2.isf(q, df), _dist.chi2.isf(q, df)
        if not same(ref, got) and np.isfinite(got) and got > 0:
            # scipy is off at df 1e9 near q = 1 (by 0.1 SD): the tail of mpmath at our
            # quantile is q (the smaller side, in 50 digits).
            import mpmath

            with mpmath.workdps(50):
                upper = mpmath.gammainc(mpmath.mpf(df) / 2, mpmath.mpf(got) / 2, mpmath.inf, True)
                back, want = (float(1 - upper), 1 - q) if q > 0.5 else (float(upper), q)
            assert back == pytest.approx(want, rel=1e-9), (q, df, ref, got)
            continue
        assert same(ref, got), (q, df, ref, got)


def test_other_names_come_from_scipy_stats() -> None:
    table = [[3, 7], [8, 2]]
    assert _dist.fisher_exact(table).pvalue == stats.fisher_exact(table).pvalue
    with pytest.raises(AttributeError):
        _dist.no_such_distribution  # noqa: B018


@pytest.mark.parametrize("baseline", [0.001, 0.05, 0.12, 0.5, 0.93])
@pytest.mark.parametrize("n", [50, 1_000, 4_438, 1_000_000])
def test_mde_bisection_matches_brentq(baseline: float, n: int) -> None:
    """The MDE is solved by bisection (scipy.optimize costs 0.15-0.2 s to import): the
    same root as scipy's brentq at the same tolerance."""
    from scipy.optimize import brentq

    from smart_suggest.stats import power

    got = power.mde_proportions(baseline, n)
    za, zb = power.z_crit(0.05), power._z_power(0.8)
    hi = (1.0 - baseline) * (1.0 - 1e-12)
    if got.mde_absolute is None:
        assert power._n_proportions(baseline, baseline + hi, za, zb) > n
        return
    ref = brentq(
        lambda x: power._n_proportions(baseline, baseline + x, za, zb) - n,
        hi * 1e-12,
        hi,
        xtol=1e-15,
        maxiter=500,
    )
    assert got.mde_absolute == pytest.approx(ref, rel=1e-12, abs=1e-15)
