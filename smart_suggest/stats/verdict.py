"""Turn a test result into a verdict and one plain-English paragraph per metric.

The rule (quoted verbatim by the README through ``VERDICT_RULES``) is applied in order;
the first match wins.  "Improvement" means the change in the metric's good direction
(up unless ``higher_is_better=False``).  Power here is the power to detect an
improvement of exactly the practical threshold at the sample size reached so far, not
power at the observed effect (which is just a re-expression of the p-value).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from . import _dist as _st
from ._common import Interval, Result, check_alpha, z_crit
from .continuous import WelchTest
from .guards import SrmResult
from .power import achieved_power, power_from_se, sample_size_proportions
from .proportions import ProportionTest
from .ratio import RatioTest
from .sequential import SequentialResult
from .trend import TrendResult

__all__ = [
    "DEFAULT_MIN_LIFT",
    "POWER_TARGET",
    "VERDICTS",
    "VERDICT_RULES",
    "Verdict",
    "classify",
    "verdict",
]

DEFAULT_MIN_LIFT = 0.05
POWER_TARGET = 0.8
VERDICTS = (
    "invalid",
    "worth_shipping",
    "stat_sig_but_small_effect",
    "promising_but_underpowered",
    "no_effect",
)

VERDICT_RULES = """\
Verdict rules (first match wins; alpha = 0.05 and practical threshold = +5% relative
lift unless configured; "improvement" = change in the metric's good direction):
1. invalid - the sample-ratio-mismatch check failed (p < 0.001): assignment or logging
   is broken, so no comparison can be trusted.
2. worth_shipping - the difference is statistically significant (p < alpha) and the
   relative improvement of B over A is at least the practical threshold.
3. stat_sig_but_small_effect - significant, but the improvement is below the threshold,
   or B is significantly WORSE than A (the paragraph then says "B is worse").
4. promising_but_underpowered - not significant, the point estimate favours B, and the
   test so far has less than 80% power to detect an improvement of the threshold size.
5. no_effect - everything else: not significant, and either well powered (an effect of
   the threshold size would probably have been detected) or pointing the wrong way.
A shrinking daily lift (novelty) or a run shorter than 7 days adds a warning to the
paragraph but does not change the verdict."""

_HEADLINES = {
    "invalid": "Invalid experiment (sample ratio mismatch)",
    "worth_shipping": "Worth shipping",
    "stat_sig_but_small_effect": "Statistically significant but small effect",
    "promising_but_underpowered": "Promising but underpowered",
    "no_effect": "No effect detected",
}


@dataclass(frozen=True, slots=True)
class Verdict(Result):
    """Classification of one metric plus the explanation shown to the user."""

    metric: str
    verdict: str
    headline: str
    summary: str
    direction: str
    p_value: float
    significant: bool
    relative_lift: float | None
    power: float
    n_needed_per_variant: int | None
    min_lift: float
    alpha: float
    srm_flagged: bool
    warnings: tuple[str, ...]


def classify(
    *,
    significant: bool,
    improvement: float,
    relative_improvement: float | None,
    power: float,
    srm_flagged: bool = False,
    min_lift: float = DEFAULT_MIN_LIFT,
    power_target: float = POWER_TARGET,
) -> str:
    """Apply ``VERDICT_RULES``.

    ``improvement`` is the difference signed so that > 0 is good for the business;
    ``relative_improvement`` the same relative to A (None when A's value is 0, in which
    case any significant improvement counts as large).
    """
    if srm_flagged:
        return "invalid"
    if significant:
        big = relative_improvement is None or relative_improvement >= min_lift
        return "worth_shipping" if improvement > 0 and big else "stat_sig_but_small_effect"
    if improvement > 0 and power < power_target:
        return "promising_but_underpowered"
    return "no_effect"


@dataclass(frozen=True, slots=True)
class _View:
    value_a: float
    value_b: float
    n_a: int
    n_b: int
    diff: float
    diff_ci: Interval | None
    rel: float | None
    rel_ci: Interval | None
    p: float
    test: str
    se: float


def _view(result: ProportionTest | RatioTest | WelchTest) -> _View:
    if isinstance(result, ProportionTest):
        names = {
            "chi_square": "chi-square test",
            "fisher_exact": "Fisher's exact test",
            "cuped_z": "z test on the CUPED-adjusted difference",
        }
        se = math.sqrt(
            (result.rate_a * (1 - result.rate_a) / result.n_a if result.n_a else 0.0)
            + (result.rate_b * (1 - result.rate_b) / result.n_b if result.n_b else 0.0)
        )
        return _View(
            result.rate_a,
            result.rate_b,
            result.n_a,
            result.n_b,
            result.diff,
            result.diff_ci,
            result.relative_lift,
            result.relative_lift_ci,
            result.p_value,
            names.get(result.test, "no test"),
            se,
        )
    if isinstance(result, RatioTest):
        return _View(
            result.ratio_a,
            result.ratio_b,
            result.a.n_users,
            result.b.n_users,
            result.diff,
            result.diff_ci,
            result.relative_lift,
            result.relative_lift_ci,
            result.p_value,
            "user-level delta-method z test" if result.test != "none" else "no test",
            result.se_diff,
        )
    return _View(
        result.mean_a,
        result.mean_b,
        result.n_a,
        result.n_b,
        result.diff,
        result.diff_ci,
        result.relative_lift,
        result.relative_lift_ci,
        result.p_value,
        "Welch's t test" if result.test != "none" else "no test",
        result.se_diff,
    )


def _num(v: float) -> str:
    """Compact display of a metric value (display only; stored values are never rounded)."""
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:.2f}"
    if a >= 0.1:
        return f"{v:.3f}"
    return f"{v:.3g}"


def _signed(v: float) -> str:
    return ("+" if v > 0 else "") + _num(v)


def _pct(v: float, signed: bool = False) -> str:
    x = v * 100.0
    body = f"{x:.0f}" if abs(x) >= 10 else f"{x:.2g}"
    return ("+" if signed and x > 0 else "") + body + "%"


def _p(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.3g}"


def _power_for_threshold(
    result: ProportionTest | RatioTest | WelchTest, v: _View, min_lift: float, alpha: float
) -> float:
    delta = min_lift * abs(v.value_a)
    if isinstance(result, ProportionTest):
        if v.n_a == 0 or v.n_b == 0:
            return 0.0
        target = min(1.0, max(0.0, v.value_a + delta))
        return achieved_power(v.value_a, target, v.n_a, v.n_b, alpha).power
    if result.test == "none":
        return 0.0
    return power_from_se(delta, v.se, alpha)


def _n_needed(
    result: ProportionTest | RatioTest | WelchTest, v: _View, min_lift: float, alpha: float
) -> int | None:
    delta = min_lift * abs(v.value_a)
    if delta == 0 or v.n_a == 0 or v.n_b == 0:
        return None
    if isinstance(result, ProportionTest):
        if not (0 < v.value_a < 1 and v.value_a + delta < 1):
            return None
        return sample_size_proportions(v.value_a, delta, alpha=alpha).n_per_variant
    if result.test == "none" or v.se == 0:
        return None
    # se shrinks like 1/sqrt(n): scale the current size to reach 80% power for delta.
    zz = z_crit(alpha) + float(_st.norm.ppf(POWER_TARGET))
    n_avg = (v.n_a + v.n_b) / 2.0
    k = zz * v.se / delta
    need = n_avg * k * k if k < 1e150 else math.inf
    # Beyond ~10^15 users per arm the answer is "never", not a number worth printing.
    return math.ceil(need) if need < 1e15 else None


def verdict(
    metric: str,
    result: ProportionTest | RatioTest | WelchTest,
    *,
    srm: SrmResult | None = None,
    trend: TrendResult | None = None,
    min_lift: float = DEFAULT_MIN_LIFT,
    alpha: float | None = None,
    higher_is_better: bool = True,
    power: float | None = None,
    p_value: float | None = None,
    p_value_label: str | None = None,
    sequential: SequentialResult | None = None,
    label_a: str = "A",
    label_b: str = "B",
    intervals: tuple[Interval | None, Interval | None] | None = None,
    interval_label: str | None = None,
) -> Verdict:
    """Classify ``result`` with ``VERDICT_RULES`` and explain it in one paragraph.

    ``p_value`` overrides the test's p-value (e.g. a Holm-adjusted or always-valid one;
    describe it with ``p_value_label``); ``power`` overrides the computed power to detect
    the threshold.  ``alpha`` defaults to the one the test was run with.

    ``sequential`` (an mSPRT look on the same data) switches to always-valid inference:
    its p-value and confidence-sequence interval replace the fixed-horizon ones.

    ``intervals`` (difference, relative lift) replaces the test's own intervals in the
    paragraph, described by ``interval_label`` (e.g. Bonferroni-level intervals that match a
    Holm-adjusted decision); their level is read from the difference's interval.
    """
    a = result.alpha if alpha is None else alpha
    check_alpha(a)
    if not (math.isfinite(min_lift) and min_lift >= 0):
        raise ValueError(f"min_lift must be >= 0, got {min_lift!r}")
    v = _view(result)
    ci_label = "CI"
    if sequential is not None:
        v = dataclasses.replace(v, diff_ci=sequential.ci, rel_ci=None, test="mSPRT")
        p_value = sequential.p_value if p_value is None else p_value
        p_value_label = p_value_label or "always-valid"
        ci_label = "always-valid CI"
    if intervals is not None and sequential is None:
        v = dataclasses.replace(v, diff_ci=intervals[0], rel_ci=intervals[1])
        ci_label = interval_label or ci_label
    p = v.p if p_value is None else min(1.0, max(0.0, float(p_value)))
    significant = p < a
    sign = 1.0 if higher_is_better else -1.0
    improvement = sign * v.diff
    rel_impr = None if v.rel is None else sign * v.rel
    pw = _power_for_threshold(result, v, min_lift, a) if power is None else power
    srm_flagged = bool(srm is not None and srm.flagged)
    code = classify(
        significant=significant,
        improvement=improvement,
        relative_improvement=rel_impr,
        power=pw,
        srm_flagged=srm_flagged,
        min_lift=min_lift,
    )
    direction = "better" if improvement > 0 else "worse" if improvement < 0 else "same"
    n_needed = _n_needed(result, v, min_lift, a) if code == "promising_but_underpowered" else None

    # --- the paragraph (all rounding below is for display only) ---
    level = f"{(1 - a) * 100:.3g}%"
    if intervals is not None and sequential is None and v.diff_ci is not None:
        level = f"{v.diff_ci.level * 100:.3g}%"
    if v.diff == 0:
        compare = f"{label_b} and {label_a} have the same {metric}"
    elif v.rel is not None:
        word = "higher" if v.rel > 0 else "lower"
        compare = f"Variant {label_b} has {_pct(abs(v.rel))} {word} {metric} than {label_a}"
    else:
        word = "higher" if v.diff > 0 else "lower"
        compare = f"Variant {label_b} has a {word} {metric} than {label_a}"
    facts = [f"{_num(v.value_b)} vs {_num(v.value_a)}"]
    if v.diff_ci is not None:
        facts.append(
            f"{level} {ci_label} for the difference {_signed(v.diff_ci.low)} to "
            f"{_signed(v.diff_ci.high)}"
        )
    if v.rel_ci is not None:
        facts.append(f"relative lift {_pct(v.rel_ci.low, True)} to {_pct(v.rel_ci.high, True)}")
    plabel = f"{p_value_label} " if p_value_label else ""
    facts.append(f"{plabel}{_p(p)}, {v.test}")
    sentences = [f"{compare} ({'; '.join(facts)})."]
    thr = _pct(min_lift)
    better = f"{label_b} is {'better' if higher_is_better else 'lower (better)'}"
    if code == "invalid" and srm is not None:
        obs = ", ".join(f"{g} {o:,}" for g, o in zip(srm.groups, srm.observed, strict=True))
        exp = ", ".join(f"{g} {e:,.0f}" for g, e in zip(srm.groups, srm.expected, strict=True))
        sentences.insert(
            0,
            f"Sample ratio mismatch: observed {obs} but expected about {exp} "
            f"({_p(srm.p_value)}). Assignment or logging is broken, so the comparison "
            "below cannot be trusted.",
        )
        sentences.append("Verdict: invalid - fix the assignment and rerun the experiment.")
    elif code == "worth_shipping":
        sentences.append(
            f"Verdict: worth shipping - {better} and the improvement is statistically "
            f"significant and at least the {thr} practical threshold."
        )
    elif code == "stat_sig_but_small_effect":
        if improvement < 0:
            sentences.append(
                f"Verdict: {label_b} is worse than {label_a} on {metric}, and the "
                f"difference is statistically significant - do not ship {label_b}."
            )
        else:
            sentences.append(
                "Verdict: statistically significant but small - the improvement "
                f"({_pct(rel_impr or 0.0, True)}) is below the {thr} practical threshold."
            )
    elif code == "promising_but_underpowered":
        need = f"; about {n_needed:,} users per variant are needed" if n_needed else ""
        if v.value_a == 0:
            why = f"{label_a}'s value is 0, so a relative threshold cannot be powered yet"
        else:
            why = (
                f"the test has only {pw * 100:.0f}% power to detect a {thr} lift at this "
                f"sample size{need}"
            )
        sentences.append(
            "Verdict: promising but underpowered - not significant yet, but the estimate "
            f"favours {label_b} and {why}. Keep it running."
        )
    else:
        if pw >= POWER_TARGET:
            why = (
                f"with {pw * 100:.0f}% power to detect a {thr} lift, an effect that large "
                "would probably have shown up"
            )
        elif improvement < 0:
            why = f"the estimate points towards {label_a}"
        else:
            why = (
                f"no difference was observed, though with {pw * 100:.0f}% power the test "
                f"cannot rule out a {thr} lift"
            )
        sentences.append(f"Verdict: no effect detected - not significant, and {why}.")
    warnings: list[str] = []
    if trend is not None and trend.warning:
        warnings.append(trend.warning)
    sentences.extend(f"Warning: {w}." for w in warnings)
    if result.note:
        sentences.append(f"Note: {result.note.rstrip('.')}.")
    return Verdict(
        metric=metric,
        verdict=code,
        headline=_HEADLINES[code],
        summary=" ".join(sentences),
        direction=direction,
        p_value=p,
        significant=significant,
        relative_lift=v.rel,
        power=pw,
        n_needed_per_variant=n_needed,
        min_lift=min_lift,
        alpha=a,
        srm_flagged=srm_flagged,
        warnings=tuple(warnings),
    )
