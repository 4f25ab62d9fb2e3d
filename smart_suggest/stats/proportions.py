"""Two independent proportions (CTR per impression, conversion rate per user).

Test choice (reported in ``ProportionTest.test`` / ``test_reason``):

* Pearson chi-square on the 2x2 table, **no** continuity correction, when every
  expected cell count is >= 5.  On a 2x2 table this is exactly the pooled
  two-proportion z test (chi2 = z^2), so ``z`` is reported with its sign (B - A).
* Fisher's exact test (two-sided, scipy) when some expected count is < 5, where
  the chi-square approximation is known to be unreliable.

Intervals:

* per arm: Wilson score interval;
* absolute difference p_B - p_A: Newcombe's hybrid score interval (Newcombe 1998,
  method 10), built from the two Wilson intervals;
* relative lift p_B / p_A - 1: delta method on the log of the risk ratio
  (the "Katz log" interval): Var(log p_B/p_A) ~= (1-p_B)/x_B + (1-p_A)/x_A, so the
  CI is exp(log(p_B/p_A) +- z * se) - 1.  Undefined (None, with a note) when either
  arm has zero successes, because log(0) has no finite interval.

Effect size: Cohen's h = 2 asin(sqrt p_B) - 2 asin(sqrt p_A).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import _dist as _st
from ._common import Interval, Result, check_alpha, check_successes, z_crit

__all__ = [
    "ProportionTest",
    "cohens_h",
    "newcombe_diff_interval",
    "relative_lift_interval",
    "two_proportion_test",
    "wilson_interval",
]

_MIN_EXPECTED = 5.0


def _as_count(name: str, value: int | float) -> int:
    # Counts may arrive as numpy ints or integral floats from SQL; anything else is a bug.
    f = float(value)
    if not math.isfinite(f) or f < 0 or not f.is_integer():
        raise ValueError(f"{name} must be a non-negative whole number, got {value!r}")
    return int(f)


def _validated(successes_a: int, n_a: int, successes_b: int, n_b: int) -> tuple[int, int, int, int]:
    xa, na = _as_count("successes_a", successes_a), _as_count("n_a", n_a)
    xb, nb = _as_count("successes_b", successes_b), _as_count("n_b", n_b)
    check_successes(xa, na, "a")
    check_successes(xb, nb, "b")
    return xa, na, xb, nb


# The underscore helpers assume validated input; the public wrappers validate once.


def _wilson(x: int, m: int, alpha: float) -> Interval:
    level = 1.0 - alpha
    if m == 0:
        return Interval(0.0, 1.0, level)  # no data: the whole parameter space
    z = z_crit(alpha)
    z2 = z * z
    p = x / m
    denom = 1.0 + z2 / m
    center = (p + z2 / (2.0 * m)) / denom
    half = z * math.sqrt(p * (1.0 - p) / m + z2 / (4.0 * m * m)) / denom
    return Interval(max(0.0, center - half), min(1.0, center + half), level)


def _newcombe(
    xa: int, na: int, xb: int, nb: int, alpha: float, ci_a: Interval, ci_b: Interval
) -> Interval:
    if na == 0 or nb == 0:
        return Interval(-1.0, 1.0, 1.0 - alpha)  # an empty arm leaves p_B - p_A free
    pa, pb = xa / na, xb / nb
    d = pb - pa
    low = d - math.sqrt((pb - ci_b.low) ** 2 + (ci_a.high - pa) ** 2)
    high = d + math.sqrt((ci_b.high - pb) ** 2 + (pa - ci_a.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high), 1.0 - alpha)


def _lift(xa: int, na: int, xb: int, nb: int, alpha: float) -> Interval | None:
    if xa == 0 or xb == 0:
        return None
    # (1-p)/x written as (n-x)/(x*n) with exact integers avoids 1/x - 1/n cancellation.
    var = (nb - xb) / (xb * nb) + (na - xa) / (xa * na)
    log_rr = math.log(xb / nb) - math.log(xa / na)
    half = z_crit(alpha) * math.sqrt(var)
    return Interval(math.expm1(log_rr - half), math.expm1(log_rr + half), 1.0 - alpha)


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> Interval:
    """Wilson score interval for a binomial proportion; (0, 1) when n == 0."""
    check_alpha(alpha)
    x, m = _as_count("successes", successes), _as_count("n", n)
    check_successes(x, m, "arm")
    return _wilson(x, m, alpha)


def newcombe_diff_interval(
    successes_a: int, n_a: int, successes_b: int, n_b: int, alpha: float = 0.05
) -> Interval:
    """Newcombe hybrid score interval (method 10) for p_B - p_A.

    With an empty arm the difference is unconstrained, so (-1, 1) is returned.
    """
    check_alpha(alpha)
    xa, na, xb, nb = _validated(successes_a, n_a, successes_b, n_b)
    return _newcombe(xa, na, xb, nb, alpha, _wilson(xa, na, alpha), _wilson(xb, nb, alpha))


def relative_lift_interval(
    successes_a: int, n_a: int, successes_b: int, n_b: int, alpha: float = 0.05
) -> Interval | None:
    """Delta-method (log risk ratio) interval for p_B/p_A - 1; None if a rate is 0."""
    check_alpha(alpha)
    xa, na, xb, nb = _validated(successes_a, n_a, successes_b, n_b)
    return _lift(xa, na, xb, nb, alpha)


def cohens_h(rate_a: float, rate_b: float) -> float:
    """Cohen's h effect size for two proportions (B relative to A)."""
    return 2.0 * math.asin(math.sqrt(rate_b)) - 2.0 * math.asin(math.sqrt(rate_a))


@dataclass(frozen=True, slots=True)
class ProportionTest(Result):
    """Comparison of two binomial proportions, B versus A.

    ``test`` is ``"chi_square"``, ``"fisher_exact"`` or ``"none"`` (an empty arm);
    ``significant`` means ``p_value < alpha``.
    """

    successes_a: int
    n_a: int
    successes_b: int
    n_b: int
    rate_a: float
    rate_b: float
    ci_a: Interval
    ci_b: Interval
    diff: float
    diff_ci: Interval
    relative_lift: float | None
    relative_lift_ci: Interval | None
    cohens_h: float
    test: str
    test_reason: str
    z: float
    chi2: float
    min_expected: float
    p_value: float
    alpha: float
    significant: bool
    note: str


def two_proportion_test(
    successes_a: int, n_a: int, successes_b: int, n_b: int, alpha: float = 0.05
) -> ProportionTest:
    """Compare p_B with p_A: automatic chi-square / Fisher test plus all intervals."""
    check_alpha(alpha)
    xa, na, xb, nb = _validated(successes_a, n_a, successes_b, n_b)
    level = 1.0 - alpha
    ci_a = _wilson(xa, na, alpha)
    ci_b = _wilson(xb, nb, alpha)
    # An empty arm has no rate; 0.0 keeps the field numeric and the note explains it.
    rate_a = xa / na if na else 0.0
    rate_b = xb / nb if nb else 0.0

    if na == 0 or nb == 0:
        empty = [arm for arm, n in (("A", na), ("B", nb)) if n == 0]
        who = "arms A and B have" if len(empty) == 2 else f"arm {empty[0]} has"
        msg = f"{who} no observations, so nothing can be compared"
        return ProportionTest(
            successes_a=xa,
            n_a=na,
            successes_b=xb,
            n_b=nb,
            rate_a=rate_a,
            rate_b=rate_b,
            ci_a=ci_a,
            ci_b=ci_b,
            diff=0.0,
            diff_ci=Interval(-1.0, 1.0, level),
            relative_lift=None,
            relative_lift_ci=None,
            cohens_h=0.0,
            test="none",
            test_reason=msg,
            z=0.0,
            chi2=0.0,
            min_expected=0.0,
            p_value=1.0,
            alpha=alpha,
            significant=False,
            note=f"{msg}; p-value set to 1.",
        )

    diff = rate_b - rate_a
    notes: list[str] = []
    n_tot = na + nb
    succ, fail = xa + xb, n_tot - xa - xb
    min_expected = min(na, nb) * min(succ, fail) / n_tot

    # chi2 = N (ad - bc)^2 / (r1 r2 c1 c2) with exact integer arithmetic: Python's
    # int/int division is correctly rounded, so huge n loses no precision here.
    if succ == 0 or fail == 0:
        chi2 = 0.0
        notes.append(
            "every observation is a "
            + ("failure" if succ == 0 else "success")
            + " in both arms, so the rates cannot differ in this sample"
        )
    else:
        cross = xa * (nb - xb) - (na - xa) * xb
        chi2 = (n_tot * cross * cross) / (na * nb * succ * fail)
    z = math.copysign(math.sqrt(chi2), diff) if chi2 > 0 else 0.0

    if min_expected < _MIN_EXPECTED:
        test = "fisher_exact"
        reason = (
            f"smallest expected cell count is {min_expected:.3g} (< 5), where the "
            "chi-square approximation is unreliable, so Fisher's exact test was used"
        )
        table = [[xa, na - xa], [xb, nb - xb]]
        p_value = float(_st.fisher_exact(table, alternative="two-sided").pvalue)
    else:
        test = "chi_square"
        reason = (
            f"all expected cell counts are >= 5 (smallest {min_expected:.3g}), so Pearson's "
            "chi-square test without continuity correction (= pooled two-proportion z test) "
            "was used"
        )
        p_value = float(_st.chi2.sf(chi2, 1))
    p_value = min(1.0, max(0.0, p_value))

    if xa == 0:
        rel: float | None = None
        notes.append("relative lift is undefined because arm A has no successes")
    else:
        rel = rate_b / rate_a - 1.0
    rel_ci = _lift(xa, na, xb, nb, alpha)
    if rel_ci is None and xa > 0:
        notes.append("relative-lift interval is undefined because arm B has no successes")

    return ProportionTest(
        successes_a=xa,
        n_a=na,
        successes_b=xb,
        n_b=nb,
        rate_a=rate_a,
        rate_b=rate_b,
        ci_a=ci_a,
        ci_b=ci_b,
        diff=diff,
        diff_ci=_newcombe(xa, na, xb, nb, alpha, ci_a, ci_b),
        relative_lift=rel,
        relative_lift_ci=rel_ci,
        cohens_h=cohens_h(rate_a, rate_b),
        test=test,
        test_reason=reason,
        z=z,
        chi2=chi2,
        min_expected=min_expected,
        p_value=p_value,
        alpha=alpha,
        significant=p_value < alpha,
        note="; ".join(notes),
    )
