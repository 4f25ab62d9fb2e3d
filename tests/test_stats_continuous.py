"""Welch's t test: agreement with scipy, CIs, Cohen's d, degenerate inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from smart_suggest.stats import mean_var_from_sums, welch_t_test, welch_t_test_from_sums


def close(got: float, want: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return abs(got - want) <= max(abs_, rel * abs(want))


def test_welch_agrees_with_scipy_from_stats_on_random_cases() -> None:
    rng = np.random.default_rng(11)
    k = 3000
    n_a = np.round(10 ** rng.uniform(np.log10(2), 8, k)).astype(np.int64)
    n_b = np.round(10 ** rng.uniform(np.log10(2), 8, k)).astype(np.int64)
    sd_a = 10 ** rng.uniform(-3, 3, k)
    sd_b = sd_a * 10 ** rng.uniform(-1, 1, k)
    mean_a = rng.uniform(-100, 100, k)
    # Effects from none to huge, so p-values span 1 down to far below 1e-12.
    mean_b = mean_a + sd_a * rng.choice([0.0, 1e-3, 0.05, 1.0], k) * rng.standard_normal(k)
    tiny = 0
    for i in range(k):
        na, nb = int(n_a[i]), int(n_b[i])
        ma, mb, va, vb = mean_a[i], mean_b[i], sd_a[i] ** 2, sd_b[i] ** 2
        r = welch_t_test(na, ma, va, nb, mb, vb)
        ref = stats.ttest_ind_from_stats(mb, sd_b[i], nb, ma, sd_a[i], na, equal_var=False)
        assert close(r.t, ref.statistic, rel=1e-10), i
        assert close(r.p_value, ref.pvalue), (i, r.p_value, ref.pvalue)
        if abs(ref.pvalue - 0.05) > 1e-9:
            assert (r.p_value < 0.05) == (ref.pvalue < 0.05)
        tiny += r.p_value < 1e-12
    assert tiny > 50


def test_welch_ci_agrees_with_scipy_raw_data() -> None:
    rng = np.random.default_rng(12)
    for _ in range(300):
        na, nb = (int(v) for v in rng.integers(2, 60, 2))
        a = rng.normal(rng.uniform(-5, 5), rng.uniform(0.1, 5), na)
        b = rng.normal(rng.uniform(-5, 5), rng.uniform(0.1, 5), nb)
        ref = stats.ttest_ind(b, a, equal_var=False)
        r = welch_t_test(na, a.mean(), a.var(ddof=1), nb, b.mean(), b.var(ddof=1))
        ci = ref.confidence_interval()
        assert r.diff_ci is not None
        assert close(r.diff_ci.low, ci.low, rel=1e-9) and close(r.diff_ci.high, ci.high, rel=1e-9)
        assert close(r.df, ref.df) and close(r.p_value, ref.pvalue)
        sp = math.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
        assert close(r.cohens_d, (b.mean() - a.mean()) / sp)
        # From sums gives the same answer (up to the sum-of-squares shortcut's rounding).
        s = welch_t_test_from_sums(na, a.sum(), (a**2).sum(), nb, b.sum(), (b**2).sum())
        assert s.p_value == pytest.approx(r.p_value, rel=1e-6, abs=1e-12)


def test_mean_var_from_sums_matches_numpy() -> None:
    rng = np.random.default_rng(13)
    x = rng.exponential(30.0, 1000)
    mv = mean_var_from_sums(len(x), x.sum(), (x**2).sum())
    assert mv.mean == pytest.approx(x.mean(), rel=1e-12)
    assert mv.var == pytest.approx(x.var(ddof=1), rel=1e-9)
    assert mean_var_from_sums(0, 0.0, 0.0).to_dict() == {"n": 0, "mean": 0.0, "var": 0.0}
    assert mean_var_from_sums(1, 5.0, 25.0).var == 0.0


def test_engagement_example_paragraph_numbers() -> None:
    r = welch_t_test(1000, 30.0, 400.0, 1000, 33.0, 440.0)
    assert r.test == "welch_t" and r.significant and r.diff == pytest.approx(3.0)
    assert r.relative_lift == pytest.approx(0.1)
    assert r.relative_lift_ci is not None and r.relative_lift_ci.low < 0.1 < r.relative_lift_ci.high


@pytest.mark.parametrize(
    ("args", "word"),
    [
        ((0, 0.0, 0.0, 0, 0.0, 0.0), "arms A and B have fewer than 2"),
        ((1, 5.0, 0.0, 1, 7.0, 0.0), "arms A and B have fewer than 2"),
        ((1, 5.0, 3.0, 50, 7.0, 2.0), "arm A has fewer than 2"),
        ((10, 5.0, 0.0, 10, 5.0, 0.0), "zero variance"),
        ((10, 5.0, 0.0, 10, 7.0, 0.0), "zero variance"),
        ((10, 0.0, 0.0, 10, 7.0, 0.0), "zero variance"),
    ],
)
def test_degenerate_welch(args: tuple[int, float, float, int, float, float], word: str) -> None:
    r = welch_t_test(*args)
    assert r.test == "none" and r.p_value == 1.0 and not r.significant
    assert word in r.note
    json.dumps(r.to_dict(), allow_nan=False)


def test_one_arm_zero_variance_still_tests() -> None:
    r = welch_t_test(10, 5.0, 0.0, 10, 7.0, 4.0)
    ref = stats.ttest_ind_from_stats(7.0, 2.0, 10, 5.0, 0.0, 10, equal_var=False)
    assert r.test == "welch_t" and r.df == pytest.approx(9.0)
    assert close(r.p_value, ref.pvalue)
