"""Continuous metrics (engagement time): Welch's unequal-variance t test.

t = (mean_B - mean_A) / se,  se^2 = var_A/n_A + var_B/n_B, with the
Welch-Satterthwaite degrees of freedom

    df = se^4 / ((var_A/n_A)^2/(n_A-1) + (var_B/n_B)^2/(n_B-1))

and the exact Student t distribution (scipy) for the p-value and the CI of the
difference.  Cohen's d uses the pooled SD.  The relative lift interval uses the
delta method on log(mean_B / mean_A) with the same Welch t quantile; it needs both
means > 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import _dist as _st
from ._common import (
    Interval,
    Result,
    UnresolvedVariance,
    check_alpha,
    check_count,
    check_finite,
    lift_interval_from_log,
    relative_change,
    sum_of_squares_about_mean,
)

__all__ = [
    "MeanVar",
    "WelchTest",
    "mean_var_from_sums",
    "sums_resolve_variance",
    "welch_t_test",
    "welch_t_test_from_sums",
]


@dataclass(frozen=True, slots=True)
class MeanVar(Result):
    """n, mean and sample variance (n - 1 denominator; 0 when n < 2)."""

    n: int
    mean: float
    var: float


def mean_var_from_sums(n: int, total: float, total_sq: float) -> MeanVar:
    """Mean and unbiased variance from n, sum(x) and sum(x^2).

    The textbook shortcut (sum_sq - sum^2/n) cancels catastrophically when the mean is
    large relative to the SD: the difference is taken exactly, and when it is within the
    rounding error the sums themselves carry (``sum_of_squares_about_mean``) this raises
    ``UnresolvedVariance`` rather than report a zero (or any) variance.  Integer sums
    below 2^53 are exact, so a zero from them is a real zero.
    """
    check_count("n", n)
    check_finite("sum", total)
    check_count("sum of squares", total_sq)
    if n == 0:
        return MeanVar(0, 0.0, 0.0)
    mean = total / n
    if n < 2:
        return MeanVar(int(n), mean, 0.0)
    ss, bound = sum_of_squares_about_mean(n, total, total_sq)
    if bound > 0 and ss <= bound:
        raise UnresolvedVariance(
            f"the variance cannot be recovered from these sums: the mean ({mean:.6g}) is so "
            f"large relative to the spread that sum(x^2) - sum(x)^2/n ({ss:.3g}) is within "
            f"the rounding error of the sums ({bound:.3g}); compute it from centred values "
            "(sum of (x - mean)^2)"
        )
    return MeanVar(int(n), mean, ss / (n - 1))


def sums_resolve_variance(n: int, total: float, total_sq: float, digits: float = 6.0) -> bool:
    """True when n, sum(x), sum(x^2) give the variance to about ``digits`` significant
    digits; False means: recompute it from centred values where the raw data exists."""
    if n < 2:
        return True
    ss, bound = sum_of_squares_about_mean(n, total, total_sq)
    return bound == 0 or bound * 10.0**digits < ss


@dataclass(frozen=True, slots=True)
class WelchTest(Result):
    """Welch t test of mean_B - mean_A; ``significant`` means ``p_value < alpha``."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    sd_a: float
    sd_b: float
    diff: float
    se_diff: float
    diff_ci: Interval | None
    relative_lift: float | None
    relative_lift_ci: Interval | None
    cohens_d: float
    t: float
    df: float
    p_value: float
    alpha: float
    significant: bool
    test: str
    note: str


def welch_t_test(
    n_a: int,
    mean_a: float,
    var_a: float,
    n_b: int,
    mean_b: float,
    var_b: float,
    alpha: float = 0.05,
) -> WelchTest:
    """Welch's t test from per-arm n, mean and sample variance (B versus A)."""
    check_alpha(alpha)
    for name, v in (("n_a", n_a), ("n_b", n_b), ("var_a", var_a), ("var_b", var_b)):
        check_count(name, v)
    check_finite("mean_a", mean_a)
    check_finite("mean_b", mean_b)
    level = 1.0 - alpha
    # With fewer than 2 observations the variance is unknown, whatever was passed.
    va = var_a if n_a >= 2 else 0.0
    vb = var_b if n_b >= 2 else 0.0
    diff = mean_b - mean_a
    notes: list[str] = []
    empty = n_a == 0 or n_b == 0
    if empty:
        diff = 0.0  # an empty arm's mean is meaningless; the note says why
    rel = None if empty else relative_change(mean_b, mean_a)
    if rel is None and not empty:
        notes.append("relative lift undefined because A's mean is 0")

    sp2 = ((n_a - 1) * va + (n_b - 1) * vb) / (n_a + n_b - 2) if n_a + n_b > 2 else 0.0
    d = diff / math.sqrt(sp2) if sp2 > 0 else 0.0
    if sp2 == 0:
        notes.append("Cohen's d set to 0 because the pooled SD is 0")

    small = [k for k, n in (("A", n_a), ("B", n_b)) if n < 2]
    wa = va / n_a if n_a else 0.0
    wb = vb / n_b if n_b else 0.0
    se = math.sqrt(wa + wb)
    if small or se == 0.0:
        if small:
            who = "arms A and B have" if len(small) == 2 else f"arm {small[0]} has"
            notes.insert(0, f"{who} fewer than 2 observations")
        else:
            notes.insert(0, "both arms have zero variance")
        notes.append("no test possible: p-value set to 1 and intervals omitted")
        return WelchTest(
            n_a=int(n_a),
            n_b=int(n_b),
            mean_a=mean_a,
            mean_b=mean_b,
            sd_a=math.sqrt(va),
            sd_b=math.sqrt(vb),
            diff=diff,
            se_diff=se,
            diff_ci=None,
            relative_lift=rel,
            relative_lift_ci=None,
            cohens_d=d,
            t=0.0,
            df=0.0,
            p_value=1.0,
            alpha=alpha,
            significant=False,
            test="none",
            note="; ".join(notes),
        )

    # Satterthwaite df written with shares of se^2 so squaring cannot overflow/underflow.
    fa, fb = wa / (wa + wb), wb / (wa + wb)
    df = 1.0 / (fa * fa / (n_a - 1) + fb * fb / (n_b - 1))
    t = diff / se
    p_value = min(1.0, float(2.0 * _st.t.sf(abs(t), df)))
    tq = float(_st.t.isf(alpha / 2.0, df))
    rel_ci: Interval | None = None
    if mean_a > 0 and mean_b > 0:
        se_log = math.sqrt(wa / mean_a / mean_a + wb / mean_b / mean_b)
        lr = math.log(mean_b) - math.log(mean_a)
        rel_ci = lift_interval_from_log(lr, tq * se_log, level)
        if rel_ci is None:
            notes.append("relative-lift interval omitted: a mean is ~0 relative to its SE")
    else:
        notes.append("relative-lift interval needs both means > 0")
    return WelchTest(
        n_a=int(n_a),
        n_b=int(n_b),
        mean_a=mean_a,
        mean_b=mean_b,
        sd_a=math.sqrt(va),
        sd_b=math.sqrt(vb),
        diff=diff,
        se_diff=se,
        diff_ci=Interval(diff - tq * se, diff + tq * se, level),
        relative_lift=rel,
        relative_lift_ci=rel_ci,
        cohens_d=d,
        t=t,
        df=df,
        p_value=p_value,
        alpha=alpha,
        significant=p_value < alpha,
        test="welch_t",
        note="; ".join(notes),
    )


def welch_t_test_from_sums(
    n_a: int,
    sum_a: float,
    sum_sq_a: float,
    n_b: int,
    sum_b: float,
    sum_sq_b: float,
    alpha: float = 0.05,
) -> WelchTest:
    """Welch's t test from n, sum(x) and sum(x^2) per arm (what SQL aggregates give).

    Sums that cannot carry a variance give no test (p = 1) with that reason in the note:
    never a zero variance they do not contain."""
    try:
        a = mean_var_from_sums(n_a, sum_a, sum_sq_a)
        b = mean_var_from_sums(n_b, sum_b, sum_sq_b)
    except UnresolvedVariance as exc:
        check_alpha(alpha)
        ma = sum_a / n_a if n_a else 0.0
        mb = sum_b / n_b if n_b else 0.0
        return WelchTest(
            n_a=int(n_a),
            n_b=int(n_b),
            mean_a=ma,
            mean_b=mb,
            sd_a=0.0,
            sd_b=0.0,
            diff=mb - ma,
            se_diff=0.0,
            diff_ci=None,
            relative_lift=relative_change(mb, ma),
            relative_lift_ci=None,
            cohens_d=0.0,
            t=0.0,
            df=0.0,
            p_value=1.0,
            alpha=alpha,
            significant=False,
            test="none",
            note=f"{exc}; no test possible: p-value set to 1 and intervals omitted",
        )
    return welch_t_test(a.n, a.mean, a.var, b.n, b.mean, b.var, alpha)
