"""Shared pieces of the CLI: options, opening the database, output, confirmation.

Command modules import the core *inside* their functions: ``smart-suggest --help`` must
not pay for numpy, scipy or textual (sqlite-utils alone pulls in numpy).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import math
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from smart_suggest.store import Store

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        envvar="SMART_SUGGEST_DB",
        help="Database file (default: smart-suggest.db in your data directory).",
        show_default=False,
        dir_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of tables.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@functools.cache
def _terminal_safe_console_class() -> type[Console]:
    """``_TerminalSafeConsole``, defined on first use (subclassing rich's Console imports
    rich, which a command that prints no table never needs)."""
    from rich.console import Console
    from rich.segment import Segment

    class _TerminalSafeConsole(Console):
        """A rich console that applies ``smart_suggest.termsafe`` to every text it writes to
        a terminal: a string that reached ``print`` without ``safe()`` still cannot carry an
        escape sequence. Rich's own styling and cursor moves are separate (style, control)
        segments and pass as they are; line breaks in the text stay."""

        def _render_buffer(self, buffer: Iterable[Segment]) -> str:
            if self.is_terminal:
                from smart_suggest.termsafe import escape_lines

                buffer = [
                    seg if seg.control else Segment(escape_lines(seg.text), seg.style)
                    for seg in buffer
                ]
            return super()._render_buffer(buffer)

    return _TerminalSafeConsole


def __getattr__(name: str) -> Any:
    if name == "_TerminalSafeConsole":
        return _terminal_safe_console_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class LazyConsole:
    """The terminal-safe console, created on first use: importing rich costs more than
    logging an event does, so commands that print no table never pay for it."""

    def __init__(self, **settings: Any) -> None:
        object.__setattr__(self, "_settings", settings)
        object.__setattr__(self, "_console", None)

    def get(self) -> Console:
        if self._console is None:
            cls = _terminal_safe_console_class()
            object.__setattr__(self, "_console", cls(**self._settings))
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.get(), name, value)


# Markup and emoji codes are off: every string we print may contain user data.
console = LazyConsole(highlight=False, markup=False, emoji=False)
err_console = LazyConsole(stderr=True, highlight=False, markup=False, emoji=False)


class BackgroundImport:
    """Imports ``module`` in a thread; ``join()`` before importing it here.

    For commands that read the database before they compute: SQLite runs a statement
    without holding the GIL, so the imports (numpy and the statistics: ~0.1 s of CPU) and
    the queries overlap on a second core. Meanwhile the thread switch interval is short:
    every row a query returns takes the GIL back, and at the default 5 ms the queries
    waited longer for it than the imports saved. The caller imports what it needs
    meanwhile *before* starting, so the two never wait on each other's module locks. An
    import error is left for the caller's own import to raise with its usual message.
    """

    def __init__(self, module: str) -> None:
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(0.0002)
        self._thread = threading.Thread(target=self._run, args=(module,), name="import")
        self._thread.start()

    @staticmethod
    def _run(module: str) -> None:
        with contextlib.suppress(BaseException):
            importlib.import_module(module)

    def join(self) -> None:
        self._thread.join()
        sys.setswitchinterval(self._interval)


@contextmanager
def open_db(db: Path | None, *, read_only: bool = False) -> Iterator[Store]:
    from smart_suggest.store import open_store

    store = open_store(db, read_only=read_only)
    try:
        yield store
    except sqlite3.IntegrityError:
        raise  # a bug in the command, not a fault of the file: main() reports it
    except sqlite3.Error as exc:
        # The file or its disk failed in mid-command (full disk, I/O error, made read-only):
        # name the file, as open_store does, rather than a bare "database error".
        from smart_suggest.errors import DatabaseError, SmartSuggestError
        from smart_suggest.store import describe_sqlite_error

        cause = describe_sqlite_error(exc)
        if store.read_only is not None and cause == "the database is read-only":
            # A write that did not go through Store.write: the same refusal (exit 2).
            raise DatabaseError(
                f"{store.path}: the database is open read-only ({store.read_only}); "
                "nothing was written"
            ) from None
        # "database is locked" is exit 1 here as at open (store.open_error): the
        # environment, not the input, and worth a retry.
        error = DatabaseError if cause.startswith("not a valid SQLite") else SmartSuggestError
        raise error(f"{store.path}: {cause}") from None
    finally:
        store.close()


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: a non-finite float becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def emit_json(data: Any) -> None:
    from smart_suggest.termsafe import json_dumps

    text = json.dumps(data, default=_json_default)
    # ASCII only: \uXXXX escapes keep DEL, C1 controls and bidi overrides in user data from
    # reaching the terminal raw; every JSON parser reads them back byte for byte.
    text = json_dumps(_finite(json.loads(text)), indent=2, ensure_ascii=True, allow_nan=False)
    sys.stdout.write(text + "\n")


def say(*parts: str) -> None:
    """One plain line on stdout through the terminal-safe writer (no rich: a one-line
    answer needs no layout). Pass user data through ``printable``, as ``safe`` does."""
    from smart_suggest import termsafe

    termsafe.stdout().record("".join(parts))


def safe(value: object, *, limit: int | None = None, style: str = "") -> Text:
    """User data as a rich ``Text``: never parsed as markup, control characters visible."""
    from rich.text import Text

    from smart_suggest.text import printable

    return Text(printable(value, limit=limit), style=style)


def make_table(title: str | None, columns: Sequence[str | tuple[str, str]]) -> Table:
    """A table; a column given as (name, "right") is right-aligned."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold", expand=False)
    for col in columns:
        if isinstance(col, tuple):
            table.add_column(col[0], justify=col[1])  # type: ignore[arg-type]
        else:
            table.add_column(col, overflow="fold")
    return table


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    from smart_suggest.clock import iso

    return iso(ts).replace("T", " ").rstrip("Z")


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive step; refuse without a terminal unless ``--yes``."""
    from smart_suggest.errors import InputError

    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError(f"{question.rstrip('?')}: refusing without a terminal; pass --yes")
    from smart_suggest.termsafe import escape

    # The question quotes paths and names: typer writes it raw, so escape it first.
    if not typer.confirm(escape(question), default=False, err=True):
        raise typer.Abort()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """A rich progress bar on stderr fed by the core's ``progress(stage, done, total)``.

    The bar appears with the first report (a quick command prints nothing) and is erased
    when the command fails, so an error stays the one line on stderr. It is drawn only
    when stderr is a terminal: in a log file or a pipe it would be a heap of redrawn
    lines. Yields the callback to pass to the core, or None when disabled (``--json``,
    no terminal).
    """
    if not enabled or not _stderr_is_terminal():
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("{task.description:<13}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console.get(),
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        if not tasks:
            bar.start()
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=max(total, 1))
        bar.update(tasks[stage], completed=done, total=max(total, done, 1))

    try:
        yield update
    except BaseException:
        if tasks:
            bar.live.transient = True  # erase it: the error line stays alone on stderr
            # Off a terminal, rich would print the bar's last frame (or a blank line)
            # as it stops: silence the console for that moment.
            quiet = err_console.quiet
            err_console.quiet = quiet or not err_console.is_terminal
            try:
                bar.stop()
            finally:
                err_console.quiet = quiet
        raise
    if tasks:
        bar.stop()


def info(message: str) -> None:
    """A status line for humans, on stderr so stdout stays clean for data.

    Messages quote names and paths given by the user: control characters are made visible
    (on a terminal or not: a status line is for people, and must stay one line).
    """
    from smart_suggest.termsafe import escape

    err_console.print(escape(message))


def save_snapshot_for_next_start(store: Any, progress: Any) -> None:
    """After a seed or an import: the recommender snapshot of what it wrote, saved for the
    next start (``recommend/persist.py``). A database too small to be saved returns before
    numpy and scipy are imported (0.2 s, more than a small import takes)."""
    from smart_suggest.tracking import SNAPSHOT_ROWS, interaction_id_max

    if interaction_id_max(store) < SNAPSHOT_ROWS:
        return
    from smart_suggest.recommend import persist

    persist.prepare_next_start(store, progress)
