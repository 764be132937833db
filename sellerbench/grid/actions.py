"""The sellers grid's actions: toolbar buttons, the analyst's hands, messages.

``GridActions`` is mixed into ``SellersGrid`` (``grid.py``); it holds what the grid
*does* (flag, rename, delete, undo, sync, and the right-drag, hover and keys the
browser reports through the ``GridPainter``), while ``grid.py`` holds what it shows.

Every action goes through the public workbench methods (``wb.flag``, ``wb.rename``,
``wb.delete``, ``wb.undo``, ``wb.sync``), never under the grid's lock: the workbench
tells its listeners (the grid among them) about the change, and a listener takes the
grid's lock, so holding it around a workbench call could deadlock with another thread.
Every entry point may run on any thread (ipykernel 7 runs widget messages on a
subshell thread while a cell runs on the main one).
"""

from __future__ import annotations

import csv
import functools
import html
import io
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import MutationError, SellerbenchError
from .viewport import Viewport, runs_of

if TYPE_CHECKING:
    from ..workbench import Workbench
    from .authors import AuthorLookup

__all__ = ["COPY_LIMIT", "GridActions", "selection_tsv"]

COPY_LIMIT = 10_000  # sellers Copy / Ctrl+C put on the clipboard; more: wb.export
# Errors about the filter: a later filter that works makes them untrue.
_FILTER_ERRORS = {"filter", "search", "sort or filter", "sort", "show these rows", "refresh"}


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run under the grid's lock: with ipykernel 7 and JupyterLab 4.4+, widget messages
    (the browser's data-requests, selections, clicks) may be handled on a kernel
    *subshell* thread while a cell or a button handler runs on the main thread."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked



class GridActions:
    """Actions of a SellersGrid (see the module docstring); needs its widgets and lock."""

    if TYPE_CHECKING:  # what SellersGrid provides
        wb: Workbench
        viewport: Viewport
        painter: Any
        message: Any
        confirm_bar: Any
        confirm_text: Any
        rename_text: Any
        confirm_delete_above: int
        _lock: threading.RLock
        _events: int

        @property
        def selected_ids(self) -> list[str]: ...

        @property
        def selected_count(self) -> int: ...

        def refresh(self, sellers: Iterable[str] | None = None) -> None: ...

        def _prepare(self) -> None: ...

        def _update_status(self, *, syncing: bool = False) -> None: ...

        def select_all(self) -> None: ...

        def selected_frame(self) -> Any: ...

        def header_clicked(self, label: str, add: bool = False) -> None: ...

        def set_theme(self, variables: Any = None, light: bool | None = None) -> None: ...

        def set_widths(self, widths: Mapping[str, Any]) -> None: ...

        _ranges: list[tuple[int, int]]
        _error_what: str | None
        detail: Any
        authors: AuthorLookup
        _detail_id: str | None

    # -- the detail panel ----------------------------------------------------------------

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
        self.detail.value = (_detail_html(info, self.authors.line(seller_id)) if info
                             else "<i>This seller is gone.</i>")

    def _author_known(self, seller_id: str) -> None:
        """The server told who last changed ``seller_id`` (on the lookup's thread): the
        panel shows it if it still shows that seller."""
        with self._lock:
            if not getattr(self, "_closed", True) and self._detail_id == seller_id:
                self._show_detail_id(seller_id)

    # -- actions --------------------------------------------------------------------

    def _require_selection(self, verb: str) -> list[str]:
        ids = self.selected_ids
        if not ids:
            raise MutationError(f"select the sellers to {verb} first (click, shift-click or drag)")
        return ids

    @_serialized
    def _acted(self, events_before: int, text: str) -> None:
        """After an action: re-read now and say what happened."""
        if self._events == events_before:  # the workbench did not tell us: look ourselves
            self.refresh()
        self._prepare()  # the analyst is looking at this grid: re-read now, counts included
        self._show_info(text)

    def flag_selected(self, flagged: bool = True) -> Sequence[str]:
        """Flag (or unflag) the selected sellers through the mutation queue (all of
        them: by the grid's filter, without listing their ids)."""
        every = self._all_selected()
        ids = None if every else self._require_selection("flag" if flagged else "unflag")
        with self._lock:
            self._prepare()
            asked = self.selected_count
            changing = int((self.viewport.flags(self._ranges) != flagged).sum())
        before = self._events
        if ids is None:
            done = self.wb.flag(flagged=flagged, where=self.viewport.predicate())
        else:
            done = self.wb.flag(ids, flagged)
        self._acted(before, _flag_message(flagged, changing, asked))
        return done

    def _all_selected(self) -> bool:
        """Every row under the grid's filter is selected (select-all, Ctrl+A)."""
        count = self.selected_count
        return count > 0 and count == self.viewport.row_count

    def rename_selected(self, name: str) -> str:
        """Rename the one selected seller."""
        ids = self._require_selection("rename")
        if len(ids) != 1:
            raise MutationError(f"select exactly one seller to rename ({len(ids):,} selected)")
        before = self._events
        done = self.wb.rename(ids[0], name)
        self._acted(before, f"Renamed to {html.escape(name.strip())!s}.")
        self.rename_text.value = ""  # the box: the name is done with
        return done

    def _delete_clicked(self) -> None:
        if self.selected_count > self.confirm_delete_above:
            self.ask_delete()
            return
        self.delete_selected(confirm=True)

    def delete_selected(self, *, confirm: bool = False) -> Sequence[str]:
        """Delete the selected sellers; above ``confirm_delete_above`` needs ``confirm=True``."""
        self._hide_confirm()
        count = self.selected_count
        if not count:
            self._require_selection("delete")
        if count > self.confirm_delete_above and not confirm:
            raise MutationError(f"deleting {count:,} sellers needs confirmation: "
                                f"delete_selected(confirm=True)")
        before = self._events
        if self._all_selected():
            done = self.wb.delete(where=self.viewport.predicate())
        else:
            done = self.wb.delete(self._require_selection("delete"))
        self._acted(before, f"Deleted {_count(len(done), 'seller')} (Undo brings them back).")
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
        self.message.layout.display = None

    # -- messages, status, detail ----------------------------------------------------------

    def _guard(self, what: str, action: Callable[[], Any]) -> Any:
        """Run a UI action; any error becomes a readable message in the widget, and an
        error shown about the same thing goes once the action works."""
        try:
            result = action()
        except Exception as exc:
            self._show_error(what, exc)
            return None
        if self._error_what == what or (what in _FILTER_ERRORS
                                        and self._error_what in _FILTER_ERRORS):
            self._clear_message()
        return result

    def _show_error(self, what: str, exc: BaseException) -> None:
        kind = "" if isinstance(exc, SellerbenchError) else f"{type(exc).__name__}: "
        text = html.escape(kind + str(exc))
        self.message.value = (f"<span class='sellerbench-error' title='{text}'>⚠ Could not "
                              f"{html.escape(what)}: {text}</span>")
        self._error_what = what

    def _show_info(self, text: str) -> None:
        self.message.value = f"<span class='sellerbench-info'>{text}</span>"
        self._error_what = None

    def _clear_message(self) -> None:
        self.message.value = ""
        self._error_what = None

    # -- the clipboard ----------------------------------------------------------------

    def copy_selection(self) -> str:
        """Put the selected sellers on the browser's clipboard as tab-separated text
        (Excel-ready: a header row, the id first, then the columns shown), up to
        ``COPY_LIMIT``; returns the text. More: MutationError pointing to ``wb.export``."""
        count = self.selected_count
        if not count:
            raise MutationError("select the sellers to copy first (click, shift-click or drag)")
        if count > COPY_LIMIT:
            raise MutationError(
                f"{count:,} sellers are selected; Copy takes up to {COPY_LIMIT:,}. Write them "
                f"to a file instead: wb.export('sellers.csv', where=grid.where_sql) writes "
                f"every row shown")
        text = selection_tsv(self.selected_frame())
        self.painter.send({"event": "clipboard", "text": text})
        self._show_info(f"Copied {_count(count, 'seller')} (tab-separated, with a header "
                        f"row and the id: paste into Excel or a sheet).")
        return text

    # -- the analyst's hands: right-drag, hover, keys (sent by the GridPainter) ----------

    def _on_hands(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        event = content.get("event")
        if event == "paint":
            rows = [int(r) for r in content.get("rows") or [] if isinstance(r, int | float)]
            self._guard("flag", lambda: self.paint_rows(rows, content.get("first")))
            self.painter.send({"event": "painted"})
        elif event == "copy-failed":  # the browser refused the clipboard: say so
            why = str(content.get("why") or "")[:200]
            self._show_error("copy", MutationError(
                f"the browser did not let the grid write the clipboard ({why}); select "
                f"in the grid and press Ctrl+C or click Copy again"))
        elif event == "sort":
            label = str(content.get("column"))
            self._guard("sort", lambda: self.header_clicked(label, bool(content.get("add"))))
        elif event == "widths":
            widths = content.get("widths")
            if isinstance(widths, dict):
                self._guard("resize", lambda: self.set_widths(widths))
        elif event == "theme":
            variables = content.get("vars")
            light = content.get("light")
            self._guard("follow the theme", lambda: self.set_theme(
                variables if isinstance(variables, dict) else None,
                light if isinstance(light, bool) else None))
        elif event == "hover":
            row = content.get("row")
            if not isinstance(row, int | float):
                return
            text = self._guard("show the seller", lambda: self.hover_html(int(row)))
            self.painter.send({"event": "hover", "row": row, "html": text or ""})
        elif event == "key":
            key = str(content.get("key"))
            action = {"select-all": self.select_all, "undo": self.undo,
                      "delete": self.ask_delete, "copy": self.copy_selection}.get(key)
            if action is not None:
                self._guard(key.replace("-", " "), action)

    def paint_rows(self, rows: list[int], first: int | None = None) -> list[str]:
        """Right-button drag over ``rows``: flag them, or unflag them when the drag started
        on a flagged row (``first``, default the lowest row). Queued as a Flag click is."""
        if not rows:
            return []
        with self._lock:
            self._prepare()
            count = self.viewport.row_count
            rows = sorted({r for r in rows if 0 <= r < count})
            if not rows:
                return []
            start = first if isinstance(first, int) and 0 <= first < count else rows[0]
            started_flagged = self.viewport.flagged_at(start)
            painted = runs_of(np.array(rows, dtype=np.int64))
            ids = self.viewport.ids(painted)
            flagged = not started_flagged
            changing = int((self.viewport.flags(painted) != flagged).sum())
        before = self._events
        done = list(self.wb.flag(ids, flagged))
        self._acted(before, _flag_message(flagged, changing, len(ids),
                                          " (right-drag)"))
        return done

    def hover_html(self, row: int) -> str:
        """The details of the seller on ``row`` as the hover popup shows them."""
        with self._lock:
            self._prepare()
            if not 0 <= row < self.viewport.row_count:
                return ""
            ids = self.viewport.ids([(row, row)])
            info = self.viewport.detail(ids[0]) if ids else None
            if info:  # what the grid shows for the row, whatever the cache said
                info["seller"]["flagged"] = self.viewport.flagged_at(row)
                shown = self.viewport.page(row, row)
                if "Pending" in shown:
                    info["shown_pending"] = str(shown["Pending"].iloc[0])
        return _hover_html(info) if info else ""

    def ask_delete(self) -> None:
        """The Delete key: ask before deleting the selection, whatever its size."""
        count = self.selected_count
        if not count:
            raise MutationError("select the sellers to delete first (click, shift-click or drag)")
        self.confirm_text.value = (f"<b>Delete {_count(count, 'seller')}?</b> "
                                   f"(Undo brings them back.)&nbsp;")
        self.message.layout.display = "none"  # the question takes the whole line
        self.confirm_bar.layout.display = "flex"


# -- formatting ----------------------------------------------------------------------------


def _flag_message(flagged: bool, changed: int, asked: int, how: str = "") -> str:
    verb = "Flagged" if flagged else "Unflagged"
    already = asked - changed
    tail = (f" ({already:,} already {'flagged' if flagged else 'not flagged'})"
            if already > 0 else "")
    return f"{verb} {_count(changed, 'seller')}{tail}{how}."


def selection_tsv(frame: Any) -> str:
    """Rows as tab-separated text with a header row, the id first; a flag as yes/no;
    fields holding a tab, newline or quote quoted as Excel reads them."""
    columns = ["id", *(c for c in frame.columns if c != "id")]
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(columns)
    for row in frame[columns].itertuples(index=False):
        writer.writerow(["no" if (c == "Flagged" and v == "") else v
                         for c, v in zip(columns, row, strict=True)])
    return out.getvalue()


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


def _detail_html(info: dict[str, Any], author: str = "") -> str:
    """Every field in two columns of name/value pairs, each value on one line (an id is
    never wrapped), then the runs and pending changes: the panel has a fixed height."""
    seller = info["seller"]
    items = list(seller.items())
    half = (len(items) + 1) // 2
    th = "style='text-align:left;padding:0 8px 0 0;font-weight:600;white-space:nowrap'"
    td = "style='white-space:nowrap;padding:0 16px 0 0'"

    def table(part: list[tuple[str, Any]]) -> str:
        return "<table>" + "".join(f"<tr><th {th}>{html.escape(k)}</th><td {td}>{_cell(v)}</td>"
                                   f"</tr>" for k, v in part) + "</table>"

    out = [f"<b>{_cell(seller.get('display_name'))}</b>",
           f"<div style='display:flex;gap:12px;font-size:12px'>{table(items[:half])}"
           f"{table(items[half:])}</div>"]
    if info["runs"]:
        runs = "; ".join(f"{_cell(r['seen'])}: <b>{_cell(r['name'])}</b> "
                         f"({_cell(r['status'])}, started {_cell(r['started_at'])})"
                         for r in info["runs"])
        out.append(f"<div style='font-size:12px'><b>Runs that saw it:</b> {runs}</div>")
    else:
        out.append("<div style='font-size:12px'><i>No cached run saw it.</i></div>")
    if info["pending"]:
        changes = "; ".join(f"{_cell(m.get('kind'))} {_change(m)}" for m in info["pending"])
        out.append(f"<div style='font-size:12px'><b>Pending changes:</b> {changes}</div>")
    if author:  # who last changed it on the server (authors.py)
        out.append(f"<div class='sellerbench-author' style='font-size:12px'>{author}</div>")
    return "".join(out)


def _hover_html(info: dict[str, Any]) -> str:
    """A compact card: the fields an analyst checks first, each on one line."""
    seller = info["seller"]
    fields = ["display_name", "id", "platform", "platform_id", "times_seen", "flagged",
              "first_seen_run_id", "last_seen_run_id", "updated_at"]
    rows = "".join(f"<tr><th style='text-align:left;padding-right:8px;font-weight:600'>"
                   f"{html.escape(k)}</th><td>{_cell(seller.get(k))}</td></tr>"
                   for k in fields if k in seller)
    pending = "".join(f"<div>pending: {_cell(m.get('kind'))} {_change(m)}</div>"
                      for m in info["pending"])
    if not pending and info.get("shown_pending"):
        pending = f"<div>pending: {_cell(info['shown_pending'])}</div>"
    return f"<table>{rows}</table>{pending}"


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        value = value.strftime("%Y-%m-%d %H:%M:%S")
    return html.escape("" if value is None else str(value))


def _change(mutation: dict[str, Any]) -> str:
    for field in ("flagged", "name", "payload"):
        if mutation.get(field) is not None:
            return f"→ {html.escape(str(mutation[field]))}"
    return ""

