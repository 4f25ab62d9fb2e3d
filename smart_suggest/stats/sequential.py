"""Always-valid inference: the mixture sequential probability ratio test (mSPRT).

Following Johari, Koomen, Pekelis & Walsh, "Always Valid Inference: Continuous
Monitoring of A/B Tests" (Operations Research 2022; the engine behind Optimizely's Stats
Engine, and the same normal-mixture idea Eppo and Statsig use).  At each look the
difference estimate theta_hat (B - A) is treated as N(theta, V), V being its estimated
variance at that look.  Mixing the likelihood ratio over a normal prior
theta ~ N(theta0, tau^2) gives the closed form

    Lambda(theta0) = sqrt(V / (V + tau^2)) * exp(tau^2 (theta_hat - theta0)^2 / (2 V (V + tau^2)))

which is a non-negative martingale under H0: theta = theta0, so by Ville's inequality
P(sup_n Lambda_n >= 1/alpha) <= alpha however often one looks.  Hence

* always-valid p-value: p_n = min(p_{n-1}, 1 / Lambda_n(0));
* confidence sequence (Robbins' normal-mixture boundary; Howard, Ramdas, McAuliffe &
  Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences"):

      theta_hat +- sqrt( (2 V (V + tau^2) / tau^2) * (log(1/alpha) + log((V + tau^2)/V) / 2) )

  intersected with the previous looks' intervals.

p_n <= alpha exactly when 0 is outside that look's interval, so the two never disagree.

Mixing variance tau^2: any fixed tau^2 > 0 gives validity; it only decides which effect
sizes the test detects fastest (those of order tau; a tau far too large or too small
delays detection).  Johari et al. recommend matching tau to the size of effects you
expect; we default to tau = 10% of the pre-experiment baseline (``default_tau2``), i.e.
tau^2 = (0.1 * baseline)^2 on the absolute-difference scale.  **Fix tau^2 before the
experiment starts** (from the historical baseline); recomputing it from the running data
at every look would make it data-dependent and void the guarantee.  V is a plug-in
estimate, so the guarantee is asymptotic (it holds once each arm has a few hundred
users; the simulation test checks it for CTR-like rates).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace

from ._common import Interval, Result, check_alpha, check_count, check_finite
from .continuous import welch_t_test
from .proportions import _as_count
from .ratio import RatioSums, ratio_test

__all__ = [
    "DEFAULT_RELATIVE_TAU",
    "SequentialResult",
    "default_tau2",
    "msprt",
    "sequential_means",
    "sequential_proportions",
    "sequential_ratio",
]

DEFAULT_RELATIVE_TAU = 0.1


def default_tau2(baseline: float, relative_effect: float = DEFAULT_RELATIVE_TAU) -> float:
    """tau^2 = (relative_effect * |baseline|)^2: the prior SD of the absolute difference."""
    check_finite("baseline", baseline)
    check_finite("relative_effect", relative_effect)
    tau2 = (relative_effect * baseline) ** 2
    if tau2 <= 0:
        raise ValueError("need a non-zero baseline and relative_effect to derive tau^2")
    return tau2


@dataclass(frozen=True, slots=True)
class SequentialResult(Result):
    """One look of the mSPRT.

    ``p_value`` and ``ci`` are always valid (running min / running intersection over all
    looks passed through ``previous``); ``p_value_look`` and ``ci_look`` use this look
    only.  ``ci`` is None until a look has a usable variance.
    """

    diff: float
    variance: float
    tau2: float
    alpha: float
    log_lr: float
    p_value_look: float
    p_value: float
    ci_look: Interval | None
    ci: Interval | None
    significant: bool
    looks: int
    note: str


def msprt(
    diff: float,
    variance: float,
    tau2: float,
    alpha: float = 0.05,
    previous: SequentialResult | None = None,
) -> SequentialResult:
    """One mSPRT look at a difference estimate with variance ``variance``."""
    check_alpha(alpha)
    check_finite("diff", diff)
    check_count("variance", variance)
    check_count("tau2", tau2)
    if tau2 == 0:
        raise ValueError("tau2 must be > 0 (a point prior gives no test)")
    prev_p = previous.p_value if previous is not None else 1.0
    prev_ci = previous.ci if previous is not None else None
    looks = (previous.looks if previous is not None else 0) + 1
    if variance == 0.0:
        return SequentialResult(
            diff=diff,
            variance=0.0,
            tau2=tau2,
            alpha=alpha,
            log_lr=0.0,
            p_value_look=1.0,
            p_value=prev_p,
            ci_look=None,
            ci=prev_ci,
            significant=prev_p < alpha,
            looks=looks,
            note="variance is 0 at this look (too little data); look skipped",
        )
    v, t2 = variance, tau2
    # Written as logs and a [0, 1] shrinkage factor so tiny V cannot underflow to 0 / 0.
    shrink = t2 / (v + t2)
    if shrink == 0.0:
        return SequentialResult(
            diff=diff,
            variance=v,
            tau2=t2,
            alpha=alpha,
            log_lr=0.0,
            p_value_look=1.0,
            p_value=prev_p,
            ci_look=None,
            ci=prev_ci,
            significant=prev_p < alpha,
            looks=looks,
            note="tau2 is negligible next to the variance; look skipped",
        )
    z = diff / math.sqrt(v)
    log_lr = 0.5 * (math.log(v) - math.log(v + t2)) + 0.5 * z * z * shrink
    if not math.isfinite(log_lr):
        log_lr = sys.float_info.max  # astronomically strong evidence; keep JSON finite
    # 1/Lambda > 1 is capped at 1 (and never exponentiated, to avoid overflow);
    # exp(-log_lr) underflows to 0 for overwhelming evidence, which is the right limit.
    p_look = 1.0 if log_lr <= 0.0 else math.exp(-log_lr)
    p = min(prev_p, p_look)
    half = math.sqrt(
        2.0 * v / shrink * (math.log(1.0 / alpha) + 0.5 * (math.log(v + t2) - math.log(v)))
    )
    ci_look = Interval(diff - half, diff + half, 1.0 - alpha)
    ci = ci_look
    note = ""
    if prev_ci is not None:
        low, high = max(prev_ci.low, ci_look.low), min(prev_ci.high, ci_look.high)
        if low <= high:
            ci = Interval(low, high, 1.0 - alpha)
        else:
            # Can only happen with probability <= alpha if the model holds; keep the
            # newest interval rather than report an empty set.
            note = "confidence sequence became empty; showing this look's interval"
    return SequentialResult(
        diff=diff,
        variance=v,
        tau2=t2,
        alpha=alpha,
        log_lr=log_lr,
        p_value_look=p_look,
        p_value=p,
        ci_look=ci_look,
        ci=ci,
        significant=p < alpha,
        looks=looks,
        note=note,
    )


def sequential_proportions(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    tau2: float,
    alpha: float = 0.05,
    previous: SequentialResult | None = None,
) -> SequentialResult:
    """mSPRT look for p_B - p_A with the unpooled variance p(1-p)/n summed over arms."""
    xa, na = _as_count("successes_a", successes_a), _as_count("n_a", n_a)
    xb, nb = _as_count("successes_b", successes_b), _as_count("n_b", n_b)
    if xa > na or xb > nb:
        raise ValueError("successes cannot exceed n")
    if na == 0 or nb == 0:
        return msprt(0.0, 0.0, tau2, alpha, previous)
    pa, pb = xa / na, xb / nb
    var = pa * (1.0 - pa) / na + pb * (1.0 - pb) / nb
    return _within(msprt(pb - pa, var, tau2, alpha, previous), -1.0, 1.0)


def _within(r: SequentialResult, low: float, high: float) -> SequentialResult:
    """The intervals cut to the values the parameter can take (a difference of two
    proportions lies in [-1, 1]). Cutting keeps the coverage, and early looks with a small
    tau2 give half-widths of several units ("[-481, +524] pp") that say nothing."""

    def cut(iv: Interval | None) -> Interval | None:
        if iv is None or (iv.low >= low and iv.high <= high):
            return iv
        return Interval(max(iv.low, low), min(iv.high, high), iv.level)

    return replace(r, ci_look=cut(r.ci_look), ci=cut(r.ci))


def sequential_means(
    n_a: int,
    mean_a: float,
    var_a: float,
    n_b: int,
    mean_b: float,
    var_b: float,
    tau2: float,
    alpha: float = 0.05,
    previous: SequentialResult | None = None,
) -> SequentialResult:
    """mSPRT look for mean_B - mean_A (variance var_A/n_A + var_B/n_B)."""
    w = welch_t_test(n_a, mean_a, var_a, n_b, mean_b, var_b)
    return msprt(w.diff, w.se_diff**2 if w.test != "none" else 0.0, tau2, alpha, previous)


def sequential_ratio(
    a: RatioSums,
    b: RatioSums,
    tau2: float,
    alpha: float = 0.05,
    previous: SequentialResult | None = None,
) -> SequentialResult:
    """mSPRT look for a user-level ratio metric (delta-method variance)."""
    r = ratio_test(a, b)
    return msprt(r.diff, r.se_diff**2 if r.test != "none" else 0.0, tau2, alpha, previous)
