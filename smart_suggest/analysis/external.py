"""Sufficient statistics computed inside an external SQL engine, where the events live.

``analyze EXP --source SOURCE`` runs the sufficient-statistics SQL (``analysis.sql``, one
text transpiled per dialect) in the engine and brings back only one row of sums per
variant; everything after that is the statistics code every other source uses, including
the checks of the sums (``inputs.parse_rows``).

Sources:

* a file or folder of event data (``events.parquet``, ``events.csv``, ``events/`` with
  ``events.*`` and ``assignments.*`` inside): read by DuckDB in this process, streaming,
  with a memory limit;
* ``duckdb:///path/to.duckdb``: a DuckDB database file (read-only);
* any SQLAlchemy URL: ``postgresql://user@host:5432/db`` (psycopg), ``mysql://...``,
  ``trino://...``, ``snowflake://...``, ``bigquery://...`` (with that engine's SQLAlchemy
  dialect installed); the SQL dialect follows the URL's scheme.

Why DuckDB and SQLAlchemy: DuckDB scans Parquet and CSV out of core with a hash aggregate
that stays within a memory limit, which no hand-written reader here would match; SQLAlchemy
turns any database URL into a connection with the right driver, so one code path serves
every engine that has a dialect. Both are imported only for ``--source``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smart_suggest.analysis.inputs import SUMMARY_COLUMNS, Inputs, parse_rows
from smart_suggest.analysis.report import ExperimentInfo
from smart_suggest.analysis.sql import dialect_name, span_sql, stats_sql
from smart_suggest.errors import EngineError, InputError, SmartSuggestError

#: Event-data file suffixes DuckDB reads, and the function that reads each.
_READERS = {
    ".parquet": "read_parquet",
    ".pq": "read_parquet",
    ".csv": "read_csv_auto",
    ".tsv": "read_csv_auto",
    ".json": "read_json_auto",
    ".ndjson": "read_json_auto",
    ".jsonl": "read_json_auto",
}
#: URL schemes -> sqlglot dialect for SQLAlchemy sources.
_SCHEMES = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "trino": "trino",
    "presto": "trino",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "databricks": "spark",
    "sqlite": "sqlite",
    "duckdb": "duckdb",
}
#: DuckDB's memory limit for file sources: aggregates spill to disk beyond it.
DUCKDB_MEMORY_LIMIT = "768MB"


@dataclass(frozen=True)
class Source:
    """A parsed ``--source``: where the events are and how to reach them."""

    kind: str  # "files", "duckdb" or "sqlalchemy"
    label: str  # for messages: never shows a password
    dialect: str
    target: str  # a path, or a URL
    tables: dict[str, str] = field(default_factory=dict)  # events / assignments -> name


def _label_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return str(make_url(url).render_as_string(hide_password=True))
    except Exception:  # not parseable: show only the scheme
        return url.split("://", 1)[0] + "://..."


def _file_for(folder: Path, stem: str) -> Path | None:
    found = sorted(p for p in folder.glob(f"{stem}.*") if p.suffix.lower() in _READERS)
    return found[0] if found else None


def parse_source(
    text: str,
    *,
    assignments: str | None = None,
    events_table: str | None = None,
    assignments_table: str | None = None,
    users_table: str | None = None,
    interactions_table: str | None = None,
) -> Source:
    """Recognise ``text`` as files, a DuckDB database or a SQLAlchemy URL."""
    text = text.strip()
    if not text:
        raise InputError("--source is empty")
    named = (
        ("events", events_table),
        ("assignments", assignments_table),
        ("users", users_table),
        ("interactions", interactions_table),
    )
    tables = {k: v for k, v in named if v}
    scheme = text.split("://", 1)[0].lower().split("+", 1)[0] if "://" in text else ""
    if scheme == "duckdb":
        # SQLAlchemy's convention: duckdb:///relative.db, duckdb:////absolute/path.db
        rest = text.split("://", 1)[1]
        db_file = rest[1:] if rest.startswith("/") else rest
        if not db_file or not Path(db_file).is_file():
            raise InputError(f"{text}: no such DuckDB database file")
        return Source("duckdb", text, "duckdb", db_file, tables)
    if scheme:
        if scheme not in _SCHEMES:
            raise InputError(
                f"--source: unknown scheme {scheme!r}: give a file or folder of events, "
                "duckdb:///FILE, or a SQLAlchemy URL such as postgresql://user@host/db"
            )
        return Source("sqlalchemy", _label_url(text), _SCHEMES[scheme], text, tables)
    path = Path(text).expanduser()
    if not path.exists():
        raise InputError(f"{text}: no such file or folder (and not a URL)")
    if tables:
        raise InputError(
            "--events-table and the other --*-table options are for databases, not files"
        )
    if path.is_dir():
        events = _file_for(path, "events")
        found = _file_for(path, "assignments")
        if events is None:
            raise InputError(f"{text}: no events.parquet / events.csv / events.json in this folder")
    else:
        if path.suffix.lower() not in _READERS:
            raise InputError(
                f"{text}: unknown file type {path.suffix or '(none)'!r} "
                f"(known: {', '.join(sorted(_READERS))})"
            )
        events = path
        found = _file_for(path.parent, "assignments")
    if assignments is not None:
        a = Path(assignments).expanduser()
        if not a.is_file():
            raise InputError(f"{assignments}: no such assignments file")
        if a.suffix.lower() not in _READERS:
            raise InputError(f"{assignments}: unknown file type {a.suffix or '(none)'!r}")
        found = a
    if found is None:
        raise InputError(
            f"{text}: no assignments file: pass --assignments FILE (a table with the "
            "columns experiment_id, user_id, variant) or put assignments.parquet beside it"
        )
    files = {"events": str(events), "assignments": str(found)}
    # The CUPED covariates need the users and their interactions: used when beside them.
    for stem in ("users", "interactions"):
        extra = _file_for(events.parent, stem)
        if extra is not None:
            files[stem] = str(extra)
    return Source("files", str(events), "duckdb", str(events), files)


def _plain_number(value: Any) -> Any:
    """Engine numbers as Python ints or floats (Decimal from SUM over big integers)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _seconds(value: Any) -> float | None:
    """An event time as Unix seconds: numbers are taken as such, timestamps converted."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    try:
        num = float(_plain_number(value))
    except (TypeError, ValueError):
        return None
    return num if math.isfinite(num) else None


def _duckdb_query(source: Source, sqls: list[str]) -> list[list[tuple[Any, ...]]]:
    try:
        import duckdb
    except ImportError:
        raise EngineError(
            "--source needs DuckDB for files and duckdb:// URLs: "
            "pip install 'smart-suggest[warehouse]'"
        ) from None
    try:
        if source.kind == "duckdb":
            con = duckdb.connect(source.target, read_only=True)
        else:
            con = duckdb.connect(":memory:")
    except duckdb.Error as exc:
        raise EngineError(f"{source.label}: cannot open ({_first_line(exc)})") from None
    try:
        con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        # DuckDB draws a progress bar on stdout for long queries: stdout is ours (--json).
        con.execute("SET enable_progress_bar = false")
        if source.kind == "files":
            for name, path in source.tables.items():
                reader = _READERS[Path(path).suffix.lower()]
                quoted = path.replace("'", "''")
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM {reader}('{quoted}')")
        out = []
        for sql in sqls:
            out.append(con.execute(sql).fetchall())
        return out
    except duckdb.Error as exc:
        raise _engine_error(source, exc) from None
    finally:
        con.close()


def _sqlalchemy_query(source: Source, sqls: list[str]) -> list[list[tuple[Any, ...]]]:
    try:
        import sqlalchemy as sa
    except ImportError:
        raise EngineError(
            "--source URL needs SQLAlchemy: pip install 'smart-suggest[warehouse]'"
        ) from None
    url = source.target
    if url.startswith(("postgresql://", "postgres://")):
        # psycopg 3 is the maintained PostgreSQL driver; SQLAlchemy's default is psycopg2.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        engine = sa.create_engine(url)
    except (ImportError, ModuleNotFoundError) as exc:
        raise EngineError(
            f"{source.label}: the driver for this URL is not installed ({exc})"
        ) from None
    except Exception as exc:
        raise InputError(f"--source: not a usable database URL ({_first_line(exc)})") from None
    try:
        with engine.connect() as conn:
            return [list(conn.exec_driver_sql(sql).fetchall()) for sql in sqls]
    except sa.exc.OperationalError as exc:
        raise EngineError(f"{source.label}: {_first_line(exc.orig or exc)}") from None
    except sa.exc.DBAPIError as exc:
        raise _engine_error(source, exc.orig or exc) from None
    finally:
        engine.dispose()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _engine_error(source: Source, exc: BaseException) -> SmartSuggestError:
    msg = _first_line(exc)
    low = msg.lower()
    if any(s in low for s in ("does not exist", "not found", "no such", "unknown column")):
        # A missing table or column is the caller's input, not a broken engine.
        names = {"events": "events", "assignments": "assignments", **source.tables}
        if source.kind == "files":
            names = {k: Path(v).name for k, v in names.items()}
        return InputError(
            f"{source.label}: {msg} (reading {names['events']}(experiment_id, variant, "
            f"user_id, type, value, ts) and {names['assignments']}(experiment_id, user_id, "
            "variant))"
        )
    return EngineError(f"{source.label}: {msg}")


def fetch_stats(
    source: Source, experiment_id: int | str
) -> tuple[list[dict[str, Any]], float | None, float]:
    """(one row of sums per variant, days between first and last event, seconds taken)."""
    tables = source.tables if source.kind != "files" else {}
    sqls = [
        stats_sql(source.dialect, tables=tables, experiment_id=experiment_id, pretty=False),
        span_sql(source.dialect, tables=tables, experiment_id=experiment_id),
    ]
    started = time.perf_counter()
    run = _sqlalchemy_query if source.kind == "sqlalchemy" else _duckdb_query
    stats_rows, span_rows = run(source, sqls)
    took = time.perf_counter() - started
    rows = [
        {c: _plain_number(v) for c, v in zip(SUMMARY_COLUMNS, row, strict=True)}
        for row in stats_rows
    ]
    days = None
    if span_rows and span_rows[0]:
        first, last = (_seconds(v) for v in span_rows[0][:2])
        if first is not None and last is not None and last > first:
            days = (last - first) / 86400.0
    return rows, days, took


def fetch_covariates(
    source: Source, experiment_id: int | str
) -> tuple[dict[str, dict[str, Any]] | None, str, float]:
    """The CUPED covariate sums per variant computed in the engine (``sql.covariate_sql``),
    or None and why not (the users or interactions are not there), and seconds taken.

    Run apart from the statistics, so that an engine without the pre-period tables still
    gives the unadjusted analysis."""
    from smart_suggest.analysis.cuped import COVARIATE_COLUMNS
    from smart_suggest.analysis.sql import covariate_sql

    if source.kind == "files":
        absent = [t for t in ("users", "interactions") if t not in source.tables]
        if absent:
            return (
                None,
                f"no {' or '.join(absent)} file beside the events (users(id, created_at), "
                "interactions(user_id, ts)): no pre-period to adjust with",
                0.0,
            )
    tables = source.tables if source.kind != "files" else {}
    sql = covariate_sql(source.dialect, tables=tables, experiment_id=experiment_id, pretty=False)
    started = time.perf_counter()
    run = _sqlalchemy_query if source.kind == "sqlalchemy" else _duckdb_query
    try:
        (cov_rows,) = run(source, [sql])
    except (InputError, EngineError) as exc:
        # A missing table or column, or times that are not Unix seconds (timestamp minus a
        # number fails): the statistics are in hand, so the analysis goes on unadjusted.
        return None, f"the pre-period data cannot be read there ({exc})", 0.0
    took = time.perf_counter() - started
    out = {}
    for row in cov_rows:
        values = dict(zip(("variant", *COVARIATE_COLUMNS), row, strict=True))
        out[str(values["variant"])] = {k: _plain_number(v) for k, v in values.items()}
    return out, "", took


def experiment_key(text: str) -> int | str:
    """The experiment id as the engine stores it: an integer when it looks like one."""
    t = text.strip()
    if t.isascii() and t.isdigit():
        return int(t)
    if not t or len(t) > 200:
        raise InputError("--source: give the experiment's id as stored in the events table")
    return t


def sums_from_source(
    source: Source,
    experiment: str,
    *,
    treatment_share: float | None = 0.5,
) -> tuple[list[dict[str, Any]], int | str, float]:
    """The rows of sums of experiment ``experiment`` in ``source`` (every variant, with
    ``treatment_share`` when given and the days run), its key there and seconds taken."""
    key = experiment_key(experiment)
    rows, days, took = fetch_stats(source, key)
    if not any(int(r["users_assigned"]) or int(r["impressions"]) for r in rows):
        raise InputError(
            f"{source.label}: experiment {str(key)[:80]!r} has no assignments and no events there"
        )
    for r in rows:
        if treatment_share is not None:
            r["treatment_share"] = treatment_share
        if days is not None:
            r["days"] = days
    return rows, key, took


def inputs_from_source(
    source: Source,
    experiment: str,
    *,
    treatment_share: float = 0.5,
) -> tuple[Inputs, float]:
    """The ``Inputs`` of two-variant experiment ``experiment`` in ``source`` (and seconds
    in the engine)."""
    rows, key, took = sums_from_source(source, experiment, treatment_share=treatment_share)
    return inputs_of_rows(source, rows, key), took


def info_of(source: Source, key: int | str, share: float, days: float | None) -> ExperimentInfo:
    return ExperimentInfo.elsewhere(
        str(key),
        share,
        days,
        f"{source.kind}:{source.dialect}",
        id=key if isinstance(key, int) else None,
    )


#: Why an external source has no novelty check.
NO_TIMELINE = "no daily data from an external source: novelty check not run"


def inputs_of_rows(source: Source, rows: list[dict[str, Any]], key: int | str) -> Inputs:
    a, b, share, days_run = parse_rows(rows, source.label)
    return Inputs(info_of(source, key, share, days_run), a, b, None, timeline_note=NO_TIMELINE)


def describe(source: Source) -> Mapping[str, Any]:
    """What ``--json`` reports about the source (no password)."""
    return {"kind": source.kind, "label": source.label, "dialect": dialect_name(source.dialect)}
