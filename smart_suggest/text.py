"""Make user data safe to show in a terminal: printable, never interpreted.

Names and descriptions are stored byte for byte. Before they reach a terminal, control
characters (which include ESC, the start of every escape sequence) and the invisible
bidirectional overrides are replaced by visible ``\\xNN`` / ``\\uNNNN`` escapes, so a name
cannot move the cursor, retitle the window or reorder the text around it. Rich markup is
not handled here: callers wrap the result in ``rich.text.Text`` (never parsed as markup).
"""

from __future__ import annotations

import unicodedata

# Bidi embedding/override/isolate controls: invisible, and they reorder following text.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Joiners are format characters too, but emoji sequences need them to render as one glyph.
_KEEP = frozenset("\u200c\u200d")


def _escape_char(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object, *, limit: int | None = None) -> str:
    """``value`` as text with control characters made visible; optionally shortened."""
    text = str(value)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in _BIDI_CONTROLS or (not ch.isprintable() and ch not in _KEEP):
            category = unicodedata.category(ch)
            # Keep ordinary spacing characters that are not controls (e.g. NBSP is printable).
            out.append(_escape_char(ch) if category[0] in "CZ" else ch)
        else:
            out.append(ch)
    return "".join(out)


def is_decimal(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '²' and other digits int() refuses."""
    return text.isascii() and text.isdigit()
