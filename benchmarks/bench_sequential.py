"""Sequential testing calibration and power (issue 16, item 8).

Run: python benchmarks/bench_sequential.py [--sims 20000] [--looks 14] [--seed 1]

Simulates conversion experiments (control rate 10%) looked at ``--looks`` times at equally
spaced sample sizes up to the planned size per variant, N = the Fleiss sample size for a
+5% relative lift at 80% power and alpha 0.05.  At each look the z statistic of the
difference (unpooled variance) is tested by

* the fixed-horizon test, at the final look only (the reference);
* the old mSPRT (tau = 10% of the control rate, ``stats.default_tau2``);
* the mSPRT tuned to the plan (``stats.tuned_tau2``: tau^2 = r(alpha) x variance at N);
* group-sequential, O'Brien-Fleming and Pocock type alpha spending (``stats.group_look``).

Prints, per method, the any-look false-positive rate under A/A and the power at the
planned size (rejection by the final look) under the +5% lift, and that power as a share
of the fixed-horizon power.  Targets: any-look FPR 3.5-5% with 14 looks; power >= 80% of
the fixed-horizon power.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import stats as st

from smart_suggest import stats


def simulate(
    sims: int, looks: int, n_plan: int, p0: float, lift: float, alpha: float, seed: int
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    p1 = p0 * (1 + lift)
    sizes = [round(n_plan * (k + 1) / looks) for k in range(looks)]
    xa = np.zeros(sims)
    xb = np.zeros(sims)
    prev = 0
    times = [s / n_plan for s in sizes]
    bounds = {s: stats.group_boundaries(times, alpha, s) for s in ("obf", "pocock")}
    v_plan = 2 * p0 * (1 - p0) / n_plan
    tau_tuned = stats.tuned_tau2(v_plan, n_plan, n_plan, alpha)
    tau_old = stats.default_tau2(p0)
    rej = {k: np.zeros(sims, bool) for k in ("fixed", "msprt_old", "msprt_tuned", "obf", "pocock")}
    for k, n in enumerate(sizes):
        xa += rng.binomial(n - prev, p0, sims)
        xb += rng.binomial(n - prev, p1, sims)
        prev = n
        ra, rb = xa / n, xb / n
        var = (ra * (1 - ra) + rb * (1 - rb)) / n
        z = (rb - ra) / np.sqrt(var)
        for name, t2 in (("msprt_old", tau_old), ("msprt_tuned", tau_tuned)):
            shrink = t2 / (var + t2)
            log_lr = 0.5 * np.log(var / (var + t2)) + 0.5 * z * z * shrink
            rej[name] |= log_lr >= math.log(1 / alpha)
        for s in ("obf", "pocock"):
            rej[s] |= np.abs(z) >= bounds[s][k]
        if k == looks - 1:
            rej["fixed"] |= np.abs(z) >= st.norm.isf(alpha / 2)
    return {k: float(v.mean()) for k, v in rej.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=20000)
    ap.add_argument("--looks", type=int, default=14)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    p0, lift, alpha = 0.10, 0.05, 0.05
    n_plan = stats.sample_size_proportions(p0, lift, relative=True).n_per_variant
    t = time.perf_counter()
    null = simulate(args.sims, args.looks, n_plan, p0, 0.0, alpha, args.seed)
    alt = simulate(args.sims, args.looks, n_plan, p0, lift, alpha, args.seed + 1)
    se = math.sqrt(0.05 * 0.95 / args.sims)
    print(
        f"{args.sims:,} simulations per scenario, {args.looks} equally spaced looks, planned "
        f"{n_plan:,} users per variant (control 10%, +5% lift, 80% power); MC SE of a 5% "
        f"rate {se * 100:.2f} pts; {time.perf_counter() - t:.0f} s"
    )
    print(f"{'method':<14}{'any-look FPR':>14}{'power at N':>12}{'vs fixed':>10}")
    for k in ("fixed", "msprt_old", "msprt_tuned", "obf", "pocock"):
        print(
            f"{k:<14}{null[k] * 100:>13.2f}%{alt[k] * 100:>11.1f}%"
            f"{alt[k] / alt['fixed'] * 100:>9.0f}%"
        )


if __name__ == "__main__":
    main()
