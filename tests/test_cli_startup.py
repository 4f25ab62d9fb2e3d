"""Start-up: each command imports only what it uses, and the lazy command table stays true."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("numpy", "scipy", "rich", "sqlite_utils", "pydantic", "textual")


def _modules_after(argv: list[str], *, cwd: Path | None = None) -> tuple[int, list[str], str]:
    """Run the CLI with ``argv`` in a fresh interpreter; the heavy top-level packages loaded."""
    code = (
        "import sys\n"
        "from smart_suggest.cli import main\n"
        "code = 0\n"
        f"try:\n    main({argv!r})\nexcept SystemExit as e:\n    code = e.code\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print('HEAVY', ','.join(heavy), 'CODE', code, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd
    )
    last = result.stderr.strip().splitlines()[-1]
    heavy = last.split()[1] if not last.startswith("HEAVY  CODE") else ""
    return int(last.split()[-1]), [m for m in heavy.split(",") if m], result.stdout


@pytest.fixture
def demo_copy(demo_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.db"
    shutil.copy(demo_template, path)
    return path


def test_logging_an_event_imports_no_heavy_module(demo_copy: Path) -> None:
    db = str(demo_copy)
    code, heavy, out = _modules_after(
        ["experiment", "log", "homepage-recs-v1-vs-v2", "alice", "1", "impression", "--db", db]
    )
    assert code == 0, out
    assert "Logged impression for user alice" in out
    assert heavy == []
    code, heavy, out = _modules_after(["log", "alice", "3", "click", "--db", db])
    assert code == 0 and "Logged click of item 3" in out
    assert heavy == []


def test_help_imports_no_heavy_module() -> None:
    code, heavy, out = _modules_after(["--help"])
    assert code == 0 and "experiment" in out
    assert heavy == []
    code, heavy, out = _modules_after(["experiment", "log", "--help"])
    assert code == 0 and "--unserved" in out
    assert heavy == []


def test_status_needs_no_numpy(demo_copy: Path) -> None:
    code, heavy, _ = _modules_after(["status", "--db", str(demo_copy), "--json"])
    assert code == 0
    assert "numpy" not in heavy and "scipy" not in heavy


def test_a_small_import_loads_no_recommender(tmp_path: Path) -> None:
    # Too small for its snapshot to be saved for the next start: numpy and scipy are not
    # imported for nothing (the importer itself needs neither).
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("user,item,rating\n1,1,5\n2,1,3\n")
    code, heavy, out = _modules_after(
        ["import", str(ratings), "--db", str(tmp_path / "new.db"), "--json"]
    )
    assert code == 0, out
    assert "numpy" not in heavy and "scipy" not in heavy


def test_command_table_matches_the_commands() -> None:
    """``COMMANDS`` (what --help lists without building every command) says what each
    command's own help says, and lists every command a module registers."""
    import typer

    from smart_suggest.cli import COMMANDS, load_command

    modules = {module for module, _ in COMMANDS.values()}
    registered: set[str] = set()
    for module in modules:
        app = typer.Typer()
        __import__(f"smart_suggest.cli.{module}", fromlist=["register"]).register(app)
        registered |= {c.name for c in app.registered_commands if c.name}
        registered |= {g.name for g in app.registered_groups if g.name}
    assert registered == set(COMMANDS)
    for name, (_module, summary) in COMMANDS.items():
        command = load_command(name)
        assert command is not None
        assert (command.help or "").split("\n\n")[0].strip() == summary, name


def test_bare_command_prints_help_and_succeeds(run_cli) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli()
    assert code == 0
    assert out.startswith("Usage: smart-suggest")
    assert "experiment" in out and err == ""


def test_unknown_command_still_exit_2(run_cli) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("frobnicate")
    assert code == 2 and out == ""
    assert err.startswith("smart-suggest: error: No such command 'frobnicate'")
    code, _, err = run_cli("experiment", "frobnicate")
    assert code == 2 and "No such command 'frobnicate'" in err


def test_stats_distributions_do_not_load_scipy_stats() -> None:
    """The normal, t and chi-square tails need no scipy (stats._special); scipy.stats
    (0.5-1 s to import) loads only for what the default analysis does not run."""
    code = (
        "import sys\n"
        "from smart_suggest import stats\n"
        "from smart_suggest.stats import proportions, continuous, guards\n"
        "proportions.two_proportion_test(30, 100, 42, 100)\n"
        "continuous.welch_t_test(10, 100.0, 1100.0, 12, 130.0, 1500.0)\n"
        "guards.srm_check(500, 520)\n"
        "print('LOADED', sorted(m for m in sys.modules if m in "
        "('scipy.stats', 'scipy.optimize', 'scipy.integrate')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "LOADED []" in out


def test_every_command_module_is_in_the_table() -> None:
    """A command module added under smart_suggest/cli/ must be listed in COMMANDS, or its
    commands would never be found."""
    import smart_suggest.cli as cli

    root = Path(cli.__file__).parent
    modules = {
        p.stem
        for p in root.glob("*.py")
        if not p.stem.startswith("_") and "def register(" in p.read_text()
    }
    assert modules == {module for module, _ in cli.COMMANDS.values()}


def test_analyze_loads_no_scipy(demo_copy: Path, tmp_path: Path) -> None:
    """``analyze`` computes every default test without scipy (importing scipy.special
    alone cost 0.17-0.2 s, more than the analysis). On the demo (Fisher's exact test,
    the exact Beta sums) and on a database large enough for the Bayesian grid (1,000+
    clicks per arm), the Welch t test and the SRM chi-square, as JSON and as a report."""
    import json

    from smart_suggest.sample import SyntheticSpec, generate
    from smart_suggest.store import open_store

    big = tmp_path / "big.db"
    with open_store(big) as store:
        generate(store, SyntheticSpec(users=3000, items=50, interactions=0, events=20_000))
    for exp, db in (("homepage-recs-v1-vs-v2", demo_copy), ("1", big)):
        code, heavy, out = _modules_after(["analyze", exp, "--json", "--db", str(db)])
        assert code == 0, out
        assert "scipy" not in heavy
        report = json.loads(out)
        methods = {m["bayes"]["method"] for m in report["metrics"] if m.get("bayes")}
        methods |= {
            m["bayes_per_impression"]["method"]
            for m in report["metrics"]
            if m.get("bayes_per_impression")
        }
        if db == big:
            assert "posterior_grid" in methods and "exact_sum" in methods
            assert any("Welch" in m["method"] for m in report["metrics"])
        else:
            assert '"fisher_exact"' in out  # the demo's purchases are few
        code, heavy, out = _modules_after(["analyze", exp, "--db", str(db)])
        assert code == 0 and "scipy" not in heavy
