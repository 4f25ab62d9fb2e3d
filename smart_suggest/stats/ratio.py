"""Ratio metrics analysed with the *user* as the unit (e.g. CTR = clicks / impressions).

Clicks of one user are correlated, so treating every impression as an independent
Bernoulli trial understates the variance.  Instead each user i contributes a pair
(x_i, y_i) = (clicks, impressions) and the metric is the ratio of means
R = mean(x) / mean(y).  Its variance comes from the delta method:

    Var(R) ~= (s_x^2 - 2 R s_xy + R^2 s_y^2) / (n * mean(y)^2)

with sample (n - 1) variances.  Because mean(x) - R mean(y) = 0 exactly, the numerator
equals sum_i (x_i - R y_i)^2 / (n - 1), i.e. the variance of the linearised residual,
which is how it is computed here (one subtraction instead of three).

The headline test is a z test of R_B - R_A with Var = Var(R_A) + Var(R_B) (arms are
independent), a normal CI for the difference, and a log-scale delta-method CI for the
relative lift R_B / R_A - 1 (Var(log R) ~= Var(R) / R^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import _dist as _st
from ._common import SUM_ROUNDING as _SUM_ROUNDING
from ._common import (
    Interval,
    Result,
    _integral,
    check_alpha,
    check_count,
    check_finite,
    lift_interval_from_log,
    relative_change,
    z_crit,
)

__all__ = ["RatioArm", "RatioSums", "RatioTest", "ratio_arm", "ratio_test"]


@dataclass(frozen=True, slots=True)
class RatioSums(Result):
    """Per-user sufficient statistics of one variant.

    ``sum_x`` = total numerator (clicks), ``sum_y`` = total denominator (impressions),
    and the second moments are sums over users of x_i^2, y_i^2 and x_i * y_i.
    """

    n_users: int
    sum_x: float
    sum_y: float
    sum_x2: float
    sum_y2: float
    sum_xy: float


@dataclass(frozen=True, slots=True)
class RatioArm(Result):
    """Ratio estimate for one arm; ``se`` is 0 with a ``note`` when it is undefined."""

    n_users: int
    ratio: float
    se: float
    defined: bool
    note: str


def _validate(s: RatioSums, arm: str) -> None:
    check_count(f"n_users_{arm}", s.n_users)
    for name in ("sum_x", "sum_y", "sum_x2", "sum_y2", "sum_xy"):
        check_finite(f"{name}_{arm}", getattr(s, name))
    check_count(f"sum_y_{arm}", s.sum_y)
    check_count(f"sum_x2_{arm}", s.sum_x2)
    check_count(f"sum_y2_{arm}", s.sum_y2)


def ratio_arm(s: RatioSums) -> RatioArm:
    """Ratio of means and its delta-method standard error for one arm."""
    _validate(s, "arm")
    n = int(s.n_users)
    if n == 0 or s.sum_y <= 0:
        why = "no users" if n == 0 else "zero denominator (no impressions)"
        return RatioArm(n, 0.0, 0.0, False, f"ratio undefined: {why}")
    r = s.sum_x / s.sum_y
    if n < 2:
        return RatioArm(n, r, 0.0, False, "variance undefined with a single user")
    var = _ratio_var(s)
    if var is None:
        return RatioArm(n, r, 0.0, True, _UNRESOLVED)
    return RatioArm(n, r, math.sqrt(var), True, "")


_UNRESOLVED = "the variance cannot be recovered from these sums (it is below their rounding error)"


def _ratio_var(s: RatioSums) -> float | None:
    """Delta-method Var(R) = sum (x_i - R y_i)^2 / (n - 1) / (n ybar^2), without cancellation.

    Per-user counts give integer sums, and then the residual sum of squares is taken
    exactly: Sx2 Sy^2 - 2 Sx Sy Sxy + Sx^2 Sy2 over Sy^2 (three terms of ~n mean^2 that
    cancel down to ~n SD^2 in floating point, which loses everything when the mean is
    ~1e7 SDs).  Non-integer sums (only through the API: counts are integers) are computed
    in floating point; None when the result is within their rounding error.
    """
    from fractions import Fraction

    n = int(s.n_users)
    sums = (s.sum_x, s.sum_y, s.sum_x2, s.sum_y2, s.sum_xy)
    if all(_integral(v) for v in sums):
        sx, sy, sx2, sy2, sxy = (int(v) for v in sums)
        num = sx2 * sy * sy - 2 * sx * sy * sxy + sx * sx * sy2
        # num < 0 only for moments that break Cauchy-Schwarz (refused where they enter).
        return float(Fraction(max(num, 0) * n, (n - 1) * sy**4))
    r = s.sum_x / s.sum_y
    terms = (s.sum_x2, -2.0 * r * s.sum_xy, r * r * s.sum_y2)
    resid_ss = math.fsum(terms)
    bound = _SUM_ROUNDING * sum(abs(t) for t in terms)
    if resid_ss <= bound:
        return None
    ybar = s.sum_y / n
    return resid_ss / (n - 1) / (n * ybar * ybar)


@dataclass(frozen=True, slots=True)
class RatioTest(Result):
    """Delta-method z test of R_B - R_A; ``significant`` means ``p_value < alpha``."""

    a: RatioArm
    b: RatioArm
    ratio_a: float
    ratio_b: float
    diff: float
    se_diff: float
    diff_ci: Interval | None
    relative_lift: float | None
    relative_lift_ci: Interval | None
    z: float
    p_value: float
    alpha: float
    significant: bool
    test: str
    note: str


def ratio_test(a: RatioSums, b: RatioSums, alpha: float = 0.05) -> RatioTest:
    """Compare the ratio metric of B with A (user-level delta method)."""
    check_alpha(alpha)
    _validate(a, "a")
    _validate(b, "b")
    arm_a, arm_b = ratio_arm(a), ratio_arm(b)
    level = 1.0 - alpha
    test = "delta_method_z"
    notes = [f"arm {k}: {arm.note}" for k, arm in (("A", arm_a), ("B", arm_b)) if arm.note]
    ra, rb = arm_a.ratio, arm_b.ratio
    both = all(s.n_users > 0 and s.sum_y > 0 for s in (a, b))
    diff = rb - ra if both else 0.0  # an arm without impressions has no ratio at all
    se = math.hypot(arm_a.se, arm_b.se)
    rel = relative_change(rb, ra) if both else None
    if rel is None and both:
        notes.append("relative lift undefined because A's ratio is 0")

    if not (arm_a.defined and arm_b.defined) or se == 0.0:
        if arm_a.defined and arm_b.defined and not (arm_a.note or arm_b.note):
            notes.append("both arms have zero variance, so no test is possible")
        return RatioTest(
            a=arm_a,
            b=arm_b,
            ratio_a=ra,
            ratio_b=rb,
            diff=diff,
            se_diff=se,
            diff_ci=None,
            relative_lift=rel,
            relative_lift_ci=None,
            z=0.0,
            p_value=1.0,
            alpha=alpha,
            significant=False,
            test="none",
            note="; ".join(notes) + "; no test, p-value set to 1 and intervals omitted",
        )

    z = diff / se
    p_value = float(2.0 * _st.norm.sf(abs(z)))
    half = z_crit(alpha) * se
    rel_ci: Interval | None = None
    if ra > 0 and rb > 0:
        cv_a, cv_b = arm_a.se / ra, arm_b.se / rb
        se_log = math.sqrt(cv_a * cv_a + cv_b * cv_b)
        log_rr = math.log(rb) - math.log(ra)
        hl = z_crit(alpha) * se_log
        rel_ci = lift_interval_from_log(log_rr, hl, level)
        if rel_ci is None:
            notes.append("relative-lift interval omitted: a ratio is ~0 relative to its SE")
    else:
        notes.append("relative-lift interval needs both ratios > 0")
    return RatioTest(
        a=arm_a,
        b=arm_b,
        ratio_a=ra,
        ratio_b=rb,
        diff=diff,
        se_diff=se,
        diff_ci=Interval(diff - half, diff + half, level),
        relative_lift=rel,
        relative_lift_ci=rel_ci,
        z=z,
        p_value=min(1.0, p_value),
        alpha=alpha,
        significant=p_value < alpha,
        test=test,
        note="; ".join(notes),
    )
