"""The recommend and similar commands: output, JSON shape, exports, exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from smart_suggest import tracking
from smart_suggest.store import Store


def test_recommend_shows_v1_and_v2(run_cli, demo_store: Store, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("recommend", "alice", "--db", db_path, "-n", "3")
    assert code == 0, err
    assert "Recommendations for alice" in out
    assert "v1: collaborative" in out and "v2: content-based" in out
    assert "liked by similar users" in out and "resembles" in out


def test_recommend_json_shape(run_cli, demo_store: Store, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli(
        "recommend", "1", "--db", db_path, "--json", "-n", "4", "-s", "v1,popular"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["user"] == {"id": 1, "username": "alice", "history_items": 6}
    assert (data["count"], data["neighbours"], data["threshold"]) == (4, 20, 0.3)
    assert list(data["recommendations"]) == ["v1", "popular"]
    for rows in data["recommendations"].values():
        assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
        for r in rows:
            assert set(r) == {"rank", "item_id", "name", "category", "score", "source", "reason"}
            assert r["reason"]
    assert len(data["recommendations"]["popular"]) == 4
    assert {r["source"] for r in data["recommendations"]["popular"]} == {"popular"}


def test_recommend_options_change_the_result(run_cli, demo_store: Store, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    args = ("recommend", "alice", "--db", db_path, "--json", "-s", "v1")
    _, out, _ = run_cli(*args, "--threshold", "0.99")
    strict = json.loads(out)["recommendations"]["v1"]
    assert {r["source"] for r in strict} == {"popular"}  # nobody is 0.99-similar
    _, out, _ = run_cli(*args, "--neighbours", "1", "--threshold", "0")
    one = json.loads(out)["recommendations"]["v1"]
    assert one[0]["source"] == "neighbours" and " and " not in one[0]["reason"]


def test_new_item_is_marked_in_the_table(run_cli, demo_store: Store, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    tracking.add_item(demo_store, "Brand-new e-reader", "books", "novel reader screen")
    code, out, _ = run_cli("recommend", "alice", "--db", db_path, "-s", "v1", "-n", "2")
    assert code == 0 and "(new)" in out


def test_recommend_errors_exit_2_with_one_line(run_cli, demo_store: Store, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    for args, message in [
        (("recommend", "nobody"), "no user 'nobody'"),
        (("recommend", "1", "-s", "v9"), "unknown strategy 'v9': use one of v1, v2, v3, popular"),
        (("recommend",), "missing USER"),
        (("recommend", "1", "--all-users"), "not both"),
        (("recommend", "--all-users", "-s", "v1,v2"), "single --strategy"),
        (("recommend", "--all-users", "--format", "xml"), "unknown format"),
        (("recommend", "1", "--threshold", "2"), "threshold"),
        (("similar", "999"), "no item with id 999"),
        (("similar", "abc"), "numeric id"),
    ]:
        code, out, err = run_cli(*args, "--db", db_path)
        assert code == 2, (args, err)
        assert out == "" and err.count("\n") == 1 and message in err, (args, err)


def test_all_users_csv_to_stdout_and_file(
    run_cli, demo_store: Store, db_path: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("recommend", "--all-users", "--format", "csv", "--db", db_path)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["user_id", "item_id", "rank", "score"]
    assert {int(r["user_id"]) for r in rows} == set(range(1, 51))
    first = [r for r in rows if r["user_id"] == "1"]
    assert [int(r["rank"]) for r in first] == list(range(1, len(first) + 1))
    assert err == ""  # no progress bar: stderr is not a terminal
    target = tmp_path / "out" / "recs.csv"
    target.parent.mkdir()
    code, out, err = run_cli(
        "recommend", "--all-users", "-s", "v2", "-n", "2", "-o", target, "--db", db_path
    )
    assert code == 0 and out == ""
    lines = target.read_text().splitlines()
    assert lines[0] == "user_id,item_id,rank,score" and len(lines) == 1 + 50 * 2
    assert "Wrote 100 recommendations (v2)" in err
    assert sorted(p.name for p in target.parent.iterdir()) == ["recs.csv"]
    code, out, _ = run_cli(
        "recommend", "--all-users", "--format", "jsonl", "-n", "1", "--db", db_path
    )
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) >= 50 and set(records[0]) >= {"user_id", "rank", "item_id", "reason"}


def test_similar_command(run_cli, demo_store: Store, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("similar", "1", "--db", db_path, "--json", "-n", "3")
    assert code == 0, err
    data = json.loads(out)
    assert data["item"]["id"] == 1
    sims = [r["similarity"] for r in data["similar"]]
    assert len(sims) == 3 and sims == sorted(sims, reverse=True)
    assert all(r["item_id"] != 1 for r in data["similar"])
    code, out, _ = run_cli("similar", "1", "--db", db_path)
    assert code == 0 and "Items like" in out and "similarity" in out
