"""TUI first paint on the seeded demo database (target: under 1 s), and responsiveness.

Run: python benchmarks/bench_tui.py [--repeat 5] [--large]

Each run is a fresh Python process that imports the app, opens the database and runs it
headless at 80x24 (Textual's test driver: the same compose, layout and rendering as in
a terminal, without the terminal). Printed per measure: the median over the runs.

* ``process -> data``: from before the interpreter starts to the overview showing the
  live counts (interpreter start, imports, opening the database, first frame, first
  query);
* ``app -> shell``: from constructing the app to the first frame of the overview;
* ``app -> data``: from constructing the app to the frame with the counts.

``--large`` also seeds a synthetic database (10,000 users, 200,000 interactions,
1,000,000 events) and measures the same on it, plus the event loop's worst stall while
the experiments screen analyses that experiment in a worker (the UI stays responsive
when the stall stays far below the analysis time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import median

FIXED_NOW = "2026-11-20T12:00:00Z"

CHILD = r"""
import asyncio, json, sys, time
t_imports = time.perf_counter()
from tui.app import SmartSuggestApp
t_imported = time.perf_counter()

async def main():
    app = SmartSuggestApp(sys.argv[1], poll_seconds=0)
    stall = 0.0
    async with app.run_test(size=(80, 24)) as pilot:
        while "data" not in app.paint_times:
            await asyncio.sleep(0.005)
        data_at = time.time()
        analysis = None
        if len(sys.argv) > 2:
            # Switch to experiments and measure the longest gap between loop ticks
            # while the analysis runs in its worker.
            started = time.perf_counter()
            await pilot.press("3")
            last = time.perf_counter()
            screen = app.screen
            while screen.view is None and time.perf_counter() - started < 120:
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                stall = max(stall, now - last - 0.01)
                last = now
            analysis = time.perf_counter() - started
    print(json.dumps({
        "imports": t_imported - t_imports,
        "shell": app.paint_times["shell"] - app.started_at,
        "data": app.paint_times["data"] - app.started_at,
        "data_wall": data_at,
        "analysis": analysis,
        "stall": stall,
    }))

asyncio.run(main())
"""


def seed_demo(path: Path) -> None:
    from smart_suggest.sample import load_demo
    from smart_suggest.store import open_store

    with open_store(path) as store:
        load_demo(store, seed=42)


def seed_large(path: Path) -> None:
    from smart_suggest.sample import SyntheticSpec, generate
    from smart_suggest.store import open_store

    spec = SyntheticSpec(users=10_000, items=2_000, interactions=200_000, events=1_000_000)
    with open_store(path) as store:
        generate(store, spec)


def measure(db: Path, repeat: int, analyse: bool = False) -> dict[str, float]:
    runs: list[dict[str, float]] = []
    env = {**os.environ, "SMART_SUGGEST_NOW": FIXED_NOW}
    for _ in range(repeat):
        args = [sys.executable, "-c", CHILD, str(db)] + (["analyse"] if analyse else [])
        t0 = time.time()
        out = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["process"] = result["data_wall"] - t0
        runs.append(result)
    keys = ["process", "imports", "shell", "data"] + (["analysis", "stall"] if analyse else [])
    return {k: median([r[k] for r in runs]) for k in keys}


def report(label: str, m: dict[str, float]) -> None:
    print(f"{label}")
    imports = f"(imports {m['imports'] * 1000:.0f} ms)"
    print(f"  process -> data   {m['process'] * 1000:7.0f} ms   {imports}")
    print(f"  app -> shell      {m['shell'] * 1000:7.0f} ms")
    print(f"  app -> data       {m['data'] * 1000:7.0f} ms")
    if "analysis" in m:
        print(f"  analysis (worker) {m['analysis'] * 1000:7.0f} ms")
        print(f"  worst loop stall  {m['stall'] * 1000:7.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--large", action="store_true", help="also a 1,000,000-event database")
    a = ap.parse_args()
    os.environ["SMART_SUGGEST_NOW"] = FIXED_NOW
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo.db"
        seed_demo(demo)
        size = demo.stat().st_size
        m = measure(demo, a.repeat)
        report(f"demo database ({size / 1e6:.1f} MB), median of {a.repeat} runs, 80x24", m)
        verdict = "OK" if m["process"] < 1.0 else "OVER"
        print(f"  target first paint < 1 s (process -> data): {verdict}")
        if a.large:
            large = Path(tmp) / "large.db"
            seed_large(large)
            m = measure(large, max(1, a.repeat // 2), analyse=True)
            report(f"large database ({large.stat().st_size / 1e6:.0f} MB)", m)


if __name__ == "__main__":
    main()
