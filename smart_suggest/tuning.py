"""Hyper-parameters: chosen on a validation split, stored per data revision, used by default.

``tune`` cuts a validation split out of the *training* part of the data with the same rule
as ``evaluate`` (the last ``test_fraction`` of each user's history, by time): first the
evaluation's test part is set aside (never looked at), then the end of what remains
becomes the validation part. Every point of a small grid is fitted on the rest and scored
by NDCG@k on the validation part; the best point is stored in ``tuned_params`` together
with the catalog data revision it was tuned on.

``recommend``, ``evaluate``, experiments and the TUI then use the newest stored parameters
of a strategy by default; an explicit option (``--threshold``, ``--neighbours``) wins. A
stored set tuned on an older data revision is still used (one logged click should not throw
the tuning away), but it is reported as stale so the caller can say so.

Grids:

* v1: threshold x neighbours (``V1_GRID``);
* v3: lambda (EASE) or alpha x beta (RP3beta), the method the catalogue size selects, each
  with the recency half-lives ``HALF_LIVES`` (one fit serves all of them).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from smart_suggest import clock
from smart_suggest.errors import InputError
from smart_suggest.recommend.base import (
    DEFAULT_COUNT,
    DEFAULT_NEIGHBOURS,
    DEFAULT_THRESHOLD,
    Options,
    Progress,
)

if TYPE_CHECKING:
    from smart_suggest.evaluate import Holdout
    from smart_suggest.recommend.snapshot import Catalogue, InteractionArrays
    from smart_suggest.store import Store

#: Strategies that have hyper-parameters to tune.
TUNABLE = ("v1", "v3")
V1_GRID: dict[str, tuple[float, ...]] = {
    "threshold": (0.0, 0.1, 0.2, 0.3),
    "neighbours": (10, 20, 50, 100),
}
#: v3's recency half-lives tried with every fit (0: off); scoring only, no refit.
HALF_LIVES = (0.0, 5.0, 10.0, 20.0, 50.0)
V3_GRIDS: dict[str, dict[str, tuple[float, ...]]] = {
    "ease": {
        "lambda": (10.0, 30.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0),
        "half_life": HALF_LIVES,
    },
    "rp3beta": {"alpha": (0.5, 0.75, 1.0), "beta": (0.25, 0.5, 0.75), "half_life": HALF_LIVES},
}


@dataclass(frozen=True, slots=True)
class Tuned:
    """The stored parameters of one strategy."""

    strategy: str
    params: dict[str, Any]
    revision: int
    metric: str
    value: float
    created_at: float
    current_revision: int | None = None

    @property
    def stale(self) -> bool:
        """Tuned on another data revision than the current one."""
        return self.current_revision is not None and self.current_revision != self.revision

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stale"] = self.stale
        return data


def load_tuned(store: Store, strategy: str) -> Tuned | None:
    """The newest stored parameters of ``strategy`` (None when never tuned)."""
    with store.read():
        row = store.conn.execute(
            "SELECT strategy, params, revision, metric, value, created_at FROM tuned_params "
            "WHERE strategy = ? ORDER BY id DESC LIMIT 1",
            (strategy,),
        ).fetchone()
        current = store.revision("catalog")
    if row is None:
        return None
    return Tuned(row[0], json.loads(row[1]), int(row[2]), row[3], float(row[4]), row[5], current)


def save_tuned(
    store: Store, strategy: str, params: Mapping[str, Any], revision: int, metric: str, value: float
) -> Tuned:
    created = clock.now()
    with store.write() as conn:
        conn.execute(
            "INSERT INTO tuned_params(strategy, params, revision, metric, value, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (strategy, json.dumps(dict(params), sort_keys=True), revision, metric, value, created),
        )
    return Tuned(strategy, dict(params), revision, metric, value, created, revision)


def build_options(
    strategy: str,
    params: Mapping[str, Any] | None,
    *,
    count: int = DEFAULT_COUNT,
    neighbours: int | None = None,
    threshold: float | None = None,
    cold_items: bool = True,
) -> Options:
    """Options for ``strategy`` from stored ``params``; explicit arguments win."""
    params = dict(params or {})
    if neighbours is None:
        neighbours = (
            int(params.get("neighbours", DEFAULT_NEIGHBOURS))
            if strategy == "v1"
            else (DEFAULT_NEIGHBOURS)
        )
    if threshold is None:
        threshold = (
            float(params.get("threshold", DEFAULT_THRESHOLD))
            if strategy == "v1"
            else (DEFAULT_THRESHOLD)
        )
    model = tuple(
        sorted(
            (name, float(value))
            for name, value in params.items()
            if name not in ("neighbours", "threshold", "method") and isinstance(value, int | float)
        )
    )
    return Options(count, neighbours, threshold, cold_items, model if strategy == "v3" else ())


def resolve_options(
    store: Store,
    strategy: str,
    *,
    count: int = DEFAULT_COUNT,
    neighbours: int | None = None,
    threshold: float | None = None,
    cold_items: bool = True,
) -> tuple[Options, Tuned | None]:
    """Options of ``strategy`` with its stored tuning (if any) and the explicit overrides."""
    tuned = load_tuned(store, strategy) if strategy in TUNABLE else None
    options = build_options(
        strategy,
        tuned.params if tuned else None,
        count=count,
        neighbours=neighbours,
        threshold=threshold,
        cold_items=cold_items,
    )
    return options.validate(), tuned


def stale_note(tuned: Tuned) -> str:
    return (
        f"{tuned.strategy}: tuned at data revision {tuned.revision}, data now at "
        f"{tuned.current_revision}; rerun `smart-suggest tune`"
    )


@dataclass(frozen=True, slots=True)
class GridPoint:
    params: dict[str, Any]
    ndcg: float
    seconds: float


@dataclass(frozen=True, slots=True)
class TuneResult:
    strategy: str
    method: str  # "user-knn" (v1), "ease" or "rp3beta" (v3)
    k: int
    revision: int
    validation_users: int
    train_interactions: int
    validation_interactions: int
    grid: list[GridPoint] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    best_ndcg: float = 0.0
    default_ndcg: float | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def grid_for(strategy: str, n_items: int) -> tuple[str, list[dict[str, Any]]]:
    """(method, list of parameter sets) tried for ``strategy`` on ``n_items`` items."""
    if strategy == "v1":
        keys = list(V1_GRID)
        points = [
            dict(zip(keys, (float(t), int(n)), strict=True))
            for t, n in itertools.product(*V1_GRID.values())
        ]
        return "user-knn", points
    if strategy == "v3":
        from smart_suggest.recommend.itemitem import method_for

        method = method_for(n_items)
        grid = V3_GRIDS[method]
        keys = list(grid)
        return method, [
            {"method": method, **dict(zip(keys, values, strict=True))}
            for values in itertools.product(*grid.values())
        ]
    raise InputError(
        f"strategy {strategy!r} has no hyper-parameters to tune: use {' or '.join(TUNABLE)}"
    )


def validation_split(
    inter: InteractionArrays, catalogue: Catalogue, test_fraction: float = 0.2
) -> Holdout:
    """The validation split: ``evaluate``'s time split applied to its own training part.

    ``Holdout.test`` is a mask over the training part (``evaluate``'s test part removed).
    """
    from smart_suggest.evaluate import holdout

    outer = holdout(inter, catalogue, split="time", test_fraction=test_fraction)
    return holdout(outer.train_arrays(inter), catalogue, split="time", test_fraction=test_fraction)


def tune(
    store: Store,
    *,
    strategies: tuple[str, ...] | list[str] = TUNABLE,
    k: int = 10,
    test_fraction: float = 0.2,
    save: bool = True,
    progress: Progress | None = None,
) -> list[TuneResult]:
    """Grid-search each strategy on the validation split and store the best parameters."""
    from smart_suggest.evaluate import check_split, score_users
    from smart_suggest.recommend.snapshot import load_catalogue, load_interactions

    if k < 1:
        raise InputError(f"k must be at least 1 (got {k})")
    check_split("time", test_fraction)
    for name in strategies:
        if name not in TUNABLE:
            grid_for(name, 0)  # raises the InputError naming the tunable strategies
    with store.read():
        revision = store.revision("catalog")
        catalogue = load_catalogue(store)
        inter = load_interactions(store, catalogue, with_time=True)
    inner = validation_split(inter, catalogue, test_fraction)
    results: list[TuneResult] = []
    for name in strategies:
        started = time.perf_counter()
        method, points = grid_for(name, catalogue.n_items)
        grid: list[GridPoint] = []
        label = f"tune {name}"
        if not inner.n_users:
            points = []  # nothing to score: say so instead of a grid of zeros
        if progress:
            progress(label, 0, len(points))
        for done, point in enumerate(points, start=1):
            t0 = time.perf_counter()
            options = build_options(name, point, count=k, cold_items=False).validate()
            per_user = score_users(inner, name, options, k)
            grid.append(GridPoint(point, _mean(per_user["ndcg"]), time.perf_counter() - t0))
            if progress:
                progress(label, done, len(points))
        best = max(grid, key=lambda g: g.ndcg) if grid else None
        default = score_users(inner, name, build_options(name, None, count=k, cold_items=False), k)
        result = TuneResult(
            strategy=name,
            method=method,
            k=k,
            revision=revision,
            validation_users=inner.n_users,
            train_interactions=inner.n_train,
            validation_interactions=inner.n_test,
            grid=grid,
            best=dict(best.params) if best else {},
            best_ndcg=best.ndcg if best else 0.0,
            default_ndcg=_mean(default["ndcg"]),
            seconds=time.perf_counter() - started,
        )
        if save and best is not None and inner.n_users:
            save_tuned(store, name, best.params, revision, f"ndcg@{k}", best.ndcg)
        results.append(result)
    return results


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0
