"""The notebook facade: ``sb.connect()`` and ``sb.demo()`` return a Workbench.

The Workbench orchestrates; the modules named after their noun do the work on the store
and client they are given and return what they did (``mutations``, ``push``, ``sync``,
``frames``, ``exports``, ``runs``). Data flows one way: API -> sync -> store ->
frames/grid/exports; no module below this one imports it.

**Threads.** Every method may be called from any thread at any time (a cell, the grid's
widget messages, a run watcher's sync). Cache writes are serialized per file by the
store (store.py, "Threads"); here:

- one pusher per workbench (``_Pusher``: a thread, a condition and a generation
  counter) runs every push of its file, one round at a time under the file's push lock.
  A change, ``wb.push()`` and ``wb.sync()`` ask for the next round and wait for it, the
  generation that holds their changes (an auto-push that finds a round running does not
  wait: the next round sends its change); ``close()`` stops the thread;
- pulls run one at a time per file (the file's sync lock); a sync asks for its push
  before it takes that lock;
- listeners are told after every lock is released (the sync lock, the push lock, the
  write lock), on the thread that made the change or on the pusher's, so a listener
  may call anything, ``wb.sync()`` and ``wb.push()`` included;
- per-call settings (retries, timeout) are arguments, never a change to the shared
  client: an auto-push sends through ``client.with_options(retries=0)``.

What a method returns is a plain pandas frame or a small report dataclass, never a live
database object. What goes wrong is a :class:`~sellerbench.errors.SellerbenchError`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import pandas as pd

from .cache import frames, sync
from .cache.filters import SellerFilter
from .cache.store import Store
from .changes import mutations, push
from .changes.result import Action
from .errors import ConfigError, MutationError, SellerbenchError
from .settings import AUTO_PUSH, PUSH, Secret, resolve, value

if TYPE_CHECKING:
    from .api.client import ApiClient
    from .cache.sync import SyncReport
    from .changes.push import Backoff, PushReport
    from .grid.widget import SellersGrid
    from .reports.exports import ExportReport
    from .reports.report import ReportOptions, ReportResult
    from .runs.watch import RunWatch

__all__ = ["ChangeEvent", "Workbench", "connect", "demo"]

log = logging.getLogger("sellerbench")


class ChangeEvent(str):
    """What listeners hear: the change's name ("sync", "push", "mutation"), a plain str to
    any listener, with ``sellers``: the ids of the only sellers whose rows it touched
    (the grid patches just those rows), or None when any row may have changed."""

    sellers: frozenset[str] | None

    def __new__(cls, name: str, sellers: Iterable[str] | None = None) -> ChangeEvent:
        event = super().__new__(cls, name)
        event.sellers = None if sellers is None else frozenset(sellers)
        return event


class Workbench:
    """A cache file, the API client that keeps it in step, and everything on top."""

    def __init__(
        self,
        store: Store,
        client: ApiClient | None,
        *,
        auto_push: bool = AUTO_PUSH,
        server: Any = None,
    ) -> None:
        self.store = store
        self.client = client
        self.auto_push = auto_push
        self._server = server  # the embedded demo server, stopped by close()
        self._hooks = threading.Lock()  # guards the two lists below
        self._listeners: list[Callable[[ChangeEvent], object]] = []
        self._closers: list[Callable[[], object]] = []
        self._pusher = _Pusher(self._push_round)

    def __repr__(self) -> str:
        url = self.client.base_url if self.client else "offline"
        return f"<Workbench cache={str(self.store.path)!r} api={url}>"

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the pusher (a round under way ends first; what it did not send stays
        queued), then close run watchers, the HTTP client and the embedded demo server."""
        self._pusher.close()
        with self._hooks:
            closers, self._closers = self._closers, []
        for close in closers:  # watchers first: they use the client
            try:
                close()
            except Exception:  # one failing close must not keep the rest open
                log.warning("sellerbench: closing %r failed", close, exc_info=True)
        if self.client is not None:
            self.client.close()
        if self._server is not None:
            self._server.stop()
            self._server = None

    # -- hooks: who hears about changes, what closes with the workbench ------------------

    def subscribe(self, listener: Callable[[ChangeEvent], object]) -> None:
        """Call ``listener(event: ChangeEvent)`` (a str) after every sync, push and mutation."""
        with self._hooks:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[ChangeEvent], object]) -> None:
        """Stop telling ``listener``; unknown listeners are ignored."""
        with self._hooks:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def on_close(self, close: Callable[[], object]) -> None:
        """Call ``close()`` when the workbench closes (run watchers register here)."""
        with self._hooks:
            self._closers.append(close)

    def _tell(self, name: str, sellers: Iterable[str] | None = None) -> None:
        event = ChangeEvent(name, sellers)
        with self._hooks:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # the change is committed; one broken listener hides nothing
                log.warning("sellerbench: a listener failed on %r", str(event), exc_info=True)

    # -- reading ------------------------------------------------------------------

    def sync(self, *, progress: bool = True, full: bool = False) -> SyncReport:
        """Push queued changes, then pull sellers and runs into the cache.

        ``progress``: show a progress bar; ``full``: re-read everything from the server.
        One sync per cache file runs at a time in this process; a second waits for it.
        """
        client = self._need_client(
            "this workbench has no API to sync with: pass api_url and token to "
            "sb.connect(), or set SELLERBENCH_API_URL and SELLERBENCH_TOKEN"
        )
        # Held open across push and pull (not a lock): the database stays loaded.
        with self.store.connect() as con:
            pushed = self._pusher.ask({"client": client}) if push.has_pending(con) else None
            with self.store.locks.sync:
                report = sync.pull(self.store, client, progress=progress, full=full)
        report.pushed = pushed
        self._tell("sync")
        return report

    def sellers(
        self,
        flagged: bool | None = None,
        search: str | None = None,
        *,
        include_deleted: bool = False,
        pending: bool = False,
        where: str | None = None,
    ) -> pd.DataFrame:
        """Cached sellers as the analyst sees them (pending changes applied).

        ``flagged``: True/False keeps flagged/unflagged sellers; ``search``: a
        case-insensitive part of the name, or exactly an id or platform id;
        ``include_deleted``: tombstones too; ``pending``: only sellers with a change
        still queued; ``where``: one SQL predicate over the columns (``grid.where_sql``
        fits here). The same filter as ``export`` and the grid.
        """
        chosen = SellerFilter(flagged, search, include_deleted, pending, where)
        return frames.sellers_frame(self.store, chosen)

    def runs(self) -> pd.DataFrame:
        """Cached collection runs, newest first."""
        return frames.runs_frame(self.store)

    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run read-only SQL over the cache (parameters bound, never pasted) and return a frame."""
        return frames.sql_frame(self.store, query, params)

    def status(self) -> dict[str, Any]:
        """Counts, last sync, pending changes and the server's features, as a dict."""
        return frames.status(self.store, self.client)

    # -- changing sellers -----------------------------------------------------------

    def flag(
        self,
        ids: str | Iterable[str] | None = None,
        flagged: bool = True,
        *,
        where: str | None = None,
        search: str | None = None,
    ) -> Action:
        """Set the flag of live sellers: ``ids`` (or a frame with an ``id`` column), or
        every live seller under a filter (``where``: one SQL predicate such as
        ``grid.where_sql``; ``search``: as in ``sellers()``). Returns an Action: a
        sequence of the ids, with a one-line repr."""
        chosen = self._chosen(ids, where, search)
        return self._acted(mutations.flag(self.store, ids, flagged, chosen=chosen))

    def unflag(
        self,
        ids: str | Iterable[str] | None = None,
        *,
        where: str | None = None,
        search: str | None = None,
    ) -> Action:
        """``flag(..., flagged=False)``: clear the flag of these sellers."""
        return self.flag(ids, False, where=where, search=search)

    def rename(self, id: str, name: str) -> str:
        """Give a seller a new name (1-200 characters, unique among live sellers)."""
        action = mutations.rename(self.store, id, name)
        return self._acted(action)[0] if action.touched else action[0]

    def delete(
        self,
        ids: str | Iterable[str] | None = None,
        *,
        where: str | None = None,
        search: str | None = None,
    ) -> Action:
        """Soft-delete sellers: ``ids``, or every live seller under a filter (as in
        ``flag``); ``restore`` or ``undo`` bring them back."""
        chosen = self._chosen(ids, where, search)
        return self._acted(mutations.delete(self.store, ids, chosen=chosen))

    def restore(
        self,
        ids: str | Iterable[str] | None = None,
        *,
        where: str | None = None,
        search: str | None = None,
    ) -> Action:
        """Bring deleted sellers back: ``ids``, or every deleted seller under a filter
        (re-created under new ids where the API has no restore)."""
        chosen = self._chosen(ids, where, search, include_deleted=True)
        action = mutations.restore(self.store, ids, chosen=chosen)
        if self._lacks_restore():
            log.warning(
                "sellerbench: the API has no restore endpoint: %d seller(s) will be "
                "re-created by name and get NEW ids (times_seen and run history start over)",
                len(action),
            )
        return self._acted(action)

    def create(self, names: str | Iterable[str]) -> Action:
        """Create sellers; their ids are ``local:...`` until the API confirms them."""
        return self._acted(mutations.create(self.store, names))

    def undo(self) -> str:
        """Take back your latest action (call again to go further back); says what it did."""
        undone = mutations.undo(self.store, restore_missing=self._lacks_restore())
        if undone.touched is None or undone.touched:
            self._tell("mutation", undone.touched)
        if undone.queued:
            self._auto_push()
        return undone.text

    def pending(self) -> pd.DataFrame:
        """Queued changes not confirmed yet, and refused ones (``state``, ``error``)."""
        return mutations.pending_frame(self.store)

    def failed(self) -> pd.DataFrame:
        """Changes the API refused for good, with the reason."""
        return mutations.failed_frame(self.store)

    def push(
        self,
        *,
        wait: float = PUSH.wait,
        coalesce: bool = PUSH.coalesce,
        retry_now: bool = PUSH.retry_now,
        backoff: Backoff | None = None,
        chunk: int = PUSH.chunk,
        in_flight: int = PUSH.in_flight,
        progress: bool = True,
        retries: int | None = None,
        timeout: float | None = None,
    ) -> PushReport:
        """Send queued changes now; returns a PushReport (transient trouble never raises).

        ``wait``: seconds to spend waiting for changes in backoff to come due;
        ``coalesce``: bulk calls where the server offers them; ``retry_now``: ignore the
        backoff of earlier pushes; ``backoff``: the delay policy for changes that failed
        transiently; ``chunk``: changes per bulk call (at most the API's 10,000);
        ``in_flight``: calls under way at once; ``progress``: a progress bar once the
        push takes more than a second; ``retries`` / ``timeout``: per
        request, for this push only (default: the client's). A push under way in another
        thread is waited for, then this one sends what is left. Raises AuthError when the
        token may not write (everything stays queued).
        """
        client = self._need_client(
            "no API to push to: this workbench is offline (connect with api_url and token); "
            "the changes stay queued in the cache"
        )
        if retries is not None or timeout is not None:
            client = client.with_options(retries=retries, timeout=timeout)
        report = self._pusher.ask({
            "client": client, "wait": wait, "coalesce": coalesce, "retry_now": retry_now,
            "backoff": backoff, "chunk": chunk, "in_flight": in_flight,
            "progress": progress,
        })
        assert report is not None  # a push waited for always has its round's report
        return report

    # -- exports, grid, runs ---------------------------------------------------------

    def export(
        self,
        path: str | os.PathLike[str],
        *,
        flagged: bool | None = None,
        search: str | None = None,
        where: str | None = None,
        columns: Sequence[str] | None = None,
        format: str | None = None,
        source: str = "auto",
        overwrite: bool = False,
        neutralize: bool = True,
        progress: bool = True,
    ) -> ExportReport:
        """Write the sellers you see to ``path`` with one DuckDB COPY (see exports.py).

        ``flagged`` / ``search`` / ``where``: the same filter as ``sellers()``;
        ``columns``: which and in what order; ``format``: csv, json, ndjson or parquet
        (default: from the suffix, ``.gz`` gzips text); ``source``: "auto", "cache" or
        "server"; ``overwrite``: replace an existing file; ``neutralize``: CSV cells a
        spreadsheet would run as formulas are written as text; ``progress``: a bar for
        long exports. An interrupted or failed export leaves nothing at ``path``.
        """
        from .reports import exports

        return exports.export(
            self.store, self.client, Path(path),
            chosen=SellerFilter(flagged=flagged, search=search, where=where),
            columns=columns, format=format, source=source, overwrite=overwrite,
            neutralize=neutralize, progress=progress,
        )

    def report(
        self, output_dir: str | os.PathLike[str], **options: Unpack[ReportOptions]
    ) -> ReportResult:
        """Sync (when connected), then write the report of this cache into ``output_dir``
        (see reports/report.py): ``report.html``, its data files, state and manifest.

        ``flagged`` / ``search`` / ``where``: the same filter as ``sellers()``;
        ``title``: the heading; ``period``: which runs (``30d``, ``2026-11-01`` or
        ``2026-11-01..2026-11-30``); ``since``: count changes since this report's folder
        or day (default: the newest report beside ``output_dir``); ``provenance``: show
        the API's address and the cache's path; ``pdf``: also ``report.pdf`` (A4);
        ``overwrite``: replace a report already there. The notebook runs in a kernel of
        its own, which is stopped before this returns.
        """
        from .reports.report import run_report

        if self.client is not None:
            self.sync(progress=False)
        return run_report(output_dir, cache=self.store.path, **options)

    def grid(
        self,
        *,
        height: str = "440px",
        show_ids: bool = False,
        confirm_delete_above: int = 20,
        columns: Sequence[str] | None = None,
        profiles: bool = True,
        state: Mapping[str, Any] | None = None,
    ) -> SellersGrid:
        """An interactive grid of the sellers you see: select, flag, rename, delete,
        restore, create and undo; it follows every sync, push and change.

        ``height``: the grid's CSS height; ``show_ids``: show the Id column;
        ``confirm_delete_above``: deleting more sellers than this asks first;
        ``columns``: the column labels to show, in order (default: all but Id);
        ``profiles``: a summary of each column's values above it (click to filter);
        ``state``: a ``grid.state`` saved before (filters, sort, columns, selection).
        """
        from .grid.widget import SellersGrid

        return SellersGrid(
            self, height=height, show_ids=show_ids, confirm_delete_above=confirm_delete_above,
            columns=columns, profiles=profiles, state=state,
        )

    def active_runs(self) -> pd.DataFrame:
        """Runs pending, running or paused: live from the API, else from the cache."""
        from .runs import control as runs

        return runs.active_runs(self)

    def run(self, run_id: str) -> dict[str, Any]:
        """One run as a dict: live from the API, else as the cache last saw it."""
        from .runs import control as runs

        return runs.run(self, run_id)

    def watch(
        self,
        run_id: str | None = None,
        *,
        interval: float = 2.0,
        sync_every: float = 2.0,
        sync_sellers: bool = True,
        stream: bool = True,
    ) -> RunWatch:
        """A widget with the live progress of active runs (or of ``run_id``).

        ``interval``: seconds between polls where the activity stream is not available;
        ``sync_every``: seconds between seller syncs while a run finds sellers;
        ``sync_sellers``: sync found sellers into the cache as they come; ``stream``:
        follow the activity stream (else poll). Closed by ``w.close()`` or ``wb.close()``.
        """
        from .runs import control as runs

        return runs.watch(
            self, run_id, interval=interval, sync_every=sync_every,
            sync_sellers=sync_sellers, stream=stream,
        )

    def start_run(self, name: str, category_ids: Sequence[str]) -> dict[str, Any]:
        """Create a collection run over ``category_ids`` and start it (admin permission)."""
        from .runs import control as runs

        return runs.start_run(self, name, category_ids)

    def pause_run(self, run_id: str) -> dict[str, Any]:
        """Pause a running collection run (admin permission)."""
        from .runs import control as runs

        return runs.control(self, run_id, "pause")

    def resume_run(self, run_id: str) -> dict[str, Any]:
        """Resume a paused collection run (admin permission)."""
        from .runs import control as runs

        return runs.control(self, run_id, "resume")

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        """Cancel a pending, running or paused collection run (admin permission)."""
        from .runs import control as runs

        return runs.control(self, run_id, "cancel")

    # -- orchestration --------------------------------------------------------------

    def _need_client(self, message: str) -> ApiClient:
        if self.client is None:
            raise ConfigError(message)
        return self.client

    def _lacks_restore(self) -> bool:
        known = self.client.known_features if self.client is not None else None
        return known is not None and "restore" not in known

    @staticmethod
    def _chosen(
        ids: object, where: str | None, search: str | None, *, include_deleted: bool = False
    ) -> SellerFilter | None:
        """The filter of a set action, or None when it acts on ids (never both)."""
        if where is None and search is None:
            return None
        if ids is not None:
            raise MutationError("give the sellers' ids or a filter (where=, search=), not both")
        return SellerFilter(None, search, include_deleted, False, where)

    def _acted(self, action: Action) -> Action:
        """After an action committed: tell listeners, auto-push, return today's ids."""
        if action.touched is not None and not action.touched:
            return action
        self._tell("mutation", action.touched)
        if self._auto_push() is not None and action.touched is not None:
            # A create (or a base re-create) that landed has its server id now.
            return Action(action.kind, mutations.resolve_ids(self.store, action.ids),
                          action.touched)
        return action

    def _auto_push(self) -> PushReport | None:
        """Push after a change when configured: one try per request, no waiting for
        backoff, never raising into the cell (what cannot be sent stays queued). Waits
        for the round unless one is under way (the next round sends this change)."""
        if not self.auto_push or self.client is None:
            return None
        try:
            return self._pusher.ask(
                {"client": self.client.with_options(retries=0), "wait": 0.0,
                 "retry_now": False, "auto": True},
                wait=None,
            )
        except SellerbenchError as exc:
            log.warning("sellerbench: change queued, not pushed yet: %s", exc)
            return None

    def _push_round(self, options: dict[str, Any]) -> PushReport:
        """One push round (on the pusher's thread): the queue sent under the file's push
        lock, then listeners told, the lock released."""
        options = {k: v for k, v in options.items() if k != "auto"}
        with self.store.locks.push:
            report = push.push(self.store, **options)
        if report.sent or report.reads or report.failed:
            self._tell("push", report.touched)
        return report


class _Pusher:
    """The thread that runs a workbench's push rounds, one at a time.

    Generations: ``started`` counts rounds begun, ``finished`` rounds ended. A request
    joins generation ``started + 1`` (the next round, which reads the queue after the
    request's change committed) and, if it waits, waits until ``finished`` reaches it.
    A round takes the options of its generation's last explicit request (an auto-push's
    only when it has no other). A listener called by a round may ask for a push itself:
    on the pusher's own thread the round runs at once, in place (an auto-push's joins
    the next round).
    """

    def __init__(self, run: Callable[[dict[str, Any]], PushReport]) -> None:
        self._run = run
        self._turn = threading.Condition()
        self._started = self._finished = 0
        self._options: dict[str, Any] | None = None  # of generation started + 1
        self._outcomes: dict[int, tuple[PushReport | BaseException, int]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False

    def ask(self, options: dict[str, Any], *, wait: bool | None = True) -> PushReport | None:
        """Ask for a round with ``options``; ``wait``: for its report (None: unless a round
        is under way). A round's error is raised to those who waited for it."""
        if threading.current_thread() is self._thread:  # a listener of a round asks
            if not options.get("auto"):
                return self._run(options)
            wait = False  # a change it made: the next round sends it
        with self._turn:
            if self._closed:
                raise SellerbenchError("this workbench is closed; the change stays queued "
                                       "in the cache: open it again to push")
            generation = self._started + 1
            if self._options is None or not options.get("auto"):
                self._options = options
            if wait is None:
                wait = self._started == self._finished  # no round under way
            if wait:
                outcome, waiting = self._outcomes.get(generation, (None, 0))
                self._outcomes[generation] = (outcome, waiting + 1)  # type: ignore[assignment]
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="sellerbench-push",
                                                daemon=True)
                self._thread.start()
            self._turn.notify_all()
            if not wait:
                return None
            # Closing ends the loop before its next round: a round begun still ends.
            while self._finished < generation and not (self._closed and
                                                       self._started < generation):
                self._turn.wait()
            outcome, waiting = self._outcomes.pop(generation, (None, 0))
            if waiting > 1:
                self._outcomes[generation] = (outcome, waiting - 1)  # type: ignore[assignment]
        if outcome is None:
            raise SellerbenchError("this workbench was closed before the push ran; the "
                                   "changes stay queued in the cache")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _loop(self) -> None:
        while True:
            with self._turn:
                while self._options is None and not self._closed:
                    self._turn.wait()
                if self._closed or self._options is None:
                    return
                options, self._options = self._options, None
                self._started += 1
                generation = self._started
            outcome: PushReport | BaseException
            try:
                outcome = self._run(options)
            except BaseException as exc:  # handed to the waiters; logged if none waits
                outcome = exc
            with self._turn:
                self._finished = generation
                waiting = self._outcomes.get(generation, (None, 0))[1]
                if waiting:
                    self._outcomes[generation] = (outcome, waiting)
                elif isinstance(outcome, SellerbenchError):
                    log.warning("sellerbench: change queued, not pushed yet: %s", outcome)
                elif isinstance(outcome, BaseException):
                    log.error("sellerbench: a push failed", exc_info=outcome)
                self._turn.notify_all()

    def close(self) -> None:
        """Stop the thread after the round under way; waiters of later rounds are told."""
        with self._turn:
            self._closed = True
            self._turn.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()


def connect(
    api_url: str | None = None,
    token: str | None = None,
    cache: str | os.PathLike[str] | None = None,
    *,
    auto_push: bool | None = None,
    lock_timeout: float | None = None,
    read_only: bool = False,
    memory_limit: str | None = None,
    temp_directory: str | os.PathLike[str] | None = None,
) -> Workbench:
    """Open the cache and, when an API url and token are known, the client.

    Arguments win over SELLERBENCH_API_URL, SELLERBENCH_TOKEN and SELLERBENCH_CACHE.
    With no API url the workbench works offline over the cache alone. ``memory_limit``
    (e.g. "2GB") and ``temp_directory``: DuckDB's, for this cache file (store.py,
    "Memory"; default: their settings).
    """
    url = resolve("api_url", api_url)
    token = tok = _hidden(resolve("token", token))  # both names: locals show in tracebacks
    if url and not tok:
        raise ConfigError(
            "an API url is set but no token: pass token=... or set SELLERBENCH_TOKEN"
        )
    store = Store(
        resolve("cache", cache),
        lock_timeout=_number(value("lock_timeout", lock_timeout)),
        read_only=read_only,
        memory_limit=memory_limit,
        temp_directory=temp_directory,
    )
    client = None
    if url and tok:
        from .api.client import ApiClient

        client = ApiClient(url, tok, timeout=_number(value("timeout")))
    wb = Workbench(store, client, auto_push=bool(value("auto_push", auto_push)))
    with store.connect():
        pass  # create or upgrade the file now, so errors surface here
    return wb


def _number(parsed: object) -> float:
    """A numeric setting as settings.value parsed it (each has a default)."""
    assert isinstance(parsed, int | float), parsed
    return float(parsed)


def _hidden(token: str | None) -> Secret | None:
    return Secret(token) if token is not None else None


def demo(
    n: int = 2_000,
    *,
    seed: int = 7,
    cache: str | os.PathLike[str] | None = None,
    role: str = "analyst",
    base_only: bool = False,
    run_speed: float = 1.0,
) -> Workbench:
    """Start the reference server with N demo sellers on a free loopback port; connect to it.

    The server runs in a background thread and stops with ``wb.close()``. Its database
    and the cache live in a folder of their own under ``settings.data_dir()`` unless
    ``cache`` says otherwise. Needs the server extra (``pip install "sellerbench[server]"``).
    """
    try:
        from .server.embedded import start
    except ImportError as exc:
        raise ConfigError(
            f"sb.demo() runs the reference server, which needs the server extra "
            f"({exc.name} is missing): pip install \"sellerbench[server]\""
        ) from None

    server = start(n=n, seed=seed, base_only=base_only, run_speed=run_speed)
    cache_path = cache if cache is not None else server.data_dir / "cache.duckdb"
    wb = connect(server.url, server.tokens[role], cache_path)
    wb._server = server
    return wb
