"""k-variant statistics, interleaving and CUPED against scipy / statsmodels references."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import binom_test, proportion_confint

from smart_suggest.stats import holm
from smart_suggest.stats.bayes import prob_greater
from smart_suggest.stats.cuped import CovSums, cuped
from smart_suggest.stats.interleaving import interleaving_test
from smart_suggest.stats.multiarm import (
    k_arm_sample_size,
    prob_best_beta,
    prob_best_normal,
    recommend,
    srm_k,
)
from smart_suggest.stats.power import sample_size_proportions

REL = 1e-9


@pytest.mark.parametrize(
    ("observed", "weights"),
    [([5000, 2510, 2490], [2, 1, 1]), ([1000, 1100, 950, 1020], [1, 1, 1, 1]), ([3, 9], [1, 1])],
)
def test_k_category_srm_matches_scipy_chisquare(observed: list[int], weights: list[float]) -> None:
    res = srm_k("ABCD"[: len(observed)], observed, weights)
    total = sum(observed)
    expected = [total * w / sum(weights) for w in weights]
    ref = st.chisquare(observed, expected)
    assert res.chi2 == pytest.approx(ref.statistic, rel=REL)
    assert res.p_value == pytest.approx(ref.pvalue, rel=REL)
    assert res.df == len(observed) - 1


def test_k_category_srm_flags_a_broken_split() -> None:
    assert srm_k("ABC", [5000, 2300, 2700], [2, 1, 1]).flagged
    assert not srm_k("ABC", [0, 0, 0], [1, 1, 1]).flagged


def test_holm_across_comparisons_matches_statsmodels() -> None:
    ps = [0.01, 0.04, 0.03, 0.2]
    ours = holm(ps)
    reject, adjusted, _, _ = multipletests(ps, alpha=0.05, method="holm")
    assert list(ours.adjusted) == pytest.approx(list(adjusted), rel=REL)
    assert list(ours.reject) == list(reject)


def test_prob_best_two_arms_equals_the_exact_beta_comparison() -> None:
    pb = prob_best_beta("AB", [120, 140], [1000, 1000])
    exact, _method = prob_greater(120 + 1, 1000 - 120 + 1, 140 + 1, 1000 - 140 + 1)
    assert pb.probabilities[1] == pytest.approx(exact, abs=1e-6)
    assert sum(pb.probabilities) == pytest.approx(1.0, abs=1e-12)


def test_prob_best_k_arms_matches_monte_carlo() -> None:
    rng = np.random.default_rng(3)
    succ, n = [100, 112, 95, 120], [1000, 1000, 1000, 1000]
    pb = prob_best_beta("ABCD", succ, n)
    draws = np.stack([rng.beta(s + 1, m - s + 1, 400_000) for s, m in zip(succ, n, strict=True)])
    mc = np.bincount(draws.argmax(axis=0), minlength=4) / draws.shape[1]
    assert list(pb.probabilities) == pytest.approx(list(mc), abs=0.004)
    normal = prob_best_normal("ABC", [0.1, 0.12, 0.11], [0.01, 0.01, 0.01])
    draws = rng.normal([0.1, 0.12, 0.11], 0.01, size=(400_000, 3))
    mc = np.bincount(draws.argmax(axis=1), minlength=3) / draws.shape[0]
    assert list(normal.probabilities) == pytest.approx(list(mc), abs=0.004)


def test_recommendation_ships_the_best_winner_or_keeps_control() -> None:
    verdicts = {"B": "worth_shipping", "C": "worth_shipping", "D": "no_effect"}
    rec = recommend("A", verdicts, {"B": 0.12, "C": 0.13, "D": 0.2})
    assert rec.text == "ship C"
    assert recommend("A", {"B": "no_effect"}, {"B": 0.3}).text == "keep A"
    assert recommend("A", verdicts, {}, invalid=True).text == "invalid"


def test_k_arm_sample_size_uses_bonferroni_per_comparison() -> None:
    plan = k_arm_sample_size(0.12, 0.02, 4)
    per = sample_size_proportions(0.12, 0.02, alpha=0.05 / 3)
    assert plan.n_per_variant == per.n_per_variant
    assert plan.n_total == 4 * per.n_per_variant
    assert plan.n_per_variant > sample_size_proportions(0.12, 0.02).n_per_variant


@pytest.mark.parametrize(("a", "b"), [(40, 60), (500, 540), (3, 9), (0, 12)])
def test_interleaving_binomial_test_and_interval_match_statsmodels(a: int, b: int) -> None:
    res = interleaving_test(a + b + 17, a, b, float(b - a), float(a + b))
    assert res.p_value == pytest.approx(binom_test(b, a + b, 0.5), rel=1e-9)
    lo, hi = proportion_confint(b, a + b, alpha=0.05, method="beta")
    assert res.share_ci is not None
    assert (res.share_ci.low, res.share_ci.high) == pytest.approx((lo, hi), rel=1e-7, abs=1e-12)
    assert res.ties == 17


def test_interleaving_mean_credit_difference_matches_a_t_test() -> None:
    rng = np.random.default_rng(5)
    d = rng.integers(-2, 3, size=300).astype(float) + (rng.random(300) < 0.1)
    res = interleaving_test(300, int((d < 0).sum()), int((d > 0).sum()), d.sum(), (d * d).sum())
    ref = st.ttest_1samp(d, 0.0)
    assert res.mean_diff == pytest.approx(d.mean(), rel=REL)
    assert res.mean_diff_p_value == pytest.approx(ref.pvalue, rel=1e-7)
    ci = ref.confidence_interval(0.95)
    assert res.mean_diff_ci is not None
    assert (res.mean_diff_ci.low, res.mean_diff_ci.high) == pytest.approx(
        (ci.low, ci.high), rel=1e-9
    )


def test_interleaving_verdicts() -> None:
    assert interleaving_test(1000, 300, 500, 200.0, 800.0).verdict == "b_preferred"
    assert interleaving_test(1000, 500, 300, -200.0, 800.0).verdict == "a_preferred"
    assert interleaving_test(1000, 400, 410, 10.0, 810.0).verdict == "no_preference"
    assert interleaving_test(10, 2, 3, 1.0, 5.0).verdict == "insufficient_data"
    seq = interleaving_test(1000, 300, 500, 200.0, 800.0, sequential=True)
    assert seq.sequential is not None and seq.sequential.p_value >= seq.p_value
    assert seq.sequential_share_ci is not None and seq.sequential_share_ci.contains(0.625)


def _cov_sums(
    label: str, y: np.ndarray, x: np.ndarray, h: np.ndarray, m: np.ndarray | None = None
) -> CovSums:
    extra = {}
    if m is not None:
        extra = dict(
            sum_m=float(m.sum()),
            sum_mm=float((m * m).sum()),
            sum_ym=float((y * m).sum()),
            sum_xm=float((x * m).sum()),
            sum_hm=float((h * m).sum()),
        )
    return CovSums(
        label,
        len(y),
        float(y.sum()),
        float((y * y).sum()),
        float(x.sum()),
        float((x * x).sum()),
        int(h.sum()),
        float((x * y).sum()),
        float((h * y).sum()),
        **extra,
    )


def _population(rng: np.random.Generator, n: int, lift: float) -> tuple[np.ndarray, ...]:
    h = (rng.random(n) < 0.7).astype(float)
    x = h * rng.poisson(4.0, n)
    p = np.clip(0.05 + 0.03 * x + lift, 0, 1)
    y = (rng.random(n) < p).astype(float)
    return y, x, h


def test_cuped_equals_an_ols_regression_on_the_covariates() -> None:
    rng = np.random.default_rng(11)
    groups = [
        _population(rng, 4000, 0.0),
        _population(rng, 3500, 0.02),
        _population(rng, 3800, 0.0),
    ]
    res = cuped(
        "conversion_rate", [_cov_sums(lab, *g) for lab, g in zip("ABC", groups, strict=True)]
    )
    y = np.concatenate([g[0] for g in groups])
    x = np.concatenate([g[1] for g in groups])
    h = np.concatenate([g[2] for g in groups])
    arm = np.concatenate([np.full(len(g[0]), i) for i, g in enumerate(groups)])
    design = np.column_stack([np.ones_like(y), arm == 1, arm == 2, x, h]).astype(float)
    ols = sm.OLS(y, design).fit()
    # theta is the OLS slope on the covariates with one dummy per variant ...
    assert list(res.theta) == pytest.approx(list(ols.params[3:]), rel=1e-9)
    # ... and each adjusted difference is that regression's treatment coefficient.
    for comp, coef in zip(res.comparisons, ols.params[1:3], strict=True):
        assert comp.adjusted_diff == pytest.approx(coef, rel=1e-9)
    # The adjusted SE is the heteroskedasticity-robust (HC2) SE of the difference of the
    # adjusted outcomes, theta held fixed (the CUPED estimator's standard error).
    y_adj = y - design[:, 3:] @ ols.params[3:]
    for i, comp in enumerate(res.comparisons, start=1):
        keep = (arm == 0) | (arm == i)
        fit = sm.OLS(y_adj[keep], sm.add_constant((arm[keep] == i).astype(float))).fit(
            cov_type="HC2"
        )
        assert comp.adjusted_se == pytest.approx(fit.bse[1], rel=1e-9)
        raw = sm.OLS(y[keep], sm.add_constant((arm[keep] == i).astype(float))).fit(cov_type="HC2")
        assert comp.se == pytest.approx(raw.bse[1], rel=1e-9)
        assert comp.variance_reduction is not None and comp.variance_reduction > 0.02


def test_cuped_ratio_metric_matches_the_linearised_per_user_computation() -> None:
    rng = np.random.default_rng(2)
    data = []
    for lift in (0.0, 0.01):
        n = 3000
        h = (rng.random(n) < 0.8).astype(float)
        x = h * rng.poisson(3.0, n)
        m = rng.poisson(5.0, n) + 1.0
        c = rng.binomial(m.astype(int), np.clip(0.1 + 0.02 * x + lift, 0, 1)).astype(float)
        data.append((c, x, h, m))
    res = cuped(
        "ctr", [_cov_sums(lab, c, x, h, m) for lab, (c, x, h, m) in zip("AB", data, strict=True)]
    )
    # Reference: build L per user, pool theta within groups, adjust, by brute force.
    lin, zs = [], []
    for c, x, h, m in data:
        r = c.sum() / m.sum()
        lin.append((c - r * m) / m.mean())
        zs.append(np.column_stack([x, h]))
    szz = sum(np.cov(z.T, ddof=0) * len(z) for z in zs)
    szl = sum(
        ((z - z.mean(0)) * (ell - ell.mean())[:, None]).sum(0)
        for z, ell in zip(zs, lin, strict=True)
    )
    theta = np.linalg.solve(szz, szl)
    assert list(res.theta) == pytest.approx(list(theta), rel=1e-8)
    zbar = np.concatenate(zs).mean(0)
    adj = [
        c.sum() / m.sum() - theta @ (z.mean(0) - zbar)
        for (c, _, _, m), z in zip(data, zs, strict=True)
    ]
    se = [
        np.sqrt(np.var(ell - z @ theta, ddof=1) / len(ell)) for ell, z in zip(lin, zs, strict=True)
    ]
    assert res.variants[0].adjusted_mean == pytest.approx(adj[0], rel=1e-9)
    assert res.comparisons[0].adjusted_diff == pytest.approx(adj[1] - adj[0], rel=1e-8)
    assert res.comparisons[0].adjusted_se == pytest.approx(np.hypot(*se), rel=1e-8)
    assert (
        res.comparisons[0].ci_narrower_by is not None and res.comparisons[0].ci_narrower_by > 0.01
    )
