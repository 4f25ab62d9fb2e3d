"""The store: creation, validation of foreign files, migrations, revisions, transactions."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_suggest import store as store_mod
from smart_suggest.errors import DatabaseError
from smart_suggest.store import APPLICATION_ID, SCHEMA_VERSION, TABLES, open_store


def test_creates_all_tables_with_pragmas(db_path: Path) -> None:
    s = open_store(db_path)
    names = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert set(TABLES) <= names
    assert s.scalar("PRAGMA journal_mode") == "wal"
    assert s.scalar("PRAGMA foreign_keys") == 1
    assert s.scalar("PRAGMA busy_timeout") == store_mod.BUSY_TIMEOUT_MS
    assert s.scalar("PRAGMA user_version") == SCHEMA_VERSION
    assert s.scalar("PRAGMA application_id") == APPLICATION_ID
    indexes = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"interactions_user_ts", "interactions_item"} <= indexes
    # events keeps no secondary index: its two summaries serve every reader.
    assert not {i for i in indexes if i.startswith("events_")}
    assert {"event_counts", "event_users"} <= names
    s.close()


@settings(max_examples=300)
@given(
    st.one_of(
        st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
        st.integers(min_value=-(10**9), max_value=10**9).map(lambda k: k * 3600.0),
        st.integers(min_value=-(10**9), max_value=10**9).map(lambda k: k * 3600.0 - 1e-6),
    )
)
def test_hour_sql_is_the_floor_python_computes(ts: float) -> None:
    """The bulk paths tally hours in Python, the triggers in SQL: both must agree."""
    conn = sqlite3.connect(":memory:")
    (hour,) = conn.execute(f"SELECT {store_mod.hour_sql(':ts')}", {"ts": ts}).fetchone()
    assert hour == math.floor(ts / 3600.0)


def _event_counts(s: store_mod.Store) -> list[tuple[object, ...]]:
    return s.conn.execute(
        "SELECT experiment_id, variant, type, hour, n, first_ts, last_ts FROM event_counts "
        "ORDER BY 1, 2, 3, 4"
    ).fetchall()


def _event_users(s: store_mod.Store) -> list[tuple[object, ...]]:
    return s.conn.execute("SELECT * FROM event_users ORDER BY 1, 2, 3").fetchall()


def test_event_summaries_follow_inserts_and_deletes(store: store_mod.Store) -> None:
    c = store.conn
    c.execute("INSERT INTO users VALUES (1, 'u', 0)")
    c.execute(
        "INSERT INTO experiments(id, name, control, treatment, traffic_fraction, "
        "treatment_share, created_at) VALUES (1, 'e', 'v1', 'v2', 1, 0.5, 0)"
    )
    insert = "INSERT INTO events(experiment_id, variant, user_id, type, ts) VALUES (1, ?, 1, ?, ?)"
    # Summaries must floor a time before 1970 too, which a database older than v5 may hold.
    c.execute("DROP TRIGGER events_values_insert")
    c.executemany(
        insert,
        [("A", "impression", 3599.5), ("A", "impression", 10.0), ("A", "impression", 3600.0),
         ("B", "click", -1.0)],
    )  # fmt: skip
    assert _event_counts(store) == [
        (1, "A", "impression", 0, 2, 10.0, 3599.5),
        (1, "A", "impression", 1, 1, 3600.0, 3600.0),
        (1, "B", "click", -1, 1, -1.0, -1.0),
    ]
    assert _event_users(store) == [
        (1, "A", 1, 3, 0, 0, 0, 0.0, 0.0, None),
        (1, "B", 1, 0, 1, 0, 0, 0.0, 0.0, None),
    ]
    # Events are facts: changing one would leave the summaries' earliest times behind.
    with pytest.raises(sqlite3.IntegrityError, match="events cannot be changed"):
        c.execute("UPDATE events SET ts = 7200.0 WHERE ts = 3600.0")
    # Deleting an item keeps its events (their item becomes unknown).
    c.execute("INSERT INTO items VALUES (9, 'gone', 'books', '', 0)")
    c.execute("UPDATE events SET item_id = 9 WHERE ts = 3600.0")
    c.execute("DELETE FROM items WHERE id = 9")
    assert c.execute("SELECT item_id FROM events WHERE ts = 3600.0").fetchone() == (None,)
    c.execute("DELETE FROM events WHERE variant = 'B'")
    assert _event_users(store) == [(1, "A", 1, 3, 0, 0, 0, 0.0, 0.0, None)]
    c.execute(insert.replace("type, ts)", "type, value, ts)").replace("?, ?)", "?, ?, ?)"),
              ("A", "engagement", 2.0, 50.0))  # fmt: skip
    c.execute(insert, ("A", "purchase", 90.0))
    c.execute(insert, ("A", "purchase", 80.0))
    assert _event_users(store) == [(1, "A", 1, 3, 0, 2, 1, 2.0, 4.0, 80.0)]
    c.execute("DELETE FROM events WHERE type IN ('purchase', 'engagement')")
    assert _event_counts(store) == [
        (1, "A", "impression", 0, 2, 10.0, 3599.5),
        (1, "A", "impression", 1, 1, 3600.0, 3600.0),
    ]
    # A bulk load sets the triggers aside and recounts at the end.
    with store.bulk_load(("events",)) as conn:
        conn.execute(insert, ("B", "purchase", 5.0))
        conn.execute("DELETE FROM events WHERE ts = 3600.0")
    assert _event_counts(store) == [
        (1, "A", "impression", 0, 2, 10.0, 3599.5),
        (1, "B", "purchase", 0, 1, 5.0, 5.0),
    ]
    assert _event_users(store) == [
        (1, "A", 1, 2, 0, 0, 0, 0.0, 0.0, None),
        (1, "B", 1, 0, 0, 1, 0, 0.0, 0.0, 5.0),
    ]
    store.clear()
    assert _event_counts(store) == [] and _event_users(store) == []


def test_reopen_keeps_data(db_path: Path) -> None:
    with open_store(db_path) as s:
        s.conn.execute("INSERT INTO users(username, created_at) VALUES ('a', 0)")
    with open_store(db_path) as s:
        assert s.scalar("SELECT username FROM users") == "a"


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


def test_refuses_non_sqlite_file_untouched(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello, not a database\n")
    before = _bytes(p)
    with pytest.raises(DatabaseError, match="not a SQLite database"):
        open_store(p)
    assert _bytes(p) == before
    assert not Path(str(p) + "-wal").exists()


def test_refuses_other_applications_sqlite_untouched(tmp_path: Path) -> None:
    p = tmp_path / "other.db"
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE recipes(id INTEGER PRIMARY KEY, title TEXT)")
    conn.execute("INSERT INTO recipes(title) VALUES ('soup')")
    conn.commit()
    conn.close()
    before = _bytes(p)
    with pytest.raises(DatabaseError, match="another application"):
        open_store(p)
    assert _bytes(p) == before
    assert not Path(str(p) + "-wal").exists()


def test_refuses_newer_schema(tmp_path: Path) -> None:
    p = tmp_path / "future.db"
    open_store(p).close()
    conn = sqlite3.connect(p)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = _bytes(p)
    with pytest.raises(DatabaseError, match="newer smart-suggest"):
        open_store(p)
    assert _bytes(p) == before


def test_empty_sqlite_file_is_initialised(tmp_path: Path) -> None:
    p = tmp_path / "empty.db"
    sqlite3.connect(p).close()  # zero-byte file
    with open_store(p) as s:
        assert s.scalar("PRAGMA user_version") == SCHEMA_VERSION


def test_missing_folder_is_an_error_for_explicit_path(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="does not exist"):
        open_store(tmp_path / "nope" / "x.db")
    assert not (tmp_path / "nope").exists()


def test_default_location_is_created_under_xdg(tmp_path: Path) -> None:
    s = open_store()
    assert s.path.parent.exists()
    assert str(s.path).startswith(str(tmp_path / "xdg-data"))
    s.close()


def test_env_var_chooses_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMART_SUGGEST_DB", str(tmp_path / "env.db"))
    with open_store() as s:
        assert s.path == tmp_path / "env.db"


def test_migration_from_version_zero_is_transactional(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing migration leaves the file at its old version, with no half schema."""
    p = tmp_path / "m.db"
    sqlite3.connect(p).close()
    broken = dict(store_mod.MIGRATIONS)
    broken[1] = broken[1] + "\nCREATE TABLE users(x);"  # duplicate table -> fails at the end
    monkeypatch.setattr(store_mod, "MIGRATIONS", broken)
    with pytest.raises(DatabaseError):
        open_store(p)
    conn = sqlite3.connect(p)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    conn.close()


def test_revision_changes_on_writes_from_another_connection(db_path: Path) -> None:
    s = open_store(db_path)
    cat0, exp0 = s.revision("catalog"), s.revision("experiments")
    other = open_store(db_path)
    other.conn.execute("INSERT INTO items(name, category, created_at) VALUES ('x', 'books', 0)")
    assert s.revision("catalog") > cat0
    assert s.revision("experiments") == exp0
    other.conn.execute("UPDATE items SET name = 'y'")
    cat1 = s.revision("catalog")
    other.conn.execute("DELETE FROM items")
    assert s.revision("catalog") > cat1
    other.close()
    s.close()


def test_write_rolls_back_on_error(store: store_mod.Store) -> None:
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute("INSERT INTO users(username, created_at) VALUES ('a', 0)")
        raise RuntimeError("boom")
    assert store.scalar("SELECT count(*) FROM users") == 0


def test_bulk_load_restores_indexes_and_triggers(store: store_mod.Store) -> None:
    def ddl() -> list[tuple[str, str]]:
        return store.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('index','trigger') "
            "AND sql IS NOT NULL ORDER BY name"
        ).fetchall()

    before, rev = ddl(), store.revision("catalog")
    with store.bulk_load(("users", "items")) as conn:
        conn.execute("INSERT INTO users(username, created_at) VALUES ('a', 0)")
    assert ddl() == before
    assert store.revision("catalog") == rev + 1


def test_bulk_load_rolls_back_everything(store: store_mod.Store) -> None:
    before = store.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    with pytest.raises(RuntimeError), store.bulk_load(TABLES) as conn:
        conn.execute("INSERT INTO users(username, created_at) VALUES ('a', 0)")
        raise RuntimeError("crash")
    assert store.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == before
    assert store.scalar("SELECT count(*) FROM users") == 0


def test_clear_deletes_everything(demo_store: store_mod.Store) -> None:
    assert not demo_store.is_empty()
    demo_store.clear()
    assert demo_store.is_empty()


def test_trusted_bulk_load_restores_foreign_keys(store: store_mod.Store) -> None:
    with store.bulk_load(("users",), trusted=True) as conn:
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 0
        conn.execute("INSERT INTO users(username, created_at) VALUES ('a', 0)")
    assert store.scalar("PRAGMA foreign_keys") == 1
    with pytest.raises(RuntimeError), store.bulk_load(("users",), trusted=True):
        raise RuntimeError("crash")
    assert store.scalar("PRAGMA foreign_keys") == 1
