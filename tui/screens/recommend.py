"""Screen 2: pick a user, compare v1 and v2, log actions, serve a linked experiment."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from smart_suggest.clock import iso
from smart_suggest.text import printable
from tui import data
from tui.format import lit, num, para, right
from tui.screens.base import BaseScreen, Body
from tui.screens.dialogs import (
    CANCELLED,
    ChecklistDialog,
    FormDialog,
    FormField,
    PickDialog,
)
from tui.widgets.tables import SyncTable

#: Shown side by side until the user picks others (m); saved in the settings file.
DEFAULT_STRATEGIES: tuple[str, ...] = ("v1", "v2")
#: At most this many lists side by side (each needs room for an item name).
MAX_SHOWN = 4
#: The narrowest list that shows rank, a few letters of the name and a whole score.
REC_MIN_WIDTH = 24
REC_COUNT = 10


def strategy_title(name: str, description: str) -> str:
    """ "v1 · collaborative": the description up to its first colon."""
    head = description.split(":")[0].strip()
    return f"{name} · {head}" if head and head != name else name


ACTION_STYLES = {"view": "", "click": "bold", "purchase": "bold reverse"}


def score_text(row: data.RecRow) -> Text:
    """The score; popularity counts (v1's fall-back, the popular strategy) are marked
    with a trailing "p", because they are not on the scale of a similarity."""
    score = row.score
    text = f"{score:.2f}" if abs(score) < 1000 else f"{score:,.0f}"
    if row.source == "popular":
        return right(f"{score:,.0f}p" if abs(score) < 100000 else f"{score:.0e}p", "italic")
    return right(text)


class RecTable(SyncTable):
    """One strategy's list: rank, item, category, score."""

    def __init__(self, strategy: str, **kwargs: Any) -> None:
        super().__init__(
            [("#", "rank"), ("Item", "item"), ("Category", "category"), ("Score", "score")],
            **kwargs,
        )
        self.strategy = strategy
        self.recs: list[data.RecRow] = []
        self.redraw = lambda: self.show(self.recs)
        #: Item ids an experiment just served from this list (marked ▸).
        self.served: set[int] = set()
        #: False after the item under the cursor was logged and left the list: the
        #: cursor then rests on another item, which must be chosen afresh (↑ ↓, click).
        self.armed = True
        self._acted: str | None = None
        self._quiet = False

    def acted_on(self, item_id: int) -> None:
        """Remember that an action was logged on ``item_id`` (the highlighted row)."""
        self._acted = str(item_id)

    def show(self, recs: list[data.RecRow]) -> None:
        self.recs = recs
        # Fit the row to the width: rank 3, score 6, 2 padding per column, the scrollbar;
        # the category goes first when narrow, then the name shrinks (never the score).
        width = self.available_width()
        scrollbar = 1 if len(recs) > max(self.size.height - 1, 0) else 0
        category_w = 0 if width < 40 else 9 if width < 50 else 16
        ncols = 4 if category_w else 3
        scores = [score_text(r) for r in recs]
        # As wide as the widest score ("18,902p" is 7): a cut score loses digits or its "p".
        score_w = max([6, *(s.cell_len for s in scores)])
        name_w = max(6, width - 2 * ncols - 3 - score_w - category_w - scrollbar)
        columns: list[tuple[str, str]] = [("#", "rank"), ("Item", "item")]
        if category_w:
            columns.append(("Category", "category"))
        columns.append(("Score", "score"))
        rows = []
        for r, score in zip(recs, scores, strict=True):
            served = r.item_id in self.served
            cells: list[Any] = [
                right(f"▸{r.rank}", "bold") if served else right(str(r.rank), "dim"),
                lit(r.name, limit=name_w, style="bold" if served else ""),
            ]
            if category_w:
                cells.append(lit(r.category, limit=category_w, style="dim"))
            cells.append(score)
            rows.append((str(r.item_id), cells))
        widths = {"rank": 3, "item": name_w, "score": score_w}
        if category_w:
            widths["category"] = category_w
        acted, self._acted = self._acted, None
        self._quiet = True
        try:
            self.sync(rows, widths=widths, columns=columns)
        finally:
            self._quiet = False
        if acted is not None and acted not in {key for key, _ in rows} and rows:
            self.armed = False
            self.show_cursor = False

    def watch_cursor_coordinate(self, old: Any, new: Any) -> None:
        super().watch_cursor_coordinate(old, new)
        if not self._quiet and old != new:
            self._arm()

    def action_cursor_down(self) -> None:
        # After the item left the list, the first arrow shows the cursor where it is
        # (a fresh, visible choice); the next ones move it.
        if self._arm():
            return
        super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self._arm():
            return
        super().action_cursor_up()

    def on_click(self, event: events.Click) -> None:
        row = event.style.meta.get("row")
        if self._arm() and isinstance(row, int) and row >= 0:
            self.move_cursor(row=row)

    def _arm(self) -> bool:
        """Show the cursor again; True when it was hidden."""
        if self.armed:
            return False
        self.armed = True
        self.show_cursor = True  # posts RowHighlighted: the detail panel follows
        return True

    @property
    def current(self) -> data.RecRow | None:
        if not self.armed:
            return None
        key = self.current_key
        return next((r for r in self.recs if str(r.item_id) == key), None)


class RecommendScreen(BaseScreen):
    MODE = "recommend"
    AUTO_FOCUS = "#user-list"
    LABEL = "Recommendations"
    BODY = "rec-body"
    ABOUT = (
        "Pick a user on the left (type to filter). v1 (collaborative: users like you) and "
        "v2 (content-based: items like the ones you liked) are side by side; the panel at "
        "the top right explains the highlighted row. Log a view, click or purchase of the "
        "highlighted item and watch both lists change. With an experiment linked, s serves "
        "the user's variant and logs the impressions."
    )
    #: Actions that change the database: disabled (and explained) when it is read-only.
    WRITE_ACTIONS: ClassVar[frozenset[str]] = frozenset({"log", "serve", "add_user", "add_item"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "slash",
            "focus_filter",
            "Find",
            key_display="/",
            tooltip="Find a user: type to filter the list by name",
        ),
        Binding("v", "log('view')", "View", tooltip="Log a view of the highlighted item"),
        Binding("c", "log('click')", "Click", tooltip="Log a click on the highlighted item"),
        Binding("p", "log('purchase')", "Buy", tooltip="Log a purchase of the highlighted item"),
        Binding(
            "s",
            "serve",
            "Serve",
            tooltip="Serve the linked experiment: the user's variant, impressions logged",
        ),
        Binding("e", "link_experiment", "Exp", tooltip="Link the experiment that s serves"),
        Binding(
            "m",
            "choose_strategies",
            "Strategies",
            tooltip="Choose the strategies shown side by side (remembered)",
        ),
        Binding("y", "copy", "Copy", tooltip="Copy the highlighted row to the clipboard (OSC 52)"),
        Binding(
            "f",
            "find_item",
            "Find item",
            show=False,
            tooltip="Find an item by name or category: its similar items, its row if listed",
        ),
        Binding("a", "add_user", "+User", tooltip="Add a user (form)"),
        Binding("i", "add_item", "+Item", tooltip="Add an item (form)"),
        Binding(
            "h",
            "toggle_simulated",
            "Sim users",
            show=False,
            tooltip="Show or hide simulated visitors (sim-<experiment>-<n>) in the user list",
        ),
        Binding("r", "reload", "Reload", show=False, tooltip="Reload everything"),
    ]
    PALETTE: ClassVar[dict[str, str]] = {
        "toggle_simulated": "Show or hide simulated visitors in the user list",
        "focus_filter": "Find a user by name",
        "log('view')": "Log a view of the highlighted item",
        "log('click')": "Log a click on the highlighted item",
        "log('purchase')": "Log a purchase of the highlighted item",
        "serve": "Serve the linked experiment to this user",
        "link_experiment": "Link an experiment to serve",
        "choose_strategies": "Choose the strategies shown side by side",
        "copy": "Copy the highlighted recommendation to the clipboard",
        "find_item": "Find an item by name or category",
        "add_user": "Add a user",
        "add_item": "Add an item",
    }
    EXTRA_KEYS: ClassVar[list[tuple[str, str]]] = [
        ("↑ ↓", "Move in the focused list (users, v1, v2, similar, history)"),
        ("enter / ↓", "From the filter: go to the user list"),
        ("esc", "From the filter: back to the user list"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.user_id: int | None = None
        self.view: data.UserView | None = None
        self.item_id: int | None = None
        self.item_table: RecTable | None = None
        self.exp: Any = None  # the linked experiment
        self.exp_chosen = False  # the user picked (or unlinked) an experiment explicitly
        self.served: data.ServedView | None = None
        self._user_timer: Timer | None = None
        self._similar_timer: Timer | None = None
        self._filter = ""
        self._pending_user: int | None = None  # select this user once the list has it
        self._users: list[Any] = []
        self._loading: object | None = None
        #: The strategies side by side, in the order the user chose (m changes them);
        #: checked against the registry (in a worker: it imports the recommenders).
        self.strategies: list[str] = list(DEFAULT_STRATEGIES)
        self.registered: dict[str, str] | None = None

    # -- layout -----------------------------------------------------------------------------
    def _compose_body(self) -> ComposeResult:
        with Body(id="rec-body"):
            with Horizontal(id="rec-top"):
                with Vertical(id="users-panel", classes="panel") as users:
                    users.border_title = "Users"
                    yield Input(placeholder="/ to filter by name", id="user-filter", compact=True)
                    yield SyncTable(
                        [("Id", "id"), ("User", "name")], id="user-list", show_header=False
                    )
                detail = Static(id="detail", classes="panel")
                detail.border_title = "Selected"
                yield detail
            with Horizontal(id="recs-row"):
                yield from self._rec_panels()
            with Horizontal(id="more-row"):
                with Vertical(id="similar-panel", classes="panel") as similar:
                    similar.border_title = "Similar items"
                    yield RecTable("similar", id="similar")
                with Vertical(id="history-panel", classes="panel") as history:
                    history.border_title = "History"
                    yield SyncTable(
                        [("When", "when"), ("Action", "action"), ("Item", "item")], id="history"
                    )
                    yield Static("", id="history-empty")
                profile = Static(id="profile", classes="panel")
                profile.border_title = "Profile"
                yield profile

    def compose_body(self) -> ComposeResult:
        self.strategies = list(self.sapp.settings.strategies[:MAX_SHOWN]) or list(
            DEFAULT_STRATEGIES
        )
        yield from self._compose_body()

    def _rec_panels(self) -> list[Vertical]:
        descriptions = self.registered or {}
        panels = []
        for strategy in self.strategies:
            panel = Vertical(
                RecTable(strategy, id=f"recs-{strategy}"),
                id=f"panel-{strategy}",
                classes="panel rec-panel",
            )
            panel.border_title = strategy_title(strategy, descriptions.get(strategy, ""))
            panels.append(panel)
        return panels

    def _fit_rec_panels(self, width: int = 0) -> None:
        """Side by side while every list gets REC_MIN_WIDTH cells; past that each gets
        exactly that and the row scrolls sideways, rather than cutting the scores."""
        row = self.query_one("#recs-row")
        panels = list(row.query(".rec-panel"))
        # The row spans the screen (less the body's scrollbar); its own size lags a resize.
        width = width or self.size.width
        if not panels or not width:
            return
        fits = width // len(panels) >= REC_MIN_WIDTH
        for panel in panels:
            panel.styles.width = "1fr" if fits else REC_MIN_WIDTH

    def on_resize(self, event: events.Resize) -> None:
        self._fit_rec_panels(event.size.width)

    def _rec_tables(self) -> list[RecTable]:
        return [t for t in self.query(RecTable) if t.id != "similar"]

    def on_mount(self) -> None:
        super().on_mount()
        users = self.query_one("#user-list", SyncTable)
        users.redraw = self._draw_users
        history = self.query_one("#history", SyncTable)
        history.redraw = lambda: self._draw_history(self.view) if self.view else None

    # -- loading ----------------------------------------------------------------------------
    def refresh_data(self, scopes: set[str]) -> None:
        if self.registered is None:
            # First the strategies (the lists depend on them), then everything.
            self.spawn(self._load_strategies, group="strategies")
            return
        if "catalog" in scopes:
            self.spawn(self._load_users, True, group="users")
        if "experiments" in scopes:
            self.spawn(self._load_experiments, group="exps")

    async def _load_strategies(self) -> None:
        registered = await self.sapp.attempt(self.sapp.backend.read(lambda _s: data.strategies()))
        if registered is data.FAILED:
            return
        self.registered = registered
        wanted = [s for s in self.strategies if s in registered]
        unknown = [s for s in self.strategies if s not in registered]
        if unknown:
            self.notify(
                printable(f"Not a registered strategy, not shown: {', '.join(unknown)}"),
                severity="warning",
                markup=False,
            )
        await self._show_strategies(wanted or [s for s in DEFAULT_STRATEGIES if s in registered])
        self.refresh_data({"catalog", "experiments"})

    async def _show_strategies(self, strategies: list[str]) -> None:
        """Put one list per strategy side by side (rebuilt only when they change)."""
        if strategies != self.strategies or not self._rec_tables():
            self.strategies = list(strategies)
            focused = self.focused in self._rec_tables()
            self.item_table = None
            row = self.query_one("#recs-row")
            await row.remove_children()
            await row.mount_all(self._rec_panels())
            self._fit_rec_panels()
            if focused:
                self._rec_tables()[0].focus()
            if self.view is not None:
                missing = [s for s in strategies if s not in self.view.recs]
                if missing and self.user_id is not None:
                    self.spawn(self._load_user, self.user_id, group="user")
                else:
                    for table in self._rec_tables():
                        table.show(self.view.recs.get(table.strategy, []))
        descriptions = self.registered or {}
        for strategy in self.strategies:
            panel = self.query_one(f"#panel-{strategy}")
            panel.border_title = strategy_title(strategy, descriptions.get(strategy, ""))

    async def _load_users(self, reload_user: bool = False) -> None:
        show_sim = self.sapp.settings.show_simulated
        page = await self.sapp.attempt(
            self.sapp.backend.read(data.find_users, self._filter, 200, show_sim)
        )
        if page is data.FAILED:
            return
        self._users = page.users
        table = self.query_one("#user-list", SyncTable)
        self._draw_users()
        if self._pending_user is not None and table.select_key(str(self._pending_user)):
            self._pending_user = None
        users = self.query_one("#users-panel")
        notes = [] if page.shown_all else [f"first {len(page.users)}"]
        if page.hidden_simulated:
            notes.append(f"{page.hidden_simulated:,} sim hidden (h)")
        users.border_subtitle = " · ".join(notes)
        users.border_title = (
            Text.assemble("Users matching ", lit(self._filter, limit=12))
            if self._filter
            else "Users"
        )
        if not page.users:
            self.user_id = None
            self.view = None
            self._draw_empty()
        elif self.user_id is None or table.current_key != str(self.user_id):
            key = table.current_key
            if key is not None:
                self._select_user(int(key), debounce=False)
        elif reload_user and not self._view_current():
            self.spawn(self._load_user, self.user_id, group="user")

    def _view_current(self) -> bool:
        """The user's view was read at (or after) the last catalog revision the app saw:
        e.g. reloaded right after this screen logged an action."""
        seen = self.sapp.catalog_revision
        return self.view is not None and seen is not None and self.view.revision >= seen

    def _draw_users(self) -> None:
        table = self.query_one("#user-list", SyncTable)
        id_w = max([len(str(u.id)) for u in self._users] + [2])
        width = max(8, table.available_width(28) - id_w - 4 - 1)
        table.sync(
            [
                (str(u.id), [right(str(u.id), "dim"), lit(u.username, limit=width)])
                for u in self._users
            ],
            widths={"id": id_w, "name": width},
        )

    async def _load_experiments(self) -> None:
        exps = await self.sapp.attempt(self.sapp.backend.read(data.list_experiments))
        if exps is data.FAILED:
            return
        if self.exp is not None:
            self.exp = next((e for e in exps if e.id == self.exp.id), None)
        if self.exp is None and not self.exp_chosen:
            self.exp = next((e for e in exps if e.status == "active"), None)
        self._draw_detail()

    def _select_user(self, user_id: int, debounce: bool = True) -> None:
        if user_id == self.user_id and self.view is not None:
            return
        self.user_id = user_id
        self._clear_served()
        if self._user_timer is not None:
            self._user_timer.stop()
        if debounce and self.sapp.debounce > 0:
            self._user_timer = self.set_timer(
                self.sapp.debounce, lambda: self.spawn(self._load_user, user_id, group="user")
            )
        else:
            self.spawn(self._load_user, user_id, group="user")

    async def _load_user(self, user_id: int) -> None:
        panels = list(self.query(".rec-panel"))
        subtitles = {panel: panel.border_subtitle for panel in panels}
        token = object()
        self._loading = token

        def busy() -> None:
            # Only for slow loads (no flashing on fast ones). A subtitle, not a loading
            # cover: a covered table drops out of the focus chain and tab would skip it.
            if self._loading is token:
                for panel in panels:
                    panel.border_subtitle = "computing…"

        timer = self.set_timer(0.3, busy)
        try:
            view = await self.sapp.attempt(
                self.sapp.backend.read(
                    data.user_view, self.sapp.backend, user_id, tuple(self.strategies), REC_COUNT
                )
            )
        finally:
            timer.stop()
            if self._loading is token:
                self._loading = None
            for panel in panels:
                if panel.border_subtitle == "computing…":
                    panel.border_subtitle = subtitles[panel] or ""
        if view is data.FAILED or user_id != self.user_id:
            return
        self.view = view
        for table in self._rec_tables():
            table.show(view.recs.get(table.strategy, []))
            if table.strategy in view.notes and table.parent is not None:
                # e.g. v2 on a catalogue without text or categories: popular items instead
                table.parent.border_subtitle = "popular: no item text or categories"  # type: ignore[attr-defined]
        self._draw_history(view)
        self._draw_profile(view)
        self._item_changed()

    # -- rendering --------------------------------------------------------------------------
    def _draw_empty(self) -> None:
        """No user to show (none yet, or none matches): no title may name an old one."""
        self._clear_served()
        for table in self._rec_tables():
            table.show([])
        self.query_one("#history", SyncTable).sync([])
        self.query_one("#similar", RecTable).show([])
        self.item_id = None
        self.query_one("#similar-panel").border_title = "Similar items"
        self.query_one("#history-panel").border_subtitle = ""
        self._history_message("No user selected.")
        self.query_one("#profile", Static).update("")
        message = (
            "No user matches the filter."
            if self._filter
            else "No users yet. Press a to add one, or load the sample data on the "
            "Overview (1, then l)."
        )
        detail = self.query_one("#detail", Static)
        detail.border_title = "Selected"
        detail.update(Text(message, style="bold"))

    def _draw_history(self, view: data.UserView) -> None:
        table = self.query_one("#history", SyncTable)
        # When 11, action 8, padding 6, scrollbar 1: the item name gets the rest.
        name_w = max(8, table.available_width(40) - 11 - 8 - 6 - 1)
        rows = []
        for x in view.history:
            when = iso(x.ts)[5:16].replace("T", " ")
            rows.append(
                (
                    str(x.id),
                    [
                        Text(when, style="dim"),
                        Text(x.action, style=ACTION_STYLES.get(x.action, "")),
                        lit(x.item_name, limit=name_w),
                    ],
                )
            )
        table.sync(rows, widths={"when": 11, "action": 8, "item": name_w})
        self.query_one("#history-panel").border_subtitle = f"{view.profile.total} total"
        self._history_message(
            ""
            if rows
            else "Nothing yet: v, c or p on a recommended item logs a view, click or purchase."
        )

    def _history_message(self, message: str) -> None:
        """An empty history says so in words instead of showing bare column headers."""
        self.query_one("#history", SyncTable).display = not message
        note = self.query_one("#history-empty", Static)
        note.display = bool(message)
        note.update(Text(message, style="dim"))

    def _draw_profile(self, view: data.UserView) -> None:
        prof = view.profile
        # What an imported users file said (gender, age, ...): one dim line, when any.
        said = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in prof.attributes.items())
        about = [lit(said, limit=70, style="dim")] if said else []
        if not prof.total:
            self.query_one("#profile", Static).update(
                Group(
                    *about,
                    Text("No actions yet: the lists start from popular items (cold start).", "dim"),
                )
            )
            return
        actions = Text.assemble(
            *[part for a, n in prof.actions.items() for part in ((f"{n} ", "bold"), (f"{a}  ", ""))]
        )
        cats = Table(box=None, padding=(0, 1), show_header=True, header_style="dim", expand=False)
        cats.add_column("Category")
        cats.add_column("Acts", justify="right")
        cats.add_column("Score", justify="right")
        for c in prof.categories[:5]:
            cats.add_row(lit(c.category, limit=20), num(c.interactions), num(c.weighted_score))
        items = Table(box=None, padding=(0, 1), show_header=True, header_style="dim", expand=False)
        items.add_column("Top item")
        items.add_column("Score", justify="right")
        for it in prof.top_items[:5]:
            items.add_row(lit(it.name, limit=30), num(it.weighted_score))
        self.query_one("#profile", Static).update(Group(*about, actions, cats, items))

    def _draw_detail(self) -> None:
        detail = self.query_one("#detail", Static)
        view = self.view
        if view is None:
            return
        user = view.user
        detail.border_title = lit(user.username, limit=40)
        prof = view.profile
        lines: list[Text] = []
        acts = " · ".join(f"{n} {a}" for a, n in prof.actions.items())
        lines.append(Text.assemble((f"#{user.id}", "dim"), f"  {prof.total} actions: {acts}"))
        likes = Text("Likes: ", style="dim")
        for i, c in enumerate(prof.categories[:3]):
            if i:
                likes.append(" · ")
            likes.append_text(lit(c.category, limit=18))
        if not prof.categories:
            likes.append("nothing yet (cold start: popular items)")
        lines.append(likes)
        lines.append(self._experiment_line())
        served = self.served
        if served is not None and served.teams:
            # The interleaved list as served, each row marked with the team that picked it.
            width = detail.content_size.width or 46
            for rec, team in zip(served.rows, served.teams, strict=False):
                lines.append(
                    Text.assemble(
                        (f"{rec.rank:>2} ", "dim"),
                        (f"[{team}]".ljust(7), "bold"),
                        lit(rec.name, limit=max(12, width - 12)),
                    )
                )
        row = self._current_row()
        if row is not None:
            # Name and category on one line: the name gives way to the category.
            width = detail.content_size.width or 46
            category = lit(row.category, limit=20, style="dim")
            name_room = max(12, width - 4 - len(category.plain))
            lines.append(
                Text.assemble(
                    ("▸ ", "bold"),
                    lit(row.name, limit=name_room, style="bold"),
                    ("  ", ""),
                    category,
                )
            )
            lines.append(Text.assemble("  ", para(row.reason or "(no reason given)", "italic")))
        elif not self._item_source().armed:
            lines.append(Text("▸ logged; choose the next item (↑ ↓)", style="bold"))
        detail.update(Group(*lines))

    def _experiment_line(self) -> Text:
        """One line: the linked experiment, this user's variant, what serving did."""
        if self.exp is None:
            return Text("No experiment linked (e to link one)", style="dim")
        width = self.query_one("#detail").content_size.width or 46
        line = lit(self.exp.name, limit=max(12, width - 28))
        if self.exp.status != "active":
            line.append(" (stopped) · e to change", style="dim")
            return line
        if self.served is not None:
            if self.served.enrolled and self.served.variant:
                line.append(
                    f": variant {self.served.variant} ({self.served.strategy}) · "
                    f"served {self.served.impressions}",
                    style="bold",
                )
            else:
                line.append(": not enrolled, nothing logged", style="bold")
            return line
        variant = self._variant_of(self.view.user.id) if self.view else None
        if variant is None:
            line.append(": not enrolled · s serve", style="dim")
        elif getattr(self.exp, "interleaving", False):
            line.append(": interleaved (both strategies, teams marked) · s serve")
        else:
            strategy = self.exp.strategy(variant)
            line.append(f": variant {variant} ({strategy}) · s serve")
        return line

    def _variant_of(self, user_id: int) -> str | None:
        from smart_suggest.experiments.assignment import experiment_variant

        return experiment_variant(self.exp, user_id)

    # -- selection ----------------------------------------------------------------------------
    def _item_source(self) -> RecTable:
        """The item list the item keys act on: the last focused one (v1 by default)."""
        if self.item_table is not None and self.item_table.is_attached:
            return self.item_table
        return self._rec_tables()[0]

    def _current_row(self) -> data.RecRow | None:
        return self._item_source().current if self.view is not None else None

    def _item_changed(self) -> None:
        self._draw_detail()
        row = self._current_row()
        if row is None or row.item_id == self.item_id:
            if row is None:
                self.item_id = None
            return
        self.item_id = row.item_id
        if self._similar_timer is not None:
            self._similar_timer.stop()
        if self.sapp.debounce <= 0:
            self.spawn(self._load_similar, row.item_id, row.name, group="similar")
            return
        self._similar_timer = self.set_timer(
            self.sapp.debounce,
            lambda: self.spawn(self._load_similar, row.item_id, row.name, group="similar"),
        )

    async def _load_similar(self, item_id: int, name: str) -> None:
        rows = await self.sapp.attempt(
            self.sapp.backend.read(data.similar_items, self.sapp.backend, item_id, 8)
        )
        if rows is data.FAILED or item_id != self.item_id:
            return
        recs = [
            data.RecRow(
                rank,
                r.item_id,
                r.name,
                r.category,
                r.score,
                f"similar to {name} (similarity {r.score:.2f})",
                "similar",
            )
            for rank, r in enumerate(rows, 1)
        ]
        self.query_one("#similar", RecTable).show(recs)
        title = Text("Similar to ")
        title.append_text(lit(name, limit=30))
        self.query_one("#similar-panel").border_title = title

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if table.id == "user-list":
            key = event.row_key.value
            if key is not None:
                self._select_user(int(key))
        elif table is self._item_source():
            self._item_changed()

    @on(DataTable.RowSelected, "#user-list")
    def _user_chosen(self) -> None:
        self._rec_tables()[0].focus()

    def on_descendant_focus(self, event: Any) -> None:
        widget = event.widget
        if isinstance(widget, RecTable) and self.item_table is not widget:
            self.item_table = widget
            self._item_changed()

    # -- the filter ---------------------------------------------------------------------------
    @on(Input.Changed, "#user-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._filter = event.value
        self.spawn(self._load_users, group="users")

    @on(Input.Submitted, "#user-filter")
    def _filter_submitted(self) -> None:
        self.query_one("#user-list", SyncTable).focus()

    def on_key(self, event: Any) -> None:
        focused = self.focused
        if getattr(focused, "id", None) == "user-filter" and event.key in ("down", "escape"):
            self.query_one("#user-list", SyncTable).focus()
            event.stop()

    def action_toggle_simulated(self) -> None:
        settings = self.sapp.settings
        settings.show_simulated = not settings.show_simulated
        self.sapp.save_settings()
        self.notify(
            "Simulated visitors shown" if settings.show_simulated else "Simulated visitors hidden",
            timeout=2,
        )
        self.spawn(self._load_users, group="users")

    def action_focus_filter(self) -> None:
        self.query_one("#user-filter", Input).focus()

    # -- actions ------------------------------------------------------------------------------
    def action_log(self, action: str) -> None:
        if self.view is None:
            self.notify("Pick a user first", severity="warning")
            return
        row = self._current_row()
        if row is None:
            if not self._item_source().armed:
                self.notify(
                    "The item you logged has left the list: choose the next one (↑ ↓) first",
                    severity="warning",
                )
            else:
                self.notify(
                    "No item highlighted: move to a list of items first", severity="warning"
                )
            return
        self._item_source().acted_on(row.item_id)
        self.spawn(
            self._log,
            self.view.user.id,
            row.item_id,
            row.name,
            action,
            group="write",
            exclusive=False,
        )

    async def _log(self, user_id: int, item_id: int, name: str, action: str) -> None:
        result = await self.sapp.attempt(
            self.sapp.backend.read(data.log_action, user_id, item_id, action)
        )
        if result is data.FAILED:
            return
        self.notify(
            Text.assemble(f"Logged {action}: ", lit(name, limit=50)).plain,
            markup=False,
            timeout=2.5,
        )
        if user_id == self.user_id:
            # The lists at once, instead of after the revision poll and the user list
            # (two more round trips); the poll, told only now, finds this view current.
            await self._load_user(user_id)
        self.sapp.check_for_changes({"catalog"})

    def action_serve(self) -> None:
        if self.view is None:
            self.notify("Pick a user first", severity="warning")
            return
        if self.exp is None:
            self.notify("No experiment linked: press e to link one", severity="warning")
            return
        if self.exp.status != "active":
            self.notify("The linked experiment is stopped", severity="warning")
            return
        self.spawn(self._serve, self.exp.id, self.view.user.id, group="write", exclusive=False)

    async def _serve(self, exp_id: int, user_id: int) -> None:
        served = await self.sapp.attempt(
            self.sapp.backend.read(data.serve_view, self.sapp.backend, exp_id, user_id)
        )
        if served is data.FAILED or user_id != self.user_id:
            return
        self.served = served
        self._mark_served()
        if served.enrolled and served.strategy not in self.strategies:
            self.notify(
                f"{served.strategy} served this user but is not shown: press m to add it",
                markup=False,
                timeout=4,
            )
        if served.enrolled:
            self.notify(
                f"Variant {served.variant} ({served.strategy}): served {len(served.rows)} items, "
                f"logged {served.impressions} impressions",
                markup=False,
                timeout=3,
            )
        else:
            self.notify(
                "This user is outside the experiment's traffic: nothing served",
                markup=False,
                timeout=3,
            )
        self._draw_detail()
        self.sapp.check_for_changes({"experiments"})

    def _mark_served(self) -> None:
        """Frame the served strategy's list and mark exactly the rows that were served."""
        served = self.served
        for table in self._rec_tables():
            is_served = bool(served and served.enrolled and served.strategy == table.strategy)
            ids = {r.item_id for r in served.rows} if served and is_served else set()
            panel = self.query_one(f"#panel-{table.strategy}")
            panel.set_class(is_served, "-served")
            panel.border_subtitle = (
                f"▸ served {len(ids)} · variant {served.variant}" if served and is_served else ""
            )
            if ids != table.served:
                table.served = ids
                table.show(table.recs)

    def _clear_served(self) -> None:
        """Forget the last serve (another user or experiment is now current)."""
        if self.served is None:
            return
        self.served = None
        self._mark_served()

    def action_link_experiment(self) -> None:
        self.spawn(self._pick_experiment, group="exps")

    async def _pick_experiment(self) -> None:
        exps = await self.sapp.attempt(self.sapp.backend.read(data.list_experiments))
        if exps is data.FAILED:
            return
        choices: list[tuple[Text | str, Any]] = [(Text("(none: do not serve)"), None)]
        linked = self.exp.id if self.exp is not None else None
        current = 0
        for e in exps:
            label = Text("● " if e.id == linked else "  ", style="bold")
            label.append_text(lit(e.name, limit=50))
            label.append(f"  {e.control} vs {e.treatment} · {e.status}", style="dim")
            if e.id == linked:
                label.append("  (linked)", style="bold")
                current = len(choices)
            choices.append((label, e))

        def chosen(value: Any) -> None:
            if value is CANCELLED:
                return
            self.exp = value
            self.exp_chosen = True
            self._clear_served()
            self._draw_detail()

        self.app.push_screen(PickDialog("Link an experiment", choices, current), chosen)

    def action_copy(self) -> None:
        row = self._current_row()
        if row is None or self.view is None:
            self.notify("No item highlighted: move to a list of items first", severity="warning")
            return
        fields = [
            self.view.user.username,
            self._item_source().strategy,
            str(row.rank),
            str(row.item_id),
            row.name,
            row.category,
            f"{row.score:g}",
            row.source,
            row.reason,
        ]
        # Tab-separated, one line: tabs and newlines inside user data become spaces.
        text = "\t".join(" ".join(f.split()) for f in fields)
        self.app.copy_to_clipboard(text)
        self.notify(
            "Copied the highlighted row (user, strategy, rank, item, name, category, score, "
            "source, reason) to the clipboard through the terminal (OSC 52)",
            markup=False,
            timeout=4,
        )

    def action_find_item(self) -> None:
        self.spawn(self._find_item, group="form")

    async def _find_item(self) -> None:
        items = await self.sapp.attempt(self.sapp.backend.read(data.find_items, "", 5000))
        if items is data.FAILED:
            return
        if not items:
            self.notify("No items yet: press i to add one", severity="warning")
            return
        choices: list[tuple[Text | str, Any]] = []
        for it in items:
            label = Text(f"#{it.id} ", style="dim")
            label.append_text(lit(it.name, limit=48))
            label.append_text(lit(f"  {it.category}", limit=24, style="dim"))
            choices.append((label, it))
        title = "Find an item" + ("" if len(items) < 5000 else " (first 5,000)")

        def chosen(item: Any) -> None:
            if item is CANCELLED or item is None:
                return
            # Its row, where a list shows it; and the items most like it, in any case.
            for table in self._rec_tables():
                if table.select_key(str(item.id)):
                    table.focus()
                    break
            self.item_id = item.id
            self.spawn(self._load_similar, item.id, item.name, group="similar")

        self.app.push_screen(PickDialog(title, choices), chosen)

    def action_choose_strategies(self) -> None:
        if self.registered is None:
            self.notify("Still loading the strategies", severity="warning")
            return
        registered = self.registered
        options = [
            (strategy_title(name, about), name, name in self.strategies)
            for name, about in registered.items()
        ]

        def chosen(names: list[str] | None) -> None:
            if not names:
                return
            self.spawn(self._apply_strategies, names, group="strategies")

        self.app.push_screen(
            ChecklistDialog(
                "Strategies side by side",
                options,
                minimum=1,
                maximum=MAX_SHOWN,
                hint="space toggles · enter saves · esc cancels",
            ),
            chosen,
        )

    async def _apply_strategies(self, names: list[str]) -> None:
        await self._show_strategies(names)
        self._mark_served()
        self.sapp.settings.strategies = list(names)
        self.sapp.save_settings()

    def action_add_user(self) -> None:
        async def submit(values: dict[str, Any]) -> Any:
            return await self.sapp.backend.read(data.add_user, values["username"])

        def done(user: Any) -> None:
            if user is None:
                return
            self.notify(f"Added user {user.username!r} (id {user.id})", markup=False)
            self._pending_user = user.id
            self._filter = ""
            self.query_one("#user-filter", Input).value = ""
            self.sapp.check_for_changes({"catalog"})

        self.app.push_screen(
            FormDialog(
                "Add a user",
                [FormField("username", "Username", placeholder="e.g. zoe")],
                submit,
                submit_label="Add",
            ),
            done,
        )

    def action_add_item(self) -> None:
        self.spawn(self._add_item_form, group="form")

    async def _add_item_form(self) -> None:
        cats = await self.sapp.attempt(self.sapp.backend.read(data.categories))
        cats = [] if cats is data.FAILED else cats

        async def submit(values: dict[str, Any]) -> Any:
            return await self.sapp.backend.read(
                data.add_item, values["name"], values["category"], values["description"] or ""
            )

        def done(item: Any) -> None:
            if item is None:
                return
            self.notify(f"Added item #{item.id}: {item.name}", markup=False)
            self.sapp.check_for_changes({"catalog"})

        fields = [
            FormField("name", "Name", placeholder="e.g. Trail Running Socks"),
            FormField("category", "Category", placeholder=", ".join(cats[:4]) or "e.g. sports"),
            FormField(
                "description",
                "Description (used by v2)",
                required=False,
                placeholder="words that describe it",
            ),
        ]
        dialog = FormDialog("Add an item", fields, submit, submit_label="Add")
        await self.app.push_screen(dialog, done)
        if cats:
            dialog.query_one("#field-category", Input).suggester = SuggestFromList(
                cats, case_sensitive=False
            )
