"""Export, import and back up a whole database without loss.

``export_all`` writes every table as JSON Lines (lossless: types, NULLs and every byte of
text survive) or CSV (for spreadsheets and other tools), plus ``manifest.json`` with the
schema version, row counts and SHA-256 of each file. It reads inside one transaction, so
the export is a consistent snapshot even while other processes write.

``import_all`` checks the manifest and the checksums first, then loads every table into
an empty database in one transaction, keeping ids: either all of it lands or none.

``backup`` uses SQLite's online backup API into a temporary file beside the target, checks
the copy, then renames it into place: safe while other processes write, and a crash never
leaves a half-written backup under the target name.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from smart_suggest import __version__, clock, validate
from smart_suggest.errors import InputError, SmartSuggestError
from smart_suggest.outfile import output_folder, output_path
from smart_suggest.store import (
    NO_CATEGORY,
    SCHEMA_VERSION,
    TABLES,
    Store,
    describe_sqlite_error,
)

Progress = Callable[[str, int, int], None]
FORMATS = ("jsonl", "csv")
MANIFEST = "manifest.json"
_CHUNK = 50_000


@dataclass(frozen=True, slots=True)
class TransferReport:
    directory: str
    format: str
    tables: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _noop(stage: str, done: int, total: int) -> None:
    pass


def _columns(store: Store, table: str) -> list[tuple[str, str, bool]]:
    """(name, declared type, nullable) of each column, in table order."""
    return [
        (c.name, str(c.type).upper(), not c.notnull and not c.is_pk)
        for c in store.db[table].columns
    ]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _csv_value(value: Any) -> Any:
    # repr() of a float round-trips exactly; csv's default str() would too, but be explicit.
    return repr(value) if isinstance(value, float) else value


def export_all(
    store: Store, directory: Path, *, fmt: str = "jsonl", progress: Progress | None = None
) -> TransferReport:
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}: use jsonl or csv")
    progress = progress or _noop
    directory = Path(directory)
    # Written into a temporary folder beside the target and renamed at the end: a failure
    # (a full disk, ctrl+c) leaves nothing that would block a retry.
    with output_folder(directory, protect=[store.path]) as tmp:
        counts = _export_into(store, tmp, fmt, progress)
    return TransferReport(str(directory), fmt, counts)


def _export_into(store: Store, directory: Path, fmt: str, progress: Progress) -> dict[str, int]:
    manifest: dict[str, Any] = {
        "application": "smart-suggest",
        "version": __version__,
        "schema_version": SCHEMA_VERSION,
        "format": fmt,
        "exported_at": clock.iso(clock.now()),
        "tables": {},
    }
    counts: dict[str, int] = {}
    with store.read() as conn:
        for table in TABLES:
            cols = [c[0] for c in _columns(store, table)]
            total = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            path = directory / f"{table}.{fmt}"
            n = 0
            cur = conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY 1, 2")
            with open(path, "w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh) if fmt == "csv" else None
                if writer:
                    writer.writerow(cols)
                while rows := cur.fetchmany(_CHUNK):
                    if writer:
                        writer.writerows([_csv_value(v) for v in row] for row in rows)
                    else:
                        fh.writelines(
                            json.dumps(dict(zip(cols, row, strict=True)), ensure_ascii=False) + "\n"
                            for row in rows
                        )
                    n += len(rows)
                    progress(table, n, total)
                fh.flush()
                os.fsync(fh.fileno())
            progress(table, n, max(total, n))
            counts[table] = n
            manifest["tables"][table] = {
                "file": path.name,
                "rows": n,
                "columns": cols,
                "sha256": _sha256(path),
            }
    with open(directory / MANIFEST, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(manifest, indent=2) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return counts


#: Columns that an export from an older version lacks: they take their defaults ('ab'
#: design, no interleaving team). Tables added later: ``TABLE_SINCE``.
_ADDED_COLUMNS = {"experiments": {"design"}, "events": {"team"}}


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise InputError(f"{directory}: no {MANIFEST} (not a smart-suggest export)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{path}: not a manifest (JSON nested too deeply)") from None
    if not isinstance(manifest, dict) or manifest.get("application") != "smart-suggest":
        raise InputError(f"{path}: not a smart-suggest export manifest")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise InputError(
            f"{path}: exported by a newer smart-suggest (schema {version}); upgrade first"
        )
    if manifest.get("format") not in FORMATS:
        raise InputError(f"{path}: unknown format {manifest.get('format')!r}")
    tables = manifest.get("tables")
    # Every table of the export's schema must be there; later ones may be (or not).
    expected = set(tables_of(version))
    if not isinstance(tables, dict) or not expected <= set(tables) <= set(TABLES):
        names = ", ".join(t for t in TABLES if t in expected)
        raise InputError(f"{path}: the export must list the tables {names}")
    for table, entry in tables.items():
        _check_entry(path, table, entry)
    return manifest


def _check_entry(path: Path, table: str, entry: Any) -> None:
    """One table's manifest entry, field by field (a hand-edited manifest gets one line)."""
    where = f"{path}: table {table}"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected an object with file, rows, columns and sha256")
    name = entry.get("file")
    if not isinstance(name, str) or not name or name != Path(name).name or name in (".", ".."):
        raise InputError(f"{where}: 'file' must be a file name inside the export folder")
    rows = entry.get("rows")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise InputError(f"{where}: 'rows' must be a whole number of rows, not {rows!r:.40}")
    cols = entry.get("columns")
    if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
        raise InputError(f"{where}: 'columns' must be a list of column names")
    if len(set(cols)) != len(cols):
        raise InputError(f"{where}: 'columns' names a column twice")
    digest = entry.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64 or not _is_hex(digest):
        raise InputError(f"{where}: 'sha256' must be 64 hexadecimal digits")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


#: Tables added after the first schema, by the schema version that added them: an export
#: written before has none, and ``import_all`` derives them (see ``_DERIVED``).
TABLE_SINCE: dict[str, int] = {
    "item_categories": 6,
    "experiment_variants": 8,  # missing variants fall back to control / treatment
    "sequential_looks": 9,  # missing looks: none were recorded
    "unserved_events": 10,  # missing: none were logged apart
    "user_attributes": 11,  # missing attributes: none were imported
}
#: How a table missing from an older export is rebuilt from the tables it does have
#: (``experiment_variants`` needs nothing: variants fall back to control / treatment).
_DERIVED: dict[str, str] = {
    "item_categories": "INSERT INTO item_categories(item_id, category, position) "
    f"SELECT id, category, 0 FROM items WHERE category <> '{NO_CATEGORY}'",
}


def tables_of(schema_version: int) -> tuple[str, ...]:
    """The tables an export of that schema version holds."""
    return tuple(t for t in TABLES if TABLE_SINCE.get(t, 0) <= schema_version)


def _convert(value: str, decl: str, nullable: bool, where: str) -> Any:
    """A CSV field back to its column's type (CSV has no NULL: empty means NULL if allowed)."""
    if value == "" and nullable:
        return None
    try:
        if "INT" in decl:
            return int(value)
        if "REAL" in decl:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
    except ValueError:
        raise InputError(f"{where}: {value!r} is not a valid {decl.lower()}") from None
    return value


def _rows(
    store: Store, path: Path, fmt: str, table: str, cols: list[str]
) -> Iterator[tuple[Any, ...]]:
    info = {c[0]: c for c in _columns(store, table)}
    if not set(cols) <= set(info) or set(info) - set(cols) - _ADDED_COLUMNS.get(table, set()):
        raise InputError(f"{path}: columns {cols} do not match table {table}")
    with open(path, encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            reader = csv.reader(fh)
            header = next(reader, None)
            if header != cols:
                raise InputError(f"{path}: header does not match the manifest")
            for line, rec in enumerate(reader, start=2):
                if len(rec) != len(cols):
                    raise InputError(f"{path}:{line}: expected {len(cols)} fields")
                yield tuple(
                    _convert(v, info[c][1], info[c][2], f"{path}:{line}")
                    for c, v in zip(cols, rec, strict=True)
                )
        else:
            for line, text in enumerate(fh, start=1):
                try:
                    obj = json.loads(text)
                except (ValueError, RecursionError):
                    raise InputError(
                        f"{path}:{line}: not valid JSON (or nested too deeply)"
                    ) from None
                if not isinstance(obj, dict) or set(obj) != set(cols):
                    raise InputError(f"{path}:{line}: expected the columns {', '.join(cols)}")
                yield tuple(obj[c] for c in cols)


def _row_checker(path: Path, table: str, cols: list[str]) -> Callable[[tuple[Any, ...]], None]:
    """Each imported row through the validator of the live write paths, by line number."""
    line = 0
    first = 2 if path.suffix == ".csv" else 1  # a CSV export has a header line

    def check(row: tuple[Any, ...]) -> None:
        nonlocal line
        try:
            validate.check_row(table, dict(zip(cols, row, strict=True)))
        except InputError as exc:
            raise InputError(f"{path}:{line + first}: {exc}; nothing was imported") from None
        line += 1

    return check


def _check_event_variants(conn: sqlite3.Connection) -> None:
    """Every event carries its user's stored variant (what every logger writes)."""
    bad = conn.execute(
        "SELECT e.id, e.variant, a.variant FROM events e LEFT JOIN assignments a "
        "ON a.experiment_id = e.experiment_id AND a.user_id = e.user_id "
        "WHERE a.variant IS NOT e.variant LIMIT 1"
    ).fetchone()
    if bad is not None:
        stored = "no assignment" if bad[2] is None else f"assigned variant {bad[2]}"
        raise InputError(
            f"events row {bad[0]} has variant {bad[1]} but its user has {stored} in that "
            "experiment; nothing was imported"
        )


def import_all(
    store: Store, directory: Path, *, replace: bool = False, progress: Progress | None = None
) -> TransferReport:
    """Load an export into this database (empty, or emptied first when ``replace``)."""
    progress = progress or _noop
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: no such folder")
    manifest = _read_manifest(directory)
    fmt = manifest["format"]
    present = [t for t in TABLES if t in manifest["tables"]]
    for table in present:
        entry = manifest["tables"][table]
        path = directory / str(entry.get("file", ""))
        if path.parent != directory or not path.is_file():
            raise InputError(f"{directory}: missing file for table {table}")
        if _sha256(path) != entry.get("sha256"):
            raise InputError(f"{path}: checksum does not match the manifest (file changed?)")
    if not replace and not store.is_empty():
        raise InputError(f"{store.path}: database is not empty (use --replace to overwrite it)")
    counts: dict[str, int] = {}
    try:
        with store.bulk_load(TABLES) as conn:
            for table in reversed(TABLES):
                conn.execute(f"DELETE FROM {table}")
            for table in TABLES:
                if table not in present:
                    if table in _DERIVED:
                        counts[table] = conn.execute(_DERIVED[table]).rowcount
                    continue
                entry = manifest["tables"][table]
                cols = list(entry["columns"])
                sql = (
                    f"INSERT INTO {table}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                )
                n, batch = 0, []
                total = int(entry.get("rows", 0))
                check = _row_checker(directory / entry["file"], table, cols)
                for row in _rows(store, directory / entry["file"], fmt, table, cols):
                    check(row)
                    batch.append(row)
                    if len(batch) >= _CHUNK:
                        conn.executemany(sql, batch)
                        n += len(batch)
                        batch = []
                        progress(table, n, total)
                conn.executemany(sql, batch)
                n += len(batch)
                progress(table, n, max(total, n))
                if n != total:
                    raise InputError(f"{table}: {n} rows read but the manifest says {total}")
                counts[table] = n
            bad = conn.execute("PRAGMA foreign_key_check").fetchone()
            if bad:
                raise InputError(f"{bad[0]} row {bad[1]} refers to a missing {bad[2]} row")
            _check_event_variants(conn)
    except sqlite3.IntegrityError as exc:
        raise InputError(f"{directory}: the export violates the schema ({exc})") from None
    return TransferReport(str(directory), fmt, counts)


def backup(
    store: Store, target: Path, *, overwrite: bool = False, progress: Progress | None = None
) -> Path:
    """Copy the live database to ``target`` with SQLite's online backup API.

    The target follows the output-file rules of ``smart_suggest.outfile``: never the
    database or its WAL, an existing file only with ``overwrite``, written into a FIFO or
    device, atomically replaced when it is a regular file.
    """
    progress = progress or _noop
    target = Path(target)
    with output_path(target, force=overwrite, protect=[store.path]) as tmp:
        try:
            dest = sqlite3.connect(tmp)
        except sqlite3.Error as exc:
            cause = describe_sqlite_error(exc)
            raise SmartSuggestError(f"{target}: cannot create ({cause})") from None
        try:

            def report(status: int, remaining: int, total: int) -> None:
                progress("backup", total - remaining, total)

            # Page steps let writers in between; SQLite restarts the copy if the source
            # changes under it, so the result is always one consistent snapshot.
            try:
                store.conn.backup(dest, pages=4096, progress=report)
            except sqlite3.DatabaseError as exc:
                if "malformed" not in str(exc):
                    raise
                from smart_suggest.integrity import detail, recovery_hint

                raise InputError(
                    f"{store.path}: the database is damaged ({detail(str(exc))}), so no backup "
                    "was made; " + recovery_hint(store.path)
                ) from None
            dest.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
            ok = dest.execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                from smart_suggest.integrity import detail, recovery_hint

                raise InputError(
                    f"{store.path}: the database is damaged ({detail(ok)}), so no backup was "
                    "made; " + recovery_hint(store.path)
                )
        except sqlite3.Error as exc:
            # The source was validated when it was opened: a failure here is the target's
            # (a full disk, a file size limit), so name the target.
            cause = describe_sqlite_error(exc)
            raise SmartSuggestError(f"{target}: cannot write the backup ({cause})") from None
        finally:
            dest.close()
    return target
