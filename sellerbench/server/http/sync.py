"""GET /sync/sellers and GET /sync/collection-runs, both modes, and the Arrow answer."""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
from fastapi import APIRouter, Query, Request, Response

from ...schema import BASE_LIMIT, REV_LIMIT, SELLER
from ..storage import feed
from ..storage.records import format_ts
from .deps import ReadUser, ServerSettings, storage_of
from .models import RunPage, SellerPage
from .problems import Problem, error_responses

__all__ = ["ARROW_STREAM", "build_router"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
MAX_REV = 2**62
RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"

_TS = pa.timestamp("us", tz="UTC")
# The record's types (schema.py); every field nullable, as pyarrow's CSV reader types
# them (the client checks the nulls against the record: api/pages.py).
SELLER_ARROW_SCHEMA = pa.schema([f.with_nullable(True) for f in SELLER.arrow_schema()])


def _since(updated_since: str | None) -> str | None:
    """The stored form of an RFC 3339 time, or 422 when it is not one."""
    if updated_since is None:
        return None
    try:
        moment = datetime.fromisoformat(updated_since.upper())
        if moment.tzinfo is None:
            raise ValueError("no time zone")
        return format_ts(moment)
    except (OverflowError, ValueError) as exc:
        raise Problem(
            422, "VALIDATION",
            "updated_since must be an RFC 3339 time with a zone, e.g. 2026-01-27T18:00:00Z",
        ) from exc


# The "lines" form of a page (feed.py) read as CSV: one field per column, no quoting,
# NULL_MARK for NULL; the types come from the schema, never from guessing.
_LINES_PARSE = pa_csv.ParseOptions(
    delimiter=feed.FIELD_SEP, quote_char=False, escape_char=False, double_quote=False,
    newlines_in_values=False, ignore_empty_lines=False,
)
_LINES_CONVERT = pa_csv.ConvertOptions(
    column_types=SELLER_ARROW_SCHEMA, null_values=[feed.NULL_MARK], true_values=["1"],
    false_values=["0"], strings_can_be_null=True, timestamp_parsers=[pa_csv.ISO8601],
)


def lines_table(page: feed.Page) -> pa.Table | None:
    """A page of form "lines" as an Arrow table, or None if a stored value holds a
    separator after all (then the caller builds it from rows)."""
    if not page.rows:
        return SELLER_ARROW_SCHEMA.empty_table()
    body = b"\n".join([row[0] for row in page.rows])
    read = pa_csv.ReadOptions(column_names=SELLER_ARROW_SCHEMA.names, use_threads=False,
                              block_size=len(body) + 1)
    try:
        table = pa_csv.read_csv(pa.py_buffer(body), read_options=read,
                                parse_options=_LINES_PARSE, convert_options=_LINES_CONVERT)
    except pa.ArrowException:  # a stray separator: wrong field count or type
        return None
    return table if table.num_rows == len(page.rows) else None


def rows_table(page: feed.Page) -> pa.Table:
    """A page of form "rows" as an Arrow table."""
    columns = zip(*page.rows, strict=True) if page.rows else [[]] * len(SELLER_ARROW_SCHEMA)
    arrays = []
    for values, fld in zip(columns, SELLER_ARROW_SCHEMA, strict=True):
        if fld.type == _TS:  # stored as fixed-width RFC 3339 text
            arrays.append(pa.array(values, pa.string()).cast(_TS))
        elif fld.type == pa.bool_():  # stored as 0/1
            arrays.append(pa.array(values, pa.int8()).cast(pa.bool_()))
        else:
            arrays.append(pa.array(values, fld.type))
    return pa.Table.from_arrays(arrays, schema=SELLER_ARROW_SCHEMA)


def arrow_page(page: feed.Page, table: pa.Table) -> Response:
    """The page as an Arrow IPC stream; paging metadata travels in headers."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, SELLER_ARROW_SCHEMA) as writer:
        writer.write_table(table)
    headers = {
        "X-Has-More": "true" if page.has_more else "false",
        "X-Max-Rev": str(page.max_rev),
    }
    if page.next_cursor is not None:
        headers["X-Next-Cursor"] = page.next_cursor
    if page.total_estimate is not None:
        headers["X-Total-Estimate"] = str(page.total_estimate)
    return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM, headers=headers)


def _json_page(page: feed.Page, spec: feed.FeedSpec, *, with_rev: bool) -> Response:
    # The body is built as bytes (feed.Page.json); the route's response_model only
    # documents it in /openapi.json.
    return Response(page.json(spec, with_rev=with_rev), media_type="application/json")


def _wants_arrow(request: Request) -> bool:
    return ARROW_STREAM in request.headers.get("accept", "")


def build_router(settings: ServerSettings) -> APIRouter:
    """The sync routes; in base-only mode without ``since_rev`` or Arrow."""
    router = APIRouter(tags=["sync"])
    ext = settings.ext
    limit_max = REV_LIMIT if ext else BASE_LIMIT
    limit_help = (
        f"rows per page: 1-{BASE_LIMIT}, or 1-{REV_LIMIT} with since_rev" if ext
        else f"rows per page: 1-{BASE_LIMIT}"
    )
    errors = error_responses(400, 401, 403, 422, 429, 503)

    def serve_feed(
        request: Request,
        spec: feed.FeedSpec,
        since_rev: int | None,
        cursor: str | None,
        limit: int,
        updated_since: str | None,
        include_deleted: bool,
        flagged: bool | None,
    ) -> Response:
        storage = storage_of(request)
        if ext and since_rev is not None:
            arrow = spec is feed.SELLERS and _wants_arrow(request)
            with storage.read() as conn:

                def page_as(form: feed.Form) -> feed.Page:
                    return feed.rev_page(conn, spec, since_rev=since_rev, cursor=cursor,
                                         limit=limit, form=form)

                if not arrow:
                    return _json_page(page_as("json"), spec, with_rev=True)
                page = page_as("lines")  # PostgreSQL answers rows: no printf there
                table = lines_table(page) if page.form == "lines" else rows_table(page)
                if table is None:  # the exact, slower way, in the same snapshot
                    page = page_as("rows")
                    table = rows_table(page)
            return arrow_page(page, table)
        if limit > BASE_LIMIT:
            raise Problem(
                422, "VALIDATION", f"limit must be 1-{BASE_LIMIT} without since_rev"
            )
        since = _since(updated_since)
        with storage.read() as conn:
            page = feed.base_page(
                conn, spec, cursor=cursor, limit=limit, updated_since=since,
                include_deleted=include_deleted, flagged=flagged, form="json", with_rev=ext,
            )
        return _json_page(page, spec, with_rev=ext)

    seller_doc: dict[int | str, dict[str, Any]] = dict(errors)
    if ext:
        seller_doc[200] = {
            "description": "a page of sellers; with since_rev and "
            f"'Accept: {ARROW_STREAM}' an Arrow IPC stream, paging in X-Next-Cursor, "
            "X-Has-More, X-Max-Rev and X-Total-Estimate headers",
            "content": {ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}}},
        }

    cursor_q = Query(None, max_length=4096, description="next_cursor of the previous page")
    since_q = Query(
        None, pattern=RFC3339, description="rows with updated_at >= this (base mode)",
        json_schema_extra={"format": "date-time"},
    )
    deleted_q = Query(False, description="include tombstones (base mode)")
    rev_q = Query(
        None, ge=0, le=MAX_REV,
        description="ext rev_feed: rows with rev > since_rev, in rev order, tombstones included",
    )

    def feed_route(spec: feed.FeedSpec, path: str, model: type, summary: str) -> None:
        """One feed's route; without the parameters it does not take here (``since_rev``
        in base-only mode, ``flagged`` on the runs feed), so /openapi.json shows none."""

        def route(
            request: Request,
            _user: ReadUser,
            since_rev: int | None = rev_q,
            cursor: str | None = cursor_q,
            limit: int = Query(BASE_LIMIT, ge=1, le=limit_max, description=limit_help),
            updated_since: str | None = since_q,
            include_deleted: bool = deleted_q,
            flagged: bool | None = flagged_q,
        ) -> Response:
            return serve_feed(request, spec, since_rev if ext else None, cursor, limit,
                              updated_since, include_deleted, flagged)

        signature = inspect.signature(route)
        absent = {"since_rev"} if not ext else set()
        if not spec.has_flagged:
            absent.add("flagged")
        route.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[p for p in signature.parameters.values() if p.name not in absent])
        name = f"sync_{spec.table.split('_')[-1]}" + ("" if ext else "_base")
        router.get(path, response_model=model, summary=summary, name=name,
                   responses=seller_doc if spec.has_flagged else errors)(route)

    flagged_q = Query(None, description="only flagged or unflagged" + (" (base)" if ext else ""))
    feed_route(feed.SELLERS, "/sync/sellers", SellerPage, "Sellers changed, page by page")
    feed_route(feed.RUNS, "/sync/collection-runs", RunPage,
               "Collection runs changed, page by page")
    return router
