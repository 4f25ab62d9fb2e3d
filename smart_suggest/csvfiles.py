"""Opening the CSV files users name (imports, bulk event logs): one clear error each."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TextIO

from smart_suggest.errors import InputError


def open_csv(path: Path) -> TextIO:
    """``path`` for ``csv.reader``: UTF-8 (a BOM is skipped), newlines left to csv."""
    try:
        return open(path, encoding="utf-8-sig", newline="")  # the caller closes it
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a CSV file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def stdin_text() -> TextIO:
    """Standard input as strict UTF-8 (``sys.stdin`` would turn bytes that are not UTF-8
    into surrogates, which fail later, far from the line that held them)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # already text (a test harness, an embedding program)
        return sys.stdin
    return io.TextIOWrapper(buffer, encoding="utf-8-sig", errors="strict", newline="")
