"""The app read-only and served: write keys explained, not run; the header and help say
where the visitor is; the server's notices arrive as notifications."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("textual")

from textual.pilot import Pilot

from tui.served import Served

SIZE = (100, 30)

#: Every key that changes the database, per screen key.
WRITE_KEYS = {"1": ["l", "x"], "2": ["v", "c", "p", "s", "a", "i"], "3": ["n", "x", "s", "l"]}


@pytest.fixture
def demo_db(demo_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.db"
    shutil.copy(demo_template, path)
    return path


async def settle(pilot: Pilot[Any]) -> None:
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def screen_text(pilot: Pilot[Any]) -> str:
    return "\n".join(strip.text for strip in pilot.app.screen._compositor.render_strips())


def notes(pilot: Pilot[Any]) -> list[str]:
    return [str(n.message) for n in pilot.app._notifications]


def test_read_only_app_explains_every_write_key(demo_db: Path) -> None:
    from tui.app import SmartSuggestApp

    before = demo_db.read_bytes()

    async def scenario() -> None:
        app = SmartSuggestApp(demo_db, read_only=True, poll_seconds=0, debounce=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert any("Read-only" in n for n in notes(pilot))
            assert "demo.db · read-only" in screen_text(pilot)
            for screen_key, keys in WRITE_KEYS.items():
                await pilot.press(screen_key)
                await settle(pilot)
                main = pilot.app.screen
                for key in keys:
                    pilot.app.clear_notifications()
                    await pilot.press(key)
                    await settle(pilot)
                    assert pilot.app.screen is main, f"{screen_key}/{key} opened a dialog"
                    assert any("read-only" in n for n in notes(pilot)), (screen_key, key)
            # Reading still works: the screens show data.
            await pilot.press("1")
            await settle(pilot)
            assert "50" in screen_text(pilot)

    asyncio.run(scenario())
    assert demo_db.read_bytes() == before


def test_writable_app_still_writes(demo_db: Path) -> None:
    """The read-only guard does not get in the way of a normal session."""
    from tui.app import SmartSuggestApp

    async def scenario() -> None:
        app = SmartSuggestApp(demo_db, poll_seconds=0, debounce=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("x")
            await pilot.pause()
            assert type(pilot.app.screen).__name__ == "ConfirmDialog"

    asyncio.run(scenario())


def test_served_demo_header_help_and_notices(demo_db: Path) -> None:
    from tui.app import SmartSuggestApp

    read_fd, write_fd = os.pipe()
    served = Served(via="ssh", demo=True, control_fd=read_fd)

    async def scenario() -> None:
        app = SmartSuggestApp(demo_db, served=served, poll_seconds=0, debounce=0)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert "demo session" in screen_text(pilot)
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert "Screenshot" not in titles and "Quit" in titles
            message = {"notify": "Idle: this session closes in 60 s", "severity": "warning"}
            os.write(write_fd, json.dumps(message).encode() + b"\n")
            for _ in range(20):
                await pilot.pause(0.05)
                if any("Idle" in n for n in notes(pilot)):
                    break
            assert any("closes in 60 s" in n for n in notes(pilot))
            await pilot.press("f1")
            await settle(pilot)
            from tui.screens.dialogs import HelpScreen

            help_screen = pilot.app.screen
            assert isinstance(help_screen, HelpScreen)
            session = dict(help_screen.sections)["This session"]
            assert any("closing the terminal" in text for _key, text in session)

    try:
        asyncio.run(scenario())
    finally:
        os.close(write_fd)
        os.close(read_fd)


def test_served_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMART_SUGGEST_SERVED", Served("web", demo=True).to_env())
    assert Served.from_env() == Served("web", demo=True, control_fd=None)
    monkeypatch.setenv("SMART_SUGGEST_SERVED", "not json")
    assert Served.from_env() == Served("ssh")
    monkeypatch.delenv("SMART_SUGGEST_SERVED")
    assert Served.from_env() is None


def test_served_demo_copy_does_not_poll(demo_db: Path) -> None:
    """A visitor's private demo copy has no other writer: no revision polling (CPU in every
    idle session); a shared database is still polled for other visitors' changes."""
    from tui.app import SmartSuggestApp

    demo = SmartSuggestApp(demo_db, served=Served(via="ssh", demo=True))
    shared = SmartSuggestApp(demo_db, served=Served(via="ssh", demo=False))
    try:
        assert demo.poll_seconds == 0
        assert shared.poll_seconds == SmartSuggestApp.POLL_SECONDS > 0
    finally:
        demo.backend.close()
        shared.backend.close()
        demo.store.close()
        shared.store.close()


def test_idle_app_runs_no_animation(demo_db: Path) -> None:
    """Once every screen was visited, nothing redraws by itself: an idle session costs no
    CPU (a widget with ``auto_refresh``, such as an indeterminate progress bar, redraws
    15 times a second even where it is hidden)."""
    from tui.app import SmartSuggestApp

    async def scenario() -> None:
        app = SmartSuggestApp(demo_db, served=Served(via="ssh", demo=True), debounce=0)
        async with app.run_test(size=SIZE) as pilot:
            for key in "231":
                await pilot.press(key)
                await settle(pilot)
            animated = [
                f"{type(screen).__name__}: {widget!r}"
                for screen in app.screens_live.values()
                for widget in screen.walk_children()
                if widget.auto_refresh is not None
            ]
            assert len(app.screens_live) == 3
            assert animated == []

    asyncio.run(scenario())
