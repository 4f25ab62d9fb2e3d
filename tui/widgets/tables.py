"""A DataTable that updates in place, keeping the cursor on the same row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from textual import events
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowKey

Row = tuple[str, Sequence[Any]]


class SyncTable(DataTable[Any]):
    """``sync(rows)`` replaces the content without flicker and without losing the selection.

    When the row keys are unchanged, only the cells that differ are updated; otherwise the
    rows are rebuilt in one go (no repaint in between) and the cursor returns to the row
    with the same key, or to the same position when that row is gone.
    """

    DEFAULT_CSS = """
    SyncTable { height: auto; max-height: 100%; overflow-x: hidden; scrollbar-size-vertical: 1; }
    """

    def __init__(self, columns: Sequence[str | tuple[Any, str]], **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", False)
        super().__init__(**kwargs)
        self._columns_spec = list(columns)
        #: Called when the width changes, to re-fit the rows (cells are cut to the width).
        self.redraw: Callable[[], None] | None = None
        self._width = 0
        self._fixed: dict[str, int] = {}

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for spec in self._columns_spec:
            label, key = (spec, spec) if isinstance(spec, str) else spec
            self.add_column(label, key=key, width=self._fixed.get(key))

    def available_width(self, default: int = 38) -> int:
        """Cells the rows can use: the panel's width, even while a loading indicator
        hides the table (its own size is stale then)."""
        parent = self.parent
        width = getattr(parent, "content_size", self.size).width if parent else 0
        return width or self.size.width or default

    def on_resize(self, event: events.Resize) -> None:
        width = self.available_width()
        if width != self._width:
            self._width = width
            if self.redraw is not None and self.row_count:
                self.redraw()

    def _refit(self) -> None:
        width = self.available_width()
        if self.size.width and width != self._width:
            self._width = width
            if self.redraw is not None:
                self.redraw()

    @property
    def current_key(self) -> str | None:
        """Key of the row under the cursor, or None for an empty table."""
        if not self.row_count:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except CellDoesNotExist:
            return None
        return row_key.value

    def row_keys(self) -> list[str]:
        return [str(key.value) for key in self.rows]

    def sync(
        self,
        rows: Sequence[Row],
        widths: dict[str, int] | None = None,
        columns: Sequence[str | tuple[Any, str]] | None = None,
    ) -> None:
        """Show ``rows`` ((key, cells) pairs). ``widths`` fixes column widths in cells;
        ``columns`` replaces the columns (e.g. one per variant, or fewer when narrow).

        Fixed widths do not depend on measuring the cells, which Textual does with the
        app console's width and which can be wrong while the app is still starting up.
        """
        if not self.size.width and self.redraw is not None:
            # Not laid out yet: the widths were guessed; fit again once they are known.
            self.call_after_refresh(self._refit)
        keys = [key for key, _ in rows]
        new_columns = columns is not None and list(columns) != self._columns_spec
        if new_columns:
            self._columns_spec = list(columns or [])
        new_widths = new_columns or (widths is not None and widths != self._fixed)
        if new_widths:
            self._fixed = dict(widths or {})
        if keys == self.row_keys() and not new_widths:
            column_keys = list(self.columns)
            for key, cells in rows:
                for column_key, cell in zip(column_keys, cells, strict=False):
                    if self.get_cell(key, column_key) != cell:
                        self.update_cell(key, column_key, cell, update_width=True)
            return
        selected = self.current_key
        position = self.cursor_row
        self.clear(columns=new_widths)
        if new_widths:
            self._add_columns()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        if keys:
            target = keys.index(selected) if selected in keys else min(position, len(keys) - 1)
            self.move_cursor(row=target, animate=False)

    def select_key(self, key: str) -> bool:
        """Move the cursor to the row with ``key``; False when there is no such row."""
        try:
            index = self.get_row_index(RowKey(key))
        except Exception:
            return False
        self.move_cursor(row=index, animate=False)
        return True
