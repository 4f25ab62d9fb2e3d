"""Analysis speed and memory on large experiments (issue 4: results + timeline <= 10 s at
10M events; issue 7: a 10M-event analysis peaks under 1 GB).

Run: python benchmarks/bench_analyze.py [--sizes 1000000,10000000] [--repeat 3]
     [--workdir DIR]

For each size, builds a synthetic database (100,000 users, 2,000 items, no interaction
history, N experiment events) with ``sample.generate`` - the 10M build takes a few
minutes; with ``--workdir`` the databases are kept there and reused by later runs. Then,
each in a fresh process, ``repeat`` times:

* the core ``analysis.analyze`` with per-stage times (results, timeline, statistics)
  taken from its progress callback, and that process's peak RSS (getrusage);
* the whole command ``smart-suggest analyze 1 --json`` (import, analysis, JSON), wall time
  and peak RSS.

Prints the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _util import median, run_measured

_STAGES = r"""
import json, resource, sys, time
t = time.perf_counter()
import smart_suggest.stats  # scipy: timed apart so "statistics" is the computation alone
imported = time.perf_counter() - t
from smart_suggest.analysis import analyze
from smart_suggest.store import open_store

marks = {}


def progress(stage, done, total):
    marks[f"{stage}:{done}"] = time.perf_counter()


store = open_store(sys.argv[1])
t0 = time.perf_counter()
an = analyze(store, 1, progress=progress)
t1 = time.perf_counter()
store.close()
print(json.dumps({
    "results": marks["timeline:1"] - marks["results:0"],
    "timeline": marks["statistics:2"] - marks["timeline:1"],
    "statistics": marks["statistics:3"] - marks["statistics:2"],
    "total": t1 - t0,
    "import_stats": imported,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "verdict": an.verdict,
    "events": sum(v.impressions + v.clicks + v.purchases + v.engagement_n
                  for v in an.variants.values()),
}))
"""


def build(path: Path, events: int) -> float:
    """Create the synthetic database unless it is already there; return seconds taken."""
    if path.exists():
        return 0.0
    from smart_suggest.sample import SyntheticSpec, generate
    from smart_suggest.store import open_store

    tmp = path.with_suffix(".partial")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    t = time.perf_counter()
    with open_store(tmp) as store:
        generate(store, SyntheticSpec(users=100_000, items=2_000, interactions=0, events=events))
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    tmp.rename(path)
    return time.perf_counter() - t


def stages(db: Path) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, "-c", _STAGES, str(db)], capture_output=True, text=True, check=True
    )
    data: dict[str, Any] = json.loads(res.stdout)
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1000000,10000000", help="event counts, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None, help="keep and reuse databases here")
    a = ap.parse_args()
    sizes = [int(s.replace("_", "")) for s in a.sizes.split(",") if s.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        work = a.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        summary = []
        for n in sizes:
            db = work / f"analyze_{n}.db"
            built = build(db, n)
            size_mb = db.stat().st_size / 1e6
            note = f"built in {built:.0f} s" if built else "reused"
            print(f"{n:,} events: database {size_mb:,.0f} MB ({note})", flush=True)
            runs = []
            for i in range(a.repeat):
                r = stages(db)
                runs.append(r)
                print(
                    f"  core run {i + 1}: results {r['results']:.2f} s, timeline "
                    f"{r['timeline']:.2f} s, statistics {r['statistics']:.3f} s, total "
                    f"{r['total']:.2f} s (+ scipy import {r['import_stats']:.2f} s), peak RSS "
                    f"{r['rss_mb']:.0f} MB ({r['verdict']})",
                    flush=True,
                )
            cli_times: list[float] = []
            cli_rss: list[float] = []
            for i in range(a.repeat):
                secs, rss, out = run_measured(
                    [
                        sys.executable,
                        "-m",
                        "smart_suggest",
                        "analyze",
                        "1",
                        "--db",
                        str(db),
                        "--json",
                    ]
                )
                json.loads(out)
                cli_times.append(secs)
                cli_rss.append(rss)
                print(f"  CLI run {i + 1}: {secs:.2f} s, peak RSS {rss:.0f} MB", flush=True)
            med = {
                k: statistics.median(float(r[k]) for r in runs) for k in runs[0] if k != "verdict"
            }
            med["rss_mb"] = max(r["rss_mb"] for r in runs)
            summary.append((n, med, median(cli_times), max(cli_rss), int(runs[0]["events"])))
        print()
        print(
            "events       results  timeline  stats    results+timeline  core peak  "
            "CLI total  CLI peak"
        )
        for n, med, cli_t, cli_peak, counted in summary:
            assert counted == n, f"database holds {counted:,} events, expected {n:,}"
            rt = med["results"] + med["timeline"]
            print(
                f"{n:>11,}  {med['results']:6.2f} s  {med['timeline']:6.2f} s  "
                f"{med['statistics']:5.3f} s  {rt:13.2f} s  {med['rss_mb']:6.0f} MB  "
                f"{cli_t:7.2f} s  {cli_peak:5.0f} MB"
            )
        print(f"(medians of {a.repeat} runs, each in a fresh process; peak = max RSS)")


if __name__ == "__main__":
    main()
