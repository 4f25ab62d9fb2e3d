"""Screen 1: what smart-suggest is, how it is built, the A/B workflow, the live data."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from tui import data
from tui.format import lit, num, size
from tui.screens.base import BaseScreen, Body
from tui.screens.dialogs import ConfirmDialog

INTRO = (
    "Recommends items to users from what they viewed, clicked and bought.\n"
    "Runs A/B experiments between recommendation strategies (v1 vs v2).\n"
    "Tells you with honest statistics which one wins, or that it can't tell yet."
)

ARCHITECTURE = """\
  smart-suggest tui            smart-suggest CLI
  (Textual screens)            (typer commands)
          │                            │
          └─────────────┬──────────────┘
                        ▼
 ┌─────────────── core: smart_suggest ────────────────┐
 │ tracking    recommend   experiments    stats       │
 │ users       v1 collab.  assign, serve  tests, CIs  │
 │ items       v2 content  log events     SRM, power  │
 │ actions     popular     KPIs, simulate verdicts    │
 └──────────────────────────┬─────────────────────────┘
                            ▼
           SQLite: one file, WAL, data revisions"""

TOUR = """\
2  pick a user (↑↓, / to filter), tab to v1 or v2,
   v c p log a view, click or purchase: the lists change
   s  serves the linked experiment (impressions logged)
3  read the verdict; s simulates traffic, n creates
   an experiment, x stops one; t switches the statistics
^p finds any action by name · F1 lists a screen's keys"""

WORKFLOW: tuple[tuple[str, str, str], ...] = (
    ("Create", "control and treatment strategies, traffic, split", "3 n"),
    ("Assign", "MD5(experiment:user) gives each user a stable A or B", "auto"),
    ("Serve", "users get their variant's list; impressions logged", "2 s"),
    ("Log", "clicks, purchases, engagement come back as events", "3 l/s"),
    ("Results", "KPIs per variant: CTR, conversion, engagement", "3"),
    ("Analyse", "tests, intervals, SRM, sequential, P(B>A), verdict", "3"),
)

COUNT_LABELS = (
    ("users", "Users"),
    ("items", "Items"),
    ("interactions", "Interactions"),
    ("experiments", "Experiments"),
    ("events", "Events"),
)


def workflow_table() -> Table:
    table = Table(show_header=False, box=None, padding=(0, 1), expand=True)
    table.add_column("n", style="bold", no_wrap=True, width=2)
    table.add_column("step", style="bold", no_wrap=True, width=8)
    table.add_column("what", ratio=1)
    table.add_column("keys", style="dim", no_wrap=True, justify="right")
    for i, (step, what, keys) in enumerate(WORKFLOW, 1):
        table.add_row(f"{i}.", step, what, keys)
    return table


class OverviewScreen(BaseScreen):
    MODE = "overview"
    AUTO_FOCUS = ""  # nothing: a focused button would scroll the intro away at 80x24
    LABEL = "Overview"
    BODY = "overview-body"
    ABOUT = (
        "What smart-suggest does, how it is built, the A/B workflow, and the live state of "
        "the database. Numbers refresh by themselves when any process changes the data."
    )
    PALETTE: ClassVar[dict[str, str]] = {
        "load_sample": "Load the sample data",
        "clear_data": "Clear all data",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "load_sample", "Load sample", tooltip="Load the sample data (asks first)"),
        Binding("x", "clear_data", "Clear all", tooltip="Delete all data (asks first)"),
        Binding("r", "reload", "Reload", show=False, tooltip="Reload the counts"),
        Binding("pageup", "scroll_body(-1)", "Page up", show=False),
        Binding("pagedown", "scroll_body(1)", "Page down", show=False),
        Binding("up", "scroll_lines(-1)", "Scroll up", show=False),
        Binding("down", "scroll_lines(1)", "Scroll down", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        with Body(id="overview-body"), Horizontal(id="overview-cols"):
            with Vertical(id="overview-left"):
                intro = Static(INTRO, id="intro", classes="panel", markup=False)
                intro.border_title = "smart-suggest"
                yield intro
                with Vertical(id="data-panel", classes="panel") as panel:
                    panel.border_title = "Data"
                    yield Static(id="empty-note")
                    yield Static(id="counts")
                    yield Static(id="db-info")
                    with Horizontal(id="data-actions"):
                        yield Button("Load sample data (l)", id="load", compact=True)
                        yield Button("Clear all data (x)", id="clear", compact=True)
                flow = Static(workflow_table(), id="workflow", classes="panel")
                flow.border_title = "A/B workflow (screen and key on the right)"
                yield flow
            with Vertical(id="overview-right"):
                arch = Static(ARCHITECTURE, id="architecture", classes="panel", markup=False)
                arch.border_title = "Architecture"
                yield arch
                tour = Static(TOUR, id="tour", classes="panel", markup=False)
                tour.border_title = "Try it"
                yield tour

    def action_scroll_lines(self, lines: int) -> None:
        body = self.query_one("#overview-body", Body)
        body.scroll_relative(y=lines, animate=False)

    def refresh_data(self, scopes: set[str]) -> None:
        self.spawn(self._load, group="overview")

    async def _load(self) -> None:
        result = await self.sapp.attempt(self.sapp.backend.read(data.overview))
        if result is not data.FAILED and isinstance(result, data.OverviewData):
            self.show(result)

    def show(self, info: data.OverviewData) -> None:
        counts = info.counts
        grid = Table.grid(padding=(0, 2), expand=False)
        for _ in COUNT_LABELS:
            grid.add_column(justify="right", no_wrap=True)
        grid.add_row(*[Text(label, style="dim") for _, label in COUNT_LABELS])
        grid.add_row(*[Text(num(counts.get(key, 0)), style="bold") for key, _ in COUNT_LABELS])
        self.query_one("#counts", Static).update(grid)
        db = Text.assemble(
            ("Database ", "dim"), lit(info.path), ("  ", ""), (size(info.size_bytes), "dim")
        )
        self.query_one("#db-info", Static).update(db)
        note = self.query_one("#empty-note", Static)
        if info.empty:
            note.update(
                Text(
                    "The database is empty. Press l to load the sample data: 50 users, "
                    "20 items, one running experiment.",
                    style="bold",
                )
            )
            note.display = True
        else:
            note.display = False
        self.query_one("#clear", Button).disabled = info.empty
        self.call_after_refresh(self.sapp.mark_painted, "data")

    @on(Button.Pressed, "#load")
    def _load_pressed(self) -> None:
        self.action_load_sample()

    @on(Button.Pressed, "#clear")
    def _clear_pressed(self) -> None:
        self.action_clear_data()

    def action_load_sample(self) -> None:
        path = lit(self.sapp.store.path)
        message = Text.assemble(
            "Replace ALL data in ",
            path,
            " with the sample data?\n",
            "(50 users, 20 items, their history, one running experiment with its events)",
        )
        self.app.push_screen(
            ConfirmDialog("Load sample data", message, yes_label="Load"), self._confirmed_load
        )

    def _confirmed_load(self, answer: bool | None) -> None:
        if answer:
            self.spawn(self._do_load, group="job", exclusive=False)

    async def _do_load(self) -> None:
        panel = self.query_one("#data-panel")
        panel.loading = True
        try:
            report = await self.sapp.attempt(self.sapp.backend.job(data.load_sample))
        finally:
            panel.loading = False
        if report is not data.FAILED:
            self.notify(
                f"Loaded the sample data: {report.users} users, {report.items} items, "
                f"{report.events:,} events",
                markup=False,
            )
        self.sapp.check_for_changes({"catalog", "experiments"})

    def action_clear_data(self) -> None:
        message = Text.assemble(
            "Delete ALL users, items, interactions, experiments and events in ",
            lit(self.sapp.store.path),
            "?\nThis cannot be undone.",
        )
        self.app.push_screen(
            ConfirmDialog("Clear all data", message, yes_label="Delete"), self._confirmed_clear
        )

    def _confirmed_clear(self, answer: bool | None) -> None:
        if answer:
            self.spawn(self._do_clear, group="job", exclusive=False)

    async def _do_clear(self) -> None:
        panel = self.query_one("#data-panel")
        panel.loading = True
        try:
            counts = await self.sapp.attempt(self.sapp.backend.job(data.clear_all))
        finally:
            panel.loading = False
        if counts is not data.FAILED:
            self.notify(f"Deleted {sum(counts.values()):,} rows", markup=False)
        self.sapp.check_for_changes({"catalog", "experiments"})
