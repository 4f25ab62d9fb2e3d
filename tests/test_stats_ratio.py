"""User-level ratio metric (delta method): against raw-data computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from smart_suggest.stats import RatioSums, ratio_arm, ratio_test, welch_t_test


def close(got: float, want: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return abs(got - want) <= max(abs_, rel * abs(want))


def sums(x: np.ndarray, y: np.ndarray) -> RatioSums:
    return RatioSums(
        n_users=len(x),
        sum_x=float(x.sum()),
        sum_y=float(y.sum()),
        sum_x2=float((x * x).sum()),
        sum_y2=float((y * y).sum()),
        sum_xy=float((x * y).sum()),
    )


def simulate(rng: np.random.Generator, n: int, ctr: float) -> tuple[np.ndarray, np.ndarray]:
    y = 1 + rng.poisson(rng.uniform(1, 20), n)  # impressions per user
    p = rng.beta(ctr * 20, (1 - ctr) * 20, n)  # users differ in their own CTR
    return rng.binomial(y, p).astype(float), y.astype(float)


def delta_reference(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    n = len(x)
    r = x.mean() / y.mean()
    cov = np.cov(x, y, ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * y.mean() ** 2)
    return r, math.sqrt(max(var, 0.0))


def test_ratio_matches_textbook_delta_method() -> None:
    rng = np.random.default_rng(21)
    for _ in range(200):
        n_a, n_b = (int(v) for v in rng.integers(2, 3000, 2))
        ctr = rng.uniform(0.01, 0.5)
        xa, ya = simulate(rng, n_a, ctr)
        xb, yb = simulate(rng, n_b, ctr * rng.choice([1.0, 1.1, 1.5]))
        r = ratio_test(sums(xa, ya), sums(xb, yb))
        ra, sa = delta_reference(xa, ya)
        rb, sb = delta_reference(xb, yb)
        assert close(r.ratio_a, ra) and close(r.ratio_b, rb)
        assert close(r.a.se, sa, rel=1e-7) and close(r.b.se, sb, rel=1e-7)
        se = math.hypot(sa, sb)
        z = (rb - ra) / se
        assert close(r.z, z, rel=1e-7)
        assert close(r.p_value, 2 * stats.norm.sf(abs(z)), rel=1e-6)
        assert r.diff_ci is not None
        assert close(r.diff_ci.high - r.diff_ci.low, 2 * 1.959963984540054 * se, rel=1e-7)


def test_one_impression_per_user_reduces_to_welch_on_binary_data() -> None:
    rng = np.random.default_rng(22)
    xa = rng.binomial(1, 0.1, 5000).astype(float)
    xb = rng.binomial(1, 0.12, 4000).astype(float)
    r = ratio_test(sums(xa, np.ones_like(xa)), sums(xb, np.ones_like(xb)))
    w = welch_t_test(len(xa), xa.mean(), xa.var(ddof=1), len(xb), xb.mean(), xb.var(ddof=1))
    assert r.z == pytest.approx(w.t, rel=1e-9)
    assert r.relative_lift == pytest.approx(xb.mean() / xa.mean() - 1)


def test_ratio_is_wider_than_naive_binomial_when_users_cluster() -> None:
    rng = np.random.default_rng(23)
    x, y = simulate(rng, 2000, 0.1)
    arm = ratio_arm(sums(x, y))
    naive = math.sqrt(arm.ratio * (1 - arm.ratio) / y.sum())
    assert arm.se > naive  # per-user heterogeneity inflates the variance


@pytest.mark.parametrize(
    ("a", "b", "word"),
    [
        (RatioSums(0, 0, 0, 0, 0, 0), RatioSums(0, 0, 0, 0, 0, 0), "no users"),
        (RatioSums(5, 0, 0, 0, 0, 0), RatioSums(5, 1, 10, 1, 20, 2), "no impressions"),
        (RatioSums(1, 1, 10, 1, 100, 10), RatioSums(1, 2, 10, 4, 100, 20), "single user"),
        (RatioSums(3, 3, 30, 3, 300, 30), RatioSums(3, 6, 30, 12, 300, 60), "zero variance"),
        (RatioSums(3, 0, 30, 0, 300, 0), RatioSums(3, 0, 30, 0, 300, 0), "zero variance"),
    ],
)
def test_degenerate_ratio(a: RatioSums, b: RatioSums, word: str) -> None:
    r = ratio_test(a, b)
    assert r.test == "none" and r.p_value == 1.0 and not r.significant
    assert word in r.note
    json.dumps(r.to_dict(), allow_nan=False)


def test_zero_ratio_in_control_gives_no_relative_lift() -> None:
    r = ratio_test(RatioSums(3, 0, 30, 0, 300, 0), RatioSums(3, 3, 30, 5, 300, 30))
    assert r.relative_lift is None and r.relative_lift_ci is None
    assert "A's ratio is 0" in r.note
    json.dumps(r.to_dict(), allow_nan=False)


def test_invalid_ratio_inputs_raise() -> None:
    with pytest.raises(ValueError):
        ratio_test(RatioSums(-1, 0, 0, 0, 0, 0), RatioSums(1, 0, 1, 0, 1, 0))
    with pytest.raises(ValueError):
        ratio_test(RatioSums(1, 0, -1, 0, 1, 0), RatioSums(1, 0, 1, 0, 1, 0))
