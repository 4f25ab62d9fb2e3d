"""Frequentist outputs against mpmath from n = 10 to n = 10^15.

The chi-square statistic of a 2x2 table is computed exactly (integers) and its p-value in
40-digit arithmetic; the user-level ratio test's z and p likewise from the same sums.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest

from smart_suggest.stats import RatioSums, ratio_test, two_proportion_test

SIZES = [10**k for k in (2, 3, 6, 9, 12, 15)]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("rate", "lift"), [(0.3, 0.0), (0.12, 0.01), (1e-4, 0.05)])
def test_chi_square_p_value_matches_mpmath(n: int, rate: float, lift: float) -> None:
    xa = max(5, round(n * rate))
    xb = max(5, round(n * rate * (1 + lift)) + (3 if lift == 0 else 0))
    res = two_proportion_test(xa, n, xb, n)
    if res.test != "chi_square":
        pytest.skip("Fisher's exact test at this size (checked against scipy elsewhere)")
    succ, fail, tot = xa + xb, 2 * n - xa - xb, 2 * n
    cross = xb * (n - xa) - xa * (n - xb)
    chi2 = Fraction(tot * cross * cross, n * n * succ * fail)
    with mpmath.workdps(40):
        want = mpmath.erfc(mpmath.sqrt(mpmath.mpf(chi2.numerator) / chi2.denominator / 2))
        assert res.chi2 == pytest.approx(float(chi2), rel=1e-12)
        assert res.p_value == pytest.approx(float(want), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("n", SIZES[:-1])
def test_ratio_test_matches_mpmath(n: int) -> None:
    """Delta-method z of clicks / impressions per user, every step in 40 digits."""

    def arm(users: int, clicks_per: int, imps_per: int, extra: int) -> RatioSums:
        # `users` users with (clicks_per, imps_per) and one heavy user with `extra` more.
        x = [clicks_per] * 2 + [clicks_per + extra]
        y = [imps_per] * 2 + [imps_per + 3 * extra]
        w = [users - 1 - users // 2, users // 2, 1]
        return RatioSums(
            users,
            float(sum(wi * xi for wi, xi in zip(w, x, strict=True))),
            float(sum(wi * yi for wi, yi in zip(w, y, strict=True))),
            float(sum(wi * xi * xi for wi, xi in zip(w, x, strict=True))),
            float(sum(wi * yi * yi for wi, yi in zip(w, y, strict=True))),
            float(sum(wi * xi * yi for wi, xi, yi in zip(w, x, y, strict=True))),
        )

    a, b = arm(n, 1, 4, 7), arm(n, 1, 3, 5)
    res = ratio_test(a, b)
    with mpmath.workdps(40):

        def var(s: RatioSums) -> tuple[mpmath.mpf, mpmath.mpf]:
            k = mpmath.mpf(s.n_users)
            mx, my = mpmath.mpf(s.sum_x) / k, mpmath.mpf(s.sum_y) / k
            vx = (mpmath.mpf(s.sum_x2) - k * mx * mx) / (k - 1)
            vy = (mpmath.mpf(s.sum_y2) - k * my * my) / (k - 1)
            cxy = (mpmath.mpf(s.sum_xy) - k * mx * my) / (k - 1)
            r = mx / my
            return r, (vx - 2 * r * cxy + r * r * vy) / (k * my * my)

        ra, va = var(a)
        rb, vb = var(b)
        z = (rb - ra) / mpmath.sqrt(va + vb)
        p = mpmath.erfc(abs(z) / mpmath.sqrt(2))
    assert res.ratio_a == pytest.approx(float(ra), rel=1e-12)
    assert res.se_diff == pytest.approx(float(mpmath.sqrt(va + vb)), rel=1e-9)
    assert res.p_value == pytest.approx(float(p), rel=1e-9, abs=1e-300)
