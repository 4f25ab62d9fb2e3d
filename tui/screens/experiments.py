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
from textual.widgets import DataTable, Input, Label, ProgressBar, Static

from smart_suggest.text import printable
from tui import data, export, output
from tui.format import lit, num, para, pct, pvalue, right, signed_pct, verdict_text
from tui.screens.base import BaseScreen, Body
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


def _arms_text(exp: Any) -> str:
    """Every variant's strategy, A first ("v1 / v2 / popular"): an A/B/n test is not "v1
    vs v2"; an interleaving test shows both lists to everyone."""
    text = " / ".join(v.strategy for v in exp.variants)
    return f"{text} interleaved" if exp.interleaving else text


def _split_text(exp: Any) -> str:
    """The share of the enrolled users each variant gets ("50/25/25"); interleaving
    shows every user both lists."""
    if exp.interleaving:
        return "both"
    total = sum(exp.weights) or 1.0
    return "/".join(f"{w / total * 100:.0f}" for w in exp.weights)


class ExperimentsScreen(BaseScreen):
    MODE = "experiments"
    AUTO_FOCUS = "#exp-list"
    LABEL = "Experiments"
    BODY = "exp-body"
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
        Binding(
            "w",
            "export",
            "Export",
            tooltip="Write the KPI table (CSV), the analysis (JSON) and the daily chart "
            "(text and SVG) to the export folder",
        ),
        Binding("y", "copy", "Copy", tooltip="Copy the KPI table to the clipboard (OSC 52)"),
        Binding(
            "slash",
            "focus_filter",
            "Find",
            key_display="/",
            show=False,
            tooltip="Filter the experiments by name",
        ),
        Binding("r", "reload", "Reload", show=False, tooltip="Reload everything"),
        # Priority: the experiment list would otherwise keep the page keys for itself.
        Binding("pageup", "scroll_body(-1)", "Page up", show=False, priority=True),
        Binding("pagedown", "scroll_body(1)", "Page down", show=False, priority=True),
    ]
    PALETTE: ClassVar[dict[str, str]] = {
        "new_experiment": "Create an experiment",
        "stop_experiment": "Stop the highlighted experiment",
        "simulate": "Simulate traffic for the highlighted experiment",
        "log_event": "Log an experiment event for a user",
        "toggle_mode": "Switch statistics: sequential / fixed horizon",
        "export": "Export the KPIs, analysis and chart of the highlighted experiment",
        "copy": "Copy the KPI table to the clipboard",
        "focus_filter": "Find an experiment by name",
    }
    EXTRA_KEYS: ClassVar[list[tuple[str, str]]] = [
        ("↑ ↓", "Choose an experiment in the list"),
        ("tab", "Move on to the KPIs, the statistics and the charts"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.exps: list[Any] = []  # those shown (the filter applied)
        self.all_exps: list[Any] = []
        self._filter = ""
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
        self.sequential = self.sapp.settings.sequential  # remembered from the last run
        with Horizontal(id="sim-bar"):
            yield Label("Simulating…", id="sim-label")
            # A total from the start: an indeterminate bar animates (15 frames a second,
            # even hidden), which every idle session would pay for.
            yield ProgressBar(id="sim-progress", total=1, show_eta=False)
        with Body(id="exp-body"):
            with Horizontal(id="exp-top"):
                with Vertical(id="exp-list-panel", classes="panel") as panel:
                    panel.border_title = "Experiments"
                    yield Input(placeholder="/ to filter by name", id="exp-filter", compact=True)
                    yield SyncTable(
                        [
                            ("Name", "name"),
                            ("Status", "status"),
                            ("Variants", "arms"),
                            ("Traffic", "traffic"),
                            ("Split", "split"),
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
                        [("Metric", "metric"), ("A", "A"), ("B", "B")],
                        id="kpis",
                        cursor_type="none",
                        sortable=False,
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
        self.all_exps = exps
        self._apply_filter(reload=True)

    def _apply_filter(self, reload: bool = False) -> None:
        """Show the experiments whose name contains the filter (case-insensitive)."""
        needle = self._filter.casefold()
        self.exps = [e for e in self.all_exps if needle in e.name.casefold()]
        panel = self.query_one("#exp-list-panel")
        panel.border_subtitle = f"{len(self.exps)} of {len(self.all_exps)}" if self._filter else ""
        table = self.query_one("#exp-list", SyncTable)
        self._draw_list()
        if not self.exps:
            self.exp_id = None
            self.view = None
            self._draw_none()
            self.refresh_bindings()
            return
        key = table.current_key
        if key is not None:
            self._select(int(key), force=reload)

    def _draw_list(self) -> None:
        table = self.query_one("#exp-list", SyncTable)
        avail = table.available_width(40) - 1  # the scrollbar
        arms = {e.id: _arms_text(e) for e in self.exps}
        splits = {e.id: _split_text(e) for e in self.exps}
        arms_w = max([len(printable(a)) for a in arms.values()] + [8])
        split_w = max([len(s) for s in splits.values()] + [5])
        name_need = max([len(printable(e.name)) for e in self.exps] + [4])
        # (key, header, width) by priority: the name first, then what the verdict panel
        # does not already say; a column goes before the name is cut.
        optional = [
            ("status", "Status", 7),
            ("arms", "Variants", arms_w),
            ("traffic", "Traffic", 7),
            ("split", "Split", split_w),
        ]
        while optional and name_need + 2 + sum(w + 2 for _, _, w in optional) > avail:
            optional.pop()
        name_w = max(12, avail - 2 - sum(w + 2 for _, _, w in optional))
        shown = {key for key, _, _ in optional}
        rows = []
        for e in self.exps:
            cells: list[Any] = [lit(e.name, limit=name_w)]
            if "status" in shown:
                cells.append(Text(e.status, style="bold" if e.status == "active" else "dim"))
            if "arms" in shown:
                cells.append(lit(arms[e.id], limit=arms_w))
            if "traffic" in shown:
                cells.append(right(pct(float(e.traffic_fraction), 0)))
            if "split" in shown:
                cells.append(right(splits[e.id]))
            rows.append((str(e.id), cells))
        table.sync(
            rows,
            widths={"name": name_w, **{key: w for key, _, w in optional}},
            columns=[("Name", "name"), *[(header, key) for key, header, _ in optional]],
        )

    def _select(self, exp_id: int, force: bool = False) -> None:
        self.refresh_bindings()  # simulate / log / stop depend on the experiment's status
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
        message = (
            "No experiment matches the filter."
            if self._filter and self.all_exps
            else "No experiments yet. Press n to create one, or load the sample data on the "
            "Overview (1, then l)."
        )
        self.query_one("#verdict", Static).update(Text(message, style="bold"))
        self.query_one("#trend", TrendChart).border_subtitle = ""
        kpis = self.query_one("#kpis", SyncTable)
        # No experiment, no variants: headers such as "A · v1" would be left over.
        kpis.sync([], columns=[("Metric", "metric")])
        kpis.show_header = False
        self.query_one("#stats", Static).update("")
        self.query_one("#bars", KpiBars).show([], [], [])
        self.query_one("#trend", TrendChart).show([], {})
        self.query_one("#kpi-panel").border_title = "KPIs per variant"

    def _draw(self, view: data.ExperimentView) -> None:
        exp = view.experiment
        rows = view.variants
        waiting = view.waiting
        # Nothing to test yet: no verdict, intervals, lifts or empty axes, only counts.
        stats = None if waiting else view.stats
        self._draw_verdict(view)
        title = Text("KPIs · ")
        title.append_text(lit(exp.name, limit=40))
        self.query_one("#kpi-panel").border_title = title
        self._draw_kpis(view, rows, stats)
        self.query_one("#stats", Static).update(self._stats_renderable(view))
        bars = self.query_one("#bars", KpiBars)
        trend = self.query_one("#trend", TrendChart)
        trend_panel = self.query_one("#trend")
        if waiting:
            bars.show_message(f"waiting for data: {waiting}")
            trend.show_message("waiting for data")
            trend_panel.border_subtitle = ""
            return
        bars.show(
            [f"{r.variant} ({r.strategy})" for r in rows],
            [r.ctr or 0.0 for r in rows],
            [r.conversion or 0.0 for r in rows],
        )
        # An interleaving test logs every user as "AB": both strategies' lists, merged.
        both = " + ".join(r.strategy for r in rows)
        labelled = {
            f"{v} ({next((r.strategy for r in rows if r.variant == v), both)})": s
            for v, s in view.daily_ctr.items()
        }
        trend.show(view.days, labelled)
        trend_panel.border_subtitle = (
            f"{view.partial_day} (in progress) left out" if view.partial_day else ""
        )

    def _draw_verdict(self, view: data.ExperimentView) -> None:
        stats = view.stats
        exp = view.experiment
        waiting = view.waiting
        head = Text()
        if waiting:
            label = " ⧗ WAITING FOR DATA " if exp.status == "active" else " ∅ NO DATA "
            head.append(label, style="bold reverse")
            head.append("  ")
        elif stats is not None:
            head.append_text(verdict_text(stats.verdict))
            head.append("  ")
        status = "running" if exp.status == "active" else "stopped"
        arms = " vs ".join(f"{v.strategy} ({v.label})" for v in exp.variants)
        design = " · interleaved" if exp.interleaving else ""
        head.append(f"{arms}{design} · {status}", style="dim")
        parts: list[RenderableType] = [head]
        if waiting:
            reason = f"{waiting[0].upper()}{waiting[1:]}."
            parts.append(para(f"{reason} {self._how_to_feed(exp)}".strip()))
        else:
            if view.summary:
                parts.append(para(view.summary))
            if stats is not None:
                # The first sentences (result, verdict); all of it is in the statistics panel.
                wide = self.has_class("-wide")
                parts.append(para(first_sentences(stats.conclusion, 2 if wide else 1)))
            elif view.stats_error:
                parts.append(para(f"Statistics unavailable: {view.stats_error}", style="dim"))
        if exp.status != "active":
            parts.append(
                Text(
                    "Stopped: it takes no new traffic or events, so s (simulate), l (log) "
                    "and x (stop) are off.",
                    style="dim",
                )
            )
        self.query_one("#verdict", Static).update(Group(*parts))

    @staticmethod
    def _how_to_feed(exp: Any) -> str:
        if exp.status != "active":
            return ""
        return (
            "Serve it to users (2, then s), simulate traffic (s) or log events (l); "
            "the tests run as soon as every variant has exposed users."
        )

    def _draw_kpis(
        self, view: data.ExperimentView, rows: list[data.VariantRow], stats: data.StatsView | None
    ) -> None:
        """Metrics down, one column per variant; intervals and lifts on rows of their own,
        so no number is ever cut, whatever the width and however many variants."""
        table = self.query_one("#kpis", SyncTable)
        table.show_header = True
        # Each variant's own interval and lift (an A/B/n test compares every treatment).
        ivs = view.variant_intervals if stats is not None else {}
        control = rows[0].variant if rows else "A"
        label_w = 15
        avail = table.available_width(56) - 1
        room = avail - label_w - 2 * (len(rows) + 1)
        # The short interval form (no brackets) when the long one would not fit.
        long_form = all(
            len(_interval_text(iv).strip()) <= room // max(len(rows), 1)
            for by_variant in ivs.values()
            for iv in by_variant.values()
        )

        def interval(iv: data.Interval | None) -> str:
            if iv is None:
                return "–"
            if long_form:
                return _interval_text(iv).strip()
            return f"{iv.low * 100:.1f}–{iv.high * 100:.1f}"

        def lift(r: data.VariantRow, metric: str) -> str:
            if r.variant == control:
                return "base"
            return signed_pct(view.variant_lifts.get(metric, {}).get(r.variant))

        # Many variants on a narrow panel: the headers lose the strategy ("C" for
        # "C · popular", named in the verdict) and engagement its spread, before any
        # number is cut.
        compact = label_w + sum(2 + max(11, len(r.variant) + 3 + len(r.strategy)) for r in rows)
        compact = compact + 2 > avail and len(rows) > 2

        def engagement(r: data.VariantRow) -> str:
            if r.engagement_mean is None:
                return "–"
            sd = "" if r.engagement_sd is None or compact else f" ± {r.engagement_sd:.0f}"
            return f"{r.engagement_mean:.1f}{sd} s"

        def metric_ivs(metric: str) -> dict[str, data.Interval]:
            return ivs.get(metric) or ivs.get(metric.removesuffix("_rate")) or {}

        spec: list[tuple[str, str, Any]] = [
            ("assigned", "Users assigned", lambda r: num(r.assigned)),
            ("exposed", "Users exposed", lambda r: num(r.exposed)),
            ("impressions", "Impressions", lambda r: num(r.impressions)),
            ("clicks", "Clicks", lambda r: num(r.clicks)),
            ("ctr", "CTR", lambda r: pct(r.ctr)),
            ("ctr-ci", "  95% CI", lambda r: interval(metric_ivs("ctr").get(r.variant))),
            ("ctr-lift", "  lift vs " + control, lambda r: lift(r, "ctr")),
            ("converted", "Users converted", lambda r: num(r.converted)),
            ("conversion", "Conversion", lambda r: pct(r.conversion)),
            (
                "conversion-ci",
                "  95% CI",
                lambda r: interval(metric_ivs("conversion_rate").get(r.variant)),
            ),
            ("conversion-lift", "  lift vs " + control, lambda r: lift(r, "conversion_rate")),
            ("engagement", "Engagement", engagement),
            ("engagement-lift", "  lift vs " + control, lambda r: lift(r, "engagement")),
        ]
        styles = {"ctr": "bold", "conversion": "bold"}
        cells = {key: [fn(r) for r in rows] for key, _, fn in spec}
        headers = [r.variant if compact else f"{r.variant} · {r.strategy}" for r in rows]
        widths: dict[str, int] = {"metric": label_w}
        for i, r in enumerate(rows):
            widths[r.variant] = max(
                [len(headers[i]), 6] + [len(values[i]) for values in cells.values()]
            )
        table.sync(
            [
                (
                    key,
                    [
                        Text(label, style=styles.get(key, "dim" if label[0] == " " else "")),
                        *[right(v, styles.get(key, "")) for v in cells[key]],
                    ],
                )
                for key, label, _ in spec
            ],
            widths=widths,
            columns=[
                ("Metric", "metric"),
                *[(right(h), r.variant) for h, r in zip(headers, rows, strict=True)],
            ],
        )

    def _stats_renderable(self, view: data.ExperimentView) -> RenderableType:
        stats = view.stats
        if view.waiting:
            how = self._how_to_feed(view.experiment)
            return para(f"Waiting for data: {view.waiting}. {how}".strip())
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

    # -- the filter ---------------------------------------------------------------------------
    @on(Input.Changed, "#exp-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._filter = event.value
        self._apply_filter()

    @on(Input.Submitted, "#exp-filter")
    def _filter_submitted(self) -> None:
        self.query_one("#exp-list", SyncTable).focus()

    def on_key(self, event: Any) -> None:
        if getattr(self.focused, "id", None) == "exp-filter" and event.key in ("down", "escape"):
            self.query_one("#exp-list", SyncTable).focus()
            event.stop()

    def action_focus_filter(self) -> None:
        self.query_one("#exp-filter", Input).focus()

    # -- copy and export ------------------------------------------------------------------------
    def action_copy(self) -> None:
        view = self.view
        if view is None:
            self.notify("No experiment selected", severity="warning")
            return
        text = export.kpi_tsv(view)
        self.app.copy_to_clipboard(text)
        self.notify(
            f"Copied the KPI table ({len(view.variants)} variants, tab-separated) to the "
            "clipboard through the terminal (OSC 52)",
            markup=False,
            timeout=4,
        )

    def action_export(self) -> None:
        view = self.view
        if view is None:
            self.notify("No experiment selected", severity="warning")
            return
        trend = self.query_one("#trend", TrendChart).drawing()
        self.spawn(self._export, view, trend, group="export", exclusive=False)

    async def _export(self, view: data.ExperimentView, trend: str) -> None:
        exp = view.experiment
        analysis: Any = None
        if not view.waiting:
            analysis = await self.sapp.attempt(
                self.sapp.backend.analyse(data.analysis_document, exp.id, self.sequential)
            )
            if analysis is data.FAILED:
                return
        stem = output.safe_stem(exp.name)
        files: list[tuple[str, str]] = [(f"{stem}-kpis.csv", export.kpi_csv(view))]
        if analysis is not None:
            files.append((f"{stem}-analysis.json", export.analysis_json(analysis)))
        files.append((f"{stem}-daily-ctr.txt", export.chart_text(trend)))
        files.append((f"{stem}-daily-ctr.svg", export.chart_svg(trend, f"Daily CTR · {stem}")))
        self.sapp.save_files(files)

    # -- actions ------------------------------------------------------------------------------
    def action_toggle_mode(self) -> None:
        self.sequential = not self.sequential
        self.sapp.settings.sequential = self.sequential
        self.sapp.save_settings()
        mode = "sequential (always valid)" if self.sequential else "fixed horizon"
        self.notify(f"Statistics: {mode}", timeout=2)
        self._request_detail()

    def _selected_exp(self) -> Any:
        return next((e for e in self.exps if e.id == self.exp_id), None)

    #: Actions that add data or stop: off (dimmed in the footer) for a stopped experiment.
    WRITES: ClassVar[tuple[str, ...]] = ("simulate", "log_event", "stop_experiment")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.WRITES:
            exp = self._selected_exp()
            if exp is not None and exp.status != "active":
                return None  # shown, dimmed; the verdict panel says why
        return True

    def explain_disabled(self, action: str) -> None:
        exp = self._selected_exp()
        what = {"simulate": "traffic", "log_event": "events"}.get(action, "changes")
        if exp is None or not self._refuse_stopped(exp, what):
            super().explain_disabled(action)

    def _refuse_stopped(self, exp: Any, what: str) -> bool:
        """Say why ``what`` is off for a stopped experiment (e.g. from the palette)."""
        if exp.status == "active":
            return False
        self.notify(
            printable(f"{exp.name} is stopped: it takes no new {what} (its results stay)"),
            severity="warning",
            markup=False,
        )
        return True

    def action_new_experiment(self) -> None:
        self.spawn(self._new_form, group="form")

    async def _new_form(self) -> None:
        strategies = await self.sapp.attempt(self.sapp.backend.read(lambda _s: data.strategies()))
        if strategies is data.FAILED:
            return
        # "v1 · collaborative": the description up to its first colon keeps one line.
        options = [(f"{k} · {v.split(':')[0]}", k) for k, v in strategies.items()]

        async def submit(values: dict[str, Any]) -> Any:
            more = [v.strip() for v in (values["more"] or "").split(",") if v.strip()]
            weights = _weights(values["weights"] or "")
            variants = None
            if more or weights is not None:
                # A/B/n (or two variants split by weights): the first is the control.
                variants = [values["control"], values["treatment"], *more]
            return await self.sapp.backend.read(
                data.create_experiment,
                name=values["name"],
                control=values["control"],
                treatment=values["treatment"],
                traffic_fraction=values["traffic"],
                treatment_share=values["split"],
                description=values["description"] or "",
                primary_metric=values["metric"],
                variants=variants,
                weights=weights,
                design=values["design"],
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
                "more",
                "More variants C, D, ... (optional, comma-separated)",
                required=False,
                placeholder="e.g. popular,v3",
            ),
            FormField(
                "weights",
                "Weights, one per variant (optional; replaces the share)",
                required=False,
                placeholder="e.g. 2,1,1",
            ),
            FormField(
                "design",
                "Design",
                kind="select",
                options=[
                    ("ab · each user sees one variant", "ab"),
                    ("interleaving · both lists merged (2 variants)", "interleaving"),
                ],
                default="ab",
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
        if self._refuse_stopped(exp, "events"):
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
        if self._refuse_stopped(exp, "traffic"):
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


def _weights(text: str) -> list[float] | None:
    """The form's weights ("2,1,1"), None when blank; the core checks count and signs."""
    from smart_suggest.errors import InputError

    if not text.strip():
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise InputError(
            f"weights must be numbers separated by commas, got {text[:40]!r}"
        ) from None
