"""`smart-suggest analyze` and `smart-suggest power`: output, JSON, exit codes, bad input."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smart_suggest import stats
from smart_suggest.analysis import FAIL_CONDITIONS, SUMMARY_COLUMNS
from smart_suggest.store import open_store

Runner = Callable[..., tuple[int, str, str]]
Rows = Callable[[Path], dict[str, list[tuple[object, ...]]]]


def _json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"JSON contains {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def seeded(db_path: Path, run_cli: Runner) -> Path:
    code, _, err = run_cli("seed", "--db", db_path, "--json")
    assert code == 0, err
    return db_path


def _add_experiment(
    path: Path, name: str, assign: list[tuple[int, str]], share: float = 0.5
) -> int:
    """An experiment with assignments written directly (for skewed splits)."""
    from smart_suggest.experiments.lifecycle import create_experiment

    with open_store(path) as s:
        exp = create_experiment(s, name, treatment_share=share, primary_metric="ctr")
        with s.write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO users(id, username, created_at) VALUES (?, ?, ?)",
                [(u, f"user{u}", exp.created_at) for u, _ in assign],
            )
            conn.executemany(
                "INSERT INTO assignments VALUES (?, ?, ?, ?)",
                [(exp.id, u, v, exp.created_at) for u, v in assign],
            )
            conn.executemany(
                "INSERT INTO events(experiment_id, variant, user_id, type, ts) "
                "VALUES (?, ?, ?, 'impression', ?)",
                [(exp.id, v, u, exp.created_at + u) for u, v in assign],
            )
        return exp.id


def test_analyze_demo_tables_and_conclusion(seeded: Path, run_cli: Runner) -> None:
    code, out, err = run_cli("analyze", "1", "--db", seeded)
    assert code == 0, err
    for text in (
        "homepage-recs-v1-vs-v2",
        "Tests, B vs A",
        "CTR/impr.*",
        "Conversion",
        "Engagement",
        "Sample ratio",
        "No sample ratio mismatch",
        "Bayesian",
        "Power",
        "Novelty",
        "Overall verdict: ✔ Worth shipping",
        "Variant B has",
        "assumes independent impressions",
        "Holm-adjusted",
    ):
        assert text in out, text
    assert "Sequential" not in out
    code, out, _ = run_cli("analyze", "homepage-recs-v1-vs-v2", "--db", seeded, "--sequential")
    assert code == 0 and "Sequential" in out and "mSPRT" in out and "tau^2" in out


def test_analyze_fits_80_columns(
    seeded: Path, run_cli: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smart_suggest.cli._common import console

    # The shared console read COLUMNS when it was created: set its width directly.
    monkeypatch.setattr(console, "width", 80)
    code, out, _ = run_cli("analyze", "1", "--db", seeded, "--sequential")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    # The test table's intervals are not broken across lines.
    assert "[+" in out and not any(line.rstrip().endswith("[+") for line in out.splitlines())


def test_analyze_json_has_every_number(seeded: Path, run_cli: Runner) -> None:
    code, out, err = run_cli("analyze", "1", "--db", seeded, "--json", "--alpha", "0.01")
    assert code == 0, err
    data = _json(out)
    assert data["alpha"] == 0.01 and data["version"]
    assert data["experiment"]["id"] == 1 and data["generated_at"].endswith("Z")
    ctr = data["metrics"][0]
    assert ctr["metric"] == "ctr" and ctr["test"] == "delta_method_z"
    assert ctr["detail"]["alpha"] == 0.01 and ctr["ci"]["level"] == pytest.approx(0.99)
    assert ctr["per_impression"]["test"] in ("chi_square", "fisher_exact")
    assert data["methods"]["ctr"].startswith("user-level ratio test")
    assert data["srm"]["p_value"] > 0.001
    assert "fail_on" not in data


def test_analyze_metric_and_min_lift(seeded: Path, run_cli: Runner) -> None:
    code, out, _ = run_cli(
        "analyze", "1", "--db", seeded, "--json", "--metric", "engagement", "--min-lift", "0.5"
    )
    assert code == 0
    data = _json(out)
    assert data["primary_metric"] == "engagement" and data["min_lift"] == 0.5
    # A +22% engagement lift is significant but below a 50% practical threshold.
    assert data["verdict"] == "stat_sig_but_small_effect"


def test_fail_on_exit_codes(seeded: Path, run_cli: Runner) -> None:
    # The demo ships: no condition holds.
    code, out, err = run_cli(
        "analyze", "1", "--db", seeded, "--fail-on", "srm,invalid,negative,underpowered,no-win"
    )
    assert code == 0, err
    code, out, _ = run_cli("analyze", "1", "--db", seeded, "--json", "--fail-on", "srm")
    assert code == 0 and _json(out)["fail_on"] == {
        "conditions": ["srm"],
        "holding": [],
        "exit_code": 0,
    }

    skewed = _add_experiment(
        seeded,
        "skewed",
        [(u, "A") for u in range(1000, 1300)] + [(u, "B") for u in range(1300, 1400)],
    )
    code, out, err = run_cli("analyze", str(skewed), "--db", seeded, "--fail-on", "srm")
    assert code == FAIL_CONDITIONS["srm"][0] == 3
    assert "Sample ratio mismatch" in out and "--fail-on: srm holds (exit 3)" in err
    code, _, _ = run_cli("analyze", str(skewed), "--db", seeded, "--fail-on", "invalid")
    assert code == 4
    # Several conditions: the lowest code wins; repeated flags combine.
    code, out, _ = run_cli(
        "analyze", str(skewed), "--db", seeded, "--json", "--fail-on", "no-win", "--fail-on", "srm"
    )
    assert code == 3
    assert _json(out)["fail_on"]["holding"] == ["no-win", "srm"]

    fresh = _add_experiment(seeded, "fresh", [])
    code, _, _ = run_cli("analyze", str(fresh), "--db", seeded, "--fail-on", "no-win")
    assert code == 7
    code, _, _ = run_cli("analyze", str(fresh), "--db", seeded, "--fail-on", "underpowered,no-win")
    assert code == 6
    code, _, _ = run_cli("analyze", str(fresh), "--db", seeded, "--fail-on", "srm,negative")
    assert code == 0


def test_fail_on_negative(tmp_path: Path, run_cli: Runner) -> None:
    db = tmp_path / "neg.db"
    code, _, err = run_cli(
        "seed",
        "--db",
        db,
        "--users",
        "600",
        "--items",
        "20",
        "--interactions",
        "0",
        "--events",
        "30000",
        "--json",
    )
    assert code == 0, err
    # The synthetic seed has B better: flip the variants' events to make B worse. (Events
    # cannot be changed one by one; a bulk load may, and summarises them again.)
    with open_store(db) as s, s.bulk_load(("events", "assignments")) as conn:
        conn.execute("UPDATE events SET variant = CASE variant WHEN 'A' THEN 'B' ELSE 'A' END")
        conn.execute("UPDATE assignments SET variant = CASE variant WHEN 'A' THEN 'B' ELSE 'A' END")
    code, out, _ = run_cli("analyze", "1", "--db", db, "--fail-on", "negative")
    assert code == 5 and "B is worse" in out


def test_help_documents_the_exit_codes(run_cli: Runner) -> None:
    code, out, _ = run_cli("analyze", "--help")
    assert code == 0
    flat = " ".join(out.split())
    for name, (exit_code, _) in FAIL_CONDITIONS.items():
        assert f"{name} {exit_code}" in flat


@pytest.mark.parametrize(
    "args",
    [
        ["--alpha", "0"],
        ["--alpha", "1.5"],
        ["--alpha", "nan"],
        ["--min-lift", "-0.1"],
        ["--metric", "revenue"],
        ["--fail-on", "srm,bogus"],
        ["--summary", "x.csv"],  # with an experiment too
    ],
)
def test_analyze_bad_input_exit_2_nothing_written(
    seeded: Path, run_cli: Runner, db_rows: Rows, args: list[str], tmp_path: Path
) -> None:
    before = db_rows(seeded)
    code, out, err = run_cli("analyze", "1", "--db", seeded, *args)
    assert code == 2 and out == ""
    assert err.startswith("smart-suggest: error:") and err.count("\n") == 1
    assert db_rows(seeded) == before
    # Validation happens before the database is opened: no file is created.
    missing = tmp_path / "never.db"
    code, _, _ = run_cli("analyze", "1", "--db", missing, *args)
    assert code == 2 and not missing.exists()


def test_analyze_missing_or_unknown_experiment(seeded: Path, run_cli: Runner) -> None:
    code, _, err = run_cli("analyze", "--db", seeded)
    assert code == 2 and "missing experiment" in err
    code, _, err = run_cli("analyze", "nope", "--db", seeded)
    assert code == 2 and "no experiment 'nope'" in err


def _sql_csv(path: Path, exp_id: int, sql: str, extra: dict[str, Any] | None = None) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cur = conn.execute(sql, {"experiment_id": exp_id})
        names = [d[0] for d in cur.description]
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(names + list(extra or {}))
        for row in cur.fetchall():
            w.writerow([*row, *(extra or {}).values()])
        return buf.getvalue()
    finally:
        conn.close()


def test_print_sql_and_summary_round_trip(
    seeded: Path, run_cli: Runner, tmp_path: Path, approx_tree: Callable[[Any], Any]
) -> None:
    code, sql, _ = run_cli("analyze", "--print-sql")
    assert code == 0 and "SELECT" in sql and ":experiment_id" in sql
    code, out, _ = run_cli("analyze", "--print-sql", "--json")
    assert code == 0 and _json(out)["sql"] == sql.rstrip("\n") + "\n"
    assert _json(out)["columns"] == list(SUMMARY_COLUMNS)

    # The printed SQL on the seeded SQLite file gives the numbers `experiment results` has
    # (results reads the per-user summary: sums of seconds agree to rounding).
    from smart_suggest.experiments.kpis import results

    with open_store(seeded) as s:
        res = results(s, 1)
    text = _sql_csv(seeded, 1, sql)
    rows = list(csv.DictReader(io.StringIO(text)))
    for row, kpi in zip(rows, res.variants, strict=True):
        assert row["variant"] == kpi.variant
        for col in SUMMARY_COLUMNS[1:]:
            assert float(row[col]) == approx_tree(float(getattr(kpi, col))), col

    # Feeding that output to --summary gives the same analysis as analyze EXP.
    code, out, _ = run_cli("analyze", "1", "--db", seeded, "--json", "--sequential")
    db = _json(out)
    summary = tmp_path / "stats.csv"
    summary.write_text(_sql_csv(seeded, 1, sql, {"days": db["experiment"]["days_run"]}))
    code, out, err = run_cli(
        "analyze", "--summary", summary, "--metric", "ctr", "--json", "--sequential"
    )
    assert code == 0, err
    sm = _json(out)
    assert sm["experiment"]["source"] == "summary" and sm["experiment"]["name"] == "stats.csv"
    for key in ("metrics", "srm", "holm", "bayes", "sequential", "power", "verdict", "conclusion"):
        assert sm[key] == approx_tree(db[key]), key
    code, out, _ = run_cli("analyze", "--summary", summary)
    assert code == 0 and "Overall verdict" in out and "stats.csv" in out


def test_summary_from_stdin(seeded: Path) -> None:
    import subprocess
    import sys

    from smart_suggest.analysis import print_sql

    text = _sql_csv(seeded, 1, print_sql())
    res = subprocess.run(
        [sys.executable, "-m", "smart_suggest", "analyze", "--summary", "-", "--json"],
        input=text,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert _json(res.stdout)["experiment"]["name"] == "stdin"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("variant,clicks\nA,1\nB,2\n", "missing column(s)"),
        (None, "is not a number"),
        ("", "empty"),
        ('[{"variant": "A"}', "not valid JSON"),
    ],
)
def test_summary_bad_file_exit_2(
    tmp_path: Path, run_cli: Runner, content: str | None, message: str
) -> None:
    path = tmp_path / "bad.csv"
    if content is None:
        header = ",".join(SUMMARY_COLUMNS)
        good = ",".join(["A"] + ["1"] * (len(SUMMARY_COLUMNS) - 1))
        bad = ",".join(["B", "lots"] + ["1"] * (len(SUMMARY_COLUMNS) - 2))
        content = f"{header}\n{good}\n{bad}\n"
    path.write_text(content)
    code, out, err = run_cli("analyze", "--summary", path)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1 and str(path) in err
    code, _, err = run_cli("analyze", "--summary", tmp_path / "missing.csv")
    assert code == 2 and "no such file" in err


def test_print_sql_refuses_an_experiment(run_cli: Runner) -> None:
    code, out, err = run_cli("analyze", "1", "--print-sql")
    assert code == 2 and out == "" and "--print-sql" in err


# --- power ---------------------------------------------------------------------------------


def test_power_matches_the_calculator(run_cli: Runner) -> None:
    code, out, err = run_cli("power", "--baseline", "0.12", "--mde", "0.02")
    assert code == 0, err
    n = stats.sample_size_proportions(0.12, 0.02)
    assert f"{n.n_per_variant:,}" in out and f"{n.n_total:,}" in out
    code, out, _ = run_cli("power", "--baseline", "0.12", "--mde", "0.02", "--json")
    data = _json(out)
    assert data["sample_size"] == n.to_dict()
    assert data["duration"] is None
    code, out, _ = run_cli(
        "power",
        "--baseline",
        "0.3",
        "--mde",
        "0.1",
        "--relative",
        "--alpha",
        "0.01",
        "--power",
        "0.9",
        "--daily-users",
        "1500",
        "--traffic",
        "0.5",
        "--json",
    )
    data = _json(out)
    n2 = stats.sample_size_proportions(0.3, 0.1, relative=True, alpha=0.01, power=0.9)
    assert data["sample_size"] == n2.to_dict()
    dur = stats.expected_duration(n2.n_per_variant, 1500, traffic_fraction=0.5)
    assert data["duration"] == dur.to_dict()
    code, out, _ = run_cli("power", "--baseline", "0.3", "--mde", "0.1", "--daily-users", "100")
    n3 = stats.sample_size_proportions(0.3, 0.1)
    dur3 = stats.expected_duration(n3.n_per_variant, 100)
    assert code == 0 and f"{dur3.days:,.1f} days at 100 eligible users/day" in out


def test_power_mde_for_n(run_cli: Runner) -> None:
    code, out, _ = run_cli("power", "--baseline", "0.12", "--n", "5000", "--json")
    assert code == 0
    data = _json(out)
    assert data["mde"] == stats.mde_proportions(0.12, 5000).to_dict()
    assert data["sample_size"] is None
    code, out, _ = run_cli("power", "--baseline", "0.12", "--n", "5000")
    assert code == 0 and "Detectable with 5,000 per variant" in out
    code, out, _ = run_cli("power", "--baseline", "0.99", "--n", "3")
    assert code == 0 and "none" in out


@pytest.mark.parametrize(
    "args",
    [
        ["--baseline", "0", "--mde", "0.02"],
        ["--baseline", "1.2", "--mde", "0.02"],
        ["--baseline", "abc", "--mde", "0.02"],
        ["--baseline", "0.12"],
        ["--baseline", "0.12", "--mde", "0"],
        ["--baseline", "0.12", "--mde", "0.95"],
        ["--baseline", "0.12", "--mde", "nan"],
        ["--baseline", "0.12", "--mde", "0.02", "--alpha", "1"],
        ["--baseline", "0.12", "--mde", "0.02", "--power", "0"],
        ["--baseline", "0.12", "--mde", "0.02", "--daily-users", "-5"],
        ["--baseline", "0.12", "--mde", "0.02", "--daily-users", "inf"],
        ["--baseline", "0.12", "--mde", "0.02", "--traffic", "0"],
        ["--baseline", "0.12", "--n", "0"],
        ["--mde", "0.02"],
    ],
)
def test_power_bad_input_exit_2(run_cli: Runner, args: list[str]) -> None:
    code, out, err = run_cli("power", *args)
    assert code == 2 and out == ""
    assert err.startswith("smart-suggest: error:") and err.count("\n") == 1


def test_hostile_experiment_name_is_shown_literally(db_path: Path, run_cli: Runner) -> None:
    from smart_suggest.experiments.lifecycle import create_experiment

    with open_store(db_path) as s:
        exp = create_experiment(s, "[bold red]x\x1b[31m")
    code, out, err = run_cli("analyze", str(exp.id), "--db", db_path)
    assert code == 0, err
    assert "[bold red]x\\x1b[31m" in out and "\x1b" not in out


# -- impossible input is refused, never analysed ---------------------------------------------
def _summary_csv(path: Path, **over_b: Any) -> Path:
    base = {
        "users_assigned": 1000,
        "users_exposed": 900,
        "impressions": 4000,
        "clicks": 700,
        "users_converted": 90,
        "purchases": 120,
        "engagement_n": 300,
        "engagement_sum": 9000.0,
        "engagement_sumsq": 400000.0,
        "n_users": 900,
        "sum_clicks": 700,
        "sum_impressions": 4000,
        "sum_clicks_sq": 1500,
        "sum_impressions_sq": 25000,
        "sum_clicks_x_impressions": 4500,
    }
    rows = [{"variant": "A", **base}, {"variant": "B", **base, **over_b}]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_possible_summary_is_analysed(tmp_path: Path, run_cli: Runner) -> None:
    code, _out, err = run_cli("analyze", "--summary", _summary_csv(tmp_path / "s.csv"), "--json")
    assert code == 0, err


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        # A CTR of 117.6% once gave worth_shipping with p = 8e-165.
        ({"clicks": 4704, "sum_clicks": 4704}, "variant B, column sum_clicks"),
        ({"sum_clicks_sq": 1}, "variant B, column sum_clicks_sq"),
        ({"sum_clicks_x_impressions": 10**9}, "variant B, column sum_clicks_x_impressions"),
        ({"engagement_sumsq": 1.0}, "variant B, column engagement_sumsq"),
        ({"users_exposed": 1001, "n_users": 1001}, "variant B, column users_exposed"),
        ({"n_users": 901}, "variant B, column n_users"),
        ({"engagement_sum": -5.0}, "variant B, column engagement_sum"),
        ({"users_assigned": "1_500"}, "variant B, column users_assigned"),
        ({"users_assigned": "1e308"}, "variant B, column users_assigned"),
    ],
)
def test_impossible_summary_exit_2_naming_variant_and_column(
    tmp_path: Path, run_cli: Runner, over: dict[str, Any], needle: str
) -> None:
    path = _summary_csv(tmp_path / "s.csv", **over)
    code, out, err = run_cli("analyze", "--summary", path, "--fail-on", "invalid")
    assert code == 2 and out == ""
    assert needle in err and str(path) in err and err.count("\n") == 1


def test_summary_nested_json_and_endless_files(tmp_path: Path, run_cli: Runner) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    code, _out, err = run_cli("analyze", "--summary", deep)
    assert code == 2 and "nested too deeply" in err and err.count("\n") == 1
    code, _out, err = run_cli("analyze", "--summary", "/dev/zero")
    assert code == 2 and "not a summary file" in err and err.count("\n") == 1


def test_min_lift_out_of_range_exit_2(seeded: Path, run_cli: Runner) -> None:
    code, out, err = run_cli("analyze", "1", "--db", seeded, "--min-lift", "1e308")
    assert code == 2 and out == "" and "min-lift must be at most" in err


def test_a_broken_secondary_metric_makes_the_whole_verdict_invalid(
    db_path: Path, run_cli: Runner
) -> None:
    """Purchases logged without impressions make conversion impossible to test: once the
    primary metric's verdict stood and --fail-on invalid exited 0."""
    from smart_suggest.experiments.lifecycle import create_experiment

    users = range(1, 201)
    with open_store(db_path) as s:
        exp_id = create_experiment(s, "broken", primary_metric="ctr").id
        with s.write() as conn:
            conn.executemany(
                "INSERT INTO users(id, username, created_at) VALUES (?, ?, 1.7e9)",
                [(u, f"user{u}") for u in users],
            )
            conn.executemany(
                "INSERT INTO assignments VALUES (?, ?, ?, 1.7e9)",
                [(exp_id, u, "AB"[u % 2]) for u in users],
            )
            # 20 exposed users per arm; 50 buyers per arm who were never shown anything.
            conn.executemany(
                "INSERT INTO events(experiment_id, variant, user_id, type, ts) "
                "VALUES (?, ?, ?, ?, 1.7e9)",
                [(exp_id, "AB"[u % 2], u, "impression") for u in range(1, 41)]
                + [(exp_id, "AB"[u % 2], u, "purchase") for u in range(101, 201)],
            )
    args = ["analyze", str(exp_id), "--db", db_path, "--json", "--fail-on", "invalid"]
    code, out, err = run_cli(*args)
    data = _json(out)
    assert data["metrics"][0]["metric"] == "ctr" and data["metrics"][0]["verdict"] != "invalid"
    assert data["verdict"] == "invalid"
    assert code == 4, err


def test_power_duration_for_a_trickle_of_users_stays_short(run_cli: Runner) -> None:
    code, out, err = run_cli(
        "power", "--baseline", "0.12", "--mde", "0.02", "--daily-users", "1e-300"
    )
    assert code == 0, err
    assert "more than 100 years" in out and max(len(line) for line in out.splitlines()) < 130


def test_analyze_reading_while_the_statistics_load_prints_what_the_core_computes(
    seeded: Path,
) -> None:
    """In a fresh process the CLI reads the experiment while the statistics import in a
    thread, then hands the reads to the core: the JSON equals the core reading for itself
    (CUPED on, the CLI's default), and --no-cuped likewise."""
    import subprocess
    import sys

    from smart_suggest.analysis import analyze

    for extra, cuped in (((), True), (("--no-cuped",), False)):
        args = ["analyze", "homepage-recs-v1-vs-v2", "--json", "--db", str(seeded), *extra]
        code = f"from smart_suggest.cli import main\nmain({args!r})\n"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        printed = json.loads(done.stdout)
        with open_store(seeded) as store:
            an = analyze(store, "homepage-recs-v1-vs-v2", cuped=cuped)
        expected = an.to_dict()
        expected["cuped"] = None if an.cuped is None else an.cuped.to_dict()
        assert printed == json.loads(json.dumps(expected, default=str))
        assert (printed["cuped"] is not None) == cuped
