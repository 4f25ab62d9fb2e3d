"""The TUI's door to the core: database lanes, revision polling, and view models.

Nothing here imports Textual, and nothing here runs SQL or does statistics: it calls the
core and packs the answers into small frozen view models the screens render.

Database access happens off the event loop (``asyncio.to_thread``) in three lanes:

* ``quick``: one long-lived connection (and the long-lived ``Recommender``) for short
  reads and single-row writes, serialised by a lock because a sqlite3 connection carries
  one transaction at a time;
* ``heavy``: a second long-lived connection for experiment results and analysis, so a
  slow aggregation over millions of events never delays the recommendations screen;
* ``job``: a fresh connection per long write (seeding, clearing, simulating), so the
  other lanes keep reading their WAL snapshot while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from smart_suggest.clock import iso
from smart_suggest.errors import SmartSuggestError
from smart_suggest.store import Store, open_store
from smart_suggest.tracking import SNAPSHOT_ROWS

T = TypeVar("T")

#: From about this many interactions the snapshot starts loading before Textual is imported
#: (``Backend.start_early``); below, the imports would only delay the first screen.
EARLY_START_ROWS = SNAPSHOT_ROWS

#: Returned by ``SmartSuggestApp.attempt`` when the work failed (the user was told why).
FAILED: Any = object()


class Lane:
    """A connection plus the lock that serialises its use across threads."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = threading.RLock()

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.lock:
            return fn(self.store, *args, **kwargs)

    def close(self) -> None:
        with self.lock:
            self.store.close()


class Backend:
    """Owns the database connections and the recommender of one running app."""

    def __init__(self, store: Store) -> None:
        self.path: Path = store.path
        #: Further connections open the way the first did (read-only stays read-only).
        self.read_only = store.read_only is not None
        self.quick = Lane(store)
        self._heavy: Lane | None = None
        self._heavy_lock = threading.Lock()
        self._recommender: Any = None
        self._recommender_lock = threading.Lock()
        self._closed = False
        #: called (from a worker thread) when a background snapshot rebuild is in place
        self.on_snapshot_rebuilt: Callable[[], None] | None = None

    # -- lanes -----------------------------------------------------------------------------
    @property
    def heavy(self) -> Lane:
        with self._heavy_lock:
            if self._heavy is None:
                self._heavy = Lane(open_store(self.path, read_only=self.read_only))
            return self._heavy

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(store, ...)`` on the quick lane in a thread."""
        return await asyncio.to_thread(self.quick.run, fn, *args, **kwargs)

    async def analyse(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(store, ...)`` on the heavy lane in a thread."""
        return await asyncio.to_thread(lambda: self.heavy.run(fn, *args, **kwargs))

    async def job(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(store, ...)`` on a fresh connection in a thread (long writes)."""

        def run() -> T:
            with open_store(self.path, read_only=self.read_only) as store:
                return fn(store, *args, **kwargs)

        return await asyncio.to_thread(run)

    def recommender(self, store: Store) -> Any:
        """The long-lived engine: updates its snapshot row by row, and rebuilds after a
        large change in the background while the previous snapshot keeps serving."""
        with self._recommender_lock:  # the early start's thread may ask at the same time
            if self._recommender is None:
                from smart_suggest.recommend import Recommender

                self._recommender = Recommender(store, background=True, on_rebuilt=self._rebuilt)
            return self._recommender

    def start_early(self) -> None:
        """Import the recommenders (numpy, scipy: ~0.3 s) and start loading the snapshot
        in a thread now, while Textual is still being imported: the first visit to the
        recommendations screen, often right after the first screen, then finds it ready
        or nearly. The app's own warm-up finds it started (``Recommender.start`` runs once).
        """

        from smart_suggest import tracking

        with self.quick.lock:
            large = tracking.interaction_id_max(self.quick.store) >= EARLY_START_ROWS
        if not large:
            return  # a small snapshot builds in moments: its imports wait for the first paint

        def run() -> None:
            with contextlib.suppress(Exception):  # only an optimisation; the warm-up retries
                self.recommender(self.quick.store).start()

        threading.Thread(target=run, name="early-start", daemon=True).start()

    def _rebuilt(self) -> None:
        callback = self.on_snapshot_rebuilt
        if callback is not None and not self._closed:
            callback()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._recommender is not None:
            self._recommender.close()
        if self._heavy is not None:
            self._heavy.close()
        self.quick.close()


def warm_up(store: Store, backend: Backend) -> None:
    """Start building the recommender's snapshot in the background (after the first
    paint), so the first visit to the recommendations screen does not wait for all of it
    and the quick lane stays free meanwhile."""
    store.prepare_write()  # the first v/c/p must not wait for the integrity check
    backend.recommender(store).start()


def warm_imports() -> None:
    """Import the statistics (scipy.stats: seconds on a cold start) in a thread, before
    the experiments screen needs them."""
    import smart_suggest.analysis
    import smart_suggest.stats  # noqa: F401  (imported lazily by analyze())


# -- revisions ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Revisions:
    catalog: int
    experiments: int


def revisions(store: Store) -> Revisions:
    return Revisions(store.revision("catalog"), store.revision("experiments"))


# -- overview ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OverviewData:
    counts: dict[str, int]
    path: Path
    size_bytes: int

    @property
    def empty(self) -> bool:
        return not any(self.counts.values())


def overview(store: Store) -> OverviewData:
    return OverviewData(store.counts(), store.path, store.size_bytes())


def load_sample(store: Store, progress: Callable[[str, int, int], None] | None = None) -> Any:
    from smart_suggest.sample import load_demo

    return load_demo(store, seed=42, progress=progress)


def clear_all(store: Store) -> dict[str, int]:
    counts = store.counts()
    store.clear()
    return counts


# -- users and recommendations -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UserPage:
    users: list[Any]  # tracking.User
    shown_all: bool
    #: Simulated visitors matching the filter that were left out (0 when shown).
    hidden_simulated: int = 0


def find_users(store: Store, text: str, limit: int = 200, simulated: bool = True) -> UserPage:
    from smart_suggest import tracking

    with store.read():
        users = tracking.search_users(store, text, limit=limit + 1, simulated=simulated)
        hidden = 0 if simulated else tracking.count_simulated_users(store, text)
    return UserPage(users[:limit], len(users) <= limit, hidden)


@dataclass(frozen=True, slots=True)
class RecRow:
    rank: int
    item_id: int
    name: str
    category: str
    score: float
    reason: str
    source: str


@dataclass(frozen=True, slots=True)
class UserView:
    user: Any  # tracking.User
    recs: dict[str, list[RecRow]]  # strategy -> rows
    history: list[Any]  # tracking.Interaction
    profile: Any  # tracking.Profile
    #: strategy -> what it must tell the user (e.g. v2 without item content), if anything
    notes: dict[str, str] = field(default_factory=dict)
    #: The catalog revision the view was read at (a refresh for an older one is not needed).
    revision: int = 0


def _rec_rows(store: Store, recs: list[Any]) -> list[RecRow]:
    from smart_suggest import tracking

    items = tracking.get_items(store, [r.item_id for r in recs])
    rows = []
    for rank, rec in enumerate(recs, 1):
        item = items.get(rec.item_id)
        rows.append(
            RecRow(
                rank,
                rec.item_id,
                item.name if item else f"#{rec.item_id}",
                item.category_label if item else "?",
                float(rec.score),
                str(rec.reason),
                str(getattr(rec, "source", "")),
            )
        )
    return rows


def user_view(
    store: Store,
    backend: Backend,
    user_id: int,
    strategies: tuple[str, ...] = ("v1", "v2"),
    count: int = 10,
) -> UserView:
    from smart_suggest import tracking

    revision = store.revision("catalog")
    user = tracking.get_user(store, user_id)
    engine = backend.recommender(store)
    recs = {
        s: _rec_rows(store, engine.recommend(user.id, strategy=s, count=count)) for s in strategies
    }
    return UserView(
        user,
        recs,
        tracking.history(store, user.id, limit=50),
        tracking.profile(store, user.id, top=5),
        {s: note for s in strategies if (note := engine.note(s))},
        revision,
    )


def find_items(store: Store, text: str = "", limit: int = 5000) -> list[Any]:
    """Items whose name or category contains ``text`` (for the item finder)."""
    from smart_suggest import tracking

    return tracking.search_items(store, text, limit=limit)


@dataclass(frozen=True, slots=True)
class SimilarRow:
    item_id: int
    name: str
    category: str
    score: float


def similar_items(store: Store, backend: Backend, item_id: int, count: int = 8) -> list[SimilarRow]:
    from smart_suggest import tracking

    pairs = backend.recommender(store).similar(item_id, count=count)
    items = tracking.get_items(store, [i for i, _ in pairs])
    return [
        SimilarRow(i, items[i].name, items[i].category_label, float(s))
        for i, s in pairs
        if i in items
    ]


def log_action(store: Store, user_id: int, item_id: int, action: str) -> Any:
    from smart_suggest import tracking

    return tracking.log_interaction(store, user_id, item_id, action)


def add_user(store: Store, username: str) -> Any:
    from smart_suggest import tracking

    return tracking.add_user(store, username)


def add_item(store: Store, name: str, category: str, description: str) -> Any:
    from smart_suggest import tracking

    return tracking.add_item(store, name, category, description)


def categories(store: Store) -> list[str]:
    from smart_suggest import tracking

    return tracking.categories(store)


def strategies() -> dict[str, str]:
    """Every registered strategy (name -> description), in the registry's display order:
    a strategy added to ``smart_suggest.recommend`` appears here with no change to the UI."""
    from smart_suggest.recommend import base

    reg = base.registry()
    return {name: reg[name].description for name in sorted(reg, key=base._display_order)}


def metrics() -> dict[str, str]:
    from smart_suggest.experiments.lifecycle import METRICS

    return dict(METRICS)


def serve(store: Store, backend: Backend, exp_id: int, user_id: int, count: int = 5) -> Any:
    from smart_suggest.experiments.serving import serve as core_serve

    return core_serve(store, exp_id, user_id, count=count, recommender=backend.recommender(store))


@dataclass(frozen=True, slots=True)
class ServedView:
    experiment: str
    variant: str | None
    enrolled: bool
    strategy: str | None
    rows: list[RecRow]
    impressions: int
    #: Interleaving: the team of each row ("A", "B" or "both"); empty otherwise.
    teams: list[str] = field(default_factory=list)


def serve_view(store: Store, backend: Backend, exp_id: int, user_id: int) -> ServedView:
    served = serve(store, backend, exp_id, user_id)
    recs = list(served.recommendations)
    return ServedView(
        served.experiment.name,
        served.variant,
        served.enrolled,
        served.strategy,
        _rec_rows(store, recs),
        served.impressions,
        list(served.teams),
    )


# -- experiments -------------------------------------------------------------------------
def list_experiments(store: Store) -> list[Any]:
    from smart_suggest.experiments.lifecycle import list_experiments as core_list

    return list(core_list(store, include_stopped=True))


def create_experiment(store: Store, **kwargs: Any) -> Any:
    from smart_suggest.experiments.lifecycle import create_experiment as core_create

    return core_create(store, **kwargs)


def stop_experiment(store: Store, exp_id: int) -> Any:
    from smart_suggest.experiments.lifecycle import stop_experiment as core_stop

    return core_stop(store, exp_id)


def log_event(
    store: Store, exp_id: int, user: str, item: str, type_: str, value: float | None
) -> Any:
    from smart_suggest.experiments.events import log_event as core_log

    return core_log(store, exp_id, user, item, type_, value=value)


def simulate(
    store: Store,
    exp_id: int,
    users: int,
    days: int,
    ctr_a: float,
    ctr_b: float,
    purchase_a: float,
    purchase_b: float,
    seed: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> Any:
    from smart_suggest.experiments.simulate import simulate as core_simulate

    return core_simulate(
        store,
        exp_id,
        users=users,
        days=days,
        ctr_a=ctr_a,
        ctr_b=ctr_b,
        purchase_a=purchase_a,
        purchase_b=purchase_b,
        seed=seed,
        progress=progress,
    )


@dataclass(frozen=True, slots=True)
class ExperimentView:
    """Everything the experiments screen shows about one experiment, from one snapshot."""

    experiment: Any  # lifecycle.Experiment
    variants: list[VariantRow]
    lifts: dict[str, float | None]  # metric -> relative lift of B over A
    days: list[str]  # "MM-DD" of each day of the timeline
    daily_ctr: dict[str, list[float | None]]  # variant -> CTR per day
    stats: StatsView | None
    stats_error: str | None = None
    #: More than two variants: the recommendation ("ship C: ..."); interleaving: the
    #: preference verdict. None for a two-variant A/B test (``stats`` says it all).
    summary: str | None = None
    #: "MM-DD" of a last day still in progress, left out of ``days`` (its CTR so far is
    #: not comparable with whole days); None when every day shown is complete.
    partial_day: str | None = None
    #: metric -> variant -> the variant's own interval; every treatment of an A/B/n test
    #: has its own (``stats`` holds one comparison only, whose "B" is the leading one).
    variant_intervals: dict[str, dict[str, Interval]] = field(default_factory=dict)
    #: metric -> treatment -> relative lift over A, each treatment its own.
    variant_lifts: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def waiting(self) -> str | None:
        """Why there is nothing to test yet (no impressions in some variant), or None.

        Until then a verdict would only restate the absence of data (no effect, p = 1,
        an interval spanning everything), so the screens say what they wait for instead.
        """
        if not self.variants or not any(v.impressions for v in self.variants):
            return "no impressions yet"
        empty = [v.variant for v in self.variants if not v.exposed]
        if empty:
            names = " and ".join(empty)
            return f"variant {names} {'has' if len(empty) == 1 else 'have'} no exposed users yet"
        return None


def experiment_view(store: Store, exp_id: int, sequential: bool = True) -> ExperimentView:
    """KPIs, daily CTR and the analysis of one experiment, all in one read snapshot."""
    from smart_suggest.analysis import analyze
    from smart_suggest.experiments.kpis import results
    from smart_suggest.experiments.lifecycle import get_experiment
    from smart_suggest.experiments.timeline import timeline

    with store.read():
        exp = get_experiment(store, exp_id)
        try:
            days, daily = trend_series(timeline(store, exp.id, bucket="day", cumulative=False))
        except SmartSuggestError:  # e.g. a span too long for daily buckets: no chart
            days, daily = [], {}
        days, daily, partial = drop_partial_day(exp, days, daily)
        if exp.interleaving:
            return _interleaving_view(store, exp, days, daily, sequential, partial)
        if len(exp.variants) > 2:
            return _multi_view(store, exp, days, daily, sequential, partial)
        try:
            analysis = analyze(store, exp.id, sequential=sequential)
        except SmartSuggestError as exc:  # the panel says why; KPIs and charts still show
            res = results(store, exp.id)
            lifts = {k: _num(v.relative) for k, v in res.lifts.items()}
            return ExperimentView(
                exp,
                variant_rows(res.variants),
                lifts,
                days,
                daily,
                None,
                str(exc),
                partial_day=partial,
                variant_lifts={k: {"B": v} for k, v in lifts.items()},
            )
    variants = variant_rows([analysis.variants["A"], analysis.variants["B"]])
    lifts = {m.metric: _num(m.relative_lift) for m in analysis.metrics}
    view = stats_view(analysis)
    return ExperimentView(
        exp,
        variants,
        lifts,
        days,
        daily,
        view,
        partial_day=partial,
        variant_intervals={m.metric: dict(m.intervals) for m in view.metrics},
        variant_lifts={k: {"B": v} for k, v in lifts.items()},
    )


def drop_partial_day(
    exp: Any, days: list[str], daily: dict[str, list[float | None]]
) -> tuple[list[str], dict[str, list[float | None]], str | None]:
    """Leave out the last day when it is still running (today for a running experiment,
    the day it stopped for a stopped one) and more than one day was seen."""
    from smart_suggest import clock

    end = exp.stopped_at if exp.stopped_at is not None else clock.now()
    if len(days) < 2 or days[-1] != iso(end)[5:10] or end % 86400 == 0:
        return days, daily, None
    return days[:-1], {k: v[:-1] for k, v in daily.items()}, days[-1]


def analysis_document(store: Store, exp_id: int, sequential: bool = True) -> dict[str, Any]:
    """The full analysis as ``smart-suggest analyze EXP --json`` prints it (for exports)."""
    from smart_suggest.analysis import analyze

    result: dict[str, Any] = analyze(store, exp_id, sequential=sequential).to_dict()
    return result


def _multi_view(
    store: Store,
    exp: Any,
    days: list[str],
    daily: dict[str, list[float | None]],
    seq: bool,
    partial: str | None = None,
) -> ExperimentView:
    """More than two variants: a KPI row per variant; the statistics panel shows the
    comparison of the leading treatment with A; the summary is the recommendation."""
    from smart_suggest.analysis.multiarm import analyze_multi

    an = analyze_multi(store, exp, sequential=seq)
    best = max(
        an.comparisons,
        key=lambda c: dict(zip(an.prob_best.labels, an.prob_best.probabilities, strict=True))[
            c.label
        ],
    )
    lifts = {m.metric: _num(m.relative_lift) for m in best.analysis.metrics}
    per = ", ".join(f"{c.label} {c.verdict.replace('_', ' ')}" for c in an.comparisons)
    summary = (
        f"{an.recommendation.text}: {an.recommendation.reason} ({per}; Holm across "
        f"{len(an.comparisons)} comparisons). Statistics below: {best.label} vs A."
    )
    # Each comparison is a two-variant analysis whose "B" is that treatment; A's interval
    # is taken from the comparison the statistics panel shows.
    intervals: dict[str, dict[str, Interval]] = {}
    variant_lifts: dict[str, dict[str, float | None]] = {}
    for c in sorted(an.comparisons, key=lambda c: c is best):
        for m in c.analysis.metrics:
            own = intervals.setdefault(m.metric, {})
            for key, label in (("A", "A"), ("B", c.label)):
                if (iv := _interval(m.intervals.get(key))) is not None:
                    own[label] = iv
            variant_lifts.setdefault(m.metric, {})[c.label] = _num(m.relative_lift)
    return ExperimentView(
        exp,
        variant_rows(an.variants),
        lifts,
        days,
        daily,
        stats_view(best.analysis),
        None,
        summary,
        partial,
        variant_intervals=intervals,
        variant_lifts=variant_lifts,
    )


def _interleaving_view(
    store: Store,
    exp: Any,
    days: list[str],
    daily: dict[str, list[float | None]],
    seq: bool,
    partial: str | None = None,
) -> ExperimentView:
    """Interleaving: a KPI row per team (impressions and credit) and the preference."""
    from smart_suggest.analysis.interleaving import analyze_interleaving

    an = analyze_interleaving(store, exp, sequential=seq)
    t = an.teams
    rows = []
    for label, strategy in (("A", an.strategies[0]), ("B", an.strategies[1])):
        imp, clk, pur = t["impressions"][label], t["clicks"][label], t["purchases"][label]
        rows.append(
            VariantRow(
                variant=label,
                strategy=strategy,
                assigned=int(t["users"]),
                exposed=int(t["users"]),
                impressions=imp,
                clicks=clk,
                ctr=clk / imp if imp else None,
                converted=0,
                conversion=None,
                purchases=pur,
                engagement_mean=None,
                engagement_sd=None,
                engagement_n=0,
            )
        )
    res = an.result
    share = "" if res.share_b is None else f" share preferring B {res.share_b:.1%}"
    summary = f"Interleaving: {res.text}.{share} ({res.users:,} users, {res.ties:,} ties)"
    a, b = rows
    lift = None if not a.ctr or b.ctr is None else b.ctr / a.ctr - 1
    return ExperimentView(
        exp,
        rows,
        {"ctr": lift},
        days,
        daily,
        None,
        "team credit, not an A/B test",
        summary,
        partial,
        variant_lifts={"ctr": {"B": lift}},
    )


# -- statistics ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class MetricStats:
    """One metric's test, as the stats panel shows it."""

    metric: str
    label: str
    role: str  # primary / secondary
    test: str  # human description of the test
    p_value: float | None
    p_label: str  # "", "Holm-adjusted", "always-valid", ...
    diff: float | None  # B - A
    ci: Interval | None  # interval of the difference
    relative: float | None  # relative lift (B - A) / A
    effect_size: float | None
    effect_size_name: str
    intervals: dict[str, Interval]  # per variant
    significant: bool
    verdict: str
    headline: str
    conclusion: str
    note: str


@dataclass(frozen=True, slots=True)
class StatsView:
    """The statistical panel: everything ``smart_suggest.analysis.analyze`` concluded."""

    mode: str  # "sequential" or "fixed_horizon"
    alpha: float
    metrics: list[MetricStats]
    srm_ok: bool
    srm_text: str
    sequential_text: str
    bayes_text: str
    prob_b_beats_a: float | None
    expected_loss: float | None
    power_text: str
    novelty_text: str
    verdict: str
    headline: str
    conclusion: str
    warnings: list[str] = field(default_factory=list)


def _interval(value: Any) -> Interval | None:
    if value is None:
        return None
    return Interval(float(value.low), float(value.high))


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def stats_view(a: Any) -> StatsView:
    """``analysis.Analysis`` -> ``StatsView``."""
    metrics = []
    for m in a.metrics:
        p = _num(m.p_value)
        metrics.append(
            MetricStats(
                metric=m.metric,
                label=m.label,
                role=m.role,
                test=m.method,
                p_value=p,
                p_label=m.p_value_label,
                diff=_num(m.diff),
                ci=_interval(m.ci),
                relative=_num(m.relative_lift),
                effect_size=_num(m.effect_size),
                effect_size_name=m.effect_size_name,
                intervals={
                    k: iv for k, v in m.intervals.items() if (iv := _interval(v)) is not None
                },
                significant=bool(m.significant),
                verdict=m.verdict,
                headline=m.headline,
                conclusion=m.summary,
                note=m.note,
            )
        )
    bayes = a.bayes
    return StatsView(
        mode=a.mode,
        alpha=a.alpha,
        metrics=metrics,
        srm_ok=not a.srm.flagged,
        srm_text=a.srm_message,
        sequential_text=a.sequential.message if a.sequential is not None else "",
        bayes_text="" if bayes is None else bayes.label,
        prob_b_beats_a=None if bayes is None else _num(bayes.prob_b_beats_a),
        expected_loss=None if bayes is None else _num(bayes.expected_loss),
        power_text=a.power.message,
        novelty_text=a.novelty.message,
        verdict=a.verdict,
        headline=a.headline,
        conclusion=a.conclusion,
        warnings=list(a.warnings),
    )


# -- KPI and trend adapters --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class VariantRow:
    """One variant's KPIs, as the KPI table and the bar chart show them."""

    variant: str
    strategy: str
    assigned: int
    exposed: int
    impressions: int
    clicks: int
    ctr: float | None
    converted: int
    conversion: float | None
    purchases: int
    engagement_mean: float | None
    engagement_sd: float | None
    engagement_n: int


def variant_rows(kpis: Any) -> list[VariantRow]:
    """``kpis.VariantKPIs`` of every variant -> the rows of the KPI table and the bar chart."""
    rows = []
    for k in kpis:
        rows.append(
            VariantRow(
                variant=k.variant,
                strategy=k.strategy,
                assigned=k.users_assigned,
                exposed=k.users_exposed,
                impressions=k.impressions,
                clicks=k.clicks,
                ctr=k.ctr,
                converted=k.users_converted,
                conversion=k.conversion_rate,
                purchases=k.purchases,
                engagement_mean=k.engagement_mean,
                engagement_sd=k.engagement_sd,
                engagement_n=k.engagement_n,
            )
        )
    return rows


def trend_series(trend: Any) -> tuple[list[str], dict[str, list[float | None]]]:
    """``timeline.Timeline`` -> (day labels "MM-DD", daily CTR of each variant)."""
    days: list[str] = []
    values: dict[str, dict[str, float | None]] = {v: {} for v in trend.variants}
    for p in trend.buckets:
        label = iso(p.start_ts)[5:10]
        if label not in days:
            days.append(label)
        values.setdefault(p.variant, {})[label] = _num(p.ctr)
    series = {v: [per_day.get(d) for d in days] for v, per_day in values.items()}
    return days, series
