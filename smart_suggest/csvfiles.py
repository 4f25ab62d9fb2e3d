"""Opening the CSV files users name (imports, bulk event logs): one clear error each.

Every line is read with a bound (``MAX_LINE``): a file without line breaks, such as
``/dev/zero`` or a binary file given by mistake, fails on its first long line with one
message naming the file and the line, instead of reading until memory runs out.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import IO, TextIO

from smart_suggest.errors import InputError

#: Longest line accepted, in characters (1 MiB): far beyond any row of events, ratings or
#: catalogue entries, small enough to fail fast on a file that is not line-based text.
MAX_LINE = 1 << 20


class LineTooLong(InputError):
    pass


class CsvFile:
    """A text file for ``csv.reader`` whose lines are at most ``MAX_LINE`` characters.

    Iterating yields lines (with their newline, as ``csv`` wants them); ``readline`` is
    bounded the same way. ``line`` is the number of lines read so far.
    """

    def __init__(self, fh: IO[str], name: str, *, owned: bool = True) -> None:
        self._fh = fh
        self.name = name
        self.line = 0
        self._owned = owned

    def readline(self) -> str:
        text = self._fh.readline(MAX_LINE + 1)
        if len(text) > MAX_LINE:
            raise self._too_long()
        if text:
            self.line += 1
        return text

    def __iter__(self) -> Iterator[str]:
        # readline inlined: this runs once per row of million-row files.
        cap = MAX_LINE
        for text in iter(partial(self._fh.readline, cap + 1), ""):
            if len(text) > cap:
                raise self._too_long()
            self.line += 1
            yield text

    def _too_long(self) -> LineTooLong:
        return LineTooLong(
            f"{self.name}:{self.line + 1}: line longer than {MAX_LINE:,} characters "
            "(not a line-based text file?); nothing was written"
        )

    def seek(self, offset: int) -> None:
        self._fh.seek(offset)
        self.line = 0

    def close(self) -> None:
        if self._owned:
            self._fh.close()

    def __enter__(self) -> CsvFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_csv(path: Path) -> CsvFile:
    """``path`` for ``csv.reader``: UTF-8 (a BOM is skipped), newlines left to csv."""
    try:
        fh = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 (CsvFile closes it)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a CSV file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    return CsvFile(fh, str(path))


def wrap_stream(fh: IO[str], name: str) -> CsvFile:
    """An open stream (standard input) with the same line bound; the caller closes it."""
    return CsvFile(fh, name, owned=False)


def stdin_text() -> TextIO:
    """Standard input as strict UTF-8 (``sys.stdin`` would turn bytes that are not UTF-8
    into surrogates, which fail later, far from the line that held them)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # already text (a test harness, an embedding program)
        return sys.stdin
    return io.TextIOWrapper(buffer, encoding="utf-8-sig", errors="strict", newline="")
