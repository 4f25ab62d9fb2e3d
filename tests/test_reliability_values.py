"""Values that got in and broke later commands, and the stream, size and damage limits
(issue 13, items 3-7 and 11): every reproducer fails on the code before the fix."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from smart_suggest import clock
from smart_suggest.errors import InputError
from smart_suggest.store import open_store

Rows = dict[str, list[tuple[object, ...]]]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


@pytest.fixture
def demo(tmp_path: Path, demo_template: Path) -> Path:
    path = tmp_path / "demo.db"
    shutil.copy(demo_template, path)
    return path


def _legacy_rows(path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Write rows as a database from before schema v5 may hold them: the value triggers set
    aside for the write (plain sqlite3, one transaction)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        saved = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_values_%'"
        ).fetchall()
        for name, _sql in saved:
            conn.execute(f'DROP TRIGGER "{name}"')
        for sql, params in statements:
            conn.execute(sql, params)
        for _name, sql in saved:
            conn.execute(sql)
        conn.execute("COMMIT")
    finally:
        conn.close()


# -- item 3: one accepted time range ------------------------------------------------------
def test_the_range_is_1970_to_2200() -> None:
    from smart_suggest import validate

    assert validate.ts_ok(0) and validate.ts_ok(7_258_118_399.999)
    for bad in (-1, -1e15, 7_258_118_400, float("nan"), float("inf"), "1", True, None):
        assert not validate.ts_ok(bad)
    assert clock.iso(validate.MIN_TS) == "1970-01-01T00:00:00Z"
    assert clock.iso(validate.MAX_TS - 1) == "2199-12-31T23:59:59Z"


@pytest.mark.parametrize("ts", ["-1e15", "-1", "0001-01-01T00:00:00Z", "2200-01-01T00:00:00Z"])
def test_import_refuses_a_time_out_of_range(
    demo: Path, tmp_path: Path, run_cli, db_rows, ts: str
) -> None:  # type: ignore[no-untyped-def]
    before = db_rows(demo)
    csv = tmp_path / "bad.csv"
    csv.write_text(f"user,item,action,ts\n1,1,click,1700000000\n1,1,click,{ts}\n")
    code, _out, err = run_cli("import", csv, "--db", demo)
    assert code == 2
    line = _one_line(err)
    assert f"{csv}:3" in line and "out of range" in line and "1970" in line
    assert db_rows(demo) == before


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00Z", "9999-12-31T23:00:00Z", "-1"])
def test_experiment_log_refuses_a_time_out_of_range(demo: Path, run_cli, db_rows, ts: str) -> None:  # type: ignore[no-untyped-def]
    before = db_rows(demo)
    code, _out, err = run_cli("experiment", "log", "1", "1", "1", "click", "--ts", ts, "--db", demo)
    assert code == 2 and "out of range" in _one_line(err)
    assert db_rows(demo) == before


def test_bulk_file_refuses_a_time_out_of_range(
    demo: Path, tmp_path: Path, run_cli, db_rows
) -> None:  # type: ignore[no-untyped-def]
    before = db_rows(demo)
    csv = tmp_path / "events.csv"
    csv.write_text("user,item,type,ts\n1,1,click,1700000000\n2,1,click,0001-01-01T00:00:00Z\n")
    code, _out, err = run_cli("experiment", "log", "1", "--file", csv, "--db", demo)
    assert code == 2
    assert "line 3" in _one_line(err) and "out of range" in err
    assert db_rows(demo) == before


def test_the_clock_must_be_in_range_for_writes(demo: Path, run_cli, db_rows, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    before = db_rows(demo)
    monkeypatch.setenv("SMART_SUGGEST_NOW", "1969-12-31T00:00:00Z")
    code, _out, err = run_cli("users", "add", "zed", "--db", demo)
    assert code == 2 and "out of range" in _one_line(err)
    code, _out, err = run_cli("seed", "--yes", "--db", demo)
    assert code == 2 and "SMART_SUGGEST_NOW" in _one_line(err)
    assert db_rows(demo) == before


def test_readers_survive_times_an_older_database_holds(demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    _legacy_rows(
        demo,
        (
            "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (1, 1, 'click', ?)",
            (-1e15,),
        ),
        (
            "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (1, 2, 'view', ?)",
            (1e300,),
        ),
        ("UPDATE users SET created_at = 'yesterday' WHERE id = 2", ()),
        (
            "UPDATE experiments SET status = 'stopped', stopped_at = 'never', "
            "created_at = 'x', primary_metric = 'revenue'",
            (),
        ),
        (
            "INSERT INTO events(experiment_id, variant, user_id, item_id, type, ts) "
            "SELECT 1, variant, user_id, 1, 'click', ? FROM assignments "
            "WHERE experiment_id = 1 AND user_id = 1",
            (-62_135_596_800.0,),  # 0001-01-01
        ),
        (
            "INSERT INTO events(experiment_id, variant, user_id, item_id, type, ts) "
            "SELECT 1, variant, user_id, 1, 'impression', ? FROM assignments "
            "WHERE experiment_id = 1 AND user_id = 1",
            (253_402_300_000.0,),  # 9999-12-31
        ),
    )
    code, out, err = run_cli("history", "1", "--db", demo)
    assert code == 0, err
    assert "out of range" in out
    for args in (
        ("history", "1", "--json"),
        ("users", "list"),
        ("users", "list", "--json"),
        ("users", "show", "2"),
        ("experiment", "timeline", "1"),
        ("experiment", "timeline", "1", "--bucket", "hour", "--json"),
        ("experiment", "results", "1"),
        ("experiment", "show", "1"),
        ("experiment", "list", "--all", "--json"),
        ("analyze", "1"),
        ("analyze", "1", "--json"),
    ):
        code, out, err = run_cli(*args, "--db", demo)
        assert code == 0, (args, err)
    # The TUI's daily chart is drawn from the same timeline.
    from smart_suggest.experiments.timeline import timeline
    from tui.data import trend_series

    with open_store(demo) as store:
        days, series = trend_series(timeline(store, 1))
    assert 7 <= len(days) <= 10 and len(series["A"]) == len(days)


# -- item 4: engagement values are bounded ------------------------------------------------
@pytest.mark.parametrize("value", ["1e200", "1e10", "-1", "nan"])
def test_engagement_value_out_of_range_is_refused(demo: Path, run_cli, db_rows, value: str) -> None:  # type: ignore[no-untyped-def]
    before = db_rows(demo)
    code, _out, err = run_cli(
        "experiment", "log", "1", "1", "1", "engagement", "--value", value, "--db", demo
    )
    assert code == 2, err
    _one_line(err)
    assert db_rows(demo) == before


def test_bulk_value_out_of_range_is_refused_without_numpy_warnings(
    demo: Path, tmp_path: Path, run_cli, db_rows
) -> None:  # type: ignore[no-untyped-def]
    before = db_rows(demo)
    csv = tmp_path / "events.csv"
    csv.write_text("user,item,type,value\n1,1,click,\n1,1,engagement,30\n2,1,engagement,1e200\n")
    code, _out, err = run_cli("experiment", "log", "1", "--file", csv, "--db", demo)
    assert code == 2
    line = _one_line(err)  # no RuntimeWarning from numpy
    assert "line 4" in line and "at most 1e+09" in line
    assert db_rows(demo) == before


def test_bulk_reader_process_refuses_a_value_out_of_range(demo: Path, tmp_path: Path) -> None:
    """The reader process (a later chunk than the writer's own head rows) checks too."""
    from smart_suggest.experiments.bulk import CSV_CHUNK, _head_rows, log_events_csv

    rows = ["user,item,type,value"]
    rows += [f"{1 + k % 40},{1 + k % 20},impression," for k in range(_head_rows(CSV_CHUNK) + 5000)]
    rows.append("3,2,engagement,1e200")
    csv = tmp_path / "big.csv"
    csv.write_text("\n".join(rows) + "\n")
    with open_store(demo) as store:
        n = store.conn.execute("SELECT count(*) FROM events").fetchone()[0]
        with pytest.raises(InputError, match=rf"line {len(rows)}: .*at most 1e\+09"):
            log_events_csv(store, 1, csv, parallel=True)
        assert store.conn.execute("SELECT count(*) FROM events").fetchone()[0] == n


# -- item 5: import-all validates every value ------------------------------------------------
def _edit_export(src: Path, table: str, edit: Any) -> None:
    """Hand-edit one table of a JSONL export and recompute its checksum."""
    path = src / f"{table}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    edit(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["tables"][table]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest["tables"][table]["rows"] = len(rows)
    (src / "manifest.json").write_text(json.dumps(manifest))


def _set(index: int, **values: Any) -> Any:
    def edit(rows: list[dict[str, Any]]) -> None:
        rows[index].update(values)

    return edit


def _first_of(kind: str, **values: Any) -> Any:
    def edit(rows: list[dict[str, Any]]) -> None:
        next(r for r in rows if r["type"] == kind).update(values)

    return edit


def _flip_variant(rows: list[dict[str, Any]]) -> None:
    rows[0]["variant"] = "B" if rows[0]["variant"] == "A" else "A"


@pytest.mark.parametrize(
    ("table", "edit", "message"),
    [
        ("users", _set(0, created_at="yesterday"), "users.created_at"),
        ("users", _set(0, created_at=-1e15), "users.created_at"),
        ("items", _set(0, created_at="soon"), "items.created_at"),
        ("interactions", _set(0, ts=1e300), "interactions.ts"),
        ("experiments", _set(0, primary_metric="revenue"), "experiments.primary_metric"),
        ("experiments", _set(0, stopped_at="never"), "experiments.stopped_at"),
        ("experiments", _set(0, status="stopped"), "experiments.stopped_at must be set"),
        ("experiments", _set(0, traffic_fraction="all"), "experiments.traffic_fraction"),
        ("assignments", _set(0, assigned_at="soon"), "assignments.assigned_at"),
        ("events", _first_of("engagement", value=-5.0), "events.value"),
        ("events", _first_of("engagement", value="42"), "events.value"),
        ("events", _first_of("engagement", value=1e200), "events.value"),
        ("events", _first_of("click", value=3.0), "only for them"),
        ("events", _set(0, ts=-62_135_596_800.0), "events.ts"),
        ("events", _set(0, user_id="1"), "events.user_id"),
        ("events", _flip_variant, "but its user has assigned variant"),
    ],
)
def test_import_all_refuses_hand_edited_values(
    demo: Path, tmp_path: Path, run_cli, table: str, edit: Any, message: str
) -> None:  # type: ignore[no-untyped-def]
    export = tmp_path / "export"
    code, _out, err = run_cli("export", export, "--db", demo)
    assert code == 0, err
    _edit_export(export, table, edit)
    target = tmp_path / "copy.db"
    code, _out, err = run_cli("import-all", export, "--db", target)
    assert code == 2
    assert message in _one_line(err)
    with open_store(target) as store:
        assert store.is_empty()


def test_import_all_of_an_unedited_export_still_loads(
    demo: Path, tmp_path: Path, run_cli, db_rows
) -> None:  # type: ignore[no-untyped-def]
    export = tmp_path / "export"
    assert run_cli("export", export, "--db", demo)[0] == 0
    target = tmp_path / "copy.db"
    code, _out, err = run_cli("import-all", export, "--db", target)
    assert code == 0, err
    assert db_rows(target) == db_rows(demo)


# -- schema v5: the rules in SQLite --------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("INSERT INTO users(username, created_at) VALUES ('x', -1)", "created_at out of range"),
        ("INSERT INTO users(username, created_at) VALUES ('x', 'yesterday')", "out of range"),
        ("UPDATE experiments SET primary_metric = 'revenue'", "unknown primary_metric"),
        ("UPDATE experiments SET status = 'stopped'", "stopped_at must be set"),
        ("UPDATE experiments SET stopped_at = 'never', status = 'stopped'", "out of range"),
        (
            "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (1, 1, 'view', 1e300)",
            "ts out of range",
        ),
        (
            "INSERT INTO events(experiment_id, variant, user_id, type, value, ts) "
            "VALUES (1, 'A', 1, 'engagement', 1e200, 1700000000)",
            "value must be",
        ),
        (
            "INSERT INTO events(experiment_id, variant, user_id, type, value, ts) "
            "VALUES (1, 'A', 1, 'engagement', 'long', 1700000000)",
            "value must be",
        ),
        (
            "INSERT INTO events(experiment_id, variant, user_id, type, ts) "
            "VALUES (1, 'A', 1, 'click', -62135596800)",
            "ts out of range",
        ),
        (
            "INSERT INTO assignments(experiment_id, user_id, variant, assigned_at) "
            "VALUES (1, 999, 'A', 'now')",
            "assigned_at out of range",
        ),
    ],
)
def test_schema_refuses_values_out_of_range(demo: Path, sql: str, message: str) -> None:
    with open_store(demo) as store, pytest.raises(sqlite3.IntegrityError, match=message):
        store.conn.execute(sql)


def test_v5_applies_over_a_v4_database_with_bad_values(demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(demo, isolation_level=None)
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_values_%'"
    ).fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute("UPDATE users SET created_at = -1e15 WHERE id = 1")
    conn.execute("PRAGMA user_version = 4")
    conn.close()
    code, out, err = run_cli("users", "list", "--db", demo)
    assert code == 0, err
    assert "out of range" in out
    with open_store(demo) as store:
        assert store.scalar("PRAGMA user_version") >= 5
        assert store.scalar("SELECT created_at FROM users WHERE id = 1") == -1e15
        # A rename leaves the old value as it was; a new bad value is refused.
        store.conn.execute("UPDATE users SET username = 'renamed' WHERE id = 1")
        with pytest.raises(sqlite3.IntegrityError):
            store.conn.execute("UPDATE users SET created_at = -2 WHERE id = 1")


# -- item 6: a stream never holds the write lock ---------------------------------------------
def test_slow_fifo_does_not_hold_the_write_lock(demo: Path, tmp_path: Path, db_rows) -> None:
    """A FIFO fed slowly: another writer gets in at once, and the stream still loads whole
    (all or nothing) when it ends."""
    import os
    import subprocess
    import sys
    import time

    before = db_rows(demo)
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    logger = subprocess.Popen(
        [sys.executable, "-m", "smart_suggest", "experiment", "log", "1", "--file", str(fifo),
         "--db", str(demo), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        with open(fifo, "w") as feed:
            feed.write("user,item,type\n1,1,click\n2,2,click\n")
            feed.flush()
            time.sleep(2.0)  # the logger has read these and waits for more
            started = time.monotonic()
            conn = sqlite3.connect(demo, timeout=5, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")  # "database is locked" after 5 s if held
                conn.execute("INSERT INTO users(username, created_at) VALUES ('zed', 1.7e9)")
                conn.execute("COMMIT")
            finally:
                conn.close()
            assert time.monotonic() - started < 2.0
            feed.write("3,3,click\n")
        out, err = logger.communicate(timeout=60)
    finally:
        if logger.poll() is None:
            logger.kill()
    assert logger.returncode == 0, err
    assert json.loads(out)["rows"] == 3
    after = db_rows(demo)
    assert len(after["events"]) == len(before["events"]) + 3
    assert len(after["users"]) == len(before["users"]) + 1


def test_a_stream_with_a_bad_row_writes_nothing(demo: Path, run_cli, db_rows, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import io

    before = db_rows(demo)
    monkeypatch.setattr("sys.stdin", io.StringIO("user,item,type\n1,1,click\n2,1,teleport\n"))
    code, _out, err = run_cli("experiment", "log", "1", "--file", "-", "--db", demo)
    assert code == 2 and "line 3" in _one_line(err)
    assert db_rows(demo) == before


# -- item 7: unbounded lines ---------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["import", "/dev/zero"],
        ["import", "{ok}", "--items", "/dev/zero"],
        ["experiment", "log", "1", "--file", "/dev/zero"],
        ["experiment", "log", "1", "--file", "{long}"],
        ["import", "{long}"],
    ],
)
def test_unbounded_lines_fail_with_one_line(
    demo: Path, tmp_path: Path, run_cli, db_rows, args: list[str]
) -> None:  # type: ignore[no-untyped-def]
    from smart_suggest.csvfiles import MAX_LINE

    ok = tmp_path / "ok.csv"
    ok.write_text("user,item,action\n1,1,click\n")
    long = tmp_path / "long.csv"
    long.write_text("user,item,type\n1,1,click\n" + "x" * (MAX_LINE + 10) + "\n")
    before = db_rows(demo)
    argv = [a.format(ok=ok, long=long) for a in args]
    code, _out, err = run_cli(*argv, "--db", demo)
    assert code == 2
    line = _one_line(err)
    name = "/dev/zero" if "/dev/zero" in argv else str(long)
    row = 1 if name == "/dev/zero" else 3
    assert line.startswith(f"smart-suggest: error: {name}:{row}: line longer than")
    assert db_rows(demo) == before


def test_unbounded_standard_input_fails_with_one_line(demo: Path, db_rows) -> None:
    import os
    import subprocess
    import sys

    before = db_rows(demo)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with open("/dev/zero", "rb") as zero:
        proc = subprocess.run(
            [sys.executable, "-m", "smart_suggest", "experiment", "log", "1", "--file", "-",
             "--db", str(demo)],
            stdin=zero, capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 2
    assert "standard input:1: line longer than" in _one_line(proc.stderr)
    assert db_rows(demo) == before


# -- item 11: damaged databases --------------------------------------------------------------
def _damage(path: Path) -> int:
    """Overwrite the cell pointers of a leaf page of ``events`` (as a bad disk sector would);
    the number of rows that page held."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute(
            "SELECT pageno, ncell FROM dbstat WHERE name = 'events' AND pagetype = 'leaf'"
        ).fetchall()
    finally:
        conn.close()
    page, cells = pages[len(pages) // 2]
    with open(path, "r+b") as fh:
        fh.seek((page - 1) * size + 12)
        fh.write(b"\xff" * 200)
    return int(cells)


def test_writes_into_a_damaged_database_are_refused(demo: Path, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    _damage(demo)
    before = demo.read_bytes()
    for args in (
        ("users", "add", "zed"),
        ("log", "1", "1", "click"),
        ("experiment", "log", "1", "1", "1", "click"),
        ("items", "add", "Lamp", "--category", "home"),
    ):
        code, _out, err = run_cli(*args, "--db", demo)
        assert code == 2, (args, err)
        line = _one_line(err)
        assert "the database is damaged" in line and f"recover NEW.db --db {demo}" in line
    assert demo.read_bytes() == before
    # backup refuses it too, and says what to do instead.
    code, _out, err = run_cli("backup", tmp_path / "copy.db", "--db", demo)
    assert code == 2 and "smart-suggest recover" in _one_line(err)
    assert not (tmp_path / "copy.db").exists()


def test_recover_copies_what_can_be_read(demo: Path, tmp_path: Path, run_cli, db_rows) -> None:  # type: ignore[no-untyped-def]
    intact = db_rows(demo)
    cells = _damage(demo)
    new = tmp_path / "recovered.db"
    code, out, err = run_cli("recover", new, "--db", demo, "--json")
    assert code == 0, err
    report = json.loads(out)
    rows = db_rows(new)
    for table in ("users", "items", "interactions", "experiments", "assignments"):
        assert rows[table] == intact[table]
    # Every event that survived is an event of the intact file; the damaged page's are gone.
    assert set(rows["events"]) < set(intact["events"])
    assert report["tables"]["events"] == len(rows["events"])
    # Only the damaged page's rows are lost: the reading finds the first key after it.
    assert 0 < len(intact["events"]) - len(rows["events"]) <= cells
    conn = sqlite3.connect(new)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    # The recovered file works like any other, summaries included.
    for args in (("users", "add", "zed"), ("experiment", "results", "1"), ("analyze", "1")):
        code, _out, err = run_cli(*args, "--db", new)
        assert code == 0, (args, err)
    code, _out, err = run_cli("recover", new, "--db", demo)
    assert code == 2 and "already exists" in _one_line(err)


def test_the_check_runs_once_per_change_of_the_file(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smart_suggest import integrity
    from smart_suggest.tracking import add_user

    calls = []
    real = integrity.quick_check
    monkeypatch.setattr(integrity, "quick_check", lambda conn: calls.append(1) or real(conn))
    with open_store(demo) as store:
        add_user(store, "a")
        add_user(store, "b")
    assert len(calls) == 1
    with open_store(demo) as store:  # unchanged but by our own writes: no second check
        add_user(store, "c")
    assert len(calls) == 1
    _damage(demo)  # changed behind smart-suggest's back: checked again, and refused
    with open_store(demo) as store, pytest.raises(InputError, match="damaged"):
        add_user(store, "d")
    assert len(calls) == 2
