"""SVG snapshots of every screen at 80x24 and 120x40 on the seeded demo database.

The clock is fixed (conftest), the database is a copy of one seeded with a fixed seed,
and the app is given a relative path so the path it shows is the same on every machine.
Update after an intended change: pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytest_textual_snapshot")


SIZES = [(80, 24), (120, 40)]
#: The widths people use: a split pane, the classic terminal, a full screen, a wide one.
ALL_SIZES = [(60, 20), (80, 24), (120, 40), (200, 50)]


@pytest.fixture
def app_factory(
    demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], Any]:
    shutil.copy(demo_template, tmp_path / "demo.db")
    monkeypatch.chdir(tmp_path)

    def make() -> Any:
        from tui.app import SmartSuggestApp

        return SmartSuggestApp(Path("demo.db"), poll_seconds=0, debounce=0)

    return make


async def _settle(pilot: Any) -> None:
    for _ in range(4):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _goto(*keys: str) -> Callable[[Any], Any]:
    async def run_before(pilot: Any) -> None:
        await _settle(pilot)
        for key in keys:
            await pilot.press(key)
            await _settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_overview(snap_compare: Any, app_factory: Callable[[], Any], size: tuple[int, int]) -> None:
    assert snap_compare(app_factory(), terminal_size=size, run_before=_goto())


@pytest.mark.parametrize("size", ALL_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_recommendations(
    snap_compare: Any, app_factory: Callable[[], Any], size: tuple[int, int]
) -> None:
    assert snap_compare(app_factory(), terminal_size=size, run_before=_goto("2", "tab", "down"))


@pytest.mark.parametrize("size", ALL_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_experiments(
    snap_compare: Any, app_factory: Callable[[], Any], size: tuple[int, int]
) -> None:
    assert snap_compare(app_factory(), terminal_size=size, run_before=_goto("3"))


def test_new_experiment_waits_for_data(
    snap_compare: Any, app_factory: Callable[[], Any], tmp_path: Path
) -> None:
    from smart_suggest.experiments.lifecycle import create_experiment
    from smart_suggest.store import open_store

    with open_store(tmp_path / "demo.db") as store:
        create_experiment(store, "search-v1-vs-popular", "v1", "popular")
    assert snap_compare(app_factory(), terminal_size=(120, 40), run_before=_goto("3", "down"))


def test_strategy_picker(snap_compare: Any, app_factory: Callable[[], Any]) -> None:
    assert snap_compare(app_factory(), terminal_size=(80, 24), run_before=_goto("2", "m"))


def test_help_screen(snap_compare: Any, app_factory: Callable[[], Any]) -> None:
    assert snap_compare(app_factory(), terminal_size=(80, 24), run_before=_goto("2", "f1"))


def test_create_experiment_form(snap_compare: Any, app_factory: Callable[[], Any]) -> None:
    assert snap_compare(app_factory(), terminal_size=(80, 24), run_before=_goto("3", "n"))


def test_empty_database_overview(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.app import SmartSuggestApp

    monkeypatch.chdir(tmp_path)
    app = SmartSuggestApp(Path("empty.db"), poll_seconds=0, debounce=0)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_goto())
