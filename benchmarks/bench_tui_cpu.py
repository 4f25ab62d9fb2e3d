"""CPU time of the app per screen switch and per cursor move, in-process (Textual's Pilot).

Run: python benchmarks/bench_tui_cpu.py DB [--rounds 5] [--profile]

Serving many visitors (``serve ssh``) is bound by the CPU each key costs the app, which a
loaded machine inflates far less than wall time. The app runs headless at 120x40 on a copy
of DB (``bench_tui.py --workdir DIR`` leaves ``tui_demo.db`` and ``tui_1m.db`` there); each
screen is visited once first, then ``process_time()`` (every thread of the process) is
taken around each key until the app is idle. ``--profile`` prints where the CPU of the
switches went (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SMART_SUGGEST_NOW", "2026-11-20T12:00:00Z")


async def measure(db: Path, rounds: int, profile: cProfile.Profile | None) -> None:
    from tui.app import SmartSuggestApp

    app = SmartSuggestApp(db, poll_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        for key in "231":  # first visits (not measured here: see bench_tui.py)
            await pilot.press(key)
            await pilot.pause(1.0)
        await app.workers.wait_for_complete()
        await pilot.pause()
        cpu: dict[str, list[float]] = {}
        for key in "231" * rounds:
            start = time.process_time()
            if profile:
                profile.enable()
            await pilot.press(key)
            await pilot.pause()
            await pilot.pause()
            if profile:
                profile.disable()
            cpu.setdefault(f"switch to {key}", []).append(time.process_time() - start)
        await pilot.press("2")
        await pilot.pause(0.5)
        await app.workers.wait_for_complete()
        moves = []
        for i in range(4 * rounds):  # down/up in the user list: the user's lists reload
            start = time.process_time()
            await pilot.press("down" if i % 2 == 0 else "up")
            await pilot.pause(app.debounce + 0.05)
            await app.workers.wait_for_complete()
            await pilot.pause()
            moves.append(time.process_time() - start)
        cpu["cursor move (user list, lists reloaded)"] = moves
    print(f"{db.name}: CPU per key, median of {rounds} (min-max), 120x40")
    for name, values in sorted(cpu.items()):
        print(
            f"  {name:<42} {statistics.median(values) * 1000:6.1f} ms "
            f"({min(values) * 1000:.1f}-{max(values) * 1000:.1f})"
        )
    print(f"  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("db", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    profile = cProfile.Profile() if a.profile else None
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / a.db.name
        shutil.copy(a.db, copy)
        asyncio.run(measure(copy, a.rounds, profile))
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    os._exit(0)  # skip the teardown of the app's threads and imports


if __name__ == "__main__":
    main()
