"""Per-metric tests: the headline test, intervals, sample size, sequential and Bayesian
views of one metric, and the ``MetricAnalysis`` that joins them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from smart_suggest.analysis.common import (
    LABELS,
    METRICS,
    PER_IMPRESSION,
    POWER_TARGET,
    UNITS,
    fmt_p,
    pct,
    proportion_problem,
    ratio_sums,
    zcrit,
)
from smart_suggest.analysis.inputs import Inputs
from smart_suggest.analysis.report import MetricAnalysis
from smart_suggest.errors import InputError
from smart_suggest.experiments.kpis import VariantKPIs


def _arm_intervals(metric: str, res: Any, alpha: float) -> dict[str, Any]:
    from smart_suggest.stats import Interval
    from smart_suggest.stats import _dist as st

    level = 1.0 - alpha
    if metric == "conversion_rate":
        return {"A": res.ci_a if res.n_a else None, "B": res.ci_b if res.n_b else None}
    if metric == "ctr":
        out: dict[str, Any] = {}
        for arm, r in (("A", res.a), ("B", res.b)):
            if not r.defined:
                out[arm] = None
            else:
                h = zcrit(alpha) * r.se
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
    from smart_suggest import stats
    from smart_suggest.stats import _dist as st

    n_a, n_b = _sizes(metric, res)
    n_now = min(n_a, n_b)
    if value_a is None or value_a == 0 or n_now == 0:
        return None, None, "no control baseline yet: sample size and MDE are not defined"
    zz = zcrit(alpha) + float(st.norm.ppf(POWER_TARGET))
    if metric == "conversion_rate":
        mde = None
        if 0 < value_a < 1:
            m = stats.mde_proportions(value_a, n_now, alpha=alpha, power=POWER_TARGET)
            mde = m.mde_relative
        if min_lift == 0:
            return None, mde, "a zero --min-lift needs infinitely many users"
        if not (0 < value_a < 1 and value_a * (1 + min_lift) < 1):
            return (
                None,
                mde,
                (
                    f"control rate {value_a:.3g} leaves no room for a {pct(min_lift)} lift: "
                    "no sample size"
                ),
            )
        n = stats.sample_size_proportions(
            value_a, min_lift, relative=True, alpha=alpha, power=POWER_TARGET
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


def _method(res: Any) -> str:
    names = {
        "delta_method_z": "user-level ratio z test (delta method)",
        "chi_square": "Pearson chi-square (= two-proportion z test)",
        "fisher_exact": "Fisher's exact test",
        "welch_t": "Welch's t test",
        "cuped_z": "z test on the per-user conversion",
        "none": "no test (not enough data)",
    }
    return names.get(res.test, res.test)


def _engagement_mv(k: VariantKPIs, centred: Mapping[str, Any] | None) -> Any:
    """n, mean, variance of one arm's engagement: centred values when the store gave them."""
    from smart_suggest import stats

    if centred and k.variant in centred:
        return centred[k.variant]
    return stats.mean_var_from_sums(k.engagement_n, k.engagement_sum, k.engagement_sumsq)


def _headline_test(
    metric: str,
    a: VariantKPIs,
    b: VariantKPIs,
    alpha: float,
    centred: Mapping[str, Any] | None = None,
) -> tuple[Any, str]:
    """(raw stats result or None, reason when no result is possible)."""
    from smart_suggest import stats

    try:
        if metric == "ctr":
            return stats.ratio_test(ratio_sums(a), ratio_sums(b), alpha), ""
        if metric == "conversion_rate":
            problem = proportion_problem(
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
        ma, mb = _engagement_mv(a, centred), _engagement_mv(b, centred)
        return stats.welch_t_test(ma.n, ma.mean, ma.var, mb.n, mb.mean, mb.var, alpha), ""
    except stats.UnresolvedVariance as exc:
        # Invalid rather than a warning: any p-value (1 included) would rest on a variance
        # the numbers do not contain, and --fail-on invalid must see it.
        return None, str(exc)
    except ValueError as exc:  # impossible sums (only from a hand-made summary)
        return None, f"the sufficient statistics are inconsistent: {exc}"


def _tau2(
    metric: str,
    value_a: float | None,
    value_b: float | None,
    given: Mapping[str, float] | None,
    basis_of: Mapping[str, str] | None = None,
) -> tuple[float | None, str]:
    from smart_suggest import stats

    if given and metric in given:
        t = float(given[metric])
        if not (math.isfinite(t) and t > 0):
            raise InputError(f"tau2 for {metric} must be a number > 0, got {given[metric]!r}")
        why = (basis_of or {}).get(metric, "fixed by the caller")
        return t, f"tau^2 = {t:.4g}, {why}"
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
    centred: Mapping[str, Any] | None = None,
    basis_of: Mapping[str, str] | None = None,
) -> tuple[Any, float | None, str]:
    from smart_suggest import stats

    t2, basis = _tau2(metric, value_a, value_b, tau2, basis_of)
    if t2 is None:
        return None, None, f"not run: {basis}"
    if metric == "ctr":
        seq = stats.sequential_ratio(ratio_sums(a), ratio_sums(b), t2, alpha)
    elif metric == "conversion_rate":
        seq = stats.sequential_proportions(
            a.users_converted, a.users_exposed, b.users_converted, b.users_exposed, t2, alpha
        )
    else:
        ma, mb = _engagement_mv(a, centred), _engagement_mv(b, centred)
        seq = stats.sequential_means(ma.n, ma.mean, ma.var, mb.n, mb.mean, mb.var, t2, alpha)
    return seq, t2, basis


def _bayes(metric: str, a: VariantKPIs, b: VariantKPIs, res: Any) -> tuple[Any, str, str]:
    """(the Bayesian view on the headline test's unit or None, label, note).

    CTR: the normal posterior of the user-level (delta-method) difference, the same unit as
    the headline test; conversion: Beta-Binomial per exposed user.
    """
    from smart_suggest import stats

    if metric == "ctr":
        label = "CTR per exposed user (normal posterior of the delta-method difference)"
        if res is None or res.test == "none":
            return None, label, "not computed: no user-level test is possible yet"
        return stats.normal_posterior(res.ratio_a, res.ratio_b, res.se_diff), label, ""
    if metric == "conversion_rate":
        xa, na, xb, nb = a.users_converted, a.users_exposed, b.users_converted, b.users_exposed
        label = "conversion rate (per exposed user)"
    else:
        return None, "", ""
    if xa > na or xb > nb:
        return None, label, "not computed: more successes than trials in the data"
    return stats.beta_binomial(xa, na, xb, nb), label, ""


def _bayes_per_impression(a: VariantKPIs, b: VariantKPIs) -> tuple[Any, str]:
    """CTR's Beta-Binomial per impression: shown, labelled, never the headline."""
    from smart_suggest import stats

    label = f"CTR {PER_IMPRESSION}"
    if a.clicks > a.impressions or b.clicks > b.impressions:
        return None, label
    return stats.beta_binomial(a.clicks, a.impressions, b.clicks, b.impressions), label


def _per_impression(a: VariantKPIs, b: VariantKPIs, alpha: float) -> tuple[Any, str]:
    from smart_suggest import stats

    problem = proportion_problem(
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
class Prepared:
    """The tests of one metric before its verdict (the verdict needs Holm across metrics)."""

    metric: str
    res: Any
    problem: str
    value_a: float | None
    value_b: float | None
    seq: Any
    seq_note: str
    #: The CUPED comparison (``stats.cuped.CupedComparison``) whose adjusted difference
    #: replaced the test's in ``res`` (``with_cuped``), and the unadjusted test.
    cuped: Any = None
    unadjusted: Any = None
    cuped_note: str = ""  # why CUPED did not decide this metric although it ran

    @property
    def p_for_holm(self) -> float:
        if self.res is None:
            return 1.0
        return float(self.seq.p_value if self.seq is not None else self.res.p_value)


def prepare(
    metric: str,
    inp: Inputs,
    alpha: float,
    sequential: bool,
    tau2: Mapping[str, float] | None,
    basis_of: Mapping[str, str] | None = None,
) -> Prepared:
    res, problem = _headline_test(metric, inp.a, inp.b, alpha, inp.engagement_centred)
    if res is None:
        return Prepared(metric, None, problem, None, None, None, "not run: no valid test")
    value_a, value_b = _values(metric, res, inp.a, inp.b)
    seq, seq_note = None, ""
    if sequential:
        seq, _t2, seq_note = _sequential(
            metric, inp.a, inp.b, value_a, value_b, alpha, tau2, inp.engagement_centred, basis_of
        )
    return Prepared(metric, res, "", value_a, value_b, seq, seq_note)


def _signed_diff(x: float) -> str:
    return f"difference {x:+.4g}"


def with_cuped(prep: Prepared, comp: Any, alpha: float) -> Prepared:
    """``prep`` with the CUPED-adjusted difference in place of the unadjusted one.

    The adjusted test is the normal z test of the adjusted difference with its standard
    error (``stats.cuped``), except where the unadjusted test had to be Fisher's exact test
    (too few conversions for a normal test: it stays); its interval is rebuilt here at
    ``alpha`` (the level Holm gave an A/B/n comparison, not the one the summary was
    computed at). The relative lift is the adjusted difference over the control's
    observed value; its interval is not given (the adjusted difference and the control's
    mean are correlated through theta, which the sums do not carry). The power, sample
    size and Bayesian view of CTR follow the adjusted standard error. Unusable
    comparisons leave ``prep`` as it was.
    """
    from smart_suggest.stats import Interval
    from smart_suggest.stats import _dist as _st

    res = prep.res
    if res is None or res.test == "none" or prep.seq is not None or comp is None:
        return prep
    if res.test == "fisher_exact":
        # Too few conversions for any normal test (an expected cell below 5): the exact
        # test stays, as it would without CUPED.
        return replace(
            prep,
            cuped_note="CUPED not used for the verdict: too few conversions for its normal "
            "test, so Fisher's exact test decides",
        )
    d, se = comp.adjusted_diff, comp.adjusted_se
    if d is None or se is None or not (math.isfinite(d) and math.isfinite(se) and se > 0):
        return prep
    z = d / se
    crit = zcrit(alpha)
    fields: dict[str, Any] = {
        "diff": d,
        "diff_ci": Interval(d - crit * se, d + crit * se, 1 - alpha),
        "p_value": float(2 * _st.norm.sf(abs(z))),
        "relative_lift": d / prep.value_a if prep.value_a else None,
        "relative_lift_ci": None,
        "z": z,
    }
    if hasattr(res, "se_diff"):
        fields["se_diff"] = se  # the power to detect the threshold follows the adjusted SE
    if hasattr(res, "significant"):
        fields["significant"] = fields["p_value"] < alpha
    if hasattr(res, "test_reason"):  # a proportion: no longer chi-square or Fisher's test
        fields["test"] = "cuped_z"
        fields["test_reason"] = "CUPED-adjusted difference: normal z test"
    return replace(prep, res=replace(res, **fields), cuped=comp, unadjusted=res)


def metric_analysis(
    prep: Prepared,
    role: str,
    inp: Inputs,
    *,
    alpha: float,
    min_lift: float,
    sequential: bool,
    srm: Any,
    trend: Any,
    holm_p: float | None,
    family: int = 1,
    group: Any = None,
) -> MetricAnalysis:
    """The analysis of one metric; ``family`` is the size of its Holm family (secondary
    metrics): its intervals are then at the Bonferroni level 1 - alpha / family, so an
    interval excludes 0 only where the adjusted decision is significant too."""
    from smart_suggest import stats

    metric, res, problem = prep.metric, prep.res, prep.problem
    a, b = inp.a, inp.b
    label = METRICS[metric]
    per_imp, per_imp_note = _per_impression(a, b, alpha) if metric == "ctr" else (None, "")
    bayes, bayes_label, bayes_note = _bayes(metric, a, b, res)
    bayes_imp, bayes_imp_label = _bayes_per_impression(a, b) if metric == "ctr" else (None, "")
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
            unit=UNITS[metric],
            test="none",
            method="no test (inconsistent data)",
            value_a=None,
            value_b=None,
            n_a=0,
            n_b=0,
            intervals={"A": None, "B": None},
            diff=0.0,
            ci=None,
            ci_note="",
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
            per_impression_label=PER_IMPRESSION if per_imp else "",
            sequential=None,
            sequential_note=prep.seq_note,
            bayes=bayes,
            bayes_label=bayes_label,
            bayes_per_impression=bayes_imp,
            bayes_per_impression_label=bayes_imp_label,
            judgement=None,
        )

    value_a, seq, seq_note = prep.value_a, prep.seq, prep.seq_note
    p_label_parts = []
    if prep.cuped is not None:
        p_label_parts.append("CUPED-adjusted")
    if holm_p is not None:
        p_label_parts.append("Holm-adjusted")
    if seq is not None:
        p_label_parts.append("always-valid")
    p_label = " ".join(p_label_parts)
    # Intervals that agree with the Holm decision: Bonferroni level over the family (the
    # platforms' choice); an interval at 95% could exclude 0 beside "not significant".
    diff_ci, rel_ci, ci_note = res.diff_ci, res.relative_lift_ci, ""
    family_intervals = None
    if holm_p is not None and family > 1 and seq is None and prep.cuped is not None:
        se = prep.cuped.adjusted_se
        crit = zcrit(alpha / family)
        diff_ci = stats.Interval(res.diff - crit * se, res.diff + crit * se, 1 - alpha / family)
        family_intervals = (diff_ci, None)
        ci_note = (
            f"CUPED-adjusted Bonferroni {(1 - alpha / family) * 100:.3g}% interval (alpha "
            f"{alpha:g} over {family} secondary metrics), consistent with the Holm-adjusted "
            "p-value"
        )
    elif holm_p is not None and family > 1 and seq is None:
        wide, _problem = _headline_test(metric, a, b, alpha / family, inp.engagement_centred)
        if wide is not None:
            diff_ci, rel_ci = wide.diff_ci, wide.relative_lift_ci
            family_intervals = (diff_ci, rel_ci)
            ci_note = (
                f"Bonferroni {(1 - alpha / family) * 100:.3g}% interval (alpha {alpha:g} over "
                f"{family} secondary metrics), consistent with the Holm-adjusted p-value"
            )
    interval_label = "Bonferroni CI" if family_intervals else None
    if prep.cuped is not None:
        if family_intervals is None:
            family_intervals = (diff_ci, None)
            ci_note = "CUPED-adjusted interval (pre-period covariates)"
        interval_label = "CUPED-adjusted " + (interval_label or "CI")
    p_override = holm_p
    if group is not None and group.p_value is not None:
        # Group-sequential: the boundary decides; its scaled p and repeated CI agree with it.
        p_override, p_label = group.p_value, "group-sequential"
        diff_ci, rel_ci = group.ci, None
        family_intervals, interval_label = (group.ci, None), "repeated CI"
        ci_note = "repeated confidence interval: difference +- the look's boundary x SE"
    judgement = stats.verdict(
        label,
        res,
        srm=srm,
        trend=trend if metric == "ctr" else _only_too_short(trend),
        min_lift=min_lift,
        alpha=alpha,
        p_value=p_override,
        p_value_label=p_label or None,
        sequential=seq,
        intervals=family_intervals,
        interval_label=interval_label,
        label_b=b.variant,  # C, D, ... when one treatment of an A/B/n test is compared
    )
    sentences = [judgement.summary]
    if res.test == "none":
        sentences.insert(0, f"Not enough data to test the {label} yet.")
    if per_imp is not None and per_imp.test != "none":
        sentences.append(
            f"The per-impression {'chi-square' if per_imp.test == 'chi_square' else 'exact'} "
            f"test (which treats every impression as independent and so overstates "
            f"certainty) gives {fmt_p(per_imp.p_value)}."
        )
    if sequential and seq is None:
        sentences.append(f"Sequential test {seq_note}.")
    n_needed, mde_rel, power_note = _sample_size(metric, res, value_a, min_lift, alpha)
    if power_note:
        notes.append(power_note)
    if res.note:
        notes.insert(0, res.note)
    if prep.cuped_note:
        notes.append(prep.cuped_note)
    if prep.cuped is not None:
        unadj = prep.unadjusted
        notes.append(
            f"verdict on the CUPED-adjusted difference; unadjusted {_signed_diff(unadj.diff)}, "
            f"{fmt_p(unadj.p_value)} (--no-cuped gives the unadjusted verdict)"
        )
    if metric == "engagement" and inp.engagement_centred:
        notes.append("variance computed from the centred raw values (the sums could not carry it)")
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
        unit=UNITS[metric],
        test=res.test,
        method=_method(res)
        + (
            ""
            if prep.cuped is None
            else "; difference CUPED-adjusted for the pre-period covariates (normal z test)"
        ),
        value_a=value_a,
        value_b=prep.value_b,
        n_a=n_a,
        n_b=n_b,
        intervals=_arm_intervals(metric, res, alpha),
        diff=res.diff,
        ci=seq.ci if seq is not None else diff_ci,
        ci_note=ci_note,
        relative_lift=res.relative_lift,
        relative_lift_ci=None if seq is not None else rel_ci,
        effect_size=effect,
        effect_size_name=effect_name,
        p_value=judgement.p_value,
        p_value_label=p_label,
        p_value_test=(prep.unadjusted or res).p_value,
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
        detail=prep.unadjusted or res,
        per_impression=per_imp,
        per_impression_label=PER_IMPRESSION if per_imp is not None else "",
        sequential=seq,
        sequential_note=seq_note,
        bayes=bayes,
        bayes_label=bayes_label,
        bayes_per_impression=bayes_imp,
        bayes_per_impression_label=bayes_imp_label,
        judgement=judgement,
        adjustment="cuped" if prep.cuped is not None else "",
    )
