"""Helpers shared by the run tests: runs made straight in a server's storage, SSE reading."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from sellerbench.runs import watch
from sellerbench.runs.watch import Event
from sellerbench.server.embedded import EmbeddedServer
from sellerbench.server.storage.records import now_ts

TWO_DEPARTMENTS = ["cat-antiques-furniture", "cat-media-books", "cat-antiques-clocks"]


def insert_run(
    srv: EmbeddedServer, categories: list[str] | None = None, name: str = "test run"
) -> str:
    """A pending run written straight into the server's storage (as POST would)."""
    run_id = str(uuid.uuid4())
    with srv.storage.write() as tx:
        tx.execute(
            "INSERT INTO collection_runs (id, name, status, category_ids, created_at,"
            " updated_at, rev) VALUES (?, ?, 'pending', ?, ?, ?, ?)",
            (run_id, name, json.dumps(categories or TWO_DEPARTMENTS), now_ts(), now_ts(),
             tx.next_rev()),
        )
    return run_id


def http(srv: EmbeddedServer, role: str | None = "admin") -> httpx.Client:
    headers = {"Authorization": f"Bearer {srv.tokens[role]}"} if role else {}
    return httpx.Client(base_url=srv.url, headers=headers, timeout=30)


def run_of(srv: EmbeddedServer, run_id: str) -> dict[str, Any]:
    with srv.storage.read() as conn:
        row = conn.execute(
            "SELECT status, products_searched, products_total, categories_completed,"
            " categories_total, departments_completed, departments_total, sellers_found,"
            " sellers_new, failed_items, duration_seconds, rev FROM collection_runs"
            " WHERE id = ?",
            (run_id,),
        ).fetchone()
    keys = ("status", "products_searched", "products_total", "categories_completed",
            "categories_total", "departments_completed", "departments_total", "sellers_found",
            "sellers_new", "failed_items", "duration_seconds", "rev")
    return dict(zip(keys, row, strict=True))


def event_ids(srv: EmbeddedServer, run_id: str) -> list[int]:
    """The ids of the run's events as the server keeps them."""
    with srv.storage.read() as conn:
        return [r[0] for r in conn.execute(
            "SELECT id FROM activity_events WHERE run_id = ? ORDER BY id", (run_id,)
        )]


def wait_for(check: Callable[[], Any], timeout: float = 30.0, step: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {check}")
        time.sleep(step)


def read_events(
    client: httpx.Client, run_id: str, last_event_id: int | None = None
) -> Iterator[Event]:
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    with client.stream("GET", f"/collection/runs/{run_id}/activity", headers=headers) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        yield from watch.read_events(r)
