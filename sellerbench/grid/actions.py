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

import functools
import html
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import MutationError, SellerbenchError
from .viewport import Viewport, runs_of

if TYPE_CHECKING:
    from ..workbench import Workbench

__all__ = ["GridActions"]


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

    def flag_selected(self, flagged: bool = True) -> Sequence[str]:
        """Flag (or unflag) the selected sellers through the mutation queue (all of
        them: by the grid's filter, without listing their ids)."""
        before = self._events
        if self._all_selected():
            done = self.wb.flag(flagged=flagged, where=self.viewport.predicate())
        else:
            done = self.wb.flag(self._require_selection("flag" if flagged else "unflag"),
                                flagged)
        verb = "Flagged" if flagged else "Unflagged"
        self._acted(before, f"{verb} {_count(len(done), 'seller')}.")
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

    # -- the analyst's hands: right-drag, hover, keys (sent by the GridPainter) ----------

    def _on_hands(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        event = content.get("event")
        if event == "paint":
            rows = [int(r) for r in content.get("rows") or [] if isinstance(r, int | float)]
            self._guard("flag", lambda: self.paint_rows(rows, content.get("first")))
            self.painter.send({"event": "painted"})
        elif event == "hover":
            row = content.get("row")
            if not isinstance(row, int | float):
                return
            text = self._guard("show the seller", lambda: self.hover_html(int(row)))
            self.painter.send({"event": "hover", "row": row, "html": text or ""})
        elif event == "key":
            key = str(content.get("key"))
            action = {"select-all": self.select_all, "undo": self.undo,
                      "delete": self.ask_delete}.get(key)
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
            ids = self.viewport.ids(runs_of(np.array(rows, dtype=np.int64)))
        flagged = not started_flagged
        before = self._events
        done = list(self.wb.flag(ids, flagged))
        verb = "Flagged" if flagged else "Unflagged"
        self._acted(before, f"{verb} {_count(len(ids), 'seller')} (right-drag).")
        return done

    def hover_html(self, row: int) -> str:
        """The details of the seller on ``row`` as the hover popup shows them."""
        with self._lock:
            self._prepare()
            if not 0 <= row < self.viewport.row_count:
                return ""
            ids = self.viewport.ids([(row, row)])
            info = self.viewport.detail(ids[0]) if ids else None
        return _hover_html(info) if info else ""

    def ask_delete(self) -> None:
        """The Delete key: ask before deleting the selection, whatever its size."""
        count = self.selected_count
        if not count:
            raise MutationError("select the sellers to delete first (click, shift-click or drag)")
        self.confirm_text.value = (f"<b>Delete {_count(count, 'seller')}?</b> "
                                   f"(Undo brings them back.)&nbsp;")
        self.confirm_bar.layout.display = "flex"


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

