"""Variances that the sums cannot carry (means ~1e7-1e8 times their SD).

sum(x^2) - sum(x)^2 / n cancels to within the rounding of the sums: the answer must be
"cannot be recovered", never "zero variance, p = 1"; integer sums are taken exactly, and
the local store recomputes engagement from centred raw values."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as st

from smart_suggest import stats
from smart_suggest.analysis import analyze, analyze_summary
from smart_suggest.store import Store
from tests.test_analysis import _make_experiment


def _float_sums(values: np.ndarray) -> tuple[int, float, float]:
    # As an SQL engine accumulates them: floating-point sums of x and x^2.
    return len(values), math.fsum(values.tolist()), math.fsum((values * values).tolist())


def _big(
    seed: int, n: int = 500, shift: float = 0.0, base: float = 1e9, sd: float = 10.0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return base + shift + rng.normal(0.0, sd, n)


def test_float_sums_at_1e8_sds_are_refused_not_zero() -> None:
    n, s, ss = _float_sums(_big(1))
    with pytest.raises(stats.UnresolvedVariance, match="cannot be recovered"):
        stats.mean_var_from_sums(n, s, ss)
    assert not stats.sums_resolve_variance(n, s, ss)


def test_small_means_still_resolve_and_match_numpy() -> None:
    x = np.random.default_rng(2).normal(30.0, 10.0, 400)
    n, s, ss = _float_sums(x)
    assert stats.sums_resolve_variance(n, s, ss)
    mv = stats.mean_var_from_sums(n, s, ss)
    assert mv.var == pytest.approx(float(np.var(x, ddof=1)), rel=1e-10)


def test_integer_sums_are_exact_even_when_huge() -> None:
    # Whole values around 1e9: the sums are exact integers (Python ints), so the
    # variance comes out exactly, however large the mean.
    x = [10**9 + k for k in (3, -2, 7, 0, 1, -5, 4)]
    n, s, ss = len(x), sum(x), sum(v * v for v in x)
    mv = stats.mean_var_from_sums(n, s, ss)
    mean = Fraction(s, n)
    exact = sum((Fraction(v) - mean) ** 2 for v in x) / (n - 1)
    assert mv.var == float(exact)
    # A real zero variance from exact sums stays a zero variance.
    assert stats.mean_var_from_sums(3, 90, 2700).var == 0.0


def test_ratio_variance_exact_for_huge_integer_counts() -> None:
    rng = np.random.default_rng(3)
    ys = [2 * 10**9 + int(v) for v in rng.integers(-50, 50, 300)]
    xs = [10**9 + int(v) for v in rng.integers(-50, 50, 300)]
    sums = stats.RatioSums(
        len(xs),
        sum(xs),
        sum(ys),
        sum(x * x for x in xs),
        sum(y * y for y in ys),
        sum(x * y for x, y in zip(xs, ys, strict=True)),
    )
    arm = stats.ratio_arm(sums)
    r = Fraction(sum(xs), sum(ys))
    n = len(xs)
    resid = sum((Fraction(x) - r * y) ** 2 for x, y in zip(xs, ys, strict=True))
    ybar = Fraction(sum(ys), n)
    var = resid / (n - 1) / (n * ybar * ybar)
    assert arm.defined and arm.se > 0
    assert arm.se == pytest.approx(math.sqrt(float(var)), rel=1e-12)


def _summary_rows(eng_a: np.ndarray, eng_b: np.ndarray) -> list[dict[str, object]]:
    rows = []
    for v, x in (("A", eng_a), ("B", eng_b)):
        n, s, ss = _float_sums(x)
        rows.append(
            {
                "variant": v,
                "users_assigned": 1000,
                "users_exposed": 1000,
                "impressions": 5000,
                "clicks": 500,
                "users_converted": 100,
                "purchases": 120,
                "engagement_n": n,
                "engagement_sum": s,
                "engagement_sumsq": ss,
                "n_users": 1000,
                "sum_clicks": 500,
                "sum_impressions": 5000,
                "sum_clicks_sq": 700,
                "sum_impressions_sq": 30000,
                "sum_clicks_x_impressions": 3000,
            }
        )
    return rows


def test_summary_with_unrecoverable_engagement_variance_is_invalid() -> None:
    an = analyze_summary(_summary_rows(_big(4), _big(5, shift=3.0)), metric="engagement")
    eng = an.metric("engagement")
    assert eng.verdict == "invalid"
    assert "cannot be recovered from these sums" in eng.summary
    assert "zero variance" not in eng.note + eng.summary
    assert an.verdict == "invalid"


def test_store_recomputes_engagement_from_centred_values(store: Store) -> None:
    # Engagement is stored up to 1e9 s (the value checks): 1e8 +- 1 is 1e8 SDs out.
    a, b = _big(6, 300, base=1e8, sd=1.0), _big(7, 300, shift=0.2, base=1e8, sd=1.0)
    events = []
    assign = []
    for v, xs, base in (("A", a, 1), ("B", b, 1001)):
        for i, x in enumerate(xs):
            u = base + i
            assign.append((u, v))
            events.append((v, u, "impression", None, 1.0))
            events.append((v, u, "engagement", float(x), 2.0))
    exp_id = _make_experiment(store, "big-engagement", assign, events)
    an = analyze(store, exp_id, metric="engagement")
    eng = an.metric("engagement")
    ref = st.ttest_ind(b, a, equal_var=False)
    assert eng.test == "welch_t"
    assert eng.p_value == pytest.approx(float(ref.pvalue), rel=1e-6)
    assert "centred" in eng.note


def test_welch_from_sums_says_why_instead_of_zero_variance() -> None:
    na, sa, ssa = _float_sums(_big(8))
    nb, sb, ssb = _float_sums(_big(9, shift=5.0))
    r = stats.welch_t_test_from_sums(na, sa, ssa, nb, sb, ssb)
    assert r.test == "none" and r.p_value == 1.0
    assert "cannot be recovered" in r.note and "zero variance" not in r.note
