"""The notebook facade: ``sb.connect()`` and ``sb.demo()`` return a Workbench.

The Workbench orchestrates; the modules named after their noun do the work on the store
and client they are given and return what they did (``mutations``, ``push``, ``sync``,
``frames``, ``exports``, ``runs``). Data flows one way: API -> sync -> store ->
frames/grid/exports; no module below this one imports it.

**Threads.** Every method may be called from any thread at any time (a cell, the
grid's widget messages on ipykernel 7's subshell thread, a run watcher's background
sync, ``threading.Thread(target=wb.sync)``):

- cache writes are serialized per file by the store's write lock (store.py, "Threads");
  reads run beside them on their own connections;
- pushes of one file are serialized here (the file's push lock; the lease in the cache
  keeps out other processes). An auto-push that finds a push under way does not wait:
  it asks that push for one more round, which sends the new change;
- syncs of one file run one at a time (push first, then pull);
- per-call settings (retries, timeout) are arguments, never a change to the shared
  client: an auto-push sends through ``client.with_options(retries=0)``;
- listeners (the grid) are told on the thread that made the change, after the change
  committed; a listener that raises is logged and the others still hear it.

What a method returns is a plain pandas frame or a small report dataclass, never a live
database object. What goes wrong is a :class:`~sellerbench.errors.SellerbenchError`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .cache import frames, sync
from .cache.filters import SellerFilter
from .cache.store import Store
from .changes import mutations, push
from .changes.push import IN_FLIGHT, MAX_BULK
from .changes.result import Action
from .errors import ConfigError, MutationError, SellerbenchError
from .settings import Secret, resolve, value

if TYPE_CHECKING:
    from .api.client import ApiClient
    from .cache.sync import SyncReport
    from .changes.push import Backoff, PushReport
    from .grid.widget import SellersGrid
    from .reports.exports import ExportReport
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

    AGAIN_ROUNDS = 3  # extra push rounds one caller runs for changes queued meanwhile

    def __init__(
        self,
        store: Store,
        client: ApiClient | None,
        *,
        auto_push: bool = True,
        server: Any = None,
    ) -> None:
        self.store = store
        self.client = client
        self.auto_push = auto_push
        self._server = server  # the embedded demo server, stopped by close()
        self._hooks = threading.Lock()  # guards the two lists below
        self._listeners: list[Callable[[ChangeEvent], object]] = []
        self._closers: list[Callable[[], object]] = []

    def __repr__(self) -> str:
        url = self.client.base_url if self.client else "offline"
        return f"<Workbench cache={str(self.store.path)!r} api={url}>"

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close run watchers, the HTTP client and the embedded demo server, if any."""
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
        with self.store.locks.sync:
            early = sync.ask_early(self.store, client, full=full)
            # Held open across push and pull: the database stays loaded in this process,
            # so every connection they open is cheap.
            with self.store.connect() as con:
                pushed = None
                if push.has_pending(con):
                    early.cancel()  # the push changes what the first pages hold
                    pushed = self._push(client)
                report = sync.pull(self.store, client, progress=progress, full=full, early=early)
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
        wait: float = 3.0,
        coalesce: bool = True,
        retry_now: bool = True,
        backoff: Backoff | None = None,
        chunk: int = MAX_BULK,
        in_flight: int = IN_FLIGHT,
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
        report = self._push(
            client, wait=wait, coalesce=coalesce, retry_now=retry_now, backoff=backoff,
            chunk=chunk, in_flight=in_flight, progress=progress,
        )
        assert report is not None  # a blocking push always runs
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

    def grid(
        self,
        *,
        height: str = "440px",
        show_ids: bool = False,
        confirm_delete_above: int = 20,
        columns: Sequence[str] | None = None,
        profiles: bool = True,
    ) -> SellersGrid:
        """An interactive grid of the sellers you see: select, flag, rename, delete,
        restore, create and undo; it follows every sync, push and change.

        ``height``: the grid's CSS height; ``show_ids``: show the Id column;
        ``confirm_delete_above``: deleting more sellers than this asks first;
        ``columns``: the column labels to show, in order (default: all but Id);
        ``profiles``: a summary of each column's values above it (click to filter).
        """
        from .grid.widget import SellersGrid

        return SellersGrid(
            self, height=height, show_ids=show_ids, confirm_delete_above=confirm_delete_above,
            columns=columns, profiles=profiles,
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
        backoff, never raising into the cell (what cannot be sent stays queued)."""
        if not self.auto_push or self.client is None:
            return None
        try:
            return self._push(
                self.client.with_options(retries=0), wait=0.0, retry_now=False, blocking=False
            )
        except SellerbenchError as exc:
            log.warning("sellerbench: change queued, not pushed yet: %s", exc)
            return None

    def _push(
        self,
        client: ApiClient,
        *,
        wait: float = 3.0,
        coalesce: bool = True,
        retry_now: bool = True,
        backoff: Backoff | None = None,
        chunk: int = MAX_BULK,
        in_flight: int = IN_FLIGHT,
        progress: bool = False,
        blocking: bool = True,
    ) -> PushReport | None:
        """One push of this file at a time in this process (the file's push lock).

        ``blocking=False`` (auto-push): when a push is under way, raise the file's
        ``push_again`` flag and return None; the push under way sees the flag after it
        released the lock and sends once more, so no queued change is left behind. It
        does so at most ``AGAIN_ROUNDS`` times (a caller's push must return while other
        threads keep changing sellers); what is still flagged then goes out from a
        background thread.
        """
        locks = self.store.locks
        report: PushReport | None = None
        locks.push_again.set()
        for _ in range(1 + self.AGAIN_ROUNDS):
            if not locks.push_again.is_set():
                break
            if not locks.push.acquire(blocking=blocking):
                return report  # the holder sees push_again once it releases
            try:
                locks.push_again.clear()
                step = push.push(
                    self.store, client, wait=wait, coalesce=coalesce, retry_now=retry_now,
                    backoff=backoff, chunk=chunk, in_flight=in_flight, progress=progress,
                )
            finally:
                locks.push.release()
            report = step if report is None else report.merged(step)
            if step.sent or step.reads or step.failed:
                self._tell("push", step.touched)
            blocking, retry_now = False, False  # further rounds only for what came meanwhile
        else:
            if locks.push_again.is_set():  # still more: hand over, this caller returns
                threading.Thread(
                    target=self._auto_push, name="sellerbench-push", daemon=True
                ).start()
        return report


def connect(
    api_url: str | None = None,
    token: str | None = None,
    cache: str | os.PathLike[str] | None = None,
    *,
    auto_push: bool | None = None,
    lock_timeout: float | None = None,
    read_only: bool = False,
) -> Workbench:
    """Open the cache and, when an API url and token are known, the client.

    Arguments win over SELLERBENCH_API_URL, SELLERBENCH_TOKEN and SELLERBENCH_CACHE.
    With no API url the workbench works offline over the cache alone.
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
