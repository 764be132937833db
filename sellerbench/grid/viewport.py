"""The grid's window onto the cache: filters as SQL, order and pages as Arrow.

A ``Viewport`` holds no widget. It turns the analyst's search box, flagged filter and
the grid header's filter transforms into one SQL query over ``visible_sellers`` (what
the analyst sees, pending changes applied) and keeps the result as a *snapshot*
(``snapshot.py``: the displayed columns plus the seller id as one Arrow table, and the
permutation that sorts it).

On a large cache (``early_above`` sellers, 2,000,000 by default) the snapshot is read on
a thread of its own, and until it is there the grid's first ``EARLY_ROWS`` rows and its
counts come from two small queries (``ORDER BY <sort> LIMIT 200`` and one ``count``):
at 5,000,000 sellers the first rows show after ~0.5 s instead of after the whole
read (~1.7 s). Rows further down, ids outside those rows and positions wait for the
snapshot; when it lands, ``Snapshot.align`` keeps the early rows where they were shown
and ``on_ready`` tells the grid (which asks the browser for its rows again). A filter
change while a read runs interrupts that read. A read's peak is bounded by how it
reads (record batches of the shown columns only, ``snapshot.read_rows``), never by a
memory setting: DuckDB's limit is the file's, the same for every thread (store.py,
"Memory").

A change (sync, push, mutation) only marks the snapshot stale; the next page request
or id lookup brings it up to date once, however many changes came in. When the change
names the sellers it touched (a flag, an undo, a push), that read re-reads just their
rows and writes them into the snapshot, if that is provably what a rebuild gives (see
``Viewport._patch``). Flagging 10,000 of 1,000,000 rows then costs a query returning
10,000 rows (~0.3 s) instead of fetching and sorting 1M rows again (~0.5 s), the kernel
holds ~20 MB less afterwards, and rows and selection stay where they were. DuckDB still
scans the 1M rows of ``visible_sellers`` for it (~+70 MB while the query runs, as much
as the flag's own check of the ids costs), so the peak drops less (~10 MB).

A Viewport is not thread-safe: its owner (the grid) calls it under one lock. The
background read touches nothing of the Viewport; it only fills its ``Build``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..cache.filters import SellerFilter, literal
from ..cache.store import Store
from ..errors import ConfigError
from ..schema import LOCAL_PREFIX, SHOWN_TIME, SHOWN_TRUE
from .snapshot import (
    ID_TYPE,
    PACKED_ID,
    Build,
    Snapshot,
    fixed_ids,
    ids_like,
    merge_ranges,
    positions_in,
    read,
    read_rows,
    runs_of,
    unpack_ids,
)

__all__ = ["COLUMNS", "EARLY_ABOVE", "EARLY_ROWS", "FLAGGED_CHOICES", "PATCH_LIMIT", "Column",
           "Viewport", "merge_ranges", "runs_of"]


@dataclass(frozen=True)
class Column:
    """One grid column: its header label, the SQL giving its value, and how to show it."""

    label: str
    sql: str  # the typed value held in the snapshot (and sorted on)
    kind: str  # text | int | bool | time | code (an integer ranked by name, see codes)
    shown_sql: str | None = None  # the value as shown, for header filters (default: sql)
    bare: str = ""  # the typed value over visible_sellers' own columns (where_sql)
    lookup: str = ""  # "pending" / "run": shown through a join, filtered through IN
    codes: str = ""  # kind code: the code table (run_codes, platform_codes) naming them

    @property
    def display_sql(self) -> str:
        if self.shown_sql:
            return self.shown_sql
        return _shown_sql(self.kind, self.sql)


COLUMNS: tuple[Column, ...] = (
    Column("Name", "v.display_name", "text", bare="display_name"),
    Column("Platform", "pl.code", "code", "v.platform", bare="platform", codes="platform_codes"),
    Column("Times seen", "v.times_seen", "int", bare="times_seen"),
    Column("Flagged", "v.flagged", "bool", bare="flagged"),
    Column("Pending", "coalesce(p.kinds, '')", "text", bare="id", lookup="pending"),
    Column("First seen run", "fr.code", "code", "coalesce(fr.name, '')",
           bare="first_seen_run_id", lookup="run", codes="run_codes"),
    Column("Last seen run", "lr.code", "code", "coalesce(lr.name, '')",
           bare="last_seen_run_id", lookup="run", codes="run_codes"),
    Column("Updated", "v.updated_at", "time", bare="updated_at"),
    Column("Id", "v.id", "text", bare="id"),
)
FLAGGED_CHOICES = ("all", "flagged", "not flagged", "pending")
PATCH_LIMIT = 100_000  # more touched sellers than this: a rebuild costs about the same
EARLY_ABOVE = 2_000_000  # sellers cached from which the snapshot is read in the background
EARLY_ROWS = 200  # rows answered early (a grid shows ~20; the column widths read 200)

# Runs ranked by name: the code sorts as the name does. Grouped by id so a run cached
# twice can never duplicate a seller row.
# Platforms ranked by name too: held as a code, a platform costs 4 bytes a row instead
# of ~9 (at 5,000,000 sellers 21 MB instead of 43), and its profile is a GROUP BY on an
# integer (at 1M rows ~15 ms instead of ~80). Their names come from the sellers table
# and the sellers created here (the ``local:`` ids, found by zone maps alone): a
# DISTINCT over visible_sellers would read every id for its pending-changes join
# (+136 MB at 5M).
_RUNS = f"""
WITH run_codes AS (
    SELECT id, name, CAST(row_number() OVER (ORDER BY name, id) - 1 AS INTEGER) AS code
    FROM (SELECT id, any_value(name) AS name FROM collection_runs GROUP BY id)
), platform_codes AS (
    SELECT platform AS name, CAST(row_number() OVER (ORDER BY platform) - 1 AS INTEGER) AS code
    FROM (SELECT platform FROM sellers
          UNION SELECT platform FROM visible_sellers_all WHERE id LIKE '{LOCAL_PREFIX}%')
)
"""
_CODE_TABLES = ("run_codes", "platform_codes")
# Pending mutations per seller come from the (small) queue table, so a row shows what
# is still to be pushed whatever the visible_sellers view looks like.
# The filters apply to visible_sellers alone, in a subquery, so a predicate names its
# columns bare (``id``, ``flagged``) as in wb.sellers(where=...), never ambiguous with
# the joined run and queue tables.
_FROM = """
FROM (SELECT * FROM visible_sellers WHERE {predicate}) v
LEFT JOIN run_codes fr ON fr.id = v.first_seen_run_id
LEFT JOIN run_codes lr ON lr.id = v.last_seen_run_id
LEFT JOIN platform_codes pl ON pl.name = v.platform
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
_SHOWN = """
SELECT count(*) FILTER (WHERE {predicate}) AS shown, count(*) AS total,
       count(*) FILTER (WHERE flagged) AS flagged FROM visible_sellers
"""


@contextlib.contextmanager
def _one_moment(con: Any) -> Iterator[None]:
    """A read transaction: every query in it sees the cache at the same moment."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):  # the read failed: the error says why
            con.execute("ROLLBACK")


def _bare_shown(column: Column) -> str:
    """A non-lookup column's value as shown, over visible_sellers' own columns."""
    return _shown_sql(column.kind, column.bare)


def _shown_sql(kind: str, expr: str) -> str:
    """``expr`` as the grid shows it (the display rules: schema.SHOWN_TRUE, SHOWN_TIME)."""
    if kind == "bool":
        return f"CASE WHEN {expr} THEN '{SHOWN_TRUE}' ELSE '' END"
    if kind == "time":
        return f"strftime({expr}, '{SHOWN_TIME}')"
    return expr


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


class Viewport:
    """Filter, sort and page the visible sellers of one store."""

    def __init__(self, store: Store, *, columns: Sequence[Column] = COLUMNS) -> None:
        self.store = store
        self.columns = tuple(columns)
        self._by_label = {c.label: c for c in self.columns}
        self.search: str = ""
        self.flagged: str = "all"
        self.sort: tuple[str, bool] = (self.columns[0].label, False)  # (label, descending)
        self.sort_then: tuple[tuple[str, bool], ...] = ()  # further keys (Shift+click)
        self.header_filters: list[dict[str, Any]] = []
        self.where_text: str | None = None  # the where box
        self.picks: dict[str, str] = {}  # profile clicks: column label -> predicate
        self._snap: Snapshot | None = None
        self._touched: set[str] = set()  # sellers whose rows changed since the snapshot
        self._build: Build | None = None  # the snapshot being read
        self._early: Snapshot | None = None  # the first rows while it is read
        # Sellers cached from which the snapshot is read on its own thread (tests set 0).
        self.early_above = EARLY_ABOVE
        # A background read ended (called on its thread: never take the owner's lock
        # and wait for the viewport there; ask the browser for its rows again instead).
        self.on_ready: Callable[[], None] = lambda: None
        self.builds = 0  # snapshots fetched so far (tests and benchmarks read it)
        self.patches = 0  # snapshots brought up to date by re-reading only touched rows
        self.early_reads = 0  # early rows read (tests and benchmarks read it)
        self._size: int | None = None  # sellers cached at the last read (a hint)

    # -- state --------------------------------------------------------------------

    def column(self, label: str) -> Column:
        try:
            return self._by_label[label]
        except KeyError:
            known = ", ".join(self._by_label)
            raise ConfigError(f"the grid has no column {label!r}; columns: {known}") from None

    def set_columns(self, columns: Sequence[Column]) -> None:
        """Show these columns: the snapshot is read again; sort keys, header filters and
        profile clicks on a hidden column are dropped (no key left: the first column)."""
        self.columns = tuple(columns)
        self._by_label = {c.label: c for c in self.columns}
        keys = [k for k in (self.sort, *self.sort_then) if k[0] in self._by_label]
        first, *then = keys or [(self.columns[0].label, False)]
        self.sort, self.sort_then = first, tuple(then)
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

    def set_sort(self, label: str, descending: bool = False,
                 then: Sequence[tuple[str, bool]] = ()) -> None:
        """Order by ``label`` (then by the ``then`` keys: (label, descending) each)."""
        self.column(label)
        then = tuple((str(k), bool(d)) for k, d in then if k != label)
        for k, _ in then:
            self.column(k)
        if (label, bool(descending)) == self.sort and then == self.sort_then:
            return
        self.sort = (label, bool(descending))
        self.sort_then = then
        self._early = None  # other first rows; a snapshot being read is sorted on landing
        if self._snap is not None:
            self._snap.sort(*self._sort_key())  # same rows: no query

    def _sort_key(self) -> tuple[str, bool, tuple[tuple[str, bool], ...]]:
        """The snapshot columns the order is on: (first, descending, further keys)."""
        return (self._source(self.sort[0]), self.sort[1],
                tuple((self._source(k), d) for k, d in self.sort_then))

    @property
    def sort_keys(self) -> list[tuple[str, bool]]:
        """Every sort key, first first: (label, descending)."""
        return [self.sort, *self.sort_then]

    def set_transforms(self, transforms: Sequence[dict[str, Any]]) -> None:
        """Adopt the grid header's transforms: sorts in order are the sort keys (the
        first one first), filters are ANDed."""
        sorts, filters = [], []
        for transform in transforms:
            if transform.get("column") not in self._by_label:
                continue
            if transform.get("type") == "sort":
                sorts.append((transform["column"], bool(transform.get("desc", False))))
            elif transform.get("type") == "filter":
                self._filter_sql(transform)  # refuse an unknown operator before changing
                filters.append(dict(transform))
        if filters != self.header_filters:
            self.header_filters = filters
            self.invalidate()
        first, *then = sorts or [(self.columns[0].label, False)]
        self.set_sort(*first, then=then)

    def invalidate(self, sellers: Iterable[str] | None = None) -> None:
        """Mark the snapshot out of date: the next read fetches it again under the current
        filters. ``sellers``: the ids of the only sellers whose rows changed; the next read
        then tries re-reading just those rows (``_patch``). None: anything may have changed.
        """
        self._early = None
        if sellers is not None:
            sellers = set(sellers)
        if (self._snap is not None or self._build is not None) and sellers is not None:
            # A read under way may or may not hold the change: re-read them after it.
            self._touched.update(sellers)
            if len(self._touched) <= PATCH_LIMIT:
                return
        self._snap = None
        self._touched = set()
        if self._build is not None:
            self._build.cancel()  # its rows are of the filters before
            self._build = None

    @property
    def stale(self) -> bool:
        """Whether showing rows needs a query (a rebuild, a patch, a read to finish)."""
        return self.installed() is None

    @property
    def version(self) -> tuple[int, int]:
        """Grows with every snapshot read or patched (what profiles were computed from)."""
        return (self.builds, self.patches)

    @property
    def reading(self) -> bool:
        """Whether the snapshot is being read in the background."""
        return self._build is not None and not self._build.done

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

    def _select_list(self, names: dict[str, list[str]], packed: bool = False) -> str:
        # Id and flagged are always held (selections, the flagged count) and shared by
        # their grid columns rather than fetched twice (the id alone is 40 MB at 1M rows).
        # Codes are held in the narrowest integer that numbers their table's names.
        shown = [f'{_narrowed(c, names)} AS "{c.label}"' for c in self.columns
                 if c.sql not in _ALWAYS]
        held = [f'{PACKED_ID if packed and sql == "v.id" else sql} AS "{name}"'
                for sql, name in _ALWAYS.items()]
        return ", ".join([*held, *shown])

    def _source(self, label: str) -> str:
        """The snapshot column holding a grid column's values."""
        return _ALWAYS.get(self.column(label).sql, label)

    def _values(self, table: pa.Table, column: Column) -> pa.ChunkedArray:
        source = self._source(column.label)
        values = table.column(source)
        if source == "__id":
            return pa.chunked_array([unpack_ids(values)])
        return values

    # -- the snapshot ---------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        """The snapshot up to date, waiting for a read under way."""
        while True:
            snap = self._ready(wait=True)
            if snap is not None:
                return snap

    def installed(self) -> Snapshot | None:
        """The snapshot if it is up to date without a query (a finished read is taken
        in), else None; never waits."""
        if self._touched:
            return None
        if self._snap is None and self._build is not None and self._build.done:
            return self._ready(wait=False)
        return self._snap

    def _ready(self, *, wait: bool) -> Snapshot | None:
        """The snapshot brought up to date: a finished read taken in, touched rows
        re-read. None while a background read runs (``wait=False``), or when a patch
        could not be applied and a new read began (call again)."""
        if self._snap is None:
            build = self._build
            if build is None:
                build = self._build = self._start_build()
            if not wait and not build.done:
                return None
            try:
                snap = build.wait()
            finally:
                if self._build is build:
                    self._build = None  # after an error the next read starts anew
            self._take_in(snap)
        if self._touched:
            assert self._snap is not None
            touched, self._touched = self._touched, set()
            try:
                patched = self._patch(self._snap, touched)
            except BaseException:
                self._snap = None  # never keep serving rows known to be out of date
                raise
            if not patched:
                self._snap = None
                self._early = None
                return None if not wait else self._ready(wait=True)
        return self._snap

    def _take_in(self, snap: Snapshot) -> None:
        key = self._sort_key()
        if (snap.sorted_by, snap.then) != (key[:2], key[2]):  # the sort changed meanwhile
            snap.sort(*key)
        if self._early is not None:
            # False: the cache changed between the reads; on_ready redraws the rows.
            snap.align(self._early)
        self._early = None
        self._snap = snap
        self._size = int(snap.counts["total"])
        self.builds += 1

    def _start_build(self) -> Build:
        """Read the snapshot under the current filters: here, or on a large cache on a
        thread of its own after the first rows are read (so both do not share the CPU)."""
        predicate = self.predicate()
        source = _source(predicate)
        key = self._sort_key()
        store = self.store

        def work(attach: Callable[[Any], None]) -> Snapshot:
            with store.connect() as con:
                attach(con)
                with _one_moment(con):  # run codes, rows and counts of one moment
                    names = _code_names(con)
                    table = read_rows(
                        con, f"{_RUNS} SELECT {self._select_list(names, True)} {source}",
                        f"{_RUNS} SELECT {self._select_list(names)} {source}")
                    counts = _counts(con, table, predicate != "true")
            snap = Snapshot(table, names, counts)
            snap.sort(*key)
            return snap

        build = Build(work, on_done=self._read_done)
        size = self._size if self._size is not None else self._cache_size()
        if size < self.early_above:
            build.run()
        else:
            if self._early is None:
                self._early = self._read_early()
            build.start()
        return build

    def _read_done(self, build: Build) -> None:
        if build is self._build:  # not one a newer filter replaced
            self.on_ready()

    def _cache_size(self) -> int:
        with self.store.connect() as con:
            row = con.execute("SELECT count(*) FROM sellers").fetchone()
        return int(row[0]) if row else 0

    def _read_early(self) -> Snapshot:
        """The first ``EARLY_ROWS`` rows in the current order and the counts, from two
        small queries (the order's ties broken by id; ``Snapshot.align`` follows it)."""
        predicate = self.predicate()
        order = ", ".join(f"{self.column(k).sql} {'DESC' if d else 'ASC'} NULLS LAST"
                          for k, d in self.sort_keys)
        with self.store.connect() as con, _one_moment(con):
            names = _code_names(con)
            table = read(con, f"{_RUNS} SELECT {self._select_list(names)} {_source(predicate)} "
                              f"ORDER BY {order}, v.id LIMIT {EARLY_ROWS}")
            counts = read(con, _QUEUE_COUNTS).to_pylist()[0]
            counts.update(read(con, _SHOWN.format(predicate=predicate)).to_pylist()[0])
        early = Snapshot(table, names, counts)
        early.order = pa.array(np.arange(table.num_rows, dtype=np.int32))
        first, descending, then = self._sort_key()
        early.sorted_by, early.then = (first, descending), then
        self.early_reads += 1
        return early

    def _early_for(self, ranges: Iterable[tuple[int, int]]) -> Snapshot | None:
        """The early rows if a read is under way and they hold every row of ``ranges``."""
        if not self.reading:
            return None
        if self._early is None:
            self._early = self._read_early()
        early = self._early
        shown = int(early.counts["shown"])
        if all(b < early.num_rows or a >= shown for a, b in ranges):
            return early
        return None

    def _patch(self, snap: Snapshot, touched: set[str]) -> bool:
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
        rows = np.flatnonzero(pc.is_in(held, value_set=ids_like(ids, held))
                              .to_numpy(zero_copy_only=False))
        predicate = self.predicate()
        packed = held.type == ID_TYPE
        sql = (f"{_RUNS} SELECT {self._select_list(snap.code_names, packed)} "
               f"{_source(predicate)} WHERE v.id IN (SELECT unnest(?::VARCHAR[]))")
        filtered = predicate != "true"

        with self.store.connect() as con:
            if _code_names(con) != snap.code_names:
                return False
            fresh, counts = read(con, sql, [ids.to_pylist()]), _cache_counts(con, filtered)
        if packed:
            fresh = fixed_ids(fresh)
            if fresh is None:  # a seller created here is now shown among packed ids
                return False
        if fresh.num_rows != len(rows) or not fresh.schema.equals(snap.table.schema):
            return False
        old = snap.take(rows)
        found = pc.index_in(old.column("__id"), value_set=fresh.column("__id"))
        if found.null_count:  # a seller now shown that was not, and one gone
            return False
        fresh = fresh.take(found)  # in the order of ``rows``
        if any(not fresh.column(k).equals(old.column(k)) for k in snap.sort_columns):
            return False
        changed = [n for n in fresh.column_names if not fresh.column(n).equals(old.column(n))]
        snap.replace(rows, fresh, changed)
        snap.counts = _table_counts(counts, snap.table, filtered)
        self.patches += 1
        return True

    @property
    def row_count(self) -> int:
        """Rows shown (while the snapshot is read: counted by the early read)."""
        snap = self._ready(wait=False)
        if snap is not None:
            return snap.num_rows
        early = self._early_for([])
        return int(early.counts["shown"]) if early is not None else self._snapshot().num_rows

    def _rows_for(self, ranges: Sequence[tuple[int, int]]) -> Snapshot:
        """The snapshot, or while it is read the early rows when they hold ``ranges``."""
        return self._ready(wait=False) or self._early_for(ranges) or self._snapshot()

    def page(self, first: int, last: int) -> pd.DataFrame:
        """Rows ``first..last`` (inclusive) as the grid shows them, index = row position."""
        snap = self._rows_for([(first, last)])
        first, last = max(first, 0), min(last, snap.num_rows - 1)
        part = snap.rows(first, max(last - first + 1, 0))
        index = pd.RangeIndex(first, first + part.num_rows, name="#")
        return pd.DataFrame(
            {c.label: _display(self._values(part, c), c, snap) for c in self.columns},
            index=index,
        )

    def sample(self) -> pd.DataFrame:
        """The first rows, as many as are answered early (column widths are sized on them)."""
        return self.page(0, EARLY_ROWS - 1)

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
        ranges = list(ranges)
        snap = self._rows_for(ranges)
        positions = positions_in(ranges, snap.num_rows)
        if not len(positions):
            return pa.array([], type=pa.string())
        return unpack_ids(snap.at(positions).column("__id"))

    def flags(self, ranges: Iterable[tuple[int, int]]) -> np.ndarray:
        """Whether each seller in ``ranges`` (grid order) is flagged, shown or not."""
        ranges = list(ranges)
        snap = self._rows_for(ranges)
        positions = positions_in(ranges, snap.num_rows)
        if not len(positions):
            return np.zeros(0, dtype=bool)
        column = pc.fill_null(snap.at(positions).column("__flagged"), False)
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=bool)

    def flagged_at(self, row: int) -> bool:
        """Whether the seller on ``row`` (grid order) is flagged, shown or not."""
        return bool(self._rows_for([(row, row)]).rows(row, 1).column("__flagged")[0].as_py())

    def positions(self, ids: Sequence[str] | pa.Array) -> np.ndarray:
        """Row positions (ascending) of the given seller ids in the current order."""
        snap = self._snapshot()
        if not len(ids):
            return np.empty(0, dtype=np.int64)
        wanted = ids if isinstance(ids, pa.Array) else pa.array(list(ids), type=pa.string())
        held = snap.table.column("__id")
        mask = pc.is_in(held, value_set=ids_like(pc.cast(wanted, pa.string()), held))
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
            return read(con, sql).column("value").to_pylist()

    # -- status and details -------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Counts for the status line (total, flagged, pending, shown, last_synced), read
        together with the rows shown: no extra scan of the cache when nothing is filtered."""
        return dict(self._rows_for([]).counts)

    def detail(self, seller_id: str) -> dict[str, Any] | None:
        """Every field of one seller, the runs that saw it and its pending changes."""
        with self.store.connect() as con:
            found = read(con, "SELECT * FROM visible_sellers WHERE id = ?", [seller_id])
            if not found.num_rows:
                return None
            seller = found.to_pylist()[0]
            first, last = seller.get("first_seen_run_id"), seller.get("last_seen_run_id")
            runs = read(
                con,
                "SELECT CASE WHEN id = ? THEN 'first seen' ELSE 'last seen' END AS seen, "
                "id, name, status, started_at, completed_at, sellers_found "
                "FROM collection_runs WHERE id IN (?, ?) AND deleted_at IS NULL "
                "ORDER BY started_at NULLS LAST",
                [first, first, last],
            ).to_pylist()
            pending = read(
                con, "SELECT * FROM mutations WHERE seller_id = ? AND state = 'pending' "
                "ORDER BY seq", [seller_id],
            ).to_pylist()
        return {"seller": seller, "runs": runs, "pending": pending}


def _narrowed(column: Column, names: dict[str, list[str]]) -> str:
    """A column's snapshot value; a code in the smallest integer type that holds every
    code of its table (a byte a row for up to 127 platforms or runs: at 5,000,000 sellers
    5 MB a column instead of 20)."""
    if column.kind != "code":
        return column.sql
    count = len(names.get(column.codes, ()))
    kind = "TINYINT" if count <= 127 else "SMALLINT" if count <= 32_767 else "INTEGER"
    return f"CAST({column.sql} AS {kind})"


def _code_names(con: Any) -> dict[str, list[str]]:
    """The names of each code table, in code order (code i is names[i])."""
    return {table: _names(con, table) for table in _CODE_TABLES}


def _names(con: Any, table: str) -> list[str]:
    return [str(n) for n in read(con, f"{_RUNS} SELECT name FROM {table} ORDER BY code")
            .column("name").to_pylist()]


def _counts(con: Any, table: pa.Table, filtered: bool) -> dict[str, Any]:
    """The status line's numbers for a snapshot ``table``, read on ``con`` with its rows."""
    return _table_counts(_cache_counts(con, filtered), table, filtered)


def _cache_counts(con: Any, filtered: bool) -> dict[str, Any]:
    """The status line's numbers the cache gives: the queue, and the totals over every
    seller when a filter shows only some (``_table_counts`` adds the rest)."""
    counts: dict[str, Any] = read(con, _QUEUE_COUNTS).to_pylist()[0]
    if filtered:
        counts.update(read(con, _TOTALS).to_pylist()[0])
    return counts


def _table_counts(counts: dict[str, Any], table: pa.Table, filtered: bool) -> dict[str, Any]:
    if not filtered:  # every seller is shown: the totals are the snapshot's
        counts["total"] = table.num_rows
        counts["flagged"] = pc.sum(table.column("__flagged")).as_py() or 0
    counts["shown"] = table.num_rows
    return counts


def _display(values: pa.ChunkedArray, column: Column, snap: Snapshot) -> np.ndarray:
    """Arrow values as the strings/ints the grid draws (no nulls: the grid shows 'NaN')."""
    kind, codes = column.kind, column.codes
    if kind == "int":
        return values.fill_null(0).to_numpy().astype("int64")
    if kind == "bool":
        flags = values.fill_null(False).to_numpy(zero_copy_only=False)
        return np.where(flags, SHOWN_TRUE, "").astype(object)
    if kind == "code":
        return snap.names[codes][values.fill_null(-1).to_numpy(zero_copy_only=False)]
    if kind == "time":
        return np.array([v.strftime(SHOWN_TIME) if isinstance(v, dt.datetime) else ""
                         for v in values.to_pylist()], dtype=object)
    return np.array(values.fill_null("").to_pylist(), dtype=object)
