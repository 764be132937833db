"""The notebook facade: ``sb.connect()`` and ``sb.demo()`` return a Workbench.

Thin on purpose: every method hands over to the module named after its noun
(``sync``, ``mutations``, ``exports``, ``runs``, ``grid``). What a method returns is
a plain pandas frame or a small report dataclass, never a live database object.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import ConfigError
from .settings import Secret, resolve
from .store import Store

if TYPE_CHECKING:
    from .client import ApiClient
    from .exports import ExportReport
    from .grid import SellersGrid
    from .mutations import PushReport
    from .sync import SyncReport

__all__ = ["ChangeEvent", "Workbench", "connect", "demo"]


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
        auto_push: bool = True,
        server: Any = None,
    ) -> None:
        self.store = store
        self.client = client
        self.auto_push = auto_push
        self._server = server  # the embedded demo server, stopped by close()
        self._listeners: list[Any] = []  # callables told about every change (the grid)

    def __repr__(self) -> str:
        url = self.client.base_url if self.client else "offline"
        return f"<Workbench cache={str(self.store.path)!r} api={url}>"

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close run watchers, the HTTP client and the embedded demo server, if any."""
        for watcher in self.__dict__.pop("_watchers", []):  # set by runs.watch()
            watcher.close()
        if self.client is not None:
            self.client.close()
        if self._server is not None:
            self._server.stop()
            self._server = None

    # -- change notification (the grid and the watch widget listen) ---------------------

    def subscribe(self, listener: Any) -> None:
        """Call ``listener(event: ChangeEvent)`` (a str) after every sync, push and mutation."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Any) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _changed(self, event: str, sellers: Iterable[str] | None = None) -> None:
        change = ChangeEvent(event, sellers)
        for listener in list(self._listeners):
            listener(change)

    # -- reading ------------------------------------------------------------------

    def sync(self, *, progress: bool = True, full: bool = False) -> SyncReport:
        """Push queued changes, then pull sellers and runs into the cache."""
        from . import sync

        return sync.sync(self, progress=progress, full=full)

    def sellers(
        self,
        flagged: bool | None = None,
        search: str | None = None,
        *,
        include_deleted: bool = False,
    ) -> pd.DataFrame:
        """Cached sellers as the analyst sees them (pending changes applied)."""
        from . import sync

        return sync.sellers_frame(
            self.store, flagged=flagged, search=search, include_deleted=include_deleted
        )

    def runs(self) -> pd.DataFrame:
        """Cached collection runs, newest first."""
        from . import sync

        return sync.runs_frame(self.store)

    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run SQL over the cache (parameters bound, never pasted) and return a frame."""
        from . import sync

        return sync.sql_frame(self.store, query, params)

    def status(self) -> dict[str, Any]:
        """Counts, last sync, pending changes and the server's features, as a dict."""
        from . import sync

        return sync.status(self)

    # -- changing sellers -----------------------------------------------------------

    def flag(self, ids: str | Iterable[str], flagged: bool = True) -> list[str]:
        """Set the flag of live sellers (ids, or a frame with an ``id`` column)."""
        from . import mutations

        return mutations.flag(self, ids, flagged)

    def rename(self, id: str, name: str) -> str:
        """Give a seller a new name (1-200 characters, unique among live sellers)."""
        from . import mutations

        return mutations.rename(self, id, name)

    def delete(self, ids: str | Iterable[str]) -> list[str]:
        """Soft-delete sellers (``restore`` or ``undo`` bring them back)."""
        from . import mutations

        return mutations.delete(self, ids)

    def restore(self, ids: str | Iterable[str]) -> list[str]:
        """Bring deleted sellers back (re-created under new ids where the API has no restore)."""
        from . import mutations

        return mutations.restore(self, ids)

    def create(self, names: str | Iterable[str]) -> list[str]:
        """Create sellers; their ids are ``local:...`` until the API confirms them."""
        from . import mutations

        return mutations.create(self, names)

    def undo(self) -> str:
        """Take back your latest action (call again to go further back); says what it did."""
        from . import mutations

        return mutations.undo(self)

    def pending(self) -> pd.DataFrame:
        """Queued changes not confirmed yet, and refused ones (``state``, ``error``)."""
        from . import mutations

        return mutations.pending_frame(self.store)

    def failed(self) -> pd.DataFrame:
        """Changes the API refused for good, with the reason."""
        from . import mutations

        return mutations.failed_frame(self.store)

    def push(self, **options: Any) -> PushReport:
        """Send queued changes now (options: wait, coalesce, backoff; see push.push)."""
        from . import mutations

        return mutations.push(self, **options)

    # -- exports, grid, runs ---------------------------------------------------------

    def export(self, path: str | os.PathLike[str], **options: Any) -> ExportReport:
        from . import exports

        return exports.export(self, Path(path), **options)

    def grid(self, **options: Any) -> SellersGrid:
        from .grid import SellersGrid

        return SellersGrid(self, **options)

    def active_runs(self) -> pd.DataFrame:
        from . import runs

        return runs.active_runs(self)

    def run(self, run_id: str) -> dict[str, Any]:
        from . import runs

        return runs.run(self, run_id)

    def watch(self, run_id: str | None = None, **options: Any) -> Any:
        from . import runs

        return runs.watch(self, run_id, **options)

    def start_run(self, name: str, category_ids: Sequence[str]) -> dict[str, Any]:
        from . import runs

        return runs.start_run(self, name, category_ids)

    def pause_run(self, run_id: str) -> dict[str, Any]:
        from . import runs

        return runs.control(self, run_id, "pause")

    def resume_run(self, run_id: str) -> dict[str, Any]:
        from . import runs

        return runs.control(self, run_id, "resume")

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        from . import runs

        return runs.control(self, run_id, "cancel")


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
        lock_timeout=float(resolve("lock_timeout", lock_timeout)),
        read_only=read_only,
    )
    if url:
        from .client import ApiClient
    client = ApiClient(url, tok, timeout=float(resolve("timeout"))) if url else None
    push = resolve("auto_push", auto_push)
    wb = Workbench(store, client, auto_push=push not in ("0", "False", "false", "no"))
    with store.connect():
        pass  # create or upgrade the file now, so errors surface here
    return wb


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
    and the cache live under ``data/demo/`` unless ``cache`` says otherwise.
    """
    from .server.embedded import start

    server = start(n=n, seed=seed, base_only=base_only, run_speed=run_speed)
    cache_path = cache if cache is not None else server.data_dir / "cache.duckdb"
    wb = connect(server.url, server.tokens[role], cache_path)
    wb._server = server
    return wb
