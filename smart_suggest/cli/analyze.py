"""CLI: ``analyze`` (the statistics of an experiment, with a verdict) and ``power``."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smart_suggest.cli._common import (
    DbOption,
    JsonOption,
    console,
    emit_json,
    err_console,
    info,
    open_db,
    safe,
)

if TYPE_CHECKING:
    from rich.text import Text

    from smart_suggest.analysis import Analysis, MetricAnalysis
else:

    def Text(*args: Any, **kwargs: Any) -> Any:
        # rich loads only when a report is printed, never for --json.
        from rich.text import Text

        return Text(*args, **kwargs)


#: Colour and glyph per verdict (the glyph keeps the meaning under NO_COLOR).
VERDICT_STYLES: dict[str, tuple[str, str]] = {
    "worth_shipping": ("bold green", "✔"),
    "stat_sig_but_small_effect": ("bold yellow", "≈"),
    "promising_but_underpowered": ("bold cyan", "…"),
    "no_effect": ("bold", "∅"),
    "invalid": ("bold red", "✖"),
}

# Kept in step with analysis.FAIL_CONDITIONS (importing it here would load numpy on --help).
_FAIL_HELP = (
    "Exit with a non-zero code when a listed condition holds, so CI can gate on the "
    "result (comma-separated, repeatable). Codes: srm 3 (sample ratio mismatch), invalid 4 "
    "(overall verdict invalid), negative 5 (B significantly worse on some metric), "
    "underpowered 6 (primary not significant and < 80% power for --min-lift), no-win 7 "
    "(verdict is not worth_shipping). When several hold, the lowest code wins; 0 when none "
    "holds; 2 is bad input, 1 another failure."
)

_METRIC_HELP = (
    "Primary metric: ctr, conversion or engagement (default: the experiment's declared "
    "primary metric, else ctr)."
)


def _check_unit(value: float, name: str) -> None:
    from smart_suggest.errors import InputError

    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise InputError(f"{name} must be in (0, 1), got {value:g}")


def _parse_fail_on(values: list[str] | None) -> list[str]:
    if not values:
        return []  # without importing the analysis (and numpy) here
    from smart_suggest.analysis import FAIL_CONDITIONS
    from smart_suggest.errors import InputError

    names: list[str] = []
    for raw in values or []:
        for part in raw.split(","):
            name = part.strip().lower().replace("_", "-")
            if not name:
                continue
            if name == "nowin":
                name = "no-win"
            if name not in FAIL_CONDITIONS:
                raise InputError(
                    f"unknown --fail-on condition {part.strip()[:40]!r}: use "
                    f"{', '.join(FAIL_CONDITIONS)}"
                )
            if name not in names:
                names.append(name)
    return names


METRIC_NAMES = {"ctr": "CTR", "conversion_rate": "conversion rate", "engagement": "engagement"}


# -- formatting --------------------------------------------------------------------------
def _is_rate(metric: str) -> bool:
    return metric in ("ctr", "conversion_rate")


def _value(metric: str, v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 100:.2f}%" if _is_rate(metric) else f"{v:,.2f} s"


def _diff(metric: str, d: float, ci: Any) -> str:
    # The interval goes on a second line so the table fits 80 columns.
    if _is_rate(metric):
        body = f"{d * 100:+.2f} pp"
        return body if ci is None else body + f"\n[{ci.low * 100:+.2f},{ci.high * 100:+.2f}]"
    body = f"{d:+,.2f} s"
    return body if ci is None else body + f"\n[{ci.low:+,.2f},{ci.high:+,.2f}]"


def _lift(rel: float | None, ci: Any) -> str:
    if rel is None:
        return "-"
    body = f"{rel * 100:+.1f}%"
    return body if ci is None else body + f"\n[{ci.low * 100:+.1f},{ci.high * 100:+.1f}]"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


_SHORT_TEST = {
    "delta_method_z": "delta-z",
    "chi_square": "chi-sq",
    "fisher_exact": "Fisher",
    "welch_t": "Welch",
    "none": "none",
}


def _table(title: str | None, columns: list[tuple[str, str]]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        expand=False,
    )
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=justify == "left")  # type: ignore[arg-type]
    return table


def _prob(p: float) -> str:
    if 0 < p < 0.001:
        return "< 0.1%"
    if 0.999 < p < 1:
        return "> 99.9%"
    return f"= {p * 100:.1f}%"


def _pp(x: float) -> str:
    """A rate difference in percentage points."""
    return "< 0.001 pp" if 0 < x * 100 < 0.001 else f"{x * 100:.3g} pp"


def _spp(x: float) -> str:
    """A signed difference of rates in percentage points."""
    return f"{x * 100:+.3g} pp"


def _verdict_text(code: str, headline: str) -> Text:
    style, glyph = VERDICT_STYLES.get(code, ("bold", "?"))
    return Text(f"{glyph} {headline}", style=style)


def _metric_rows(m: MetricAnalysis) -> list[list[Any]]:
    name = {"ctr": "CTR", "conversion_rate": "Conversion", "engagement": "Engagement"}[m.metric]
    test = "mSPRT" if m.sequential is not None else _SHORT_TEST.get(m.test, m.test)
    if m.adjustment == "cuped" and m.sequential is None:
        test = "CUPED-z"
    if m.p_value_adjusted is not None:
        test += "\N{DAGGER}"
    rows = [
        [
            Text(name, style="bold" if m.role == "primary" else ""),
            _value(m.metric, m.value_a),
            _value(m.metric, m.value_b),
            _diff(m.metric, m.diff, m.ci),
            _lift(m.relative_lift, m.relative_lift_ci),
            Text(_p(m.p_value), style="bold" if m.significant else ""),
            test,
        ]
    ]
    pi = m.per_impression
    if pi is not None:
        dim = [
            "CTR/impr.*",
            _value("ctr", pi.rate_a if pi.n_a else None),
            _value("ctr", pi.rate_b if pi.n_b else None),
            _diff("ctr", pi.diff, pi.diff_ci),
            _lift(pi.relative_lift, pi.relative_lift_ci),
            _p(pi.p_value),
            _SHORT_TEST.get(pi.test, pi.test),
        ]
        rows.append([Text(c, style="dim") for c in dim])
    return rows


def _render(an: Analysis) -> None:
    exp = an.experiment
    title = Text("Experiment ", style="bold")
    if exp.id is not None:
        title.append(f"{exp.id} ", style="bold")
    title.append_text(safe(exp.name, limit=80, style="bold"))
    console.print(title)
    bits = Text("A = ")
    bits.append_text(safe(exp.control, limit=40))
    bits.append(" (control), B = ")
    bits.append_text(safe(exp.treatment, limit=40))
    bits.append(" (treatment)")
    if exp.status:
        bits.append(f"; {exp.status}")
    if exp.days_run is not None:
        bits.append(f", {exp.days_run:.1f} days")
    split = f"{(1 - exp.treatment_share) * 100:.3g}/{exp.treatment_share * 100:.3g}"
    bits.append(f"; split {split}; alpha {an.alpha:g}; min lift {an.min_lift * 100:.3g}%")
    bits.append(f"; primary metric {an.primary_metric}")
    bits.append(" (declared)" if an.primary_declared else " (default)")
    if an.mode == "sequential":
        bits.append("; sequential (always-valid) mode")
    elif an.mode == "group_sequential":
        bits.append("; group-sequential mode")
    console.print(bits)

    kpi = _table(
        None,
        [
            ("Variant", "left"),
            ("Assigned", "right"),
            ("Exposed", "right"),
            ("Impressions", "right"),
            ("Clicks", "right"),
            ("Converted", "right"),
            ("Engagements", "right"),
        ],
    )
    for key in ("A", "B"):
        k = an.variants[key]
        label = Text(f"{key} ")
        label.append_text(safe(k.strategy, limit=20))
        kpi.add_row(
            label,
            f"{k.users_assigned:,}",
            f"{k.users_exposed:,}",
            f"{k.impressions:,}",
            f"{k.clicks:,}",
            f"{k.users_converted:,}",
            f"{k.engagement_n:,}",
        )
    console.print(kpi)
    console.print()

    table = _table(
        f"Tests, B vs A (primary metric: {METRIC_NAMES[an.primary_metric]})",
        [
            ("Metric", "left"),
            ("A", "right"),
            ("B", "right"),
            ("Diff [CI]", "right"),
            ("Lift [CI]", "right"),
            ("p", "right"),
            ("Test", "left"),
        ],
    )
    for m in an.metrics:
        for row in _metric_rows(m):
            table.add_row(*row)
    console.print(table)
    ci_level = f"{(1 - an.alpha) * 100:.3g}%"
    foot = (
        f"{ci_level} intervals; pp = percentage points. CTR: per exposed user (delta "
        "method). *Per impression: assumes independent impressions (over-confident; not "
        "used for the verdict)."
    )
    if an.holm_metrics:
        foot += " \N{DAGGER} Holm-adjusted p (secondary metric)."
        adjusted = next((m.ci_note for m in an.metrics if m.ci_note), "")
        if adjusted:
            level = f"{(1 - an.alpha / len(an.holm_metrics)) * 100:.3g}%"
            foot += f" Secondary metrics' intervals are Bonferroni {level}, matching Holm."
    if an.mode == "sequential":
        foot += " mSPRT: always-valid p-values and confidence sequences."
    elif an.mode == "group_sequential":
        foot += (
            f" Primary metric: group-sequential p on the look's boundary scale (< {an.alpha:g} "
            "exactly when crossed) and repeated CI."
        )
    console.print(Text(foot, style="dim"))
    console.print()

    from rich.table import Table

    facts = Table.grid(padding=(0, 1))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row(
        "Sample ratio", Text(an.srm_message, style="bold red" if an.srm_flagged else "green")
    )
    for m in an.metrics:
        views = [(m.bayes, m.bayes_label), (m.bayes_per_impression, m.bayes_per_impression_label)]
        for bz, view in views:
            if bz is None:
                continue
            prior = "flat prior" if bz.method == "normal_posterior" else "Beta(1, 1) priors"
            facts.add_row(
                "Bayesian",
                Text(
                    f"{view}: P(B > A) {_prob(bz.prob_b_better)}, expected loss of "
                    f"shipping B {_pp(bz.expected_loss_b)}, of keeping A "
                    f"{_pp(bz.expected_loss_a)} ({prior})",
                    style="dim" if view == m.bayes_per_impression_label else "",
                ),
            )
    if an.group is not None:
        g = an.group
        style = {"reject": "green", "continue": "yellow"}.get(g.status, "dim")
        facts.add_row("Group-seq.", Text(g.message, style=style))
    if an.sequential is not None:
        seq = an.sequential
        style = {"significant": "green", "keep running": "yellow"}.get(seq.status, "dim")
        text = Text(seq.message, style=style)
        if seq.tau2 is not None:
            text.append(
                f" {seq.tau2_basis}; a real deployment fixes tau^2 before the start.",
                style="dim",
            )
        facts.add_row("Sequential", text)
    if an.tails is not None:
        facts.add_row("Tails", Text(an.tails.message, style="yellow" if an.tails.heavy else ""))
        boot = an.tails.bootstrap
        if boot is not None:
            level = f"{boot.ci.level * 100:.3g}%"
            delta = an.tails.delta_ci
            versus = (
                "" if delta is None else f" (delta method {_spp(delta.low)} to {_spp(delta.high)})"
            )
            facts.add_row(
                "Bootstrap",
                f"CTR difference {level} interval {_spp(boot.ci.low)} to {_spp(boot.ci.high)}"
                f"{versus}; {boot.resamples:,} user resamples, seed {boot.seed}",
            )
    facts.add_row("Power", an.power.message)
    trend = an.novelty.trend
    warn = trend is not None and (trend.shrinking or trend.too_short)
    facts.add_row("Novelty", Text(an.novelty.message, style="yellow" if warn else ""))
    console.print(facts)
    console.print()

    for m in an.metrics:
        head = Text(f"{m.label} ({m.role}): ", style="bold")
        head.append_text(_verdict_text(m.verdict, m.headline))
        console.print(head)
        console.print(safe(m.summary))
        console.print()
    overall = Text("Overall verdict: ", style="bold")
    overall.append_text(_verdict_text(an.verdict, an.headline))
    overall.append(f" (the primary metric, {an.primary_metric})")
    console.print(overall)
    for w in an.warnings:
        console.print(Text(f"Warning: {w}", style="yellow"))


# -- commands ----------------------------------------------------------------------------
def analyze(
    experiment: Annotated[
        str | None,
        typer.Argument(help="Experiment id or name.", show_default=False),
    ] = None,
    db: DbOption = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level, in (0, 1).")] = 0.05,
    metric: Annotated[str | None, typer.Option("--metric", help=_METRIC_HELP)] = None,
    sequential: Annotated[
        str | None,
        typer.Option(
            "--sequential",
            help="Sequential testing. msprt (also plain --sequential): always-valid p-values "
            "and intervals, safe to look at any time. group: group-sequential test with "
            "alpha spending over planned looks (--looks, --spending, --planned-users; "
            "--record-look stores a look).",
            metavar="msprt|group",
            show_default=False,
        ),
    ] = None,
    looks: Annotated[
        int | None,
        typer.Option(
            "--looks", help="--sequential group: planned number of looks.", show_default="14"
        ),
    ] = None,
    spending: Annotated[
        str | None,
        typer.Option(
            "--spending",
            help="--sequential group: alpha spending function, obf (O'Brien-Fleming type) or "
            "pocock.",
            show_default="obf",
        ),
    ] = None,
    planned_users: Annotated[
        int | None,
        typer.Option(
            "--planned-users",
            help="Planned size per variant, in the primary metric's unit (default: the sample "
            "size for --min-lift). Sets the group-sequential information fractions; with "
            "msprt, tunes tau^2 for the most power at that size.",
            show_default=False,
        ),
    ] = None,
    record_look: Annotated[
        bool,
        typer.Option(
            "--record-look",
            help="--sequential group: record this look in the database (without it the look "
            "is a preview).",
        ),
    ] = False,
    min_lift: Annotated[
        float,
        typer.Option("--min-lift", help="Practical threshold: relative lift worth shipping."),
    ] = 0.05,
    json: JsonOption = False,
    fail_on: Annotated[
        list[str] | None,
        typer.Option("--fail-on", help=_FAIL_HELP, metavar="COND[,COND]"),
    ] = None,
    summary: Annotated[
        Path | None,
        typer.Option(
            "--summary",
            help="Analyse per-variant sufficient statistics from a CSV or JSON file ('-' = "
            "stdin) instead of the database; columns as printed by --print-sql.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    print_sql_flag: Annotated[
        bool,
        typer.Option(
            "--print-sql",
            help="Print the standard SQL computing those statistics from an events table.",
        ),
    ] = False,
    no_cuped: Annotated[
        bool,
        typer.Option(
            "--no-cuped",
            help="Do not adjust CTR and conversion with the 14-day pre-period (CUPED runs "
            "by default when users have pre-period data).",
        ),
    ] = False,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Compute the statistics inside another SQL engine: a Parquet/CSV/JSON file or "
            "folder of events (DuckDB), duckdb:///FILE, or a SQLAlchemy URL such as "
            "postgresql://user@host/db. EXPERIMENT is then its id in that engine.",
            show_default=False,
        ),
    ] = None,
    assignments: Annotated[
        str | None,
        typer.Option(
            "--assignments",
            help="With a file --source: the assignments file (default: assignments.* beside "
            "the events).",
            show_default=False,
        ),
    ] = None,
    events_table: Annotated[
        str | None,
        typer.Option("--events-table", help="Name of the events table in --source / the SQL."),
    ] = None,
    assignments_table: Annotated[
        str | None,
        typer.Option(
            "--assignments-table", help="Name of the assignments table in --source / the SQL."
        ),
    ] = None,
    users_table: Annotated[
        str | None,
        typer.Option(
            "--users-table",
            help="Name of the users table (id, created_at) in --source / the SQL, for CUPED.",
        ),
    ] = None,
    interactions_table: Annotated[
        str | None,
        typer.Option(
            "--interactions-table",
            help="Name of the interactions table (user_id, ts) in --source / the SQL, for CUPED.",
        ),
    ] = None,
    share: Annotated[
        float,
        typer.Option("--share", help="With --source: the configured share of variant B."),
    ] = 0.5,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            help="With --source and more than two variants: their weights, e.g. 2,1,1 "
            "(default equal).",
            show_default=False,
        ),
    ] = None,
    bootstrap: Annotated[
        bool,
        typer.Option(
            "--bootstrap",
            help="Add a user-level cluster bootstrap interval of the CTR difference next to "
            "the delta-method one (local database only: needs per-user data).",
        ),
    ] = False,
    resamples: Annotated[
        int | None,
        typer.Option(
            "--resamples", help="With --bootstrap: resamples, >= 2000.", show_default="2000"
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="With --bootstrap: random seed (fixed by default: the same data give the "
            "same interval).",
            show_default="20240601",
        ),
    ] = None,
    dialect: Annotated[
        str | None,
        typer.Option(
            "--dialect",
            help="With --print-sql: the SQL dialect (sqlite, duckdb, postgres, bigquery, "
            "snowflake, trino, spark, mysql).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Analyse an experiment: tests per metric, SRM, Bayes, power, novelty and a verdict.

    Headline CTR test is per exposed user (delta method); conversion uses chi-square or
    Fisher's exact; engagement Welch's t. Secondary metrics are Holm-adjusted. Verdicts:
    worth_shipping, stat_sig_but_small_effect, promising_but_underpowered, no_effect,
    invalid (sample ratio mismatch). --summary FILE needs the columns variant,
    users_assigned, users_exposed, impressions, clicks, users_converted, purchases,
    engagement_n, engagement_sum, engagement_sumsq, n_users, sum_clicks, sum_impressions,
    sum_clicks_sq, sum_impressions_sq, sum_clicks_x_impressions (optional:
    treatment_share or weight, days, and the cov_* CUPED columns of --print-sql), one row
    per variant: A, B, C, ... Experiments with more than two variants compare each with A
    (Holm across the comparisons); interleaving experiments test the users' preference
    between the teams. With pre-period data, CUPED adjusts CTR and conversion and the
    adjusted tests decide the verdicts (--no-cuped: the unadjusted ones).
    """
    from smart_suggest.errors import InputError

    named = (
        ("events", events_table),
        ("assignments", assignments_table),
        ("users", users_table),
        ("interactions", interactions_table),
    )
    tables = {k: v for k, v in named if v}
    if print_sql_flag:
        if experiment is not None or summary is not None or source is not None:
            raise InputError(
                "--print-sql prints the generic SQL: give no experiment, --summary or "
                "--source (bind experiment_id yourself)"
            )
        from smart_suggest import analysis as core
        from smart_suggest.analysis.sql import dialect_name

        chosen = dialect_name(dialect or "sqlite")
        sql = core.print_sql(chosen, tables or None, covariates=True)
        if json:
            from smart_suggest.analysis.cuped import COVARIATE_COLUMNS

            emit_json(
                {
                    "sql": sql,
                    "dialect": chosen,
                    "parameters": ["experiment_id"],
                    "columns": list(core.SUMMARY_COLUMNS),
                    "cuped_columns": list(COVARIATE_COLUMNS),
                }
            )
        else:
            from smart_suggest.termsafe import stdout

            # Table names given by the user are in the SQL: escaped on a terminal only.
            stdout().text(sql if sql.endswith("\n") else sql + "\n")
        return
    _check_unit(alpha, "alpha")
    if not (math.isfinite(min_lift) and min_lift >= 0):
        raise InputError(f"--min-lift must be >= 0 (0.05 = +5%), got {min_lift:g}")
    if metric is not None:
        from smart_suggest.experiments.lifecycle import check_metric

        check_metric(metric)
    if dialect is not None:
        raise InputError("--dialect goes with --print-sql (--source picks its own dialect)")
    conditions = _parse_fail_on(fail_on)
    if summary is not None and experiment is not None:
        raise InputError("give either an experiment or --summary FILE, not both")
    if summary is not None and source is not None:
        raise InputError("give either --summary FILE or --source, not both")
    if summary is None and experiment is None:
        raise InputError("missing experiment: give an id or name (or --summary FILE, --print-sql)")
    if source is None and (assignments or tables or share != 0.5 or weights is not None):
        raise InputError(
            "--assignments, the --*-table options, --share and --weights go with --source"
        )
    split = _parse_weights(weights) if weights is not None else None
    if split is not None and share != 0.5:
        raise InputError("give either --share (two variants) or --weights, not both")

    if not bootstrap and (resamples is not None or seed is not None):
        raise InputError("--resamples and --seed go with --bootstrap")
    if bootstrap and (summary is not None or source is not None):
        from smart_suggest.analysis.tails import NEEDS_USERS

        raise InputError(NEEDS_USERS)
    if bootstrap:
        from smart_suggest.analysis.tails import check_options
        from smart_suggest.stats.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED

        check_options(
            DEFAULT_RESAMPLES if resamples is None else resamples,
            DEFAULT_SEED if seed is None else seed,
        )

    if sequential not in (None, "msprt", "group"):
        raise InputError(f"--sequential must be msprt or group, got {sequential!r}")
    group = None
    if sequential == "group":
        from smart_suggest.analysis.groupseq import GroupDesign

        if summary is not None or source is not None:
            raise InputError(
                "--sequential group records its looks in the local database: not with "
                "--summary or --source"
            )
        group = GroupDesign(looks=looks, spending=spending, record=record_look)
    elif looks is not None or spending is not None or record_look:
        raise InputError("--looks, --spending and --record-look go with --sequential group")
    elif planned_users is not None and sequential is None:
        raise InputError("--planned-users goes with --sequential msprt or group")
    msprt = sequential == "msprt"

    source_info: dict[str, Any] | None = None
    unserved: dict[str, Any] | None = None
    if source is not None:
        from smart_suggest import analysis as core

        assert experiment is not None
        result, source_info = core.analyze_source(
            source,
            experiment,
            assignments=assignments,
            events_table=events_table,
            assignments_table=assignments_table,
            users_table=users_table,
            interactions_table=interactions_table,
            treatment_share=share,
            weights=split,
            alpha=alpha,
            metric=metric,
            sequential=msprt,
            min_lift=min_lift,
            planned_units=planned_users,
            cuped=not no_cuped,
        )
        if hasattr(result, "comparisons"):
            data = result.to_dict()
            data["source"] = source_info
            note = str(source_info.get("cuped_note") or "")
            _finish_other(result, data, _multi_fails(result), conditions, json, note)
            return
    elif summary is not None:
        from smart_suggest import analysis as core

        rows = core.load_summary(summary)
        source = "stdin" if str(summary) == "-" else str(summary)
        result = core.analyze_summary(
            rows,
            alpha=alpha,
            metric=metric,
            sequential=msprt,
            min_lift=min_lift,
            planned_units=planned_users,
            name="stdin" if source == "stdin" else Path(source).name,
            source=source,
            cuped=not no_cuped,
        )
        if hasattr(result, "comparisons"):
            _finish_other(result, result.to_dict(), _multi_fails(result), conditions, json)
            return
    else:
        from smart_suggest.cli._common import BackgroundImport, progress_bar
        from smart_suggest.experiments.lifecycle import get_experiment
        from smart_suggest.experiments.reads import read_experiment

        assert experiment is not None
        show = not json and err_console.is_terminal
        with open_db(db) as store, progress_bar(show) as update:
            # The statistics load while the queries run (everything used meanwhile is
            # imported by now, before the thread starts).
            loading = BackgroundImport("smart_suggest.analysis")
            with store.read():  # one snapshot for the reads here and the analysis's own
                try:
                    exp = get_experiment(store, experiment)
                    # A/B without group-sequential looks (which record a look: a write).
                    simple = group is None and not exp.interleaving and len(exp.variants) <= 2
                    reads = (
                        read_experiment(store, exp, covariates=not no_cuped, step=update)
                        if simple
                        else None
                    )
                finally:
                    loading.join()
                from smart_suggest import analysis as core
                from smart_suggest.stats.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED

                # The two-variant analysis, inside this read snapshot when its reads were
                # made here, else below once the other designs are ruled out.
                analyze_ab = partial(
                    core.analyze,
                    alpha=alpha,
                    metric=metric,
                    sequential=msprt,
                    min_lift=min_lift,
                    progress=update,
                    group=group,
                    planned_units=planned_users,
                    bootstrap=bootstrap,
                    resamples=DEFAULT_RESAMPLES if resamples is None else resamples,
                    seed=DEFAULT_SEED if seed is None else seed,
                    cuped=not no_cuped,
                )
                if reads is not None:
                    result = analyze_ab(store, exp, reads=reads)
            if (group is not None or bootstrap) and (exp.interleaving or len(exp.variants) > 2):
                raise InputError(
                    "--sequential group and --bootstrap are for two-variant A/B experiments"
                )
            if exp.interleaving:
                from smart_suggest.analysis.interleaving import analyze_interleaving

                inter = analyze_interleaving(store, exp, alpha=alpha, sequential=msprt)
                _finish_other(inter, inter.to_dict(), _interleaving_fails(inter), conditions, json)
                return
            if len(exp.variants) > 2:
                from smart_suggest.analysis.multiarm import analyze_multi

                multi = analyze_multi(
                    store,
                    exp,
                    alpha=alpha,
                    metric=metric,
                    sequential=msprt,
                    min_lift=min_lift,
                    progress=update,
                    cuped=not no_cuped,
                )
                data = multi.to_dict()
                if unserved := _unserved(store, exp.id):
                    data["unserved"] = unserved
                if not json and unserved:
                    _say_unserved(unserved)  # stderr: before a --fail-on exit can happen
                _finish_other(multi, data, _multi_fails(multi), conditions, json)
                return
            if reads is None:
                result = analyze_ab(store, exp)
            unserved = _unserved(store, exp.id)
    cuped_summary = result.cuped

    held = core.fail_conditions(result)
    holding = [c for c in conditions if held[c]]
    code = min((core.FAIL_CONDITIONS[c][0] for c in holding), default=0)
    if json:
        data = result.to_dict()
        data["cuped"] = None if cuped_summary is None else cuped_summary.to_dict()
        if source_info is not None:
            data["source"] = source_info
        if conditions:
            data["fail_on"] = {"conditions": conditions, "holding": holding, "exit_code": code}
        if unserved:
            data["unserved"] = unserved
        emit_json(data)
    else:
        _render(result)
        if cuped_summary is not None:
            _render_cuped(cuped_summary, result.mode)
        elif source_info is not None and source_info.get("cuped_note"):
            # The note quotes the engine's message (table names given by the user).
            console.print(safe(f"CUPED: not applied ({source_info['cuped_note']})", style="dim"))
        if unserved:
            _say_unserved(unserved)
    _exit(holding, code)


def _unserved(store: Any, experiment_id: int) -> dict[str, Any] | None:
    """The follow-ups logged with --unserved (kept out of every test), or None."""
    from smart_suggest.experiments.kpis import unserved_counts

    per = unserved_counts(store, experiment_id)
    if not per:
        return None
    return {
        "click": sum(v.get("click", 0) for v in per.values()),
        "purchase": sum(v.get("purchase", 0) for v in per.values()),
        "variants": per,
        "note": "logged with --unserved on items never served to the user here: in no metric",
    }


def _say_unserved(unserved: dict[str, Any]) -> None:
    info(
        f"not analysed: {unserved['click']:,} clicks and {unserved['purchase']:,} purchases "
        "logged with --unserved on items never served to the user in this experiment"
    )


def _exit(holding: list[str], code: int) -> None:
    if code:
        err_console.print(
            f"smart-suggest: --fail-on: {', '.join(holding)} "
            f"{'holds' if len(holding) == 1 else 'hold'} (exit {code})"
        )
        raise typer.Exit(code)


def _parse_weights(text: str) -> list[float]:
    from smart_suggest.errors import InputError

    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise InputError(
            f"--weights must be numbers separated by commas, got {text[:40]!r}"
        ) from None
    if len(values) < 2 or not all(math.isfinite(v) and v > 0 for v in values):
        raise InputError("--weights needs two or more positive numbers, e.g. 2,1,1")
    return values


def _multi_fails(multi: Any) -> dict[str, bool]:
    from smart_suggest.analysis.common import POWER_TARGET

    comps = multi.comparisons
    return {
        "srm": bool(multi.srm.flagged),
        "invalid": multi.verdict == "invalid",
        "negative": any(
            m.significant and m.direction == "worse" for c in comps for m in c.analysis.metrics
        ),
        "underpowered": all(
            (not c.analysis.primary.significant) and c.analysis.primary.power < POWER_TARGET
            for c in comps
        ),
        "no-win": multi.verdict != "ship",
    }


def _interleaving_fails(inter: Any) -> dict[str, bool]:
    v = inter.verdict
    return {
        "srm": False,
        "invalid": False,
        "negative": v == "a_preferred",
        "underpowered": v == "insufficient_data",
        "no-win": v != "b_preferred",
    }


def _finish_other(
    result: Any,
    data: dict[str, Any],
    held: dict[str, bool],
    conditions: list[str],
    json: bool,
    cuped_note: str = "",
) -> None:
    from smart_suggest import analysis as core

    holding = [c for c in conditions if held[c]]
    code = min((core.FAIL_CONDITIONS[c][0] for c in holding), default=0)
    if json:
        if conditions:
            data["fail_on"] = {"conditions": conditions, "holding": holding, "exit_code": code}
        emit_json(data)
    elif hasattr(result, "comparisons"):
        _render_multi(result)
        if cuped_note:
            console.print(safe(f"CUPED: not applied ({cuped_note})", style="dim"))
    else:
        _render_interleaving(result)
    _exit(holding, code)


_REC_STYLES = {"ship": ("bold green", "✔"), "keep": ("bold", "∅"), "invalid": ("bold red", "✖")}


def _render_multi(m: Any) -> None:
    title = Text(f"{METRIC_NAMES.get(m.primary_metric, m.primary_metric)} (primary), ")
    title.append(f"{len(m.variants)} variants: ")
    style, glyph = _REC_STYLES.get(m.recommendation.action, ("bold", "?"))
    title.append(f"{glyph} {m.recommendation.text}", style=style)
    console.print(title)
    console.print(Text(m.recommendation.reason, style="dim"))
    table = _table(
        None,
        [
            ("variant", "left"),
            ("value", "right"),
            ("vs A", "right"),
            ("p Holm", "right"),
            ("P(best)", "right"),
            ("verdict", "left"),
        ],
    )
    best = dict(zip(m.prob_best.labels, m.prob_best.probabilities, strict=True))
    by_label = {c.label: c for c in m.comparisons}
    for v in m.variants:
        c = by_label.get(v.variant)
        name = safe(f"{v.variant} ({v.strategy})", limit=20)
        if c is None:
            value = v.metric(m.primary_metric)
            table.add_row(
                name,
                _value(m.primary_metric, value),
                "control",
                "-",
                _prob(best.get(v.variant, 0.0)),
                "",
            )
            continue
        pm = c.analysis.primary
        style, glyph = VERDICT_STYLES.get(c.verdict, ("bold", "?"))
        table.add_row(
            name,
            _value(m.primary_metric, pm.value_b),
            _diff(m.primary_metric, pm.diff, None),
            _p(c.p_value_holm),
            _prob(best.get(v.variant, 0.0)),
            Text(f"{glyph} {c.verdict}", style=style),
        )
    console.print(table)
    for c in m.comparisons:
        console.print(Text(f"{c.label} vs A: ", style="bold") + Text(c.analysis.primary.summary))
    srm = m.srm
    console.print(
        Text(
            f"Sample ratio ({len(m.variants)}-category chi-square, df {srm.df}): "
            f"{'MISMATCH' if srm.flagged else 'ok'} (p = {srm.p_value:.3g})",
            style="bold red" if srm.flagged else "",
        )
    )
    console.print(
        Text(
            f"Each treatment vs A; p-values Holm-adjusted across the {len(m.comparisons)} "
            f"comparisons (family-wise alpha {m.alpha:g}); intervals at each comparison's "
            f"Holm level. P(best): {m.prob_best_label}.",
            style="dim",
        )
    )
    if m.cuped is not None:
        _render_cuped(m.cuped, m.mode)
    for w in m.warnings:
        err_console.print(Text("warning: " + w, style="yellow"))


def _render_interleaving(r: Any) -> None:
    res = r.result
    styles = {
        "b_preferred": ("bold green", "✔"),
        "a_preferred": ("bold red", "✖"),
        "no_preference": ("bold", "∅"),
        "insufficient_data": ("bold cyan", "…"),
    }
    style, glyph = styles.get(res.verdict, ("bold", "?"))
    a, b = r.strategies
    head = Text("Interleaving ")
    head.append_text(safe(f"A = {a}, B = {b}"))
    head.append(": ")
    head.append(f"{glyph} {res.verdict}", style=style)
    console.print(head)
    console.print(Text(res.text))
    table = _table(None, [("", "left"), ("A", "right"), ("B", "right"), ("both", "right")])
    for what in ("impressions", "clicks", "purchases"):
        t = r.teams[what]
        table.add_row(what, f"{t['A']:,}", f"{t['B']:,}", f"{t['both']:,}")
    console.print(table)
    share = "-" if res.share_b is None else f"{res.share_b * 100:.1f}%"
    ci = res.sequential_share_ci if res.sequential is not None else res.share_ci
    ci_text = "" if ci is None else f" [{ci.low * 100:.1f}%, {ci.high * 100:.1f}%]"
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column()
    grid.add_row(
        "users",
        f"{res.users:,} ({res.prefer_b:,} prefer B, {res.prefer_a:,} prefer A, "
        f"{res.ties:,} no preference)",
    )
    grid.add_row("share preferring B", share + ci_text)
    grid.add_row(
        "p-value",
        _p(res.sequential.p_value if res.sequential else res.p_value)
        + (" (always-valid)" if res.sequential else " (exact binomial)"),
    )
    if res.mean_diff is not None:
        mci = res.mean_diff_ci
        grid.add_row(
            "credit B - A per user",
            f"{res.mean_diff:+.4f}"
            + ("" if mci is None else f" [{mci.low:+.4f}, {mci.high:+.4f}]"),
        )
    console.print(grid)


def _render_cuped(c: Any, mode: str) -> None:
    if not c.applied:
        console.print(Text(f"CUPED: not applied ({c.note})", style="dim"))
        return
    console.print(
        Text(
            f"CUPED (pre-period: {c.pre_period_days} days before assignment; "
            f"{c.users_with_pre_period:,} of {c.users:,} users have one)",
            style="bold",
        )
    )
    table = _table(
        None,
        [
            ("metric", "left"),
            ("vs A", "left"),
            ("unadjusted", "right"),
            ("CUPED", "right"),
            ("CI narrower", "right"),
        ],
    )
    for metric, res in c.results.items():
        for comp in res.comparisons:
            if comp.diff is None:
                continue
            table.add_row(
                METRIC_NAMES.get(metric, metric),
                comp.label,
                _diff(metric, comp.diff, comp.ci),
                _diff(metric, comp.adjusted_diff, comp.adjusted_ci),
                "-" if comp.ci_narrower_by is None else f"{comp.ci_narrower_by * 100:.0f}%",
            )
    console.print(table)
    if mode == "fixed_horizon":
        why = (
            "The verdicts of CTR and conversion use the CUPED-adjusted test "
            "(--no-cuped: the unadjusted one)."
        )
    else:
        why = "Shown for information: the sequential verdict uses the unadjusted test."
    console.print(Text(why, style="dim"))


def power(
    baseline: Annotated[
        float,
        typer.Option(
            "--baseline", help="Baseline rate of the control, e.g. 0.12.", show_default=False
        ),
    ],
    mde: Annotated[
        float | None,
        typer.Option(
            "--mde",
            help="Minimum detectable effect: absolute (0.02 = +2 points) unless --relative.",
            show_default=False,
        ),
    ] = None,
    relative: Annotated[
        bool, typer.Option("--relative", help="--mde is relative (0.1 = +10% of baseline).")
    ] = False,
    alpha: Annotated[float, typer.Option("--alpha", help="Two-sided significance level.")] = 0.05,
    power_: Annotated[float, typer.Option("--power", help="Power to reach, in (0, 1).")] = 0.8,
    daily_users: Annotated[
        float | None,
        typer.Option(
            "--daily-users",
            help="Eligible users per day, for the expected duration.",
            show_default=False,
        ),
    ] = None,
    traffic: Annotated[
        float, typer.Option("--traffic", help="Traffic fraction in the experiment, (0, 1].")
    ] = 1.0,
    n: Annotated[
        int | None,
        typer.Option(
            "--n", help="Users per variant: print the MDE reachable with N.", show_default=False
        ),
    ] = None,
    arms: Annotated[
        int,
        typer.Option(
            "--arms",
            min=2,
            max=26,
            help="Variants in the experiment (control included): each treatment is tested "
            "against A at alpha / (arms - 1), which Holm's correction never undercuts.",
        ),
    ] = 2,
    json: JsonOption = False,
) -> None:
    """Sample size per variant to detect a change in a rate (and the expected duration).

    Two-sided test of two proportions, equal arms, Fleiss formula without continuity
    correction. With --n N: the smallest upward effect detectable with N users per variant.
    With --arms K (K > 2): every comparison with the control is planned at the Bonferroni
    level alpha / (K - 1) and the total is K x the users per variant.
    """
    from smart_suggest import stats
    from smart_suggest.errors import InputError

    _check_unit(baseline, "--baseline")
    _check_unit(alpha, "--alpha")
    _check_unit(power_, "--power")
    if mde is None and n is None:
        raise InputError("give --mde (sample size) and/or --n (detectable effect)")
    if mde is not None and not (math.isfinite(mde) and mde != 0):
        raise InputError(f"--mde must be a non-zero number, got {mde:g}")
    if not (math.isfinite(traffic) and 0 < traffic <= 1):
        raise InputError(f"--traffic must be in (0, 1], got {traffic:g}")
    if daily_users is not None and not (math.isfinite(daily_users) and daily_users > 0):
        raise InputError(f"--daily-users must be a number > 0, got {daily_users:g}")
    if n is not None and n < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    from smart_suggest.stats.multiarm import k_arm_sample_size

    level = alpha / (arms - 1)  # per comparison (Bonferroni = Holm's first step)
    try:
        size = (
            k_arm_sample_size(baseline, mde, arms, relative=relative, alpha=alpha, power=power_)
            if mde is not None
            else None
        )
        reach = (
            stats.mde_proportions(baseline, n, alpha=level, power=power_) if n is not None else None
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None

    def duration(per_variant: int) -> Any:
        if daily_users is None:
            return None
        return stats.expected_duration(per_variant, daily_users, traffic_fraction=traffic)

    dur = duration(size.n_per_variant) if size is not None else None
    dur_n = duration(n) if n is not None else None
    if json:
        emit_json(
            {
                "baseline": baseline,
                "alpha": alpha,
                "arms": arms,
                "alpha_per_comparison": level,
                "power": power_,
                "sample_size": size.to_dict() if size else None,
                "mde": reach.to_dict() if reach else None,
                "daily_users": daily_users,
                "traffic_fraction": traffic,
                "duration": dur.to_dict() if dur is not None else None,
                "duration_n": dur_n.to_dict() if dur_n is not None else None,
            }
        )
        return
    from rich.table import Table

    what = (
        f"alpha {alpha:g}"
        if arms == 2
        else f"{arms} variants, alpha {alpha:g} / {arms - 1} = {level:.4g} per comparison with A"
    )
    console.print(
        Text(f"Two-sided test of two proportions, {what}, power {power_ * 100:.3g}%", style="bold")
    )
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column()
    table.add_row("Baseline rate", f"{baseline * 100:.4g}%")
    if size is not None:
        rel = size.mde_relative or 0.0
        table.add_row(
            "Minimum detectable effect",
            f"{size.mde_absolute * 100:+.4g} pp ({rel * 100:+.3g}% relative) -> "
            f"{(size.target or 0) * 100:.4g}%",
        )
        table.add_row("Users per variant", Text(f"{size.n_per_variant:,}", style="bold"))
        table.add_row(
            "Users in total", f"{size.n_total:,}" + ("" if arms == 2 else f" ({arms} variants)")
        )
        if dur is not None:
            table.add_row(
                "Expected duration",
                _days(dur.days)
                + f" at {daily_users:,.3g} eligible users/day, traffic {traffic * 100:.3g}%",
            )
    if reach is not None:
        assert n is not None
        if reach.mde_absolute is None:
            text = "none: " + reach.note
        else:
            text = (
                f"{reach.mde_absolute * 100:+.4g} pp ({(reach.mde_relative or 0) * 100:+.3g}% "
                f"relative) -> {(reach.target or 0) * 100:.4g}%"
            )
        table.add_row(f"Detectable with {n:,} per variant", text)
        if dur_n is not None:
            table.add_row("Days to reach it", _days(dur_n.days))
    console.print(table)
    if size is not None:
        console.print(Text(f"Formula: {size.formula}", style="dim"))


def _days(days: float | None) -> str:
    if days is None:
        return "never (no traffic)"
    if days > 36_525:  # past a century the exact number means nothing
        return "more than 100 years"
    return f"{days:,.1f} days"


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)
    app.command("power")(power)
