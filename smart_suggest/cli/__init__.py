"""The ``smart-suggest`` command line: typer commands over the core.

Each command module registers its commands on ``app``. ``main`` turns every expected
failure into one line on stderr and an exit code: 2 for bad input (unknown user, item or
experiment, invalid values, wrong database file), 1 for other failures.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Annotated

import typer
from typer.exceptions import Abort, TyperException

from smart_suggest import __version__

app = typer.Typer(
    name="smart-suggest",
    help="Recommend items to users and run honest A/B experiments between strategies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    # Help uses up to 100 columns where the terminal has them (click's default stops at 80,
    # which squeezes the option descriptions into a narrow column).
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


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


def _register() -> None:
    from smart_suggest.cli import data, tracking

    tracking.register(app)
    data.register(app)
    for name in ("recommend", "experiments", "analyze", "portability", "tui"):
        try:
            module = __import__(f"smart_suggest.cli.{name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"smart_suggest.cli.{name}":
                raise
            continue
        module.register(app)


_register()


def _sequential_value(argv: list[str] | None) -> list[str] | None:
    """``analyze --sequential`` alone means ``--sequential msprt`` (its meaning before
    ``group`` existed): click options cannot take an optional value, so it is filled in."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "analyze" not in args or "--sequential" not in args:
        return argv
    out: list[str] = []
    for i, tok in enumerate(args):
        out.append(tok)
        if tok == "--sequential" and (i + 1 == len(args) or args[i + 1] not in ("msprt", "group")):
            out.append("msprt")
    return out


def _fail(message: str, code: int) -> None:
    from smart_suggest.text import printable

    first = message.strip().splitlines()[0] if message.strip() else "failed"
    # Messages quote user data (names, paths): escape sequences in them must not reach
    # the terminal.
    sys.stderr.write(f"smart-suggest: error: {printable(first)}\n")
    sys.stderr.flush()
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``smart-suggest`` script and ``python -m smart_suggest``."""
    from smart_suggest.errors import SmartSuggestError

    try:
        rv = app(args=_sequential_value(argv), prog_name="smart-suggest", standalone_mode=False)
    except TyperException as exc:  # usage errors (exit 2) and other click-style errors
        message = exc.format_message()
        if exc.exit_code == 2 and "--help" not in message:
            message += " (see --help)"
        _fail(message, exc.exit_code)
    except Abort:
        _fail("aborted, nothing changed", 1)
    except SmartSuggestError as exc:
        _fail(str(exc), exc.exit_code)
    except OverflowError:  # an id or count beyond SQLite's 64-bit integers
        _fail(f"a number is too large (the largest this database can hold is {2**63 - 1})", 2)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
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
    except Exception as exc:  # a bug: one line by default, the traceback on request
        if os.environ.get("SMART_SUGGEST_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (set SMART_SUGGEST_DEBUG=1)", 1)
    sys.exit(rv if isinstance(rv, int) else 0)
