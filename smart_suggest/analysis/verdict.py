"""The whole analysis from ``Inputs``: SRM, Holm over secondary metrics, power, novelty,
the overall verdict, and the ``--fail-on`` conditions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from smart_suggest import __version__, clock
from smart_suggest.analysis.common import (
    METRICS,
    POWER_TARGET,
    UNIT_NOUN,
    check_params,
    fmt_p,
    metric_name,
    pct,
)
from smart_suggest.analysis.inputs import Inputs
from smart_suggest.analysis.metrics import metric_analysis, prepare, with_cuped
from smart_suggest.analysis.report import (
    Analysis,
    BayesSummary,
    MetricAnalysis,
    NoveltySummary,
    PowerSummary,
    SequentialSummary,
)
from smart_suggest.errors import InputError

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


def _novelty(inp: Inputs, alpha: float) -> NoveltySummary:
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
            f"{trend.slope * 100:+.3g} points/day ({fmt_p(trend.p_value)}): no sign of a "
            "shrinking (novelty) effect"
        )
    return NoveltySummary("ctr", method, tuple(days), tuple(lifts), tuple(weights), trend, msg)


def _srm_message(srm: Any, share: float) -> str:
    split = f"{(1 - share) * 100:.3g}/{share * 100:.3g}"
    a, b = srm.observed[-2], srm.observed[-1]
    if a + b == 0:
        return "No users assigned yet: nothing to check."
    body = f"A {a:,} vs B {b:,} users for a {split} split ({fmt_p(srm.p_value)})"
    if srm.flagged:
        return (
            f"Sample ratio mismatch: {body}, below the {srm.threshold:g} threshold: "
            "assignment or logging is broken, so no comparison can be trusted."
        )
    return f"No sample ratio mismatch: {body}."


def _power_summary(
    primary: MetricAnalysis, inp: Inputs, min_lift: float, days_run: float | None
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
        f"{pw * 100:.0f}% power to detect a {pct(min_lift)} lift in {METRICS[primary.metric]} "
        f"at the current sample (target {POWER_TARGET * 100:.0f}%)"
    ]
    if primary.mde_relative is not None:
        parts.append(f"detectable lift now about {pct(primary.mde_relative)}")
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
        unit=UNIT_NOUN[primary.metric],
        min_lift=min_lift,
        power=pw,
        power_target=POWER_TARGET,
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
            f"mSPRT on {METRICS[primary.metric]}: always-valid {fmt_p(seq.p_value)}{ci_txt} - "
            "significant; safe to stop and decide now."
        )
    else:
        status = "keep running"
        msg = (
            f"mSPRT on {METRICS[primary.metric]}: always-valid {fmt_p(seq.p_value)}{ci_txt} - not "
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
        "multiple_testing": "Holm step-down over the secondary metrics; their intervals at the "
        "Bonferroni level 1 - alpha / (number of secondary metrics), consistent with it",
        "bayes": "on each metric's headline unit: CTR per exposed user by the normal posterior "
        "of the delta-method difference (flat prior); conversion by Beta-Binomial with "
        "Beta(1, 1) priors; P(B > A) and expected loss. CTR per impression is shown too, "
        "labelled, never as the headline",
        "power": "power to detect the --min-lift relative effect at the current sample; "
        f"proportions: {PROPORTION_FORMULA}; ratio and means: SE scaled by 1/sqrt(n)",
        "duration": "remaining users / (users assigned per day so far), per variant",
        "novelty": "weighted least-squares slope of the daily relative CTR lift",
        "verdict": "stats.VERDICT_RULES",
        "tails": "share of impressions held by the top 1% of exposed users; above 10% the "
        "delta method's finite-variance assumption is in doubt (local database only)",
        "bootstrap": "with --bootstrap: user-level cluster bootstrap of the CTR difference "
        "(users resampled within each arm, percentile interval, fixed seed)",
    }
    if sequential:
        m["sequential"] = (
            "mSPRT with a normal mixture (Johari et al.), tau^2 = (0.1 x control value)^2; "
            "always-valid p-values and confidence sequences"
        )
    return m


def tuned_tau2_for(metric: str, inp: Inputs, alpha: float, planned_units: int) -> float | None:
    """The mSPRT tau^2 with the most power at ``planned_units`` per variant for ``metric``,
    from the variance of the difference now (None when there is no test yet)."""
    from smart_suggest import stats
    from smart_suggest.analysis.metrics import _headline_test, _se, _sizes

    res, _problem = _headline_test(metric, inp.a, inp.b, alpha, inp.engagement_centred)
    if res is None or res.test == "none":
        return None
    se = _se(metric, res)
    n_a, n_b = _sizes(metric, res)
    if not (se > 0 and n_a + n_b > 0):
        return None
    return stats.tuned_tau2(se * se, (n_a + n_b) / 2.0, float(planned_units), alpha)


def cuped_comparisons(cuped: Any, label: str) -> dict[str, Any]:
    """Per metric, the CUPED comparison of variant ``label`` with the control."""
    out = {}
    for metric, res in cuped.results.items():
        for comp in res.comparisons:
            if comp.label == label:
                out[metric] = comp
    return out


def analyze_inputs(
    inp: Inputs,
    *,
    alpha: float,
    metric: str | None,
    sequential: bool,
    min_lift: float,
    tau2: Mapping[str, float] | None,
    bootstrap: Any = None,
    group: Any = None,
    planned_units: int | None = None,
    cuped: Any = None,
) -> Analysis:
    """The whole analysis of ``inp``; ``cuped`` (``analysis.cuped.CupedSummary`` over the
    experiment's variants) replaces the unadjusted tests of CTR and conversion by their
    CUPED-adjusted ones, so the verdicts follow the adjusted tests (fixed-horizon only:
    the sequential modes keep their own tests, and say so); ``bootstrap``
    (``tails.BootstrapOptions``) adds the user-level bootstrap interval of CTR, which
    needs ``inp.user_pairs``; ``group``
    (``groupseq.GroupSummary``) makes the primary metric's decision the group-sequential
    one; ``planned_units`` (per variant) tunes the primary metric's mSPRT tau^2 to that
    planned size (``stats.tuned_tau2``)."""
    from smart_suggest import stats
    from smart_suggest.analysis.tails import NEEDS_USERS, tails_summary

    check_params(alpha, min_lift)
    if bootstrap is not None and not inp.user_pairs:
        raise InputError(NEEDS_USERS)
    chosen = metric_name(metric)
    primary_name = chosen or inp.primary_declared or "ctr"
    declared = chosen is not None or inp.primary_declared is not None
    secondaries = [m for m in METRICS if m != primary_name]
    a, b = inp.a, inp.b
    share = inp.info.treatment_share
    srm = stats.srm_check(a.users_assigned, b.users_assigned, treatment_share=share)
    novelty = _novelty(inp, alpha)
    basis_of: dict[str, str] = {}
    if sequential and planned_units is not None and not (tau2 and primary_name in tau2):
        tuned = tuned_tau2_for(primary_name, inp, alpha, planned_units)
        if tuned is not None:
            tau2 = {**(tau2 or {}), primary_name: tuned}
            basis_of[primary_name] = (
                f"tuned for power at the planned {planned_units:,} per variant "
                f"(tau^2 = {stats.tuned_ratio(alpha):.3f} x variance of the difference there)"
            )
    preps = {
        m: prepare(m, inp, alpha, sequential, tau2, basis_of) for m in (primary_name, *secondaries)
    }
    cuped_note = ""
    if cuped is not None and cuped.applied:
        if sequential or group is not None:
            cuped_note = (
                "CUPED is shown for information: the sequential verdict uses the unadjusted "
                "always-valid test"
            )
        else:
            for name, comp in cuped_comparisons(cuped, inp.b.variant).items():
                if name in preps:
                    preps[name] = with_cuped(preps[name], comp, alpha)
    common = {
        "alpha": alpha,
        "min_lift": min_lift,
        "sequential": sequential,
        "srm": srm,
        "trend": novelty.trend,
    }
    primary = metric_analysis(
        preps[primary_name], "primary", inp, holm_p=None, group=group, **common
    )
    # Holm over the secondary metrics, on the p-values their verdicts would use
    # (always-valid ones in sequential mode: Holm needs only valid p-values).
    holm = stats.holm([preps[m].p_for_holm for m in secondaries], alpha) if secondaries else None
    seconds = [
        metric_analysis(
            preps[m],
            "secondary",
            inp,
            holm_p=holm.adjusted[i] if holm else None,
            family=len(secondaries),
            **common,
        )
        for i, m in enumerate(secondaries)
    ]
    metrics = (primary, *seconds)

    warnings: list[str] = []
    if srm.flagged:
        warnings.append(_srm_message(srm, share))
    if not declared and inp.info.source != "database":
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
    if cuped_note:
        warnings.append(cuped_note)
    if group is not None and group.status == "continue":
        warnings.append(
            "Group-sequential: " + group.message + "; decide only when a boundary is crossed "
            "or at the final look"
        )
    for m in metrics:
        if m.verdict == "invalid" and m.judgement is None:
            warnings.append(f"{m.label}: {m.note}")
    if novelty.trend is not None and novelty.trend.shrinking and primary.metric != "ctr":
        warnings.append("CTR: " + novelty.trend.warning)
    tails = None
    if inp.user_pairs:
        ctr = next(m for m in metrics if m.metric == "ctr")
        tails = tails_summary(inp.user_pairs, ctr if ctr.test != "none" else None, bootstrap)
        if tails.heavy:
            warnings.append("CTR: " + tails.message)
        bci, dci = (tails.bootstrap.ci if tails.bootstrap else None), tails.delta_ci
        if bci is not None and dci is not None and ctr.significant and bci.contains(0.0):
            warnings.append(
                "CTR: the user-level bootstrap interval includes 0 although the delta-method "
                "test is significant: the evidence rests on the delta method's variance"
            )

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
    # The verdict is the primary metric's, unless logging made any metric impossible to
    # test: inconsistent data anywhere means the experiment's data cannot be trusted.
    verdict, headline, conclusion = primary.verdict, primary.headline, primary.summary
    broken = [m for m in metrics if m.verdict == "invalid" and m.judgement is None]
    if broken and verdict != "invalid":
        names = ", ".join(m.label for m in broken)
        verdict, headline = "invalid", "Invalid data"
        conclusion = (
            f"{conclusion} But {names} cannot be analysed (inconsistent logging), so the "
            "experiment's data cannot be trusted: overall verdict invalid."
        )
    days_run = inp.info.days_run
    return Analysis(
        experiment=inp.info,
        generated_at=clock.iso(clock.now()),
        version=__version__,
        alpha=alpha,
        min_lift=min_lift,
        mode="group_sequential"
        if group is not None
        else ("sequential" if sequential else "fixed_horizon"),
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
        verdict=verdict,
        headline=headline,
        conclusion=conclusion,
        warnings=tuple(dict.fromkeys(warnings)),
        methods=_methods(alpha, sequential)
        | (
            {
                "group_sequential": "Lan-DeMets alpha spending over planned looks "
                "(stats.groupseq), looks kept in sequential_looks; the primary metric's p is "
                "on the look's boundary scale, its interval the repeated CI"
            }
            if group is not None
            else {}
        )
        | (
            {
                "cuped": "CTR and conversion: the CUPED-adjusted difference (pre-period "
                "covariates, theta pooled over the variants) and its normal z test decide "
                "the verdict; the unadjusted test is kept in the cuped section"
            }
            if cuped is not None and cuped.applied and not cuped_note
            else {}
        ),
        daily_assigned=tuple(inp.daily_assigned),
        revision=inp.revision,
        tails=tails,
        group=group,
        cuped=cuped,
    )


def fail_conditions(analysis: Analysis) -> dict[str, bool]:
    """Which ``FAIL_CONDITIONS`` hold for ``analysis`` (see their descriptions)."""
    p = analysis.primary
    return {
        "srm": analysis.srm_flagged,
        "invalid": analysis.verdict == "invalid",
        "negative": any(m.significant and m.direction == "worse" for m in analysis.metrics),
        "underpowered": (not p.significant) and p.power < POWER_TARGET,
        "no-win": analysis.verdict != "worth_shipping",
    }
