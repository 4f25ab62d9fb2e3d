"""Charts drawn by plotext (through textual-plotext): KPI bars and the daily CTR trend.

Plotext's output is parsed as ANSI, so only our own labels (variant letters, strategy
names from the registry, dates) ever reach it, never user data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

# Distinct markers as well as colours, so the series stay apart under NO_COLOR; an A/B/n
# test has up to 26 variants, so they repeat (with the legend) past six.
_SERIES = (
    ("blue", "dot"),
    ("orange", "braille"),
    ("green", "x"),
    ("magenta", "+"),
    ("cyan", "*"),
    ("red", "o"),
)
_BAR_MARKERS = ("sd", "▒", "░", "▓", "#", "+")


def _series(n: int) -> list[tuple[str, str]]:
    return [_SERIES[i % len(_SERIES)] for i in range(n)]


class Chart(PlotextPlot):
    """A plot that shows a one-line message instead of empty axes when there is no data."""

    can_focus = True  # so tab reaches (and scrolls to) the chart at 80x24

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.placeholder: str | None = "no data yet"

    def render(self) -> RenderResult:
        if self.placeholder is not None:
            return Text(self.placeholder, style="dim", justify="center")
        return super().render()

    def show_message(self, message: str) -> None:
        self.placeholder = message
        self.refresh()

    def _prepare(self, width: int) -> None:
        """Settings that depend on the width drawn at (none by default)."""

    def drawing(self, width: int = 100, height: int = 25) -> str:
        """The chart as plotext draws it (ANSI codes), at a fixed size, for exports."""
        if self.placeholder is not None:
            return self.placeholder
        plt: Any = self.plt
        self._prepare(width)
        plt.plotsize(width, height)
        try:
            return str(plt.build())
        finally:
            self.refresh()  # the next frame sets the widget's own size again


class KpiBars(Chart):
    """CTR and conversion rate per variant, as grouped bars (in percent)."""

    def show(
        self, variants: Sequence[str], ctr: Sequence[float], conversion: Sequence[float]
    ) -> None:
        plt: Any = self.plt  # the bundled stubs lag plotext (labels=, per-series lists)
        plt.clear_data()
        plt.clear_figure()
        self.placeholder = None if variants else "no data yet"
        if variants:
            plt.multiple_bar(
                ["CTR", "Conversion"],
                [[100 * ctr[i], 100 * conversion[i]] for i in range(len(variants))],
                labels=list(variants),
                color=[c for c, _ in _series(len(variants))],
                marker=[_BAR_MARKERS[i % len(_BAR_MARKERS)] for i in range(len(variants))],
                width=0.35,
            )
            plt.title("CTR and conversion per variant (%)")
            top = max([*ctr, *conversion, 0.01]) * 100
            plt.ylim(0, top * 1.15)
        self.refresh()


class TrendChart(Chart):
    """Daily CTR per variant over the experiment's days (in percent)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._days: list[str] = []

    def render(self) -> RenderResult:
        self._prepare(self.size.width)
        return super().render()

    def _prepare(self, width: int) -> None:
        # Day labels are 5 cells wide; plotext silently drops labels that would touch, so
        # show every n-th day, n chosen from the width this frame is drawn at.
        days = self._days
        if days and self.placeholder is None:
            room = max(2, (width - 8) // 9)
            step = max(1, math.ceil(len(days) / room))
            xs = list(range(1, len(days) + 1))
            plt: Any = self.plt
            plt.xticks(xs[::step], days[::step])

    def show(self, days: Sequence[str], series: Mapping[str, Sequence[float | None]]) -> None:
        plt: Any = self.plt
        self._days = list(days)
        plt.clear_data()
        plt.clear_figure()
        self.placeholder = None if days else "no events yet"
        if days:
            xs = list(range(1, len(days) + 1))
            styles = _series(len(series))
            for (name, values), (color, marker) in zip(series.items(), styles, strict=True):
                points = [(x, 100 * v) for x, v in zip(xs, values, strict=True) if v is not None]
                if points:
                    plt.plot(
                        [p[0] for p in points],
                        [p[1] for p in points],
                        label=name,
                        color=color,
                        marker=marker,
                    )
            # A fixed range: the first and last day's ticks never fall on the plot's edge
            # (where plotext may drop them), whatever the data on those days.
            plt.xlim(0.5, len(days) + 0.5)
            plt.title("Daily CTR per variant (%)")
        self.refresh()
