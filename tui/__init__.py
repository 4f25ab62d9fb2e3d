"""The Textual app of smart-suggest (``smart-suggest tui``): a face over the core."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui.app import SmartSuggestApp

__all__ = ["SmartSuggestApp"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing the package (e.g. for tui.data) does not pull in Textual.
    if name == "SmartSuggestApp":
        from tui.app import SmartSuggestApp

        return SmartSuggestApp
    raise AttributeError(name)
