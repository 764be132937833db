"""The sync feeds: keyset pages of sellers and collection runs.

Base mode (what the origin serves): ``updated_at DESC, id DESC`` with an opaque cursor
holding the last row's ``(updated_at, id)``. A row written during a traversal moves to
the front, so every row not touched during it is still seen exactly once.

Rev mode (**ext** ``rev_feed``): rows with ``rev > since_rev`` in ``rev`` order,
tombstones included. ``max_rev`` is read in the same snapshot as the page: every change
up to it is visible, so a client that reached the end may continue from ``max_rev``.

Cursors are base64url JSON naming their feed and mode, so a cursor from another feed or
a mangled one is a 400 ``INVALID_CURSOR`` rather than a wrong page.

Speed: a 10,000-row page costs mostly one Python object per cell, so the sellers feed
lets SQLite write each row as one string (``printf``), in one of two forms:

- ``"json"``: the row's API JSON object; :meth:`Page.json` joins them into the body,
  byte for byte what ``orjson.dumps`` of the records gives;
- ``"lines"``: the row's fields split by :data:`FIELD_SEP`, NULL written as
  :data:`NULL_MARK`, for pyarrow's CSV reader to type in C++ (the Arrow answer).

``"rows"`` gives the columns as tuples (the runs feed, which is small, always).
PostgreSQL writes the ``"json"`` form with ``to_json`` and ``||`` (the same bytes), and
answers ``"lines"`` with ``"rows"``.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import orjson

from ...schema import SELLER, Field
from ..http.problems import Problem
from .records import RUN_COLUMNS, SELLER_COLUMNS, run_record, seller_record

__all__ = [
    "FIELD_SEP",
    "NULL_MARK",
    "RUNS",
    "SELLERS",
    "FeedSpec",
    "Form",
    "Page",
    "base_page",
    "decode_cursor",
    "rev_page",
]

Form = Literal["rows", "json", "lines"]

# Control characters: no stored value holds one (records.validate_name refuses them in
# names; every other text column is made by the server).
FIELD_SEP = "\x1f"
NULL_MARK = "\x1e"

# How SQLite writes each seller column (a trailing "?": it may be NULL). Text a person
# writes (names) or another system sends (platform ids) goes through json_quote; every
# other text column is "plain": made by the server from a fixed ASCII alphabet (UUIDs,
# records.format_ts times, the platform names) and needs no JSON escaping.
_FREE_TEXT = frozenset({"display_name", "normalized_name", "platform_id"})


def _kind(f: Field) -> str:
    if f.wire in (int, bool):
        return f.wire.__name__
    return ("text" if f.name in _FREE_TEXT else "plain") + ("?" if f.nullable else "")


SELLER_KINDS: Mapping[str, str] = {f.name: _kind(f) for f in SELLER.fields}


@dataclass(frozen=True)
class FeedSpec:
    name: str  # short tag written into cursors
    table: str
    columns: tuple[str, ...]
    record: Callable[..., dict[str, Any]]
    has_flagged: bool
    kinds: Mapping[str, str] | None = None  # given: SQLite can write the "json"/"lines" forms


SELLERS = FeedSpec("s", "sellers", SELLER_COLUMNS, seller_record, True, SELLER_KINDS)
RUNS = FeedSpec("r", "collection_runs", RUN_COLUMNS, run_record, False)


@dataclass
class Page:
    # form "rows": spec.columns per row; else (the row as bytes, *the key columns)
    rows: list[tuple[Any, ...]]
    next_cursor: str | None
    has_more: bool
    total_estimate: int | None
    max_rev: int | None = None
    form: Form = "rows"

    def json(self, spec: FeedSpec, *, with_rev: bool) -> bytes:
        """The page as the API's JSON body: items, next_cursor, has_more, total_estimate
        and (rev mode) max_rev, in that order. Needs form "rows" or "json"."""
        tail: dict[str, Any] = {
            "next_cursor": self.next_cursor,
            "has_more": self.has_more,
            "total_estimate": self.total_estimate,
        }
        if self.max_rev is not None:
            tail["max_rev"] = self.max_rev
        end = b"]," + orjson.dumps(tail)[1:]
        if self.form == "rows":
            items = orjson.dumps([spec.record(row, with_rev=with_rev) for row in self.rows])
            return b'{"items":' + items[:-1] + end
        if self.form != "json":
            raise ValueError(f"a page of {self.form} has no JSON body")
        if not self.rows:
            return b'{"items":[' + end
        # One join, the envelope glued to the first and last item: a page is megabytes,
        # and every extra copy of it costs more than the join itself.
        parts = [row[0] for row in self.rows]
        parts[0] = b'{"items":[' + parts[0]
        parts[-1] += end
        return b",".join(parts)


def _json_sql(kinds: Mapping[str, str], columns: tuple[str, ...], with_rev: bool) -> str:
    """An SQL expression giving a row as the bytes of its API JSON object: what orjson
    writes (keys in column order, compact, UTF-8, the same escapes)."""
    formats, args = [], []
    for column in columns:
        if column == "rev" and not with_rev:
            continue
        kind = kinds[column]
        if kind == "int":
            value, arg = "%d", column
        elif kind == "bool":
            value, arg = "%s", f"iif({column}, 'true', 'false')"
        elif kind == "plain":
            value, arg = '"%s"', column
        elif kind == "plain?":
            value, arg = "%s", f"""iif({column} IS NULL, 'null', '"' || {column} || '"')"""
        else:  # json_quote writes NULL as null
            value, arg = "%s", f"json_quote({column})"
        formats.append(f'"{column}":{value}')
        args.append(arg)
    return f"CAST(printf('{{{','.join(formats)}}}', {', '.join(args)}) AS BLOB)"


def _json_sql_pg(kinds: Mapping[str, str], columns: tuple[str, ...], with_rev: bool) -> str:
    """``_json_sql`` in PostgreSQL: the same bytes (``to_json`` of text escapes exactly
    what orjson escapes: quote, backslash, and control characters as \\b \\f \\n \\r
    \\t or \\u00xx; everything else is written as it is)."""
    parts = []
    for column in columns:
        if column == "rev" and not with_rev:
            continue
        kind = kinds[column]
        if kind == "int":
            value = f"{column}::text"
        elif kind == "bool":
            value = f"CASE WHEN {column} <> 0 THEN 'true' ELSE 'false' END"
        elif kind == "plain":
            value = f"""'"' || {column} || '"'"""
        elif kind == "plain?":
            value = f"""coalesce('"' || {column} || '"', 'null')"""
        else:
            value = f"coalesce(to_json({column})::text, 'null')"
        parts.append(f"""'"{column}":' || {value}""")
    return f"""convert_to('{{' || {" || ',' || ".join(parts)} || '}}', 'UTF8')"""


def _line_sql(kinds: Mapping[str, str], columns: tuple[str, ...]) -> str:
    """An SQL expression giving a row as its fields split by FIELD_SEP (see the module)."""
    formats = ["%d" if kinds[c] in ("int", "bool") else "%s" for c in columns]
    fields = [f"coalesce({c}, '{NULL_MARK}')" if kinds[c].endswith("?") else c
              for c in columns]
    return f"CAST(printf('{FIELD_SEP.join(formats)}', {', '.join(fields)}) AS BLOB)"


def _select(
    spec: FeedSpec, keys: tuple[str, ...], form: Form, with_rev: bool, dialect: str = "sqlite"
) -> tuple[str, Form]:
    """The ``SELECT ... FROM`` of a page, and the form its rows come in ("rows" when
    the feed or the database has no other: "lines" is SQLite's printf only)."""
    if form == "rows" or spec.kinds is None or (dialect != "sqlite" and form != "json"):
        return f"SELECT {', '.join(spec.columns)} FROM {spec.table}", "rows"
    if form == "json":
        make = _json_sql if dialect == "sqlite" else _json_sql_pg
        text = make(spec.kinds, spec.columns, with_rev)
    else:
        text = _line_sql(spec.kinds, spec.columns)
    return f"SELECT {', '.join((text, *keys))} FROM {spec.table}", form


def _last_keys(
    spec: FeedSpec, rows: list[tuple[Any, ...]], form: Form, keys: tuple[str, ...]
) -> tuple[Any, ...]:
    """The ``keys`` columns of the last row, for the next cursor."""
    last = rows[-1]
    if form != "rows":
        return last[1:]
    return tuple(last[spec.columns.index(key)] for key in keys)


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


def base_page(
    conn: sqlite3.Connection,
    spec: FeedSpec,
    *,
    cursor: str | None,
    limit: int,
    updated_since: str | None,
    include_deleted: bool,
    flagged: bool | None,
    form: Form = "rows",
    with_rev: bool = True,
) -> Page:
    """A base-mode page, its rows in ``form``; ``with_rev``: JSON items carry ``rev``."""
    filters: list[str] = []
    params: list[Any] = []
    if flagged is not None and spec.has_flagged:
        # a literal, not a parameter, so SQLite can use the partial index on flagged = 1
        filters.append("flagged = 1" if flagged else "flagged = 0")
    if updated_since is not None:
        filters.append("updated_at >= ?")
        params.append(updated_since)
    where = [*filters, *([] if include_deleted else ["deleted_at IS NULL"])]
    args = list(params)
    if cursor is not None:
        payload = decode_cursor(cursor, spec, "b")
        updated, row_id = payload.get("u"), payload.get("i")
        if not isinstance(updated, str) or not isinstance(row_id, str):
            raise Problem(400, "INVALID_CURSOR", "the cursor is damaged")
        where.append("(updated_at < ? OR (updated_at = ? AND id < ?))")
        args += [updated, updated, row_id]
    keys = ("updated_at", "id")
    select, form = _select(spec, keys, form, with_rev, _dialect(conn))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    sql = f"{select}{clause} ORDER BY updated_at DESC, id DESC LIMIT ?"
    rows = conn.execute(sql, [*args, limit + 1]).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if has_more:
        updated, row_id = _last_keys(spec, rows, form, keys)
        next_cursor = encode_cursor({"f": spec.name, "m": "b", "u": updated, "i": row_id})
    total = None
    if cursor is None:
        total = _count(conn, spec, filters, params, include_deleted)
    return Page(rows, next_cursor, has_more, total, form=form)


def _count(
    conn: sqlite3.Connection, spec: FeedSpec, filters: list[str], params: list[Any],
    include_deleted: bool,
) -> int:
    """Rows matching ``filters`` (and live, unless ``include_deleted``).

    Live rows are counted as all minus tombstones: ``count(*)`` reads only the page
    headers of an index and tombstones have a small partial index, where counting
    ``deleted_at IS NULL`` directly would read every row of the table.
    """
    def count(conditions: list[str]) -> int:
        clause = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT count(*) FROM {spec.table}{clause}"
        return conn.execute(sql, params).fetchone()[0]

    if include_deleted:
        return count(filters)
    return count(filters) - count([*filters, "deleted_at IS NOT NULL"])


def _dialect(conn: Any) -> str:
    return getattr(conn, "dialect", "sqlite")


def current_rev(conn: Any, floor: int = 0) -> int:
    """Every change up to this rev is visible to ``conn``'s snapshot, and no change at
    or below it can still commit. SQLite: the stored counter (writers are serialised).
    PostgreSQL: the safe rev below every running writer, computed before the snapshot
    begins (:mod:`.pgstorage`); so call this before any other query of the page.
    ``floor``: the rev the client already holds everything up to."""
    safe_rev = getattr(conn, "safe_rev", None)
    if safe_rev is not None:
        return safe_rev(floor)
    return int(conn.execute("SELECT value FROM meta WHERE key = 'rev'").fetchone()[0])


def rev_page(
    conn: sqlite3.Connection,
    spec: FeedSpec,
    *,
    since_rev: int,
    cursor: str | None,
    limit: int,
    form: Form = "rows",
) -> Page:
    """A rev-mode page, its rows in ``form``."""
    after = since_rev
    if cursor is not None:
        payload = decode_cursor(cursor, spec, "r")
        after = cast(Any, payload.get("r"))  # the cursor's JSON: checked next
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**62:
            raise Problem(400, "INVALID_CURSOR", "the cursor is damaged")
    # First, before the page's snapshot (PostgreSQL computes it outside), and the page
    # is capped at it: a change above it may still be joined by one below it.
    max_rev = current_rev(conn, after)
    keys = ("rev",)
    select, form = _select(spec, keys, form, True, _dialect(conn))
    rows = conn.execute(
        f"{select} WHERE rev > ? AND rev <= ? ORDER BY rev LIMIT ?", (after, max_rev, limit + 1)
    ).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if has_more:
        (last_rev,) = _last_keys(spec, rows, form, keys)
        next_cursor = encode_cursor({"f": spec.name, "m": "r", "r": last_rev})
    total = None
    if cursor is None:
        # Counting rev > N walks the index (70 ms at a million rows); a plain count(*)
        # is nearly free. Exact from 0; else an upper bound: each change moves one row.
        delta = max(0, max_rev - after)
        if after > 0 and _dialect(conn) != "sqlite":
            # PostgreSQL's count(*) reads the whole table (~50 ms at a million rows):
            # min(count, delta) is the count of at most delta rows, cheap when incremental
            total = conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {spec.table} LIMIT ?) AS bounded",
                (delta,),
            ).fetchone()[0]
        else:
            everything = conn.execute(f"SELECT count(*) FROM {spec.table}").fetchone()[0]
            total = everything if after == 0 else min(everything, delta)
    return Page(rows, next_cursor, has_more, total, max_rev=max_rev, form=form)
