"""Import speed and memory: `smart-suggest import` of a MovieLens-1M-like ratings file.

    python benchmarks/bench_import.py [--rows 1000000] [--repeat 3]

Writes a CSV of ``--rows`` ratings (userId,movieId,rating,timestamp: 6,040 users x 3,706
movies, ratings 1-5) and a movies file (movieId,title,genres), then imports both into a
fresh database with the real command, in a fresh process each run. Prints the rows, the
median wall time (interpreter start included), rows per second and the peak resident
memory of the importing process. Target (issue 3): 1,000,000 rows well under a minute.
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


def write_files(
    folder: Path, rows: int, users: int = 6_040, items: int = 3_706
) -> tuple[Path, Path]:
    import numpy as np

    rng = np.random.default_rng(7)
    ratings = folder / "ratings.csv"
    user = rng.integers(1, users + 1, rows)
    item = (rng.zipf(1.3, rows) % items) + 1
    rating = rng.integers(1, 6, rows)
    ts = 956_703_932 + rng.integers(0, 90_000_000, rows)
    with open(ratings, "w", encoding="utf-8") as fh:
        fh.write("userId,movieId,rating,timestamp\n")
        for lo in range(0, rows, 100_000):
            hi = min(rows, lo + 100_000)
            fh.write(
                "".join(
                    f"{u},{i},{r},{t}\n"
                    for u, i, r, t in zip(
                        user[lo:hi].tolist(),
                        item[lo:hi].tolist(),
                        rating[lo:hi].tolist(),
                        ts[lo:hi].tolist(),
                        strict=True,
                    )
                )
            )
    movies = folder / "movies.csv"
    with open(movies, "w", encoding="utf-8") as fh:
        fh.write("movieId,title,genres\n")
        for i in range(1, items + 1):
            genres = "|".join(GENRES[(i + k) % len(GENRES)] for k in range(1 + i % 3))
            fh.write(f'{i},"Movie {i}, The ({1950 + i % 70})",{genres}\n')
    return ratings, movies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    times, peaks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ratings, movies = write_files(folder, a.rows)
        size_mb = ratings.stat().st_size / 1e6
        report: dict[str, object] = {}
        for k in range(a.repeat):
            db = folder / f"import{k}.db"
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
            report = json.loads(out)
            times.append(secs)
            peaks.append(rss)
    t = median(times)
    print(f"file: {a.rows:,} ratings ({size_mb:.1f} MB) + {3_706:,} movies")
    print(
        f"import: median {t:.1f} s over {a.repeat} runs (fresh process and database each; "
        f"core {report.get('seconds', 0):.1f} s in the last run), "
        f"{a.rows / t:,.0f} rows/s, peak RSS {max(peaks):.0f} MB"
    )
    print(
        f"created {report.get('users_created')} users, {report.get('items_created')} items, "
        f"{report.get('interactions')} interactions"
    )


if __name__ == "__main__":
    main()
