"""A/B/n analysis, CUPED from the store and from summaries, k-arm power: end to end."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smart_suggest import clock
from smart_suggest.analysis.cuped import (
    COVARIATE_COLUMNS,
    COVARIATE_SUMS_SQL,
    PRE_PERIOD_SECONDS,
    covariate_sums,
    cuped_for,
)
from smart_suggest.analysis.multiarm import analyze_multi, holm_levels
from smart_suggest.experiments.kpis import daily_assigned, stats_and_daily, sufficient_stats
from smart_suggest.experiments.lifecycle import create_experiment, get_experiment
from smart_suggest.store import open_store


@pytest.fixture
def demo_db(demo_template: Path, db_path: Path) -> Path:
    shutil.copy(demo_template, db_path)
    return db_path


def _simulate_three(db: Path, run_cli: Any, ctr: str = "0.30,0.31,0.36") -> None:
    code, _, err = run_cli(
        "experiment", "create", "abc", "--variant", "v1", "--variant", "v2", "--variant",
        "popular", "--primary-metric", "ctr", "--db", db,
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(
        "experiment", "simulate", "abc", "--users", "6000", "--ctr", ctr,
        "--purchase", "0.12,0.12,0.15", "--seed", "5", "--db", db,
    )  # fmt: skip
    assert code == 0, err


def test_three_variant_analysis_ships_the_best_winner(demo_db: Path, run_cli: Any) -> None:
    _simulate_three(demo_db, run_cli)
    code, out, err = run_cli("analyze", "abc", "--db", demo_db, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["correction"] == "holm" and list(data["variants"]) == ["A", "B", "C"]
    assert data["recommendation"]["text"] == "ship C" and data["verdict"] == "ship"
    comps = {c["label"]: c for c in data["comparisons"]}
    assert comps["C"]["verdict"] == "worth_shipping"
    # Holm over the two comparisons, as statsmodels computes it.
    from statsmodels.stats.multitest import multipletests

    raw = [comps[x]["p_value"] for x in "BC"]
    adjusted = multipletests(raw, method="holm")[1]
    assert [comps[x]["p_value_holm"] for x in "BC"] == pytest.approx(list(adjusted), rel=1e-12)
    assert sum(data["prob_best"].values()) == pytest.approx(1.0)
    assert data["prob_best"]["C"] > 0.99
    assert data["srm"]["df"] == 2 and not data["srm"]["flagged"]
    code, out, _ = run_cli("analyze", "abc", "--db", demo_db)
    assert code == 0 and "ship C" in out and "Holm" in out
    code, _, _ = run_cli("analyze", "abc", "--db", demo_db, "--fail-on", "no-win")
    assert code == 0
    code, out, _ = run_cli("experiment", "results", "abc", "--db", demo_db)
    assert code == 0 and "C (popular)" in out and "C vs A" in out
    code, out, _ = run_cli("experiment", "timeline", "abc", "--db", demo_db)
    assert code == 0 and "C CTR" in out


def test_aaa_keeps_a_and_a_broken_split_is_invalid(demo_db: Path, run_cli: Any) -> None:
    _simulate_three(demo_db, run_cli, "0.30,0.30,0.30")
    with open_store(demo_db) as s:
        exp = get_experiment(s, "abc")
        an = analyze_multi(s, exp)
        assert an.recommendation.text == "keep A"
        # Drop a third of C's users: the k-category SRM check fails, nothing is trusted.
        with s.write() as conn:
            conn.execute(
                "DELETE FROM assignments WHERE experiment_id = ? AND variant = 'C' "
                "AND user_id % 3 = 0",
                (exp.id,),
            )
        bad = analyze_multi(s, exp)
        assert bad.srm.flagged and bad.recommendation.text == "invalid"


def test_holm_levels_step_down_and_stop() -> None:
    assert holm_levels([0.01, 0.04], 0.05) == [0.025, 0.05]
    # The first fails at 0.025: the second is held to the same level (not significant).
    assert holm_levels([0.03, 0.04], 0.05) == [0.025, 0.025]
    assert holm_levels([0.2, 0.001, 0.02], 0.05) == [0.05, 0.05 / 3, 0.025]


def _history(db: Path, exp_id: int) -> None:
    """Pre-period interactions: some users active in the 14 days before assignment, with
    clicks during the experiment that follow their activity."""
    with open_store(db) as s, s.write() as conn:
        rows = conn.execute(
            "SELECT user_id, assigned_at FROM assignments WHERE experiment_id = ?", (exp_id,)
        ).fetchall()
        rng = np.random.default_rng(1)
        for uid, at in rows:
            if uid % 2:  # half of the users joined well before: a full pre-period (h = 1)
                conn.execute(
                    "UPDATE users SET created_at = ? WHERE id = ?",
                    (at - PRE_PERIOD_SECONDS - 86_400, uid),
                )
            for _ in range(int(rng.poisson(3))):
                conn.execute(
                    "INSERT INTO interactions(user_id, item_id, action, ts) "
                    "VALUES (?, 1, 'view', ?)",
                    (uid, at - rng.uniform(1, PRE_PERIOD_SECONDS - 1)),
                )
            # An interaction outside the window never counts.
            conn.execute(
                "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (?, 1, 'view', ?)",
                (uid, at - PRE_PERIOD_SECONDS - 10),
            )


def test_covariate_sums_store_and_definition_agree_and_feed_cuped(
    demo_db: Path, run_cli: Any
) -> None:
    _simulate_three(demo_db, run_cli)
    with open_store(demo_db) as s:
        exp = get_experiment(s, "abc")
        _history(demo_db, exp.id)
        stored = covariate_sums(s, exp.id)
        assert stored == covariate_sums(s, exp.id, COVARIATE_SUMS_SQL)
        # The KPI rows results() reads in one pass over the assignments, every label.
        one_pass = stats_and_daily(s, exp.id)
        assert one_pass == (sufficient_stats(s, exp.id), daily_assigned(s, exp.id))
        assert set(one_pass[0]) == {"A", "B", "C"} and one_pass[0]["C"]["users_assigned"] > 0
        # Check one variant by hand.
        rows = s.conn.execute(
            "SELECT a.user_id, a.assigned_at, u.created_at, eu.clicks, eu.impressions "
            "FROM assignments a JOIN users u ON u.id = a.user_id JOIN event_users eu "
            "ON eu.experiment_id = a.experiment_id AND eu.user_id = a.user_id "
            "WHERE a.experiment_id = ? AND a.variant = 'B' AND eu.impressions > 0",
            (exp.id,),
        ).fetchall()
        sum_x = n_pre = 0
        for uid, at, created, _c, _m in rows:
            # Only users with a full pre-period have x (x = 0 wherever h = 0).
            if created <= at - PRE_PERIOD_SECONDS:
                n_pre += 1
                sum_x += s.scalar(
                    "SELECT COUNT(*) FROM interactions WHERE user_id = ? AND ts >= ? AND ts < ?",
                    (uid, at - PRE_PERIOD_SECONDS, at),
                )
        assert stored["B"]["cov_n"] == len(rows) and stored["B"]["cov_sum_x"] == sum_x
        assert stored["B"]["cov_n_pre"] == n_pre and 0 < n_pre < len(rows) and sum_x > 0
        summary = cuped_for(s, exp.id, list(exp.labels))
        assert summary.applied and set(summary.results) == {"ctr", "conversion_rate"}
        assert [c.label for c in summary.results["ctr"].comparisons] == ["B", "C"]


def test_cuped_in_the_cli_and_no_cuped(demo_db: Path, run_cli: Any) -> None:
    code, out, _ = run_cli("analyze", "1", "--db", demo_db, "--json")
    assert code == 0
    cup = json.loads(out)["cuped"]
    assert cup["applied"] and cup["pre_period_days"] == 14
    ctr = cup["metrics"]["ctr"]["comparisons"][0]
    assert ctr["adjusted_se"] <= ctr["se"] * 1.01 and ctr["variance_reduction"] is not None
    code, out, _ = run_cli("analyze", "1", "--db", demo_db, "--json", "--no-cuped")
    assert json.loads(out)["cuped"] is None
    code, out, _ = run_cli("analyze", "1", "--db", demo_db)
    assert "CUPED (pre-period: 14 days" in out


def test_print_sql_gives_the_cuped_columns_and_summary_uses_them(
    demo_db: Path, run_cli: Any, tmp_path: Path, approx_tree: Any
) -> None:
    code, sql, _ = run_cli("analyze", "--print-sql")
    assert code == 0
    conn = sqlite3.connect(demo_db)
    cur = conn.execute(sql, {"experiment_id": 1})
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    conn.close()
    assert set(COVARIATE_COLUMNS) <= set(names) and [r[0] for r in rows] == ["A", "B"]
    path = tmp_path / "s.csv"
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(names)
    w.writerows(rows)
    path.write_text(buf.getvalue())
    code, out, err = run_cli("analyze", "--summary", path, "--json", "--metric", "ctr")
    assert code == 0, err
    from_summary = json.loads(out)["cuped"]
    code, out, _ = run_cli("analyze", "1", "--db", demo_db, "--json", "--metric", "ctr")
    from_db = json.loads(out)["cuped"]
    assert from_summary["metrics"] == approx_tree(from_db["metrics"])
    # A summary with some covariate columns missing: one clear line, exit 2.
    partial = tmp_path / "p.csv"
    keep = [i for i, n in enumerate(names) if n != "cov_sum_xx"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([names[i] for i in keep])
    w.writerows([[r[i] for i in keep] for r in rows])
    partial.write_text(buf.getvalue())
    code, _, err = run_cli("analyze", "--summary", partial)
    assert code == 2 and "cov_sum_xx" in err and len(err.strip().splitlines()) == 1


def test_power_plans_k_arms(run_cli: Any) -> None:
    code, out, _ = run_cli("power", "--baseline", "0.12", "--mde", "0.02", "--arms", "4", "--json")
    assert code == 0
    data = json.loads(out)
    from smart_suggest.stats import sample_size_proportions

    per = sample_size_proportions(0.12, 0.02, alpha=0.05 / 3)
    assert data["sample_size"]["n_per_variant"] == per.n_per_variant
    assert data["sample_size"]["n_total"] == 4 * per.n_per_variant
    assert data["alpha_per_comparison"] == pytest.approx(0.05 / 3)
    code, out, _ = run_cli("power", "--baseline", "0.12", "--mde", "0.02")
    assert code == 0 and "4,438" in out


def test_create_validates_variants_in_the_cli(demo_db: Path, run_cli: Any) -> None:
    for args, msg in (
        (["--variant", "v1", "--variant", "v2", "--weights", "1,x"], "not a number"),
        (["--variant", "v1", "--variant", "v2", "--control", "v2"], "not both"),
        (["--variant", "v1", "--variant", "nope"], "unknown variant strategy"),
        (["--variant", "v1", "--variant", "v2", "--weights", "1,2,3"], "one weight per variant"),
    ):
        code, _, err = run_cli("experiment", "create", "x", *args, "--db", demo_db)
        assert code == 2 and msg in err and "Traceback" not in err, (args, err)
    with open_store(demo_db) as s:
        assert s.scalar("SELECT COUNT(*) FROM experiments WHERE name = 'x'") == 0
        exp = create_experiment(s, "x", variants=["v1", "v2", "v1", "v2"], weights=[1, 1, 1, 1])
        assert exp.labels == ("A", "B", "C", "D")
    _ = clock
