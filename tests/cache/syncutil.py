"""Helpers for the sync tests: what the server holds, what the cache holds, a faulty proxy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import orjson

from sellerbench.api.client import ApiClient
from sellerbench.cache.store import Store

FIELDS = (
    "id", "display_name", "normalized_name", "platform", "platform_id", "times_seen",
    "flagged", "first_seen_run_id", "last_seen_run_id", "created_at", "updated_at",
    "deleted_at",
)
RUN_FIELDS = ("id", "name", "status", "updated_at", "deleted_at", "sellers_found")


def _when(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _row(item: dict[str, Any], names: tuple[str, ...]) -> tuple:
    return tuple(_when(item[n]) if n.endswith("_at") else item[n] for n in names)


def server_sellers(srv: Any) -> dict[str, tuple]:
    """Every seller the server holds, tombstones included, walked with the base contract."""
    return _walk(srv, "sellers", FIELDS)


def server_runs(srv: Any) -> dict[str, tuple]:
    return _walk(srv, "collection-runs", RUN_FIELDS)


def _walk(srv: Any, feed: str, names: tuple[str, ...]) -> dict[str, tuple]:
    rows: dict[str, tuple] = {}
    with ApiClient(srv.url, srv.tokens["analyst"]) as client:
        cursor = None
        for _ in range(100_000):
            read = client.sync_sellers if feed == "sellers" else client.sync_runs
            page = read(cursor=cursor, limit=100, include_deleted=True)
            for item in page.items:
                assert item["id"] not in rows, "the server's walk repeated a row"
                rows[item["id"]] = _row(item, names)
            if not page.has_more:
                return rows
            cursor = page.next_cursor
    raise AssertionError("the server's feed did not end")


def cache_sellers(store: Store) -> dict[str, tuple]:
    return _cache(store, "sellers", FIELDS)


def cache_runs(store: Store) -> dict[str, tuple]:
    return _cache(store, "collection_runs", RUN_FIELDS)


def _cache(store: Store, table: str, names: tuple[str, ...]) -> dict[str, tuple]:
    with store.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        items = con.sql(f"SELECT {', '.join(names)} FROM {table}").to_arrow_table().to_pylist()
    rows = {item["id"]: _row(item, names) for item in items}
    assert len(rows) == len(items), "the cache holds an id twice"
    return rows


def assert_cache_equals_server(store: Store, srv: Any) -> None:
    cached, served = cache_sellers(store), server_sellers(srv)
    missing = served.keys() - cached.keys()
    extra = cached.keys() - served.keys()
    differ = [k for k in served.keys() & cached.keys() if served[k] != cached[k]]
    assert not missing and not extra and not differ, (
        f"{len(missing)} missing, {len(extra)} extra, {len(differ)} differ "
        f"(e.g. {differ[:1] and (served[differ[0]], cached[differ[0]])})"
    )
    assert cache_runs(store) == server_runs(srv)


def proxy(
    srv: Any, tamper: Callable[[httpx.Request, httpx.Response], httpx.Response | None]
) -> tuple[httpx.MockTransport, httpx.Client]:
    """A transport that forwards to the real server; ``tamper`` may replace a response."""
    upstream = httpx.Client(base_url=srv.url, timeout=30)

    def handle(request: httpx.Request) -> httpx.Response:
        forwarded = upstream.send(
            upstream.build_request(
                request.method, request.url.copy_with(scheme="http", host=upstream.base_url.host,
                                                      port=upstream.base_url.port),
                headers=request.headers, content=request.content,
            )
        )
        forwarded.read()
        replaced = tamper(request, forwarded)
        if replaced is not None:
            return replaced
        headers = {k: v for k, v in forwarded.headers.items()
                   if k.lower() not in ("content-encoding", "transfer-encoding", "content-length")}
        return httpx.Response(forwarded.status_code, headers=headers, content=forwarded.content)

    return httpx.MockTransport(handle), upstream


def without_features(*names: str):
    """A tamper that hides extensions from /health."""

    def tamper(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.url.path == "/health":
            body = orjson.loads(response.content)
            body["features"] = [f for f in body["features"] if f not in names]
            return httpx.Response(200, json=body)
        return None

    return tamper
