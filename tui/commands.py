"""The command palette (ctrl+p): every action of every screen, by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from tui.app import SmartSuggestApp

Command = tuple[str, str, Callable[[], object]]


class ActionsProvider(Provider):
    """Navigation, then the actions of the current screen, then those of the others.

    An action of another screen switches to that screen first, so "Create experiment"
    works from anywhere.
    """

    def _commands(self) -> list[Command]:
        app = cast("SmartSuggestApp", self.app)
        commands: list[Command] = [
            (
                "Go to Overview",
                "Screen 1: counts, architecture, sample data",
                partial(app.switch_mode, "overview"),
            ),
            (
                "Go to Recommendations",
                "Screen 2: users, v1 vs v2, logging",
                partial(app.switch_mode, "recommend"),
            ),
            (
                "Go to Experiments",
                "Screen 3: A/B tests, KPIs, verdict",
                partial(app.switch_mode, "experiments"),
            ),
            ("Help: keys of this screen", "F1 / ?", app.action_help),
        ]
        current = app.current_mode
        order = [current] + [m for m in app.MODES if m != current]
        for mode in order:
            screen_cls = app.screen_class(mode)
            label = screen_cls.LABEL
            for name, help_text, action in screen_cls.palette_commands():
                title = name if mode == current else f"{label}: {name}"
                commands.append((title, help_text, partial(app.run_in_mode, mode, action)))
        return commands

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
