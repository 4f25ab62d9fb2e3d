"""Shared fixtures: real SQLite files in tmp_path, a fixed clock, the CLI run in-process."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from smart_suggest.store import Store, open_store

# Property tests: no per-example deadline (shared CI machines stall), and in CI a fixed
# example sequence, so a red build can be reproduced exactly.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

#: A fixed "now" so seeded data and snapshots are identical from run to run.
FIXED_NOW = "2026-11-20T12:00:00Z"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's database or config: point every default into tmp_path."""
    monkeypatch.setenv("SMART_SUGGEST_NOW", FIXED_NOW)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("SMART_SUGGEST_DB", raising=False)
    monkeypatch.delenv("SMART_SUGGEST_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "test.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = open_store(db_path)
    yield s
    s.close()


@pytest.fixture
def demo_store(db_path: Path) -> Iterator[Store]:
    from smart_suggest.sample import load_demo

    s = open_store(db_path)
    load_demo(s, seed=42)
    yield s
    s.close()


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database, seeded once per session with the fixed clock: tests copy it (a
    test that changes it must work on a copy)."""
    from smart_suggest.sample import load_demo

    path = tmp_path_factory.mktemp("template") / "demo.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMART_SUGGEST_NOW", FIXED_NOW)
        with open_store(path) as store:
            load_demo(store, seed=42)
    return path


CliRunner = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(capfd: pytest.CaptureFixture[str]) -> CliRunner:
    """Run ``smart-suggest ARGS`` in-process; return (exit code, stdout, stderr)."""
    from smart_suggest.cli import main

    def run(*args: str | os.PathLike[str], stdin: str | None = None) -> tuple[int, str, str]:
        capfd.readouterr()
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capfd.readouterr()
        return code, out, err

    return run


def table_rows(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, for "nothing was written" assertions."""
    from smart_suggest.store import TABLES

    return {t: store.conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}


@pytest.fixture
def db_rows() -> Callable[[Path], dict[str, list[tuple[object, ...]]]]:
    """Read every row of a database file with plain sqlite3 (opens nothing for writing)."""
    import sqlite3

    def read(path: Path) -> dict[str, list[tuple[object, ...]]]:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return {
                t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("users", "items", "interactions", "experiments", "assignments", "events")
            }
        finally:
            conn.close()

    return read


@pytest.fixture
def approx_tree() -> Callable[[Any], Any]:
    """A JSON-like value with every float compared to rounding: for numbers computed from
    the same data with sums in another order (results from the per-user summary, the
    printed SQL from the events)."""

    def tree(value: Any) -> Any:
        if isinstance(value, float):
            return pytest.approx(value, rel=1e-9, abs=1e-12)
        if isinstance(value, dict):
            return {k: tree(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [tree(v) for v in value]
        return value

    return tree
