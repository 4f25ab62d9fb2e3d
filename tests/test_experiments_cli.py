"""`smart-suggest experiment ...`: output, JSON, exit codes, and nothing written on errors."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Rows = Callable[[Path], dict[str, list[tuple[object, ...]]]]


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo data plus experiment "hp" (id 2), built once per module under the fixed clock."""
    from conftest import FIXED_NOW

    from smart_suggest.experiments.lifecycle import create_experiment
    from smart_suggest.sample import load_demo
    from smart_suggest.store import open_store

    path = tmp_path_factory.mktemp("template") / "seeded.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMART_SUGGEST_NOW", FIXED_NOW)
        with open_store(path) as s:
            load_demo(s, seed=42)
            create_experiment(s, "hp")
            s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def seeded(_template: Path, db_path: Path) -> Path:
    shutil.copyfile(_template, db_path)
    return db_path


def _json(run_cli: Any, *args: Any) -> Any:
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_cli_module_imports_no_numpy() -> None:
    code = (
        "import sys, smart_suggest.cli.experiments; "
        "assert 'numpy' not in sys.modules and 'scipy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_create_list_show_stop_delete(seeded: Path, run_cli: Any, db_rows: Rows) -> None:
    code, out, err = run_cli(
        "experiment", "create", "aa-check", "-a", "v1", "-b", "v1", "--traffic", "0.5",
        "--share", "0.3", "-m", "ctr", "--db", seeded,
    )  # fmt: skip
    assert code == 0, err
    assert "Created experiment aa-check (id 3): A = v1, B = v1 (an A/A test)" in out
    assert "50% of users, 30% of them to B" in out
    listed = _json(run_cli, "experiment", "list", "--db", seeded)
    assert [(e["name"], e["users_assigned"]) for e in listed] == [
        ("homepage-recs-v1-vs-v2", 50),
        ("hp", 0),
        ("aa-check", 0),
    ]
    code, out, _ = run_cli("experiment", "list", "--db", seeded)
    assert "Active experiments (3)" in out and "aa-check" in out
    shown = _json(run_cli, "experiment", "show", "aa-check", "--db", seeded)
    assert (shown["traffic_fraction"], shown["treatment_share"], shown["primary_metric"]) == (
        0.5,
        0.3,
        "ctr",
    )
    assert shown["users_assigned"] == {"A": 0, "B": 0}
    code, out, _ = run_cli("experiment", "show", "1", "--db", seeded)
    assert code == 0 and "homepage-recs-v1-vs-v2" in out and "impression events" in out

    code, out, _ = run_cli("experiment", "stop", "aa-check", "--db", seeded)
    assert code == 0 and "Stopped experiment aa-check" in out
    assert [e["name"] for e in _json(run_cli, "experiment", "list", "--db", seeded)] == [
        "homepage-recs-v1-vs-v2",
        "hp",
    ]
    everything = _json(run_cli, "experiment", "list", "--all", "--db", seeded)
    assert everything[-1]["status"] == "stopped"

    before = db_rows(seeded)
    code, out, err = run_cli("experiment", "delete", "1", "--db", seeded)  # no terminal
    assert code == 2 and "refusing without a terminal; pass --yes" in err and out == ""
    assert db_rows(seeded) == before
    report = _json(run_cli, "experiment", "delete", "1", "--yes", "--db", seeded)
    assert report["assignments"] == 50 and report["events"] > 1000
    after = db_rows(seeded)
    assert not any(r[1] == 1 for r in after["events"])
    assert [e[1] for e in after["experiments"]] == ["hp", "aa-check"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create", "hp"), "experiment 'hp' already exists"),
        (("create", "x", "--control", "v9"), "unknown control strategy 'v9'"),
        (("create", "x", "--traffic", "0"), "traffic fraction must be in (0, 1]"),
        (("create", "x", "--share", "1"), "treatment share must be in (0, 1)"),
        (("create", "x", "-m", "revenue"), "unknown metric 'revenue'"),
        (("create", "42"), "must not be all digits"),
        (("show", "nope"), "no experiment 'nope'"),
        (("stop", "nope"), "no experiment 'nope'"),
        (("delete", "nope", "--yes"), "no experiment 'nope'"),
        (("serve", "hp", "nobody"), "no user 'nobody'"),
        (("serve", "nope", "1"), "no experiment 'nope'"),
        (("serve", "hp", "1", "--count", "0"), "--count"),
        (("log", "hp", "4", "1", "click"), "user 'dave' was never assigned"),
        (("log", "hp", "2", "999", "click"), "no item with id 999"),
        (("log", "hp", "2", "1", "engagement"), "needs a value"),
        (("log", "hp", "2", "1", "engagement", "--value", "-5"), "must not be negative"),
        (("log", "hp", "2", "1", "engagement", "--value", "nan"), "finite"),
        (("log", "hp", "2", "1", "engagement", "--value", "inf"), "finite"),
        (("log", "hp", "2", "1", "click", "--value", "3"), "takes no value"),
        (("log", "hp", "2", "1", "like"), "unknown event type 'like'"),
        (("log", "hp", "2", "1", "click", "--ts", "soon"), "not a timestamp"),
        (("log", "hp", "2", "1"), "missing USER ITEM TYPE"),
        (("log", "nope", "2", "1", "click"), "no experiment 'nope'"),
        (("results", "nope"), "no experiment 'nope'"),
        (("timeline", "hp", "--bucket", "week"), "unknown bucket 'week'"),
        (("simulate", "hp", "--ctr-a", "1.5"), "ctr_a must be a probability"),
        (("simulate", "hp", "--users", "0"), "--users"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    seeded: Path, run_cli: Any, db_rows: Rows, args: tuple[str, ...], message: str
) -> None:
    _json(run_cli, "experiment", "serve", "hp", "2", "--db", seeded)  # bob (id 2) is in A
    before = db_rows(seeded)
    code, out, err = run_cli("experiment", *args, "--db", seeded)
    assert code == 2, (out, err)
    assert message in err and err.count("\n") == 1 and err.startswith("smart-suggest: error:")
    assert out == ""
    assert db_rows(seeded) == before


def test_stopped_experiment_refuses_serve_and_log(
    seeded: Path, run_cli: Any, db_rows: Rows
) -> None:
    _json(run_cli, "experiment", "serve", "hp", "2", "--db", seeded)
    _json(run_cli, "experiment", "stop", "hp", "--db", seeded)
    before = db_rows(seeded)
    for args in (("serve", "hp", "2"), ("log", "hp", "2", "1", "click"),
                 ("simulate", "hp", "--users", "5")):  # fmt: skip
        code, _, err = run_cli("experiment", *args, "--db", seeded)
        assert code == 2 and "experiment 'hp' is stopped" in err
    assert db_rows(seeded) == before
    res = _json(run_cli, "experiment", "results", "hp", "--db", seeded)
    assert res["variants"]["A"]["impressions"] == 5 and res["experiment"]["status"] == "stopped"


def test_serve_then_log(seeded: Path, run_cli: Any, db_rows: Rows) -> None:
    code, out, err = run_cli("experiment", "serve", "hp", "bob", "-n", "3", "--db", seeded)
    assert code == 0, err
    assert "user bob (id 2)" in out and "Variant A (control, strategy v1), new assignment" in out
    assert "Logged 3 impression(s) for variant A." in err
    served = _json(run_cli, "experiment", "serve", "hp", "2", "-n", "3", "--db", seeded)
    assert served["variant"] == "A" and not served["new_assignment"]
    assert len(served["recommendations"]) == 3 and served["recommendations"][0]["name"]
    item = served["recommendations"][0]["item_id"]
    code, out, err = run_cli("experiment", "log", "hp", "bob", str(item), "click", "--db", seeded)
    assert code == 0 and f"Logged click for user bob (variant A) on item {item} in hp" in out
    event = _json(run_cli, "experiment", "log", "hp", "2", str(item), "engagement",
                  "--value", "12.5", "--ts", "2026-11-20T11:00:00Z", "--db", seeded)  # fmt: skip
    assert (event["type"], event["value"], event["ts"]) == (
        "engagement",
        12.5,
        "2026-11-20T11:00:00Z",
    )
    rows = db_rows(seeded)
    exp_events = [r for r in rows["events"] if r[1] == 2]
    assert len(exp_events) == 8  # 6 impressions, 1 click, 1 engagement
    assert {r[2] for r in exp_events} == {"A"}


def test_outside_traffic_is_told_and_not_logged(db_path: Path, run_cli: Any, db_rows: Rows) -> None:
    run_cli("seed", "--db", db_path, "--json")
    _json(run_cli, "experiment", "create", "tiny", "--traffic", "0.1", "--db", db_path)
    from smart_suggest.experiments.assignment import assign_variant

    outside = next(u for u in range(1, 51) if assign_variant(2, u, 0.1, 0.5) is None)
    before = db_rows(db_path)
    code, out, _ = run_cli("experiment", "serve", "tiny", str(outside), "--db", db_path)
    assert code == 0
    assert "Outside the experiment's traffic (10%): served control (v1); not assigned" in out
    assert db_rows(db_path) == before


def test_bulk_log_from_file_and_stdin(
    seeded: Path, run_cli: Any, db_rows: Rows, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _json(run_cli, "experiment", "serve", "hp", "2", "--db", seeded)
    _json(run_cli, "experiment", "serve", "hp", "1", "--db", seeded)
    good = tmp_path / "good.csv"
    # The purchase comes before its impression: a file need not be in time order.
    good.write_text(
        "user,item,type,value\n2,1,impression,\n2,1,click,\nalice,3,engagement,4.5\n"
        "1,3,purchase,\n1,3,impression,\n"
    )
    report = _json(run_cli, "experiment", "log", "hp", "--file", good, "--db", seeded)
    assert report["rows"] == 5 and report["by_variant"] == {"A": 2, "B": 3}
    assert report["unserved"]["total"] == 0
    code, out, _ = run_cli("experiment", "log", "hp", "--file", good, "--db", seeded)
    assert code == 0
    assert "Logged 5 events (2 impression, 1 click, 1 purchase, 1 engagement) for 2 users" in out

    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,type\n2,1,click\n2,1,click\n7,1,click\n")
    before = db_rows(seeded)
    code, out, err = run_cli("experiment", "log", "hp", "--file", bad, "--db", seeded)
    assert (
        code == 2 and "line 4: user '7' was never assigned" in err and "nothing was written" in err
    )
    assert db_rows(seeded) == before
    code, _, err = run_cli(
        "experiment", "log", "hp", "2", "1", "click", "--file", good, "--db", seeded
    )
    assert code == 2 and "not both" in err
    code, _, err = run_cli(
        "experiment", "log", "hp", "--file", tmp_path / "none.csv", "--db", seeded
    )
    assert code == 2 and "no such file" in err
    assert db_rows(seeded) == before

    monkeypatch.setattr(sys, "stdin", io.StringIO("user,item,type\n2,1,click\n"))
    report = _json(run_cli, "experiment", "log", "hp", "--file", "-", "--db", seeded)
    assert report["rows"] == 1


def test_bulk_log_checks_that_each_item_was_served(
    seeded: Path, run_cli: Any, db_rows: Rows, tmp_path: Path
) -> None:
    from smart_suggest.experiments.kpis import results
    from smart_suggest.store import open_store

    _json(run_cli, "experiment", "serve", "hp", "2", "--db", seeded)
    _json(run_cli, "experiment", "serve", "hp", "1", "--db", seeded)
    with open_store(seeded) as store:
        shown = {(r["user_id"], r["item_id"]) for r in store.query("SELECT * FROM served_items")}
    never2, never1, later1 = (
        [i for i in range(1, 21) if (u, i) not in shown][k] for u, k in ((2, 0), (1, 0), (1, 1))
    )
    mixed = tmp_path / "mixed.csv"
    # never2 was never shown to user 2 (not in the file, not in the database), never1
    # never to user 1; the file itself shows later1 to user 1, who then clicks it.
    mixed.write_text(
        f"user,item,type\n2,{never2},click\n1,{never1},purchase\n1,{later1},impression\n"
        f"1,{later1},click\n2,{never2},click\n"
    )
    before = db_rows(seeded)
    code, _, err = run_cli("experiment", "log", "hp", "--file", mixed, "--db", seeded)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "3 click/purchase rows on items never served" in err and "--unserved" in err
    assert db_rows(seeded) == before

    report = _json(
        run_cli, "experiment", "log", "hp", "--file", mixed, "--unserved", "--db", seeded
    )
    assert report["rows"] == 2 and report["unserved"] == {"total": 3, "click": 2, "purchase": 1}
    assert report["by_type"]["click"] == 1 and report["by_type"]["purchase"] == 0
    with open_store(seeded) as store:
        res = results(store, "hp")
        assert sum(v.clicks for v in res.variants) == 1
        assert sum(v.purchases for v in res.variants) == 0
        assert sum(n for per in res.unserved.values() for n in per.values()) == 3
        # The summaries equal a rebuild from the events that stayed.
        kept = store.query(
            "SELECT variant, user_id, impressions, clicks, purchases FROM event_users "
            "WHERE experiment_id = 2 ORDER BY 1, 2"
        )
        again = store.query(
            "SELECT variant, user_id, SUM(type = 'impression') AS impressions, "
            "SUM(type = 'click') AS clicks, SUM(type = 'purchase') AS purchases "
            "FROM events WHERE experiment_id = 2 GROUP BY 1, 2 ORDER BY 1, 2"
        )
        assert kept == again
        counts = store.query(
            "SELECT type, SUM(n) AS n FROM event_counts WHERE experiment_id = 2 GROUP BY type"
        )
        impressions = store.scalar(
            "SELECT COUNT(*) FROM events WHERE experiment_id = 2 AND type = 'impression'"
        )
        assert {r["type"]: r["n"] for r in counts} == {"impression": impressions, "click": 1}
    code, out, err = run_cli("experiment", "results", "hp", "--db", seeded)
    assert code == 0 and "unserved" in out
    code, out, err = run_cli(
        "experiment", "log", "hp", "--file", mixed, "--unserved", "--db", seeded
    )
    assert code == 0 and "Logged 2 events" in out
    assert "3 clicks/purchases on items never served were logged apart" in err


def test_results_and_timeline(seeded: Path, run_cli: Any) -> None:
    code, out, err = run_cli("experiment", "results", "homepage-recs-v1-vs-v2", "--db", seeded)
    assert code == 0, err
    for label in ("users assigned", "CTR", "conversion rate", "engagement mean", "B - A"):
        assert label in out
    res = _json(run_cli, "experiment", "results", "1", "--db", seeded)
    a, b = res["variants"]["A"], res["variants"]["B"]
    assert a["users_assigned"] + b["users_assigned"] == 50
    assert res["lift"]["ctr"]["absolute"] == pytest.approx(b["ctr"] - a["ctr"])
    assert b["ctr"] > a["ctr"]  # the demo's treatment is truly better
    tl = _json(run_cli, "experiment", "timeline", "1", "--db", seeded)
    days = [p for p in tl["buckets"] if p["variant"] == "A"]
    assert len(days) == 8 and tl["bucket"] == "day"  # 7 days of events up to "now"
    cum = _json(run_cli, "experiment", "timeline", "1", "--cumulative", "--db", seeded)
    last_a = [p for p in cum["buckets"] if p["variant"] == "A"][-1]
    assert (last_a["impressions"], last_a["clicks"]) == (a["impressions"], a["clicks"])
    hours = _json(run_cli, "experiment", "timeline", "1", "--bucket", "hour", "--db", seeded)
    assert len(hours["buckets"]) == 2 * (7 * 24 + 1)
    assert any(p["impressions"] == 0 for p in hours["buckets"])  # quiet hours are zeros
    code, out, _ = run_cli("experiment", "timeline", "1", "--db", seeded)
    assert code == 0 and "A CTR" in out and "2026-11-13" in out


def test_simulate_cli(seeded: Path, run_cli: Any) -> None:
    args = ("experiment", "simulate", "hp", "--users", "400", "--days", "3", "--ctr-a", "0.3",
            "--ctr-b", "0.3", "--purchase-a", "0.1", "--purchase-b", "0.1", "--seed", "9",
            "--db", seeded)  # fmt: skip
    report = _json(run_cli, *args)
    assert report["visitors"] == 400 and report["users_created"] == 400
    assert report["enrolled"]["A"] + report["enrolled"]["B"] == 400
    events = report["events"]
    assert events["impression"] % 5 == 0 and events["impression"] >= 5 * 400  # 5 per visit
    assert events["click"] == events["engagement"] > 0
    assert report["total_events"] == sum(events.values())
    again = _json(run_cli, *args)  # same seed, same users: the same traffic again
    assert again["events"] == events and again["users_created"] == 0
    code, out, _ = run_cli(*args[:-2], "--db", seeded)
    assert code == 0 and "Simulated 400 visitors over 3 days in hp" in out


def test_hostile_names_are_shown_literally(db_path: Path, run_cli: Any) -> None:
    run_cli("seed", "--db", db_path, "--json")
    name = "[bold red]x[/] \x1b]0;pwn\x07"
    code, out, err = run_cli("experiment", "create", name, "--db", db_path)
    assert code == 0, err
    assert "[bold red]x[/]" in out and "\x1b" not in out and "\\x1b" in out
    code, out, _ = run_cli("experiment", "list", "--db", db_path)
    assert "\x1b" not in out and "[bold" in out
