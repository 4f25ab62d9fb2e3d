"""The plain-Python special functions (``stats._special``) against mpmath and scipy.

They replace scipy.special in the default analysis (its import cost more than the
analysis), so their accuracy is pinned here over wide grids and at the extremes: degrees
of freedom from 1 to 10^7 and infinity, tails down to 1e-300, probabilities next to 0
and 1, counts up to 10^9. The tolerance is 1e-12 relative wherever the value is above
1e-300 (mpmath at 40 digits is the reference; scipy is checked too, where it is exact).
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from scipy import special as sp
from scipy import stats as sps

from smart_suggest.stats import _dist
from smart_suggest.stats.bayes import _beta_tails

REL = 1e-12
SMALLEST = 1e-300

DFS = [1.0, 1.5, 2.0, 3.0, 4.7, 10.0, 30.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7]


def close(got: float, want: float, rel: float = REL) -> bool:
    """Relative agreement where the reference is above 1e-300; absolute 1e-300 below."""
    if abs(want) < SMALLEST:
        return abs(got) < 2 * SMALLEST
    return abs(got - want) <= rel * abs(want)


def mp_t_tails(df: float, t: float) -> tuple[float, float]:
    """(P(T <= t), P(T > t)) in 40-digit arithmetic."""
    with mpmath.workdps(40):
        df_, t_ = mpmath.mpf(df), mpmath.mpf(t)
        x = df_ / (df_ + t_ * t_)
        tail = mpmath.betainc(df_ / 2, mpmath.mpf(1) / 2, 0, x, regularized=True) / 2
        body = 1 - tail
        return (float(body), float(tail)) if t > 0 else (float(tail), float(body))


# -- normal ---------------------------------------------------------------------------------
@pytest.mark.parametrize("x", [-38.4, -37.0, -30.0, -20.0, -8.3, -3.0, -1.0, -1e-9, 0.0, 0.7, 5.0])
def test_normal_cdf_and_sf_against_mpmath(x: float) -> None:
    with mpmath.workdps(40):
        want_cdf = float(mpmath.ncdf(x))
        want_sf = float(mpmath.ncdf(-x))
    assert close(_dist.norm.cdf(x), want_cdf)
    assert close(_dist.norm.sf(-x), want_cdf)
    assert close(_dist.norm.sf(x), want_sf, rel=REL) or want_sf > 0.99  # 1 - tiny: exact


@pytest.mark.parametrize(
    "p", [1e-300, 1e-200, 1e-100, 1e-20, 1e-8, 1e-3, 0.025, 0.2, 0.4999, 0.5, 0.6, 0.975]
)
def test_normal_quantile_against_mpmath(p: float) -> None:
    with mpmath.workdps(40):
        want = float(mpmath.sqrt(2) * mpmath.erfinv(2 * mpmath.mpf(p) - 1))
    got = _dist.norm.ppf(p)
    assert got == want or abs(got - want) <= 1e-15 * abs(want) + 1e-300
    assert _dist.norm.isf(p) == -got
    assert got == pytest.approx(float(sp.ndtri(p)), rel=1e-15, abs=1e-300)


def test_normal_quantile_edges() -> None:
    assert _dist.norm.ppf(0.0) == -math.inf and _dist.norm.ppf(1.0) == math.inf
    assert math.isnan(_dist.norm.ppf(1.5)) and math.isnan(_dist.norm.ppf(math.nan))


# -- Student t ------------------------------------------------------------------------------
T_VALUES = [-1e100, -1e6, -40.0, -10.0, -3.0, -1.0, -0.01, 1e-7, 0.5, 1.96, 5.0, 30.0, 1e4]


@pytest.mark.parametrize("df", DFS)
def test_t_cdf_and_sf_against_mpmath(df: float) -> None:
    worst = 0.0
    for t in T_VALUES:
        want_cdf, want_sf = mp_t_tails(df, t)
        got_cdf, got_sf = _dist.t.cdf(t, df), _dist.t.sf(t, df)
        assert close(got_cdf, want_cdf), (df, t, got_cdf, want_cdf)
        assert close(got_sf, want_sf), (df, t, got_sf, want_sf)
        if want_sf > SMALLEST:
            worst = max(worst, abs(got_sf - want_sf) / want_sf)
    assert worst < REL


def test_t_at_infinite_df_is_the_normal_and_edges() -> None:
    for t in (-38.0, -2.0, 0.3, 7.0):
        assert _dist.t.cdf(t, math.inf) == _dist.norm.cdf(t)
        assert _dist.t.sf(t, math.inf) == _dist.norm.sf(t)
    assert _dist.t.ppf(0.025, math.inf) == _dist.norm.ppf(0.025)
    assert _dist.t.cdf(0.0, 7.0) == 0.5 and _dist.t.ppf(0.5, 7.0) == 0.0
    assert _dist.t.ppf(0.0, 3.0) == -math.inf and _dist.t.ppf(1.0, 3.0) == math.inf
    assert _dist.t.isf(0.0, 3.0) == math.inf and _dist.t.isf(1.0, 3.0) == -math.inf
    assert _dist.t.sf(math.inf, 3.0) == 0.0 and _dist.t.cdf(-math.inf, 3.0) == 0.0


Q_VALUES = [1e-300, 1e-100, 1e-20, 1e-8, 1e-4, 0.001, 0.025, 0.05, 0.2, 0.45, 0.4999999]


@pytest.mark.parametrize("df", DFS)
def test_t_quantile_round_trip_and_scipy(df: float) -> None:
    for q in Q_VALUES:
        t = _dist.t.isf(q, df)
        assert t > 0
        # Back through mpmath: the upper tail at the quantile is q. Its sensitivity to a
        # relative error in t is |d log P / d log t| = t f(t) / P (about t^2 in the
        # normal tail), so the quantile is held to 1e-13 of t through that factor (at
        # q = 1e-300, exp and log of numbers near 690 alone cost ~1e-13).
        _, sf = mp_t_tails(df, t)
        with mpmath.workdps(40):
            df_, t_ = mpmath.mpf(df), mpmath.mpf(t)
            log_pdf = (
                -(df_ + 1) / 2 * mpmath.log1p(t_ * t_ / df_)
                - mpmath.log(df_) / 2
                - mpmath.log(mpmath.beta(df_ / 2, mpmath.mpf(1) / 2))
            )
            slope = float(t_ * mpmath.exp(log_pdf) / q)
        assert abs(sf - q) <= 1e-13 * max(1.0, slope) * q, (df, q, t, sf)
        assert _dist.t.ppf(q, df) == -t
        if q >= 1e-20:  # scipy's stdtrit stops near 1e154 (8e153 at df 1.5, q 1e-300)
            assert t == pytest.approx(float(-sp.stdtrit(df, q)), rel=1e-11), (df, q)


def test_t_quantile_closed_forms_at_the_extremes() -> None:
    # df = 1 is the Cauchy: t = cot(pi q); df = 2: t = (1 - 2q) / sqrt(2 q (1 - q)).
    for q in (1e-300, 1e-150, 1e-9, 0.01, 0.3):
        with mpmath.workdps(40):
            q_ = mpmath.mpf(q)
            cauchy = float(mpmath.cot(mpmath.pi * q_))
            two = float((1 - 2 * q_) / mpmath.sqrt(2 * q_ * (1 - q_)))
        assert _dist.t.isf(q, 1.0) == pytest.approx(cauchy, rel=1e-13)
        assert _dist.t.isf(q, 2.0) == pytest.approx(two, rel=1e-13)


# -- chi-square -----------------------------------------------------------------------------
def mp_chi2_sf(df: float, x: float) -> object:
    """P(X > x) in 40 digits (mpmath's lower incomplete gamma does not converge at 10^7)."""
    with mpmath.workdps(40):
        return mpmath.gammainc(mpmath.mpf(df) / 2, mpmath.mpf(x) / 2, mpmath.inf, regularized=True)


@pytest.mark.parametrize("df", [1.0, 2.0, 3.0, 5.0, 7.5, 20.0, 100.0, 1e3, 1e5, 1e7])
def test_chi2_sf_and_cdf_against_mpmath(df: float) -> None:
    sd = math.sqrt(2 * df)
    xs = [1e-8, 0.5, 3.84, df, df - 3 * sd, df + 3 * sd, df + 30 * sd, 20 * df + 700]
    for x in xs:
        if x <= 0:
            continue
        upper = mp_chi2_sf(df, x)
        with mpmath.workdps(40):
            want_sf, want_cdf = float(upper), float(1 - upper)
            if want_cdf < 1e-6:  # 1 - upper has lost the digits: the lower one directly
                a, h = mpmath.mpf(df) / 2, mpmath.mpf(x) / 2
                want_cdf = float(mpmath.gammainc(a, 0, h, regularized=True))
        assert close(_dist.chi2.sf(x, df), want_sf), (df, x)
        assert close(_dist.chi2.cdf(x, df), want_cdf), (df, x)
    assert _dist.chi2.sf(-1.0, df) == 1.0 and _dist.chi2.cdf(-1.0, df) == 0.0
    assert _dist.chi2.sf(math.inf, df) == 0.0 and _dist.chi2.cdf(math.inf, df) == 1.0


@pytest.mark.parametrize("df", [1.0, 2.0, 3.0, 4.0, 9.0, 60.0, 1e4, 1e7])
def test_chi2_quantile_against_mpmath(df: float) -> None:
    for q in (1e-300, 1e-30, 1e-6, 0.01, 0.05, 0.5, 0.9, 0.999999):
        x = _dist.chi2.isf(q, df)
        # The tail at x is q, to 1e-13 through the sensitivity x f(x) / Q of the tail
        # to a relative error in x (scipy's chdtri is 8e-8 off at df = 1e7, q = 0.999999).
        upper = mp_chi2_sf(df, x)
        with mpmath.workdps(40):
            a, h = mpmath.mpf(df) / 2, mpmath.mpf(x) / 2
            sens = float(mpmath.exp(a * mpmath.log(h) - h - mpmath.loggamma(a)) / upper)
        assert abs(float(upper) - q) <= 1e-13 * max(1.0, sens) * q, (df, q, x)
        if df <= 1e4:
            assert x == pytest.approx(float(sp.chdtri(df, q)), rel=1e-11), (df, q)


# -- Fisher's exact test ----------------------------------------------------------------------
def exact_fisher(table: tuple[tuple[int, int], tuple[int, int]]) -> float:
    """The two-sided p-value in rational arithmetic (scipy's tolerance of 1e-14)."""
    (a, b), (c, d) = table
    n1, n2, n = a + b, c + d, a + c
    lo, hi = max(0, n - n2), min(n, n1)
    total = math.comb(n1 + n2, n)
    probs = {k: Fraction(math.comb(n1, k) * math.comb(n2, n - k), total) for k in range(lo, hi + 1)}
    limit = probs[a] * (1 + Fraction(1, 10**14))
    return float(sum(v for v in probs.values() if v <= limit))


def test_fisher_matches_scipy_and_exact_on_small_tables() -> None:
    rng = random.Random(14)
    for _ in range(300):
        table = ((rng.randint(0, 25), rng.randint(0, 25)), (rng.randint(0, 25), rng.randint(0, 25)))
        got = _dist.fisher_exact(table).pvalue
        want = float(sps.fisher_exact(table).pvalue)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-300), table
        if 0 not in (sum(table[0]), sum(table[1]), table[0][0] + table[1][0]):
            assert got == pytest.approx(exact_fisher(table), rel=1e-12, abs=1e-300), table


@pytest.mark.parametrize(
    "table",
    [
        ((1, 10**9), (5, 10**9 - 10)),  # scipy: 0.1250000037 (its betaln), exact 0.1249999984
        ((0, 10**9), (7, 10**9)),
        ((3, 999_999_997), (0, 10**9)),
        ((2, 40), (9, 3)),
        ((0, 500), (60, 440)),  # a tail of 1e-19
        ((5, 5), (5, 5)),  # the mode: p = 1
        ((4, 6), (6, 4)),  # equal probabilities either side: exact ties are kept
    ],
)
def test_fisher_exact_at_large_counts_and_ties(
    table: tuple[tuple[int, int], tuple[int, int]],
) -> None:
    got = _dist.fisher_exact(table).pvalue
    assert got == pytest.approx(exact_fisher(table), rel=1e-12, abs=1e-300)


def test_fisher_far_tail_and_degenerate_tables() -> None:
    # 0 of 400 against 400 of 400: p = 2 / C(800, 400), about 1e-239.
    got = _dist.fisher_exact(((0, 400), (400, 0))).pvalue
    want = 2.0 / math.comb(800, 400)
    assert got == pytest.approx(want, rel=1e-12)
    assert _dist.fisher_exact(((0, 0), (3, 4))).pvalue == 1.0
    assert _dist.fisher_exact(((3, 0), (4, 0))).pvalue == 1.0
    assert (
        sps.fisher_exact(((2, 7), (8, 2))).statistic
        == _dist.fisher_exact(((2, 7), (8, 2))).statistic
    )


# -- arrays, as scipy's ufuncs ----------------------------------------------------------------
def test_distributions_take_arrays_and_broadcast() -> None:
    x = np.array([-3.0, 0.0, 2.5])
    assert np.array_equal(_dist.norm.cdf(x), [_dist.norm.cdf(float(v)) for v in x])
    got = _dist.t.sf(x, np.array([[3.0], [30.0]]))
    assert got.shape == (2, 3)
    assert got[1, 2] == _dist.t.sf(2.5, 30.0)
    assert isinstance(_dist.chi2.sf(np.float64(3.84), 1), float)
    assert isinstance(_dist.norm.isf(np.array(0.025)), float)


# -- Bayesian grid: the CDF by panels against the incomplete beta -----------------------------
# mpmath's incomplete beta takes minutes beyond ~10^4 on both sides; larger posteriors are
# checked through P(B > A) in test_stats_bayes_scale.py (mpmath sums and the normal limit).
@pytest.mark.parametrize(
    ("alpha", "beta"),
    [(1000.0, 1000.0), (1001.0, 10**9 - 999.0), (1500.0, 4000.0), (9000.0, 1200.0)],
)
def test_beta_tails_against_mpmath(alpha: float, beta: float) -> None:
    mean = alpha / (alpha + beta)
    sd = math.sqrt(alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1)))
    points = np.array([mean + z * sd for z in (-30.0, -8.0, -2.0, -0.3, 0.0, 1.0, 4.5, 12.0, 35.0)])
    points = points[(points > 0) & (points < 1)]
    tails = _beta_tails(alpha, beta, points)
    with mpmath.workdps(50):
        a, b = mpmath.mpf(alpha), mpmath.mpf(beta)
        for i, x in enumerate(points.tolist()):
            lower = mpmath.betainc(a, b, 0, x, regularized=True)
            # The upper tail by symmetry: betainc(a, b, x, 1) is 1 - lower, digits lost.
            upper = mpmath.betainc(b, a, 0, 1 - mpmath.mpf(x), regularized=True)
            assert close(float(tails.lower[i]), float(lower)), (i, x)
            assert close(float(tails.upper[i]), float(upper)), (i, x)
            # E[X; X <= x] = mean * I_x(alpha + 1, beta).
            part = mpmath.mpf(mean) * mpmath.betainc(a + 1, b, 0, x, regularized=True)
            assert close(float(tails.lower_mean[i]), float(part)), (i, x)


@pytest.mark.parametrize("df", [1.0, 2.5, 30.0, 1e6])
@pytest.mark.parametrize("t", [2.869124013282273e-231, -1e-160, 1e-300, 5e-324])
def test_t_at_a_statistic_whose_square_underflows(df: float, t: float) -> None:
    # t^2 is 0 in doubles here; the tails are 0.5 to all digits (found by a Welch test of
    # two samples whose means differ by 2e-231).
    from smart_suggest.stats._special import stdtr_pair

    assert stdtr_pair(df, t) == (0.5, 0.5)


def test_a_quantile_below_the_smallest_double_is_zero_as_in_scipy() -> None:
    # chi-square with df 0.001: half its mass lies below ~1e-301... and far below that.
    assert _dist.chi2.isf(0.5, 0.001) == float(sps.chi2.isf(0.5, 0.001)) == 0.0
