"""What every main screen shares: the nav bar, the footer, help, palette, refresh."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import events
from textual._context import NoActiveAppError
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.worker import Worker

from tui.widgets.footer import KeyFooter
from tui.widgets.navbar import NavBar

if TYPE_CHECKING:
    from tui.app import SmartSuggestApp


def _bindings_of(node_cls: type[Any]) -> list[Binding]:
    out: list[Binding] = []
    for b in getattr(node_cls, "BINDINGS", []):
        if isinstance(b, Binding):
            out.append(b)
        elif isinstance(b, tuple) and len(b) >= 2:
            out.append(Binding(*b))
    return out


class Body(VerticalScroll):
    """A screen's scrolling body. Not a Tab stop (it would highlight nothing): the screen's
    page keys scroll it, and focusing a panel inside scrolls that panel into view."""

    can_focus = False


class BaseScreen(Screen[None]):
    """A main screen (one per mode). Subclasses fill ``compose_body`` and ``refresh_data``."""

    MODE: ClassVar[str] = ""
    LABEL: ClassVar[str] = ""
    ABOUT: ClassVar[str] = ""
    #: Extra keys handled by widgets inside the screen, for the help screen.
    EXTRA_KEYS: ClassVar[list[tuple[str, str]]] = []
    #: Names of actions in the command palette (the footer's labels are kept short).
    PALETTE: ClassVar[dict[str, str]] = {}
    #: Actions that change the database (dimmed in the footer when it is read-only; the app
    #: explains why when one is used anyway).
    WRITE_ACTIONS: ClassVar[frozenset[str]] = frozenset()
    BINDINGS: ClassVar[list[BindingType]] = []
    #: The id of the screen's Body (scrolled by page keys).
    BODY: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self._stale: set[str] = set()
        self._resumed_before = False
        # Textual marks a new screen's styles as outdated, so the first switch to it
        # re-parses every stylesheet and restyles the whole app (0.1-0.3 s of CPU) before
        # the screen is even mounted. A screen made now is styled as it mounts, with the
        # CSS as it is now: mark it current (a later theme change still counts).
        with contextlib.suppress(NoActiveAppError):
            app = self.app
            if app._screen_stacks.get(app.current_mode):  # not the first screen: CSS loaded
                self._css_update_count = app._css_update_count

    @property
    def sapp(self) -> SmartSuggestApp:
        return cast("SmartSuggestApp", self.app)

    def compose(self) -> ComposeResult:
        yield NavBar(self.MODE, self.sapp.db_label)
        yield from self.compose_body()
        yield KeyFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.WRITE_ACTIONS and self.sapp.read_only is not None:
            return None  # shown dimmed; the app's run_action explains the refusal
        return True

    # -- data refresh ------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.sapp.screens_live[self.MODE] = self
        self.call_after_refresh(self.sapp.mark_painted, "shell")
        self.refresh_data({"catalog", "experiments"})

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        # Runs before Textual's own handler (the MRO order of handlers). Textual restyles
        # the whole screen on every resume, a third of the CPU of a screen switch. Nothing
        # a restyle would pick up changes while a mode's screen sits behind another one:
        # a theme or CSS change is caught by the stylesheet's update count (switch_mode
        # then refreshes the CSS), a resize by the layout refresh, and classes set meanwhile
        # restyle their nodes when they are set. So restyle only the first time.
        if self._resumed_before and self._css_update_count == self.app._css_update_count:
            event.refresh_styles = False
        self._resumed_before = True
        if self._stale:
            stale, self._stale = self._stale, set()
            self.refresh_data(stale)

    def data_changed(self, scopes: set[str]) -> None:
        """Called by the app when another process (or we) changed the data."""
        if self.app.screen is self:
            self.refresh_data(scopes)
        else:
            self._stale |= scopes

    def refresh_data(self, scopes: set[str]) -> None:
        """Reload what depends on ``scopes`` ("catalog", "experiments")."""

    def action_reload(self) -> None:
        self.refresh_data({"catalog", "experiments"})
        self.notify("Reloaded", timeout=1.5)

    def explain_disabled(self, action: str) -> None:
        """Say why ``action`` is off right now (when asked for it by name)."""
        self.notify("Not available here right now", severity="warning")

    def action_scroll_body(self, pages: int) -> None:
        """PgUp / PgDn: scroll the whole screen (used where the lists do not need them)."""
        if not self.BODY:
            return
        body = self.query_one(f"#{self.BODY}", Body)
        if pages < 0:
            body.scroll_page_up(animate=False)
        else:
            body.scroll_page_down(animate=False)

    # -- workers ----------------------------------------------------------------------------
    def spawn(
        self,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        group: str,
        exclusive: bool = True,
    ) -> Worker[Any]:
        """Run ``fn(*args)`` as a worker; failures become notifications (see app.attempt).

        The coroutine is created only when the worker starts, so a worker replaced
        (``exclusive``) before it ran leaves nothing un-awaited behind.
        """

        async def run() -> None:
            await self.sapp.attempt(fn(*args))

        return self.run_worker(run, group=group, exclusive=exclusive, exit_on_error=False)

    # -- help and palette ----------------------------------------------------------------------
    @classmethod
    def screen_bindings(cls) -> list[Binding]:
        seen: set[str] = set()
        out = []
        for klass in cls.__mro__:
            if not klass.__module__.startswith("tui."):
                continue  # Textual's own screen keys (tab, ...) are listed as "Everywhere"
            for b in _bindings_of(klass):
                if b.action not in seen and b.description:
                    seen.add(b.action)
                    out.append(b)
        return out

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        app = self.sapp
        here = [
            (app.get_key_display(b), b.tooltip or b.description) for b in self.screen_bindings()
        ]
        here += self.EXTRA_KEYS
        everywhere = [
            (app.get_key_display(b), b.tooltip or b.description)
            for b in _bindings_of(type(app))
            if b.description
        ]
        everywhere += [
            ("^p", "Command palette: every action by name"),
            ("tab / shift+tab", "Move between panels"),
            ("o / click a header", "Sort the focused table by a column (again: reverse)"),
            ("ctrl+p Screenshot", "Save an SVG of the screen (folder: ctrl+p Export folder)"),
        ]
        return [(f"{self.LABEL} screen", here), ("Everywhere", everywhere)]

    @classmethod
    def palette_commands(cls) -> Iterable[tuple[str, str, str]]:
        """(name, help, action) of every action of this screen, for the command palette."""
        for b in cls.screen_bindings():
            if b.action in ("reload",) or b.action.startswith("scroll_"):
                continue
            name = cls.PALETTE.get(b.action, b.description)
            key = b.key_display or b.key.replace("slash", "/")
            about = b.tooltip or b.description
            yield name, f"key {key}" + ("" if about == name else f" · {about}"), b.action
