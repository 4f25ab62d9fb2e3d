"""Import speed and memory: `smart-suggest import` of MovieLens-like files.

    python benchmarks/bench_import.py [--rows 1000000] [--repeat 3] [--layout csv|dat]
    python benchmarks/bench_import.py --flat 250000,1000000,4000000

Writes ``--rows`` ratings (users, movies with Zipf popularity, ratings 1-5, timestamps)
in the layout of the current MovieLens releases (``ratings.csv`` + ``movies.csv``,
``Action|Adventure`` genres) or of MovieLens 1M/10M (``ratings.dat`` + ``movies.dat``,
``::``-separated), then imports them into a fresh database with the real command, in a
fresh process each run. Prints the median wall time (interpreter start included), rows
per second and the peak resident memory of the importing process. Target (issue 11):
1,000,000 rows <= 15 s.

``--flat`` imports files of several sizes once each (users grow with the rows, 1 per
155 ratings as in MovieLens 25M) and prints peak RSS per size: the import streams, so
memory stops growing once SQLite's page cache and sorter budget are full; the last line
extrapolates time (least-squares line) and memory (the slope between the two largest
files) to a 25,000,000-row file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import median, run_measured

GENRES = ("Action", "Comedy", "Drama", "Sci-Fi", "Romance", "Thriller", "Animation")
ITEMS = 3_706


def write_files(
    folder: Path, rows: int, users: int = 6_040, items: int = ITEMS, layout: str = "csv"
) -> tuple[Path, Path]:
    import numpy as np

    rng = np.random.default_rng(7)
    dat = layout == "dat"
    sep = "::" if dat else ","
    ratings = folder / ("ratings.dat" if dat else "ratings.csv")
    with open(ratings, "w", encoding="utf-8") as fh:
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
    movies = folder / ("movies.dat" if dat else "movies.csv")
    with open(movies, "w", encoding="latin-1" if dat else "utf-8") as fh:
        if not dat:
            fh.write("movieId,title,genres\n")
        for i in range(1, items + 1):
            genres = "|".join(GENRES[(i + k) % len(GENRES)] for k in range(1 + i % 3))
            title = f"Movie {i}, The ({1950 + i % 70})"
            fh.write(f"{i}::{title}::{genres}\n" if dat else f'{i},"{title}",{genres}\n')
    return ratings, movies


def import_once(folder: Path, ratings: Path, movies: Path, name: str) -> tuple[float, float, dict]:  # type: ignore[type-arg]
    db = folder / f"{name}.db"
    secs, rss, out = run_measured(
        [
            sys.executable,
            "-m",
            "smart_suggest",
            "import",
            str(ratings),
            "--items",
            str(movies),
            "--db",
            str(db),
            "--json",
        ]
    )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return secs, rss, json.loads(out)


def flat(sizes: list[int], layout: str) -> None:
    measured = []
    for rows in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            users = max(6_040, rows // 155)
            ratings, movies = write_files(folder, rows, users=users, layout=layout)
            size_mb = ratings.stat().st_size / 1e6
            secs, rss, report = import_once(folder, ratings, movies, "flat")
        measured.append((rows, secs, rss))
        print(
            f"{rows:>11,} rows ({size_mb:7.1f} MB, {users:,} users): {secs:6.1f} s, "
            f"{rows / secs:,.0f} rows/s, peak RSS {rss:.0f} MB "
            f"(layout: {report['layout']})",
            flush=True,
        )
    if len(measured) >= 2:
        import numpy as np

        x = np.array([m[0] for m in measured], dtype=float)
        t_fit = np.polyfit(x, [m[1] for m in measured], 1)
        big = 25_000_000
        # Memory is not a line: it rises until SQLite's page cache (64 MiB during an
        # import) and the index sorter's budget are full, then stays. The slope between
        # the two largest sizes is the growth that is left.
        (r1, _, m1), (r2, _, m2) = measured[-2], measured[-1]
        slope = (m2 - m1) / (r2 - r1)
        print(
            f"time: least-squares line {t_fit[0] * 1e6:.1f} s per million rows -> "
            f"25,000,000 rows in about {np.polyval(t_fit, big):.0f} s; memory between the "
            f"two largest files {slope * 1e6:+.1f} MB per million rows -> peak RSS at "
            f"25,000,000 rows about {m2 + slope * (big - r2):.0f} MB"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--layout", choices=("csv", "dat"), default="csv")
    ap.add_argument("--flat", help="comma-separated row counts: memory over file sizes")
    a = ap.parse_args()
    if a.flat:
        flat([int(s) for s in a.flat.split(",") if s.strip()], a.layout)
        return
    times, peaks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ratings, movies = write_files(folder, a.rows, layout=a.layout)
        size_mb = ratings.stat().st_size / 1e6
        report: dict[str, object] = {}
        for k in range(a.repeat):
            secs, rss, report = import_once(folder, ratings, movies, f"import{k}")
            times.append(secs)
            peaks.append(rss)
    t = median(times)
    print(f"file: {a.rows:,} ratings ({size_mb:.1f} MB, {ratings.name}) + {ITEMS:,} movies")
    print(f"layout detected: {report.get('layout')}")
    print(
        f"import: median {t:.1f} s over {a.repeat} runs (fresh process and database each; "
        f"core {report.get('seconds', 0):.1f} s in the last run; runs "
        + ", ".join(f"{x:.1f}" for x in times)
        + f" s), {a.rows / t:,.0f} rows/s, peak RSS {max(peaks):.0f} MB"
    )
    print(
        f"created {report.get('users_created')} users, {report.get('items_created')} items, "
        f"{report.get('interactions')} interactions"
    )


if __name__ == "__main__":
    main()
