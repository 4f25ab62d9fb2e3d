"""Experiments with k variants: the k-category sample-ratio check, the probability that
each variant is best, the overall recommendation, and sample sizes for k arms.

Each treatment is compared with the control by the two-variant tests; their p-values are
then Holm-adjusted across the k - 1 comparisons (``guards.holm``), which keeps the
family-wise false-positive rate at alpha whatever the correlation between comparisons
(they share the control). Planning uses Bonferroni, alpha / (k - 1) per comparison: Holm's
first step is exactly Bonferroni, so a plan sized for it is never short for Holm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from smart_suggest.stats import _dist as _st

from ._common import Result
from .guards import SRM_THRESHOLD
from .power import SampleSize, sample_size_proportions

__all__ = [
    "KSrmResult",
    "ProbBest",
    "Recommendation",
    "k_arm_sample_size",
    "prob_best_beta",
    "prob_best_normal",
    "recommend",
    "srm_k",
]


@dataclass(frozen=True, slots=True)
class KSrmResult(Result):
    """Pearson chi-square goodness of fit of the users per variant to their weights."""

    labels: tuple[str, ...]
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    expected_share: tuple[float, ...]
    chi2: float
    df: int
    p_value: float
    threshold: float
    flagged: bool
    note: str


def srm_k(
    labels: Sequence[str],
    observed: Sequence[int],
    weights: Sequence[float],
    threshold: float = SRM_THRESHOLD,
) -> KSrmResult:
    """Sample-ratio mismatch over k variants (df = k - 1), flagged below ``threshold``."""
    if not (len(labels) == len(observed) == len(weights)) or len(labels) < 2:
        raise ValueError("need one label, count and weight per variant, at least two")
    obs = tuple(int(o) for o in observed)
    if any(o < 0 for o in obs):
        raise ValueError("counts must be >= 0")
    if any(not (w > 0 and math.isfinite(w)) for w in weights):
        raise ValueError("weights must be positive")
    total_w = math.fsum(weights)
    shares = tuple(w / total_w for w in weights)
    n = sum(obs)
    expected = tuple(n * s for s in shares)
    df = len(obs) - 1
    if n == 0:
        return KSrmResult(
            tuple(labels),
            obs,
            expected,
            shares,
            0.0,
            df,
            1.0,
            threshold,
            False,
            "no users yet: nothing to check, p-value set to 1",
        )
    chi2 = math.fsum((o - e) ** 2 / e for o, e in zip(obs, expected, strict=True))
    p = float(_st.chi2.sf(chi2, df))
    note = "some expected count is below 5: the p-value is rough" if min(expected) < 5 else ""
    return KSrmResult(
        tuple(labels), obs, expected, shares, chi2, df, p, threshold, p < threshold, note
    )


@dataclass(frozen=True, slots=True)
class ProbBest(Result):
    """P(each variant has the highest true rate), in the order of ``labels``."""

    labels: tuple[str, ...]
    probabilities: tuple[float, ...]
    method: str


def _grid_prob_best(pdfs: np.ndarray, cdfs: np.ndarray, dx: np.ndarray) -> list[float]:
    # P(i best) = integral f_i(x) * prod_{j != i} F_j(x) dx, on a shared grid; the
    # product of the others is the full product divided by F_i, taken in logs.
    log_cdf = np.log(np.clip(cdfs, 1e-300, 1.0))
    total = log_cdf.sum(axis=0)
    out = []
    for i in range(pdfs.shape[0]):
        others = np.exp(total - log_cdf[i])
        out.append(float(np.sum(pdfs[i] * others * dx)))
    s = sum(out)
    return [p / s for p in out] if s > 0 else [1.0 / len(out)] * len(out)


def prob_best_beta(
    labels: Sequence[str],
    successes: Sequence[int],
    trials: Sequence[int],
    prior: tuple[float, float] = (1.0, 1.0),
) -> ProbBest:
    """Beta-binomial posteriors (Beta(1, 1) priors): P(each rate is the highest).

    Numerical integration over a grid fitted to the posteriors (20,001 points between the
    smallest 1e-12 and the largest 1 - 1e-12 quantile), normalised to sum to 1.
    """
    a = np.array([s + prior[0] for s in successes], dtype=float)
    b = np.array([n - s + prior[1] for s, n in zip(successes, trials, strict=True)], dtype=float)
    if (a <= 0).any() or (b <= 0).any():
        raise ValueError("successes must lie between 0 and trials")
    lo = float(min(_st.beta.ppf(1e-12, a, b)))
    hi = float(max(_st.beta.isf(1e-12, a, b)))
    x = np.linspace(lo, hi, 20_001)
    dx = np.gradient(x)
    pdfs = np.array([_st.beta.pdf(x, ai, bi) for ai, bi in zip(a, b, strict=True)])
    cdfs = np.array([_st.beta.cdf(x, ai, bi) for ai, bi in zip(a, b, strict=True)])
    return ProbBest(tuple(labels), tuple(_grid_prob_best(pdfs, cdfs, dx)), "beta-binomial")


def prob_best_normal(
    labels: Sequence[str], means: Sequence[float], ses: Sequence[float]
) -> ProbBest:
    """Normal approximations (e.g. the delta-method CTR): P(each mean is the highest)."""
    m = np.asarray(means, dtype=float)
    s = np.asarray(ses, dtype=float)
    if (s <= 0).any():
        # A variant without variance: fall back to ranking the estimates.
        best = int(np.argmax(m))
        probs = [1.0 if i == best else 0.0 for i in range(len(m))]
        return ProbBest(tuple(labels), tuple(probs), "normal (degenerate: ranked estimates)")
    lo = float((m - 12 * s).min())
    hi = float((m + 12 * s).max())
    x = np.linspace(lo, hi, 20_001)
    dx = np.gradient(x)
    zs = [(x - mi) / si for mi, si in zip(m, s, strict=True)]
    pdfs = np.array(
        [np.exp(-0.5 * z * z) / (si * math.sqrt(2 * math.pi)) for z, si in zip(zs, s, strict=True)]
    )
    cdfs = np.array([_st.norm.cdf(z) for z in zs])
    return ProbBest(tuple(labels), tuple(_grid_prob_best(pdfs, cdfs, dx)), "normal")


@dataclass(frozen=True, slots=True)
class Recommendation(Result):
    """The overall call of a k-variant experiment: ``ship X``, ``keep A`` or ``invalid``."""

    action: str  # "ship", "keep" or "invalid"
    variant: str | None
    text: str
    reason: str


def recommend(
    control: str,
    verdicts: dict[str, str],
    estimates: dict[str, float],
    *,
    invalid: bool = False,
) -> Recommendation:
    """Ship the best treatment whose verdict is ``worth_shipping`` (highest estimate of the
    primary metric among them), else keep the control; ``invalid`` when the sample-ratio
    check failed (nothing can be trusted)."""
    if invalid:
        return Recommendation(
            "invalid", None, "invalid", "sample-ratio mismatch: assignment or logging is broken"
        )
    winners = [v for v, verdict in verdicts.items() if verdict == "worth_shipping"]
    if not winners:
        return Recommendation(
            "keep",
            control,
            f"keep {control}",
            "no treatment is significantly better by the practical threshold (Holm-adjusted)",
        )
    best = max(winners, key=lambda v: estimates.get(v, float("-inf")))
    others = [v for v in winners if v != best]
    why = "significantly better than the control after Holm's correction"
    if others:
        why += f"; also better: {', '.join(others)} (lower estimate)"
    return Recommendation("ship", best, f"ship {best}", why)


def k_arm_sample_size(
    baseline: float,
    mde: float,
    arms: int,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
) -> SampleSize:
    """Users per arm so that each treatment-vs-control comparison has ``power`` at the
    Bonferroni level alpha / (arms - 1) (what Holm's first step tests at)."""
    if arms < 2:
        raise ValueError("arms must be >= 2")
    if arms == 2:
        return sample_size_proportions(baseline, mde, relative=relative, alpha=alpha, power=power)
    per = sample_size_proportions(
        baseline, mde, relative=relative, alpha=alpha / (arms - 1), power=power
    )
    return SampleSize(
        metric=per.metric,
        baseline=per.baseline,
        target=per.target,
        mde_absolute=per.mde_absolute,
        mde_relative=per.mde_relative,
        alpha=alpha,
        power=power,
        n_per_variant=per.n_per_variant,
        n_total=arms * per.n_per_variant,
        n_exact=per.n_exact,
        formula=per.formula + f"; alpha / {arms - 1} per comparison (Bonferroni, Holm-safe)",
    )
