"""The grid's snapshot: the filtered sellers' shown columns as one Arrow table, in order.

A ``Snapshot`` holds the displayed columns plus the seller id of every row the grid
shows, in memory as one Arrow table, and a permutation that puts it in the current sort
order. Why this shape (measured on 1,000,000 cached sellers, see ``benchmarks/grid.py``):

- ``ORDER BY ... LIMIT 60 OFFSET 500000`` costs ~300 ms per scroll, and fetching a page
  by a cached id list ~100 ms (random UUIDs defeat DuckDB's zone maps). A snapshot
  costs ~0.3 s once; every page after it is a ``take`` of 60 rows (<1 ms at any offset).
- Sorting inside DuckDB peaks at ~320 MB over the kernel's baseline (its sort buffers
  plus the result); fetching unsorted and sorting in Arrow peaks at ~240 MB, and a
  sort change needs no new query at all: only a new permutation (~0.1-0.2 s).
- The rows are streamed from DuckDB a batch at a time (``read_rows``): the result is
  never held twice (DuckDB's copy and Arrow's), and at 5,000,000 rows the read takes
  1.3 s instead of 1.8 s.
- Selections are row positions in that same order, so a selection maps to seller ids
  by taking the id column through the permutation; ids map back to positions through
  the inverse permutation (selections follow their sellers across a refresh).

The sort is stable on one key; ties keep the read's order. Run and platform columns are
held as small integer codes ranked by name (4 bytes a row instead of a string; the names
are in ``names``).

A ``Build`` reads one snapshot, on the caller's thread or, on a large cache, on a
thread of its own while the grid answers its first rows from a small ``ORDER BY ...
LIMIT`` read (``Viewport``); ``Snapshot.align`` then puts those early rows' sellers
exactly where they were shown (ties may come in any order), so a row the analyst saw
and clicked early is the row the snapshot holds.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["BATCH_ROWS", "ID_TYPE", "PACKED_ID", "Build", "Snapshot", "merge_ranges",
           "positions_in", "read", "read_rows", "runs_of"]

BATCH_ROWS = 1 << 18  # rows per batch streamed from DuckDB (the size barely changes speed)


def read(con: Any, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
    """Run one query on its own cursor and materialise it as Arrow.

    A cursor, because duckdb 2 refuses new work on a connection that still holds an
    unfinished ``execute()`` result (the store's own bookkeeping may leave one).
    """
    cursor = con.cursor()
    try:
        return cursor.sql(sql, params=list(params) if params else None).to_arrow_table()
    finally:
        cursor.close()


def read_rows(con: Any, packed_sql: str, text_sql: str) -> pa.Table:
    """The snapshot's rows streamed from DuckDB on ``con`` (which may be inside a
    transaction: results are consumed whole), seller ids packed into 16 bytes by
    ``packed_sql``; read again with ``text_sql`` when an id is not a canonical UUID."""
    tables = []
    reader = con.sql(packed_sql).to_arrow_reader(BATCH_ROWS)
    schema = reader.schema
    schema = schema.set(schema.get_field_index("__id"), pa.field("__id", ID_TYPE))
    try:
        for batch in reader:
            packed = fixed_ids(pa.Table.from_batches([batch]))
            if packed is None:  # a seller created here (``local:...``): ids as text
                break
            tables.append(packed)
        else:
            return pa.concat_tables(tables) if tables else schema.empty_table()
    finally:
        reader.close()
    tables.clear()
    reader = con.sql(text_sql).to_arrow_reader(BATCH_ROWS)
    try:
        return pa.Table.from_batches(list(reader), schema=reader.schema)
    finally:
        reader.close()


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


def positions_in(ranges: Iterable[tuple[int, int]], limit: int) -> np.ndarray:
    """Every position of the inclusive ``ranges`` (merged, clipped to ``limit`` rows) as
    one ascending array: ids of 10,000 scattered rows are one take, not 10,000."""
    merged = merge_ranges(ranges, limit)
    if not merged:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([np.arange(a, b + 1, dtype=np.int64) for a, b in merged])


class Snapshot:
    """Rows in fetch order, their run names, and the permutation that orders them."""

    def __init__(self, table: pa.Table, names: dict[str, list[str]],
                 counts: dict[str, Any]) -> None:
        self.table = table
        # Taking rows from a chunked table concatenates whole columns first (~15 ms at
        # 1M rows); taking from the few batches that hold them costs well under 1 ms.
        self.batches = table.to_batches()
        self.starts = np.cumsum([0] + [b.num_rows for b in self.batches])[:-1]
        self.code_names = names  # each code table's names, code i -> names[i]
        # code -1 (none) -> ""
        self.names = {k: np.array([*v, ""], dtype=object) for k, v in names.items()}
        self.counts = counts  # the status line's numbers, read with these rows
        self.order: pa.Array | None = None  # ordered position -> fetch row
        self.sorted_by: tuple[str, bool] | None = None  # (column, descending)
        self.then: tuple[tuple[str, bool], ...] = ()  # further sort keys (Shift+click)
        self.inverse: np.ndarray | None = None  # fetch row -> ordered position

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def sort(self, column: str, descending: bool,
             then: Sequence[tuple[str, bool]] = ()) -> None:
        """Order by ``column`` (then by the ``then`` keys, each (column, descending))."""
        # A stable sort on the keys alone: ties keep the cache's scan order. Breaking ties
        # by seller id costs 0.5 s more at 1M rows (random UUIDs sort slowly); selections
        # do not need it, they follow their sellers by id across refreshes.
        # Positions as int32, not the uint64 Arrow returns: 4 MB instead of 8 at 1M rows,
        # and the same again for the inverse (a snapshot stays far below 2**31 rows).
        then = tuple((str(c), bool(d)) for c, d in then)
        if not then:
            order = pc.array_sort_indices(
                self.table.column(column),
                order="descending" if descending else "ascending",
                null_placement="at_end",
            )
        else:
            keys = [(c, "descending" if d else "ascending")
                    for c, d in ((column, descending), *then)]
            order = pc.sort_indices(self.table.select(list(dict.fromkeys(k for k, _ in keys))),
                                    sort_keys=keys, null_placement="at_end")
        self.order = order.cast(pa.int32())
        # The sort's scratch (~110 MB at 5M rows) back to the system: Arrow's pool
        # keeps freed memory for its next allocation, and the kernel's RSS with it.
        pa.default_memory_pool().release_unused()
        self.inverse = None
        self.sorted_by = (column, descending)
        self.then = then

    @property
    def sort_columns(self) -> list[str]:
        """Every column the order depends on."""
        assert self.sorted_by is not None
        return list(dict.fromkeys([self.sorted_by[0], *(c for c, _ in self.then)]))

    def rows(self, first: int, count: int) -> pa.Table:
        """Rows at ordered positions first..first+count-1."""
        assert self.order is not None  # sort() runs right after the snapshot is made
        return self.take(self.order.slice(first, count).to_numpy().astype(np.int64))

    def at(self, positions: np.ndarray) -> pa.Table:
        """Rows at these ordered positions, in the order given."""
        assert self.order is not None  # sort() runs right after the snapshot is made
        return self.take(self.order.to_numpy()[positions].astype(np.int64))

    def align(self, early: Snapshot) -> bool:
        """Put each of ``early``'s rows (the first rows in this order, read apart and
        already shown) at the position it was shown at; False if that cannot be done
        exactly (the cache changed between the two reads: the rows must be shown again).

        Both are sorted on the same key, so position p holds the same key in both, and
        only the order within ties may differ: swapping the early seller into place
        swaps two rows of equal key, and the order stays sorted.
        """
        assert self.order is not None and self.sorted_by is not None
        count = early.num_rows
        if count == 0:
            return self.num_rows == 0
        if count > self.num_rows:
            return False
        held = self.table.column("__id")
        wanted = ids_like(unpack_ids(early.table.column("__id")), held)
        if len(wanted) != count:
            return False
        fetch_rows = np.flatnonzero(pc.is_in(held, value_set=wanted)
                                    .to_numpy(zero_copy_only=False))
        if len(fetch_rows) != count:
            return False
        # fetch row of the early row at each position p
        found = pc.index_in(self.take(fetch_rows).column("__id"), value_set=wanted)
        target = np.empty(count, dtype=np.int64)
        target[found.to_numpy(zero_copy_only=False)] = fetch_rows
        for key in self.sort_columns:
            early_keys = early.table.column(key).combine_chunks()
            if not (self.take(target).column(key).combine_chunks().equals(early_keys)
                    and self.rows(0, count).column(key).combine_chunks().equals(early_keys)):
                return False
        order = self.order.to_numpy().copy()
        places = np.flatnonzero(np.isin(order, target))
        where = dict(zip(order[places].tolist(), places.tolist(), strict=True))
        for p, f in enumerate(target.tolist()):
            q = where[f]
            if q != p:
                displaced = int(order[p])
                order[p], order[q] = f, displaced
                where[f], where[displaced] = p, q
        self.order = pa.array(order, type=pa.int32())
        self.inverse = None
        return True

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
        assert self.order is not None  # sort() runs right after the snapshot is made
        if self.inverse is None:
            self.inverse = np.empty(self.num_rows, dtype=np.int32)
            self.inverse[self.order.to_numpy()] = np.arange(self.num_rows, dtype=np.int32)
        return np.sort(self.inverse[fetch_rows])


class Build:
    """One snapshot read: on the caller's thread (``run``) or on its own (``start``).

    ``work(attach)`` reads the snapshot and calls ``attach(con)`` with its connection,
    so that ``cancel`` can interrupt the query (a filter changed: the rows are no longer
    wanted). ``wait`` gives the snapshot or raises what the read raised; ``on_done``
    runs on the build's thread when it ends (not when it was cancelled).
    """

    def __init__(self, work: Callable[[Callable[[Any], None]], Snapshot], *,
                 on_done: Callable[[Build], None] | None = None) -> None:
        self._work = work
        self._on_done = on_done
        self._finished = threading.Event()
        self._guard = threading.Lock()
        self._con: Any = None
        self.cancelled = False
        self.snapshot: Snapshot | None = None
        self.error: BaseException | None = None
        self.seconds = 0.0  # how long the read took (benchmarks read it)

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def start(self) -> None:
        """Read on a daemon thread; an interpreter exit interrupts it (``_stop_all``)."""
        with _LIVE_GUARD:
            _LIVE.add(self)
        threading.Thread(target=self.run, name="grid-snapshot", daemon=True).start()

    def run(self) -> None:
        began = time.perf_counter()
        try:
            self.snapshot = self._work(self._attach)
        except BaseException as exc:  # handed to whoever waits, never lost in a thread
            self.error = exc
        finally:
            with self._guard:
                self._con = None
            self.seconds = time.perf_counter() - began
            self._finished.set()
            with _LIVE_GUARD:
                _LIVE.discard(self)
        if self._on_done is not None and not self.cancelled:
            self._on_done(self)

    def _attach(self, con: Any) -> None:
        with self._guard:
            self._con = con
            if self.cancelled:
                con.interrupt()

    def cancel(self) -> None:
        """Stop the read (its result is never used)."""
        with self._guard:
            self.cancelled = True
            if self._con is not None:
                self._con.interrupt()

    def wait(self, timeout: float | None = None) -> Snapshot:
        if not self._finished.wait(timeout):
            raise TimeoutError("the grid's rows are still being read")
        if self.error is not None:
            raise self.error
        assert self.snapshot is not None
        return self.snapshot


_LIVE: set[Build] = set()
_LIVE_GUARD = threading.Lock()


def _stop_all() -> None:
    """At interpreter exit: interrupt the reads still running and let them end (a
    daemon thread left inside DuckDB while Python shuts down can abort the process)."""
    with _LIVE_GUARD:
        live = list(_LIVE)
    for build in live:
        build.cancel()
    for build in live:
        build._finished.wait(5)


atexit.register(_stop_all)


# -- seller ids, packed ------------------------------------------------------------------
# The snapshot holds every seller id: as text a canonical UUID costs 40 bytes a row (36
# characters and an offset), 40 MB at 1M sellers. Packed into its 16 bytes it costs 16,
# and sorts, compares and looks up the same (hex digits and hyphens sit at fixed places,
# so byte order is text order). A snapshot holding any other id (a seller created here,
# ``local:...``, not pushed yet) keeps them as text.

ID_TYPE = pa.binary(16)
_HYPHENS = np.array([8, 13, 18, 23])
_HEX_PLACES = np.setdiff1d(np.arange(36), _HYPHENS)
_NIBBLE = np.full(256, 255, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789", dtype=np.uint8)] = np.arange(10)
_NIBBLE[np.frombuffer(b"abcdef", dtype=np.uint8)] = np.arange(10, 16)
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def pack_ids(ids: pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """Canonical lowercase UUID strings as 16-byte values; None if any id is not one."""
    ids = pc.cast(ids, pa.string())
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    n = len(ids)
    if ids.null_count:
        return None
    if not n:
        return pa.array([], type=ID_TYPE)
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
    return pa.FixedSizeBinaryArray.from_buffers(ID_TYPE, n, [None, pa.py_buffer(packed.tobytes())])


def unpack_ids(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Seller ids as text, whichever way the snapshot holds them."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if ids.type != ID_TYPE:
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
# each); fixed_ids drops the offsets without copying the bytes.
PACKED_ID = (
    "CASE WHEN length(v.id) = 36 AND v.id = lower(v.id) AND v.id[9] = '-' "
    "AND v.id[14] = '-' AND v.id[19] = '-' AND v.id[24] = '-' "
    "THEN try(unhex(replace(v.id, '-', ''))) END"
)


def fixed_ids(table: pa.Table) -> pa.Table | None:
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
            chunks.append(pa.array([], type=ID_TYPE))
            continue
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32, count=n + 1,
                                offset=chunk.offset * 4)
        if not (np.diff(offsets) == 16).all():
            return None
        data = chunk.buffers()[2].slice(int(offsets[0]), 16 * n)
        chunks.append(pa.Array.from_buffers(ID_TYPE, n, [None, data]))
    packed = pa.chunked_array(chunks, type=ID_TYPE)
    return table.set_column(table.schema.get_field_index("__id"), "__id", packed)


def ids_like(ids: pa.Array, held: pa.ChunkedArray) -> pa.Array:
    """Text ids as the snapshot holds them (ids that cannot be packed are in no packed
    snapshot: they are left out)."""
    if held.type != ID_TYPE:
        return ids
    keep = pc.and_(pc.equal(pc.utf8_length(ids), 36), pc.match_substring_regex(
        ids, r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))
    return pack_ids(ids.filter(keep.fill_null(False)))
