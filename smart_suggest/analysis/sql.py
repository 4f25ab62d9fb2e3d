"""The sufficient-statistics SQL in every engine's dialect, written once.

``SUFFICIENT_STATS_SQL`` (``experiments.kpis``) is the definition, in plain SQL that SQLite
runs. Other engines get it through sqlglot, a maintained SQL parser and transpiler, instead
of hand-kept copies per dialect: one text to review, and each engine's quoting, parameter
style and integer arithmetic come from a library that tracks them. Table names can be
replaced (a warehouse keeps its events in ``analytics.events``, not ``events``); the
experiment id is a placeholder when printed and an inlined literal when run, so no driver's
parameter style matters.
"""

from __future__ import annotations

from typing import Any

from smart_suggest.errors import InputError

#: Dialects ``--print-sql --dialect`` knows: our name -> (sqlglot dialect, description).
DIALECTS: dict[str, tuple[str, str]] = {
    "sqlite": ("sqlite", "SQLite (what smart-suggest runs itself)"),
    "duckdb": ("duckdb", "DuckDB (also over Parquet / CSV files)"),
    "postgres": ("postgres", "PostgreSQL"),
    "bigquery": ("bigquery", "Google BigQuery"),
    "snowflake": ("snowflake", "Snowflake"),
    "trino": ("trino", "Trino / Presto / Athena"),
    "spark": ("spark", "Spark SQL / Databricks"),
    "mysql": ("mysql", "MySQL / MariaDB"),
}
#: Aliases accepted for ``--dialect`` (and URL schemes).
_ALIASES = {
    "postgresql": "postgres",
    "pg": "postgres",
    "presto": "trino",
    "athena": "trino",
    "databricks": "spark",
    "sparksql": "spark",
    "mariadb": "mysql",
}

#: The tables the SQL reads, and the columns it needs of each (users and interactions,
#: and assignments.user_id / assigned_at, only for the CUPED covariate sums).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("experiment_id", "variant", "user_id", "type", "value"),
    "assignments": ("experiment_id", "variant", "user_id", "assigned_at"),
    "users": ("id", "created_at"),
    "interactions": ("user_id", "ts"),
}


def dialect_name(name: str) -> str:
    """Our name of a dialect (``postgresql`` -> ``postgres``); ``InputError`` if unknown."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DIALECTS:
        raise InputError(f"unknown SQL dialect {name[:40]!r} (known: {', '.join(DIALECTS)})")
    return key


def _parse(sql: str) -> Any:
    import sqlglot

    return sqlglot.parse_one(sql, read="sqlite")


def _rename_tables(tree: Any, tables: dict[str, str], dialect: str) -> Any:
    from sqlglot import exp

    if not tables:
        return tree
    targets = {}
    for name, target in tables.items():
        if name not in TABLE_COLUMNS:
            raise InputError(f"unknown table {name!r} (the SQL reads: {', '.join(TABLE_COLUMNS)})")
        try:
            targets[name] = exp.to_table(target, dialect=dialect)
        except Exception:  # sqlglot raises ParseError and friends: all mean a bad name
            raise InputError(f"not a table name: {target[:80]!r}") from None

    def swap(node: Any) -> Any:
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name in targets:
            new = targets[node.name].copy()
            if node.alias:
                new.set("alias", node.args.get("alias"))
            return new
        return node

    return tree.transform(swap)


def _transpile(
    sql: str,
    dialect: str,
    tables: dict[str, str] | None,
    experiment_id: int | str | None,
    pretty: bool,
) -> str:
    from sqlglot import exp

    key = dialect_name(dialect)
    target = DIALECTS[key][0]
    tree = _rename_tables(_parse(sql), tables or {}, target)
    if experiment_id is not None:
        literal = (
            exp.Literal.number(experiment_id)
            if isinstance(experiment_id, int)
            else exp.Literal.string(str(experiment_id))
        )
        tree = exp.replace_placeholders(tree, experiment_id=literal)
    return str(tree.sql(dialect=target, pretty=pretty))


def stats_sql(
    dialect: str = "sqlite",
    *,
    tables: dict[str, str] | None = None,
    experiment_id: int | str | None = None,
    pretty: bool = True,
) -> str:
    """``SUFFICIENT_STATS_SQL`` in ``dialect``.

    ``tables`` maps ``events`` / ``assignments`` to the engine's table names.  With
    ``experiment_id`` the placeholder becomes a literal (for running); without, the
    dialect's own placeholder for ``experiment_id`` stays (for printing).
    """
    from smart_suggest.experiments.kpis import SUFFICIENT_STATS_SQL

    return _transpile(SUFFICIENT_STATS_SQL, dialect, tables, experiment_id, pretty)


def covariate_sql(
    dialect: str = "sqlite",
    *,
    tables: dict[str, str] | None = None,
    experiment_id: int | str | None = None,
    pretty: bool = True,
) -> str:
    """``analysis.cuped.COVARIATE_SUMS_SQL`` (the CUPED covariate sums per variant) in
    ``dialect``, like ``stats_sql``; it also reads ``users`` and ``interactions``."""
    from smart_suggest.analysis.cuped import COVARIATE_SUMS_SQL

    return _transpile(COVARIATE_SUMS_SQL, dialect, tables, experiment_id, pretty)


def span_sql(
    dialect: str, *, tables: dict[str, str] | None = None, experiment_id: int | str
) -> str:
    """First and last event time of the experiment (for the days it has run)."""
    from sqlglot import exp

    key = dialect_name(dialect)
    target = DIALECTS[key][0]
    tree = _parse("SELECT MIN(ts), MAX(ts) FROM events WHERE experiment_id = :experiment_id")
    tree = _rename_tables(tree, tables or {}, target)
    literal = (
        exp.Literal.number(experiment_id)
        if isinstance(experiment_id, int)
        else exp.Literal.string(str(experiment_id))
    )
    tree = exp.replace_placeholders(tree, experiment_id=literal)
    return str(tree.sql(dialect=target))


def print_sql(
    dialect: str = "sqlite", tables: dict[str, str] | None = None, *, covariates: bool = False
) -> str:
    """The SQL with a comment header saying how to use it (``analyze --print-sql``);
    ``covariates`` adds the CUPED covariate columns (``cuped.combined_sql``)."""
    key = dialect_name(dialect)
    names = {
        "events": "events",
        "assignments": "assignments",
        "users": "users",
        "interactions": "interactions",
        **(tables or {}),
    }
    header = (
        "-- smart-suggest: per-variant sufficient statistics of one experiment\n"
        f"-- ({DIALECTS[key][1]}).\n"
        "-- Bind experiment_id (or replace the placeholder with the id). Reads\n"
        f"--   {names['events']}(experiment_id, variant, user_id, type, value) and\n"
        f"--   {names['assignments']}(experiment_id, variant).\n"
        "-- Save the result rows (one per variant) as CSV or JSON and run\n"
        "--   smart-suggest analyze --summary FILE\n"
        "-- or let smart-suggest run it: smart-suggest analyze EXP --source URL\n"
    )
    if covariates:
        from smart_suggest.analysis.cuped import combined_sql, covariate_header

        text = combined_sql()
        body = text if key == "sqlite" and not tables else _transpile(text, key, tables, None, True)
        header += covariate_header(names)
    elif key == "sqlite" and not tables:
        from smart_suggest.experiments.kpis import SUFFICIENT_STATS_SQL

        body = SUFFICIENT_STATS_SQL  # the definition, exactly as written
    else:
        body = stats_sql(key, tables=tables)
    return header + body + ("" if body.endswith("\n") else "\n")
