"""v3, the item-item model: EASE and RP3beta against direct computations, planted data
where the answer is known, the automatic switch by catalogue size, the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from smart_suggest import tracking
from smart_suggest.recommend import Options, Recommender, itemitem
from smart_suggest.recommend.snapshot import TIME_OFFSET, Catalogue, Snapshot, last_touch_matrix
from smart_suggest.store import Store


# -- the closed forms against direct solutions ------------------------------------------------
def test_ease_equals_the_constrained_ridge_regression_solved_column_by_column() -> None:
    """EASE's W minimises ||X - XW||^2 + lambda ||W||^2 with diag(W) = 0: with the diagonal
    fixed at zero the problem separates into one ridge regression per item on the others."""
    rng = np.random.default_rng(3)
    x = (rng.random((12, 6)) < 0.45).astype(float) * rng.integers(1, 4, size=(12, 6))
    lam = 2.5
    expected = np.zeros((6, 6))
    for j in range(6):
        others = [i for i in range(6) if i != j]
        a = x[:, others]
        expected[others, j] = np.linalg.solve(a.T @ a + lam * np.eye(5), a.T @ x[:, j])
    exact = itemitem.ease_weights(sp.csr_matrix(x), lam, np.float64)
    np.testing.assert_allclose(exact, expected, rtol=1e-9, atol=1e-12)
    single = itemitem.ease_weights(sp.csr_matrix(x), lam)  # the default: float32
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, expected, rtol=1e-4, atol=1e-6)
    assert np.all(np.diag(exact) == 0) and np.all(np.diag(single) == 0)


def test_the_gram_matrix_in_blocks_equals_one_product(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(itemitem, "GRAM_BLOCK_PAIRS", 500)
    dense = sp.random(300, 40, density=0.2, random_state=9).toarray() * 3
    dense[0, :] = 1.0  # one heavy user: more than a block on its own
    x = sp.csr_matrix(dense)
    assert (np.diff(x.indptr) ** 2).sum() > 20 * 500  # many blocks
    np.testing.assert_allclose(
        itemitem.gram(x, np.float64), (x.T @ x).toarray(), rtol=1e-12, atol=1e-12
    )


def test_ease_rejects_a_non_positive_lambda() -> None:
    with pytest.raises(ValueError, match="lambda"):
        itemitem.ease_weights(sp.csr_matrix(np.eye(3)), 0.0)


def test_rp3beta_equals_the_random_walk_written_out() -> None:
    rng = np.random.default_rng(5)
    x = (rng.random((9, 7)) < 0.5).astype(float)
    x[:, 6] = 0.0  # an item nobody touched: no walk reaches it
    alpha, beta = 0.7, 0.4
    got = itemitem.rp3beta_weights(sp.csr_matrix(x), alpha, beta, top=7).toarray()
    deg_u, deg_i = x.sum(axis=1), x.sum(axis=0)
    expected = np.zeros((7, 7))
    for i in range(7):
        for j in range(7):
            if i == j or deg_i[j] == 0:
                continue
            walk = sum(
                (x[u, i] / deg_i[i]) ** alpha * (x[u, j] / deg_u[u]) ** alpha
                for u in range(9)
                if x[u, i] and x[u, j]
            )
            expected[i, j] = walk / deg_i[j] ** beta
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    # Keeping the top 2 per row keeps exactly the two largest of each row.
    top2 = itemitem.rp3beta_weights(sp.csr_matrix(x), alpha, beta, top=2).toarray()
    assert ((top2 > 0).sum(axis=1) <= 2).all()
    for i in range(7):
        kept = np.flatnonzero(top2[i])
        assert set(kept) <= set(np.argsort(-expected[i], kind="stable")[:2])


# -- planted data -----------------------------------------------------------------------------
def two_blocks() -> Snapshot:
    """Users 0-9 use only items 0-9 (block A), users 10-19 only items 10-19 (block B)."""
    rng = np.random.default_rng(11)
    users, items = [], []
    for u in range(20):
        block = 0 if u < 10 else 10
        chosen = rng.choice(10, size=5, replace=False) + block
        users += [u] * 5
        items += chosen.tolist()
    cat = Catalogue(
        np.arange(1, 21),
        [f"user{u}" for u in range(20)],
        np.arange(1, 21),
        [f"{'A' if i < 10 else 'B'}-item{i}" for i in range(20)],
        ["a"] * 10 + ["b"] * 10,
        [""] * 20,
    )
    return Snapshot(cat, np.array(users), np.array(items), np.ones(len(users)))


@pytest.mark.parametrize("method", ["ease", "rp3beta"])
def test_a_user_of_one_block_gets_only_that_blocks_items(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if method == "rp3beta":
        monkeypatch.setattr(itemitem, "EASE_ITEM_LIMIT", 10)
    snap = two_blocks()
    strategy = itemitem.ITEM_ITEM
    options = Options(count=5, cold_items=False)
    rows = np.arange(20)
    ranking = strategy.rank(snap, rows, options)
    assert itemitem.fit(snap, options).method == method
    explained = strategy.explain(snap, ranking, options)
    seen = snap.seen_mask(rows)
    for row, recs in zip(rows.tolist(), explained, strict=True):
        block = range(1, 11) if row < 10 else range(11, 21)
        assert len(recs) == 5
        for rec in recs:
            assert rec.item_id in block, (row, rec)
            assert not seen[row, rec.item_id - 1]
            assert rec.source == "neighbours"
            # The reason names history items of the same block.
            assert rec.reason.startswith("because you liked ")
            prefix = "A-" if row < 10 else "B-"
            names = rec.reason.removeprefix("because you liked ").split(" (and")[0]
            assert all(n.startswith(prefix) for n in names.split(" and "))


def test_reason_names_the_history_items_with_the_largest_pull() -> None:
    # Items 0 and 1 always go together, item 2 is bought with 3 by other users: a user who
    # has 0 and 2 is recommended 1 because of 0 (not because of 2), and 3 because of 2.
    users = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    items = [0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 0, 2]
    cat = Catalogue(
        np.arange(1, 8),
        [f"u{u}" for u in range(7)],
        np.arange(1, 5),
        ["zero", "one", "two", "three"],
        ["c"] * 4,
        [""] * 4,
    )
    snap = Snapshot(cat, np.array(users), np.array(items), np.ones(len(users)))
    options = Options(count=2, cold_items=False, params=(("lambda", 0.5),))
    ranking = itemitem.ITEM_ITEM.rank(snap, np.array([6]), options)
    recs = itemitem.ITEM_ITEM.explain(snap, ranking, options)[0]
    by_id = {r.item_id: r.reason for r in recs}
    assert by_id[2].startswith("because you liked zero")
    assert by_id[4].startswith("because you liked two")


def test_users_without_history_get_popular_items_marked_as_such() -> None:
    snap = two_blocks()
    cat = snap.catalogue
    fresh = Catalogue(
        np.arange(1, 22),
        [*cat.usernames, "newcomer"],
        cat.item_ids,
        cat.item_names,
        ["a"] * 10 + ["b"] * 10,
        [""] * 20,
    )
    users, items = snap.matrix.nonzero()
    snap2 = Snapshot(fresh, users, items, np.ones(len(users)))
    options = Options(count=3, cold_items=False)
    ranking = itemitem.ITEM_ITEM.rank(snap2, np.array([20]), options)
    recs = itemitem.ITEM_ITEM.explain(snap2, ranking, options)[0]
    assert [r.source for r in recs] == ["popular"] * 3
    assert all(r.reason.startswith("popular (no history yet)") for r in recs)
    assert [r.item_id for r in recs] == [int(cat.item_ids[i]) for i in snap2.popular_order[:3]]


# -- the automatic switch -----------------------------------------------------------------------
def test_the_method_follows_the_catalogue_size(monkeypatch: pytest.MonkeyPatch) -> None:
    assert itemitem.method_for(itemitem.EASE_ITEM_LIMIT) == "ease"
    assert itemitem.method_for(itemitem.EASE_ITEM_LIMIT + 1) == "rp3beta"
    snap = two_blocks()  # 20 items
    options = Options(count=3, params=(("alpha", 0.9), ("beta", 0.2), ("lambda", 7.0)))
    model = itemitem.fit(snap, options)
    assert model.method == "ease" and model.params == (("lambda", 7.0), ("half_life", 20.0))
    assert isinstance(model.weights, np.ndarray)
    monkeypatch.setattr(itemitem, "EASE_ITEM_LIMIT", 19)
    model = itemitem.fit(snap, options)
    assert model.method == "rp3beta"
    assert model.params == (("alpha", 0.9), ("beta", 0.2), ("half_life", 20.0))
    assert sp.issparse(model.weights)


def test_the_fitted_model_is_reused_for_one_snapshot_and_parameter_set() -> None:
    snap = two_blocks()
    a = itemitem.fit(snap, Options())
    assert itemitem.fit(snap, Options(count=3)) is a  # count is not a model parameter
    b = itemitem.fit(snap, Options(params=(("lambda", 3.0),)))
    assert b is not a and b.params == (("lambda", 3.0), ("half_life", 20.0))
    with pytest.raises(ValueError, match="lambda"):
        itemitem.fit(snap, Options(params=(("lambda", -1.0),)))


def test_one_user_and_a_block_of_users_get_the_same_scores() -> None:
    snap = two_blocks()
    model = itemitem.fit(snap, Options())
    block = model.scores(np.arange(20))  # the matrix product path
    for row in range(20):
        np.testing.assert_allclose(model.scores(np.array([row]))[0], block[row], atol=1e-12)


# -- through the store and the command line ---------------------------------------------------
def planted_store(store: Store) -> None:
    for block in "AB":
        for i in range(8):
            tracking.add_item(store, f"{block}{i}", f"cat{block}")
    for u in range(16):
        tracking.add_user(store, f"user{u}")
    rng = np.random.default_rng(2)
    ts = 1_700_000_000.0
    for u in range(16):
        offset = 0 if u < 8 else 8
        for i in rng.choice(8, size=4, replace=False):
            ts += 60
            tracking.log_interaction(store, f"user{u}", int(i) + offset + 1, "click", ts=ts)


def test_recommend_v3_from_the_command_line(run_cli, store: Store, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    planted_store(store)
    code, out, err = run_cli("recommend", "user0", "-s", "v3", "-n", "3", "--db", db_path, "--json")
    assert code == 0, err
    recs = json.loads(out)["recommendations"]["v3"]
    assert len(recs) == 3
    assert all(r["item_id"] <= 8 and r["reason"].startswith("because you liked A") for r in recs)
    code, out, err = run_cli("recommend", "user9", "-s", "v3", "-n", "3", "--db", db_path)
    assert code == 0, err
    assert "v3: item-item model" in out and "because you liked B" in out
    # Experiments can use v3 as a variant.
    code, _, err = run_cli(
        "experiment", "create", "v3-test", "--control", "v1", "--treatment", "v3", "--db", db_path
    )
    assert code == 0, err
    code, out, err = run_cli("experiment", "serve", "v3-test", "user0", "--db", db_path, "--json")
    assert code == 0, err


def test_recommender_serves_v3_and_refits_after_a_change(store: Store) -> None:
    planted_store(store)
    engine = Recommender(store)
    before = engine.recommend(1, "v3", 3)
    assert all(r.item_id <= 8 for r in before)
    first = itemitem.fit(engine.snapshot(), engine.options("v3"))
    # user0 now also takes every B item: the new revision gets a new model.
    for item in range(9, 17):
        tracking.log_interaction(store, 1, item, "view")
    second = itemitem.fit(engine.snapshot(), engine.options("v3"))
    assert second is not first
    after = engine.recommend(1, "v3", 3)
    assert {r.item_id for r in after} <= set(range(1, 9)) - {
        i.item_id for i in tracking.history(store, 1, limit=None)
    }


def test_export_all_users_with_v3(run_cli, store: Store, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    planted_store(store)
    code, out, err = run_cli("recommend", "--all-users", "-s", "v3", "-n", "2", "--db", db_path)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "user_id,item_id,rank,score,source"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == 16 * 2
    for user_id, item_id, _rank, _score, source in rows:
        same_block = (int(user_id) <= 8) == (int(item_id) <= 8)
        assert same_block, (user_id, item_id)
        assert source  # which part of the list the row came from


# -- recency: the latest items of a history pull hardest ---------------------------------------
def test_recency_weights_halve_every_half_life_items_and_ties_share_a_rank() -> None:
    # user 0: items 0..4 at times 10, 20, 30, 30, 50; user 1: two items at the same time.
    users = np.array([0, 0, 0, 0, 0, 1, 1, 0])
    items = np.array([0, 1, 2, 3, 4, 0, 1, 0])
    times = np.array([10.0, 20.0, 30.0, 30.0, 50.0, 7.0, 7.0, 5.0])  # item 0 again, earlier
    touch = last_touch_matrix(users, items, times, (2, 5))
    assert touch.toarray()[0, 0] == 10.0 + TIME_OFFSET  # the latest time of a pair
    w = itemitem.recency_weights(touch, 2.0)
    got = sp.csr_matrix((w, touch.indices, touch.indptr), shape=(2, 5)).toarray()
    # ranks of user 0: item 4 -> 0, items 2 and 3 -> 1 (tied), item 1 -> 3, item 0 -> 4
    np.testing.assert_allclose(got[0], 0.5 ** (np.array([4, 3, 1, 1, 0]) / 2.0))
    np.testing.assert_allclose(got[1], [1.0, 1.0, 0, 0, 0])  # same time: nothing re-weighted
    assert np.all(itemitem.recency_weights(touch, 0.0) == 1.0)  # 0: off


def test_with_recency_the_latest_block_of_a_history_decides() -> None:
    """Planted order: a user first used block A for a long time, then moved to block B.
    Without recency the larger A part wins; with it, the B items come first."""
    base = two_blocks()
    cat = base.catalogue
    coo = base.matrix.tocoo()
    users, items = list(coo.row), list(coo.col)
    times = [1.0] * len(users)
    # user 0 (block A) has 5 A items at times 1; give them 3 B items, touched later.
    for k, item in enumerate((10, 11, 12)):
        users.append(0)
        items.append(item)
        times.append(100.0 + k)
    u, i = np.array(users), np.array(items)
    snap = Snapshot(cat, u, i, np.ones(len(u)), times=np.array(times))
    engine_opts = {h: Options(count=4, params=(("half_life", h),)) for h in (0.0, 1.0)}
    tops = {}
    for h, options in engine_opts.items():
        ranking = itemitem.ITEM_ITEM.rank(snap, np.array([0]), options)
        tops[h] = ranking.items[0][:4].tolist()
    assert all(j < 10 for j in tops[0.0][:2])  # history mostly A: A items lead
    assert all(j >= 10 for j in tops[1.0][:2])  # the latest items are B: B items lead
    # The same weights (one fit) serve both: only the history is re-weighted.
    a = itemitem.fit(snap, engine_opts[0.0])
    b = itemitem.fit(snap, engine_opts[1.0])
    assert a.weights is b.weights and a.history is not b.history
    recs = itemitem.ITEM_ITEM.explain(
        snap, itemitem.ITEM_ITEM.rank(snap, np.array([0]), engine_opts[1.0]), engine_opts[1.0]
    )[0]
    assert "B-item" in recs[0].reason.split(" and ")[0]  # explained by the recent items


def test_the_served_snapshot_keeps_the_latest_time_per_pair_through_updates(
    store: Store,
) -> None:
    from smart_suggest.recommend.incremental import update
    from smart_suggest.recommend.snapshot import build_snapshot

    with store.write() as conn:
        conn.execute("INSERT INTO users(id, username, created_at) VALUES (1, 'ann', 0)")
        for item_id in (1, 2, 3):
            conn.execute(
                "INSERT INTO items(id, name, category, created_at) VALUES (?, ?, 'x', 0)",
                (item_id, f"item {item_id}"),
            )
    tracking.log_interaction(store, 1, 1, "view", ts=1_000.7)
    tracking.log_interaction(store, 1, 2, "view", ts=2_000.0)
    snap = build_snapshot(store)
    assert snap.last_touch is not None
    assert snap.last_touch.toarray()[0, :2].tolist() == [1_000 + TIME_OFFSET, 2_000 + TIME_OFFSET]
    tracking.log_interaction(store, 1, 1, "click", ts=3_000.0)  # item 1 again, latest now
    tracking.log_interaction(store, 1, 3, "view", ts=2_500.0)
    updated = update(store, snap)
    assert updated is not None and updated is not snap and updated.last_touch is not None
    fresh = build_snapshot(store)
    assert fresh.last_touch is not None
    np.testing.assert_array_equal(updated.last_touch.toarray(), fresh.last_touch.toarray())
    assert fresh.last_touch.toarray()[0].tolist() == [
        3_000 + TIME_OFFSET,
        2_000 + TIME_OFFSET,
        2_500 + TIME_OFFSET,
    ]
    assert updated.last_touch.nnz == updated.matrix.nnz
