"""GET /export/sellers/csv and /export/sellers/json: live sellers, streamed.

The stream walks the table in ``id`` order, ``CHUNK`` rows per short read transaction
(keyset pagination inside), so server memory stays constant whatever the table size and
no snapshot is held open while a slow client reads. Rows written during an export are
seen or not depending on where the walk is, as with any live export.

The CSV quotes what needs quoting (commas, quotes, newlines) and nothing more: values
starting with ``=``, ``+``, ``-`` or ``@`` are exported as they are. Guarding spreadsheets
against formulas is the job of whoever opens the file, and altering data here would make
the export disagree with the API.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import StreamingResponse

from ..storage.core import Storage
from ..storage.records import SELLER_COLUMNS, seller_record
from .deps import ReadUser, settings_of, storage_of
from .problems import error_responses

__all__ = ["install", "router"]

CHUNK = 1000

router = APIRouter(tags=["export"])


def install(app: FastAPI) -> None:
    app.include_router(router)


def _chunks(storage: Storage, flagged: bool | None) -> Iterator[list[tuple[Any, ...]]]:
    where = "deleted_at IS NULL AND id > ?"
    extra: list[Any] = []
    if flagged is not None:
        where += " AND flagged = ?"
        extra.append(1 if flagged else 0)
    sql = f"SELECT {', '.join(SELLER_COLUMNS)} FROM sellers WHERE {where} ORDER BY id LIMIT ?"
    after = ""
    while True:
        with storage.read() as conn:
            rows = conn.execute(sql, [after, *extra, CHUNK]).fetchall()
        if not rows:
            return
        yield rows
        if len(rows) < CHUNK:
            return
        after = rows[-1][0]


def _columns(with_rev: bool) -> list[str]:
    return [c for c in SELLER_COLUMNS if c != "deleted_at" and (with_rev or c != "rev")]


def csv_stream(storage: Storage, flagged: bool | None, with_rev: bool) -> Iterator[bytes]:
    columns = _columns(with_rev)
    picks = [SELLER_COLUMNS.index(c) for c in columns]
    flag_at = SELLER_COLUMNS.index("flagged")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    yield buffer.getvalue().encode("utf-8")
    for rows in _chunks(storage, flagged):
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.writerow([
                ("true" if row[i] else "false") if i == flag_at else row[i] for i in picks
            ])
        yield buffer.getvalue().encode("utf-8")


def json_stream(storage: Storage, flagged: bool | None, with_rev: bool) -> Iterator[bytes]:
    yield b"["
    first = True
    for rows in _chunks(storage, flagged):
        parts = [orjson.dumps(seller_record(row, with_rev=with_rev)) for row in rows]
        yield (b"" if first else b",") + b",".join(parts)
        first = False
    yield b"]"


FLAGGED_Q = Query(None, description="only flagged (true) or unflagged (false) sellers")
ERRORS = error_responses(401, 403, 422, 429, 503)


@router.get(
    "/export/sellers/csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                     "description": "live sellers as CSV, header row first"}, **ERRORS},
    summary="Live sellers as streamed CSV",
)
def export_csv(request: Request, _user: ReadUser, flagged: bool | None = FLAGGED_Q):
    stream = csv_stream(storage_of(request), flagged, settings_of(request).ext)
    return _download(stream, "text/csv; charset=utf-8", "sellers.csv")


@router.get(
    "/export/sellers/json",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {"schema": {
        "type": "array", "items": {"$ref": "#/components/schemas/Seller"}}}},
        "description": "live sellers as one JSON array"}, **ERRORS},
    summary="Live sellers as a streamed JSON array",
)
def export_json(request: Request, _user: ReadUser, flagged: bool | None = FLAGGED_Q):
    stream = json_stream(storage_of(request), flagged, settings_of(request).ext)
    return _download(stream, "application/json", "sellers.json")


def _download(stream: Any, media_type: str, filename: str) -> StreamingResponse:
    """A streamed body the browser saves as ``filename``."""
    return StreamingResponse(stream, media_type=media_type,
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
