"""Guards: sample-ratio mismatch (SRM) and Holm-Bonferroni for secondary metrics.

SRM: a chi-square goodness-of-fit test of the observed arm sizes against the sizes the
assignment rule should produce.  With only A and B the expected split is
(1 - treatment_share, treatment_share).  If the not-enrolled count is given as well, the
expected split of all eligible users is (1 - traffic_fraction, traffic_fraction *
(1 - share), traffic_fraction * share), which also catches a broken traffic fraction.
Flagged when p < 0.001 (the conventional SRM threshold: the check runs on every
experiment and every look, so it must almost never fire by chance).  An SRM means the
assignment or logging is broken and the metric comparison cannot be trusted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from . import _dist as _st
from ._common import Result, check_alpha, check_count

__all__ = ["SRM_THRESHOLD", "HolmResult", "SrmResult", "holm", "srm_check"]

SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class SrmResult(Result):
    """Sample-ratio-mismatch check.  ``groups`` names the cells in order."""

    groups: tuple[str, ...]
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    expected_share: tuple[float, ...]
    observed_share: tuple[float, ...]
    chi2: float
    df: int
    p_value: float
    threshold: float
    flagged: bool
    note: str


def _gof(observed: tuple[int, ...], expected: tuple[float, ...]) -> float:
    return math.fsum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))


def srm_check(
    n_a: int,
    n_b: int,
    *,
    treatment_share: float = 0.5,
    not_enrolled: int | None = None,
    traffic_fraction: float = 1.0,
    threshold: float = SRM_THRESHOLD,
) -> SrmResult:
    """Chi-square goodness-of-fit test of arm sizes against the configured split."""
    check_count("n_a", n_a)
    check_count("n_b", n_b)
    check_alpha(threshold)
    if not (0.0 < treatment_share < 1.0):
        raise ValueError(f"treatment_share must be in (0, 1), got {treatment_share!r}")
    tf = traffic_fraction
    if not_enrolled is not None:
        check_count("not_enrolled", not_enrolled)
        if not (0.0 < tf <= 1.0):
            raise ValueError(f"traffic_fraction must be in (0, 1], got {tf!r}")
    # With traffic_fraction 1 nobody may be left out; a zero-expectation cell cannot go
    # into the chi-square, so it is dropped when empty and an automatic flag otherwise.
    three = not_enrolled is not None and tf < 1.0
    if three:
        groups: tuple[str, ...] = ("not_enrolled", "A", "B")
        observed: tuple[int, ...] = (int(not_enrolled or 0), int(n_a), int(n_b))
        shares: tuple[float, ...] = (1.0 - tf, tf * (1.0 - treatment_share), tf * treatment_share)
    else:
        groups, observed = ("A", "B"), (int(n_a), int(n_b))
        shares = (1.0 - treatment_share, treatment_share)
    total = sum(observed)
    expected = tuple(total * s for s in shares)
    obs_share = tuple(o / total for o in observed) if total else tuple(0.0 for _ in observed)
    df = len(observed) - 1
    notes: list[str] = []
    leaked = int(not_enrolled or 0) if not three else 0
    if leaked:
        chi2 = _gof(observed, expected) if total else 0.0
        return SrmResult(
            groups=groups,
            observed=observed,
            expected=expected,
            expected_share=shares,
            observed_share=obs_share,
            chi2=chi2,
            df=df,
            p_value=0.0,
            threshold=threshold,
            flagged=True,
            note=f"{leaked} users were not enrolled although traffic_fraction is 1: "
            "assignment is broken (chi2 shown is for A vs B only)",
        )
    if total == 0:
        notes.append("no users yet: nothing to check, p-value set to 1")
        chi2, p = 0.0, 1.0
    else:
        chi2 = _gof(observed, expected)
        p = float(_st.chi2.sf(chi2, df))
        if min(expected) < 5:
            notes.append("some expected count is below 5: the chi-square p-value is rough")
    return SrmResult(
        groups=groups,
        observed=observed,
        expected=expected,
        expected_share=shares,
        observed_share=obs_share,
        chi2=chi2,
        df=df,
        p_value=p,
        threshold=threshold,
        flagged=p < threshold,
        note="; ".join(notes),
    )


@dataclass(frozen=True, slots=True)
class HolmResult(Result):
    """Holm step-down adjustment; lists keep the input order."""

    p_values: tuple[float, ...]
    adjusted: tuple[float, ...]
    reject: tuple[bool, ...]
    alpha: float


def holm(p_values: Sequence[float], alpha: float = 0.05) -> HolmResult:
    """Holm-Bonferroni adjusted p-values (family-wise error rate control at ``alpha``)."""
    check_alpha(alpha)
    ps = tuple(float(p) for p in p_values)
    for p in ps:
        if not (0.0 <= p <= 1.0):
            raise ValueError(f"p-values must be in [0, 1], got {p!r}")
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        # Step-down: multiply the k-th smallest by (m - k) and keep the sequence monotone.
        running = max(running, min(1.0, (m - rank) * ps[i]))
        adjusted[i] = running
    return HolmResult(ps, tuple(adjusted), tuple(a <= alpha for a in adjusted), alpha)
