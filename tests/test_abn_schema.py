"""Schema v8 (variants, designs, teams) and the k-variant assignment rule."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_suggest import store as store_mod
from smart_suggest.errors import InputError
from smart_suggest.experiments.assignment import (
    assign_label,
    assign_labels,
    experiment_variant,
    experiment_variants,
    thresholds,
)
from smart_suggest.experiments.lifecycle import create_experiment, get_experiment
from smart_suggest.store import open_store


def _v4_database(path: Path, users: int = 400) -> None:
    """A database exactly as a v4 smart-suggest left it, with a v5-style BEFORE INSERT
    trigger another migration may have added, and two experiments assigned by the rule
    as the v4 code documented it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for v in (1, 2, 3, 4):
        store_mod.apply_migration(conn, v)
    conn.execute("PRAGMA user_version = 4")
    conn.execute(f"PRAGMA application_id = {store_mod.APPLICATION_ID}")
    conn.execute(
        "CREATE TRIGGER events_value_check BEFORE INSERT ON events "
        "WHEN NEW.value = 7.5 BEGIN SELECT RAISE(ABORT, 'custom event check'); END"
    )
    conn.execute(
        "CREATE TRIGGER assignments_time_check BEFORE INSERT ON assignments "
        "WHEN NEW.assigned_at = 12345 BEGIN SELECT RAISE(ABORT, 'custom assignment check'); END"
    )
    conn.executemany(
        "INSERT INTO users(id, username, created_at) VALUES (?, ?, 0)",
        [(u, f"u{u}") for u in range(1, users + 1)],
    )
    conn.execute("INSERT INTO items(id, name, category, created_at) VALUES (1, 'i', 'books', 0)")
    for exp_id, share, traffic in ((1, 0.5, 1.0), (2, 0.3, 0.6)):
        conn.execute(
            "INSERT INTO experiments(id, name, control, treatment, traffic_fraction, "
            "treatment_share, created_at) VALUES (?, ?, 'v1', 'v2', ?, ?, 0)",
            (exp_id, f"e{exp_id}", traffic, share),
        )
        for u in range(1, users + 1):
            # The README's rule, written out independently of the package.
            h = hashlib.md5(f"{exp_id}:{u}".encode()).hexdigest()
            enrol, split = int(h[0:8], 16) / 2**32, int(h[8:16], 16) / 2**32
            if enrol < traffic:
                variant = "B" if split < share else "A"
                conn.execute("INSERT INTO assignments VALUES (?, ?, ?, 5)", (exp_id, u, variant))
                conn.execute(
                    "INSERT INTO events(experiment_id, variant, user_id, item_id, type, ts) "
                    "VALUES (?, ?, ?, 1, 'impression', 100)",
                    (exp_id, variant, u),
                )
    conn.execute("COMMIT")
    conn.close()


def test_v4_database_migrates_and_keeps_rows_constraints_and_triggers(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    _v4_database(path)
    before = sqlite3.connect(path)
    rows = {
        t: before.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
        for t in ("assignments", "events", "event_counts", "event_users")
    }
    triggers = {r[0] for r in before.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    before.close()
    with open_store(path) as s:
        assert s.scalar("PRAGMA user_version") == store_mod.SCHEMA_VERSION
        for table, old in rows.items():
            got = s.conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
            if table == "events":
                got = [r[:-1] for r in got]  # the new team column, NULL for old events
            assert got == old, table
        now = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
        assert triggers <= now  # every trigger, the other migration's too
        # The other migration's triggers still fire on the rebuilt tables.
        with pytest.raises(sqlite3.IntegrityError, match="custom event check"):
            s.conn.execute(
                "INSERT INTO events(experiment_id, variant, user_id, type, value, ts) "
                "VALUES (1, 'A', 1, 'engagement', 7.5, 1000)"
            )
        with pytest.raises(sqlite3.IntegrityError, match="custom assignment check"):
            s.conn.execute("INSERT INTO assignments VALUES (1, 400, 'C', 12345)")
        # Kept constraints: foreign keys, the type check, the primary key; labels widened.
        with pytest.raises(sqlite3.IntegrityError):
            s.conn.execute(
                "INSERT INTO events(experiment_id, variant, user_id, type, ts) "
                "VALUES (1, 'A', 9999, 'click', 0)"
            )
        with pytest.raises(sqlite3.IntegrityError):
            s.conn.execute(
                "INSERT INTO events(experiment_id, variant, user_id, type, ts) "
                "VALUES (1, 'A', 1, 'hover', 0)"
            )
        with pytest.raises(sqlite3.IntegrityError):
            s.conn.execute(
                "INSERT INTO events(experiment_id, variant, user_id, type, ts) "
                "VALUES (1, 'a', 1, 'click', 0)"
            )
        s.conn.execute(
            "INSERT INTO events(experiment_id, variant, user_id, type, ts) "
            "VALUES (1, 'C', 1, 'click', 1000)"
        )
        # Variants filled from control / treatment / treatment_share.
        assert s.conn.execute(
            "SELECT experiment_id, label, strategy, weight FROM experiment_variants ORDER BY 1, 2"
        ).fetchall() == [
            (1, "A", "v1", 0.5),
            (1, "B", "v2", 0.5),
            (2, "A", "v1", 0.7),
            (2, "B", "v2", 0.3),
        ]
        assert s.scalar("PRAGMA integrity_check") == "ok"
        assert s.conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # The stored v4 assignments are exactly what the k-variant rule gives now.
        for exp_id in (1, 2):
            exp = get_experiment(s, exp_id)
            assert exp.design == "ab" and exp.labels == ("A", "B")
            stored = dict(
                s.conn.execute(
                    "SELECT user_id, variant FROM assignments WHERE experiment_id = ?", (exp_id,)
                ).fetchall()
            )
            users = list(range(1, 401))
            vectorised = experiment_variants(exp, users)
            for u, v in zip(users, vectorised, strict=True):
                assert experiment_variant(exp, u) == v == stored.get(u)


@settings(max_examples=300, deadline=None)
@given(
    share=st.floats(min_value=1e-9, max_value=1 - 1e-9),
    exp_id=st.integers(1, 10**6),
    user=st.integers(1, 10**9),
)
def test_two_weights_give_exactly_the_two_variant_rule(
    share: float, exp_id: int, user: int
) -> None:
    assert thresholds([1.0 - share, share]) == [share]
    h = hashlib.md5(f"{exp_id}:{user}".encode()).hexdigest()
    split = int(h[8:16], 16) / 2**32
    assert assign_label(exp_id, user, 1.0, [1.0 - share, share]) == ("B" if split < share else "A")


def test_k_variant_rule_follows_cumulative_weights() -> None:
    weights = [2.0, 1.0, 1.0]  # A 50%, B 25%, C 25%
    assert thresholds(weights) == [0.25, 0.5]
    users = range(1, 40_001)
    index = assign_labels(7, users, 1.0, weights)
    shares = [(index == i).mean() for i in range(3)]
    assert shares == pytest.approx([0.5, 0.25, 0.25], abs=0.01)
    for u in range(1, 2001):
        h = hashlib.md5(f"7:{u}".encode()).hexdigest()
        split = int(h[8:16], 16) / 2**32
        want = "B" if split < 0.25 else "C" if split < 0.5 else "A"
        assert assign_label(7, u, 1.0, weights) == want == "ABC"[index[u - 1]]
    # Ramping traffic up never moves an enrolled user.
    low = assign_labels(7, users, 0.3, weights)
    high = assign_labels(7, users, 0.9, weights)
    kept = low >= 0
    assert (low[kept] == high[kept]).all()


def test_create_with_variants_weights_and_design(tmp_path: Path) -> None:
    with open_store(tmp_path / "x.db") as s:
        exp = create_experiment(s, "three", variants=["v1", "v2", "popular"], weights=[2, 1, 1])
        again = get_experiment(s, "three")
        assert again == exp
        assert [(v.label, v.strategy, v.weight) for v in again.variants] == [
            ("A", "v1", 2.0),
            ("B", "v2", 1.0),
            ("C", "popular", 1.0),
        ]
        assert again.strategy("C") == "popular" and again.control == "v1"
        create_experiment(s, "two", "v1", "v2", treatment_share=0.3)
        assert get_experiment(s, "two").weights == (0.7, 0.3)
        inter = create_experiment(s, "il", "v1", "v2", design="interleaving")
        assert get_experiment(s, "il").interleaving
        with pytest.raises(InputError, match="exactly two"):
            create_experiment(s, "bad", variants=["v1", "v2", "v1"], design="interleaving")
        with pytest.raises(InputError, match="one weight per variant"):
            create_experiment(s, "bad", variants=["v1", "v2"], weights=[1])
        with pytest.raises(InputError, match="positive"):
            create_experiment(s, "bad", variants=["v1", "v2"], weights=[1, 0])
        with pytest.raises(InputError, match="at least two"):
            create_experiment(s, "bad", variants=["v1"])
        with pytest.raises(InputError, match="unknown design"):
            create_experiment(s, "bad", design="split")
        assert s.scalar("SELECT COUNT(*) FROM experiments WHERE name = 'bad'") == 0
        assert inter.variants[1].strategy == "v2"
