"""Calibration by simulation (seeded, vectorised sufficient statistics).

Monte-Carlo error: with 2,000 simulated experiments the standard error of a rejection
rate near 0.05 is sqrt(0.05 * 0.95 / 2000) = 0.0049, so the 3.5%..6.5% band is about
+-3 SE.  The seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest

from smart_suggest.stats import (
    RatioSums,
    achieved_power,
    default_tau2,
    ratio_test,
    sample_size_proportions,
    sequential_proportions,
    two_proportion_test,
    welch_t_test_from_sums,
)

SIMS = 2000
ALPHA = 0.05


def test_aa_false_positive_rate_proportions() -> None:
    rng = np.random.default_rng(101)
    n = 5000
    xa = rng.binomial(n, 0.1, SIMS)
    xb = rng.binomial(n, 0.1, SIMS)
    fp = np.mean([two_proportion_test(a, n, b, n).significant for a, b in zip(xa, xb, strict=True)])
    assert 0.035 <= fp <= 0.065


def test_aa_false_positive_rate_welch_on_skewed_engagement() -> None:
    rng = np.random.default_rng(102)
    n = 300
    a = rng.exponential(30.0, (SIMS, n))  # engagement seconds: heavily skewed
    b = rng.exponential(30.0, (SIMS, n))
    sa, sb = a.sum(1), b.sum(1)
    qa, qb = (a * a).sum(1), (b * b).sum(1)
    fp = np.mean(
        [welch_t_test_from_sums(n, sa[i], qa[i], n, sb[i], qb[i]).significant for i in range(SIMS)]
    )
    assert 0.035 <= fp <= 0.065


def _clustered_arm(rng: np.random.Generator, users: int) -> tuple[np.ndarray, ...]:
    y = 1 + rng.poisson(10, (SIMS, users))  # impressions per user
    p = rng.beta(1, 9, (SIMS, users))  # each user has their own CTR (mean 0.1)
    x = rng.binomial(y, p)
    return x, y


def test_aa_false_positive_rate_ratio_metric_vs_naive() -> None:
    """User-level delta method stays calibrated; treating impressions as independent
    trials does not (design effect ~ 1 + (m - 1) * rho ~ 1.9 here)."""
    rng = np.random.default_rng(103)
    users = 400
    xa, ya = _clustered_arm(rng, users)
    xb, yb = _clustered_arm(rng, users)

    def sums(x: np.ndarray, y: np.ndarray, i: int) -> RatioSums:
        xi, yi = x[i].astype(float), y[i].astype(float)
        return RatioSums(
            users, xi.sum(), yi.sum(), (xi * xi).sum(), (yi * yi).sum(), (xi * yi).sum()
        )

    fp_ratio = np.mean(
        [ratio_test(sums(xa, ya, i), sums(xb, yb, i)).significant for i in range(SIMS)]
    )
    ca, cb, ia, ib = xa.sum(1), xb.sum(1), ya.sum(1), yb.sum(1)
    fp_naive = np.mean(
        [two_proportion_test(ca[i], ia[i], cb[i], ib[i]).significant for i in range(SIMS)]
    )
    assert 0.035 <= fp_ratio <= 0.065
    assert fp_naive > 0.10


def _daily_looks(
    rng: np.random.Generator, p_a: float, p_b: float, per_day: int, days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = per_day * np.arange(1, days + 1)
    xa = np.cumsum(rng.binomial(per_day, p_a, (SIMS, days)), axis=1)
    xb = np.cumsum(rng.binomial(per_day, p_b, (SIMS, days)), axis=1)
    return n, xa, xb


def test_peeking_inflates_fixed_horizon_but_not_sequential() -> None:
    """14 daily looks, stop at the first significant one.

    The fixed-horizon chi-square is only valid for a single look: peeking inflates the
    false-positive rate (~0.2 here).  The mSPRT always-valid p-value stays below alpha
    (Ville's inequality); we allow +0.01 (2 MC SE) of slack, though it is typically far
    below 0.05 with discrete daily looks.
    """
    rng = np.random.default_rng(104)
    n, xa, xb = _daily_looks(rng, 0.1, 0.1, per_day=1000, days=14)
    tau2 = default_tau2(0.1)  # fixed from the (known) pre-experiment baseline
    fixed_hits = seq_hits = 0
    for i in range(SIMS):
        for d in range(14):
            if two_proportion_test(int(xa[i, d]), int(n[d]), int(xb[i, d]), int(n[d])).significant:
                fixed_hits += 1
                break
        prev = None
        for d in range(14):
            prev = sequential_proportions(
                int(xa[i, d]), int(n[d]), int(xb[i, d]), int(n[d]), tau2, previous=prev
            )
            if prev.significant:
                seq_hits += 1
                break
    fixed_rate, seq_rate = fixed_hits / SIMS, seq_hits / SIMS
    assert fixed_rate > 0.08
    assert seq_rate <= ALPHA + 0.01


def test_confidence_sequence_covers_true_effect_at_every_look() -> None:
    rng = np.random.default_rng(105)
    n, xa, xb = _daily_looks(rng, 0.10, 0.11, per_day=1000, days=14)
    tau2 = default_tau2(0.1)
    misses = detected = 0
    for i in range(SIMS):
        prev = None
        for d in range(14):
            prev = sequential_proportions(
                int(xa[i, d]), int(n[d]), int(xb[i, d]), int(n[d]), tau2, previous=prev
            )
            assert prev.ci is not None
            if not prev.ci.contains(0.01):
                misses += 1
                break
        detected += bool(prev is not None and prev.significant)
    assert misses / SIMS <= ALPHA + 0.01
    assert detected / SIMS > 0.3  # and it does find a real 10% lift reasonably often


@pytest.mark.parametrize(("n_factor", "seed"), [(1.0, 106), (0.4, 107)])
def test_empirical_power_matches_calculator(n_factor: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p1, p2 = 0.10, 0.11
    n = int(sample_size_proportions(p1, p2 - p1).n_per_variant * n_factor)
    predicted = achieved_power(p1, p2, n, n).power
    sims = 3000
    xa = rng.binomial(n, p1, sims)
    xb = rng.binomial(n, p2, sims)
    hits = np.mean(
        [two_proportion_test(a, n, b, n).significant for a, b in zip(xa, xb, strict=True)]
    )
    if n_factor == 1.0:
        assert predicted == pytest.approx(0.8, abs=2e-3)
    assert abs(hits - predicted) < 0.03
