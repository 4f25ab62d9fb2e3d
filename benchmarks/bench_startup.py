"""Whole-process wall time of short commands, and the import time of the heaviest modules.

Run: python benchmarks/bench_startup.py [--repeat 9] [--sizes 100000] [--workdir DIR]

Targets (issue 14, medians, demo database unless said): ``experiment log EXP USER ITEM
click`` <= 0.12 s; ``recommend USER`` <= 0.35 s; ``analyze EXP --json`` <= 0.45 s at 100K
events and <= 1.0 s at 10M; ``--help`` <= 0.15 s.

Each command runs ``repeat`` times as its own process (the ``smart-suggest`` script next
to this Python), after one unmeasured run that warms the OS file cache. Printed per
command: the median and the fastest wall time, and the median CPU time (user + system)
of the process, which a busy machine inflates far less than wall time. The floor is the
same Python doing nothing (``python -c pass``) and inserting one row with plain sqlite3.

The analyze databases (100,000 users, N events, as in bench_analyze.py) are built once;
with ``--workdir`` they are kept and reused (the same files as bench_analyze.py's).
Timed as installed: with the bytecode caches of our own modules in place. pip compiles a
wheel's modules when it installs them, but an editable install is compiled by its first
run, which ``PYTHONDONTWRITEBYTECODE`` (set in some environments) prevents: every run then
compiled each module again (0.1-0.2 s of every command). So the package is compiled first.
Then ``python -X importtime`` gives the cumulative import time of the heavy modules, each
in a fresh process (medians of three).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_analyze import build as build_analyze_db

EXP = "homepage-recs-v1-vs-v2"
TARGETS = {"help": 0.15, "log": 0.12, "recommend": 0.35, "analyze 100,000": 0.45}
HEAVY = (
    "smart_suggest.cli",
    "typer",
    "rich.console",
    "numpy",
    "scipy.sparse",
    "scipy.special",
    "scipy.stats",
    "smart_suggest.recommend",
    "smart_suggest.analysis",
    "smart_suggest.stats",
    "textual.app",
)


def compile_package() -> None:
    """Write the bytecode caches of smart_suggest (and tui), as a wheel install has them."""
    import compileall
    import importlib.util

    for name in ("smart_suggest", "tui"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                compileall.compile_dir(folder, quiet=1)


def command() -> list[str]:
    script = Path(sys.executable).with_name("smart-suggest")
    return [str(script)] if script.exists() else [sys.executable, "-m", "smart_suggest"]


def run_once(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process; fails loudly on a non-zero exit."""
    t = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(args)}\n{err}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(args: list[str], repeat: int) -> tuple[float, float, float]:
    """(median wall, fastest wall, median CPU) over ``repeat`` runs after one warm-up."""
    run_once(args)
    runs = [run_once(args) for _ in range(repeat)]
    walls = [w for w, _ in runs]
    return statistics.median(walls), min(walls), statistics.median(c for _, c in runs)


def import_time(module: str) -> float | None:
    """Cumulative import seconds of ``module`` in a fresh interpreter (None: not installed)."""
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        return None
    pattern = re.compile(rf"^import time:\s+\d+ \|\s+(\d+) \|\s*{re.escape(module)}$")
    for line in res.stderr.splitlines():
        m = pattern.match(line)
        if m:
            return int(m.group(1)) / 1e6
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--sizes", default="100000", help="event counts for analyze, comma-separated")
    ap.add_argument("--workdir", type=Path, default=None, help="keep and reuse databases here")
    a = ap.parse_args()
    sizes = [int(s.replace("_", "")) for s in a.sizes.split(",") if s.strip()]
    cli = command()
    compile_package()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    env_now = {**os.environ, "SMART_SUGGEST_NOW": "2026-11-20T12:00:00Z"}
    with tempfile.TemporaryDirectory() as tmp:
        work = a.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        demo = Path(tmp) / "demo.db"
        subprocess.run(
            [*cli, "seed", "--db", str(demo)], check=True, capture_output=True, env=env_now
        )
        served = subprocess.run(
            [*cli, "experiment", "serve", EXP, "alice", "--json", "--db", str(demo)],
            check=True,
            capture_output=True,
            text=True,
        )
        item = str(json.loads(served.stdout)["recommendations"][0]["item_id"])
        floor_sql = (
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            'c.execute("INSERT INTO interactions(user_id, item_id, action, ts) '
            "VALUES (1, 1, 'view', 0)\")\n"
            "c.execute('COMMIT')\n"
        )
        floor_db = Path(tmp) / "floor.db"
        shutil.copy(demo, floor_db)
        cases: list[tuple[str, list[str]]] = [
            ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
            ("python + sqlite3 insert (floor)", [sys.executable, "-c", floor_sql, str(floor_db)]),
            ("help", [*cli, "--help"]),
            ("log", [*cli, "experiment", "log", EXP, "alice", item, "click", "--db", str(demo)]),
            ("recommend", [*cli, "recommend", "alice", "--db", str(demo)]),
            ("analyze demo", [*cli, "analyze", EXP, "--json", "--db", str(demo)]),
        ]
        for n in sizes:
            db = work / f"analyze_{n}.db"
            built = build_analyze_db(db, n)
            note = f"built in {built:.0f} s" if built else "reused"
            print(f"analyze database with {n:,} events: {db} ({note})", flush=True)
            cases.append((f"analyze {n:,}", [*cli, "analyze", "1", "--json", "--db", str(db)]))

        print(f"\n{'command':<34} {'median':>8} {'fastest':>8} {'CPU':>8}  target")
        for name, args in cases:
            med, fast, cpu = measure(args, a.repeat)
            target = TARGETS.get(name)
            if name.startswith("analyze") and n_events(name) >= 10_000_000:
                target = 1.0
            mark = ""
            if target is not None:
                mark = f"{target:.2f} s " + ("ok" if med <= target else "MISSED")
            print(f"{name:<34} {med:7.3f}s {fast:7.3f}s {cpu:7.3f}s  {mark}", flush=True)
        print(f"(wall: median and fastest of {a.repeat} runs; CPU: median user + system)")
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    print(f"\n{'module':<26} import (cumulative, median of 3)")
    for module in HEAVY:
        times = [import_time(module) for _ in range(3)]
        valid = [t for t in times if t is not None]
        shown = f"{statistics.median(valid) * 1000:7.0f} ms" if valid else "   not installed"
        print(f"{module:<26} {shown}")


def n_events(name: str) -> int:
    digits = re.sub(r"[^0-9]", "", name)
    return int(digits) if digits else 0


if __name__ == "__main__":
    main()
