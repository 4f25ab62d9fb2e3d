"""Applying single writes to a recommender snapshot against rebuilding it.

Run: python benchmarks/bench_incremental.py [--repeat 20] [--workdir DIR] [--small]

On the 1M database of the TUI benchmark (10,000 users, 2,000 items, 1,000,000
interactions; ``--small`` uses the demo), built once (kept with ``--workdir``):

* full build: ``build_snapshot`` (read every interaction, sum the matrix), median of 3;
* per logged interaction, ``repeat`` times: the ``log`` write itself; ``Recommender.snapshot()``
  applying it (read the rows past the snapshot's marks, patch the matrix and counts); the
  row-normalised copies the next answer needs; and the next v1 + v2 answer for that user;
* one added user and one added item, the same way.

Prints medians (and the slowest); the database is a copy, so runs do not pile up.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LARGE = ["--users", "10000", "--items", "2000", "--interactions", "1000000"]
LARGE += ["--events", "1000000", "--yes"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--workdir", type=Path, default=None, help="keep and reuse databases here")
    ap.add_argument("--small", action="store_true", help="the demo database instead of 1M")
    a = ap.parse_args()

    from smart_suggest import tracking
    from smart_suggest.recommend import Recommender, build_snapshot
    from smart_suggest.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        work = a.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        source = work / ("tui_demo.db" if a.small else "tui_1m.db")
        if not source.exists():
            args = [] if a.small else LARGE
            subprocess.run(
                [sys.executable, "-m", "smart_suggest", "seed", "--db", str(source), *args],
                check=True,
            )
        db = Path(tmp) / "copy.db"
        shutil.copy(source, db)
        with open_store(db) as store:
            builds = []
            for _ in range(3):
                t = time.perf_counter()
                snap = build_snapshot(store)
                builds.append(time.perf_counter() - t)
            print(
                f"{source.name}: {snap.catalogue.n_users:,} users, {snap.catalogue.n_items:,} "
                f"items, {snap.interaction_count:,} interactions"
            )
            engine = Recommender(store)
            engine.snapshot()
            ids = snap.catalogue.user_ids
            items = snap.catalogue.item_ids
            rows: dict[str, list[float]] = {k: [] for k in ("write", "apply", "derive", "answer")}

            def step(write: object) -> None:
                t0 = time.perf_counter()
                user = write() if callable(write) else None  # type: ignore[operator]
                t1 = time.perf_counter()
                fresh = engine.snapshot()
                t2 = time.perf_counter()
                fresh.normalized_t  # noqa: B018  (built on the next answer)
                t3 = time.perf_counter()
                engine.recommend(user, "v1", 10)
                engine.recommend(user, "v2", 10)
                t4 = time.perf_counter()
                for key, value in zip(rows, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    rows[key].append(value)

            for k in range(a.repeat):
                uid = int(ids[(k * 7919) % len(ids)])
                iid = int(items[(k * 104729) % len(items)])

                action = ("view", "click", "purchase")[k % 3]

                def log(uid: int = uid, iid: int = iid, action: str = action) -> int:
                    tracking.log_interaction(store, uid, iid, action)
                    return uid

                step(log)
            print(f"full build: {statistics.median(builds) * 1000:.0f} ms (median of 3)")
            print(f"one logged interaction, {a.repeat} times (median, slowest):")
            for key, values in rows.items():
                print(
                    f"  {key:<7} {statistics.median(values) * 1000:8.1f} ms "
                    f"({max(values) * 1000:.1f} ms)"
                )
            for label, write in (
                ("added user", lambda: tracking.add_user(store, f"bench-{time.time_ns()}").id),
                (
                    "added item",
                    lambda: (
                        tracking.add_item(store, f"Bench {time.time_ns()}", "bench", "a lamp"),
                        int(ids[0]),
                    )[1],
                ),
            ):
                for values in rows.values():
                    values.clear()
                step(write)
                done = ", ".join(f"{k} {v[0] * 1000:.1f} ms" for k, v in rows.items())
                print(f"{label}: {done}")


if __name__ == "__main__":
    main()
