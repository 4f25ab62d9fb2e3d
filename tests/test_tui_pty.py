"""The app in a real pseudo-terminal, driven as benchmarks/bench_tui.py drives it: it
paints a full screen, switches screens on keys, and ctrl+q ends the process cleanly."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
bench_tui = pytest.importorskip("bench_tui")


def test_tui_in_a_pty_paints_switches_and_quits(demo_template: Path, tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    shutil.copy(demo_template, db)
    term = bench_tui.Terminal([*bench_tui.command(), "tui", "--db", str(db)], 120, 40)
    try:
        assert term.wait_for(bench_tui.overview_ready, timeout=60) < 60
        assert term.press(b"2", bench_tui.recommendations_ready, timeout=60) < 60
        before = bench_tui.actions(term.lines)
        assert before is not None
        assert term.press(b"v", lambda ls: (bench_tui.actions(ls) or 0) > before, 60) < 60
        assert term.press(b"3", bench_tui.experiments_ready, timeout=60) < 60
        assert term.quit(timeout=30) < 30
        assert term.exit_status == 0
    finally:
        term.close()
    # Every connection was closed: SQLite removed its WAL and shared-memory files.
    assert sorted(p.name for p in tmp_path.glob("demo.db*")) == ["demo.db"]
