"""SellersGrid: the interactive grid over the cache, for a million sellers, in JupyterLab.

``wb.grid()`` returns a ``SellersGrid``: an ipywidgets layout (search box, flagged
filter, toolbar, status line, message line, detail panel) around ``SellersDataGrid``,
an ipydatagrid ``StreamingDataGrid`` whose rows come from a ``Viewport``
(``viewport.py``: SQL filters over the cache, an Arrow snapshot, pages as slices).

How the streaming grid is used, and the defects of ipydatagrid 1.4 worked around here:

- The browser asks for the rows it is about to draw with a ``data-request`` message
  (r1..r2, c1..c2); the kernel answers ``data-reply`` with those rows. Only the visible
  rows ever cross the wire. Every reply carries *all* columns of the rows asked for,
  so the row colour (which reads the Flagged and Pending cells) is right even for
  a row whose Flagged cell is scrolled out of view.
- The cell-click error: on every click the browser looks the clicked row up in the
  model's full data (``getDatasetRowFromView`` reads ``dataset.data[<index column>][row]``),
  but a streaming grid ships ``_data`` with ``data: {}``, so it reads a property of
  ``undefined`` and throws ("Cannot read properties of undefined"; Lumino catches it and
  logs it to the console, the selection still syncs, the click never reaches the
  kernel). We send ``_data`` with *empty* index columns instead: the lookup finds
  ``undefined`` and goes on. The click message then lacks ``primary_key_row``, which made
  ipydatagrid's own Python handler raise ``KeyError``; that handler (and the
  pandas-backed streaming one) is replaced, and clicks reach ``on_cell_click``.
- ``.data``, ``get_visible_data()`` and ``selected_cell_values`` raise on a streaming
  grid; here they answer from the viewport. ``select()`` and ``clear_selection()``
  mutate the list in place, so no observer fired; here they assign a new list.
- Sorting and filtering from the column header arrive as ``_transforms``; the viewport
  turns them into SQL filters and an Arrow sort (never into pandas).
- ``set_cell_value`` cannot work on rows the kernel does not hold as a frame, and edits
  must go through the mutation queue anyway: it raises ``MutationError`` saying so.

Painting: Lumino's DataGrid copies every cell from its off-screen buffer to the screen
one by one, which a software-drawn canvas (headless Chromium) pays for with a copy of
the whole buffer per cell: ~270 ms per frame here, two frames per jump. ``GridPainter``
(``gridpaint.py``), hidden next to the grid, makes the browser copy one strip per column
instead (the same pixels, ~7 copies a frame instead of ~136).

Selections are row ranges in the grid's current order. ``SellersGrid.selected_ids``
maps them to seller ids through the same snapshot; when the data or the order changes
(a sync, a flag, a sort) the selected ids are pinned first and the selection is moved
to wherever those sellers are afterwards, so an action never hits the wrong sellers.

Live: the grid subscribes to the workbench. A change only marks the snapshot stale and
asks the browser to fetch its rows again ("tick"); the re-read happens once, on the
next request (or at once after a toolbar action). A change that names its sellers (a
flag, an undo, a push) re-reads only their rows when that gives the same snapshot
(``Viewport._patch``): the rows keep their places, and so does the selection.
With ipykernel 7, widget messages may run on a kernel subshell thread while a cell runs
on the main thread, so every entry point takes one lock (``_serialized``): one snapshot
is built at a time, never two.
"""

from __future__ import annotations

import functools
import html
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd
import pyarrow as pa
from ipydatagrid import StreamingDataGrid, TextRenderer, VegaExpr
from traitlets import observe

from .errors import MutationError, SellerbenchError
from .gridpaint import GridPainter
from .viewport import COLUMNS, FLAGGED_CHOICES, Column, Viewport, merge_ranges, runs_of

if TYPE_CHECKING:
    from .workbench import Workbench

__all__ = ["SellersDataGrid", "SellersGrid"]

FLAGGED_COLOUR = "#ffd9d6"
PENDING_COLOUR = "#fff2c2"
COLUMN_WIDTHS = {"Name": 220, "Platform": 80, "Times seen": 84, "Flagged": 72, "Pending": 90,
                 "First seen run": 150, "Last seen run": 150, "Updated": 130, "Id": 290}
# The row colour reads other cells of the same row; "..." is what a row not yet loaded shows.
ROW_COLOUR = (
    f"cell.metadata.data['Flagged'] == 'yes' ? '{FLAGGED_COLOUR}' : "
    f"(cell.metadata.data['Pending'] != '' && cell.metadata.data['Pending'] != '...' "
    f"? '{PENDING_COLOUR}' : default_value)"
)
PIN_LIMIT = 200_000  # a select-all of more rows is kept as "every row", not as ids


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run under the grid's lock: with ipykernel 7 and JupyterLab 4.4+, widget messages
    (the browser's data-requests, selections, clicks) may be handled on a kernel
    *subshell* thread while a cell or a button handler runs on the main thread."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


class SellersDataGrid(StreamingDataGrid):
    """A StreamingDataGrid answered by a Viewport; see the module docstring for why."""

    def __init__(self, viewport: Viewport, *, lock: threading.RLock | None = None,
                 **kwargs: Any) -> None:
        self._lock = lock or threading.RLock()  # shared with the owning SellersGrid
        self.viewport = viewport
        # Called before the viewport is read (SellersGrid rebuilds and re-selects there)
        # and with the header's transforms; both set by the owner.
        self.prepare: Callable[[], None] = lambda: None
        self.on_transforms: Callable[[list[dict[str, Any]]], None] = viewport.set_transforms
        self.on_error: Callable[[str, BaseException], None] = _raise
        self.replies = 0  # data-replies sent (tests and benchmarks read it)
        self._last_range: tuple[int, int] | None = None
        kwargs.setdefault("selection_mode", "row")
        super().__init__(viewport.empty_frame(), index_name="#", **kwargs)
        # ipydatagrid's own handler indexes content["event_type"] (a data-request has
        # "type") and content["primary_key_row"] (a streaming click has none): drop it.
        self.on_msg(self._DataGrid__handle_custom_msg, remove=True)
        self._row_count = viewport.row_count

    # -- the frame the grid's schema comes from ---------------------------------------

    @property
    def data(self) -> pd.DataFrame:
        """Every row as shown, in grid order (the whole filtered view: large at 1M rows)."""
        self.prepare()
        return self.viewport.frame()

    @data.setter
    def data(self, dataframe: pd.DataFrame) -> None:
        frame = self.generate_data_object(dataframe.copy(), "ipydguuid", "#")
        schema = frame["schema"]
        # Empty index columns, not no columns: see "the cell-click error" above.
        keys = {name: frame["data"][name] for name in schema["primaryKey"]}
        self._data = {"data": keys, "schema": schema, "fields": frame["fields"]}

    # -- messages from the browser -----------------------------------------------------

    @_serialized
    def _handle_comm_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type") or content.get("event_type")
        try:
            if kind == "data-request":
                self.answer(content.get("r1"), content.get("r2"))
            elif kind == "unique-values-request":
                self._answer_unique(str(content.get("column")))
            elif kind == "cell-click":
                # A streaming click has no primary_key_row: the row position stands in.
                self._cell_click_handlers({
                    "region": content.get("region"), "column": content.get("column"),
                    "column_index": content.get("column_index"), "row": content.get("row"),
                    "primary_key_row": content.get("primary_key_row", content.get("row")),
                    "cell_value": content.get("cell_value"),
                })
        except SellerbenchError as exc:
            self.on_error("show these rows", exc)
        except Exception as exc:  # a failed reply must never put a traceback in a cell
            self.on_error("show these rows", exc)

    @_serialized
    def answer(self, first: int | None, last: int | None) -> dict[str, Any] | None:
        """Send the rows ``first..last`` to the browser; returns the reply (None: no rows)."""
        self.prepare()
        count = self.viewport.row_count
        if self._row_count != count:
            self._row_count = count
        if first is None or last is None or count == 0:
            return None
        first, last = max(int(first), 0), min(int(last), count - 1)
        if last < first:
            return None
        page = self.viewport.page(first, last)
        serialized, buffers = self._serialize_helper(page)
        reply = {"event_type": "data-reply", "value": serialized, "r1": first, "r2": last,
                 "c1": 0, "c2": len(self.viewport.columns) - 1}
        self.send(reply, buffers)
        self.replies += 1
        self._last_range = (first, last)
        return reply

    def _answer_unique(self, label: str) -> None:
        values = self.viewport.unique_values(label)
        serialized, buffers = self._serialize_helper(pd.DataFrame({label: values}))
        self.send({"event_type": "unique-values-reply", "column": label, "value": serialized},
                  buffers)

    @observe("_transforms")
    @_serialized
    def _on_transforms_changed(self, change: dict[str, Any]) -> None:
        try:
            self.on_transforms(list(change["new"]))
        except SellerbenchError as exc:
            self.on_error("sort or filter", exc)

    # -- the DataGrid API, made to work on a streaming grid --------------------------------

    @_serialized
    def get_visible_data(self) -> pd.DataFrame:
        """The rows the browser asked for last (the visible window), as shown."""
        if self._last_range is None:
            return self.viewport.empty_frame()
        self.prepare()
        return self.viewport.page(*self._last_range)

    @property
    @_serialized
    def selected_cell_values(self) -> list[Any]:
        frame = self.viewport.frame(self.selected_row_ranges())
        return [v for row in frame.drop(columns=["id"]).itertuples(index=False) for v in row]

    def selected_row_ranges(self) -> list[tuple[int, int]]:
        return merge_ranges(((s["r1"], s["r2"]) for s in self.selections), self._row_count)

    def select(self, row1: int, column1: int = 0, row2: int | None = None,
               column2: int | None = None, clear_mode: str = "none") -> None:
        row2 = row1 if row2 is None else row2
        column2 = column1 if column2 is None else column2
        kept = [] if clear_mode == "all" else list(self.selections)
        if clear_mode == "current" and kept:
            kept.pop()
        rect = {"r1": min(row1, row2), "c1": min(column1, column2),
                "r2": max(row1, row2), "c2": max(column1, column2)}
        self.selections = [*kept, rect]  # a new list: observers fire, the browser follows

    def clear_selection(self) -> None:
        self.selections = []

    def set_cell_value(self, *args: Any, **kwargs: Any) -> bool:
        raise MutationError(
            "the sellers grid is not edited in place: use wb.rename(id, name) or "
            "wb.flag(ids), or the grid's toolbar, so the change is queued and pushed"
        )

    set_cell_value_by_index = set_cell_value
    set_row_value = set_cell_value

    def tick(self) -> None:
        """Ask the browser to request its visible rows again (they changed)."""
        self.send({"event_type": "tick"})


def _raise(_what: str, exc: BaseException) -> None:
    raise exc


class SellersGrid(widgets.VBox):
    """The sellers grid with its toolbar, filters, status line and detail panel."""

    def __init__(
        self,
        wb: Workbench,
        *,
        height: str = "440px",
        show_ids: bool = False,
        confirm_delete_above: int = 20,
        columns: Sequence[Column] | None = None,
        debounce_ms: int = 40,
    ) -> None:
        self.wb = wb
        self._lock = threading.RLock()  # see _serialized
        self.confirm_delete_above = confirm_delete_above
        chosen = columns or [c for c in COLUMNS if show_ids or c.label != "Id"]
        self.viewport = Viewport(wb.store, columns=chosen)
        self._ranges: list[tuple[int, int]] = []  # the selection, merged
        self._pinned: pa.Array | str | None = None  # selected ids kept across a refresh
        self._events = 0
        self._detail_id: str | None = None
        self._closed = False
        self._build_controls()
        self.datagrid = self._build_datagrid(chosen, height, debounce_ms)
        # Right after the grid, so the grid's view exists when the painter's renders.
        self.painter = GridPainter(self.datagrid)
        body = widgets.HBox([self.datagrid, self.painter, self.detail],
                            layout=widgets.Layout(width="100%", align_items="stretch"))
        super().__init__([self.toolbar, self.confirm_bar, self.message, self.status_line, body])
        self.add_class("sellerbench-grid")
        self._update_status()
        self._show_detail()
        wb.subscribe(self._on_event)

    # -- building ------------------------------------------------------------------

    def _button(self, label: str, name: str, action: Callable[[], Any], tip: str,
                style: str = "") -> widgets.Button:
        button = widgets.Button(description=label, tooltip=tip, button_style=style,
                                layout=widgets.Layout(width="auto"))
        button.add_class(f"sellerbench-{name}")
        button.on_click(lambda _b: self._guard(label.lower(), action))
        return button

    def _build_controls(self) -> None:
        self.search = widgets.Text(placeholder="search name, id or platform id ⏎",
                                   continuous_update=False, layout=widgets.Layout(width="220px"))
        self.search.add_class("sellerbench-search")
        self.flagged_filter = widgets.Dropdown(
            options=[("All sellers", "all"), ("Flagged", "flagged"),
                     ("Not flagged", "not flagged"), ("Pending changes", "pending")],
            value="all", layout=widgets.Layout(width="150px"))
        self.search.observe(lambda c: self._guard("search", lambda: self.set_search(c["new"])),
                            "value")
        self.flagged_filter.observe(
            lambda c: self._guard("filter", lambda: self.set_flagged_filter(c["new"])), "value")
        self.rename_text = widgets.Text(placeholder="new name",
                                        layout=widgets.Layout(width="160px"))
        self.rename_text.add_class("sellerbench-rename-text")
        self.buttons = {
            "flag": self._button("Flag", "flag", lambda: self.flag_selected(True),
                                 "flag the selected sellers", "danger"),
            "unflag": self._button("Unflag", "unflag", lambda: self.flag_selected(False),
                                   "unflag the selected sellers"),
            "rename": self._button("Rename", "rename",
                                   lambda: self.rename_selected(self.rename_text.value),
                                   "rename the one selected seller to the name on the left"),
            "delete": self._button("Delete", "delete", self._delete_clicked,
                                   "delete the selected sellers (undo brings them back)"),
            "undo": self._button("Undo", "undo", self.undo, "take back the latest change"),
            "sync": self._button("Sync", "sync", self.sync, "push changes, pull from the API"),
            "all": self._button("Select all", "select-all", self.select_all,
                                "select every row shown"),
            "none": self._button("Clear", "clear", self.clear_selection, "select nothing"),
        }
        b = self.buttons
        self.toolbar = widgets.HBox(
            [self.search, self.flagged_filter, b["all"], b["none"], b["flag"], b["unflag"],
             self.rename_text, b["rename"], b["delete"], b["undo"], b["sync"]],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        self.confirm_text = widgets.HTML()
        yes = widgets.Button(description="Delete them", button_style="danger")
        yes.add_class("sellerbench-confirm")
        yes.on_click(lambda _b: self._guard("delete", lambda: self.delete_selected(confirm=True)))
        no = widgets.Button(description="Cancel")
        no.on_click(lambda _b: self._hide_confirm())
        self.confirm_bar = widgets.HBox([self.confirm_text, yes, no],
                                        layout=widgets.Layout(display="none"))
        self.message = widgets.HTML()
        self.message.add_class("sellerbench-message")
        self.status_line = widgets.HTML()
        self.status_line.add_class("sellerbench-status")
        self.detail = widgets.HTML(layout=widgets.Layout(width="340px", overflow="auto",
                                                         padding="0 0 0 8px"))
        self.detail.add_class("sellerbench-detail")

    def _build_datagrid(self, columns: Sequence[Column], height: str,
                        debounce_ms: int) -> SellersDataGrid:
        grid = SellersDataGrid(
            self.viewport,
            lock=self._lock,
            debounce_delay=debounce_ms,
            default_renderer=TextRenderer(background_color=VegaExpr(ROW_COLOUR)),
            column_widths={c.label: COLUMN_WIDTHS.get(c.label, 120) for c in columns},
            base_row_header_size=72,
            layout=widgets.Layout(height=height, flex="1 1 auto"),
        )
        grid.prepare = self._prepare
        grid.on_transforms = lambda t: self._reorder(lambda: self.viewport.set_transforms(t))
        grid.on_error = self._show_error
        grid.observe(self._on_selections, "selections")
        grid.add_class("sellerbench-datagrid")
        return grid

    # -- selection ------------------------------------------------------------------

    @property
    @_serialized
    def selected_count(self) -> int:
        self._prepare()
        return sum(b - a + 1 for a, b in self._ranges)

    @property
    @_serialized
    def selected_ids(self) -> list[str]:
        """Seller ids of the selected rows, in grid order."""
        self._prepare()
        return self.viewport.ids(self._ranges)

    @_serialized
    def selected_frame(self) -> pd.DataFrame:
        """The selected rows as shown, with their seller ids."""
        self._prepare()
        return self.viewport.frame(self._ranges)

    @_serialized
    def select_rows(self, first: int, last: int | None = None, *, add: bool = False) -> None:
        """Select rows ``first..last`` (inclusive, grid order), like a click or a drag."""
        last = first if last is None else last
        self._prepare()
        self._set_selection([*(self._ranges if add else []), (first, last)])

    @_serialized
    def select_ids(self, ids: Sequence[str]) -> int:
        """Select the rows showing these sellers; returns how many are shown."""
        self._prepare()
        ranges = runs_of(self.viewport.positions(list(ids)))
        self._set_selection(ranges)
        return sum(b - a + 1 for a, b in ranges)

    @_serialized
    def select_all(self) -> None:
        self._prepare()
        self._set_selection([(0, self.viewport.row_count - 1)])

    @_serialized
    def clear_selection(self) -> None:
        self._set_selection([])

    def _set_selection(self, ranges: Sequence[tuple[int, int]]) -> None:
        merged = merge_ranges(ranges, self.viewport.row_count)
        last = len(self.viewport.columns) - 1
        self.datagrid.selections = [{"r1": a, "r2": b, "c1": 0, "c2": last} for a, b in merged]

    @_serialized
    def _on_selections(self, change: dict[str, Any]) -> None:
        rects = change["new"] or []
        self._ranges = merge_ranges(((r["r1"], r["r2"]) for r in rects), self.datagrid._row_count)
        self._pinned = None
        cursor = rects[-1]["r1"] if rects else None
        self._guard("show the seller", lambda: self._show_detail(cursor))
        self._update_status()

    # -- keeping the selection on its sellers across changes ------------------------------

    def _pin(self) -> None:
        """Remember the selected sellers by id before the rows change order or content."""
        if not self._ranges or self._pinned is not None or self.viewport.stale:
            return
        every_row = self._ranges == [(0, self.viewport.row_count - 1)]
        if every_row and self.viewport.row_count > PIN_LIMIT:
            self._pinned = "all"  # a select-all of a huge view stays a select-all
        else:
            self._pinned = self.viewport.id_array(self._ranges)

    @_serialized
    def _prepare(self) -> None:
        """Rebuild a stale snapshot and move a pinned selection to its sellers' new rows."""
        if self._pinned is None and not self.viewport.stale:
            return
        reads = self.viewport.builds, self.viewport.patches
        count = self.viewport.row_count  # rebuilds (or patches) if stale
        if self.datagrid._row_count != count:
            self.datagrid._row_count = count
        if (self.viewport.builds, self.viewport.patches) != reads:
            self._update_status()
        if self._pinned is not None:
            pinned, self._pinned = self._pinned, None
            if isinstance(pinned, str):  # "all": every row, however many there are now
                self._set_selection([(0, count - 1)] if count else [])
            else:
                self._set_selection(runs_of(self.viewport.positions(pinned)))

    @_serialized
    def _reorder(self, change: Callable[[], None]) -> None:
        """Apply a filter or sort change, keeping the selection on the same sellers."""
        self._pin()
        change()
        self._prepare()
        self.datagrid.tick()
        self._update_status()

    def set_search(self, text: str) -> None:
        """Show only sellers whose name contains ``text`` (or whose id is ``text``)."""
        if self.search.value != text:
            self.search.value = text  # the observer comes back here
            return
        self._reorder(lambda: self.viewport.set_search(text))

    def set_flagged_filter(self, choice: str) -> None:
        """``all``, ``flagged``, ``not flagged`` or ``pending``."""
        if choice not in FLAGGED_CHOICES:
            raise SellerbenchError(f"flagged filter must be one of {FLAGGED_CHOICES}")
        if self.flagged_filter.value != choice:
            self.flagged_filter.value = choice
            return
        self._reorder(lambda: self.viewport.set_flagged(choice))

    def sort_by(self, label: str, descending: bool = False) -> None:
        """Sort by a column (as clicking its header does)."""
        self.viewport.column(label)
        self.datagrid._transforms = [{"type": "sort", "column": label, "desc": descending},
                                     *self.viewport.header_filters]

    # -- live: changes from other cells ------------------------------------------------------

    @_serialized
    def _on_event(self, event: str) -> None:
        """A sync, push or mutation happened (here or in another cell): show it."""
        self._events += 1
        # A ChangeEvent names the sellers it touched (None: any row may have changed).
        self._guard("refresh", lambda: self.refresh(getattr(event, "sellers", None)))

    @_serialized
    def refresh(self, sellers: Iterable[str] | None = None) -> None:
        """Re-read the cache when next needed: the browser's next request (which the tick
        asks for at once) or a Python read. Many changes in one cell cost one re-read.
        ``sellers``: the only sellers whose rows changed (their rows alone may be re-read).
        """
        self._pin()
        self.viewport.invalidate(sellers)
        self.datagrid.tick()
        if self._detail_id is not None:
            self._show_detail_id(self._detail_id)

    # -- actions --------------------------------------------------------------------

    def _require_selection(self, verb: str) -> list[str]:
        ids = self.selected_ids
        if not ids:
            raise MutationError(f"select the sellers to {verb} first (click, shift-click or drag)")
        return ids

    @_serialized
    def _acted(self, events_before: int, text: str) -> None:
        if self._events == events_before:  # the workbench did not tell us: look ourselves
            self.refresh()
        self._prepare()  # the analyst is looking at this grid: re-read now, counts included
        self._show_info(text)

    def flag_selected(self, flagged: bool = True) -> list[str]:
        """Flag (or unflag) the selected sellers through the mutation queue."""
        ids = self._require_selection("flag" if flagged else "unflag")
        before = self._events
        done = self.wb.flag(ids, flagged)
        verb = "Flagged" if flagged else "Unflagged"
        self._acted(before, f"{verb} {_count(len(ids), 'seller')}.")
        return done

    def rename_selected(self, name: str) -> str:
        """Rename the one selected seller."""
        ids = self._require_selection("rename")
        if len(ids) != 1:
            raise MutationError(f"select exactly one seller to rename ({len(ids):,} selected)")
        before = self._events
        done = self.wb.rename(ids[0], name)
        self._acted(before, f"Renamed to {html.escape(name.strip())!s}.")
        self.rename_text.value = ""
        return done

    def _delete_clicked(self) -> None:
        count = self.selected_count
        if count > self.confirm_delete_above:
            self.confirm_text.value = (f"<b>Delete {_count(count, 'seller')}?</b> "
                                       f"(Undo brings them back.)&nbsp;")
            self.confirm_bar.layout.display = "flex"
            return
        self.delete_selected(confirm=True)

    def delete_selected(self, *, confirm: bool = False) -> list[str]:
        """Delete the selected sellers; above ``confirm_delete_above`` needs ``confirm=True``."""
        self._hide_confirm()
        ids = self._require_selection("delete")
        if len(ids) > self.confirm_delete_above and not confirm:
            raise MutationError(f"deleting {len(ids):,} sellers needs confirmation: "
                                f"delete_selected(confirm=True)")
        before = self._events
        done = self.wb.delete(ids)
        self._acted(before, f"Deleted {_count(len(ids), 'seller')} (Undo brings them back).")
        return done

    def undo(self) -> str:
        before = self._events
        what = self.wb.undo()
        self._acted(before, f"Undo: {html.escape(str(what))}")
        return what

    def sync(self) -> Any:
        """Push queued changes and pull from the API, showing a syncing indicator."""
        self._update_status(syncing=True)
        try:
            report = self.wb.sync(progress=False)
        finally:
            self._prepare()
            self._update_status()
        self._show_info(f"Synced: {html.escape(_summary(report))}")
        return report

    def _hide_confirm(self) -> None:
        self.confirm_bar.layout.display = "none"

    # -- messages, status, detail ----------------------------------------------------------

    def _guard(self, what: str, action: Callable[[], Any]) -> Any:
        """Run a UI action; any error becomes a readable message in the widget."""
        try:
            return action()
        except Exception as exc:
            self._show_error(what, exc)
            return None

    def _show_error(self, what: str, exc: BaseException) -> None:
        kind = "" if isinstance(exc, SellerbenchError) else f"{type(exc).__name__}: "
        self.message.value = (f"<span style='color:#b00020'>⚠ Could not {html.escape(what)}: "
                              f"{html.escape(kind + str(exc))}</span>")

    def _show_info(self, text: str) -> None:
        self.message.value = f"<span style='color:#2e7d32'>{text}</span>"

    @property
    @_serialized
    def status(self) -> str:
        """The status line as text, up to date."""
        self._prepare()
        return html.unescape(self.status_line.value.split("</span>")[0].split(">", 1)[1])

    @_serialized
    def _update_status(self, *, syncing: bool = False) -> None:
        c = self.viewport.status()
        parts = [f"{c['total']:,} sellers" if c["shown"] == c["total"]
                 else f"{c['shown']:,} shown of {c['total']:,} sellers",
                 f"{c['flagged']:,} flagged", f"{c['pending']:,} pending",
                 "synced " + _ago(c["last_synced"]) if c["last_synced"] else "never synced"]
        selected = sum(b - a + 1 for a, b in self._ranges)
        if selected:
            parts.append(f"{selected:,} selected")
        text = " · ".join(parts)
        spinner = " <b>⟳ syncing…</b>" if syncing else ""
        self.status_line.value = f"<span class='sellerbench-status-text'>{text}</span>{spinner}"

    def _show_detail(self, row: int | None = None) -> None:
        if row is None or row >= self.viewport.row_count:
            self._detail_id = None
            self.detail.value = "<i>Select a seller to see every field and its runs.</i>"
            return
        ids = self.viewport.ids([(row, row)])
        if ids and ids[0] != self._detail_id:
            self._show_detail_id(ids[0])

    def _show_detail_id(self, seller_id: str) -> None:
        self._detail_id = seller_id
        info = self.viewport.detail(seller_id)
        self.detail.value = _detail_html(info) if info else "<i>This seller is gone.</i>"

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop following the workbench and close every widget of the grid."""
        if not self._closed:
            self._closed = True
            self.wb.unsubscribe(self._on_event)
            for child in (self.datagrid, self.painter, self.detail, self.status_line, self.message,
                          self.confirm_bar, self.toolbar):
                child.close()
        super().close()


# -- formatting ----------------------------------------------------------------------------


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _ago(when: datetime, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = max((now - when).total_seconds(), 0)
    if seconds < 45:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= size:
            n = round(seconds / size)
            return f"{n} {unit}{'s' if unit == 'day' and n != 1 else ''} ago"
    return "just now"


def _summary(report: Any) -> str:
    for name in ("summary", "describe"):
        method = getattr(report, name, None)
        if callable(method):
            return str(method())
    return str(report)


def _detail_html(info: dict[str, Any]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, datetime):
            value = value.strftime("%Y-%m-%d %H:%M:%S")
        return html.escape("" if value is None else str(value))

    seller = info["seller"]
    rows = "".join(f"<tr><th style='text-align:left;padding-right:8px'>{html.escape(k)}</th>"
                   f"<td>{cell(v)}</td></tr>" for k, v in seller.items())
    out = [f"<b>{cell(seller.get('display_name'))}</b>", f"<table>{rows}</table>"]
    if info["runs"]:
        runs = "".join(f"<li>{cell(r['seen'])}: <b>{cell(r['name'])}</b> ({cell(r['status'])}, "
                       f"started {cell(r['started_at'])})</li>" for r in info["runs"])
        out.append(f"<div><b>Runs that saw it</b><ul>{runs}</ul></div>")
    else:
        out.append("<div><i>No cached run saw it.</i></div>")
    if info["pending"]:
        changes = "".join(f"<li>{cell(m.get('kind'))} {_change(m)}</li>" for m in info["pending"])
        out.append(f"<div><b>Pending changes</b><ul>{changes}</ul></div>")
    return "".join(out)


def _change(mutation: dict[str, Any]) -> str:
    for field in ("flagged", "name", "payload"):
        if mutation.get(field) is not None:
            return f"→ {html.escape(str(mutation[field]))}"
    return ""

