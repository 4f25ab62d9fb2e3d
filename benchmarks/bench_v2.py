"""v2 (content-based) against what it was before items could have several categories.

    python benchmarks/movielens_data.py          # once: the real MovieLens 100K files
    python benchmarks/bench_v2.py [--cache DIR] [--synthetic-cache DIR] [--sizes 100k,1m]

"v2 before" is v2 as it was when an item had one category: a genre string such as
``Action|Adventure|Thriller`` was that item's single category (weight 3.0 in l2 norm), so
only films with the very same combination shared anything. It is rebuilt here faithfully:
the same catalogue with each item's categories joined by ``|`` into one, the same
descriptions and the same scoring. Rows:

* v2 before (one joined category), ties by id as v2 then did;
* v2 main category only (each item's first category);
* v2 multi-valued, ties by id (v2 before ties were broken by popularity);
* v2 multi-valued, random tie-breaks (what the id order is worth);
* v2 (as shipped: multi-valued, ties by popularity);
* v2 with a recency-weighted history (pairs weighted ``0.5 ** (rank / half_life)``, as v3);
* the TF-IDF item-kNN on the genres of ``bench_movielens`` (neighbours tuned on the
  validation split).

On the real MovieLens 100K (imported by ``bench_movielens.py`` into ``DIR/ml100k.db``:
run it once, or this script imports it) with the time split and leave-last-out, and on the
synthetic data of the 100K shape (``bench_v3.py``'s database, generated when missing).
Every row is paired with "v2 before" on the same users: mean difference and 95% interval.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_movielens
import bench_v3


def variant(cat: Any, how: str) -> Any:
    """The catalogue with its categories rebuilt: "joined" (one ``A|B|C``), "main" (first)."""
    from smart_suggest.recommend.snapshot import Catalogue

    names = [[cat.categories[c] for c in cats] for cats in cat.item_category_sets]
    if how == "joined":
        sets: list[Any] = [("|".join(n),) if n else () for n in names]
    elif how == "main":
        sets = [tuple(n[:1]) for n in names]
    else:
        sets = [tuple(n) for n in names]
    return Catalogue(
        cat.user_ids, cat.usernames, cat.item_ids, cat.item_names, sets, cat.descriptions
    )


def id_ties(snap: Any, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    from smart_suggest.recommend._ops import top_rows

    return top_rows(scores, n)


def random_ties(snap: Any, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    from smart_suggest.recommend._ops import top_rows

    order = np.random.default_rng(7).permutation(scores.shape[1])
    top, vals = top_rows(np.round(scores[:, order], 9), n)
    return np.where(top >= 0, order[np.maximum(top, 0)], -1), vals


def near_ties(tolerance: float) -> Any:
    """Scores within ``tolerance`` (relative) of each other count as tied: by popularity."""
    from smart_suggest.recommend import content

    by_popularity = content.top_by_score  # the shipped one (run() patches the module's)

    def top(snap: Any, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        safe = np.maximum(scores, 1e-300)
        bucket = np.where(scores > 0, np.floor(np.log(safe) / np.log1p(tolerance)) + 1e4, 0.0)
        cols, _ = by_popularity(snap, bucket, n)
        vals = np.take_along_axis(scores, np.maximum(cols, 0), axis=1)
        return cols, np.where(cols >= 0, vals, 0.0)

    return top


def score(db: Path, split: str, k: int, half_lives: tuple[float, ...]) -> dict[str, Any]:
    from smart_suggest.evaluate import _metrics_from_keys, holdout, recommend_top
    from smart_suggest.recommend import content
    from smart_suggest.recommend.itemitem import recency_weights
    from smart_suggest.recommend.snapshot import load_catalogue, load_interactions
    from smart_suggest.store import open_store
    from smart_suggest.tuning import build_options, validation_split

    store = open_store(db)
    with store.read():
        cat = load_catalogue(store)
        inter = load_interactions(store, cat, with_time=True)
    options = build_options("v2", None, count=k, cold_items=False)
    out: dict[str, np.ndarray] = {}
    cost: dict[str, float] = {}
    rows = None

    def run(
        label: str,
        catalogue: Any,
        ties: Any = None,
        half_life: float | None = 0.0,
        profile: bool = False,
    ) -> None:
        nonlocal rows
        t = bench_movielens.cpu_s()
        part = holdout(inter, catalogue, split=split, test_fraction=0.2)
        if rows is None:
            rows = part.rows
        assert np.array_equal(rows, part.rows), "variants must score the same users"
        saved_top, saved_scores = content.top_by_score, content.content_scores
        if ties is not None:
            content.top_by_score = ties
        history = part.snap.matrix.copy()
        if half_life:
            history.data *= recency_weights(part.snap.last_touch, half_life)

        def scores(snap: Any, r: np.ndarray, h: Any = None) -> np.ndarray:
            if half_life is None:  # v2 as shipped (its own recency weighting)
                return saved_scores(snap, r)
            if not profile:
                return saved_scores(snap, r, history)
            # The user's profile: the weighted sum of their items' feature vectors; its
            # dot product with an item is the sum of all similarities (no cut-off).
            x = snap.catalogue.features
            return np.asarray(((history[r] @ x) @ x.T).toarray())

        content.content_scores = scores
        try:
            rec = recommend_top(part, "v2", options, k)
        finally:
            content.top_by_score, content.content_scores = saved_top, saved_scores
        out[label] = _metrics_from_keys(rec, part.rel_keys, part.base, part.n_users, k)["ndcg"]
        cost[label] = bench_movielens.cpu_s() - t

    shipped = f"v2 (ties by popularity, recency {content.HALF_LIFE:g})"
    run("v2 before (joined A|B|C)", variant(cat, "joined"), id_ties)
    run("v2 main category only", variant(cat, "main"), id_ties)
    run("v2 multi, ties by id", cat, id_ties)
    run("v2 multi, random ties", cat, random_ties)
    run("v2 before, random ties", variant(cat, "joined"), random_ties)
    run("v2 multi, ties by popularity", cat)
    run("v2 before, ties by popularity", variant(cat, "joined"))
    for tol in (0.02, 0.1):
        run(f"v2 multi, near ties {tol:g}", cat, near_ties(tol))
    run("v2 profile (no cut-off), pop. ties", cat, profile=True)
    for h in half_lives:
        run(f"v2 before + recency {h:g}, pop. ties", variant(cat, "joined"), half_life=h)
        run(f"v2 before + recency {h:g}, random ties", variant(cat, "joined"), random_ties, h)
        run(f"v2 multi + recency {h:g}, random ties", cat, random_ties, h)
        run(f"v2 profile + recency {h:g}, pop. ties", cat, half_life=h, profile=True)
    run(shipped, cat, half_life=None)

    # The genre TF-IDF item-kNN of bench_movielens, its neighbours chosen on validation.
    t = bench_movielens.cpu_s()
    part = holdout(inter, cat, split=split, test_fraction=0.2)
    val = validation_split(inter, cat, 0.2)
    fn, grid = bench_movielens.BASELINES["genre TF-IDF item-kNN"]

    def knn(split_: Any, neighbours: int) -> np.ndarray:
        top = fn(split_.snap, split_.rows, k, neighbours)
        top = bench_movielens._fill_popular(top, split_.snap, split_.rows)
        keys = split_.rel_keys
        return _metrics_from_keys(top, keys, split_.base, split_.n_users, k)["ndcg"]

    best = max(grid["neighbours"], key=lambda nb: float(knn(val, nb).mean()))
    out[f"genre TF-IDF item-kNN ({best} nb.)"] = knn(part, best)
    cost[f"genre TF-IDF item-kNN ({best} nb.)"] = bench_movielens.cpu_s() - t
    users = len(rows) if rows is not None else 0
    return {"ndcg": out, "cpu": cost, "users": users, "shipped": shipped}


def report(title: str, result: dict[str, Any], k: int) -> None:
    from smart_suggest.evaluate import paired_interval, standard_error

    ndcg = result["ndcg"]
    base_label = "v2 before (joined A|B|C)"
    base = ndcg[base_label]
    print(f"\n{title}: {result['users']} users, NDCG@{k} ± standard error")
    head = f"{'':<34} {'NDCG@' + str(k):>16}  {'- v2 before (95% paired)':<32} {'cpu s':>6}"
    print(head)
    print("-" * len(head))
    for label, values in ndcg.items():
        diff, low, high = paired_interval(values - base)
        versus = (
            "baseline"
            if label == base_label
            else f"{diff:+.4f} ({low:+.4f} .. {high:+.4f})" + (" =" if low <= 0 <= high else "")
        )
        print(
            f"{label:<34} {values.mean():.4f} ±{standard_error(values):.4f}  {versus:<32} "
            f"{result['cpu'][label]:6.1f}"
        )
    knn = next(label for label in ndcg if label.startswith("genre"))
    shipped = result["shipped"]
    pairs = [
        (shipped, knn),
        ("v2 multi, random ties", "v2 before, random ties"),
        ("v2 multi, ties by popularity", "v2 before, ties by popularity"),
    ]
    for a, b in pairs:
        diff, low, high = paired_interval(ndcg[a] - ndcg[b])
        print(f"  {a} - {b}: {diff:+.4f} ({low:+.4f} .. {high:+.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/work/bench/movielens"))
    parser.add_argument("--synthetic-cache", type=Path, default=Path("/work/bench/v2"))
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--half-lives", default="5", help="recency rows (comma-separated)")
    parser.add_argument("--sizes", default="100k", help="synthetic shapes: 100k and/or 1m")
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("SMART_SUGGEST_NO_PROGRESS", "1")
    half_lives = tuple(float(h) for h in args.half_lives.split(",") if h)
    load = os.getloadavg()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load[0]:.2f}")
    db = args.cache / "ml100k.db"
    if not db.exists():
        source = args.cache / "ml-100k" / "u.data"
        if not source.exists():
            raise SystemExit(f"{source} is missing: run python benchmarks/movielens_data.py")
        bench_movielens.import_db(source, db)
    runs = [
        ("MovieLens 100K, time split", db, "time"),
        ("MovieLens 100K, leave-last-out", db, "leave-last-out"),
    ]
    if not args.skip_synthetic:
        args.synthetic_cache.mkdir(parents=True, exist_ok=True)
        for size in args.sizes.split(","):
            users, items, interactions = bench_v3.SIZES[size]
            synthetic = bench_v3.prepare(size, args.synthetic_cache)
            shape = f"{users:,} x {items:,} x {interactions:,}"
            runs.append((f"synthetic {shape}, time split", synthetic, "time"))
    for title, path, split in runs:
        t, c = time.perf_counter(), bench_movielens.cpu_s()
        result = score(path, split, args.k, half_lives)
        report(title, result, args.k)
        print(f"  ({time.perf_counter() - t:.0f} s wall, {bench_movielens.cpu_s() - c:.0f} s CPU)")


if __name__ == "__main__":
    main()
