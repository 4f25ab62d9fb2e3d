"""The result types of an analysis: frozen dataclasses that serialise to JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from smart_suggest import clock
from smart_suggest.experiments.lifecycle import Experiment


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
    source: str  # "database", "summary" or "KIND:DIALECT" of an external engine

    @classmethod
    def elsewhere(
        cls, name: str, share: float, days_run: float | None, source: str, id: int | None = None
    ) -> ExperimentInfo:
        """An experiment known only by sums computed elsewhere (a file, another engine)."""
        return cls(
            id=id,
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
            days_run=days_run,
            source=source,
        )

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
    B - A (for secondary metrics at the Bonferroni level of their Holm family, so that it
    agrees with the adjusted decision: ``ci_note`` says so); ``intervals`` the per-variant
    intervals of the metric.
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
    ci_note: str  # how ``ci`` was adjusted ("" = the headline test's own level)
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
    bayes: Any  # on the headline test's unit: NormalPosteriorResult (CTR) | BetaBinomialResult
    bayes_label: str
    bayes_per_impression: Any  # CTR only: BetaBinomialResult per impression, labelled
    bayes_per_impression_label: str
    judgement: Any  # stats.Verdict | None
    #: "cuped" when the difference, interval and p-value are CUPED-adjusted, else "".
    adjustment: str = ""

    @property
    def conclusion(self) -> str:
        return self.summary


@dataclass(frozen=True, slots=True)
class BayesSummary(_ToDict):
    """P(B > A) and expected losses of the primary metric on its headline test's unit: the
    user-level normal posterior for CTR, Beta-Binomial (Beta(1, 1) priors) per exposed user
    for conversion."""

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
    tails: Any = None  # tails.TailsSummary (local store only: needs per-user data)
    group: Any = None  # groupseq.GroupSummary (analyze --sequential group) | None
    cuped: Any = None  # analysis.cuped.CupedSummary | None (its adjusted tests decide)

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
