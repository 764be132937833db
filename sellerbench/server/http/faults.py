"""Misbehaviour on purpose, so clients can be tested against a server that fails.

:class:`Faults` holds the switches; :class:`FaultMiddleware` (an ASGI middleware that
wraps the whole app, outside Starlette's stack) applies them per request:

1. ``rate_limit``: a token bucket of that many requests per second (burst of the same
   size); over it, 429 ``RATE_LIMITED`` with ``Retry-After`` in whole seconds.
   ``token_rate_limit``: the same, one bucket per bearer token (a runaway notebook
   exhausts its own bucket, not the team's). A request refused by its token's bucket
   takes nothing from the server's; each server process keeps its own buckets, so with
   ``--workers N`` a token may reach N times its limit at most.
2. ``fail_rate``: that share of requests get 503 ``UNAVAILABLE`` without running.
3. ``drop_before_rate`` (writes only: POST, PATCH, PUT, DELETE): the connection is
   closed without a response and the handler never runs.
4. ``drop_after_rate`` (writes only): the handler runs and commits, its response is
   thrown away and the connection closed, so the client cannot know the write happened.

Drops close the server's transport, reached through uvicorn's ``send`` (a bound method
of its request cycle): the client sees the connection end with no response, which
httpx raises as ``RemoteProtocolError``. Without uvicorn (an in-process ASGI test)
:class:`ConnectionDropped` is raised instead.

Decisions come from ``random.Random(seed)``, one draw per request in arrival order,
so a sequential client sees the same faults on every run. ``/health``,
``/openapi.json`` and the docs are never faulted. The switches may be changed while
the server runs (``server.faults.fail_rate = 1.0``).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson

__all__ = ["ConnectionDropped", "FaultMiddleware", "Faults", "wrap"]

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
EXEMPT = ("/health", "/openapi.json", "/docs", "/redoc")


_MAX_BUCKETS = 100_000  # per-token buckets kept (a flood of random tokens resets them)


@dataclass
class _Bucket:
    """A token bucket: ``tokens`` left, refilled at the limit's rate since ``stamp``."""

    tokens: float
    stamp: float

    def take(self, rate: float, now: float) -> int | None:
        """None (and one request taken), or whole seconds to wait."""
        capacity = max(1.0, rate)
        self.tokens = min(capacity, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self.tokens) / rate))


class ConnectionDropped(ConnectionError):
    """A drop fault fired where no real connection could be closed (in-process tests)."""


@dataclass
class Faults:
    """The misbehaviour switches; all off by default."""

    rate_limit: float | None = None
    token_rate_limit: float | None = None
    fail_rate: float = 0.0
    drop_before_rate: float = 0.0
    drop_after_rate: float = 0.0
    seed: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("fail_rate", "drop_before_rate", "drop_after_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        for name in ("rate_limit", "token_rate_limit"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be a positive number of requests per second")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._tokens = float(self.rate_limit or 0)  # the server's bucket
        self._stamp = time.monotonic()
        self._token_buckets: dict[bytes, _Bucket] = {}

    @property
    def active(self) -> bool:
        return bool(
            self.rate_limit or self.token_rate_limit or self.fail_rate
            or self.drop_before_rate or self.drop_after_rate
        )

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def retry_after(self, authorization: bytes | None = None) -> int | None:
        """Seconds to wait when the token's bucket or the server's is empty, else None
        (and a request is taken from each)."""
        with self._lock:
            now = time.monotonic()
            if self.token_rate_limit and authorization:
                key = hashlib.sha256(authorization).digest()  # never the token itself
                bucket = self._token_buckets.get(key)
                if bucket is None:
                    if len(self._token_buckets) >= _MAX_BUCKETS:
                        self._token_buckets.clear()
                    bucket = self._token_buckets[key] = _Bucket(self.token_rate_limit, now)
                wait = bucket.take(self.token_rate_limit, now)
                if wait is not None:
                    self._count("token_rate_limited")
                    return wait
            if self.rate_limit:
                server = _Bucket(self._tokens, self._stamp)
                wait = server.take(self.rate_limit, now)
                self._tokens, self._stamp = server.tokens, server.stamp
                if wait is not None:
                    self._count("rate_limited")
                    return wait
            return None

    def decide(self, method: str) -> str | None:
        """'fail', 'drop_before', 'drop_after' or None for this request."""
        with self._lock:
            fail, before, after = self._rng.random(), self._rng.random(), self._rng.random()
        choice = None
        if fail < self.fail_rate:
            choice = "fail"
        elif method in WRITE_METHODS and before < self.drop_before_rate:
            choice = "drop_before"
        elif method in WRITE_METHODS and after < self.drop_after_rate:
            choice = "drop_after"
        if choice:
            with self._lock:
                self._count(choice)
        return choice


async def _error(send: Any, status: int, code: str, message: str, headers=()) -> None:
    body = orjson.dumps({"detail": {"code": code, "message": message}})
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})


async def _drop(receive: Any, send: Any) -> None:
    """Close the client's connection with nothing (more) sent."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionDropped("fault injection dropped the connection")
    transport.close()
    # Wait for uvicorn to notice the disconnect, so it neither logs "returned without
    # starting response" nor tries to write a 500 to the closed socket.
    with anyio.move_on_after(2):
        while (await receive())["type"] != "http.disconnect":
            pass


class FaultMiddleware:
    """Applies :class:`Faults` around an ASGI app."""

    def __init__(self, app: Any, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        faults = self.faults
        if scope["type"] != "http" or not faults.active or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        authorization = None
        if faults.token_rate_limit:
            for name, header in scope["headers"]:
                if name == b"authorization":
                    authorization = header
                    break
        wait = faults.retry_after(authorization)
        if wait is not None:
            await _error(send, 429, "RATE_LIMITED", f"too many requests; retry in {wait} s",
                         [(b"retry-after", str(wait).encode())])
            return
        choice = faults.decide(scope["method"])
        if choice == "fail":
            await _error(send, 503, "UNAVAILABLE", "injected failure (fail rate); retry")
        elif choice == "drop_before":
            await _drop(receive, send)
        elif choice == "drop_after":
            async def swallow(message: dict) -> None:
                return None

            await self.app(scope, receive, swallow)
            await _drop(receive, send)
        else:
            await self.app(scope, receive, send)


def wrap(app: Any, faults: Faults | None) -> FaultMiddleware:
    """The app behind the fault switches (inactive ones cost one attribute check)."""
    return FaultMiddleware(app, faults if faults is not None else Faults())
