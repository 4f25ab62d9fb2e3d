"""Wrong files and environments: one clear line naming the file and the cause, file untouched.

Every case runs a real command (in-process ``main()``, or a subprocess where the fault needs
one: file size limits, mounts) against a real file and then checks three things: the exit
code (2 for a file that is not ours or is damaged, 1 for a failing environment), exactly
one line on stderr naming the file and the cause, and the file left as it was (its bytes,
or, where SQLite legitimately touches the WAL, every row of every table).

Tests run as root in CI, where permission bits stop nothing. Two mechanisms work as root:

* ``store._writable`` treats a file or folder with no write bit at all as read-only for
  root too (a user who ran ``chmod a-w`` meant it), so ``chmod`` cases run everywhere;
* a read-only bind mount and a tiny tmpfs give real ``EROFS`` / ``ENOSPC`` even for root.
  They need ``mount`` (root with CAP_SYS_ADMIN) and are skipped where it is not permitted.

A full database is also emulated without privileges: ``PRAGMA max_page_count`` on the
command's own connection, and ``RLIMIT_FSIZE`` on a subprocess.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from smart_suggest import store as store_mod
from smart_suggest.store import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, TABLES, open_store

Rows = dict[str, list[tuple[object, ...]]]
ROOT = Path(__file__).resolve().parents[1]

# Commands that open the database: read-only ones and writing ones.
READ_COMMANDS: list[list[str]] = [["status"], ["users", "list"], ["items", "show", "1"]]
WRITE_COMMANDS: list[list[str]] = [["users", "add", "newcomer"], ["seed", "--yes"], ["clear", "-y"]]


def _sidecars(path: Path) -> list[str]:
    return [s for s in ("-wal", "-shm", "-journal") if Path(f"{path}{s}").exists()]


def _one_line(err: str) -> str:
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert "Traceback" not in err
    assert lines[0].startswith("smart-suggest: error: ")
    return lines[0]


def _rows(path: Path) -> Rows:
    """Every row of every table, read with plain sqlite3 (read-only)."""
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


def _small_db(path: Path) -> Path:
    """A smart-suggest database with a few rows, checkpointed into the main file."""
    with open_store(path) as s:
        s.conn.execute("INSERT INTO users(id, username, created_at) VALUES (1, 'ada', 0)")
        s.conn.execute(
            "INSERT INTO items(id, name, category, created_at) VALUES (1, 'lamp', 'home', 0)"
        )
        s.conn.execute(
            "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (1, 1, 'view', 0)"
        )
    assert _sidecars(path) == []
    return path


# -- files that are not ours -----------------------------------------------------------------------
def _text_file(p: Path) -> None:
    p.write_text("shopping list: milk, eggs\n")


def _other_app(p: Path) -> None:
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE recipes(id INTEGER PRIMARY KEY, title TEXT)")
    conn.execute("INSERT INTO recipes(title) VALUES ('soup')")
    conn.commit()
    conn.close()


def _other_app_wal(p: Path) -> None:
    conn = sqlite3.connect(p)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE moz_places(id INTEGER PRIMARY KEY, url TEXT)")
    conn.execute("INSERT INTO moz_places(url) VALUES ('https://example.org')")
    conn.commit()
    conn.close()


def _other_app_with_our_table_names(p: Path) -> None:
    """Another application that happens to have a ``users`` table (no application id)."""
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT)")
    conn.commit()
    conn.close()


def _newer_schema(p: Path) -> None:
    _small_db(p)
    conn = sqlite3.connect(p)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()


def _foreign_application_id(p: Path) -> None:
    conn = sqlite3.connect(p)
    conn.execute("PRAGMA application_id = 1234")
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()


def _random_bytes(p: Path) -> None:
    p.write_bytes(os.urandom(20_000))


def _header_then_garbage(p: Path) -> None:
    p.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)


def _truncated(p: Path) -> None:
    from smart_suggest.sample import load_demo

    with open_store(p) as s:
        load_demo(s, seed=1)
    size = p.stat().st_size
    with open(p, "r+b") as fh:
        fh.truncate(size // 2)


BAD_FILES: dict[str, tuple[Callable[[Path], None], str, int]] = {
    # name: (make it, expected cause in the message, exit code)
    "text file": (_text_file, "not a SQLite database", 2),
    "random bytes": (_random_bytes, "not a SQLite database", 2),
    "other application": (_other_app, "another application", 2),
    "other application in WAL mode": (_other_app_wal, "another application", 2),
    "other application with a users table": (
        _other_app_with_our_table_names,
        "another application",
        2,
    ),
    "other application id": (_foreign_application_id, "another application", 2),
    "newer smart-suggest": (_newer_schema, "newer smart-suggest", 2),
    "SQLite header then garbage": (_header_then_garbage, "not a valid SQLite database", 2),
    "truncated smart-suggest database": (_truncated, "not a valid SQLite database", 2),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
@pytest.mark.parametrize("command", [READ_COMMANDS[0], WRITE_COMMANDS[0], WRITE_COMMANDS[1]])
def test_bad_file_one_line_and_untouched(
    tmp_path: Path, run_cli, kind: str, command: list[str]
) -> None:  # type: ignore[no-untyped-def]
    make, cause, code = BAD_FILES[kind]
    path = tmp_path / "target.db"
    make(path)
    before = path.read_bytes()
    sidecars = _sidecars(path)
    got, out, err = run_cli(*command, "--db", path)
    line = _one_line(err)
    assert got == code, (got, err)
    assert str(path) in line and cause in line, line
    assert out == ""
    assert path.read_bytes() == before
    assert _sidecars(path) == sidecars


def test_directory_fifo_and_device_are_refused(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "folder.db"
    folder.mkdir()
    code, _, err = run_cli("status", "--db", folder)
    assert code == 2 and "folder.db" in _one_line(err) and "directory" in err
    assert list(folder.iterdir()) == []

    # A FIFO used to block open_store forever (it read the "header" from the pipe).
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [sys.executable, "-m", "smart_suggest", "status", "--db", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "pipe.db" in _one_line(proc.stderr) and "not a regular file" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.db", "pipe.db"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_character_device_gets_no_journal_beside_it(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """``--db /dev/null`` used to leave ``/dev/null-journal`` behind: a device is refused."""
    dev = tmp_path / "null.db"
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    code, _, err = run_cli("users", "add", "x", "--db", dev)
    assert code == 2 and "null.db" in _one_line(err) and "not a regular file" in err
    assert _sidecars(dev) == []


# -- missing folder, hostile path names ------------------------------------------------------------
def test_missing_folder_is_not_created(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "no" / "such" / "dir" / "x.db"
    for command in (READ_COMMANDS[0], WRITE_COMMANDS[0]):
        code, out, err = run_cli(*command, "--db", target)
        line = _one_line(err)
        assert code == 2 and str(target) in line and "does not exist" in line
        assert out == ""
    assert not (tmp_path / "no").exists()


def test_missing_folder_via_environment_variable(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "gone" / "x.db"
    monkeypatch.setenv("SMART_SUGGEST_DB", str(target))
    code, _, err = run_cli("users", "list")
    assert code == 2 and str(target) in _one_line(err) and "does not exist" in err
    assert not target.parent.exists()


def test_error_lines_never_carry_escape_sequences(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """A path (user data) with ESC ] / ESC [ in it is shown escaped, not sent raw."""
    weird = tmp_path / "\x1b]0;pwned\x07dir\x1b[31m" / "[bold red]x.db"
    code, _out, err = run_cli("status", "--db", weird)
    line = _one_line(err)
    assert code == 2
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b]0;pwned\\x07dir\\x1b[31m" in line and "[bold red]x.db" in line


# -- read-only files and folders -------------------------------------------------------------------
@pytest.mark.parametrize("command", [READ_COMMANDS[0], WRITE_COMMANDS[0], WRITE_COMMANDS[2]])
def test_read_only_file(tmp_path: Path, run_cli, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Mode 0444: refused before anything is written, also as root (see module docstring)."""
    path = _small_db(tmp_path / "ro.db")
    before = path.read_bytes()
    path.chmod(0o444)
    try:
        code, _, err = run_cli(*command, "--db", path)
    finally:
        path.chmod(0o644)
    line = _one_line(err)
    assert code == 2 and str(path) in line and "read-only" in line
    assert path.read_bytes() == before and _sidecars(path) == []


def test_read_only_folder(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "locked"
    folder.mkdir()
    path = _small_db(folder / "x.db")
    before = path.read_bytes()
    folder.chmod(0o555)
    try:
        # An existing database: WAL needs x.db-wal beside it, which cannot be created.
        code, _, err = run_cli("users", "add", "z", "--db", path)
        line = _one_line(err)
        assert code == 2 and str(path) in line and "read-only" in line
        # A new database in that folder.
        code, _, err = run_cli("users", "list", "--db", folder / "new.db")
        line = _one_line(err)
        assert code == 2 and "new.db" in line and "folder is read-only" in line
    finally:
        folder.chmod(0o755)
    assert path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["x.db"]


@contextmanager
def _mount(args: list[str], target: Path) -> Iterator[None]:
    """Run ``mount ARGS TARGET``; skip the test where mounting is not permitted."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting needs root")
    proc = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"mount not permitted here: {proc.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


@contextmanager
def _read_only_view(src: Path, view: Path) -> Iterator[None]:
    view.mkdir()
    with _mount(["--bind", str(src)], view):
        proc = subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(view)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            pytest.skip(f"read-only remount not permitted: {proc.stderr.strip()}")
        yield


def test_read_only_mount_stops_even_root(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """A real read-only file system (EROFS applies to root too)."""
    src = tmp_path / "src"
    src.mkdir()
    path = _small_db(src / "x.db")
    before = path.read_bytes()
    view = tmp_path / "view"
    with _read_only_view(src, view):
        for command in (READ_COMMANDS[0], WRITE_COMMANDS[0], WRITE_COMMANDS[1]):
            code, _out, err = run_cli(*command, "--db", view / "x.db")
            line = _one_line(err)
            assert code == 2 and str(view / "x.db") in line and "read-only" in line, line
        code, _, err = run_cli("users", "list", "--db", view / "new.db")
        assert code == 2 and "folder is read-only" in _one_line(err)
    assert path.read_bytes() == before
    assert sorted(p.name for p in src.iterdir()) == ["x.db"]


# -- full disk -------------------------------------------------------------------------------------
def test_full_tmpfs(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """A real full file system: a 384 KiB tmpfs holds an empty database and its WAL while
    it is created (about 240 KiB), not the demo data on top (about 420 KiB more)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    with _mount(["-t", "tmpfs", "-o", "size=384k", "tmpfs"], disk):
        path = _small_db(disk / "x.db")
        before = _rows(path)
        code, _out, err = run_cli("seed", "--yes", "--json", "--db", path)
        line = _one_line(err)
        assert code == 1, line
        assert str(path) in line and "disk is full" in line
        assert _integrity(path) == "ok"
        assert _rows(path) == before
        # The database still works once there is room again.
        code, _, err = run_cli("users", "add", "after", "--db", path)
        assert code == 0, err


def _cap_pages(monkeypatch: pytest.MonkeyPatch, extra_pages: int) -> None:
    """Every connection the command opens may grow its database by ``extra_pages`` only."""
    real = store_mod._connect

    def capped(path: Path) -> sqlite3.Connection:
        conn = real(path)
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        conn.execute(f"PRAGMA max_page_count = {max(pages, 1) + extra_pages}")
        return conn

    monkeypatch.setattr(store_mod, "_connect", capped)


@pytest.mark.parametrize(
    "command",
    [
        ["seed", "--yes"],
        ["users", "add", "x" * 200_000],
        ["items", "add", "big", "--category", "c", "--description", "d" * 200_000],
    ],
    ids=["seed", "users-add", "items-add"],
)
def test_database_full_emulated(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:  # type: ignore[no-untyped-def]
    path = _small_db(tmp_path / "x.db")
    before = _rows(path)
    _cap_pages(monkeypatch, extra_pages=2)
    code, _out, err = run_cli(*command, "--db", path)
    line = _one_line(err)
    assert code == 1, line
    assert str(path) in line and "disk is full" in line
    monkeypatch.undo()
    assert _integrity(path) == "ok"
    assert _rows(path) == before


def test_import_into_full_database_writes_nothing(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    path = _small_db(tmp_path / "x.db")
    csv = tmp_path / "ratings.csv"
    csv.write_text(
        "user,item,rating,timestamp\n"
        + "".join(
            f"{u},{i},{(u + i) % 5 + 1},{1_700_000_000 + u * 100 + i}\n"
            for u in range(1, 200)
            for i in range(1, 30)
        )
    )
    before = _rows(path)
    _cap_pages(monkeypatch, extra_pages=3)
    code, _, err = run_cli("import", csv, "--db", path)
    line = _one_line(err)
    assert code == 1 and str(path) in line and "disk is full" in line, line
    monkeypatch.undo()
    assert _integrity(path) == "ok" and _rows(path) == before


def test_file_size_limit_in_a_subprocess(tmp_path: Path) -> None:
    """RLIMIT_FSIZE (works as root, no mount): writes fail with EFBIG mid-transaction."""
    path = _small_db(tmp_path / "x.db")
    before = _rows(path)
    limit = path.stat().st_size + 64 * 1024

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        [sys.executable, "-m", "smart_suggest", "seed", "--yes", "--json", "--db", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
    )
    line = _one_line(proc.stderr)
    assert proc.returncode == 1, line
    assert str(path) in line and ("disk is full" in line or "while writing" in line), line
    assert _integrity(path) == "ok"
    assert _rows(path) == before


# -- migrations ------------------------------------------------------------------------------------
#: The version-1 schema exactly as smart-suggest 0.1 created it. A frozen copy (not
#: MIGRATIONS[1]): if someone edits the v1 DDL in place instead of adding a migration, the
#: files users already have would differ from new ones, and this test says so.
V1_TABLE_COLUMNS = {
    "users": ["id", "username", "created_at"],
    "items": ["id", "name", "category", "description", "created_at"],
    "interactions": ["id", "user_id", "item_id", "action", "ts"],
    "experiments": [
        "id",
        "name",
        "description",
        "control",
        "treatment",
        "traffic_fraction",
        "treatment_share",
        "primary_metric",
        "status",
        "created_at",
        "stopped_at",
    ],
    "assignments": ["experiment_id", "user_id", "variant", "assigned_at"],
    "events": ["id", "experiment_id", "variant", "user_id", "item_id", "type", "value", "ts"],
}

V1_ROWS: dict[str, list[tuple[object, ...]]] = {
    "users": [(1, "ada", 1.0), (2, "[bold red]bob'; DROP TABLE users; --", 2.0)],
    "items": [(1, "lamp", "home", "a warm lamp", 3.0), (2, "book", "books", "", 4.0)],
    "interactions": [(1, 1, 1, "view", 5.0), (2, 2, 2, "purchase", 6.0)],
    "experiments": [
        (1, "exp", "", "v1", "v2", 1.0, 0.5, "ctr", "active", 7.0, None),
    ],
    "assignments": [(1, 1, "A", 8.0), (1, 2, "B", 8.0)],
    "events": [
        (1, 1, "A", 1, 1, "impression", None, 9.0),
        (2, 1, "B", 2, None, "engagement", 4.5, 10.0),
    ],
}


def _build_version(path: Path, version: int) -> None:
    """A file exactly as a smart-suggest at schema ``version`` left it (0 = fresh file)."""
    conn = sqlite3.connect(path, isolation_level=None)
    if version > 0:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN")
        for v in sorted(m for m in MIGRATIONS if m <= version):
            store_mod.apply_migration(conn, v)
            conn.execute(f"PRAGMA user_version = {v}")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    conn.close()


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


@pytest.mark.parametrize("version", sorted(MIGRATIONS))
def test_migrate_from_every_earlier_version_keeps_data(tmp_path: Path, version: int) -> None:
    path = tmp_path / f"v{version}.db"
    _build_version(path, version)
    conn = sqlite3.connect(path)
    if version == 1:
        for table, cols in V1_TABLE_COLUMNS.items():
            assert _columns(conn, table) == cols, "the v1 DDL was edited in place"
    for table in V1_TABLE_COLUMNS:  # the v1 data, in whatever columns version has
        cols = V1_TABLE_COLUMNS[table]
        for row in V1_ROWS[table]:
            conn.execute(
                f"INSERT INTO {table}({', '.join(cols)}) VALUES ({', '.join('?' * len(row))})", row
            )
    conn.commit()
    conn.close()
    with open_store(path) as s:
        assert s.scalar("PRAGMA user_version") == SCHEMA_VERSION
        assert s.scalar("PRAGMA application_id") == APPLICATION_ID
        for table in V1_TABLE_COLUMNS:
            cols = ", ".join(V1_TABLE_COLUMNS[table])
            got = s.conn.execute(f"SELECT {cols} FROM {table} ORDER BY 1, 2").fetchall()
            assert got == V1_ROWS[table], table
        # Triggers and foreign keys work after the upgrade.
        rev = s.revision("catalog")
        s.conn.execute("INSERT INTO users(username, created_at) VALUES ('new', 0)")
        assert s.revision("catalog") > rev
        with pytest.raises(sqlite3.IntegrityError):
            s.conn.execute(
                "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (99, 1, 'view', 0)"
            )
        assert s.scalar("PRAGMA integrity_check") == "ok"


@pytest.mark.parametrize("kind", ["zero-byte file", "empty SQLite with header", "rollback journal"])
def test_migrate_from_version_zero(tmp_path: Path, kind: str, run_cli) -> None:  # type: ignore[no-untyped-def]
    """Version 0: a file with no schema yet (touched, or created by sqlite3 with no tables)."""
    path = tmp_path / "v0.db"
    if kind == "zero-byte file":
        path.touch()
    else:
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA page_size = 8192")
        if kind == "rollback journal":
            conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("VACUUM")  # writes the header: a valid, empty database
        conn.close()
        assert path.stat().st_size > 0
    code, _, err = run_cli("users", "add", "first", "--db", path)
    assert code == 0, err
    with open_store(path) as s:
        assert s.scalar("PRAGMA user_version") == SCHEMA_VERSION
        assert s.scalar("PRAGMA journal_mode") == "wal"
        assert [u["username"] for u in s.query("SELECT username FROM users")] == ["first"]


def test_schema_of_a_migrated_file_equals_a_new_one(tmp_path: Path) -> None:
    """Upgrading from any version yields the very schema a new database gets."""

    def schema(path: Path) -> list[tuple[str, str]]:
        conn = sqlite3.connect(path)
        try:
            return conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
            ).fetchall()
        finally:
            conn.close()

    fresh = tmp_path / "fresh.db"
    open_store(fresh).close()
    for version in [0, *sorted(v for v in MIGRATIONS if v < SCHEMA_VERSION)]:
        old = tmp_path / f"old{version}.db"
        _build_version(old, version)
        open_store(old).close()
        assert schema(old) == schema(fresh), version


def test_failed_migration_of_an_older_version_leaves_it_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli
) -> None:  # type: ignore[no-untyped-def]
    """Inject a failing future migration: the old file must keep its version and data."""
    path = tmp_path / "old.db"
    _build_version(path, SCHEMA_VERSION)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO users(id, username, created_at) VALUES (1, 'ada', 0)")
    conn.commit()
    conn.close()
    before = _rows(path)
    broken = {
        **MIGRATIONS,
        SCHEMA_VERSION + 1: "ALTER TABLE users ADD COLUMN x;\nSELECT * FROM nope;",
    }
    monkeypatch.setattr(store_mod, "MIGRATIONS", broken)
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    code, _, err = run_cli("users", "list", "--db", path)
    assert code == 2 and str(path) in _one_line(err)
    monkeypatch.undo()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "x" not in _columns(conn, "users")
    conn.close()
    assert _rows(path) == before
