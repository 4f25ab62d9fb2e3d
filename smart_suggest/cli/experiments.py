"""CLI: ``smart-suggest experiment create|list|show|stop|delete|serve|log|results|timeline|
simulate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smart_suggest.cli._common import (
    DbOption,
    JsonOption,
    YesOption,
    confirm,
    console,
    emit_json,
    fmt_time,
    info,
    make_table,
    open_db,
    progress_bar,
    safe,
    say,
)

if TYPE_CHECKING:
    from rich.text import Text

    from smart_suggest.experiments.kpis import ExperimentResults
    from smart_suggest.experiments.lifecycle import Experiment
    from smart_suggest.experiments.timeline import Timeline

experiment_app = typer.Typer(
    help="A/B experiments between strategies: create, serve, log, results over time.",
    no_args_is_help=True,
)

ExpArg = Annotated[str, typer.Argument(help="Experiment id or name.", show_default=False)]
UserArg = Annotated[str, typer.Argument(help="User id or username.", show_default=False)]


# -- formatting ------------------------------------------------------------------------------
def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def _num(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{unit}"


def _signed(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pp":
        return f"{value * 100:+.2f} pp"
    if kind == "rel":
        return f"{value * 100:+.1f}%"
    return f"{value:+,.2f} s"


def _exp_title(exp: Experiment) -> Text:
    from rich.text import Text

    title = Text("Experiment ")
    title.append_text(safe(exp.name, style="bold"))
    title.append(f" (id {exp.id}, {exp.status})")
    return title


def _traffic(exp: Experiment) -> str:
    return f"{exp.traffic_fraction:.0%} of users, {exp.treatment_share:.0%} of them to B"


# -- lifecycle --------------------------------------------------------------------------------
@experiment_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Unique experiment name.", show_default=False)],
    control: Annotated[
        str, typer.Option("--control", "-a", help="Strategy of variant A (control).")
    ] = "v1",
    treatment: Annotated[
        str, typer.Option("--treatment", "-b", help="Strategy of variant B (treatment).")
    ] = "v2",
    traffic: Annotated[
        float, typer.Option("--traffic", help="Fraction of users in the experiment, (0, 1].")
    ] = 1.0,
    share: Annotated[
        float, typer.Option("--share", help="Fraction of enrolled users sent to B, (0, 1).")
    ] = 0.5,
    description: Annotated[str, typer.Option("--description", "-d", help="What it tests.")] = "",
    primary_metric: Annotated[
        str | None,
        typer.Option("--primary-metric", "-m", help="ctr, conversion_rate or engagement."),
    ] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Create an experiment comparing two strategies (the same strategy twice: an A/A test)."""
    from smart_suggest.experiments.lifecycle import create_experiment

    with open_db(db) as store:
        exp = create_experiment(
            store,
            name,
            control=control,
            treatment=treatment,
            traffic_fraction=traffic,
            treatment_share=share,
            description=description,
            primary_metric=primary_metric,
        )
    if json:
        emit_json(exp.to_dict())
        return
    kind = " (an A/A test)" if exp.is_aa else ""
    console.print(
        "Created experiment ",
        safe(exp.name),
        f" (id {exp.id}): A = {exp.control}, B = {exp.treatment}{kind}; {_traffic(exp)}",
        sep="",
    )


@experiment_app.command("list")
def list_cmd(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include stopped experiments.")] = False,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """List active experiments (all with --all)."""
    from smart_suggest.experiments.lifecycle import assignment_counts, list_experiments

    with open_db(db) as store:
        exps = list_experiments(store, include_stopped=all_)
        assigned = assignment_counts(store, [e.id for e in exps])
    if json:
        emit_json([{**e.to_dict(), "users_assigned": assigned[e.id]} for e in exps])
        return
    what = "Experiments" if all_ else "Active experiments"
    table = make_table(
        f"{what} ({len(exps)})",
        [
            ("id", "right"),
            "name",
            "status",
            "A / B",
            ("traffic", "right"),
            ("to B", "right"),
            ("assigned", "right"),
            "created",
        ],
    )
    for e in exps:
        table.add_row(
            str(e.id),
            safe(e.name, limit=40),
            e.status,
            safe(f"{e.control} / {e.treatment}"),
            f"{e.traffic_fraction:.0%}",
            f"{e.treatment_share:.0%}",
            f"{assigned[e.id]:,}",
            fmt_time(e.created_at)[:10],
        )
    console.print(table)
    if not exps and not all_:
        info("No active experiments (--all shows stopped ones too).")


@experiment_app.command("show")
def show(exp_ref: ExpArg, db: DbOption = None, json: JsonOption = False) -> None:
    """Show an experiment's settings, its assignments and its events by type."""
    from smart_suggest.experiments.lifecycle import get_experiment

    with open_db(db) as store, store.read():
        exp = get_experiment(store, exp_ref)
        assigned = dict.fromkeys("AB", 0)
        for variant, n in store.conn.execute(
            "SELECT variant, COUNT(*) FROM assignments WHERE experiment_id = ? GROUP BY variant",
            (exp.id,),
        ):
            assigned[str(variant)] = int(n)
        events = {
            v: dict.fromkeys(("impression", "click", "purchase", "engagement"), 0) for v in "AB"
        }
        for variant, kind, n in store.conn.execute(
            "SELECT variant, type, SUM(n) FROM event_counts WHERE experiment_id = ? "
            "GROUP BY variant, type",
            (exp.id,),
        ):
            events[str(variant)][str(kind)] = int(n)
    if json:
        emit_json({**exp.to_dict(), "users_assigned": assigned, "events": events})
        return
    console.print(_exp_title(exp))
    table = make_table(None, ["", "value"])
    table.add_row("description", safe(exp.description or "-"))
    table.add_row("variant A (control)", safe(exp.control))
    table.add_row(
        "variant B (treatment)", safe(exp.treatment) + (" (A/A test)" if exp.is_aa else "")
    )
    table.add_row("traffic", _traffic(exp))
    table.add_row("primary metric", exp.primary_metric or "-")
    table.add_row("created", fmt_time(exp.created_at))
    table.add_row("stopped", fmt_time(exp.stopped_at))
    table.add_row("users assigned", f"A {assigned['A']:,} / B {assigned['B']:,}")
    for t in ("impression", "click", "purchase", "engagement"):
        table.add_row(f"{t} events", f"A {events['A'][t]:,} / B {events['B'][t]:,}")
    console.print(table)


@experiment_app.command("stop")
def stop(exp_ref: ExpArg, db: DbOption = None, json: JsonOption = False) -> None:
    """Stop an experiment: no new assignments or events; results stay available."""
    from smart_suggest.experiments.lifecycle import stop_experiment

    with open_db(db) as store:
        exp = stop_experiment(store, exp_ref)
    if json:
        emit_json(exp.to_dict())
        return
    console.print(
        "Stopped experiment ",
        safe(exp.name),
        f" (id {exp.id}) at {fmt_time(exp.stopped_at)}",
        sep="",
    )


@experiment_app.command("delete")
def delete(
    exp_ref: ExpArg, yes: YesOption = False, db: DbOption = None, json: JsonOption = False
) -> None:
    """Delete an experiment with all its assignments and events (asks first)."""
    from smart_suggest.experiments.lifecycle import delete_experiment, get_experiment
    from smart_suggest.text import printable

    with open_db(db) as store:
        exp = get_experiment(store, exp_ref)
        confirm(
            f"Delete experiment {printable(exp.name, limit=60)!r} (id {exp.id}) with all its "
            "assignments and events?",
            yes,
        )
        report = delete_experiment(store, exp.id)
    if json:
        emit_json(report.to_dict())
        return
    console.print(
        "Deleted experiment ",
        safe(exp.name),
        f" (id {exp.id}): {report.assignments:,} assignments, {report.events:,} events",
        sep="",
    )


# -- serving and logging ---------------------------------------------------------------------
@experiment_app.command("serve")
def serve_cmd(
    exp_ref: ExpArg,
    user: UserArg,
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=100, help="Items shown.")] = 5,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Assign USER, show the variant's recommendations and log one impression per item."""
    from smart_suggest import tracking
    from smart_suggest.experiments.serving import serve

    with open_db(db) as store:
        served = serve(store, exp_ref, user, count)
        who = tracking.get_user(store, served.user_id)
        items = tracking.get_items(store, [r.item_id for r in served.recommendations])
    if json:
        data = served.to_dict()
        for rec in data["recommendations"]:
            it = items.get(rec["item_id"])
            rec["name"] = it.name if it else None
            rec["category"] = it.category if it else None
        emit_json(data)
        return
    exp = served.experiment
    head = _exp_title(exp)
    head.append(" · user ")
    head.append_text(safe(who.username))
    head.append(f" (id {who.id})")
    console.print(head)
    if served.enrolled:
        role = "control" if served.variant == "A" else "treatment"
        status = "new assignment" if served.new_assignment else "assigned earlier"
        console.print(f"Variant {served.variant} ({role}, strategy {served.strategy}), {status}")
    else:
        console.print(
            f"Outside the experiment's traffic ({exp.traffic_fraction:.0%}): served control "
            f"({served.strategy}); not assigned, nothing logged"
        )
    table = make_table(None, [("#", "right"), ("item", "right"), "name", "category", "reason"])
    for rank, rec in enumerate(served.recommendations, 1):
        it = items.get(rec.item_id)
        table.add_row(
            str(rank),
            str(rec.item_id),
            safe(it.name if it else "?", limit=40),
            safe(it.category if it else "?"),
            safe(rec.reason, limit=60),
        )
    console.print(table)
    if served.enrolled:
        info(f"Logged {served.impressions} impression(s) for variant {served.variant}.")


@experiment_app.command("log")
def log_cmd(
    exp_ref: ExpArg,
    user: Annotated[
        str | None, typer.Argument(help="User id or username.", show_default=False)
    ] = None,
    item: Annotated[str | None, typer.Argument(help="Item id.", show_default=False)] = None,
    event_type: Annotated[
        str | None,
        typer.Argument(
            metavar="TYPE",
            help="click, purchase or engagement (impression too, though serve logs those).",
            show_default=False,
        ),
    ] = None,
    value: Annotated[
        float | None,
        typer.Option("--value", "-v", help="Engagement time in seconds (engagement only)."),
    ] = None,
    ts: Annotated[
        str | None,
        typer.Option("--ts", help="When it happened: Unix seconds or ISO-8601 [default: now]."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="Bulk: a CSV with columns user,item,type[,value][,ts] ('-' = stdin); "
            "all rows or none are logged.",
            dir_okay=False,
            allow_dash=True,
        ),
    ] = None,
    unserved: Annotated[
        bool,
        typer.Option(
            "--unserved",
            help="Accept a click or purchase on an item the user was never served in this "
            "experiment (for systems that log exposures elsewhere).",
        ),
    ] = False,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Log a follow-up event (click, purchase, engagement) with the user's stored variant.

    Refused (exit 2, nothing written) for a user never assigned to the experiment, an
    unknown item, a click or purchase on an item never served to the user in this
    experiment (unless --unserved), an engagement without a finite, non-negative --value,
    or a stopped experiment. With --file, every row is checked and the first bad line is
    reported.
    """
    from smart_suggest.errors import InputError

    if file is not None:
        if user is not None or item is not None or event_type is not None:
            raise InputError("give USER ITEM TYPE or --file, not both")
        if value is not None or ts is not None:
            raise InputError("--value and --ts apply to one event; in a file use the columns")
        _log_file(exp_ref, file, db, json)
        return
    if user is None or item is None or event_type is None:
        raise InputError("missing USER ITEM TYPE (or pass --file events.csv)")
    from smart_suggest import clock, tracking
    from smart_suggest.experiments.events import log_event

    when = None
    if ts is not None:
        try:
            when = clock.parse_time(ts)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    with open_db(db) as store:
        event = log_event(store, exp_ref, user, item, event_type, value, ts=when, unserved=unserved)
        who = tracking.get_user(store, event.user_id)
        from smart_suggest.experiments.lifecycle import get_experiment

        exp = get_experiment(store, event.experiment_id)
    if json:
        emit_json(event.to_dict())
        return
    from smart_suggest.text import printable

    extra = f" ({event.value:g} s)" if event.value is not None else ""
    say(
        f"Logged {event.type}{extra} for user ",
        printable(who.username),
        f" (variant {event.variant}) on item {event.item_id} in ",
        printable(exp.name),
        f" (event {event.id})",
    )


def _log_file(exp_ref: str, file: Path, db: Path | None, json: bool) -> None:
    from smart_suggest.csvfiles import stdin_text
    from smart_suggest.experiments.bulk import log_events_csv

    source: Any = stdin_text() if str(file) == "-" else file
    with open_db(db) as store, progress_bar(not json) as update:
        report = log_events_csv(store, exp_ref, source, progress=update)
    if json:
        emit_json(report.to_dict())
        return
    kinds = ", ".join(f"{n:,} {t}" for t, n in report.by_type.items() if n)
    console.print(
        f"Logged {report.rows:,} events ({kinds or 'none'}) for {report.users:,} users in ",
        safe(report.experiment.name),
        f" in {report.seconds:.2f} s ({report.rate:,.0f} events/s)",
        sep="",
    )


# -- results -------------------------------------------------------------------------------
@experiment_app.command("results")
def results_cmd(exp_ref: ExpArg, db: DbOption = None, json: JsonOption = False) -> None:
    """KPIs per variant (computed in SQL) and the lift of B over A."""
    from smart_suggest.experiments.kpis import results

    with open_db(db) as store:
        res = results(store, exp_ref)
    if json:
        emit_json(res.to_dict())
        return
    _print_results(res)


def _print_results(res: ExperimentResults) -> None:
    exp, a, b = res.experiment, res.a, res.b
    console.print(_exp_title(exp))
    lift = res.lifts
    table = make_table(
        None,
        [
            "metric",
            (f"A ({a.strategy})", "right"),
            (f"B ({b.strategy})", "right"),
            ("B - A", "right"),
            ("relative", "right"),
        ],
    )
    table.columns[1].header = safe(f"A ({a.strategy})")
    table.columns[2].header = safe(f"B ({b.strategy})")
    rows: list[tuple[str, str, str, str, str]] = [
        ("users assigned", f"{a.users_assigned:,}", f"{b.users_assigned:,}", "", ""),
        ("users exposed", f"{a.users_exposed:,}", f"{b.users_exposed:,}", "", ""),
        ("impressions", f"{a.impressions:,}", f"{b.impressions:,}", "", ""),
        ("clicks", f"{a.clicks:,}", f"{b.clicks:,}", "", ""),
        (
            "CTR",
            _pct(a.ctr),
            _pct(b.ctr),
            _signed(lift["ctr"].absolute, "pp"),
            _signed(lift["ctr"].relative, "rel"),
        ),
        ("users converted", f"{a.users_converted:,}", f"{b.users_converted:,}", "", ""),
        (
            "conversion rate",
            _pct(a.conversion_rate),
            _pct(b.conversion_rate),
            _signed(lift["conversion_rate"].absolute, "pp"),
            _signed(lift["conversion_rate"].relative, "rel"),
        ),
        ("purchases", f"{a.purchases:,}", f"{b.purchases:,}", "", ""),
        (
            "engagement mean",
            _num(a.engagement_mean, 1, " s"),
            _num(b.engagement_mean, 1, " s"),
            _signed(lift["engagement"].absolute, "s"),
            _signed(lift["engagement"].relative, "rel"),
        ),
        ("engagement sd", _num(a.engagement_sd, 1, " s"), _num(b.engagement_sd, 1, " s"), "", ""),
        ("engagement events", f"{a.engagement_n:,}", f"{b.engagement_n:,}", "", ""),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    span = "no events yet"
    if res.first_event_ts is not None:
        span = (
            f"events from {fmt_time(res.first_event_ts)} to {fmt_time(res.last_event_ts)} "
            f"({res.duration_days:.1f} days)"
        )
    info(f"{span}; lifts are B over A (descriptive: `smart-suggest analyze` tests them)")


@experiment_app.command("timeline")
def timeline_cmd(
    exp_ref: ExpArg,
    bucket: Annotated[str, typer.Option("--bucket", help="day or hour (UTC).")] = "day",
    cumulative: Annotated[
        bool, typer.Option("--cumulative", "-c", help="Running totals instead of per bucket.")
    ] = False,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Impressions, clicks, CTR and conversions per variant per day or hour (no gaps)."""
    from smart_suggest.experiments.timeline import timeline

    with open_db(db) as store:
        tl = timeline(store, exp_ref, bucket=bucket, cumulative=cumulative)
    if json:
        emit_json(tl.to_dict())
        return
    _print_timeline(tl)


def _print_timeline(tl: Timeline) -> None:
    console.print(_exp_title(tl.experiment))
    label = "day" if tl.bucket == "day" else "hour (UTC)"
    table = make_table(
        None,
        [
            label,
            ("A impr", "right"),
            ("A clicks", "right"),
            ("A CTR", "right"),
            ("A conv", "right"),
            ("B impr", "right"),
            ("B clicks", "right"),
            ("B CTR", "right"),
            ("B conv", "right"),
        ],
    )
    a_points, b_points = tl.series("A"), tl.series("B")
    for pa, pb in zip(a_points, b_points, strict=True):
        when = fmt_time(pa.start_ts)
        when = when[:10] if tl.bucket == "day" else when[:13] + "h"
        table.add_row(
            when,
            f"{pa.impressions:,}",
            f"{pa.clicks:,}",
            _pct(pa.ctr, 1),
            f"{pa.conversions:,}",
            f"{pb.impressions:,}",
            f"{pb.clicks:,}",
            _pct(pb.ctr, 1),
            f"{pb.conversions:,}",
        )
    console.print(table)
    mode = "running totals" if tl.cumulative else "per bucket"
    n = len(a_points)
    info(
        f"{n} {tl.bucket}{'' if n == 1 else 's'}, {mode}; "
        "conv = users whose first purchase is in the bucket"
    )


# -- simulation -----------------------------------------------------------------------------
@experiment_app.command("simulate")
def simulate_cmd(
    exp_ref: ExpArg,
    users: Annotated[int, typer.Option("--users", min=1, help="Simulated visitors.")] = 1000,
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="Days, ending now.")] = 7,
    ctr_a: Annotated[float, typer.Option("--ctr-a", help="True CTR of A per impression.")] = 0.30,
    ctr_b: Annotated[float, typer.Option("--ctr-b", help="True CTR of B per impression.")] = 0.42,
    purchase_a: Annotated[
        float, typer.Option("--purchase-a", help="True conversion rate of A (per exposed user).")
    ] = 0.12,
    purchase_b: Annotated[
        float, typer.Option("--purchase-b", help="True conversion rate of B (per exposed user).")
    ] = 0.18,
    engagement_a: Annotated[
        float, typer.Option("--engagement-a", help="Mean engagement seconds of A.")
    ] = 45.0,
    engagement_b: Annotated[
        float, typer.Option("--engagement-b", help="Mean engagement seconds of B.")
    ] = 45.0,
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, max=100, help="Items per visit.")
    ] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same traffic.")] = 42,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Generate traffic through the real assignment and logging path (equal rates: A/A test).

    Visitors are users sim-<experiment id>-1..N (created if missing). Each arrives on a
    random day and may return on later days; each visit shows --count items. All of it is
    written in one transaction.
    """
    from smart_suggest.experiments.simulate import simulate

    with open_db(db) as store, progress_bar(not json) as update:
        report = simulate(
            store,
            exp_ref,
            users=users,
            days=days,
            ctr_a=ctr_a,
            ctr_b=ctr_b,
            purchase_a=purchase_a,
            purchase_b=purchase_b,
            seed=seed,
            progress=update,
            count=count,
            engagement_a=engagement_a,
            engagement_b=engagement_b,
        )
    if json:
        emit_json(report.to_dict())
        return
    ev = report.events
    console.print(
        f"Simulated {report.visitors:,} visitors over {days} days in ",
        safe(report.experiment.name),
        f": {report.enrolled['A']:,} in A, {report.enrolled['B']:,} in B, "
        f"{report.outside:,} outside the traffic; {report.total_events:,} events "
        f"({ev['impression']:,} impressions, {ev['click']:,} clicks, {ev['purchase']:,} purchases, "
        f"{ev['engagement']:,} engagement) in {report.seconds:.1f} s",
        sep="",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(experiment_app, name="experiment")
