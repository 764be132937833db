"""The sync feeds: keyset pages of sellers and collection runs.

Base mode (what the origin serves): ``updated_at DESC, id DESC`` with an opaque cursor
holding the last row's ``(updated_at, id)``. A row written during a traversal moves to
the front, so every row not touched during it is still seen exactly once.

Rev mode (**ext** ``rev_feed``): rows with ``rev > since_rev`` in ``rev`` order,
tombstones included. ``max_rev`` is read in the same snapshot as the page: every change
up to it is visible, so a client that reached the end may continue from ``max_rev``.

Cursors are base64url JSON naming their feed and mode, so a cursor from another feed or
a mangled one is a 400 ``INVALID_CURSOR`` rather than a wrong page.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .problems import Problem
from .records import RUN_COLUMNS, SELLER_COLUMNS, run_record, seller_record

__all__ = ["RUNS", "SELLERS", "FeedSpec", "Page", "base_page", "decode_cursor", "rev_page"]


@dataclass(frozen=True)
class FeedSpec:
    name: str  # short tag written into cursors
    table: str
    columns: tuple[str, ...]
    record: Callable[..., dict[str, Any]]
    has_flagged: bool


SELLERS = FeedSpec("s", "sellers", SELLER_COLUMNS, seller_record, True)
RUNS = FeedSpec("r", "collection_runs", RUN_COLUMNS, run_record, False)


@dataclass
class Page:
    rows: list[tuple[Any, ...]]
    next_cursor: str | None
    has_more: bool
    total_estimate: int | None
    max_rev: int | None = None

    def body(self, spec: FeedSpec, *, with_rev: bool) -> dict[str, Any]:
        record = spec.record
        body: dict[str, Any] = {
            "items": [record(row, with_rev=with_rev) for row in self.rows],
            "next_cursor": self.next_cursor,
            "has_more": self.has_more,
            "total_estimate": self.total_estimate,
        }
        if self.max_rev is not None:
            body["max_rev"] = self.max_rev
        return body


def encode_cursor(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, spec: FeedSpec, mode: str) -> dict[str, Any]:
    """The cursor's payload, or a 400 INVALID_CURSOR saying why it cannot be used."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = orjson.loads(raw)
    except (ValueError, TypeError, UnicodeEncodeError):
        payload = None
    if not isinstance(payload, dict) or payload.get("f") != spec.name:
        raise Problem(400, "INVALID_CURSOR", "the cursor is not one this feed handed out")
    if payload.get("m") != mode:
        raise Problem(
            400,
            "INVALID_CURSOR",
            "the cursor belongs to the other sync mode (with or without since_rev)",
        )
    return payload


def _select(spec: FeedSpec) -> str:
    return f"SELECT {', '.join(spec.columns)} FROM {spec.table}"


def base_page(
    conn: sqlite3.Connection,
    spec: FeedSpec,
    *,
    cursor: str | None,
    limit: int,
    updated_since: str | None,
    include_deleted: bool,
    flagged: bool | None,
) -> Page:
    where: list[str] = []
    params: list[Any] = []
    if not include_deleted:
        where.append("deleted_at IS NULL")
    if flagged is not None and spec.has_flagged:
        # a literal, not a parameter, so SQLite can use the partial index on flagged = 1
        where.append("flagged = 1" if flagged else "flagged = 0")
    if updated_since is not None:
        where.append("updated_at >= ?")
        params.append(updated_since)
    filters, filter_params = list(where), list(params)
    if cursor is not None:
        payload = decode_cursor(cursor, spec, "b")
        updated, row_id = payload.get("u"), payload.get("i")
        if not isinstance(updated, str) or not isinstance(row_id, str):
            raise Problem(400, "INVALID_CURSOR", "the cursor is damaged")
        where.append("(updated_at < ? OR (updated_at = ? AND id < ?))")
        params += [updated, updated, row_id]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    sql = f"{_select(spec)}{clause} ORDER BY updated_at DESC, id DESC LIMIT ?"
    rows = conn.execute(sql, [*params, limit + 1]).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if has_more:
        last = dict(zip(spec.columns, rows[-1], strict=True))
        next_cursor = encode_cursor({"f": spec.name, "m": "b", "u": last["updated_at"],
                                     "i": last["id"]})
    total = None
    if cursor is None:
        count_clause = f" WHERE {' AND '.join(filters)}" if filters else ""
        total = conn.execute(
            f"SELECT count(*) FROM {spec.table}{count_clause}", filter_params
        ).fetchone()[0]
    return Page(rows, next_cursor, has_more, total)


def current_rev(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'rev'").fetchone()[0])


def rev_page(
    conn: sqlite3.Connection, spec: FeedSpec, *, since_rev: int, cursor: str | None, limit: int
) -> Page:
    after = since_rev
    if cursor is not None:
        payload = decode_cursor(cursor, spec, "r")
        after = payload.get("r")
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**62:
            raise Problem(400, "INVALID_CURSOR", "the cursor is damaged")
    rows = conn.execute(
        f"{_select(spec)} WHERE rev > ? ORDER BY rev LIMIT ?", (after, limit + 1)
    ).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if has_more:
        next_cursor = encode_cursor({"f": spec.name, "m": "r", "r": rows[-1][-1]})
    max_rev = current_rev(conn)
    total = None
    if cursor is None:
        # Counting rev > N walks the index (70 ms at a million rows); a plain count(*)
        # is nearly free. Exact from 0; else an upper bound: each change moves one row.
        everything = conn.execute(f"SELECT count(*) FROM {spec.table}").fetchone()[0]
        total = everything if after == 0 else min(everything, max(0, max_rev - after))
    return Page(rows, next_cursor, has_more, total, max_rev=max_rev)
