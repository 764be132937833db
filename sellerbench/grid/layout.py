"""GridLayout: the grid's order, layout, theme and state, mixed into ``SellersGrid``.

What the analyst arranges (sort keys from header clicks, column widths from a drag on a
header border, the theme JupyterLab shows) and the grid's state as data (``state.py``)
live here; ``widget.py`` holds the widgets and how they talk, ``actions.py`` what the
grid does. Every entry point may run on any thread and takes the grid's lock.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..cache.filters import SellerFilter
from ..errors import ConfigError, SellerbenchError
from .state import STATIC_ROWS, check_state, static_html
from .theme import Palette
from .tints import RowTints
from .viewport import Viewport

if TYPE_CHECKING:
    from ..workbench import Workbench

__all__ = ["ARROWS", "GridLayout", "sort_header_text"]


class GridLayout:
    """Order, layout, theme and state of a SellersGrid (see the module docstring)."""

    if TYPE_CHECKING:  # what SellersGrid provides
        wb: Workbench
        viewport: Viewport
        datagrid: Any
        profiles: Any
        palette: Palette
        tints: RowTints
        _lock: threading.RLock
        _colour_shown: list[str]  # the columns the row colour may read
        _colour_after: list[str] | None  # ... once the browser asks for the new schema

        @property
        def columns(self) -> list[str]: ...

        @columns.setter
        def columns(self, labels: Sequence[str]) -> None: ...

        @property
        def where_sql(self) -> str: ...

        @property
        def status(self) -> str: ...

        @property
        def selected_ids(self) -> list[str]: ...

        def _reorder(self, change: Callable[[], None]) -> None: ...

        def _prepare(self) -> None: ...

        def set_where(self, where: str) -> None: ...

        def set_search(self, text: str) -> None: ...

        def set_flagged_filter(self, choice: str) -> None: ...

        def select_ids(self, ids: Sequence[str]) -> int: ...

    # -- order --------------------------------------------------------------------------

    def _header_transforms(self, transforms: list[dict[str, Any]]) -> None:
        """Transforms from the header's menu: a sort chosen there replaces the sort keys
        (as a plain header click does), filters are ANDed. The header is then told the
        filters alone: the sort keys are drawn as arrows in the header text
        (``_show_sort``), not by ipydatagrid's one sort icon."""
        keys = self.viewport.sort_keys
        sorts = [(t["column"], bool(t.get("desc", False))) for t in transforms
                 if t.get("type") == "sort" and t.get("column") in self.viewport._by_label]
        if sorts:
            new = [k for k in sorts if k not in keys]
            sorts = new[-1:] or sorts[-1:]
        else:
            sorts = keys  # the header holds no sort: a filter change keeps the order
        filters = [t for t in transforms if t.get("type") != "sort"]
        adopted = [*({"type": "sort", "column": k, "desc": d} for k, d in sorts), *filters]
        self._reorder(lambda: self.viewport.set_transforms(adopted))
        self._show_sort()

    def set_widths(self, widths: Mapping[str, Any]) -> None:
        """Column widths in pixels (as a drag on a header border sets them); unknown
        columns are ignored, a width is kept between 20 and 2000."""
        with self._lock:
            current = dict(self.datagrid.column_widths)
            for label, width in widths.items():
                if label in current and isinstance(width, int | float):
                    current[label] = int(min(max(width, 20), 2000))
            if current != self.datagrid.column_widths:
                self.datagrid.column_widths = current

    def _on_widths(self, change: dict[str, Any]) -> None:
        """The analyst resized a column (the browser syncs the widths): the profile strip
        follows."""
        self.profiles.widths = dict(change["new"] or {})

    # -- theme --------------------------------------------------------------------------

    def set_theme(self, variables: Mapping[str, str] | None = None,
                  light: bool | None = None) -> None:
        """Take JupyterLab's theme (its CSS variables, resolved; the browser sends them on
        render and on every theme change): the canvas's colours follow (theme.py)."""
        palette = Palette.from_css(dict(variables or {}), light)
        with self._lock:
            if palette == self.palette:
                return
            self.palette = palette
            self._apply_palette()

    def _before_reply(self, first: int, last: int) -> None:
        """Rows ``first..last`` are about to go to the browser: with the Flagged or Pending
        column hidden, the row colour names their flagged and pending rows first
        (``tints.py``), so they are drawn in their colour."""
        self._set_row_colour(self.tints.rows(self._colour_shown, first, last))

    def _after_reply(self) -> None:
        """Rows went to the browser (of its present schema): a row colour reading a
        column shown again goes now; the profiles may start."""
        if self._colour_after is not None:
            self._colour_shown, self._colour_after = self._colour_after, None
            self._set_row_colour(self.tints.rows(self._colour_shown, 0, -1))
        self.profiles.kick()

    def _set_row_colour(self, rows: tuple[list[int], list[int]] | None = None) -> None:
        """The row colour for the columns the browser holds (``_colour_shown``) and the
        flagged/pending rows of hidden ones; sent only when it changes."""
        flagged, pending = rows if rows is not None else self.tints.rows(
            self._colour_shown, 0, -1)
        expr = self.palette.row_colour(self._colour_shown, flagged, pending)
        colour = self.datagrid.default_renderer.background_color
        if colour.value != expr:
            colour.value = expr  # the same VegaExpr, a new value: one state message

    def _colours_for(self, before: Sequence[str]) -> None:
        """The columns shown changed (from ``before``): the row colour reads only columns
        the browser holds. One that reads fewer goes before the new schema; one that reads
        a column shown again, once the browser asks for rows of the new schema."""
        now = self.columns
        self._colour_after = None
        self.tints.clear()
        if {"Flagged", "Pending"} & set(now) <= set(before):
            self._colour_shown = now
        else:
            self._colour_shown = [c for c in now if c in before]
            self._colour_after = now
        self._set_row_colour()

    def _apply_palette(self) -> None:
        palette, grid = self.palette, self.datagrid
        renderer = grid.default_renderer
        self._set_row_colour()
        renderer.text_color = palette.text
        if grid.header_renderer is not None:
            grid.header_renderer.background_color = palette.header_background
            grid.header_renderer.text_color = palette.header_text
        grid.grid_style = palette.grid_style()

    # -- state ------------------------------------------------------------------------

    @property
    def state(self) -> dict[str, Any]:
        """The grid's state as data (state.py): filters, sort, columns, widths and the
        selected ids. ``wb.grid(state=...)`` or ``grid.state = ...`` gives it back."""
        with self._lock:
            v = self.viewport
            return {
                "version": 1, "search": v.search, "flagged": v.flagged,
                "where": v.where_text or "",
                "sort": [[k, d] for k, d in v.sort_keys],
                "header_filters": [dict(t) for t in v.header_filters],
                "picks": dict(v.picks), "columns": self.columns,
                "widths": {k: int(w) for k, w in self.datagrid.column_widths.items()},
                "selection": self.selected_ids,
            }

    @state.setter
    def state(self, state: Mapping[str, Any]) -> None:
        state = check_state(state)
        with self._lock:
            if "columns" in state and state["columns"] != self.columns:
                self.columns = state["columns"]
            if "widths" in state:
                widths = dict(self.datagrid.column_widths)
                widths.update({k: v for k, v in state["widths"].items() if k in widths})
                self.datagrid.column_widths = widths
            if "where" in state:
                self.set_where(state["where"])
            if "search" in state:
                self.set_search(state["search"])
            if "flagged" in state:
                self.set_flagged_filter(state["flagged"])
            if "picks" in state:
                self._set_picks(state["picks"])
            if "header_filters" in state or "sort" in state:
                filters = state.get("header_filters", self.viewport.header_filters)
                sort = [tuple(k) for k in state.get("sort", self.viewport.sort_keys)]
                sorts = [{"type": "sort", "column": k, "desc": d} for k, d in sort]
                for t in sorts + filters:
                    self.viewport.column(t.get("column", ""))
                self._reorder(lambda: self.viewport.set_transforms([*sorts, *filters]))
                self._show_sort()
            if "selection" in state:
                self.select_ids(state["selection"])

    def _set_picks(self, picks: Mapping[str, str]) -> None:
        for label in list(self.viewport.picks):
            self.viewport.set_pick(label, None)
        for label, clause in picks.items():
            if not isinstance(clause, str):
                raise ConfigError(f"grid state 'picks' maps a column to a predicate, "
                                  f"not {clause!r}")
            self.viewport.column(label)
            checked = SellerFilter(where=clause)  # checked and bound as the where box is
            with self.wb.store.connect() as con:
                checked.check(con)
            self.viewport.set_pick(label, checked.where)
        self.profiles.picked = list(self.viewport.picks)
        self._reorder(lambda: None)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The widget, plus a static picture in ``text/html`` (first rows and the filter
        as text) for where no kernel runs: nbconvert HTML, a notebook viewer."""
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if not isinstance(bundle, dict):
            return bundle
        try:
            with self._lock:
                self._prepare()
                rows = self.viewport.page(0, STATIC_ROWS - 1)
                sort = ", ".join(f"{k} {'descending' if d else 'ascending'}"
                                 for k, d in self.viewport.sort_keys)
                picture = static_html(rows, where_sql=self.where_sql, status=self.status,
                                      sort=sort)
        except SellerbenchError as exc:
            picture = f"<i>Sellers grid (no picture: {html.escape(str(exc))})</i>"
        return {**bundle, "text/html": picture}

    def sort_by(self, label: str, descending: bool = False, *, add: bool = False) -> None:
        """Sort by a column; ``add``: as a further key after the present ones (Shift+click
        on a header). The header shows an arrow on every sorted column."""
        self.viewport.column(label)
        keys = [k for k in self.viewport.sort_keys if k[0] != label] if add else []
        self._sort_keys([*keys, (label, descending)])

    def header_clicked(self, label: str, add: bool = False) -> None:
        """A click on a column's header: sort by it, or the other way when it is already
        the (last) sort key; Shift (``add``) adds it as a further key."""
        keys = self.viewport.sort_keys
        current = dict(keys)
        if add:
            if label in current:  # the other way, in its place
                self._sort_keys([(k, not d if k == label else d) for k, d in keys])
            else:
                self._sort_keys([*keys, (label, False)])
        elif keys[0][0] == label and len(keys) == 1:
            self._sort_keys([(label, not keys[0][1])])
        else:
            self._sort_keys([(label, False)])

    def _sort_keys(self, keys: Sequence[tuple[str, bool]]) -> None:
        for label, _ in keys:
            self.viewport.column(label)
        with self._lock:
            self._reorder(lambda: self.viewport.set_sort(keys[0][0], keys[0][1],
                                                         then=keys[1:]))
            self._show_sort()

    def _show_sort(self) -> None:
        """The header after a change of the sort keys or filters: its transforms are the
        header filters alone (ipydatagrid 1.4's header draws one sort icon, from a sort
        transform: none is sent), and every sort key is an arrow in its column's header
        text, numbered when there are several (``Times seen ▼1``, ``Name ▲2``)."""
        wanted = self._transforms()
        if list(self.datagrid._transforms) != wanted:
            self.datagrid._transforms = wanted
        text = self.datagrid.header_renderer.text_value
        expr = sort_header_text(self.viewport.sort_keys)
        if text.value != expr:
            text.value = expr

    def _transforms(self) -> list[dict[str, Any]]:
        """The header's transforms for the viewport's state: its filters (the sort keys
        are drawn in the header text, see ``_show_sort``)."""
        return [dict(t) for t in self.viewport.header_filters]


ARROWS = {False: "▲", True: "▼"}  # ascending, descending


def sort_header_text(keys: Sequence[tuple[str, bool]]) -> str:
    """The Vega expression for a column header's text: its label, then an arrow when the
    column is a sort key (with the key's number when there are several)."""
    expr = "default_value"
    numbered = len(keys) > 1
    for n, (label, descending) in reversed(list(enumerate(keys, 1))):
        mark = ARROWS[bool(descending)] + (str(n) if numbered else "")
        expr = f"(cell.value == {_vega_string(label)} ? default_value + ' {mark}' : {expr})"
    return expr


def _vega_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
