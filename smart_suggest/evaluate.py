"""Offline evaluation: hold out part of each user's history, recommend, count the hits.

Split (per user): a user's interactions are ordered by time (ties: insertion order) and the
last ``round(test_fraction x n)`` of them are held out, at least one and never all of them;
a user with a single interaction stays entirely in training. ``split="random"`` holds out a
random subset of the same size instead (``seed``).

Every strategy is then fitted on the training part only: a snapshot is built from the
training interactions (same users and items; an item seen only in the test part is a cold
item in training) and asked for its top ``k`` for each user who has at least one *relevant*
item: an item of the user's test part that is not in the user's training part (items already
seen are never recommended, so they could not be hit). v1's cold-item appendix comes after the
top-N, so it is not part of the top ``k`` that is scored.

Metrics, per user and then averaged over the evaluated users (binary relevance):

* precision@k = hits / k;  recall@k = hits / |relevant|;  hit rate@k = 1 if any hit;
* NDCG@k = DCG / IDCG with DCG = sum over hit positions i (1-based) of 1 / log2(i + 1) and
  IDCG the DCG of min(|relevant|, k) hits at the top;
* MAP@k = mean of AP@k = (sum over hit positions i of precision@i) / min(|relevant|, k);
* coverage = distinct items recommended to anyone / items in the catalogue;
* diversity = intra-list category diversity: the share of pairs of items in a list whose
  categories differ (lists of fewer than 2 items are left out).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from smart_suggest.errors import InputError
from smart_suggest.recommend import (
    DEFAULT_NEIGHBOURS,
    DEFAULT_THRESHOLD,
    STRATEGIES,
    Options,
    Snapshot,
    get_strategy,
    rank_users,
)
from smart_suggest.recommend._ops import take
from smart_suggest.recommend.base import Progress
from smart_suggest.recommend.snapshot import (
    Catalogue,
    InteractionArrays,
    load_catalogue,
    load_interactions,
)

if TYPE_CHECKING:
    from smart_suggest.store import Store

SPLITS = ("time", "random")
METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage", "diversity")


@dataclass(frozen=True, slots=True)
class StrategyScore:
    """The metrics of one strategy (means over the evaluated users)."""

    strategy: str
    precision: float
    recall: float
    ndcg: float
    map: float
    hit_rate: float
    coverage: float
    diversity: float
    users: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Evaluation:
    k: int
    split: str
    test_fraction: float
    seed: int
    users: int  # users evaluated (at least one relevant held-out item)
    items: int
    train_interactions: int
    test_interactions: int
    neighbours: int
    threshold: float
    results: list[StrategyScore] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["results"] = [r.to_dict() for r in self.results]
        return data

    def best(self, metric: str = "ndcg") -> StrategyScore | None:
        return max(self.results, key=lambda r: getattr(r, metric), default=None)


def split_interactions(
    inter: InteractionArrays,
    n_users: int,
    *,
    method: str = "time",
    test_fraction: float = 0.2,
    seed: int = 42,
) -> np.ndarray:
    """Boolean mask over ``inter``: True for the held-out (test) interactions."""
    check_split(method, test_fraction)
    n = len(inter)
    if n == 0:
        return np.zeros(0, dtype=bool)
    position = np.arange(n)
    if method == "time":
        if inter.ts is None:
            raise ValueError("a time split needs timestamps")
        order = np.lexsort((position, inter.ts, inter.user))
    else:
        key = np.random.default_rng(seed).random(n)
        order = np.lexsort((key, inter.user))
    per_user = np.bincount(inter.user, minlength=n_users)
    n_test = np.floor(test_fraction * per_user + 0.5).astype(np.int64)
    n_test = np.clip(n_test, 1, np.maximum(per_user - 1, 1))
    n_test[per_user < 2] = 0
    starts = np.cumsum(per_user) - per_user
    sorted_users = inter.user[order]
    rank = np.arange(n) - starts[sorted_users]
    test = np.zeros(n, dtype=bool)
    test[order] = rank >= per_user[sorted_users] - n_test[sorted_users]
    return test


def check_split(method: str, test_fraction: float) -> None:
    if method not in SPLITS:
        raise InputError(f"unknown split {method!r}: use one of {', '.join(SPLITS)}")
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test fraction must be between 0 and 1 (got {test_fraction})")


def ranking_metrics(
    recommended: np.ndarray, relevant: list[np.ndarray], k: int
) -> dict[str, np.ndarray]:
    """Per-user metrics of (users x >= k) recommended item lists (-1 = empty slot) against
    one array of relevant items per user."""
    users = recommended.shape[0]
    rec = np.asarray(recommended, dtype=np.int64)[:, :k]
    arrays = [np.asarray(r, dtype=np.int64) for r in relevant]
    base = max([int(rec.max(initial=0)), *(int(r.max(initial=0)) for r in arrays)]) + 1
    keys = np.unique(
        np.concatenate([r + u * base for u, r in enumerate(arrays)] or [np.zeros(0, np.int64)])
    )
    return _metrics_from_keys(rec, keys, base, users, k)


def _metrics_from_keys(
    rec: np.ndarray, keys: np.ndarray, base: int, users: int, k: int
) -> dict[str, np.ndarray]:
    valid = rec >= 0
    lookup = np.arange(users, dtype=np.int64)[:, None] * base + np.maximum(rec, 0)
    idx = np.minimum(np.searchsorted(keys, lookup), max(len(keys) - 1, 0))
    hits = valid & (keys[idx] == lookup) if len(keys) else np.zeros_like(valid)
    n_rel = np.bincount(keys // base, minlength=users).astype(np.float64)
    n_hits = hits.sum(axis=1).astype(np.float64)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discount[: rec.shape[1]]).sum(axis=1)
    ideal_n = np.minimum(n_rel, k).astype(np.int64)
    idcg = np.concatenate(([0.0], np.cumsum(discount)))[ideal_n]
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, rec.shape[1] + 1)
    ap = (precision_at * hits).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "precision": n_hits / k,
            "recall": np.where(n_rel > 0, n_hits / n_rel, 0.0),
            "ndcg": np.where(idcg > 0, dcg / idcg, 0.0),
            "map": np.where(ideal_n > 0, ap / np.maximum(ideal_n, 1), 0.0),
            "hit_rate": (n_hits > 0).astype(np.float64),
        }


def category_diversity(recommended: np.ndarray, item_category: np.ndarray) -> np.ndarray:
    """Per list: share of item pairs with different categories (NaN for < 2 items)."""
    valid = recommended >= 0
    cats = take(item_category, recommended, -1)
    both = valid[:, :, None] & valid[:, None, :]
    differ = (cats[:, :, None] != cats[:, None, :]) & both
    n = valid.sum(axis=1)
    pairs = n * (n - 1)  # ordered pairs, like ``differ``
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, differ.sum(axis=(1, 2)) / pairs, np.nan)


def evaluate_interactions(
    catalogue: Catalogue,
    inter: InteractionArrays,
    *,
    strategies: tuple[str, ...] | list[str] = ("v1", "v2", "popular"),
    k: int = 10,
    split: str = "time",
    test_fraction: float = 0.2,
    seed: int = 42,
    neighbours: int = DEFAULT_NEIGHBOURS,
    threshold: float = DEFAULT_THRESHOLD,
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate ``strategies`` on interactions given as arrays (see the module doc)."""
    if k < 1:
        raise InputError(f"k must be at least 1 (got {k})")
    check_split(split, test_fraction)
    for name in strategies:
        get_strategy(name)
    options = Options(k, neighbours, threshold, cold_items=False).validate()
    n_items = catalogue.n_items
    test = split_interactions(
        inter, catalogue.n_users, method=split, test_fraction=test_fraction, seed=seed
    )
    train = ~test
    snap = Snapshot(catalogue, inter.user[train], inter.item[train], inter.weight[train])
    base = max(n_items, 1)
    train_keys = np.unique(inter.user[train] * base + inter.item[train])
    test_keys = np.unique(inter.user[test] * base + inter.item[test])
    relevant = np.setdiff1d(test_keys, train_keys, assume_unique=True)
    rows = np.unique(relevant // base)
    # Re-key by position in ``rows`` so metrics work on (len(rows) x k) arrays.
    rel_keys = np.searchsorted(rows, relevant // base) * base + relevant % base
    results = []
    for name in strategies:
        started = time.perf_counter()
        tops = [
            ranking.top(k)
            for ranking in rank_users(snap, name, rows, options, progress=progress, stage=name)
        ]
        rec = np.vstack(tops) if tops else np.zeros((0, k), dtype=np.int64)
        per_user = _metrics_from_keys(rec, rel_keys, base, len(rows), k)
        diversity = category_diversity(rec, catalogue.item_category)
        shown = np.unique(rec[rec >= 0])
        div_ok = diversity[~np.isnan(diversity)]
        results.append(
            StrategyScore(
                strategy=name,
                precision=_mean(per_user["precision"]),
                recall=_mean(per_user["recall"]),
                ndcg=_mean(per_user["ndcg"]),
                map=_mean(per_user["map"]),
                hit_rate=_mean(per_user["hit_rate"]),
                coverage=len(shown) / n_items if n_items else 0.0,
                diversity=_mean(div_ok),
                users=len(rows),
                seconds=time.perf_counter() - started,
            )
        )
    return Evaluation(
        k=k,
        split=split,
        test_fraction=test_fraction,
        seed=seed,
        users=len(rows),
        items=n_items,
        train_interactions=int(train.sum()),
        test_interactions=int(test.sum()),
        neighbours=neighbours,
        threshold=threshold,
        results=results,
    )


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0


def evaluate(
    store: Store,
    *,
    strategies: tuple[str, ...] | list[str] = tuple(STRATEGIES),
    k: int = 10,
    split: str = "time",
    test_fraction: float = 0.2,
    seed: int = 42,
    neighbours: int = DEFAULT_NEIGHBOURS,
    threshold: float = DEFAULT_THRESHOLD,
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate strategies on the interactions in ``store`` (read in one transaction)."""
    # Validate before the (possibly long) read.
    if k < 1:
        raise InputError(f"k must be at least 1 (got {k})")
    check_split(split, test_fraction)
    for name in strategies:
        get_strategy(name)
    Options(k, neighbours, threshold).validate()
    with store.read():
        catalogue = load_catalogue(store)
        inter = load_interactions(store, catalogue, with_time=True)
    return evaluate_interactions(
        catalogue,
        inter,
        strategies=strategies,
        k=k,
        split=split,
        test_fraction=test_fraction,
        seed=seed,
        neighbours=neighbours,
        threshold=threshold,
        progress=progress,
    )
