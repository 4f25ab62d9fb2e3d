"""Incremental snapshot updates: after any sequence of writes, the updated snapshot holds
exactly what a full build of the same data holds (matrices and recommendations)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smart_suggest import tracking
from smart_suggest.recommend import Recommender, build_snapshot, incremental
from smart_suggest.recommend.snapshot import Snapshot
from smart_suggest.store import Store, open_store

ACTIONS = ("view", "click", "purchase")


def assert_same(a: Snapshot, b: Snapshot) -> None:
    """Bit for bit: the same catalogue, matrix, derived matrices and counts."""
    assert a.revision == b.revision
    assert a.marks == b.marks
    ca, cb = a.catalogue, b.catalogue
    assert ca.user_ids.tolist() == cb.user_ids.tolist()
    assert ca.usernames == cb.usernames
    assert ca.item_ids.tolist() == cb.item_ids.tolist()
    assert ca.item_names == cb.item_names
    assert ca.categories == cb.categories
    assert ca.item_category.tolist() == cb.item_category.tolist()
    assert (ca.features != cb.features).nnz == 0
    assert (ca.similarity != cb.similarity).nnz == 0
    for name in ("matrix", "normalized", "normalized_t"):
        ma, mb = getattr(a, name), getattr(b, name)
        assert ma.shape == mb.shape, name
        assert (ma != mb).nnz == 0, name
        assert ma.indptr.tolist() == mb.indptr.tolist(), name
        assert ma.indices.tolist() == mb.indices.tolist(), name
    assert a.interaction_count == b.interaction_count
    for name in ("item_interactions", "item_weight", "item_users", "history_length"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist(), name
    assert a.popular_order.tolist() == b.popular_order.tolist()
    assert a.cold_items.tolist() == b.cold_items.tolist()


def all_recommendations(engine: Recommender, user_ids: list[int]) -> dict[str, object]:
    out: dict[str, object] = {}
    for strategy in ("v1", "v2", "popular"):
        out[strategy] = [
            [(r.item_id, r.score, r.reason, r.source) for r in engine.recommend(u, strategy, 5)]
            for u in user_ids
        ]
    return out


# One write: ("user",), ("item", category, words) or ("log", user pick, item pick, action).
WRITE = st.one_of(
    st.tuples(st.just("user")),
    st.tuples(
        st.just("item"),
        st.sampled_from(["books", "home", "garden-new"]),
        st.lists(st.sampled_from(["lamp", "warm", "desk", "novel", "zebra"]), max_size=4),
    ),
    st.tuples(
        st.just("log"),
        st.integers(0, 10_000),
        st.integers(0, 10_000),
        st.sampled_from(ACTIONS),
    ),
)


def apply(store: Store, write: tuple[object, ...], serial: list[int]) -> None:
    serial[0] += 1
    if write[0] == "user":
        tracking.add_user(store, f"new-user-{serial[0]}")
    elif write[0] == "item":
        words = " ".join(str(w) for w in write[2])  # type: ignore[union-attr]
        tracking.add_item(store, f"New item {serial[0]}", str(write[1]), words)
    else:
        users = [r[0] for r in store.conn.execute("SELECT id FROM users ORDER BY id")]
        items = [r[0] for r in store.conn.execute("SELECT id FROM items ORDER BY id")]
        user = users[int(write[1]) % len(users)]  # type: ignore[call-overload]
        item = items[int(write[2]) % len(items)]  # type: ignore[call-overload]
        tracking.log_interaction(store, user, item, str(write[3]))


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(WRITE, min_size=1, max_size=6), min_size=1, max_size=4))
def test_incremental_equals_full_build(
    demo_template: Path, tmp_path_factory: pytest.TempPathFactory, batches: list[list[tuple]]
) -> None:
    path = tmp_path_factory.mktemp("inc") / "demo.db"
    shutil.copy(demo_template, path)
    with open_store(path) as store:
        engine = Recommender(store)
        engine.snapshot()
        serial = [0]
        for batch in batches:
            before = engine.snapshot()
            for write in batch:
                apply(store, write, serial)
            updated = engine.snapshot()
            assert updated is not before
            fresh = build_snapshot(store)
            assert_same(updated, fresh)
            # The update was applied row by row (not a rebuild behind our back).
            assert updated.catalogue.n_users >= before.catalogue.n_users
            users = store.conn.execute("SELECT id FROM users ORDER BY id").fetchall()
            sample = [users[0][0], users[len(users) // 2][0], users[-1][0]]
            assert all_recommendations(engine, sample) == all_recommendations(
                Recommender(store), sample
            )


def test_update_is_incremental_for_appends(demo_store: Store) -> None:
    snap = build_snapshot(demo_store)
    tracking.log_interaction(demo_store, "alice", 5, "click")
    alice = tracking.get_user(demo_store, "alice").id
    newer = incremental.update(demo_store, snap)
    assert newer is not None and newer is not snap
    row = newer.catalogue.user_index(alice)
    col = newer.catalogue.item_index(5)
    assert newer.matrix[row, col] == snap.matrix[row, col] + 3.0
    assert newer.item_interactions[col] == snap.item_interactions[col] + 1
    # Unchanged item side: the content model is shared, not rebuilt.
    assert newer.catalogue is snap.catalogue
    tracking.add_user(demo_store, "zoe-new")
    newest = incremental.update(demo_store, newer)
    assert newest is not None
    assert newest.catalogue.n_users == newer.catalogue.n_users + 1
    assert newest.catalogue.__dict__.get("features") is newer.catalogue.__dict__.get("features")


def test_edits_and_deletes_force_a_rebuild(demo_store: Store) -> None:
    snap = build_snapshot(demo_store)
    with demo_store.write() as conn:
        conn.execute("UPDATE items SET description = 'changed words' WHERE id = 1")
    assert incremental.update(demo_store, snap) is None
    snap = build_snapshot(demo_store)
    with demo_store.write() as conn:
        conn.execute("DELETE FROM interactions WHERE id = (SELECT max(id) FROM interactions)")
    assert incremental.update(demo_store, snap) is None
    snap = build_snapshot(demo_store)
    # Delete the last interaction and insert another: same count, same max id, but the
    # revision moved by two for one new row.
    with demo_store.write() as conn:
        last = conn.execute("SELECT max(id) FROM interactions").fetchone()[0]
        conn.execute("DELETE FROM interactions WHERE id = ?", (last,))
    tracking.log_interaction(demo_store, "alice", 2, "view")
    assert incremental.update(demo_store, snap) is None


def test_too_many_rows_is_a_rebuild(demo_store: Store) -> None:
    snap = build_snapshot(demo_store)
    for item in (1, 2, 3):
        tracking.log_interaction(demo_store, "alice", item, "view")
    assert incremental.update(demo_store, snap, row_limit=2) is None
    assert incremental.update(demo_store, snap, row_limit=3) is not None


def test_large_change_rebuilds_in_background_while_old_snapshot_serves(
    demo_store: Store,
) -> None:
    done = threading.Event()
    engine = Recommender(demo_store, background=True, on_rebuilt=done.set)
    old = engine.snapshot()
    alice = tracking.get_user(demo_store, "alice").id
    # A bulk load bumps the revision once for many rows: too large to apply row by row.
    with demo_store.bulk_load(("interactions",), drop_indexes=False) as conn:
        conn.executemany(
            "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (?, ?, 'view', 0)",
            [(alice, item) for item in range(1, 11)],
        )
    served = engine.snapshot()
    assert served is old or served.revision == demo_store.revision("catalog")
    assert done.wait(30)
    assert not engine.rebuilding
    fresh = engine.snapshot()
    assert fresh is not old
    assert_same(fresh, build_snapshot(demo_store))


def test_unknown_user_waits_for_the_rebuild(demo_store: Store) -> None:
    engine = Recommender(demo_store, background=True)
    engine.snapshot()
    with demo_store.bulk_load(("users",), drop_indexes=False) as conn:
        conn.executemany(
            "INSERT INTO users(username, created_at) VALUES (?, 0)",
            [(f"bulk-{k}",) for k in range(5)],
        )
    new_id = tracking.get_user(demo_store, "bulk-3").id
    recs = engine.recommend(new_id, "popular", 3)
    assert len(recs) == 3


def test_start_builds_ahead(demo_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import smart_suggest.recommend as rec

    engine = Recommender(demo_store, background=True)
    engine.start()
    thread = engine._rebuild
    assert thread is not None
    thread.join(30)
    assert not engine.rebuilding
    # Built ahead: asking now builds nothing more.
    monkeypatch.setattr(rec, "build_snapshot", lambda store: pytest.fail("built again"))
    snap = engine.snapshot()
    assert snap.revision == demo_store.revision("catalog")
    assert np.array_equal(snap.matrix.toarray(), build_snapshot(demo_store).matrix.toarray())
