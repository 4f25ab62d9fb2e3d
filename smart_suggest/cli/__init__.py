"""The ``smart-suggest`` command line: typer commands over the core.

Each command module registers its commands on ``app``. ``main`` turns every expected
failure into one line on stderr and an exit code: 2 for bad input (unknown user, item or
experiment, invalid values, wrong database file), 1 for other failures.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import sys
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any

import typer
import typer._click as click
from typer.core import TyperGroup
from typer.exceptions import Abort, TyperException
from typer.models import CommandInfo

from smart_suggest import __version__

#: Every top-level command: (module in smart_suggest.cli, the first paragraph of its help),
#: in the order ``--help`` lists them. The module is imported only when its command runs:
#: building every command's parameters costs more than most commands do (a test keeps the
#: summaries equal to the commands' own help).
COMMANDS: dict[str, tuple[str, str]] = {
    "log": ("tracking", "Log an interaction: USER did ACTION (view, click, purchase) on ITEM."),
    "history": ("tracking", "A user's interactions, newest first."),
    "profile": ("tracking", "A user's action breakdown, preferred categories and top items."),
    "seed": (
        "data",
        "Reset the database and load the demo data (or synthetic data with --users ...).",
    ),
    "clear": ("data", "Delete all data (users, items, interactions, experiments, events)."),
    "status": ("data", "Show the database path, size and row counts."),
    "recommend": (
        "recommend",
        "Recommend items to a user: v1 (collaborative) and v2 (content) side by side.",
    ),
    "similar": (
        "recommend",
        "List the items most like ITEM (cosine of description tf-idf + category).",
    ),
    "evaluate": (
        "recommend",
        "Offline evaluation: hold out the end of each history, score each strategy's top k.",
    ),
    "tune": (
        "recommend",
        "Choose hyper-parameters by NDCG@k on a validation split and store them.",
    ),
    "import": (
        "recommend",
        "Import interactions (and an item catalogue), exactly as the files say, in one "
        "transaction.",
    ),
    "analyze": (
        "analyze",
        "Analyse an experiment: tests per metric, SRM, Bayes, power, novelty and a verdict.",
    ),
    "power": (
        "analyze",
        "Sample size per variant to detect a change in a rate (and the expected duration).",
    ),
    "export": (
        "portability",
        "Export every table (JSON Lines or CSV) with a manifest of counts and checksums.",
    ),
    "import-all": (
        "portability",
        "Load an export into an empty database (all or nothing), keeping every id.",
    ),
    "backup": ("portability", "Online backup of the database (safe while other processes write)."),
    "recover": (
        "portability",
        "Copy every row a damaged database still holds into a new database file.",
    ),
    "tui": ("tui", "Open the terminal app: overview, recommendations and experiments screens."),
    "serve": ("serve", "Serve the app to visitors over SSH or in a browser (a live demo)."),
    "users": ("tracking", "Add, list and show users."),
    "items": ("tracking", "Add, list and show items of the catalogue."),
    "experiment": (
        "experiments",
        "A/B experiments between strategies: create, serve, log, results over time.",
    ),
}

_SETTINGS: dict[str, Any] = {
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
}
_BUILT: dict[str, click.Command] = {}


def load_command(name: str) -> click.Command | None:
    """The click command ``name``, built from its module on first use (None if unknown)."""
    if name in _BUILT:
        return _BUILT[name]
    entry = COMMANDS.get(name)
    if entry is None:
        return None
    module = importlib.import_module(f"smart_suggest.cli.{entry[0]}")
    sub = typer.Typer(**_SETTINGS)
    module.register(sub)
    # Build only the command asked for, not its module's neighbours; a group's own
    # commands are built when looked up too (`experiment log` builds one of ten).
    sub.registered_commands = [c for c in sub.registered_commands if c.name == name]
    sub.registered_groups = [g for g in sub.registered_groups if g.name == name]
    inner = [g.typer_instance for g in sub.registered_groups if g.typer_instance is not None]
    saved = [(t, t.registered_commands) for t in inner]
    for t in inner:
        t.registered_commands = []
    try:
        command = typer.main.get_group(sub).commands[name]
    finally:
        for t, commands in saved:
            t.registered_commands = commands
    if saved and isinstance(command, TyperGroup):
        command.commands = _LazyCommands(
            {_command_name(info): info for info in saved[0][1]}, cache={}
        )
    _BUILT[name] = command
    return command


def _command_name(info: CommandInfo) -> str:
    assert info.callback is not None
    return info.name or typer.main.get_command_name(info.callback.__name__)


def _build_sub(info: CommandInfo) -> click.Command:
    return typer.main.get_command_from_info(
        info, pretty_exceptions_short=True, rich_markup_mode=None
    )


class _LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands, each built when it is first looked up.

    Without ``infos`` these are the root's (``COMMANDS``); with them, a sub-group's.
    """

    def __init__(
        self,
        infos: dict[str, CommandInfo] | None = None,
        cache: dict[str, click.Command] | None = None,
    ) -> None:
        self._infos = infos
        self._cache = _BUILT if cache is None else cache

    def __getitem__(self, name: str) -> click.Command:
        if self._infos is None:
            command = load_command(name)
        elif name in self._cache:
            command = self._cache[name]
        elif name in self._infos:
            command = self._cache[name] = _build_sub(self._infos[name])
        else:
            command = None
        if command is None:
            raise KeyError(name)
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._cache[name] = command

    def __delitem__(self, name: str) -> None:
        raise TypeError("commands cannot be removed")

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS if self._infos is None else self._infos)

    def __len__(self) -> int:
        return len(COMMANDS if self._infos is None else self._infos)


class LazyGroup(TyperGroup):
    """The root group: knows every command's name and summary, builds only the one run."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from typer._click.utils import make_default_short_help

        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, make_default_short_help(summary, limit))
            for name, (_module, summary) in COMMANDS.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="smart-suggest",
    help="Recommend items to users and run honest A/B experiments between strategies.",
    cls=LazyGroup,
    no_args_is_help=True,
    # Help uses up to 100 columns where the terminal has them (click's default stops at 80,
    # which squeezes the option descriptions into a narrow column).
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    **_SETTINGS,
)


#: Exit code after ctrl+c (128 + SIGINT, as shells report it).
INTERRUPTED = 130


def _version(value: bool) -> None:
    if value:
        typer.echo(f"smart-suggest {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Recommend items to users and run honest A/B experiments between strategies.

    Every command takes --db PATH (or SMART_SUGGEST_DB); --json prints data for scripts.
    """


def _sequential_value(args: list[str]) -> list[str]:
    """``analyze --sequential`` alone means ``--sequential msprt`` (its meaning before
    ``group`` existed): click options cannot take an optional value, so it is filled in."""
    if "analyze" not in args or "--sequential" not in args:
        return args
    out: list[str] = []
    for i, tok in enumerate(args):
        out.append(tok)
        if tok == "--sequential" and (i + 1 == len(args) or args[i + 1] not in ("msprt", "group")):
            out.append("msprt")
    return out


def _fail(message: str, code: int) -> None:
    from smart_suggest.termsafe import error_line

    # Messages quote user data (names, paths): escape sequences in them must not reach
    # the terminal, and a newline in them must not make the error two lines.
    try:
        sys.stderr.write(error_line(message))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr is gone: the exit code still says it
    sys.exit(code)


def _internal(exc: Exception) -> None:
    """A bug: one line by default, the traceback on request."""
    if os.environ.get("SMART_SUGGEST_DEBUG"):
        raise exc
    _fail(f"internal error: {type(exc).__name__}: {exc} (set SMART_SUGGEST_DEBUG=1)", 1)


def _bad_bytes(exc: UnicodeError) -> str:
    data = getattr(exc, "object", None)
    start = getattr(exc, "start", None)
    if isinstance(data, str) and isinstance(start, int) and start < len(data):
        code = ord(data[start])
        if 0xDC80 <= code <= 0xDCFF:  # a surrogate-escaped byte
            return f"byte 0x{code - 0xDC00:02x}"
    if isinstance(data, bytes) and isinstance(start, int) and start < len(data):
        return f"byte 0x{data[start]:02x}"
    return getattr(exc, "reason", None) or type(exc).__name__


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``smart-suggest`` script and ``python -m smart_suggest``."""
    from smart_suggest.errors import SmartSuggestError
    from smart_suggest.outfile import Terminated

    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        args = ["--help"]  # bare `smart-suggest`: the help, and success
    try:
        rv = app(args=_sequential_value(args), prog_name="smart-suggest", standalone_mode=False)
    except TyperException as exc:  # usage errors (exit 2) and other click-style errors
        message = exc.format_message()
        if exc.exit_code == 2 and "--help" not in message:
            message += " (see --help)"
        _fail(message, exc.exit_code)
    except Abort:
        _fail("aborted, nothing changed", 1)
    except SmartSuggestError as exc:
        _fail(str(exc), exc.exit_code)
    except UnicodeError as exc:
        # Bytes that are not UTF-8 in an argument reach us as surrogates (surrogateescape)
        # and fail wherever the text must be encoded: say which bytes, not "internal error".
        _fail(f"input is not valid UTF-8 text ({_bad_bytes(exc)})", 2)
    except RecursionError:  # e.g. JSON nested thousands of levels deep
        _fail("input is nested too deeply to read", 2)
    except OverflowError:  # an id or count beyond SQLite's 64-bit integers
        _fail(f"a number is too large (the largest this database can hold is {2**63 - 1})", 2)
    except KeyboardInterrupt:
        _fail("interrupted", INTERRUPTED)
    except Terminated:  # SIGTERM while a file was written: its temporary file is gone
        _fail("terminated", 143)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except sqlite3.Error as exc:
        from smart_suggest.store import describe_sqlite_error

        _fail(f"database error: {describe_sqlite_error(exc)}", 1)
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), 1)
    except ValueError as exc:
        if "embedded null" not in str(exc):
            _internal(exc)
        # A NUL in a file name (only possible in-process: argv cannot carry one) reaches
        # the OS call that opens it; typer does not check paths for it.
        _fail("a file name contains a NUL character", 2)
    except Exception as exc:  # a bug: one line by default, the traceback on request
        _internal(exc)
    if rv == INTERRUPTED:
        # typer turns ctrl+c inside a command into a plain exit 130 (no command returns
        # it): say so, as for a ctrl+c anywhere else.
        _fail("interrupted", INTERRUPTED)
    sys.exit(rv if isinstance(rv, int) else 0)
