"""Helpers for the benchmark scripts: run a command in a fresh process, report its peak RSS."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence


def run_measured(
    args: Sequence[str], env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    """Run ``args``; return (wall seconds, peak RSS in MB of that process, stdout)."""
    code = (
        "import resource, subprocess, sys, json, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "dt = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps({'rc': p.returncode, 'seconds': dt, 'rss_mb': rss,\n"
        "                  'out': p.stdout, 'err': p.stderr[-2000:]}))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    data = json.loads(res.stdout)
    if data["rc"] != 0:
        raise SystemExit(f"command failed ({data['rc']}): {' '.join(args)}\n{data['err']}")
    return data["seconds"], data["rss_mb"], data["out"]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def timed(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    """Median wall time of ``fn()`` over ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return median(times)
