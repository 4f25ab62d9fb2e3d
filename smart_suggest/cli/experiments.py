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
    if exp.interleaving:
        return f"{exp.traffic_fraction:.0%} of users, each sees both lists interleaved"
    if len(exp.variants) == 2:
        return f"{exp.traffic_fraction:.0%} of users, {exp.treatment_share:.0%} of them to B"
    total = sum(exp.weights)
    split = " / ".join(f"{v.label} {v.weight / total:.0%}" for v in exp.variants)
    return f"{exp.traffic_fraction:.0%} of users, split {split}"


def _arms(exp: Experiment) -> str:
    """``A = v1, B = v2, C = v3`` (strategy names are user data: escape when printing)."""
    return ", ".join(f"{v.label} = {v.strategy}" for v in exp.variants)


def _parse_weights(text: str | None, option: str = "--weights") -> list[float] | None:
    """A comma-separated list of numbers (one per variant)."""
    from smart_suggest.errors import InputError

    if text is None:
        return None
    out = []
    for part in text.split(","):
        try:
            out.append(float(part.strip()))
        except ValueError:
            raise InputError(f"{option}: {part.strip()[:20]!r} is not a number") from None
    return out


# -- lifecycle --------------------------------------------------------------------------------
@experiment_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Unique experiment name.", show_default=False)],
    control: Annotated[
        str | None,
        typer.Option("--control", "-a", help="Strategy of variant A (control). [default: v1]"),
    ] = None,
    treatment: Annotated[
        str | None,
        typer.Option("--treatment", "-b", help="Strategy of variant B (treatment). [default: v2]"),
    ] = None,
    traffic: Annotated[
        float, typer.Option("--traffic", help="Fraction of users in the experiment, (0, 1].")
    ] = 1.0,
    share: Annotated[
        float | None,
        typer.Option(
            "--share", help="Fraction of enrolled users sent to B, (0, 1). [default: 0.5]"
        ),
    ] = None,
    description: Annotated[str, typer.Option("--description", "-d", help="What it tests.")] = "",
    primary_metric: Annotated[
        str | None,
        typer.Option("--primary-metric", "-m", help="ctr, conversion_rate or engagement."),
    ] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option(
            "--variant",
            help="A strategy per variant, repeated: A (control), B, C, ... (instead of "
            "--control/--treatment/--share).",
            show_default=False,
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            help="Relative traffic per --variant, e.g. 2,1,1 [default: equal].",
            show_default=False,
        ),
    ] = None,
    design: Annotated[
        str,
        typer.Option(
            "--design",
            help="ab (each user sees one variant) or interleaving (each user sees both "
            "lists merged by team draft; two variants only).",
        ),
    ] = "ab",
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Create an experiment between strategies (the same strategy twice: an A/A test).

    Two variants: --control/--treatment/--share. More: --variant v1 --variant v2
    --variant v3 [--weights 2,1,1]; the first is the control. --design interleaving
    compares two rankers on the same users (far fewer users needed).
    """
    from smart_suggest.errors import InputError
    from smart_suggest.experiments.lifecycle import create_experiment

    if variant:
        given = [
            f"--{n}"
            for n, v in (("control", control), ("treatment", treatment), ("share", share))
            if v is not None
        ]
        if given:
            raise InputError(f"give --variant for every variant, or {'/'.join(given)}, not both")
    with open_db(db) as store:
        exp = create_experiment(
            store,
            name,
            control=control or "v1",
            treatment=treatment or "v2",
            traffic_fraction=traffic,
            treatment_share=0.5 if share is None else share,
            description=description,
            primary_metric=primary_metric,
            variants=list(variant) if variant else None,
            weights=_parse_weights(weights),
            design=design,
        )
    if json:
        emit_json(exp.to_dict())
        return
    kind = " (an A/A test)" if exp.is_aa else ""
    what = " interleaving" if exp.interleaving else ""
    console.print(
        f"Created{what} experiment ",
        safe(exp.name),
        f" (id {exp.id}): ",
        safe(_arms(exp)),
        f"{kind}; {_traffic(exp)}",
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
            "variants",
            ("traffic", "right"),
            ("split", "right"),
            ("assigned", "right"),
            "created",
        ],
    )
    # Names and strategies may wrap; dates, counts and splits stay whole (boxed at 80
    # columns, the dates were folded: "2026-1" over "1-25").
    from rich import box

    table.box = box.SIMPLE_HEAD
    table.pad_edge = False
    table.show_edge = False
    table.collapse_padding = True
    for column in table.columns:
        column.no_wrap = column.header not in ("name", "variants")
        column.min_width = 8 if column.header in ("name", "variants") else None
    for e in exps:
        total = sum(e.weights) or 1.0
        split = "/".join(f"{w / total * 100:.0f}" for w in e.weights)
        table.add_row(
            str(e.id),
            safe(e.name, limit=40),
            e.status,
            safe(" / ".join(v.strategy for v in e.variants))
            + (" interleaved" if e.interleaving else ""),
            f"{e.traffic_fraction:.0%}",
            "both" if e.interleaving else split,
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
        labels = ["AB"] if exp.interleaving else list(exp.labels)
        assigned = dict.fromkeys(labels, 0)
        for variant, n in store.conn.execute(
            "SELECT variant, COUNT(*) FROM assignments WHERE experiment_id = ? GROUP BY variant",
            (exp.id,),
        ):
            assigned[str(variant)] = int(n)
        events = {
            v: dict.fromkeys(("impression", "click", "purchase", "engagement"), 0) for v in assigned
        }
        for variant, kind, n in store.conn.execute(
            "SELECT variant, type, SUM(n) FROM event_counts WHERE experiment_id = ? "
            "GROUP BY variant, type",
            (exp.id,),
        ):
            events.setdefault(
                str(variant), dict.fromkeys(("impression", "click", "purchase", "engagement"), 0)
            )[str(kind)] = int(n)
    if json:
        emit_json({**exp.to_dict(), "users_assigned": assigned, "events": events})
        return
    console.print(_exp_title(exp))
    table = make_table(None, ["", "value"])
    table.add_row("description", safe(exp.description or "-"))
    table.add_row("design", "interleaving (team draft)" if exp.interleaving else "A/B")
    for i, v in enumerate(exp.variants):
        role = "control" if i == 0 else "treatment"
        table.add_row(f"variant {v.label} ({role})", safe(v.strategy))
    if exp.is_aa:
        table.add_row("", "every variant serves the same strategy: an A/A test")
    table.add_row("traffic", _traffic(exp))
    table.add_row("primary metric", exp.primary_metric or "-")
    table.add_row("created", fmt_time(exp.created_at))
    table.add_row("stopped", fmt_time(exp.stopped_at))
    table.add_row("users assigned", " / ".join(f"{k} {n:,}" for k, n in assigned.items()))
    for t in ("impression", "click", "purchase", "engagement"):
        table.add_row(f"{t} events", " / ".join(f"{k} {ev[t]:,}" for k, ev in events.items()))
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
    if served.enrolled and served.teams:
        status = "new assignment" if served.new_assignment else "assigned earlier"
        console.print(
            "Interleaved: ",
            safe(_arms(exp)),
            f" (team draft; the team column says whose pick each item is), {status}",
            sep="",
        )
    elif served.enrolled:
        role = "control" if served.variant == "A" else "treatment"
        status = "new assignment" if served.new_assignment else "assigned earlier"
        console.print(
            f"Variant {served.variant} ({role}, strategy ",
            safe(served.strategy),
            f"), {status}",
            sep="",
        )
    else:
        console.print(
            f"Outside the experiment's traffic ({exp.traffic_fraction:.0%}): served control "
            f"({served.strategy}); not assigned, nothing logged"
        )
    columns: list[Any] = [("#", "right"), ("item", "right"), "name", "category", "reason"]
    if served.teams:
        columns.insert(1, "team")
    table = make_table(None, columns)
    for rank, rec in enumerate(served.recommendations, 1):
        it = items.get(rec.item_id)
        row: list[Any] = [
            str(rank),
            str(rec.item_id),
            safe(it.name if it else "?", limit=40),
            safe(it.category if it else "?"),
            safe(rec.reason, limit=60),
        ]
        if served.teams:
            row.insert(1, served.teams[rank - 1])
        table.add_row(*row)
    console.print(table)
    if served.enrolled and served.teams:
        info(f"Logged {served.impressions} impression(s), each with its team.")
    elif served.enrolled:
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
            help="Bulk: a CSV with columns user,item,type[,value][,ts][,team] ('-' = stdin); "
            "all rows or none are logged. team (A, B, both): interleaving only; without it "
            "an impression takes the team of the served list.",
            dir_okay=False,
            allow_dash=True,
        ),
    ] = None,
    unserved: Annotated[
        bool,
        typer.Option(
            "--unserved",
            help="Accept a click or purchase on an item the user was never served in this "
            "experiment (for systems that log exposures elsewhere): kept apart, counted "
            "as unserved, in no KPI. With --file, for the rows that need it.",
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
    reported; a click or purchase needs an impression in the database or in the file.
    """
    from smart_suggest.errors import InputError

    if file is not None:
        if user is not None or item is not None or event_type is not None:
            raise InputError("give USER ITEM TYPE or --file, not both")
        if value is not None or ts is not None:
            raise InputError("--value and --ts apply to one event; in a file use the columns")
        _log_file(exp_ref, file, db, json, unserved)
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
        f" (variant {event.variant}"
        + (f", credited to team {event.team}" if event.team else "")
        + f") on item {event.item_id} in ",
        printable(exp.name),
        f" (event {event.id})",
    )
    if event.unserved:
        say(
            f"Item {event.item_id} was never served to this user here: the {event.type} "
            "is counted apart (unserved), in no KPI."
        )


def _log_file(exp_ref: str, file: Path, db: Path | None, json: bool, unserved: bool) -> None:
    from smart_suggest.csvfiles import stdin_text
    from smart_suggest.experiments.bulk import log_events_csv

    source: Any = stdin_text() if str(file) == "-" else file
    with open_db(db) as store, progress_bar(not json) as update:
        report = log_events_csv(store, exp_ref, source, progress=update, unserved=unserved)
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
    if apart := sum(report.unserved.values()):
        info(
            f"{apart:,} clicks/purchases on items never served were logged apart as unserved "
            f"({report.unserved.get('click', 0):,} clicks, "
            f"{report.unserved.get('purchase', 0):,} purchases): in no KPI"
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
    exp = res.experiment
    console.print(_exp_title(exp))
    if exp.interleaving:
        info("an interleaving experiment: `smart-suggest analyze` gives the credit per team")
    arms = res.variants
    treatments = arms[1:]
    cols: list[Any] = ["metric"] + [(v.variant, "right") for v in arms]
    # Lifts of each treatment over A: two columns when there are two variants, else one
    # relative-lift column per treatment (an 80-column terminal fits four variants).
    two = len(arms) == 2
    if two:
        cols += [("B - A", "right"), ("relative", "right")]
    else:
        cols += [(f"{v.variant} vs A", "right") for v in treatments]
    table = make_table(None, cols)
    for i, v in enumerate(arms, start=1):
        table.columns[i].header = safe(f"{v.variant} ({v.strategy})", limit=16)

    def lifts(metric: str, unit: str) -> list[str]:
        by = res.lifts_by_variant or {"B": res.lifts}
        if two:
            lift = by["B"][metric]
            return [_signed(lift.absolute, unit), _signed(lift.relative, "rel")]
        return [_signed(by[v.variant][metric].relative, "rel") for v in treatments]

    blank = [""] * (2 if two else len(treatments))

    def row(name: str, values: list[str], extra: list[str] | None = None) -> None:
        table.add_row(name, *values, *(extra if extra is not None else blank))

    row("users assigned", [f"{v.users_assigned:,}" for v in arms])
    row("users exposed", [f"{v.users_exposed:,}" for v in arms])
    row("impressions", [f"{v.impressions:,}" for v in arms])
    row("clicks", [f"{v.clicks:,}" for v in arms])
    row("CTR", [_pct(v.ctr) for v in arms], lifts("ctr", "pp"))
    row("users converted", [f"{v.users_converted:,}" for v in arms])
    row("conversion rate", [_pct(v.conversion_rate) for v in arms], lifts("conversion_rate", "pp"))
    row("purchases", [f"{v.purchases:,}" for v in arms])
    row(
        "engagement mean",
        [_num(v.engagement_mean, 1, " s") for v in arms],
        lifts("engagement", "s"),
    )
    row("engagement sd", [_num(v.engagement_sd, 1, " s") for v in arms])
    row("engagement events", [f"{v.engagement_n:,}" for v in arms])
    if res.unserved:
        # Below the KPIs and labelled: they entered none of the rows above.
        for kind in ("click", "purchase"):
            counts = [res.unserved.get(v.variant, {}).get(kind, 0) for v in arms]
            row(f"unserved {kind}s", [f"{n:,}" for n in counts])
    console.print(table)
    if res.unserved:
        info(
            "unserved: clicks and purchases logged with --unserved on items never served to "
            "the user in this experiment; they count in no KPI above"
        )
    span = "no events yet"
    if res.first_event_ts is not None:
        span = (
            f"events from {fmt_time(res.first_event_ts)} to {fmt_time(res.last_event_ts)} "
            f"({res.duration_days:.1f} days)"
        )
    over = "B over A" if two else "each variant over A"
    info(f"{span}; lifts are {over} (descriptive: `smart-suggest analyze` tests them)")


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
    labels = tl.variants
    # Two variants: impressions, clicks, CTR and conversions each; more: CTR and
    # conversions per variant (the table must fit 80 columns).
    fields = ("impr", "clicks", "CTR", "conv") if len(labels) <= 2 else ("CTR", "conv")
    cols: list[Any] = [label] + [(f"{v} {f}", "right") for v in labels for f in fields]
    table = make_table(None, cols)
    # Without vertical rules the two-variant table fits 80 columns whole: boxed, it
    # folded the dates ("2026-1" over "2-02") to make room.
    from rich import box

    table.box = box.SIMPLE_HEAD
    table.pad_edge = False
    table.show_edge = False
    table.collapse_padding = True
    for column in table.columns:
        column.no_wrap = True
    series = [tl.series(v) for v in labels]
    for points in zip(*series, strict=True):
        when = fmt_time(points[0].start_ts)
        # Hours without the year: the 80-column table keeps every count whole.
        when = when[:10] if tl.bucket == "day" else when[5:13] + "h"
        cells = []
        for p in points:
            values = {
                "impr": f"{p.impressions:,}",
                "clicks": f"{p.clicks:,}",
                "CTR": _pct(p.ctr, 1),
                "conv": f"{p.conversions:,}",
            }
            cells += [values[f] for f in fields]
        table.add_row(when, *cells)
    console.print(table)
    mode = "running totals" if tl.cumulative else "per bucket"
    n = len(series[0]) if series else 0
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
    ctr: Annotated[
        str | None,
        typer.Option(
            "--ctr",
            help="One true CTR per variant, e.g. 0.30,0.42,0.45 (A/B/n; flat model).",
            show_default=False,
        ),
    ] = None,
    purchase: Annotated[
        str | None,
        typer.Option("--purchase", help="One conversion rate per variant.", show_default=False),
    ] = None,
    engagement: Annotated[
        str | None,
        typer.Option(
            "--engagement", help="One mean engagement (s) per variant.", show_default=False
        ),
    ] = None,
    click_model: Annotated[
        str,
        typer.Option(
            "--click-model",
            help="flat (each impression clicked at the variant's CTR) or position (users "
            "scan down the list and click by relevance x position; needed for interleaving).",
        ),
    ] = "flat",
    ranker_noise: Annotated[
        str | None,
        typer.Option(
            "--ranker-noise",
            help="Position model: one ranker noise per variant, e.g. 1.0,0.6 (less noise "
            "ranks better) [default: 1.0 each].",
            show_default=False,
        ),
    ] = None,
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
            click_model=click_model.strip().lower(),
            ctr=_parse_weights(ctr, "--ctr"),
            purchase=_parse_weights(purchase, "--purchase"),
            engagement=_parse_weights(engagement, "--engagement"),
            ranker_noise=_parse_weights(ranker_noise, "--ranker-noise"),
        )
    if json:
        emit_json(report.to_dict())
        return
    ev = report.events
    console.print(
        f"Simulated {report.visitors:,} visitors over {days} days in ",
        safe(report.experiment.name),
        ": " + ", ".join(f"{n:,} in {v}" for v, n in report.enrolled.items()) + ", "
        f"{report.outside:,} outside the traffic; {report.total_events:,} events "
        f"({ev['impression']:,} impressions, {ev['click']:,} clicks, {ev['purchase']:,} purchases, "
        f"{ev['engagement']:,} engagement) in {report.seconds:.1f} s",
        sep="",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(experiment_app, name="experiment")
