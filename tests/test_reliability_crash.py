"""Crashes: SIGKILL in the middle of every bulk operation leaves all of it or none of it.

For each operation (demo seed, synthetic seed, ``import``, bulk ``experiment log --file``,
``import-all``, ``clear``) the test builds the database *before* the operation, runs the
operation once to completion on a copy to learn the state *after* it, then runs it again on
fresh copies (the real CLI, ``python -m smart_suggest``) and kills it with SIGKILL at random
points: stratified over the time of its database work, over the growth of its WAL (cache
spills, the commit frames, the checkpoint after them), and at its first WAL byte. After each
kill: ``PRAGMA integrity_check`` is ok, no foreign key is
dangling, and a digest of every row of every table *and* of the schema (indexes and
triggers: ``bulk_load`` drops and rebuilds them inside its transaction) equals either the
before or the after digest. The database then opens and accepts writes.

CI runs a few kills per operation; ``benchmarks/stress.py --crash-runs N`` runs many. The
shared machinery (``make_cases``, ``reference``, ``crash_runs``, ``kill_points``) is imported
by the stress script.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

TABLES = ("users", "items", "interactions", "experiments", "assignments", "events", "revisions")
FIXED_NOW = "2026-11-20T12:00:00Z"
KILLS_PER_CASE = 3  # CI; the stress script passes many more


def cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "smart_suggest", *map(str, args)]


def _env() -> dict[str, str]:
    # Frozen clock: the operation writes the same rows every time it is run.
    return {**os.environ, "SMART_SUGGEST_NOW": FIXED_NOW}


def digest(path: Path) -> str:
    """SHA-256 of every row of every table and of the schema, read with plain sqlite3."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        h = hashlib.sha256()
        for row in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ):
            h.update(repr(row).encode())
        for table in TABLES:
            h.update(table.encode())
            # The catalog's stamp (schema v12) is random by design: the counter beside it
            # shows whether the change was applied.
            columns = "name, value" if table == "revisions" else "*"
            cur = conn.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2")
            while rows := cur.fetchmany(10_000):
                h.update(repr(rows).encode())
        return h.hexdigest()
    finally:
        conn.close()


def checks(path: Path) -> tuple[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        ok = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
        dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
        return ok, dangling
    finally:
        conn.close()


def _wal_bytes(path: Path) -> int:
    # One stat, no exists() first: the last connection's close deletes the WAL, and between
    # the two calls it did once (the watcher thread died and stopped measuring).
    try:
        return Path(f"{path}-wal").stat().st_size
    except FileNotFoundError:
        return 0


@dataclass
class Case:
    """One crashable operation: how to build the before-state, the command to kill."""

    name: str
    prepare: Callable[[Path, Path], None]  # (database, work dir) -> before state
    argv: Callable[[Path, Path], list[str]]  # (database, work dir) -> CLI arguments


# -- the operations --------------------------------------------------------------------------------
def _demo(db: Path, work: Path) -> None:
    """The demo database, built once per work dir and copied (saves a seed per case)."""
    from smart_suggest.sample import load_demo
    from smart_suggest.store import open_store

    cached = work / "demo-cache.db"
    if not cached.exists():
        os.environ.setdefault("SMART_SUGGEST_NOW", FIXED_NOW)
        with open_store(cached) as s:
            load_demo(s, seed=1)
    shutil.copy(cached, db)


def _synthetic(db: Path, scale: int) -> None:
    from smart_suggest.sample import SyntheticSpec, generate
    from smart_suggest.store import open_store

    os.environ.setdefault("SMART_SUGGEST_NOW", FIXED_NOW)
    with open_store(db) as s:
        generate(
            s,
            SyntheticSpec(
                users=250 * scale,
                items=40 * scale,
                interactions=8_000 * scale,
                events=8_000 * scale,
                days=7,
            ),
        )


def _synthetic_args(scale: int) -> list[str]:
    """A synthetic seed that takes about ``scale`` seconds here (in-process)."""
    sizes = {"users": 1_000, "items": 160, "interactions": 32_000, "events": 32_000}
    args = [f"--{k}={v * scale}" for k, v in sizes.items()]
    return [*args, "--days=7"]


def _write_interactions_csv(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("user,item,rating,timestamp\n")
        for k in range(rows):
            fh.write(f"{rng.randint(1, 3000)},{rng.randint(1, 400)},{rng.randint(1, 5)},")
            fh.write(f"{1_600_000_000 + k}\n")


def _write_events_csv(path: Path, rows: int) -> None:
    """Events of the demo experiment for its 50 assigned users."""
    rng = random.Random(11)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("user,item,type,value,ts\n")
        for k in range(rows):
            kind = rng.choice(("impression", "impression", "click", "engagement"))
            value = f"{rng.uniform(1, 90):.2f}" if kind == "engagement" else ""
            fh.write(f"{rng.randint(1, 50)},{rng.randint(1, 20)},{kind},{value},")
            fh.write(f"{1_700_000_000 + k}\n")


def make_cases(scale: int = 1) -> list[Case]:
    """The operations, their sizes multiplied by ``scale`` (1: about 0.3-1 s of work each)."""
    n_csv = 15_000 * scale

    def prep_seed(db: Path, work: Path) -> None:
        _demo(db, work)

    def prep_synthetic(db: Path, work: Path) -> None:
        _demo(db, work)

    def prep_import(db: Path, work: Path) -> None:
        _demo(db, work)
        if not (work / "interactions.csv").exists():
            _write_interactions_csv(work / "interactions.csv", n_csv)

    def prep_log(db: Path, work: Path) -> None:
        _demo(db, work)
        if not (work / "events.csv").exists():
            _write_events_csv(work / "events.csv", n_csv * 2)

    def prep_import_all(db: Path, work: Path) -> None:
        from smart_suggest.portability import export_all
        from smart_suggest.store import open_store

        export = work / "export"
        if not export.exists():
            src = work / "export-src.db"
            _synthetic(src, scale)
            with open_store(src) as s:
                export_all(s, export)
        # before: an empty (but initialised) database
        open_store(db).close()

    def prep_clear(db: Path, work: Path) -> None:
        _synthetic(db, 5 * scale)  # deleting is fast: more rows for a window worth hitting

    return [
        Case(
            "seed demo", prep_seed, lambda db, w: ["seed", "--db", str(db), "--seed", "2", "--yes"]
        ),
        Case(
            "seed synthetic",
            prep_synthetic,
            lambda db, w: ["seed", "--db", str(db), *_synthetic_args(scale), "--yes", "--json"],
        ),
        Case(
            "import",
            prep_import,
            lambda db, w: ["import", str(w / "interactions.csv"), "--db", str(db), "--json"],
        ),
        Case(
            "experiment log --file",
            prep_log,
            lambda db, w: [
                "experiment",
                "log",
                "1",
                "--file",
                str(w / "events.csv"),
                "--db",
                str(db),
            ],
        ),
        Case(
            "import-all",
            prep_import_all,
            lambda db, w: ["import-all", str(w / "export"), "--db", str(db), "--json"],
        ),
        Case("clear", prep_clear, lambda db, w: ["clear", "--db", str(db), "--yes"]),
    ]


def _opened(db: Path) -> bool:
    """The command has opened the database: SQLite created the WAL index beside it."""
    return Path(f"{db}-shm").exists()


@dataclass
class Reference:
    before: str
    after: str
    base: Path
    seconds: float  # the whole command in-process (no interpreter start-up): the work
    peak_wal: int  # the largest the WAL grew: a measure of how far the writing got


def reference(case: Case, work: Path) -> Reference:
    """Build the before-state once and run the operation to completion on a copy."""
    import threading

    work.mkdir(parents=True, exist_ok=True)
    base = work / "base.db"
    case.prepare(base, work)
    assert not Path(f"{base}-wal").exists()  # closed and checkpointed: a file copy is exact
    before = digest(base)
    full = work / "full.db"
    _fresh(full)
    shutil.copy(base, full)
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _wal_bytes(full))
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # In this process (no interpreter start-up to pay): the time is the database work.
    started = time.perf_counter()
    try:
        code, err = run_in_process(case.argv(full, work))
    finally:
        ended = time.perf_counter()
        done.set()
        watcher.join()
    assert code == 0, err
    after = digest(full)
    assert after != before, f"{case.name}: the operation changed nothing"
    return Reference(before, after, base, ended - started, peak)


def run_in_process(argv: list[str]) -> tuple[int, str]:
    """``smart-suggest ARGV`` through the real entry point, here; (exit code, stderr)."""
    import contextlib
    import io

    # Import what the commands import lazily, so that timing measures the work alone.
    import smart_suggest.experiments.events
    import smart_suggest.importer
    import smart_suggest.portability
    import smart_suggest.sample  # noqa: F401
    from smart_suggest.cli import main

    os.environ["SMART_SUGGEST_NOW"] = FIXED_NOW
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, err.getvalue()


@dataclass
class Outcome:
    state: str  # "before" | "after"
    killed: bool  # the process was still running when SIGKILL arrived
    point: str  # where the kill was aimed


#: A kill point: ("time", f) = f x the reference's work after the database was opened;
#: ("wal", f) = once the WAL reaches f x its peak size in the reference (f = 0: its first
#: byte, i.e. the first cache spill or the commit; f near 1: the commit frame, or the
#: checkpoint after it).
Point = tuple[str, float]
AT_COMMIT: Point = ("wal", 0.0)


@dataclass
class _Run:
    db: Path
    point: Point
    proc: subprocess.Popen[bytes]
    deadline: float
    opened_at: float | None = None
    killed: bool = False


def _fresh(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def _due(r: _Run, ref: Reference, now: float) -> bool:
    kind, fraction = r.point
    if now > r.deadline:
        return True
    if kind == "wal":
        return _wal_bytes(r.db) >= max(1, int(fraction * ref.peak_wal))
    if r.opened_at is None:
        if not _opened(r.db):
            return False
        r.opened_at = now
    return now >= r.opened_at + fraction * ref.seconds


def crash_runs(
    case: Case, ref: Reference, work: Path, points: list[Point], parallel: int = 3
) -> list[Outcome]:
    """Run the operation on fresh copies and SIGKILL each at its ``Point``; ``parallel``
    at once. Time points count from the moment *this* run opened the database: start-up
    time varies a lot on a loaded machine, the work much less."""
    outcomes: list[Outcome] = []
    for first in range(0, len(points), parallel):
        batch: list[_Run] = []
        for k, point in enumerate(points[first : first + parallel], start=first):
            db = work / f"run{k}.db"
            _fresh(db)
            shutil.copy(ref.base, db)
            proc = subprocess.Popen(
                cli(*case.argv(db, work)),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=_env(),
            )
            batch.append(_Run(db, point, proc, time.perf_counter() + 20 * ref.seconds + 60))
        running = list(batch)
        while running:  # poll only: checking a finished run now would blind us to the others
            now = time.perf_counter()
            for r in list(running):
                if r.proc.poll() is None:
                    if not _due(r, ref, now):
                        continue
                    os.kill(r.proc.pid, signal.SIGKILL)
                    r.killed = r.proc.wait() == -signal.SIGKILL
                r.proc.wait()
                running.remove(r)
            time.sleep(0.001)
        outcomes += [_verify(case, ref, r) for r in batch]
    return outcomes


def _verify(case: Case, ref: Reference, r: _Run) -> Outcome:
    kind, fraction = r.point
    point = f"{fraction:.0%} of the {'WAL' if kind == 'wal' else 'work time'}"
    where = f"{case.name}, SIGKILL at {point}"
    ok, dangling = checks(r.db)
    assert ok == "ok", f"{where}: integrity {ok}"
    assert dangling == [], f"{where}: dangling foreign keys {dangling[:3]}"
    state = digest(r.db)
    assert state in (ref.before, ref.after), f"{where}: half applied"
    # The survivor opens and takes a write (no stale lock, no leftover dropped index).
    from smart_suggest.store import open_store

    with open_store(r.db) as s:
        s.conn.execute("INSERT INTO users(username, created_at) VALUES ('after-crash', 0)")
    _fresh(r.db)
    return Outcome("after" if state == ref.after else "before", r.killed, point)


def kill_points(
    runs: int,
    rng: random.Random,
    span: float = 1.0,
    wal_span: float = 0.9,
    at_peak: bool = False,
) -> list[Point]:
    """The first kill at the first WAL byte; the others split between random points of the
    work time (stratified over ``span`` x the work) and of the WAL's growth (over
    ``wal_span`` x its peak). ``at_peak`` makes the last one wait for the WAL's full size:
    the commit is written and the checkpoint after it runs (or the command is done)."""
    points: list[Point] = [AT_COMMIT]
    timed = list(range(runs // 2))
    walled = list(range((runs - 1) // 2))
    for k in timed:
        points.append(("time", span * (k + rng.random()) / len(timed)))
    for k in walled:
        points.append(("wal", wal_span * (k + rng.random()) / len(walled)))
    if at_peak and len(points) > 2:
        points[-1] = ("wal", 1.0)
    return points[:runs]


CASES = make_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sigkill_leaves_all_or_nothing(case: Case, tmp_path: Path) -> None:
    ref = reference(case, tmp_path)
    rng = random.Random()  # fresh points every run; the messages name the point
    outcomes = crash_runs(case, ref, tmp_path, kill_points(KILLS_PER_CASE, rng))
    # The kills landed while the command ran (else the test proved nothing).
    assert sum(o.killed for o in outcomes) >= KILLS_PER_CASE - 1, outcomes
