"""Proportions: published values, agreement with scipy/statsmodels, degenerate inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from scipy.stats.contingency import expected_freq
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from smart_suggest.stats import (
    ProportionTest,
    cohens_h,
    newcombe_diff_interval,
    relative_lift_interval,
    two_proportion_test,
    wilson_interval,
)

ALPHA = 0.05


def close(got: float, want: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return abs(got - want) <= max(abs_, rel * abs(want))


def assert_json_clean(obj: dict[str, object]) -> None:
    json.dumps(obj, allow_nan=False)  # raises on NaN / inf


# --- published reference values -------------------------------------------------------


def test_wilson_reference_81_of_263() -> None:
    ci = wilson_interval(81, 263)
    assert ci.low == pytest.approx(0.2553, abs=5e-5)
    assert ci.high == pytest.approx(0.3662, abs=5e-5)


def test_newcombe_reference_56_70_vs_48_80() -> None:
    # Newcombe (1998) example: 56/70 vs 48/80, difference 0.2, CI 0.0524 to 0.3339.
    ci = newcombe_diff_interval(48, 80, 56, 70)  # p_B - p_A with B = 56/70
    assert ci.low == pytest.approx(0.0524, abs=5e-5)
    assert ci.high == pytest.approx(0.3339, abs=5e-5)


def test_fisher_reference_3_1_1_3() -> None:
    r = two_proportion_test(3, 4, 1, 4)
    assert r.test == "fisher_exact"
    assert "Fisher" in r.test_reason and "< 5" in r.test_reason
    assert r.p_value == pytest.approx(0.4857, abs=5e-5)


def test_chi_square_chosen_with_large_counts() -> None:
    r = two_proportion_test(316, 1000, 420, 1000)
    assert r.test == "chi_square"
    assert "chi-square" in r.test_reason
    assert r.z > 0 and r.chi2 == pytest.approx(r.z**2)
    assert r.significant
    assert r.relative_lift == pytest.approx(420 / 316 - 1)


def test_cohens_h_known_value() -> None:
    # h for 0.5 vs 0.4 is 0.2014 (Cohen 1988, table 6.2.1 neighbourhood).
    assert cohens_h(0.4, 0.5) == pytest.approx(0.20136, abs=1e-4)


# --- random agreement with the reference implementations ------------------------------


def _random_cases(seed: int, k: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n_a = np.round(10 ** rng.uniform(np.log10(2), 8, k)).astype(np.int64)
    same = rng.random(k) < 0.5
    n_b = np.where(same, n_a, np.round(10 ** rng.uniform(np.log10(2), 8, k))).astype(np.int64)
    kind = rng.integers(0, 4, k)
    base = np.select(
        [kind == 0, kind == 1, kind == 2],
        [10 ** rng.uniform(-6, 0, k), rng.uniform(0, 1, k), rng.choice([0.0, 1.0], k)],
        default=rng.uniform(0.01, 0.5, k),
    )
    lift = rng.choice([0.0, 0.01, 0.1, 0.5], k)
    p_b = np.clip(base * (1 + lift), 0, 1)
    x_a = rng.binomial(n_a, base)
    x_b = rng.binomial(n_b, p_b)
    # Pin some exact extremes: 0 successes and all successes.
    x_a[:20] = 0
    x_b[20:40] = n_b[20:40]
    return x_a, n_a, x_b, n_b


def _ref_decision_flip(p: float, ref: float) -> bool:
    return (p < ALPHA) != (ref < ALPHA) and abs(ref - ALPHA) > 1e-9


def test_tests_agree_with_scipy_and_statsmodels() -> None:
    # Heavy Fisher tables (tiny expected count, n ~ 1e8) take scipy ~0.1 s each, so the
    # bulk of the 3,000 cases is chi-square; Fisher cases are still checked by the dozen.
    x_a, n_a, x_b, n_b = _random_cases(seed=1, k=3000)
    n_chi = n_fisher = n_tiny = 0
    for xa, na, xb, nb in zip(x_a.tolist(), n_a.tolist(), x_b.tolist(), n_b.tolist(), strict=True):
        table = np.array([[xa, na - xa], [xb, nb - xb]])
        min_exp = expected_freq(table).min()
        if min_exp < 5 and na + nb > 200_000:
            continue  # keep runtime bounded (see comment above)
        r = two_proportion_test(xa, na, xb, nb)
        assert isinstance(r, ProportionTest)
        assert r.min_expected == pytest.approx(min_exp, rel=1e-9, abs=1e-12)
        if min_exp < 5:
            n_fisher += 1
            assert r.test == "fisher_exact"
            ref = stats.fisher_exact(table).pvalue
            assert close(r.p_value, min(1.0, ref))
            continue
        n_chi += 1
        assert r.test == "chi_square"
        ref = stats.chi2_contingency(table, correction=False)
        assert close(r.chi2, ref.statistic, rel=1e-9, abs_=1e-9), (xa, na, xb, nb)
        assert close(r.p_value, ref.pvalue), (xa, na, xb, nb, r.p_value, ref.pvalue)
        assert not _ref_decision_flip(r.p_value, ref.pvalue)
        z_ref, p_ref = proportions_ztest([xb, xa], [nb, na])
        assert close(r.z, z_ref, rel=1e-8, abs_=1e-9)
        assert close(r.p_value, p_ref)
        n_tiny += r.p_value < 1e-12
    assert n_chi > 1500 and n_fisher > 100 and n_tiny > 100


def test_wilson_newcombe_lift_intervals_agree_with_statsmodels() -> None:
    x_a, n_a, x_b, n_b = _random_cases(seed=2, k=4000)
    lo, hi = proportion_confint(x_a, n_a, alpha=ALPHA, method="wilson")
    nlo, nhi = confint_proportions_2indep(x_b, n_b, x_a, n_a, method="newcomb", compare="diff")
    pos = (x_a > 0) & (x_b > 0)
    rlo, rhi = confint_proportions_2indep(
        x_b[pos], n_b[pos], x_a[pos], n_a[pos], method="log", compare="ratio"
    )
    j = 0
    for i, (xa, na, xb, nb) in enumerate(
        zip(x_a.tolist(), n_a.tolist(), x_b.tolist(), n_b.tolist(), strict=True)
    ):
        w = wilson_interval(xa, na)
        assert close(w.low, lo[i]) and close(w.high, hi[i]), (xa, na)
        d = newcombe_diff_interval(xa, na, xb, nb)
        assert close(d.low, nlo[i]) and close(d.high, nhi[i]), (xa, na, xb, nb)
        rel = relative_lift_interval(xa, na, xb, nb)
        if pos[i]:
            assert rel is not None
            assert close(rel.low, rlo[j] - 1.0) and close(rel.high, rhi[j] - 1.0)
            j += 1
        else:
            assert rel is None


def test_intervals_contain_estimates_and_are_ordered() -> None:
    x_a, n_a, x_b, n_b = _random_cases(seed=3, k=500)
    for xa, na, xb, nb in zip(x_a.tolist(), n_a.tolist(), x_b.tolist(), n_b.tolist(), strict=True):
        r = two_proportion_test(xa, na, xb, nb)
        assert 0.0 <= r.ci_a.low <= r.rate_a + 1e-15 and r.rate_a - 1e-15 <= r.ci_a.high <= 1
        assert -1.0 <= r.diff_ci.low <= r.diff + 1e-15 <= r.diff_ci.high + 2e-15 <= 1 + 2e-15


# --- degenerate inputs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("xa", "na", "xb", "nb", "test", "word"),
    [
        (0, 0, 0, 0, "none", "no observations"),
        (0, 0, 5, 10, "none", "no observations"),
        (3, 10, 0, 0, "none", "no observations"),
        (0, 1000, 0, 1000, "fisher_exact", "failure"),
        (1000, 1000, 1000, 1000, "fisher_exact", "success"),
        (0, 1, 1, 1, "fisher_exact", ""),
        (0, 500, 20, 500, "chi_square", "arm A has no successes"),
        (20, 500, 0, 500, "chi_square", "arm B has no successes"),
    ],
)
def test_degenerate_proportions(xa: int, na: int, xb: int, nb: int, test: str, word: str) -> None:
    r = two_proportion_test(xa, na, xb, nb)
    assert r.test == test
    assert word in r.note or word in r.test_reason
    d = r.to_dict()
    assert_json_clean(d)
    assert 0.0 <= r.p_value <= 1.0
    if test == "none" or xa + xb in (0, na + nb):
        assert r.p_value == 1.0 and not r.significant


def test_zero_and_one_rates_intervals() -> None:
    assert wilson_interval(0, 0) == wilson_interval(0, 0)  # frozen dataclass equality
    assert (wilson_interval(0, 0).low, wilson_interval(0, 0).high) == (0.0, 1.0)
    w0, w1 = wilson_interval(0, 50), wilson_interval(50, 50)
    assert w0.low == 0.0 and 0 < w0.high < 0.1
    assert w1.high == 1.0 and 0.9 < w1.low < 1
    assert newcombe_diff_interval(0, 0, 1, 2).to_dict() == {"low": -1.0, "high": 1.0, "level": 0.95}


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError):
        two_proportion_test(5, 4, 1, 4)
    with pytest.raises(ValueError):
        two_proportion_test(-1, 4, 1, 4)
    with pytest.raises(ValueError):
        two_proportion_test(1, 4, 1, 4, alpha=0)
    with pytest.raises(ValueError):
        wilson_interval(1.5, 4)  # type: ignore[arg-type]


def test_numpy_integer_counts_are_accepted() -> None:
    counts = (np.int64(30), np.int64(100), np.int64(45), np.int64(100))
    r = two_proportion_test(*counts)  # type: ignore[arg-type]
    assert isinstance(r.to_dict()["n_a"], int)
    assert math.isfinite(r.p_value)
