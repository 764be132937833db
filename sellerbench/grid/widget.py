"""SellersGrid: the interactive grid over the cache, for a million sellers, in JupyterLab.

``wb.grid()`` returns a ``SellersGrid``: an ipywidgets layout (search box, flagged
filter, where box, column chooser, toolbar, one message line, status line, column
profiles, detail panel) around ``SellersDataGrid``, an ipydatagrid ``StreamingDataGrid``
whose rows come from a ``Viewport`` (``viewport.py``: SQL filters over the cache, an
Arrow snapshot, pages as slices). Around it:

- ``actionbox.ActionBox``: the search, where and name boxes. Enter or the box's button
  sends the text typed *with* the action, read from the input at that instant; an
  ipywidgets ``Text`` syncs its value as a state update the browser may hold back
  behind an unanswered one, so a click could act on a prefix of the name.
- ``painter.GridPainter``: paints a column per copy, and reports right-drags, hovers,
  header clicks, column widths, the theme and keys (Ctrl+A, Ctrl+C, Ctrl+Z, Delete).
- ``profiles.ProfileStrip``: a histogram or top values above each column, computed by
  DuckDB over the snapshot on a worker thread; a click filters the grid (cross-filter).
- ``actions.GridActions``: what the toolbar, the keys and the drags do.
- ``layout.GridLayout``: sort keys, widths, the theme (``theme.py``) and ``grid.state``
  (``state.py``); ``watch.CacheWatcher`` notices changes made by other processes.

The grid's state as SQL: ``grid.where_sql`` is every filter (search, flagged filter,
header filters, profile clicks, where box) as one predicate over the
``visible_sellers`` columns, values written in, which ``wb.sellers(where=...)``,
``wb.export(where=...)`` and ``wb.sql`` accept and which selects exactly the rows
shown; ``grid.selection`` is the selected ids (assign ids to restore a selection);
``grid.columns`` the columns shown (assign labels to choose).

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
(``painter.py``), hidden next to the grid, makes the browser copy one strip per column
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

import html
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd
import pyarrow as pa
from ipydatagrid import StreamingDataGrid, TextRenderer, VegaExpr
from traitlets import observe

from ..errors import ConfigError, MutationError, SellerbenchError
from .actionbox import ActionBox
from .actions import COPY_LIMIT, GridActions, _ago, _serialized
from .authors import AuthorLookup
from .layout import ARROWS, GridLayout, sort_header_text
from .painter import GridPainter
from .profiles import ProfileStrip
from .state import check_state
from .theme import Palette
from .tints import RowTints
from .viewport import COLUMNS, FLAGGED_CHOICES, Column, Viewport, merge_ranges, runs_of
from .watch import CacheWatcher

if TYPE_CHECKING:
    from ..workbench import Workbench

__all__ = ["SellersDataGrid", "SellersGrid"]

LIGHT = Palette.from_css()  # until the browser tells the theme (theme.py)
FLAGGED_COLOUR, PENDING_COLOUR = LIGHT.flagged, LIGHT.pending
WATCH_INTERVAL_S = 2.0  # how often the cache's files are looked at (watch.py)
# Widest content expected (a name is cut with an ellipsis; an id is 36 characters).
COLUMN_WIDTHS = {"Name": 220, "Platform": 80, "Times seen": 60, "Flagged": 60, "Pending": 80,
                 "First seen run": 100, "Last seen run": 100, "Updated": 124, "Id": 270}
_WRAP = {"flex_flow": "row wrap", "align_items": "center"}


def column_widths(columns: Sequence[Column], sample: pd.DataFrame | None = None
                  ) -> dict[str, int]:
    """Each column as wide as its content or its header, whichever is wider: the header
    text (~7 px a character at the grid's 12 px font) plus a sort arrow and the menu icon; the
    content from ``sample`` (the first rows) when given, else a typical width; at most
    240 px (a longer name is cut with an ellipsis, and shown whole on hover)."""
    widths = {}
    for c in columns:
        content = COLUMN_WIDTHS.get(c.label, 120)
        if sample is not None and c.label in sample and len(sample):
            longest = int(sample[c.label].astype(str).str.len().quantile(0.95))
            content = 7 * longest + 16
        # +58: the filter icon and a sort arrow with its number (" ▼2")
        widths[c.label] = min(max(content, 7 * len(c.label) + 58), 240)
    return widths


def _columns(chosen: Sequence[str | Column]) -> list[Column]:
    """Columns from labels (or Columns), checked: ConfigError names an unknown one."""
    known = {c.label: c for c in COLUMNS}
    out = []
    for item in chosen:
        if isinstance(item, Column):
            out.append(item)
        elif item in known:
            out.append(known[item])
        else:
            raise ConfigError(f"the grid has no column {item!r}; columns: {', '.join(known)}")
    if not out:
        raise ConfigError("the grid needs at least one column")
    if len({c.label for c in out}) != len(out):
        raise ConfigError("each column may be shown once")
    return out
PIN_LIMIT = 200_000  # a select-all of more rows is kept as "every row", not as ids


class SellersDataGrid(StreamingDataGrid):
    """A StreamingDataGrid answered by a Viewport; see the module docstring for why."""

    selections: list[dict[str, int]]  # DataGrid's trait (ipydatagrid is untyped): r1, c1, r2, c2

    def __init__(self, viewport: Viewport, *, lock: threading.RLock | None = None,
                 **kwargs: Any) -> None:
        self._lock = lock or threading.RLock()  # shared with the owning SellersGrid
        self.viewport = viewport
        # Called before the viewport is read (SellersGrid rebuilds and re-selects there)
        # and with the header's transforms; both set by the owner.
        self.prepare: Callable[[], None] = lambda: None
        self.on_transforms: Callable[[list[dict[str, Any]]], None] = viewport.set_transforms
        self.on_error: Callable[[str, BaseException], None] = _raise
        self.after_reply: Callable[[], None] = lambda: None  # rows sent (profiles may start)
        self.before_reply: Callable[[int, int], None] = lambda first, last: None
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
        self.before_reply(first, last)  # the row colour for these rows goes first
        serialized, buffers = self._serialize_helper(page)
        reply = {"event_type": "data-reply", "value": serialized, "r1": first, "r2": last,
                 "c1": 0, "c2": len(self.viewport.columns) - 1}
        self.send(reply, buffers)
        self.replies += 1
        self._last_range = (first, last)
        self.after_reply()
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


class SellersGrid(GridActions, GridLayout, widgets.VBox):
    """The sellers grid with its toolbar, filters, status line and detail panel."""

    def __init__(
        self,
        wb: Workbench,
        *,
        height: str = "440px",
        show_ids: bool = False,
        confirm_delete_above: int = 20,
        columns: Sequence[Column | str] | None = None,
        debounce_ms: int = 40,
        profiles: bool = True,
        state: Mapping[str, Any] | None = None,
    ) -> None:
        state = check_state(state) if state is not None else None
        self.wb = wb
        self._lock = threading.RLock()  # see _serialized
        self.confirm_delete_above = confirm_delete_above
        if state is not None and state.get("columns"):
            columns = state["columns"]
        chosen = _columns(columns) if columns else [
            c for c in COLUMNS if show_ids or c.label != "Id"]
        self.viewport = Viewport(wb.store, columns=chosen)
        self.viewport.on_ready = self._rows_read
        self._ranges: list[tuple[int, int]] = []  # the selection, merged
        self._pinned: pa.Array | str | None = None  # selected ids kept across a refresh
        self._events = 0
        self._detail_id: str | None = None
        self._error_what: str | None = None  # what the error shown is about
        self.palette = LIGHT
        self._colour_shown = [c.label for c in chosen]  # what the row colour may read
        self._colour_after: list[str] | None = None  # ... once the new schema is asked for
        self.tints = RowTints(self.viewport, wb.store)
        self.authors = AuthorLookup(wb.client, self._author_known)  # the detail's author
        self._build_controls()
        self.datagrid = self._build_datagrid(chosen, height, debounce_ms)
        # Right after the grid, so the grid's view exists when the painter's renders.
        self.painter = GridPainter(self.datagrid)
        self.painter.on_msg(self._on_hands)
        self.profiles = ProfileStrip(self.viewport, self._lock, on_pick=self._picked,
                                     enabled=profiles)
        self.profiles.widths = dict(self.datagrid.column_widths)
        self.profiles.on_error = self._show_error
        self.datagrid.observe(self._on_widths, "column_widths")
        body = widgets.VBox([self.profiles, self.datagrid, self.painter],
                            layout=widgets.Layout(width="100%"))
        super().__init__([self.toolbar, self.actions_bar, self.column_bar, self.message_bar,
                          self.status_line, body, self.detail])
        self.add_class("sellerbench-grid")
        self._update_status()
        self._show_detail()
        self.profiles.refresh(deferred=True)  # after the first rows are answered
        self._closed = False
        self.watcher = CacheWatcher(wb.store, self._external_change, interval=WATCH_INTERVAL_S)
        wb.subscribe(self._on_event)
        if state is not None:
            self.state = state
        self.watcher.start()

    # -- building ------------------------------------------------------------------

    def _button(self, label: str, name: str, action: Callable[[], Any], tip: str,
                style: str = "") -> widgets.Button:
        button = widgets.Button(description=label, tooltip=tip, button_style=style,
                                layout=widgets.Layout(width="auto"))
        button.add_class(f"sellerbench-{name}")
        button.on_click(lambda _b: self._guard(label.lower(), action))
        return button

    def _build_controls(self) -> None:
        # Text boxes whose Enter/button sends the text typed with it (actionbox.py): an
        # action never reads a value the browser has not finished sending.
        self.search = ActionBox(
            placeholder="search name, id or platform id ⏎", width="230px",
            on_submit=lambda text: self._guard("search", lambda: self.set_search(text)),
            on_escape=lambda: self._guard("search", lambda: self.set_search("")))
        self.search.add_class("sellerbench-search")
        self.where_box = ActionBox(
            placeholder="where: SQL over the sellers, e.g. times_seen >= 3 ⏎", width="330px",
            button="Apply", hint="one SQL predicate over the visible_sellers columns",
            on_submit=lambda text: self._guard("filter", lambda: self.set_where(text)),
            on_escape=lambda: self._guard("filter", lambda: self.set_where("")))
        self.where_box.add_class("sellerbench-where")
        self.rename_text = ActionBox(
            placeholder="new name ⏎", width="180px", button="Rename",
            hint="rename the one selected seller to this name",
            on_submit=lambda text: self._guard("rename", lambda: self.rename_selected(text)))
        self.rename_text.add_class("sellerbench-rename")
        self.flagged_filter = widgets.Dropdown(
            options=[("All sellers", "all"), ("Flagged", "flagged"),
                     ("Not flagged", "not flagged"), ("Pending changes", "pending")],
            value="all", layout=widgets.Layout(width="150px"))
        self.flagged_filter.observe(
            lambda c: self._guard("filter", lambda: self.set_flagged_filter(c["new"])), "value")
        self.buttons = {
            "flag": self._button("Flag", "flag", lambda: self.flag_selected(True),
                                 "flag the selected sellers (or right-drag over rows)", "danger"),
            "unflag": self._button("Unflag", "unflag", lambda: self.flag_selected(False),
                                   "unflag the selected sellers"),
            "delete": self._button("Delete", "delete", self._delete_clicked,
                                   "delete the selected sellers (Delete key; Undo brings back)"),
            "undo": self._button("Undo", "undo", self.undo,
                                 "take back the latest change (Ctrl+Z in the grid)"),
            "sync": self._button("Sync", "sync", self.sync, "push changes, pull from the API"),
            "all": self._button("Select all", "select-all", self.select_all,
                                "select every row shown (Ctrl+A in the grid)"),
            "none": self._button("Clear", "clear", self.clear_selection, "select nothing"),
            "copy": self._button("Copy", "copy", self.copy_selection,
                                 f"copy the selected sellers with a header row and their ids "
                                 f"(Ctrl+C in the grid; up to {COPY_LIMIT:,})"),
            "columns": self._button("Columns", "columns", self._toggle_column_bar,
                                    "choose the columns shown"),
        }
        b = self.buttons
        row = widgets.Layout(flex_flow="row wrap", align_items="center")
        self.toolbar = widgets.HBox(
            [self.search, self.flagged_filter, self.where_box, b["columns"]], layout=row)
        self.actions_bar = widgets.HBox(
            [b["all"], b["none"], b["copy"], b["flag"], b["unflag"], self.rename_text, b["delete"],
             b["undo"], b["sync"]], layout=row)
        self.column_toggles = {
            c.label: widgets.ToggleButton(description=c.label,
                                          value=c.label in self.viewport._by_label,
                                          layout=widgets.Layout(width="auto"))
            for c in COLUMNS}
        for label, toggle in self.column_toggles.items():
            toggle.add_class("sellerbench-column-toggle")
            toggle.observe(lambda c, label=label: self._guard(
                "choose the columns", lambda: self._toggle_column(label, c["new"])), "value")
        self.column_bar = widgets.HBox(list(self.column_toggles.values()),
                                       layout=widgets.Layout(display="none", **_WRAP))
        self.confirm_text = widgets.HTML()
        yes = widgets.Button(description="Delete them", button_style="danger")
        yes.add_class("sellerbench-confirm")
        yes.on_click(lambda _b: self._guard("delete", lambda: self.delete_selected(confirm=True)))
        no = widgets.Button(description="Cancel")
        no.on_click(lambda _b: self._hide_confirm())
        self.confirm_bar = widgets.HBox([self.confirm_text, yes, no],
                                        layout=widgets.Layout(display="none"))
        self.message = widgets.HTML(layout=widgets.Layout(overflow="hidden"))
        self.message.add_class("sellerbench-message")
        # One line that always takes its height: a message or a question never moves the
        # grid down, and a new message replaces the last one. The question (Delete?) takes
        # the whole line while it is asked: the message steps aside, never squeezing it.
        self.message_bar = widgets.HBox(
            [self.message, self.confirm_bar],
            layout=widgets.Layout(height="32px", align_items="center", overflow="hidden"))
        self.status_line = widgets.HTML()
        self.status_line.add_class("sellerbench-status")
        # Below the grid, full width, as tall as its content: every field in sight, no
        # inner scroll (the grid above it never moves).
        self.detail = widgets.HTML(layout=widgets.Layout(
            width="100%", min_height="40px", padding="4px 0 0 0"))
        self.detail.add_class("sellerbench-detail")

    def _build_datagrid(self, columns: Sequence[Column], height: str,
                        debounce_ms: int) -> SellersDataGrid:
        palette = self.palette
        grid = SellersDataGrid(
            self.viewport,
            lock=self._lock,
            debounce_delay=debounce_ms,
            default_renderer=TextRenderer(
                background_color=VegaExpr(palette.row_colour([c.label for c in columns])),
                text_color=palette.text),
            header_renderer=TextRenderer(background_color=palette.header_background,
                                         text_color=palette.header_text,
                                         text_value=VegaExpr(sort_header_text(
                                             self.viewport.sort_keys))),
            grid_style=palette.grid_style(),
            column_widths=self._widths(columns),
            base_row_header_size=72,
            layout=widgets.Layout(height=height, flex="1 1 auto"),
        )
        grid.prepare = self._prepare
        grid.after_reply = self._after_reply
        grid.before_reply = self._before_reply
        grid.on_transforms = self._header_transforms
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
            # On its worker, once the browser's rows are answered: the reply goes first.
            self.profiles.refresh(deferred=True)
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
        """Show only sellers whose name contains ``text`` (case-insensitive) or whose id or
        platform id is ``text``; "" shows all."""
        with self._lock:
            self.search.value = text
            self._reorder(lambda: self.viewport.set_search(text))

    def set_where(self, where: str) -> None:
        """Show only sellers matching one SQL predicate over the ``visible_sellers``
        columns (the where box); "" removes it. Checked against the cache first: a bad
        predicate is ConfigError naming what is wrong, and the grid keeps its rows."""
        with self._lock:
            self._reorder(lambda: self.viewport.set_where(where))
            self.where_box.value = self.viewport.where_text or ""

    def pick(self, label: str, index: int | str) -> None:
        """Filter to bar or value ``index`` of column ``label``'s profile (as a click)."""
        self.profiles.wait()
        self.profiles.pick(label, index)

    def clear_picks(self) -> None:
        """Remove every profile filter."""
        for label in list(self.viewport.picks):
            self._picked(label, None)

    def _picked(self, label: str, clause: str | None) -> None:
        self._guard("filter", lambda: self._reorder(lambda: self.viewport.set_pick(label, clause)))
        self.profiles.picked = list(self.viewport.picks)

    @property
    @_serialized
    def where_sql(self) -> str:
        """Everything that filters the grid (search, flagged filter, header filters,
        profile clicks, where box) as one SQL predicate over the ``visible_sellers``
        columns: ``wb.sellers(where=grid.where_sql)`` gives exactly the rows shown."""
        return self.viewport.predicate()

    @property
    def selection(self) -> list[str]:
        """The selected sellers' ids (grid order); assign ids to select those sellers."""
        return self.selected_ids

    @selection.setter
    def selection(self, ids: Iterable[str]) -> None:
        self.select_ids(list(ids))

    @property
    def columns(self) -> list[str]:
        """The labels of the columns shown; assign labels to choose them (and their order)."""
        return [c.label for c in self.viewport.columns]

    @columns.setter
    def columns(self, labels: Sequence[str | Column]) -> None:
        chosen = _columns(labels)
        with self._lock:
            self._pin()
            known = dict(self.datagrid.column_widths)  # a width the analyst set stays
            before = self.columns
            self.viewport.set_columns(chosen)
            widths = self._widths(chosen)
            self.datagrid.column_widths = {k: known.get(k, v) for k, v in widths.items()}
            self._colours_for(before)  # before the new schema (layout.py)
            self.datagrid.data = self.viewport.empty_frame()  # the browser's new schema
            self._show_sort()  # header filters of shown columns, arrows on sort keys
            self._prepare()
            self._update_status()  # the widths' sample may have read the rows already
            self.datagrid.tick()
            self.profiles.widths = dict(self.datagrid.column_widths)
            self.profiles.picked = list(self.viewport.picks)
            self.profiles.refresh()
            for label, toggle in self.column_toggles.items():
                toggle.value = label in self.viewport._by_label

    def _widths(self, columns: Sequence[Column]) -> dict[str, int]:
        """Column widths from the first rows shown (the grid has not drawn yet)."""
        try:
            sample = self.viewport.sample()
        except SellerbenchError:
            sample = None
        return column_widths(columns, sample)

    def _toggle_column_bar(self) -> None:
        shown = self.column_bar.layout.display != "none"
        self.column_bar.layout.display = "none" if shown else "flex"

    def _toggle_column(self, label: str, shown: bool) -> None:
        labels = self.columns
        if shown == (label in labels):
            return
        if shown:
            order = [c.label for c in COLUMNS]
            labels = sorted([*labels, label], key=order.index)
        else:
            labels = [x for x in labels if x != label]
        self.columns = labels

    def set_flagged_filter(self, choice: str) -> None:
        """``all``, ``flagged``, ``not flagged`` or ``pending``."""
        if choice not in FLAGGED_CHOICES:
            raise SellerbenchError(f"flagged filter must be one of {FLAGGED_CHOICES}")
        if self.flagged_filter.value != choice:
            self.flagged_filter.value = choice
            return
        self._reorder(lambda: self.viewport.set_flagged(choice))

    # -- live: changes from other cells ------------------------------------------------------

    def _on_event(self, event: str) -> None:
        """A sync, push or mutation happened (here or in another cell): show it."""
        with self._lock:
            self._events += 1
            self.authors.forget()
            # A ChangeEvent names the sellers it touched (None: any row may have changed).
            self._guard("refresh", lambda: self.refresh(getattr(event, "sellers", None)))
        if not getattr(self, "_closed", True):
            self.watcher.told()  # the watcher need not tell it again

    def _external_change(self) -> None:
        """The watcher saw another process change the cache: show it, and say so."""
        if getattr(self, "_closed", True):
            return
        with self._lock:
            self._guard("refresh", lambda: self.refresh())
            self._guard("refresh", self._prepare)
            self._update_status()
            self._show_info("The cache was changed outside this grid (a sync in a terminal "
                            "or another kernel): showing it.")

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
        keys = self.viewport.sort_keys
        if len(keys) > 1:  # as the header's numbered arrows say
            parts.append("sorted by " + ", then ".join(f"{k} {ARROWS[d]}" for k, d in keys))
        selected = sum(b - a + 1 for a, b in self._ranges)
        if selected:
            parts.append(f"{selected:,} selected")
        text = " · ".join(parts)
        spinner = " <b>⟳ syncing…</b>" if syncing else ""
        self.status_line.value = f"<span class='sellerbench-status-text'>{text}</span>{spinner}"

    def _rows_read(self) -> None:
        """The snapshot was read in the background (on that read's thread, so never under
        the grid's lock): the browser asks for its rows again, which takes it in, and the
        profiles follow. Before the widgets exist, their first reads take it in."""
        datagrid, profiles = getattr(self, "datagrid", None), getattr(self, "profiles", None)
        if getattr(self, "_closed", True) or datagrid is None or profiles is None:
            return
        datagrid.tick()
        profiles.refresh()

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop following the workbench and close every widget of the grid."""
        if not getattr(self, "_closed", True):  # True: __init__ failed before its widgets
            self._closed = True
            self.watcher.stop()
            self.authors.close()
            self.wb.unsubscribe(self._on_event)
            self.profiles.enabled = False
            self.viewport.invalidate()  # a read under way is interrupted
            for child in (self.datagrid, self.painter, self.profiles, self.detail,
                          self.status_line, self.message, self.confirm_bar, self.message_bar,
                          self.toolbar, self.actions_bar, self.column_bar, self.search,
                          self.where_box, self.rename_text):
                child.close()
        super().close()


