"""The TUI at the widths people really use, and the rough edges a new user meets.

Each test drives the app with Pilot on a copy of the seeded demo database (tmp_path) and
checks what is on screen, or what got written, against the database itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("textual")

from smart_suggest.store import open_store
from tests.test_tui import (
    count,
    make_app,
    notes,
    pilot_test,
    rows,
    screen_text,
    settle,
    widget_text,
)


@pytest.fixture
def demo_db(demo_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.db"
    shutil.copy(demo_template, path)
    return path


async def goto(pilot: Any, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


def interval_texts(view: Any) -> list[str]:
    """Every per-variant interval of the analysis, as the KPI table prints it."""
    out = []
    for m in view.stats.metrics:
        for iv in m.intervals.values():
            out.append(f"[{iv.low * 100:.1f}, {iv.high * 100:.1f}]")
    return out


# -- the KPI table -------------------------------------------------------------------------
@pytest.mark.parametrize("width", [60, 80, 110, 120, 135, 149, 200])
@pilot_test
async def test_kpi_numbers_are_never_cut(demo_db: Path, width: int) -> None:
    async with make_app(demo_db).run_test(size=(width, 50)) as pilot:
        await goto(pilot, "3")
        screen = pilot.app.screen
        view = screen.view
        kpis = widget_text(screen.query_one("#kpis"))
        a, b = view.variants
        # Every number is whole: rates, counts, intervals (both forms), lifts with their %.
        for r in (a, b):
            assert f"{r.ctr * 100:.1f}%" in kpis
            assert f"{r.impressions:,}" in kpis
        ctr = next(m for m in view.stats.metrics if m.metric == "ctr")
        for iv in ctr.intervals.values():
            long = f"[{iv.low * 100:.1f}, {iv.high * 100:.1f}]"
            short = f"{iv.low * 100:.1f}–{iv.high * 100:.1f}"
            assert long in kpis or short in kpis, (long, kpis)
        assert f"{view.lifts['ctr'] * 100:+.1f}%" in kpis
        assert "A · v1" in kpis and "B · v2" in kpis
        assert "…" not in kpis


@pytest.mark.parametrize("width", [110, 120, 149])
@pilot_test
async def test_experiment_names_are_whole_while_the_list_has_room(
    demo_db: Path, width: int
) -> None:
    from smart_suggest.experiments.lifecycle import create_experiment

    with open_store(demo_db) as store:
        create_experiment(store, "checkout-popular-vs-content-q4", "popular", "v2")
    async with make_app(demo_db).run_test(size=(width, 40)) as pilot:
        await goto(pilot, "3")
        text = widget_text(pilot.app.screen.query_one("#exp-list"))
        assert "homepage-recs-v1-vs-v2" in text
        assert "checkout-popular-vs-content-q4" in text
        assert "…" not in text


@pilot_test
async def test_a_new_experiment_waits_for_data_instead_of_a_verdict(demo_db: Path) -> None:
    from smart_suggest.experiments.lifecycle import create_experiment

    with open_store(demo_db) as store:
        create_experiment(store, "fresh", "v1", "v2")
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "3", "down")
        screen = pilot.app.screen
        assert screen.view.experiment.name == "fresh"
        text = screen_text(pilot)
        assert "WAITING FOR DATA" in text
        for wrong in ("NO EFFECT", "p = 1.0000", "-100", "+100", "┌──"):
            assert wrong not in text, wrong
        assert "waiting for data" in widget_text(screen.query_one("#bars"))
        # Once both variants have an exposed user, the verdict comes back.
        from smart_suggest.experiments.assignment import assign_variant
        from smart_suggest.experiments.serving import serve

        with open_store(demo_db) as store:
            exp_id = screen.view.experiment.id
            seen: set[str | None] = set()
            for (user_id,) in rows(demo_db, "SELECT id FROM users ORDER BY id"):
                variant = assign_variant(exp_id, user_id, 1.0, 0.5)
                if variant not in seen:
                    serve(store, exp_id, user_id, count=3)
                    seen.add(variant)
            assert seen == {"A", "B"}
        pilot.app.check_for_changes({"experiments"})
        await settle(pilot)
        assert "WAITING FOR DATA" not in screen_text(pilot)


@pilot_test
async def test_the_daily_chart_leaves_out_the_day_in_progress(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "3")
        view = pilot.app.screen.view
        # The clock is frozen at noon on 11-20: that day is half over.
        assert view.partial_day == "11-20"
        assert "11-20" not in view.days and view.days[-1] == "11-19"
        assert "11-20 (in progress) left out" in screen_text(pilot)
        assert count(demo_db, "events") > 0
