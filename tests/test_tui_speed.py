"""What keeps the app cheap per key: a screen switch keeps the footer and the styles it
has, a logged action reloads the user once, and the first write does not wait for the
integrity check. Each checks the behaviour stays right, not only that it is fast."""

from __future__ import annotations

import asyncio
import functools
import shutil
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("textual")

from textual.color import Color
from textual.pilot import Pilot

from smart_suggest import integrity, tracking
from smart_suggest.errors import DatabaseError
from smart_suggest.store import open_store

SIZE = (120, 40)


def pilot_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return run


@pytest.fixture
def demo_db(demo_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.db"
    shutil.copy(demo_template, path)
    return path


def make_app(path: Path) -> Any:
    from tui.app import SmartSuggestApp

    return SmartSuggestApp(path, poll_seconds=0, debounce=0)


async def settle(pilot: Pilot[Any], rounds: int = 3) -> None:
    for _ in range(rounds):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def goto(pilot: Pilot[Any], key: str) -> None:
    await pilot.press(key)
    await settle(pilot)


def footer_keys(screen: Any) -> list[Any]:
    from textual.widgets._footer import FooterKey

    return list(screen.query(FooterKey))


@pilot_test
async def test_a_screen_switch_keeps_an_unchanged_footer_and_shows_the_screens_keys(
    demo_db: Path,
) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        overview = pilot.app.screen
        keys = footer_keys(overview)
        labels = [(k.key_display, k.description) for k in keys]
        assert ("^q", "Quit") in labels and ("F1/?", "Help") in labels
        await goto(pilot, "2")
        recs = [(k.key_display, k.description) for k in footer_keys(pilot.app.screen)]
        assert ("v", "View") in recs and ("^q", "Quit") in recs
        await goto(pilot, "3")
        await goto(pilot, "1")
        assert pilot.app.screen is overview
        # The same widgets: not torn down and rebuilt for bindings that did not change.
        assert footer_keys(overview) == keys
        assert [(k.key_display, k.description) for k in keys] == labels


@pilot_test
async def test_a_theme_chosen_on_another_screen_applies_when_coming_back(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        app = pilot.app
        await goto(pilot, "2")
        await goto(pilot, "1")  # both screens now resumed once: resumes skip the restyle
        overview = app.screen
        dark = overview.styles.background
        await goto(pilot, "2")
        app.theme = "textual-light"
        await settle(pilot)
        await goto(pilot, "1")
        light = Color.parse(app.current_theme.background)
        assert dark != light
        assert app.screen is overview and overview.styles.background == light


@pilot_test
async def test_a_logged_action_reloads_the_user_once_and_at_the_new_revision(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui import data

    loads: list[int] = []
    real = data.user_view

    def counted(store: Any, backend: Any, user_id: int, *args: Any) -> Any:
        loads.append(user_id)
        return real(store, backend, user_id, *args)

    monkeypatch.setattr(data, "user_view", counted)
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        screen = pilot.app.screen
        await pilot.press("enter")  # user list -> the user's first list
        await settle(pilot)
        item = int(screen.query_one("#recs-v1").current_key)
        before = len(loads)
        await pilot.press("v")
        await settle(pilot)
        assert loads[before:] == [1]  # not again after the revision poll
        assert screen.view.history[0].item_id == item
        with open_store(demo_db, read_only=True) as store:
            assert screen.view.revision == store.revision("catalog")


def _damage(path: Path) -> None:
    """Overwrite the cell pointers of a leaf page of ``events`` (as a bad disk sector would)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = [
            r[0]
            for r in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'events' AND pagetype = 'leaf'"
            )
        ]
    finally:
        conn.close()
    page = pages[len(pages) // 2]
    with open(path, "r+b") as fh:
        fh.seek((page - 1) * size + 12)
        fh.write(b"\xff" * 200)


def test_an_early_integrity_check_still_refuses_a_damaged_file(demo_db: Path) -> None:
    _damage(demo_db)
    with open_store(demo_db) as store:
        store.prepare_write()
        with pytest.raises(DatabaseError, match="the database is damaged"):
            tracking.add_user(store, "zed")
    with sqlite3.connect(demo_db) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE username = 'zed'").fetchone() == (0,)


def test_the_first_write_uses_the_early_check_instead_of_a_second_one(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Path] = []
    real = integrity.start_check

    def counted(path: Path) -> Any:
        started.append(path)
        return real(path)

    monkeypatch.setattr(integrity, "start_check", counted)
    with open_store(demo_db) as store:
        store.prepare_write()
        tracking.add_user(store, "speedy-1")
        tracking.add_user(store, "speedy-2")
    assert len(started) == 1
    with sqlite3.connect(demo_db) as conn:
        names = conn.execute("SELECT username FROM users WHERE username LIKE 'speedy-%'")
        assert sorted(n for (n,) in names.fetchall()) == ["speedy-1", "speedy-2"]
