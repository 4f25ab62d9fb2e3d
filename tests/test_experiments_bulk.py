"""The bulk CSV path: the column-wise fast path must load exactly what the row-by-row
reference path (``_parsed_rows``) produces, and leave the connection's checks as they were."""

from __future__ import annotations

import csv
import io
import sqlite3

import pytest

from smart_suggest.experiments import bulk as events
from smart_suggest.experiments.bulk import log_events_csv
from smart_suggest.experiments.lifecycle import create_experiment
from smart_suggest.experiments.serving import assign_user
from smart_suggest.store import Store


def _setup(store: Store) -> int:
    exp = create_experiment(store, "bulk-fast")
    for u in (1, 2, 3, 4):
        assign_user(store, exp.id, u)
    return exp.id


def _csv(store: Store, n: int) -> str:
    names = {
        r["id"]: r["username"]
        for r in store.query("SELECT id, username FROM users WHERE id IN (1, 2, 3, 4)")
    }
    kinds = ("impression", "click", "purchase", "engagement")
    lines = ["ts,type,value,item,user"]  # any column order
    # Every item of the file is shown to every user first: clicks and purchases need it.
    lines += [f",impression,,{item},{user}" for user in (1, 2, 3, 4) for item in (1, 2, 3)]
    for i in range(n):
        kind = kinds[i % 4]
        user = names[1 + i % 4] if i % 7 == 0 else str(1 + i % 4)  # ids and usernames
        value = f"{i % 50}.25" if kind == "engagement" else ""
        ts = "" if i % 5 == 0 else f"{1_795_000_000 + i * 0.5}"
        lines.append(f"{ts},{kind},{value},{1 + i % 3},{user}")
    return "\n".join(lines) + "\n"


def test_fast_path_loads_what_the_reference_path_produces(
    demo_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = demo_store
    exp_id = _setup(store)
    monkeypatch.setattr(events, "CSV_CHUNK", 64)  # several chunks, the last one partial
    text = _csv(store, 300)
    reader = csv.reader(io.StringIO(text))
    cols = events._header(next(reader))
    exp = events.get_experiment(store, exp_id)
    resolver = events._Resolver(store, exp)
    now = events.clock.now()
    chunk = list(reader)
    assert events._fast_chunk(chunk, cols, events._Resolver(store, exp), now) is not None
    expected = [r[1:] for r in events._parsed_rows(chunk, cols, exp, resolver, 1, now)]

    report = log_events_csv(store, exp_id, io.StringIO(text))
    got = store.conn.execute(
        "SELECT variant, user_id, item_id, type, value, ts FROM events "
        "WHERE experiment_id = ? ORDER BY id",
        (exp_id,),
    ).fetchall()
    assert report.rows == 312 and len(got) == 312
    # The clock is frozen in the tests: rows without ts get the same "now" on both paths.
    # Rows are inserted in chunks sorted by user (for the index), so compare as multisets.
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    assert report.by_type == {"impression": 87, "click": 75, "purchase": 75, "engagement": 75}


def test_bulk_load_restores_check_constraints(demo_store: Store) -> None:
    store = demo_store
    exp_id = _setup(store)
    log_events_csv(store, exp_id, io.StringIO("user,item,type\n1,1,impression\n"))
    assert store.scalar("PRAGMA ignore_check_constraints") == 0
    assert store.scalar("PRAGMA foreign_keys") == 1
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"), store.write() as conn:
        conn.execute(
            "INSERT INTO events(experiment_id, variant, user_id, item_id, type, value, ts) "
            "VALUES (?, 'a', 1, 1, 'click', NULL, 0)",  # labels are capital letters
            (exp_id,),
        )


def test_fast_path_error_reports_the_first_bad_line(demo_store: Store) -> None:
    store = demo_store
    exp_id = _setup(store)
    before = store.scalar("SELECT COUNT(*) FROM events")
    good = "1,1,impression,\n" + "1,1,click,\n" * 9
    text = "user,item,type,value\n" + good + "2,1,engagement,-1\n" + "9999999,1,click,\n"
    with pytest.raises(events.InputError, match="line 12: engagement time must not be negative"):
        log_events_csv(store, exp_id, io.StringIO(text))
    assert store.scalar("SELECT COUNT(*) FROM events") == before
