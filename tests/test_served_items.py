"""Schema v10: ``served_items`` (was an item shown to a user in an experiment?) and the
follow-ups logged apart as unserved."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from smart_suggest import store as store_mod
from smart_suggest.errors import InputError
from smart_suggest.experiments.events import log_event, was_served
from smart_suggest.experiments.lifecycle import create_experiment, delete_experiment
from smart_suggest.experiments.serving import serve
from smart_suggest.experiments.simulate import simulate
from smart_suggest.store import Store, open_store


def _v9_database(path: Path) -> None:
    """A database as v9 left it: one experiment, impressions (one repeated), a click."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for v in sorted(v for v in store_mod.MIGRATIONS if v <= 9):
        store_mod.apply_migration(conn, v)
    conn.execute("PRAGMA user_version = 9")
    conn.execute(f"PRAGMA application_id = {store_mod.APPLICATION_ID}")
    conn.executemany(
        "INSERT INTO users(id, username, created_at) VALUES (?, ?, 0)",
        [(1, "ann"), (2, "bo")],
    )
    conn.executemany(
        "INSERT INTO items(id, name, category, created_at) VALUES (?, ?, 'books', 0)",
        [(i, f"item {i}") for i in (1, 2, 3)],
    )
    conn.execute(
        "INSERT INTO experiments(id, name, control, treatment, traffic_fraction, "
        "treatment_share, created_at) VALUES (1, 'e', 'v1', 'v2', 1.0, 0.5, 0)"
    )
    conn.executemany("INSERT INTO assignments VALUES (1, ?, ?, 5)", [(1, "A"), (2, "B")])
    conn.executemany(
        "INSERT INTO events(experiment_id, variant, user_id, item_id, type, ts) "
        "VALUES (1, ?, ?, ?, ?, 100)",
        [("A", 1, 1, "impression"), ("A", 1, 1, "impression"), ("A", 1, 2, "impression"),
         ("B", 2, 3, "impression"), ("A", 1, 1, "click")],
    )  # fmt: skip
    conn.execute("COMMIT")
    conn.close()


def test_v9_database_migrates_with_its_served_items(tmp_path: Path) -> None:
    path = tmp_path / "v9.db"
    _v9_database(path)
    with open_store(path) as store:
        assert store.scalar("PRAGMA user_version") == store_mod.SCHEMA_VERSION >= 10
        pairs = store.conn.execute(
            "SELECT experiment_id, user_id, item_id FROM served_items ORDER BY 1, 2, 3"
        ).fetchall()
        assert pairs == [(1, 1, 1), (1, 1, 2), (1, 2, 3)]
        assert was_served(store, 1, 1, 2) and not was_served(store, 1, 1, 3)
        # The click already logged stays an event; new ones are checked against the index.
        with pytest.raises(InputError, match="never served"):
            log_event(store, 1, "ann", 3, "click")
        log_event(store, 1, "bo", 3, "purchase")
        assert store.scalar("SELECT COUNT(*) FROM events WHERE type != 'impression'") == 2
        assert store.scalar("SELECT COUNT(*) FROM unserved_events") == 0
        # The lookup is a primary-key seek, not a scan of the events.
        plan = " ".join(
            str(r[-1])
            for r in store.conn.execute(
                "EXPLAIN QUERY PLAN SELECT 1 FROM served_items "
                "WHERE experiment_id = 1 AND user_id = 1 AND item_id = 1"
            )
        )
        assert "USING PRIMARY KEY" in plan and "events" not in plan


def test_migration_to_v10_can_run_again(tmp_path: Path) -> None:
    # Another version's migrations may be re-applied over it (numbers reserved apart).
    path = tmp_path / "v9.db"
    _v9_database(path)
    with open_store(path):
        pass
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    store_mod.apply_migration(conn, 10)
    conn.execute("COMMIT")
    assert conn.execute("SELECT COUNT(*) FROM served_items").fetchone()[0] == 3
    conn.close()


def _pairs(store: Store) -> list[tuple[int, int, int]]:
    return store.conn.execute(
        "SELECT experiment_id, user_id, item_id FROM served_items ORDER BY 1, 2, 3"
    ).fetchall()


def _recount(store: Store) -> list[tuple[int, int, int]]:
    return store.conn.execute(
        "SELECT DISTINCT experiment_id, user_id, item_id FROM events "
        "WHERE type = 'impression' AND item_id IS NOT NULL ORDER BY 1, 2, 3"
    ).fetchall()


def test_every_write_path_keeps_served_items(demo_store: Store) -> None:
    store = demo_store
    assert _pairs(store) == _recount(store) != []  # the demo seed (a bulk load)
    exp = create_experiment(store, "served")
    shown = serve(store, exp.id, "alice", count=4)  # impressions through the trigger
    assert _pairs(store) == _recount(store)
    for rec in shown.recommendations:
        assert was_served(store, exp.id, shown.user_id, rec.item_id)
    simulate(store, exp.id, users=200, days=2, seed=3)  # the bulk path
    assert _pairs(store) == _recount(store)
    delete_experiment(store, exp.id)
    assert _pairs(store) == _recount(store)
    assert store.scalar("SELECT COUNT(*) FROM served_items WHERE experiment_id = ?", [exp.id]) == 0


def test_unserved_events_go_with_their_experiment_and_revision(demo_store: Store) -> None:
    store = demo_store
    exp = create_experiment(store, "gone")
    serve(store, exp.id, "alice", count=2)
    before = store.revision("experiments")
    item = _never_shown(store, exp.id, 1)  # alice is user 1
    event = log_event(store, exp.id, "alice", item, "click", unserved=True)
    assert event.unserved and store.revision("experiments") > before
    assert store.scalar("SELECT COUNT(*) FROM unserved_events") == 1
    delete_experiment(store, exp.id)
    assert store.scalar("SELECT COUNT(*) FROM unserved_events") == 0


def test_results_and_analyze_show_unserved_apart(demo_store: Store, run_cli) -> None:  # type: ignore[no-untyped-def]
    import json

    demo, exp = demo_store.path, "homepage-recs-v1-vs-v2"
    item = str(
        demo_store.scalar(
            "SELECT MIN(id) FROM items WHERE id NOT IN (SELECT item_id FROM served_items "
            "WHERE experiment_id = 1 AND user_id = 1)"
        )
    )
    code, out, err = run_cli("experiment", "log", exp, "alice", item, "click", "--db", demo)
    assert code == 2 and "never served" in err
    before = json.loads(run_cli("analyze", exp, "--json", "--db", demo)[1])
    code, out, err = run_cli(
        "experiment", "log", exp, "alice", item, "click", "--unserved", "--db", demo
    )
    assert code == 0 and "counted apart" in out.replace("\n", " "), err
    after = json.loads(run_cli("analyze", exp, "--json", "--db", demo)[1])
    assert after["unserved"]["click"] == 1 and "unserved" not in before
    # Not one number of the analysis moved (only the data revision it was read at).
    del after["unserved"]
    assert after.pop("revision") > before.pop("revision")
    assert after == before
    code, _, err = run_cli("analyze", exp, "--db", demo)
    assert code == 0 and "not analysed: 1 clicks" in err.replace("\n", " ")
    res = json.loads(run_cli("experiment", "results", exp, "--json", "--db", demo)[1])
    assert res["unserved"]["click"] == 1


def test_export_and_import_keep_unserved_events_and_served_items(
    demo_store: Store, tmp_path: Path
) -> None:
    from smart_suggest.portability import export_all, import_all

    store = demo_store
    log_event(store, 1, "alice", _never_shown(store, 1, 1), "click", unserved=True)
    export_all(store, tmp_path / "export")
    with open_store(tmp_path / "copy.db") as copy:
        import_all(copy, tmp_path / "export")
        assert copy.query("SELECT * FROM unserved_events") == store.query(
            "SELECT * FROM unserved_events"
        )
        assert _pairs(copy) == _pairs(store) == _recount(copy)


def _never_shown(store: Store, experiment_id: int, user_id: int) -> int:
    return int(
        store.scalar(
            "SELECT MIN(id) FROM items WHERE id NOT IN (SELECT item_id FROM served_items "
            "WHERE experiment_id = ? AND user_id = ?)",
            (experiment_id, user_id),
        )
    )


def test_packed_and_plain_served_inserts_agree(demo_store: Store) -> None:
    import numpy as np

    from smart_suggest.experiments.events import add_served_columns, bulk_write

    store = demo_store
    exp = create_experiment(store, "packed")
    small = (np.array([1, 1, 2]), np.array([3, 5, 3]))
    big = (np.array([2, 2**31 + 7]), np.array([2**40, 4]))  # ids beyond 31 bits: row by row
    with bulk_write(store):
        add_served_columns(store, exp.id, *small)
        add_served_columns(store, exp.id, *big)
        add_served_columns(store, exp.id, *small)  # again: ignored
        add_served_columns(store, exp.id, np.array([], np.int64), np.array([], np.int64))
    got = store.conn.execute(
        "SELECT user_id, item_id FROM served_items WHERE experiment_id = ? ORDER BY 1, 2",
        (exp.id,),
    ).fetchall()
    assert got == [(1, 3), (1, 5), (2, 3), (2, 2**40), (2**31 + 7, 4)]
