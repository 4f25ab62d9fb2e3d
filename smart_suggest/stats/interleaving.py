"""Interleaving analysis from per-user credits: which ranker do users prefer?

Sufficient statistics (one pass over the users who saw an interleaved list):
``users``, ``prefer_a``, ``prefer_b`` (users whose credit for A, resp. B, is higher),
``sum_diff`` and ``sum_diff_sq`` (sums over users of d = credit B - credit A).

* The preference share: prefer_b / (prefer_a + prefer_b), users without a preference left
  out (the standard "wins / (wins + losses)"). Under "no difference" it is Binomial(n, 1/2):
  exact two-sided binomial test and the Clopper-Pearson interval that inverts it.
* A sequential version for live watching: the mSPRT of ``sequential.msprt`` on the mean of
  the per-user signs (+1 prefers B, -1 prefers A), whose variance under the null is exactly
  1 per user; always-valid p-value and confidence sequence for 2 * share - 1, reported as a
  share.
* The mean per-user credit difference with a t interval (every exposed user counts, ties
  as 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from smart_suggest.stats import _dist as _st

from ._common import Interval, Result, check_alpha
from .sequential import SequentialResult, msprt

__all__ = ["DEFAULT_PREFERENCE_TAU", "InterleavingResult", "interleaving_test"]

#: Prior SD of (2 * share - 1) for the sequential test: a 55 / 45 preference.
DEFAULT_PREFERENCE_TAU = 0.1
#: Fewer users with a preference than this: no verdict either way.
MIN_PREFERENCES = 10


@dataclass(frozen=True, slots=True)
class InterleavingResult(Result):
    users: int
    prefer_a: int
    prefer_b: int
    ties: int
    share_b: float | None
    share_ci: Interval | None
    p_value: float
    mean_diff: float | None
    mean_diff_ci: Interval | None
    mean_diff_p_value: float | None
    sequential: SequentialResult | None
    sequential_share_ci: Interval | None
    alpha: float
    significant: bool
    verdict: str  # b_preferred | a_preferred | no_preference | insufficient_data
    text: str


def interleaving_test(
    users: int,
    prefer_a: int,
    prefer_b: int,
    sum_diff: float,
    sum_diff_sq: float,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    tau: float = DEFAULT_PREFERENCE_TAU,
    previous: SequentialResult | None = None,
) -> InterleavingResult:
    check_alpha(alpha)
    for name, v in (("users", users), ("prefer_a", prefer_a), ("prefer_b", prefer_b)):
        if v < 0:
            raise ValueError(f"{name} must be >= 0")
    if prefer_a + prefer_b > users:
        raise ValueError("more users with a preference than users")
    n = prefer_a + prefer_b
    ties = users - n
    share = prefer_b / n if n else None
    level = 1.0 - alpha
    if n:
        test = _st.binomtest(prefer_b, n, 0.5, alternative="two-sided")
        p = float(test.pvalue)
        ci_raw = test.proportion_ci(confidence_level=level, method="exact")
        share_ci: Interval | None = Interval(float(ci_raw.low), float(ci_raw.high), level)
    else:
        p, share_ci = 1.0, None
    mean_diff = mean_ci = mean_p = None
    if users >= 1:
        mean_diff = sum_diff / users
    if users >= 2 and mean_diff is not None:
        var = max(sum_diff_sq - users * mean_diff * mean_diff, 0.0) / (users - 1)
        se = math.sqrt(var / users)
        if se > 0:
            tcrit = float(_st.t.ppf(1 - alpha / 2, users - 1))
            mean_ci = Interval(mean_diff - tcrit * se, mean_diff + tcrit * se, level)
            mean_p = float(2 * _st.t.sf(abs(mean_diff / se), users - 1))
    seq = seq_ci = None
    if sequential and n:
        seq = msprt(
            2 * share - 1 if share is not None else 0.0, 1.0 / n, tau * tau, alpha, previous
        )
        if seq.ci is not None:
            seq_ci = Interval(
                max(0.0, (seq.ci.low + 1) / 2), min(1.0, (seq.ci.high + 1) / 2), level
            )
    p_used = seq.p_value if seq is not None else p
    significant = p_used < alpha
    how = "sequential mSPRT" if seq is not None else "exact binomial test"
    if n < MIN_PREFERENCES:
        verdict = "insufficient_data"
        text = f"only {n} users with a preference so far (need {MIN_PREFERENCES} or more)"
    elif significant and share is not None and share > 0.5:
        verdict = "b_preferred"
        text = f"users prefer B: {share:.1%} of users with a preference ({how}, p = {p_used:.3g})"
    elif significant:
        verdict = "a_preferred"
        text = (
            f"users prefer A: only {share:.1%} of users with a preference chose B "
            f"({how}, p = {p_used:.3g})"
        )
    else:
        verdict = "no_preference"
        text = f"no significant preference ({how}, p = {p_used:.3g})"
    return InterleavingResult(
        users=users,
        prefer_a=prefer_a,
        prefer_b=prefer_b,
        ties=ties,
        share_b=share,
        share_ci=share_ci,
        p_value=p,
        mean_diff=mean_diff,
        mean_diff_ci=mean_ci,
        mean_diff_p_value=mean_p,
        sequential=seq,
        sequential_share_ci=seq_ci,
        alpha=alpha,
        significant=significant,
        verdict=verdict,
        text=text,
    )
