"""Import speed and memory: `smart-suggest import` of MovieLens-like files.

    python benchmarks/bench_import.py [--rows 1000000] [--repeat 3] [--layout csv|dat]
    python benchmarks/bench_import.py --flat 1000000,5000000,25000000 [--dir DIR]

Writes ``--rows`` ratings (users, movies with Zipf popularity, ratings 1-5, timestamps)
in the layout of the current MovieLens releases (``ratings.csv`` + ``movies.csv``,
``Action|Adventure`` genres) or of MovieLens 1M/10M (``ratings.dat`` + ``movies.dat`` +
``users.dat``, ``::``-separated), then imports them into a fresh database with the real
command, in a fresh process each run. Prints, per run and as medians: wall time
(interpreter start included), CPU time of the importing process (user + sys: what the
import costs whatever else the machine is doing), rows per second of wall time and peak
resident memory, with the load average when the run started. Target (issue 11):
1,000,000 rows <= 15 s.

``--flat`` imports files of several sizes once each (users grow with the rows, 1 per
155 ratings as in MovieLens 25M, unless ``--users N`` fixes their number) and prints peak
RSS per size: the import streams, so memory must not grow with the rows (it grows only
with the distinct users and items, which ``--users`` holds fixed). ``--dir`` keeps the
generated files (one folder per layout and size, reused by later runs: a 25M-row file
takes minutes to write); without it they go to a temporary folder removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import median

GENRES = ("Action", "Comedy", "Drama", "Sci-Fi", "Romance", "Thriller", "Animation")
ITEMS = 3_706
OCCUPATIONS = 21  # MovieLens 1M occupation codes 0-20
AGES = (1, 18, 25, 35, 45, 50, 56)  # MovieLens 1M age groups


def write_files(
    folder: Path, rows: int, users: int = 6_040, items: int = ITEMS, layout: str = "csv"
) -> tuple[Path, Path]:
    import numpy as np

    rng = np.random.default_rng(7)
    dat = layout == "dat"
    sep = "::" if dat else ","
    ratings = folder / ("ratings.dat" if dat else "ratings.csv")
    partial = ratings.with_suffix(".partial")
    with open(partial, "w", encoding="utf-8") as fh:
        if not dat:
            fh.write("userId,movieId,rating,timestamp\n")
        for lo in range(0, rows, 500_000):
            m = min(rows, lo + 500_000) - lo
            user = rng.integers(1, users + 1, m)
            item = (rng.zipf(1.3, m) % items) + 1
            rating = rng.integers(1, 6, m)
            ts = 956_703_932 + rng.integers(0, 90_000_000, m)
            fh.write(
                "".join(
                    f"{u}{sep}{i}{sep}{r}{sep}{t}\n"
                    for u, i, r, t in zip(
                        user.tolist(), item.tolist(), rating.tolist(), ts.tolist(), strict=True
                    )
                )
            )
    partial.replace(ratings)  # a run stopped half-way leaves no file that looks complete
    movies = folder / ("movies.dat" if dat else "movies.csv")
    with open(movies, "w", encoding="latin-1" if dat else "utf-8") as fh:
        if not dat:
            fh.write("movieId,title,genres\n")
        for i in range(1, items + 1):
            genres = "|".join(GENRES[(i + k) % len(GENRES)] for k in range(1 + i % 3))
            title = f"Movie {i}, The ({1950 + i % 70})"
            fh.write(f"{i}::{title}::{genres}\n" if dat else f'{i},"{title}",{genres}\n')
    if dat:
        with open(folder / "users.dat", "w", encoding="latin-1") as fh:
            for u in range(1, users + 1):
                gender = "FM"[u % 2]
                age = AGES[u % len(AGES)]
                fh.write(f"{u}::{gender}::{age}::{u % OCCUPATIONS}::{10000 + u % 89999:05d}\n")
    return ratings, movies


def files(base: Path, rows: int, layout: str, users: int) -> tuple[Path, Path]:
    """The generated files for this size, written unless ``base`` already holds them."""
    same = users == _users_for(rows)
    folder = base / (f"{layout}-{rows}" if same else f"{layout}-{rows}-{users}u")
    folder.mkdir(parents=True, exist_ok=True)
    ratings = folder / ("ratings.dat" if layout == "dat" else "ratings.csv")
    movies = folder / ("movies.dat" if layout == "dat" else "movies.csv")
    if not (ratings.is_file() and movies.is_file()):
        print(f"writing {rows:,} rows to {folder} ...", flush=True)
        write_files(folder, rows, users=users, layout=layout)
    return ratings, movies


def _users_for(rows: int) -> int:
    """Users in proportion to the ratings, as in MovieLens 25M (1 per 155 ratings)."""
    return max(6_040, rows // 155)


_CHILD = (
    "import resource, subprocess, sys, json, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "dt = time.perf_counter() - t\n"
    "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'rc': p.returncode, 'seconds': dt, 'cpu': r.ru_utime + r.ru_stime,\n"
    "                  'rss_mb': r.ru_maxrss / 1024, 'out': p.stdout, 'err': p.stderr[-2000:]}))\n"
)


def import_once(folder: Path, ratings: Path, movies: Path, name: str) -> dict:  # type: ignore[type-arg]
    """One import in a fresh process: wall and CPU seconds, peak RSS (MB), load, report."""
    import subprocess

    db = folder / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    load = os.getloadavg()[0]
    cmd = [sys.executable, "-m", "smart_suggest", "import", str(ratings)]
    cmd += ["--items", str(movies), "--db", str(db), "--json"]
    # The import saves the recommender snapshot of what it wrote (up to 2M interactions,
    # part of its time and memory) in a cache folder of the benchmark's, not the user's.
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "cache")}
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, *cmd], capture_output=True, text=True, env=env
    )
    data = json.loads(res.stdout)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    if data["rc"] != 0:
        raise SystemExit(f"import failed ({data['rc']}): {' '.join(cmd)}\n{data['err']}")
    return {**data, "load": load, "report": json.loads(data["out"])}


def _line(rows: int, run: dict) -> str:  # type: ignore[type-arg]
    return (
        f"{run['seconds']:6.1f} s wall, {run['cpu']:6.1f} s CPU, "
        f"{rows / run['seconds']:>9,.0f} rows/s, peak RSS {run['rss_mb']:4.0f} MB "
        f"(load {run['load']:.1f})"
    )


def flat(base: Path, sizes: list[int], layout: str, fixed_users: int | None) -> None:
    measured = []
    for rows in sizes:
        users = fixed_users or _users_for(rows)
        ratings, movies = files(base, rows, layout, users)
        size_mb = ratings.stat().st_size / 1e6
        run = import_once(ratings.parent, ratings, movies, "flat")
        measured.append((rows, run))
        print(
            f"{rows:>11,} rows ({size_mb:7.1f} MB, {users:,} users): {_line(rows, run)} "
            f"[{run['report']['layout']}]",
            flush=True,
        )
    if len(measured) >= 2:
        # Memory rises until SQLite's page cache (64 MiB during an import) and the index
        # sorter's budget are full, then stays: the slope between the two largest files
        # is the growth with the rows that is left.
        (r1, a), (r2, b) = measured[-2], measured[-1]
        print(
            f"peak RSS from {r1:,} to {r2:,} rows: {a['rss_mb']:.0f} -> {b['rss_mb']:.0f} MB "
            f"({(b['rss_mb'] - a['rss_mb']) / ((r2 - r1) / 1e6):+.2f} MB per million rows); "
            f"CPU per million rows {a['cpu'] / r1 * 1e6:.1f} -> {b['cpu'] / r2 * 1e6:.1f} s"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--layout", choices=("csv", "dat"), default="csv")
    ap.add_argument("--flat", help="comma-separated row counts: memory over file sizes")
    ap.add_argument("--dir", type=Path, help="keep (and reuse) the generated files here")
    ap.add_argument(
        "--users", type=int, help="--flat: this many users at every size (default: rows / 155)"
    )
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = a.dir or Path(tmp)
        if a.flat:
            flat(base, [int(s) for s in a.flat.split(",") if s.strip()], a.layout, a.users)
            return
        ratings, movies = files(base, a.rows, a.layout, a.users or 6_040)
        size_mb = ratings.stat().st_size / 1e6
        runs = []
        for k in range(a.repeat):
            runs.append(import_once(ratings.parent, ratings, movies, f"import{k}"))
            print(f"run {k + 1}: {_line(a.rows, runs[-1])}", flush=True)
    report = runs[-1]["report"]
    t, cpu = median([r["seconds"] for r in runs]), median([r["cpu"] for r in runs])
    print(f"file: {a.rows:,} ratings ({size_mb:.1f} MB, {ratings.name}) + {ITEMS:,} movies")
    print(f"layout detected: {report.get('layout')}")
    print(
        f"import: median {t:.1f} s wall, {cpu:.1f} s CPU (user+sys) over {a.repeat} runs "
        f"(fresh process and database each; core {report.get('seconds', 0):.1f} s in the "
        f"last run), {a.rows / t:,.0f} rows/s, peak RSS {max(r['rss_mb'] for r in runs):.0f} MB"
    )
    print(
        f"created {report.get('users_created')} users, {report.get('items_created')} items, "
        f"{report.get('interactions')} interactions"
    )


if __name__ == "__main__":
    main()
