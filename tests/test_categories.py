"""Items with several categories: schema v6, display, exports, v2 features, fallbacks."""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from smart_suggest import store as store_mod
from smart_suggest import tracking
from smart_suggest.portability import export_all, import_all
from smart_suggest.recommend import Recommender
from smart_suggest.recommend.content import NO_CONTENT_NOTE, content_scores
from smart_suggest.recommend.snapshot import CATEGORY_WEIGHT, build_snapshot
from smart_suggest.store import Store, open_store


def v4_database(path: Path) -> None:
    """A database as the schema-v4 release wrote it, with items and interactions."""
    conn = sqlite3.connect(path, isolation_level=None)
    for version in (1, 2, 3, 4):
        for statement in store_mod._split_sql(store_mod.MIGRATIONS[version]):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 4")
    conn.execute(f"PRAGMA application_id = {store_mod.APPLICATION_ID}")
    conn.execute("INSERT INTO users VALUES (1, 'ann', 0)")
    conn.executemany(
        "INSERT INTO items VALUES (?, ?, ?, '', 0)",
        [(1, "Lamp", "home"), (2, "Novel", "books"), (3, "item 3", "unknown")],
    )
    conn.execute("INSERT INTO interactions(user_id, item_id, action, ts) VALUES (1, 1, 'view', 5)")
    conn.close()


def test_v4_database_migrates_to_v6_keeping_categories(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    v4_database(path)
    with open_store(path) as s:
        assert s.scalar("PRAGMA user_version") == store_mod.SCHEMA_VERSION
        assert s.query("SELECT * FROM item_categories ORDER BY item_id") == [
            {"item_id": 1, "category": "home", "position": 0},
            {"item_id": 2, "category": "books", "position": 0},
        ]  # "unknown" was the placeholder for none
        assert tracking.get_item(s, 1).categories == ("home",)
        assert tracking.get_item(s, 3).categories == ()
        revision = s.revision()
        with s.write() as conn:
            tracking.set_categories(conn, 2, ("books", "fiction"))
        assert s.revision() > revision  # categories feed v2: the catalogue changed
        assert tracking.get_item(s, 2).categories == ("books", "fiction")


def test_single_category_writes_stay_consistent(store: Store) -> None:
    """Code that knows only items.category (as before v6) keeps the two in step."""
    store.conn.execute("INSERT INTO items(id, name, category, created_at) VALUES (7, 'x', 'a', 0)")
    assert tracking.get_item(store, 7).categories == ("a",)
    tracking.add_item(store, "Multi", ["b", "c", "b"], item_id=8)
    store.conn.execute("UPDATE items SET category = 'z' WHERE id = 8")
    assert tracking.get_item(store, 8).categories == ("z",)
    store.conn.execute("UPDATE items SET category = 'unknown' WHERE id = 8")
    assert tracking.get_item(store, 8).categories == ()


def test_items_add_with_several_categories(run_cli, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli(
        "items",
        "add",
        "Heat",
        "--category",
        "Action",
        "--category",
        "Crime",
        "--db",
        db_path,
        "--json",
    )
    assert code == 0, err
    added = json.loads(out)
    assert added["category"] == "Action" and added["categories"] == ["Action", "Crime"]
    code, out, _ = run_cli("items", "show", str(added["id"]), "--db", db_path)
    assert "categories Action|Crime" in out
    code, out, _ = run_cli("items", "list", "--category", "Crime", "--db", db_path)
    assert "Heat" in out and "Action|Crime" in out
    code, out, _ = run_cli("items", "list", "--category", "Drama", "--db", db_path)
    assert "Heat" not in out


def catalogue(store: Store, items: dict[int, tuple[str, ...]], history: list[tuple[int, int]]):  # type: ignore[no-untyped-def]
    with store.write() as conn:
        conn.execute("INSERT INTO users VALUES (1, 'ann', 0), (2, 'bob', 0)")
        for item_id, cats in items.items():
            conn.execute(
                "INSERT INTO items(id, name, category, created_at) VALUES (?, ?, ?, 0)",
                (item_id, f"film {item_id}", tracking.primary_category(cats)),
            )
            tracking.set_categories(conn, item_id, cats)
        conn.executemany(
            "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (?, ?, 'purchase', 1)",
            history,
        )


def test_items_sharing_two_of_three_genres_are_similar(store: Store) -> None:
    catalogue(
        store,
        {
            1: ("Action", "Adventure", "Thriller"),
            2: ("Action", "Thriller"),
            3: ("Comedy", "Romance"),
            4: ("Action", "Comedy", "Drama"),
        },
        [(1, 1), (2, 3)],
    )
    snap = build_snapshot(store)
    cat = snap.catalogue
    x = cat.features.toarray()
    # An item's categories weigh CATEGORY_WEIGHT together, shared out by idf
    # ln((1 + 4) / (1 + df)) + 1: Action (df 3), Comedy (2), Thriller (2), the rest (1).
    idf = {c: math.log(5 / (1 + df)) + 1 for c, df in (("Action", 3), ("Comedy", 2))}
    idf |= {"Thriller": idf["Comedy"], "Adventure": math.log(5 / 2) + 1}
    idf |= {"Romance": idf["Adventure"], "Drama": idf["Adventure"]}

    def vector(cats: tuple[str, ...]) -> np.ndarray:
        v = np.zeros(len(cat.categories))
        for c in cats:
            v[cat.categories.index(c)] = idf[c]
        return v / np.linalg.norm(v)

    films = [("Action", "Adventure", "Thriller"), ("Action", "Thriller"), ("Comedy", "Romance")]
    films.append(("Action", "Comedy", "Drama"))
    expected = np.array([vector(f) for f in films])
    assert x == pytest.approx(expected)  # no description: the categories are the vector
    assert cat.features.nnz == 3 + 2 + 2 + 3
    sims = x @ x.T
    assert sims[0, 1] == pytest.approx(expected[0] @ expected[1])
    assert sims[0, 1] > 0.7 and 0 < sims[0, 3] < 0.3  # two shared genres of three, then one
    assert sims[0, 2] == 0.0
    # Before normalising, each item's categories together weigh CATEGORY_WEIGHT.
    from smart_suggest.recommend.snapshot import category_features

    block = category_features(cat.item_category_sets, len(cat.categories)).toarray()
    assert np.linalg.norm(block, axis=1) == pytest.approx([CATEGORY_WEIGHT] * 4)
    recs = Recommender(store).recommend(1, "v2", 3)
    assert [r.item_id for r in recs][:2] == [2, 4] and recs[0].source == "content"
    assert f"film 1 ({sims[0, 1]:.2f})" in recs[0].reason


def test_sharing_two_of_three_genres_reaches_an_item_the_joined_genre_string_missed(
    store: Store,
) -> None:
    """What multi-valued categories changed: with the whole genre string as one category
    (v2 before), "Action|Thriller" had nothing in common with "Action|Adventure|Thriller"."""
    from smart_suggest.recommend.snapshot import Catalogue, Snapshot

    catalogue(
        store,
        {
            1: ("Action", "Adventure", "Thriller"),
            2: ("Action", "Thriller"),
            3: ("Comedy", "Romance"),
            4: ("Comedy", "Romance"),
            5: ("Drama",),
        },
        [(1, 1), (2, 3), (2, 4), (2, 5)],
    )
    engine = Recommender(store)
    recs = engine.recommend(1, "v2", 4)
    assert recs[0].item_id == 2 and recs[0].source == "content"
    x = engine.snapshot().catalogue.features
    sim = float((x[0] @ x[1].T).toarray()[0, 0])
    assert 0.7 < sim < 0.8  # two genres of three shared; Adventure is the rarest
    assert recs[0].reason == f"resembles film 1 ({sim:.2f})"
    assert all(r.source != "content" for r in recs[1:])  # no genre in common with film 1
    # The same ratings with each genre string joined into one category: film 2 is a stranger.
    snap = engine.snapshot()
    cat = snap.catalogue
    joined = Catalogue(
        cat.user_ids,
        cat.usernames,
        cat.item_ids,
        cat.item_names,
        ["|".join(cat.categories[c] for c in cats) for cats in cat.item_category_sets],
        cat.descriptions,
    )
    users, items = snap.matrix.nonzero()
    before = Snapshot(joined, users, items, snap.matrix.data)
    assert content_scores(before, np.array([0]))[0, 1] == 0.0
    assert content_scores(snap, np.array([0]))[0, 1] == pytest.approx(sim * 5.0)  # a purchase


def test_equal_scores_go_to_the_more_chosen_item_and_cold_items_stay_reachable(
    store: Store,
) -> None:
    """Films 2 and 3 resemble film 1 equally: the one more users chose ranks first, whatever
    the ids. A cold film (no interaction yet) more similar than both still ranks above."""
    catalogue(
        store,
        {
            1: ("Action", "Adventure", "Thriller"),
            2: ("Action", "Thriller"),
            3: ("Action", "Thriller"),
            4: ("Action", "Adventure", "Thriller"),
            5: ("Drama",),
        },
        [(1, 1), (2, 3), (2, 5)],
    )
    engine = Recommender(store)
    recs = engine.recommend(1, "v2", 3)
    assert [r.item_id for r in recs] == [4, 3, 2]
    assert [r.source for r in recs] == ["content"] * 3
    assert engine.snapshot().item_interactions[3] == 0  # film 4 is cold
    assert recs[0].score == pytest.approx(5.0)  # identical genres: cosine 1 x a purchase
    assert recs[1].score == recs[2].score < recs[0].score
    assert recs[1].reason == recs[2].reason == f"resembles film 1 ({recs[1].score / 5:.2f})"


def test_no_text_and_no_categories_falls_back_to_popular(
    store: Store, run_cli, db_path: Path
) -> None:  # type: ignore[no-untyped-def]
    catalogue(store, {1: (), 2: (), 3: (), 4: ()}, [(1, 1), (2, 3), (2, 4), (1, 4)])
    engine = Recommender(store)
    recs = engine.recommend(1, "v2", 3)
    assert [r.item_id for r in recs] == [3]  # popular unseen, never "lowest id first"
    assert {r.source for r in recs} == {"popular"}
    assert "no item text or categories" in recs[0].reason and "resembles" not in recs[0].reason
    assert engine.note("v2") == NO_CONTENT_NOTE and engine.note("v1") == ""
    code, out, err = run_cli("recommend", "ann", "-s", "v2", "--db", db_path)
    assert code == 0 and err.count("\n") == 1 and "nothing to compare" in err
    code, out, err = run_cli("recommend", "ann", "-s", "v2", "--db", db_path, "--json")
    assert json.loads(out)["notes"] == [NO_CONTENT_NOTE]


def test_export_and_import_all_keep_categories(store: Store, tmp_path: Path, db_rows) -> None:  # type: ignore[no-untyped-def]
    catalogue(store, {1: ("a", "b"), 2: ("c",)}, [(1, 1)])
    out = tmp_path / "export"
    report = export_all(store, out)
    assert report.tables["item_categories"] == 3
    with open_store(tmp_path / "copy.db") as copy:
        import_all(copy, out)
        assert tracking.get_item(copy, 1).categories == ("a", "b")
    assert db_rows(tmp_path / "copy.db") == db_rows(store.path)


def test_an_export_from_before_v6_derives_the_categories(store: Store, tmp_path: Path) -> None:
    catalogue(store, {1: ("a", "b"), 2: ("c",), 3: ()}, [(1, 1)])
    out = tmp_path / "export"
    export_all(store, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["schema_version"] = 4
    del manifest["tables"]["item_categories"]
    (out / "item_categories.jsonl").unlink()
    (out / "manifest.json").write_text(json.dumps(manifest))
    with open_store(tmp_path / "copy.db") as copy:
        report = import_all(copy, out)
        assert report.tables["item_categories"] == 2
        assert [tracking.get_item(copy, i).categories for i in (1, 2, 3)] == [("a",), ("c",), ()]


def test_all_users_export_has_exactly_count_rows_and_a_source(
    run_cli, demo_store: Store, db_path: Path
) -> None:  # type: ignore[no-untyped-def]
    alice = tracking.get_user(demo_store, "alice")
    liked = tracking.get_item(demo_store, tracking.history(demo_store, alice.id)[0].item_id)
    for k in range(5):  # cold items like hers: the interactive view shows them below
        tracking.add_item(demo_store, f"New {k}", [liked.category, "new"], liked.description)
    interactive = Recommender(demo_store).recommend(alice.id, "v1", 3)
    assert len(interactive) > 3 and interactive[-1].source == "cold-item"
    code, out, err = run_cli("recommend", "--all-users", "-n", "3", "--db", db_path)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["user_id", "item_id", "rank", "score", "source"]
    per_user: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        per_user.setdefault(r["user_id"], []).append(r)
    assert len(per_user) == 50 and {len(v) for v in per_user.values()} == {3}
    assert {r["source"] for r in rows} <= {"neighbours", "popular"}
    assert [r["source"] for r in per_user[str(alice.id)]] == [x.source for x in interactive[:3]]


def test_cold_item_scores_are_the_content_scores_of_the_cold_items(demo_store: Store) -> None:
    for k in range(6):
        tracking.add_item(demo_store, f"Cold {k}", ["books", "home"][k % 2], f"novel lamp {k}")
    snap = build_snapshot(demo_store)
    rows = np.arange(snap.catalogue.n_users)
    fast = (snap.matrix[rows] @ snap.cold_similarity).toarray()
    # v1's cold fill weighs a history by the action weights alone (no recency, unlike v2)
    slow = content_scores(snap, rows, snap.matrix)[:, snap.cold_items]
    assert len(snap.cold_items) == 6 and fast.any()
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)


def test_an_appended_item_keeps_everyones_categories_in_the_snapshot(store: Store) -> None:
    """The in-place snapshot update (new rows only) keeps items' several categories."""
    catalogue(store, {1: ("a", "b"), 2: ("c",)}, [(1, 1)])
    engine = Recommender(store)
    before = engine.snapshot()
    store.conn.execute(  # an item with no category, as an import's placeholder
        "INSERT INTO items(id, name, category, created_at) VALUES (3, 'item 3', 'unknown', 0)"
    )
    store.conn.execute(
        "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (2, 3, 'view', 2)"
    )
    after = engine.snapshot()
    cat = after.catalogue
    names = [tuple(cat.categories[k] for k in ks) for ks in cat.item_category_sets]
    assert names == [("a", "b"), ("c",), ()]
    assert after is not before
