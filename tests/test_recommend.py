"""Recommenders on small hand-made cases: one test (or a few) per rule of the issue."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from smart_suggest import tracking
from smart_suggest.errors import InputError, NotFoundError
from smart_suggest.recommend import (
    STRATEGIES,
    Recommendation,
    Recommender,
    build_snapshot,
    recommend,
    similar_items,
)
from smart_suggest.recommend.content import HALF_LIFE
from smart_suggest.store import Store, open_store

Row = tuple[int, int, str]


def fill(
    store: Store,
    users: dict[int, str],
    items: list[tuple[int, str, str]],
    interactions: list[Row],
) -> None:
    """Users, items (id, category, description) and interactions (user, item, action)."""
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO users(id, username, created_at) VALUES (?, ?, 0)", list(users.items())
        )
        conn.executemany(
            "INSERT INTO items(id, name, category, description, created_at) VALUES (?, ?, ?, ?, 0)",
            [(i, f"item{i}", c, d) for i, c, d in items],
        )
        conn.executemany(
            "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (?, ?, ?, ?)",
            [(u, i, a, 1000.0 + k) for k, (u, i, a) in enumerate(interactions)],
        )


def ids(recs: list[Recommendation]) -> list[int]:
    return [r.item_id for r in recs]


def sources(recs: list[Recommendation]) -> list[str]:
    return [r.source for r in recs]


# -- the registry ---------------------------------------------------------------------------
def test_registry_names_and_unknown_strategy(demo_store: Store) -> None:
    assert list(STRATEGIES) == ["v1", "v2", "v3", "popular"]
    assert all(isinstance(d, str) and d for d in STRATEGIES.values())
    with pytest.raises(InputError, match=r"unknown strategy 'v9': use one of v1, v2, v3, popular"):
        recommend(demo_store, 1, "v9")
    with pytest.raises(NotFoundError):
        recommend(demo_store, "nobody-here")
    with pytest.raises(NotFoundError):
        Recommender(demo_store).recommend(999_999)
    with pytest.raises(InputError, match="threshold"):
        recommend(demo_store, 1, threshold=1.5)
    with pytest.raises(InputError, match="neighbours"):
        recommend(demo_store, 1, neighbours=0)
    rec = recommend(demo_store, "alice", "v1", 3)[0]
    assert set(rec.to_dict()) == {"item_id", "score", "reason", "source"}


# -- v1: neighbours, threshold, weights ------------------------------------------------------
CF_ITEMS = [(i, "c", f"word{i}") for i in range(1, 7)]  # no cold item
CF_USERS = {1: "target", 2: "ann", 3: "ben", 4: "cid"}
# target: 1,2,3.  ann: 1,2,3,4 (cos 0.866).  ben: 1,2,5 (cos 0.667).  cid: 1,6 (cos 0.408).
CF_ROWS: list[Row] = [
    (1, 1, "view"),
    (1, 2, "view"),
    (1, 3, "view"),
    (2, 1, "view"),
    (2, 2, "view"),
    (2, 3, "view"),
    (2, 4, "view"),
    (3, 1, "view"),
    (3, 2, "view"),
    (3, 5, "view"),
    (4, 1, "view"),
    (4, 6, "view"),
]


def test_v1_uses_only_the_top_k_neighbours(store: Store) -> None:
    fill(store, CF_USERS, CF_ITEMS, CF_ROWS)
    engine = Recommender(store)
    recs = engine.recommend(1, "v1", 3, neighbours=3)
    assert ids(recs) == [4, 5, 6]
    assert sources(recs) == ["neighbours"] * 3
    assert recs[0].score == pytest.approx(3 / math.sqrt(12))  # sim(target, ann) x 1
    assert recs[1].score == pytest.approx(2 / 3)
    assert recs[2].score == pytest.approx(1 / math.sqrt(6))
    assert "ann (0.87)" in recs[0].reason and "ben" in recs[1].reason
    # K = 2: cid is not a neighbour any more, item 6 only comes back as a popular fill-in.
    recs = engine.recommend(1, "v1", 3, neighbours=2)
    assert ids(recs) == [4, 5, 6]
    assert sources(recs) == ["neighbours", "neighbours", "popular"]
    assert "fill-in" in recs[2].reason and "neighbours gave only 2" in recs[2].reason
    # K = 1: only ann; the free slots go to the most popular unseen items (ties: lower id).
    recs = engine.recommend(1, "v1", 3, neighbours=1)
    assert ids(recs) == [4, 5, 6] and sources(recs) == ["neighbours", "popular", "popular"]


def test_v1_threshold_excludes_less_similar_users(store: Store) -> None:
    fill(store, CF_USERS, CF_ITEMS, CF_ROWS)
    engine = Recommender(store)
    recs = engine.recommend(1, "v1", 3, threshold=0.5)
    assert sources(recs) == ["neighbours", "neighbours", "popular"]  # cid (0.408) < 0.5
    recs = engine.recommend(1, "v1", 3, threshold=0.4)
    assert sources(recs) == ["neighbours"] * 3
    recs = engine.recommend(1, "v1", 3, threshold=0.9)  # nobody is that similar
    assert sources(recs) == ["popular"] * 3
    assert "no similar user at or above 0.9" in recs[0].reason


def test_v1_weights_purchase_beats_view(store: Store) -> None:
    # pam purchased 1 and 2 (5 + 5), vic viewed 1 and 3 (1 + 1): both have cosine 0.707 with
    # the target, so the only difference is the weight of what they did with 2 and 3.
    fill(
        store,
        {1: "target", 2: "pam", 3: "vic"},
        [(i, "c", "") for i in (1, 2, 3)],
        [(1, 1, "view"), (2, 1, "purchase"), (2, 2, "purchase"), (3, 1, "view"), (3, 3, "view")],
    )
    recs = Recommender(store).recommend(1, "v1", 2)
    assert ids(recs) == [2, 3]
    assert recs[0].score == pytest.approx(5 * math.sqrt(0.5))
    assert recs[1].score == pytest.approx(1 * math.sqrt(0.5))


def test_matrix_sums_action_weights_per_pair(store: Store) -> None:
    fill(
        store,
        {1: "a"},
        [(1, "c", ""), (2, "c", "")],
        [(1, 1, "view"), (1, 1, "click"), (1, 1, "purchase"), *[(1, 2, "view")] * 4],
    )
    snap = build_snapshot(store)
    assert snap.matrix.toarray().tolist() == [[9.0, 4.0]]
    assert snap.item_interactions.tolist() == [3, 4]
    assert snap.item_weight.tolist() == [9.0, 4.0]


# -- v1: cold items and cold users -------------------------------------------------------
def cold_item_store(store: Store) -> None:
    fill(
        store,
        {1: "target", 2: "nia"},
        [
            (1, "audio", "wireless headphones bass"),
            (2, "audio", "speaker"),
            (3, "audio", "amplifier"),
            (4, "garden", "shovel"),
            (5, "audio", "wireless headphones noise"),  # cold, like item 1
            (6, "garden", "rake soil"),  # cold, like nothing the target has
        ],
        [(1, 1, "click"), (2, 1, "view"), (2, 2, "view"), (2, 3, "view"), (2, 4, "view")],
    )


def test_v1_cold_items_are_appended_after_the_top_n(store: Store) -> None:
    cold_item_store(store)
    engine = Recommender(store)
    snap = engine.snapshot()
    x = snap.catalogue.features
    sim_5_1 = float((x[4] @ x[0].T).toarray()[0, 0])
    assert sim_5_1 >= 0.25
    for count in (1, 3):
        recs = engine.recommend(1, "v1", count)
        assert len(recs) == count + 1
        assert sources(recs)[:count] == ["neighbours"] * count
        assert recs[count].item_id == 5 and recs[count].source == "cold-item"
        assert recs[count].score == pytest.approx(0.05 * sim_5_1 * 3)  # click = 3
        assert "new item" in recs[count].reason and "item1" in recs[count].reason
    assert 6 not in ids(engine.recommend(1, "v1", 10))  # not similar enough (< 0.25)


def test_cold_user_gets_popular_items_with_a_reason(store: Store) -> None:
    fill(
        store,
        {1: "newbie", 2: "a", 3: "b"},
        [(i, "c", f"w{i}") for i in (1, 2, 3)],
        [(2, 1, "view"), (2, 2, "purchase"), (3, 3, "view"), (2, 3, "view")],
    )
    engine = Recommender(store)
    recs = engine.recommend(1, "v1", 3)
    assert ids(recs) == [2, 3, 1]  # weighted counts 5, 2, 1
    assert sources(recs) == ["popular"] * 3
    assert all("no history yet" in r.reason for r in recs)
    assert "2 interactions by 2 users" in recs[1].reason
    v2 = engine.recommend(1, "v2", 3)
    assert sources(v2) == ["representative"] * 3
    assert all("no history yet" in r.reason for r in v2)
    rep = engine.snapshot().catalogue.representativeness
    assert [r.score for r in v2] == pytest.approx(sorted(rep, reverse=True))


# -- exclusion of seen items ----------------------------------------------------------------
def test_seen_items_are_never_recommended(demo_store: Store) -> None:
    engine = Recommender(demo_store)
    for user in tracking.list_users(demo_store):
        seen = {h.item_id for h in tracking.history(demo_store, user.id, limit=None)}
        for strategy in STRATEGIES:
            recs = engine.recommend(user.id, strategy, 20)
            assert not seen & set(ids(recs)), (user.id, strategy)
            assert len(set(ids(recs))) == len(recs)


def test_popular_skips_what_the_user_has_seen(store: Store) -> None:
    fill(
        store,
        {1: "u", 2: "a"},
        [(i, "c", "") for i in (1, 2, 3)],
        [(2, 1, "purchase"), (2, 2, "click"), (2, 3, "view"), (1, 1, "view")],
    )
    recs = Recommender(store).recommend(1, "popular", 5)
    assert ids(recs) == [2, 3]
    assert recs[0].reason == "popular: 1 interaction by 1 user (weighted 3)"
    assert recs[0].score == 3.0


# -- v2: the content model --------------------------------------------------------------------
def test_tfidf_and_category_weight_match_a_hand_computation(store: Store) -> None:
    fill(
        store,
        {1: "u"},
        [(1, "fruit", "Red apple, apple!"), (2, "fruit", "green APPLE"), (3, "auto", "red car")],
        [],
    )
    x = build_snapshot(store).catalogue.features
    sims = (x @ x.T).toarray()
    idf = {w: math.log(4 / (1 + df)) + 1 for w, df in [("red", 2), ("apple", 2), ("green", 1)]}
    idf["car"] = math.log(4 / 2) + 1
    t1 = {"red": idf["red"], "apple": 2 * idf["apple"]}
    t2 = {"green": idf["green"], "apple": idf["apple"]}
    t3 = {"red": idf["red"], "car": idf["car"]}

    def cos_desc(a: dict[str, float], b: dict[str, float]) -> float:
        dot = sum(v * b.get(k, 0.0) for k, v in a.items())
        return dot / math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))

    # Each part unit length before the category (3.0) is appended: norm sqrt(1 + 9).
    assert sims[0, 1] == pytest.approx((cos_desc(t1, t2) + 9) / 10)
    assert sims[0, 2] == pytest.approx(cos_desc(t1, t3) / 10)
    assert sims[1, 2] == pytest.approx(0.0)
    assert np.diag(sims) == pytest.approx([1.0, 1.0, 1.0])


def test_category_key_cannot_collide_with_a_description_word(store: Store) -> None:
    fill(
        store,
        {1: "u"},
        [
            (1, "books", ""),
            (2, "music", "books"),
            (3, "music", "category books category:books __category__books cat_books"),
            (4, "books", "anything"),
        ],
        [],
    )
    x = build_snapshot(store).catalogue.features
    sims = (x @ x.T).toarray()
    assert sims[0, 1] == 0.0
    assert sims[0, 2] == 0.0
    assert sims[0, 3] == pytest.approx(3 / math.sqrt(10))  # the category feature itself works


def test_v2_scores_similarity_times_weight_ignoring_weak_pairs(store: Store) -> None:
    fill(
        store,
        {1: "u", 2: "other"},
        [
            (1, "tea", "green tea leaves"),
            (2, "tea", "black tea"),
            (3, "tea", "herbal infusion"),
            (4, "coffee", "green tea flavoured coffee"),  # shares words, other category
            (5, "coffee", "espresso beans"),
        ],
        [(1, 1, "purchase"), (1, 2, "view"), (2, 5, "view")],
    )
    engine = Recommender(store)
    snap = engine.snapshot()
    x = snap.catalogue.features
    sims = (x @ x.T).toarray()
    recs = engine.recommend(1, "v2", 5)
    content = {r.item_id: r for r in recs if r.source == "content"}
    # item index -> the user's weight x recency: item 1 was touched before item 2, so its
    # purchase (5) halves every content.HALF_LIFE later items
    weights = {0: 5.0 * 0.5 ** (1 / HALF_LIFE), 1: 1.0}
    for item, rec in content.items():
        expected = sum(
            sims[item - 1, j] * w for j, w in weights.items() if sims[item - 1, j] >= 0.25
        )
        assert rec.score == pytest.approx(expected)
    assert 3 in content and "item1" in content[3].reason
    # Item 4 shares words with item 1 but its cosine is < 0.25: not a content match.
    assert sims[3, 0] < 0.25 and 4 not in content
    assert all(r.source == "representative" for r in recs if r.item_id not in content)


def test_similar_items(demo_store: Store) -> None:
    pairs = similar_items(demo_store, "1", 5)
    assert len(pairs) == 5 and 1 not in [i for i, _ in pairs]
    values = [s for _, s in pairs]
    assert values == sorted(values, reverse=True)
    assert all(0 < s <= 1 for s in values)
    with pytest.raises(NotFoundError):
        similar_items(demo_store, "999")
    with pytest.raises(NotFoundError):
        Recommender(demo_store).similar(12345)


# -- freshness: new items and other connections/processes ----------------------------------
def test_new_item_and_other_connections_show_up_at_once(
    store: Store, db_path: Path, tmp_path: Path
) -> None:
    cold_item_store(store)
    engine = Recommender(store)
    before = engine.recommend(1, "v2", 10)
    new = tracking.add_item(store, "Studio headphones", "audio", "wireless headphones studio")
    v2 = engine.recommend(1, "v2", 10)
    assert new.id in ids(v2) and new.id not in ids(before)
    assert new.id in [r.item_id for r in engine.recommend(1, "v1", 3) if r.source == "cold-item"]
    # Another connection logs an interaction: the item is now seen, never recommended.
    other = open_store(db_path)
    try:
        tracking.log_interaction(other, 1, new.id, "view")
    finally:
        other.close()
    assert new.id not in ids(engine.recommend(1, "v2", 10))
    # Another process logs one too.
    target = ids(engine.recommend(1, "v2", 10))[0]
    env = {**os.environ, "SMART_SUGGEST_DB": str(db_path)}
    done = subprocess.run(
        [sys.executable, "-m", "smart_suggest", "log", "1", str(target), "purchase"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert target not in ids(engine.recommend(1, "v2", 10))


def test_snapshot_is_reused_until_the_data_changes(demo_store: Store) -> None:
    engine = Recommender(demo_store)
    first = engine.snapshot()
    engine.recommend(1, "v1")
    assert engine.snapshot() is first
    tracking.add_user(demo_store, "zed")
    assert engine.snapshot() is not first


# -- batch = one by one; the large-catalogue and large-block paths --------------------------
@pytest.mark.parametrize("scatter_limit", [None, 0])
def test_recommend_all_matches_one_by_one(
    demo_store: Store, monkeypatch: pytest.MonkeyPatch, scatter_limit: int | None
) -> None:
    from smart_suggest.recommend import _ops

    if scatter_limit is not None:  # force scipy's sparse products instead of numpy's scatter
        monkeypatch.setattr(_ops, "SCATTER_LIMIT", scatter_limit)
    tracking.add_user(demo_store, "fresh")  # a cold user too
    tracking.add_item(demo_store, "Noise-free earbuds", "electronics", "bluetooth earbuds")
    engine = Recommender(demo_store)
    for strategy in STRATEGIES:
        everyone = dict(engine.recommend_all(strategy, 5))
        assert len(everyone) == 51
        for user_id, recs in everyone.items():
            one = engine.recommend(user_id, strategy, 5)
            assert ids(recs) == ids(one)
            assert [r.score for r in recs] == pytest.approx([r.score for r in one])
            assert [r.reason for r in recs] == [r.reason for r in one]
        plain = dict(engine.recommend_all(strategy, 5, explain=False))
        assert {u: ids(r) for u, r in plain.items()} == {u: ids(r) for u, r in everyone.items()}


def test_large_catalogue_keeps_only_the_top_similar_items(
    demo_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smart_suggest.recommend import snapshot as snapshot_module

    exact = build_snapshot(demo_store).catalogue.similarity.toarray()
    monkeypatch.setattr(snapshot_module, "EXACT_ITEM_LIMIT", 5)
    monkeypatch.setattr(snapshot_module, "TOP_SIMILAR", 3)
    top = build_snapshot(demo_store).catalogue.similarity
    assert np.diff(top.indptr).max() <= 3
    for row in range(top.shape[0]):
        kept = top[row].toarray().ravel()
        best = np.sort(exact[row])[::-1][:3]
        assert np.sort(kept[kept > 0])[::-1] == pytest.approx(best[best > 0])
    recs = Recommender(demo_store).recommend(1, "v2", 5)
    assert len(recs) == 5


# -- quality on data with planted taste clusters ------------------------------------------
def test_v1_and_v2_beat_popular_on_clustered_data(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smart_suggest import sample
    from smart_suggest.evaluate import evaluate
    from smart_suggest.sample import SyntheticSpec, generate

    # Taste only: with MovieLens-like popularity (the default) popular is hard to beat in a
    # 70-item catalogue, and this test is about finding the planted tastes.
    monkeypatch.setattr(sample, "POPULARITY_SIGMA", 0.0)
    generate(store, SyntheticSpec(users=200, items=70, interactions=6_000, events=0))
    result = {r.strategy: r for r in evaluate(store, k=10).results}
    popular = result["popular"].ndcg
    assert result["v1"].ndcg > 1.5 * popular
    assert result["v2"].ndcg > 1.5 * popular
