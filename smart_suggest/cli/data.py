"""CLI: seed the database with demo or synthetic data; clear it; show its status."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from smart_suggest.cli._common import (
    DbOption,
    JsonOption,
    YesOption,
    confirm,
    console,
    emit_json,
    info,
    make_table,
    open_db,
    progress_bar,
    safe,
    save_snapshot_for_next_start,
)


def seed(
    db: DbOption = None,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Random seed: same seed, same data.")
    ] = 42,
    users: Annotated[
        int | None, typer.Option("--users", min=2, help="Synthetic: number of users.")
    ] = None,
    items: Annotated[
        int | None, typer.Option("--items", min=7, help="Synthetic: number of items.")
    ] = None,
    interactions: Annotated[
        int | None, typer.Option("--interactions", min=0, help="Synthetic: interactions.")
    ] = None,
    events: Annotated[
        int | None, typer.Option("--events", min=0, help="Synthetic: experiment events.")
    ] = None,
    days: Annotated[
        int | None, typer.Option("--days", min=1, help="Synthetic: days of experiment events.")
    ] = None,
    yes: YesOption = False,
    json: JsonOption = False,
) -> None:
    """Reset the database and load the demo data (or synthetic data with --users ...).

    Without size options: the shipped catalogue (20 items, 50 users), a clustered
    interaction history and one active experiment (v1 vs v2) with 7 days of events.
    With any of --users/--items/--interactions/--events/--days: synthetic data of that
    size with the same structure (defaults 10000/2000/1000000/1000000/14).
    """
    from smart_suggest import sample

    synthetic = any(v is not None for v in (users, items, interactions, events, days))
    spec = None
    if synthetic:
        base = sample.SyntheticSpec()
        spec = sample.SyntheticSpec(
            users=users if users is not None else base.users,
            items=items if items is not None else base.items,
            interactions=interactions if interactions is not None else base.interactions,
            events=events if events is not None else base.events,
            days=days if days is not None else base.days,
            seed=seed,
        )
        spec.validate()
    with open_db(db) as store:
        if not store.is_empty():
            confirm(f"{store.path} already holds data. Replace all of it?", yes)
        started = time.perf_counter()
        with progress_bar(not json) as update:
            if spec is None:
                report = sample.load_demo(store, seed=seed, progress=update)
            else:
                report = sample.generate(store, spec, progress=update)
            # Saved for the next start (the TUI, recommend): it would read it all back.
            save_snapshot_for_next_start(store, update)
        elapsed = time.perf_counter() - started
        path = store.path
    if json:
        emit_json({**report.to_dict(), "seconds": elapsed, "db": str(path)})
        return
    console.print(
        "Seeded ",
        safe(path),
        f": {report.users:,} users, {report.items:,} items, "
        f"{report.interactions:,} interactions, {report.experiments} experiment, "
        f"{report.assignments:,} assignments, {report.events:,} events in {elapsed:.1f} s",
        sep="",
    )


def clear(db: DbOption = None, yes: YesOption = False, json: JsonOption = False) -> None:
    """Delete all data (users, items, interactions, experiments, events)."""
    with open_db(db) as store:
        counts = store.counts()
        if any(counts.values()):
            confirm(f"Delete all data in {store.path}?", yes)
            store.clear()
        path = store.path
    if json:
        emit_json({"db": str(path), "deleted": counts})
    else:
        info(f"Cleared {path} ({sum(counts.values()):,} rows deleted)")


def status(db: DbOption = None, json: JsonOption = False) -> None:
    """Show the database path, size and row counts."""
    with open_db(db) as store:
        counts = store.counts()
        data = {
            "db": str(store.path),
            "size_bytes": (store_size := store.size_bytes()),
            "counts": counts,
            "revision": {
                "catalog": store.revision("catalog"),
                "experiments": store.revision("experiments"),
            },
        }
    if json:
        emit_json(data)
        return
    size_mb = store_size / 1e6
    console.print("Database ", safe(data["db"]), f"  ({size_mb:.1f} MB)", sep="")
    table = make_table(None, ["table", ("rows", "right")])
    for name, n in counts.items():
        table.add_row(name, f"{n:,}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("seed")(seed)
    app.command("clear")(clear)
    app.command("status")(status)
