"""v3 (item-item model): speed, memory and NDCG@10 against every other strategy.

    python benchmarks/bench_v3.py [--sizes 100k,1m] [--cache DIR] [--repeat 3]

Synthetic data (``sample.generate``, no experiment events) at two shapes: the MovieLens-100K
shape (943 users x 1,682 items x 100K interactions) and 1M interactions over 10,000 items
(6,040 users), kept in ``--cache`` between runs. Each measurement runs in a fresh process:

* speed (100K): ``tune`` (the command, wall time); v3's fit with the tuned parameters on
  the full data (the fit that serves after tuning), median over ``--repeat`` fresh fits;
  warm single-user recommendation (median over 100 users); all-users top-10 in-process
  (ids and scores, as an export); peak RSS of the process;
* fit (1M x 10,000): snapshot, then v3's fit (the size selects RP3beta), and the peak RSS;
  with ``--ease-at-1m`` also EASE forced on that catalogue (why the switch exists);
* quality (both sizes): NDCG@10 on the 80/20 time split of ``evaluate``, every strategy
  fitted on the training part, with the standard error over users, for: popular, v1
  (defaults and tuned), v2, v3 with EASE and with RP3beta (defaults and tuned), an item-kNN
  baseline (cosine, 100 neighbours), implicit's ALS when the package is installed, and an
  *oracle*: the generator's own probabilities P(item | user), the best ranking any model
  of this data can reach (its NDCG is the ceiling). Tuning uses the validation split cut
  from the training part (``smart-suggest tune``'s rule), never the test part.

Targets (issue 11): at 100K fit <= 2 s, warm <= 2 ms, all users <= 1 s, tune <= 60 s; at
1M x 10,000 fit <= 60 s and peak memory <= 1.5 GB; v3 >= 1.10 x v1 in NDCG@10.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SIZES = {
    "100k": (943, 1_682, 100_000),
    "1m": (6_040, 10_000, 1_000_000),
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare(size: str, cache: Path) -> Path:
    users, items, interactions = SIZES[size]
    path = cache / f"bench-v3-{size}.db"
    marker = path.with_suffix(".ok")
    if path.exists() and marker.exists():
        return path
    from smart_suggest.sample import SyntheticSpec, generate
    from smart_suggest.store import open_store

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    with open_store(path) as store:
        generate(store, SyntheticSpec(users, items, interactions, events=0))
    marker.write_text("ok")
    print(f"  generated {size} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path


# -- children ---------------------------------------------------------------------------------
def child_speed(path: str, repeat: int) -> dict[str, Any]:
    import numpy as np

    from smart_suggest.recommend import Recommender, itemitem, rank_users
    from smart_suggest.recommend.snapshot import Snapshot
    from smart_suggest.store import open_store

    store = open_store(path)
    engine = Recommender(store)
    snap = engine.snapshot()
    options = engine.options("v3", 10)
    fits, fit_cpu = [], []
    for _ in range(repeat):
        fresh = Snapshot.__new__(Snapshot)
        fresh.__dict__.update({k: v for k, v in snap.__dict__.items()})
        t, c = time.perf_counter(), time.process_time()
        model = itemitem.fit(fresh, options)
        fits.append(time.perf_counter() - t)
        fit_cpu.append(time.process_time() - c)
    itemitem.fit(snap, options)
    user_ids = snap.catalogue.user_ids
    sample = user_ids[np.linspace(0, len(user_ids) - 1, 100).astype(int)].tolist()
    engine.recommend(sample[0], "v3", 10)
    warm = []
    for user_id in sample:
        t = time.perf_counter()
        engine.recommend(user_id, "v3", 10)
        warm.append(time.perf_counter() - t)
    rows = np.arange(snap.catalogue.n_users)
    all_users, all_cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        for ranking in rank_users(snap, "v3", rows, options):
            ranking.top(10)
        all_users.append(time.perf_counter() - t)
        all_cpu.append(time.process_time() - c)
    return {
        "method": model.method,
        "params": dict(options.params),
        "fit_s": statistics.median(fits),
        "fit_cpu_s": statistics.median(fit_cpu),
        "all_users_cpu_s": statistics.median(all_cpu),
        "warm_ms": statistics.median(warm) * 1000,
        "warm_p95_ms": float(np.percentile(warm, 95)) * 1000,
        "all_users_s": statistics.median(all_users),
        "rss_mb": _rss_mb(),
    }


def child_fit(path: str, ease: bool = False) -> dict[str, Any]:
    from smart_suggest.recommend import Options, itemitem
    from smart_suggest.recommend.snapshot import build_snapshot
    from smart_suggest.store import open_store

    if ease:  # what v3 would cost if EASE served this catalogue
        itemitem.EASE_ITEM_LIMIT = 10**9
    store = open_store(path)
    t = time.perf_counter()
    snap = build_snapshot(store)
    snapshot_s = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    model = itemitem.fit(snap, Options())
    return {
        "method": model.method,
        "snapshot_s": snapshot_s,
        "fit_s": time.perf_counter() - t,
        "fit_cpu_s": time.process_time() - c,
        "rss_mb": _rss_mb(),
    }


def _oracle_scores(n_users: int, n_items: int) -> Any:
    """P(item | user) of ``sample.taste_model`` (seed 42), users x items: what the
    generator draws from, blind to each user's browsing order (which a chronological
    split rewards), so it is the ceiling of a model that ignores time, not of all."""
    import numpy as np

    from smart_suggest import sample

    rng = np.random.default_rng(42)  # replays the generator's draws up to the segments
    sample._item_catalogue(rng, n_items)
    user_seg = rng.integers(0, len(sample.SEGMENTS), size=n_users)
    model = sample.taste_model(42, n_users, n_items, user_seg)
    logits = model.logits(np.arange(n_users))
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _item_knn_top(snap: Any, rows: Any, k: int, neighbours: int = 100) -> Any:
    """Item-kNN baseline: cosine of item columns, top ``neighbours`` per item."""
    import numpy as np
    import scipy.sparse as sp

    from smart_suggest.recommend._ops import top_rows
    from smart_suggest.recommend.itemitem import history_matrix

    x = history_matrix(snap.matrix)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    xn = sp.csr_matrix(x @ sp.diags(inv))
    n = x.shape[1]
    blocks = []
    for lo in range(0, n, 500):
        sims = (xn[:, lo : lo + 500].T @ xn).toarray()
        sims[np.arange(sims.shape[0]), np.arange(lo, lo + sims.shape[0])] = 0.0
        cols, vals = top_rows(sims, neighbours)
        r, c = np.nonzero(cols >= 0)
        blocks.append(sp.csr_matrix((vals[r, c], (r, cols[r, c])), shape=(sims.shape[0], n)))
    w = sp.csr_matrix(sp.vstack(blocks))
    scores = (x[rows] @ w).toarray()
    scores[snap.seen_mask(rows)] = 0.0
    return top_rows(scores, k)[0]


def _als_top(snap: Any, rows: Any, k: int) -> Any:
    import numpy as np
    from implicit.als import AlternatingLeastSquares

    from smart_suggest.recommend.itemitem import history_matrix

    x = history_matrix(snap.matrix).astype(np.float32)
    model = AlternatingLeastSquares(factors=64, regularization=0.05, iterations=15, random_state=7)
    model.fit(x * 10.0, show_progress=False)  # confidence 1 + 10 x r, as usual for ALS
    ids, _ = model.recommend(rows, x[rows], N=k, filter_already_liked_items=True)
    return np.asarray(ids, dtype=np.int64)


def child_quality(path: str, k: int) -> dict[str, Any]:

    from smart_suggest.evaluate import (
        _metrics_from_keys,
        holdout,
        paired_interval,
        recommend_top,
        score_users,
        standard_error,
    )
    from smart_suggest.recommend import itemitem
    from smart_suggest.recommend._ops import top_rows
    from smart_suggest.recommend.snapshot import load_catalogue, load_interactions
    from smart_suggest.store import open_store
    from smart_suggest.tuning import build_options, grid_for, validation_split

    store = open_store(path)
    with store.read():
        cat = load_catalogue(store)
        inter = load_interactions(store, cat, with_time=True)
    part = holdout(inter, cat, split="time", test_fraction=0.2)
    val = validation_split(inter, cat, 0.2)

    def tuned(name: str, limit: int | None = None) -> dict[str, Any]:
        saved = itemitem.EASE_ITEM_LIMIT
        if limit is not None:
            itemitem.EASE_ITEM_LIMIT = limit
        try:
            _, points = grid_for(name, cat.n_items)
            scored = [
                (
                    float(
                        score_users(val, name, build_options(name, p, count=k), k)["ndcg"].mean()
                    ),
                    p,
                )
                for p in points
            ]
        finally:
            itemitem.EASE_ITEM_LIMIT = saved
        return max(scored, key=lambda s: s[0])[1]

    per_user: dict[str, Any] = {}
    params: dict[str, Any] = {}
    seconds: dict[str, float] = {}

    def run(label: str, name: str, p: dict[str, Any] | None, limit: int | None = None) -> None:
        saved = itemitem.EASE_ITEM_LIMIT
        if limit is not None:
            itemitem.EASE_ITEM_LIMIT = limit
        try:
            t = time.perf_counter()
            options = build_options(name, p, count=k, cold_items=False)
            rec = recommend_top(part, name, options, k)
            seconds[label] = time.perf_counter() - t
        finally:
            itemitem.EASE_ITEM_LIMIT = saved
        per_user[label] = _metrics_from_keys(rec, part.rel_keys, part.base, part.n_users, k)["ndcg"]
        params[label] = {key: v for key, v in (p or {}).items() if key != "method"}

    def add(label: str, rec: Any, started: float) -> None:
        seconds[label] = time.perf_counter() - started
        per_user[label] = _metrics_from_keys(rec, part.rel_keys, part.base, part.n_users, k)["ndcg"]
        params[label] = {}

    run("popular", "popular", None)
    run("v1", "v1", None)
    run("v1 tuned", "v1", tuned("v1"))
    run("v2", "v2", None)
    ease_ok = cat.n_items <= itemitem.EASE_ITEM_LIMIT
    if ease_ok:
        run("v3 = EASE", "v3", None)
        run("v3 = EASE tuned", "v3", tuned("v3"))
    rp3 = tuned("v3", limit=0)
    run("v3 = RP3beta" if not ease_ok else "RP3beta", "v3", None, limit=0)
    run("v3 = RP3beta tuned" if not ease_ok else "RP3beta tuned", "v3", rp3, limit=0)
    t = time.perf_counter()
    add("item-kNN", _item_knn_top(part.snap, part.rows, k), t)
    try:
        import implicit  # noqa: F401

        t = time.perf_counter()
        add("ALS (implicit)", _als_top(part.snap, part.rows, k), t)
    except ImportError:
        pass
    t = time.perf_counter()
    oracle = _oracle_scores(cat.n_users, cat.n_items)
    scores = oracle[cat.user_ids[part.rows] - 1][:, cat.item_ids - 1]
    scores[part.snap.seen_mask(part.rows)] = 0.0
    add("oracle, static", top_rows(scores, k)[0], t)
    v1 = per_user["v1"]
    v3_label = "v3 = EASE tuned" if ease_ok else "v3 = RP3beta tuned"
    out = {
        "users": int(part.n_users),
        "rows": [
            {
                "label": label,
                "ndcg": float(values.mean()),
                "se": standard_error(values),
                "vs_v1": float(values.mean() / v1.mean() - 1) if v1.mean() else 0.0,
                "params": params[label],
                "seconds": seconds[label],
            }
            for label, values in per_user.items()
        ],
        "v3_vs_v1_ci": paired_interval(per_user[v3_label] - v1),
        "v3_label": v3_label,
    }
    return out


def run_child(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def time_tune(path: Path, tmp: Path) -> tuple[float, float]:
    """Wall and CPU time of ``smart-suggest tune`` on a copy (the copy keeps the tuned
    parameters)."""
    copy = tmp / f"tuned-{path.name}"
    shutil.copy(path, copy)
    exe = Path(sys.executable).with_name("smart-suggest")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([str(exe), "tune", "--db", str(copy), "--json"], check=True, capture_output=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m", help="comma-separated: 100k, 1m")
    parser.add_argument("--cache", type=Path, help="keep the generated databases here")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median)")
    parser.add_argument(
        "--ease-at-1m",
        action="store_true",
        help="also fit EASE on the 1M x 10,000 data (once; minutes, > 1 GB): the switch's cost",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, *rest = args.child
        if kind == "speed":
            result = child_speed(path, int(rest[0]))
        elif kind == "fit":
            result = child_fit(path, ease=bool(rest and rest[0] == "ease"))
        else:
            result = child_quality(path, 10)
        print(json.dumps(result))
        return
    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        if s not in SIZES:
            raise SystemExit(f"unknown size {s!r}: use {', '.join(SIZES)}")
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "(all cores)")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, BLAS threads {threads}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cache = args.cache or tmp
        cache.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            users, items, inter = SIZES[size]
            path = prepare(size, cache)
            print(f"\n== {size}: {users:,} users x {items:,} items x {inter:,} interactions")
            if size == "100k":
                tunes = [time_tune(path, tmp) for _ in range(args.repeat)]
                speed = run_child("speed", str(tmp / f"tuned-{path.name}"), str(args.repeat))
                print(
                    f"tune {statistics.median(t[0] for t in tunes):.1f} s wall, "
                    f"{statistics.median(t[1] for t in tunes):.1f} s CPU (median of "
                    f"{len(tunes)}); v3 {speed['method']} {speed['params']}: fit "
                    f"{speed['fit_s']:.2f} s wall / {speed['fit_cpu_s']:.2f} s CPU, warm "
                    f"{speed['warm_ms']:.2f} ms (p95 {speed['warm_p95_ms']:.2f}), all users "
                    f"top-10 {speed['all_users_s']:.2f} s wall / {speed['all_users_cpu_s']:.2f}"
                    f" s CPU, peak RSS {speed['rss_mb']:.0f} MB; load {os.getloadavg()[0]:.1f}"
                )
            else:
                fits = [run_child("fit", str(path)) for _ in range(args.repeat)]
                fit = statistics.median(f["fit_s"] for f in fits)
                peak = max(f["rss_mb"] for f in fits)
                fit_cpu = statistics.median(f["fit_cpu_s"] for f in fits)
                print(
                    f"v3 {fits[0]['method']}: fit {fit:.1f} s wall / {fit_cpu:.1f} s CPU "
                    f"(median of {len(fits)}; load {os.getloadavg()[0]:.1f}), "
                    f"snapshot {statistics.median(f['snapshot_s'] for f in fits):.1f} s, "
                    f"peak RSS {peak:.0f} MB"
                )
                if args.ease_at_1m:
                    ease = run_child("fit", str(path), "ease")
                    print(
                        f"EASE forced on this catalogue: fit {ease['fit_s']:.1f} s, "
                        f"peak RSS {ease['rss_mb']:.0f} MB"
                    )
            quality = run_child("quality", str(path))
            print(f"NDCG@10, 80/20 time split, {quality['users']:,} users (± standard error):")
            for row in quality["rows"]:
                p = ", ".join(f"{k} {v:g}" for k, v in row["params"].items())
                print(
                    f"  {row['label']:<20} {row['ndcg']:.4f} ±{row['se']:.4f} "
                    f"{row['vs_v1']:+7.1%} vs v1  {row['seconds']:6.1f} s  {p}"
                )
            diff, low, high = quality["v3_vs_v1_ci"]
            print(
                f"  {quality['v3_label']} - v1: {diff:+.4f} (95% paired interval {low:+.4f} .. "
                f"{high:+.4f})"
            )


if __name__ == "__main__":
    main()
