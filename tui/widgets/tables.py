"""A DataTable that updates in place, keeping the cursor on the same row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowKey

Row = tuple[str, Sequence[Any]]


def sort_value(cell: Any) -> tuple[int, float, str]:
    """How a cell sorts: numbers by value ("1,090", "32.4%", "▸3", "51.1 ± 33 s", "12p"),
    then text, case-insensitively."""
    text = str(getattr(cell, "plain", cell)).strip()
    token = text.replace(",", "").lstrip("▸+").split(" ")[0].rstrip("%p")
    try:
        return (0, float(token), "")
    except ValueError:
        return (1, 0.0, text.casefold())


class SyncTable(DataTable[Any]):
    """``sync(rows)`` replaces the content without flicker and without losing the selection.

    When the row keys are unchanged, only the cells that differ are updated; otherwise the
    rows are rebuilt in one go (no repaint in between) and the cursor returns to the row
    with the same key, or to the same position when that row is gone.
    """

    DEFAULT_CSS = """
    SyncTable { height: auto; max-height: 100%; overflow-x: hidden; scrollbar-size-vertical: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "o", "cycle_sort", "Sort", show=False, tooltip="Sort the focused table: next column"
        )
    ]

    def __init__(
        self, columns: Sequence[str | tuple[Any, str]], sortable: bool = True, **kwargs: Any
    ) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", False)
        super().__init__(**kwargs)
        self._columns_spec = list(columns)
        #: Called when the width changes, to re-fit the rows (cells are cut to the width).
        self.redraw: Callable[[], None] | None = None
        self._width = 0
        self._fixed: dict[str, int] = {}
        self.sortable = sortable
        #: (column key, descending) while the user sorts by a column; None: as given.
        self.sort_by: tuple[str, bool] | None = None
        self._given: list[Row] = []

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for spec in self._columns_spec:
            label, key = (spec, spec) if isinstance(spec, str) else spec
            if self.sort_by is not None and self.sort_by[0] == key:
                # The mark goes first: a narrow column cuts the end of its header.
                plain = str(getattr(label, "plain", label)).strip()
                label = ("▼" if self.sort_by[1] else "▲") + plain
            self.add_column(label, key=key, width=self._fixed.get(key))

    # -- sorting ------------------------------------------------------------------------------
    def _column_keys(self) -> list[str]:
        return [spec if isinstance(spec, str) else spec[1] for spec in self._columns_spec]

    def set_sort(self, sort_by: tuple[str, bool] | None) -> None:
        """Sort by a column (or back to the given order) and redraw, keeping the cursor."""
        if not self.sortable:
            return
        self.sort_by = sort_by
        rows, self._given = self._given, []
        self._fixed = {}  # forces the columns (and their marks) to be rebuilt
        widths = {k: c.width for k, c in self.columns.items() if k.value is not None}
        self.sync(rows, {str(k.value): w for k, w in widths.items()})

    def action_cycle_sort(self) -> None:
        """o: ascending by the next column, then descending, ..., then as given."""
        keys = self._column_keys()
        if not self.sortable or not keys:
            return
        if self.sort_by is None:
            self.set_sort((keys[0], False))
        elif not self.sort_by[1]:
            self.set_sort((self.sort_by[0], True))
        else:
            i = keys.index(self.sort_by[0]) + 1 if self.sort_by[0] in keys else len(keys)
            self.set_sort((keys[i], False) if i < len(keys) else None)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by it; again reverses; a third time undoes."""
        event.stop()
        key = str(event.column_key.value)
        if self.sort_by is None or self.sort_by[0] != key:
            self.set_sort((key, False))
        elif not self.sort_by[1]:
            self.set_sort((key, True))
        else:
            self.set_sort(None)

    def _sorted(self, rows: Sequence[Row]) -> list[Row]:
        if self.sort_by is None or self.sort_by[0] not in self._column_keys():
            return list(rows)
        index = self._column_keys().index(self.sort_by[0])
        return sorted(
            rows,
            key=lambda row: sort_value(row[1][index]) if index < len(row[1]) else (2, 0.0, ""),
            reverse=self.sort_by[1],
        )

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
        self._given = list(rows)
        rows = self._sorted(rows)
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
