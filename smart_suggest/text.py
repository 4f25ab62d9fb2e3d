"""Small text helpers shared by the core and its faces.

``printable`` is the terminal-safe escaping of ``smart_suggest.termsafe`` (the one place
that decides which characters may reach a terminal raw), under the name the TUI and the
tables use: control characters and the invisible bidirectional controls become visible
``\\xNN`` / ``\\uNNNN`` escapes, so a name cannot move the cursor, retitle the window or
reorder the text around it. Rich markup is not handled here: callers wrap the result in
``rich.text.Text`` (never parsed as markup).
"""

from __future__ import annotations

from smart_suggest.termsafe import escape as printable

__all__ = ["is_decimal", "printable"]


def is_decimal(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '²' and other digits int() refuses."""
    return text.isascii() and text.isdigit()
