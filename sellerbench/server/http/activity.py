"""Run control and the activity stream: the routes over the run simulator.

- ``POST /collection/runs/{id}/start|pause|resume|cancel`` (``admin.automation``): one
  transition each, 409 ``INVALID_TRANSITION`` when the run's status does not allow it.
- ``GET /collection/runs/{id}/activity`` (``seller_collection.read``): ``text/event-stream``.
  Each event is ``id:``, ``event:`` and ``data:`` (JSON) lines and a blank line. With
  ``Last-Event-ID: n`` every kept event of the run after ``n`` is replayed first (all are
  kept). While nothing happens a ``: ping`` comment goes out every ``sse_ping_seconds``
  (10 s by default, under the contract's 15 s). The stream ends after the run's final
  ``status`` event, or at once when the run has ended and nothing after ``n`` is left,
  or within a second of its token being revoked or rotated.

A stream learns of new events from ``RunSimulator.last_event_id`` (a counter in memory,
moved by this process's writes and, on PostgreSQL, by LISTEN/NOTIFY for every process's),
and reads them from the database in a worker thread, so waiting costs no query.
``install(app)`` creates the simulator on ``app.state.simulator``; ``start(app)`` and
``stop(app)`` run it with the app's lifespan, and ``stop`` ends every open stream too.

Why not sse-starlette (measured, issue 22): what is written by hand here is one f-string
per event and the ``: ping`` comment; replay after ``Last-Event-ID``, the quiet-time
ping, the token re-check and ending at the final status or at ``stop(app)`` are this
module's either way. sse-starlette 3.5.0 would bring its own ping task and its own
shutdown: importing it replaces ``uvicorn.Server.handle_exit`` for the whole process
(checked: ``import uvicorn; h = uvicorn.Server.handle_exit; import sse_starlette.sse;
uvicorn.Server.handle_exit is not h`` is True), beside the embedded servers' own stop.
And it costs more per event: ``python -m timeit -s 'from sse_starlette import
ServerSentEvent; d = "{...}"' 'ServerSentEvent(id="1", event="seller_found",
data=d).encode()'`` 2.13 us against 128 ns for this module's f-string (the same
command with ``f"id: 1\nevent: seller_found\ndata: {d}\n\n".encode()``; 2 cores,
load 12 from other work, both in the same minute). The client does use a library for
its side: httpx-sse parses the stream (``runs/watch.py``).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
import uvicorn
from fastapi import APIRouter, FastAPI, Header, Request, Response
from fastapi.responses import StreamingResponse

from ..simulator.engine import FINAL, InvalidTransition, RunNotFound, RunSimulator
from ..storage.core import Busy, Storage, Tx
from ..storage.idempotency import IdempotencyKey, Outcome, RequestHash, perform
from .auth import REVALIDATE_SECONDS, TokenBook, User
from .deps import AdminUser, ReadUser, settings_of
from .models import CollectionRun
from .problems import Problem, error_responses

__all__ = ["install", "router", "start", "stop"]

DEFAULT_PING_SECONDS = 10.0
POLL_SECONDS = 0.05  # how often an open stream looks at the in-memory event counter
RECHECK_SECONDS = 1.0  # and how often it re-reads the database regardless
BATCH = 500
_EVENT_ID = re.compile(r"^\s*\d{1,18}\s*$")

router = APIRouter(tags=["collection runs"])
LastEventId = Annotated[
    str | None, Header(alias="Last-Event-ID", description="resume after this event id")
]


# -- lifecycle ----------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Add the routes, create the simulator and hook its start and stop to the lifespan."""
    settings = app.state.settings
    app.state.simulator = RunSimulator(app.state.storage, run_speed=settings.run_speed)
    app.include_router(router)
    app.state.on_startup.append(start)
    app.state.on_shutdown.append(stop)


def start(app: FastAPI) -> None:
    """Resume runs left running by a previous server and start advancing runs."""
    simulator: RunSimulator = app.state.simulator
    listen = getattr(app.state.storage, "listen", None)
    if listen is not None:  # events committed by other server processes
        listen(simulator.note_event)
    simulator.start()


def stop(app: FastAPI) -> None:
    """End every open activity stream and stop the simulator; safe to call twice."""
    app.state.simulator.stop()


class Server(uvicorn.Server):
    """uvicorn's server, ending open activity streams before it waits for connections.

    uvicorn waits for open connections (up to its graceful timeout) before it runs the
    lifespan shutdown, and a stream only ends once the simulator stops: without this a
    stop with a watcher attached took the whole graceful timeout.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list | None = None) -> None:
        await anyio.to_thread.run_sync(stop, self._app)
        await super().shutdown(sockets=sockets)


def _simulator(request: Request) -> RunSimulator:
    return request.app.state.simulator


# -- transitions ---------------------------------------------------------------------------


def _transition(
    request: Request, user: User, key: str | None, digest: str, run_id: str, action: str
) -> Response:
    with_rev = settings_of(request).ext

    def act(tx: Tx) -> Outcome:
        try:
            run = _simulator(request).transition_in(tx, run_id, action, by=user.name)
        except RunNotFound:
            raise Problem(404, "NOT_FOUND", f"no collection run with id {run_id!r}") from None
        except InvalidTransition as exc:
            raise Problem(409, "INVALID_TRANSITION", str(exc)) from None
        if not with_rev:
            run.pop("rev", None)
        return Outcome(200, run)

    return perform(request, user, key, digest, act)


_CONTROL: dict[str, Any] = {
    "responses": error_responses(401, 403, 404, 409, 422, 429, 503),
    "response_model": CollectionRun,
}


def _control_route(action: str, doc: str) -> None:
    """``POST /collection/runs/{run_id}/<action>``: one transition of the simulator."""

    def route(
        request: Request, run_id: str, user: AdminUser, digest: RequestHash,
        key: IdempotencyKey = None,
    ) -> Response:
        return _transition(request, user, key, digest, run_id, action)

    route.__doc__ = doc
    router.post(f"/collection/runs/{{run_id}}/{action}", name=f"{action}_run", **_CONTROL)(route)


for _action, _doc in (
    ("start", "Start a pending run: it begins walking its categories."),
    ("pause", "Pause a running run; its running time stops counting."),
    ("resume", "Resume a paused run where it stopped."),
    ("cancel", "Cancel a pending, running or paused run (final)."),
):
    _control_route(_action, _doc)


# -- the activity stream --------------------------------------------------------------------


@router.get(
    "/collection/runs/{run_id}/activity",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "server-sent events: progress, seller_found, status, error",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **error_responses(401, 403, 404, 422, 429, 503),
    },
)
async def activity(
    request: Request,
    run_id: str,
    user: ReadUser,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """The run's activity as server-sent events; resumable with ``Last-Event-ID``."""
    after = _parse_last_event_id(last_event_id)
    storage: Storage = request.app.state.storage
    exists = await anyio.to_thread.run_sync(_run_status, storage, run_id)
    if exists is None:
        raise Problem(404, "NOT_FOUND", f"no collection run with id {run_id!r}")
    extras = settings_of(request).extras
    ping = float(extras.get("sse_ping_seconds", DEFAULT_PING_SECONDS))
    book: TokenBook = request.app.state.tokens

    def token_valid() -> bool:
        try:
            return book.user_for_hash(user.token_hash) is not None
        except (Busy, RuntimeError):  # the database is busy or closing: ask again later
            return True

    return StreamingResponse(
        _stream(_simulator(request), storage, run_id, after, ping, token_valid),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _parse_last_event_id(value: str | None) -> int:
    if value is None or not value.strip():
        return 0
    if not _EVENT_ID.match(value):
        raise Problem(
            422, "VALIDATION", "Last-Event-ID must be the integer id of an event this stream sent"
        )
    return int(value)


async def _stream(
    simulator: RunSimulator, storage: Storage, run_id: str, after: int, ping: float,
    token_valid: Callable[[], bool] = lambda: True,
) -> AsyncIterator[str]:
    simulator.open_streams += 1  # streams all run on the event loop: no lock needed
    try:
        async for chunk in _events(simulator, storage, run_id, after, ping, token_valid):
            yield chunk
    finally:
        simulator.open_streams -= 1


async def _events(
    simulator: RunSimulator, storage: Storage, run_id: str, after: int, ping: float,
    token_valid: Callable[[], bool],
) -> AsyncIterator[str]:
    last_sent = after
    covered = -1  # every event with id <= covered was visible to the last read
    read_at = quiet_since = checked_at = time.monotonic()
    yield ": connected\n\n"  # lets proxies and clients see the stream open at once
    while not simulator.stopping:
        now = time.monotonic()
        if now - checked_at >= REVALIDATE_SECONDS:
            checked_at = now
            if not await anyio.to_thread.run_sync(token_valid):
                return  # the token was revoked or rotated: the stream ends
        if simulator.last_event_id > covered or now - read_at >= RECHECK_SECONDS:
            rows, status, covered = await anyio.to_thread.run_sync(
                _read_events, storage, run_id, last_sent
            )
            read_at = now
            for event_id, kind, data in rows:
                yield f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n"
                last_sent, quiet_since = event_id, now
                if kind == "status" and _is_final(data):
                    return
            if len(rows) < BATCH and (status is None or status in FINAL):
                return  # ended (or deleted) and nothing left after last_sent
            if len(rows) == BATCH:
                continue
        if now - quiet_since >= ping:
            yield ": ping\n\n"
            quiet_since = now
        await asyncio.sleep(POLL_SECONDS)


def _is_final(data: str) -> bool:
    try:
        return json.loads(data).get("status") in FINAL
    except (ValueError, AttributeError):
        return False


def _run_status(storage: Storage, run_id: str) -> str | None:
    with storage.read() as conn:
        row = conn.execute(
            "SELECT status FROM collection_runs WHERE id = ? AND deleted_at IS NULL", (run_id,)
        ).fetchone()
    return row[0] if row else None


def _read_events(
    storage: Storage, run_id: str, after: int
) -> tuple[list[tuple[int, str, str]], str | None, int]:
    """(events after ``after``, the run's status, the highest event id) in one snapshot."""
    with storage.read() as conn:
        rows = conn.execute(
            "SELECT id, type, data FROM activity_events WHERE run_id = ? AND id > ?"
            " ORDER BY id LIMIT ?",
            (run_id, after, BATCH),
        ).fetchall()
        status = conn.execute(
            "SELECT status FROM collection_runs WHERE id = ? AND deleted_at IS NULL", (run_id,)
        ).fetchone()
        top = conn.execute("SELECT coalesce(max(id), 0) FROM activity_events").fetchone()[0]
    return rows, (status[0] if status else None), int(top)
