"""Live progress of collection runs: the activity stream, with polling where it is not available.

``RunWatcher`` is the engine, testable without a browser: one control thread that owns all
state and talks to the workbench, plus one reader thread per streamed run that only parses
the server-sent events and hands them over through a queue.

- Each run is followed over ``GET /collection/runs/{id}/activity``. A dropped connection is
  reopened with ``Last-Event-ID`` set to the last event received, so the server replays
  what was missed; events whose id was already applied are dropped, so none is shown twice.
- Where the stream is not available (the server refuses it, or it keeps failing), the
  control thread polls ``GET /collection/runs/active`` every ``interval`` seconds instead.
- Sellers found by a run trigger an incremental ``wb.sync(progress=False)``, at most once
  per ``sync_every`` seconds while they keep coming and once more when the runs end.
- Everything stops when the watched runs end or ``close()`` is called: ``close()`` wakes
  blocked reads by shutting their sockets down and joins every thread it started.

``RunWatch`` (an ipywidgets box) and ``watch_text`` (the terminal) draw what it holds.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import httpx
import ipywidgets as widgets
from httpx_sse import EventSource

from ..errors import ApiError, NotFoundError, SellerbenchError
from ..schema import ACTIVE, FINISHED, RUN_COUNTERS

if TYPE_CHECKING:
    from ..api.client import ApiClient

__all__ = ["ACTIVE", "FINISHED", "Event", "RunState", "RunWatch", "RunWatcher", "watch_text"]

COUNTERS = RUN_COUNTERS
# Status codes meaning "this server does not serve the stream here": poll instead.
_NO_STREAM = (404, 405, 406, 501)


@dataclass(frozen=True)
class Event:
    """One server-sent event: its integer id, its type and its decoded JSON data."""

    id: int
    type: str
    data: dict[str, Any]


def read_events(response: httpx.Response) -> Iterator[Event]:
    """The events of a ``text/event-stream`` response, parsed by httpx-sse; comments
    (``: ping``) and events without data or an integer id are skipped.

    An event is dispatched only at the blank line that ends it, so one cut in half by a
    dropped connection is never half-applied: the replay after reconnecting brings it whole.
    """
    for sse in EventSource(response).iter_sse():
        if sse.data and sse.id.isdigit():
            yield Event(int(sse.id), sse.event, _decode(sse.data))


def _decode(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}


@dataclass
class RunState:
    """What the watcher knows about one run: its latest record and the events applied."""

    id: str
    record: dict[str, Any] = field(default_factory=dict)
    last_event_id: int | None = None
    event_ids: list[int] = field(default_factory=list)
    recent: deque[Event] = field(default_factory=lambda: deque(maxlen=200))
    new_sellers: int = 0
    duplicates_dropped: int = 0
    source: str = "stream"  # "stream" while its activity stream serves it, else "poll"
    reconnects: int = 0
    _clock: float = field(default_factory=time.monotonic)

    @property
    def status(self) -> str:
        return str(self.record.get("status") or "unknown")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def name(self) -> str:
        return str(self.record.get("name") or self.id[:8])

    def counter(self, key: str) -> int:
        value = self.record.get(key)
        return int(value) if isinstance(value, int | float) else 0

    def elapsed(self) -> float:
        """Seconds the run has been running: the server's figure, extrapolated while running."""
        base = float(self.record.get("duration_seconds") or 0.0)
        if self.status == "running":
            base += time.monotonic() - self._clock
        return base

    def update(self, fields: dict[str, Any]) -> None:
        known = {k: v for k, v in fields.items() if k in COUNTERS or k in _RECORD_KEYS}
        self.record.update(known)
        self._clock = time.monotonic()


_RECORD_KEYS = ("id", "name", "status", "category_ids", "started_at", "completed_at", "paused_at")


class RunWatcher:
    """Follow active runs (or one run) until they end or ``close()`` is called.

    ``on_update(watcher)`` is called from the watcher's thread after each batch of changes
    (at most ``redraw_every`` seconds apart while events stream in, and at the end).
    """

    def __init__(
        self,
        client: ApiClient | None,
        run_id: str | None = None,
        *,
        on_sellers: Callable[[], object] | None = None,
        interval: float = 2.0,
        sync_every: float = 2.0,
        sync_sellers: bool = True,
        stream: bool = True,
        max_stream_failures: int = 5,
        give_up_after: float = 120.0,
        redraw_every: float = 0.2,
        on_update: Callable[[RunWatcher], None] | None = None,
    ) -> None:
        if client is None:
            raise SellerbenchError(
                "watching runs needs the API; this workbench is offline (connect with an "
                "API url and token)"
            )
        self.client = client
        self.on_sellers = on_sellers  # called (on this thread) when runs found sellers
        self.run_id = run_id
        self.interval = interval
        self.sync_every = sync_every
        self.sync_sellers = sync_sellers
        self.use_stream = stream
        self.max_stream_failures = max_stream_failures
        self.give_up_after = give_up_after
        self.redraw_every = redraw_every
        self.on_update = on_update
        self.runs: dict[str, RunState] = {}
        if run_id is not None:  # there from the start, filled in by the first answer
            self.runs[run_id] = RunState(id=run_id, source="stream" if stream else "poll")
        self.errors: list[str] = []
        self.syncs = 0
        self.message = "starting"
        self._queue: queue.Queue[tuple[str, str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._readers: dict[str, threading.Thread] = {}  # the live reader of each run
        self._all_readers: list[threading.Thread] = []  # every reader started, to join
        self._idle = False  # watching all runs: the last poll found none active
        self._responses: dict[str, httpx.Response] = {}
        self._sync_due: float | None = None
        self._offline_since: float | None = None
        self._thread = threading.Thread(target=self._main, name="sellerbench-watch", daemon=True)

    def __repr__(self) -> str:
        state = "done" if self.done else "watching"
        return f"<RunWatcher {state} runs={list(self.runs)} {self.message!r}>"

    # -- public --------------------------------------------------------------------

    def start(self) -> RunWatcher:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the watched runs end (True) or ``timeout`` seconds pass (False)."""
        return self._done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop following, close the streams and join every thread started. Idempotent."""
        self._stop.set()
        self._shutdown_streams()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def events(self, run_id: str) -> list[int]:
        """The ids of the events applied for a run, in the order applied."""
        return list(self.runs[run_id].event_ids)

    def drop_stream(self, run_id: str) -> bool:
        """Cut the run's current stream connection, as a network fault would (for tests)."""
        with self._lock:
            response = self._responses.get(run_id)
        if response is None:
            return False
        _shutdown_socket(response)
        return True

    # -- the control thread ----------------------------------------------------------

    def _main(self) -> None:
        try:
            self._discover()
            last_poll = last_draw = time.monotonic()
            dirty = True
            while not self._stop.is_set():
                self._start_readers()
                if self._all_finished():
                    break
                dirty |= self._drain(self._next_wake(last_poll, last_draw if dirty else None))
                now = time.monotonic()
                if self._polling_due(now, last_poll):
                    self._poll()
                    last_poll, dirty = now, True
                if self._sync_due is not None and now >= self._sync_due:
                    self._sync()
                if dirty and now - last_draw >= self.redraw_every:
                    self._notify()
                    last_draw, dirty = now, False
                if self._gave_up():
                    break
            self._finish()
        except Exception as exc:  # the thread must never die silently
            self.errors.append(f"watcher stopped: {exc}")
            self.message = f"stopped: {exc}"
        finally:
            self._stop.set()
            self._shutdown_streams()
            for reader in self._all_readers:
                reader.join(10.0)
            self._done.set()
            self._notify()

    def _discover(self) -> None:
        client = self.client
        if self.run_id is not None:
            self.runs[self.run_id].update(dict(client.get_run(self.run_id)))
        else:
            for record in _runs_of(client.active_runs()):
                self.runs[record["id"]] = self._state_for(record)
        self._idle = not self.runs
        self.message = "no active run" if not self.runs else "watching"

    def _state_for(self, record: dict[str, Any]) -> RunState:
        state = RunState(id=record["id"], source="stream" if self.use_stream else "poll")
        state.update(record)
        return state

    def _start_readers(self) -> None:
        for run_id, state in self.runs.items():
            if state.source != "stream" or state.finished or run_id in self._readers:
                continue
            reader = threading.Thread(
                target=self._read_stream,
                args=(run_id, state.last_event_id),
                name=f"sellerbench-activity-{run_id[:8]}",
                daemon=True,
            )
            self._readers[run_id] = reader
            self._all_readers.append(reader)
            reader.start()

    def _all_finished(self) -> bool:
        """Every watched run ended (and, watching all runs, the last poll saw none active)."""
        if any(not s.finished for s in self.runs.values()) or self._readers:
            return False
        return self.run_id is not None or self._idle

    def _next_wake(self, last_poll: float, draw_pending_since: float | None) -> float:
        wake = last_poll + self.interval
        if self._sync_due is not None:
            wake = min(wake, self._sync_due)
        if draw_pending_since is not None:
            wake = min(wake, draw_pending_since + self.redraw_every)
        return max(0.01, wake - time.monotonic())

    def _polling_due(self, now: float, last_poll: float) -> bool:
        if now - last_poll < self.interval:
            return False
        # Streams carry everything for the runs they serve; poll for the others, and in
        # "all active runs" mode to notice runs started while watching.
        return self.run_id is None or any(
            s.source == "poll" and not s.finished for s in self.runs.values()
        )

    def _drain(self, timeout: float) -> bool:
        changed = False
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return False
        while True:
            changed |= self._apply(*item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return changed

    def _apply(self, kind: str, run_id: str, payload: Any) -> bool:
        state = self.runs[run_id]
        if kind == "event":
            return self._apply_event(state, payload)
        if kind == "fallback":  # the stream is not available: poll this run instead
            state.source = "poll"
            self._readers.pop(run_id, None)
            self.errors.append(f"run {run_id[:8]}: {payload}; polling instead")
            return True
        if kind == "reconnect":
            state.reconnects += 1
            return False
        if kind == "ended":
            self._readers.pop(run_id, None)
            if not state.finished:  # closed without its final status: ask the server
                self._refresh(state)
            return True
        return False

    def _apply_event(self, state: RunState, event: Event) -> bool:
        if state.last_event_id is not None and event.id <= state.last_event_id:
            state.duplicates_dropped += 1
            return False
        state.last_event_id = event.id
        state.event_ids.append(event.id)
        state.recent.append(event)
        if event.type == "progress":
            state.update(event.data)
        elif event.type == "status" and "status" in event.data:
            state.update(event.data)
            if state.finished:
                self._schedule_sync(final=True)
        elif event.type == "seller_found":
            state.new_sellers += 1 if event.data.get("new") else 0
            self._schedule_sync()
        return True

    def _refresh(self, state: RunState) -> None:
        try:
            before = state.counter("sellers_found")
            state.update(dict(self.client.get_run(state.id)))
            self._offline_since = None
        except NotFoundError:
            state.record["status"] = "failed"
            self.errors.append(f"run {state.id[:8]} no longer exists")
            return
        except ApiError as exc:
            self._offline(exc)
            return
        if state.counter("sellers_found") > before or state.finished:
            self._schedule_sync(final=state.finished)

    def _poll(self) -> None:
        try:
            active = {r["id"]: r for r in _runs_of(self.client.active_runs())}
            self._offline_since = None
        except ApiError as exc:
            self._offline(exc)
            return
        self._idle = not active
        for run_id, record in active.items():
            state = self.runs.get(run_id)
            if state is None and self.run_id is None:
                self.runs[run_id] = self._state_for(record)  # started while we watched
            elif state is not None and state.source == "poll":
                found = state.counter("sellers_found")
                state.update(record)
                if state.counter("sellers_found") > found:
                    self._schedule_sync()
        for state in self.runs.values():
            if state.source == "poll" and not state.finished and state.id not in active:
                self._refresh(state)  # it left the active list: fetch how it ended

    def _offline(self, exc: ApiError) -> None:
        if not exc.retryable:  # a refused token or a vanished run: waiting cannot help
            self.errors.append(str(exc))
            self.message = f"stopped: {exc}"
            self._stop.set()
            return
        if self._offline_since is None:
            self._offline_since = time.monotonic()
        self.message = f"server unreachable ({exc.__class__.__name__}); retrying"

    def _gave_up(self) -> bool:
        if self._offline_since is None:
            return False
        if time.monotonic() - self._offline_since < self.give_up_after:
            return False
        self.errors.append(f"gave up after {self.give_up_after:g} s without the server")
        self.message = "stopped: the server stayed unreachable"
        return True

    # -- seller sync (debounced) ------------------------------------------------------

    def _schedule_sync(self, *, final: bool = False) -> None:
        if not self.sync_sellers or self.on_sellers is None:
            return
        soon = time.monotonic() + (0.0 if final else self.sync_every)
        if self._sync_due is None or soon < self._sync_due:
            self._sync_due = soon

    def _sync(self) -> None:
        self._sync_due = None
        try:
            if self.on_sellers is not None:
                self.on_sellers()
            self.syncs += 1
        except Exception as exc:  # keep watching (a sync racing another one, offline...)
            self.errors.append(f"sync failed: {exc}")
            self._sync_due = time.monotonic() + max(self.sync_every, 1.0)

    def _finish(self) -> None:
        if self._sync_due is not None and not self._stop.is_set():
            self._sync()
        if self.message.startswith("stopped"):
            return
        if not self.runs:
            self.message = "no active run"
        elif all(s.finished for s in self.runs.values()):
            self.message = "all runs ended"
        else:
            self.message = "closed"

    def _notify(self) -> None:
        if self.on_update is None:
            return
        try:
            self.on_update(self)
        except Exception as exc:  # a drawing bug must not stop the watcher
            self.errors.append(f"drawing failed: {exc}")

    # -- reader threads ------------------------------------------------------------

    def _read_stream(self, run_id: str, last_id: int | None) -> None:
        failures = 0
        while not self._stop.is_set():
            outcome, last_id, got_events = self._read_once(run_id, last_id)
            if outcome in ("final", "stopped"):
                break
            if outcome == "unavailable":
                self._queue.put(("fallback", run_id, "the activity stream is not available"))
                return
            failures = 0 if got_events else failures + 1
            if failures >= self.max_stream_failures:
                self._queue.put(("fallback", run_id, f"the stream failed {failures} times"))
                return
            self._queue.put(("reconnect", run_id, last_id))
            self._stop.wait(min(0.1 * 2**failures, 2.0))
        self._queue.put(("ended", run_id, last_id))

    def _read_once(self, run_id: str, last_id: int | None) -> tuple[str, int | None, bool]:
        """One connection: (outcome, last event id received, whether any event arrived)."""
        headers = {"Accept": "text/event-stream", "Connection": "close"}
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        got = False
        try:
            with self.client.stream(
                "GET", f"/collection/runs/{run_id}/activity", headers=headers
            ) as response:
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    return "unavailable", last_id, got
                with self._lock:
                    self._responses[run_id] = response
                if self._stop.is_set():
                    return "stopped", last_id, got
                for event in read_events(response):
                    last_id, got = event.id, True
                    self._queue.put(("event", run_id, event))
                    if event.type == "status" and event.data.get("status") in FINISHED:
                        return "final", last_id, got
            return ("stopped" if self._stop.is_set() else "closed"), last_id, got
        except ApiError as exc:
            if exc.status in _NO_STREAM:
                return "unavailable", last_id, got
            if exc.status is not None and not exc.retryable:
                self.errors.append(f"run {run_id[:8]}: {exc}")
                return "unavailable", last_id, got
            return ("stopped" if self._stop.is_set() else "dropped"), last_id, got
        except (httpx.HTTPError, OSError):
            return ("stopped" if self._stop.is_set() else "dropped"), last_id, got
        finally:
            with self._lock:
                self._responses.pop(run_id, None)

    def _shutdown_streams(self) -> None:
        with self._lock:
            responses = list(self._responses.values())
        for response in responses:
            _shutdown_socket(response)


def _shutdown_socket(response: httpx.Response) -> None:
    """Wake a read blocked on this response: shutting the socket down makes recv() return."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _runs_of(payload: Any) -> list[dict[str, Any]]:
    """The run records of a RunList, an ``{"runs": [...]}`` answer, a list or a frame."""
    if hasattr(payload, "runs"):
        payload = payload.runs
    elif isinstance(payload, dict):
        payload = payload.get("runs", [])
    if hasattr(payload, "to_dict"):
        payload = payload.to_dict("records")
    return [dict(r) for r in payload]


# -- drawing ---------------------------------------------------------------------------


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes = f"{rest // 60:02d}:{rest % 60:02d}"
    return f"{hours}:{minutes}" if hours else minutes


def summary_line(state: RunState) -> str:
    """One line per run, for terminals and logs."""

    def pair(done: str, total: str) -> str:
        return f"{state.counter(done)}/{state.counter(total)}"

    return (
        f"{state.name} [{state.id[:8]}] {state.status:<9} "
        f"departments {pair('departments_completed', 'departments_total')}  "
        f"categories {pair('categories_completed', 'categories_total')}  "
        f"products {pair('products_searched', 'products_total')}  "
        f"sellers {state.counter('sellers_found')} (new {state.counter('sellers_new')})  "
        f"failed {state.counter('failed_items')}  {_clock(state.elapsed())}"
    )


def watch_text(
    client: ApiClient | None,
    run_id: str | None = None,
    *,
    on_sellers: Callable[[], object] | None = None,
    out: IO[str] | None = None,
    **options: Any,
) -> RunWatcher:
    """Print progress lines until the runs end (Ctrl+C stops watching, not the runs)."""
    out = out or sys.stdout
    printed: dict[str, tuple[str, float]] = {}

    def draw(watcher: RunWatcher) -> None:
        now = time.monotonic()
        for state in list(watcher.runs.values()):
            line = summary_line(state)
            last_line, last_at = printed.get(state.id, ("", 0.0))
            status_changed = last_line.split("] ")[-1][:9] != line.split("] ")[-1][:9]
            if line != last_line and (status_changed or now - last_at >= 1.0 or watcher.done):
                print(line, file=out, flush=True)
                printed[state.id] = (line, now)
        if watcher.done:
            print(watcher.message, file=out, flush=True)

    watcher = RunWatcher(client, run_id, on_sellers=on_sellers, on_update=draw, **options).start()
    try:
        while not watcher.wait(0.5):
            pass
    finally:
        watcher.close()
    return watcher


class RunWatch(widgets.VBox):
    """An ipywidgets box showing the live progress of active runs (or one run).

    ``close()`` stops the watcher and joins its threads; the engine is ``.watcher``;
    ``wait(timeout)`` blocks until the runs end. Drawing happens on the watcher's thread.
    """

    children: tuple[Any, ...]  # ipywidgets' trait, typed for the checker

    def __init__(
        self,
        client: ApiClient | None,
        run_id: str | None = None,
        *,
        on_sellers: Callable[[], object] | None = None,
        **options: Any,
    ) -> None:
        self.header = widgets.HTML("watching…")
        super().__init__([self.header])
        self._panels: dict[str, _Panel] = {}
        self._draw_lock = threading.Lock()
        self.watcher = RunWatcher(
            client, run_id, on_sellers=on_sellers, on_update=self._draw, **options
        )
        self.watcher.start()

    def _draw(self, watcher: RunWatcher) -> None:
        with self._draw_lock:
            for state in list(watcher.runs.values()):
                panel = self._panels.get(state.id)
                if panel is None:
                    panel = self._panels[state.id] = _Panel()
                    self.children = (*self.children, panel.box)
                panel.draw(state)
            errors = "".join(f"<br><small>{_escape(e)}</small>" for e in watcher.errors[-3:])
            self.header.value = f"<i>{_escape(watcher.message)}</i>{errors}"

    def wait(self, timeout: float | None = None) -> bool:
        return self.watcher.wait(timeout)

    def close(self) -> None:
        self.watcher.close()
        with self._draw_lock:
            for panel in self._panels.values():
                _close_all(panel.box)
            self.header.close()
        super().close()


class _Panel:
    """The widgets of one run: a title, three progress bars, counters and recent activity."""

    PHASES: dict[str, tuple[str, str]] = {  # noqa: RUF012
        "departments": ("departments_completed", "departments_total"),
        "categories": ("categories_completed", "categories_total"),
        "products": ("products_searched", "products_total"),
    }

    def __init__(self) -> None:
        self.title = widgets.HTML()
        self.bars = {
            phase: widgets.IntProgress(
                value=0, min=0, max=1, description=phase, layout=widgets.Layout(width="440px"),
                style={"description_width": "96px"},  # "departments" whole, bars aligned
            )
            for phase in self.PHASES
        }
        self.labels = {phase: widgets.Label() for phase in self.PHASES}
        rows = [widgets.HBox([self.bars[p], self.labels[p]]) for p in self.PHASES]
        self.counters = widgets.HTML()
        self.feed = widgets.HTML()
        self.box = widgets.VBox([self.title, *rows, self.counters, self.feed])

    def draw(self, state: RunState) -> None:
        self.title.value = (
            f"<b>{_escape(state.name)}</b> <code>{state.id[:8]}</code> — "
            f"<b>{state.status}</b> · {_clock(state.elapsed())} · via {state.source}"
        )
        style = {"completed": "success", "failed": "danger", "cancelled": "warning"}
        for phase, (done, total) in self.PHASES.items():
            bar = self.bars[phase]
            bar.max = max(state.counter(total), 1)
            bar.value = min(state.counter(done), bar.max)
            bar.bar_style = style.get(state.status, "info")
            self.labels[phase].value = f"{state.counter(done)} / {state.counter(total)}"
        self.counters.value = (
            f"sellers found <b>{state.counter('sellers_found')}</b> · "
            f"new <b>{state.counter('sellers_new')}</b> · "
            f"failed items {state.counter('failed_items')}"
        )
        lines = [_feed_line(e) for e in list(state.recent)[-12:] if e.type != "progress"]
        self.feed.value = "<br>".join(lines[-4:])


def _feed_line(event: Event) -> str:
    data = event.data
    if event.type == "seller_found":
        tag = "new seller" if data.get("new") else "seen again"
        return f"<small>#{event.id} {tag}: {_escape(str(data.get('display_name', '')))}</small>"
    if event.type == "status":
        return f"<small>#{event.id} status → {_escape(str(data.get('status')))}</small>"
    return f"<small>#{event.id} {event.type}: {_escape(str(data.get('message', '')))}</small>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _close_all(widget: Any) -> None:
    for child in getattr(widget, "children", ()):
        _close_all(child)
    widget.close()
