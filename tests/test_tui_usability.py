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


@pytest.fixture(scope="module")
def abn_template(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo plus a simulated three-variant experiment (A = v1, B = v2, C = popular)."""
    from smart_suggest.experiments.lifecycle import create_experiment
    from smart_suggest.experiments.simulate import simulate

    path = tmp_path_factory.mktemp("abn") / "abn.db"
    shutil.copy(demo_template, path)
    with open_store(path) as store:
        exp = create_experiment(
            store, "recs-abc", variants=["v1", "v2", "popular"], weights=[2.0, 1.0, 1.0]
        )
        simulate(
            store,
            exp.id,
            users=3000,
            days=4,
            ctr=[0.30, 0.31, 0.37],
            purchase=[0.12, 0.12, 0.15],
            seed=5,
        )
    return path


@pytest.mark.parametrize("width", [60, 80, 110, 120, 149, 200])
@pilot_test
async def test_every_variant_of_an_abn_test_has_its_own_numbers(
    abn_template: Path, tmp_path: Path, width: int
) -> None:
    """Three variants: B's column showed C's interval and lift (the comparison the
    statistics panel shows), C's column was cut, and the charts failed with IndexError."""
    import re

    db = tmp_path / "abn.db"
    shutil.copy(abn_template, db)
    async with make_app(db).run_test(size=(width, 50)) as pilot:
        await goto(pilot, "3", "down")
        screen = pilot.app.screen
        view = screen.view
        assert view.experiment.name == "recs-abc" and len(view.variants) == 3
        assert not any("error" in n for n in notes(pilot)), notes(pilot)
        kpis = widget_text(screen.query_one("#kpis"))
        assert "…" not in kpis
        lines = kpis.splitlines()
        header = next(ln for ln in lines if "Metric" in ln)
        assert [c for c in header.split() if c in ("A", "B", "C")] or "C · popular" in header
        ctr_row = next(ln for ln in lines if ln.strip().startswith("CTR"))
        ci_row = lines[lines.index(ctr_row) + 1]
        lift_row = lines[lines.index(ctr_row) + 2]
        ctrs = [float(x) for x in re.findall(r"(\d+\.\d)%", ctr_row)]
        cis = re.findall(r"(\d+\.\d)(?:–|, )(\d+\.\d)", ci_row)
        lifts = re.findall(r"([+-]\d+\.\d)%", lift_row)
        assert len(ctrs) == 3 and len(cis) == 3 and len(lifts) == 2, (ctr_row, ci_row)
        for r, shown, (low, high) in zip(view.variants, ctrs, cis, strict=True):
            assert shown == pytest.approx(r.ctr * 100, abs=0.06)
            assert float(low) <= shown <= float(high), (r.variant, low, high)
        a = view.variants[0].ctr
        for r, lift in zip(view.variants[1:], lifts, strict=True):
            assert float(lift) == pytest.approx((r.ctr / a - 1) * 100, abs=0.3), r.variant
        # Both charts draw a series per variant.
        legend = screen.query_one("#bars").drawing(100, 25) + screen.query_one("#trend").drawing(
            100, 25
        )
        assert all(f"{v} (" in legend for v in ("A", "B", "C")), legend


@pilot_test
async def test_the_daily_chart_of_an_interleaving_test_names_both_strategies(
    demo_db: Path,
) -> None:
    from smart_suggest.experiments.lifecycle import create_experiment
    from smart_suggest.experiments.simulate import simulate

    with open_store(demo_db) as store:
        exp = create_experiment(store, "rankers", "v1", "v2", design="interleaving")
        simulate(store, exp.id, users=300, days=3, seed=2, click_model="position")
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "3", "down")
        screen = pilot.app.screen
        assert screen.view.experiment.name == "rankers"
        legend = screen.query_one("#trend").drawing(100, 25)
        assert "AB (v1 + v2)" in legend and "?" not in legend


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


# -- the recommendations screen ------------------------------------------------------------
@pilot_test
async def test_every_registered_strategy_can_sit_side_by_side_and_is_remembered(
    demo_db: Path, tmp_path: Path
) -> None:
    from smart_suggest.recommend.base import registry
    from tui.config import config_path
    from tui.config import load as load_settings

    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "2", "m")
        dialog = pilot.app.screen
        checklist = dialog.query_one("#checklist")
        offered = [checklist.get_option_at_index(i).value for i in range(checklist.option_count)]
        # Everything in the registry is offered (v1, v2, popular and any added later).
        assert {dialog.options[i][1] for i in offered} == set(registry())
        assert sorted(checklist.selected) == [0, 1]  # v1 and v2 by default
        popular = next(i for i, (_, name, _) in enumerate(dialog.options) if name == "popular")
        checklist.select(popular)
        await goto(pilot, "enter")
        screen = pilot.app.screen
        assert screen.strategies == ["v1", "v2", "popular"]
        table = screen.query_one("#recs-popular")
        assert table.row_count == len(screen.view.recs["popular"]) > 0
        assert "popular · baseline" in screen_text(pilot)
    # Saved in the settings file (in tmp_path's config folder), read by the next start.
    assert config_path().is_relative_to(tmp_path)
    assert load_settings().strategies == ["v1", "v2", "popular"]
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "2")
        assert pilot.app.screen.strategies == ["v1", "v2", "popular"]
        assert pilot.app.screen.query_one("#recs-popular").row_count > 0


@pilot_test
async def test_the_strategy_picker_needs_one_strategy_at_least(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "2", "m")
        checklist = pilot.app.screen.query_one("#checklist")
        checklist.deselect_all()
        await goto(pilot, "enter")
        assert type(pilot.app.screen).__name__ == "ChecklistDialog"
        assert "at least 1" in widget_text(pilot.app.screen.query_one("#checklist-error"))
        await goto(pilot, "escape")
        assert pilot.app.screen.strategies == ["v1", "v2"]


@pilot_test
async def test_serving_marks_exactly_the_served_rows(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "2", "s")
        screen = pilot.app.screen
        served = screen.served
        assert served is not None and served.enrolled
        served_ids = {r.item_id for r in served.rows}
        # What the serve logged as impressions is exactly what is marked.
        logged = {
            item
            for (item,) in rows(
                demo_db,
                "SELECT item_id FROM events WHERE type = 'impression' AND user_id = ? "
                "AND ts = (SELECT max(ts) FROM events WHERE type = 'impression')",
                (served.rows and screen.view.user.id,),
            )
        }
        assert logged == served_ids
        table = screen.query_one(f"#recs-{served.strategy}")
        assert table.served == served_ids
        marked = {
            int(key) for key in table.row_keys() if table.get_row(key)[0].plain.startswith("▸")
        }
        assert marked == served_ids and len(marked) < table.row_count
        other = next(t for t in screen._rec_tables() if t is not table)
        assert not other.served
        assert not any(other.get_row(k)[0].plain.startswith("▸") for k in other.row_keys())
        assert f"served {len(served_ids)}" in screen_text(pilot)


@pilot_test
async def test_a_second_click_never_lands_on_another_item(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(80, 24)) as pilot:
        await goto(pilot, "2", "tab")
        screen = pilot.app.screen
        table = screen.query_one("#recs-v1")
        assert table.has_focus
        first = int(table.current_key)
        before = count(demo_db, "interactions")
        await goto(pilot, "c")
        assert count(demo_db, "interactions") == before + 1
        assert first not in [int(k) for k in table.row_keys()]  # it left the list
        # The cursor now rests on another item: c does nothing but say why.
        await goto(pilot, "c")
        assert count(demo_db, "interactions") == before + 1
        assert any("choose the next one" in n for n in notes(pilot))
        assert not table.show_cursor
        # One arrow shows the cursor on the item it rests on; then c clicks that one.
        await goto(pilot, "down")
        assert table.show_cursor
        second = int(table.current_key)
        await goto(pilot, "c")
        assert count(demo_db, "interactions") == before + 2
        last = rows(demo_db, "SELECT item_id, action FROM interactions ORDER BY id DESC LIMIT 1")
        assert last == [(second, "click")]


@pilot_test
async def test_scores_mark_popularity_counts(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "2", "m")
        dialog = pilot.app.screen
        popular = next(i for i, (_, name, _) in enumerate(dialog.options) if name == "popular")
        dialog.query_one("#checklist").select(popular)
        await goto(pilot, "enter")
        table = pilot.app.screen.query_one("#recs-popular")
        scores = [table.get_row(k)[-1].plain for k in table.row_keys()]
        assert scores and all(s.endswith("p") for s in scores)
        v2 = pilot.app.screen.query_one("#recs-v2")
        assert not any(v2.get_row(k)[-1].plain.endswith("p") for k in v2.row_keys())


@pytest.mark.parametrize("size", [(60, 20), (80, 24), (120, 40)])
@pilot_test
async def test_four_lists_side_by_side_never_cut_a_score(
    demo_db: Path, size: tuple[int, int]
) -> None:
    """Every registered strategy at once: a list that has the focus shows each of its
    scores whole (the row scrolls sideways when the lists do not all fit)."""
    from smart_suggest.recommend.base import registry
    from tui.config import load as load_settings

    settings = load_settings()
    settings.strategies = ["v1", "v2", "v3", "popular"]
    assert settings.save() == ""
    assert len(registry()) >= 4
    async with make_app(demo_db).run_test(size=size) as pilot:
        await goto(pilot, "2")
        screen = pilot.app.screen
        tables = screen._rec_tables()
        assert [t.strategy for t in tables] == settings.strategies
        for table in tables:
            table.focus()
            await settle(pilot)
            panel = table.parent
            assert panel.region.x >= 0 and panel.region.right <= size[0], table.strategy
            lines = screen_text(pilot).splitlines()
            scores = [table.get_row(k)[-1].plain for k in table.row_keys()]
            assert scores, table.strategy
            shown = [ln[panel.region.x : panel.region.right] for ln in lines]
            top = table.region.y + 1  # under the header
            for i, score in enumerate(scores[: table.region.height - 1]):
                assert shown[top + i].rstrip(" │║▁▂▃▄▅▆▇█").endswith(score), (
                    table.strategy,
                    shown[top + i],
                    score,
                )


@pilot_test
async def test_a_popularity_count_keeps_its_mark_when_it_is_long(demo_db: Path) -> None:
    from tui.data import RecRow

    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "2")
        table = pilot.app.screen._rec_tables()[0]
        rows = [
            RecRow(1, 1, "Wireless", "electronics", 18902.0, "", "popular"),
            RecRow(2, 2, "Keyboard", "electronics", 9978.0, "", "popular"),
        ]
        table.show(rows)
        await settle(pilot)
        assert [table.get_row(k)[-1].plain for k in table.row_keys()] == ["18,902p", "9,978p"]
        text = widget_text(table)
        assert "18,902p" in text and "9,978p" in text


# -- settings and themes ------------------------------------------------------------------
@pilot_test
async def test_a_theme_picked_in_the_app_is_remembered(demo_db: Path) -> None:
    from tui.config import load as load_settings

    async with make_app(demo_db).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pilot.app.theme = "nord"
        await settle(pilot)
    assert load_settings().theme == "nord"
    async with make_app(demo_db).run_test(size=(80, 24)) as pilot:
        assert pilot.app.theme == "nord"


@pilot_test
async def test_a_theme_given_for_one_run_is_not_saved(demo_db: Path) -> None:
    from tui.app import SmartSuggestApp
    from tui.config import config_path

    app = SmartSuggestApp(demo_db, poll_seconds=0, debounce=0, theme="gruvbox")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert pilot.app.theme == "gruvbox"
    assert not config_path().exists()


@pilot_test
async def test_a_broken_settings_file_is_reported_and_kept(demo_db: Path) -> None:
    from tui.config import config_path

    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('theme = "nord\nstrategies = 3\n')
    async with make_app(demo_db).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert any("not valid TOML" in n for n in notes(pilot))
        pilot.app.theme = "gruvbox"
        await settle(pilot)
    assert path.read_text() == 'theme = "nord\nstrategies = 3\n'


def test_settings_round_trip_odd_values(tmp_path: Path) -> None:
    from tui.config import Settings
    from tui.config import load as load_settings

    path = tmp_path / "tui.toml"
    odd = 'C:\\reports "q4"\n\tüñí'
    Settings(strategies=["v2", "popular"], export_dir=odd, sequential=False, path=path).save()
    back = load_settings(path)
    assert back.export_dir == odd and back.strategies == ["v2", "popular"]
    assert back.sequential is False and back.problem == ""


def test_tui_refuses_an_unknown_theme_in_one_line(tmp_path: Path, run_cli: Any) -> None:
    db = tmp_path / "x.db"
    code, out, err = run_cli("tui", "--db", db, "--theme", "no-such-theme")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "unknown theme 'no-such-theme'" in err and "nord" in err
    assert not db.exists()


# -- keys, footer, navigation ----------------------------------------------------------------
def footer_text(pilot: Any) -> str:
    return screen_text(pilot).splitlines()[-1]


@pytest.mark.parametrize("size", [(60, 20), (80, 24), (120, 40), (200, 50)])
@pilot_test
async def test_the_footer_always_offers_help_and_quit(demo_db: Path, size: tuple[int, int]) -> None:
    async with make_app(demo_db).run_test(size=size) as pilot:
        for key in ("1", "2", "3"):
            await goto(pilot, key)
            footer = footer_text(pilot)
            assert "F1/? Help" in footer and "^q Quit" in footer, (key, footer)
            # Never a key without its label (e.g. "F1/?" cut from "Help").
            assert footer.rstrip().endswith(("Help", "Quit", "palette")), footer
        nav = screen_text(pilot).splitlines()[0]
        assert "1 Overview" in nav and "3 Exp" in nav and "2 Rec" in nav


@pilot_test
async def test_the_footer_follows_a_resize_of_the_terminal(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(160, 40)) as pilot:
        await goto(pilot, "2")
        wide = footer_text(pilot)
        assert "+Item" in wide and "palette" in wide
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        await pilot.pause()
        narrow = footer_text(pilot)
        assert "+Item" not in narrow and "palette" not in narrow, narrow
        assert "F1/? Help" in narrow and "^q Quit" in narrow, narrow
        await pilot.resize_terminal(160, 40)
        await pilot.pause()
        await pilot.pause()
        assert footer_text(pilot) == wide


@pilot_test
async def test_the_footer_keeps_the_screen_keys_in_their_order_of_importance(
    demo_db: Path,
) -> None:
    async with make_app(demo_db).run_test(size=(60, 20)) as pilot:
        await goto(pilot, "2")
        footer = footer_text(pilot)
        assert footer.index("v View") < footer.index("c Click") < footer.index("p Buy")
        assert "+Item" not in footer  # the least important goes first


@pilot_test
async def test_the_score_column_stays_at_60_columns(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(60, 20)) as pilot:
        await goto(pilot, "2")
        screen = pilot.app.screen
        for table in screen._rec_tables():
            assert "score" in [str(c.value) for c in table.columns], table.strategy
            for r in screen.view.recs[table.strategy]:
                shown = table.get_row(str(r.item_id))[-1].plain
                expected = f"{r.score:,.0f}p" if r.source == "popular" else f"{r.score:.2f}"
                assert shown == expected


@pytest.mark.parametrize("mode", ["1", "2", "3"])
@pilot_test
async def test_every_tab_stop_highlights_something(demo_db: Path, mode: str) -> None:
    from textual.containers import ScrollableContainer
    from textual.widgets import Button, DataTable, Input

    async with make_app(demo_db).run_test(size=(80, 24)) as pilot:
        await goto(pilot, mode)
        seen = []
        if pilot.app.focused is None:  # the overview starts with nothing focused
            await pilot.press("tab")
        for _ in range(12):
            focused = pilot.app.focused
            assert focused is not None
            seen.append(focused)
            in_panel = any(n.has_class("panel") for n in focused.ancestors_with_self)
            # A framed panel lights up its border; buttons, inputs and tables show it too.
            assert in_panel or isinstance(focused, Button | Input | DataTable), focused
            assert not (isinstance(focused, ScrollableContainer) and not in_panel), focused
            await pilot.press("tab")
            await pilot.pause()
        assert len(set(seen)) > 1


@pilot_test
async def test_page_down_scrolls_the_experiments_screen_on_arrival(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(80, 24)) as pilot:
        await goto(pilot, "3")
        screen = pilot.app.screen
        body = screen.query_one("#exp-body")
        assert screen.query_one("#exp-list").has_focus and body.scroll_y == 0
        await goto(pilot, "pagedown")
        assert body.scroll_y > 0
        await goto(pilot, "pageup")
        assert body.scroll_y == 0


# -- experiments: simulation, stopped experiments, simulated visitors ---------------------
@pilot_test
async def test_a_stopped_experiment_turns_off_simulate_and_log_up_front(demo_db: Path) -> None:
    from smart_suggest.experiments.lifecycle import stop_experiment

    with open_store(demo_db) as store:
        stop_experiment(store, 1)
    before = count(demo_db, "events")
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "3")
        screen = pilot.app.screen
        footer = {k.action: k.has_class("-disabled") for k in screen.query("FooterKey")}
        assert footer["simulate"] and footer["log_event"] and footer["stop_experiment"]
        assert not footer["new_experiment"]
        for key in ("s", "l"):
            await goto(pilot, key)
            assert pilot.app.screen is screen, key  # no form opened
        assert "Stopped: it takes no new traffic or events" in screen_text(pilot)
        # From the palette (which runs the action by name) it is explained instead.
        await pilot.app.run_in_mode("experiments", "simulate")
        await settle(pilot)
        assert pilot.app.screen is screen
        assert any("is stopped: it takes no new traffic" in n for n in notes(pilot))
    assert count(demo_db, "events") == before


@pilot_test
async def test_the_simulation_progress_bar_leaves_the_nav_bar_visible(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(80, 24)) as pilot:
        await goto(pilot, "3")
        screen = pilot.app.screen
        bar = screen.query_one("#sim-bar")
        bar.display = True
        await settle(pilot)
        nav = screen.query_one("NavBar")
        assert bar.region.y > nav.region.y and not bar.region.overlaps(nav.region)
        assert "1 Overview" in screen_text(pilot).splitlines()[0]


@pilot_test
async def test_simulated_visitors_are_hidden_from_the_user_list_until_asked(
    demo_db: Path,
) -> None:
    from smart_suggest.experiments.simulate import simulate
    from tui.config import load as load_settings

    with open_store(demo_db) as store:
        simulate(
            store,
            1,
            users=300,
            days=2,
            ctr_a=0.3,
            ctr_b=0.3,
            purchase_a=0.1,
            purchase_b=0.1,
            seed=3,
        )
    sim = int(rows(demo_db, "SELECT count(*) FROM users WHERE username LIKE 'sim-1-%'")[0][0])
    assert sim == 300
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "2")
        screen = pilot.app.screen
        names = [u.username for u in screen._users]
        assert len(names) == count(demo_db, "users") - sim
        assert not any(n.startswith("sim-") for n in names)
        assert "300 sim hidden (h)" in screen_text(pilot)
        await goto(pilot, "h")
        names = [u.username for u in screen._users]
        assert len(names) == 200 and any(n.startswith("sim-1-") for n in names)
        assert "first 200" in screen_text(pilot)
    assert load_settings().show_simulated is True


def test_simulated_visitor_names_follow_the_convention(tmp_path: Path) -> None:
    from smart_suggest import tracking

    with open_store(tmp_path / "t.db") as store:
        for name in ("sim-1-1", "sim-12-400", "sim-x-1", "simon", "sim-1", "asim-1-2"):
            tracking.add_user(store, name)
        kept = [u.username for u in tracking.search_users(store, "", simulated=False)]
        assert kept == ["sim-x-1", "simon", "sim-1", "asim-1-2"]
        assert tracking.count_simulated_users(store) == 2
        assert tracking.count_simulated_users(store, "12") == 1


# -- copy, export, screenshot ---------------------------------------------------------------
@pilot_test
async def test_export_writes_kpis_analysis_and_chart_and_never_overwrites(
    demo_db: Path, tmp_path: Path
) -> None:
    import csv
    import json

    from smart_suggest.analysis import analyze

    out = tmp_path / "exports"
    out.mkdir()
    (out / "homepage-recs-v1-vs-v2-kpis.csv").write_text("keep me")
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        pilot.app.settings.export_dir = str(out)
        await goto(pilot, "3", "w")
        view = pilot.app.screen.view
        assert any(str(out) in n and "kpis-2.csv" in n for n in notes(pilot))
    assert (out / "homepage-recs-v1-vs-v2-kpis.csv").read_text() == "keep me"
    records = list(csv.DictReader((out / "homepage-recs-v1-vs-v2-kpis-2.csv").open()))
    assert [r["variant"] for r in records] == ["A", "B"]
    for rec, row in zip(records, view.variants, strict=True):
        assert int(rec["impressions"]) == row.impressions
        assert float(rec["ctr"]) == row.ctr
        assert float(rec["ctr_ci_low"]) < float(rec["ctr"]) < float(rec["ctr_ci_high"])
    doc = json.loads((out / "homepage-recs-v1-vs-v2-analysis.json").read_text())
    with open_store(demo_db) as store:
        expected = analyze(store, 1, sequential=True).to_dict()
    assert doc["verdict"] == expected["verdict"]
    assert doc["metrics"][0]["p_value"] == pytest.approx(expected["metrics"][0]["p_value"])
    text = (out / "homepage-recs-v1-vs-v2-daily-ctr.txt").read_text()
    assert "Daily CTR" in text and "\x1b" not in text and "11-13" in text
    svg = (out / "homepage-recs-v1-vs-v2-daily-ctr.svg").read_text()
    assert svg.startswith("<svg") and "Daily" in svg


@pilot_test
async def test_copy_puts_the_kpi_table_and_the_row_on_the_clipboard(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "3", "y")
        lines = pilot.app.clipboard.splitlines()
        assert lines[0].startswith("variant\tstrategy\tusers_assigned")
        view = pilot.app.screen.view
        assert [line.split("\t")[0] for line in lines[1:]] == ["A", "B"]
        assert lines[1].split("\t")[4] == str(view.variants[0].impressions)
        await goto(pilot, "2", "tab", "y")
        row = pilot.app.screen._current_row()
        fields = pilot.app.clipboard.split("\t")
        assert fields[:6] == ["alice", "v1", "1", str(row.item_id), row.name, row.category]


@pilot_test
async def test_screenshot_goes_to_a_folder_that_exists_and_says_where(
    demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import platformdirs

    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setattr(platformdirs, "user_downloads_path", lambda: tmp_path / "no-such")
    async with make_app(demo_db).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pilot.app.save_screenshot_file()
        await settle(pilot)
        shots = list(here.glob("smart-suggest-*.svg"))
        assert len(shots) == 1 and shots[0].read_text().startswith("<svg")
        assert any(f"in {here}" in n for n in notes(pilot)), notes(pilot)
        titles = [c.title for c in pilot.app.get_system_commands(pilot.app.screen)]
        assert titles.count("Screenshot") == 1 and "Export folder" in titles


# -- sorting and filtering -------------------------------------------------------------------
@pilot_test
async def test_tables_sort_by_a_column_and_keep_the_cursor_on_its_item(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "2", "tab", "down", "down")
        table = pilot.app.screen.query_one("#recs-v1")
        item = table.current_key
        by_rank = table.row_keys()
        await goto(pilot, "o")  # by rank, ascending: as given
        assert table.row_keys() == by_rank and table.current_key == item
        await goto(pilot, "o")  # by rank, descending
        assert table.row_keys() == by_rank[::-1] and table.current_key == item
        assert str(next(iter(table.columns.values())).label).startswith("▼")
        await goto(pilot, "o")  # by item name, ascending
        names = [table.get_row(k)[1].plain for k in table.row_keys()]
        assert names == sorted(names, key=str.casefold) and table.current_key == item
        # A refresh (a logged action elsewhere) keeps the order the user chose.
        pilot.app.check_for_changes({"catalog"})
        await settle(pilot)
        names = [table.get_row(k)[1].plain for k in table.row_keys()]
        assert names == sorted(names, key=str.casefold)


@pilot_test
async def test_experiments_filter_like_users_and_titles_follow(demo_db: Path) -> None:
    from smart_suggest.experiments.lifecycle import create_experiment

    with open_store(demo_db) as store:
        create_experiment(store, "checkout-popular-vs-v2", "popular", "v2")
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "3", "slash")
        screen = pilot.app.screen
        assert pilot.app.focused.id == "exp-filter"
        pilot.app.focused.value = "CHECKOUT"
        await settle(pilot)
        assert [e.name for e in screen.exps] == ["checkout-popular-vs-v2"]
        assert "1 of 2" in screen_text(pilot)
        pilot.app.focused.value = "no-such-experiment"
        await settle(pilot)
        text = screen_text(pilot)
        assert "No experiment matches the filter" in text
        assert "homepage-recs" not in text  # no stale KPI title or verdict
        pilot.app.focused.value = ""
        await settle(pilot)
        assert len(screen.exps) == 2


@pilot_test
async def test_clearing_all_data_leaves_no_stale_variant_headers(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(80, 24)) as pilot:
        await goto(pilot, "3")
        assert "A · v1" in screen_text(pilot)
        await goto(pilot, "1", "x", "y")
        assert count(demo_db, "experiments") == 0
        await goto(pilot, "3")
        text = screen_text(pilot)
        assert "No experiments yet" in text
        assert "A · v1" not in text and "B · v2" not in text and "homepage" not in text
        await goto(pilot, "1", "l")
        if type(pilot.app.screen).__name__ == "ConfirmDialog":
            await goto(pilot, "y")
        await goto(pilot, "3")
        assert "A · v1" in screen_text(pilot)  # the headers come back with an experiment


@pilot_test
async def test_the_experiment_list_names_every_variant_and_the_split(demo_db: Path) -> None:
    """An A/B/n test is not "v1 vs v2" with a "B share" of 25%; interleaving has no split."""
    from smart_suggest.experiments.lifecycle import create_experiment

    with open_store(demo_db) as store:
        create_experiment(
            store, "recs-abc", variants=["v1", "v2", "popular"], weights=[2.0, 1.0, 1.0]
        )
        create_experiment(store, "rankers", "v1", "v3", design="interleaving")
    async with make_app(demo_db).run_test(size=(80, 24)) as pilot:
        await goto(pilot, "3")
        lines = screen_text(pilot).splitlines()
        header = next(ln for ln in lines if "Name" in ln and "Status" in ln)
        assert "Variants" in header and "Split" in header and "A vs B" not in header
        row = {
            name: next(ln for ln in lines if f" {name} " in ln)
            for name in ("homepage-recs-v1-vs-v2", "recs-abc", "rankers")
        }
        assert (
            "v1 / v2 " in row["homepage-recs-v1-vs-v2"] and "50/50" in row["homepage-recs-v1-vs-v2"]
        )
        assert "v1 / v2 / popular" in row["recs-abc"] and "50/25/25" in row["recs-abc"]
        assert "v1 / v3 interleaved" in row["rankers"] and "both" in row["rankers"]


@pilot_test
async def test_filtering_users_to_nothing_leaves_no_stale_titles(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "2", "slash")
        pilot.app.focused.value = "zzz-nobody"
        await settle(pilot)
        text = screen_text(pilot)
        assert "No user matches the filter" in text
        assert "alice" not in text and "Similar to" not in text and "total" not in text


@pilot_test
async def test_a_new_user_gets_words_not_bare_headers(demo_db: Path) -> None:
    from smart_suggest import tracking

    with open_store(demo_db) as store:
        zoe = tracking.add_user(store, "newcomer-xq")
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "2", "slash")
        pilot.app.focused.value = "newcomer-xq"
        await settle(pilot)
        screen = pilot.app.screen
        assert screen.view.user.id == zoe.id
        assert not screen.query_one("#history").display
        assert "Nothing yet" in widget_text(screen.query_one("#history-empty"))
        assert "No actions yet" in widget_text(screen.query_one("#profile"))


@pilot_test
async def test_the_profile_shows_what_a_users_file_said(demo_db: Path, tmp_path: Path) -> None:
    from smart_suggest.importer import import_interactions

    (tmp_path / "r.csv").write_text("user,item\nnewcomer-xq,1\n")
    (tmp_path / "people.csv").write_text("username,plan,home town\nnewcomer-xq,pro,Utrecht\n")
    with open_store(demo_db) as store:
        import_interactions(store, tmp_path / "r.csv", users_path=tmp_path / "people.csv")
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "2", "slash")
        pilot.app.focused.value = "newcomer-xq"
        await settle(pilot)
        assert "plan pro, home town Utrecht" in widget_text(pilot.app.screen.query_one("#profile"))


@pilot_test
async def test_the_experiment_picker_filters_by_typing(demo_db: Path) -> None:
    from smart_suggest.experiments.lifecycle import create_experiment

    with open_store(demo_db) as store:
        create_experiment(store, "checkout-popular-vs-v2", "popular", "v2")
    async with make_app(demo_db).run_test(size=(80, 24)) as pilot:
        await goto(pilot, "2", "e")
        await pilot.press("c", "h", "e")
        await settle(pilot)
        options = pilot.app.screen.query_one("#pick")
        assert options.option_count == 1
        await goto(pilot, "enter")
        assert pilot.app.screen.exp.name == "checkout-popular-vs-v2"


# -- forms ------------------------------------------------------------------------------------
@pilot_test
async def test_a_number_field_says_once_what_it_accepts(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(80, 24)) as pilot:
        await goto(pilot, "3", "s")
        dialog = pilot.app.screen
        box = dialog.query_one("#field-users")
        box.value = "abc"
        await settle(pilot)
        message = widget_text(dialog.query_one("#error-users")).strip()
        assert message == "Enter a whole number of at least 1"
        box.value = "2.5"
        await settle(pilot)
        assert widget_text(dialog.query_one("#error-users")).strip() == message
        rate = dialog.query_one("#field-ctr_a")
        rate.value = "1.5"
        await settle(pilot)
        assert widget_text(dialog.query_one("#error-ctr_a")).strip() == (
            "Enter a number from 0 to 1"
        )
        # Fields have a visible box: a bracket at each end (visible without colour too).
        assert box.styles.border_left[0] != "" and box.styles.border_right[0] != ""


@pilot_test
async def test_items_are_found_by_typing_part_of_a_name(demo_db: Path) -> None:
    name = rows(demo_db, "SELECT name FROM items WHERE id = 7")[0][0]
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "2", "f")
        dialog = pilot.app.screen
        box = dialog.query_one("#pick-filter")
        box.value = name[2:9].upper()
        await settle(pilot)
        options = dialog.query_one("#pick")
        shown = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert shown and all(name[2:9].lower() in s.lower() for s in shown)
        assert any(name in s for s in shown)
        index = next(i for i, s in enumerate(shown) if name in s)
        options.highlighted = index
        await goto(pilot, "enter")
        screen = pilot.app.screen
        assert screen.item_id == 7
        assert f"Similar to {name}"[:30] in screen_text(pilot)
