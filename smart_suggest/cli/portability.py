"""CLI: export and import a whole database, online backups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smart_suggest.cli._common import (
    DbOption,
    JsonOption,
    YesOption,
    confirm,
    emit_json,
    info,
    open_db,
    progress_bar,
)


def export(
    directory: Annotated[Path, typer.Argument(help="New or empty folder to write into.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="jsonl (lossless, default) or csv.")
    ] = "jsonl",
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Export every table (JSON Lines or CSV) with a manifest of counts and checksums."""
    from smart_suggest.portability import export_all

    with open_db(db) as store, progress_bar(not json) as update:
        report = export_all(store, directory, fmt=fmt, progress=update)
    if json:
        emit_json(report.to_dict())
    else:
        rows = sum(report.tables.values())
        info(f"Exported {rows:,} rows in {len(report.tables)} tables to {report.directory}")


def import_all(
    directory: Annotated[Path, typer.Argument(help="Folder written by `smart-suggest export`.")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the data of a non-empty database.")
    ] = False,
    yes: YesOption = False,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Load an export into an empty database (all or nothing), keeping every id."""
    from smart_suggest.portability import import_all as run_import

    with open_db(db) as store:
        if replace and not store.is_empty():
            confirm(f"Replace all data in {store.path} with {directory}?", yes)
        with progress_bar(not json) as update:
            report = run_import(store, directory, replace=replace, progress=update)
    if json:
        emit_json(report.to_dict())
    else:
        info(f"Imported {sum(report.tables.values()):,} rows from {report.directory}")


def backup(
    target: Annotated[Path, typer.Argument(help="Backup file to create.")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Overwrite an existing file (never the database or its WAL)."),
    ] = False,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Online backup of the database (safe while other processes write)."""
    from smart_suggest.portability import backup as run_backup

    with open_db(db) as store, progress_bar(not json) as update:
        path = run_backup(store, target, overwrite=force, progress=update)
    # A FIFO or a device has no size of its own to report.
    size = path.stat().st_size if path.is_file() else None
    if json:
        emit_json({"backup": str(path), "size_bytes": size})
    elif size is None:
        info(f"Backed up to {path}")
    else:
        info(f"Backed up to {path} ({size / 1e6:.1f} MB)")


def recover(
    target: Annotated[Path, typer.Argument(help="New database file to copy the rows into.")],
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Copy every row a damaged database still holds into a new database file."""
    from smart_suggest.integrity import recover as run_recover
    from smart_suggest.store import default_db_path

    source = db if db is not None else default_db_path()
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        from smart_suggest.errors import InputError

        raise InputError(f"{target}: is the damaged database itself (recover into a new file)")
    report = run_recover(source, target)
    if json:
        emit_json(report.to_dict())
        return
    kept = sum(report.tables.values())
    lost = ", ".join(f"{n:,} {t}" for t, n in report.lost.items())
    info(
        f"Recovered {kept:,} rows from {report.source} into {report.target}"
        + (f" (dropped rows whose parent was lost: {lost})" if lost else "")
    )


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("import-all")(import_all)
    app.command("backup")(backup)
    app.command("recover")(recover)
