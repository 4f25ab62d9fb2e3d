"""Screen 3: experiments, their KPIs, charts, statistics and verdict; create, stop, simulate."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Label, ProgressBar, Static

from tui import data
from tui.format import lit, num, para, pct, pvalue, right, signed_pct, verdict_text
from tui.screens.base import BaseScreen
from tui.screens.dialogs import ConfirmDialog, FormDialog, FormField
from tui.widgets.charts import KpiBars, TrendChart
from tui.widgets.tables import SyncTable

EVENT_TYPES = ("impression", "click", "purchase", "engagement")


def first_sentences(text: str, n: int) -> str:
    """The first ``n`` sentences of a paragraph (split at ". ", decimals stay whole)."""
    parts = text.split(". ")
    head = ". ".join(parts[:n])
    return head if len(parts) <= n else head + "."


def data_verdict_label(verdict: str) -> str:
    return verdict.replace("_", " ").replace("stat sig", "significant")


def _interval_text(iv: data.Interval | None) -> str:
    return "" if iv is None else f" [{iv.low * 100:.1f}, {iv.high * 100:.1f}]"


class ExperimentsScreen(BaseScreen):
    MODE = "experiments"
    AUTO_FOCUS = "#exp-list"
    LABEL = "Experiments"
    ABOUT = (
        "The experiments in the database and, for the highlighted one, the KPIs per variant "
        "(with 95% intervals), charts, the statistical tests and the verdict. Everything "
        "refreshes by itself while events arrive, from here or from another terminal "
        "(smart-suggest experiment simulate / log)."
    )
    #: Actions that change the database: disabled (and explained) when it is read-only.
    WRITE_ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {"new_experiment", "stop_experiment", "simulate", "log_event"}
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_experiment", "New", tooltip="Create an experiment (form)"),
        Binding("x", "stop_experiment", "Stop", tooltip="Stop the highlighted experiment"),
        Binding("s", "simulate", "Simulate", tooltip="Simulate traffic with true rates (form)"),
        Binding("l", "log_event", "Log event", tooltip="Log an event for a user (form)"),
        Binding(
            "t",
            "toggle_mode",
            "Seq/fixed",
            tooltip="Statistics: sequential (always valid, default) or fixed horizon",
        ),
        Binding("r", "reload", "Reload", show=False, tooltip="Reload everything"),
    ]
    PALETTE: ClassVar[dict[str, str]] = {
        "new_experiment": "Create an experiment",
        "stop_experiment": "Stop the highlighted experiment",
        "simulate": "Simulate traffic for the highlighted experiment",
        "log_event": "Log an experiment event for a user",
        "toggle_mode": "Switch statistics: sequential / fixed horizon",
    }
    EXTRA_KEYS: ClassVar[list[tuple[str, str]]] = [
        ("↑ ↓", "Choose an experiment in the list"),
        ("tab", "Move on to the KPIs, the statistics and the charts"),
        ("pgup pgdn", "Scroll the screen"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.exps: list[Any] = []
        self.exp_id: int | None = None
        self.view: data.ExperimentView | None = None
        self._detail_running = False
        self._detail_dirty = False
        self._analysing: object | None = None
        #: Sequential (always-valid) statistics by default: this screen refreshes as the
        #: data arrives, and fixed-horizon p-values looked at again and again overstate
        #: significance. ``t`` switches to fixed horizon for the one planned look.
        self.sequential = True
        self._sim_progress: tuple[str, int, int] | None = None
        self._sim_timer: Timer | None = None
        self._sim_started = 0.0

    # -- layout -----------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Horizontal(id="sim-bar"):
            yield Label("Simulating…", id="sim-label")
            yield ProgressBar(id="sim-progress", show_eta=False)
        with VerticalScroll(id="exp-body"):
            with Horizontal(id="exp-top"):
                with Vertical(id="exp-list-panel", classes="panel") as panel:
                    panel.border_title = "Experiments"
                    yield SyncTable(
                        [
                            ("Name", "name"),
                            ("Status", "status"),
                            ("A vs B", "arms"),
                            ("Traffic", "traffic"),
                            ("B share", "split"),
                        ],
                        id="exp-list",
                    )
                verdict = Static(id="verdict", classes="panel")
                verdict.border_title = "Verdict"
                yield verdict
            with Horizontal(id="exp-mid"):
                with Vertical(id="kpi-panel", classes="panel") as kpis:
                    kpis.border_title = "KPIs per variant"
                    yield SyncTable(
                        [("Metric", "metric"), ("A", "A"), ("B", "B"), ("Lift", "lift")],
                        id="kpis",
                        cursor_type="none",
                    )
                # Scrolls by itself on wide screens (the charts stay in view below it);
                # on narrow ones it grows and the whole screen scrolls.
                with VerticalScroll(id="stats-panel", classes="panel") as stats:
                    stats.border_title = "Statistics"
                    yield Static(id="stats")
            with Horizontal(id="charts-row"):
                yield KpiBars(id="bars", classes="panel")
                yield TrendChart(id="trend", classes="panel")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#sim-bar").display = False
        exp_list = self.query_one("#exp-list", SyncTable)
        exp_list.redraw = self._draw_list
        kpis = self.query_one("#kpis", SyncTable)
        kpis.redraw = lambda: self._draw(self.view) if self.view is not None else None
        self.query_one("#bars", KpiBars).border_title = "CTR & conversion"
        self.query_one("#trend", TrendChart).border_title = "Daily CTR"

    # -- loading ----------------------------------------------------------------------------
    def refresh_data(self, scopes: set[str]) -> None:
        if "experiments" in scopes:
            self.spawn(self._load_list, group="exp-list")

    async def _load_list(self) -> None:
        exps = await self.sapp.attempt(self.sapp.backend.read(data.list_experiments))
        if exps is data.FAILED:
            return
        self.exps = exps
        table = self.query_one("#exp-list", SyncTable)
        self._draw_list()
        if not exps:
            self.exp_id = None
            self.view = None
            self._draw_none()
            return
        key = table.current_key
        if key is not None:
            self._select(int(key), force=True)

    def _draw_list(self) -> None:
        table = self.query_one("#exp-list", SyncTable)
        # status 7, arms 12, traffic 7, share 7, padding 10, scrollbar 1: the name the rest.
        width = max(12, table.available_width(40) - 7 - 12 - 7 - 7 - 10 - 1)
        rows = []
        for e in self.exps:
            status = Text(e.status, style="bold" if e.status == "active" else "dim")
            rows.append(
                (
                    str(e.id),
                    [
                        lit(e.name, limit=width),
                        status,
                        lit(f"{e.control} vs {e.treatment}", limit=12),
                        right(pct(float(e.traffic_fraction), 0)),
                        right(pct(float(e.treatment_share), 0)),
                    ],
                )
            )
        table.sync(rows, widths={"name": width, "status": 7, "arms": 12, "traffic": 7, "split": 7})

    def _select(self, exp_id: int, force: bool = False) -> None:
        if exp_id == self.exp_id and not force:
            return
        if exp_id != self.exp_id:
            self.view = None
        self.exp_id = exp_id
        self._request_detail()

    def _request_detail(self) -> None:
        """Load the detail; when a load is running, load once more after it (never cancel)."""
        if self._detail_running:
            self._detail_dirty = True
            return
        self._detail_running = True
        self.spawn(self._load_detail, group="exp-detail", exclusive=False)

    async def _load_detail(self) -> None:
        try:
            while True:
                self._detail_dirty = False
                exp_id = self.exp_id
                if exp_id is None:
                    return
                await self._load_detail_once(exp_id)
                if not self._detail_dirty:
                    return
        finally:
            self._detail_running = False

    async def _load_detail_once(self, exp_id: int) -> None:
        first = self.view is None or self.view.experiment.id != exp_id
        verdict = self.query_one("#verdict")
        subtitled = [self.query_one("#kpi-panel"), self.query_one("#stats-panel")]
        token = object()
        self._analysing = token

        def busy() -> None:
            # Slow analyses only (big experiments): a spinner on the verdict the first
            # time, "analysing…" on the panels when refreshing (the old numbers stay).
            if self._analysing is token:
                verdict.loading = first
                for panel in subtitled:
                    panel.border_subtitle = "analysing…"

        timer = self.set_timer(0.3, busy)
        try:
            view = await self.sapp.attempt(
                self.sapp.backend.analyse(data.experiment_view, exp_id, self.sequential)
            )
        finally:
            timer.stop()
            self._analysing = None
            verdict.loading = False
            for panel in subtitled:
                panel.border_subtitle = ""
        if view is not data.FAILED and exp_id == self.exp_id:
            self.view = view
            self._draw(view)

    @on(DataTable.RowHighlighted, "#exp-list")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key is not None:
            self._select(int(key))

    # -- rendering ----------------------------------------------------------------------------
    def _draw_none(self) -> None:
        self.query_one("#verdict", Static).update(
            Text(
                "No experiments yet. Press n to create one, or load the sample data on the "
                "Overview (1, then l).",
                style="bold",
            )
        )
        self.query_one("#kpis", SyncTable).sync([])
        self.query_one("#stats", Static).update("")
        self.query_one("#bars", KpiBars).show([], [], [])
        self.query_one("#trend", TrendChart).show([], {})
        self.query_one("#kpi-panel").border_title = "KPIs per variant"

    def _draw(self, view: data.ExperimentView) -> None:
        exp = view.experiment
        rows = view.variants
        stats = view.stats
        self._draw_verdict(view)
        title = Text("KPIs · ")
        title.append_text(lit(exp.name, limit=40))
        self.query_one("#kpi-panel").border_title = title
        self._draw_kpis(view, rows, stats)
        self.query_one("#stats", Static).update(self._stats_renderable(view))
        self.query_one("#bars", KpiBars).show(
            [f"{r.variant} ({r.strategy})" for r in rows],
            [r.ctr or 0.0 for r in rows],
            [r.conversion or 0.0 for r in rows],
        )
        labelled = {
            f"{v} ({next((r.strategy for r in rows if r.variant == v), '?')})": s
            for v, s in view.daily_ctr.items()
        }
        self.query_one("#trend", TrendChart).show(view.days, labelled)

    def _draw_verdict(self, view: data.ExperimentView) -> None:
        stats = view.stats
        exp = view.experiment
        head = Text()
        if stats is not None:
            head.append_text(verdict_text(stats.verdict))
            head.append("  ")
        status = "running" if exp.status == "active" else "stopped"
        head.append(f"{exp.control} (A) vs {exp.treatment} (B) · {status}", style="dim")
        parts: list[RenderableType] = [head]
        if stats is not None:
            # The first sentences (result, verdict); all of it is in the statistics panel.
            wide = self.has_class("-wide")
            parts.append(para(first_sentences(stats.conclusion, 2 if wide else 1)))
        elif view.stats_error:
            parts.append(para(f"Statistics unavailable: {view.stats_error}", style="dim"))
        self.query_one("#verdict", Static).update(Group(*parts))

    def _draw_kpis(
        self, view: data.ExperimentView, rows: list[data.VariantRow], stats: data.StatsView | None
    ) -> None:
        table = self.query_one("#kpis", SyncTable)
        by = {r.variant: r for r in rows}
        a, b = by.get("A"), by.get("B")
        ivs: dict[str, dict[str, data.Interval]] = {}
        if stats is not None:
            for m in stats.metrics:
                ivs[m.metric] = m.intervals

        def cell(r: data.VariantRow | None, text: str) -> Text:
            return right(text) if r is not None else right("–")

        def count_row(key: str, label: str, attr: str) -> tuple[str, list[Any]]:
            return (
                key,
                [
                    Text(label),
                    cell(a, num(getattr(a, attr, 0))),
                    cell(b, num(getattr(b, attr, 0))),
                    right(""),
                ],
            )

        def rate_row(key: str, label: str, attr: str, metric: str) -> tuple[str, list[Any]]:
            iv = ivs.get(metric) or ivs.get(metric.removesuffix("_rate")) or {}
            return (
                key,
                [
                    Text(label, style="bold"),
                    cell(a, pct(getattr(a, attr, None)) + _interval_text(iv.get("A"))),
                    cell(b, pct(getattr(b, attr, None)) + _interval_text(iv.get("B"))),
                    right(signed_pct(view.lifts.get(metric)), "bold"),
                ],
            )

        def engagement(r: data.VariantRow | None) -> str:
            if r is None or r.engagement_mean is None:
                return "–"
            sd = "" if r.engagement_sd is None else f" ± {r.engagement_sd:.0f}"
            return f"{r.engagement_mean:.1f}{sd} s"

        # Metric 19, lift 7, padding 8, scrollbar 1; A and B share the rest.
        value_w = max(12, (table.available_width(76) - 19 - 7 - 8 - 1) // 2)
        table.sync(
            [
                (
                    "strategy",
                    [
                        Text("Strategy", style="dim"),
                        right(a.strategy if a else "–"),
                        right(b.strategy if b else "–"),
                        right("B vs A", "dim"),
                    ],
                ),
                count_row("assigned", "Users assigned", "assigned"),
                count_row("exposed", "Users exposed", "exposed"),
                count_row("impressions", "Impressions", "impressions"),
                count_row("clicks", "Clicks", "clicks"),
                rate_row("ctr", "CTR [95% CI]", "ctr", "ctr"),
                count_row("converted", "Users converted", "converted"),
                rate_row("conversion", "Conversion [95% CI]", "conversion", "conversion_rate"),
                (
                    "engagement",
                    [
                        Text("Engagement"),
                        right(engagement(a)),
                        right(engagement(b)),
                        right(signed_pct(view.lifts.get("engagement"))),
                    ],
                ),
            ],
            widths={"metric": 19, "A": value_w, "B": value_w, "lift": 7},
        )

    def _stats_renderable(self, view: data.ExperimentView) -> RenderableType:
        stats = view.stats
        if stats is None:
            return para(f"No statistics: {view.stats_error or 'not available'}", style="dim")
        mode = (
            "sequential: always-valid p-values and intervals (mSPRT), safe to watch live"
            if stats.mode == "sequential"
            else "fixed horizon: valid for one look at the planned sample size"
        )
        lines: list[RenderableType] = [
            Text.assemble(("Mode ", "bold"), mode, (f" · α = {stats.alpha:g} · t switches", "dim"))
        ]
        for m in stats.metrics:
            lines.append(Text(""))
            head = Text(m.label, style="bold")
            if m.role == "primary":
                head.append(" (primary)", style="bold")
            head.append(f" · {data_verdict_label(m.verdict)}")
            lines.append(head)
            lines.append(self._metric_line(m))
            lines.append(Text(f"  {m.test}", style="dim"))
        lines.append(Text(""))
        srm_style = "" if stats.srm_ok else "bold red"
        lines.append(Text.assemble(("SRM ", "bold"), (stats.srm_text, srm_style)))
        if stats.sequential_text:
            lines.append(Text.assemble(("Sequential ", "bold"), stats.sequential_text))
        else:
            lines.append(Text.assemble(("Sequential ", "bold"), ("not run (t to switch)", "dim")))
        if stats.prob_b_beats_a is not None:
            bayes = Text.assemble(("P(B beats A) ", "bold"), f"{stats.prob_b_beats_a * 100:.1f}%")
            if stats.expected_loss is not None:
                bayes.append(f" · expected loss of shipping B {stats.expected_loss:.2g}")
            if stats.bayes_text:
                bayes.append(f" · {stats.bayes_text}", style="dim")
            lines.append(bayes)
        lines.append(Text.assemble(("Power ", "bold"), stats.power_text))
        if stats.novelty_text:
            lines.append(Text.assemble(("Novelty ", "bold"), stats.novelty_text))
        lines.append(Text(""))
        lines.append(Text("In plain English", style="bold"))
        for m in stats.metrics:
            lines.append(Text.assemble((f"{m.label}: ", "bold"), para(m.conclusion)))
        for w in stats.warnings:
            lines.append(para(f"! {w}", style="bold yellow"))
        return Group(*lines)

    @staticmethod
    def _metric_line(m: data.MetricStats) -> Text:
        """p, the difference with its interval, the lift and the effect size, on one line."""
        rate = not m.metric.startswith("engagement")
        scale, unit = (100.0, " pp") if rate else (1.0, " s")
        line = Text(f"  p {pvalue(m.p_value)}")
        if m.p_label:
            line.append(f" ({m.p_label})", style="dim")
        if m.significant:
            line.append(" ✔", style="bold")
        if m.diff is not None:
            line.append(f" · diff {m.diff * scale:+.2f}{unit}")
            if m.ci is not None:
                line.append(f" [{m.ci.low * scale:+.2f}, {m.ci.high * scale:+.2f}]")
        if m.relative is not None:
            line.append(f" · lift {signed_pct(m.relative, 0)}")
        if m.effect_size is not None:
            line.append(f" · {m.effect_size_name or 'effect'} {m.effect_size:.2f}")
        return line

    # -- actions ------------------------------------------------------------------------------
    def action_toggle_mode(self) -> None:
        self.sequential = not self.sequential
        mode = "sequential (always valid)" if self.sequential else "fixed horizon"
        self.notify(f"Statistics: {mode}", timeout=2)
        self._request_detail()

    def _selected_exp(self) -> Any:
        return next((e for e in self.exps if e.id == self.exp_id), None)

    def action_new_experiment(self) -> None:
        self.spawn(self._new_form, group="form")

    async def _new_form(self) -> None:
        strategies = await self.sapp.attempt(self.sapp.backend.read(lambda _s: data.strategies()))
        if strategies is data.FAILED:
            return
        # "v1 · collaborative": the description up to its first colon keeps one line.
        options = [(f"{k} · {v.split(':')[0]}", k) for k, v in strategies.items()]

        async def submit(values: dict[str, Any]) -> Any:
            return await self.sapp.backend.read(
                data.create_experiment,
                name=values["name"],
                control=values["control"],
                treatment=values["treatment"],
                traffic_fraction=values["traffic"],
                treatment_share=values["split"],
                description=values["description"] or "",
                primary_metric=values["metric"],
            )

        def done(exp: Any) -> None:
            if exp is None:
                return
            self.notify(f"Created experiment {exp.name!r}", markup=False)
            self.exp_id = exp.id
            self.view = None
            self.spawn(self._after_create, exp.id, group="exp-list")

        fields = [
            FormField("name", "Name", placeholder="e.g. search-recs-v1-vs-popular"),
            FormField(
                "control",
                "Control (A)",
                kind="select",
                options=options,
                default="v1" if "v1" in strategies else next(iter(strategies), ""),
            ),
            FormField(
                "treatment",
                "Treatment (B)",
                kind="select",
                options=options,
                default="v2" if "v2" in strategies else "",
            ),
            FormField(
                "traffic",
                "Traffic fraction (0-1]",
                kind="float",
                default="1.0",
                minimum=0.0001,
                maximum=1.0,
            ),
            FormField(
                "split",
                "Treatment share (0-1)",
                kind="float",
                default="0.5",
                minimum=0.0001,
                maximum=0.9999,
            ),
            FormField(
                "metric",
                "Primary metric (optional)",
                kind="select",
                required=False,
                options=[(f"{k} · {v.split(':')[0]}", k) for k, v in data.metrics().items()],
            ),
            FormField("description", "Description", required=False),
        ]
        self.app.push_screen(FormDialog("New experiment", fields, submit, "Create"), done)

    async def _after_create(self, exp_id: int) -> None:
        await self._load_list()
        self.query_one("#exp-list", SyncTable).select_key(str(exp_id))

    def action_stop_experiment(self) -> None:
        exp = self._selected_exp()
        if exp is None:
            self.notify("No experiment selected", severity="warning")
            return
        if exp.status != "active":
            self.notify("This experiment is already stopped", severity="warning")
            return
        message = Text.assemble(
            "Stop ",
            lit(exp.name, style="bold"),
            "?\nUsers keep their variant; no new impressions are served. Results stay.",
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.spawn(self._stop, exp.id, exp.name, group="write", exclusive=False)

        self.app.push_screen(ConfirmDialog("Stop experiment", message, "Stop"), answered)

    async def _stop(self, exp_id: int, name: str) -> None:
        result = await self.sapp.attempt(self.sapp.backend.read(data.stop_experiment, exp_id))
        if result is not data.FAILED:
            self.notify(f"Stopped {name!r}", markup=False)
        self.sapp.check_for_changes({"experiments"})

    def action_log_event(self) -> None:
        exp = self._selected_exp()
        if exp is None:
            self.notify("No experiment selected", severity="warning")
            return

        async def submit(values: dict[str, Any]) -> Any:
            return await self.sapp.backend.read(
                data.log_event,
                exp.id,
                values["user"],
                str(values["item"]),
                values["type"],
                values["value"],
            )

        def done(result: Any) -> None:
            if result is not None:
                self.notify("Event logged", markup=False, timeout=2)
                self.sapp.check_for_changes({"experiments"})

        fields = [
            FormField("user", "User (id or name)"),
            FormField("item", "Item id", kind="int", minimum=1),
            FormField(
                "type",
                "Event type",
                kind="select",
                options=[(t, t) for t in EVENT_TYPES],
                default="click",
            ),
            FormField(
                "value", "Value (seconds, for engagement)", kind="float", required=False, minimum=0
            ),
        ]
        title = f"Log an event · {exp.name}"
        self.app.push_screen(FormDialog(title, fields, submit, "Log"), done)

    def action_simulate(self) -> None:
        exp = self._selected_exp()
        if exp is None:
            self.notify("No experiment selected", severity="warning")
            return
        if self._sim_timer is not None:
            self.notify("A simulation is already running", severity="warning")
            return

        async def submit(values: dict[str, Any]) -> Any:
            return values  # validated; the run itself happens below, with progress

        def done(values: Any) -> None:
            if values is not None:
                self.spawn(self._simulate, exp.id, values, group="simulate", exclusive=False)

        def rate(name: str, label: str, default: str) -> FormField:
            return FormField(name, label, kind="float", default=default, minimum=0, maximum=1)

        fields = [
            FormField("users", "Users", kind="int", default="2000", minimum=1),
            FormField("days", "Days", kind="int", default="7", minimum=1, maximum=365),
            rate("ctr_a", "True CTR of A", "0.30"),
            rate("ctr_b", "True CTR of B", "0.33"),
            rate("purchase_a", "True conversion rate of A (users who buy)", "0.10"),
            rate("purchase_b", "True conversion rate of B", "0.11"),
            FormField("seed", "Random seed", kind="int", default="1", minimum=0),
        ]
        title = f"Simulate traffic · {exp.name}"
        self.app.push_screen(FormDialog(title, fields, submit, "Run"), done)

    async def _simulate(self, exp_id: int, values: dict[str, Any]) -> None:
        bar = self.query_one("#sim-bar")
        bar.display = True
        self._sim_progress = ("starting", 0, 1)
        self._sim_started = time.monotonic()
        self._sim_timer = self.set_interval(0.1, self._show_sim_progress)

        def progress(stage: str, done: int, total: int) -> None:
            self._sim_progress = (stage, done, total)  # read by the timer on the UI thread

        try:
            report = await self.sapp.attempt(
                self.sapp.backend.job(data.simulate, exp_id, progress=progress, **values)
            )
        finally:
            if self._sim_timer is not None:
                self._sim_timer.stop()
            self._sim_timer = None
            bar.display = False
        if report is not data.FAILED:
            self.notify(
                f"Simulated {report.visitors:,} visitors: {report.total_events:,} events "
                f"written in {report.seconds:.1f} s",
                markup=False,
            )
        self.sapp.check_for_changes({"experiments"})

    def _show_sim_progress(self) -> None:
        if self._sim_progress is None:
            return
        stage, done, total = self._sim_progress
        self.query_one("#sim-progress", ProgressBar).update(total=max(total, 1), progress=done)
        elapsed = time.monotonic() - self._sim_started
        self.query_one("#sim-label", Label).update(f"Simulating: {stage} {elapsed:.0f}s ")
