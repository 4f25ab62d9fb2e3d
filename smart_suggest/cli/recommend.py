"""CLI: recommend, similar, evaluate, tune, import."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smart_suggest.cli._common import (
    DbOption,
    JsonOption,
    console,
    emit_json,
    info,
    make_table,
    open_db,
    progress_bar,
    safe,
    save_snapshot_for_next_start,
)

if TYPE_CHECKING:
    from smart_suggest.evaluate import Evaluation
    from smart_suggest.store import Store

DEFAULT_STRATEGIES = ("v1", "v2")

StrategyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--strategy",
        "-s",
        help="Strategy: v1, v2, v3 or popular (repeat or comma-separate) [default: v1 and v2].",
        show_default=False,
    ),
]
CountOption = Annotated[int, typer.Option("--count", "-n", min=1, max=1000, help="Items per user.")]
SimilarCountOption = Annotated[
    int, typer.Option("--count", "-n", min=1, max=1000, help="How many similar items to list.")
]
NeighboursOption = Annotated[
    int | None,
    typer.Option(
        "--neighbours",
        "-k",
        min=1,
        help="v1: most similar users considered [default: tuned, else 20].",
        show_default=False,
    ),
]
ThresholdOption = Annotated[
    float | None,
    typer.Option(
        "--threshold",
        min=0.0,
        max=1.0,
        help="v1: minimum user similarity (cosine) [default: tuned, else 0.30].",
        show_default=False,
    ),
]


def _stale_notes(store: Store, names: list[str]) -> list[dict[str, Any]]:
    """The stored tunings ``names`` use; a line on stderr for each one that is stale."""
    from smart_suggest.tuning import TUNABLE, load_tuned, stale_note

    used = []
    for name in names:
        tuned = load_tuned(store, name) if name in TUNABLE else None
        if tuned is not None:
            used.append(tuned.to_dict())
            if tuned.stale:
                info(stale_note(tuned))
    return used


def _strategies(values: list[str] | None, default: tuple[str, ...]) -> list[str]:
    from smart_suggest.recommend import get_strategy

    names: list[str] = []
    for value in values or list(default):
        for name in value.split(","):
            name = name.strip()
            if name and name not in names:
                get_strategy(name)  # unknown name: InputError listing the valid ones
                names.append(name)
    if not names:
        from smart_suggest.errors import InputError

        raise InputError("no strategy given")
    return names


def _fmt_score(score: float) -> str:
    return f"{score:.3f}" if abs(score) < 1000 else f"{score:,.0f}"


# -- recommend -----------------------------------------------------------------------
def recommend(
    user: Annotated[
        str | None,
        typer.Argument(help="User id or username (omit with --all-users).", show_default=False),
    ] = None,
    strategy: StrategyOption = None,
    count: CountOption = 10,
    neighbours: NeighboursOption = None,
    threshold: ThresholdOption = None,
    all_users: Annotated[
        bool, typer.Option("--all-users", help="Recommend for every user (export).")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="--all-users output: csv or jsonl.")] = "csv",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="--all-users: write to FILE instead of stdout.", dir_okay=False
        ),
    ] = None,
    user_key: Annotated[
        str,
        typer.Option(
            "--user-key",
            help="--all-users: identify users by id or by username (as in an imported file).",
        ),
    ] = "id",
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="--all-users -o: overwrite an existing file (never the database)."
        ),
    ] = False,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Recommend items to a user: v1 (collaborative) and v2 (content) side by side.

    Each row shows the rank, the item, its category, the score and the reason. v1 lists
    up to --count items, then (marked "new") items nobody has interacted with yet that
    resemble the user's. With --all-users, writes user_id,item_id,rank,score,source for
    every user as CSV (or JSON lines): at most --count rows per user, source saying where
    each came from (neighbours, content, popular, representative), with a progress bar
    on stderr.
    """
    from smart_suggest.errors import InputError
    from smart_suggest.tuning import build_options

    build_options("v1", None, count=count, neighbours=neighbours, threshold=threshold).validate()
    if all_users:
        if user is not None:
            raise InputError("give a USER or --all-users, not both")
        names = _strategies(strategy, ("v1",))
        if len(names) != 1:
            raise InputError("--all-users writes one strategy: pass a single --strategy")
        if fmt not in ("csv", "jsonl"):
            raise InputError(f"unknown format {fmt!r}: use csv or jsonl")
        if user_key not in ("id", "username"):
            raise InputError(f"unknown user key {user_key!r}: use id or username")
        with open_db(db) as store:
            _stale_notes(store, names)
            _export_all(store, names[0], count, neighbours, threshold, fmt, output, user_key, force)
        return
    if user is None:
        raise InputError("missing USER (a user id or username), or pass --all-users")
    names = _strategies(strategy, DEFAULT_STRATEGIES)
    from smart_suggest import tracking
    from smart_suggest.recommend import Recommender

    with open_db(db) as store:
        who = tracking.get_user(store, user)
        tuned = _stale_notes(store, names)
        engine = Recommender(store)
        lists = {
            name: engine.recommend(who.id, name, count, neighbours=neighbours, threshold=threshold)
            for name in names
        }
        items = tracking.get_items(store, sorted({r.item_id for rs in lists.values() for r in rs}))
        notes = [n for n in (engine.note(name) for name in names) if n]
        snap = engine.snapshot()
        v1 = engine.options("v1", count, neighbours=neighbours, threshold=threshold)
        row = snap.catalogue.user_index(who.id)
        history = int(snap.history_length[row]) if row is not None else 0
    rendered = {
        name: [
            {
                "rank": rank,
                "item_id": r.item_id,
                "name": items[r.item_id].name,
                "category": items[r.item_id].category_label,
                "categories": list(items[r.item_id].categories),
                "score": r.score,
                "source": r.source,
                "reason": r.reason,
            }
            for rank, r in enumerate(recs, start=1)
        ]
        for name, recs in lists.items()
    }
    for note in notes:
        info(note)
    if json:
        emit_json(
            {
                "user": {"id": who.id, "username": who.username, "history_items": history},
                "count": count,
                "neighbours": v1.neighbours,
                "threshold": v1.threshold,
                "tuned": tuned,
                "recommendations": rendered,
                "notes": notes,
            }
        )
        return
    _print_lists(who.username, who.id, history, rendered)


def _print_lists(username: str, user_id: int, history: int, lists: dict[str, Any]) -> None:
    from rich.table import Table

    from smart_suggest.recommend import STRATEGIES

    console.print(
        "Recommendations for ",
        safe(username, style="bold"),
        f"  (id {user_id}, {history} item{'s' if history != 1 else ''} in history)",
        sep="",
    )
    tables: list[Table] = []
    for name, rows in lists.items():
        title = f"{name}: {STRATEGIES[name].split(':')[0]}"
        table = make_table(
            title, [("#", "right"), "item", "category", ("score", "right"), "reason"]
        )
        for row in rows:
            label = safe(row["name"], limit=32)
            if row["source"] == "cold-item":
                label.append(" (new)", style="italic")
            table.add_row(
                str(row["rank"]),
                label,
                safe(row["category"], limit=20),
                _fmt_score(row["score"]),
                safe(row["reason"]),
            )
        if not rows:
            table.add_row("", "(nothing to recommend)", "", "", "")
        # Only the reason wraps: a name is already cut to 32 characters, a category to 20.
        for column in table.columns[:4]:
            column.no_wrap = True
        tables.append(table)
    # Side by side only when each half leaves the reason ~60 columns (the other columns
    # take ~70): at 140 columns two halves wrapped each row over four or five lines.
    if len(tables) == 2 and console.width >= SIDE_BY_SIDE_WIDTH:
        for table in tables:
            table.expand = True
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(ratio=1)
        grid.add_column(ratio=1)
        grid.add_row(*tables)
        console.print(grid)
    else:
        for renderable in tables:
            console.print(renderable)


#: Terminal width from which v1 and v2 are printed side by side rather than one above the other.
SIDE_BY_SIDE_WIDTH = 260


def _export_all(
    store: Store,
    strategy: str,
    count: int,
    neighbours: int | None,
    threshold: float | None,
    fmt: str,
    output: Path | None,
    user_key: str,
    force: bool,
) -> None:
    import csv
    import io

    from smart_suggest.outfile import check_target, open_output
    from smart_suggest.recommend import Recommender
    from smart_suggest.termsafe import Writer, json_dumps

    if output is not None:
        # Refuse a wrong target before the work, not after minutes of it.
        check_target(output, force=force, protect=[store.path])
    engine = Recommender(store)
    snap = engine.snapshot()
    if note := engine.note(strategy):
        info(note)
    names = dict(zip(snap.catalogue.user_ids.tolist(), snap.catalogue.usernames, strict=True))
    key_col = "user_id" if user_key == "id" else "user"
    written = 0

    def write(out: Writer, update: Any) -> int:
        rows = 0
        buf = io.StringIO()
        # csv quotes a field holding a comma, quote or line break; each record is one
        # "line" for the writer, which escapes it only on a terminal.
        # (csv quotes a field holding any character of its line terminator: keep both.)
        fields = csv.writer(buf, lineterminator="\r\n")
        if fmt == "csv":
            out.record(f"{key_col},item_id,rank,score,source")
        # Exactly the top --count per user: cold items, which the interactive view shows
        # below the list, compete for no slot here (a list is what a caller will serve).
        for user_id, recs in engine.recommend_all(
            strategy,
            count,
            update,
            neighbours=neighbours,
            threshold=threshold,
            explain=fmt == "jsonl",
            cold_items=False,
        ):
            key: int | str = user_id if user_key == "id" else names[user_id]
            if fmt == "csv":
                if isinstance(key, int):
                    text = str(key)
                else:
                    buf.seek(0)
                    buf.truncate()
                    fields.writerow([key])
                    text = buf.getvalue()[:-2]
                out.records(
                    [
                        f"{text},{r.item_id},{rank},{r.score:.6g},{r.source}"
                        for rank, r in enumerate(recs, 1)
                    ]
                )
            else:
                out.records(
                    [
                        json_dumps({key_col: key, "rank": rank, **r.to_dict()}, ensure_ascii=False)
                        for rank, r in enumerate(recs, start=1)
                    ]
                )
            rows += len(recs)
        return rows

    with progress_bar(True) as update:
        if output is None:
            written = write(Writer(sys.stdout), update)
            sys.stdout.flush()
        else:
            with open_output(output, force=force, protect=[store.path]) as fh:
                written = write(Writer(fh), update)
    if output is not None:
        info(f"Wrote {written:,} recommendations ({strategy}) to {output}")


# -- similar -------------------------------------------------------------------------
def similar(
    item: Annotated[str, typer.Argument(help="Item id.", show_default=False)],
    count: SimilarCountOption = 10,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """List the items most like ITEM (cosine of description tf-idf + category)."""
    from smart_suggest import tracking
    from smart_suggest.recommend import Recommender

    with open_db(db) as store:
        target = tracking.get_item(store, item)
        pairs = Recommender(store).similar(target.id, count)
        items = tracking.get_items(store, [i for i, _ in pairs])
    rows = [
        {
            "rank": rank,
            "item_id": i,
            "name": items[i].name,
            "category": items[i].category_label,
            "categories": list(items[i].categories),
            "similarity": sim,
        }
        for rank, (i, sim) in enumerate(pairs, start=1)
    ]
    if json:
        emit_json({"item": target.to_dict(), "similar": rows})
        return
    console.print(
        "Items like ",
        safe(target.name, style="bold"),
        f"  (id {target.id}, ",
        safe(target.category_label),
        ")",
        sep="",
    )
    table = make_table(
        None, [("#", "right"), ("id", "right"), "item", "category", ("similarity", "right")]
    )
    for row in rows:
        table.add_row(
            str(row["rank"]),
            str(row["item_id"]),
            safe(row["name"], limit=50),
            safe(row["category"]),
            f"{row['similarity']:.3f}",
        )
    console.print(table)


# -- evaluate ------------------------------------------------------------------------
def evaluate(
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="Cut-off of the metrics.")] = 10,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="time (last part of each history), leave-last-out (the item each user "
            "found last) or random.",
        ),
    ] = "time",
    test_fraction: Annotated[
        float,
        typer.Option("--test-fraction", help="Share of each history held out (time, random)."),
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --split random.")] = 42,
    strategies: Annotated[
        list[str] | None,
        typer.Option(
            "--strategies",
            "--strategy",
            "-s",
            help="Strategies to evaluate (repeat or comma-separate) [default: all].",
            show_default=False,
        ),
    ] = None,
    metric: Annotated[
        str,
        typer.Option("--metric", help="Metric that ranks the strategies: ndcg, map, recall, ..."),
    ] = "ndcg",
    neighbours: NeighboursOption = None,
    threshold: ThresholdOption = None,
    untuned: Annotated[
        bool, typer.Option("--untuned", help="Ignore the parameters `tune` stored (defaults).")
    ] = False,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Offline evaluation: hold out the end of each history, score each strategy's top k.

    Reports precision, recall, NDCG, MAP and hit rate at k (each with its standard error
    over users), catalogue coverage and intra-list category diversity per strategy (every
    strategy is fitted on the training part only), then ranks the strategies by --metric
    with the difference to the best and its 95% paired interval over users: a difference
    whose interval contains 0 is within noise. Tuned parameters are used when stored.
    """
    from smart_suggest.evaluate import check_metric, check_split
    from smart_suggest.evaluate import evaluate as run
    from smart_suggest.recommend import STRATEGIES
    from smart_suggest.tuning import Tuned, build_options, stale_note

    names = _strategies(strategies, tuple(STRATEGIES))
    check_split(split, test_fraction)
    check_metric(metric)
    build_options("v1", None, count=k, neighbours=neighbours, threshold=threshold).validate()
    with open_db(db) as store, progress_bar(not json) as update:
        result = run(
            store,
            strategies=names,
            k=k,
            split=split,
            test_fraction=test_fraction,
            seed=seed,
            neighbours=neighbours,
            threshold=threshold,
            metric=metric,
            tuned=not untuned,
            progress=update,
        )
    for data in result.tuned.values():
        if data["stale"]:
            tuned = Tuned(**{k: v for k, v in data.items() if k != "stale"})
            info(stale_note(tuned))
    if json:
        emit_json(result.to_dict())
        return
    _print_evaluation(result)


_SPLIT_TEXT = {
    "time": "the last {fraction} of each history",
    "random": "a random {fraction} of each history (seed {seed})",
    "leave-last-out": "the item each user found last",
}
_METRIC_LABEL = {
    "precision": "P",
    "recall": "R",
    "ndcg": "NDCG",
    "map": "MAP",
    "hit_rate": "HR",
    "diversity": "diversity",
}


def _print_evaluation(ev: Evaluation) -> None:
    how = _SPLIT_TEXT[ev.split].format(fraction=f"{ev.test_fraction:.0%}", seed=ev.seed)
    console.print(
        f"Held out {how}: {ev.train_interactions:,} training and "
        f"{ev.test_interactions:,} test interactions; {ev.users:,} users evaluated."
    )
    from rich import box

    k = ev.k
    columns = [
        ("precision", f"P@{k}"),
        ("recall", f"R@{k}"),
        ("ndcg", f"NDCG@{k}"),
        ("map", f"MAP@{k}"),
        ("hit_rate", f"HR@{k}"),
        ("coverage", "coverage"),
        ("diversity", "diversity"),
    ]
    table = make_table(
        f"Offline evaluation, k = {k} (best in bold; ± standard error below each row)",
        ["strategy", *((label, "right") for _, label in columns)],
    )
    table.box = box.SIMPLE_HEAD
    table.padding = (0, 1)
    table.pad_edge = False
    table.show_edge = False
    for column in table.columns:
        column.no_wrap = True
    best = {
        metric: max((getattr(r, metric) for r in ev.results), default=0.0) for metric, _ in columns
    }
    for r in ev.results:
        cells: list[Any] = [r.strategy]
        errors: list[Any] = [""]
        for metric, _ in columns:
            value = getattr(r, metric)
            style = "bold" if len(ev.results) > 1 and value == best[metric] else ""
            cells.append(safe(f"{value:.3f}", style=style))
            errors.append(safe(f"±{r.se[metric]:.3f}", style="dim") if metric in r.se else "")
        table.add_row(*cells)
        table.add_row(*errors)
    console.print(table)
    console.print(
        "P precision, R recall, HR hit rate; coverage: share of the catalogue recommended; "
        "diversity: share of item pairs in a list from different categories. Time: "
        + ", ".join(f"{r.strategy} {r.seconds:.2f} s" for r in ev.results)
        + "."
    )
    if len(ev.ranking) > 1:
        label = f"{_METRIC_LABEL[ev.metric]}@{k}" if ev.metric != "diversity" else "diversity"
        console.print(
            f"Ranking by {label}: difference to the best and its 95% interval (paired, over "
            "users); within noise when the interval contains 0."
        )
        ranking = make_table(
            None,
            [
                ("#", "right"),
                "strategy",
                (label, "right"),
                ("difference", "right"),
                ("95% interval", "right"),
                "verdict",
            ],
        )
        ranking.box = box.SIMPLE_HEAD
        ranking.show_edge = False
        for row in ev.ranking:
            if row.ci_low is None or row.ci_high is None:
                diff, interval, verdict = "best", "", ""
            else:
                diff = f"{row.diff:+.4f}"
                interval = f"{row.ci_low:+.4f} .. {row.ci_high:+.4f}"
                verdict = "within noise" if row.within_noise else "worse"
            ranking.add_row(
                str(row.rank), row.strategy, f"{row.value:.4f}", diff, interval, verdict
            )
        console.print(ranking)
    params = [
        f"{r.strategy} " + ", ".join(f"{name} {value:g}" for name, value in r.params.items())
        for r in ev.results
        if r.params
    ]
    if params:
        tuned = set(ev.tuned)
        console.print(
            "Parameters: "
            + "; ".join(params)
            + (f" (tuned: {', '.join(sorted(tuned))})" if tuned else " (not tuned)")
            + "."
        )
    if not ev.users:
        info("No user has a held-out item that is not already in their training history.")


# -- tune ----------------------------------------------------------------------------
def tune(
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            "--strategy",
            "-s",
            help="Strategy to tune: v1 or v3 (repeat or comma-separate) [default: both].",
            show_default=False,
        ),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="NDCG cut-off.")] = 10,
    test_fraction: Annotated[
        float,
        typer.Option("--test-fraction", help="Share of each history held out (as in evaluate)."),
    ] = 0.2,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the search, store nothing.")
    ] = False,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Choose hyper-parameters by NDCG@k on a validation split and store them.

    The validation part is the end of each user's *training* history (the split of
    evaluate, applied twice), so evaluate's test part is never looked at. v1 tries
    threshold x neighbours; v3 tries lambda (EASE) or alpha x beta (RP3beta in large
    catalogues), each with recency half-lives 0 (off), 5, 10, 20 and 50 items. The best
    set is stored for the current data revision and used by recommend, evaluate,
    experiments and the TUI from then on (explicit options win).
    """
    from smart_suggest.evaluate import check_split
    from smart_suggest.tuning import TUNABLE
    from smart_suggest.tuning import tune as run

    names = _strategies(strategy, TUNABLE)
    check_split("time", test_fraction)
    for name in names:
        if name not in TUNABLE:
            from smart_suggest.errors import InputError

            raise InputError(
                f"strategy {name!r} has no hyper-parameters to tune: use {' or '.join(TUNABLE)}"
            )
    with open_db(db) as store, progress_bar(not json) as update:
        results = run(
            store,
            strategies=names,
            k=k,
            test_fraction=test_fraction,
            save=not dry_run,
            progress=update,
        )
    if json:
        emit_json({"k": k, "saved": not dry_run, "results": [r.to_dict() for r in results]})
        return
    from rich import box

    for result in results:
        if not result.validation_users:
            info(f"{result.strategy}: no user has a validation item: nothing chosen")
            continue
        console.print(
            f"{result.strategy} ({result.method}): NDCG@{k} on the validation split, "
            f"{result.validation_users:,} users"
        )
        table = make_table(
            None,
            [
                *(name for name in _grid_names(result.grid)),
                (f"NDCG@{k}", "right"),
                ("fit+score s", "right"),
            ],
        )
        table.box = box.SIMPLE_HEAD
        table.show_edge = False
        for point in result.grid:
            style = "bold" if point.params == result.best else ""
            cells = [
                safe(f"{point.params[name]:g}", style=style) for name in _grid_names(result.grid)
            ]
            table.add_row(*cells, safe(f"{point.ndcg:.4f}", style=style), f"{point.seconds:.2f}")
        console.print(table)
        chosen = ", ".join(
            f"{name} {value:g}" for name, value in result.best.items() if name != "method"
        )
        default = (
            f" (defaults: {result.default_ndcg:.4f})" if result.default_ndcg is not None else ""
        )
        console.print(
            f"{result.strategy}: best {chosen}: NDCG@{k} {result.best_ndcg:.4f}{default}; "
            + (
                "not stored (--dry-run)."
                if dry_run
                else f"stored for data revision {result.revision}."
            )
            + f" {result.seconds:.1f} s."
        )


def _grid_names(grid: list[Any]) -> list[str]:
    return [name for name in (grid[0].params if grid else {}) if name != "method"]


# -- import --------------------------------------------------------------------------
def import_cmd(
    file: Annotated[
        Path,
        typer.Argument(
            help="Interactions file (CSV, TSV, MovieLens u.data / ratings.dat / ratings.csv) "
            "or a folder of MovieLens files.",
            show_default=False,
        ),
    ],
    items: Annotated[
        Path | None,
        typer.Option(
            "--items",
            help="Items file: id, name/title, categories/genres, description; or u.item, "
            "movies.dat, movies.csv. [default: the MovieLens file beside FILE, if any]",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    users: Annotated[
        Path | None,
        typer.Option(
            "--users",
            help="Users file: MovieLens users.dat or u.user, or a file whose header names a "
            "user column and the attributes to store. [default: users.dat / u.user beside "
            "a MovieLens FILE, if any]",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    user_col: Annotated[
        str | None, typer.Option("--user-col", help="Column of the user (name or number).")
    ] = None,
    item_col: Annotated[
        str | None, typer.Option("--item-col", help="Column of the item (name or number).")
    ] = None,
    value_col: Annotated[
        str | None,
        typer.Option("--value-col", help="Column of the value: a rating, weight or action."),
    ] = None,
    time_col: Annotated[
        str | None,
        typer.Option("--time-col", help="Column of the time (Unix seconds or ISO-8601)."),
    ] = None,
    value_as: Annotated[
        str | None,
        typer.Option(
            "--value-as",
            help="Read the value as a rating (>= 4 purchase, >= 3 click, else view), a "
            "weight (>= 5 purchase, >= 3 click, else view) or an action name. [default: by "
            "the column's name]",
            show_default=False,
        ),
    ] = None,
    ignore_col: Annotated[
        list[str] | None,
        typer.Option("--ignore-col", help="Skip this column (repeat for several)."),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            help="Text encoding of the files [default: utf-8; Latin-1 for MovieLens "
            "u.item and .dat files].",
            show_default=False,
        ),
    ] = None,
    genres: Annotated[
        Path | None,
        typer.Option(
            "--genres",
            help="u.genre naming the 19 genre flags of a MovieLens 100K u.item "
            "[default: u.genre beside it].",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Import interactions (and an item catalogue), exactly as the files say, in one transaction.

    Recognises MovieLens 100K (u.data + u.item + u.genre), 1M/10M (ratings.dat +
    movies.dat) and current releases (ratings.csv + movies.csv), and any delimited file
    whose header names its columns (user, item, rating/score/stars, weight/value/count,
    action, timestamp, ...) or that has none (user, item, value, time). A users file
    (users.dat, u.user or --users) creates its users and stores their attributes (shown by
    `users show`). A column it cannot place is an error naming it. One line says which
    layout was detected. A bad row is reported with its line number and nothing is
    written (a new database file is removed).
    """
    from smart_suggest.importer import ColumnOptions, detect, import_layout

    options = ColumnOptions(
        user_col=user_col,
        item_col=item_col,
        value_col=value_col,
        time_col=time_col,
        value_as=value_as,
        ignore=tuple(ignore_col or ()),
        encoding=encoding,
        genres=genres,
    )
    # Every check that needs no database runs before the database is opened (or created).
    layout = detect(file, items, options, users)
    # Said up front to someone watching (a long import), else with the result, so that a
    # failing import in a script still prints exactly one line on stderr.
    watching = sys.stderr.isatty() and not json
    if watching:
        info(layout.message)
    with _removed_on_failure(db), open_db(db) as store, progress_bar(not json) as update:
        report = import_layout(store, layout, progress=update)
        # Saved for the next start (the TUI, recommend): it would read it all back.
        save_snapshot_for_next_start(store, update)
    if json:
        emit_json(report.to_dict())
        return
    if not watching:
        info(layout.message)
    console.print(
        f"Imported {report.interactions:,} interactions from ",
        safe(str(file)),
        f" in {report.seconds:.1f} s: {report.users_created:,} new users, "
        f"{report.items_created:,} new items"
        + (f", {report.items_updated:,} items updated" if report.items_updated else ""),
        sep="",
    )
    if report.users_described:
        names = ", ".join(n.replace("_", " ") for n in report.user_attributes)
        console.print(
            f"Stored the attributes of {report.users_described:,} users",
            safe(f" ({names})" if names else ""),
            sep="",
        )
    if report.user_ids != "id":
        info(
            "Users were identified by name: export recommendations with "
            "`recommend --all-users --user-key username` to get the same identifiers."
        )


@contextmanager
def _removed_on_failure(db: Path | None) -> Iterator[None]:
    """A database file this command creates is deleted again if the command fails."""
    from smart_suggest.store import default_db_path

    path = Path(db).expanduser() if db is not None else default_db_path()
    created = not path.exists()
    try:
        yield
    except BaseException:
        if created:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        raise


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend)
    app.command("similar")(similar)
    app.command("evaluate")(evaluate)
    app.command("tune")(tune)
    app.command("import")(import_cmd)
