"""Novelty check: is the daily lift shrinking over time?

New recommenders often win early because they are *new* (novelty) and fade afterwards.
Given one lift per day (e.g. relative CTR lift of B over A on day d) we fit a weighted
least-squares line lift = a + b * day.  Weights should be proportional to the inverse
variance of each day's lift (the number of users that day is a fine proxy); without
weights every day counts equally.  The slope's standard error uses the residual scale
estimated from the data (as statsmodels' WLS does), with a Student t on n - 2 df.

The effect is called *shrinking* when the slope points towards zero (opposite sign to
the weighted mean lift) with p < alpha.  A run shorter than ``min_days`` (7: one full
weekly cycle) is flagged as too short to judge, whatever the slope.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from . import _dist as _st
from ._common import Result, check_alpha, check_finite

__all__ = ["MIN_DAYS", "TrendResult", "novelty_check"]

MIN_DAYS = 7


@dataclass(frozen=True, slots=True)
class TrendResult(Result):
    """WLS trend of the daily lift; ``warning`` is "" when there is nothing to worry about."""

    n_days: int
    slope: float
    slope_se: float
    intercept: float
    mean_lift: float
    t: float
    df: int
    p_value: float
    alpha: float
    shrinking: bool
    too_short: bool
    warning: str
    note: str


def novelty_check(
    days: Sequence[float],
    lifts: Sequence[float],
    weights: Sequence[float] | None = None,
    *,
    alpha: float = 0.05,
    min_days: int = MIN_DAYS,
) -> TrendResult:
    """Weighted least-squares slope of ``lifts`` against ``days`` since the start."""
    check_alpha(alpha)
    xs = [float(v) for v in days]
    ys = [float(v) for v in lifts]
    ws = [1.0] * len(xs) if weights is None else [float(v) for v in weights]
    if not (len(xs) == len(ys) == len(ws)):
        raise ValueError("days, lifts and weights must have the same length")
    for name, seq in (("days", xs), ("lifts", ys), ("weights", ws)):
        for v in seq:
            check_finite(name, v)
    if any(w < 0 for w in ws):
        raise ValueError("weights must be >= 0")
    # Zero-weight days carry no information; drop them so they do not count as days.
    # Weights a trillion times below the largest are zero in all but name, and dividing by
    # their tiny spread would overflow.
    w_max = max(ws, default=0.0)
    pts = [(x, y, w) for x, y, w in zip(xs, ys, ws, strict=True) if w > w_max * 1e-12]
    n = len(pts)
    n_distinct = len({x for x, _, _ in pts})
    too_short = n_distinct < min_days
    notes: list[str] = []

    sw = math.fsum(w for _, _, w in pts)
    xbar = math.fsum(w * x for x, _, w in pts) / sw if n else 0.0
    ybar = math.fsum(w * y for _, y, w in pts) / sw if n else 0.0
    sxx = math.fsum(w * (x - xbar) ** 2 for x, _, w in pts)
    sxy = math.fsum(w * (x - xbar) * (y - ybar) for x, y, w in pts)

    slope, se, t, p, df = 0.0, 0.0, 0.0, 1.0, max(0, n - 2)
    if n_distinct < 2 or sxx <= 0.0:
        notes.append("fewer than 2 distinct days: no slope can be fitted")
    else:
        slope = sxy / sxx
        if n < 3:
            notes.append("only 2 days: the line fits exactly, no test possible (p set to 1)")
        else:
            rss = math.fsum(w * (y - ybar - slope * (x - xbar)) ** 2 for x, y, w in pts)
            se = math.sqrt(rss / df / sxx)
            if se > 0.0:
                t = slope / se
                p = float(2.0 * _st.t.sf(abs(t), df))
            elif slope != 0.0:
                # A perfect straight line through >= 3 days: the trend is certain.
                p = 0.0
                notes.append("points lie exactly on a line (zero residual variance)")
            else:
                notes.append("lift is identical every day")
    if not all(math.isfinite(v) for v in (slope, se, t)):
        slope, se, t, p = 0.0, 0.0, 0.0, 1.0
        notes.append("the days' spread is too small to fit a slope")
    intercept = ybar - slope * xbar
    shrinking = p < alpha and slope * ybar < 0.0
    warnings: list[str] = []
    if shrinking:
        warnings.append(
            f"the lift is shrinking over time (slope {slope:+.3g} per day, p = {p:.2g}): "
            "likely a novelty effect, so the long-run gain may be smaller than measured"
        )
    if too_short:
        warnings.append(
            f"only {n_distinct} day(s) of data (< {min_days}): too short to rule out "
            "novelty or day-of-week effects"
        )
    return TrendResult(
        n_days=n_distinct,
        slope=slope,
        slope_se=se,
        intercept=intercept,
        mean_lift=ybar,
        t=t,
        df=df,
        p_value=p,
        alpha=alpha,
        shrinking=shrinking,
        too_short=too_short,
        warning="; ".join(warnings),
        note="; ".join(notes),
    )
