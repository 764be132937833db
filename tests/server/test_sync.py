"""GET /sync/sellers and /sync/collection-runs: both modes, cursors, filters, bounds, auth."""

from __future__ import annotations

import pyarrow as pa
import pytest

from .srvutil import error_of

ARROW = "application/vnd.apache.arrow.stream"


@pytest.fixture(scope="module")
def server(tmp_path_factory, storage, db_url):
    """A 300-seller server of this module's own, on each storage of the conftest: the
    counts below must not depend on what other tests wrote into the shared session server."""
    from sellerbench.server.embedded import start

    srv = start(n=300, seed=7, data_dir=tmp_path_factory.mktemp("sync"), db=db_url(storage))
    kind = {"sqlite": "SQLiteStorage", "postgresql": "PostgresStorage"}[storage]
    assert type(srv.storage).__name__ == kind, "the module's server is not on its storage"
    yield srv
    srv.stop()


def walk(c, path: str, **params) -> list[dict]:
    """Every item of a feed, page by page, bounded."""
    items: list[dict] = []
    cursor = None
    for _ in range(1000):
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        body = c.get(path, params=query).raise_for_status().json()
        items += body["items"]
        assert body["has_more"] == (body["next_cursor"] is not None)
        if not body["has_more"]:
            return items
        cursor = body["next_cursor"]
    raise AssertionError("the feed never ended")


def test_base_walk_sees_every_live_seller_once_in_order(server, client):
    c = client(server)
    first = c.get("/sync/sellers", params={"limit": 7}).json()
    items = walk(c, "/sync/sellers", limit=7)
    ids = [s["id"] for s in items]
    assert len(ids) == len(set(ids)) == first["total_estimate"]
    assert all(s["deleted_at"] is None for s in items)
    keys = [(s["updated_at"], s["id"]) for s in items]
    assert keys == sorted(keys, reverse=True)


def test_base_walk_crosses_updated_at_ties(server, client):
    items = walk(client(server), "/sync/sellers", limit=7, include_deleted=True)
    stamps = [s["updated_at"] for s in items]
    tied = {t for t in stamps if stamps.count(t) > 7}
    assert tied, "the demo data has bulk-import ties larger than a page"
    assert len({s["id"] for s in items}) == len(items) == 300


def test_include_deleted_and_flagged_filters(server, client):
    c = client(server)
    everything = walk(c, "/sync/sellers", limit=100, include_deleted=True)
    live = walk(c, "/sync/sellers", limit=100)
    deleted = [s for s in everything if s["deleted_at"] is not None]
    assert deleted and len(live) + len(deleted) == len(everything)
    flagged = walk(c, "/sync/sellers", limit=100, flagged=True)
    assert flagged and all(s["flagged"] for s in flagged)
    assert len(flagged) == sum(1 for s in live if s["flagged"])
    unflagged = walk(c, "/sync/sellers", limit=100, flagged=False)
    assert len(flagged) + len(unflagged) == len(live)


def test_updated_since_keeps_rows_at_or_after(server, client):
    c = client(server)
    live = walk(c, "/sync/sellers", limit=100)
    pivot = live[40]["updated_at"]
    newer = walk(c, "/sync/sellers", limit=100, updated_since=pivot)
    assert {s["id"] for s in newer} == {s["id"] for s in live if s["updated_at"] >= pivot}


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"limit": 0}, 422, "VALIDATION"),
        ({"limit": 101}, 422, "VALIDATION"),
        ({"limit": "lots"}, 422, "VALIDATION"),
        ({"limit": 10_001, "since_rev": 0}, 422, "VALIDATION"),
        ({"since_rev": -1}, 422, "VALIDATION"),
        ({"since_rev": 10**30}, 422, "VALIDATION"),
        ({"flagged": "maybe"}, 422, "VALIDATION"),
        ({"updated_since": "yesterday"}, 422, "VALIDATION"),
        ({"updated_since": "0.5"}, 422, "VALIDATION"),
        ({"updated_since": "2025-01-01T00:00:00"}, 422, "VALIDATION"),
        ({"updated_since": "2025-13-01T00:00:00Z"}, 422, "VALIDATION"),
        ({"updated_since": "0001-01-01T00:00:00+05:00"}, 422, "VALIDATION"),
        ({"cursor": "not-a-cursor"}, 400, "INVALID_CURSOR"),
        ({"cursor": "eyJmIjoicyJ9"}, 400, "INVALID_CURSOR"),
    ],
)
def test_bad_sync_parameters(server, client, params, status, code):
    assert error_of(client(server).get("/sync/sellers", params=params)) == (status, code)


def test_limit_bounds_accepted(server, client):
    c = client(server)
    assert len(c.get("/sync/sellers", params={"limit": 1}).json()["items"]) == 1
    assert len(c.get("/sync/sellers", params={"limit": 100}).json()["items"]) == 100
    page = c.get("/sync/sellers", params={"limit": 10_000, "since_rev": 0}).json()
    assert page["has_more"] is False


def test_cursor_of_one_mode_or_feed_is_refused_by_another(server, client):
    c = client(server)
    base = c.get("/sync/sellers", params={"limit": 5}).json()["next_cursor"]
    rev = c.get("/sync/sellers", params={"limit": 5, "since_rev": 0}).json()["next_cursor"]
    runs = c.get("/sync/collection-runs", params={"limit": 1}).json()["next_cursor"]
    assert error_of(c.get("/sync/sellers", params={"cursor": rev})) == (400, "INVALID_CURSOR")
    bad = c.get("/sync/sellers", params={"cursor": base, "since_rev": 0})
    assert error_of(bad) == (400, "INVALID_CURSOR")
    assert error_of(c.get("/sync/sellers", params={"cursor": runs})) == (400, "INVALID_CURSOR")


def test_rev_feed_is_ascending_with_tombstones_and_max_rev(server, client):
    c = client(server)
    items = walk(c, "/sync/sellers", since_rev=0, limit=64)
    revs = [s["rev"] for s in items]
    assert revs == sorted(revs) and len(set(revs)) == len(revs) == 300
    assert any(s["deleted_at"] for s in items)
    page = c.get("/sync/sellers", params={"since_rev": revs[99], "limit": 10}).json()
    assert [s["rev"] for s in page["items"]] == revs[100:110]
    assert page["max_rev"] >= revs[-1]
    tail = c.get("/sync/sellers", params={"since_rev": page["max_rev"]}).json()
    assert tail == {"items": [], "next_cursor": None, "has_more": False,
                    "total_estimate": 0, "max_rev": page["max_rev"]}


def test_arrow_page_matches_json_page(server, client):
    c = client(server)
    params = {"since_rev": 10, "limit": 25}
    page = c.get("/sync/sellers", params=params).json()
    answer = c.get("/sync/sellers", params=params, headers={"Accept": ARROW})
    assert answer.headers["content-type"] == ARROW
    table = pa.ipc.open_stream(answer.content).read_all()
    assert table.column("id").to_pylist() == [s["id"] for s in page["items"]]
    assert table.column("flagged").to_pylist() == [s["flagged"] for s in page["items"]]
    assert table.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    assert answer.headers["X-Next-Cursor"] == page["next_cursor"]
    assert answer.headers["X-Has-More"] == "true"
    assert int(answer.headers["X-Max-Rev"]) == page["max_rev"]


def test_runs_feed_both_modes(server, client):
    c = client(server)
    runs = walk(c, "/sync/collection-runs", limit=2)
    assert len(runs) >= 6 and all(isinstance(r["category_ids"], list) for r in runs)
    by_rev = walk(c, "/sync/collection-runs", since_rev=0, limit=2)
    assert {r["id"] for r in by_rev} >= {r["id"] for r in runs}


def test_auth_is_required_and_checked(server, client):
    anonymous = client(server, role=None)
    response = anonymous.get("/sync/sellers")
    assert error_of(response) == (401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    wrong = anonymous.get("/sync/sellers", headers={"Authorization": "Bearer nope"})
    assert error_of(wrong) == (401, "UNAUTHORIZED")
    basic = anonymous.get("/sync/sellers", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert error_of(basic) == (401, "UNAUTHORIZED")
    for role in ("viewer", "analyst", "admin"):
        assert client(server, role).get("/sync/collection-runs").status_code == 200
    assert server.tokens["analyst"] not in response.text


def test_health_needs_no_token_and_lists_features(server, base_server, client):
    full = client(server, role=None).get("/health").json()
    assert full["status"] == "ok"
    assert set(full["features"]) == {"rev_feed", "flag_set", "bulk_flag", "restore",
                                     "idempotency", "arrow", "users", "history"}
    assert client(base_server, role=None).get("/health").json()["features"] == []


def test_base_only_serves_base_pages(base_server, client):
    c = client(base_server)
    page = c.get("/sync/sellers", params={"since_rev": 0, "limit": 5}).json()
    assert "max_rev" not in page and all("rev" not in s for s in page["items"])
    keys = [(s["updated_at"], s["id"]) for s in page["items"]]
    assert keys == sorted(keys, reverse=True)
    assert error_of(c.get("/sync/sellers", params={"limit": 101})) == (422, "VALIDATION")


def test_unknown_path_and_method_use_the_error_shape(server, client):
    c = client(server)
    assert error_of(c.get("/no/such/thing")) == (404, "NOT_FOUND")
    assert error_of(c.put("/sync/sellers")) == (405, "METHOD_NOT_ALLOWED")
    wrong = c.put("/sellers/00000000-0000-4000-8000-000000000000")
    assert error_of(wrong) == (405, "METHOD_NOT_ALLOWED")
    assert wrong.headers["Allow"] == "DELETE, PATCH"
