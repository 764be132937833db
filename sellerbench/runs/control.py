"""Collection runs from the notebook: live state, control, watching and the history plot.

    wb.runs()                         # the cached history (pulled by wb.sync(), like sellers)
    wb.active_runs()                  # live from the API; the cache when offline
    run = wb.start_run("Vinyl sweep", ["cat-media-vinyl-records"])   # admins only
    w = wb.watch(run["id"])           # a widget fed by the activity stream
    wb.pause_run(run["id"]); wb.resume_run(run["id"]); wb.cancel_run(run["id"])
    runs.plot_history(wb)             # sellers found and new per run, over time

Run control needs the ``admin.automation`` permission; without it the server answers
403 and these functions raise an AuthError that names the permission.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from ..cache.frames import to_frame
from ..errors import (
    ApiError,
    ApiValidationError,
    AuthError,
    NotFoundError,
    SellerbenchError,
    TransportError,
)
from ..schema import RUN, SHOWN_TIME, format_time
from .watch import ACTIVE, FINISHED, RunWatch, RunWatcher
from .watch import watch_text as _watch_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..workbench import Workbench

__all__ = [
    "ACTIVE",
    "FINISHED",
    "active_runs",
    "categories",
    "control",
    "frame",
    "list_runs",
    "plot_history",
    "run",
    "start_run",
    "table",
    "watch",
    "watch_text",
    "watcher",
]

ACTIONS = ("start", "pause", "resume", "cancel")
PERMISSION = "admin.automation"
_VERBS = {"create": "creating", "start": "starting", "pause": "pausing",
          "resume": "resuming", "cancel": "cancelling"}
_ACTIVE_SQL = ", ".join(f"'{s}'" for s in ACTIVE)
_FINISHED_SQL = ", ".join(f"'{s}'" for s in FINISHED)


# -- reading --------------------------------------------------------------------------------


def frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Run records from the API as a frame with the same columns and types as ``wb.runs()``."""
    columns = []
    shown = [f for f in RUN.fields if f.name != "rev"]
    for field in shown:
        values = [r.get(field.name) for r in records]
        if pa.types.is_timestamp(field.arrow):
            columns.append(pa.array(values, pa.string()).cast(field.arrow))
        else:
            columns.append(pa.array(values, field.arrow))
    names = [f.name for f in shown]
    return to_frame(pa.table(columns, names=names))


def _cached(wb: Any, where: str, params: list[Any] | None = None) -> pd.DataFrame:
    return wb.sql(
        f"SELECT * EXCLUDE (rev) FROM collection_runs WHERE deleted_at IS NULL AND {where} "
        "ORDER BY created_at DESC, id", params or [],
    )


@contextlib.contextmanager
def _unless_unreachable() -> Iterator[None]:
    """Swallow errors that say the API cannot answer now (the caller uses the cache)."""
    try:
        yield
    except ApiError as exc:
        if not exc.retryable:
            raise


def list_runs(wb: Any, limit: int = 50) -> pd.DataFrame:
    """The newest ``limit`` runs: live from the API, else from the cache (``attrs["source"]``)."""
    if wb.client is not None:
        with _unless_unreachable():
            df = frame(wb.client.list_runs(limit=limit).runs)
            df.attrs["source"] = "api"
            return df
    df = _cached(wb, "true").head(limit)
    df.attrs["source"] = "cache"
    return df


def active_runs(wb: Any) -> pd.DataFrame:
    """Runs pending, running or paused: live from the API, else from the cache.

    ``df.attrs["source"]`` says which: ``"api"`` or ``"cache"`` (offline, or the API
    unreachable; the cache is as fresh as the last sync).
    """
    if wb.client is not None:
        with _unless_unreachable():
            df = frame(wb.client.active_runs().runs)
            df.attrs["source"] = "api"
            return df
    df = _cached(wb, f"status IN ({_ACTIVE_SQL})")
    df.attrs["source"] = "cache"
    return df


def table(wb: Any, limit: int = 20) -> str:
    """The newest runs as text (the ``sellerbench runs`` listing)."""
    df = list_runs(wb, limit=limit)
    where = "live from the API" if df.attrs["source"] == "api" else "from the cache (offline)"
    if df.empty:
        return f"no collection runs ({where})"
    shown = pd.DataFrame({
        "id": df["id"].str[:8],
        "name": df["name"].str.slice(0, 40),
        "status": df["status"],
        "started": df["started_at"].dt.strftime(SHOWN_TIME),
        "products": (df["products_searched"].fillna(0).astype(int).astype(str) + "/"
                     + df["products_total"].fillna(0).astype(int).astype(str)),
        "found": df["sellers_found"],
        "new": df["sellers_new"],
        "seconds": df["duration_seconds"].round(1),
    })
    return f"{shown.to_string(index=False, na_rep='-')}\n({len(df)} run(s), {where})"


def run(wb: Any, run_id: str) -> dict[str, Any]:
    """One run as a dict: live from the API, else as the cache last saw it."""
    if wb.client is not None:
        with _unless_unreachable():
            return dict(wb.client.get_run(run_id))
    cached = _cached(wb, "id = ?", [run_id])
    if cached.empty:
        raise NotFoundError(
            f"no collection run {run_id!r} in the cache, and the API is not reachable to "
            f"ask; sync once online"
        )
    return {key: _plain(value) for key, value in cached.iloc[0].items()}


def _plain(value: Any) -> Any:
    """A cached value as the API sends it: times as RFC 3339 text, lists as lists."""
    if isinstance(value, pd.Timestamp):
        return format_time(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return None if value is None or value is pd.NA or value != value else value


def categories(wb: Any) -> pd.DataFrame:
    """What a run can collect from: id, name, department."""
    return pd.DataFrame(_client(wb, "listing categories").categories(),
                        columns=["id", "name", "department"])


# -- control ----------------------------------------------------------------------------------


def start_run(wb: Any, name: str, category_ids: Sequence[str] | str) -> dict[str, Any]:
    """Create a run over ``category_ids`` and start it; returns the running run."""
    client = _client(wb, "starting a run")
    ids = [category_ids] if isinstance(category_ids, str) else list(category_ids)
    created = _admin("create", client.create_run, name, ids)
    try:
        return dict(_admin("start", client.start_run, created["id"]))
    except TransportError:
        # The start may or may not have landed (a transition is not repeated blindly):
        # ask, and start only a run that is still pending.
        current = client.get_run(created["id"])
        if current["status"] != "pending":
            return dict(current)
        return dict(_admin("start", client.start_run, created["id"]))


def control(wb: Any, run_id: str, action: str) -> dict[str, Any]:
    """``start``, ``pause``, ``resume`` or ``cancel`` a run; returns the run after it.

    A transition the run's status does not allow raises ConflictError
    (``INVALID_TRANSITION``); a token without ``admin.automation`` raises AuthError.
    """
    if action not in ACTIONS:
        raise ApiValidationError(f"unknown run action {action!r}; use one of {', '.join(ACTIONS)}")
    client = _client(wb, f"{_VERBS[action]} a run")
    return dict(_admin(action, getattr(client, f"{action}_run"), run_id))


def _client(wb: Any, what: str) -> Any:
    if wb.client is None:
        raise SellerbenchError(
            f"{what} needs the API; this workbench is offline (connect with an API url "
            f"and token)"
        )
    return wb.client


def _admin(action: str, call: Any, *args: Any) -> Any:
    """Call a run-control endpoint; a 403 becomes an AuthError naming the permission."""
    try:
        return call(*args)
    except AuthError as exc:
        if exc.status != 403:
            raise
        raise AuthError(
            f"{_VERBS[action]} a collection run needs the permission '{PERMISSION}', which "
            f"this token's user lacks (the server said: {exc.message}); connect with an "
            f"admin token (sb.demo(role='admin') for the demo)",
            status=exc.status, code=exc.code, method=exc.method, url=exc.url,
        ) from None


# -- watching ----------------------------------------------------------------------------------


def watch(wb: Workbench, run_id: str | None = None, **options: Any) -> RunWatch:
    """A widget with the live progress of active runs (or of ``run_id``); ``wb.watch``.

    Options go to :class:`~sellerbench.runs.watch.RunWatcher`: ``interval`` (seconds between
    polls where the stream is not available, 2), ``sync_every`` (seconds between seller
    syncs while a run finds sellers, 2), ``sync_sellers`` (True), ``stream`` (True).
    ``w.close()`` stops it; so does ``wb.close()`` (it registers through ``wb.on_close``).
    """
    widget = RunWatch(wb.client, run_id, on_sellers=_syncer(wb), **options)
    wb.on_close(widget.close)
    return widget


def watcher(wb: Workbench, run_id: str | None = None, **options: Any) -> RunWatcher:
    """The engine behind ``watch`` without a widget (scripts, tests), already started."""
    engine = RunWatcher(wb.client, run_id, on_sellers=_syncer(wb), **options).start()
    wb.on_close(engine.close)
    return engine


def watch_text(wb: Workbench, run_id: str | None = None, **options: Any) -> RunWatcher:
    """Print progress lines until the runs end (the CLI's ``runs watch``)."""
    return _watch_text(wb.client, run_id, on_sellers=_syncer(wb), **options)


def _syncer(wb: Workbench) -> Callable[[], object]:
    """What a watcher calls, on its own thread, when runs found sellers."""

    def sync() -> object:
        return wb.sync(progress=False)

    return sync


# -- the history plot -----------------------------------------------------------------------


def plot_history(wb: Any, *, ax: Any = None) -> Figure:
    """Sellers found and new per finished run, over time, from the cache (sync first)."""
    # pyplot, under Jupyter, also teaches IPython to draw a returned figure
    import matplotlib.pyplot as plt

    df = wb.sql(
        "SELECT name, status, coalesce(started_at, created_at) AS started, sellers_found, "
        "sellers_new FROM collection_runs WHERE deleted_at IS NULL "
        f"AND status IN ({_FINISHED_SQL}) ORDER BY started"
    )
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 3.6), layout="constrained")
        plt.close(fig)  # shown once, by whoever displays the returned figure
    else:
        fig = ax.figure
    if df.empty:
        ax.text(0.5, 0.5, "no finished runs in the cache yet: wb.sync()", ha="center",
                va="center", transform=ax.transAxes)
    else:
        ax.plot(df["started"], df["sellers_found"], "o-", label="sellers found")
        ax.plot(df["started"], df["sellers_new"], "s--", label="new sellers")
        unfinished = df[df["status"] != "completed"]
        ax.scatter(unfinished["started"], unfinished["sellers_found"], s=120,
                   facecolors="none", edgecolors="tab:red", label="failed or cancelled")
        # beside the axes, never over a run's point (constrained layout makes room)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("Collection runs: sellers found per run")
    ax.set_xlabel("run started (UTC)")
    ax.set_ylabel("sellers")
    ax.grid(alpha=0.3)
    return fig
