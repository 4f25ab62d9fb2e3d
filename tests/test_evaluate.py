"""Offline evaluation: the split, the metrics against hand-computed values, the command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from smart_suggest.errors import InputError
from smart_suggest.evaluate import (
    category_diversity,
    evaluate,
    evaluate_interactions,
    ranking_metrics,
    split_interactions,
)
from smart_suggest.recommend.snapshot import Catalogue, InteractionArrays
from smart_suggest.store import Store


def arrays(user: list[int], item: list[int], ts: list[float]) -> InteractionArrays:
    return InteractionArrays(
        np.array(user), np.array(item), np.ones(len(user), dtype=np.float32), np.array(ts)
    )


# -- metrics ------------------------------------------------------------------------------
def test_metrics_match_hand_computed_values() -> None:
    # user 0: hits at ranks 2 and 4 of 4, three relevant items (one never recommended)
    # user 1: no hit;  user 2: a hit at rank 1 with a single relevant item, list of 2
    rec = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 3, -1, -1]])
    relevant = [np.array([2, 4, 11]), np.array([1]), np.array([9])]
    m = ranking_metrics(rec, relevant, 4)
    assert m["precision"].tolist() == pytest.approx([2 / 4, 0, 1 / 4])
    assert m["recall"].tolist() == pytest.approx([2 / 3, 0, 1])
    assert m["hit_rate"].tolist() == [1, 0, 1]
    dcg0 = 1 / math.log2(3) + 1 / math.log2(5)
    idcg0 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg"].tolist() == pytest.approx([dcg0 / idcg0, 0, 1])
    ap0 = (1 / 2 + 2 / 4) / 3  # precision at each hit, over min(|relevant|, k)
    assert m["map"].tolist() == pytest.approx([ap0, 0, 1])


def test_metrics_cut_at_k() -> None:
    rec = np.array([[1, 2, 3]])
    m = ranking_metrics(rec, [np.array([3])], 2)  # the hit is at rank 3: outside k = 2
    assert m["hit_rate"].tolist() == [0]
    m = ranking_metrics(rec, [np.array([1, 2, 3, 4, 5])], 2)  # more relevant than k
    assert m["ndcg"].tolist() == pytest.approx([1.0])
    assert m["map"].tolist() == pytest.approx([1.0])
    assert m["recall"].tolist() == pytest.approx([2 / 5])


def test_category_diversity() -> None:
    cats = np.array([0, 0, 1, 2])  # item -> category
    div = category_diversity(np.array([[0, 1, 2], [0, 1, -1], [3, -1, -1], [2, 3, 0]]), cats)
    assert div[0] == pytest.approx(2 / 3)  # pairs (0,1) same, (0,2) and (1,2) differ
    assert div[1] == 0.0
    assert math.isnan(div[2])  # one item: no pair
    assert div[3] == pytest.approx(1.0)


# -- split --------------------------------------------------------------------------------
def test_time_split_holds_out_the_latest_fifth_per_user() -> None:
    # user 0: 10 interactions (ts shuffled), user 1: 5, user 2: 1, user 3: 2
    ts0 = [5, 1, 9, 3, 7, 2, 10, 4, 8, 6]
    inter = arrays(
        [0] * 10 + [1] * 5 + [2] + [3, 3],
        list(range(10)) + list(range(5)) + [0] + [0, 1],
        [float(t) for t in ts0] + [1, 2, 3, 5, 4] + [1] + [7, 7],
    )
    test = split_interactions(inter, 4, method="time", test_fraction=0.2)
    held = [t for t, h in zip(ts0, test[:10], strict=True) if h]
    assert sorted(held) == [9, 10]
    assert test[10:15].tolist() == [False, False, False, True, False]  # ts 5 is the latest
    assert test[15].item() is False  # a single interaction stays in training
    assert test[16:18].tolist() == [False, True]  # equal ts: the later row is held out


def test_random_split_is_seeded() -> None:
    inter = arrays([0] * 20, list(range(20)), [0.0] * 20)
    a = split_interactions(inter, 1, method="random", test_fraction=0.25, seed=1)
    b = split_interactions(inter, 1, method="random", test_fraction=0.25, seed=1)
    c = split_interactions(inter, 1, method="random", test_fraction=0.25, seed=2)
    assert a.sum() == 5 and a.tolist() == b.tolist() and a.tolist() != c.tolist()
    with pytest.raises(InputError):
        split_interactions(inter, 1, method="sideways")
    with pytest.raises(InputError):
        split_interactions(inter, 1, test_fraction=1.0)


# -- the whole evaluation -------------------------------------------------------------------
def test_evaluation_on_a_hand_made_catalogue() -> None:
    cat = Catalogue(
        np.array([1, 2, 3]),
        ["a", "b", "c"],
        np.array([10, 20, 30, 40]),
        ["i10", "i20", "i30", "i40"],
        ["x", "x", "y", "y"],
        ["", "", "", ""],
    )
    # a: items 0, 1, then 2 (latest, held out);  b: 0, 1, then 3 (held out);  c: only 2.
    inter = arrays([0, 0, 0, 1, 1, 1, 2], [0, 1, 2, 0, 1, 3, 2], [1, 2, 9, 1, 2, 8, 1])
    ev = evaluate_interactions(cat, inter, k=1, strategies=["v1", "popular"], threshold=0.1)
    assert (ev.users, ev.train_interactions, ev.test_interactions) == (2, 5, 2)
    # a and b are each other's neighbour (cosine 1) but have nothing new for each other, so
    # both get the popular fill-in: in training, the most popular unseen item is 2 (c's),
    # a hit for a (held-out 2) and a miss for b (held-out 3, a cold item in training).
    for result in ev.results:
        assert result.precision == pytest.approx(0.5)
        assert result.recall == pytest.approx(0.5)
        assert result.ndcg == pytest.approx(0.5)
        assert result.map == pytest.approx(0.5)
        assert result.hit_rate == pytest.approx(0.5)
        assert result.coverage == pytest.approx(1 / 4)
        assert result.diversity == 0.0  # one-item lists have no pairs
    with pytest.raises(InputError):
        evaluate_interactions(cat, inter, k=0)
    with pytest.raises(InputError):
        evaluate_interactions(cat, inter, strategies=["nope"])


def test_evaluate_store_reports_every_strategy(demo_store: Store) -> None:
    ev = evaluate(demo_store, k=5)
    assert [r.strategy for r in ev.results] == ["v1", "v2", "v3", "popular"]
    assert ev.users > 0 and ev.test_interactions > 0
    for r in ev.results:
        for metric in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage", "diversity"):
            assert 0.0 <= getattr(r, metric) <= 1.0
    data = ev.to_dict()
    json.dumps(data, allow_nan=False)
    assert ev.best("ndcg") is not None
    random = evaluate(demo_store, k=5, split="random", seed=3, strategies=["popular"])
    assert random.split == "random" and len(random.results) == 1


def test_evaluate_command(run_cli, demo_store: Store, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("evaluate", "--db", db_path, "--json", "--k", "5")
    assert code == 0, err
    data = json.loads(out)
    assert data["k"] == 5 and data["split"] == "time"
    assert [r["strategy"] for r in data["results"]] == ["v1", "v2", "v3", "popular"]
    assert set(data["results"][0]) >= {"precision", "recall", "ndcg", "map", "hit_rate"}
    code, out, err = run_cli("evaluate", "--db", db_path, "--strategies", "v1,popular")
    assert code == 0, err
    assert "NDCG@10" in out and "popular" in out and "v2" not in out.split("Time:")[0]
    code, out, err = run_cli("evaluate", "--db", db_path, "--split", "sideways")
    assert code == 2 and err.count("\n") == 1 and "unknown split" in err
    code, out, err = run_cli("evaluate", "--db", db_path, "--strategies", "v7")
    assert code == 2 and "unknown strategy" in err
    code, out, err = run_cli("evaluate", "--db", db_path, "--test-fraction", "1.5")
    assert code == 2 and "test fraction" in err


# -- leave-last-out, standard errors, the ranking ---------------------------------------------
def test_leave_last_out_holds_out_the_item_each_user_found_last() -> None:
    # user 0: items 5 (t=1), 6 (t=2), 5 again (t=9): 6 is the item found last, even though
    #         the latest interaction is with 5; both interactions with 6 are held out.
    # user 1: items 1 (t=3), 2 (t=4, twice): 2 is held out with both its interactions.
    # user 2: item 3 only (twice): one distinct item, nothing held out.
    # user 3: two items at the same time: insertion order breaks the tie (the later row).
    inter = arrays(
        [0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3],
        [5, 6, 5, 6, 1, 2, 2, 3, 3, 7, 8],
        [1, 2, 9, 3, 3, 4, 5, 1, 2, 7, 7],
    )
    test = split_interactions(inter, 4, method="leave-last-out")
    assert test.tolist() == [False, True, False, True, False, True, True, False, False, False, True]


def test_evaluate_leave_last_out_scores_one_item_per_user(demo_store: Store) -> None:
    ev = evaluate(demo_store, k=10, split="leave-last-out", strategies=["v1", "v3", "popular"])
    assert ev.split == "leave-last-out" and ev.users > 0
    for r in ev.results:
        # One relevant item per user: recall equals hit rate, precision is hits / k.
        assert r.recall == pytest.approx(r.hit_rate)
        assert r.precision == pytest.approx(r.hit_rate / 10)


def test_standard_errors_and_ranking_match_scipy(demo_store: Store) -> None:
    from scipy import stats

    from smart_suggest.evaluate import holdout, score_users
    from smart_suggest.recommend.snapshot import load_catalogue, load_interactions
    from smart_suggest.tuning import build_options

    names = ["v1", "v3", "popular"]
    ev = evaluate(demo_store, k=5, strategies=names, tuned=False)
    with demo_store.read():
        cat = load_catalogue(demo_store)
        inter = load_interactions(demo_store, cat, with_time=True)
    part = holdout(inter, cat)
    per_user = {
        n: score_users(part, n, build_options(n, None, count=5, cold_items=False), 5) for n in names
    }
    for r in ev.results:
        for metric in ("precision", "recall", "ndcg", "map", "hit_rate"):
            values = per_user[r.strategy][metric]
            assert getattr(r, metric) == pytest.approx(values.mean(), rel=1e-12)
            assert r.se[metric] == pytest.approx(stats.sem(values), rel=1e-12)
    means = {n: per_user[n]["ndcg"].mean() for n in names}
    order = sorted(names, key=lambda n: -means[n])
    assert [row.strategy for row in ev.ranking] == order
    best = order[0]
    assert ev.ranking[0].diff == 0 and ev.ranking[0].ci_low is None
    for row in ev.ranking[1:]:
        ci = stats.ttest_rel(per_user[row.strategy]["ndcg"], per_user[best]["ndcg"])
        low, high = ci.confidence_interval(0.95)
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), rel=1e-9)
        assert row.diff == pytest.approx(means[row.strategy] - means[best], rel=1e-12)
        assert row.within_noise == (low <= 0 <= high)


def test_rank_strategies_flags_a_real_difference_and_noise() -> None:
    from smart_suggest.evaluate import rank_strategies

    rng = np.random.default_rng(0)
    base = rng.random(400)
    rows = rank_strategies(
        {
            "a": base,
            "worse": base - 0.05 + rng.normal(0, 0.01, 400),
            "same": base + rng.normal(0, 0.05, 400),
        }
    )
    verdict = {r.strategy: r.within_noise for r in rows}
    assert rows[0].strategy in ("a", "same")
    assert verdict["worse"] is False
    assert verdict["a"] is True and verdict["same"] is True


def test_evaluate_command_ranking_and_options(run_cli, demo_store: Store, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli(
        "evaluate", "--db", db_path, "--split", "leave-last-out", "--strategies", "v1,v3,popular"
    )
    assert code == 0, err
    assert "Held out the item each user found last" in out
    assert "Ranking by NDCG@10" in out and "95% interval" in out
    assert "±" in out
    assert ("within noise" in out) or ("worse" in out)
    code, out, err = run_cli(
        "evaluate", "--db", db_path, "-s", "v1,v3", "--metric", "recall", "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["metric"] == "recall" and len(data["ranking"]) == 2
    assert {"ndcg", "recall"} <= set(data["results"][0]["se"])
    assert data["results"][0]["params"] == {"neighbours": 20, "threshold": 0.3}
    code, out, err = run_cli("evaluate", "--db", db_path, "--metric", "coverage")
    assert code == 2 and "unknown metric" in err
