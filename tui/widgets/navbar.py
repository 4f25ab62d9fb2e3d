"""The one-line bar at the top: app name, the three screens (keys 1-3), the database."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from smart_suggest.text import printable

SCREENS: tuple[tuple[str, str, str, str], ...] = (
    ("1", "overview", "Overview", "Overview"),
    ("2", "recommend", "Recommendations", "Recs"),
    ("3", "experiments", "Experiments", "Exps"),
)


class NavBar(Static):
    """Shows where you are and how to get elsewhere; the tabs are clickable too."""

    DEFAULT_CSS = """
    NavBar {
        dock: top;
        height: 1;
        width: 1fr;
        background: $panel;
        color: $foreground;
    }
    """

    def __init__(self, active: str, db_name: str) -> None:
        super().__init__()
        self.active = active
        self.db_name = db_name

    def on_mount(self) -> None:
        self.update(self._content())

    def _content(self) -> Content:
        width = self.size.width or 80
        # The longest form that fits: every tab keeps a label (never a bare number).
        for app_name, short in ((" smart-suggest ", False), (" smart-suggest ", True), ("", True)):
            parts = self._parts(app_name, short)
            used = sum(len(p if isinstance(p, str | Content) else p[0]) for p in parts)
            if used <= width:
                break
        room = width - used - 1
        if room > 8:
            name = printable(self.db_name, limit=room)
            parts.append(Content(" " * max(room - len(name), 0)))
            parts.append((name, "dim"))
        return Content.assemble(*parts)

    def _parts(self, app_name: str, short: bool) -> list[Content | str | tuple[str, str]]:
        parts: list[Content | str | tuple[str, str]] = []
        if app_name:
            parts += [(app_name, "bold reverse"), " "]
        for key, mode, label, short_label in SCREENS:
            style = "bold reverse $accent" if mode == self.active else ""
            tab = Content.from_markup(
                f"[@click=app.switch_mode('{mode}')] $key $label [/]",
                key=key,
                label=short_label if short else label,
            )
            parts.append(tab.stylize(style) if style else tab)
            parts.append(" ")
        return parts

    def on_resize(self) -> None:
        self.update(self._content())
