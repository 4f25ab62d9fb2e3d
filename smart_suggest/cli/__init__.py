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
    from smart_suggest.termsafe import error_line

    # Messages quote user data (names, paths): escape sequences in them must not reach
    # the terminal, and a newline in them must not make the error two lines.
    try:
        sys.stderr.write(error_line(message))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr is gone: the exit code still says it
    sys.exit(code)


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
    except Exception as exc:  # a bug: one line by default, the traceback on request
        if os.environ.get("SMART_SUGGEST_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (set SMART_SUGGEST_DEBUG=1)", 1)
    if rv == INTERRUPTED:
        # typer turns ctrl+c inside a command into a plain exit 130 (no command returns
        # it): say so, as for a ctrl+c anywhere else.
        _fail("interrupted", INTERRUPTED)
    sys.exit(rv if isinstance(rv, int) else 0)
