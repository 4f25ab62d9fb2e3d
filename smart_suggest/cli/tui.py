"""CLI: ``smart-suggest tui`` starts the Textual app (imported only by this command)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from smart_suggest.cli._common import DbOption


def demo_db_path() -> Path:
    """The demo database: its own file in the user's data folder, never the real one."""
    import platformdirs

    return platformdirs.user_data_path("smart-suggest") / "demo.db"


def prepare_demo(path: Path) -> Path:
    """Create (or reset) the demo database and seed it with the sample data."""
    from smart_suggest.sample import load_demo
    from smart_suggest.store import open_store

    path.parent.mkdir(parents=True, exist_ok=True)
    with open_store(path) as store:
        load_demo(store, seed=42)
    return path


def check_theme(name: str) -> None:
    """Refuse an unknown theme before anything starts (one line, exit 2)."""
    from textual.theme import BUILTIN_THEMES

    from smart_suggest.errors import InputError

    if name not in BUILTIN_THEMES:
        valid = ", ".join(sorted(BUILTIN_THEMES))
        raise InputError(f"unknown theme {name!r}: use one of {valid}")


def tui(
    db: DbOption = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Open a separate demo database (in your data folder), freshly seeded with "
            "the sample data. Your own database is not touched.",
        ),
    ] = False,
    theme: Annotated[
        str | None,
        typer.Option(
            "--theme",
            help="Colour theme for this run (e.g. nord, gruvbox, textual-light). A theme "
            "picked in the app (ctrl+p, Theme) is remembered in the settings file.",
        ),
    ] = None,
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only",
            help="Open the database for viewing only: keys that change data are disabled. "
            "A read-only file or folder is opened this way by itself.",
        ),
    ] = False,
) -> None:
    """Open the terminal app: overview, recommendations and experiments screens.

    Keys: 1 2 3 switch screens, F1 or ? lists a screen's keys, ctrl+p finds any action.

    Try it with the sample data: smart-suggest tui --demo
    """
    from smart_suggest.store import open_store

    if theme is not None:
        check_theme(theme)
    # --demo wins over --db / SMART_SUGGEST_DB: it never opens the user's own database.
    path = prepare_demo(demo_db_path()) if demo else db
    # Open (and validate) before starting the app: a wrong file is one line on stderr.
    store = open_store(path, read_only=read_only)
    app = None
    try:
        from tui.data import Backend  # no Textual: the snapshot starts loading before it

        backend = Backend(store)
        backend.start_early()
        from tui.app import SmartSuggestApp, tune_collector

        app = SmartSuggestApp(store=store, demo=demo, theme=theme, backend=backend)
        tune_collector()
        app.run()
    finally:
        if app is not None:
            app.backend.close()  # every connection of the app, not only this one
        store.close()
    if app.return_code is not None:
        # The app quit and the terminal is restored: skip the interpreter's teardown of
        # everything it loaded (1-3 s on a busy machine, after the screen was gone).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(app.return_code)


def register(app: typer.Typer) -> None:
    app.command("tui")(tui)
