"""RowTints: which rows the browser must tint when the Flagged or Pending column is hidden.

A row's colour (flagged, pending or plain) is a Vega expression the browser evaluates
per cell (``theme.Palette.row_colour``). It can read the row's Flagged and Pending
cells only while those columns are shown: ipydatagrid 1.4's ``cell.metadata.data`` finds
a column by its index among the *shown* fields and throws for any other (hiding Pending
once blanked every unflagged row with "Cannot read properties of undefined"), and a
field kept in the data but not shown shifts that index the same way.

So for a hidden column the kernel tells the browser the state itself: just before it
answers a ``data-request`` for rows ``first..last``, it works out which of them are
flagged (the snapshot's ``__flagged``, held whatever is shown) and which have pending
changes (one query of the queue for those rows' ids), and the row colour names those
row numbers (``indexof([..], cell.row)``). The expression changes only when the rows
change; it goes before the rows (same channel, in order), so new rows are drawn in
their colour. It covers the rows answered since the order or the data last changed, at
most ``LIMIT`` (the latest first): a browser shows ~20-50 rows and asks for what it
shows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..cache.store import Store
from .snapshot import read
from .viewport import Viewport

__all__ = ["LIMIT", "RowTints"]

LIMIT = 600  # rows whose state the row colour names at most


class RowTints:
    """Flagged and pending rows among those answered lately (see the module docstring)."""

    def __init__(self, viewport: Viewport, store: Store) -> None:
        self.viewport = viewport
        self.store = store
        self._key: tuple[Any, ...] | None = None
        self._rows: dict[int, tuple[bool, bool]] = {}  # row -> (flagged, pending)

    def clear(self) -> None:
        self._key = None
        self._rows = {}

    def rows(self, shown: list[str], first: int, last: int) -> tuple[list[int], list[int]]:
        """(flagged rows, pending rows) the row colour must name, once rows ``first..last``
        are answered; both empty when the Flagged and Pending columns are shown."""
        need_flagged, need_pending = "Flagged" not in shown, "Pending" not in shown
        if not (need_flagged or need_pending):
            self.clear()
            return [], []
        v = self.viewport
        key = (v.version, tuple(v.sort_keys), v.predicate(), need_flagged, need_pending)
        if key != self._key:
            self.clear()
            self._key = key
        if last >= first:
            flags = v.flags([(first, last)]) if need_flagged else np.zeros(0, dtype=bool)
            pending = self._pending(first, last) if need_pending else set()
            for row in range(first, last + 1):
                self._rows.pop(row, None)  # re-inserted: the latest rows stay longest
                self._rows[row] = (bool(len(flags) and flags[row - first]), row in pending)
            while len(self._rows) > LIMIT:
                del self._rows[next(iter(self._rows))]
        ordered = sorted(self._rows.items())
        return ([r for r, (f, _) in ordered if f and need_flagged],
                [r for r, (_, p) in ordered if p and need_pending])

    def _pending(self, first: int, last: int) -> set[int]:
        """Rows among ``first..last`` whose seller has a change waiting to be pushed."""
        ids = self.viewport.ids([(first, last)])
        if not ids:
            return set()
        with self.store.connect() as con:
            waiting = read(con, "SELECT DISTINCT seller_id FROM mutations "
                                "WHERE state = 'pending' AND seller_id IN "
                                "(SELECT unnest(?::VARCHAR[]))", [ids])
        held = set(waiting.column("seller_id").to_pylist())
        return {first + i for i, seller in enumerate(ids) if seller in held}
