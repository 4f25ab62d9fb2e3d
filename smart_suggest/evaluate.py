"""Offline evaluation: hold out part of each user's history, recommend, count the hits.

Splits (per user):

* ``time`` (default): a user's interactions are ordered by time (ties: insertion order) and
  the last ``round(test_fraction x n)`` of them are held out, at least one and never all of
  them; a user with a single interaction stays entirely in training;
* ``random``: a random subset of the same size instead (``seed``);
* ``leave-last-out``: the item each user discovered last (the item whose *first*
  interaction is the user's latest) is held out with all of that user's interactions with
  it; users with fewer than two distinct items stay entirely in training. This is the
  protocol of most published top-N results.

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

Noise: each per-user metric has a standard error, sd / sqrt(users) (sample sd, ddof 1;
coverage is one number for the whole catalogue and has none). Strategies are ranked by one
metric (NDCG by default); each is compared with the best on the *same* users: the mean of
the per-user differences with its 95% t interval (a paired t interval, as
``scipy.stats.ttest_rel``). A difference whose interval contains 0 is "within noise".
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from smart_suggest.errors import InputError
from smart_suggest.recommend import (
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

SPLITS = ("time", "random", "leave-last-out")
METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage", "diversity")
#: Metrics with a per-user value (and so a standard error); coverage is catalogue-wide.
USER_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "diversity")
#: Confidence of the paired difference intervals of the ranking.
CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class StrategyScore:
    """The metrics of one strategy (means over the evaluated users) and their errors."""

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
    #: standard error of each per-user metric (sd / sqrt(n)), see ``USER_METRICS``
    se: dict[str, float] = field(default_factory=dict)
    #: the hyper-parameters used (tuned or given), as in ``Options``
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RankRow:
    """One line of the ranking: a strategy against the best on the same users."""

    rank: int
    strategy: str
    value: float
    diff: float  # value - best value (0 for the best)
    ci_low: float | None  # interval of the paired difference (None for the best)
    ci_high: float | None
    within_noise: bool  # the interval contains 0 (the best itself: True)

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
    metric: str = "ndcg"
    ranking: list[RankRow] = field(default_factory=list)
    #: stored tunings in use, per strategy (``tuning.Tuned.to_dict()``)
    tuned: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["results"] = [r.to_dict() for r in self.results]
        data["ranking"] = [r.to_dict() for r in self.ranking]
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
    if method in ("time", "leave-last-out"):
        if inter.ts is None:
            raise ValueError("a time split needs timestamps")
        order = np.lexsort((position, inter.ts, inter.user))
    else:
        key = np.random.default_rng(seed).random(n)
        order = np.lexsort((key, inter.user))
    if method == "leave-last-out":
        return _leave_last_out(inter, order)
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


def _leave_last_out(inter: InteractionArrays, order: np.ndarray) -> np.ndarray:
    """Hold out, per user, every interaction with the item first touched last."""
    width = int(inter.item.max()) + 1
    keys = inter.user[order] * width + inter.item[order]
    # ``order`` is by (user, time): the first occurrence of a pair is its first interaction.
    pairs, first = np.unique(keys, return_index=True)
    pair_user = pairs // width
    by_user = np.lexsort((first, pair_user))  # each user's pairs by first-touch time
    users_sorted = pair_user[by_user]
    last = np.flatnonzero(np.r_[users_sorted[1:] != users_sorted[:-1], True])
    distinct = np.bincount(pair_user)
    held = pairs[by_user[last]]
    held = held[distinct[held // width] >= 2]  # one distinct item: nothing to hold out
    return np.isin(inter.user * width + inter.item, held)


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


@dataclass(slots=True)
class Holdout:
    """A train/test split ready to score: the training snapshot and the relevant items."""

    catalogue: Catalogue
    snap: Snapshot
    test: np.ndarray  # mask over the interactions it was cut from
    rows: np.ndarray  # snapshot user indices evaluated (at least one relevant item)
    rel_keys: np.ndarray  # position-in-rows x base + item, sorted
    base: int

    @property
    def n_users(self) -> int:
        return len(self.rows)

    @property
    def n_train(self) -> int:
        return int((~self.test).sum())

    @property
    def n_test(self) -> int:
        return int(self.test.sum())

    def train_arrays(self, inter: InteractionArrays) -> InteractionArrays:
        """The training part of ``inter`` (the arrays this holdout was cut from)."""
        keep = ~self.test
        ts = inter.ts[keep] if inter.ts is not None else None
        return InteractionArrays(inter.user[keep], inter.item[keep], inter.weight[keep], ts)


def holdout(
    inter: InteractionArrays,
    catalogue: Catalogue,
    *,
    split: str = "time",
    test_fraction: float = 0.2,
    seed: int = 42,
) -> Holdout:
    """Split ``inter``, build the training snapshot and find each user's relevant items."""
    test = split_interactions(
        inter, catalogue.n_users, method=split, test_fraction=test_fraction, seed=seed
    )
    train = ~test
    snap = Snapshot(
        catalogue,
        inter.user[train],
        inter.item[train],
        inter.weight[train],
        times=None if inter.ts is None else inter.ts[train],
    )
    base = max(catalogue.n_items, 1)
    train_keys = np.unique(inter.user[train] * base + inter.item[train])
    test_keys = np.unique(inter.user[test] * base + inter.item[test])
    relevant = np.setdiff1d(test_keys, train_keys, assume_unique=True)
    rows = np.unique(relevant // base)
    # Re-key by position in ``rows`` so metrics work on (len(rows) x k) arrays.
    rel_keys = np.searchsorted(rows, relevant // base) * base + relevant % base
    return Holdout(catalogue, snap, test, rows, rel_keys, base)


def recommend_top(
    split: Holdout,
    strategy: str,
    options: Options,
    k: int,
    progress: Progress | None = None,
) -> np.ndarray:
    """(users x k) top-k item indices of ``strategy`` for the evaluated users."""
    tops = [
        ranking.top(k)
        for ranking in rank_users(
            split.snap, strategy, split.rows, options, progress=progress, stage=strategy
        )
    ]
    return np.vstack(tops) if tops else np.zeros((0, k), dtype=np.int64)


def score_users(
    split: Holdout,
    strategy: str,
    options: Options,
    k: int,
    progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """Per-user metrics (see ``ranking_metrics``) of ``strategy`` on ``split``."""
    rec = recommend_top(split, strategy, options, k, progress)
    return _metrics_from_keys(rec, split.rel_keys, split.base, split.n_users, k)


def standard_error(values: np.ndarray) -> float:
    """sd / sqrt(n) with the sample sd (ddof 1); 0 for fewer than two values."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return 0.0
    return float(values.std(ddof=1) / np.sqrt(len(values)))


def paired_interval(diff: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean of the per-user differences and its t interval: (mean, low, high)."""
    from scipy import stats

    diff = np.asarray(diff, dtype=np.float64)
    n = len(diff)
    mean = float(diff.mean()) if n else 0.0
    if n < 2:
        return mean, float("-inf"), float("inf")
    se = float(diff.std(ddof=1) / np.sqrt(n))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    return mean, mean - half, mean + half


def rank_strategies(
    per_user: Mapping[str, np.ndarray], confidence: float = CONFIDENCE
) -> list[RankRow]:
    """Rank strategies by the mean of a per-user metric; compare each with the best."""
    means = {name: float(v.mean()) if len(v) else 0.0 for name, v in per_user.items()}
    order = sorted(means, key=lambda name: -means[name])  # stable: ties keep the given order
    if not order:
        return []
    best = order[0]
    rows = [RankRow(1, best, means[best], 0.0, None, None, True)]
    for rank, name in enumerate(order[1:], start=2):
        diff, low, high = paired_interval(per_user[name] - per_user[best], confidence)
        rows.append(RankRow(rank, name, means[name], diff, low, high, bool(low <= 0.0 <= high)))
    return rows


def evaluate_interactions(
    catalogue: Catalogue,
    inter: InteractionArrays,
    *,
    strategies: tuple[str, ...] | list[str] = ("v1", "v2", "popular"),
    k: int = 10,
    split: str = "time",
    test_fraction: float = 0.2,
    seed: int = 42,
    neighbours: int | None = None,
    threshold: float | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    metric: str = "ndcg",
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate ``strategies`` on interactions given as arrays (see the module doc).

    ``params`` holds tuned hyper-parameters per strategy; ``neighbours`` and ``threshold``
    override them for v1 when given.
    """
    from smart_suggest.tuning import build_options

    if k < 1:
        raise InputError(f"k must be at least 1 (got {k})")
    check_split(split, test_fraction)
    check_metric(metric)
    for name in strategies:
        get_strategy(name)
    options = {
        name: build_options(
            name,
            (params or {}).get(name),
            count=k,
            neighbours=neighbours,
            threshold=threshold,
            cold_items=False,
        ).validate()
        for name in strategies
    }
    n_items = catalogue.n_items
    part = holdout(inter, catalogue, split=split, test_fraction=test_fraction, seed=seed)
    results = []
    ranked: dict[str, np.ndarray] = {}
    for name in strategies:
        started = time.perf_counter()
        rec = recommend_top(part, name, options[name], k, progress)
        per_user = _metrics_from_keys(rec, part.rel_keys, part.base, part.n_users, k)
        per_user["diversity"] = category_diversity(rec, catalogue.item_category)
        shown = np.unique(rec[rec >= 0])
        div_ok = per_user["diversity"][~np.isnan(per_user["diversity"])]
        ranked[name] = per_user[metric] if metric != "coverage" else np.zeros(0)
        se = {m: standard_error(div_ok if m == "diversity" else per_user[m]) for m in USER_METRICS}
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
                users=part.n_users,
                seconds=time.perf_counter() - started,
                se=se,
                params=_used_params(name, options[name]),
            )
        )
    v1 = options.get("v1") or build_options("v1", None, neighbours=neighbours, threshold=threshold)
    return Evaluation(
        k=k,
        split=split,
        test_fraction=test_fraction,
        seed=seed,
        users=part.n_users,
        items=n_items,
        train_interactions=part.n_train,
        test_interactions=part.n_test,
        neighbours=v1.neighbours,
        threshold=v1.threshold,
        results=results,
        metric=metric,
        ranking=rank_strategies(ranked) if metric != "coverage" else [],
    )


def check_metric(metric: str) -> None:
    if metric not in USER_METRICS:
        raise InputError(f"unknown metric {metric!r}: use one of {', '.join(USER_METRICS)}")


def _used_params(strategy: str, options: Options) -> dict[str, Any]:
    if strategy == "v1":
        return {"neighbours": options.neighbours, "threshold": options.threshold}
    if strategy == "v3":
        return dict(options.params)
    return {}


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
    neighbours: int | None = None,
    threshold: float | None = None,
    metric: str = "ndcg",
    tuned: bool = True,
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate strategies on the interactions in ``store`` (read in one transaction).

    ``tuned``: use the parameters ``smart-suggest tune`` stored (explicit ones win).
    """
    from smart_suggest.tuning import TUNABLE, build_options, load_tuned

    # Validate before the (possibly long) read.
    if k < 1:
        raise InputError(f"k must be at least 1 (got {k})")
    check_split(split, test_fraction)
    check_metric(metric)
    for name in strategies:
        get_strategy(name)
    build_options("v1", None, count=k, neighbours=neighbours, threshold=threshold).validate()
    params: dict[str, dict[str, Any]] = {}
    used: dict[str, dict[str, Any]] = {}
    if tuned:
        for name in strategies:
            found = load_tuned(store, name) if name in TUNABLE else None
            if found is not None:
                params[name] = found.params
                used[name] = found.to_dict()
    with store.read():
        catalogue = load_catalogue(store)
        inter = load_interactions(store, catalogue, with_time=True)
    result = evaluate_interactions(
        catalogue,
        inter,
        strategies=strategies,
        k=k,
        split=split,
        test_fraction=test_fraction,
        seed=seed,
        neighbours=neighbours,
        threshold=threshold,
        params=params,
        metric=metric,
        progress=progress,
    )
    result.tuned.update(used)
    return result
