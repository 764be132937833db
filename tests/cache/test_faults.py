"""Sync when the server misbehaves: bad pages, dropped connections, a killed process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sellerbench.api.client import ApiClient
from sellerbench.cache import sync as sync_module
from sellerbench.errors import ProtocolError, SyncError, TransportError
from sellerbench.workbench import Workbench

from .syncutil import assert_cache_equals_server, cache_sellers, proxy, without_features

ROOT = Path(__file__).resolve().parents[2]


def _on_proxy(wb: Workbench, srv: Any, tamper) -> httpx.Client:
    transport, upstream = proxy(srv, tamper)
    wb.client.close()
    wb.client = ApiClient(srv.url, srv.tokens["analyst"], transport=transport, backoff=0.001)
    return upstream


def _nth_sellers_page(n: int, damage):
    """Damage the n-th page of the sellers feed (JSON: /health hides ``arrow``)."""
    seen = []
    hide = without_features("arrow")

    def tamper(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.url.path == "/sync/sellers" and request.url.params.get("limit") != "1":
            seen.append(request)
            if len(seen) == n:
                return httpx.Response(200, content=damage(response.content))
        return hide(request, response)

    return tamper


def _drop_field(body: bytes) -> bytes:
    page = orjson.loads(body)
    del page["items"][3]["normalized_name"]
    return orjson.dumps(page)


def _wrong_type(body: bytes) -> bytes:
    page = orjson.loads(body)
    page["items"][0]["times_seen"] = "many"
    return orjson.dumps(page)


def _extra_fields(body: bytes) -> bytes:
    page = orjson.loads(body)
    for item in page["items"]:
        item["brand_new"] = {"x": [1]}
    page["served_by"] = "v2"
    return orjson.dumps(page)


@pytest.mark.parametrize(
    ("damage", "complaint"),
    [
        (lambda body: body[: len(body) // 2], "not JSON"),
        (_drop_field, "'normalized_name' missing"),
        (_wrong_type, "'times_seen' = 'many'"),
    ],
    ids=["truncated", "missing-field", "wrong-type"],
)
def test_bad_page_stops_sync_and_keeps_the_last_good_state(
    make_server: Any, make_wb: Any, monkeypatch: pytest.MonkeyPatch, damage, complaint: str
) -> None:
    monkeypatch.setattr(sync_module, "REV_PAGE", 100)
    srv = make_server(n=350)
    wb = make_wb(srv)
    upstream = _on_proxy(wb, srv, _nth_sellers_page(3, damage))
    with pytest.raises(SyncError) as caught:
        wb.sync(progress=False)
    message = str(caught.value)
    assert complaint in message and "run sync again" in message
    assert "/sync/sellers?" in message and "since_rev=" in message  # names the page
    assert len(cache_sellers(wb.store)) == 200  # pages 1 and 2, committed with their checkpoint
    upstream.close()
    _on_proxy(wb, srv, without_features("arrow"))  # the server is fixed
    report = wb.sync(progress=False)
    assert report.added + report.deleted == 150  # only what was missing
    assert_cache_equals_server(wb.store, srv)


def test_unknown_fields_are_tolerated(make_server: Any, make_wb: Any) -> None:
    srv = make_server(n=50)
    wb = make_wb(srv)
    _on_proxy(wb, srv, _nth_sellers_page(1, _extra_fields))
    wb.sync(progress=False)
    assert_cache_equals_server(wb.store, srv)


def test_bad_arrow_page_is_a_protocol_error(make_server: Any, make_wb: Any) -> None:
    srv = make_server(n=30)
    wb = make_wb(srv)

    def corrupt(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if "arrow" in request.headers.get("accept", ""):
            return httpx.Response(200, headers={"X-Has-More": "false", "X-Max-Rev": "9"},
                                  content=response.content[:-40])
        return None

    _on_proxy(wb, srv, corrupt)
    with pytest.raises(ProtocolError, match="Arrow IPC"):
        wb.sync(progress=False)
    assert cache_sellers(wb.store) == {}


def test_dropped_connections_retry_then_raise_transport_error(
    server: Any, make_wb: Any
) -> None:
    wb = make_wb(server)
    calls = []

    def dropping(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok", "api_version": "1",
                                             "features": ["rev_feed"]})
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    wb.client.close()
    wb.client = ApiClient(server.url, server.tokens["analyst"], backoff=0.001, retries=3,
                          transport=httpx.MockTransport(dropping))
    with pytest.raises(TransportError) as caught:
        wb.sync(progress=False)
    assert calls.count("/sync/sellers") == 4
    assert "gave up after 4 attempts" in str(caught.value)
    assert server.tokens["analyst"] not in str(caught.value)


def test_sync_rides_through_a_flaky_server(make_server: Any, make_wb: Any) -> None:
    srv = make_server(n=200)
    srv.faults.seed, srv.faults.fail_rate = 5, 0.3
    wb = make_wb(srv)
    wb.client.retries, wb.client.backoff = 10, 0.001
    wb.sync(progress=False)
    srv.faults.fail_rate = 0.0
    assert_cache_equals_server(wb.store, srv)


_KILLABLE = textwrap.dedent(
    """
    import sys
    from sellerbench.cache import sync
    from sellerbench.workbench import connect

    sync.REV_PAGE = sync.BASE_PAGE = int(sys.argv[4])
    wb = connect(sys.argv[1], sys.argv[2], sys.argv[3])
    fetch = wb.client.sync_page

    def announced(*args, **kw):
        page = fetch(*args, **kw)
        print("page", flush=True)
        return page

    wb.client.sync_page = announced
    wb.sync(progress=False)
    print("finished", flush=True)
    """
)


@pytest.mark.parametrize("base_only", [False, True], ids=["rev", "base"])
def test_killed_sync_resumes_where_it_stopped(
    make_server: Any, make_wb: Any, tmp_path: Path, base_only: bool
) -> None:
    srv = make_server(n=3000, base_only=base_only)
    cache = tmp_path / "killed.duckdb"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE, srv.url, srv.tokens["analyst"], str(cache), "100"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        for _ in range(12):  # let a dozen pages through, then kill it mid-stream
            assert child.stdout.readline().strip() == "page"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    wb = make_wb(srv, name="killed")
    held = len(cache_sellers(wb.store))
    assert 0 < held < 3000, "the kill should land mid-sync"
    with wb.store.connect() as con:
        state = con.execute(
            "SELECT since_rev, cursor FROM sync_state WHERE feed = 'sellers'"
        ).fetchone()
    assert state[1 if base_only else 0], "a checkpoint was committed with the pages"
    report = wb.sync(progress=False)
    assert report.added + report.deleted == 3000 - held  # resumed: nothing read twice
    assert_cache_equals_server(wb.store, srv)
