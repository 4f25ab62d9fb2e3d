"""Turning values into display text. User data always goes through ``lit``.

``lit`` makes control characters visible (``smart_suggest.text.printable``) and wraps the
result in a ``rich.text.Text``, which Textual never parses as markup: a username such as
``[bold red]x`` or one holding an escape sequence is shown exactly as typed.
"""

from __future__ import annotations

import math

from rich.text import Text

from smart_suggest.text import printable

#: Colour (and a glyph, so the meaning survives NO_COLOR) per verdict of the analysis.
VERDICT_STYLES: dict[str, tuple[str, str, str]] = {
    "worth_shipping": ("bold green", "✔", "Worth shipping"),
    "stat_sig_but_small_effect": ("bold yellow", "≈", "Significant but small"),
    "promising_but_underpowered": ("bold cyan", "…", "Promising, underpowered"),
    "no_effect": ("bold", "∅", "No effect"),
    "invalid": ("bold red", "✖", "Invalid"),
}


def lit(value: object, limit: int | None = None, style: str = "") -> Text:
    """User data as literal text (never markup), control characters made visible."""
    return Text(printable(value, limit=limit), style=style, no_wrap=True, overflow="ellipsis")


def num(value: float | int | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if digits == 0:
        return f"{round(value):,}"
    return f"{value:,.{digits}f}"


def pct(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value * 100:.{digits}f}%"


def signed_pct(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value * 100:+.{digits}f}%"


def pvalue(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if value < 0.0001:
        return "< 0.0001"
    return f"= {value:.4f}"


def size(n_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


def verdict_text(verdict: str) -> Text:
    style, glyph, label = VERDICT_STYLES.get(verdict, ("bold", "?", verdict or "no verdict"))
    return Text(f" {glyph} {label.upper()} ", style=f"{style} reverse")


def right(text: str, style: str = "") -> Text:
    return Text(text, style=style, justify="right", no_wrap=True)


def para(value: object, style: str = "") -> Text:
    """Text that wraps (for sentences); user data inside is still literal."""
    return Text(printable(value), style=style)
