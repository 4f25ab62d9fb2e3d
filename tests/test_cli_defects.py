"""The rough edges a new user hit on the CLI, each pinned by a test."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliRunner


@pytest.fixture
def demo(demo_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.db"
    shutil.copy(demo_template, path)
    return path


EXP = "homepage-recs-v1-vs-v2"


def _served_and_unserved(run_cli: CliRunner, demo: Path) -> tuple[str, str]:
    """(an item alice was served in the experiment, one she never was)."""
    code, out, _ = run_cli("experiment", "serve", EXP, "alice", "--json", "--db", demo)
    assert code == 0
    served = {str(r["item_id"]) for r in json.loads(out)["recommendations"]}
    code, out, _ = run_cli("items", "list", "--json", "--db", demo)
    items = [str(i["id"]) for i in json.loads(out)]
    import sqlite3

    with sqlite3.connect(demo) as conn:
        shown = {
            str(r[0])
            for r in conn.execute(
                "SELECT item_id FROM events WHERE user_id = (SELECT id FROM users "
                "WHERE username = 'alice') AND type = 'impression'"
            )
        }
    never = next(i for i in items if i not in shown)
    return sorted(served)[0], never


def test_click_on_an_item_never_served_is_refused(
    run_cli: CliRunner, demo: Path, db_rows: Callable[[Path], object]
) -> None:
    served, never = _served_and_unserved(run_cli, demo)
    before = db_rows(demo)
    for kind in ("click", "purchase"):
        code, out, err = run_cli("experiment", "log", EXP, "alice", never, kind, "--db", demo)
        assert code == 2 and out == ""
        assert err == (
            f"smart-suggest: error: item {never} was never served to user 'alice' in "
            f"experiment '{EXP}': nothing logged (pass --unserved to log it anyway)\n"
        )
    assert db_rows(demo) == before
    code, out, _ = run_cli("experiment", "log", EXP, "alice", served, "click", "--db", demo)
    assert code == 0 and out.startswith("Logged click for user alice")
    code, out, _ = run_cli(
        "experiment", "log", EXP, "alice", never, "click", "--unserved", "--json", "--db", demo
    )
    assert code == 0 and json.loads(out)["item_id"] == int(never)
    # Engagement time is not tied to an exposure of that item: no check.
    code, _, _ = run_cli(
        "experiment", "log", EXP, "alice", never, "engagement", "--value", "3", "--db", demo
    )
    assert code == 0
