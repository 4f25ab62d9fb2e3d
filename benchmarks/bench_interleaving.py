"""Calibration of the A/B/n, interleaving and CUPED statistics by simulation (issue 15).

Run: python benchmarks/bench_interleaving.py [--reps 500] [--seed 1] [--quick]

1. Interleaving vs A/B on the same simulated population
   (``smart_suggest.experiments.population``: users with per-item relevance, rankers that
   see it through noise, position-biased clicks, heavy-tailed activity, 50 sessions of 5
   items per user). v3 (ranker noise 0.7) is truly better than v1 (noise 1.0). For each
   design, the power at several sizes is the share of ``reps`` replications whose test
   rejects at alpha 0.05 (A/B: the user-level delta-method CTR test; interleaving: the
   exact binomial test of the preference share); the users needed for 80% power are
   interpolated between the sizes on a log scale. Users are iid, so each replication
   draws its users from a pool of simulated users (2,000,000 per ranker for A/B, 400,000
   for interleaving; each user's clicks drawn once, with fresh team-draft coins every
   session).
2. A/I test (the same ranker on both teams): false-positive rate over ``4 * reps``
   replications of 2,000 users.
3. CUPED (``4 * reps`` replications): a per-user metric whose pre-period value
   correlates ~0.55 with it among users with a pre-period, 30% of users new (less active,
   no pre-period): CI width with and without CUPED, A/A false-positive rate, coverage of
   the 95% interval of a true +2% effect.
4. A/B/n with 4 variants: family-wise false-positive rate of A/A/A/A simulations (each of
   B, C, D vs A by the delta-method CTR test, Holm across the three).

Prints each figure with its target; exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smart_suggest.experiments.population import (
    clicks,
    clicks_over,
    make_population,
    rank,
    team_draft_batch,
)
from smart_suggest.stats import RatioSums, holm
from smart_suggest.stats.cuped import CovSums, cuped
from smart_suggest.stats.ratio import ratio_test

K = 5  # items shown per session
SESSIONS = 50  # sessions per user during the experiment
NOISE_V1, NOISE_V3 = 1.0, 0.7
#: Heavy-tailed engagement (log-normal activity, sigma 2.5), as real user engagement is.
ACTIVITY = {"activity_mean": -4.0, "activity_sigma": 2.5}
POOL_AB = 2_000_000
POOL_IL = 400_000
ALPHA = 0.05
M = K * SESSIONS  # impressions per user


def _pool_ab(rng: np.random.Generator, noise: float, n: int) -> np.ndarray:
    """Per-user clicks on one ranker's top K over SESSIONS sessions (K * SESSIONS
    impressions per user)."""
    out = np.empty(n, dtype=np.int64)
    step = 200_000
    for lo in range(0, n, step):
        pop = make_population(rng, min(step, n - lo), **ACTIVITY)
        shown = rank(rng, pop, noise, K)
        out[lo : lo + step] = clicks_over(rng, pop, shown, SESSIONS)
    return out


def _pool_interleaving(
    rng: np.random.Generator, noise_a: float, noise_b: float, n: int
) -> np.ndarray:
    """Per-user credit difference (clicks on B's picks - clicks on A's) under team draft."""
    out = np.zeros(n, dtype=np.int64)
    step = 200_000
    for lo in range(0, n, step):
        pop = make_population(rng, min(step, n - lo), **ACTIVITY)
        la = rank(rng, pop, noise_a, K)
        lb = rank(rng, pop, noise_b, K)
        for _ in range(SESSIONS):  # fresh team-draft coins every session
            shown, team = team_draft_batch(rng, la, lb, K)
            c = clicks(rng, pop, shown)
            out[lo : lo + step] += (c & (team == 1)).sum(axis=1) - (c & (team == 0)).sum(axis=1)
    return out


def _ab_rejects(
    rng: np.random.Generator, pool_a: np.ndarray, pool_b: np.ndarray, n: int, reps: int
) -> float:
    hits = 0
    for _ in range(reps):
        ca = pool_a[rng.integers(0, len(pool_a), n // 2)]
        cb = pool_b[rng.integers(0, len(pool_b), n - n // 2)]
        sa = RatioSums(
            len(ca), ca.sum(), M * len(ca), (ca * ca).sum(), M * M * len(ca), M * ca.sum()
        )
        sb = RatioSums(
            len(cb), cb.sum(), M * len(cb), (cb * cb).sum(), M * M * len(cb), M * cb.sum()
        )
        hits += ratio_test(sa, sb, ALPHA).p_value < ALPHA
    return hits / reps


def _il_rejects(rng: np.random.Generator, pool: np.ndarray, n: int, reps: int) -> float:
    from scipy.stats import binomtest

    hits = 0
    for _ in range(reps):
        d = pool[rng.integers(0, len(pool), n)]
        wins, losses = int((d > 0).sum()), int((d < 0).sum())
        if wins + losses:
            hits += binomtest(wins, wins + losses, 0.5).pvalue < ALPHA
    return hits / reps


def _n_for_power(sizes: list[int], powers: list[float], target: float = 0.8) -> float:
    for (n0, p0), (n1, p1) in zip(
        zip(sizes, powers, strict=False), zip(sizes[1:], powers[1:], strict=False), strict=False
    ):
        if p0 < target <= p1:
            t = (target - p0) / (p1 - p0)
            return math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0)))
    return float("nan")


def interleaving_vs_ab(rng: np.random.Generator, reps: int, quick: bool) -> bool:
    print(
        f"1. Interleaving vs A/B, v3 (ranker noise {NOISE_V3}) truly better than v1 "
        f"(noise {NOISE_V1})"
    )
    t = time.perf_counter()
    div = 10 if quick else 1
    a = _pool_ab(rng, NOISE_V1, POOL_AB // div)
    b = _pool_ab(rng, NOISE_V3, POOL_AB // div)
    d = _pool_interleaving(rng, NOISE_V1, NOISE_V3, POOL_IL // div)
    print(
        f"   pools of {POOL_AB // div:,} (A/B, per ranker) and {POOL_IL // div:,} "
        f"(interleaving) users, {SESSIONS} sessions of {K} items each, simulated in "
        f"{time.perf_counter() - t:.1f} s"
    )
    lift = (b.mean() / a.mean() - 1) * 100
    prefer = (d > 0).mean() / (d != 0).mean()
    print(
        f"   true CTR v1 {a.mean() / M:.4f}, v3 {b.mean() / M:.4f} (+{lift:.1f}%); "
        f"interleaving: {prefer:.3f} of users with a preference prefer v3"
    )
    ab_sizes = [2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000]
    il_sizes = [100, 200, 400, 800, 1_600, 3_200, 6_400]
    ab_pow = [_ab_rejects(rng, a, b, n, reps) for n in ab_sizes]
    il_pow = [_il_rejects(rng, d, n, reps) for n in il_sizes]
    print(
        "   A/B (users total): "
        + ", ".join(f"{n:,}: {p:.2f}" for n, p in zip(ab_sizes, ab_pow, strict=False))
    )
    print(
        "   interleaving:      "
        + ", ".join(f"{n:,}: {p:.2f}" for n, p in zip(il_sizes, il_pow, strict=False))
    )
    n_ab, n_il = _n_for_power(ab_sizes, ab_pow), _n_for_power(il_sizes, il_pow)
    ratio = n_ab / n_il
    ok = ratio >= 10
    print(
        f"   users for 80% power ({reps} replications per size): A/B {n_ab:,.0f}, "
        f"interleaving {n_il:,.0f}: {ratio:.1f}x fewer (target >= 10x) {'OK' if ok else 'MISSED'}"
    )
    return ok


def ai_false_positives(rng: np.random.Generator, reps: int, quick: bool) -> bool:
    print("2. A/I test: the same ranker on both teams")
    d = _pool_interleaving(rng, NOISE_V1, NOISE_V1, POOL_IL // (10 if quick else 2))
    fpr = _il_rejects(rng, d, 2_000, 4 * reps)
    ok = 0.035 <= fpr <= 0.065
    print(
        f"   false-positive rate {fpr:.3f} over {4 * reps} replications of 2,000 users "
        f"(target 0.035-0.065) {'OK' if ok else 'MISSED'}"
    )
    return ok


#: Users with a pre-period have activity Gamma(2, 1); the 30% without one are new users,
#: less active on average (Gamma(2, 0.5)): the has-pre-period indicator captures that.
PRE_SHARE = 0.7
NEW_SCALE = 0.25
PRE_RATE = 1.5
MEAN_ACTIVITY = PRE_SHARE * 2.0 + (1 - PRE_SHARE) * 2.0 * NEW_SCALE


def _cuped_draw(rng: np.random.Generator, n: int, effect: float) -> tuple[np.ndarray, ...]:
    has_pre = rng.random(n) < PRE_SHARE
    latent = np.where(has_pre, rng.gamma(2.0, 1.0, n), rng.gamma(2.0, NEW_SCALE, n))
    x = np.where(has_pre, rng.poisson(latent * PRE_RATE), 0).astype(float)
    y = rng.poisson(latent * (1 + effect)).astype(float)
    return x, y, has_pre.astype(float)


def _cuped_group(rng: np.random.Generator, label: str, n: int, effect: float) -> CovSums:
    x, y, h = _cuped_draw(rng, n, effect)
    return CovSums(
        label,
        n,
        y.sum(),
        (y * y).sum(),
        x.sum(),
        (x * x).sum(),
        int(h.sum()),
        (x * y).sum(),
        (h * y).sum(),
    )


def cuped_calibration(rng: np.random.Generator, reps: int) -> bool:
    print("3. CUPED: pre-period activity correlates ~0.5 with the metric; 30% of users are new")
    # Correlation check on one big draw.
    x, y, h = _cuped_draw(rng, 400_000, 0.0)
    rho = float(np.corrcoef(x, y)[0, 1])
    rho_pre = float(np.corrcoef(x[h == 1], y[h == 1])[0, 1])
    design = np.column_stack([np.ones_like(x), x, h])
    resid = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    r2 = 1 - resid.var() / y.var()
    widths, widths_adj, fp, fp_raw, covered = [], [], 0, 0, 0
    n_arm = 5_000
    true_effect = None
    for i in range(reps):
        a = _cuped_group(rng, "A", n_arm, 0.0)
        b = _cuped_group(rng, "B", n_arm, 0.0)
        res = cuped("metric", [a, b]).comparisons[0]
        assert (
            res.ci is not None and res.adjusted_ci is not None and res.adjusted_p_value is not None
        )
        widths.append(res.ci.high - res.ci.low)
        widths_adj.append(res.adjusted_ci.high - res.adjusted_ci.low)
        fp += res.adjusted_p_value < ALPHA
        fp_raw += (res.p_value or 1) < ALPHA
        b2 = _cuped_group(rng, "B", n_arm, 0.02)
        res2 = cuped("metric", [a, b2]).comparisons[0]
        true_effect = 0.02 * MEAN_ACTIVITY  # the mean of y grows by 2%
        assert res2.adjusted_ci is not None
        covered += res2.adjusted_ci.contains(true_effect)
        _ = i
    narrower = 1 - float(np.median(widths_adj)) / float(np.median(widths))
    fpr, cov = fp / reps, covered / reps
    ok = narrower >= 0.20 and 0.035 <= fpr <= 0.065 and 0.94 <= cov <= 0.96
    print(
        f"   pre/post correlation {rho:.2f} over all users ({rho_pre:.2f} among those with a "
        f"pre-period); R^2 of both covariates {r2:.2f}; {reps} replications of 2 x {n_arm:,} users"
    )
    print(
        f"   CI width median {np.median(widths):.4f} -> {np.median(widths_adj):.4f}: "
        f"{narrower * 100:.1f}% narrower (target >= 20%)"
    )
    print(
        f"   A/A false-positive rate {fpr:.3f} (unadjusted {fp_raw / reps:.3f}; target "
        f"0.035-0.065); coverage of the 95% CI {cov:.3f} (target 0.94-0.96) "
        f"{'OK' if ok else 'MISSED'}"
    )
    return ok


def abn_fwer(rng: np.random.Generator, reps: int, quick: bool) -> bool:
    print("4. A/B/n with 4 variants: A/A/A/A family-wise false-positive rate (Holm)")
    pool = _pool_ab(rng, NOISE_V1, POOL_AB // (10 if quick else 4))
    n_arm = 5_000
    any_hit = 0
    raw_any = 0
    for _ in range(4 * reps):
        arms = [pool[rng.integers(0, len(pool), n_arm)] for _ in range(4)]
        sums = [
            RatioSums(n_arm, c.sum(), M * n_arm, (c * c).sum(), M * M * n_arm, M * c.sum())
            for c in arms
        ]
        ps = [ratio_test(sums[0], s, ALPHA).p_value for s in sums[1:]]
        any_hit += any(holm(ps, ALPHA).reject)
        raw_any += any(p < ALPHA for p in ps)
    fwer = any_hit / (4 * reps)
    ok = fwer <= 0.05 + 1.96 * math.sqrt(0.05 * 0.95 / (4 * reps))
    print(
        f"   family-wise rate {fwer:.3f} with Holm (without: {raw_any / (4 * reps):.3f}) over "
        f"{4 * reps} replications of 4 x {n_arm:,} users (target <= 0.05, within sampling "
        f"error) {'OK' if ok else 'MISSED'}"
    )
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="smaller pools (a rough check)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    results = [
        interleaving_vs_ab(rng, args.reps, args.quick),
        ai_false_positives(rng, args.reps, args.quick),
        cuped_calibration(rng, 4 * args.reps),
        abn_fwer(rng, args.reps, args.quick),
    ]
    print(f"done in {time.perf_counter() - t:.0f} s")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
