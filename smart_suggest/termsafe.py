"""The one terminal-safe writer: user data never reaches a terminal as control sequences.

Names, categories and descriptions are stored byte for byte, and a name can hold ESC ``]52``
(a clipboard write), ESC ``[2J`` (clear the screen), BEL, CR, the one-character C1 CSI
(U+009B) or a right-to-left override. The rule:

* **On a terminal** (the stream is a TTY), every C0 and C1 control character, DEL and the
  invisible bidirectional controls (U+202A-202E, U+2066-2069, U+200E/U+200F, U+061C) are
  shown as visible escapes (``\\x1b``, ``\\u202e``) in every format: tables, CSV, JSON Lines
  and plain lines. Only the line breaks the writer itself puts between records stay.
* **On a pipe or a file**, the data is written exactly: CSV properly quoted (a field may
  hold a newline), JSON with the same characters as ``\\u`` escapes (exactly the same data
  for any JSON parser, and no raw control bytes for whoever ``cat``s it later).

``escape`` makes one string safe; ``Writer`` applies the rule to a stream; ``json_dumps``
writes JSON that never carries a raw control or bidi character.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from typing import IO, Any

#: Bidi embeddings, overrides and isolates, the marks LRM/RLM and ALM: invisible, and they
#: reorder the text that follows them.
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
# Zero-width (non-)joiners are format characters too, but emoji sequences need them.
_KEEP = frozenset("\u200c\u200d")
#: Characters JSON output always escapes (``json`` itself escapes only C0, quote, backslash).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u2028\u2029]")


def _escape_char(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def unsafe(ch: str) -> bool:
    """True for a character that must not reach a terminal raw."""
    if ch in BIDI_CONTROLS:
        return True
    if ch.isprintable() or ch in _KEEP:
        return False
    # Non-printable: controls (Cc), format (Cf), unassigned/private/surrogates (C*), and
    # line/paragraph separators (Z*). Ordinary spaces such as NBSP are printable.
    return unicodedata.category(ch)[0] in "CZ"


def escape(value: object, *, limit: int | None = None) -> str:
    """``value`` as text with every unsafe character made visible; optionally shortened."""
    text = str(value)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    if text.isprintable() and not BIDI_CONTROLS.intersection(text):
        return text
    return "".join(_escape_char(ch) if unsafe(ch) else ch for ch in text)


def escape_lines(text: str) -> str:
    """``escape`` for text made of lines: the line breaks stay, everything else is escaped."""
    return "\n".join(escape(line) for line in text.split("\n"))


def json_dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` whose output holds no raw control, DEL, C1 or bidi character."""
    text = json.dumps(value, **kwargs)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Writer:
    """Writes records (lines) to ``stream`` by the rule above.

    ``record(text)`` writes one record and a newline: on a terminal every unsafe character
    of ``text`` (a newline inside a CSV field included) is escaped; elsewhere it is written
    as given. ``text(...)`` writes free text whose own line breaks are kept.
    """

    def __init__(self, stream: IO[str], *, terminal: bool | None = None) -> None:
        self.stream = stream
        self.terminal = is_terminal(stream) if terminal is None else terminal

    def record(self, text: str) -> None:
        self.stream.write((escape(text) if self.terminal else text) + "\n")

    def records(self, texts: list[str]) -> None:
        if self.terminal:
            self.stream.write("".join(escape(t) + "\n" for t in texts))
        else:
            self.stream.write("".join(t + "\n" for t in texts))

    def text(self, text: str) -> None:
        self.stream.write(escape_lines(text) if self.terminal else text)

    def flush(self) -> None:
        self.stream.flush()


def stdout() -> Writer:
    return Writer(sys.stdout)


def error_line(message: str, *, prefix: str = "smart-suggest: error: ") -> str:
    """One line for stderr: the first line of ``message``, always escaped (a message quotes
    user data, and a raw newline in it would make it two lines even in a log file)."""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    return f"{prefix}{escape(first)}\n"
