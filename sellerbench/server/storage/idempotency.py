"""The Idempotency-Key ledger (**ext** ``idempotency``) and the one way routes write.

:func:`perform` runs a write in one transaction. With a key, the transaction first looks
the key up for the caller's user:

- unknown (or older than 24 hours): the write runs, and its answer is stored with the
  key *in the same transaction*, so "the write happened" and "the key is recorded" are
  one fact: a client retrying after a dropped connection gets the stored answer;
- known with the same method, path and body hash: the stored answer is replayed
  (``Idempotent-Replayed: true``) and nothing runs;
- known with a different request: 422 ``IDEMPOTENCY_KEY_REUSED``.

The write runs with ``tx.user_id`` set to the caller, so every change it files names
its author (:mod:`.changes`) in the same transaction as the stored answer.

Only successful answers are stored: a refused write (409, 404, 422) wrote nothing, so
retrying it simply asks again. In base-only mode the header is ignored entirely.

Concurrent writers (PostgreSQL): requests with the same key wait for each other (a lock
on the key, taken before the look-up), so the later one replays the earlier's answer; a
transaction that loses a race anyway (a deadlock) is rolled back and run again; a name
a concurrent writer took is 409 ``DUPLICATE``; a database timeout is 503 ``UNAVAILABLE``
(retry later).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request, Response
from pydantic.json_schema import SkipJsonSchema

from ..http.auth import User
from ..http.deps import settings_of, storage_of
from ..http.problems import Problem
from .core import Busy, Conflict, Duplicate, Tx
from .records import now_ts, ts_before

__all__ = ["IdempotencyKey", "Outcome", "RequestHash", "perform"]

KEEP = timedelta(hours=24)
MAX_KEY = 255
ATTEMPTS = 5  # runs of a write that keeps losing races before it answers 503


@dataclass(frozen=True)
class Outcome:
    """What a write answers: status and a JSON-able body (None for 204)."""

    status: int
    body: Any = None


async def request_hash(request: Request) -> str:
    """sha256 of the raw body (FastAPI caches it, so body parsing still works)."""
    return hashlib.sha256(await request.body()).hexdigest()


RequestHash = Annotated[str, Depends(request_hash)]

IdempotencyKey = Annotated[
    str | SkipJsonSchema[None],
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY,
        description="ext idempotency: the same key and request within 24 h replays the "
        "stored answer without acting; the same key with another request is 422",
    ),
]


def _render(outcome: Outcome) -> tuple[int, bytes]:
    if outcome.status == 204:
        return 204, b""
    return outcome.status, orjson.dumps(outcome.body)


def _response(status: int, payload: bytes, replayed: bool = False) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    if status == 204:
        return Response(status_code=204, headers=headers)
    return Response(payload, status_code=status, media_type="application/json", headers=headers)


def _replay(tx: Tx, user: User, key: str, method: str, path: str, digest: str) -> Response | None:
    row = tx.execute(
        "SELECT method, path, body_hash, status, response, created_at FROM idempotency_keys"
        " WHERE user_id = ? AND key = ?",
        (user.id, key),
    ).fetchone()
    if row is None:
        return None
    if row[5] < ts_before(now_ts(), KEEP):
        tx.execute("DELETE FROM idempotency_keys WHERE user_id = ? AND key = ?", (user.id, key))
        return None
    if (row[0], row[1], row[2]) != (method, path, digest):
        raise Problem(
            422,
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was already used for a different request; use a new key",
        )
    return _response(row[3], bytes(row[4]), replayed=True)


def perform(
    request: Request,
    user: User,
    key: str | None,
    digest: str | None,
    action: Callable[[Tx], Outcome],
) -> Response:
    """Run ``action`` in one write transaction, honouring the Idempotency-Key; run it
    again when a concurrent transaction won a race (see the module docstring)."""
    for attempt in range(ATTEMPTS):
        try:
            return _perform_once(request, user, key, digest, action)
        except Conflict:
            time.sleep(0.005 * (attempt + 1) * random.random())
        except Duplicate as exc:
            raise Problem(
                409, "DUPLICATE", "a live seller already has this name (a concurrent write "
                "took it); choose another name"
            ) from exc
        except Busy as exc:
            raise Problem(503, "UNAVAILABLE", f"the database is busy ({exc}); retry") from exc
    raise Problem(503, "UNAVAILABLE", "the write kept meeting concurrent writes; retry")


def _perform_once(
    request: Request,
    user: User,
    key: str | None,
    digest: str | None,
    action: Callable[[Tx], Outcome],
) -> Response:
    storage = storage_of(request)
    if key is None or digest is None or not settings_of(request).ext:
        with storage.write() as tx:
            tx.user_id = user.id
            status, payload = _render(action(tx))
        return _response(status, payload)
    method, path = request.method, request.url.path
    with storage.write() as tx:
        tx.lock(f"idempotency {user.id} {key}")  # the same key at once: one at a time
        replay = _replay(tx, user, key, method, path, digest)
        if replay is not None:
            return replay  # nothing ran: no second change, no second author
        tx.user_id = user.id
        status, payload = _render(action(tx))
        now = now_ts()
        tx.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (ts_before(now, KEEP),))
        tx.execute(
            "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (user.id, key, method, path, digest, status, payload, now),
        )
    return _response(status, payload)
