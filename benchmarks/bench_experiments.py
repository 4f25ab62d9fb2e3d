"""Benchmark the experiments core: KPIs and timeline at 1M / 10M events, bulk logging,
assignment of 1M users, and the synthetic generator that builds the data.

    python benchmarks/bench_experiments.py                       # 1M and 10M events
    python benchmarks/bench_experiments.py --sizes 1000000 --bulk 500000
    python benchmarks/bench_experiments.py --dir /tmp/bench     # keep and reuse databases

Targets (issue 4): results and timeline <= 1 s at 1M events and <= 10 s at 10M; bulk
logging >= 200,000 events/s; assignment of 1,000,000 users <= 5 s.

Each query is timed in a fresh child process (so its peak RSS is its own) with a warm OS
page cache: the first run and the median of ``--repeat`` runs are printed. Bulk logging is
timed on a CSV of ``--bulk`` events appended to the experiment of the smallest database
(a fresh copy for each of ``--repeat`` runs); the rate is events over the median wall time.
A file this size is read and checked by a second process while this one inserts, so the
CPU time of this process is printed too: the two overlap on two cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = "2026-11-20T12:00:00Z"  # fixed clock: the same data on every run


def _rss_mb() -> float:
    """Peak RSS of this process image (VmHWM; ru_maxrss would carry the parent's peak
    across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(path: Path, events: int, users: int) -> dict[str, Any]:
    from smart_suggest.sample import SyntheticSpec, generate
    from smart_suggest.store import open_store

    if path.exists():
        return {"reused": True}
    tmp = path.with_suffix(".building")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    with open_store(tmp) as store:
        report = generate(
            store, SyntheticSpec(users=users, items=2_000, interactions=0, events=events, days=14)
        )
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    seconds = time.perf_counter() - started
    tmp.rename(path)
    return {"reused": False, "events": report.events, "seconds": seconds}


def measure(path: Path, what: str, repeat: int) -> dict[str, Any]:
    """Run in a child process: time ``what`` on the database, report peak RSS."""
    from smart_suggest.experiments.kpis import results
    from smart_suggest.experiments.timeline import timeline
    from smart_suggest.store import open_store

    rss_before = _rss_mb()
    times: list[float] = []
    cpu: list[float] = []
    detail: dict[str, Any] = {}
    with open_store(path) as store:
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            if what == "results":
                res = results(store, 1)
                detail = {"events": res.total_events, "ctr_a": res.a.ctr, "ctr_b": res.b.ctr}
            elif what == "was_served":
                detail = _was_served(store)
            else:
                bucket = what.split(":")[1]
                tl = timeline(store, 1, bucket=bucket)
                detail = {"buckets": len(tl.buckets)}
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return {
        "what": what,
        "first": times[0],
        "median": statistics.median(times),
        "cpu_median": statistics.median(cpu),
        "peak_rss_mb": _rss_mb(),
        "rss_before_mb": rss_before,
        **detail,
    }


def _was_served(store: Any) -> dict[str, Any]:
    """Median time of ``was_served`` (asked before every logged click or purchase) over
    100 pairs that were served and 100 (user, item) pairs drawn at random."""
    import random

    from smart_suggest.experiments.events import was_served

    served = store.conn.execute(
        "SELECT user_id, item_id FROM served_items WHERE experiment_id = 1 "
        "ORDER BY random() LIMIT 100"
    ).fetchall()
    rng = random.Random(7)
    users = store.scalar("SELECT max(user_id) FROM served_items")
    items = store.scalar("SELECT max(item_id) FROM served_items")
    pairs = served + [(rng.randint(1, users), rng.randint(1, items)) for _ in range(100)]
    times, hits = [], 0
    for user, item in pairs:
        t0 = time.perf_counter()
        hits += was_served(store, 1, user, item)
        times.append(time.perf_counter() - t0)
    pairs_n = store.scalar("SELECT count(*) FROM served_items WHERE experiment_id = 1")
    return {"lookup_us": statistics.median(times) * 1e6, "served_pairs": pairs_n, "hits": hits}


def child(path: Path, what: str, repeat: int) -> dict[str, Any]:
    env = {**os.environ, "SMART_SUGGEST_NOW": NOW}
    out = subprocess.run(
        [sys.executable, __file__, "--_measure", str(path), what, str(repeat)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def bulk(path: Path, n: int, workdir: Path, repeat: int) -> dict[str, Any]:
    """Append ``n`` events from a CSV to experiment 1 of ``path`` (a fresh copy each run)."""
    import shutil

    import numpy as np

    from smart_suggest.experiments.bulk import log_events_csv
    from smart_suggest.store import open_store

    copy = workdir / "bulk.db"
    with open_store(path) as store:
        users = np.array(
            [r[0] for r in store.conn.execute("SELECT user_id FROM assignments")], dtype=np.int64
        )
        before = int(store.scalar("SELECT COUNT(*) FROM events"))
    rng = np.random.default_rng(1)
    csv_path = workdir / "events.csv"
    kinds = np.array(["impression", "click", "engagement", "purchase"])
    kind = kinds[rng.choice(4, size=n, p=[0.6, 0.17, 0.17, 0.06])]
    value = np.where(kind == "engagement", np.round(rng.lognormal(3.6, 0.6, size=n), 2), np.nan)
    # A log of one day, in time order, inside the experiment's 14 days.
    ts = np.round(1_795_000_000 + np.sort(rng.uniform(0, 86_400, size=n)), 3)
    kind[0] = "impression"
    user_col = rng.choice(users, size=n)
    item_col = rng.integers(1, 2_001, size=n)
    # Clicks and purchases are of an item shown earlier in the log (a random earlier
    # impression's user and item), as a bulk log must be (see ``log_events_csv``).
    imp = np.flatnonzero(kind == "impression")
    follow = np.flatnonzero((kind == "click") | (kind == "purchase"))
    earlier = np.searchsorted(imp, follow)  # impressions before each follow-up (>= 1)
    src = imp[(rng.random(len(follow)) * earlier).astype(np.int64)]
    user_col[follow], item_col[follow] = user_col[src], item_col[src]
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user", "item", "type", "value", "ts"])
        for u, i, k, v, t in zip(
            user_col.tolist(),
            item_col.tolist(),
            kind.tolist(),
            value.tolist(),
            ts.tolist(),
            strict=True,
        ):
            w.writerow([u, i, k, "" if v != v else v, t])
    runs = []
    for _ in range(repeat):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(path, copy)
        os.sync()  # the copy's dirty pages are this script's setup, not the load's work
        with open_store(copy) as store:
            t0, c0 = time.perf_counter(), time.process_time()
            report = log_events_csv(store, 1, csv_path)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            after = int(store.scalar("SELECT COUNT(*) FROM events"))
        assert after == before + n, (before, after, n)
        runs.append((wall, cpu))
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    return {
        "events": n,
        "table_before": before,
        "csv_mb": csv_path.stat().st_size / 1e6,
        "walls": [r[0] for r in runs],
        "wall": wall,
        "cpu": cpu,
        "rate_wall": n / wall,
        "rows": report.rows,
        "parallel": report.parallel,
    }


def assignment(n: int) -> dict[str, Any]:
    from smart_suggest.experiments.assignment import assign_many

    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        variants = assign_many(1, range(1, n + 1), 1.0, 0.5)
        runs.append(time.perf_counter() - t0)
    return {"users": n, "median": statistics.median(runs), "b_share": variants.count("B") / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="event counts, comma-sep.")
    parser.add_argument("--users", type=int, default=100_000, help="users per database")
    parser.add_argument("--bulk", type=int, default=1_000_000, help="events in the bulk CSV")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per query")
    parser.add_argument("--dir", type=Path, default=None, help="keep databases here (reused)")
    parser.add_argument(
        "--bulk-only", action="store_true", help="only the bulk logging (needs the smallest DB)"
    )
    args = parser.parse_args()
    os.environ["SMART_SUGGEST_NOW"] = NOW
    sizes = [int(s) for s in args.sizes.split(",") if s]
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="bench-experiments-"))
    workdir.mkdir(parents=True, exist_ok=True)
    import sqlite3

    print(
        f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; data in {workdir}"
    )

    if args.bulk_only:
        sizes = sizes[:1]
        build(workdir / f"events-{min(sizes)}.db", min(sizes), args.users)
    a = assignment(1_000_000) if not args.bulk_only else None
    if a is not None:
        print(
            f"assignment   {a['users']:>11,} users   {a['median']:7.2f} s median of 3 "
            f"(B share {a['b_share']:.4f})   target <= 5 s"
        )

    for n in [] if args.bulk_only else sizes:
        path = workdir / f"events-{n}.db"
        info = build(path, n, args.users)
        if not info["reused"]:
            print(
                f"generate     {info['events']:>11,} events  {info['seconds']:7.1f} s "
                f"({info['events'] / info['seconds']:,.0f} events/s, sample.generate)"
            )
        target = 1.0 if n <= 1_000_000 else 10.0
        for what in ("results", "timeline:day", "timeline:hour"):
            r = child(path, what, args.repeat)
            extra = f"{r.get('buckets', '')} buckets" if "buckets" in r else f"{r['events']:,} ev"
            print(
                f"{what:<13}{n:>11,} events  first {r['first']:6.2f} s  median {r['median']:6.2f} s"
                f"  cpu {r['cpu_median']:6.2f} s  peak RSS {r['peak_rss_mb']:6.0f} MB  "
                f"({extra})  target <= {target:g} s"
            )
        r = child(path, "was_served", 1)
        print(
            f"was_served   {n:>11,} events  median {r['lookup_us']:.1f} us per lookup "
            f"(200: {r['hits']} served; {r['served_pairs']:,} served pairs)  target O(log n)"
        )
    if args.bulk:
        b = bulk(workdir / f"events-{min(sizes)}.db", args.bulk, workdir, args.repeat)
        runs = ", ".join(f"{w:.2f}" for w in b["walls"])
        print(
            f"bulk log     {b['events']:>11,} events  median {b['wall']:5.2f} s wall of "
            f"{len(b['walls'])} ({runs}): {b['rate_wall']:,.0f} events/s; "
            f"{b['cpu']:.2f} s CPU in this process"
            f"{' + a reader process' if b['parallel'] else ''}; CSV {b['csv_mb']:.0f} MB "
            f"into a table of {b['table_before']:,} events   target >= 200,000 events/s"
        )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--_measure":
        print(json.dumps(measure(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))))
    else:
        main()
