"""SmartSuggestApp: three screens (modes) over one database, refreshed when it changes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import importlib
import sqlite3
import time
from collections.abc import Awaitable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from textual import events
from textual.actions import ActionParseResult, parse
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.screen import Screen
from textual.validation import Function
from textual.worker import Worker

from smart_suggest.errors import SmartSuggestError
from smart_suggest.store import Store, describe_sqlite_error, open_store
from smart_suggest.text import printable
from tui import output
from tui.commands import ActionsProvider
from tui.config import Settings
from tui.config import load as load_settings
from tui.data import FAILED, Backend, Revisions, revisions, warm_imports, warm_up
from tui.screens.base import BaseScreen
from tui.screens.dialogs import FormDialog, FormField, HelpScreen
from tui.served import ControlReader, Served, adopt_terminal

#: The collector's thresholds while the app runs (young generation, then the two older).
GC_THRESHOLD = (10_000, 50, 100)


def tune_collector(*, collect: bool = False) -> None:
    """Make the garbage collector cheap for a running app.

    Textual allocates many short-lived objects per frame: with the default threshold (700)
    the young generation is collected dozens of times per key, and now and then a full
    collection walks every object of the imported modules (tens of ms inside a key
    press). Everything imported so far lives as long as the process, so it is frozen out of
    the collector; ``collect`` first (a forking server, where the pages stay shared).
    Measured on the demo (headless, 24 screen switches): collection per switch 21 -> 3 ms.
    """
    if collect:
        gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def _new_screen(mode: str) -> BaseScreen:
    return SmartSuggestApp.screen_class(mode)()


class SmartSuggestApp(App[None]):
    """The smart-suggest workbench. ``db_path`` (or an open ``store``) picks the database."""

    CSS_PATH = "app.tcss"
    TITLE = "smart-suggest"
    #: Screens 2 and 3 (and plotext, for the charts) are imported when first shown, not
    #: before the first paint.
    SCREEN_CLASSES: ClassVar[dict[str, str]] = {
        "overview": "tui.screens.overview:OverviewScreen",
        "recommend": "tui.screens.recommend:RecommendScreen",
        "experiments": "tui.screens.experiments:ExperimentsScreen",
    }
    MODES: ClassVar[dict[str, Any]] = {
        mode: functools.partial(_new_screen, mode) for mode in SCREEN_CLASSES
    }
    DEFAULT_MODE = "overview"
    COMMANDS = App.COMMANDS | {ActionsProvider}
    # Screens get the class -narrow or -wide (app.tcss stacks panels below 110 columns).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # noqa: RUF012
    BINDINGS: ClassVar[list[BindingType]] = [
        # The nav bar shows 1-3, so the footer keeps its room for the screen's own keys.
        Binding("1", "switch_mode('overview')", "Overview", show=False, tooltip="Go to Overview"),
        Binding(
            "2", "switch_mode('recommend')", "Recs", show=False, tooltip="Go to Recommendations"
        ),
        Binding(
            "3",
            "switch_mode('experiments')",
            "Experiments",
            show=False,
            tooltip="Go to Experiments",
        ),
        Binding(
            "f1,question_mark", "help", "Help", key_display="F1/?", tooltip="Keys of this screen"
        ),
        Binding("ctrl+q", "quit", "Quit", tooltip="Quit", priority=True),
    ]
    #: Seconds between checks of the data revision (a single-row query).
    POLL_SECONDS = 1.0
    #: Seconds without a key press before the statistics are imported ahead of need.
    WARM_IMPORTS_AFTER_IDLE = 1.5
    #: Seconds to wait for the cursor to rest before loading what it points at.
    DEBOUNCE_SECONDS = 0.12

    def __init__(
        self,
        db_path: Path | str | None = None,
        *,
        store: Store | None = None,
        demo: bool = False,
        read_only: bool = False,
        served: Served | None = None,
        poll_seconds: float | None = None,
        debounce: float | None = None,
        theme: str | None = None,
        settings: Settings | None = None,
        backend: Backend | None = None,
    ) -> None:
        """``backend``: one already made for ``store`` (``Backend.start_early``)."""
        self.started_at = time.perf_counter()
        #: perf_counter() when something was first on screen: "shell", then "data".
        self.paint_times: dict[str, float] = {}
        super().__init__()
        self._owns_store = store is None
        self.store = store if store is not None else open_store(db_path, read_only=read_only)
        self.backend = backend if backend is not None else Backend(self.store)
        self.demo = demo
        #: Why the database cannot be changed here, or None (see Store.read_only).
        self.read_only: str | None = self.store.read_only
        #: Set when a server runs this app for a visitor (``smart-suggest serve``).
        self.served = served if served is not None else Served.from_env()
        self.screens_live: dict[str, BaseScreen] = {}
        if poll_seconds is None and self.served is not None and self.served.demo:
            # A visitor's private demo copy has no other writer, and this app refreshes
            # after its own writes: polling would only cost CPU in every idle session.
            poll_seconds = 0
        self.poll_seconds = self.POLL_SECONDS if poll_seconds is None else poll_seconds
        self.debounce = self.DEBOUNCE_SECONDS if debounce is None else debounce
        self._revisions: Revisions | None = None
        self._polling = False
        self._poll_again = False
        self._written: set[str] = set()
        self._last_key = 0.0  # time.monotonic() of the last key press
        #: The settings file (theme, strategies shown, ...); saved when they change.
        self.settings = settings if settings is not None else load_settings()
        wanted = theme or self.settings.theme
        if wanted and wanted in self.available_themes:
            self.theme = wanted
        elif wanted:
            self.settings.problem = self.settings.problem or (
                f"unknown theme {wanted!r} in the settings: the default is used"
            )

    # -- identity -------------------------------------------------------------------------
    @property
    def db_label(self) -> str:
        name = self.store.path.name
        if self.served is not None:
            label = "demo session" if self.served.demo else f"shared: {name}"
        else:
            label = f"demo: {name}" if self.demo else name
        return f"{label} · read-only" if self.read_only is not None else label

    @property
    def shown_path(self) -> str | None:
        """The database as a visitor of a served session sees it: never the server's paths.
        None when not served (show the full path)."""
        if self.served is None:
            return None
        return "a private copy of the demo data" if self.served.demo else self.store.path.name

    @classmethod
    def screen_class(cls, mode: str) -> type[BaseScreen]:
        module, name = cls.SCREEN_CLASSES[mode].split(":")
        screen_cls: type[BaseScreen] = getattr(importlib.import_module(module), name)
        return screen_cls

    # -- settings -------------------------------------------------------------------------
    def _theme_changed(self, theme: Any) -> None:
        # A theme given on the command line is for this run; one chosen in the app stays.
        if theme.name != self.settings.theme:
            self.settings.theme = theme.name
            self.save_settings()

    def save_settings(self) -> None:
        problem = self.settings.save()
        if problem:
            self.notify(printable(problem), severity="warning", markup=False, timeout=6)

    # -- lifecycle ------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.backend.on_snapshot_rebuilt = self._snapshot_rebuilt
        if self.settings.problem:
            self.notify(printable(self.settings.problem), severity="warning", markup=False)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.check_for_changes()  # the baseline revisions
        if self.poll_seconds > 0:
            self.set_interval(self.poll_seconds, self.check_for_changes)
        self._warm_up()  # the snapshot first: screen 2 waits for it, the first paint does not
        if self.read_only is not None:
            self.notify(
                printable(f"Read-only: {self.read_only}. Keys that change data are disabled."),
                markup=False,
                timeout=6,
            )
        if self.served is not None and self.served.via == "ssh":
            adopt_terminal()
        if self.served is not None and self.served.control_fd is not None:
            reader = ControlReader(self.served.control_fd, self._server_message)
            asyncio.get_running_loop().add_reader(reader.fd, reader.readable)

    def _server_message(self, message: dict[str, str]) -> None:
        """A notice from the server running this session (idle warning, shutdown...)."""
        if "quit" in message:
            self.exit()  # the server closes the session; exiting restores the terminal
            return
        if "notify" in message:
            severity = message.get("severity", "warning")
            if severity not in ("information", "warning", "error"):
                severity = "warning"
            self.notify(
                printable(message["notify"]),
                severity=severity,  # type: ignore[arg-type]
                markup=False,
                timeout=float(message.get("timeout", 30)),
            )

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_key = time.monotonic()
        await super().on_event(event)

    def _warm_up(self) -> None:
        async def run() -> None:
            try:
                await self.backend.read(warm_up, self.backend)
                # The statistics import holds the GIL for a few hundred ms of CPU: in a
                # thread it still halves the speed of the event loop meanwhile. Wait for a
                # pause in the typing, so no key press waits for it.
                while time.monotonic() - self._last_key < self.WARM_IMPORTS_AFTER_IDLE:
                    await asyncio.sleep(0.25)
                await asyncio.to_thread(warm_imports)
            except Exception as exc:  # only an optimisation: the screens report real errors
                self.log.warning(f"warm-up failed: {exc}")

        worker: Worker[None] = self.run_worker(run, group="warm-up", exit_on_error=False)
        del worker

    def _snapshot_rebuilt(self) -> None:
        # From the rebuild thread: the screens redraw from the new snapshot.
        with contextlib.suppress(RuntimeError):
            self.call_from_thread(self.check_for_changes, {"catalog"})

    async def on_unmount(self) -> None:
        if self._owns_store:
            self.backend.close()

    def mark_painted(self, what: str) -> None:
        """Remember when ``what`` was first drawn (for benchmarks/bench_tui.py)."""
        self.paint_times.setdefault(what, time.perf_counter())

    # -- change detection -----------------------------------------------------------------
    @property
    def catalog_revision(self) -> int | None:
        """The catalog revision of the last poll (None before the first)."""
        return None if self._revisions is None else self._revisions.catalog

    def check_for_changes(self, written: set[str] | None = None) -> None:
        """Compare the data revisions with the last seen ones and tell the screens.

        ``written`` names scopes this app just wrote: they refresh even if the baseline
        had already caught up with the write.
        """
        if written:
            self._written |= written
        if self._polling:
            self._poll_again = True
            return
        self._polling = True
        worker: Worker[None] = self.run_worker(self._poll, group="poll", exit_on_error=False)
        del worker

    async def _poll(self) -> None:
        try:
            await self._poll_loop()
        finally:
            self._polling = False

    async def _poll_loop(self) -> None:
        while True:
            self._poll_again = False
            try:
                current = await self.backend.read(revisions)
            except (SmartSuggestError, sqlite3.Error):
                current = None  # transient (e.g. a long lock); the next tick tries again
            if current is not None:
                previous, self._revisions = self._revisions, current
                changed, self._written = set(self._written), set()
                if previous is not None:
                    if current.catalog != previous.catalog:
                        changed.add("catalog")
                    if current.experiments != previous.experiments:
                        changed.add("experiments")
                if changed:
                    for screen in list(self.screens_live.values()):
                        screen.data_changed(changed)
            if not self._poll_again:
                break

    # -- doing work -----------------------------------------------------------------------
    async def attempt(self, work: Awaitable[Any]) -> Any:
        """Await ``work``; on failure notify the user (never a traceback) and return FAILED."""
        try:
            return await work
        except asyncio.CancelledError:
            raise
        except SmartSuggestError as exc:
            self.notify(printable(str(exc)), severity="error", markup=False, timeout=6)
        except sqlite3.Error as exc:
            self.notify(
                f"database error: {describe_sqlite_error(exc)}",
                severity="error",
                markup=False,
                timeout=8,
            )
        except Exception as exc:  # a bug: say so in one line and keep running
            self.log.error(exc)
            self.notify(
                printable(f"internal error: {type(exc).__name__}: {exc}"),
                severity="error",
                markup=False,
                timeout=10,
            )
        return FAILED

    async def run_in_mode(self, mode: str, action: str) -> None:
        """Switch to ``mode`` and run one of its screen actions (for the palette)."""
        if self.current_mode != mode:
            await self.switch_mode(mode)
        screen = self.screen
        if isinstance(screen, BaseScreen) and screen.check_action(action, ()) is not True:
            screen.explain_disabled(action)  # the palette lists it; say why it is off
            return
        await screen.run_action(action)

    # -- files ----------------------------------------------------------------------------
    def save_files(self, files: list[tuple[str, str]]) -> list[Path]:
        """Write new files to the export folder (never over a file) and say where."""
        folder = output.export_folder(self.settings.export_dir)
        written: list[Path] = []
        try:
            for name, content in files:
                written.append(output.write_new(folder, name, content, [self.store.path]))
        except (OSError, SmartSuggestError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self.notify(
                printable(
                    f"Could not write to {folder}: {reason}. Set another folder "
                    "(ctrl+p, Export folder)."
                ),
                severity="error",
                markup=False,
                timeout=8,
            )
        if written:
            names = ", ".join(p.name for p in written)
            self.notify(printable(f"Saved {names} in {folder}"), markup=False, timeout=8)
        return written

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        served = self.served
        for command in super().get_system_commands(screen):
            if command.title != "Screenshot":
                yield command
            elif served is not None and served.via == "web":
                yield command  # in a browser Textual's screenshot is a download: keep it
        if served is not None:
            # Files saved here would land on the server's disk, not the visitor's.
            return
        yield SystemCommand(
            "Screenshot",
            "Save an SVG picture of the screen in the export folder",
            lambda: self.set_timer(0.1, self.save_screenshot_file),
        )
        yield SystemCommand(
            "Export folder",
            "Choose the folder for screenshots and exports (remembered)",
            self.action_choose_export_folder,
        )

    def save_screenshot_file(self) -> None:
        svg = self.export_screenshot(title=self.title)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.save_files([(f"smart-suggest-{stamp}.svg", svg)])

    def action_choose_export_folder(self) -> None:
        current = str(output.export_folder(self.settings.export_dir))

        def is_folder(value: str) -> bool:
            return Path(value.strip()).expanduser().is_dir()

        async def submit(values: dict[str, Any]) -> Any:
            return str(Path(values["folder"].strip()).expanduser().resolve())

        def done(folder: Any) -> None:
            if folder:
                self.settings.export_dir = folder
                self.save_settings()
                self.notify(printable(f"Exports go to {folder}"), markup=False)

        field = FormField(
            "folder",
            "Folder (must exist)",
            default=current,
            validators=[Function(is_folder, "not an existing folder")],
        )
        self.push_screen(FormDialog("Export folder", [field], submit, "Use"), done)

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        """Run an action; a write action on a read-only database is explained, not run.

        Keys, clicks and the command palette all arrive here, so this is the one place
        that needs to know.
        """
        if self.read_only is not None:
            prefix, name, _params = parse(action) if isinstance(action, str) else action
            target: Any = default_namespace if default_namespace is not None else self
            if prefix == "screen":
                target = self.screen
            elif prefix == "app":
                target = self
            if isinstance(target, BaseScreen) and name in target.WRITE_ACTIONS:
                self.explain_read_only()
                return True
        return await super().run_action(action, default_namespace, namespaces)

    def explain_read_only(self) -> None:
        self.notify(
            printable(f"Not available: the database is read-only ({self.read_only})."),
            title="Read-only",
            severity="warning",
            markup=False,
            timeout=4,
        )

    # -- actions --------------------------------------------------------------------------
    def action_help(self) -> None:
        screen = self.screen
        if not isinstance(screen, BaseScreen):
            return
        sections = screen.help_sections()
        if self.served is not None:
            about = "a private copy of the demo data" if self.served.demo else "a shared database"
            notes = [("ctrl+q", self.served.how_to_leave), ("", f"You are using {about}.")]
            if self.read_only is not None:
                notes.append(("", f"Read-only ({self.read_only}): keys that change data are off."))
            sections.append(("This session", notes))
        self.push_screen(HelpScreen(screen.LABEL, screen.ABOUT, sections))
