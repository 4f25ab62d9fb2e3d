"""Analysis of an experiment with more than two variants (A/B/n).

Each treatment (B, C, ...) is compared with the control A by the whole two-variant
analysis (``verdict.analyze_inputs``: the same tests, intervals, power and verdict rules).
Across the k - 1 comparisons the primary metric's p-values are Holm-adjusted, so the
family-wise false-positive rate stays at alpha: the comparisons are made in the order of
their p-values, the j-th smallest at alpha / (k - j), stopping at the first that fails.
Each comparison's verdict is the one its analysis gives at the level Holm assigned it
(its intervals are at that level too, so they agree with the verdict); a comparison
after the stop gets the stopping level and so cannot be significant.

The sample-ratio check is one k-category goodness-of-fit test of the users per variant
against the weights (a failure makes every verdict ``invalid``). The Bayesian view gives
P(each variant is best) on the primary metric: Beta(1, 1) posteriors for the conversion
rate, normal approximations (the delta-method CTR, Welch's means) otherwise. The
overall recommendation ships the best treatment whose verdict is ``worth_shipping``,
else keeps A.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smart_suggest import __version__, clock
from smart_suggest.analysis.common import METRICS, Progress, check_params, metric_name
from smart_suggest.analysis.inputs import Inputs
from smart_suggest.analysis.report import Analysis, ExperimentInfo
from smart_suggest.analysis.sources import days_run
from smart_suggest.analysis.verdict import analyze_inputs
from smart_suggest.errors import InputError
from smart_suggest.experiments.kpis import ExperimentResults, VariantKPIs
from smart_suggest.experiments.lifecycle import Experiment, Variant
from smart_suggest.store import Store


@dataclass(frozen=True, slots=True)
class Comparison:
    """One treatment against the control."""

    label: str
    strategy: str
    p_value: float  # the primary metric's, unadjusted (always-valid in sequential mode)
    p_value_holm: float
    level: float  # the alpha Holm tested this comparison at
    analysis: Analysis

    @property
    def verdict(self) -> str:
        return self.analysis.verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "strategy": self.strategy,
            "p_value": self.p_value,
            "p_value_holm": self.p_value_holm,
            "holm_level": self.level,
            "verdict": self.verdict,
            "headline": self.analysis.headline,
            "analysis": self.analysis.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class MultiAnalysis:
    experiment: ExperimentInfo
    generated_at: str
    version: str
    alpha: float
    min_lift: float
    mode: str
    primary_metric: str
    variants: tuple[VariantKPIs, ...]
    weights: tuple[float, ...]
    srm: Any  # stats.multiarm.KSrmResult
    comparisons: tuple[Comparison, ...]
    prob_best: Any  # stats.multiarm.ProbBest
    prob_best_label: str
    recommendation: Any  # stats.multiarm.Recommendation
    cuped: Any = None  # analysis.cuped.CupedSummary | None
    warnings: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        """``invalid`` when the SRM check failed, else ``ship`` or ``keep``."""
        return str(self.recommendation.action)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment.to_dict(),
            "generated_at": self.generated_at,
            "version": self.version,
            "design": "ab",
            "alpha": self.alpha,
            "min_lift": self.min_lift,
            "mode": self.mode,
            "primary_metric": self.primary_metric,
            "variants": {v.variant: v.to_dict() for v in self.variants},
            "weights": dict(zip([v.variant for v in self.variants], self.weights, strict=True)),
            "srm": self.srm.to_dict(),
            "correction": "holm",
            "comparisons": [c.to_dict() for c in self.comparisons],
            "prob_best": dict(
                zip(self.prob_best.labels, self.prob_best.probabilities, strict=True)
            ),
            "prob_best_method": f"{self.prob_best.method} ({self.prob_best_label})",
            "recommendation": self.recommendation.to_dict(),
            "verdict": self.verdict,
            "cuped": None if self.cuped is None else self.cuped.to_dict(),
            "warnings": list(self.warnings),
        }


def holm_levels(p_values: list[float], alpha: float) -> list[float]:
    """The level Holm tests each p-value at (step-down, stopping at the first failure)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    levels = [0.0] * m
    stop: float | None = None
    for rank, i in enumerate(order):
        level = alpha / (m - rank)
        if stop is None and p_values[i] >= level:
            stop = level
        levels[i] = level if stop is None else stop
    return levels


def _pair(exp: Experiment, arm: Variant) -> Experiment:
    """The experiment seen as control vs one treatment (for the two-variant analysis)."""
    a = exp.variants[0]
    share = arm.weight / (a.weight + arm.weight)
    return dataclasses.replace(
        exp, treatment=arm.strategy, treatment_share=share, variants=(a, arm)
    )


def _pair_days(tl: Any, label: str) -> list[tuple[str, int, int, int, int]]:
    pts_a, pts_x = tl.series("A"), tl.series(label)
    return [
        (clock.iso(pa.start_ts)[:10], pa.impressions, pa.clicks, px.impressions, px.clicks)
        for pa, px in zip(pts_a, pts_x, strict=True)
    ]


def _prob_best(metric: str, arms: tuple[VariantKPIs, ...]) -> tuple[Any, str]:
    from smart_suggest.stats import ratio
    from smart_suggest.stats.multiarm import prob_best_beta, prob_best_normal

    labels = [a.variant for a in arms]
    if metric == "conversion_rate":
        return prob_best_beta(
            labels, [a.users_converted for a in arms], [a.users_exposed for a in arms]
        ), "conversion rate, Beta(1, 1) priors"
    means, ses = [], []
    for a in arms:
        if metric == "ctr":
            from smart_suggest.analysis.common import ratio_sums

            arm = ratio.ratio_arm(ratio_sums(a))
            means.append(arm.ratio)
            ses.append(arm.se)
        else:
            n = a.engagement_n
            means.append(a.engagement_mean or 0.0)
            sd = a.engagement_sd or 0.0
            ses.append(sd / n**0.5 if n > 0 else 0.0)
    label = "CTR per user, delta-method normal" if metric == "ctr" else "engagement, normal"
    return prob_best_normal(labels, means, ses), label


def _prob_best_cuped(
    metric: str, cuped: Any, arms: tuple[VariantKPIs, ...], prob: Any, label: str
) -> tuple[Any, str]:
    """P(each variant is best) from the CUPED-adjusted means and standard errors (normal
    approximations), or the unadjusted ``prob`` when some variant has none."""
    from smart_suggest.stats.multiarm import prob_best_normal

    by_label = {v.label: v for v in cuped.results[metric].variants}
    found = [by_label[a.variant] for a in arms if a.variant in by_label]
    if len(found) != len(arms) or any(
        v.adjusted_mean is None or v.adjusted_se is None for v in found
    ):
        return prob, label
    means = [float(v.adjusted_mean) for v in found]
    ses = [float(v.adjusted_se) for v in found]
    name = "CTR per user" if metric == "ctr" else "conversion rate"
    return (
        prob_best_normal([a.variant for a in arms], means, ses),
        f"{name}, CUPED-adjusted normal",
    )


def analyze_results(
    exp: Experiment,
    res: ExperimentResults,
    tl: Any,
    *,
    alpha: float = 0.05,
    metric: str | None = None,
    sequential: bool = False,
    min_lift: float = 0.05,
    tau2: Mapping[str, float] | None = None,
    cuped: Any = None,
) -> MultiAnalysis:
    """The A/B/n analysis of a stored experiment's results (``cuped``: a CupedSummary
    over all its variants, whose adjusted tests then decide; see ``compare_arms``)."""
    check_params(alpha, min_lift)
    days = days_run(exp, res)
    arms = res.variants
    by_label = {v.label: v for v in exp.variants}
    pairs: list[tuple[str, str, Inputs]] = []
    for kpis in arms[1:]:
        arm = by_label.get(kpis.variant)
        if arm is None:
            raise InputError(f"variant {kpis.variant} has users but is not in the experiment")
        pairs.append(
            (
                arm.label,
                arm.strategy,
                Inputs(
                    info=ExperimentInfo.of(_pair(exp, arm), days),
                    a=arms[0],
                    b=kpis,
                    primary_declared=exp.primary_metric,
                    days=_pair_days(tl, kpis.variant) if tl is not None else [],
                    daily_assigned=[d.to_dict() for d in res.daily_assigned],
                    revision=res.revision,
                ),
            )
        )
    return compare_arms(
        ExperimentInfo.of(exp, days),
        arms,
        tuple(by_label[a.variant].weight for a in arms),
        pairs,
        alpha=alpha,
        metric=metric,
        sequential=sequential,
        min_lift=min_lift,
        tau2=tau2,
        cuped=cuped,
    )


def compare_arms(
    info: ExperimentInfo,
    arms: tuple[VariantKPIs, ...],
    weights: tuple[float, ...],
    pairs: list[tuple[str, str, Inputs]],
    *,
    alpha: float = 0.05,
    metric: str | None = None,
    sequential: bool = False,
    min_lift: float = 0.05,
    tau2: Mapping[str, float] | None = None,
    cuped: Any = None,
) -> MultiAnalysis:
    """Each treatment of ``pairs`` (label, strategy, its Inputs against the control)
    against the control, Holm across the comparisons, the k-category SRM check, P(best)
    and the recommendation.

    The per-variant sums ``arms`` are computed once and shared by every comparison; each
    comparison runs the whole two-variant analysis once, at its Holm level: the level
    needs only the primary metric's p-values, which come from its headline test alone
    (``metrics.prepare``; with ``cuped`` applied, the adjusted test's).
    """
    from smart_suggest.analysis.metrics import prepare, with_cuped
    from smart_suggest.analysis.verdict import cuped_comparisons
    from smart_suggest.stats import holm
    from smart_suggest.stats.multiarm import recommend, srm_k

    check_params(alpha, min_lift)
    chosen = metric_name(metric)
    primary = chosen or info.primary_metric or "ctr"
    adjust = cuped is not None and cuped.applied and not sequential
    p_raw = []
    for label, _strategy, inp in pairs:
        prep = prepare(primary, inp, alpha, sequential, tau2)
        if adjust:
            prep = with_cuped(prep, cuped_comparisons(cuped, label).get(primary), alpha)
        p_raw.append(prep.p_for_holm)
    adjusted = holm(p_raw, alpha).adjusted
    levels = holm_levels(p_raw, alpha)
    common = {"metric": primary, "sequential": sequential, "min_lift": min_lift, "tau2": tau2}
    comps = []
    for (label, strategy, inp), p, p_h, level in zip(pairs, p_raw, adjusted, levels, strict=True):
        analysis = analyze_inputs(inp, alpha=level, cuped=cuped, **common)  # type: ignore[arg-type]
        comps.append(Comparison(label, strategy, p, p_h, level, analysis))
    srm = srm_k([a.variant for a in arms], [a.users_assigned for a in arms], list(weights))
    prob, prob_label = _prob_best(primary, arms)
    if comps and all(c.analysis.primary.adjustment == "cuped" for c in comps):
        # The adjusted tests decided every comparison: P(best) from the same estimates.
        prob, prob_label = _prob_best_cuped(primary, cuped, arms, prob, prob_label)
    estimates = {c.label: c.analysis.primary.value_b or 0.0 for c in comps}
    rec = recommend("A", {c.label: c.verdict for c in comps}, estimates, invalid=bool(srm.flagged))
    warnings = []
    if srm.flagged:
        warnings.append(
            f"sample-ratio mismatch over the {len(arms)} variants (p = {srm.p_value:.2g}): "
            "assignment or logging is broken; nothing can be trusted"
        )
    if chosen is None and info.primary_metric is None:
        warnings.append(
            "no primary metric was declared for this experiment: CTR is used by default"
        )
    return MultiAnalysis(
        experiment=info,
        generated_at=clock.iso(clock.now()),
        version=__version__,
        alpha=alpha,
        min_lift=min_lift,
        mode="sequential" if sequential else "fixed_horizon",
        primary_metric=primary,
        variants=arms,
        weights=weights,
        srm=srm,
        comparisons=tuple(comps),
        prob_best=prob,
        prob_best_label=prob_label,
        recommendation=rec,
        cuped=cuped,
        warnings=tuple(warnings),
    )


def analyze_sums(
    arms: list[VariantKPIs],
    weights: list[float],
    days: float | None,
    *,
    name: str,
    source: str,
    note: str,
    alpha: float = 0.05,
    metric: str | None = None,
    sequential: bool = False,
    min_lift: float = 0.05,
    tau2: Mapping[str, float] | None = None,
    cuped: Any = None,
    id: int | None = None,
) -> MultiAnalysis:
    """The A/B/n analysis of per-variant sums computed elsewhere (a ``--summary`` file
    with k rows, an external engine): no timeline, so no novelty check (``note``)."""
    share = weights[1] / (weights[0] + weights[1])
    info = dataclasses.replace(
        ExperimentInfo.elsewhere(name, share, days, source, id=id), treatment=""
    )
    pairs = []
    for arm, w in zip(arms[1:], weights[1:], strict=True):
        pair = dataclasses.replace(
            ExperimentInfo.elsewhere(name, w / (weights[0] + w), days, source, id=id),
            treatment=arm.variant,
        )
        pairs.append(
            (arm.variant, arm.variant, Inputs(pair, arms[0], arm, None, timeline_note=note))
        )
    return compare_arms(
        info,
        tuple(arms),
        tuple(weights),
        pairs,
        alpha=alpha,
        metric=metric,
        sequential=sequential,
        min_lift=min_lift,
        tau2=tau2,
        cuped=cuped,
    )


def analyze_multi(
    store: Store,
    exp: Experiment,
    *,
    alpha: float = 0.05,
    metric: str | None = None,
    sequential: bool = False,
    min_lift: float = 0.05,
    tau2: Mapping[str, float] | None = None,
    progress: Progress | None = None,
    cuped: bool = False,
) -> MultiAnalysis:
    """Analyse a stored A/B/n experiment (see the module docstring). ``cuped`` adjusts
    CTR and conversion with the pre-period covariates, and the adjusted tests decide."""
    from smart_suggest.experiments.kpis import results
    from smart_suggest.experiments.timeline import timeline

    step = progress or (lambda stage, done, total: None)
    rows = None
    with store.read():
        step("results", 0, 3)
        res = results(store, exp.id)
        if cuped:
            from smart_suggest.analysis.cuped import covariate_sums

            rows = covariate_sums(store, exp.id)
        step("timeline", 1, 3)
        try:
            tl = timeline(store, exp.id, bucket="day", cumulative=False)
        except InputError:
            tl = None
    step("statistics", 2, 3)
    summary = None
    if rows is not None:
        from smart_suggest.analysis.cuped import cuped_from_rows

        summary = cuped_from_rows([a.variant for a in res.variants], rows, alpha=alpha)
    out = analyze_results(
        exp,
        res,
        tl,
        alpha=alpha,
        metric=metric,
        sequential=sequential,
        min_lift=min_lift,
        tau2=tau2,
        cuped=summary,
    )
    step("statistics", 3, 3)
    return out


__all__ = ["METRICS", "Comparison", "MultiAnalysis", "analyze_multi", "holm_levels"]
