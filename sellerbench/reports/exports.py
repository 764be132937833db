"""Exports: what the analyst sees, written to CSV, JSON or Parquet in one DuckDB ``COPY``.

    wb.export("flagged.parquet", flagged=True)
    wb.export("ebay.csv", where="platform = 'ebay'", columns=["id", "display_name"])
    wb.export("all.json", source="server")

**Where the rows come from** (``source``):

- ``"cache"``: ``COPY (SELECT ... FROM visible_sellers WHERE ...) TO file``. This is what
  the analyst sees: the last pulled server rows with the pending (not yet pushed)
  changes applied. It runs locally at disk speed.
- ``"server"``: the API's streamed ``/export/sellers/csv`` (or ``/json``) is downloaded
  into a temporary file in constant memory, then passed through the same DuckDB
  ``COPY`` (so filters, columns, timestamps and neutralisation behave the same). It is
  the server's current state: pending local changes are NOT in it.
- ``"auto"`` (default) picks the fastest correct path: the cache whenever it has been
  synced or holds rows (a local ``COPY`` beats any download, and only the cache knows
  the pending changes); the server only when the cache is empty and was never synced
  and an API is configured. ``ExportReport.route_reason`` says which and why.

**Files.** Format from the suffix unless ``format`` is given: ``.csv`` (header row),
``.json`` (one JSON array), ``.ndjson`` / ``.jsonl`` (one object per line), ``.parquet``;
a further ``.gz`` gzips CSV and JSON. Timestamps are ISO-8601 in UTC
(``2024-05-01T09:30:00.000000Z``; Parquet keeps them as UTC timestamps). The file is
written beside the target under a hidden temporary name and renamed into place only
when complete, so a failed or interrupted export leaves nothing at the target path; an
existing file is kept unless ``overwrite=True``.

**CSV injection.** A spreadsheet runs a cell that begins with ``=``, ``+``, ``-``, ``@``,
tab or carriage return as a formula. In CSV output every text cell that begins with one
of those is prefixed with a single quote (``=SUM(A1)`` -> ``'=SUM(A1)``, OWASP's advice),
so the spreadsheet shows it as text. Reading the file back gives the prefixed value.
JSON and Parquet are written unchanged; ``neutralize=False`` writes CSV unchanged too.
Numbers, booleans and timestamps are never altered.

**Filters.** ``flagged``, ``search`` and ``where`` are the one seller filter
(:class:`~sellerbench.cache.filters.SellerFilter`) that frames and the grid use: values are
bound parameters; ``where`` is a SQL predicate over the ``visible_sellers`` columns,
e.g. ``"times_seen >= 5 AND platform = 'ebay'"``, trusted SQL run by the analyst over
their own cache like ``wb.sql``, still checked to be a single expression (no ``;``, no
second statement), bound against the columns before anything is written (a misspelt
column is a ConfigError naming it), and wrapped in parentheses so it cannot undo the
other filters.
"""

from __future__ import annotations

import contextlib
import csv
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ..cache.filters import SellerFilter, first_line
from ..errors import ApiError, ExportError
from ..schema import SELLER, WIRE_TIME
from ..shortrepr import html_table, one_line

if TYPE_CHECKING:
    from ..api.client import ApiClient
    from ..cache.store import Store

__all__ = ["FORMATS", "ExportReport", "export"]

FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SOURCES = ("auto", "cache", "server")
ISO_UTC = WIRE_TIME  # how every time is written: the API's form
# Characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Show a progress bar only for exports that take longer than this (seconds).
PROGRESS_AFTER = 0.5
CHUNK_BYTES = 1 << 16

# The seller record of the API contract, typed as the cache stores it: a server
# download is read with these types so both routes write the same values.
SELLER_TYPES: dict[str, str] = SELLER.duckdb_types()


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote: how many rows, where, in which format, from which source."""

    rows: int
    path: Path
    format: str
    source: str
    seconds: float
    route_reason: str

    def __str__(self) -> str:
        return (
            f"exported {self.rows:,} rows to {self.path} ({self.format}, from the "
            f"{self.source}, {self.seconds:.2f} s): {self.route_reason}"
        )

    def __repr__(self) -> str:
        return one_line(f"<ExportReport {self}>")

    def _repr_html_(self) -> str:
        return html_table("export", [
            ("rows", f"{self.rows:,}"), ("path", str(self.path)), ("format", self.format),
            ("from", self.source), ("seconds", f"{self.seconds:.2f}"),
            ("why", self.route_reason),
        ])


@dataclass(frozen=True)
class _Job:
    """One export request, checked."""

    target: Path
    fmt: str
    gzip: bool
    chosen: SellerFilter
    columns: Sequence[str] | None
    neutralize: bool
    progress: bool
    overwrite: bool


@dataclass(frozen=True)
class _Query:
    """The SELECT to copy and its bound parameters."""

    select: str
    params: list[Any]


def export(
    store: Store,
    client: ApiClient | None,
    path: str | os.PathLike[str],
    *,
    chosen: SellerFilter,
    columns: Sequence[str] | None,
    format: str | None,
    source: str,
    overwrite: bool,
    neutralize: bool,
    progress: bool,
) -> ExportReport:
    """Write the sellers ``chosen`` keeps to ``path``; see the module docstring. Every
    option is ``wb.export()``'s, which holds their defaults.

    ``columns`` picks and orders columns. Raises ExportError (nothing written) on a bad
    argument or a failed write, ConfigError for a filter that does not fit the columns,
    an ApiError subclass when the server refuses a download.
    """
    started = time.perf_counter()
    target = Path(path).expanduser()
    fmt, gzip = _format_of(target, format)
    if source not in SOURCES:
        raise ExportError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    _check_target(target, overwrite)
    job = _Job(target, fmt, gzip, chosen, columns, neutralize, progress, overwrite)
    # One short-lived connection decides the route and, for the cache, does the COPY;
    # it is closed before any download so the cache is not held during it.
    with store.connect() as con:
        chosen_route, reason = _route(con, client, source)
        if chosen_route == "cache":
            rows = _export_cache(con, job)
    if chosen_route == "server":
        if chosen.pending or chosen.include_deleted:
            raise ExportError(
                "the server's export knows no pending changes or tombstones: "
                "export from the cache (source='cache') for those filters"
            )
        rows = _export_server(client, job)
    return ExportReport(rows, target, fmt, chosen_route, time.perf_counter() - started, reason)


# -- arguments -------------------------------------------------------------------------


def _format_of(target: Path, given: str | None) -> tuple[str, bool]:
    suffixes = [s.lower() for s in target.suffixes]
    gzip = bool(suffixes) and suffixes[-1] == ".gz"
    if gzip:
        suffixes = suffixes[:-1]
    fmt: str | None
    if given is not None:
        fmt = given.lower().lstrip(".")
        fmt = {"jsonl": "ndjson", "pq": "parquet"}.get(fmt, fmt)
        if fmt not in set(FORMATS.values()):
            raise ExportError(
                f"unknown export format {given!r}; use one of csv, json, ndjson, parquet"
            )
    else:
        fmt = FORMATS.get(suffixes[-1]) if suffixes else None
        if fmt is None:
            raise ExportError(
                f"cannot tell the format of {target.name!r} from its suffix; name it "
                f"{', '.join(FORMATS)} or pass format='csv' / 'json' / 'ndjson' / 'parquet'"
            )
    if gzip and fmt == "parquet":
        raise ExportError("Parquet is compressed inside the file; drop the .gz suffix")
    return fmt, gzip


def _check_target(target: Path, overwrite: bool) -> None:
    if target.is_dir():
        raise ExportError(f"{target} is a directory; give a file name such as sellers.csv")
    if not target.parent.is_dir():
        raise ExportError(f"the folder {target.parent} does not exist; create it first")
    if target.exists() and not overwrite:
        raise ExportError(f"{target} exists; pass overwrite=True to replace it")


# -- routing ---------------------------------------------------------------------------


def _route(
    con: duckdb.DuckDBPyConnection, client: Any, source: str
) -> tuple[str, str]:
    if source == "cache":
        return "cache", "asked for the cache: what you see, pending changes included"
    if source == "server":
        if client is None:
            raise ExportError("source='server' needs an API; connect with an API url and token")
        pending = con.execute(
            "SELECT count(*) FROM mutations WHERE state = 'pending'"
        ).fetchall()[0][0]
        note = f"; {pending} pending change(s) are not in it (push first)" if pending else ""
        return "server", f"asked for the server: its current state{note}"
    rows = con.execute("SELECT EXISTS (SELECT 1 FROM visible_sellers)").fetchall()[0][0]
    synced = con.execute(
        "SELECT count(*) FROM sync_state WHERE feed = 'sellers' AND last_synced IS NOT NULL"
    ).fetchall()[0][0]
    if rows or synced:
        return "cache", (
            "the cache has been synced: a local COPY is the fastest path and the only "
            "one that includes your pending changes"
        )
    if client is not None:
        return "server", "the cache is empty and was never synced: streamed from the server"
    return "cache", "no API configured and the cache is empty: nothing to export"


# -- the cache path --------------------------------------------------------------------


def _export_cache(con: duckdb.DuckDBPyConnection, job: _Job) -> int:
    job.chosen.check(con)  # a misspelt column in where: named before any file appears
    relation = job.chosen.relation
    with _temporary(job.target) as tmp:
        query = _build_query(_schema(con, relation), relation, job)
        rows = _copy(con, query, tmp, job, f"exporting to {job.target.name}")
        _publish(tmp, job.target, job.overwrite)
    return rows


def _schema(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    """Column name -> DuckDB type of a table, view or table function, in order."""
    rows = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    return {name: str(kind) for name, kind, *_ in rows}


def _build_query(
    schema: dict[str, str], relation: str, job: _Job, where: str | None = None
) -> _Query:
    chosen = _choose_columns(schema, job.columns)
    guard = job.fmt == "csv" and job.neutralize
    select = ", ".join(_column_sql(name, schema[name], guard) for name in chosen)
    clauses, params = job.chosen.clauses()
    conditions: list[str] = ([where] if where else []) + clauses
    sql = f"SELECT {select} FROM {relation}"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    return _Query(sql, params)


def _choose_columns(schema: dict[str, str], columns: Sequence[str] | None) -> list[str]:
    if columns is None:
        return list(schema)
    wanted = [columns] if isinstance(columns, str) else list(columns)
    if not wanted:
        raise ExportError("columns is empty; leave it out to export every column")
    unknown = [c for c in wanted if c not in schema]
    if unknown:
        raise ExportError(
            f"unknown column(s) {', '.join(map(repr, unknown))}; "
            f"the sellers have: {', '.join(schema)}"
        )
    if len(set(wanted)) != len(wanted):
        raise ExportError("a column is named twice in columns")
    return wanted


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column_sql(name: str, kind: str, neutralize: bool) -> str:
    col = _quote(name)
    if not (neutralize and kind == "VARCHAR"):
        return col
    # Comparing the first code point is the cheapest test DuckDB offers: over a million
    # rows and seven text columns it costs ~0.1 s of CPU, against ~0.3 s for
    # left(x, 1) IN (...) and ~1 s for a regexp.
    starts = ", ".join(str(ord(c)) for c in FORMULA_STARTS)
    return f"CASE WHEN ascii({col}) IN ({starts}) THEN '''' || {col} ELSE {col} END AS {col}"


def _copy_options(fmt: str, gzip: bool) -> str:
    options = {
        "csv": f"FORMAT csv, HEADER true, TIMESTAMPFORMAT '{ISO_UTC}'",
        "json": f"FORMAT json, ARRAY true, TIMESTAMPFORMAT '{ISO_UTC}'",
        "ndjson": f"FORMAT json, TIMESTAMPFORMAT '{ISO_UTC}'",
        "parquet": "FORMAT parquet",
    }[fmt]
    return options + (", COMPRESSION gzip" if gzip else "")


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _copy(
    con: duckdb.DuckDBPyConnection, query: _Query, tmp: Path, job: _Job, label: str
) -> int:
    """Run the COPY; a progress bar appears when it takes a while. Returns rows written."""
    con.execute("SET TimeZone = 'UTC'")  # timestamps are written in UTC
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")  # we draw our own bar
    sql = f"COPY ({query.select}) TO {_sql_string(str(tmp))} ({_copy_options(job.fmt, job.gzip)})"
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["rows"] = con.execute(sql, query.params).fetchall()[0][0]
        except BaseException as exc:  # handed to the calling thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="sellerbench-export", daemon=True)
    worker.start()
    try:
        _watch(con, worker, job.progress, label)
    except BaseException:
        con.interrupt()  # Ctrl-C in the notebook stops DuckDB too
        worker.join()
        raise
    error = outcome.get("error")
    if error is not None:
        if isinstance(error, duckdb.Error):
            raise ExportError(f"the export failed: {first_line(error)}") from error
        raise error
    return int(outcome["rows"])


def _watch(
    con: duckdb.DuckDBPyConnection, worker: threading.Thread, progress: bool, label: str
) -> None:
    bar = None
    started = time.monotonic()
    try:
        while worker.is_alive():
            worker.join(0.1)
            if not progress or not worker.is_alive():
                continue
            if bar is None and time.monotonic() - started >= PROGRESS_AFTER:
                bar = _bar(total=100, desc=label, unit="%")
            if bar is not None:
                done = con.query_progress()
                if done >= 0:
                    bar.update(max(0.0, min(done, 100.0) - bar.n))
        if bar is not None:
            bar.update(100 - bar.n)
    finally:
        if bar is not None:
            bar.close()


def _bar(**options: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(leave=False, **options)


# -- the server path -------------------------------------------------------------------


def _export_server(client: Any, job: _Job) -> int:
    # The download is CSV unless JSON is asked for: both go through DuckDB after.
    kind = "json" if job.fmt in ("json", "ndjson") else "csv"
    with _temporary(job.target, ".download") as raw, _temporary(job.target) as tmp:
        _download(client, kind, job.chosen.flagged, raw, job.progress, job.target.name)
        con = duckdb.connect()  # in memory: the download is converted without the cache
        try:
            relation = _read_download(con, raw, kind)
            schema = _schema(con, relation)
            if job.columns is None:  # like visible_sellers: the change number is internal
                schema.pop("rev")
            # Tombstones are not something the analyst sees.
            query = _build_query(schema, relation, job, where="deleted_at IS NULL")
            rows = _copy(con, query, tmp, job, f"writing {job.target.name}")
        finally:
            con.close()
        _publish(tmp, job.target, job.overwrite)
    return rows


def _download(
    client: Any, kind: str, flagged: bool | None, raw: Path, progress: bool, label: str
) -> None:
    """Stream the server's export into ``raw`` chunk by chunk (constant memory)."""
    params = {} if flagged is None else {"flagged": "true" if flagged else "false"}
    bar = None
    received = 0
    try:
        with client.stream("GET", f"/export/sellers/{kind}", params=params) as response, \
                open(raw, "wb") as out:
            length = response.headers.get("Content-Length")
            if progress:
                bar = _bar(total=int(length) if length else None, desc=f"downloading {label}",
                           unit="B", unit_scale=True, unit_divisor=1024)
            for chunk in response.iter_bytes(CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
    except ApiError as exc:
        exc.add_note(f"the server export stopped after {received:,} bytes; nothing was written")
        raise
    except OSError as exc:
        raise ExportError(f"cannot write the download next to {label}: {exc}") from exc
    finally:
        if bar is not None:
            bar.close()


def _read_download(con: duckdb.DuckDBPyConnection, raw: Path, kind: str) -> str:
    """A relation over the download with the contract's columns and types, in the cache's
    order: a column the server left out (``deleted_at`` in its CSV) is NULL, and columns
    the contract does not name are dropped, so both routes write the same layout."""
    name = _sql_string(str(raw))
    if kind == "json":
        present = list(SELLER_TYPES)
        struct = ", ".join(f"{_sql_string(k)}: {_sql_string(v)}" for k, v in SELLER_TYPES.items())
        reader = f"read_json({name}, format = 'array', columns = {{{struct}}})"
    else:
        present = [k for k in _csv_header(raw) if k in SELLER_TYPES]
        types = ", ".join(f"{_sql_string(k)}: {_sql_string(SELLER_TYPES[k])}" for k in present)
        dialect = "header = true, delim = ',', quote = '\"', escape = '\"'"
        reader = f"read_csv({name}, {dialect}, types = {{{types}}})"
    picks = ", ".join(
        _quote(k) if k in present else f"NULL::{v} AS {_quote(k)}" for k, v in SELLER_TYPES.items()
    )
    relation = f"(SELECT {picks} FROM {reader}) AS download"
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    except duckdb.Error as exc:
        raise ExportError(
            f"the server's export is not valid {kind.upper()}: {first_line(exc)}"
        ) from exc
    return relation


def _csv_header(raw: Path) -> list[str]:
    with open(raw, encoding="utf-8", newline="") as handle:
        first = handle.readline()
    if not first:
        raise ExportError("the server's export was empty (no header row)")
    return next(csv.reader([first]))


# -- files -----------------------------------------------------------------------------


@contextlib.contextmanager
def _temporary(target: Path, tag: str = "") -> Iterator[Path]:
    """A hidden name beside the target (same filesystem, so the rename is atomic)."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}{tag}.part")
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _publish(tmp: Path, target: Path, overwrite: bool) -> None:
    """Move the finished file into place; without overwrite, never replace a file."""
    try:
        if overwrite:
            os.replace(tmp, target)
            return
        try:
            os.link(tmp, target)  # fails if the target appeared meanwhile: no clobbering
        except FileExistsError:
            raise ExportError(f"{target} exists; pass overwrite=True to replace it") from None
        except OSError:  # a filesystem without hard links
            if target.exists():
                raise ExportError(f"{target} exists; pass overwrite=True to replace it") from None
            os.replace(tmp, target)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc}") from exc


