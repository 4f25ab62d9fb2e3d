"""Shared vocabulary of the analysis: metric names, formatting, small helpers."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from smart_suggest.errors import InputError
from smart_suggest.experiments.kpis import VariantKPIs
from smart_suggest.experiments.lifecycle import check_metric

#: Metrics in display order, with their names as used in sentences.
METRICS: dict[str, str] = {
    "ctr": "CTR",
    "conversion_rate": "conversion rate",
    "engagement": "engagement time",
}


#: Display labels (table rows, headings).
LABELS: dict[str, str] = {
    "ctr": "CTR",
    "conversion_rate": "Conversion rate",
    "engagement": "Engagement time",
}


PER_IMPRESSION = "per impression (assumes independent impressions)"


POWER_TARGET = 0.8


Progress = Callable[[str, int, int], None]


#: The largest practical threshold accepted (a 100-fold improvement).
MAX_MIN_LIFT = 100.0


def check_params(alpha: float, min_lift: float) -> None:
    if not (isinstance(alpha, int | float) and math.isfinite(alpha) and 0.0 < alpha < 1.0):
        raise InputError(f"alpha must be a number in (0, 1), got {alpha!r}")
    if not (isinstance(min_lift, int | float) and math.isfinite(min_lift) and min_lift >= 0):
        raise InputError(f"min-lift must be a number >= 0 (0.05 = +5%), got {min_lift!r}")
    if min_lift > MAX_MIN_LIFT:
        # Beyond this no sample size or power is meaningful (and the arithmetic overflows).
        raise InputError(
            f"min-lift must be at most {MAX_MIN_LIFT:g} (= +{MAX_MIN_LIFT * 100:,.0f}%), "
            f"got {min_lift:.6g}"
        )


def metric_name(metric: str | None) -> str | None:
    name = check_metric(metric)
    return name


def fmt_p(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.3g}"


def pct(v: float) -> str:
    return f"{v * 100:.3g}%"


def zcrit(alpha: float) -> float:
    from smart_suggest.stats._common import z_crit

    return z_crit(alpha)


def ratio_sums(k: VariantKPIs) -> Any:
    from smart_suggest.stats import RatioSums

    return RatioSums(
        k.n_users,
        k.sum_clicks,
        k.sum_impressions,
        k.sum_clicks_sq,
        k.sum_impressions_sq,
        k.sum_clicks_x_impressions,
    )


def proportion_problem(what: str, of: str, a: tuple[int, int], b: tuple[int, int]) -> str | None:
    bad = [arm for arm, (x, n) in (("A", a), ("B", b)) if x > n]
    if not bad:
        return None
    arms = " and ".join(bad)
    counts = ", ".join(f"{x:,} > {n:,}" for x, n in (a, b) if x > n)
    return (
        f"arm {arms} has more {what} than {of} ({counts}): "
        f"{what} were logged without {of}, so the test is impossible"
    )


UNITS = {
    "ctr": "exposed user (clicks and impressions per user; delta method)",
    "conversion_rate": "exposed user (converted = at least one purchase)",
    "engagement": "engagement event (assumes independent events)",
}


UNIT_NOUN = {
    "ctr": "exposed users",
    "conversion_rate": "exposed users",
    "engagement": "engagement events",
}
