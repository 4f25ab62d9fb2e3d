"""Heavy-tailed impressions per user, and the cluster bootstrap of CTR.

Needs the per-user data, so only the local store provides it: one grouped read of
``event_users`` gives the distinct (clicks, impressions) pairs per arm and how many
exposed users have each (a few hundred rows however many users there are).  From those,
the share of impressions held by the top 1% of users (``stats.top_share``) says whether
the delta method's finite-variance assumption is in doubt, and ``--bootstrap`` adds a
user-level bootstrap interval next to the delta-method one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from smart_suggest.analysis.report import _ToDict
from smart_suggest.errors import InputError

#: What ``--bootstrap`` says without per-user data.
NEEDS_USERS = (
    "--bootstrap needs per-user data, which only the local database has: a --summary file "
    "or a --source warehouse gives per-variant sums"
)

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True, slots=True)
class BootstrapOptions:
    resamples: int
    seed: int


@dataclass(frozen=True, slots=True)
class TailsSummary(_ToDict):
    """Tail check of impressions per exposed user, and the bootstrap interval if asked."""

    metric: str
    top1_share_a: float
    top1_share_b: float
    threshold: float
    heavy: bool
    message: str
    delta_ci: Any  # the delta-method interval of the CTR difference, for comparison
    bootstrap: Any  # stats.BootstrapResult | None


def pairs_of_rows(rows: dict[str, list[tuple[int, int, int]]]) -> dict[str, Pairs]:
    """``experiments.reads.user_pair_rows`` as arrays, arms A and B."""
    out: dict[str, Pairs] = {}
    for v in ("A", "B"):
        arr = np.array(rows.get(v, []), dtype=np.int64).reshape(-1, 3)
        out[v] = (arr[:, 0], arr[:, 1], arr[:, 2])
    return out


def tails_summary(
    pairs: dict[str, Pairs], ctr: Any, options: BootstrapOptions | None
) -> TailsSummary:
    """The tail check of both arms; the bootstrap at the level of CTR's own interval."""
    from smart_suggest import stats
    from smart_suggest.stats.bootstrap import HEAVY_TAIL_SHARE

    shares = {v: stats.top_share(pairs[v][1], pairs[v][2]) for v in ("A", "B")}
    users = {v: int(pairs[v][2].sum()) for v in ("A", "B")}
    # With fewer than 200 users "the top 1%" is one or two users: no evidence either way.
    heavy = any(shares[v] > HEAVY_TAIL_SHARE and users[v] >= 200 for v in ("A", "B"))
    top = max(shares.values())
    if heavy:
        message = (
            f"impressions per user are heavy-tailed: the top 1% of exposed users hold "
            f"{top * 100:.1f}% of the impressions (A {shares['A'] * 100:.1f}%, B "
            f"{shares['B'] * 100:.1f}%; above {HEAVY_TAIL_SHARE * 100:.0f}%), so the "
            "delta-method CTR interval may be too narrow"
        )
        message += (
            "; compare the bootstrap interval"
            if options is not None
            else "; run with --bootstrap for a user-level bootstrap interval"
        )
    else:
        message = (
            f"impressions per user are not heavy-tailed: the top 1% of exposed users hold "
            f"{top * 100:.1f}% of the impressions"
        )
    delta_ci = ctr.ci if ctr is not None else None
    boot = None
    if options is not None:
        level = delta_ci.level if delta_ci is not None else None
        alpha = 1.0 - level if level is not None else 0.05
        try:
            boot = stats.cluster_bootstrap_ratio(
                pairs["A"], pairs["B"], resamples=options.resamples, seed=options.seed, alpha=alpha
            )
        except ValueError as exc:
            message += f"; bootstrap not run: {exc}"
    return TailsSummary(
        metric="ctr",
        top1_share_a=shares["A"],
        top1_share_b=shares["B"],
        threshold=HEAVY_TAIL_SHARE,
        heavy=heavy,
        message=message,
        delta_ci=delta_ci,
        bootstrap=boot,
    )


def check_options(resamples: int, seed: int) -> BootstrapOptions:
    from smart_suggest.stats.bootstrap import MIN_RESAMPLES

    if resamples < MIN_RESAMPLES or resamples > 1_000_000:
        raise InputError(
            f"--resamples must be between {MIN_RESAMPLES:,} and 1,000,000, got {resamples:,}"
        )
    if not 0 <= seed < 2**63:
        raise InputError(f"--seed must be between 0 and 2^63 - 1, got {seed}")
    return BootstrapOptions(resamples, seed)
