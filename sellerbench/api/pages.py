"""Sync feed pages on the wire: the schema of each feed's items, and strict page parsing.

A JSON page is parsed in C++ by ``pyarrow.json`` straight into columns against an
explicit schema (no Python object per row, and the GIL is released, so the sync's fetch
thread overlaps with DuckDB), then checked: required fields hold no null, every item
carries every key, paging fields are present and agree. An Arrow IPC page (the ``arrow``
extension) is cast to the same schema. Unknown extra fields are ignored; anything else
that breaks the contract is reported through ``fail(what)``, which the client turns into
a ProtocolError naming the request.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson
import pyarrow as pa
import pyarrow.json as pa_json

from ..schema import RUN, SELLER

__all__ = ["RUN_SCHEMA", "SELLER_SCHEMA", "TablePage", "parse_arrow_page", "parse_json_page"]

Fail = Callable[[str], Exception]


@dataclass(frozen=True)
class TablePage:
    """One page of a sync feed as an Arrow table with the columns of the feed's schema."""

    table: pa.Table
    next_cursor: str | None
    has_more: bool
    total_estimate: int | None
    max_rev: int | None = None


_TS = pa.timestamp("us", tz="UTC")


SELLER_SCHEMA = SELLER.arrow_schema()
RUN_SCHEMA = RUN.arrow_schema()
SCHEMAS: dict[str, pa.Schema] = {"sellers": SELLER_SCHEMA, "collection-runs": RUN_SCHEMA}

# Fields the contract always sends but may hold null: their presence is checked apart,
# since a columnar parse cannot tell a missing key from a null.
_OPTIONAL_KEYS: dict[str, tuple[tuple[str, bytes], ...]] = {
    feed: tuple((f.name, f'"{f.name}"'.encode()) for f in schema if f.nullable and f.name != "rev")
    for feed, schema in SCHEMAS.items()
}


def _page_schema(feed: str) -> pa.Schema:
    item = pa.struct([f.with_nullable(True) for f in SCHEMAS[feed]])
    return pa.schema(
        [
            ("items", pa.list_(item)),
            ("next_cursor", pa.string()),
            ("has_more", pa.bool_()),
            ("total_estimate", pa.int64()),
            ("max_rev", pa.int64()),
        ]
    )


_PAGE_SCHEMAS = {feed: _page_schema(feed) for feed in SCHEMAS}
_LOOSE = {feed: pa.schema([f.with_nullable(True) for f in s]) for feed, s in SCHEMAS.items()}


def parse_json_page(feed: str, body: bytes, *, rev: bool, fail: Fail) -> TablePage:
    """A JSON page as a TablePage; ``rev``: the page answers ``since_rev`` (needs max_rev)."""
    if not body.lstrip().startswith(b"{"):
        # Only an object can be a page; and pyarrow's JSON reader (26.0) kills the whole
        # process on a body that begins with ``null``, so nothing else may reach it.
        raise fail(_json_complaint(feed, body, ValueError("not an object")))
    try:
        parsed = pa_json.read_json(
            io.BytesIO(body),
            read_options=pa_json.ReadOptions(block_size=len(body) + 64, use_threads=False),
            parse_options=pa_json.ParseOptions(
                explicit_schema=_PAGE_SCHEMAS[feed], unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise fail(_json_complaint(feed, body, exc)) from exc
    if parsed.num_rows != 1:
        raise fail("is not one JSON object")
    head = parsed.drop_columns(["items"]).to_pylist()[0]
    if head["has_more"] is None:
        raise fail("has no 'has_more'")
    if head["next_cursor"] is None and b'"next_cursor"' not in body:
        raise fail("has no 'next_cursor'")
    if rev and head["max_rev"] is None:
        raise fail("has no 'max_rev'")
    if head["has_more"] and head["next_cursor"] is None:
        raise fail("says has_more but gives no next_cursor")
    items = parsed.column("items").combine_chunks()
    if items.null_count:
        raise fail("has no 'items' list")
    table = pa.Table.from_struct_array(items.flatten())
    _check_table(feed, table, rev, fail)
    if table.num_rows:
        for name, quoted in _OPTIONAL_KEYS[feed]:
            # A columnar parse reads a missing key as null; the contract sends every key.
            if body.count(quoted) < table.num_rows:
                raise fail(f"has item(s) without the field {name!r}")
    return TablePage(
        table, head["next_cursor"], head["has_more"], head["total_estimate"], head["max_rev"]
    )


def parse_arrow_page(
    feed: str, body: bytes, headers: Mapping[str, str], *, fail: Fail
) -> TablePage:
    """An Arrow IPC page (ext ``arrow``), paging metadata in ``X-*`` headers."""
    try:
        table = pa.ipc.open_stream(body).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise fail(f"is not an Arrow IPC stream: {exc}") from exc
    schema = SCHEMAS[feed]
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise fail(f"lacks the column(s) {', '.join(missing)}")
    twice = [f.name for f in schema if table.column_names.count(f.name) > 1]
    if twice:  # which one would be the seller's? (pyarrow raises KeyError on lookup)
        raise fail(f"has the column(s) {', '.join(twice)} more than once")
    try:
        table = pa.table([table.column(f.name).cast(f.type) for f in schema], schema=_LOOSE[feed])
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise fail(f"has a column of the wrong type: {exc}") from exc
    _check_table(feed, table, True, fail)
    try:
        cursor = headers.get("X-Next-Cursor") or None
        has_more = headers["X-Has-More"].lower() == "true"
        estimate = int(headers["X-Total-Estimate"]) if headers.get("X-Total-Estimate") else None
        max_rev = int(headers["X-Max-Rev"])
    except (KeyError, ValueError) as exc:
        raise fail(f"lacks its paging headers ({exc})") from exc
    if has_more and cursor is None:
        raise fail("says has_more but gives no next_cursor")
    return TablePage(table, cursor, has_more, estimate, max_rev)


def _json_complaint(feed: str, body: bytes, exc: Exception) -> str:
    """Say plainly why a page did not parse (only on the failure path, so per-item work)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as bad:
        return f"is not JSON ({bad})"
    if not isinstance(value, dict):
        return f"is a JSON {type(value).__name__}, not an object"
    for name, kind in (("has_more", bool), ("total_estimate", int), ("max_rev", int)):
        if value.get(name) is not None and not isinstance(value[name], kind):
            return f"has {name!r} = {value[name]!r:.40}, not {kind.__name__}"
    items = value.get("items")
    if not isinstance(items, list):
        return f"has 'items' = {items!r:.40}, not a list"
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return f"has item {index} = {item!r:.40}, not an object"
        for field in SCHEMAS[feed]:
            if item.get(field.name) is not None and not _fits(item[field.name], field.type):
                return f"has item {index} with {field.name!r} = {item[field.name]!r:.60}, " \
                       f"not {field.type}"
    return f"cannot be read ({str(exc).removeprefix('JSON parse error: ')})"


def _fits(value: object, kind: pa.DataType) -> bool:
    try:
        pa.array([value], kind if not pa.types.is_timestamp(kind) else pa.string()).cast(kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return False
    return not (isinstance(value, bool) and not pa.types.is_boolean(kind))


def _check_table(feed: str, table: pa.Table, rev: bool, fail: Fail) -> None:
    """Required fields hold no null (and ``rev`` none in the rev feed)."""
    for field in SCHEMAS[feed]:
        nulls = table.column(field.name).null_count
        if field.name == "rev":
            if rev and nulls:
                raise fail("has items without 'rev' in the rev feed")
        elif not field.nullable and nulls:
            raise fail(f"has {nulls} item(s) with {field.name!r} missing or null")
