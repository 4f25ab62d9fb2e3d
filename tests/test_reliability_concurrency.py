"""Concurrency: several processes write events while others read; nobody sees a lock error.

The reduced CI form of ``benchmarks/stress.py``: WRITERS processes each log EVENTS events
through the real core path (half one by one with ``log_event``, half in bulk files of
BATCH rows with ``log_events_csv``), while a reader process loops over the real CLI
(``analyze``, ``experiment results``, ``experiment timeline``, ``status``) through ``main()`` and
checks, in one read snapshot at a time, that every writer's bulk events are a multiple of
BATCH (no half-written bulk file is ever visible).

This file is also the worker: ``python tests/test_reliability_concurrency.py writer|reader
...`` (so the workers are the same code in CI and in the stress script).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

WRITERS = 4
EVENTS = 2_000  # per writer
BATCH = 250  # rows per bulk file
HERE = Path(__file__).resolve()


# -- workers (run in subprocesses) -----------------------------------------------------------------
def _writer_users(writer: int) -> tuple[int, int]:
    """(single-event user, bulk user) of a writer: demo users, all assigned to experiment 1."""
    return 1 + 2 * writer, 2 + 2 * writer


def writer_main(db: str, writer: int, events: int, batch: int, start_at: float) -> dict[str, Any]:
    """Log ``events`` events: half single, half in bulk files of ``batch`` rows, interleaved."""
    from smart_suggest.experiments.bulk import log_events_csv
    from smart_suggest.experiments.events import log_event
    from smart_suggest.store import open_store

    single_user, bulk_user = _writer_users(writer)
    n_single = events // 2
    n_bulk = events - n_single
    assert n_bulk % batch == 0, "bulk events must be whole batches"
    errors: list[str] = []
    written = 0
    while time.time() < start_at:  # start together: maximum contention
        time.sleep(0.001)
    started = time.perf_counter()
    store = open_store(db)
    try:
        batches = n_bulk // batch
        singles_per_batch = n_single // max(batches, 1)
        done_single = 0
        for b in range(batches):
            for _ in range(singles_per_batch):
                try:
                    log_event(store, 1, single_user, 1 + done_single % 20, "click", unserved=True)
                    written += 1
                except Exception as exc:  # any error here would reach a user
                    errors.append(f"single: {type(exc).__name__}: {exc}")
                done_single += 1
            rows = "".join(
                f"{bulk_user},{1 + (b + k) % 20},impression,,{1_000_000_000 + b * batch + k}\n"
                for k in range(batch)
            )
            try:
                report = log_events_csv(store, 1, io.StringIO("user,item,type,value,ts\n" + rows))
                written += report.rows
            except Exception as exc:
                errors.append(f"bulk: {type(exc).__name__}: {exc}")
        while done_single < n_single:
            try:
                log_event(store, 1, single_user, 1, "click", unserved=True)
                written += 1
            except Exception as exc:
                errors.append(f"single: {type(exc).__name__}: {exc}")
            done_single += 1
    finally:
        store.close()
    return {"written": written, "errors": errors, "seconds": time.perf_counter() - started}


def _run_cli(argv: list[str]) -> tuple[int, str]:
    """The real CLI entry point, in this process; (exit code, stderr)."""
    from smart_suggest.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, err.getvalue()


def reader_commands(db: str) -> list[list[str]]:
    """The read commands a user would run in a loop while the writers work."""
    return [
        ["analyze", "1", "--json", "--db", db],
        ["experiment", "results", "1", "--json", "--db", db],
        ["experiment", "timeline", "1", "--json", "--db", db],
        ["status", "--json", "--db", db],
    ]


def reader_main(db: str, writers: int, batch: int, stop_file: str) -> dict[str, Any]:
    """Loop: CLI reads (exit 0, empty stderr) and snapshot checks of the bulk counts."""
    from smart_suggest.store import open_store

    bulk_users = [_writer_users(w)[1] for w in range(writers)]
    marks = ",".join("?" * len(bulk_users))
    store = open_store(db)
    base = dict.fromkeys(bulk_users, 0)
    base.update(
        store.conn.execute(
            f"SELECT user_id, count(*) FROM events WHERE user_id IN ({marks}) GROUP BY user_id",
            bulk_users,
        ).fetchall()
    )
    commands = reader_commands(db)
    errors: list[str] = []
    torn = 0
    snapshots = cli_runs = 0
    last_total = 0
    while not os.path.exists(stop_file):
        for argv in commands:
            code, err = _run_cli(argv)
            cli_runs += 1
            if code != 0 or err.strip():
                errors.append(f"{argv[0]}: exit {code}: {err.strip()}")
        for _ in range(20):
            with store.read() as conn:
                counts = dict(
                    conn.execute(
                        f"SELECT user_id, count(*) FROM events WHERE user_id IN ({marks}) "
                        "GROUP BY user_id",
                        bulk_users,
                    ).fetchall()
                )
                total = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
            snapshots += 1
            if any((counts.get(u, 0) - base[u]) % batch for u in bulk_users):
                torn += 1
            if total < last_total:
                errors.append(f"event count went down: {last_total} -> {total}")
            last_total = total
    store.close()
    return {"errors": errors, "torn": torn, "snapshots": snapshots, "cli_runs": cli_runs}


def _worker_entry(argv: list[str]) -> None:
    sys.path.insert(0, str(HERE.parents[1]))
    try:
        if argv[0] == "writer":
            result = writer_main(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), float(argv[5]))
        else:
            result = reader_main(argv[1], int(argv[2]), int(argv[3]), argv[4])
    except Exception:
        result = {"errors": [traceback.format_exc()], "crashed": True}
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    _worker_entry(sys.argv[1:])
    sys.exit(0)


# -- tests -----------------------------------------------------------------------------------------
import pytest  # noqa: E402

from smart_suggest.store import open_store  # noqa: E402


def _spawn(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parents[1])},
    )


def _result(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    lines = out.strip().splitlines()
    assert lines, err
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def test_writers_and_readers_at_once(demo_db: Path, tmp_path: Path) -> None:
    with open_store(demo_db) as s:
        # Single clicks on items never shown go to unserved_events (logged with unserved).
        before = int(
            s.scalar(
                "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM unserved_events)"
            )
        )
    stop = tmp_path / "stop"
    reader = _spawn("reader", demo_db, WRITERS, BATCH, stop)
    start_at = time.time() + 1.5  # let every interpreter import first
    writers = [_spawn("writer", demo_db, w, EVENTS, BATCH, start_at) for w in range(WRITERS)]
    try:
        results = [_result(p, timeout=120) for p in writers]
    finally:
        stop.touch()
    read = _result(reader, timeout=120)
    errors = [e for r in results for e in r["errors"]]
    assert errors == [], errors[:5]
    assert [r["written"] for r in results] == [EVENTS] * WRITERS
    assert read["errors"] == [], read["errors"][:5]
    assert read["torn"] == 0
    assert read["snapshots"] > 10 and read["cli_runs"] >= 2, read
    with open_store(demo_db) as s:
        assert (
            s.scalar(
                "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM unserved_events)"
            )
            == before + WRITERS * EVENTS
        )
        assert s.scalar("PRAGMA integrity_check") == "ok"
        for w in range(WRITERS):
            _single, bulk = _writer_users(w)
            # Bulk events carry their own timestamps: each writer's are all there, once.
            stamps = s.conn.execute(
                "SELECT count(DISTINCT ts), count(*) FROM events WHERE user_id = ? "
                "AND type = 'impression' AND ts >= 1000000000 AND ts < 1100000000",
                (bulk,),
            ).fetchone()
            assert tuple(stamps) == (EVENTS // 2, EVENTS // 2)


_OPEN_RACE = """
import os, sys, time
from smart_suggest.store import open_store
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.0005)
s = open_store(sys.argv[1])
s.conn.execute("INSERT INTO users(username, created_at) VALUES (?, 0)", (sys.argv[3],))
s.close()
"""


def test_many_processes_create_the_same_new_database(tmp_path: Path) -> None:
    """Several processes opening one fresh file at once: all succeed, one schema.

    This found a race: a process reading ``application_id`` before another's schema commit
    and ``sqlite_master`` after it called the brand-new database "another application's".
    """
    procs_per_run = 4
    for run in range(2):
        path, go = tmp_path / f"fresh{run}.db", tmp_path / f"go{run}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN_RACE, str(path), str(go), f"p{k}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for k in range(procs_per_run)
        ]
        for p in procs:  # every interpreter has imported: now they race
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        go.touch()
        errs = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * procs_per_run, errs
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == procs_per_run
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()


def test_cli_writes_queue_instead_of_failing(demo_db: Path) -> None:
    """A long write transaction in one process; short CLI writes wait, then succeed."""
    holder = sqlite3.connect(demo_db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO users(username, created_at) VALUES ('holder', 0)")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "smart_suggest", *args, "--db", str(demo_db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in (
            ["users", "add", "waiting"],
            ["log", "1", "1", "view"],
            ["items", "add", "lamp", "--category", "home"],
        )
    ]
    time.sleep(2.5)  # the CLI processes are now waiting on the lock
    assert all(p.poll() is None for p in procs)
    holder.execute("COMMIT")
    holder.close()
    for p in procs:
        _out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and err == "", err
    with open_store(demo_db) as s:
        names = {r[0] for r in s.conn.execute("SELECT username FROM users")}
        assert {"holder", "waiting"} <= names


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    from smart_suggest.sample import load_demo

    path = tmp_path / "demo.db"
    with open_store(path) as s:
        load_demo(s, seed=42)
    return path


def test_schema_created_between_two_identity_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same race, made deterministic: another process creates the schema exactly
    between open_store's read of ``application_id`` and its read of ``sqlite_master``."""
    from smart_suggest import store as store_mod

    path = tmp_path / "fresh.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")  # writes the header: "has data", no schema yet
    conn.close()
    assert path.stat().st_size > 0
    real_connect = store_mod._connect
    raced: list[bool] = []

    class Racy(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
            cur = super().execute(sql, *args)
            if sql.strip() == "PRAGMA application_id" and not raced:
                raced.append(True)
                monkeypatch.setattr(store_mod, "_connect", real_connect)
                other = store_mod.open_store(path)  # the other process, committing now
                other.close()
            return cur

    def racy_connect(p: Path) -> sqlite3.Connection:
        return sqlite3.connect(
            p, isolation_level=None, check_same_thread=False, timeout=30, factory=Racy
        )

    monkeypatch.setattr(store_mod, "_connect", racy_connect)
    s = store_mod.open_store(path)
    assert raced == [True]
    assert s.scalar("PRAGMA user_version") == store_mod.SCHEMA_VERSION
    s.close()


_ASSIGN = """
import os, sys, time
from smart_suggest.store import open_store
from smart_suggest.experiments.serving import assign_user
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.0005)
with open_store(sys.argv[1]) as s:
    for uid in range(1, 51):
        assign_user(s, "race", uid)
"""


def test_concurrent_assignment_stores_each_user_once(demo_db: Path, tmp_path: Path) -> None:
    """Processes assigning the same users at once: one row per user, the rule's variant."""
    from smart_suggest.experiments.assignment import assign_variant
    from smart_suggest.experiments.lifecycle import create_experiment

    with open_store(demo_db) as s:
        exp = create_experiment(s, "race", "v1", "v2", traffic_fraction=0.8)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ASSIGN, str(demo_db), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    go.touch()
    errs = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errs
    with open_store(demo_db) as s:
        stored = dict(
            s.conn.execute(
                "SELECT user_id, variant FROM assignments WHERE experiment_id = ?", (exp.id,)
            ).fetchall()
        )
    expected = {
        uid: v for uid in range(1, 51) if (v := assign_variant(exp.id, uid, 0.8, 0.5)) is not None
    }
    assert stored == expected


_APPEND = """
import sys
from smart_suggest.store import open_store
with open_store(sys.argv[1]) as s, s.write() as conn:
    conn.executemany(
        "INSERT INTO users(username, created_at) VALUES (?, 0)",
        [(f"{sys.argv[2]}-{i}",) for i in range(300)],
    )
"""


def test_a_second_store_in_one_process_keeps_the_first_ones_locks(tmp_path: Path) -> None:
    """Opening a database that this process already holds must not drop SQLite's locks.

    open_store used to read the file header with open()/close(); closing *any* descriptor
    of a file releases every POSIX lock the process holds on it. Another process closing
    its connection then believed it was the last one, checkpointed and deleted the WAL
    under our open connection: "database disk image is malformed" (the TUI, which opens a
    second store while its first is in use, showed it under the stress run's load).
    """
    db = tmp_path / "held.db"

    def append(tag: str) -> None:
        subprocess.run([sys.executable, "-c", _APPEND, str(db), tag], check=True, timeout=60)

    with open_store(db) as s:
        s.conn.executemany(
            "INSERT INTO users(username, created_at) VALUES (?, 0)",
            [(f"u{i}",) for i in range(2000)],
        )
    first = open_store(db)
    first.conn.execute("BEGIN")
    assert first.scalar("SELECT count(*) FROM users") == 2000  # a snapshot held open
    append("a")
    second = open_store(db)  # the same process opens the same file again
    second.close()
    append("b")  # closes its connection: it must see that we still hold the database
    assert Path(f"{db}-wal").exists(), "the WAL was deleted under an open connection"
    assert first.scalar("SELECT count(*) FROM users") == 2000
    first.conn.execute("COMMIT")
    append("c")
    assert first.scalar("SELECT count(*) FROM users") == 2900
    first.conn.execute("INSERT INTO users(username, created_at) VALUES ('first', 0)")
    first.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 2901
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
