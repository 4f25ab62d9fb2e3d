"""Reliability, round two: output files, terminal safety, hostile input, full disks, names.

Each test is a reproducer from the reliability review, run for real: real SQLite files in
tmp_path, real FIFOs, device nodes, symlinks and hard links, a pseudo-terminal for "stdout
is a terminal", a tiny tmpfs for a full disk (skipped where mounting is not permitted),
and subprocesses where a signal or raw stdin bytes are part of the case.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import pty
import select
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from smart_suggest import store as store_mod
from smart_suggest import tracking
from smart_suggest.store import TABLES, open_store

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "smart_suggest"]

#: Usernames that try to take over a terminal, one per trick in the review.
HOSTILE_NAMES = [
    "osc52\x1b]52;c;SGVsbG8=\x07",  # clipboard write
    "clear\x1b[2J\x1b[H",  # screen clear, cursor home
    "bell\x07x",
    "carriage\rreturn",
    "c1csi\x9b31mred",  # the one-character CSI
    "rlo\u202egnp.exe",  # right-to-left override
    "lrm\u200ex alm\u061cy isolate\u2066z",
    "del\x7fete",
    'comma, "quote"\nnewline',
]
#: What must never reach a terminal raw.
FORBIDDEN = ["\x1b", "\x07", "\r", "\x9b", "\u202e", "\u200e", "\u061c", "\u2066", "\x7f"]


def _record(case: str, *, rows_lost: int = 0, clobbered: int = 0, leftovers: int = 0) -> None:
    """Append measured figures for ``benchmarks/stress.py --only hostile-files``."""
    log = os.environ.get("SMART_SUGGEST_STRESS_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{case}\t{rows_lost}\t{clobbered}\t{leftovers}\n")


def _lost(
    before: dict[str, list[tuple[object, ...]]], after: dict[str, list[tuple[object, ...]]]
) -> int:
    return sum(len(set(before[t]) - set(after.get(t, []))) for t in before)


def _one_line(err: str) -> str:
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert "Traceback" not in err and "internal error" not in err, err
    assert lines[0].startswith("smart-suggest: error: ")
    return lines[0]


def _rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}
    finally:
        conn.close()


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def demo(tmp_path: Path, demo_template: Path) -> Path:
    path = tmp_path / "s.db"
    shutil.copy(demo_template, path)
    return path


def _hostile_db(path: Path) -> Path:
    """A small catalogue whose users carry the hostile names, each with some history."""
    with open_store(path) as s:
        items = [tracking.add_item(s, f"item {i}", "cat").id for i in range(6)]
        for n, name in enumerate(HOSTILE_NAMES):
            uid = tracking.add_user(s, name).id
            for item in items[n % 3 : n % 3 + 3]:
                tracking.log_interaction(s, uid, item, "click")
    return path


def _hidden_temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- 1. the database and its files are never an output ---------------------------------------
def _target(kind: str, db: Path, tmp_path: Path) -> Path:
    if kind in ("", "-wal", "-shm", "-journal"):
        return Path(f"{db}{kind}")
    if kind == "symlink":
        link = tmp_path / "link.db"
        link.symlink_to(db)
        return link
    if kind == "symlink-to-wal":
        link = tmp_path / "link-wal"
        link.symlink_to(Path(f"{db}-wal"))
        return link
    link = tmp_path / "hard.db"
    os.link(db, link)
    return link


@contextmanager
def _wal_kept(db: Path) -> Iterator[None]:
    """Keep a committed transaction in ``db``'s WAL (no checkpoint) while the block runs."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("INSERT INTO users(username, created_at) VALUES ('only-in-the-wal', 0)")
    assert Path(f"{db}-wal").stat().st_size > 0
    try:
        yield
    finally:
        conn.close()


@pytest.mark.parametrize(
    "kind", ["", "-wal", "-shm", "-journal", "symlink", "symlink-to-wal", "hardlink"]
)
@pytest.mark.parametrize("command", ["recommend", "backup"])
def test_the_database_and_its_files_are_refused_even_with_force(
    tmp_path: Path, demo: Path, run_cli, kind: str, command: str
) -> None:  # type: ignore[no-untyped-def]
    with _wal_kept(demo):
        target = _target(kind, demo, tmp_path)
        before = _rows(demo)
        sidecars = {
            s: Path(f"{demo}{s}").read_bytes()
            for s in ("-wal", "-shm")
            if Path(f"{demo}{s}").exists()
        }
        if command == "recommend":
            args = ["recommend", "--all-users", "-o", target, "--force", "--db", demo]
        else:
            args = ["backup", target, "--force", "--db", demo]
        code, out, err = run_cli(*args)
        after = _rows(demo)
        wal_changed = Path(f"{demo}-wal").read_bytes() != sidecars["-wal"]
        _record(
            f"{command} onto {kind or 'db'}",
            rows_lost=_lost(before, after),
            clobbered=int(wal_changed or after != before),
        )
        line = _one_line(err)
        assert code == 2, line
        assert "open database" in line and str(target) in line
        assert out == ""
        assert _rows(demo) == before
        assert any(u[1] == "only-in-the-wal" for u in before["users"])
        assert Path(f"{demo}-wal").read_bytes() == sidecars["-wal"]
    assert _integrity(demo) == "ok"
    assert not Path(f"{demo}-journal").exists()
    code, _out, err = run_cli("status", "--db", demo)
    assert code == 0, err


def test_the_database_opened_through_a_symlink_keeps_its_wal(
    tmp_path: Path, demo: Path, run_cli
) -> None:  # type: ignore[no-untyped-def]
    link = tmp_path / "via-link.db"
    link.symlink_to(demo)
    for target in (Path(f"{demo}-wal"), Path(f"{link}-wal"), demo):
        code, _out, err = run_cli("backup", target, "--force", "--db", link)
        assert code == 2 and "open database" in _one_line(err)
    assert _integrity(demo) == "ok"


def test_the_wal_of_another_database_is_refused(tmp_path: Path, demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """``backup --force other.db-wal`` dropped committed transactions of that database too."""
    other = tmp_path / "other.db"
    shutil.copy(demo, other)
    with _wal_kept(other):
        wal = Path(f"{other}-wal")
        before = wal.read_bytes()
        for args in (
            ["backup", wal, "--force"],
            ["recommend", "--all-users", "-o", wal, "--force"],
        ):
            code, _out, err = run_cli(*args, "--db", demo)
            assert code == 2 and "SQLite database beside it" in _one_line(err)
            assert wal.read_bytes() == before
    assert any(u[1] == "only-in-the-wal" for u in _rows(other)["users"])


def test_recommend_into_the_database_reproducer(demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """The review's case: ``recommend --all-users -o s.db --db s.db`` exited 0 and left a CSV."""
    code, _out, err = run_cli("recommend", "--all-users", "-o", demo, "--db", demo)
    assert code == 2 and "open database" in _one_line(err)
    assert demo.read_bytes()[:16] == b"SQLite format 3\x00"


# -- an existing file only with --force; regular files replaced atomically --------------------
def test_existing_file_needs_force(tmp_path: Path, demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    out_file = tmp_path / "recs.csv"
    out_file.write_text("precious\n")
    code, _out, err = run_cli("recommend", "--all-users", "-o", out_file, "--db", demo)
    _record("existing file without --force", clobbered=int(out_file.read_text() != "precious\n"))
    line = _one_line(err)
    assert code == 2 and "already exists" in line and "--force" in line
    assert out_file.read_text() == "precious\n"
    out_file.chmod(0o640)
    code, _out, err = run_cli("recommend", "--all-users", "-o", out_file, "--force", "--db", demo)
    assert code == 0, err
    assert out_file.read_text().startswith("user_id,item_id,rank,score\n")
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o640  # replaced, permissions kept
    assert _hidden_temp_files(tmp_path) == []


@pytest.mark.parametrize("command", ["recommend", "backup"])
def test_symlink_writes_its_target_and_stays_a_symlink(
    tmp_path: Path, demo: Path, run_cli, command: str
) -> None:  # type: ignore[no-untyped-def]
    real = tmp_path / "elsewhere" / "real.out"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "link.out"
    link.symlink_to(real)
    if command == "recommend":
        code, _out, err = run_cli("recommend", "--all-users", "-o", link, "--force", "--db", demo)
    else:
        code, _out, err = run_cli("backup", link, "--force", "--db", demo)
    _record(f"{command} through a symlink", clobbered=int(not link.is_symlink()))
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == real
    data = real.read_bytes()
    assert data.startswith(b"user_id," if command == "recommend" else b"SQLite format 3\x00")
    assert _hidden_temp_files(tmp_path) == [] and _hidden_temp_files(real.parent) == []


def _null_device(path: Path) -> Path:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the same device as /dev/null
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot create a device node here ({exc})")
    return path


@pytest.mark.parametrize("command", ["recommend", "backup"])
def test_character_device_is_written_not_replaced(
    tmp_path: Path, demo: Path, run_cli, command: str
) -> None:  # type: ignore[no-untyped-def]
    """``-o /dev/null`` as root turned the machine's /dev/null into a regular file. A device
    node of our own, made like /dev/null, shows it without risking the real one."""
    dev = _null_device(tmp_path / "null")
    if command == "recommend":
        code, _out, err = run_cli("recommend", "--all-users", "-o", dev, "--db", demo)
    else:
        code, _out, err = run_cli("backup", dev, "--db", demo)
    _record(
        f"{command} into a character device", clobbered=int(not stat.S_ISCHR(dev.stat().st_mode))
    )
    assert code == 0, err
    assert stat.S_ISCHR(dev.stat().st_mode)
    assert _hidden_temp_files(tmp_path) == []


@pytest.mark.parametrize("command", ["recommend", "backup"])
def test_fifo_is_written_through(tmp_path: Path, demo: Path, run_cli, command: str) -> None:  # type: ignore[no-untyped-def]
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = tmp_path / "got"
    with open(got, "wb") as sink:
        reader = subprocess.Popen(["cat", str(fifo)], stdout=sink)
    try:
        if command == "recommend":
            code, _out, err = run_cli("recommend", "--all-users", "-o", fifo, "--db", demo)
        else:
            code, _out, err = run_cli("backup", fifo, "--db", demo)
        assert code == 0, err
        reader.wait(timeout=20)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    _record(f"{command} into a FIFO", clobbered=int(not stat.S_ISFIFO(fifo.lstat().st_mode)))
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    data = got.read_bytes()
    if command == "recommend":
        assert data.startswith(b"user_id,item_id,rank,score\n") and data.count(b"\n") > 100
    else:
        assert data[:16] == b"SQLite format 3\x00"
        assert _rows(got) == _rows(demo)  # a whole, consistent copy came through the pipe
    assert _hidden_temp_files(tmp_path) == []


def test_leftovers_of_a_killed_backup_are_removed_by_the_next_write(
    tmp_path: Path, demo: Path, run_cli
) -> None:  # type: ignore[no-untyped-def]
    dead = subprocess.Popen(["true"])
    dead.wait()
    out = tmp_path / "out"
    out.mkdir()
    stale = [
        out / f".b.db.smart-suggest-{dead.pid}.tmp",
        out / f".b.db.smart-suggest-{dead.pid}.tmp-journal",
    ]
    for p in stale:
        p.write_bytes(b"x" * 100_000)
    running = subprocess.Popen(["sleep", "60"])
    alive = out / f".b.db.smart-suggest-{running.pid}.tmp"  # a write still running: kept
    alive.write_bytes(b"y")
    try:
        code, _out, err = run_cli("backup", out / "b.db", "--db", demo)
    finally:
        running.kill()
        running.wait()
    assert code == 0, err
    assert not any(p.exists() for p in stale)
    assert alive.exists()


def test_sigterm_during_a_backup_removes_its_temporary_file(tmp_path: Path, demo: Path) -> None:
    """A backup blocked on a FIFO nobody drains is terminated: exit 143, one line, no
    temporary file left (it is as large as the database)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # open, never read: the pipe fills
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.Popen(
            [*CLI, "backup", str(fifo), "--db", str(demo)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(tmpdir.iterdir()):
            time.sleep(0.05)
        assert any(tmpdir.iterdir()), "the backup never started"
        time.sleep(0.5)  # the copy into the FIFO is now blocked on the full pipe
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        os.close(reader)
    _record("SIGTERM during a backup", leftovers=len(list(tmpdir.iterdir())))
    assert proc.returncode == 143, err
    assert _one_line(err.decode()).endswith("terminated")
    assert list(tmpdir.iterdir()) == []


def test_sigkill_during_a_backup_leaves_a_file_the_next_backup_removes(
    tmp_path: Path, demo: Path
) -> None:
    """SIGKILL cannot be caught: the temporary file stays, and the next write removes it."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT)}
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        proc = subprocess.Popen(
            [*CLI, "backup", str(fifo), "--db", str(demo)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(tmpdir.iterdir()):
            time.sleep(0.05)
        time.sleep(0.5)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        os.close(reader)
    left = list(tmpdir.iterdir())
    assert left and all(p.name.startswith(".pipe.smart-suggest-") for p in left)
    got = tmp_path / "got"
    with open(got, "wb") as sink:
        cat = subprocess.Popen(["cat", str(fifo)], stdout=sink)
    try:
        again = subprocess.run(
            [*CLI, "backup", str(fifo), "--db", str(demo)],
            capture_output=True,
            env=env,
            timeout=120,
        )
        cat.wait(timeout=30)
    finally:
        if cat.poll() is None:
            cat.kill()
            cat.wait()
    _record("SIGKILL during a backup, then a new backup", leftovers=len(list(tmpdir.iterdir())))
    assert again.returncode == 0, again.stderr
    assert list(tmpdir.iterdir()) == []
    assert _rows(got) == _rows(demo)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


# -- export: a temporary folder renamed at the end -------------------------------------------
def test_export_into_an_existing_empty_folder_and_refusals(
    tmp_path: Path, demo: Path, run_cli
) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _out, err = run_cli("export", empty, "--db", demo)
    assert code == 0, err
    assert (empty / "manifest.json").is_file()
    code, _out, err = run_cli("export", empty, "--db", demo)
    assert code == 2 and "not empty" in _one_line(err)
    code, _out, err = run_cli("export", demo, "--db", demo)
    assert code == 2 and "open database" in _one_line(err)
    assert _hidden_temp_files(tmp_path) == []


@contextmanager
def _tmpfs(target: Path, size: str) -> Iterator[None]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    target.mkdir(exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"mount not permitted here: {proc.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def test_export_onto_a_full_disk_leaves_nothing_and_a_retry_works(
    tmp_path: Path, demo: Path, run_cli
) -> None:  # type: ignore[no-untyped-def]
    disk = tmp_path / "disk"
    with _tmpfs(disk, "256k"):
        target = disk / "backup-dir"
        code, _out, err = run_cli("export", target, "--db", demo)
        line = _one_line(err)
        assert code == 1, line
        assert str(target) in line and "disk is full" in line
        _record("export onto a full disk", leftovers=len(list(disk.iterdir())))
        assert list(disk.iterdir()) == []  # no partial folder, no hidden temporary one
        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
        code, _out, err = run_cli("export", target, "--db", demo)
        assert code == 0, err
        assert sorted(p.name for p in disk.iterdir()) == ["backup-dir"]
        code, _out, err = run_cli("import-all", target, "--db", tmp_path / "copy.db")
        assert code == 0, err
    assert _rows(tmp_path / "copy.db") == _rows(demo)


def test_backup_onto_a_full_disk_names_the_target(tmp_path: Path, demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    disk = tmp_path / "disk"
    with _tmpfs(disk, "128k"):
        target = disk / "b.db"
        code, _out, err = run_cli("backup", target, "--db", demo)
        line = _one_line(err)
        assert code == 1, line
        assert line.startswith(f"smart-suggest: error: {target}:"), line
        assert "full" in line or "while writing" in line
        _record("backup onto a full disk", leftovers=len(list(disk.iterdir())))
        assert list(disk.iterdir()) == []
    assert _integrity(demo) == "ok"


def test_recommend_onto_a_full_disk_names_the_file(tmp_path: Path, demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    disk = tmp_path / "disk"
    with _tmpfs(disk, "4k"):
        target = disk / "recs.csv"
        code, _out, err = run_cli("recommend", "--all-users", "-o", target, "--db", demo)
        line = _one_line(err)
        assert code == 1 and str(target) in line and "disk is full" in line, line
        assert list(disk.iterdir()) == []


# -- 10. transactions keep the real error; one exit code for "locked" ------------------------
def test_every_command_on_a_full_disk_says_so(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """A 100% full disk: every command, even ``status``, said "cannot commit - no
    transaction is active" (exit 2), the COMMIT in a finally hiding the real error."""
    disk = tmp_path / "disk"
    with _tmpfs(disk, "512k"):
        path = disk / "x.db"
        with open_store(path) as s:
            tracking.add_user(s, "bob")
        assert sorted(p.name for p in disk.iterdir()) == ["x.db"]  # WAL checkpointed, gone
        with open(disk / "filler", "wb", buffering=0) as fh:  # fill the disk to the last block
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError:
                pass
        for command in (["status"], ["users", "list"], ["users", "add", "carol"]):
            code, _out, err = run_cli(*command, "--db", path)
            line = _one_line(err)
            assert code == 1, line
            assert str(path) in line and "disk" in line and "full" in line, line
            assert "cannot commit" not in line
        (disk / "filler").unlink()
        with open_store(path) as s:
            assert [u.username for u in tracking.list_users(s)] == ["bob"]


@pytest.mark.parametrize("kind", ["read", "write"])
def test_an_error_that_ended_the_transaction_is_not_replaced(tmp_path: Path, kind: str) -> None:
    """After an I/O error SQLite may roll the transaction back itself; a COMMIT in a finally
    then said "cannot commit - no transaction is active" instead of the real cause."""
    with open_store(tmp_path / "x.db") as s:
        block = s.read() if kind == "read" else s.write()
        with pytest.raises(sqlite3.OperationalError, match="disk is full"), block as conn:
            conn.execute("SELECT count(*) FROM users").fetchone()
            conn.execute("ROLLBACK")  # what SQLite does on SQLITE_FULL / SQLITE_IOERR
            raise sqlite3.OperationalError("database or disk is full")
        assert not s.conn.in_transaction
        assert s.counts()["users"] == 0  # and the store still works


def test_database_is_locked_is_exit_1_at_open_and_in_mid_command(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT_MS", 300)
    # In mid-command: another process holds the write lock of a working database.
    path = tmp_path / "x.db"
    open_store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        code, _out, err = run_cli("users", "add", "bob", "--db", path)
    finally:
        holder.close()
    mid = _one_line(err)
    assert code == 1 and "locked" in mid and str(path) in mid, mid
    # At open: a new file another process holds exclusively while creating it.
    fresh = tmp_path / "fresh.db"
    holder = sqlite3.connect(fresh, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        code, _out, err = run_cli("users", "add", "bob", "--db", fresh)
    finally:
        holder.close()
    at_open = _one_line(err)
    assert code == 1 and "locked" in at_open and str(fresh) in at_open, at_open


def test_ctrl_c_during_a_bulk_load_says_interrupted(tmp_path: Path) -> None:
    """typer turned ctrl+c into a bare exit 130 with a blank line on stderr."""
    path = tmp_path / "big.db"
    proc = subprocess.Popen(
        [
            *CLI,
            "seed",
            "--db",
            str(path),
            "--users",
            "3000",
            "--items",
            "500",
            "--interactions",
            "3000000",
            "--events",
            "0",
            "--yes",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not Path(f"{path}-wal").exists():
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.decode() == "smart-suggest: error: interrupted\n"
    assert _integrity(path) == "ok"


# -- 8. terminal safety -----------------------------------------------------------------------
def _run_on_a_terminal(args: list[str]) -> tuple[int, str, str]:
    """Run the CLI with stdout on a pseudo-terminal (raw: no CR added); return its output."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen(
        [*CLI, *args],
        stdout=slave,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            raise AssertionError("no output from the command on the terminal")
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the command closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.wait(timeout=30)
    return proc.returncode, b"".join(chunks).decode("utf-8"), err


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_all_users_on_a_terminal_shows_control_characters_escaped(tmp_path: Path, fmt: str) -> None:
    path = _hostile_db(tmp_path / "h.db")
    code, out, err = _run_on_a_terminal(
        ["recommend", "--all-users", "--user-key", "username", "--format", fmt, "--db", str(path)]
    )
    assert code == 0, err
    raw = sum(out.count(ch) for ch in FORBIDDEN)
    _record(f"hostile names on a terminal ({fmt}): raw control characters {raw}", clobbered=0)
    for ch in FORBIDDEN:
        assert ch not in out, f"{ch!r} reached the terminal raw"
    assert "\\x1b]52;c;SGVsbG8=\\x07" in out or "\\u001b]52" in out  # shown, visibly
    assert "\\u202e" in out
    assert "\\x9b" in out or "\\u009b" in out
    lines = out.strip("\n").split("\n")
    assert len(lines) > len(HOSTILE_NAMES)  # each record still on its own line


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_all_users_to_a_pipe_is_the_exact_data(tmp_path: Path, fmt: str) -> None:
    path = _hostile_db(tmp_path / "h.db")
    proc = subprocess.run(
        [
            *CLI,
            "recommend",
            "--all-users",
            "--user-key",
            "username",
            "--format",
            fmt,
            "--db",
            str(path),
        ],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode("utf-8")
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert rows[0] == ["user", "item_id", "rank", "score"]
        names = {r[0] for r in rows[1:]}
    else:
        # JSON carries the same characters as \u escapes: nothing raw for a later `cat`.
        for ch in [c for c in FORBIDDEN if c != "\r"] + ["\n"]:
            assert ch not in text.replace("}\n", "}"), f"{ch!r} raw in JSON Lines"
        names = {json.loads(line)["user"] for line in text.splitlines()}
    assert names == set(HOSTILE_NAMES)


def test_success_message_on_stderr_is_escaped(tmp_path: Path, demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "out\x1b[2J\u202e.csv"
    code, _out, err = run_cli("recommend", "--all-users", "-o", target, "--db", demo)
    assert code == 0, err
    assert "\x1b" not in err and "\u202e" not in err
    assert "\\x1b[2J\\u202e.csv" in err


# -- 9. hostile input: one line, exit 2, never "internal error" -------------------------------
def test_argument_bytes_that_are_not_utf8(demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    before = _rows(demo)
    for args in (["users", "add", "bad\udcff"], ["users", "show", "x\udce9"]):
        code, _out, err = run_cli(*args, "--db", demo)
        line = _one_line(err)
        assert code == 2 and "UTF-8" in line, line
    assert _rows(demo) == before


def test_latin1_on_stdin_for_file_dash(demo: Path) -> None:
    before = _rows(demo)
    proc = subprocess.run(
        [*CLI, "experiment", "log", "homepage-recs-v1-vs-v2", "--file", "-", "--db", str(demo)],
        input="user,item,type\nalice,1,click\ncafé,1,click\n".encode("latin-1"),
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    line = _one_line(proc.stderr.decode())
    assert proc.returncode == 2 and "UTF-8" in line, line
    assert _rows(demo) == before


def _export(tmp_path: Path, demo: Path, run_cli) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "exp"
    code, _out, err = run_cli("export", folder, "--db", demo)
    assert code == 0, err
    return folder


def _rewrite(folder: Path, table: str, data: bytes) -> None:
    (folder / f"{table}.jsonl").write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["tables"][table]["sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_import_all_with_deeply_nested_json(tmp_path: Path, demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    folder = _export(tmp_path, demo, run_cli)
    _rewrite(folder, "users", b"[" * 100_000 + b"\n")
    target = tmp_path / "new.db"
    code, _out, err = run_cli("import-all", folder, "--db", target)
    assert code == 2 and "users.jsonl:1" in _one_line(err)
    (folder / "manifest.json").write_bytes(b"[" * 100_000)
    code, _out, err = run_cli("import-all", folder, "--db", target)
    assert code == 2 and "manifest.json" in _one_line(err)
    assert sum(len(v) for v in _rows(target).values()) == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (None, "users-is-a-string", "expected an object"),
        ("rows", "many", "'rows'"),
        ("rows", -1, "'rows'"),
        ("rows", True, "'rows'"),
        ("columns", 5, "'columns'"),
        ("columns", ["id", "id", "created_at"], "'columns'"),
        ("columns", [1, 2, 3], "'columns'"),
        ("file", 5, "'file'"),
        ("file", "../users.jsonl", "'file'"),
        ("file", None, "'file'"),
        ("sha256", 7, "'sha256'"),
        ("sha256", "zz", "'sha256'"),
    ],
)
def test_import_all_with_malformed_manifest_fields(
    tmp_path: Path, demo: Path, run_cli, field: str | None, value: object, message: str
) -> None:  # type: ignore[no-untyped-def]
    folder = _export(tmp_path, demo, run_cli)
    manifest = json.loads((folder / "manifest.json").read_text())
    if field is None:
        manifest["tables"]["users"] = value
    else:
        manifest["tables"]["users"][field] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))
    target = tmp_path / "new.db"
    code, _out, err = run_cli("import-all", folder, "--db", target)
    line = _one_line(err)
    assert code == 2 and message in line and "table users" in line, line
    assert sum(len(v) for v in _rows(target).values()) == 0


# -- 14. names that ids or spaces would shadow ------------------------------------------------
def test_username_that_is_an_id_is_refused(demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    before = _rows(demo)
    for name in ("7", " 7", "0042", "99999"):
        code, _out, err = run_cli("users", "add", name, "--db", demo)
        line = _one_line(err)
        assert code == 2 and "digits" in line, line
    assert _rows(demo) == before
    code, out, _err = run_cli("users", "show", "7", "--json", "--db", demo)
    assert code == 0 and json.loads(out)["profile"]["user"]["id"] == 7


def test_username_differing_only_by_surrounding_spaces_is_refused(demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(demo)
    conn.execute("INSERT INTO users(username, created_at) VALUES (' legacy ', 0)")  # an old row
    conn.commit()
    conn.close()
    before = _rows(demo)
    for name in (" alice", "alice ", "\talice", "legacy"):
        code, _out, err = run_cli("users", "add", name, "--db", demo)
        line = _one_line(err)
        assert code == 2 and ("spaces" in line or "already exists" in line), line
    assert _rows(demo) == before
    code, _out, err = run_cli("users", "add", "alice smith", "--db", demo)  # inner spaces: fine
    assert code == 0, err
    code, _out, err = run_cli("users", "add", " solo ", "--db", demo)  # no twin: stored as is
    assert code == 0, err
    code, _out, err = run_cli("users", "add", "solo", "--db", demo)
    assert code == 2 and "only by spaces" in _one_line(err)


def test_every_console_line_on_a_terminal_is_escaped() -> None:
    """A string printed without ``safe()`` still cannot reach a terminal raw; rich's own
    styles still can (they are not user data)."""
    from rich.text import Text

    from smart_suggest.cli._common import _TerminalSafeConsole

    for terminal in (True, False):
        buf = io.StringIO()
        con = _TerminalSafeConsole(
            file=buf, force_terminal=terminal, markup=False, highlight=False, width=200
        )
        con.print("plain \x1b]52;c;SGVsbG8=\x07 \x9b2J \u202eevil")
        con.print(Text("styled", style="bold"))
        out = buf.getvalue()
        if terminal:
            # (rich drops BEL, BS, VT, FF and CR itself)
            assert "plain \\x1b]52;c;SGVsbG8= \\x9b2J \\u202eevil\n" in out
            assert "\x07" not in out and "\x9b" not in out and "\u202e" not in out
            assert "\x1b[1mstyled" in out
        else:
            assert "\x1b]52;c;SGVsbG8= \x9b2J \u202eevil" in out  # exact data off a terminal


def test_termsafe_json_never_carries_raw_controls() -> None:
    from smart_suggest.termsafe import json_dumps

    value = {"name": "a\x1b\x7f\x85\x9b\u202e\u2066\u200e\u061c\u2028z"}
    text = json_dumps(value, ensure_ascii=False)
    assert json.loads(text) == value
    assert all(ch.isprintable() for ch in text)


def test_experiment_name_differing_only_by_spaces_is_refused(demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    before = _rows(demo)
    code, _out, err = run_cli("experiment", "create", " homepage-recs-v1-vs-v2", "--db", demo)
    assert code == 2 and "only by spaces" in _one_line(err)
    assert _rows(demo) == before
