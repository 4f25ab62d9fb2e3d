"""mSPRT (always-valid p-values, confidence sequences) and Beta-Binomial posteriors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, special, stats

import smart_suggest.stats.bayes as bayes_mod
from smart_suggest.stats import (
    RatioSums,
    beta_binomial,
    default_tau2,
    msprt,
    prob_greater,
    sequential_means,
    sequential_proportions,
    sequential_ratio,
)

# --- mSPRT -----------------------------------------------------------------------------


def mixture_lr_by_quadrature(diff: float, var: float, tau2: float) -> float:
    """Lambda = integral of N(diff; theta, V) / N(diff; 0, V) dN(theta; 0, tau2)."""
    sd, tau = math.sqrt(var), math.sqrt(tau2)
    f0 = stats.norm.pdf(diff, 0.0, sd)

    def integrand(theta: float) -> float:
        return float(stats.norm.pdf(diff, theta, sd) * stats.norm.pdf(theta, 0.0, tau))

    lo, hi = min(-12 * tau, diff - 12 * sd), max(12 * tau, diff + 12 * sd)
    val, _ = integrate.quad(integrand, lo, hi, points=[0.0, diff], limit=200, epsrel=1e-12)
    return float(val / f0)


@pytest.mark.parametrize(
    ("diff", "var", "tau2"),
    [(0.0, 1e-4, 1e-4), (0.01, 1e-5, 1e-4), (-0.02, 4e-5, 1e-4), (0.5, 0.04, 1.0)],
)
def test_msprt_closed_form_matches_numerical_mixture(diff: float, var: float, tau2: float) -> None:
    r = msprt(diff, var, tau2)
    assert math.exp(r.log_lr) == pytest.approx(mixture_lr_by_quadrature(diff, var, tau2), rel=1e-8)
    assert r.p_value_look == pytest.approx(min(1.0, math.exp(-r.log_lr)), rel=1e-12)


def test_confidence_sequence_boundary_has_lr_one_over_alpha() -> None:
    rng = np.random.default_rng(41)
    for _ in range(500):
        diff, var, tau2 = rng.normal(0, 0.02), 10 ** rng.uniform(-7, -3), 10 ** rng.uniform(-6, -2)
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        r = msprt(diff, var, tau2, alpha)
        assert r.ci_look is not None
        for bound in (r.ci_look.low, r.ci_look.high):
            # Lambda(theta0 = bound) = 1/alpha: shift the estimate by the null value.
            edge = msprt(diff - bound, var, tau2, alpha)
            assert edge.log_lr == pytest.approx(math.log(1 / alpha), rel=1e-9)
        # The p-value and the interval never disagree.
        if abs(r.p_value_look - alpha) > 1e-12:
            assert (r.p_value_look < alpha) == (not r.ci_look.contains(0.0))


def test_running_min_and_intersection_over_looks() -> None:
    rng = np.random.default_rng(42)
    tau2 = default_tau2(0.1)
    xa = xb = na = nb = 0
    prev = None
    for _ in range(30):
        na += 400
        nb += 400
        xa += int(rng.binomial(400, 0.10))
        xb += int(rng.binomial(400, 0.11))
        cur = sequential_proportions(xa, na, xb, nb, tau2, previous=prev)
        if prev is not None:
            assert cur.p_value <= prev.p_value
            assert cur.ci is not None and prev.ci is not None
            assert prev.ci.low <= cur.ci.low and cur.ci.high <= prev.ci.high
        prev = cur
    assert prev is not None and prev.looks == 30


def test_a_proportion_difference_interval_stays_within_minus_one_and_one() -> None:
    """Few conversions and a tau2 meant for a 5% lift: the mixture interval is several
    units wide; a difference of proportions cannot leave [-1, 1], so it is cut there."""
    pa, pb = 1 / 23, 7 / 27
    var = pa * (1 - pa) / 23 + pb * (1 - pb) / 27
    wide = msprt(pb - pa, var, 1.89e-5)
    assert wide.ci is not None and wide.ci.low < -1 and wide.ci.high > 1
    r = sequential_proportions(1, 23, 7, 27, 1.89e-5)
    assert r.ci is not None and r.ci_look is not None
    assert (r.ci.low, r.ci.high) == (-1.0, 1.0) and r.ci.level == wide.ci.level
    assert r.p_value == wide.p_value and r.diff == wide.diff
    # Later looks intersect with the cut interval; a narrow one is left as it is.
    r2 = sequential_proportions(100, 2300, 700, 2700, 1.89e-5, previous=r)
    assert r2.ci is not None and -1 < r2.ci.low < r2.ci.high < 1
    narrow = msprt(0.7 / 2.7 - 0.1 / 2.3, r2.variance, 1.89e-5)
    assert narrow.ci is not None and r2.ci.low == narrow.ci.low


def test_sequential_degenerate_looks_are_skipped() -> None:
    tau2 = default_tau2(0.1)
    r = sequential_proportions(0, 0, 0, 0, tau2)
    assert r.p_value == 1.0 and r.ci is None and "skipped" in r.note
    r2 = sequential_proportions(0, 50, 0, 50, tau2, previous=r)
    assert r2.looks == 2 and r2.p_value == 1.0
    m = sequential_means(1, 3.0, 0.0, 1, 4.0, 0.0, tau2)
    assert m.p_value == 1.0
    z = sequential_ratio(RatioSums(0, 0, 0, 0, 0, 0), RatioSums(0, 0, 0, 0, 0, 0), tau2)
    assert z.p_value == 1.0
    for res in (r, r2, m, z):
        json.dumps(res.to_dict(), allow_nan=False)
    with pytest.raises(ValueError):
        msprt(0.1, 0.01, 0.0)
    with pytest.raises(ValueError):
        default_tau2(0.0)


def test_overwhelming_evidence_gives_zero_p_not_overflow() -> None:
    r = msprt(0.5, 1e-12, 1e-4)
    assert r.p_value == 0.0 and r.significant
    tiny = msprt(0.0, 1e-300, 1.0)
    assert tiny.p_value == 1.0
    json.dumps(r.to_dict(), allow_nan=False)
    json.dumps(tiny.to_dict(), allow_nan=False)


# --- Beta-Binomial ---------------------------------------------------------------------


def _pdf(x: float, a: float, b: float) -> float:
    # scipy.special directly: scipy.stats' frozen-distribution overhead would make the
    # thousands of quadrature evaluations slow.
    if x <= 0.0 or x >= 1.0:
        return 0.0
    return math.exp((a - 1) * math.log(x) + (b - 1) * math.log1p(-x) - special.betaln(a, b))


def prob_by_quadrature(aa: float, ba: float, ab: float, bb: float) -> float:
    """P(X_B > X_A) = integral f_A(x) (1 - F_B(x)) dx, an independent reference."""
    m = aa / (aa + ba)
    s = math.sqrt(aa * ba / ((aa + ba) ** 2 * (aa + ba + 1)))
    lo, hi = max(0.0, m - 30 * s), min(1.0, m + 30 * s)
    mb = ab / (ab + bb)
    val, _ = integrate.quad(
        lambda x: _pdf(x, aa, ba) * float(special.betaincc(ab, bb, x)),
        lo,
        hi,
        points=[mb] if lo < mb < hi else None,
        limit=300,
        epsabs=1e-14,
        epsrel=1e-12,
    )
    return float(val)


def loss_by_quadrature(aa: float, ba: float, ab: float, bb: float) -> float:
    """E[max(p_A - p_B, 0)] = integral f_A(x) (x F_B(x) - m_B F_{B+1}(x)) dx."""
    mb = ab / (ab + bb)

    def integrand(x: float) -> float:
        cdf_b = float(special.betainc(ab, bb, x))
        cdf_b1 = float(special.betainc(ab + 1, bb, x))
        return _pdf(x, aa, ba) * (x * cdf_b - mb * cdf_b1)

    val, _ = integrate.quad(
        integrand,
        0.0,
        1.0,
        points=[aa / (aa + ba), mb],
        limit=300,
        epsabs=1e-15,
        epsrel=1e-12,
    )
    return float(val)


def test_prob_b_better_and_loss_match_quadrature() -> None:
    rng = np.random.default_rng(43)
    for _ in range(60):
        na, nb = (int(v) for v in 10 ** rng.uniform(0, 4, 2))
        p = rng.uniform(0.01, 0.99)
        xa, xb = int(rng.binomial(na, p)), int(rng.binomial(nb, min(1.0, p * rng.choice([1, 1.1]))))
        xb = min(xb, nb)
        r = beta_binomial(xa, na, xb, nb)
        assert r.method in ("exact_sum", "posterior_grid")
        want = prob_by_quadrature(xa + 1, na - xa + 1, xb + 1, nb - xb + 1)
        assert r.prob_b_better == pytest.approx(want, abs=1e-9)
        loss = loss_by_quadrature(xa + 1, na - xa + 1, xb + 1, nb - xb + 1)
        assert r.expected_loss_b == pytest.approx(loss, abs=1e-10)
        assert r.expected_loss_a - r.expected_loss_b == pytest.approx(r.mean_b - r.mean_a)


def test_exact_sum_and_integration_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [(317, 685, 421, 581), (5001, 95001, 5101, 94901), (3, 9000, 9, 8994), (40, 2, 38, 4)]
    exact = [prob_greater(*c) for c in cases]
    counts = [(a - 1, a + b - 2, c - 1, c + d - 2) for a, b, c, d in cases]
    exact_bb = [beta_binomial(*c) for c in counts]
    monkeypatch.setattr(bayes_mod, "EXACT_MAX_TERMS", 0)
    quad = [prob_greater(*c) for c in cases]
    quad_bb = [beta_binomial(*c) for c in counts]
    for (pe, me), (pq, mq) in zip(exact, quad, strict=True):
        # Every count >= 1,000 goes to the grid either way (5001, ...): the other three
        # switch from the exact sum to integration.
        assert (me, mq) in (("exact_sum", "numerical_integration"), ("posterior_grid",) * 2)
        assert pe == pytest.approx(pq, abs=1e-9)
    for e, q in zip(exact_bb, quad_bb, strict=True):
        assert q.method in ("numerical_integration", "posterior_grid")
        assert e.expected_loss_b == pytest.approx(q.expected_loss_b, rel=1e-7, abs=1e-13)
        assert e.expected_loss_a == pytest.approx(q.expected_loss_a, rel=1e-7, abs=1e-13)


def test_symmetry_and_monte_carlo() -> None:
    p_ba = prob_greater(101, 901, 121, 881)[0]
    p_ab = prob_greater(121, 881, 101, 901)[0]
    assert p_ba + p_ab == pytest.approx(1.0, abs=1e-12)
    rng = np.random.default_rng(44)
    a, b = rng.beta(101, 901, 400_000), rng.beta(121, 881, 400_000)
    assert p_ba == pytest.approx((b > a).mean(), abs=0.003)
    r = beta_binomial(100, 1000, 120, 1000)
    assert r.expected_loss_b == pytest.approx(np.maximum(a - b, 0).mean(), rel=0.05)


def test_large_counts_use_the_grid_and_match_normal_limit() -> None:
    r = beta_binomial(5_000_000, 100_000_000, 5_010_000, 100_000_000)
    assert r.method == "posterior_grid"
    sd = math.sqrt(r.mean_a * (1 - r.mean_a) / 1e8 + r.mean_b * (1 - r.mean_b) / 1e8)
    z = (r.mean_b - r.mean_a) / sd
    assert r.prob_b_better == pytest.approx(stats.norm.cdf(z), abs=1e-3)
    # Normal-limit loss E[(A - B)+] = s phi(z) - mu Phi(-z) with mu = mB - mA > 0.
    mu = r.mean_b - r.mean_a
    normal_loss = sd * stats.norm.pdf(z) - mu * stats.norm.sf(z)
    assert r.expected_loss_b == pytest.approx(normal_loss, rel=0.02)
    rare = beta_binomial(50, 100_000_000, 70, 100_000_000)  # few terms: still exact
    assert rare.method == "exact_sum" and 0.9 < rare.prob_b_better < 0.99


@pytest.mark.parametrize(
    "args", [(0, 0, 0, 0), (0, 10, 0, 10), (10, 10, 10, 10), (0, 1, 1, 1), (0, 0, 5, 9)]
)
def test_beta_binomial_degenerate(args: tuple[int, int, int, int]) -> None:
    r = beta_binomial(*args)
    json.dumps(r.to_dict(), allow_nan=False)
    assert 0.0 <= r.prob_b_better <= 1.0 and r.expected_loss_b >= 0.0
    if args[:2] == args[2:]:
        assert r.prob_b_better == pytest.approx(0.5, abs=1e-12)
