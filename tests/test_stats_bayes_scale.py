"""P(B > A) and the expected loss at every scale, against mpmath.

Once the large-count path integrated numerically in [0, 1] and gave 0.128 instead of
0.772 at 10^15 trials (with an IntegrationWarning on stderr), and the exact sums lost
~1e-6 relative for rare events in 10^9 trials through scipy's betaln.
"""

from __future__ import annotations

import math
import warnings

import mpmath
import pytest
from scipy.special import ndtr

from smart_suggest.stats import beta_binomial
from smart_suggest.stats.bayes import _betaln, prob_greater


def _exact_reference(aa: int, ba: int, ab: int, bb: int) -> float:
    """P(B > A): the closed-form sum over alpha_B terms, in 30-digit arithmetic."""
    return float(_exact_mp(aa, ba, ab, bb))


def _exact_mp(aa: int, ba: int, ab: int, bb: int) -> object:
    with mpmath.workdps(30):
        lg = mpmath.loggamma

        def lbeta(x: object, y: object) -> object:
            return lg(x) + lg(y) - lg(mpmath.mpf(x) + y)

        base = lbeta(aa, ba)
        terms = [
            mpmath.exp(lbeta(aa + i, ba + bb) - mpmath.log(bb + i) - lbeta(1 + i, bb) - base)
            for i in range(ab)
        ]
        return +mpmath.fsum(terms)


@pytest.mark.parametrize(
    ("xa", "na", "xb", "nb"),
    [
        (3, 10**9, 8, 10**9),  # rare events, a billion trials
        (1562, 10**9, 1572, 1_149_150_601),  # once 4.7e-6 off (betaln)
        (30, 10**12, 45, 10**12),
        (0, 10**15, 2, 10**15),
        (7, 12, 9, 14),  # small
        (3000, 10_000, 3100, 10_000),  # the grid's smallest counts
        (2999, 3998, 3050, 4000),  # skewed posteriors near the grid's edge
    ],
)
def test_prob_b_better_matches_mpmath(xa: int, na: int, xb: int, nb: int) -> None:
    aa, ba, ab, bb = xa + 1, na - xa + 1, xb + 1, nb - xb + 1
    # The reference sums over whichever of alpha_B and alpha_A is smaller.
    small_b = ab <= aa
    want = _exact_reference(aa, ba, ab, bb) if small_b else 1 - _exact_reference(ab, bb, aa, ba)
    got, _method = prob_greater(aa, ba, ab, bb)
    assert got == pytest.approx(want, abs=1e-9, rel=1e-9)


def test_huge_counts_no_warning_and_the_normal_limit() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an IntegrationWarning would fail here
        for n, xa, xb in [(10**15, 10**14, 10**14 + 10**7), (10**12, 10**11, 10**11 + 750_000)]:
            r = beta_binomial(xa, n, xb, n)
            assert r.method == "posterior_grid"
            a1, b1, a2, b2 = xa + 1, n - xa + 1, xb + 1, n - xb + 1
            v1 = a1 * b1 / ((a1 + b1) ** 2 * (a1 + b1 + 1))
            v2 = a2 * b2 / ((a2 + b2) ** 2 * (a2 + b2 + 1))
            z = (r.mean_b - r.mean_a) / math.sqrt(v1 + v2)
            # Skewness here is ~1e-7: the normal limit is within 1e-8 of the answer.
            assert r.prob_b_better == pytest.approx(float(ndtr(z)), abs=1e-8)
    assert beta_binomial(10**14, 10**15, 10**14 + 10**7, 10**15).prob_b_better == pytest.approx(
        0.77197, abs=1e-5
    )


def test_expected_loss_on_the_grid_matches_mpmath() -> None:
    xa, na, xb, nb = 3000, 10_000, 3100, 10_000
    r = beta_binomial(xa, na, xb, nb)
    assert r.method == "posterior_grid"
    aa, ba, ab, bb = xa + 1, na - xa + 1, xb + 1, nb - xb + 1
    # E[(A - B)+] = mean_A P(A' > B) - mean_B P(A > B') with A' ~ Beta(aa + 1, ba) and
    # B' ~ Beta(ab + 1, bb): a small difference of two large numbers, so all in mpmath.
    with mpmath.workdps(30):
        ma = mpmath.mpf(aa) / (aa + ba)
        mb = mpmath.mpf(ab) / (ab + bb)
        p_a1_gt_b = 1 - _exact_mp(aa + 1, ba, ab, bb)
        p_a_gt_b1 = 1 - _exact_mp(aa, ba, ab + 1, bb)
        want = float(ma * p_a1_gt_b - mb * p_a_gt_b1)
    assert r.expected_loss_b == pytest.approx(want, rel=1e-9, abs=1e-13)


@pytest.mark.parametrize(("a", "b"), [(5, 1e9), (1500.5, 2e9), (3e5, 7e14), (1e6, 1e6), (2, 3)])
def test_betaln_matches_mpmath(a: float, b: float) -> None:
    with mpmath.workdps(40):
        want = mpmath.loggamma(a) + mpmath.loggamma(b) - mpmath.loggamma(mpmath.mpf(a) + b)
    got = float(_betaln(a, b))
    assert got == pytest.approx(float(want), rel=1e-14, abs=1e-12)


def test_user_level_bayes_is_calibrated_on_clustered_aa_data() -> None:
    """The per-impression P(B > A) called 25-63% of clustered A/A runs decisive; the
    user-level view (the headline's unit) is decisive about as often as chance says."""
    import numpy as np

    from smart_suggest.stats import RatioSums, normal_posterior, ratio_test

    rng = np.random.default_rng(7)

    def arm(n: int) -> RatioSums:
        imps = rng.geometric(1 / 12, n).astype(float)  # heavy users see many items
        ctr = rng.beta(2, 6, n)  # and users differ: impressions of one user are correlated
        clicks = rng.binomial(imps.astype(int), ctr).astype(float)
        return RatioSums(
            n, clicks.sum(), imps.sum(), (clicks**2).sum(), (imps**2).sum(), (clicks * imps).sum()
        )

    runs, user_decisive, imp_decisive = 400, 0, 0
    for _ in range(runs):
        a, b = arm(500), arm(500)
        t = ratio_test(a, b)
        p_user = normal_posterior(t.ratio_a, t.ratio_b, t.se_diff).prob_b_better
        p_imp = beta_binomial(int(a.sum_x), int(a.sum_y), int(b.sum_x), int(b.sum_y)).prob_b_better
        user_decisive += not 0.025 < p_user < 0.975
        imp_decisive += not 0.025 < p_imp < 0.975
    # 5% expected; 400 runs give a binomial SD of ~1.1 points.
    assert 0.015 <= user_decisive / runs <= 0.09
    assert imp_decisive / runs > 0.15  # what the old headline did on this data
