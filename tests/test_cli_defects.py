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


SEED = ["seed", "--users", "300", "--items", "40", "--interactions", "3000", "--events", "2000"]


def test_progress_bars_only_on_a_terminal(run_cli: CliRunner, tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    code, _, err = run_cli(*SEED, "--yes", "--db", tmp_path / "a.db")
    assert code == 0
    assert "━" not in err and "\r" not in err

    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "smart_suggest", *SEED, "--yes", "--db", str(tmp_path / "b.db")],
            stdout=subprocess.PIPE,
            stderr=slave,
            env={**os.environ, "COLUMNS": "100"},
            timeout=300,
        )
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 1 << 16)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert proc.returncode == 0
    assert "━" in b"".join(chunks).decode("utf-8", "replace")


def test_similar_help_names_its_count(run_cli: CliRunner) -> None:
    code, out, _ = run_cli("similar", "--help")
    assert code == 0
    assert "How many similar items to list." in out and "Items per user" not in out


def test_timeline_footer_counts_one_day_in_the_singular(run_cli: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    assert run_cli("seed", "--db", db)[0] == 0
    code, _, err = run_cli(
        "experiment", "create", "fresh", "--control", "v1", "--treatment", "v2", "--db", db
    )
    assert code == 0, err
    assert run_cli("experiment", "serve", "fresh", "alice", "--db", db)[0] == 0
    code, _, err = run_cli("experiment", "timeline", "fresh", "--db", db)
    assert code == 0
    assert "1 day, per bucket" in err and "1 days" not in err
    code, _, err = run_cli("experiment", "timeline", "fresh", "--bucket", "hour", "--db", db)
    assert "1 hour, per bucket" in err


def test_readme_experiment_tour_runs_as_written(run_cli: CliRunner, tmp_path: Path) -> None:
    """The tour, verbatim from the README and in its order (all but the million-row seed),
    then its experiment commands: the item it clicks was served, the bulk file it names
    ships in sample_data/, and no earlier step of the tour changed what alice is served."""
    import re
    import shlex

    root = Path(__file__).parents[1]
    readme = (root / "README.md").read_text()
    tour = readme[readme.index("## A tour of the CLI") :]
    db = tmp_path / "tour.db"
    first = tour[tour.index("```bash") + 7 : tour.index("```", tour.index("```bash") + 7)]
    experiments = tour[tour.index("### Experiments") :]
    block = experiments[experiments.index("```bash") + 7 :]
    block = block[: block.index("```")]
    lines = [
        ln.split(" > ")[0]  # the CLI's output is read here, not redirected
        for ln in first.splitlines()
        if ln.startswith("smart-suggest ") and "--users" not in ln
    ]
    assert len(lines) >= 13
    steps = ("experiment create", "experiment serve", "experiment log")
    lines += [ln for ln in block.splitlines() if any(w in ln for w in steps)]
    assert any("--file sample_data/events.csv" in ln for ln in lines)
    for line in lines:
        args = shlex.split(line, comments=True)[1:]
        args = [str(root / a) if a.startswith("sample_data/") else a for a in args]
        if "--db" in args:  # a database of its own, beside the tour's
            at = args.index("--db") + 1
            args[at] = str(tmp_path / args[at])
        else:
            args += ["--db", str(db)]
        code, out, err = run_cli(*args)
        assert code == 0, (line, err)
        if "experiment log" in line:
            assert re.match(r"Logged ", out), out


def test_recommend_rows_fit_a_140_column_terminal(demo: Path) -> None:
    """At 140 columns each recommendation takes one or two lines (side by side, the
    halves wrapped every row over four or five)."""
    import os
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "smart_suggest", "recommend", "alice", "--db", str(demo)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "140"},
    ).stdout
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 140
    body = [ln for ln in lines if ln.startswith("│")]
    rows = [ln for ln in body if ln.split("│")[1].strip().isdigit()]
    assert len(rows) == 20  # v1 and v2, ten each
    assert len(body) <= 2 * len(rows)


@pytest.mark.parametrize("bucket", ["day", "hour"])
def test_timeline_keeps_dates_and_counts_whole_at_80_columns(
    run_cli: CliRunner, demo: Path, bucket: str
) -> None:
    """Boxed, the two-variant timeline folded its dates ("2026-1" over "2-02") to fit 80
    columns; long counts must fit too."""
    import os
    import re
    import subprocess
    import sys

    code, _, err = run_cli(
        "experiment", "simulate", EXP, "--users", "20000", "--days", "3", "--db", demo
    )
    assert code == 0, err
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "smart_suggest",
            "experiment",
            "timeline",
            EXP,
            "--cumulative",
            "--bucket",
            bucket,
            "--db",
            str(demo),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "80"},
    ).stdout
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in out
    when = r"\d{4}-\d\d-\d\d" if bucket == "day" else r"\d\d-\d\d \d\dh"
    rows = [ln for ln in lines if re.match(when + r"\s", ln)]
    assert len(rows) >= 3
    # Every cell whole: a date, then counts and rates (a "-" where there is nothing yet).
    for row in rows:
        cells = re.split(r"\s{2,}", row.strip())
        assert len(cells) == 9, row
        assert all(re.fullmatch(r"[\d,]+|\d+\.\d%|-", c) for c in cells[1:]), row
    assert any(re.search(r"\d\d,\d{3}", row) for row in rows)  # long counts fit


def test_experiment_list_keeps_dates_and_splits_whole_at_80_columns(
    run_cli: CliRunner, demo: Path
) -> None:
    """Boxed, the list folded its dates at 80 columns; an A/B/n test showed "-" under "to
    B", and an interleaving test "(I)"."""
    import os
    import re
    import subprocess
    import sys

    for args in (
        [
            "recs-abc",
            "--variant",
            "v1",
            "--variant",
            "v2",
            "--variant",
            "popular",
            "--weights",
            "2,1,1",
        ],
        ["rankers", "--design", "interleaving", "--control", "v1", "--treatment", "v2"],
    ):
        code, _, err = run_cli("experiment", "create", *args, "--db", demo)
        assert code == 0, err
    out = subprocess.run(
        [sys.executable, "-m", "smart_suggest", "experiment", "list", "--db", str(demo)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "80"},
    ).stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    rows = [ln for ln in out.splitlines() if re.match(r"\s*\d+\s", ln)]
    assert len(rows) == 3
    assert all(re.search(r"\s\d{4}-\d\d-\d\d$", ln.rstrip()) for ln in rows), rows
    split = {ln.split()[1]: ln for ln in rows}
    assert " 50/50 " in rows[0]
    assert " 50/25/25 " in split["recs-abc"] and " both " in split["rankers"]
    assert "interleaved" in out


def test_every_command_but_power_takes_db_as_the_readme_says(run_cli: CliRunner) -> None:
    """The README's sentence ("every command that reads or writes data takes --db ...;
    power needs no database") against the commands themselves, sub-commands included."""
    import re

    from smart_suggest.cli import COMMANDS

    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert "`power` needs no database" in readme
    assert ". .venv/bin/activate" in readme  # the tour's bare smart-suggest is on PATH
    without = []
    todo = [[name] for name in COMMANDS]
    while todo:
        path = todo.pop()
        code, out, _ = run_cli(*path, "--help")
        assert code == 0, path
        subs = (
            re.findall(r"^  (\w[\w-]*)  ", out.split("Commands:")[1], re.M)
            if ("Commands:" in out)
            else []
        )
        if subs:
            todo += [[*path, sub] for sub in subs]
        elif "--db" not in out:
            without.append(" ".join(path))
    assert without == ["power"]
    code, _, err = run_cli("power", "--baseline", "0.1", "--mde", "0.02", "--db", "x.db")
    assert code == 2 and len(err.strip().splitlines()) == 1
