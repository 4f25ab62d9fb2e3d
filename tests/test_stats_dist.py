"""The scipy.special distributions used at start-up give exactly scipy.stats' numbers."""

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
    """Bit-identical values (nan equals nan) of the same type."""
    fa, fb = float(a), float(b)  # type: ignore[arg-type]
    return type(a) is type(b) and ((np.isnan(fa) and np.isnan(fb)) or fa == fb)


@pytest.mark.parametrize("method", ["cdf", "sf"])
def test_tails_identical(method: str) -> None:
    for x in XS:
        assert same(getattr(stats.norm, method)(x), getattr(_dist.norm, method)(x)), x
        for df in DFS:
            for name in ("t", "chi2"):
                ref = getattr(getattr(stats, name), method)(x, df)
                got = getattr(getattr(_dist, name), method)(x, df)
                assert same(ref, got), (name, method, x, df, ref, got)


@pytest.mark.parametrize("method", ["ppf", "isf"])
def test_quantiles_identical(method: str) -> None:
    for q, df in itertools.product(QS, DFS):
        assert same(getattr(stats.norm, method)(q), getattr(_dist.norm, method)(q)), q
        ref, got = getattr(stats.t, method)(q, df), getattr(_dist.t, method)(q, df)
        assert same(ref, got), ("t", method, q, df, ref, got)
    for q, df in itertools.product(QS, DFS):
        assert same(stats.chi2.isf(q, df), _dist.chi2.isf(q, df)), (q, df)


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
