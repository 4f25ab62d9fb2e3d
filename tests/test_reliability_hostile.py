"""Hostile and odd input: stored byte for byte, shown literally, never interpreted.

Names, categories and descriptions carrying Rich markup, terminal escape sequences
(ESC ] and ESC [), control characters, right-to-left text and bidi overrides, emoji,
100,000-character strings and SQL fragments go in through the CLI (in-process ``main()``),
come back out of the file unchanged (plain sqlite3), and are shown literally by every
command that prints them: no ESC byte reaches the terminal, the markup text is visible.
The TUI gets the same names (Pilot, the rendered text of its widgets).

Then hypothesis drives every CLI command with arbitrary arguments (the command list is
discovered from the app, so commands added later are covered too): never a traceback or an
"internal error", exit 0, 1 (documented failures) or 2, one error line, and the database
unchanged whenever a command fails or only reads. ``SMART_SUGGEST_HYPOTHESIS_EXAMPLES``
raises the number of examples (the stress script uses it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import sqlite3
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smart_suggest.store import TABLES, open_store
from smart_suggest.text import printable

LONG = 100_000
HOSTILE: dict[str, str] = {
    "markup": "[bold red]alert[/bold red] [link=https://x.example]click[/link]",
    "markup-close": "[/] [/bold] [[escaped]] \\[b]",
    "osc-title": "\x1b]0;pwned\x07title",
    "osc-hyperlink": "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\",
    "csi-colour": "\x1b[31mred\x1b[0m",
    "csi-clear": "\x1b[2J\x1b[Hgone",
    "controls": "a\x01b\x02c\x08d\x7fe\x1bf\x9bg",
    "carriage-return": "visible\rhidden",
    "newline-tab": "two\nlines\tand tab",
    "rtl": "שלום עולם مرحبا",
    "bidi-override": "user\u202egnp.exe\u202c",
    "emoji": "👩‍💻 🚀 🇫🇷 e\u0301",
    "zero-width": "zero\u200bwidth\u2060joiner",
    "sql": "'; DROP TABLE users; --",
    "sql-2": "Robert'); DROP TABLE items;-- \" OR 1=1 --",
    "format": "%s %d {0} {} $(whoami) `id`",
    "long": "x" * LONG,
    "long-markup": "[b]" * (LONG // 3) + "y",
}
SHORT = {k: v for k, v in HOSTILE.items() if len(v) < 200}
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def assert_terminal_safe(text: str, where: str) -> None:
    """No escape sequence, control or bidi character reaches the terminal (newline aside)."""
    bad = sorted(
        {ch for ch in text if ch in BIDI or (unicodedata.category(ch) == "Cc" and ch not in "\n")}
    )
    assert not bad, f"{where}: raw control characters {bad!r} in the output"


def rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}
    finally:
        conn.close()


@pytest.fixture
def template(demo_template: Path) -> Path:
    """The demo database (fixed clock), built once per session; tests copy it."""
    return demo_template


@pytest.fixture
def demo(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.db"
    shutil.copy(template, path)
    return path


# -- stored byte for byte --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(HOSTILE))
def test_names_stored_byte_for_byte(demo: Path, run_cli, kind: str) -> None:  # type: ignore[no-untyped-def]
    value = HOSTILE[kind]
    code, out, err = run_cli("users", "add", "--db", demo, "--json", "--", value)
    assert code == 0, err
    user = json.loads(out)
    assert user["username"] == value
    code, out, err = run_cli(
        "items",
        "add",
        "--category",
        value,
        "--description",
        value,
        "--db",
        demo,
        "--json",
        "--",
        value,
    )
    assert code == 0, err
    item = json.loads(out)
    conn = sqlite3.connect(demo)
    try:
        (stored_user,) = conn.execute(
            "SELECT CAST(username AS BLOB) FROM users WHERE id = ?", (user["id"],)
        ).fetchone()
        stored_item = conn.execute(
            "SELECT CAST(name AS BLOB), CAST(category AS BLOB), CAST(description AS BLOB) "
            "FROM items WHERE id = ?",
            (item["id"],),
        ).fetchone()
        # The SQL fragments did nothing: every table is still there.
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert set(TABLES) <= tables
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 51
    finally:
        conn.close()
    encoded = value.encode("utf-8")
    assert stored_user == encoded
    assert tuple(stored_item) == (encoded, encoded, encoded)
    # And --json gives back exactly the same text.
    code, out, _ = run_cli("users", "show", str(user["id"]), "--db", demo, "--json")
    assert code == 0 and json.loads(out)["profile"]["user"]["username"] == value
    code, out, _ = run_cli("items", "show", str(item["id"]), "--db", demo, "--json")
    assert code == 0
    shown = json.loads(out)["item"]
    assert (shown["name"], shown["category"], shown["description"]) == (value, value, value)


def test_experiment_names_stored_byte_for_byte(demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    for kind, value in HOSTILE.items():
        if value.strip().isdigit():
            continue
        code, out, err = run_cli(
            "experiment", "create", "--description", value, "--db", demo, "--json", "--", value
        )
        assert code == 0, (kind, err)
        conn = sqlite3.connect(demo)
        stored = conn.execute(
            "SELECT CAST(name AS BLOB), CAST(description AS BLOB) FROM experiments WHERE id = ?",
            (json.loads(out)["id"],),
        ).fetchone()
        conn.close()
        assert tuple(stored) == (value.encode(), value.encode()), kind


# -- shown literally -------------------------------------------------------------------------------
@pytest.fixture
def hostile_demo(demo: Path) -> tuple[Path, dict[str, tuple[int, int]]]:
    """The demo plus one user, item and experiment per hostile string."""
    from smart_suggest import tracking
    from smart_suggest.experiments.lifecycle import create_experiment

    ids: dict[str, tuple[int, int]] = {}
    with open_store(demo) as s:
        for kind, value in HOSTILE.items():
            u = tracking.add_user(s, value)
            it = tracking.add_item(s, value, value, value)
            tracking.log_interaction(s, u.id, it.id, "click")
            tracking.log_interaction(s, u.id, 1, "purchase")
            create_experiment(s, f"{value} exp", description=value)
            ids[kind] = (u.id, it.id)
    return demo, ids


def _per_name_commands(db: Path, user: int, item: int) -> list[list[str]]:
    d = ["--db", str(db)]
    return [
        ["users", "show", str(user), *d],
        ["items", "show", str(item), *d],
        ["history", str(user), *d],
    ]


def _global_commands(db: Path, user: int, item: int) -> list[list[str]]:
    d = ["--db", str(db)]
    return [
        ["users", "list", *d],
        ["items", "list", *d],
        ["recommend", str(user), *d],
        ["similar", str(item), *d],
        ["profile", str(user), *d],
        ["log", str(user), str(item), "view", *d],
        ["status", *d],
        ["experiment", "list", *d],
        ["experiment", "show", "2", *d],  # the first hostile experiment
        ["experiment", "results", "3", *d],
    ]


def test_cli_shows_names_literally(hostile_demo, run_cli) -> None:  # type: ignore[no-untyped-def]
    db, ids = hostile_demo
    everything = ""
    for kind, value in SHORT.items():
        user, item = ids[kind]
        outputs = ""
        for argv in _per_name_commands(db, user, item):
            code, out, err = run_cli(*argv)
            assert code == 0, (argv, err)
            assert_terminal_safe(out, f"{kind}: {' '.join(argv[:2])}")
            assert_terminal_safe(err, f"{kind}: {' '.join(argv[:2])}")
            outputs += out
        # The detail views print the whole name literally (markup text, visible escapes).
        assert printable(value) in outputs, f"{kind}: {printable(value)!r} not shown"
        everything += outputs
    user, item = ids["markup"]
    for argv in _global_commands(db, user, item):
        code, out, err = run_cli(*argv)
        assert code == 0, (argv, err)
        assert_terminal_safe(out, " ".join(argv[:2]))
        assert_terminal_safe(err, " ".join(argv[:2]))
        everything += out
    assert "[bold red]alert[/bold red]" in everything


def test_markup_is_visible_text_not_style(hostile_demo, run_cli) -> None:  # type: ignore[no-untyped-def]
    db, ids = hostile_demo
    user, item = ids["markup"]
    code, out, _ = run_cli("users", "show", str(user), "--db", db)
    assert code == 0
    assert "[bold red]alert[/bold red]" in out and "[link=https://x.example]click[/link]" in out
    code, out, _ = run_cli("items", "show", str(item), "--db", db)
    assert code == 0 and out.count("[bold red]alert[/bold red]") >= 2  # name and description


def test_cli_survives_100k_character_names(hostile_demo, run_cli) -> None:  # type: ignore[no-untyped-def]
    db, ids = hostile_demo
    for kind in ("long", "long-markup"):
        user, item = ids[kind]
        for argv in _per_name_commands(db, user, item)[:3]:
            code, out, err = run_cli(*argv)
            assert code == 0, (argv, err)
            assert_terminal_safe(out, argv[0])
        code, out, _ = run_cli("users", "show", str(user), "--db", db, "--json")
        assert json.loads(out)["profile"]["user"]["username"] == HOSTILE[kind]
    code, out, err = run_cli("users", "list", "--db", db)
    assert code == 0 and "[b][b][b]" in out, err


def test_error_messages_quote_names_safely(demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    kinds = ("markup", "osc-title", "csi-colour", "controls", "bidi-override", "newline-tab")
    for value in (HOSTILE[k] for k in kinds):
        for argv in (
            ["users", "show", "--db", str(demo), "--", value],
            ["log", "--db", str(demo), "--", value, "1", "view"],
            ["log", "--db", str(demo), "--", "1", "1", value],
            ["items", "show", "--db", str(demo), "--", value],
        ):
            code, _out, err = run_cli(*argv)
            assert code == 2, (argv, err)
            assert len(err.strip().splitlines()) == 1, err
            assert_terminal_safe(err, argv[0])
    # A duplicate of a hostile name: the error names it without interpreting it.
    code, _, err = run_cli("users", "add", "--db", demo, "--", HOSTILE["osc-title"])
    assert code == 0
    code, _, err = run_cli("users", "add", "--db", demo, "--", HOSTILE["osc-title"])
    assert code == 2 and "already exists" in err
    assert_terminal_safe(err, "users add")


def _help_brackets() -> list[tuple[list[str], str]]:
    """Every "[...]" written in a command's help texts, with the command's path."""
    import typer

    from smart_suggest.cli import app

    found: list[tuple[list[str], str]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
            return
        for p in cmd.params:
            for fragment in re.findall(r"\[[^\]]*\]", getattr(p, "help", None) or ""):
                found.append((path, fragment))

    walk(typer.main.get_command(app), [])
    return found


def test_help_texts_keep_their_brackets(run_cli) -> None:  # type: ignore[no-untyped-def]
    """Help is not parsed as markup: "[action or rating]" and the like stay visible (under
    rich_markup_mode="rich" they vanished, e.g. from the --db help of every command)."""
    fragments = _help_brackets()
    assert fragments, "no help text with brackets left to check"
    for path, fragment in fragments:
        code, out, _ = run_cli(*path, "--help")
        assert code == 0
        flat = re.sub(r"[\s│]+", " ", out)
        assert re.sub(r"\s+", " ", fragment) in flat, (path, fragment)


def test_seed_rejects_a_negative_seed_cleanly(demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """Used to be "internal error: ValueError" (numpy's default_rng refuses negative seeds)."""
    before = rows(demo)
    code, _, err = run_cli("seed", "--seed", "-1", "--yes", "--db", demo)
    assert code == 2 and "internal error" not in err, err
    assert rows(demo) == before


def test_seed_refuses_absurd_sizes_cleanly(demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """Used to be "internal error: MemoryError" (and a huge --items ran for hours)."""
    before = rows(demo)
    for size in (["--users", "1000000000000"], ["--items", "1000000000"]):
        code, _, err = run_cli(
            "seed", *size, "--interactions", "0", "--events", "0", "--yes", "--db", demo
        )
        assert code == 2 and "internal error" not in err, err
        assert len(err.strip().splitlines()) == 1
    assert rows(demo) == before


ESCAPING = "out\x1b[31mred\x1b]0;title\x07"


@pytest.mark.parametrize("command", ["export", "backup", "seed", "clear"])
def test_success_messages_escape_paths(demo: Path, tmp_path: Path, run_cli, command: str) -> None:  # type: ignore[no-untyped-def]
    """A path with ESC [ / ESC ] in its name is shown escaped by the success messages too."""
    target = tmp_path / ESCAPING
    if command in ("export", "backup"):
        argv = [command, target, "--db", demo]
    else:
        shutil.copy(demo, target)
        argv = [command, "--yes", "--db", target]
    code, out, err = run_cli(*argv)
    assert code == 0, err
    assert_terminal_safe(out + err, command)
    assert "\\x1b[31mred" in out + err  # named, visibly


HUGE = "99999999999999999999999"  # beyond SQLite's 64-bit integers


@pytest.mark.parametrize(
    "argv",
    [
        ["users", "show", HUGE],
        ["items", "show", HUGE],
        ["similar", HUGE],
        ["log", "1", HUGE, "view"],
        ["users", "list", "--limit", HUGE],
        ["history", "1", "--limit", HUGE],
        ["analyze", HUGE],
        ["experiment", "show", HUGE],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_ids_beyond_64_bits_are_bad_input(demo: Path, run_cli, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Used to be "internal error: OverflowError" (binding the int to SQLite)."""
    before = rows(demo)
    code, _, err = run_cli(*argv, "--db", demo)
    assert code == 2 and "internal error" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert rows(demo) == before


SUPERSCRIPT = "\u00b2"  # "²": str.isdigit() says yes, int() says no


@pytest.mark.parametrize(
    "argv",
    [
        ["users", "show", SUPERSCRIPT],
        ["items", "show", SUPERSCRIPT],
        ["experiment", "show", SUPERSCRIPT],
        ["log", "1", SUPERSCRIPT, "view"],
        ["analyze", SUPERSCRIPT],
        ["experiment", "log", "1", "--file", "item.csv"],
        ["experiment", "log", "1", "--file", "user.csv"],
    ],
    ids=lambda a: " ".join(a[:2]) + (f" {a[-1]}" if a[-1].endswith(".csv") else ""),
)
def test_non_decimal_digits_are_bad_input(
    demo: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:  # type: ignore[no-untyped-def]
    """Used to be "internal error: ValueError" (ids were recognised with str.isdigit())."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "item.csv").write_text(f"user,item,type\n1,{SUPERSCRIPT},click\n")
    (tmp_path / "user.csv").write_text(f"user,item,type\n{SUPERSCRIPT},1,click\n")
    before = rows(demo)
    code, _, err = run_cli(*argv, "--db", demo)
    assert code == 2 and "internal error" not in err, err
    assert rows(demo) == before


def test_json_output_escapes_every_control_character(demo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """DEL, C1 controls (U+009B is CSI) and bidi overrides used to reach the terminal raw
    in --json output; escaped as \\uXXXX they still read back byte for byte."""
    name = "del\x7f csi\x9b31m rlo\u202e end"
    code, out, _ = run_cli("users", "add", "--db", demo, "--json", "--", name)
    assert code == 0 and json.loads(out)["username"] == name
    assert_terminal_safe(out, "users add --json")


# -- the TUI ---------------------------------------------------------------------------------------
def _screen_text(app: Any) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def _settle(pilot: Any, rounds: int = 3) -> None:
    for _ in range(rounds):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_tui_shows_hostile_names_literally(hostile_demo) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("textual")
    from tui.app import SmartSuggestApp

    db, _ids = hostile_demo
    from smart_suggest.experiments.lifecycle import create_experiment

    with open_store(db) as s:
        create_experiment(s, HOSTILE["markup"], description=HOSTILE["osc-title"])
        create_experiment(s, HOSTILE["long-markup"], description=HOSTILE["csi-clear"])

    async def scenario() -> dict[str, str]:
        texts: dict[str, str] = {}
        app = SmartSuggestApp(db, poll_seconds=0, debounce=0)
        async with app.run_test(size=(160, 50)) as pilot:
            await _settle(pilot)
            texts["overview"] = _screen_text(app)
            await pilot.press("2")
            await _settle(pilot)
            for kind in ("osc-title", "bidi-override"):
                await pilot.press("slash", *HOSTILE[kind][:5], "enter")
                await _settle(pilot)
                texts[f"recommend:{kind}"] = _screen_text(app)
                await pilot.press("escape")
            await pilot.press("3")
            await _settle(pilot)
            for k in range(2):
                texts[f"experiments:{k}"] = _screen_text(app)
                await pilot.press("down")
                await _settle(pilot)
            assert app.is_running
        return texts

    texts = asyncio.run(scenario())
    for where, text in texts.items():
        assert_terminal_safe(text, where)
    every = "\n".join(texts.values())
    assert "[bold red]alert[/bold red]" in every  # the markup, as text
    assert "\\x1b]0;pwned\\x07title" in every  # the escape, made visible
    assert "\\u202e" in every  # the bidi override, made visible


# -- property-based: every command, arbitrary arguments --------------------------------------------
EXAMPLES = int(os.environ.get("SMART_SUGGEST_HYPOTHESIS_EXAMPLES", "8"))

#: Commands not driven here, and why.
SKIP = {
    ("tui",): "interactive: covered by the Pilot tests",
    ("serve", "ssh"): "a server runs until stopped: covered by tests/test_serve_ssh.py",
    ("serve", "web"): "a server runs until stopped: covered by tests/test_serve_web.py",
}
#: Options whose arbitrary values would ask for unbounded work rather than test input
#: handling (a billion synthetic users is a valid request); bounded values are used instead.
BOUNDED = {"--users", "--items", "--interactions", "--events", "--days", "--simulate-users"}
#: Commands that never change the database when they succeed.
READ_ONLY = {
    ("history",),
    ("profile",),
    ("recommend",),
    ("similar",),
    ("evaluate",),
    ("status",),
    ("analyze",),
    ("power",),
    ("export",),
    ("backup",),
    ("users", "list"),
    ("users", "show"),
    ("items", "list"),
    ("items", "show"),
    ("experiment", "list"),
    ("experiment", "show"),
    ("experiment", "results"),
    ("experiment", "timeline"),
}


@dataclass(frozen=True)
class Param:
    opts: tuple[str, ...]
    argument: bool
    flag: bool
    required: bool
    multiple: bool


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    params: tuple[Param, ...]

    @property
    def id(self) -> str:
        return " ".join(self.path)


def discover() -> list[Command]:
    import typer

    from smart_suggest.cli import app

    found: list[Command] = []

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in sorted(cmd.commands.items()):
                walk(sub, (*path, name))
            return
        params = tuple(
            Param(
                tuple(p.opts),
                p.param_type_name == "argument",
                bool(getattr(p, "is_flag", False)),
                bool(p.required),
                bool(getattr(p, "multiple", False)),
            )
            for p in cmd.params
            if p.name not in ("db", "help")
        )
        found.append(Command(path, params))

    walk(typer.main.get_command(app), ())
    return [c for c in found if c.path not in SKIP]


def _files(root: Path, template: Path) -> dict[str, str]:
    """Files a path argument might name: good ones, bad ones, missing ones."""
    root.mkdir(parents=True, exist_ok=True)
    good = root / "interactions.csv"
    good.write_text("user,item,action\n1,2,view\n3,4,purchase\n")
    (root / "events.csv").write_text("user,item,type,value\n1,1,click,\n2,3,engagement,12.5\n")
    (root / "bad.csv").write_text("user,item,action\n1,2,dance\n\x00\x01,\xff\n")
    (root / "binary.bin").write_bytes(bytes(range(256)) * 10)
    (root / "empty.csv").write_text("")
    (root / "a dir").mkdir(exist_ok=True)
    export = root / "export"
    if not export.exists():
        from smart_suggest.portability import export_all

        with open_store(template) as s:
            export_all(s, export)
    return {
        name: str(root / name)
        for name in (
            "interactions.csv",
            "events.csv",
            "bad.csv",
            "binary.bin",
            "empty.csv",
            "a dir",
            "export",
            "missing.csv",
            "no/such/dir/x.csv",
        )
    }


POOL = [
    "1",
    "2",
    "50",
    "0",
    "-1",
    "999999999",
    str(2**63 - 1),
    HUGE,
    "-" + HUGE,
    SUPERSCRIPT,
    "1.5",
    "0.5",
    "1e-9",
    "nan",
    "inf",
    "-inf",
    "1e309",
    "",
    " ",
    "v1",
    "v2",
    "popular",
    "collaborative",
    "content",
    "view",
    "click",
    "purchase",
    "impression",
    "engagement",
    "ctr",
    "conversion_rate",
    "homepage-recs-v1-vs-v2",
    "user001",
    "books",
    "csv",
    "jsonl",
    "time",
    "random",
    "--json",
    "-",
    "--",
    "A",
    "B",
    *SHORT.values(),
]


def values(paths: dict[str, str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(POOL),
        st.sampled_from(sorted(paths.values())),
        st.text(max_size=20),
        st.integers(-(10**12), 10**12).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
    )


@st.composite
def invocations(draw: Callable[..., Any], command: Command, paths: dict[str, str]) -> list[str]:
    options: list[str] = []
    positionals: list[str] = []
    # Sizes go all together: one given alone leaves the others at their (large) defaults.
    sized = draw(st.booleans())
    for p in command.params:
        if p.argument:
            if p.required or draw(st.booleans()):
                positionals.append(draw(values(paths)))
            continue
        flag = p.opts[0]
        if flag in BOUNDED:
            if sized:
                small = ["0", "1", "2", "7", "20", "-3", "x", "1.5"]
                options += [flag, draw(st.sampled_from(small))]
            continue
        if not draw(st.booleans()) and not p.required:
            continue
        if p.flag:
            options.append(flag)
        else:
            for _ in range(draw(st.integers(1, 2)) if p.multiple else 1):
                options += [flag, draw(values(paths))]
    return [*command.path, *options, *(["--", *positionals] if positionals else [])]


_counter = itertools.count()
COMMANDS = discover()


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_every_command_with_arbitrary_arguments(
    command: Command, template: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # exports, backups and --output land here
    paths = _files(tmp_path / "files", template)
    tried: list[list[str]] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(argv=invocations(command, paths))
    def check(argv: list[str]) -> None:
        n = next(_counter)
        cwd = tmp_path / f"cwd{n}"  # a fresh folder per example: exports never collide
        cwd.mkdir()
        os.chdir(cwd)
        db = tmp_path / f"ex{n}.db"
        shutil.copy(template, db)
        before = rows(db)
        full = [*argv[: len(command.path)], "--db", str(db), *argv[len(command.path) :]]
        tried.append(full)
        code, out, err = run_cli(*full)
        where = f"smart-suggest {' '.join(map(repr, full))}"
        assert "Traceback" not in err and "Traceback" not in out, where
        assert "internal error" not in err, f"{where}: {err}"
        assert code in (0, 1, 2), f"{where}: exit {code}"
        assert_terminal_safe(out, where)
        assert_terminal_safe(err, where)
        if code != 0:
            lines = err.strip().splitlines()
            assert lines and lines[-1].startswith("smart-suggest: error: "), f"{where}: {err}"
            assert rows(db) == before, f"{where}: failed (exit {code}) but changed the database"
        elif command.path in READ_ONLY:
            assert rows(db) == before, f"{where}: a read-only command changed the database"
        db.unlink()
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)

    check()
    assert tried  # hypothesis ran the command (some have only a few distinct inputs)
    log = os.environ.get("SMART_SUGGEST_INPUTS_LOG")  # the stress script counts the inputs
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{command.id}\t{len(tried)}\n")


def test_discovery_sees_the_commands() -> None:
    """Guard: the property test above really covers the CLI (not an empty list)."""
    ids = {c.id for c in COMMANDS}
    assert {"users add", "items add", "log", "history", "profile", "recommend", "seed"} <= ids
