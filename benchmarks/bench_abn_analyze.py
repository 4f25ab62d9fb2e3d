"""``analyze`` of an experiment with 4 variants at 10M events (issue 15: <= 1.5 s).

Run: python benchmarks/bench_abn_analyze.py [--events 10000000] [--users 100000]
     [--repeat 3] [--workdir DIR]

Builds (or reuses, with ``--workdir``) a database with 100,000 users, 2,000 items, one
experiment with variants A/B/C/D (v1, v2, popular, v1; equal weights) assigned by the
rule, and N events (impressions, clicks at 30-36% CTR, purchases, engagement) loaded in
one bulk transaction (the summaries are rebuilt from the events at the end). Then, each
in a fresh process, ``repeat`` times: the core (``analyze_multi`` with CUPED, after the
imports) and the whole command ``smart-suggest analyze 1 --json`` (import, the A/B/n
analysis with Holm, SRM, P(best), CUPED, JSON): wall time, CPU time (user + sys) and peak
RSS, with the load average at the end. Prints the medians.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _util import median


def build(path: Path, events: int, users: int) -> float:
    from smart_suggest import clock
    from smart_suggest.experiments.lifecycle import create_experiment
    from smart_suggest.experiments.serving import store_assignments
    from smart_suggest.store import open_store

    t = time.perf_counter()
    rng = np.random.default_rng(7)
    now = clock.now()
    start = now - 14 * clock.DAY
    with open_store(path) as store:
        with store.bulk_load(("users", "items"), trusted=True) as conn:
            conn.executemany(
                "INSERT INTO users(id, username, created_at) VALUES (?, ?, ?)",
                ((u, f"user{u}", start - 30 * clock.DAY) for u in range(1, users + 1)),
            )
            conn.executemany(
                "INSERT INTO items(id, name, category, created_at) VALUES (?, ?, 'books', ?)",
                ((i, f"item {i}", start) for i in range(1, 2001)),
            )
        exp = create_experiment(
            store, "abcd", variants=["v1", "v2", "popular", "v1"], primary_metric="ctr"
        )
        with store.write():
            labels = store_assignments(store, exp, range(1, users + 1), start)
        code = np.array(["ABCD".index(v) for v in labels])
        # Events: per user impressions ~ events share, clicks by the variant's CTR.
        n_imp = int(events * 0.6)
        imp_user = rng.integers(0, users, n_imp)
        ctr = np.array([0.30, 0.31, 0.36, 0.30])[code[imp_user]]
        clicked = rng.random(n_imp) < ctr
        c_user = imp_user[clicked]
        rest = events - n_imp - 2 * len(c_user)
        p_user = rng.integers(0, users, max(rest, 0))
        parts = [
            (imp_user, "impression"),
            (c_user, "click"),
            (c_user, "engagement"),
            (p_user, "purchase"),
        ]
        with store.bulk_load(("events",), trusted=True) as conn:
            for arr, kind in parts:
                ts = start + rng.uniform(0, 13 * clock.DAY, len(arr))
                items = rng.integers(1, 2001, len(arr))
                value = rng.lognormal(3.5, 0.6, len(arr)) if kind == "engagement" else None
                for lo in range(0, len(arr), 500_000):
                    hi = min(lo + 500_000, len(arr))
                    conn.executemany(
                        "INSERT INTO events(experiment_id, variant, user_id, item_id, type, "
                        "value, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        zip(
                            [exp.id] * (hi - lo),
                            [labels[u] for u in arr[lo:hi].tolist()],
                            (arr[lo:hi] + 1).tolist(),
                            items[lo:hi].tolist(),
                            [kind] * (hi - lo),
                            [None] * (hi - lo) if value is None else value[lo:hi].tolist(),
                            ts[lo:hi].tolist(),
                            strict=True,
                        ),
                    )
        total = store.scalar("SELECT SUM(n) FROM event_counts")
    print(
        f"built {path.name}: {total:,} events, {users:,} users in {time.perf_counter() - t:.0f} s"
    )
    return time.perf_counter() - t


_CORE = r"""
import json, resource, sys, time
t = time.perf_counter()
import smart_suggest.stats, scipy.integrate  # imports timed apart from the computation
imported = time.perf_counter() - t
from smart_suggest.analysis.cuped import covariate_sums
from smart_suggest.analysis.multiarm import analyze_multi
from smart_suggest.experiments.lifecycle import get_experiment
from smart_suggest.store import open_store

store = open_store(sys.argv[1])
exp = get_experiment(store, 1)
t0 = time.perf_counter()
covariate_sums(store, exp.id)
t1 = time.perf_counter()
c0 = time.process_time()
an = analyze_multi(store, exp, cuped=True)  # reads the covariates itself, in its snapshot
t2 = time.perf_counter()
print(json.dumps({"cuped": t1 - t0, "total": t2 - t1, "cpu": time.process_time() - c0,
                  "import": imported, "recommendation": an.recommendation.text}))
"""


#: The processes measured may write their bytecode caches, as an installed package has
#: them (pip compiles at install): with PYTHONDONTWRITEBYTECODE set, every run would
#: compile the package's modules from source again (~0.25 s of CPU, not the command's).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_cpu(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds user + sys, peak RSS in MB) of ``cmd`` in a fresh process
    (a wrapper process, so that the RSS and CPU are that command's alone)."""
    import json
    import subprocess

    code = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "wall = time.perf_counter() - t\n"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "assert p.returncode == 0, p.stderr[-2000:]\n"
        "print(json.dumps([wall, r.ru_utime + r.ru_stime, r.ru_maxrss / 1024]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True, env=_ENV
    ).stdout
    wall, cpu, rss = json.loads(out)
    return float(wall), float(cpu), float(rss)


def core(db: Path) -> dict[str, float]:
    import json
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", _CORE, str(db)], capture_output=True, text=True, check=True, env=_ENV
    ).stdout
    return dict(json.loads(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-abn-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"abcd-{args.events}.db"
    if not db.exists():
        build(db, args.events, args.users)
    core(db)  # warm-up: the bytecode caches and the page cache
    cores = [core(db) for _ in range(args.repeat)]

    def med(key: str) -> float:
        return median([c[key] for c in cores])

    print(
        f"core (after imports), median of {args.repeat}: analysis with CUPED "
        f"{med('total'):.2f} s wall, {med('cpu'):.2f} s CPU (of which the covariate sums "
        f"alone {med('cuped'):.2f} s); imports {med('import'):.2f} s; "
        f"{cores[0]['recommendation']}"
    )
    cmd = [sys.executable, "-m", "smart_suggest", "analyze", "1", "--db", str(db), "--json"]
    run_cpu(cmd)  # warm-up: the bytecode caches and the page cache
    runs = [run_cpu(cmd) for _ in range(args.repeat)]
    walls = [r[0] for r in runs]
    print(
        f"whole command `analyze 1 --json`, 4 variants, {args.events:,} events, "
        f"{args.users:,} users: median {median(walls):.2f} s wall "
        f"(runs: {', '.join(f'{w:.2f}' for w in walls)}), {median([r[1] for r in runs]):.2f} s "
        f"CPU (user + sys), peak RSS {median([r[2] for r in runs]):.0f} MB (target <= 1.5 s); "
        f"load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
