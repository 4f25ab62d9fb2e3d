"""The Textual app, driven with Pilot at 80x24: every flow checks what changed in the DB."""

from __future__ import annotations

import asyncio
import functools
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("textual")

from textual.pilot import Pilot

from smart_suggest import tracking
from smart_suggest.store import open_store

SIZE = (80, 24)


# -- fixtures and helpers ----------------------------------------------------------------
def pilot_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async Pilot scenario as a plain test (no asyncio plugin needed)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return run


@pytest.fixture
def demo_db(demo_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.db"
    shutil.copy(demo_template, path)
    return path


def rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the database file with a separate plain connection (what really got written)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def count(path: Path, table: str) -> int:
    return int(rows(path, f"SELECT count(*) FROM {table}")[0][0])


def make_app(path: Path, poll: float = 0) -> Any:
    from tui.app import SmartSuggestApp

    return SmartSuggestApp(path, poll_seconds=poll, debounce=0)


async def settle(pilot: Pilot[Any], rounds: int = 3) -> None:
    """Let every worker finish, and the workers they start (debounce is off in tests)."""
    for _ in range(rounds):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def screen_text(pilot: Pilot[Any]) -> str:
    return "\n".join(strip.text for strip in pilot.app.screen._compositor.render_strips())


def widget_text(widget: Any) -> str:
    """What a widget shows, as plain text (all its lines, scrolled out of view or not)."""
    from textual.geometry import Region

    width, height = widget.size
    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, width, height)))


def notes(pilot: Pilot[Any]) -> list[str]:
    return [str(n.message) for n in pilot.app._notifications]


async def fill(pilot: Pilot[Any], text: str) -> None:
    """Put ``text`` in the focused input (as a paste would) and press enter."""
    focused = pilot.app.focused
    assert focused is not None and hasattr(focused, "value"), focused
    focused.value = text
    await pilot.press("enter")


async def goto(pilot: Pilot[Any], key: str) -> None:
    await pilot.press(key)
    await settle(pilot)


# -- overview ----------------------------------------------------------------------------
@pilot_test
async def test_overview_shows_live_counts(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = screen_text(pilot)
        for table in ("users", "items", "interactions", "experiments", "events"):
            assert f"{count(demo_db, table):,}" in text, table
        assert "Interactions" in text and "demo.db" in text


@pilot_test
async def test_empty_database_offers_sample_data_and_loads_it(db_path: Path) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "The database is empty" in screen_text(pilot)
        await pilot.press("l")
        await pilot.pause()
        assert type(pilot.app.screen).__name__ == "ConfirmDialog"
        await pilot.press("y")
        await settle(pilot)
        assert count(db_path, "users") == 50
        assert count(db_path, "events") > 1000
        assert "The database is empty" not in screen_text(pilot)
        assert "50" in screen_text(pilot)


@pilot_test
async def test_clear_asks_first_and_no_keeps_everything(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("n")
        await settle(pilot)
        assert count(demo_db, "users") == 50
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        for table in ("users", "items", "interactions", "experiments", "events"):
            assert count(demo_db, table) == 0
        assert "The database is empty" in screen_text(pilot)


# -- navigation, help, palette -----------------------------------------------------------
@pilot_test
async def test_number_keys_switch_screens_and_help_lists_the_screen_keys(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key, name in (
            ("2", "RecommendScreen"),
            ("3", "ExperimentsScreen"),
            ("1", "OverviewScreen"),
        ):
            await goto(pilot, key)
            assert type(pilot.app.screen).__name__ == name
        await goto(pilot, "2")
        await pilot.press("f1")
        await pilot.pause()
        help_screen = pilot.app.screen
        assert type(help_screen).__name__ == "HelpScreen"
        listed = {key for _, keys in help_screen.sections for key, _ in keys}
        assert {"v", "c", "p", "s", "a", "i", "/"} <= listed
        await pilot.press("escape")
        await pilot.pause()
        await goto(pilot, "3")
        await pilot.press("question_mark")
        await pilot.pause()
        listed = {key for _, keys in pilot.app.screen.sections for key, _ in keys}
        assert {"n", "x", "s", "l"} <= listed


@pilot_test
async def test_command_palette_offers_every_screen_action(demo_db: Path) -> None:
    from tui.commands import ActionsProvider

    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await settle(pilot)
        provider = ActionsProvider(pilot.app.screen)
        names = {name for name, _, _ in provider._commands()}
        for expected in (
            "Load the sample data",
            "Clear all data",
            "Recommendations: Log a click on the highlighted item",
            "Recommendations: Add an item",
            "Experiments: Create an experiment",
            "Experiments: Simulate traffic for the highlighted experiment",
            "Go to Experiments",
        ):
            assert expected in names
        # Running one from another screen switches there and runs it.
        run = next(
            cb for name, _, cb in provider._commands() if name == "Recommendations: Add a user"
        )
        await run()
        await pilot.pause()
        assert type(pilot.app.screen).__name__ == "FormDialog"


@pilot_test
async def test_palette_opens_with_ctrl_p(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert type(pilot.app.screen).__name__ == "CommandPalette"
        await pilot.press(*"add item")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        assert type(pilot.app.screen).__name__ == "FormDialog"


# -- recommendations ---------------------------------------------------------------------
def rec_keys(pilot: Pilot[Any], strategy: str) -> list[str]:
    return pilot.app.screen.query_one(f"#recs-{strategy}").row_keys()


@pilot_test
async def test_recommendations_show_v1_and_v2_for_the_first_user(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        screen = pilot.app.screen
        assert screen.user_id == 1
        assert len(rec_keys(pilot, "v1")) >= 5 and len(rec_keys(pilot, "v2")) >= 5
        text = screen_text(pilot)
        assert "alice" in text and "v1 · collaborative" in text and "v2 · content-based" in text


@pilot_test
async def test_log_keys_write_interactions_and_the_lists_update(demo_db: Path) -> None:
    before = count(demo_db, "interactions")
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        screen = pilot.app.screen
        await pilot.press("tab")  # user list -> v1 list
        await settle(pilot)
        table = screen.query_one("#recs-v1")
        assert table.has_focus
        for n, (key, action) in enumerate((("v", "view"), ("c", "click"), ("p", "purchase")), 1):
            if n > 1:
                # The logged item left the list: the next one is chosen afresh (the first
                # arrow shows the cursor where it stands).
                await pilot.press("down")
                await settle(pilot)
            item = int(table.current_key)
            actions_before = screen.view.profile.actions[action]
            await pilot.press(key)
            await settle(pilot)
            assert count(demo_db, "interactions") == before + n
            last = rows(
                demo_db,
                "SELECT user_id, item_id, action FROM interactions ORDER BY id DESC LIMIT 1",
            )[0]
            assert last == (1, item, action)
            # History (newest first) and profile show it; the cursor stays in the list.
            assert screen.view.history[0].item_id == item
            assert screen.view.history[0].action == action
            assert screen.view.profile.actions[action] == actions_before + 1
            assert screen.query_one("#history").row_count == len(screen.view.history)
            assert table.has_focus


@pilot_test
async def test_logging_changes_the_recommendations(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        screen = pilot.app.screen
        await pilot.press("tab")
        await settle(pilot)
        before = [(r.item_id, round(r.score, 6)) for r in screen.view.recs["v1"]]
        for _ in range(3):
            await pilot.press("p")
            await settle(pilot)
            await pilot.press("down")
        after = [(r.item_id, round(r.score, 6)) for r in screen.view.recs["v1"]]
        assert after != before


@pilot_test
async def test_filter_users_by_typing(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        await pilot.press("slash", *"car")
        await settle(pilot)
        table = pilot.app.screen.query_one("#user-list")
        names = {str(table.get_row(k)[1]) for k in table.rows}
        assert names == {"carol"}
        await pilot.press("enter")
        await settle(pilot)
        assert pilot.app.screen.user_id == 3
        assert table.has_focus


@pilot_test
async def test_add_user_form_writes_the_user_and_selects_it(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        await pilot.press("a")
        await pilot.pause()
        await pilot.press(*"newbie", "enter")
        await settle(pilot)
        assert rows(demo_db, "SELECT username FROM users WHERE username = 'newbie'")
        screen = pilot.app.screen
        assert type(screen).__name__ == "RecommendScreen"
        new_id = rows(demo_db, "SELECT id FROM users WHERE username = 'newbie'")[0][0]
        assert screen.user_id == new_id
        assert screen.view is not None and screen.view.user.username == "newbie"
        # A cold user still gets recommendations (popular items).
        assert screen.view.recs["v1"] or screen.view.recs["v2"]


@pilot_test
async def test_add_user_form_rejects_empty_and_duplicate_names(demo_db: Path) -> None:
    users = count(demo_db, "users")
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        await pilot.press("a")
        await pilot.pause()
        await pilot.press("enter")  # empty
        await settle(pilot)
        dialog = pilot.app.screen
        assert type(dialog).__name__ == "FormDialog"
        assert "required" in str(dialog.query_one("#error-username").render())
        await pilot.press(*"alice", "enter")  # exists
        await settle(pilot)
        assert type(pilot.app.screen).__name__ == "FormDialog"
        assert "already exists" in str(dialog.query_one("#form-error").render())
        await pilot.press("escape")
        await pilot.pause()
        assert type(pilot.app.screen).__name__ == "RecommendScreen"
    assert count(demo_db, "users") == users


@pilot_test
async def test_add_item_form_and_the_item_is_recommended(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        await pilot.press("i")
        await settle(pilot)
        await fill(pilot, "Trail Running Socks")
        await fill(pilot, "sports")
        await fill(pilot, "running training socks for marathon workout")
        await settle(pilot)
        found = rows(demo_db, "SELECT id, category FROM items WHERE name = 'Trail Running Socks'")
        assert found and found[0][1] == "sports"
        new_id = found[0][0]
        # Someone into sports sees it at once (v1 appends fresh items, v2 matches words).
        await pilot.press("slash", *"zoe", "enter")
        await settle(pilot)
        screen = pilot.app.screen
        recommended = {r.item_id for rows_ in screen.view.recs.values() for r in rows_}
        assert new_id in recommended


@pilot_test
async def test_add_item_form_validates_before_writing(demo_db: Path) -> None:
    items = count(demo_db, "items")
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        await pilot.press("i")
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        dialog = pilot.app.screen
        assert type(dialog).__name__ == "FormDialog"
        assert "Fix the fields" in str(dialog.query_one("#form-error").render())
        await pilot.press("escape")
    assert count(demo_db, "items") == items


@pilot_test
async def test_similar_items_follow_the_highlighted_item(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        screen = pilot.app.screen
        await pilot.press("tab")
        await settle(pilot)
        first = screen.item_id
        similar_first = screen.query_one("#similar").row_keys()
        assert similar_first and str(first) not in similar_first
        await pilot.press("down")
        await settle(pilot)
        assert screen.item_id != first
        assert screen.query_one("#similar").row_keys() != similar_first


@pilot_test
async def test_keys_without_a_user_explain_instead_of_failing(db_path: Path) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        assert "No users yet" in screen_text(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert any("Pick a user first" in n for n in notes(pilot))
    assert count(db_path, "interactions") == 0


# -- refresh from other processes --------------------------------------------------------
@pilot_test
async def test_changes_from_another_process_appear_and_keep_the_selection(
    demo_db: Path,
) -> None:
    async with make_app(demo_db, poll=0.2).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        screen = pilot.app.screen
        users = screen.query_one("#user-list")
        await pilot.press("down", "down")
        await settle(pilot)
        assert screen.user_id == 3
        other = open_store(demo_db)
        try:
            tracking.add_user(other, "from-elsewhere")
            tracking.log_interaction(other, 3, 5, "purchase")
        finally:
            other.close()
        await pilot.pause(0.6)
        await settle(pilot)
        assert users.row_count == 51
        assert users.current_key == "3" and screen.user_id == 3
        assert screen.view.history[0].item_id == 5


# -- hostile input -----------------------------------------------------------------------
HOSTILE = "[bold red]x[/] \x1b[31mred\x1b]0;title\x07 [link=http://e.vil]y"


@pilot_test
async def test_hostile_names_are_shown_literally(demo_db: Path) -> None:
    from smart_suggest.text import printable

    store = open_store(demo_db)
    try:
        user = tracking.add_user(store, HOSTILE)
        item = tracking.add_item(store, HOSTILE, "[i]cat\x1b[0m", "desc")
        tracking.log_interaction(store, user.id, item.id, "click")
    finally:
        store.close()
    async with make_app(demo_db).run_test(size=(160, 45)) as pilot:
        await goto(pilot, "2")
        await pilot.press("slash", *"[bold", "enter")
        await settle(pilot)
        screen = pilot.app.screen
        assert screen.user_id == user.id
        text = screen_text(pilot)
        shown = printable(HOSTILE)
        assert "\x1b" not in text
        assert shown[:40] in text  # the literal markup and the visible \x1b escapes
        assert "[bold red]x[/]" in text
        table = screen.query_one("#user-list")
        cell = table.get_row(str(user.id))[1]
        assert shown.startswith(cell.plain.rstrip("…")) and not cell.spans
        # The item with the hostile name is shown literally in the history too.
        history = screen.query_one("#history")
        item_cell = history.get_row(history.row_keys()[0])[2]
        assert item_cell.plain.startswith("[bold red]x[/] \\x1b[31m") and not item_cell.spans
        assert "[i]cat\\x1b[0m" in text


@pilot_test
async def test_hostile_experiment_names_are_shown_literally(demo_db: Path) -> None:
    from smart_suggest.experiments.lifecycle import create_experiment
    from smart_suggest.text import printable

    with open_store(demo_db) as store:
        create_experiment(store, HOSTILE, "v1", "v2")
    async with make_app(demo_db).run_test(size=(160, 45)) as pilot:
        await goto(pilot, "3")
        await pilot.press("down")
        await settle(pilot)
        screen = pilot.app.screen
        assert screen.exp_id == 2
        text = screen_text(pilot)
        assert "\x1b" not in text
        assert "KPIs · [bold red]x[/] \\x1b[31mred" in text
        cell = screen.query_one("#exp-list").get_row("2")[0]
        assert printable(HOSTILE).startswith(cell.plain.rstrip("…")) and not cell.spans
        # The stop dialog names it literally too.
        await pilot.press("x")
        await pilot.pause()
        dialog_text = screen_text(pilot)
        assert "[bold red]x[/]" in dialog_text and "\x1b" not in dialog_text


# -- robustness ----------------------------------------------------------------------------
@pilot_test
async def test_database_errors_become_notifications(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        screen = pilot.app.screen
        await pilot.press("tab")
        await settle(pilot)
        # The item disappears behind the app's back: logging it is a one-line error.
        conn = sqlite3.connect(demo_db)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("DELETE FROM items WHERE id = ?", (screen.item_id,))
        conn.commit()
        conn.close()
        await pilot.press("v")
        await settle(pilot)
        assert any("no item" in n for n in notes(pilot))
        assert pilot.app.is_running


# -- the command and the core's independence ---------------------------------------------
def test_core_imports_no_textual() -> None:
    code = (
        "import sys, smart_suggest, smart_suggest.tracking, smart_suggest.store, "
        "smart_suggest.sample, smart_suggest.recommend, smart_suggest.experiments.lifecycle, "
        "smart_suggest.cli\n"
        "import importlib, pkgutil\n"
        "for m in pkgutil.walk_packages(smart_suggest.__path__, 'smart_suggest.'):\n"
        "    if not m.name.startswith('smart_suggest.cli.'):\n"
        "        importlib.import_module(m.name)\n"
        "ui = ('textual', 'textual_plotext', 'tui')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ui]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_help_does_not_import_textual() -> None:
    code = (
        "import sys\nfrom smart_suggest.cli import app\n"
        "sys.exit(1 if any(m.startswith('textual') for m in sys.modules) else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_tui_command_rejects_a_wrong_file_in_one_line(tmp_path: Path, run_cli: Any) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a database")
    code, _, err = run_cli("tui", "--db", bad)
    assert code == 2
    assert err.count("\n") == 1 and "not a SQLite database" in err
    assert bad.read_text() == "not a database"


def test_demo_database_is_separate_and_seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    from smart_suggest.cli import tui as tui_cmd

    path = tui_cmd.demo_db_path()
    assert path.name == "demo.db"
    assert "xdg-data" in str(path)  # the test's data folder, never the real one
    tui_cmd.prepare_demo(path)
    assert count(path, "users") == 50 and count(path, "experiments") == 1
    with open_store(path) as store:
        tracking.add_user(store, "extra")
    tui_cmd.prepare_demo(path)  # fresh again
    assert count(path, "users") == 50


def test_tui_demo_runs_the_app_on_the_demo_database(
    monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    import tui.app

    seen: dict[str, Any] = {}

    def fake_run(self: Any) -> None:
        seen["path"] = self.store.path
        seen["demo"] = self.demo

    monkeypatch.setattr(tui.app.SmartSuggestApp, "run", fake_run)
    # The collector is left as the test process has it (freezing it would last).
    monkeypatch.setattr(tui.app, "tune_collector", lambda **_: None)
    code, _, err = run_cli("tui", "--demo")
    assert code == 0, err
    assert seen["demo"] is True and seen["path"].name == "demo.db"
    assert count(seen["path"], "users") == 50


# -- experiments -------------------------------------------------------------------------
def exp_rows(path: Path) -> list[tuple[Any, ...]]:
    return rows(
        path,
        "SELECT name, control, treatment, traffic_fraction, treatment_share, "
        "status FROM experiments ORDER BY id",
    )


@pilot_test
async def test_experiments_screen_shows_kpis_of_the_demo_experiment(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "3")
        screen = pilot.app.screen
        assert screen.exp_id == 1 and screen.view is not None
        kpis = screen.query_one("#kpis")
        assert {
            "assigned",
            "exposed",
            "impressions",
            "clicks",
            "ctr",
            "conversion",
            "engagement",
        } <= set(kpis.row_keys())
        impressions = rows(
            demo_db,
            "SELECT variant, count(*) FROM events WHERE type = "
            "'impression' GROUP BY variant ORDER BY variant",
        )
        row = kpis.get_row("impressions")
        assert [str(c).replace(",", "") for c in row[1:3]] == [str(n) for _, n in impressions]
        assert "KPIs · homepage-recs-v1-vs-v2" in screen_text(pilot)


@pilot_test
async def test_create_experiment_form_writes_it_and_selects_it(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "3")
        await pilot.press("n")
        await settle(pilot)
        dialog = pilot.app.screen
        assert type(dialog).__name__ == "FormDialog"
        await pilot.press(*"v1-vs-pop", "tab", "tab")  # name; control stays v1
        # Treatment with the keyboard: open the list, move from v2 past v3 to "popular".
        assert dialog.focused.id == "field-treatment"
        await pilot.press("enter", "down", "down", "enter")
        await pilot.pause()
        assert dialog.query_one("#field-treatment").value == "popular"
        await pilot.press("tab", "tab", "tab", "tab")  # past more variants, weights, design
        await fill(pilot, "0.5")  # traffic
        await fill(pilot, "0.3")  # treatment share
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert exp_rows(demo_db)[-1] == ("v1-vs-pop", "v1", "popular", 0.5, 0.3, "active")
        screen = pilot.app.screen
        assert type(screen).__name__ == "ExperimentsScreen"
        new_id = rows(demo_db, "SELECT id FROM experiments WHERE name = 'v1-vs-pop'")[0][0]
        assert screen.exp_id == new_id
        assert screen.query_one("#exp-list").current_key == str(new_id)


@pilot_test
async def test_create_experiment_form_makes_abn_and_interleaving_experiments(
    demo_db: Path,
) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "3")
        await pilot.press("n")
        await settle(pilot)
        dialog = pilot.app.screen
        await pilot.press(*"abc-form", "tab", "tab", "tab")  # name; v1 vs v2
        assert dialog.focused.id == "field-more"
        await fill(pilot, "popular, v3")
        await fill(pilot, "2,1,1")  # one weight short: the core says so, the form stays
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "one weight per variant (4 variants, 3 weights)" in str(
            dialog.query_one("#form-error").render()
        )
        assert pilot.app.screen is dialog
        dialog.query_one("#field-weights").value = "2,1,1,1"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert type(pilot.app.screen).__name__ == "ExperimentsScreen"
        (exp_id,) = rows(demo_db, "SELECT id FROM experiments WHERE name = 'abc-form'")[0]
        assert rows(
            demo_db,
            "SELECT label, strategy, weight FROM experiment_variants WHERE experiment_id = ? "
            "ORDER BY label",
            (exp_id,),
        ) == [("A", "v1", 2.0), ("B", "v2", 1.0), ("C", "popular", 1.0), ("D", "v3", 1.0)]
        # An interleaving experiment: the design select, two strategies.
        await pilot.press("n")
        await settle(pilot)
        dialog = pilot.app.screen
        dialog.query_one("#field-name").value = "il-form"
        dialog.query_one("#field-design").value = "interleaving"
        dialog.query_one("#field-more").value = "popular"  # interleaving takes two
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert pilot.app.screen is dialog
        assert "interleaving" in str(dialog.query_one("#form-error").render())
        dialog.query_one("#field-more").value = ""
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert rows(
            demo_db, "SELECT design, control, treatment FROM experiments WHERE name = 'il-form'"
        ) == [("interleaving", "v1", "v2")]


@pilot_test
async def test_create_experiment_form_refuses_bad_values(demo_db: Path) -> None:
    before = exp_rows(demo_db)
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "3")
        await pilot.press("n")
        await settle(pilot)
        dialog = pilot.app.screen
        dialog.query_one("#field-name").value = "homepage-recs-v1-vs-v2"  # exists
        dialog.query_one("#field-traffic").value = "1.5"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Fix the fields" in str(dialog.query_one("#form-error").render())
        assert str(dialog.query_one("#error-traffic").render())
        dialog.query_one("#field-traffic").value = "1"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "already exists" in str(dialog.query_one("#form-error").render())
        assert pilot.app.screen is dialog
    assert exp_rows(demo_db) == before


@pilot_test
async def test_stop_experiment_after_confirmation(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "3")
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("n")  # changed my mind
        await settle(pilot)
        assert exp_rows(demo_db)[0][-1] == "active"
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert exp_rows(demo_db)[0][-1] == "stopped"
        screen = pilot.app.screen
        status = screen.query_one("#exp-list").get_row("1")[1]
        assert str(status) == "stopped"
        assert "stopped" in screen_text(pilot)


@pilot_test
async def test_log_event_form_writes_an_event(demo_db: Path) -> None:
    before = count(demo_db, "events")
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "3")
        clicks_before = str(pilot.app.screen.query_one("#kpis").get_row("clicks")[1:3])
        await pilot.press("l")
        await settle(pilot)
        await fill(pilot, "alice")
        await fill(pilot, "3")
        await pilot.press("ctrl+s")  # type stays "click"
        await settle(pilot)
        assert count(demo_db, "events") == before + 1
        last = rows(demo_db, "SELECT user_id, item_id, type FROM events ORDER BY id DESC LIMIT 1")
        assert last == [(1, 3, "click")]
        assert str(pilot.app.screen.query_one("#kpis").get_row("clicks")[1:3]) != clicks_before


@pilot_test
async def test_log_event_for_an_unknown_user_keeps_the_form_open(demo_db: Path) -> None:
    before = count(demo_db, "events")
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "3")
        await pilot.press("l")
        await settle(pilot)
        await fill(pilot, "nobody-here")
        await fill(pilot, "3")
        await pilot.press("ctrl+s")
        await settle(pilot)
        dialog = pilot.app.screen
        assert type(dialog).__name__ == "FormDialog"
        assert "no user" in str(dialog.query_one("#form-error").render())
    assert count(demo_db, "events") == before


@pilot_test
async def test_serve_from_recommendations_logs_impressions_and_experiments_move(
    demo_db: Path,
) -> None:
    before = count(demo_db, "events")
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "3")
        impressions_before = pilot.app.screen.query_one("#kpis").get_row("impressions")
        await goto(pilot, "2")
        await pilot.press("s")
        await settle(pilot)
        screen = pilot.app.screen
        assert screen.served is not None and screen.served.enrolled
        variant = screen.served.variant
        served = rows(demo_db, "SELECT user_id, variant, type FROM events WHERE id > ?", (before,))
        assert len(served) == 5 and set(served) == {(1, variant, "impression")}
        strategy = "v1" if variant == "A" else "v2"
        assert screen.query_one(f"#panel-{strategy}").has_class("-served")
        await goto(pilot, "3")
        assert pilot.app.screen.query_one("#kpis").get_row("impressions") != impressions_before


@pilot_test
async def test_link_another_experiment_or_none(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        await pilot.press("e")
        await settle(pilot)
        dialog = pilot.app.screen
        assert type(dialog).__name__ == "PickDialog"
        # The linked experiment is marked and starts highlighted; "none" is just above.
        options = dialog.query_one("#pick")
        assert "(linked)" in str(options.get_option_at_index(options.highlighted).prompt)
        await pilot.press("up", "enter")
        await settle(pilot)
        screen = pilot.app.screen
        assert screen.exp is None
        await pilot.press("s")
        await settle(pilot)
        assert any("No experiment linked" in n for n in notes(pilot))


@pilot_test
async def test_experiments_refresh_when_another_process_logs(demo_db: Path) -> None:
    from smart_suggest.experiments.events import log_event
    from smart_suggest.experiments.lifecycle import create_experiment

    async with make_app(demo_db, poll=0.2).run_test(size=SIZE) as pilot:
        await goto(pilot, "3")
        screen = pilot.app.screen
        clicks = screen.query_one("#kpis").get_row("clicks")
        other = open_store(demo_db)
        try:
            create_experiment(other, "second", "v1", "popular")
            # Clicks on an item user 1 was shown (unserved ones would stay out of the KPIs).
            shown = other.scalar(
                "SELECT MIN(item_id) FROM served_items WHERE experiment_id = 1 AND user_id = 1"
            )
            for _ in range(3):
                log_event(other, 1, 1, shown, "click")
        finally:
            other.close()
        await pilot.pause(0.6)
        await settle(pilot)
        table = screen.query_one("#exp-list")
        assert table.row_keys() == ["1", "2"]
        assert table.current_key == "1" and screen.exp_id == 1  # selection kept
        assert screen.query_one("#kpis").get_row("clicks") != clicks


@pilot_test
async def test_simulate_form_runs_in_a_worker_and_writes_events(demo_db: Path) -> None:
    before = count(demo_db, "events")
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "3")
        await pilot.press("s")
        await settle(pilot)
        dialog = pilot.app.screen
        dialog.query_one("#field-users").value = "300"
        dialog.query_one("#field-days").value = "3"
        dialog.query_one("#field-ctr_a").value = "0.2"
        dialog.query_one("#field-ctr_b").value = "0.4"
        await pilot.press("ctrl+s")
        await pilot.pause()
        screen = pilot.app.screen
        assert type(screen).__name__ == "ExperimentsScreen"
        await settle(pilot, rounds=5)
        sim_users = rows(demo_db, "SELECT count(*) FROM users WHERE username LIKE 'sim-1-%'")
        assert sim_users == [(300,)]
        assert count(demo_db, "events") > before + 300
        assert any("Simulated 300 visitors" in n for n in notes(pilot))
        assert not screen.query_one("#sim-bar").display
        assert screen.view is not None
        assert screen.view.variants[0].assigned > 100  # the KPIs moved


@pilot_test
async def test_simulate_form_rejects_rates_outside_0_1(demo_db: Path) -> None:
    before = count(demo_db, "events")
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "3")
        await pilot.press("s")
        await settle(pilot)
        dialog = pilot.app.screen
        dialog.query_one("#field-ctr_b").value = "1.7"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert pilot.app.screen is dialog
        assert str(dialog.query_one("#error-ctr_b").render())
    assert count(demo_db, "events") == before


@pilot_test
async def test_statistics_panel_shows_tests_srm_and_verdict(demo_db: Path) -> None:
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "3")
        screen = pilot.app.screen
        stats = screen.view.stats
        assert stats is not None and stats.mode == "sequential"
        assert stats.verdict == "worth_shipping"
        stats_text = widget_text(screen.query_one("#stats"))
        for expected in (
            "always-valid",
            "SRM",
            "Sequential",
            "P(B beats A)",
            "Power",
            "In plain English",
            "Welch",
            "diff",
        ):
            assert expected in stats_text, expected
        assert "WORTH SHIPPING" in widget_text(screen.query_one("#verdict"))
        # t switches to fixed-horizon statistics.
        await pilot.press("t")
        await settle(pilot)
        assert screen.view.stats.mode == "fixed_horizon"
        assert "fixed horizon" in widget_text(screen.query_one("#stats"))


@pilot_test
async def test_empty_experiment_has_no_statistics_but_no_error(demo_db: Path) -> None:
    from smart_suggest.experiments.lifecycle import create_experiment

    with open_store(demo_db) as store:
        create_experiment(store, "fresh", "v1", "v2")
    async with make_app(demo_db).run_test(size=SIZE) as pilot:
        await goto(pilot, "3")
        await pilot.press("down")
        await settle(pilot)
        screen = pilot.app.screen
        assert screen.exp_id == 2 and screen.view is not None
        assert not [n for n in notes(pilot) if "error" in n.lower()]
        assert screen.query_one("#kpis").get_row("impressions")[1].plain == "0"


# -- A/B/n and interleaving ---------------------------------------------------------------
def _abn_and_interleaving(path: Path) -> tuple[int, int]:
    import random

    from smart_suggest.experiments.lifecycle import create_experiment
    from smart_suggest.experiments.serving import serve
    from smart_suggest.experiments.simulate import simulate

    with open_store(path) as s:
        three = create_experiment(s, "three", variants=["v1", "v2", "popular"])
        simulate(s, three, users=600, days=2, ctr=[0.3, 0.3, 0.4], purchase=[0.1, 0.1, 0.1])
        il = create_experiment(s, "il", "v1", "v2", design="interleaving")
        simulate(s, il, users=400, days=2, click_model="position", ranker_noise=[1.0, 0.5])
        serve(s, il, "alice", 5, rng=random.Random(1))
        return three.id, il.id


def test_experiment_view_has_a_row_per_variant_and_the_preference(demo_db: Path) -> None:
    from tui import data

    three, il = _abn_and_interleaving(demo_db)
    with open_store(demo_db) as s:
        view = data.experiment_view(s, three)
        assert [r.variant for r in view.variants] == ["A", "B", "C"]
        assert set(view.daily_ctr) == {"A", "B", "C"}
        assert view.summary is not None and "Holm" in view.summary and view.stats is not None
        iview = data.experiment_view(s, il)
        assert [r.variant for r in iview.variants] == ["A", "B"]
        assert iview.summary is not None and "Interleaving" in iview.summary
        assert sum(r.impressions for r in iview.variants) > 0


@pilot_test
async def test_experiments_screen_shows_the_recommendation_and_the_preference(
    demo_db: Path,
) -> None:
    three, il = _abn_and_interleaving(demo_db)
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "3")
        screen = pilot.app.screen
        screen._select(three, force=True)
        await pilot.pause(0.5)
        while screen.view is None or screen.view.experiment.id != three:
            await pilot.pause(0.1)
        text = widget_text(screen.query_one("#verdict"))
        assert "v1 (A) vs v2 (B) vs popular (C)" in text and "Holm" in text
        screen._select(il, force=True)
        while screen.view is None or screen.view.experiment.id != il:
            await pilot.pause(0.1)
        text = widget_text(screen.query_one("#verdict"))
        assert "interleaved" in text and "Interleaving" in text


@pilot_test
async def test_serving_an_interleaving_experiment_marks_each_rows_team(demo_db: Path) -> None:
    from tui import data

    _three, il = _abn_and_interleaving(demo_db)
    async with make_app(demo_db).run_test(size=(120, 40)) as pilot:
        await goto(pilot, "2")
        screen = pilot.app.screen
        with open_store(demo_db) as s:
            screen.exp = next(e for e in data.list_experiments(s) if e.id == il)
        await pilot.press("s")
        while screen.served is None:
            await pilot.pause(0.1)
        assert screen.served.teams and len(screen.served.teams) == len(screen.served.rows)
        detail = widget_text(screen.query_one("#detail"))
        for team in set(screen.served.teams):
            assert f"[{team}]" in detail


@pilot_test
async def test_v2_without_item_content_says_it_serves_popular_items(tmp_path: Path) -> None:
    from smart_suggest.store import open_store

    path = tmp_path / "bare.db"
    with open_store(path) as store, store.write() as conn:
        conn.execute("INSERT INTO users VALUES (1, 'ann', 0), (2, 'bob', 0)")
        conn.executemany(
            "INSERT INTO items(id, name, category, created_at) VALUES (?, ?, 'unknown', 0)",
            [(i, f"item {i}") for i in range(1, 5)],
        )
        conn.executemany(
            "INSERT INTO interactions(user_id, item_id, action, ts) VALUES (?, ?, 'view', 1)",
            [(1, 1), (2, 3), (2, 4), (1, 4)],
        )
    async with make_app(path).run_test(size=SIZE) as pilot:
        await goto(pilot, "2")
        await settle(pilot)
        assert rec_keys(pilot, "v2") == ["3"]
        panel = pilot.app.screen.query_one("#recs-v2").parent
        assert panel.border_subtitle == "popular: no item text or categories"
