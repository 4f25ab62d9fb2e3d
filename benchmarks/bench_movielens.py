"""Every strategy against well-known baselines on the real MovieLens 100K ratings.

    python benchmarks/movielens_data.py                    # once: fetch + convert the files
    python benchmarks/bench_movielens.py [--cache DIR] [--split time|leave-last-out] [--k 10]

The data are imported as a user would, with the command: ``smart-suggest import
DIR/ml-100k/u.data`` (original 100K layout: u.data + Latin-1 u.item with genre flags +
u.genre) into a fresh database, and the same ratings in the current-release layout
(``ratings.csv`` + ``movies.csv``) into a second one, checked to hold the same data. Then,
on evaluate's chronological split (the last 20% of each user's interactions by time are
the test part; ``--split leave-last-out`` holds out each user's last item instead):

* ours: popular, v1 (defaults, and tuned), v2, v3 (defaults, and tuned);
* baselines: user-kNN (cosine), item-kNN (cosine), EASE (binary input, Steck 2019),
  TF-IDF item-kNN on the genres (content baseline for v2), ALS from ``implicit`` (when the
  package is installed: ``pip install -e '.[bench]'``).

Every tuned entry (ours and the baselines alike) chooses its hyper-parameters on the
validation split cut from the training part (``smart-suggest tune``'s rule); the test part
is only scored. Printed: NDCG@k, recall@k, precision@k, MAP@k, hit rate with the standard
error over users, the relative difference to v1, and the paired 95% interval of every row
against the best row ("within noise" when it contains 0).
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import movielens_data

METRICS = ("ndcg", "recall", "precision", "map", "hit_rate")


def cpu_s() -> float:
    """CPU seconds (user + sys) of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# -- import --------------------------------------------------------------------------------------
def import_db(source: Path, db: Path) -> tuple[float, float, str]:
    """``smart-suggest import source --db db`` into a fresh file: (wall s, cpu s, stderr)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    exe = Path(sys.executable).with_name("smart-suggest")
    cmd = [str(exe) if exe.exists() else "smart-suggest", "import", str(source), "--db", str(db)]
    cpu0, t0 = cpu_s(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return wall, cpu, (done.stderr + done.stdout).strip()


def db_summary(db: Path) -> dict[str, Any]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        q = conn.execute
        return {
            "users": q("SELECT count(*) FROM users").fetchone()[0],
            "items": q("SELECT count(*) FROM items").fetchone()[0],
            "interactions": q("SELECT count(*) FROM interactions").fetchone()[0],
            "actions": dict(q("SELECT action, count(*) FROM interactions GROUP BY 1").fetchall()),
            "item categories": q("SELECT count(*) FROM item_categories").fetchone()[0],
            "pairs": q(
                "SELECT count(*) FROM (SELECT user_id, item_id, action, ts FROM interactions "
                "EXCEPT SELECT 0, 0, '', 0)"
            ).fetchone()[0],
            "checksum": q(
                "SELECT sum(user_id * 7919 + item_id * 104729 + length(action)) % 1000000007, "
                "sum(ts) FROM interactions"
            ).fetchone(),
            "genres of item 1": [
                r[0]
                for r in q(
                    "SELECT category FROM item_categories WHERE item_id = 1 ORDER BY position"
                )
            ],
            "name of item 1": q("SELECT name FROM items WHERE id = 1").fetchone()[0],
        }
    finally:
        conn.close()


# -- baselines -----------------------------------------------------------------------------------
def _top(scores: np.ndarray, seen: np.ndarray, k: int) -> np.ndarray:
    from smart_suggest.recommend._ops import top_rows

    scores = np.array(scores, dtype=np.float64)
    scores[seen] = -np.inf
    top, _ = top_rows(scores, k)
    return np.asarray(top, dtype=np.int64)


def _fill_popular(top: np.ndarray, snap: Any, rows: np.ndarray) -> np.ndarray:
    """Free slots (-1) get the most popular unseen items, as every strategy of ours does."""
    order = snap.popular_order
    out = top.copy()
    for b in np.flatnonzero((out < 0).any(axis=1)):
        have = set(out[b][out[b] >= 0].tolist())
        m = snap.matrix
        seen = set(m.indices[m.indptr[rows[b]] : m.indptr[rows[b] + 1]].tolist())
        fill = [i for i in order.tolist() if i not in have and i not in seen]
        slots = np.flatnonzero(out[b] < 0)
        out[b, slots] = fill[: len(slots)]
    return out


def _history(snap: Any) -> sp.csr_matrix:
    from smart_suggest.recommend.itemitem import history_matrix

    return history_matrix(snap.matrix)


def _l2_cols(x: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(x @ sp.diags(inv))


def _keep_top(sims: np.ndarray, n: int) -> np.ndarray:
    if n >= sims.shape[1]:
        return sims
    cut = np.argpartition(-sims, n - 1, axis=1)[:, :n]
    out = np.zeros_like(sims)
    r = np.arange(sims.shape[0])[:, None]
    out[r, cut] = sims[r, cut]
    return out


def user_knn(snap: Any, rows: np.ndarray, k: int, neighbours: int) -> np.ndarray:
    """Cosine user-kNN: score = sum over the ``neighbours`` most similar users of sim x row."""
    x = _history(snap)
    xn = sp.csr_matrix(_l2_cols(sp.csr_matrix(x.T)).T)
    sims = (xn[rows] @ xn.T).toarray()
    sims[np.arange(len(rows)), rows] = 0.0
    sims = _keep_top(sims, neighbours)
    scores = np.asarray(sp.csr_matrix(sims) @ x.toarray())
    return _top(scores, snap.seen_mask(rows), k)


def item_sim_knn(x: sp.csr_matrix, neighbours: int) -> np.ndarray:
    """Cosine of the item columns of ``x``, each row keeping its ``neighbours`` largest."""
    xn = _l2_cols(x)
    sims = (xn.T @ xn).toarray()
    np.fill_diagonal(sims, 0.0)
    return _keep_top(sims, neighbours)


def item_knn(snap: Any, rows: np.ndarray, k: int, neighbours: int) -> np.ndarray:
    x = _history(snap)
    w = item_sim_knn(x, neighbours)
    return _top(np.asarray(x[rows] @ w), snap.seen_mask(rows), k)


def ease(snap: Any, rows: np.ndarray, k: int, lam: float) -> np.ndarray:
    """EASE as published: binary input, ``W = -P / diag(P)``, zero diagonal."""
    from smart_suggest.recommend.itemitem import ease_weights

    x = sp.csr_matrix(snap.matrix, dtype=np.float64, copy=True)
    x.eliminate_zeros()
    x.data[:] = 1.0
    w = ease_weights(x, lam, np.float64)
    return _top(np.asarray(x[rows] @ w), snap.seen_mask(rows), k)


def genre_tfidf_knn(snap: Any, rows: np.ndarray, k: int, neighbours: int) -> np.ndarray:
    """Content baseline: TF-IDF of each item's genres (binary tf, smoothed idf, l2), cosine
    item-kNN, score = sum over the user's items of sim x the user's weight on the item."""
    cat = snap.catalogue
    sets = cat.item_category_sets
    n = cat.n_items
    r = np.repeat(np.arange(n), [len(s) for s in sets])
    c = np.fromiter(itertools.chain.from_iterable(sets), dtype=np.int64, count=len(r))
    tf = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, len(cat.categories)))
    df = np.asarray((tf > 0).sum(axis=0)).ravel()
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    feats = sp.csr_matrix(tf @ sp.diags(idf))
    w = item_sim_knn(sp.csr_matrix(feats.T), neighbours)
    return _top(np.asarray(snap.matrix[rows] @ w), snap.seen_mask(rows), k)


def als(snap: Any, rows: np.ndarray, k: int, factors: int, reg: float, conf: float) -> np.ndarray:
    from implicit.als import AlternatingLeastSquares

    x = sp.csr_matrix(_history(snap), dtype=np.float32)
    model = AlternatingLeastSquares(
        factors=factors, regularization=reg, iterations=15, random_state=7, num_threads=1
    )
    model.fit(x * conf, show_progress=False)
    ids, _ = model.recommend(rows, x[rows], N=k, filter_already_liked_items=True)
    return np.asarray(ids, dtype=np.int64)


BASELINES: dict[str, tuple[Any, dict[str, tuple[Any, ...]]]] = {
    "user-kNN (cosine)": (user_knn, {"neighbours": (10, 20, 50, 100, 200, 400)}),
    "item-kNN (cosine)": (item_knn, {"neighbours": (20, 50, 100, 200, 400, 2000)}),
    "EASE (binary)": (ease, {"lam": (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)}),
    "genre TF-IDF item-kNN": (genre_tfidf_knn, {"neighbours": (50, 200, 10_000)}),
    "ALS (implicit)": (
        als,
        {"factors": (32, 64, 128), "reg": (0.01, 0.1, 1.0), "conf": (1.0, 10.0, 40.0)},
    ),
}


# -- scoring -------------------------------------------------------------------------------------
def _mean(values: np.ndarray) -> float:
    return float(values.mean())


def evaluate_all(db: Path, split: str, k: int) -> dict[str, Any]:
    from smart_suggest.evaluate import (
        _metrics_from_keys,
        holdout,
        paired_interval,
        recommend_top,
        score_users,
        standard_error,
    )
    from smart_suggest.recommend import itemitem
    from smart_suggest.recommend.snapshot import load_catalogue, load_interactions
    from smart_suggest.store import open_store
    from smart_suggest.tuning import build_options, grid_for, validation_split

    store = open_store(db)
    with store.read():
        cat = load_catalogue(store)
        inter = load_interactions(store, cat, with_time=True)
    part = holdout(inter, cat, split=split, test_fraction=0.2)
    val = validation_split(inter, cat, 0.2)

    def ours_tuned(name: str, limit: int | None = None) -> dict[str, Any]:
        saved = itemitem.EASE_ITEM_LIMIT
        if limit is not None:
            itemitem.EASE_ITEM_LIMIT = limit
        try:
            _, points = grid_for(name, cat.n_items)
            scored = [
                (_mean(score_users(val, name, build_options(name, p, count=k), k)["ndcg"]), p)
                for p in points
            ]
        finally:
            itemitem.EASE_ITEM_LIMIT = saved
        return max(scored, key=lambda s: s[0])[1]

    per_user: dict[str, dict[str, np.ndarray]] = {}
    params: dict[str, dict[str, Any]] = {}
    cost: dict[str, tuple[float, float]] = {}

    def metrics(split_: Any, rec: np.ndarray) -> dict[str, np.ndarray]:
        return _metrics_from_keys(rec, split_.rel_keys, split_.base, split_.n_users, k)

    def ours(label: str, name: str, p: dict[str, Any] | None, limit: int | None = None) -> None:
        saved = itemitem.EASE_ITEM_LIMIT
        if limit is not None:
            itemitem.EASE_ITEM_LIMIT = limit
        t, c = time.perf_counter(), cpu_s()
        try:
            options = build_options(name, p, count=k, cold_items=False)
            rec = recommend_top(part, name, options, k)
        finally:
            itemitem.EASE_ITEM_LIMIT = saved
        cost[label] = (time.perf_counter() - t, cpu_s() - c)
        per_user[label] = metrics(part, rec)
        params[label] = {key: v for key, v in (p or {}).items() if key != "method"}

    ours("popular", "popular", None)
    ours("v1", "v1", None)
    ours("v1 tuned", "v1", ours_tuned("v1"))
    ours("v2", "v2", None)
    ours("v3", "v3", None)
    ours("v3 tuned", "v3", ours_tuned("v3"))
    if cat.n_items <= itemitem.EASE_ITEM_LIMIT:
        ours("v3 as RP3beta, tuned", "v3", ours_tuned("v3", limit=0), limit=0)

    try:
        import implicit  # noqa: F401

        have_als = True
    except ImportError:
        have_als = False
    for label, (fn, grid) in BASELINES.items():
        if label.startswith("ALS") and not have_als:
            continue
        t, c = time.perf_counter(), cpu_s()
        keys = list(grid)
        best: tuple[float, dict[str, Any]] | None = None
        for values in itertools.product(*grid.values()):
            p = dict(zip(keys, values, strict=True))
            top = _fill_popular(fn(val.snap, val.rows, k, **p), val.snap, val.rows)
            score = float(metrics(val, top)["ndcg"].mean())
            if best is None or score > best[0]:
                best = (score, p)
        assert best is not None
        top = _fill_popular(fn(part.snap, part.rows, k, **best[1]), part.snap, part.rows)
        per_user[label] = metrics(part, top)
        params[label] = best[1]
        cost[label] = (time.perf_counter() - t, cpu_s() - c)

    ndcg = {label: m["ndcg"] for label, m in per_user.items()}
    best_label = max(ndcg, key=lambda label: ndcg[label].mean())
    v1 = ndcg["v1"].mean()
    rows = []
    for label, m in per_user.items():
        diff, low, high = paired_interval(ndcg[label] - ndcg[best_label])
        rows.append(
            {
                "label": label,
                **{name: float(m[name].mean()) for name in METRICS},
                "se": standard_error(m["ndcg"]),
                "vs_v1": float(ndcg[label].mean() / v1 - 1) if v1 else 0.0,
                "vs_best": (diff, low, high),
                "params": params[label],
                "wall_s": cost[label][0],
                "cpu_s": cost[label][1],
            }
        )
    baselines = [label for label in BASELINES if label in ndcg]
    strongest = max(baselines, key=lambda label: ndcg[label].mean())
    pairs = [("v3 tuned", strongest), ("v3 tuned", "v1"), ("v3", "v1")]
    if "genre TF-IDF item-kNN" in ndcg:
        pairs.append(("v2", "genre TF-IDF item-kNN"))
    return {
        "pairs": [
            (a, b, *paired_interval(ndcg[a] - ndcg[b]), float(ndcg[a].mean() / ndcg[b].mean() - 1))
            for a, b in pairs
        ],
        "users": int(part.n_users),
        "train": part.n_train,
        "test": part.n_test,
        "best": best_label,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/work/bench/movielens"))
    parser.add_argument("--split", default="time", choices=("time", "leave-last-out"))
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("SMART_SUGGEST_NO_PROGRESS", "1")
    wheel = movielens_data.fetch_wheel(args.cache)
    ratings, items, users = movielens_data.read_recbole(wheel)
    original, current = args.cache / "ml-100k", args.cache / "ml-latest-small-layout"
    if not (original / "u.data").exists() or not (current / "ratings.csv").exists():
        movielens_data.write_100k(original, ratings, items, users)
        movielens_data.write_current(current, ratings, items)
    load = os.getloadavg()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load[0]:.2f}")
    db = args.cache / "ml100k.db"
    db_current = args.cache / "ml100k-current-layout.db"
    summaries = []
    for source, target in ((original / "u.data", db), (current / "ratings.csv", db_current)):
        wall, cpu, said = import_db(source, target)
        summary = db_summary(target)
        summaries.append(summary)
        print(f"\n$ smart-suggest import {source} --db {target}")
        print(f"  ({wall:.1f} s wall, {cpu:.1f} s CPU)")
        print("  " + said.replace("\n", "\n  "))
        print(
            f"  -> {summary['users']} users, {summary['items']} items, "
            f"{summary['interactions']:,} interactions {summary['actions']}, "
            f"{summary['item categories']:,} item-genre pairs; item 1 = "
            f"{summary['name of item 1']!r} {summary['genres of item 1']}"
        )
    a, b = summaries
    same = all(a[key] == b[key] for key in a if key != "genres of item 1") and set(
        a["genres of item 1"]
    ) == set(b["genres of item 1"])
    print(f"  both layouts hold the same data: {'yes' if same else 'NO'}")
    if not same:
        for key in a:
            if a[key] != b[key]:
                print(f"    {key}: {a[key]} != {b[key]}")

    t, c = time.perf_counter(), cpu_s()
    result = evaluate_all(db, args.split, args.k)
    wall, cpu = time.perf_counter() - t, cpu_s() - c
    k = args.k
    print(
        f"\n{args.split} split (test = last 20% of each user's history by time"
        if args.split == "time"
        else f"\n{args.split} split (test = each user's last item"
    )
    print(
        f"{result['train']:,} train / {result['test']:,} test interactions, {result['users']} "
        f"users scored; mean over users ± standard error; tuned = on the validation split)"
    )
    head = (
        f"{'strategy':<24} {'NDCG@' + str(k):>15} {'recall':>7} {'prec.':>6} {'MAP':>6} "
        f"{'hit':>6} {'vs v1':>7}  {'vs best (95% paired)':<28} {'cpu s':>6}  params"
    )
    print(head)
    print("-" * len(head))
    for row in sorted(result["rows"], key=lambda r: -r["ndcg"]):
        diff, low, high = row["vs_best"]
        versus = (
            "best"
            if row["label"] == result["best"]
            else f"{diff:+.4f} ({low:+.4f}..{high:+.4f})" + (" =" if low <= 0 <= high else "")
        )
        p = ", ".join(f"{key} {v:g}" for key, v in row["params"].items())
        print(
            f"{row['label']:<24} {row['ndcg']:.4f} ±{row['se']:.4f} {row['recall']:7.4f} "
            f"{row['precision']:6.4f} {row['map']:6.4f} {row['hit_rate']:6.3f} "
            f"{row['vs_v1']:+7.1%}  {versus:<28} {row['cpu_s']:6.1f}  {p}"
        )
    print(f"(= : within noise of the best.)  scoring took {wall:.0f} s wall, {cpu:.0f} s CPU")
    for a, b, diff, low, high, rel in result["pairs"]:
        print(
            f"  {a} - {b}: {diff:+.4f} NDCG@{k} ({rel:+.1%}), 95% paired interval "
            f"{low:+.4f} .. {high:+.4f}"
        )
    shutil.rmtree(args.cache / "__pycache__", ignore_errors=True)


if __name__ == "__main__":
    main()
