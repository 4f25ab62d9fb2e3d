"""Analysis where the events live: the same sums from DuckDB and PostgreSQL as from SQLite.

The engines are real: DuckDB in-process over CSV, Parquet and a database file, and a
PostgreSQL server started here on 127.0.0.1 with a free port (skipped, with the reason,
only where PostgreSQL's binaries are not installed). The SQL they run is the one
definition, transpiled by sqlglot.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from _pg import free_port, local_postgres, pg_bin

from smart_suggest.analysis import analyze, analyze_source
from smart_suggest.analysis.sql import DIALECTS, print_sql, stats_sql
from smart_suggest.errors import EngineError, InputError
from smart_suggest.store import open_store

duckdb = pytest.importorskip("duckdb", reason="the warehouse extra (duckdb) is not installed")

EXP_ID = 1
_EVENT_COLS = ("id", "experiment_id", "variant", "user_id", "item_id", "type", "value", "ts")
_ASSIGN_COLS = ("experiment_id", "user_id", "variant", "assigned_at")


def _dump(db: Path, folder: Path) -> tuple[Path, Path]:
    """The demo's events and assignments as CSV files (what a team's export looks like)."""
    folder.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    out = []
    for table, cols in (("events", _EVENT_COLS), ("assignments", _ASSIGN_COLS)):
        path = folder / f"{table}.csv"
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for row in conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY 1, 2"):
                w.writerow(
                    ["" if v is None else repr(v) if isinstance(v, float) else v for v in row]
                )
        out.append(path)
    conn.close()
    return out[0], out[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("warehouse")
    db = base / "demo.db"
    shutil.copy(demo_template, db)
    events, assignments = _dump(db, base / "csv")
    pq = base / "parquet"
    pq.mkdir()
    con = duckdb.connect()
    for name, src in (("events", events), ("assignments", assignments)):
        con.execute(
            f"COPY (SELECT * FROM read_csv_auto('{src}')) TO '{pq / (name + '.parquet')}' "
            "(FORMAT parquet)"
        )
    con.close()
    duck = base / "events.duckdb"
    con = duckdb.connect(str(duck))
    con.execute("CREATE SCHEMA analytics")
    for name, src in (("events", events), ("assignments", assignments)):
        con.execute(f"CREATE TABLE analytics.{name} AS SELECT * FROM read_csv_auto('{src}')")
    con.close()
    return {"db": db, "csv": base / "csv", "parquet": pq, "duckdb": duck}


def _close(x: Any, y: Any, path: str = "") -> None:
    """Equal numbers to 1e-12 (relative), recursively; everything else exactly."""
    if isinstance(x, dict):
        assert set(x) == set(y), path
        for k in x:
            _close(x[k], y[k], f"{path}.{k}")
    elif isinstance(x, list):
        assert len(x) == len(y), path
        for i, (a, b) in enumerate(zip(x, y, strict=True)):
            _close(a, b, f"{path}[{i}]")
    elif isinstance(x, float) or isinstance(y, float):
        assert x is not None and y is not None, path
        assert math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12), f"{path}: {x} != {y}"
    else:
        assert x == y, path


def _comparable(result: Any) -> dict[str, Any]:
    d = result.to_dict()
    # The engine knows labels only; the local store also knows each variant's strategy.
    variants = {
        v: {k: x for k, x in row.items() if k != "strategy"} for v, row in d["variants"].items()
    }
    return {
        "variants": variants,
        "metrics": [
            {k: m[k] for k in ("metric", "p_value", "ci", "diff", "relative_lift", "verdict")}
            for m in d["metrics"]
        ],
        "srm": d["srm"]["p_value"],
        "verdict": d["verdict"],
    }


@pytest.fixture(scope="module")
def local(exported: dict[str, Path]) -> dict[str, Any]:
    with open_store(exported["db"]) as store:
        return _comparable(analyze(store, EXP_ID))


@pytest.mark.parametrize("kind", ["csv", "parquet", "parquet-file", "duckdb"])
def test_duckdb_sources_match_sqlite(
    kind: str, exported: dict[str, Path], local: dict[str, Any]
) -> None:
    tables: dict[str, Any] = {}
    if kind == "csv":
        source = str(exported["csv"])
    elif kind == "parquet":
        source = str(exported["parquet"])
    elif kind == "parquet-file":
        source = str(exported["parquet"] / "events.parquet")
    else:
        source = f"duckdb:///{exported['duckdb']}"
        tables = {"events_table": "analytics.events", "assignments_table": "analytics.assignments"}
    result, info = analyze_source(source, str(EXP_ID), **tables)
    assert info["dialect"] == "duckdb"
    assert info["seconds_in_engine"] > 0
    _close(_comparable(result), local)
    assert result.experiment.days_run is not None and result.experiment.days_run > 0


def test_files_need_assignments(exported: dict[str, Path], tmp_path: Path) -> None:
    lone = tmp_path / "events.csv"
    shutil.copy(exported["csv"] / "events.csv", lone)
    with pytest.raises(InputError, match="no assignments file"):
        analyze_source(str(lone), "1")
    # ...and an explicit --assignments file is used wherever it is.
    result, _ = analyze_source(str(lone), "1", assignments=str(exported["csv"] / "assignments.csv"))
    assert result.variants["A"].users_assigned > 0


def test_unknown_experiment_and_missing_table(exported: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="no assignments and no events"):
        analyze_source(str(exported["parquet"]), "999")
    with pytest.raises(InputError, match=r"analytics\.nope"):
        analyze_source(
            f"duckdb:///{exported['duckdb']}",
            "1",
            events_table="analytics.nope",
            assignments_table="analytics.assignments",
        )


def test_clicks_without_impressions_from_an_engine_are_analysed(tmp_path: Path) -> None:
    """Possible logging (a click with no impression) passes the checks of the sums and is
    analysed; impossible sums are refused by the same checks (tests/test_analysis.py)."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE e AS SELECT 1 AS experiment_id, 'A' AS variant, 7 AS user_id, "
        "'click' AS type, NULL::DOUBLE AS value, 1.7e9 AS ts"
    )
    con.execute(f"COPY e TO '{tmp_path / 'events.parquet'}' (FORMAT parquet)")
    con.execute("CREATE TABLE a AS SELECT 1 AS experiment_id, 7 AS user_id, 'A' AS variant")
    con.execute(f"COPY a TO '{tmp_path / 'assignments.parquet'}' (FORMAT parquet)")
    con.close()
    # A click without impressions is possible logging; analysing it must not crash.
    result, _ = analyze_source(str(tmp_path), "1")
    assert result.variants["A"].clicks == 1


# -- the generated SQL for other engines -------------------------------------------------
@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_transpiled_sql_parses_back_in_its_dialect(dialect: str) -> None:
    target = DIALECTS[dialect][0]
    text = stats_sql(dialect, tables={"events": "analytics.events"})
    tree = sqlglot.parse_one(text, read=target)
    names = {t.sql(dialect=target) for t in tree.find_all(sqlglot.exp.Table)}
    assert "analytics.events" in names and "assignments" in names
    # Every output column of the definition, in order.
    assert [c.alias_or_name for c in tree.selects][:3] == [
        "variant",
        "users_assigned",
        "users_exposed",
    ]
    placeholder = {
        "sqlite": ":experiment_id",
        "duckdb": "$experiment_id",
        "postgres": "%(experiment_id)s",
        "bigquery": "@experiment_id",
        "snowflake": ":experiment_id",
        "trino": ":experiment_id",
        "spark": ":experiment_id",
        "mysql": ":experiment_id",
    }[dialect]
    assert placeholder in text


def test_inlined_ids_are_literals_not_sql() -> None:
    text = stats_sql("postgres", experiment_id="x'; DROP TABLE events; --")
    assert "'x''; DROP TABLE events; --'" in text
    # One statement: every semicolon is inside a quoted literal.
    assert len(sqlglot.parse(text, read="postgres")) == 1


def test_print_sql_dialects_via_cli(run_cli: Any) -> None:
    code, out, err = run_cli("analyze", "--print-sql", "--dialect", "bigquery")
    assert code == 0, err
    assert "@experiment_id" in out and "Google BigQuery" in out
    code, out, err = run_cli("analyze", "--print-sql", "--dialect", "nope")
    assert code == 2 and "unknown SQL dialect" in err and "\n" not in err.strip()
    code, out, err = run_cli("analyze", "1", "--dialect", "postgres")
    assert code == 2 and "--dialect goes with --print-sql" in err


def test_cli_source_json(exported: dict[str, Path], run_cli: Any, local: dict[str, Any]) -> None:
    code, out, err = run_cli("analyze", "1", "--source", str(exported["parquet"]), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["source"]["kind"] == "files" and data["source"]["dialect"] == "duckdb"
    assert data["verdict"] == local["verdict"]
    code, out, err = run_cli("analyze", "1", "--source", "nosuch://x")
    assert code == 2 and "unknown scheme" in err
    code, out, err = run_cli("analyze", "1", "--share", "0.3")
    assert code == 2 and "go with --source" in err


# -- PostgreSQL ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server of our own on 127.0.0.1 (its URL), stopped afterwards."""
    pytest.importorskip("psycopg", reason="the warehouse extra (psycopg) is not installed")
    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    with local_postgres() as url:
        yield url


@pytest.fixture(scope="module")
def pg_loaded(postgres: str, exported: dict[str, Path]) -> str:
    import psycopg

    with psycopg.connect(postgres.replace("postgresql://", "postgresql://", 1)) as conn:
        conn.execute("CREATE SCHEMA lake")
        conn.execute(
            "CREATE TABLE lake.events (id bigint, experiment_id bigint, variant text, "
            "user_id bigint, item_id bigint, type text, value double precision, "
            "ts double precision)"
        )
        conn.execute(
            "CREATE TABLE lake.assignments (experiment_id bigint, user_id bigint, "
            "variant text, assigned_at double precision)"
        )
        for table in ("events", "assignments"):
            with (
                (exported["csv"] / f"{table}.csv").open() as fh,
                conn.cursor().copy(
                    f"COPY lake.{table} FROM STDIN WITH (FORMAT csv, HEADER true)"
                ) as copy,
            ):
                copy.write(fh.read())
        conn.commit()
    return postgres


def test_postgres_matches_sqlite(pg_loaded: str, local: dict[str, Any]) -> None:
    result, info = analyze_source(
        pg_loaded,
        "1",
        events_table="lake.events",
        assignments_table="lake.assignments",
    )
    assert info["dialect"] == "postgres" and info["kind"] == "sqlalchemy"
    _close(_comparable(result), local)


def test_postgres_errors(pg_loaded: str, run_cli: Any) -> None:
    # A missing table is the caller's input (exit 2), named in one line.
    with pytest.raises(InputError, match=r"lake\.nope"):
        analyze_source(
            pg_loaded, "1", events_table="lake.nope", assignments_table="lake.assignments"
        )
    # An unreachable server is the environment (exit 1), one line, no password shown.
    dead = f"postgresql://smart:secret@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(EngineError) as info:
        analyze_source(dead, "1")
    assert "secret" not in str(info.value)
    started = time.monotonic()
    code, _out, err = run_cli("analyze", "1", "--source", dead)
    assert code == 1 and "secret" not in err and len(err.strip().splitlines()) == 1
    assert time.monotonic() - started < 30


def test_print_sql_header_names_the_tables() -> None:
    text = print_sql("postgres", {"events": "lake.events"})
    assert "lake.events(experiment_id, variant, user_id, type, value)" in text
    assert "FROM lake.events" in text
