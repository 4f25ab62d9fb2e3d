"""Seeding speed and memory: the synthetic seed at the foundation issue's size.

Run: python benchmarks/bench_seed.py [--users 10000 --items 2000 --interactions 1000000
     --events 1000000] [--repeat 3]
Prints the size, the median wall time of `smart-suggest seed` (a fresh process each run,
fresh database) and its peak resident memory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import median, run_measured


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=2_000)
    ap.add_argument("--interactions", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    times, peaks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeat):
            db = Path(tmp) / f"seed{i}.db"
            secs, rss, _ = run_measured(
                [
                    sys.executable,
                    "-m",
                    "smart_suggest",
                    "seed",
                    "--db",
                    str(db),
                    "--yes",
                    "--json",
                    "--users",
                    str(a.users),
                    "--items",
                    str(a.items),
                    "--interactions",
                    str(a.interactions),
                    "--events",
                    str(a.events),
                ],
                # The seed saves the recommender snapshot of its data (up to 2M
                # interactions): in a cache folder of the benchmark's, not the user's.
                env={"XDG_CACHE_HOME": str(Path(tmp) / "cache")},
            )
            times.append(secs)
            peaks.append(rss)
            size = db.stat().st_size / 1e6
            print(
                f"run {i + 1}: {secs:6.1f} s, peak RSS {rss:6.0f} MB, file {size:.0f} MB",
                flush=True,
            )
    print(
        f"seed {a.users:,} users x {a.items:,} items x {a.interactions:,} interactions x "
        f"{a.events:,} events: median {median(times):.1f} s, peak RSS {max(peaks):.0f} MB "
        f"({a.repeat} runs)"
    )


if __name__ == "__main__":
    main()
