"""The grid's window onto the cache: filters as SQL, order and pages as Arrow.

A ``Viewport`` holds no widget. It turns the analyst's search box, flagged filter and
the grid header's filter transforms into one SQL query over ``visible_sellers`` (what
the analyst sees, pending changes applied) and keeps the result as a *snapshot*: the
displayed columns plus the seller id, in memory as one Arrow table, and a permutation
that puts it in the current sort order.

Why this shape (measured on 1,000,000 cached sellers, see ``benchmarks/grid.py``):

- ``ORDER BY ... LIMIT 60 OFFSET 500000`` costs ~300 ms per scroll, and fetching a page
  by a cached id list ~100 ms (random UUIDs defeat DuckDB's zone maps). A snapshot
  costs ~0.3 s once; every page after it is a ``take`` of 60 rows (<1 ms at any offset).
- Sorting inside DuckDB peaks at ~320 MB over the kernel's baseline (its sort buffers
  plus the result); fetching unsorted and sorting in Arrow peaks at ~240 MB, and a
  sort change needs no new query at all: only a new permutation (~0.1-0.2 s).
- Selections are row positions in that same order, so a selection maps to seller ids
  by taking the id column through the permutation; ids map back to positions through
  the inverse permutation (selections follow their sellers across a refresh).

The sort is stable on one key; ties keep the cache's scan order. Run columns are held
as small integer codes ranked by run name (4 bytes a row instead of a string).

A change (sync, push, mutation) only marks the snapshot stale; the next page request
or id lookup brings it up to date once, however many changes came in. When the change
names the sellers it touched (a flag, an undo, a push), that read re-reads just their
rows and writes them into the snapshot, if that is provably what a rebuild gives (see
``Viewport._patch``). Flagging 10,000 of 1,000,000 rows then costs a query returning
10,000 rows (~0.3 s) instead of fetching and sorting 1M rows again (~0.5 s), the kernel
holds ~20 MB less afterwards, and rows and selection stay where they were. DuckDB still
scans the 1M rows of ``visible_sellers`` for it (~+70 MB while the query runs, as much
as the flag's own check of the ids costs), so the peak drops less (~10 MB).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import ConfigError
from .filters import SellerFilter, literal
from .store import Store

__all__ = ["COLUMNS", "FLAGGED_CHOICES", "PATCH_LIMIT", "Column", "Viewport", "merge_ranges"]


@dataclass(frozen=True)
class Column:
    """One grid column: its header label, the SQL giving its value, and how to show it."""

    label: str
    sql: str  # the typed value held in the snapshot (and sorted on)
    kind: str  # text | int | bool | time | run (an integer code ranked by run name)
    shown_sql: str | None = None  # the value as shown, for header filters (default: sql)
    bare: str = ""  # the typed value over visible_sellers' own columns (where_sql)
    lookup: str = ""  # "pending" / "run": shown through a join, filtered through IN

    @property
    def display_sql(self) -> str:
        if self.shown_sql:
            return self.shown_sql
        if self.kind == "bool":
            return f"CASE WHEN {self.sql} THEN 'yes' ELSE '' END"
        if self.kind == "time":
            return f"strftime({self.sql}, '%Y-%m-%d %H:%M')"
        return self.sql


COLUMNS: tuple[Column, ...] = (
    Column("Name", "v.display_name", "text", bare="display_name"),
    Column("Platform", "v.platform", "text", bare="platform"),
    Column("Times seen", "v.times_seen", "int", bare="times_seen"),
    Column("Flagged", "v.flagged", "bool", bare="flagged"),
    Column("Pending", "coalesce(p.kinds, '')", "text", bare="id", lookup="pending"),
    Column("First seen run", "fr.code", "run", "coalesce(fr.name, '')",
           bare="first_seen_run_id", lookup="run"),
    Column("Last seen run", "lr.code", "run", "coalesce(lr.name, '')",
           bare="last_seen_run_id", lookup="run"),
    Column("Updated", "v.updated_at", "time", bare="updated_at"),
    Column("Id", "v.id", "text", bare="id"),
)
FLAGGED_CHOICES = ("all", "flagged", "not flagged", "pending")
PATCH_LIMIT = 100_000  # more touched sellers than this: a rebuild costs about the same

# Runs ranked by name: the code sorts as the name does. Grouped by id so a run cached
# twice can never duplicate a seller row.
_RUNS = """
WITH run_codes AS (
    SELECT id, name, CAST(row_number() OVER (ORDER BY name, id) - 1 AS INTEGER) AS code
    FROM (SELECT id, any_value(name) AS name FROM collection_runs GROUP BY id)
)
"""
# Pending mutations per seller come from the (small) queue table, so a row shows what
# is still to be pushed whatever the visible_sellers view looks like.
# The filters apply to visible_sellers alone, in a subquery, so a predicate names its
# columns bare (``id``, ``flagged``) as in wb.sellers(where=...), never ambiguous with
# the joined run and queue tables.
_FROM = """
FROM (SELECT * FROM visible_sellers WHERE {predicate}) v
LEFT JOIN run_codes fr ON fr.id = v.first_seen_run_id
LEFT JOIN run_codes lr ON lr.id = v.last_seen_run_id
LEFT JOIN (SELECT seller_id, string_agg(DISTINCT kind, ', ' ORDER BY kind) AS kinds
             FROM mutations WHERE state = 'pending' GROUP BY seller_id) p
       ON p.seller_id = v.id
"""


def _source(predicate: str) -> str:
    """The FROM clause for the sellers matching ``predicate`` (no subquery when none:
    measured ~0.1 s less per snapshot at 1M sellers)."""
    if predicate == "true":
        return _FROM.replace("(SELECT * FROM visible_sellers WHERE {predicate})",
                             "visible_sellers")
    return _FROM.format(predicate=predicate)


_COMPARE = ("<", ">", "=", "<=", ">=", "!=")
# What a lookup column shows, keyed by the id it is looked up with (where_sql filters
# through ``<bare> IN (SELECT key FROM ... WHERE <condition on shown>)``).
_LOOKUPS = {
    "pending": "(SELECT seller_id AS key, string_agg(DISTINCT kind, ', ' ORDER BY kind) AS shown "
               "FROM mutations WHERE state = 'pending' GROUP BY seller_id)",
    "run": "(SELECT id AS key, any_value(name) AS shown FROM collection_runs GROUP BY id)",
}
_ALWAYS = {"v.id": "__id", "v.flagged": "__flagged"}  # snapshot columns held whatever is shown
_QUEUE_COUNTS = """
SELECT (SELECT count(*) FROM mutations WHERE state = 'pending') AS pending,
       (SELECT max(last_synced) FROM sync_state) AS last_synced
"""
_TOTALS = """
SELECT count(*) AS total, count(*) FILTER (WHERE flagged) AS flagged FROM visible_sellers
"""


def _bare_shown(column: Column) -> str:
    """A non-lookup column's value as shown, over visible_sellers' own columns."""
    if column.kind == "bool":
        return f"CASE WHEN {column.bare} THEN 'yes' ELSE '' END"
    if column.kind == "time":
        return f"strftime({column.bare}, '%Y-%m-%d %H:%M')"
    return column.bare


def shown_condition(expr: str, op: Any, value: Any, column: Column) -> str:
    """The header filter ``op value`` on the shown value ``expr``, values as literals."""
    text = f"CAST({expr} AS VARCHAR)"
    if op in _COMPARE:
        return f"{expr} {op} {literal(value)}"
    if op == "empty":
        return f"({expr} IS NULL OR {text} = '')"
    if op == "notempty":
        return f"({expr} IS NOT NULL AND {text} <> '')"
    if op == "in":
        return f"list_contains({literal([str(v) for v in value or []])}::VARCHAR[], {text})"
    if op == "between":
        return f"{expr} BETWEEN {literal(value[0])} AND {literal(value[1])}"
    if op == "startswith":
        return f"starts_with({text}, {literal(str(value))})"
    if op == "endswith":
        return f"ends_with({text}, {literal(str(value))})"
    if op in ("contains", "stringContains"):
        return f"contains({text}, {literal(str(value))})"
    if op == "!contains":
        return f"NOT contains({text}, {literal(str(value))})"
    if op == "isOnSameDay" and column.kind == "time":
        return f"CAST({column.bare} AS DATE) = CAST({literal(str(value)[:10])} AS DATE)"
    raise ConfigError(f"the grid cannot filter with operator {op!r}")


def _read(con: Any, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
    """Run one query on its own cursor and materialise it as Arrow.

    A cursor, because duckdb 2 refuses new work on a connection that still holds an
    unfinished ``execute()`` result (the store's own bookkeeping may leave one).
    """
    cursor = con.cursor()
    try:
        return cursor.sql(sql, params=list(params) if params else None).to_arrow_table()
    finally:
        cursor.close()


def merge_ranges(ranges: Iterable[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """Sorted, non-overlapping inclusive ``(first, last)`` row ranges clipped to ``limit`` rows."""
    clipped = sorted((max(a, 0), min(b, limit - 1)) for a, b in ranges if b >= 0 and a < limit)
    merged: list[tuple[int, int]] = []
    for first, last in clipped:
        if first > last:
            continue
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def runs_of(positions: np.ndarray) -> list[tuple[int, int]]:
    """Ascending positions as inclusive ``(first, last)`` runs of consecutive rows."""
    if not len(positions):
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1)
    starts = np.concatenate(([positions[0]], positions[breaks + 1]))
    ends = np.concatenate((positions[breaks], [positions[-1]]))
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


class _Snapshot:
    """Rows in fetch order, their run names, and the permutation that orders them."""

    def __init__(self, table: pa.Table, run_names: list[str], counts: dict[str, Any]) -> None:
        self.table = table
        # Taking rows from a chunked table concatenates whole columns first (~15 ms at
        # 1M rows); taking from the few batches that hold them costs well under 1 ms.
        self.batches = table.to_batches()
        self.starts = np.cumsum([0] + [b.num_rows for b in self.batches])[:-1]
        self.run_names = np.array([*run_names, ""], dtype=object)  # code -1 (none) -> ""
        self.counts = counts  # the status line's numbers, read with these rows
        self.order: pa.Array | None = None  # ordered position -> fetch row
        self.inverse: np.ndarray | None = None  # fetch row -> ordered position

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def sort(self, column: str, descending: bool) -> None:
        # A stable sort on the key alone: ties keep the cache's scan order. Breaking ties
        # by seller id costs 0.5 s more at 1M rows (random UUIDs sort slowly); selections
        # do not need it, they follow their sellers by id across refreshes.
        # Positions as int32, not the uint64 Arrow returns: 4 MB instead of 8 at 1M rows,
        # and the same again for the inverse (a snapshot stays far below 2**31 rows).
        self.order = pc.array_sort_indices(
            self.table.column(column),
            order="descending" if descending else "ascending",
            null_placement="at_end",
        ).cast(pa.int32())
        self.inverse = None

    def rows(self, first: int, count: int) -> pa.Table:
        """Rows at ordered positions first..first+count-1."""
        return self.take(self.order.slice(first, count).to_numpy().astype(np.int64))

    def take(self, fetch: np.ndarray) -> pa.Table:
        """Rows at these fetch positions, in the order given."""
        if not len(fetch):
            return self.table.slice(0, 0)
        batch_of = np.searchsorted(self.starts, fetch, side="right") - 1
        pieces, places = [], []
        for batch in np.unique(batch_of):
            mask = batch_of == batch
            local = pa.array(fetch[mask] - self.starts[batch])
            pieces.append(self.batches[batch].take(local))
            places.append(np.flatnonzero(mask))
        taken = pa.Table.from_batches(pieces, schema=self.table.schema)
        return taken.take(pa.array(np.argsort(np.concatenate(places), kind="stable")))

    def replace(self, fetch: np.ndarray, fresh: pa.Table, columns: Sequence[str]) -> None:
        """Write ``fresh`` (row i for fetch row ``fetch[i]``, ascending) over those rows of
        ``columns``. Only the chunks holding such rows are copied; the rest is shared."""
        table = self.table
        for name in columns:
            column, values, chunks, start = table.column(name), fresh.column(name), [], 0
            for chunk in column.chunks:
                lo, hi = np.searchsorted(fetch, [start, start + len(chunk)])
                if lo < hi:
                    mask = np.zeros(len(chunk), dtype=bool)
                    mask[fetch[lo:hi] - start] = True
                    chunk = pc.replace_with_mask(chunk, pa.array(mask),
                                                 values.slice(lo, hi - lo).combine_chunks())
                chunks.append(chunk)
                start += len(chunk)
            table = table.set_column(table.schema.get_field_index(name), table.field(name),
                                     pa.chunked_array(chunks, type=column.type))
        self.table = table
        self.batches = table.to_batches()  # the same chunk lengths: no copy

    def ordered_positions(self, fetch_rows: np.ndarray) -> np.ndarray:
        if self.inverse is None:
            self.inverse = np.empty(self.num_rows, dtype=np.int32)
            self.inverse[self.order.to_numpy()] = np.arange(self.num_rows, dtype=np.int32)
        return np.sort(self.inverse[fetch_rows])


class Viewport:
    """Filter, sort and page the visible sellers of one store."""

    def __init__(self, store: Store, *, columns: Sequence[Column] = COLUMNS) -> None:
        self.store = store
        self.columns = tuple(columns)
        self._by_label = {c.label: c for c in self.columns}
        self.search: str = ""
        self.flagged: str = "all"
        self.sort: tuple[str, bool] = (self.columns[0].label, False)  # (label, descending)
        self.header_filters: list[dict[str, Any]] = []
        self.where_text: str | None = None  # the where box
        self.picks: dict[str, str] = {}  # profile clicks: column label -> predicate
        self._snap: _Snapshot | None = None
        self._touched: set[str] = set()  # sellers whose rows changed since the snapshot
        self.builds = 0  # snapshots fetched so far (tests and benchmarks read it)
        self.patches = 0  # snapshots brought up to date by re-reading only touched rows

    # -- state --------------------------------------------------------------------

    def column(self, label: str) -> Column:
        try:
            return self._by_label[label]
        except KeyError:
            known = ", ".join(self._by_label)
            raise ConfigError(f"the grid has no column {label!r}; columns: {known}") from None

    def set_columns(self, columns: Sequence[Column]) -> None:
        """Show these columns: the snapshot is read again; the sort falls back to the first
        column and header filters and profile clicks on a hidden column are dropped."""
        self.columns = tuple(columns)
        self._by_label = {c.label: c for c in self.columns}
        if self.sort[0] not in self._by_label:
            self.sort = (self.columns[0].label, False)
        self.header_filters = [t for t in self.header_filters if t["column"] in self._by_label]
        self.picks = {k: v for k, v in self.picks.items() if k in self._by_label}
        self.invalidate()

    def set_search(self, text: str) -> None:
        self.search = (text or "").strip()
        self.invalidate()

    def set_flagged(self, choice: str) -> None:
        if choice not in FLAGGED_CHOICES:
            raise ConfigError(f"flagged filter must be one of {FLAGGED_CHOICES}, not {choice!r}")
        self.flagged = choice
        self.invalidate()

    def set_sort(self, label: str, descending: bool = False) -> None:
        self.column(label)
        self.sort = (label, bool(descending))
        if self._snap is not None:
            self._snap.sort(self._source(label), self.sort[1])  # same rows: no query

    def set_transforms(self, transforms: Sequence[dict[str, Any]]) -> None:
        """Adopt the grid header's transforms: the last sort wins, filters are ANDed."""
        sort, filters = (self.columns[0].label, False), []
        for transform in transforms:
            if transform.get("column") not in self._by_label:
                continue
            if transform.get("type") == "sort":
                sort = (transform["column"], bool(transform.get("desc", False)))
            elif transform.get("type") == "filter":
                self._filter_sql(transform)  # refuse an unknown operator before changing
                filters.append(dict(transform))
        if filters != self.header_filters:
            self.header_filters = filters
            self.invalidate()
        self.set_sort(*sort)

    def invalidate(self, sellers: Iterable[str] | None = None) -> None:
        """Mark the snapshot out of date: the next read fetches it again under the current
        filters. ``sellers``: the ids of the only sellers whose rows changed; the next read
        then tries re-reading just those rows (``_patch``). None: anything may have changed.
        """
        if self._snap is not None and sellers is not None:
            self._touched.update(sellers)
            if len(self._touched) <= PATCH_LIMIT:
                return
        self._snap = None
        self._touched = set()

    @property
    def stale(self) -> bool:
        return self._snap is None or bool(self._touched)

    # -- SQL ----------------------------------------------------------------------

    def set_where(self, where: str | None) -> None:
        """Show only sellers matching one SQL predicate over ``visible_sellers`` (the where
        box): checked and bound against the cache first, a bad one is ConfigError."""
        where = (where or "").strip() or None
        if where is not None:
            seller_filter = SellerFilter(where=where)
            with self.store.connect() as con:
                seller_filter.check(con)
            where = seller_filter.where
        self.where_text = where
        self.invalidate()

    def set_pick(self, label: str, clause: str | None) -> None:
        """A profile click on column ``label``: ``clause`` (a predicate over the
        visible_sellers columns) filters the grid; None removes it."""
        self.column(label)
        if clause is None:
            self.picks.pop(label, None)
        else:
            self.picks[label] = clause
        self.invalidate()

    def predicate(self) -> str:
        """Every filter of the grid (search, flagged filter, header filters, profile
        clicks, where box) as one SQL predicate over the ``visible_sellers`` columns, values
        written in: ``wb.sellers(where=...)`` and ``wb.export(where=...)`` take it as it is."""
        choice = self.flagged
        seller_filter = SellerFilter(
            flagged={"flagged": True, "not flagged": False}.get(choice),
            search=self.search or None, pending=choice == "pending")
        own = seller_filter.inline()  # no where in it: its ? are its own values
        clauses = [] if own == "true" else [own]
        clauses += [self._filter_sql(t) for t in self.header_filters]
        clauses += [f"({clause})" for clause in self.picks.values()]
        if self.where_text:
            clauses.append(f"({self.where_text})")
        return " AND ".join(clauses) if clauses else "true"

    def _filter_sql(self, transform: dict[str, Any]) -> str:
        """A header filter as a predicate over the visible_sellers columns."""
        column = self.column(transform["column"])
        op, value = transform.get("operator"), transform.get("value")
        if not column.lookup:
            return shown_condition(_bare_shown(column), op, value, column)
        lookup = _LOOKUPS[column.lookup]
        matches = shown_condition("shown", op, value, column)
        unmatched = shown_condition("''", op, value, column)  # shown as '' when not found
        return (f"({column.bare} IN (SELECT key FROM {lookup} WHERE {matches}) OR "
                f"(({unmatched}) AND ({column.bare} IS NULL OR {column.bare} NOT IN "
                f"(SELECT key FROM {lookup}))))")

    def _select_list(self, packed: bool = False) -> str:
        # Id and flagged are always held (selections, the flagged count) and shared by
        # their grid columns rather than fetched twice (the id alone is 40 MB at 1M rows).
        shown = [f'{c.sql} AS "{c.label}"' for c in self.columns if c.sql not in _ALWAYS]
        held = [f'{_PACKED_ID if packed and sql == "v.id" else sql} AS "{name}"'
                for sql, name in _ALWAYS.items()]
        return ", ".join([*held, *shown])

    def _source(self, label: str) -> str:
        """The snapshot column holding a grid column's values."""
        return _ALWAYS.get(self.column(label).sql, label)

    def _values(self, table: pa.Table, column: Column) -> pa.ChunkedArray:
        source = self._source(column.label)
        values = table.column(source)
        if source == "__id":
            return pa.chunked_array([_unpack_ids(values)])
        return values

    # -- the snapshot ---------------------------------------------------------------

    def _snapshot(self) -> _Snapshot:
        if self._snap is not None and self._touched:
            touched, self._touched = self._touched, set()
            try:
                patched = self._patch(self._snap, touched)
            except BaseException:
                self._snap = None  # never keep serving rows known to be out of date
                raise
            if not patched:
                self._snap = None
        if self._snap is None:
            predicate = self.predicate()
            source = _source(predicate)
            with self.store.connect() as con:
                names = _run_names(con)
                table = _fixed_ids(_read(
                    con, f"{_RUNS} SELECT {self._select_list(True)} {source}"))
                if table is None:  # an id that is not a UUID (a seller created here)
                    table = _read(con, f"{_RUNS} SELECT {self._select_list()} {source}")
                counts = _counts(con, table, predicate != "true")
            snap = _Snapshot(table, names, counts)
            snap.sort(self._source(self.sort[0]), self.sort[1])
            self._snap = snap
            self.builds += 1
        return self._snap

    def _patch(self, snap: _Snapshot, touched: set[str]) -> bool:
        """Re-read the rows of the ``touched`` sellers (the only ones that changed) and
        write them into ``snap``; False (the caller rebuilds) unless that is provably the
        snapshot a rebuild would give:

        - the same sellers pass the filters as before (a flag under the flagged filter, a
          rename under a name search, a delete or a create change which rows are shown);
        - their sort keys are unchanged (a flag sorted by Flagged, a rename sorted by
          Name, any change sorted by Updated), so the permutation stays valid as it is;
        - the runs are the same (the run codes held in the snapshot keep their meaning).

        Rows with equal sort keys keep their places; a rebuild's order among ties is its
        scan order, which is not stable from one rebuild to the next anyway (DuckDB scans
        in parallel, and a seller with a pending change moves within ``visible_sellers``).
        """
        ids = pa.array(list(touched), type=pa.string())
        held = snap.table.column("__id")
        rows = np.flatnonzero(pc.is_in(held, value_set=_ids_like(ids, held))
                              .to_numpy(zero_copy_only=False))
        predicate = self.predicate()
        with self.store.connect() as con:
            if _run_names(con) != list(snap.run_names[:-1]):
                return False
            packed = held.type == _ID_TYPE
            fresh = _read(con, f"{_RUNS} SELECT {self._select_list(packed)} "
                          f"{_source(predicate)} "
                          f"WHERE v.id IN (SELECT unnest(?::VARCHAR[]))", [ids.to_pylist()])
            if packed:
                fresh = _fixed_ids(fresh)
                if fresh is None:  # a seller created here is now shown among packed ids
                    return False
            if fresh.num_rows != len(rows) or not fresh.schema.equals(snap.table.schema):
                return False
            old = snap.take(rows)
            found = pc.index_in(old.column("__id"), value_set=fresh.column("__id"))
            if found.null_count:  # a seller now shown that was not, and one gone
                return False
            fresh = fresh.take(found)  # in the order of ``rows``
            key = self._source(self.sort[0])
            if not fresh.column(key).equals(old.column(key)):
                return False
            changed = [n for n in fresh.column_names
                       if not fresh.column(n).equals(old.column(n))]
            snap.replace(rows, fresh, changed)
            snap.counts = _counts(con, snap.table, predicate != "true")
        self.patches += 1
        return True

    @property
    def row_count(self) -> int:
        return self._snapshot().num_rows

    def page(self, first: int, last: int) -> pd.DataFrame:
        """Rows ``first..last`` (inclusive) as the grid shows them, index = row position."""
        snap = self._snapshot()
        first, last = max(first, 0), min(last, snap.num_rows - 1)
        part = snap.rows(first, max(last - first + 1, 0))
        index = pd.RangeIndex(first, first + part.num_rows, name="#")
        return pd.DataFrame(
            {c.label: _display(self._values(part, c), c.kind, snap) for c in self.columns},
            index=index,
        )

    def empty_frame(self) -> pd.DataFrame:
        """No rows, the grid's columns and dtypes: what the grid's schema is built from."""
        frame = pd.DataFrame(index=pd.RangeIndex(0, 0, name="#"))
        for column in self.columns:
            dtype = "int64" if column.kind == "int" else object
            frame[column.label] = pd.Series([], dtype=dtype)
        return frame

    def ids(self, ranges: Iterable[tuple[int, int]]) -> list[str]:
        """Seller ids of the rows in the given inclusive ranges, in grid order."""
        return self.id_array(ranges).to_pylist()

    def id_array(self, ranges: Iterable[tuple[int, int]]) -> pa.Array:
        """The same ids as an Arrow array (no Python string per row)."""
        snap = self._snapshot()
        parts = [snap.rows(a, b - a + 1).column("__id")
                 for a, b in merge_ranges(ranges, snap.num_rows)]
        if not parts:
            return pa.array([], type=pa.string())
        return _unpack_ids(pa.concat_arrays([c for part in parts for c in part.chunks]))

    def flagged_at(self, row: int) -> bool:
        """Whether the seller on ``row`` (grid order) is flagged, shown or not."""
        return bool(self._snapshot().rows(row, 1).column("__flagged")[0].as_py())

    def positions(self, ids: Sequence[str] | pa.Array) -> np.ndarray:
        """Row positions (ascending) of the given seller ids in the current order."""
        snap = self._snapshot()
        if not len(ids):
            return np.empty(0, dtype=np.int64)
        wanted = ids if isinstance(ids, pa.Array) else pa.array(list(ids), type=pa.string())
        held = snap.table.column("__id")
        mask = pc.is_in(held, value_set=_ids_like(pc.cast(wanted, pa.string()), held))
        return snap.ordered_positions(np.flatnonzero(mask.to_numpy(zero_copy_only=False)))

    def frame(self, ranges: Iterable[tuple[int, int]] | None = None) -> pd.DataFrame:
        """The rows (all, or those in ``ranges``) as shown, in grid order, with the seller id."""
        snap = self._snapshot()
        chosen = merge_ranges([(0, snap.num_rows - 1)] if ranges is None else ranges,
                              snap.num_rows)
        parts = [self.page(a, b) for a, b in chosen]
        frame = pd.concat(parts) if parts else self.empty_frame()
        return frame.drop(columns=["Id"], errors="ignore").assign(id=self.ids(chosen))

    def unique_values(self, label: str, limit: int = 1000) -> list[Any]:
        """Distinct shown values of a column (for the header's filter dialog), capped."""
        column = self.column(label)
        sql = (f"{_RUNS} SELECT DISTINCT {column.display_sql} AS value "
               f"{_source('true')} "
               f"ORDER BY value NULLS LAST LIMIT {int(limit)}")
        with self.store.connect() as con:
            return _read(con, sql).column("value").to_pylist()

    # -- status and details -------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Counts for the status line (total, flagged, pending, shown, last_synced), read
        together with the rows shown: no extra scan of the cache when nothing is filtered."""
        return dict(self._snapshot().counts)

    def detail(self, seller_id: str) -> dict[str, Any] | None:
        """Every field of one seller, the runs that saw it and its pending changes."""
        with self.store.connect() as con:
            found = _read(con, "SELECT * FROM visible_sellers WHERE id = ?", [seller_id])
            if not found.num_rows:
                return None
            seller = found.to_pylist()[0]
            first, last = seller.get("first_seen_run_id"), seller.get("last_seen_run_id")
            runs = _read(
                con,
                "SELECT CASE WHEN id = ? THEN 'first seen' ELSE 'last seen' END AS seen, "
                "id, name, status, started_at, completed_at, sellers_found "
                "FROM collection_runs WHERE id IN (?, ?) AND deleted_at IS NULL "
                "ORDER BY started_at NULLS LAST",
                [first, first, last],
            ).to_pylist()
            pending = _read(
                con, "SELECT * FROM mutations WHERE seller_id = ? AND state = 'pending' "
                "ORDER BY seq", [seller_id],
            ).to_pylist()
        return {"seller": seller, "runs": runs, "pending": pending}


# -- seller ids, packed ------------------------------------------------------------------
# The snapshot holds every seller id: as text a canonical UUID costs 40 bytes a row (36
# characters and an offset), 40 MB at 1M sellers. Packed into its 16 bytes it costs 16,
# and sorts, compares and looks up the same (hex digits and hyphens sit at fixed places,
# so byte order is text order). A snapshot holding any other id (a seller created here,
# ``local:...``, not pushed yet) keeps them as text.

_ID_TYPE = pa.binary(16)
_HYPHENS = np.array([8, 13, 18, 23])
_HEX_PLACES = np.setdiff1d(np.arange(36), _HYPHENS)
_NIBBLE = np.full(256, 255, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789", dtype=np.uint8)] = np.arange(10)
_NIBBLE[np.frombuffer(b"abcdef", dtype=np.uint8)] = np.arange(10, 16)
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _pack_ids(ids: pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """Canonical lowercase UUID strings as 16-byte values; None if any id is not one."""
    ids = pc.cast(ids, pa.string())
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    n = len(ids)
    if ids.null_count:
        return None
    if not n:
        return pa.array([], type=_ID_TYPE)
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32, count=n + 1, offset=ids.offset * 4)
    if not (np.diff(offsets) == 36).all():
        return None
    chars = np.frombuffer(ids.buffers()[2], dtype=np.uint8, count=36 * n,
                          offset=int(offsets[0])).reshape(n, 36)
    if not (chars[:, _HYPHENS] == ord("-")).all():
        return None
    nibbles = _NIBBLE[chars[:, _HEX_PLACES]]
    if (nibbles == 255).any():  # not a hex digit, or an upper-case one
        return None
    packed = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return pa.FixedSizeBinaryArray.from_buffers(_ID_TYPE, n, [None, pa.py_buffer(packed.tobytes())])


def _unpack_ids(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Seller ids as text, whichever way the snapshot holds them."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if ids.type != _ID_TYPE:
        return ids
    n = len(ids)
    raw = np.frombuffer(ids.buffers()[1], dtype=np.uint8, count=16 * n,
                        offset=16 * ids.offset).reshape(n, 16)
    chars = np.full((n, 36), ord("-"), dtype=np.uint8)
    chars[:, _HEX_PLACES[0::2]] = _HEX_DIGITS[raw >> 4]
    chars[:, _HEX_PLACES[1::2]] = _HEX_DIGITS[raw & 15]
    offsets = np.arange(0, 36 * n + 1, 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()),
                                       pa.py_buffer(chars.tobytes()))


# The id as its 16 bytes where it is a canonical lower-case UUID, else NULL (then the
# snapshot is read again with text ids). DuckDB writes it as 20 bytes a row (an offset
# each); _fixed_ids drops the offsets without copying the bytes.
_PACKED_ID = (
    "CASE WHEN length(v.id) = 36 AND v.id = lower(v.id) AND v.id[9] = '-' "
    "AND v.id[14] = '-' AND v.id[19] = '-' AND v.id[24] = '-' "
    "THEN try(unhex(replace(v.id, '-', ''))) END"
)


def _fixed_ids(table: pa.Table) -> pa.Table | None:
    """``table`` with its packed ``__id`` (binary, 16 bytes a row) as fixed-size binary,
    sharing the bytes; None if any id could not be packed."""
    column = table.column("__id")
    if column.null_count:
        return None
    chunks = []
    for chunk in column.chunks:
        chunk = chunk.cast(pa.binary()) if chunk.type != pa.binary() else chunk
        n = len(chunk)
        if not n:
            chunks.append(pa.array([], type=_ID_TYPE))
            continue
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32, count=n + 1,
                                offset=chunk.offset * 4)
        if not (np.diff(offsets) == 16).all():
            return None
        data = chunk.buffers()[2].slice(int(offsets[0]), 16 * n)
        chunks.append(pa.Array.from_buffers(_ID_TYPE, n, [None, data]))
    packed = pa.chunked_array(chunks, type=_ID_TYPE)
    return table.set_column(table.schema.get_field_index("__id"), "__id", packed)


def _ids_like(ids: pa.Array, held: pa.ChunkedArray) -> pa.Array:
    """Text ids as the snapshot holds them (ids that cannot be packed are in no packed
    snapshot: they are left out)."""
    if held.type != _ID_TYPE:
        return ids
    keep = pc.and_(pc.equal(pc.utf8_length(ids), 36), pc.match_substring_regex(
        ids, r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))
    return _pack_ids(ids.filter(keep.fill_null(False)))


def _run_names(con: Any) -> list[str]:
    return [str(n) for n in _read(con, f"{_RUNS} SELECT name FROM run_codes ORDER BY code")
            .column("name").to_pylist()]


def _counts(con: Any, table: pa.Table, filtered: bool) -> dict[str, Any]:
    """The status line's numbers for a snapshot ``table``, read on ``con`` with its rows."""
    counts = _read(con, _QUEUE_COUNTS).to_pylist()[0]
    if filtered:  # the totals are over every seller, not only those shown
        counts.update(_read(con, _TOTALS).to_pylist()[0])
    else:
        counts["total"] = table.num_rows
        counts["flagged"] = pc.sum(table.column("__flagged")).as_py() or 0
    counts["shown"] = table.num_rows
    return counts


def _display(values: pa.ChunkedArray, kind: str, snap: _Snapshot) -> np.ndarray:
    """Arrow values as the strings/ints the grid draws (no nulls: the grid shows 'NaN')."""
    if kind == "int":
        return values.fill_null(0).to_numpy().astype("int64")
    if kind == "bool":
        flags = values.fill_null(False).to_numpy(zero_copy_only=False)
        return np.where(flags, "yes", "").astype(object)
    if kind == "run":
        return snap.run_names[values.fill_null(-1).to_numpy(zero_copy_only=False)]
    if kind == "time":
        return np.array([v.strftime("%Y-%m-%d %H:%M") if isinstance(v, dt.datetime) else ""
                         for v in values.to_pylist()], dtype=object)
    return np.array(values.fill_null("").to_pylist(), dtype=object)
