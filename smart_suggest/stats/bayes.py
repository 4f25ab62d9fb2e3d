"""Bayesian view of two proportions: Beta-Binomial posteriors.

With a Beta(a0, b0) prior (default Beta(1, 1), uniform) and x successes in n trials the
posterior is Beta(a0 + x, b0 + n - x).  Reported:

* ``prob_b_better`` = P(p_B > p_A);
* ``expected_loss_b`` = E[max(p_A - p_B, 0)]: the rate you expect to lose by shipping B
  if A is in fact better (the "risk" of shipping B); ``expected_loss_a`` likewise for
  keeping A.

How P(p_B > p_A) is computed (``method``):

* ``"exact_sum"`` when the parameters are whole numbers (always, with the default prior)
  and the shortest of four equivalent finite sums has <= 200,000 terms.  The sum is the
  closed form (e.g. Evan Miller's) for integer alpha_B:

      P(p_B > p_A) = sum_{i=0}^{alpha_B - 1}
          B(alpha_A + i, beta_A + beta_B) / ((beta_B + i) B(1 + i, beta_B) B(alpha_A, beta_A))

  evaluated in log space with ``scipy.special.betaln``.  By the symmetries
  P(B > A) = 1 - P(A > B) and p -> 1 - p it can instead run over alpha_A, beta_A or
  beta_B terms; the shortest is used, so a rare event with 10^8 trials costs a few terms.
  All terms are positive, so there is no cancellation.
* ``"numerical_integration"`` otherwise (every arm has > 200,000 successes *and*
  failures, or a non-integer prior): adaptive quadrature (``scipy.integrate.quad``) of
  f_A(x) * P(p_B > x) over mean_A +- 40 posterior SDs, where all the mass lies.

The expected loss, with the exact sums, uses the size-biased identity
E[p_A 1{p_A > p_B}] = mean_A * P(A' > B) with A' ~ Beta(alpha_A + 1, beta_A), so
E[max(p_A - p_B, 0)] = mean_A P(A' > B) - mean_B P(A > B').  With integration it is
the integral of F_B(y) (1 - F_A(y)) dy, which has no cancellation (the size-biased
difference of two nearly equal products would lose digits there).  Normal
approximations are not used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special as _sp

from ._common import Result, check_count
from .proportions import _as_count

__all__ = ["EXACT_MAX_TERMS", "BetaBinomialResult", "beta_binomial", "prob_greater"]

EXACT_MAX_TERMS = 200_000


def _quad(*args: Any, **kwargs: Any) -> tuple[float, float]:
    # scipy.integrate loads only for a posterior without a closed form.
    from scipy import integrate

    result: tuple[float, float] = integrate.quad(*args, **kwargs)
    return result


def _sum_b_gt_a(aa: int, ba: int, ab: int, bb: int) -> float:
    """P(X_B > X_A), X ~ Beta, as the finite sum over alpha_B terms (alpha_B integer)."""
    i = np.arange(ab, dtype=np.float64)
    log_terms = (
        _sp.betaln(aa + i, ba + bb) - np.log(bb + i) - _sp.betaln(1.0 + i, bb) - _sp.betaln(aa, ba)
    )
    return float(np.exp(log_terms).sum())


def _quad_b_gt_a(aa: float, ba: float, ab: float, bb: float) -> float:
    """P(X_B > X_A) = integral of f_A(x) * P(X_B > x) dx, numerically.

    The integrand uses scipy.special (log-beta density, regularised incomplete beta)
    rather than frozen scipy.stats objects, which cost ~50us per evaluation.
    """
    log_norm = float(_sp.betaln(aa, ba))

    def integrand(x: float) -> float:
        if x <= 0.0 or x >= 1.0:
            return 0.0
        log_pdf = (aa - 1.0) * math.log(x) + (ba - 1.0) * math.log1p(-x) - log_norm
        return math.exp(log_pdf) * float(_sp.betaincc(ab, bb, x))

    mean = aa / (aa + ba)
    sd = math.sqrt(aa * ba / ((aa + ba) * (aa + ba) * (aa + ba + 1.0)))
    lo, hi = max(0.0, mean - 40.0 * sd), min(1.0, mean + 40.0 * sd)
    mb = ab / (ab + bb)
    pts = [mb] if lo < mb < hi else None
    val, _err = _quad(integrand, lo, hi, points=pts, limit=500, epsabs=1e-12, epsrel=1e-9)
    return min(1.0, max(0.0, float(val)))


def _quad_loss(aa: float, ba: float, ab: float, bb: float) -> float:
    """E[max(X_A - X_B, 0)] = integral of F_B(y) * (1 - F_A(y)) dy, numerically.

    Follows from (A - B)+ = integral of 1{B < y < A} dy; both factors lie in [0, 1], so,
    unlike the size-biased difference, nothing cancels.
    """

    def integrand(y: float) -> float:
        return float(_sp.betainc(ab, bb, y)) * float(_sp.betaincc(aa, ba, y))

    ma, mb = aa / (aa + ba), ab / (ab + bb)
    sa = math.sqrt(aa * ba / ((aa + ba) * (aa + ba) * (aa + ba + 1.0)))
    sb = math.sqrt(ab * bb / ((ab + bb) * (ab + bb) * (ab + bb + 1.0)))
    width = 40.0 * max(sa, sb)
    lo, hi = max(0.0, min(ma, mb) - width), min(1.0, max(ma, mb) + width)
    pts = sorted({p for p in (ma, mb) if lo < p < hi}) or None
    val, _err = _quad(integrand, lo, hi, points=pts, limit=500, epsabs=1e-15, epsrel=1e-10)
    return max(0.0, float(val))


def _is_int(v: float) -> bool:
    return float(v).is_integer()


def prob_greater(aa: float, ba: float, ab: float, bb: float) -> tuple[float, str]:
    """P(X_B > X_A) for X_A ~ Beta(aa, ba), X_B ~ Beta(ab, bb), and the method used."""
    if all(_is_int(v) for v in (aa, ba, ab, bb)):
        a_a, b_a, a_b, b_b = int(aa), int(ba), int(ab), int(bb)
        # Four equivalent sums; each is exact, pick the one with fewest terms.
        options: list[tuple[int, Callable[[], float]]] = [
            (a_b, lambda: _sum_b_gt_a(a_a, b_a, a_b, b_b)),
            (a_a, lambda: 1.0 - _sum_b_gt_a(a_b, b_b, a_a, b_a)),
            (b_a, lambda: _sum_b_gt_a(b_b, a_b, b_a, a_a)),
            (b_b, lambda: 1.0 - _sum_b_gt_a(b_a, a_a, b_b, a_b)),
        ]
        terms, fn = min(options, key=lambda o: o[0])
        if terms <= EXACT_MAX_TERMS:
            return min(1.0, max(0.0, fn())), "exact_sum"
    return _quad_b_gt_a(aa, ba, ab, bb), "numerical_integration"


@dataclass(frozen=True, slots=True)
class BetaBinomialResult(Result):
    """Posterior comparison of two rates (B versus A)."""

    successes_a: int
    n_a: int
    successes_b: int
    n_b: int
    prior_alpha: float
    prior_beta: float
    alpha_a: float
    beta_a: float
    alpha_b: float
    beta_b: float
    mean_a: float
    mean_b: float
    prob_b_better: float
    expected_loss_b: float
    expected_loss_a: float
    method: str
    note: str


def beta_binomial(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
) -> BetaBinomialResult:
    """Beta-Binomial posteriors, P(B > A) and the expected loss of shipping B or keeping A."""
    xa, na = _as_count("successes_a", successes_a), _as_count("n_a", n_a)
    xb, nb = _as_count("successes_b", successes_b), _as_count("n_b", n_b)
    if xa > na or xb > nb:
        raise ValueError("successes cannot exceed n")
    for name, v in (("prior_alpha", prior_alpha), ("prior_beta", prior_beta)):
        check_count(name, v)
        if v == 0:
            raise ValueError(f"{name} must be > 0 (an improper prior can give no posterior)")
    aa, ba = prior_alpha + xa, prior_beta + na - xa
    ab, bb = prior_alpha + xb, prior_beta + nb - xb
    mean_a, mean_b = aa / (aa + ba), ab / (ab + bb)
    p_b, method = prob_greater(aa, ba, ab, bb)
    if method == "exact_sum":
        # Size-biased identity (module docstring): E[(pA - pB)+] = mA P(A' > B) - mB P(A > B').
        p_a1_gt_b = 1.0 - prob_greater(aa + 1, ba, ab, bb)[0]
        p_a_gt_b1 = 1.0 - prob_greater(aa, ba, ab + 1, bb)[0]
        loss_b = max(0.0, mean_a * p_a1_gt_b - mean_b * p_a_gt_b1)
    else:
        loss_b = _quad_loss(aa, ba, ab, bb)
    # E[(pB - pA)+] - E[(pA - pB)+] = E[pB - pA].
    loss_a = max(0.0, loss_b + (mean_b - mean_a))
    empty = [k for k, n in (("A", na), ("B", nb)) if n == 0]
    note = (
        ("no data in arm " + " or ".join(empty) + ": its posterior is the prior") if empty else ""
    )
    return BetaBinomialResult(
        successes_a=xa,
        n_a=na,
        successes_b=xb,
        n_b=nb,
        prior_alpha=float(prior_alpha),
        prior_beta=float(prior_beta),
        alpha_a=float(aa),
        beta_a=float(ba),
        alpha_b=float(ab),
        beta_b=float(bb),
        mean_a=mean_a,
        mean_b=mean_b,
        prob_b_better=p_b,
        expected_loss_b=loss_b,
        expected_loss_a=loss_a,
        method=method,
        note=note,
    )
