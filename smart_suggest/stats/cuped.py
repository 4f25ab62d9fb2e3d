"""CUPED: variance reduction with pre-experiment data (Deng, Xu, Kohavi, Walker 2013).

Each user has covariates z measured before the experiment touched them: here x, their
activity in the pre-period, and h = 1 when they have any pre-period data (users without
it get x = 0 and h = 0: "covariate 0 plus an indicator", so they are adjusted by their
own group mean instead of being treated as inactive users). With theta the regression
coefficient of the metric on z, pooled over the variants (within-variant sums, i.e. the
slope of an OLS regression with one dummy per variant), the adjusted mean of variant i is

    mean_i(y) - theta' (mean_i(z) - mean(z))

and its variance var_i(y - theta' z) / n_i. Randomisation makes mean_i(z) - mean(z)
zero in expectation, so the estimate stays unbiased; the variance shrinks by the share
of the metric's variance the covariates explain (1 - rho^2 for one covariate).

For a ratio metric (CTR = clicks / impressions with the user as the unit) y is the
delta-method linearisation L = (c - R m) / mean(m), whose covariance with z follows from
the sums of c z and m z: the same estimator on the linearised metric (Deng et al. 2013,
section 3.3 with the delta method of Deng, Knoblich, Lu 2018).

Everything is computed from sums per variant (``CovSums``), so warehouse users supply
them in ``--summary`` files and ``--print-sql`` computes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from smart_suggest.stats import _dist as _st

from ._common import Interval, Result, check_alpha

__all__ = ["CovSums", "CupedComparison", "CupedResult", "CupedVariant", "cuped"]


@dataclass(frozen=True, slots=True)
class CovSums:
    """Sums over one variant's users of the metric and the covariates.

    Mean metric (conversion): ``y`` per user, ``m`` = None. Ratio metric (CTR): ``y`` is
    the numerator (clicks) and ``m`` the denominator (impressions), with their sums.
    ``z`` = (x, h): pre-period activity and the has-pre-period indicator.
    """

    label: str
    n: int
    sum_y: float
    sum_yy: float
    sum_x: float
    sum_xx: float
    n_pre: int  # users with pre-period data: sum of h (= sum h^2)
    sum_xy: float
    sum_hy: float
    # ratio metrics only
    sum_m: float | None = None
    sum_mm: float | None = None
    sum_ym: float | None = None
    sum_xm: float | None = None
    sum_hm: float | None = None

    @property
    def ratio(self) -> bool:
        return self.sum_m is not None


@dataclass(frozen=True, slots=True)
class CupedVariant(Result):
    label: str
    n: int
    users_with_pre_period: int
    mean: float | None
    se: float | None
    adjusted_mean: float | None
    adjusted_se: float | None


@dataclass(frozen=True, slots=True)
class CupedComparison(Result):
    """One treatment against the control, unadjusted and adjusted (normal z test)."""

    label: str
    diff: float | None
    se: float | None
    ci: Interval | None
    p_value: float | None
    adjusted_diff: float | None
    adjusted_se: float | None
    adjusted_ci: Interval | None
    adjusted_p_value: float | None
    variance_reduction: float | None  # 1 - adjusted variance / unadjusted variance
    ci_narrower_by: float | None  # 1 - adjusted width / unadjusted width


@dataclass(frozen=True, slots=True)
class CupedResult(Result):
    metric: str
    covariates: tuple[str, ...]
    theta: tuple[float, ...]
    variants: tuple[CupedVariant, ...]
    comparisons: tuple[CupedComparison, ...]
    alpha: float
    applied: bool
    note: str


def _moments(g: CovSums) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, float]:
    """Per variant: mean of the (linearised) metric, mean z, the within-variant centred
    cross-products S_zz (2x2) and S_zy (2) of z with the metric, and S_yy."""
    n = g.n
    zbar = np.array([g.sum_x / n, g.n_pre / n])
    szz = np.array(
        [
            [g.sum_xx - g.sum_x * g.sum_x / n, g.sum_x - g.sum_x * g.n_pre / n],
            [g.sum_x - g.n_pre * g.sum_x / n, g.n_pre - g.n_pre * g.n_pre / n],
        ]
    )
    if not g.ratio:
        ybar = g.sum_y / n
        szy = np.array([g.sum_xy - g.sum_x * g.sum_y / n, g.sum_hy - g.n_pre * g.sum_y / n])
        syy = g.sum_yy - g.sum_y * g.sum_y / n
        return ybar, zbar, szz, szy, syy
    assert g.sum_m is not None and g.sum_mm is not None and g.sum_ym is not None
    assert g.sum_xm is not None and g.sum_hm is not None
    r = g.sum_y / g.sum_m
    mbar = g.sum_m / n
    # Centred sums of the linearised metric L = (c - r m) / mbar.
    scc = g.sum_yy - g.sum_y * g.sum_y / n
    smm = g.sum_mm - g.sum_m * g.sum_m / n
    scm = g.sum_ym - g.sum_y * g.sum_m / n
    sll = (scc - 2 * r * scm + r * r * smm) / (mbar * mbar)
    szc = np.array([g.sum_xy - g.sum_x * g.sum_y / n, g.sum_hy - g.n_pre * g.sum_y / n])
    szm = np.array([g.sum_xm - g.sum_x * g.sum_m / n, g.sum_hm - g.n_pre * g.sum_m / n])
    szl = (szc - r * szm) / mbar
    return r, zbar, szz, szl, sll


def _z(diff: float, se: float, alpha: float) -> tuple[Interval, float]:
    zc = float(_st.norm.isf(alpha / 2))
    p = float(2 * _st.norm.sf(abs(diff / se))) if se > 0 else 1.0
    return Interval(diff - zc * se, diff + zc * se, 1 - alpha), p


def cuped(metric: str, groups: Sequence[CovSums], *, alpha: float = 0.05) -> CupedResult:
    """CUPED-adjusted means and every treatment (groups[1:]) against the control."""
    check_alpha(alpha)
    if len(groups) < 2:
        raise ValueError("need the control and at least one treatment")
    ok = [g for g in groups if g.n >= 2 and (not g.ratio or (g.sum_m or 0) > 0)]
    if len(ok) != len(groups):
        return _not_applied(metric, groups, alpha, "too few users in some variant")
    moments = [_moments(g) for g in groups]
    szz = sum(m[2] for m in moments)
    szy = sum(m[3] for m in moments)
    # Covariates without variance (everyone has pre-period data, or nobody) drop out:
    # the pseudo-inverse gives them theta 0.
    theta = np.linalg.pinv(szz) @ szy
    n_total = sum(g.n for g in groups)
    zbar_all = sum(g.n * m[1] for g, m in zip(groups, moments, strict=True)) / n_total
    variants: list[CupedVariant] = []
    stats: list[tuple[float, float, float, float]] = []
    for g, (ybar, zbar, gzz, gzy, gyy) in zip(groups, moments, strict=True):
        var = max(gyy, 0.0) / (g.n - 1)
        var_adj = max(gyy - 2 * theta @ gzy + theta @ gzz @ theta, 0.0) / (g.n - 1)
        adj = float(ybar - theta @ (zbar - zbar_all))
        se, se_adj = math.sqrt(var / g.n), math.sqrt(var_adj / g.n)
        variants.append(CupedVariant(g.label, g.n, g.n_pre, float(ybar), se, adj, se_adj))
        stats.append((float(ybar), se, adj, se_adj))
    comps = []
    y0, se0, a0, sa0 = stats[0]
    for g, (y, se, a, sa) in zip(groups[1:], stats[1:], strict=True):
        d, s = y - y0, math.hypot(se, se0)
        da, sad = a - a0, math.hypot(sa, sa0)
        ci, p = _z(d, s, alpha)
        ci_a, p_a = _z(da, sad, alpha)
        vr = 1 - (sad * sad) / (s * s) if s > 0 else None
        narrower = 1 - sad / s if s > 0 else None
        comps.append(CupedComparison(g.label, d, s, ci, p, da, sad, ci_a, p_a, vr, narrower))
    note = ""
    if sum(g.n_pre for g in groups) == 0:
        note = "no user has pre-period data: nothing to adjust with"
    return CupedResult(
        metric,
        ("pre_period_activity", "has_pre_period"),
        tuple(float(t) for t in theta),
        tuple(variants),
        tuple(comps),
        alpha,
        True,
        note,
    )


def _not_applied(metric: str, groups: Sequence[CovSums], alpha: float, why: str) -> CupedResult:
    variants = tuple(CupedVariant(g.label, g.n, g.n_pre, None, None, None, None) for g in groups)
    comps = tuple(
        CupedComparison(g.label, None, None, None, None, None, None, None, None, None, None)
        for g in groups[1:]
    )
    return CupedResult(
        metric,
        ("pre_period_activity", "has_pre_period"),
        (0.0, 0.0),
        variants,
        comps,
        alpha,
        False,
        why,
    )
