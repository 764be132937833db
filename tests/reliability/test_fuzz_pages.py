"""Hypothesis against the client's page parsing (sellerbench/api/pages.py) and what sync does
with a page it refuses.

Whatever bytes come back, parsing either returns a page that holds to the contract
(every column of the feed's schema, in order, no null where one is required) or
reports a ProtocolError through ``fail``; no other exception escapes. A page that
is whole and valid is read exactly. And a sync that meets a bad page writes nothing
of it: the cache's rows and checkpoints stay as they were.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sellerbench.api.client import ApiClient
from sellerbench.api.pages import SCHEMAS, TablePage, parse_arrow_page, parse_json_page
from sellerbench.cache.store import Store
from sellerbench.errors import ProtocolError
from sellerbench.workbench import Workbench

FAST = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def _dumps(value: Any) -> bytes:
    """JSON as any server might send it (integers beyond 64 bits included)."""
    return json.dumps(value).encode()


def fail(what: str) -> ProtocolError:
    return ProtocolError(f"the page {what}")


def _parse(feed: str, body: bytes, rev: bool) -> TablePage | None:
    """The page, or None when it was refused as a ProtocolError (anything else raises)."""
    try:
        page = parse_json_page(feed, body, rev=rev, fail=fail)
    except ProtocolError:
        return None
    _holds_to_the_contract(feed, page, rev)
    return page


def _holds_to_the_contract(feed: str, page: TablePage, rev: bool) -> None:
    schema = SCHEMAS[feed]
    assert page.table.column_names == schema.names
    assert [f.type for f in page.table.schema] == [f.type for f in schema]
    for field in schema:
        nulls = page.table.column(field.name).null_count
        if not field.nullable or (rev and field.name == "rev"):
            assert nulls == 0, field.name
    assert isinstance(page.has_more, bool)
    assert not (page.has_more and page.next_cursor is None)
    if rev:
        assert page.max_rev is not None


# -- strategies ------------------------------------------------------------------------

_TS = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.isoformat().replace("+00:00", "Z"))
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6,
)
_VALID = {
    "string": st.text(min_size=1, max_size=30),
    "int32": st.integers(0, 2**31 - 1),
    "int64": st.integers(1, 2**62),
    "bool": st.booleans(),
    "timestamp[us, tz=UTC]": _TS,
    "double": st.floats(0, 1e9, allow_nan=False),
    "list<item: string>": st.lists(st.text(max_size=8), max_size=3),
}


def _valid_value(field: pa.Field) -> st.SearchStrategy:
    value = _VALID[str(field.type)]
    return st.none() | value if field.nullable and field.name != "rev" else value


def _valid_item(feed: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({f.name: _valid_value(f) for f in SCHEMAS[feed]})


def _damaged_item(feed: str) -> st.SearchStrategy:
    """A valid item with some fields dropped, retyped or joined by strangers."""
    names = SCHEMAS[feed].names

    @st.composite
    def build(draw: Any) -> dict:
        item = draw(_valid_item(feed))
        for name in draw(st.lists(st.sampled_from(names), max_size=3)):
            if draw(st.booleans()):
                item.pop(name, None)
            else:
                item[name] = draw(_JSON)
        item.update(draw(st.dictionaries(st.text(max_size=6), _JSON, max_size=2)))
        return item

    return build()


def _page(items: st.SearchStrategy, *, valid_paging: bool) -> st.SearchStrategy:
    if valid_paging:
        paging = st.fixed_dictionaries({
            "next_cursor": st.none(),
            "has_more": st.just(False),
            "total_estimate": st.none() | st.integers(0, 10**6),
            "max_rev": st.integers(0, 2**62),
        })
    else:
        paging = st.dictionaries(
            st.sampled_from(["next_cursor", "has_more", "total_estimate", "max_rev"]),
            _JSON | st.booleans() | st.text(max_size=10),
        )
    return st.builds(lambda p, i: {**p, "items": i}, paging, st.lists(items, max_size=4))


FEEDS = st.sampled_from(sorted(SCHEMAS))


# -- parsing -----------------------------------------------------------------------------


@FAST
@given(feed=FEEDS, body=st.binary(max_size=300), rev=st.booleans())
def test_any_bytes_are_a_page_or_a_protocol_error(feed: str, body: bytes, rev: bool) -> None:
    _parse(feed, body, rev)


@FAST
@given(feed=FEEDS, value=_JSON, rev=st.booleans())
def test_any_json_is_a_page_or_a_protocol_error(feed: str, value: Any, rev: bool) -> None:
    _parse(feed, _dumps(value), rev)


@FAST
@given(data=st.data(), feed=FEEDS, rev=st.booleans())
def test_damaged_pages_are_refused_or_hold_to_the_contract(data, feed: str, rev: bool) -> None:
    page = data.draw(_page(_damaged_item(feed), valid_paging=data.draw(st.booleans())))
    body = _dumps(page)
    cut = data.draw(st.integers(0, len(body)))
    _parse(feed, body if data.draw(st.booleans()) else body[:cut], rev)


@FAST
@given(data=st.data(), feed=FEEDS)
def test_valid_pages_are_read_exactly(data, feed: str) -> None:
    page = data.draw(_page(_valid_item(feed), valid_paging=True))
    parsed = _parse(feed, _dumps(page), rev=True)
    assert parsed is not None, "a valid page was refused"
    rows = parsed.table.to_pylist()
    assert [r["id"] for r in rows] == [i["id"] for i in page["items"]]
    for row, item in zip(rows, page["items"], strict=True):
        for name, value in item.items():
            got = row[name]
            if isinstance(got, datetime):
                got = got.isoformat().replace("+00:00", "Z")
            assert got == value, name
    assert parsed.max_rev == page["max_rev"]


def _arrow(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


_ARROW_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "X-Has-More": st.sampled_from(["true", "false", "True", "", "maybe"]),
        "X-Next-Cursor": st.text(max_size=5),
        "X-Total-Estimate": st.sampled_from(["", "3", "-1", "x"]),
        "X-Max-Rev": st.sampled_from(["0", "12", "", "1e3", "nope"]),
    },
)


@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data(), feed=FEEDS)
def test_arrow_pages_are_a_page_or_a_protocol_error(data, feed: str) -> None:
    schema = SCHEMAS[feed]
    rows = data.draw(st.lists(_valid_item(feed), max_size=3))
    columns = {f.name: [r[f.name] for r in rows] for f in schema}
    # Drop, duplicate or retype a column now and then.
    names = list(columns)
    for name in data.draw(st.lists(st.sampled_from(names), max_size=2)):
        roll = data.draw(st.integers(0, 2))
        if roll == 0:
            columns.pop(name, None)
        elif roll == 1 and name in columns:
            columns[name] = [str(v) for v in columns[name]]
    arrays, fields = [], []
    for name, values in columns.items():
        kind = schema.field(name).type if name in schema.names else pa.string()
        if any(isinstance(v, str) for v in values) and kind != pa.string():
            kind = pa.string()
        if pa.types.is_timestamp(kind):
            values = [None if v is None else datetime.fromisoformat(v) for v in values]
        arrays.append(pa.array(values, kind))
        fields.append(name)
    if data.draw(st.booleans()) and fields:
        arrays.append(arrays[0])
        fields.append(fields[0])  # the same column twice
    body = _arrow(pa.table(arrays, names=fields)) if fields else b""
    if data.draw(st.booleans()):
        body = body[: data.draw(st.integers(0, len(body)))]
    headers = data.draw(_ARROW_HEADERS)
    try:
        page = parse_arrow_page(feed, body, headers, fail=fail)
    except ProtocolError:
        return
    _holds_to_the_contract(feed, page, rev=True)


# -- a sync that meets a bad page writes nothing of it ---------------------------------------


def _seller(i: int, rev: int) -> dict:
    when = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i)).isoformat()
    return {
        "id": f"s{i:05d}", "display_name": f"Seller {i}", "normalized_name": f"seller {i}",
        "platform": "ebay", "platform_id": None, "times_seen": 1, "flagged": False,
        "first_seen_run_id": None, "last_seen_run_id": None, "created_at": when,
        "updated_at": when, "deleted_at": None, "rev": rev,
    }


def _snapshot(store: Store) -> tuple:
    with store.connect() as con:
        rows = con.execute("SELECT * FROM sellers ORDER BY id").fetchall()
        state = con.execute("SELECT * FROM sync_state ORDER BY feed").fetchall()
    return rows, state


@pytest.fixture(scope="module")
def synced(tmp_path_factory) -> Store:
    """A cache synced from a fake rev-feed server holding 20 sellers (revs 1-20)."""
    path = tmp_path_factory.mktemp("fuzz") / "cache.duckdb"
    good = [_seller(i, i + 1) for i in range(20)]
    wb = Workbench(Store(path), _fake_api(lambda since: (good, 20)), auto_push=False)
    wb.sync(progress=False)
    wb.client.close()
    return wb.store


def _fake_api(answer) -> ApiClient:
    """An API whose rev feed answers ``answer(since_rev)``: (items, max_rev) for a page
    of JSON (more follow while max_rev is above the page's last rev), or raw bytes.
    Runs are always empty."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok", "api_version": "1",
                                             "features": ["rev_feed"]})
        if request.url.path == "/sync/collection-runs":
            return httpx.Response(200, json={"items": [], "next_cursor": None,
                                             "has_more": False, "max_rev": 0})
        served = answer(int(request.url.params.get("since_rev", 0)))
        if isinstance(served, bytes):
            return httpx.Response(200, content=served)
        items, max_rev = served
        if request.url.params.get("limit") == "1":
            items = items[:1]
        more = bool(items) and items[-1]["rev"] < max_rev
        body = {"items": items, "next_cursor": "more" if more else None, "has_more": more,
                "max_rev": max_rev}
        return httpx.Response(200, content=orjson.dumps(body))

    return ApiClient("http://fake.invalid", "t", transport=httpx.MockTransport(handle),
                     retries=0)


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_refused_page_writes_nothing(synced: Store, data) -> None:
    """After the checkpoint (rev 20) come a good page (rev 21), then a damaged one.
    The good page lands with its checkpoint; of the damaged one, nothing does."""
    rows = _snapshot(synced)[0]
    damaged = _dumps(data.draw(_page(_damaged_item("sellers"), valid_paging=False)))
    damaged = damaged[: data.draw(st.integers(1, len(damaged)))]
    extra = _seller(20, 21)

    def answer(since: int):
        return ([extra], 22) if since == 20 else damaged

    wb = Workbench(synced, _fake_api(answer), auto_push=False)
    try:
        wb.sync(progress=False)
        accepted = True
    except ProtocolError as exc:
        assert "run sync again" in str(exc)
        accepted = False
    finally:
        wb.client.close()
    after_rows, after_state = _snapshot(synced)
    if accepted:  # then it was a page the contract allows
        assert _parse("sellers", damaged, rev=True) is not None
    else:
        assert after_rows[:20] == rows and len(after_rows) == 21  # the good page, only
        assert after_rows[20][0] == extra["id"]
        assert {r[0]: r[3] for r in after_state}["sellers"] == 21  # its checkpoint
    with synced.connect() as con:  # the starting point again, for the next example
        con.execute("DELETE FROM sellers WHERE rev > 20 OR rev IS NULL")
        con.execute("UPDATE sync_state SET since_rev = 20 WHERE feed = 'sellers'")
