"""Fetch the real MovieLens 100K ratings and write them in the MovieLens file layouts.

    python benchmarks/movielens_data.py [--cache DIR]      # default /work/bench/movielens

The GroupLens site is not reachable from every build machine, but the ML-100K files ship
inside a Python wheel on PyPI: RecBole 1.2.1 (``recbole/dataset_example/ml-100k/``, atomic
files: ``ml-100k.inter`` = user, item, rating, timestamp; ``ml-100k.item`` = item, title
without the year, release year, genres separated by spaces; ``ml-100k.user``). This script
downloads that wheel with ``pip download`` into ``DIR/wheel`` (once) and writes, under DIR:

* ``ml-100k/`` in the *original* 100K layout: ``u.data`` (tab-separated user, item, rating,
  time), ``u.item`` (pipe-separated, Latin-1: id, "Title (year)", release date, video
  date, URL, then the 19 genre flags), ``u.genre`` (name|index) and ``u.user``;
* ``ml-latest-small-layout/`` in the current-release layout: ``ratings.csv``
  (``userId,movieId,rating,timestamp``) and ``movies.csv`` (``movieId,title,genres`` with
  ``A|B|C`` genres, quoted where the title has a comma).

Same 100,000 ratings in both, so ``smart-suggest import`` is exercised on both layouts
with real files. The data is GroupLens' (research licence): it is never committed to this
repository; this script fetches it. What RecBole's files do not carry is filled as
MovieLens does for missing values: the release date becomes ``01-Jan-<year>``, the video
release date and the IMDb URL are empty (the importer stores none of them).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL = "recbole==1.2.1"
PREFIX = "recbole/dataset_example/ml-100k/ml-100k"
#: The 19 genres of ML-100K in the order of u.genre (the flag columns of u.item).
GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


def fetch_wheel(cache: Path) -> Path:
    """The RecBole wheel in ``cache/wheel`` (downloaded with pip the first time)."""
    folder = cache / "wheel"
    found = sorted(folder.glob("recbole-*.whl")) if folder.exists() else []
    if found:
        return found[-1]
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", str(folder)],
        check=True,
    )
    found = sorted(folder.glob("recbole-*.whl"))
    if not found:
        raise SystemExit(f"pip download {WHEEL} produced no wheel in {folder}")
    return found[-1]


def _atomic_rows(archive: zipfile.ZipFile, kind: str) -> list[list[str]]:
    """Rows of a RecBole atomic file (tab-separated, one typed header line)."""
    text = archive.read(f"{PREFIX}.{kind}").decode("utf-8")
    lines = text.split("\n")
    return [line.split("\t") for line in lines[1:] if line]


def read_recbole(wheel: Path) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """(ratings, items, users) rows of the wheel's ML-100K, checked against its known shape."""
    with zipfile.ZipFile(wheel) as archive:
        ratings = _atomic_rows(archive, "inter")
        items = _atomic_rows(archive, "item")
        users = _atomic_rows(archive, "user")
    if len(ratings) != 100_000 or len(items) != 1_682 or len(users) != 943:
        raise SystemExit(
            f"unexpected ML-100K shape in {wheel.name}: {len(ratings)} ratings, "
            f"{len(items)} items, {len(users)} users"
        )
    for row in items:
        unknown = set(row[3].split()) - set(GENRES)
        if unknown:
            raise SystemExit(f"item {row[0]}: genres not in ML-100K: {sorted(unknown)}")
    return ratings, items, users


def _title(row: list[str]) -> str:
    # ML-100K titles carry the year, "Toy Story (1995)"; RecBole split it off.
    return f"{row[1]} ({row[2]})" if row[2] else row[1]


def write_100k(
    folder: Path, ratings: list[list[str]], items: list[list[str]], users: list[list[str]]
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "u.data", "w", encoding="ascii", newline="\n") as out:
        out.writelines("\t".join(row[:4]) + "\n" for row in ratings)
    with open(folder / "u.item", "w", encoding="latin-1", newline="\n") as out:
        for row in items:
            genres = set(row[3].split())
            flags = ["1" if g in genres else "0" for g in GENRES]
            date = f"01-Jan-{row[2]}" if row[2] else ""
            out.write("|".join([row[0], _title(row), date, "", "", *flags]) + "\n")
    with open(folder / "u.genre", "w", encoding="ascii", newline="\n") as out:
        out.writelines(f"{g}|{i}\n" for i, g in enumerate(GENRES))
        out.write("\n")  # the original ends with an empty line
    with open(folder / "u.user", "w", encoding="ascii", newline="\n") as out:
        out.writelines("|".join(row) + "\n" for row in users)


def write_current(folder: Path, ratings: list[list[str]], items: list[list[str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "ratings.csv", "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["userId", "movieId", "rating", "timestamp"])
        writer.writerows([u, i, f"{float(r):.1f}", t] for u, i, r, t in ratings)
    with open(folder / "movies.csv", "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["movieId", "title", "genres"])
        for row in items:
            genres = [g for g in GENRES if g in set(row[3].split()) and g != "unknown"]
            writer.writerow([row[0], _title(row), "|".join(genres) or "(no genres listed)"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/work/bench/movielens"))
    args = parser.parse_args()
    wheel = fetch_wheel(args.cache)
    ratings, items, users = read_recbole(wheel)
    write_100k(args.cache / "ml-100k", ratings, items, users)
    write_current(args.cache / "ml-latest-small-layout", ratings, items)
    print(
        f"ML-100K from {wheel.name}: {len(ratings):,} ratings, {len(items):,} items, "
        f"{len(users):,} users"
    )
    print(f"  {args.cache / 'ml-100k'}: u.data, u.item, u.genre, u.user")
    print(f"  {args.cache / 'ml-latest-small-layout'}: ratings.csv, movies.csv")


if __name__ == "__main__":
    main()
