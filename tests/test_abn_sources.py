"""CUPED and A/B/n from every source, and the CUPED-adjusted verdict.

The same three-variant experiment with pre-period history is analysed from the local
store, from a ``--summary`` file made by ``--print-sql``, from DuckDB over exported files
and from a real PostgreSQL server: the comparisons, Holm, the verdicts and the CUPED
numbers must agree with the SQLite path to 1e-12 (relative).
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlglot
from _pg import local_postgres, pg_bin
from scipy import stats as sps

from smart_suggest.analysis import analyze, analyze_source, analyze_summary
from smart_suggest.analysis.cuped import COVARIATE_COLUMNS, PRE_PERIOD_SECONDS
from smart_suggest.analysis.multiarm import analyze_multi
from smart_suggest.analysis.sql import DIALECTS, print_sql
from smart_suggest.experiments.lifecycle import get_experiment
from smart_suggest.store import open_store

duckdb = pytest.importorskip("duckdb", reason="the warehouse extra (duckdb) is not installed")

_TABLES = {
    "events": ("id", "experiment_id", "variant", "user_id", "item_id", "type", "value", "ts"),
    "assignments": ("experiment_id", "user_id", "variant", "assigned_at"),
    "users": ("id", "created_at"),
    "interactions": ("user_id", "ts"),
}


def _history(db: Path, exp_id: int) -> None:
    """A pre-period for half of the users (created 15 days before their assignment), whose
    interactions in it follow their clicks in the experiment (correlated, as real activity
    is), and one interaction just outside the window that must not count."""
    with open_store(db) as s, s.write() as conn:
        rows = conn.execute(
            "SELECT a.user_id, a.assigned_at, COALESCE(SUM(e.clicks), 0) "
            "FROM assignments a LEFT JOIN event_users e ON e.experiment_id = a.experiment_id "
            "AND e.user_id = a.user_id WHERE a.experiment_id = ? GROUP BY 1, 2 ORDER BY 1",
            (exp_id,),
        ).fetchall()
        rng = np.random.default_rng(3)
        for uid, at, clicks in rows:
            if uid % 2:
                continue
            conn.execute(
                "UPDATE users SET created_at = ? WHERE id = ?",
                (at - PRE_PERIOD_SECONDS - 86_400, uid),
            )
            for _ in range(int(rng.poisson(0.5 + clicks))):
                conn.execute(
                    "INSERT INTO interactions(user_id, item_id, action, ts) "
                    "VALUES (?, 1, 'view', ?)",
                    (uid, at - rng.uniform(1, PRE_PERIOD_SECONDS - 1)),
                )
            conn.execute(
                "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (?, 1, 'view', ?)",
                (uid, at - PRE_PERIOD_SECONDS - 10),
            )


def _dump(db: Path, folder: Path, tables: tuple[str, ...]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    for table in tables:
        cols = _TABLES[table]
        with (folder / f"{table}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for row in conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY 1, 2"):
                w.writerow(
                    ["" if v is None else repr(v) if isinstance(v, float) else v for v in row]
                )
    conn.close()


@pytest.fixture(scope="module")
def abc(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> dict[str, Any]:
    """The demo with a simulated three-variant experiment whose users have a pre-period,
    exported as CSV (with and without the users and interactions)."""
    from smart_suggest.cli import main

    base = tmp_path_factory.mktemp("abn-sources")
    db = base / "demo.db"
    shutil.copy(demo_template, db)
    for args in (
        ["experiment", "create", "abc", "--variant", "v1", "--variant", "v2", "--variant",
         "popular", "--primary-metric", "ctr"],
        ["experiment", "simulate", "abc", "--users", "3000", "--ctr", "0.30,0.31,0.36",
         "--purchase", "0.12,0.12,0.15", "--seed", "5"],
    ):  # fmt: skip
        with pytest.raises(SystemExit) as done:
            main([*args, "--db", str(db)])
        assert done.value.code in (0, None)
    with open_store(db) as s:
        exp_id = get_experiment(s, "abc").id
    _history(db, exp_id)
    _dump(db, base / "full", tuple(_TABLES))
    _dump(db, base / "bare", ("events", "assignments"))
    return {"db": db, "id": exp_id, "full": base / "full", "bare": base / "bare"}


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


def _multi_view(m: Any) -> dict[str, Any]:
    """What every source must agree on: comparisons, Holm, verdicts, SRM, P(best), CUPED."""
    d = m.to_dict()
    return {
        "comparisons": [
            {
                "label": c["label"],
                "p_value": c["p_value"],
                "p_value_holm": c["p_value_holm"],
                "holm_level": c["holm_level"],
                "verdict": c["verdict"],
                "metrics": [
                    {k: x[k] for k in ("metric", "p_value", "ci", "diff", "adjustment")}
                    for x in c["analysis"]["metrics"]
                ],
            }
            for c in d["comparisons"]
        ],
        "srm": d["srm"]["p_value"],
        "prob_best": d["prob_best"],
        "recommendation": d["recommendation"]["text"],
        "cuped": d["cuped"]["metrics"],
    }


@pytest.fixture(scope="module")
def local(abc: dict[str, Any]) -> dict[str, Any]:
    with open_store(abc["db"]) as s:
        m = analyze_multi(s, get_experiment(s, abc["id"]), cuped=True)
    assert m.cuped is not None and m.cuped.applied
    return _multi_view(m)


def test_the_verdict_uses_the_cuped_adjusted_test(abc: dict[str, Any]) -> None:
    with open_store(abc["db"]) as s:
        exp = get_experiment(s, abc["id"])
        on = analyze_multi(s, exp, cuped=True)
        off = analyze_multi(s, exp, cuped=False)
    assert off.cuped is None
    for c_on, c_off in zip(on.comparisons, off.comparisons, strict=True):
        comp = next(x for x in on.cuped.results["ctr"].comparisons if x.label == c_on.label)
        pm = c_on.analysis.primary
        # The primary metric's difference, p and interval are the adjusted test's, as the
        # normal z test on the adjusted difference computes them (scipy), at Holm's level.
        assert pm.adjustment == "cuped" and "CUPED" in pm.method
        assert pm.diff == pytest.approx(comp.adjusted_diff, rel=1e-12)
        z = comp.adjusted_diff / comp.adjusted_se
        assert c_on.p_value == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)
        crit = sps.norm.isf(c_on.level / 2)
        assert pm.ci.low == pytest.approx(comp.adjusted_diff - crit * comp.adjusted_se, rel=1e-9)
        assert pm.ci.level == pytest.approx(1 - c_on.level)
        # The unadjusted test is kept beside it, and is what --no-cuped decides on.
        pm_off = c_off.analysis.primary
        assert pm_off.adjustment == "" and pm.p_value_test == pytest.approx(pm_off.p_value_test)
        assert c_off.p_value == pytest.approx(pm_off.p_value_test)
        assert pm.p_value != pytest.approx(pm_off.p_value, rel=1e-6, abs=0)
        # The history follows the users' clicks: the adjusted interval is narrower.
        assert comp.ci_narrower_by > 0.02
        width = pm.ci.high - pm.ci.low
        assert width < (pm_off.ci.high - pm_off.ci.low) * 0.98
    assert "cuped" in on.comparisons[0].analysis.methods
    # P(best) from the same adjusted estimates as the verdicts (normal approximations).
    from smart_suggest.stats.multiarm import prob_best_normal

    adj = on.cuped.results["ctr"].variants
    expected = prob_best_normal(
        [v.label for v in adj], [v.adjusted_mean for v in adj], [v.adjusted_se for v in adj]
    )
    assert on.prob_best.probabilities == pytest.approx(expected.probabilities, abs=1e-12)
    assert "CUPED-adjusted" in on.prob_best_label and "CUPED" not in off.prob_best_label


def test_two_variants_cuped_verdict_and_no_cuped(
    abc: dict[str, Any], run_cli: Any, tmp_path: Path
) -> None:
    db = tmp_path / "two.db"
    shutil.copy(abc["db"], db)
    _history(db, 1)
    with open_store(db) as s:
        on = analyze(s, 1, cuped=True)
        off = analyze(s, 1)
    assert on.cuped is not None and on.cuped.applied and off.cuped is None
    ctr_on, ctr_off = on.metric("ctr"), off.metric("ctr")
    comp = on.cuped.results["ctr"].comparisons[0]
    assert ctr_on.diff == pytest.approx(comp.adjusted_diff, rel=1e-12)
    assert ctr_on.adjustment == "cuped" and ctr_off.adjustment == ""
    # Unadjusted: the plain user-level ratio test.
    assert ctr_off.p_value == pytest.approx(ctr_off.detail.p_value)
    assert ctr_on.p_value_test == pytest.approx(ctr_off.p_value_test)
    # Too few conversions for a normal test (an expected cell below 5): Fisher's exact
    # test stays the verdict's, CUPED or not, and the note says why.
    conv = on.metric("conversion_rate")
    assert off.metric("conversion_rate").test == conv.test == "fisher_exact"
    assert conv.adjustment == "" and "Fisher's exact test decides" in conv.note
    assert conv.p_value == off.metric("conversion_rate").p_value
    # Engagement has no covariate: unchanged.
    assert on.metric("engagement").p_value == off.metric("engagement").p_value
    code, out, err = run_cli("analyze", "1", "--db", db, "--json")
    assert code == 0, err
    data = json.loads(out)
    got = next(m for m in data["metrics"] if m["metric"] == "ctr")
    assert got["adjustment"] == "cuped" and got["diff"] == pytest.approx(comp.adjusted_diff)
    code, out, _ = run_cli("analyze", "1", "--db", db, "--json", "--no-cuped")
    data = json.loads(out)
    got = next(m for m in data["metrics"] if m["metric"] == "ctr")
    assert got["adjustment"] == "" and data["cuped"] is None
    code, out, _ = run_cli("analyze", "1", "--db", db)
    assert "verdicts of CTR and conversion use the CUPED-adjusted test" in out
    # Sequential looks keep their own (unadjusted) tests, and say so.
    code, out, _ = run_cli("analyze", "1", "--db", db, "--sequential", "--json")
    data = json.loads(out)
    assert all(m["adjustment"] == "" for m in data["metrics"])
    assert any("sequential verdict uses the unadjusted" in w for w in data["warnings"])


def test_print_sql_summary_with_three_variants_matches_the_store(
    abc: dict[str, Any], local: dict[str, Any], run_cli: Any, tmp_path: Path
) -> None:
    code, sql, _ = run_cli("analyze", "--print-sql")
    assert code == 0
    conn = sqlite3.connect(abc["db"])
    cur = conn.execute(sql, {"experiment_id": abc["id"]})
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    conn.close()
    assert [r["variant"] for r in rows] == ["A", "B", "C"]
    assert set(COVARIATE_COLUMNS) <= set(names)
    m = analyze_summary(rows, source="s.csv", metric="ctr", cuped=True)
    _close(_multi_view(m), local)
    # Through the CLI, from a CSV file.
    path = tmp_path / "s.csv"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=names)
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue())
    code, out, err = run_cli("analyze", "--summary", path, "--metric", "ctr", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["recommendation"]["text"] == local["recommendation"]
    assert [c["label"] for c in data["comparisons"]] == ["B", "C"]
    # Weights: a weight column changes the SRM expectation (2:1:1 does not fit 1:1:1).
    weighted = [{**r, "weight": w} for r, w in zip(rows, (2, 1, 1), strict=True)]
    bad = analyze_summary(weighted, source="s.csv", metric="ctr")
    assert bad.srm.flagged and bad.recommendation.text == "invalid"


def test_summary_gap_and_weights_are_checked(abc: dict[str, Any], run_cli: Any) -> None:
    from smart_suggest.errors import InputError

    conn = sqlite3.connect(abc["db"])
    code, sql, _ = run_cli("analyze", "--print-sql")
    assert code == 0
    cur = conn.execute(sql, {"experiment_id": abc["id"]})
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    conn.close()
    with pytest.raises(InputError, match="no row for variant B"):
        analyze_summary([rows[0], rows[2]], source="s.csv")
    with pytest.raises(InputError, match="weight on every row"):
        analyze_summary([{**rows[0], "weight": 1}, rows[1], rows[2]], source="s.csv")
    with pytest.raises(InputError, match="must be > 0"):
        analyze_summary([{**r, "weight": 0} for r in rows], source="s.csv")


def test_duckdb_files_with_users_and_interactions_match_sqlite(
    abc: dict[str, Any], local: dict[str, Any]
) -> None:
    result, info = analyze_source(str(abc["full"]), str(abc["id"]), cuped=True)
    assert info["dialect"] == "duckdb" and "cuped_note" not in info
    _close(_multi_view(result), local)


def test_two_variants_with_cuped_from_duckdb_match_sqlite(abc: dict[str, Any]) -> None:
    def view(an: Any) -> dict[str, Any]:
        d = an.to_dict()
        return {
            "metrics": [
                {k: m[k] for k in ("metric", "p_value", "p_value_test", "ci", "diff", "verdict")}
                for m in d["metrics"]
            ],
            "verdict": d["verdict"],
            "cuped": d["cuped"]["metrics"],
        }

    with open_store(abc["db"]) as s:
        local = analyze(s, 1, cuped=True)
    assert local.cuped is not None and local.cuped.applied
    result, info = analyze_source(str(abc["full"]), "1", cuped=True)
    assert "cuped_note" not in info
    _close(view(result), view(local))


def test_duckdb_without_pre_period_tables_is_unadjusted_and_says_why(
    abc: dict[str, Any], run_cli: Any
) -> None:
    result, info = analyze_source(str(abc["bare"]), str(abc["id"]), cuped=True)
    assert result.cuped is None and "no users or interactions file" in info["cuped_note"]
    code, out, err = run_cli("analyze", str(abc["id"]), "--source", abc["bare"], "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["cuped"] is None and "cuped_note" in data["source"]
    code, out, _ = run_cli("analyze", str(abc["id"]), "--source", abc["bare"])
    assert code == 0 and "CUPED: not applied (no users or interactions file" in out
    # --weights with a source: 2:1:1 against equal split flags the ratio.
    code, out, err = run_cli(
        "analyze", str(abc["id"]), "--source", abc["bare"], "--weights", "2,1,1", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["srm"]["flagged"]
    code, _, err = run_cli("analyze", str(abc["id"]), "--source", abc["bare"], "--weights", "2,1")
    assert code == 2 and "2 weights for the 3 variants" in err


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_print_sql_has_the_covariate_columns_in_every_dialect(dialect: str) -> None:
    target = DIALECTS[dialect][0]
    text = print_sql(dialect, {"interactions": "lake.interactions"}, covariates=True)
    body = "\n".join(ln for ln in text.splitlines() if not ln.startswith("--"))
    tree = sqlglot.parse_one(body, read=target)
    cols = [c.alias_or_name for c in tree.selects]
    assert cols[-len(COVARIATE_COLUMNS) :] == list(COVARIATE_COLUMNS)
    names = {".".join(p for p in (t.db, t.name) if p) for t in tree.find_all(sqlglot.exp.Table)}
    assert {"lake.interactions", "users", "assignments", "events"} <= names
    assert "lake.interactions(user_id, ts)" in text


def test_print_sql_json_lists_the_cuped_columns(run_cli: Any) -> None:
    code, out, _ = run_cli("analyze", "--print-sql", "--dialect", "postgres", "--json")
    data = json.loads(out)
    assert code == 0 and data["cuped_columns"] == list(COVARIATE_COLUMNS)
    assert "cov_sum_x" in data["sql"]


# -- PostgreSQL ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_abc(abc: dict[str, Any]) -> Iterator[str]:
    pytest.importorskip("psycopg", reason="the warehouse extra (psycopg) is not installed")
    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    import psycopg

    types = {
        "events": "id bigint, experiment_id bigint, variant text, user_id bigint, "
        "item_id bigint, type text, value double precision, ts double precision",
        "assignments": "experiment_id bigint, user_id bigint, variant text, "
        "assigned_at double precision",
        "users": "id bigint, created_at double precision",
        "interactions": "user_id bigint, ts double precision",
    }
    with local_postgres() as url:
        with psycopg.connect(url) as conn:
            conn.execute("CREATE SCHEMA lake")
            for table, cols in types.items():
                conn.execute(f"CREATE TABLE lake.{table} ({cols})")
                with (
                    (abc["full"] / f"{table}.csv").open() as fh,
                    conn.cursor().copy(
                        f"COPY lake.{table} FROM STDIN WITH (FORMAT csv, HEADER true)"
                    ) as copy,
                ):
                    copy.write(fh.read())
            conn.commit()
        yield url


def test_postgres_cuped_and_three_variants_match_sqlite(
    pg_abc: str, abc: dict[str, Any], local: dict[str, Any]
) -> None:
    tables = {f"{t}_table": f"lake.{t}" for t in ("events", "assignments", "users", "interactions")}
    result, info = analyze_source(pg_abc, str(abc["id"]), cuped=True, **tables)
    assert info["dialect"] == "postgres" and "cuped_note" not in info
    _close(_multi_view(result), local)
    # Without the pre-period tables there: unadjusted, with the reason; nothing fails.
    result, info = analyze_source(
        pg_abc,
        str(abc["id"]),
        cuped=True,
        events_table="lake.events",
        assignments_table="lake.assignments",
    )
    assert result.cuped is None and "cannot be read" in info["cuped_note"]
