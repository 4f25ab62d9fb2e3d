"""Analysis of an experiment: KPIs from the store -> the statistics engine -> one verdict.

``analyze(store, exp)`` reads the per-variant sufficient statistics (``kpis.results``) and
the daily timeline in one read snapshot, runs every test of ``smart_suggest.stats`` on
them and returns one frozen :class:`Analysis` with ``to_dict()``.  ``analyze_summary``
does the same from per-variant sufficient statistics computed elsewhere (a warehouse
running ``SUFFICIENT_STATS_SQL``), so both paths share every line of the statistics.

What is tested, per metric (B versus A; differences B - A, relative lifts B / A - 1):

* **ctr** - headline: the user-level ratio test (clicks / impressions with the exposed
  user as the unit, delta-method variance; one user's impressions are correlated).  The
  per-impression two-proportion test is kept alongside, labelled "per impression (assumes
  independent impressions)": it is over-confident and is never used for the verdict.
* **conversion_rate** - users converted / users exposed: chi-square or Fisher's exact.
* **engagement** - mean engagement time per engagement event: Welch's t test from
  n, sum and sum of squares.

The primary metric is ``metric`` if given, else the experiment's declared
``primary_metric``, else ``ctr`` (with a warning that nothing was declared).  The other
two are secondary: their p-values get the Holm correction (family = the secondary
metrics), and the primary metric is tested at ``alpha`` unadjusted.  The overall verdict is
the primary metric's (``stats.VERDICT_RULES``).

Also: sample-ratio-mismatch check of the assigned users against the configured split
(a flagged SRM makes every verdict ``invalid``); the Bayesian P(B > A) and expected loss
(Beta-Binomial) for conversion, and for CTR per impression (labelled as such); with
``sequential=True`` the always-valid mSPRT p-value and confidence sequence replace the
fixed-horizon ones in the verdicts; achieved power to detect ``min_lift``, the sample
size and the expected remaining days at the observed assignment rate; a novelty check on
the daily relative CTR lift.

Sequential mixing variance: tau^2 = ``stats.default_tau2(baseline)`` = (10% of the
control's value)^2 per metric.  Here the baseline is read from the data at the look,
which is fine for a one-off look but makes tau^2 data-dependent across looks: a real
deployment fixes tau^2 before the start from the historical baseline (pass ``tau2``).

Degenerate data (no events, an empty arm, one user, all conversions) gives defined,
explained results, never an exception or NaN.  Inconsistent logging that makes a test
impossible (more clicks than impressions, more converted than exposed users) gives that
metric the verdict ``invalid`` with the reason.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from smart_suggest import __version__, clock
from smart_suggest.errors import InputError
from smart_suggest.experiments.kpis import SUFFICIENT_STATS_SQL, ExperimentResults, VariantKPIs
from smart_suggest.experiments.lifecycle import Experiment, check_metric
from smart_suggest.store import Store

Progress = Callable[[str, int, int], None]

__all__ = [
    "FAIL_CONDITIONS",
    "LABELS",
    "METRICS",
    "SUFFICIENT_STATS_SQL",
    "SUMMARY_COLUMNS",
    "SUMMARY_OPTIONAL_COLUMNS",
    "Analysis",
    "BayesSummary",
    "ExperimentInfo",
    "MetricAnalysis",
    "NoveltySummary",
    "PowerSummary",
    "SequentialSummary",
    "analyze",
    "analyze_summary",
    "fail_conditions",
    "load_summary",
    "print_sql",
]

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

#: Columns of a ``--summary`` file (one row per variant, A and B).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "variant",
    "users_assigned",
    "users_exposed",
    "impressions",
    "clicks",
    "users_converted",
    "purchases",
    "engagement_n",
    "engagement_sum",
    "engagement_sumsq",
    "n_users",
    "sum_clicks",
    "sum_impressions",
    "sum_clicks_sq",
    "sum_impressions_sq",
    "sum_clicks_x_impressions",
)
#: Optional columns: the configured split (default 0.5) and days run (for the duration).
SUMMARY_OPTIONAL_COLUMNS: tuple[str, ...] = ("treatment_share", "days")
_FLOAT_COLUMNS = ("engagement_sum", "engagement_sumsq")

#: ``--fail-on`` conditions and their exit codes (the lowest code among those holding wins).
FAIL_CONDITIONS: dict[str, tuple[int, str]] = {
    "srm": (3, "the sample-ratio-mismatch check failed (p < 0.001)"),
    "invalid": (4, "the overall verdict is invalid (SRM or inconsistent logging)"),
    "negative": (
        5,
        "B is significantly worse than A on some metric (Holm-adjusted for secondary metrics)",
    ),
    "underpowered": (
        6,
        "the primary metric is not significant and has < 80% power to detect the --min-lift effect",
    ),
    "no-win": (7, "the overall verdict is not worth_shipping"),
}

_PER_IMPRESSION = "per impression (assumes independent impressions)"
_POWER_TARGET = 0.8


# -- result types ------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """JSON-ready value: nested results become dicts, non-finite floats become None."""
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalar
        return _plain(value.item())
    raise TypeError(f"cannot serialise {type(value).__name__}")


class _ToDict:
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: _plain(getattr(self, k)) for k in self.__dataclass_fields__}  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ExperimentInfo(_ToDict):
    """What was analysed: a stored experiment, or a summary file (``source``)."""

    id: int | None
    name: str
    description: str
    control: str
    treatment: str
    traffic_fraction: float
    treatment_share: float
    primary_metric: str | None  # as declared (None: not declared)
    status: str | None
    created_at: str | None
    stopped_at: str | None
    days_run: float | None
    source: str  # "database" or "summary"

    @classmethod
    def of(cls, exp: Experiment, days_run: float | None) -> ExperimentInfo:
        return cls(
            id=exp.id,
            name=exp.name,
            description=exp.description,
            control=exp.control,
            treatment=exp.treatment,
            traffic_fraction=exp.traffic_fraction,
            treatment_share=exp.treatment_share,
            primary_metric=exp.primary_metric,
            status=exp.status,
            created_at=clock.iso(exp.created_at),
            stopped_at=None if exp.stopped_at is None else clock.iso(exp.stopped_at),
            days_run=days_run,
            source="database",
        )


@dataclass(frozen=True, slots=True)
class MetricAnalysis(_ToDict):
    """Everything about one metric.  ``detail`` is the raw stats result of the headline test.

    ``p_value`` is the p-value behind the verdict and ``significant`` (Holm-adjusted for
    secondary metrics, always-valid in sequential mode), described by ``p_value_label``
    ("" = the headline test's own); ``p_value_test`` is the headline test's own
    fixed-horizon, unadjusted p-value.  ``ci`` is the interval of the difference
    B - A; ``intervals`` the per-variant intervals of the metric.
    """

    metric: str
    label: str
    role: str  # "primary" or "secondary"
    unit: str
    test: str  # machine name of the headline test ("none" when no test was possible)
    method: str  # human description of the headline test
    value_a: float | None
    value_b: float | None
    n_a: int
    n_b: int
    intervals: dict[str, Any]
    diff: float
    ci: Any
    relative_lift: float | None
    relative_lift_ci: Any
    effect_size: float | None
    effect_size_name: str
    p_value: float
    p_value_label: str
    p_value_test: float
    p_value_adjusted: float | None
    significant: bool
    direction: str
    power: float
    mde_relative: float | None
    n_needed_per_variant: int | None
    verdict: str
    headline: str
    summary: str
    warnings: tuple[str, ...]
    note: str
    detail: Any  # ProportionTest | RatioTest | WelchTest | None
    per_impression: Any  # ProportionTest (CTR only) | None
    per_impression_label: str
    sequential: Any  # SequentialResult | None
    sequential_note: str
    bayes: Any  # BetaBinomialResult | None
    bayes_label: str
    judgement: Any  # stats.Verdict | None

    @property
    def conclusion(self) -> str:
        return self.summary


@dataclass(frozen=True, slots=True)
class BayesSummary(_ToDict):
    """P(B > A) and expected losses for one proportion metric (Beta(1, 1) priors)."""

    metric: str
    label: str
    prob_b_beats_a: float
    expected_loss: float  # of shipping B (rate lost if A is in fact better)
    expected_loss_a: float  # of keeping A
    method: str
    result: Any  # BetaBinomialResult


@dataclass(frozen=True, slots=True)
class SequentialSummary(_ToDict):
    """The always-valid (mSPRT) result of the primary metric, as one status line."""

    metric: str
    status: str  # "significant", "keep running" or "not run"
    message: str
    p_value: float | None
    ci: Any
    tau2: float | None
    tau2_basis: str


@dataclass(frozen=True, slots=True)
class PowerSummary(_ToDict):
    """Power to detect ``min_lift`` on the primary metric, sample size and duration."""

    metric: str
    unit: str
    min_lift: float
    power: float
    power_target: float
    mde_relative: float | None
    n_per_variant_now: int
    n_needed_per_variant: int | None
    users_needed_per_variant: int | None
    users_assigned_a: int
    users_assigned_b: int
    daily_users: float | None
    daily_basis: str
    duration: Any  # stats.DurationEstimate | None
    days_remaining: float | None
    message: str


@dataclass(frozen=True, slots=True)
class NoveltySummary(_ToDict):
    """Daily relative CTR lift of B over A and its trend (``trend`` None without data)."""

    metric: str
    method: str
    days: tuple[str, ...]
    lifts: tuple[float, ...]
    weights: tuple[float, ...]
    trend: Any  # stats.TrendResult | None
    message: str


@dataclass(frozen=True, slots=True)
class Analysis(_ToDict):
    """The whole analysis of one experiment; ``verdict`` is the primary metric's."""

    experiment: ExperimentInfo
    generated_at: str
    version: str
    alpha: float
    min_lift: float
    mode: str  # "fixed_horizon" or "sequential"
    primary_metric: str
    primary_declared: bool
    variants: dict[str, Any]  # "A"/"B" -> kpis.VariantKPIs
    metrics: tuple[MetricAnalysis, ...]  # primary first
    srm: Any  # stats.SrmResult
    srm_message: str
    holm: Any  # stats.HolmResult | None
    holm_metrics: tuple[str, ...]
    bayes: BayesSummary | None
    sequential: SequentialSummary | None
    power: PowerSummary
    novelty: NoveltySummary
    verdict: str
    headline: str
    conclusion: str
    warnings: tuple[str, ...]
    methods: dict[str, str]
    daily_assigned: tuple[dict[str, Any], ...]
    revision: int

    def metric(self, name: str) -> MetricAnalysis:
        for m in self.metrics:
            if m.metric == name:
                return m
        raise KeyError(name)

    @property
    def primary(self) -> MetricAnalysis:
        return self.metrics[0]

    @property
    def srm_flagged(self) -> bool:
        return bool(self.srm.flagged)


# -- helpers -----------------------------------------------------------------------------
def _check_params(alpha: float, min_lift: float) -> None:
    if not (isinstance(alpha, int | float) and math.isfinite(alpha) and 0.0 < alpha < 1.0):
        raise InputError(f"alpha must be a number in (0, 1), got {alpha!r}")
    if not (isinstance(min_lift, int | float) and math.isfinite(min_lift) and min_lift >= 0):
        raise InputError(f"min-lift must be a number >= 0 (0.05 = +5%), got {min_lift!r}")


def _metric_name(metric: str | None) -> str | None:
    name = check_metric(metric)
    return name


def _fmt_p(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.3g}"


def _pct(v: float) -> str:
    return f"{v * 100:.3g}%"


def _z(alpha: float) -> float:
    from smart_suggest.stats._common import z_crit

    return z_crit(alpha)


def _ratio_sums(k: VariantKPIs) -> Any:
    from smart_suggest.stats import RatioSums

    return RatioSums(
        k.n_users,
        k.sum_clicks,
        k.sum_impressions,
        k.sum_clicks_sq,
        k.sum_impressions_sq,
        k.sum_clicks_x_impressions,
    )


def _proportion_problem(what: str, of: str, a: tuple[int, int], b: tuple[int, int]) -> str | None:
    bad = [arm for arm, (x, n) in (("A", a), ("B", b)) if x > n]
    if not bad:
        return None
    arms = " and ".join(bad)
    counts = ", ".join(f"{x:,} > {n:,}" for x, n in (a, b) if x > n)
    return (
        f"arm {arms} has more {what} than {of} ({counts}): "
        f"{what} were logged without {of}, so the test is impossible"
    )


def _arm_intervals(metric: str, res: Any, alpha: float) -> dict[str, Any]:
    from scipy import stats as st

    from smart_suggest.stats import Interval

    level = 1.0 - alpha
    if metric == "conversion_rate":
        return {"A": res.ci_a if res.n_a else None, "B": res.ci_b if res.n_b else None}
    if metric == "ctr":
        out: dict[str, Any] = {}
        for arm, r in (("A", res.a), ("B", res.b)):
            if not r.defined:
                out[arm] = None
            else:
                h = _z(alpha) * r.se
                out[arm] = Interval(r.ratio - h, r.ratio + h, level)
        return out
    out = {}
    for arm, n, mean, sd in (
        ("A", res.n_a, res.mean_a, res.sd_a),
        ("B", res.n_b, res.mean_b, res.sd_b),
    ):
        if n < 2:
            out[arm] = None
        else:
            h = float(st.t.isf(alpha / 2.0, n - 1)) * sd / math.sqrt(n)
            out[arm] = Interval(mean - h, mean + h, level)
    return out


def _values(
    metric: str, res: Any, a: VariantKPIs, b: VariantKPIs
) -> tuple[float | None, float | None]:
    """The metric per arm, None where it does not exist (no users, no impressions)."""
    if metric == "ctr":
        return (
            res.ratio_a if a.n_users > 0 and a.sum_impressions > 0 else None,
            res.ratio_b if b.n_users > 0 and b.sum_impressions > 0 else None,
        )
    if metric == "conversion_rate":
        return (res.rate_a if res.n_a else None, res.rate_b if res.n_b else None)
    return (res.mean_a if res.n_a else None, res.mean_b if res.n_b else None)


def _sizes(metric: str, res: Any) -> tuple[int, int]:
    if metric == "ctr":
        return int(res.a.n_users), int(res.b.n_users)
    return int(res.n_a), int(res.n_b)


def _se(metric: str, res: Any) -> float:
    if metric == "conversion_rate":
        va = res.rate_a * (1 - res.rate_a) / res.n_a if res.n_a else 0.0
        vb = res.rate_b * (1 - res.rate_b) / res.n_b if res.n_b else 0.0
        return math.sqrt(va + vb)
    return float(res.se_diff)


def _sample_size(
    metric: str, res: Any, value_a: float | None, min_lift: float, alpha: float
) -> tuple[int | None, float | None, str]:
    """(n per variant needed for 80% power at ``min_lift``, relative MDE now, note).

    Proportions use the Fleiss formula (``sample_size_proportions``) and the exact MDE
    (``mde_proportions``); ratio and mean metrics scale the current standard error, which
    shrinks like 1 / sqrt(n).
    """
    from scipy import stats as st

    from smart_suggest import stats

    n_a, n_b = _sizes(metric, res)
    n_now = min(n_a, n_b)
    if value_a is None or value_a == 0 or n_now == 0:
        return None, None, "no control baseline yet: sample size and MDE are not defined"
    zz = _z(alpha) + float(st.norm.ppf(_POWER_TARGET))
    if metric == "conversion_rate":
        mde = None
        if 0 < value_a < 1:
            m = stats.mde_proportions(value_a, n_now, alpha=alpha, power=_POWER_TARGET)
            mde = m.mde_relative
        if min_lift == 0:
            return None, mde, "a zero --min-lift needs infinitely many users"
        if not (0 < value_a < 1 and value_a * (1 + min_lift) < 1):
            return (
                None,
                mde,
                (
                    f"control rate {value_a:.3g} leaves no room for a {_pct(min_lift)} lift: "
                    "no sample size"
                ),
            )
        n = stats.sample_size_proportions(
            value_a, min_lift, relative=True, alpha=alpha, power=_POWER_TARGET
        )
        return n.n_per_variant, mde, ""
    se = _se(metric, res)
    if se == 0 or res.test == "none":
        return None, None, "no test possible yet, so no sample size or MDE"
    mde_rel = zz * se / abs(value_a)
    if min_lift == 0:
        return None, mde_rel, "a zero --min-lift needs infinitely many users"
    k = zz * se / (min_lift * abs(value_a))
    need = (n_a + n_b) / 2.0 * k * k
    if not math.isfinite(need) or need >= 1e15:
        return None, mde_rel, "the sample needed is astronomically large"
    return max(2, math.ceil(need)), mde_rel, ""


_UNITS = {
    "ctr": "exposed user (clicks and impressions per user; delta method)",
    "conversion_rate": "exposed user (converted = at least one purchase)",
    "engagement": "engagement event (assumes independent events)",
}
_UNIT_NOUN = {
    "ctr": "exposed users",
    "conversion_rate": "exposed users",
    "engagement": "engagement events",
}


def _method(res: Any) -> str:
    names = {
        "delta_method_z": "user-level ratio z test (delta method)",
        "chi_square": "Pearson chi-square (= two-proportion z test)",
        "fisher_exact": "Fisher's exact test",
        "welch_t": "Welch's t test",
        "none": "no test (not enough data)",
    }
    return names.get(res.test, res.test)


# -- building blocks of the analysis -----------------------------------------------------
@dataclass
class _Inputs:
    """Everything the statistics need; built from the store or from a summary file."""

    info: ExperimentInfo
    a: VariantKPIs
    b: VariantKPIs
    primary_declared: str | None
    days: list[tuple[str, int, int, int, int]] = field(default_factory=list)  # per UTC day
    daily_assigned: list[dict[str, Any]] = field(default_factory=list)
    revision: int = 0
    timeline_note: str = ""


def _headline_test(metric: str, a: VariantKPIs, b: VariantKPIs, alpha: float) -> tuple[Any, str]:
    """(raw stats result or None, reason when no result is possible)."""
    from smart_suggest import stats

    try:
        if metric == "ctr":
            return stats.ratio_test(_ratio_sums(a), _ratio_sums(b), alpha), ""
        if metric == "conversion_rate":
            problem = _proportion_problem(
                "converted users",
                "exposed users",
                (a.users_converted, a.users_exposed),
                (b.users_converted, b.users_exposed),
            )
            if problem:
                return None, problem
            return (
                stats.two_proportion_test(
                    a.users_converted, a.users_exposed, b.users_converted, b.users_exposed, alpha
                ),
                "",
            )
        return (
            stats.welch_t_test_from_sums(
                a.engagement_n,
                a.engagement_sum,
                a.engagement_sumsq,
                b.engagement_n,
                b.engagement_sum,
                b.engagement_sumsq,
                alpha,
            ),
            "",
        )
    except ValueError as exc:  # impossible sums (only from a hand-made summary)
        return None, f"the sufficient statistics are inconsistent: {exc}"


def _tau2(
    metric: str, value_a: float | None, value_b: float | None, given: Mapping[str, float] | None
) -> tuple[float | None, str]:
    from smart_suggest import stats

    if given and metric in given:
        t = float(given[metric])
        if not (math.isfinite(t) and t > 0):
            raise InputError(f"tau2 for {metric} must be a number > 0, got {given[metric]!r}")
        return t, f"tau^2 = {t:.4g}, fixed by the caller"
    base = value_a
    basis = f"(0.1 x control {METRICS[metric]})^2"
    if not base:
        # A zero control gives tau^2 = 0 (no test); the pooled value keeps a scale.
        vals = [v for v in (value_a, value_b) if v]
        if not vals:
            return None, "no baseline yet (both variants are 0 or empty)"
        base = sum(vals) / 2.0
        basis = f"(0.1 x mean {METRICS[metric]} of A and B)^2 (control is 0)"
    t2 = stats.default_tau2(base)
    return t2, f"tau^2 = {t2:.4g} = {basis} from the data at this look"


def _sequential(
    metric: str,
    a: VariantKPIs,
    b: VariantKPIs,
    value_a: float | None,
    value_b: float | None,
    alpha: float,
    tau2: Mapping[str, float] | None,
) -> tuple[Any, float | None, str]:
    from smart_suggest import stats

    t2, basis = _tau2(metric, value_a, value_b, tau2)
    if t2 is None:
        return None, None, f"not run: {basis}"
    if metric == "ctr":
        seq = stats.sequential_ratio(_ratio_sums(a), _ratio_sums(b), t2, alpha)
    elif metric == "conversion_rate":
        seq = stats.sequential_proportions(
            a.users_converted, a.users_exposed, b.users_converted, b.users_exposed, t2, alpha
        )
    else:
        ma = stats.mean_var_from_sums(a.engagement_n, a.engagement_sum, a.engagement_sumsq)
        mb = stats.mean_var_from_sums(b.engagement_n, b.engagement_sum, b.engagement_sumsq)
        seq = stats.sequential_means(ma.n, ma.mean, ma.var, mb.n, mb.mean, mb.var, t2, alpha)
    return seq, t2, basis


def _bayes(metric: str, a: VariantKPIs, b: VariantKPIs) -> tuple[Any, str, str]:
    """(BetaBinomialResult or None, label, note)."""
    from smart_suggest import stats

    if metric == "conversion_rate":
        xa, na, xb, nb = a.users_converted, a.users_exposed, b.users_converted, b.users_exposed
        label = "conversion rate (per exposed user)"
    elif metric == "ctr":
        xa, na, xb, nb = a.clicks, a.impressions, b.clicks, b.impressions
        label = f"CTR {_PER_IMPRESSION}"
    else:
        return None, "", ""
    if xa > na or xb > nb:
        return None, label, "not computed: more successes than trials in the data"
    return stats.beta_binomial(xa, na, xb, nb), label, ""


def _per_impression(a: VariantKPIs, b: VariantKPIs, alpha: float) -> tuple[Any, str]:
    from smart_suggest import stats

    problem = _proportion_problem(
        "clicks", "impressions", (a.clicks, a.impressions), (b.clicks, b.impressions)
    )
    if problem:
        return None, problem
    return stats.two_proportion_test(a.clicks, a.impressions, b.clicks, b.impressions, alpha), ""


def _only_too_short(trend: Any) -> Any:
    """The trend's run-length warning without the CTR-specific shrinking warning."""
    if trend is None or not trend.too_short:
        return None
    part = [w for w in trend.warning.split("; ") if w.startswith("only ")]
    return replace(trend, shrinking=False, warning="; ".join(part))


@dataclass(frozen=True, slots=True)
class _Prepared:
    """The tests of one metric before its verdict (the verdict needs Holm across metrics)."""

    metric: str
    res: Any
    problem: str
    value_a: float | None
    value_b: float | None
    seq: Any
    seq_note: str

    @property
    def p_for_holm(self) -> float:
        if self.res is None:
            return 1.0
        return float(self.seq.p_value if self.seq is not None else self.res.p_value)


def _prepare(
    metric: str,
    inp: _Inputs,
    alpha: float,
    sequential: bool,
    tau2: Mapping[str, float] | None,
) -> _Prepared:
    res, problem = _headline_test(metric, inp.a, inp.b, alpha)
    if res is None:
        return _Prepared(metric, None, problem, None, None, None, "not run: no valid test")
    value_a, value_b = _values(metric, res, inp.a, inp.b)
    seq, seq_note = None, ""
    if sequential:
        seq, _t2, seq_note = _sequential(metric, inp.a, inp.b, value_a, value_b, alpha, tau2)
    return _Prepared(metric, res, "", value_a, value_b, seq, seq_note)


def _metric_analysis(
    prep: _Prepared,
    role: str,
    inp: _Inputs,
    *,
    alpha: float,
    min_lift: float,
    sequential: bool,
    srm: Any,
    trend: Any,
    holm_p: float | None,
) -> MetricAnalysis:
    from smart_suggest import stats

    metric, res, problem = prep.metric, prep.res, prep.problem
    a, b = inp.a, inp.b
    label = METRICS[metric]
    per_imp, per_imp_note = _per_impression(a, b, alpha) if metric == "ctr" else (None, "")
    bayes, bayes_label, bayes_note = _bayes(metric, a, b)
    notes = [n for n in (per_imp_note, bayes_note) if n]
    if res is None:
        summary = (
            f"{label[0].upper() + label[1:]} cannot be analysed: {problem}. Logging is "
            "inconsistent, so this metric cannot be trusted. Verdict: invalid."
        )
        return MetricAnalysis(
            metric=metric,
            label=LABELS[metric],
            role=role,
            unit=_UNITS[metric],
            test="none",
            method="no test (inconsistent data)",
            value_a=None,
            value_b=None,
            n_a=0,
            n_b=0,
            intervals={"A": None, "B": None},
            diff=0.0,
            ci=None,
            relative_lift=None,
            relative_lift_ci=None,
            effect_size=None,
            effect_size_name="",
            p_value=1.0,
            p_value_label="",
            p_value_test=1.0,
            p_value_adjusted=holm_p,
            significant=False,
            direction="same",
            power=0.0,
            mde_relative=None,
            n_needed_per_variant=None,
            verdict="invalid",
            headline="Invalid data",
            summary=summary,
            warnings=(problem,),
            note="; ".join([problem, *notes]),
            detail=None,
            per_impression=per_imp,
            per_impression_label=_PER_IMPRESSION if per_imp else "",
            sequential=None,
            sequential_note=prep.seq_note,
            bayes=bayes,
            bayes_label=bayes_label,
            judgement=None,
        )

    value_a, seq, seq_note = prep.value_a, prep.seq, prep.seq_note
    p_label_parts = []
    if holm_p is not None:
        p_label_parts.append("Holm-adjusted")
    if seq is not None:
        p_label_parts.append("always-valid")
    p_label = " ".join(p_label_parts)
    judgement = stats.verdict(
        label,
        res,
        srm=srm,
        trend=trend if metric == "ctr" else _only_too_short(trend),
        min_lift=min_lift,
        alpha=alpha,
        p_value=holm_p,
        p_value_label=p_label or None,
        sequential=seq,
    )
    sentences = [judgement.summary]
    if res.test == "none":
        sentences.insert(0, f"Not enough data to test the {label} yet.")
    if per_imp is not None and per_imp.test != "none":
        sentences.append(
            f"The per-impression {'chi-square' if per_imp.test == 'chi_square' else 'exact'} "
            f"test (which treats every impression as independent and so overstates "
            f"certainty) gives {_fmt_p(per_imp.p_value)}."
        )
    if sequential and seq is None:
        sentences.append(f"Sequential test {seq_note}.")
    n_needed, mde_rel, power_note = _sample_size(metric, res, value_a, min_lift, alpha)
    if power_note:
        notes.append(power_note)
    if res.note:
        notes.insert(0, res.note)
    effect, effect_name = None, ""
    if metric == "conversion_rate":
        effect, effect_name = res.cohens_h, "Cohen's h"
    elif metric == "engagement":
        effect, effect_name = res.cohens_d, "Cohen's d"
    n_a, n_b = _sizes(metric, res)
    return MetricAnalysis(
        metric=metric,
        label=LABELS[metric],
        role=role,
        unit=_UNITS[metric],
        test=res.test,
        method=_method(res),
        value_a=value_a,
        value_b=prep.value_b,
        n_a=n_a,
        n_b=n_b,
        intervals=_arm_intervals(metric, res, alpha),
        diff=res.diff,
        ci=seq.ci if seq is not None else res.diff_ci,
        relative_lift=res.relative_lift,
        relative_lift_ci=None if seq is not None else res.relative_lift_ci,
        effect_size=effect,
        effect_size_name=effect_name,
        p_value=judgement.p_value,
        p_value_label=p_label,
        p_value_test=res.p_value,
        p_value_adjusted=holm_p,
        significant=judgement.significant,
        direction=judgement.direction,
        power=judgement.power,
        mde_relative=mde_rel,
        n_needed_per_variant=n_needed,
        verdict=judgement.verdict,
        headline=judgement.headline,
        summary=" ".join(sentences),
        warnings=judgement.warnings,
        note="; ".join(notes),
        detail=res,
        per_impression=per_imp,
        per_impression_label=_PER_IMPRESSION if per_imp is not None else "",
        sequential=seq,
        sequential_note=seq_note,
        bayes=bayes,
        bayes_label=bayes_label,
        judgement=judgement,
    )


def _novelty(inp: _Inputs, alpha: float) -> NoveltySummary:
    from smart_suggest import stats

    method = (
        "weighted least-squares slope of the daily relative CTR lift (B / A - 1, per "
        "impression) against days since the start; weights = impressions that day"
    )
    days, lifts, weights, xs = [], [], [], []
    for i, (day, imp_a, clk_a, imp_b, clk_b) in enumerate(inp.days):
        if imp_a > 0 and imp_b > 0 and clk_a > 0:
            days.append(day)
            xs.append(float(i))
            lifts.append((clk_b / imp_b) / (clk_a / imp_a) - 1.0)
            weights.append(float(imp_a + imp_b))
    if not inp.days:
        msg = inp.timeline_note or "no daily data: the novelty check needs the event timeline"
        return NoveltySummary("ctr", method, (), (), (), None, msg)
    trend = stats.novelty_check(xs, lifts, weights, alpha=alpha)
    if not lifts:
        msg = "no day has impressions and clicks in both variants yet: no daily lift"
    elif trend.warning:
        msg = trend.warning[0].upper() + trend.warning[1:]
    elif trend.note:
        msg = f"{len(lifts)} days of daily lift; {trend.note}"
    else:
        msg = (
            f"{len(lifts)} days of daily lift (mean {trend.mean_lift * 100:+.3g}%); slope "
            f"{trend.slope * 100:+.3g} points/day ({_fmt_p(trend.p_value)}): no sign of a "
            "shrinking (novelty) effect"
        )
    return NoveltySummary("ctr", method, tuple(days), tuple(lifts), tuple(weights), trend, msg)


def _srm_message(srm: Any, share: float) -> str:
    split = f"{(1 - share) * 100:.3g}/{share * 100:.3g}"
    a, b = srm.observed[-2], srm.observed[-1]
    if a + b == 0:
        return "No users assigned yet: nothing to check."
    body = f"A {a:,} vs B {b:,} users for a {split} split ({_fmt_p(srm.p_value)})"
    if srm.flagged:
        return (
            f"Sample ratio mismatch: {body}, below the {srm.threshold:g} threshold: "
            "assignment or logging is broken, so no comparison can be trusted."
        )
    return f"No sample ratio mismatch: {body}."


def _power_summary(
    primary: MetricAnalysis, inp: _Inputs, min_lift: float, days_run: float | None
) -> PowerSummary:
    from smart_suggest import stats

    a, b = inp.a, inp.b
    units = {
        "ctr": (a.n_users, b.n_users),
        "conversion_rate": (a.users_exposed, b.users_exposed),
        "engagement": (a.engagement_n, b.engagement_n),
    }[primary.metric]
    assigned = a.users_assigned + b.users_assigned
    users_needed = None
    notes: list[str] = []
    if primary.n_needed_per_variant is not None and sum(units) > 0 and assigned > 0:
        # Convert the metric's unit to assigned users at the ratio observed so far.
        users_needed = math.ceil(primary.n_needed_per_variant * assigned / sum(units))
    daily: float | None = None
    basis = ""
    if days_run is not None and days_run > 0 and assigned > 0:
        daily = assigned / days_run
        basis = f"{assigned:,} users assigned over {days_run:.3g} days"
        if days_run < 1:
            notes.append("less than one day of traffic: the daily rate is rough")
    else:
        basis = "no assignment rate yet" if assigned == 0 else "days run unknown"
    duration = None
    remaining: float | None = None
    if users_needed is not None and daily is not None:
        duration = stats.expected_duration(
            users_needed,
            daily,
            traffic_fraction=1.0,  # the observed rate is of enrolled users already
            treatment_share=inp.info.treatment_share,
            enrolled_a=a.users_assigned,
            enrolled_b=b.users_assigned,
        )
        remaining = duration.days
    pw = primary.power
    parts = [
        f"{pw * 100:.0f}% power to detect a {_pct(min_lift)} lift in {METRICS[primary.metric]} "
        f"at the current sample (target {_POWER_TARGET * 100:.0f}%)"
    ]
    if primary.mde_relative is not None:
        parts.append(f"detectable lift now about {_pct(primary.mde_relative)}")
    if users_needed is not None:
        parts.append(f"about {users_needed:,} assigned users per variant needed")
        if remaining is not None:
            parts.append(
                "already reached"
                if remaining == 0
                else f"about {remaining:.1f} more days at {daily:,.1f} users/day"
            )
        elif daily is None:
            parts.append(f"duration unknown ({basis})")
    elif primary.note:
        parts.append("no sample size: " + primary.note.split("; ")[-1])
    msg = "; ".join(parts) + "."
    if notes:
        msg += " " + "; ".join(notes).capitalize() + "."
    return PowerSummary(
        metric=primary.metric,
        unit=_UNIT_NOUN[primary.metric],
        min_lift=min_lift,
        power=pw,
        power_target=_POWER_TARGET,
        mde_relative=primary.mde_relative,
        n_per_variant_now=min(units),
        n_needed_per_variant=primary.n_needed_per_variant,
        users_needed_per_variant=users_needed,
        users_assigned_a=a.users_assigned,
        users_assigned_b=b.users_assigned,
        daily_users=daily,
        daily_basis=basis,
        duration=duration,
        days_remaining=remaining,
        message=msg,
    )


def _sequential_summary(primary: MetricAnalysis) -> SequentialSummary:
    seq = primary.sequential
    if seq is None:
        return SequentialSummary(
            primary.metric,
            "not run",
            f"Always-valid test {primary.sequential_note}.",
            None,
            None,
            None,
            primary.sequential_note,
        )
    ci = seq.ci
    ci_txt = "" if ci is None else f", always-valid CI {ci.low:+.4g} to {ci.high:+.4g}"
    if seq.significant:
        status = "significant"
        msg = (
            f"mSPRT on {METRICS[primary.metric]}: always-valid {_fmt_p(seq.p_value)}{ci_txt} - "
            "significant; safe to stop and decide now."
        )
    else:
        status = "keep running"
        msg = (
            f"mSPRT on {METRICS[primary.metric]}: always-valid {_fmt_p(seq.p_value)}{ci_txt} - not "
            "significant yet; keep running (looking again later is safe)."
        )
    return SequentialSummary(
        primary.metric, status, msg, seq.p_value, ci, seq.tau2, primary.sequential_note
    )


def _methods(alpha: float, sequential: bool) -> dict[str, str]:
    from smart_suggest.stats.power import PROPORTION_FORMULA

    m = {
        "ctr": "user-level ratio test: delta-method z test of clicks/impressions with the "
        "exposed user as the unit",
        "ctr_per_impression": "two-proportion test per impression (chi-square, or Fisher's "
        "exact when an expected count < 5); assumes independent impressions, shown only",
        "conversion_rate": "two-proportion test per exposed user (chi-square, or Fisher's "
        "exact when an expected count < 5); Wilson and Newcombe intervals",
        "engagement": "Welch's t test per engagement event (Welch-Satterthwaite df)",
        "srm": "chi-square goodness of fit of assigned users against the configured split; "
        "flagged below p = 0.001",
        "multiple_testing": "Holm step-down over the secondary metrics",
        "bayes": "Beta-Binomial with Beta(1, 1) priors: P(B > A) and expected loss",
        "power": "power to detect the --min-lift relative effect at the current sample; "
        f"proportions: {PROPORTION_FORMULA}; ratio and means: SE scaled by 1/sqrt(n)",
        "duration": "remaining users / (users assigned per day so far), per variant",
        "novelty": "weighted least-squares slope of the daily relative CTR lift",
        "verdict": "stats.VERDICT_RULES",
    }
    if sequential:
        m["sequential"] = (
            "mSPRT with a normal mixture (Johari et al.), tau^2 = (0.1 x control value)^2; "
            "always-valid p-values and confidence sequences"
        )
    return m


def _analyze_inputs(
    inp: _Inputs,
    *,
    alpha: float,
    metric: str | None,
    sequential: bool,
    min_lift: float,
    tau2: Mapping[str, float] | None,
) -> Analysis:
    from smart_suggest import stats

    _check_params(alpha, min_lift)
    chosen = _metric_name(metric)
    primary_name = chosen or inp.primary_declared or "ctr"
    declared = chosen is not None or inp.primary_declared is not None
    secondaries = [m for m in METRICS if m != primary_name]
    a, b = inp.a, inp.b
    share = inp.info.treatment_share
    srm = stats.srm_check(a.users_assigned, b.users_assigned, treatment_share=share)
    novelty = _novelty(inp, alpha)
    preps = {m: _prepare(m, inp, alpha, sequential, tau2) for m in (primary_name, *secondaries)}
    common = {
        "alpha": alpha,
        "min_lift": min_lift,
        "sequential": sequential,
        "srm": srm,
        "trend": novelty.trend,
    }
    primary = _metric_analysis(preps[primary_name], "primary", inp, holm_p=None, **common)
    # Holm over the secondary metrics, on the p-values their verdicts would use
    # (always-valid ones in sequential mode: Holm needs only valid p-values).
    holm = stats.holm([preps[m].p_for_holm for m in secondaries], alpha) if secondaries else None
    seconds = [
        _metric_analysis(
            preps[m], "secondary", inp, holm_p=holm.adjusted[i] if holm else None, **common
        )
        for i, m in enumerate(secondaries)
    ]
    metrics = (primary, *seconds)

    warnings: list[str] = []
    if srm.flagged:
        warnings.append(_srm_message(srm, share))
    if not declared and inp.info.source == "summary":
        warnings.append(
            "no primary metric was given: CTR is used by default. Pass --metric with the "
            "metric chosen before the start, so the choice cannot follow the data"
        )
    elif not declared:
        warnings.append(
            "no primary metric was declared for this experiment: CTR is used by default. "
            "Declare it before the start (experiment create --primary-metric) so the choice "
            "cannot follow the data"
        )
    for w in primary.warnings:
        warnings.append(w[0].upper() + w[1:])
    for m in metrics:
        if m.verdict == "invalid" and m.judgement is None:
            warnings.append(f"{m.label}: {m.note}")
    if novelty.trend is not None and novelty.trend.shrinking and primary.metric != "ctr":
        warnings.append("CTR: " + novelty.trend.warning)

    bayes_metric = (
        primary
        if primary.bayes is not None
        else next((m for m in metrics if m.bayes is not None), None)
    )
    bayes = None
    if bayes_metric is not None:
        r = bayes_metric.bayes
        bayes = BayesSummary(
            bayes_metric.metric,
            bayes_metric.bayes_label,
            r.prob_b_better,
            r.expected_loss_b,
            r.expected_loss_a,
            r.method,
            r,
        )
    days_run = inp.info.days_run
    return Analysis(
        experiment=inp.info,
        generated_at=clock.iso(clock.now()),
        version=__version__,
        alpha=alpha,
        min_lift=min_lift,
        mode="sequential" if sequential else "fixed_horizon",
        primary_metric=primary_name,
        primary_declared=declared,
        variants={"A": a, "B": b},
        metrics=metrics,
        srm=srm,
        srm_message=_srm_message(srm, share),
        holm=holm,
        holm_metrics=tuple(secondaries),
        bayes=bayes,
        sequential=_sequential_summary(primary) if sequential else None,
        power=_power_summary(primary, inp, min_lift, days_run),
        novelty=novelty,
        verdict=primary.verdict,
        headline=primary.headline,
        conclusion=primary.summary,
        warnings=tuple(dict.fromkeys(warnings)),
        methods=_methods(alpha, sequential),
        daily_assigned=tuple(inp.daily_assigned),
        revision=inp.revision,
    )


# -- public API ---------------------------------------------------------------------------
def _days_run(exp: Experiment, results: ExperimentResults) -> float:
    """Days from the start (creation or first event) to now, or to the stop time."""
    start = exp.created_at
    if results.first_event_ts is not None:
        start = min(start, results.first_event_ts)
    end = clock.now() if exp.active else (exp.stopped_at or exp.created_at)
    if results.last_event_ts is not None and not exp.active:
        end = max(end, results.last_event_ts)
    return max(0.0, (end - start) / clock.DAY)


def analyze(
    store: Store,
    exp_ref: int | str | Experiment,
    *,
    alpha: float = 0.05,
    metric: str | None = None,
    sequential: bool = False,
    min_lift: float = 0.05,
    tau2: Mapping[str, float] | None = None,
    progress: Progress | None = None,
) -> Analysis:
    """Analyse a stored experiment (see the module docstring for what is computed).

    ``metric`` chooses the primary metric (ctr, conversion_rate or engagement; aliases
    accepted); ``tau2`` fixes the mSPRT mixing variance per metric (default: derived from
    the control's value at this look).  Raises ``InputError`` for bad parameters and
    ``NotFoundError`` for an unknown experiment; never for degenerate data.
    """
    from smart_suggest.experiments.kpis import results
    from smart_suggest.experiments.lifecycle import get_experiment
    from smart_suggest.experiments.timeline import timeline

    _check_params(alpha, min_lift)
    _metric_name(metric)
    step = progress or (lambda stage, done, total: None)
    with store.read():
        exp = get_experiment(store, exp_ref)
        step("results", 0, 3)
        res = results(store, exp.id)
        step("timeline", 1, 3)
        note = ""
        try:
            tl = timeline(store, exp.id, bucket="day", cumulative=False)
            pts_a, pts_b = tl.series("A"), tl.series("B")
            days = [
                (clock.iso(pa.start_ts)[:10], pa.impressions, pa.clicks, pb.impressions, pb.clicks)
                for pa, pb in zip(pts_a, pts_b, strict=True)
            ]
        except InputError as exc:  # e.g. an absurdly long span
            days, note = [], f"no daily timeline: {exc}"
    step("statistics", 2, 3)
    inp = _Inputs(
        info=ExperimentInfo.of(exp, _days_run(exp, res)),
        a=res.a,
        b=res.b,
        primary_declared=exp.primary_metric,
        days=days,
        daily_assigned=[d.to_dict() for d in res.daily_assigned],
        revision=res.revision,
        timeline_note=note,
    )
    out = _analyze_inputs(
        inp, alpha=alpha, metric=metric, sequential=sequential, min_lift=min_lift, tau2=tau2
    )
    step("statistics", 3, 3)
    return out


def analyze_summary(
    rows: Sequence[Mapping[str, Any]],
    *,
    alpha: float = 0.05,
    metric: str | None = None,
    sequential: bool = False,
    min_lift: float = 0.05,
    tau2: Mapping[str, float] | None = None,
    name: str = "summary",
    source: str = "summary",
) -> Analysis:
    """Analyse per-variant sufficient statistics computed elsewhere.

    ``rows``: one mapping per variant (A and B) with the ``SUMMARY_COLUMNS`` (numbers or
    numeric strings) and optionally ``treatment_share`` (default 0.5) and ``days`` (days
    the experiment has run, for the expected duration).  Bad input raises ``InputError``
    with one line naming ``source``.  There is no timeline, so no novelty check.
    """
    _check_params(alpha, min_lift)
    _metric_name(metric)
    a, b, share, days = _parse_rows(rows, source)
    info = ExperimentInfo(
        id=None,
        name=name,
        description="",
        control="A",
        treatment="B",
        traffic_fraction=1.0,
        treatment_share=share,
        primary_metric=None,
        status=None,
        created_at=None,
        stopped_at=None,
        days_run=days,
        source="summary",
    )
    inp = _Inputs(
        info, a, b, None, timeline_note="no daily data in a summary: novelty check not run"
    )
    try:
        return _analyze_inputs(
            inp, alpha=alpha, metric=metric, sequential=sequential, min_lift=min_lift, tau2=tau2
        )
    except ValueError as exc:  # impossible sums the parser could not see
        raise InputError(f"{source}: inconsistent statistics: {exc}") from None


# -- summary files -----------------------------------------------------------------------
def _parse_number(value: Any, column: str, variant: str, source: str, whole: bool) -> float:
    where = f"{source}: variant {variant}, column {column}"
    if isinstance(value, bool) or value is None:
        raise InputError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            num = float(text) if text else math.nan
        except ValueError:
            raise InputError(f"{where}: {value[:40]!r} is not a number") from None
        if not text:
            raise InputError(f"{where}: empty value")
    elif isinstance(value, int | float):
        num = float(value) if not isinstance(value, int) else value
    else:
        raise InputError(f"{where}: expected a number, got {type(value).__name__}")
    if not math.isfinite(num):
        raise InputError(f"{where}: {value!r} is not a finite number")
    if whole:
        if isinstance(num, float) and not num.is_integer():
            raise InputError(f"{where}: {value!r} is not a whole number")
        if num < 0:
            raise InputError(f"{where}: {value!r} must not be negative")
        return int(num)
    return float(num)


def _parse_rows(
    rows: Sequence[Mapping[str, Any]], source: str
) -> tuple[VariantKPIs, VariantKPIs, float, float | None]:
    by_variant: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if not isinstance(row, Mapping):
            raise InputError(f"{source}: every row must be an object with the columns")
        cols = {str(k).strip().lower() for k in row}
        missing = [c for c in SUMMARY_COLUMNS if c not in cols]
        if missing:
            raise InputError(
                f"{source}: missing column(s) {', '.join(missing)} "
                f"(need: {', '.join(SUMMARY_COLUMNS)})"
            )
        clean = {str(k).strip().lower(): v for k, v in row.items()}
        variant = str(clean["variant"]).strip().upper()
        if variant not in ("A", "B"):
            raise InputError(
                f"{source}: variant must be A or B, got {str(clean['variant'])[:40]!r}"
            )
        if variant in by_variant:
            raise InputError(f"{source}: variant {variant} appears twice")
        by_variant[variant] = clean
    if set(by_variant) != {"A", "B"}:
        missing_v = " and ".join(v for v in ("A", "B") if v not in by_variant)
        raise InputError(
            f"{source}: no row for variant {missing_v} (need one row each for A and B)"
        )
    kpis: dict[str, VariantKPIs] = {}
    shares: list[float] = []
    days: list[float] = []
    for v in ("A", "B"):
        row = by_variant[v]
        nums: dict[str, Any] = {}
        for c in SUMMARY_COLUMNS[1:]:
            nums[c] = _parse_number(row[c], c, v, source, whole=c not in _FLOAT_COLUMNS)
        if nums["engagement_sumsq"] < 0:
            raise InputError(
                f"{source}: variant {v}, column engagement_sumsq: must not be negative"
            )
        for opt, dest in (("treatment_share", shares), ("days", days)):
            if row.get(opt) not in (None, ""):
                dest.append(_parse_number(row[opt], opt, v, source, whole=False))
        kpis[v] = VariantKPIs.from_sums(v, v, nums)
    share = 0.5
    if shares:
        if len(set(shares)) > 1:
            raise InputError(f"{source}: treatment_share differs between the rows")
        share = shares[0]
        if not 0 < share < 1:
            raise InputError(f"{source}: treatment_share must be in (0, 1), got {share}")
    day_value: float | None = None
    if days:
        if len(set(days)) > 1:
            raise InputError(f"{source}: days differs between the rows")
        day_value = days[0]
        if day_value <= 0:
            raise InputError(f"{source}: days must be > 0, got {day_value}")
    return kpis["A"], kpis["B"], share, day_value


def load_summary(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a summary file: CSV with a header row, or JSON (``-`` reads stdin).

    JSON may be a list of row objects, an object keyed by variant (``{"A": {...}, "B":
    {...}}``) or an object with such a ``"variants"`` member (the JSON of
    ``experiment results``).  Raises ``InputError`` with one line.
    """
    label = "stdin" if str(path) == "-" else str(path)
    if str(path) == "-":
        text = sys.stdin.read()
    else:
        p = Path(path)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise InputError(f"{label}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"{label}: is a directory, not a summary file") from None
        except PermissionError:
            raise InputError(f"{label}: permission denied") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(f"{label}: not UTF-8 text") from None
    stripped = text.lstrip()
    if not stripped:
        raise InputError(f"{label}: the file is empty")
    if str(path).lower().endswith(".json") or stripped[0] in "[{":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{label}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return _json_rows(doc, label)
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise InputError(f"{label}: no header row")
    rows: list[dict[str, Any]] = []
    for row in reader:
        if None in row:
            raise InputError(f"{label}: line {reader.line_num} has more fields than the header")
        if all(v in (None, "") for v in row.values()):
            continue
        if any(v is None for v in row.values()):
            raise InputError(f"{label}: line {reader.line_num} has fewer fields than the header")
        rows.append(dict(row))
    if not rows:
        raise InputError(f"{label}: no data rows (need one row each for A and B)")
    return rows


def _json_rows(doc: Any, label: str) -> list[dict[str, Any]]:
    if isinstance(doc, dict) and "variants" in doc:
        doc = doc["variants"]
    if isinstance(doc, dict):
        rows = []
        for k, v in doc.items():
            if not isinstance(v, dict):
                raise InputError(f"{label}: variant {str(k)[:20]!r} must map to an object")
            rows.append({**v, "variant": v.get("variant", k)})
        return rows
    if isinstance(doc, list) and all(isinstance(r, dict) for r in doc):
        return [dict(r) for r in doc]
    raise InputError(
        f"{label}: expected a list of row objects or an object keyed by variant (A, B)"
    )


def print_sql() -> str:
    """The standard SQL computing the summary columns, with a comment header."""
    header = (
        "-- smart-suggest: per-variant sufficient statistics of one experiment.\n"
        "-- Bind :experiment_id (or replace it with the id). Needs tables\n"
        "--   events(experiment_id, variant, user_id, type, value) and\n"
        "--   assignments(experiment_id, variant).\n"
        "-- Save the two result rows (A, B) as CSV or JSON and run\n"
        "--   smart-suggest analyze --summary FILE\n"
    )
    return header + SUFFICIENT_STATS_SQL


def fail_conditions(analysis: Analysis) -> dict[str, bool]:
    """Which ``FAIL_CONDITIONS`` hold for ``analysis`` (see their descriptions)."""
    p = analysis.primary
    return {
        "srm": analysis.srm_flagged,
        "invalid": analysis.verdict == "invalid",
        "negative": any(m.significant and m.direction == "worse" for m in analysis.metrics),
        "underpowered": (not p.significant) and p.power < _POWER_TARGET,
        "no-win": analysis.verdict != "worth_shipping",
    }
