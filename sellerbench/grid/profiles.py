"""Column profiles: the shape of each shown column under the grid's current filter.

For every column of the grid, a compact summary of the rows the grid shows:

- numbers and times: a histogram (up to 12 bins; one bin per value when the values are
  few small integers), with the count of empty values;
- text and runs: the top values with their counts, how many distinct values there are
  and how many are empty (a column of mostly distinct values, such as names, gets its
  distinct count only: a top-5 of a million different names says nothing and its exact
  GROUP BY would cost the kernel ~100 MB);
- the flag: how many are flagged, not flagged and (when the Pending column is shown)
  have a change pending.

Computed by DuckDB (an in-memory connection, two threads) over the grid's own Arrow
snapshot, so the profiles describe exactly the rows shown, cost no scan of the cache
file, and are never computed under the grid's lock: a profile runs on a worker thread
after each rebuild or patch of the snapshot (a filter, a sync, a change) while the
browser goes on scrolling; a newer snapshot makes an older result be dropped.

Clicking a bar or a value sends ``pick``: the grid filters to it with a predicate over
the ``visible_sellers`` columns (part of ``grid.where_sql``) and every profile follows.
Clicking it again, or its ×, removes it.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anywidget
import duckdb
import numpy as np
import pyarrow as pa
import traitlets

from ..cache.filters import PENDING_SQL, literal
from ..errors import ConfigError, SellerbenchError
from .viewport import Column, Viewport

__all__ = ["ProfileStrip", "pick_clause", "profile_table"]

BINS = 12
TOP = 5
DISTINCT_LIMIT = 10_000  # more distinct values than this: the distinct count alone
EXACT_ROWS = 200_000  # up to this many rows a distinct count is exact, above it estimated
DEFER_S = 0.25  # a deferred profile starts at the latest this long after the change
PROFILE_THREADS = 2  # they start after the rows are answered: 1M rows in ~0.17 s, not 0.22


def profile_table(table: pa.Table, columns: Sequence[Column], sources: dict[str, str],
                  names: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """Profiles of ``columns`` over an Arrow ``table`` (a grid snapshot).

    ``sources``: the table column holding each label's values; ``names``: the names of
    each code table (``Column.codes``), code i -> names[i]. Each profile is a dict with
    ``label``, ``kind``, ``rows``, ``empty`` and, by kind, ``bins`` ([lo, hi, count], hi
    exclusive but for the last) or ``values`` ([value, count], the top ones) and
    ``distinct``, or ``flagged``.
    """
    with _RUNNING:
        if _RUNNING.stopping:  # a worker woken during the interpreter's exit
            raise SellerbenchError("the profiles were not computed: Python is exiting")
        con = duckdb.connect(config={"threads": PROFILE_THREADS})
        _RUNNING.cons.add(con)
    try:
        con.register("snap", table)
        return [_profile(con, column, sources[column.label], names.get(column.codes, ()),
                         table.num_rows)
                for column in columns]
    finally:
        con.close()
        with _RUNNING:
            _RUNNING.cons.discard(con)
            _RUNNING.notify_all()


class _Running(threading.Condition):
    """The profile connections at work, so that an interpreter exit can stop them."""

    def __init__(self) -> None:
        super().__init__()
        self.cons: set[duckdb.DuckDBPyConnection] = set()
        self.stopping = False


_RUNNING = _Running()


@atexit.register
def _stop_all() -> None:
    """Interrupt profiles still running on their daemon threads and wait (briefly) for
    them to close: a DuckDB query left running while the interpreter shuts down aborts
    the process ("terminate called after throwing an instance of ...")."""
    with _RUNNING:
        _RUNNING.stopping = True
        for con in _RUNNING.cons:
            con.interrupt()
        _RUNNING.wait_for(lambda: not _RUNNING.cons, timeout=5)


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The one row an aggregate query returns."""
    row = con.execute(sql).fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns a row
    return tuple(row)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _profile(con: duckdb.DuckDBPyConnection, column: Column, source: str,
             code_names: Sequence[str], rows: int) -> dict[str, Any]:
    col = _q(source)
    out: dict[str, Any] = {"label": column.label, "kind": column.kind, "rows": rows}
    if column.kind == "bool":
        flagged, empty = _one(con,
            f"SELECT count(*) FILTER (WHERE {col}), count(*) FILTER (WHERE {col} IS NULL) "
            f"FROM snap")
        out.update(empty=empty, flagged=int(flagged), not_flagged=rows - int(flagged) - empty)
        names = [d[0] for d in con.execute("SELECT * FROM snap LIMIT 0").description]
        if "Pending" in names:
            out["pending"] = _one(con,
                "SELECT count(*) FROM snap WHERE \"Pending\" <> ''")[0]
        return out
    if column.kind in ("int", "time"):
        value = f"epoch_us({col})" if column.kind == "time" else col
        low, high, empty = _one(con,
            f"SELECT min({value}), max({value}), count(*) - count({value}) FROM snap")
        out["empty"] = int(empty)
        out["bins"] = [] if low is None else _histogram(con, value, int(low), int(high),
                                                        column.kind == "int")
        return out
    if column.kind == "code":
        empty = _one(con, f"SELECT count(*) FROM snap WHERE {col} IS NULL")[0]
        top = con.execute(f"SELECT {col}, count(*) AS n FROM snap WHERE {col} IS NOT NULL "
                      f"GROUP BY 1 ORDER BY n DESC, 1 LIMIT {TOP}").fetchall()
        distinct = _one(con, f"SELECT count(DISTINCT {col}) FROM snap")[0]
        out.update(empty=int(empty), distinct=int(distinct),
                   values=[[str(code_names[code]), int(n)] for code, n in top])
        return out
    text = f"CAST({col} AS VARCHAR)" if source != "__id" else col
    empty = _one(con, f"SELECT count(*) FROM snap WHERE {col} IS NULL OR {text} = ''"
                    if source != "__id" else f"SELECT count(*) FROM snap WHERE {col} IS NULL"
                    )[0]
    out["empty"] = int(empty)
    if source == "__id":  # every seller has its own: the count says it all
        out.update(distinct=rows - int(empty), values=[])
        return out
    approx = _one(con, f"SELECT approx_count_distinct({col}) FROM snap")[0]
    if approx > DISTINCT_LIMIT or (rows > 20 and approx > rows // 2):  # mostly unique
        if rows > EXACT_ROWS:  # too many to count exactly on every filter change
            # HyperLogLog may overshoot: never more distinct values than non-empty rows
            out.update(distinct=min(int(approx), rows - int(empty)), approximate=True,
                       values=[])
        else:  # few enough rows: the exact count, so "701 distinct" is never "≈703"
            distinct = _one(con, f"SELECT count(DISTINCT {col}) FROM snap WHERE {text} <> ''")
            out.update(distinct=int(distinct[0]), values=[])
        return out
    top = con.execute(f"SELECT {col}, count(*) AS n FROM snap WHERE {col} IS NOT NULL "
                  f"AND {text} <> '' GROUP BY 1 ORDER BY n DESC, 1 LIMIT {TOP}").fetchall()
    distinct = _one(con,
        f"SELECT count(DISTINCT {col}) FROM snap WHERE {text} <> ''")[0]
    out.update(distinct=int(distinct), values=[[str(v), int(n)] for v, n in top])
    return out


def _histogram(con: duckdb.DuckDBPyConnection, value: str, low: int, high: int,
               integers: bool) -> list[list[int]]:
    """[lo, hi, count] bins over [low, high]; hi exclusive except for the last bin."""
    if integers and high - low < BINS:
        width = 1
        edges = list(range(low, high + 2))
    else:
        width = max(-(-(high - low + 1) // BINS), 1)  # ceil: the bins cover [low, high]
        edges = [low + i * width for i in range(BINS + 1)]
    counts = dict(con.execute(f"SELECT least(CAST(({value} - {low}) // {width} AS BIGINT), "
                          f"{len(edges) - 2}) AS b, count(*) FROM snap "
                          f"WHERE {value} IS NOT NULL GROUP BY b").fetchall())
    return [[edges[i], min(edges[i + 1], high + 1) if i == len(edges) - 2 else edges[i + 1],
             int(counts.get(i, 0))] for i in range(len(edges) - 1)]


def pick_clause(viewport: Viewport, profile: dict[str, Any], index: int | str) -> str:
    """The predicate (over the visible_sellers columns) for a click on bar or value
    ``index`` of ``profile`` ("empty" for its empty values, "flagged", "not flagged"
    or "pending" for the flag)."""
    column = viewport.column(profile["label"])
    if index == "empty":
        return viewport._filter_sql({"column": column.label, "operator": "empty"})
    if column.kind == "bool":
        return {"flagged": column.bare, "not flagged": f"NOT {column.bare}",
                "pending": PENDING_SQL}[str(index)]
    if column.kind in ("int", "time"):
        lo, hi, _count = profile["bins"][int(index)]
        value = f"epoch_us({column.bare})" if column.kind == "time" else column.bare
        return f"{value} >= {literal(int(lo))} AND {value} < {literal(int(hi))}"
    shown = profile["values"][int(index)][0]
    return viewport._filter_sql({"column": column.label, "operator": "=", "value": shown})


_ESM = r"""
const fmt = (n) => n >= 1e6 ? (n / 1e6).toFixed(1) + 'M' : n >= 1e4 ? Math.round(n / 1e3) + 'k'
  : String(n);

function card(model, p, width, picked) {
  const box = document.createElement('div');
  box.className = 'sellerbench-profile';
  box.dataset.column = p.label;
  box.style.cssText = `width:${width}px;min-width:${width}px;box-sizing:border-box;`
    + 'padding:2px 4px;border-right:1px solid var(--jp-border-color2,#ddd);overflow:hidden;'
    + 'font-size:10px;line-height:12px;height:64px;position:relative';
  const pick = (index) => model.send({ event: 'pick', column: p.label, index });
  if (picked) {
    const clear = document.createElement('span');
    clear.className = 'sellerbench-profile-clear';
    clear.textContent = '×';
    clear.title = 'clear this filter';
    clear.style.cssText = 'position:absolute;right:3px;top:0;cursor:pointer;font-size:13px;'
      + 'color:#b00020';
    clear.addEventListener('click', () => model.send({ event: 'clear', column: p.label }));
    box.appendChild(clear);
  }
  const line = (label, count, index, total) => {
    const row = document.createElement('div');
    row.className = 'sellerbench-profile-value';
    row.dataset.index = String(index);
    row.title = `${label}: ${count.toLocaleString()} (click to filter)`;
    const share = total ? count / total : 0;
    row.style.cssText = 'cursor:pointer;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;'
      + `background:linear-gradient(90deg,rgba(33,150,243,.28) ${share * 100}%,transparent 0)`;
    row.textContent = `${fmt(count)} ${label}`;
    row.addEventListener('click', () => pick(index));
    return row;
  };
  if (p.bins) {
    const bars = document.createElement('div');
    bars.style.cssText = 'display:flex;align-items:flex-end;height:44px;gap:1px';
    const top = Math.max(1, ...p.bins.map((b) => b[2]));
    p.bins.forEach((b, i) => {
      const bar = document.createElement('div');
      bar.className = 'sellerbench-profile-bar';
      bar.dataset.index = String(i);
      bar.title = `${b[3] || b[0]}…${b[4] || b[1]}: ${b[2].toLocaleString()} (click to filter)`;
      bar.style.cssText = 'flex:1;cursor:pointer;min-height:1px;background:#2196f3;'
        + `height:${Math.round(44 * b[2] / top)}px;opacity:${b[2] ? 1 : .25}`;
      bar.addEventListener('click', () => pick(i));
      bars.appendChild(bar);
    });
    box.appendChild(bars);
    const foot = document.createElement('div');
    foot.textContent = p.bins.length ? `${p.lo_text} … ${p.hi_text}` : 'no values';
    foot.style.cssText = 'white-space:nowrap;overflow:hidden;text-overflow:ellipsis';
    box.appendChild(foot);
  } else if (p.kind === 'bool') {
    const total = p.rows || 0;
    box.appendChild(line('flagged', p.flagged, 'flagged', total));
    box.appendChild(line('not flagged', p.not_flagged, 'not flagged', total));
    if (p.pending !== undefined) box.appendChild(line('pending', p.pending, 'pending', total));
  } else {
    (p.values || []).slice(0, 4).forEach((v, i) => box.appendChild(line(v[0], v[1], i, p.rows)));
    if (!(p.values || []).length) {
      const note = document.createElement('div');
      note.textContent = `${p.approximate ? '≈' : ''}${fmt(p.distinct || 0)} distinct`;
      box.appendChild(note);
    }
  }
  if (p.empty) box.appendChild(line('empty', p.empty, 'empty', p.rows));
  return box;
}

export default {
  render({ model, el }) {
    const strip = document.createElement('div');
    strip.className = 'sellerbench-profiles';
    strip.style.cssText = 'display:flex;overflow:hidden;border-bottom:1px solid #ccc';
    const draw = () => {
      strip.textContent = '';
      strip.style.display = model.get('enabled') ? 'flex' : 'none';
      const head = document.createElement('div');
      const rowHeader = model.get('row_header');
      // Sticky: the strip scrolls sideways with the grid's columns (painter.py), the
      // corner above the row numbers stays.
      head.style.cssText = `width:${rowHeader}px;min-width:${rowHeader}px;font-size:10px;`
        + 'color:#777;padding:2px;box-sizing:border-box;position:sticky;left:0;z-index:1;'
        + 'background:var(--jp-layout-color0,#fff)';
      head.textContent = model.get('busy') ? 'profiling…' : `${fmt(model.get('rows'))} rows`;
      if (model.get('error')) {
        head.textContent = 'no profiles';
        head.title = model.get('error');
      }
      head.className = 'sellerbench-profile-head';
      strip.appendChild(head);
      const widths = model.get('widths');
      const picked = model.get('picked');
      for (const p of model.get('profiles')) {
        strip.appendChild(card(model, p, widths[p.label] || 100, picked.includes(p.label)));
      }
    };
    ['profiles', 'widths', 'picked', 'busy', 'enabled', 'rows', 'error']
      .forEach((name) => model.on('change:' + name, draw));
    draw();
    el.appendChild(strip);
  },
};
"""


class ProfileStrip(anywidget.AnyWidget):
    """The profiles above the grid's columns; computed off the grid's lock (see above)."""

    _esm = _ESM
    profiles: Any = traitlets.List().tag(sync=True)
    widths = traitlets.Dict().tag(sync=True)
    picked: Any = traitlets.List().tag(sync=True)  # labels with a profile filter
    busy = traitlets.Bool(False).tag(sync=True)
    enabled = traitlets.Bool(True).tag(sync=True)
    rows = traitlets.Int(0).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)  # why the profiles could not be computed
    row_header = traitlets.Int(72).tag(sync=True)

    def __init__(self, viewport: Viewport, lock: threading.RLock, *,
                 on_pick: Callable[[str, str | None], Any], enabled: bool = True) -> None:
        super().__init__(enabled=enabled)
        self.viewport = viewport
        self._grid_lock = lock
        self._on_pick = on_pick
        self._state = threading.Condition()
        self._wanted = 0  # generation asked for
        self._done = 0  # generation whose profiles are shown
        self._worker: threading.Thread | None = None
        self._deferred = False
        self.computed = 0  # profile runs finished (tests and benchmarks read it)
        self.version: tuple[int, int] = (-1, -1)  # the viewport's version profiled
        self.on_error: Callable[[str, BaseException], None] = lambda _w, exc: None
        self.on_msg(self._message)

    def refresh(self, *, deferred: bool = False) -> None:
        """The snapshot changed: profile it again on the worker (never waited for).

        ``deferred``: start after the browser's next rows are answered (``kick``) rather
        than now, so the profile's scan of the rows never competes with the reply the
        analyst waits for; at the latest after ``DEFER_S`` (no browser may be asking).
        """
        if not self.enabled:
            return
        with self._state:
            self._wanted += 1
            self._deferred = deferred
        self.busy = True
        if deferred:
            timer = threading.Timer(DEFER_S, self._start)
            timer.daemon = True
            timer.start()
        else:
            self._start()

    def kick(self) -> None:
        """Rows were answered: start a deferred profile now."""
        if self._deferred:
            self._start()

    def _start(self) -> None:
        with self._state:
            self._deferred = False
            if self._done >= self._wanted:
                return
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="grid-profiles",
                                                daemon=True)
                self._worker.start()

    def wait(self, timeout: float = 30) -> bool:
        """Block until the profiles shown describe the rows the grid shows now (waiting
        for a read of them under way); False after ``timeout`` seconds."""
        if not self.enabled:
            return True
        deadline = time.monotonic() + timeout
        while True:
            with self._grid_lock:
                self.viewport._snapshot()
                version = self.viewport.version
            with self._state:
                if self.version >= version:
                    return True
                idle = self._done >= self._wanted
            if idle:
                self.refresh()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._start()
            with self._state:
                self._state.wait_for(lambda: self._done >= self._wanted, remaining)

    def _work(self) -> None:
        while True:
            with self._state:
                if self._done >= self._wanted:
                    self._worker = None
                    return
                generation = self._wanted
            version = self.version
            try:
                with self._grid_lock:  # only to take the immutable table and its shape
                    snap = self.viewport.installed()
                    version = self.viewport.version
                    if snap is None:
                        # Changed again since, or still being read: the grid's next read
                        # (or the read's end) asks anew; reading here would cost it twice.
                        table = None
                    else:
                        table, names = snap.table, dict(snap.code_names)
                        columns = list(self.viewport.columns)
                        sources = {c.label: self.viewport._source(c.label) for c in columns}
                profiles, error = [], None
                if table is not None:
                    profiles = profile_table(table, columns, sources, names)
                    for profile in profiles:
                        _label_bins(profile)
            except Exception as exc:  # shown in place of the profiles, never raised
                table, profiles, error = None, [], exc
            with self._state:
                if generation == self._wanted and (table is not None or error is not None):
                    self.profiles = profiles
                    self.rows = table.num_rows if table is not None else 0
                    self.error = "" if error is None else f"{type(error).__name__}: {error}"
                    self.busy = False
                    self.computed += 1
                    self.version = version
                self._done = max(self._done, generation)
                self._state.notify_all()

    def profile(self, label: str) -> dict[str, Any]:
        for profile in list(self.profiles):
            if profile["label"] == label:
                return profile
        raise ConfigError(f"no profile of column {label!r} is shown (yet)")

    def _message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        label = content.get("column")
        if not isinstance(label, str):
            return
        try:
            index = content.get("index")
            if content.get("event") == "pick" and isinstance(index, int | str):
                self.pick(label, index)
            elif content.get("event") == "clear":
                self._on_pick(label, None)
        except SellerbenchError as exc:
            self.on_error("filter", exc)

    def pick(self, label: str, index: int | str) -> None:
        """Filter the grid to bar or value ``index`` of column ``label``'s profile (the
        same pick again removes it)."""
        profile = self.profile(label)
        try:
            clause = pick_clause(self.viewport, profile, index)
        except (IndexError, KeyError, TypeError, ValueError):
            # A click on profiles that changed meanwhile (another filter, a sync).
            raise ConfigError(f"that part of the {label!r} profile is gone; click "
                              f"again") from None
        self._on_pick(label, None if self.viewport.picks.get(label) == clause else clause)


def _label_bins(profile: dict[str, Any]) -> None:
    """Readable bounds for a histogram (epoch microseconds as dates)."""
    bins = profile.get("bins")
    if not bins:
        return
    if profile["kind"] == "time":
        def text(us: int) -> str:
            return str(np.datetime64(int(us), "us").astype("datetime64[m]")).replace("T", " ")
        for b in bins:
            b += [text(b[0]), text(b[1])]
        profile["lo_text"], profile["hi_text"] = bins[0][3], bins[-1][4]
    else:
        profile["lo_text"], profile["hi_text"] = str(bins[0][0]), str(bins[-1][1] - 1)

