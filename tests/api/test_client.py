"""The API client: against the real reference server, and MockTransport for what it can't do."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest

from sellerbench.api import client as client_module
from sellerbench.api.client import ApiClient, Page, RunList, TablePage
from sellerbench.errors import (
    ApiValidationError,
    AuthError,
    ConflictError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TransportError,
)

# -- against the real server -------------------------------------------------------------


@pytest.fixture
def analyst(server: Any):
    with ApiClient(server.url, server.tokens["analyst"]) as api:
        yield api


@pytest.fixture
def own(make_server: Any):
    """A server of its own (tests that write), and an analyst client on it."""
    srv = make_server(n=40)
    with ApiClient(srv.url, srv.tokens["analyst"], backoff=0.01) as api:
        yield srv, api


def test_features_come_from_health_once(analyst: ApiClient, base_server: Any) -> None:
    assert {"rev_feed", "idempotency", "flag_set", "bulk_flag", "restore"} <= analyst.features
    assert analyst.known_features is analyst.features  # cached, no second request
    with ApiClient(base_server.url, base_server.tokens["analyst"]) as base:
        assert base.features == frozenset()
        assert base.refresh_features() == frozenset()


def test_sync_pages_are_typed_and_walk_to_the_end(analyst: ApiClient) -> None:
    first = analyst.sync_sellers(limit=100, include_deleted=True)
    assert isinstance(first, Page) and len(first.items) == 100 and first.has_more
    assert first.total_estimate == 300
    ids = {item["id"] for item in first.items}
    cursor = first.next_cursor
    while cursor:
        page = analyst.sync_sellers(cursor=cursor, limit=100, include_deleted=True)
        ids |= {item["id"] for item in page.items}
        cursor = page.next_cursor
    assert len(ids) == 300
    rev = analyst.sync_sellers(since_rev=0, limit=10_000)
    assert rev.max_rev is not None and len(rev.items) == 300 and not rev.has_more
    assert all(isinstance(item["rev"], int) for item in rev.items)


def test_sync_page_as_arrow_table_json_and_ipc_agree(analyst: ApiClient) -> None:
    from_json = analyst.sync_page("sellers", since_rev=0, limit=10_000)
    from_ipc = analyst.sync_page("sellers", since_rev=0, limit=10_000, arrow=True)
    assert isinstance(from_json, TablePage) and from_json.table.num_rows == 300
    assert from_json.table.schema.names == client_module.SELLER_SCHEMA.names
    assert from_json.table.equals(from_ipc.table)
    assert (from_json.max_rev, from_json.has_more) == (from_ipc.max_rev, from_ipc.has_more)
    runs = analyst.sync_page("collection-runs", since_rev=0)
    assert runs.table.column("category_ids").type == pa.list_(pa.string())


def test_run_reads(analyst: ApiClient) -> None:
    listed = analyst.list_runs(limit=2)
    assert isinstance(listed, RunList) and len(listed.runs) <= 2 and listed.total >= 1
    history = analyst.run_history()
    assert all(r["status"] in ("completed", "failed", "cancelled") for r in history.runs)
    assert analyst.get_run(listed.runs[0]["id"])["id"] == listed.runs[0]["id"]
    assert isinstance(analyst.active_runs().runs, list)
    assert {"id", "name", "department"} <= set(analyst.categories()[0])


def test_wrong_token_is_a_clear_auth_error_without_the_token(server: Any) -> None:
    secret = "sb-wrong-" + uuid.uuid4().hex
    with ApiClient(server.url, secret) as bad:
        with pytest.raises(AuthError) as caught:
            bad.sync_sellers()
        assert secret not in repr(bad)
    error = caught.value
    assert error.status == 401 and "SELLERBENCH_TOKEN" in str(error)
    assert "GET" in str(error) and "/sync/sellers" in str(error)
    assert secret not in str(error) and secret not in repr(error)


def test_missing_permission_is_403_auth_error(server: Any) -> None:
    with ApiClient(server.url, server.tokens["viewer"]) as viewer, pytest.raises(AuthError) as e:
        viewer.create_seller("Viewer Cannot Write")
    assert e.value.status == 403 and "permission" in str(e.value)


def test_errors_map_onto_the_tree(own) -> None:
    _srv, api = own
    with pytest.raises(NotFoundError):
        api.get_run("no-such-run")
    with pytest.raises(NotFoundError):
        api.update_seller(str(uuid.uuid4()), name="Nobody")
    with pytest.raises(ApiValidationError) as bad_limit:
        api.sync_sellers(limit=0)
    assert bad_limit.value.code == "VALIDATION"
    with pytest.raises(ApiValidationError) as bad_cursor:
        api.sync_sellers(cursor="not-a-cursor")
    assert bad_cursor.value.code == "INVALID_CURSOR"
    api.create_seller("Twice Named")
    with pytest.raises(ConflictError) as dup:
        api.create_seller("twice   NAMED")
    assert dup.value.code == "DUPLICATE"


def test_seller_writes_round_trip(own) -> None:
    _srv, api = own
    created = api.create_seller("Round Trip Shop", idempotency_key="k-create-1")
    again = api.create_seller("Round Trip Shop", idempotency_key="k-create-1")
    assert again["id"] == created["id"]  # the stored response, not a second seller
    renamed = api.update_seller(created["id"], name="Round Trip Store", flagged=True)
    assert renamed["display_name"] == "Round Trip Store" and renamed["flagged"] is True
    assert api.flag_seller(created["id"], False) is False
    assert api.flag_seller(created["id"]) is True  # no value: the base toggle
    bulk = api.create_sellers_bulk(["Bulk One", "Bulk Two", "Round Trip Store"])
    assert (bulk["success_count"], bulk["failed_count"]) == (2, 1)
    new_ids = [s["id"] for s in bulk["created"]]
    assert api.flag_sellers_bulk(new_ids, True) == 2
    assert api.delete_sellers_bulk(new_ids) == 2
    assert api.restore_sellers_bulk(new_ids) == 2
    api.delete_seller(created["id"])
    api.delete_seller(created["id"])  # deleting a deleted seller is fine again
    with pytest.raises(NotFoundError):
        api.update_seller(created["id"], name="Gone")


def test_run_lifecycle(make_server: Any) -> None:
    srv = make_server(n=10)
    with ApiClient(srv.url, srv.tokens["admin"]) as admin:
        category = admin.categories()[0]["id"]
        run = admin.create_run("client test", [category])
        assert run["status"] == "pending"
        assert admin.start_run(run["id"])["status"] == "running"
        assert admin.pause_run(run["id"])["status"] == "paused"
        assert admin.resume_run(run["id"])["status"] == "running"
        assert admin.cancel_run(run["id"])["status"] == "cancelled"
        with pytest.raises(ConflictError) as e:
            admin.start_run(run["id"])
        assert e.value.code == "INVALID_TRANSITION"
        with pytest.raises(ApiValidationError):
            admin.create_run("no categories", [])


def test_stream_yields_the_export_body(analyst: ApiClient) -> None:
    with analyst.stream("GET", "/export/sellers/csv") as response:
        first = next(response.iter_lines())
    assert first.startswith("id,")
    with pytest.raises(NotFoundError), analyst.stream("GET", "/export/sellers/nope"):
        pass


def test_reads_retry_through_503s(make_server: Any) -> None:
    srv = make_server(n=20)
    srv.faults.seed, srv.faults.fail_rate = 1, 0.5
    with ApiClient(srv.url, srv.tokens["analyst"], backoff=0.001, retries=12) as api:
        for _ in range(5):
            assert len(api.sync_sellers(limit=100).items) == 20
    assert srv.faults.counts.get("fail", 0) + sum(srv.faults.counts.values()) > 0


def test_reads_give_up_with_a_clear_server_error(make_server: Any) -> None:
    srv = make_server(n=5)
    srv.faults.fail_rate = 1.0
    api = ApiClient(srv.url, srv.tokens["analyst"], backoff=0.001, retries=3)
    with api, pytest.raises(ServerError) as caught:
        api.sync_sellers()
    assert caught.value.status == 503 and "gave up after 4 attempts" in str(caught.value)


def test_dropped_write_with_key_is_retried_and_applied_once(make_server: Any) -> None:
    srv = make_server(n=5)
    srv.faults.seed, srv.faults.drop_after_rate = 3, 0.6
    with ApiClient(srv.url, srv.tokens["analyst"], backoff=0.001, retries=20) as api:
        created = api.create_seller("Dropped But Kept", idempotency_key="drop-key-1")
        srv.faults.drop_after_rate = 0.0
        names = [s["display_name"] for s in api.sync_sellers(limit=100).items]
    assert names.count("Dropped But Kept") == 1 and created["display_name"] == "Dropped But Kept"


def test_dropped_create_without_key_is_not_retried(make_server: Any) -> None:
    srv = make_server(n=5)
    srv.faults.drop_after_rate = 1.0
    with ApiClient(srv.url, srv.tokens["analyst"], backoff=0.001) as api:
        with pytest.raises(TransportError) as caught:
            api.create_seller("Maybe Created")
        srv.faults.drop_after_rate = 0.0
        names = [s["display_name"] for s in api.sync_sellers(limit=100).items]
    assert "not retried" in str(caught.value) and "POST" in str(caught.value)
    assert names.count("Maybe Created") == 1  # it was applied once; we did not repeat it


# -- MockTransport: faults a server can't easily produce -----------------------------------


def _mock(handler, **kw: Any) -> ApiClient:
    return ApiClient("http://api.test", "sekrit-token", transport=httpx.MockTransport(handler),
                     backoff=0.001, **kw)


def _page(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"items": items, "next_cursor": None, "has_more": False, "total_estimate": 1, **extra}


SELLER = {
    "id": "a1", "display_name": "A", "normalized_name": "a", "platform": "ebay",
    "platform_id": None, "times_seen": 1, "flagged": False, "first_seen_run_id": None,
    "last_seen_run_id": None, "created_at": "2025-01-01T00:00:00.000000Z",
    "updated_at": "2025-01-02T00:00:00.000000Z", "deleted_at": None, "rev": 7,
}


def test_429_waits_for_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", waits.append)
    answers = iter([httpx.Response(429, headers={"Retry-After": "2"},
                                   json={"detail": {"code": "RATE_LIMITED", "message": "slow"}}),
                    httpx.Response(200, json=_page([SELLER]))])
    with _mock(lambda request: next(answers)) as api:
        assert api.sync_sellers().items[0]["id"] == "a1"
    assert waits == [2.0]


def test_429_beyond_patience_raises_rate_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module.time, "sleep", lambda s: None)
    answer = httpx.Response(429, headers={"Retry-After": "3600"}, json={"detail": "slow down"})
    with _mock(lambda request: answer) as api, pytest.raises(RateLimitedError) as caught:
        api.sync_sellers()
    assert caught.value.retry_after == 3600.0


def test_dropped_connections_retry_then_raise_transport_error() -> None:
    calls = []

    def drop(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    with _mock(drop, retries=2) as api, pytest.raises(TransportError) as caught:
        api.sync_sellers(limit=5)
    assert len(calls) == 3
    message = str(caught.value)
    assert "gave up after 3 attempts" in message and "sekrit-token" not in message
    assert "http://api.test/sync/sellers?limit=5" in message


def test_flaky_connection_recovers() -> None:
    failures = iter([httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])

    def flaky(request: httpx.Request) -> httpx.Response:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return httpx.Response(200, json=_page([SELLER]))

    with _mock(flaky) as api:
        assert len(api.sync_sellers().items) == 1


def test_unsent_write_is_retried_but_uncertain_one_is_not() -> None:
    calls: list[str] = []

    def refuse_once(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            raise httpx.ConnectError("refused")  # never reached the server: safe to repeat
        return httpx.Response(201, json=SELLER)

    with _mock(refuse_once) as api:
        assert api.create_seller("A")["id"] == "a1"
    assert calls == ["POST", "POST"]

    def timeout(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ReadTimeout("no answer")

    calls.clear()
    with _mock(timeout) as api, pytest.raises(TransportError) as caught:
        api.flag_seller("a1")  # a toggle: repeating it could undo it
    assert calls == ["POST"] and "not retried" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"<html>oops</html>", "not JSON"),
        (orjson.dumps(_page([SELLER]))[:-20], "not JSON"),
        (orjson.dumps([SELLER]), "not an object"),
        (orjson.dumps({"items": [SELLER], "has_more": False}), "next_cursor"),
        (orjson.dumps(_page([{k: v for k, v in SELLER.items() if k != "display_name"}])),
         "'display_name'"),
        (orjson.dumps(_page([{k: v for k, v in SELLER.items() if k != "deleted_at"}])),
         "'deleted_at'"),
        (orjson.dumps(_page([dict(SELLER, times_seen="3")])), "times_seen"),
        (orjson.dumps(_page([dict(SELLER, flagged=1)])), "flagged"),
        (orjson.dumps(_page([dict(SELLER, updated_at="yesterday")])), "updated_at"),
        (orjson.dumps(dict(_page([SELLER]), has_more=True)), "next_cursor"),
    ],
)
def test_malformed_pages_raise_protocol_errors(body: bytes, complaint: str) -> None:
    with _mock(lambda request: httpx.Response(200, content=body)) as api:
        with pytest.raises(ProtocolError) as as_dicts:
            api.sync_sellers()
        with pytest.raises(ProtocolError) as as_table:
            api.sync_page("sellers")
    for error in (as_dicts.value, as_table.value):
        assert "/sync/sellers" in str(error)
    assert complaint in str(as_dicts.value) and complaint in str(as_table.value)


def test_unknown_extra_fields_are_tolerated() -> None:
    item = dict(SELLER, shiny_new_field={"nested": [1, 2]})
    body = orjson.dumps(dict(_page([item]), also_new=True))
    with _mock(lambda request: httpx.Response(200, content=body)) as api:
        assert api.sync_sellers().items[0]["id"] == "a1"
        table = api.sync_page("sellers").table
    assert table.column_names == client_module.SELLER_SCHEMA.names


def test_rev_pages_must_carry_max_rev() -> None:
    body = orjson.dumps(_page([SELLER]))
    with _mock(lambda request: httpx.Response(200, content=body)) as api:
        with pytest.raises(ProtocolError, match="max_rev"):
            api.sync_page("sellers", since_rev=0)
        with pytest.raises(ProtocolError, match="max_rev"):
            api.sync_sellers(since_rev=0)


def test_broken_arrow_page_is_a_protocol_error() -> None:
    headers = {"X-Has-More": "false", "X-Max-Rev": "3", "Content-Type": "application/json"}
    api = _mock(lambda r: httpx.Response(200, content=b"not arrow", headers=headers))
    with api, pytest.raises(ProtocolError, match="Arrow IPC"):
        api.sync_page("sellers", since_rev=0, arrow=True)


def test_error_bodies_of_any_shape_become_messages() -> None:
    answers = iter([httpx.Response(502, text="<h1>Bad gateway</h1>")] * 2)
    with _mock(lambda r: next(answers), retries=1) as api, pytest.raises(ServerError) as e:
        api.sync_sellers()
    assert "Bad gateway" in str(e.value) and e.value.status == 502


def test_ids_cannot_escape_their_path_segment() -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"id": "x", "status": "running"})

    with _mock(record) as api:
        api.get_run("../../sellers/bulk/delete")
    assert seen == ["/collection/runs/..%2F..%2Fsellers%2Fbulk%2Fdelete"]
