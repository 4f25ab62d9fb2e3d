"""Cluster bootstrap of CTR (issue 16, item 5): speed at 100K users per arm, and coverage
on heavy-tailed (Pareto 1.5) impressions per user at 1,000 users per arm.

Run: python benchmarks/bench_bootstrap.py [--users 100000] [--repeat 5] [--runs 2000]

* speed: ``stats.cluster_bootstrap_ratio`` with 2,000 resamples on two arms of
  ``--users`` users each (impressions Pareto(1.5), clicks Binomial(impressions, p) with
  p ~ Beta(2, 18) per user); median wall time of ``--repeat`` runs and the peak RSS of
  this process;
* coverage: ``--runs`` A/A simulations at 1,000 users per arm; the share of runs where
  the 95% bootstrap interval contains 0, next to the delta-method interval's share.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import median

from smart_suggest import stats


def users(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.floor(rng.pareto(1.5, n) + 1).astype(np.int64)
    return rng.binomial(y, rng.beta(2, 18, n)), y


def pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, c = np.unique(np.stack([x, y], 1), axis=0, return_counts=True)
    return u[:, 0], u[:, 1], c


def sums(x: np.ndarray, y: np.ndarray) -> stats.RatioSums:
    return stats.RatioSums(
        len(x),
        int(x.sum()),
        int(y.sum()),
        int((x * x).sum()),
        int((y * y).sum()),
        int((x * y).sum()),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--runs", type=int, default=2000)
    args = ap.parse_args()

    rng = np.random.default_rng(1)
    a, b = pairs(*users(rng, args.users)), pairs(*users(rng, args.users))
    times, cpu = [], []
    for i in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        stats.cluster_bootstrap_ratio(a, b, resamples=2000, seed=i)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"speed: {args.users:,} users per arm ({len(a[2])} + {len(b[2])} distinct pairs), "
        f"2,000 resamples: median {median(times):.3f} s wall, {median(cpu):.3f} s CPU over "
        f"{args.repeat} runs (min {min(times):.3f} s wall); peak RSS {rss:.0f} MB"
    )

    hits_boot = hits_delta = 0
    t = time.perf_counter()
    for i in range(args.runs):
        (xa, ya), (xb, yb) = users(rng, 1000), users(rng, 1000)
        ci = stats.cluster_bootstrap_ratio(pairs(xa, ya), pairs(xb, yb), seed=i).ci
        hits_boot += ci.low <= 0.0 <= ci.high
        d = stats.ratio_test(sums(xa, ya), sums(xb, yb)).diff_ci
        hits_delta += d is not None and d.low <= 0.0 <= d.high
    se = (0.95 * 0.05 / args.runs) ** 0.5
    print(
        f"coverage (A/A, Pareto 1.5 impressions, 1,000 users per arm, {args.runs:,} runs, "
        f"MC SE {se * 100:.1f} pts): bootstrap {hits_boot / args.runs * 100:.1f}%, "
        f"delta method {hits_delta / args.runs * 100:.1f}% "
        f"({time.perf_counter() - t:.0f} s)"
    )


if __name__ == "__main__":
    main()
