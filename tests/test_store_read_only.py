"""Read-only databases: opened for reading (by request, or because the file or folder is
read-only), every write refused in one line, the file's bytes and its folder unchanged.

Tests run as root in CI: ``store._writable`` treats "no write bit at all" as read-only for
root too, so the chmod cases below mean the same thing for root and for a normal user.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from smart_suggest.errors import DatabaseError, ReadOnlyError
from smart_suggest.store import open_store
from smart_suggest.tracking import add_user


def _db(path: Path) -> Path:
    path.parent.mkdir(exist_ok=True)
    with open_store(path) as s:
        add_user(s, "ada")
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    return path


def test_requested_read_only_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = _db(tmp_path / "db" / "x.db")
    before = path.read_bytes()
    with open_store(path, read_only=True) as s:
        assert s.read_only == "opened read-only"
        assert s.scalar("SELECT username FROM users") == "ada"
        with pytest.raises(ReadOnlyError, match="open read-only \\(opened read-only\\)"):
            add_user(s, "bob")
        # A write around Store.write is stopped by SQLite itself (mode=ro).
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            s.conn.execute("INSERT INTO users(username, created_at) VALUES ('eve', 0)")
    assert path.read_bytes() == before


def test_requested_read_only_sees_other_writers(tmp_path: Path) -> None:
    """Not immutable when the file is writable: a viewer sees another process's commits."""
    path = _db(tmp_path / "db" / "x.db")
    with open_store(path) as writer, open_store(path, read_only=True) as viewer:
        assert viewer.scalar("SELECT count(*) FROM users") == 1
        add_user(writer, "bob")
        assert viewer.scalar("SELECT count(*) FROM users") == 2


def test_read_only_file_is_opened_immutable(tmp_path: Path) -> None:
    path = _db(tmp_path / "db" / "x.db")
    before = path.read_bytes()
    path.chmod(0o444)
    try:
        with open_store(path) as s:
            assert s.read_only == "the file is read-only"
            assert s.counts()["users"] == 1
            with pytest.raises(ReadOnlyError):
                add_user(s, "bob")
    finally:
        path.chmod(0o644)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.db"]  # no -wal / -shm


def test_read_only_folder_with_live_wal(tmp_path: Path) -> None:
    """A writer holds the database open (its -wal exists): the viewer reads its commits."""
    folder = tmp_path / "f"
    folder.mkdir()
    path = _db(folder / "x.db")
    with open_store(path) as writer:
        add_user(writer, "bob")  # committed to the -wal, not yet checkpointed
        folder.chmod(0o555)
        try:
            with open_store(path) as viewer:
                assert viewer.read_only is None or "read-only" in viewer.read_only
                assert viewer.scalar("SELECT count(*) FROM users") == 2
        finally:
            folder.chmod(0o755)


def test_read_only_folder_no_wal(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    path = _db(folder / "x.db")
    before = path.read_bytes()
    folder.chmod(0o555)
    try:
        with open_store(path) as s:
            assert s.read_only is not None and "is read-only" in s.read_only
            assert s.scalar("SELECT username FROM users") == "ada"
            with pytest.raises(ReadOnlyError, match="nothing was written"):
                add_user(s, "bob")
    finally:
        folder.chmod(0o755)
    assert path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["x.db"]


def test_read_only_refusals(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="no such database"):
        open_store(tmp_path / "missing.db", read_only=True)
    assert not (tmp_path / "missing.db").exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(DatabaseError, match="empty file"):
        open_store(empty, read_only=True)
    assert empty.read_bytes() == b""


def test_read_only_old_schema_is_explained(tmp_path: Path) -> None:
    """A database that needs a migration cannot be upgraded read-only: one clear line."""
    path = _db(tmp_path / "db" / "x.db")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(DatabaseError, match="schema 3 must be upgraded"):
        open_store(path, read_only=True)
    assert path.read_bytes() == before
