"""Heavy tails in the per-user denominators of a ratio metric, and a cluster bootstrap.

The delta method assumes the per-user (clicks, impressions) pairs have finite variance.
With impressions per user as heavy-tailed as a Pareto with index 1.5 (infinite
variance) a few users carry a large share of the impressions, the variance estimate is
dominated by them and the user-level z test's false-positive rate rises to 8-12%.

``top_share`` measures the tail from the data: the share of the denominator held by the
top 1% of users.  A light-tailed denominator gives a few percent (Poisson: ~2-3%,
lognormal with sigma 1: ~9%); a Pareto with index a gives about 0.01^(1 - 1/a), 22% at
a = 1.5.  ``HEAVY_TAIL_SHARE`` (10%) is the warning threshold.

``cluster_bootstrap_ratio`` resamples *users* (the unit of the test) within each arm,
recomputes sum(x) / sum(y) per arm and takes the percentile interval of the difference
B - A.  It is the Poisson bootstrap (Hanley & MacGibbon 2006; Chamandy, Muralidharan,
Najmi & Naidu 2012, the form used for experiments at scale): every user enters a
resample Poisson(1) times instead of the multinomial's exactly-n draws, which has the
same limit and for a ratio of sums loses nothing (the random total cancels).  Users with
the same (x, y) pair are interchangeable, so a pair held by c users gets a
Poisson(c) weight: the cost grows with the number of distinct pairs (hundreds to a few
thousand) times resamples, not with users x resamples (2e8 at 100K users), and the
Poisson draws are ~10x cheaper than multinomial ones (benchmarks/bench_bootstrap.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._common import Interval, Result, check_alpha

__all__ = [
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "HEAVY_TAIL_SHARE",
    "BootstrapResult",
    "cluster_bootstrap_ratio",
    "top_share",
]

#: Share of the denominator held by the top 1% of users above which tails are "heavy".
HEAVY_TAIL_SHARE = 0.10
DEFAULT_RESAMPLES = 2000
MIN_RESAMPLES = 2000
DEFAULT_SEED = 20240601
#: Resampled counts held at once (resamples x distinct pairs), to bound memory (~32 MB).
_CHUNK_CELLS = 4_000_000


def top_share(values: np.ndarray, counts: np.ndarray, fraction: float = 0.01) -> float:
    """Share of sum(values x counts) held by the top ``fraction`` of units (at least one).

    ``values`` are distinct per-unit values and ``counts`` how many units have each.
    """
    v = np.asarray(values, dtype=float)
    c = np.asarray(counts, dtype=np.int64)
    n = int(c.sum())
    total = float(np.dot(v, c))
    if n == 0 or total <= 0:
        return 0.0
    k = max(1, math.ceil(fraction * n))
    order = np.argsort(-v, kind="stable")
    v, c = v[order], c[order]
    before = np.concatenate(([0], np.cumsum(c)[:-1]))
    take = np.clip(k - before, 0, c)
    return float(np.dot(v, take)) / total


@dataclass(frozen=True, slots=True)
class BootstrapResult(Result):
    """Percentile interval of R_B - R_A from a user-level bootstrap (``se``: SD of the
    bootstrap differences)."""

    diff: float
    ci: Interval
    se: float
    resamples: int
    seed: int
    n_a: int
    n_b: int
    method: str


def _arm_ratios(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, c: np.ndarray, resamples: int
) -> np.ndarray:
    lam = c.astype(float)
    out = np.empty(resamples)
    step = max(1, _CHUNK_CELLS // max(1, len(c)))
    for start in range(0, resamples, step):
        m = min(step, resamples - start)
        w = rng.poisson(lam, size=(m, len(c)))
        # Integer weights times integer-valued pairs, summed in one thread: a BLAS matmul
        # would be no faster at this size and its threads stall on a shared machine.
        sy = np.einsum("ij,j->i", w, y)
        sx = np.einsum("ij,j->i", w, x)
        # A resample without a denominator (possible only with a handful of users) has no
        # ratio: nan, dropped below.
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + m] = sx / sy
    return out


def cluster_bootstrap_ratio(
    a: tuple[np.ndarray, np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    alpha: float = 0.05,
) -> BootstrapResult:
    """User-level bootstrap of sum(x)/sum(y), B minus A.

    ``a`` and ``b`` are (x, y, count): the distinct per-user pairs of an arm and how many
    users have each.  The same ``seed`` gives the same interval.  Raises ``ValueError``
    for fewer than ``MIN_RESAMPLES`` resamples, an arm with fewer than 2 users or no
    denominator.
    """
    check_alpha(alpha)
    if not (isinstance(resamples, int) and resamples >= MIN_RESAMPLES):
        raise ValueError(f"resamples must be an integer >= {MIN_RESAMPLES}, got {resamples!r}")
    arms = []
    for name, (x, y, c) in (("A", a), ("B", b)):
        xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        cs = np.asarray(c, dtype=np.int64)
        if int(cs.sum()) < 2 or float(np.dot(ys, cs)) <= 0:
            raise ValueError(f"arm {name} needs at least 2 users with a denominator")
        arms.append((xs, ys, cs))
    rng = np.random.default_rng(seed)
    ra = _arm_ratios(rng, *arms[0], resamples)
    rb = _arm_ratios(rng, *arms[1], resamples)
    d = rb - ra
    d = d[np.isfinite(d)]
    lo, hi = np.quantile(d, [alpha / 2.0, 1.0 - alpha / 2.0])
    point = float(np.dot(arms[1][0], arms[1][2]) / np.dot(arms[1][1], arms[1][2])) - float(
        np.dot(arms[0][0], arms[0][2]) / np.dot(arms[0][1], arms[0][2])
    )
    return BootstrapResult(
        diff=point,
        ci=Interval(float(lo), float(hi), 1.0 - alpha),
        se=float(np.std(d, ddof=1)),
        resamples=resamples,
        seed=seed,
        n_a=int(arms[0][2].sum()),
        n_b=int(arms[1][2].sum()),
        method=f"Poisson cluster bootstrap of users, {resamples} resamples, percentile interval",
    )
