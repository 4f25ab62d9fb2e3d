"""Screen 2: pick a user, compare v1 and v2, log actions, serve a linked experiment."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.suggester import SuggestFromList
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from smart_suggest.clock import iso
from tui import data
from tui.format import lit, num, para, right
from tui.screens.base import BaseScreen
from tui.screens.dialogs import CANCELLED, FormDialog, FormField, PickDialog
from tui.widgets.tables import SyncTable

#: The two strategies shown side by side.
STRATEGIES: tuple[str, str] = ("v1", "v2")
STRATEGY_TITLES = {"v1": "v1 · collaborative", "v2": "v2 · content-based", "popular": "popular"}
REC_COUNT = 10
ACTION_STYLES = {"view": "", "click": "bold", "purchase": "bold reverse"}


def score_text(score: float) -> Text:
    return right(f"{score:.2f}" if abs(score) < 1000 else f"{score:,.0f}")


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

    def show(self, recs: list[data.RecRow]) -> None:
        self.recs = recs
        # Fit the row to the width: 4 columns x 2 padding, rank 2, score 5, the scrollbar.
        width = self.available_width()
        scrollbar = 1 if len(recs) > max(self.size.height - 1, 0) else 0
        category_w = 9 if width < 50 else 16
        name_w = max(8, width - 8 - 2 - 5 - category_w - scrollbar)
        self.sync(
            [
                (
                    str(r.item_id),
                    [
                        right(str(r.rank), "dim"),
                        lit(r.name, limit=name_w),
                        lit(r.category, limit=category_w, style="dim"),
                        score_text(r.score),
                    ],
                )
                for r in recs
            ],
            widths={"rank": 2, "item": name_w, "category": category_w, "score": 5},
        )

    @property
    def current(self) -> data.RecRow | None:
        key = self.current_key
        return next((r for r in self.recs if str(r.item_id) == key), None)


class RecommendScreen(BaseScreen):
    MODE = "recommend"
    AUTO_FOCUS = "#user-list"
    LABEL = "Recommendations"
    ABOUT = (
        "Pick a user on the left (type to filter). v1 (collaborative: users like you) and "
        "v2 (content-based: items like the ones you liked) are side by side; the panel at "
        "the top right explains the highlighted row. Log a view, click or purchase of the "
        "highlighted item and watch both lists change. With an experiment linked, s serves "
        "the user's variant and logs the impressions."
    )
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
        Binding("a", "add_user", "+User", tooltip="Add a user (form)"),
        Binding("i", "add_item", "+Item", tooltip="Add an item (form)"),
        Binding("r", "reload", "Reload", show=False, tooltip="Reload everything"),
    ]
    PALETTE: ClassVar[dict[str, str]] = {
        "focus_filter": "Find a user by name",
        "log('view')": "Log a view of the highlighted item",
        "log('click')": "Log a click on the highlighted item",
        "log('purchase')": "Log a purchase of the highlighted item",
        "serve": "Serve the linked experiment to this user",
        "link_experiment": "Link an experiment to serve",
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

    # -- layout -----------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="rec-body"):
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
                for strategy in STRATEGIES:
                    with Vertical(id=f"panel-{strategy}", classes="panel rec-panel") as panel:
                        panel.border_title = STRATEGY_TITLES[strategy]
                        yield RecTable(strategy, id=f"recs-{strategy}")
            with Horizontal(id="more-row"):
                with Vertical(id="similar-panel", classes="panel") as similar:
                    similar.border_title = "Similar items"
                    yield RecTable("similar", id="similar")
                with Vertical(id="history-panel", classes="panel") as history:
                    history.border_title = "History"
                    yield SyncTable(
                        [("When", "when"), ("Action", "action"), ("Item", "item")], id="history"
                    )
                profile = Static(id="profile", classes="panel")
                profile.border_title = "Profile"
                yield profile

    def on_mount(self) -> None:
        super().on_mount()
        users = self.query_one("#user-list", SyncTable)
        users.redraw = self._draw_users
        history = self.query_one("#history", SyncTable)
        history.redraw = lambda: self._draw_history(self.view) if self.view else None

    # -- loading ----------------------------------------------------------------------------
    def refresh_data(self, scopes: set[str]) -> None:
        if "catalog" in scopes:
            self.spawn(self._load_users, True, group="users")
        if "experiments" in scopes:
            self.spawn(self._load_experiments, group="exps")

    async def _load_users(self, reload_user: bool = False) -> None:
        page = await self.sapp.attempt(self.sapp.backend.read(data.find_users, self._filter))
        if page is data.FAILED:
            return
        self._users = page.users
        table = self.query_one("#user-list", SyncTable)
        self._draw_users()
        if self._pending_user is not None and table.select_key(str(self._pending_user)):
            self._pending_user = None
        users = self.query_one("#users-panel")
        users.border_subtitle = "" if page.shown_all else f"first {len(page.users)}"
        if not page.users:
            self.user_id = None
            self.view = None
            self._draw_empty()
        elif self.user_id is None or table.current_key != str(self.user_id):
            key = table.current_key
            if key is not None:
                self._select_user(int(key), debounce=False)
        elif reload_user:
            self.spawn(self._load_user, self.user_id, group="user")

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
                    data.user_view, self.sapp.backend, user_id, STRATEGIES, REC_COUNT
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
        for strategy in STRATEGIES:
            table = self.query_one(f"#recs-{strategy}", RecTable)
            table.show(view.recs.get(strategy, []))
            if strategy in view.notes and table.parent is not None:
                # e.g. v2 on a catalogue without text or categories: popular items instead
                table.parent.border_subtitle = "popular: no item text or categories"  # type: ignore[attr-defined]
        self._draw_history(view)
        self._draw_profile(view)
        self._item_changed()

    # -- rendering --------------------------------------------------------------------------
    def _draw_empty(self) -> None:
        for strategy in STRATEGIES:
            self.query_one(f"#recs-{strategy}", RecTable).show([])
        self.query_one("#history", SyncTable).sync([])
        self.query_one("#similar", RecTable).show([])
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

    def _draw_profile(self, view: data.UserView) -> None:
        prof = view.profile
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
        self.query_one("#profile", Static).update(Group(actions, cats, items))

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
        else:
            strategy = self.exp.control if variant == "A" else self.exp.treatment
            line.append(f": variant {variant} ({strategy}) · s serve")
        return line

    def _variant_of(self, user_id: int) -> str | None:
        from smart_suggest.experiments.assignment import assign_variant

        return assign_variant(
            self.exp.id, user_id, float(self.exp.traffic_fraction), float(self.exp.treatment_share)
        )

    # -- selection ----------------------------------------------------------------------------
    def _item_source(self) -> RecTable:
        """The item list the item keys act on: the last focused one (v1 by default)."""
        return self.item_table or self.query_one(f"#recs-{STRATEGIES[0]}", RecTable)

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
        self.query_one(f"#recs-{STRATEGIES[0]}", RecTable).focus()

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

    def action_focus_filter(self) -> None:
        self.query_one("#user-filter", Input).focus()

    # -- actions ------------------------------------------------------------------------------
    def action_log(self, action: str) -> None:
        if self.view is None:
            self.notify("Pick a user first", severity="warning")
            return
        row = self._current_row()
        if row is None:
            self.notify("No item highlighted: move to a list of items first", severity="warning")
            return
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
        for strategy in STRATEGIES:
            panel = self.query_one(f"#panel-{strategy}")
            is_served = served.enrolled and served.strategy == strategy
            panel.set_class(is_served, "-served")
            panel.border_subtitle = f"served · variant {served.variant}" if is_served else ""
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

    def _clear_served(self) -> None:
        """Forget the last serve (another user or experiment is now current)."""
        if self.served is None:
            return
        self.served = None
        for panel in self.query(".rec-panel"):
            panel.remove_class("-served")
            panel.border_subtitle = ""

    def action_link_experiment(self) -> None:
        self.spawn(self._pick_experiment, group="exps")

    async def _pick_experiment(self) -> None:
        exps = await self.sapp.attempt(self.sapp.backend.read(data.list_experiments))
        if exps is data.FAILED:
            return
        choices: list[tuple[Text | str, Any]] = [(Text("(none: do not serve)"), None)]
        for e in exps:
            label = lit(e.name, limit=50)
            label.append(f"  {e.control} vs {e.treatment} · {e.status}", style="dim")
            choices.append((label, e))

        def chosen(value: Any) -> None:
            if value is CANCELLED:
                return
            self.exp = value
            self.exp_chosen = True
            self._clear_served()
            self._draw_detail()

        self.app.push_screen(PickDialog("Link an experiment", choices), chosen)

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
