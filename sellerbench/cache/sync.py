"""Keeping the cache in step with the API, and reading it back as frames.

``pull(store, client)`` pulls two feeds, sellers and collection runs, into the cache
(the ``Workbench`` pushes the analyst's queued changes first, and tells listeners
after). The mode follows what the server advertises:

**rev** (ext ``rev_feed``): pages of rows with ``rev > since_rev`` in rev order,
tombstones included, up to 10,000 a page, as Arrow IPC when the server offers it (ext
``arrow``), else JSON. The checkpoint is the highest rev applied; the next page is asked
for from it, so a resumed sync needs no cursor.

**base** (the origin's contract): pages of up to 100 rows, newest ``updated_at`` first,
walked with the server's cursor. A pass reads everything with
``updated_at >= high_water - OVERLAP``, ``include_deleted=true``; ``high_water`` is the
newest ``updated_at`` of the last whole pass. A row written during a pass moves to the
front of the feed, behind the pass, so a pass that changed anything is followed at once
by a short one (at most ``BASE_PASSES``). The overlap window re-reads rows that share
the high-water timestamp or whose write committed after we had read past its
``updated_at``; re-read rows are deduplicated by id and only strictly newer versions
replace what the cache holds. OVERLAP is 120 s: a write stamps ``updated_at`` and commits
within one API request, and a request still running after two minutes has long failed
at its client (30 s timeout by default); a wider window only costs re-reading a few
more minutes of changes on each sync.

**Checkpoints.** Every page is written in one transaction together with its feed's
``sync_state`` row (rev mode: ``since_rev``; base mode: the pass's cursor), so a process
killed anywhere resumes at the first page not committed and never skips a row. Every
``CHECKPOINT_ROWS`` rows DuckDB is told to checkpoint, which bounds memory on a first sync.

**Bulk path.** A pass that begins on an empty table (the first sync, or ``full=True``)
inserts pages straight from Arrow (the page is parsed in C++ by pyarrow, inserted by
DuckDB; no Python object per row, no lookups). In rev mode that holds for rows up to the
``max_rev`` seen before the pass began (``bulk_until_rev``): a row that changed during
the pass comes again later with a higher rev and takes the lookup path. Later syncs
apply only changes: rows strictly newer than the cached ones replace them
(one join finds them and their rowids, ``DELETE ... WHERE rowid IN`` then ``INSERT``;
no primary key, whose upserts would make DuckDB checkpoint on every commit). A page is
fetched by a helper thread while the previous one is written, so the network, the server
and DuckDB overlap (``_prefetch``).

**Counts.** ``added``: live sellers the cache did not hold; ``deleted``: sellers that
are tombstones now and were not before (including tombstones first seen); ``updated``:
other sellers the cache held whose server row changed (a restore counts here).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..api.client import ApiClient
from ..api.client import Feed as FeedPath
from ..api.pages import RUN_SCHEMA, SELLER_SCHEMA, TablePage
from ..errors import ApiValidationError, ProtocolError, SyncError
from ..schema import BASE_LIMIT, REV_LIMIT
from ..shortrepr import html_table, one_line
from .store import Store

if TYPE_CHECKING:
    from ..changes.push import PushReport

__all__ = ["OVERLAP", "SyncReport", "pull"]

OVERLAP = timedelta(seconds=120)
REV_PAGE = REV_LIMIT  # the largest pages the contract allows
BASE_PAGE = BASE_LIMIT
BASE_PASSES = 3  # a pass that changed rows is followed by a short one, at most this many
# Written rows between explicit CHECKPOINTs: the store defers checkpoints (1 GB of WAL), so
# a long first sync would otherwise hold every row uncompressed in memory (peak RSS).
CHECKPOINT_ROWS = 200_000


@dataclass(frozen=True)
class Feed:
    table: str  # the cache table and the sync_state key
    path: FeedPath  # the API feed: /sync/<path>
    schema: pa.Schema


SELLERS = Feed("sellers", "sellers", SELLER_SCHEMA)
RUNS = Feed("collection_runs", "collection-runs", RUN_SCHEMA)


@dataclass
class SyncReport:
    """What one sync did. ``added``/``updated``/``deleted`` count sellers."""

    added: int = 0
    updated: int = 0
    deleted: int = 0
    mode: str = "rev"
    pages: int = 0
    seconds: float = 0.0
    runs: int = 0  # collection runs added or changed
    pushed: PushReport | None = None  # queued changes sent first, when there were any

    def __str__(self) -> str:
        pushed = f"; queued changes: {self.pushed}" if self.pushed is not None else ""
        return (
            f"synced ({self.mode} feed) in {self.seconds:.2f} s, {self.pages:,} page(s): "
            f"{self.added:,} sellers added, {self.updated:,} updated, "
            f"{self.deleted:,} deleted; {self.runs:,} run(s) changed{pushed}"
        )

    def __repr__(self) -> str:
        return one_line(f"<SyncReport {self}>")

    def _repr_html_(self) -> str:
        return html_table("sync", [
            ("sellers", f"{self.added:,} added, {self.updated:,} updated, "
                        f"{self.deleted:,} deleted"),
            ("runs changed", f"{self.runs:,}"), ("feed", self.mode),
            ("pages", f"{self.pages:,}"), ("seconds", f"{self.seconds:.2f}"),
            *([("pushed first", str(self.pushed))] if self.pushed is not None else []),
        ])


@dataclass
class _State:
    """A feed's row of sync_state."""

    feed: str
    mode: str
    server: str | None = None
    since_rev: int | None = None
    bulk_until_rev: int | None = None
    cursor: str | None = None
    pass_since: datetime | None = None
    pass_high: datetime | None = None
    bulk_pass: bool | None = None
    high_water: datetime | None = None
    pass_started: datetime | None = None
    last_synced: datetime | None = None


@dataclass
class _Counts:
    added: int = 0
    updated: int = 0
    deleted: int = 0
    pages: int = 0
    seen: int = 0
    unflushed: int = 0  # rows written since the last CHECKPOINT

    def add(self, kind: str, n: int) -> None:
        setattr(self, kind, getattr(self, kind) + n)


# -- sync ----------------------------------------------------------------------------


def pull(
    store: Store,
    client: ApiClient,
    *,
    progress: bool = True,
    full: bool = False,
) -> SyncReport:
    """Pull sellers and runs into ``store``; see the module docstring.

    The caller holds the file's sync lock (one pull per file in this process) and pushes
    queued changes first; each page is written under the file's write lock.
    """
    started = time.perf_counter()
    features = client.features
    mode = "rev" if "rev_feed" in features else "base"
    arrow = mode == "rev" and "arrow" in features  # offered for the sellers feed
    with store.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        report = _pull_all(store, con, client, mode, arrow, full=full, progress=progress)
    report.seconds = time.perf_counter() - started
    return report


def _pull_all(
    store: Store,
    con: duckdb.DuckDBPyConnection,
    client: ApiClient,
    mode: str,
    arrow: bool,
    *,
    full: bool,
    progress: bool,
) -> SyncReport:
    report = SyncReport(mode=mode)
    for feed in (SELLERS, RUNS):
        counts = _pull(store, con, client, feed, mode, full=full, progress=progress,
                       arrow=arrow)
        report.pages += counts.pages
        if feed is SELLERS:
            report.added, report.updated, report.deleted = (
                counts.added, counts.updated, counts.deleted,
            )
        else:
            report.runs = counts.added + counts.updated + counts.deleted
    _remember_server(store, con, client, client.features)
    return report


def _pull(
    store: Store,
    con: duckdb.DuckDBPyConnection,
    client: ApiClient,
    feed: Feed,
    mode: str,
    *,
    full: bool,
    progress: bool,
    arrow: bool,
) -> _Counts:
    state = _load_state(store, con, feed, mode)
    reset = full or state.mode != mode or state.server != client.base_url
    if reset:  # rows from another server or mode: start over (the first page clears)
        state = _State(feed=feed.table, mode=mode, server=client.base_url)
    puller = _pull_rev if mode == "rev" else _pull_base
    with _progress_bar(feed, progress) as bar:
        try:
            try:
                return puller(store, con, client, feed, state, reset=reset, bar=bar, arrow=arrow)
            except _ServerReset:
                state = _State(feed=feed.table, mode=mode, server=client.base_url)
                return puller(store, con, client, feed, state, reset=True, bar=bar, arrow=arrow)
        except ProtocolError as exc:
            raise SyncError(
                f"a bad {feed.table} page: {exc.message}; the cache keeps every page "
                f"before this one: run sync again once the server is fixed",
                status=exc.status,
                code=exc.code,
                method=exc.method,
                url=exc.url,
            ) from exc


def _pull_rev(
    store: Store,
    con: duckdb.DuckDBPyConnection,
    client: ApiClient,
    feed: Feed,
    state: _State,
    *,
    reset: bool,
    bar: Any,
    arrow: bool,
) -> _Counts:
    clear = reset
    if reset or not state.since_rev:  # a first pass: it starts on an empty table
        # The newest rev before the pass: rows up to it come exactly once in it.
        probe = client.sync_page(feed.path, since_rev=0, limit=1)
        state.since_rev, state.bulk_until_rev = 0, probe.max_rev
        state.pass_started = _now()
        clear = True

    fetch = _rev_fetch(client, feed, arrow)
    counts = _Counts()
    since = state.since_rev or 0
    for page in _prefetch(fetch, since):
        if page.max_rev is not None and page.max_rev < since:
            raise _ServerReset  # the server's history restarted below our checkpoint
        _set_total(bar, page, counts)
        if page.table.num_rows:
            state.since_rev = int(pc.max(page.table.column("rev")).as_py())
        done = not page.has_more
        if done:
            state.since_rev = max(state.since_rev or 0, page.max_rev or 0)
            state.bulk_until_rev = None
            state.last_synced = _now()
        with store.writing(con):
            if clear:
                con.execute(f"DELETE FROM {feed.table}")
                clear = False
            _apply(con, feed, page.table, counts, bulk_until_rev=state.bulk_until_rev)
            _save_state(con, state)
        _page_done(store, con, counts, page, bar)
    return counts


def _rev_fetch(
    client: ApiClient, feed: Feed, arrow: bool
) -> Callable[[int], tuple[TablePage, int | None]]:
    def fetch(since: int) -> tuple[TablePage, int | None]:
        page = client.sync_page(
            feed.path, since_rev=since, limit=REV_PAGE, arrow=arrow and feed is SELLERS
        )
        return page, _next_rev(page, since, feed)

    return fetch


class _ServerReset(Exception):
    """The server's revs went back: its database was replaced. Sync from scratch."""


def _next_rev(page: TablePage, since: int, feed: Feed) -> int | None:
    """Where the next page starts, checking the page moved the feed forward."""
    if not page.has_more:
        return None
    if not page.table.num_rows:
        raise ProtocolError(
            f"the API broke its contract: the {feed.path} feed said has_more after "
            f"since_rev={since} but sent no rows"
        )
    revs = page.table.column("rev")
    low = pc.min(revs).as_py()
    if low <= since:
        raise ProtocolError(
            f"the API broke its contract: the {feed.path} feed sent rev {low} for "
            f"since_rev={since}"
        )
    return int(pc.max(revs).as_py())


def _pull_base(
    store: Store,
    con: duckdb.DuckDBPyConnection,
    client: ApiClient,
    feed: Feed,
    state: _State,
    *,
    reset: bool,
    bar: Any,
    arrow: bool,
) -> _Counts:
    """Passes until one brings nothing new: rows written during a pass moved to the
    front of the feed, behind it; the next, short pass picks them up."""
    counts = _Counts()
    for _ in range(BASE_PASSES):
        before = counts.added + counts.updated + counts.deleted
        _base_pass(store, con, client, feed, state, counts, clear=reset, bar=bar)
        reset = False
        if counts.added + counts.updated + counts.deleted == before:
            break
    return counts


def _base_pass(
    store: Store,
    con: duckdb.DuckDBPyConnection,
    client: ApiClient,
    feed: Feed,
    state: _State,
    counts: _Counts,
    *,
    clear: bool,
    bar: Any,
) -> None:
    if state.cursor is None:  # a new pass (otherwise resume the one a kill interrupted)
        empty = clear or _is_empty(con, feed)
        state.pass_since = None if empty or state.high_water is None else (
            state.high_water - OVERLAP
        )
        state.pass_high, state.bulk_pass, state.pass_started = None, empty, _now()

    def fetch(cursor: str | None) -> tuple[TablePage, str | None]:
        page = client.sync_page(
            feed.path, cursor=cursor, limit=BASE_PAGE, updated_since=state.pass_since,
            include_deleted=True,
        )
        return page, page.next_cursor if page.has_more else None

    try:
        first, after = fetch(state.cursor)
    except ApiValidationError as exc:
        if exc.code != "INVALID_CURSOR" or state.cursor is None:
            raise
        # The server no longer knows the saved cursor: walk the pass again from its start.
        state.cursor, state.bulk_pass = None, False
        first, after = fetch(None)
    for page in _chain(first, after, fetch):
        _set_total(bar, page, counts)
        if page.table.num_rows:
            newest = pc.max(page.table.column("updated_at")).as_py()
            state.pass_high = newest if state.pass_high is None else max(state.pass_high, newest)
        state.cursor = page.next_cursor if page.has_more else None
        finishing = state.cursor is None
        if finishing:
            if state.pass_high is not None:
                state.high_water = max(filter(None, (state.high_water, state.pass_high)))
            state.last_synced = _now()
        with store.writing(con):
            if clear:
                con.execute(f"DELETE FROM {feed.table}")
                clear = False
            _apply(con, feed, page.table, counts, bulk=bool(state.bulk_pass))
            if finishing and state.bulk_pass:
                _dedupe(con, feed)  # insurance against a server whose paging repeats rows
            if finishing:
                state.bulk_pass, state.pass_since, state.pass_high = None, None, None
            _save_state(con, state)
        _page_done(store, con, counts, page, bar)


def _page_done(
    store: Store, con: duckdb.DuckDBPyConnection, counts: _Counts, page: TablePage, bar: Any
) -> None:
    counts.pages += 1
    counts.unflushed += page.table.num_rows
    if counts.unflushed >= CHECKPOINT_ROWS:
        # Compressed to the file, so memory can be given back; a reader in another
        # thread may hold a snapshot, and then the next page's checkpoint does it.
        with store.locked(), contextlib.suppress(duckdb.TransactionException):
            con.execute("CHECKPOINT")
        counts.unflushed = 0
    bar.update(page.table.num_rows)


def _chain(first: TablePage, after: Any, fetch) -> Iterator[TablePage]:
    yield first
    if after is not None:
        yield from _prefetch(fetch, after)


# -- writing pages -----------------------------------------------------------------------


def _apply(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    table: pa.Table,
    counts: _Counts,
    *,
    bulk: bool = False,
    bulk_until_rev: int | None = None,
) -> None:
    """Write one page (inside the caller's transaction) and count what it changed."""
    if not table.num_rows:
        return
    if bulk_until_rev is not None:
        fresh_mask = pc.less_equal(table.column("rev"), bulk_until_rev)
        fresh = table.filter(fresh_mask)
        rest = table.filter(pc.invert(fresh_mask))
    elif bulk:
        fresh, rest = table, table.slice(0, 0)
    else:
        fresh, rest = table.slice(0, 0), table
    if fresh.num_rows:
        _insert_fresh(con, feed, fresh, counts)
    if rest.num_rows:
        _merge(con, feed, rest, counts)


def _insert_fresh(
    con: duckdb.DuckDBPyConnection, feed: Feed, rows: pa.Table, counts: _Counts
) -> None:
    """Rows the cache cannot hold yet: one Arrow insert, no lookups."""
    tombstones = rows.num_rows - rows.column("deleted_at").null_count
    con.register("sb_page", rows)
    try:
        con.execute(f"INSERT INTO {feed.table} BY NAME SELECT * FROM sb_page")
    finally:
        con.unregister("sb_page")
    counts.add("added", rows.num_rows - tombstones)
    counts.add("deleted", tombstones)


# Which incoming rows change the cache, and how: strictly newer by rev when both sides
# have one, else by updated_at (every write moves it; a no-op write moves neither).
_CLASSIFY = """
CREATE OR REPLACE TEMP TABLE sb_changes AS
WITH incoming AS (
    SELECT * FROM sb_page
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY rev DESC NULLS LAST,
                                                        updated_at DESC) = 1
)
SELECT i.*, o.rowid AS sb_rowid,
       CASE WHEN o.id IS NULL AND i.deleted_at IS NULL THEN 'added'
            WHEN i.deleted_at IS NOT NULL AND (o.id IS NULL OR o.deleted_at IS NULL)
                THEN 'deleted'
            ELSE 'updated' END AS sb_kind
FROM incoming i LEFT JOIN {table} o ON o.id = i.id
WHERE o.id IS NULL
   OR CASE WHEN i.rev IS NOT NULL AND o.rev IS NOT NULL THEN i.rev > o.rev
           ELSE i.updated_at > o.updated_at END
"""


def _merge(con: duckdb.DuckDBPyConnection, feed: Feed, rows: pa.Table, counts: _Counts) -> None:
    """Rows the cache may hold: replace only those the server changed since."""
    con.register("sb_page", rows)
    try:
        con.execute(_CLASSIFY.format(table=feed.table))
    finally:
        con.unregister("sb_page")
    # By rowid, found by the join above: no second scan of the table's ids.
    con.execute(
        f"DELETE FROM {feed.table} WHERE rowid IN "
        f"(SELECT sb_rowid FROM sb_changes WHERE sb_rowid IS NOT NULL)"
    )
    con.execute(
        f"INSERT INTO {feed.table} BY NAME SELECT * EXCLUDE (sb_kind, sb_rowid) FROM sb_changes"
    )
    for kind, n in con.execute("SELECT sb_kind, count(*) FROM sb_changes GROUP BY ALL").fetchall():
        counts.add(kind, n)
    con.execute("DROP TABLE sb_changes")


def _dedupe(con: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    con.execute(
        f"""DELETE FROM {feed.table} WHERE rowid IN (
            SELECT rowid FROM {feed.table}
            QUALIFY row_number() OVER (PARTITION BY id ORDER BY rev DESC NULLS LAST,
                                                          updated_at DESC) > 1)"""
    )


def _is_empty(con: duckdb.DuckDBPyConnection, feed: Feed) -> bool:
    return con.execute(f"SELECT count(*) = 0 FROM (FROM {feed.table} LIMIT 1)").fetchall()[0][0]


# -- checkpoints -----------------------------------------------------------------------

_STATE_COLUMNS = tuple(f.name for f in fields(_State))


def _load_state(store: Store, con: duckdb.DuckDBPyConnection, feed: Feed, mode: str) -> _State:
    rows = con.execute(
        f"SELECT {', '.join(_STATE_COLUMNS)} FROM sync_state WHERE feed = ?", [feed.table]
    ).fetchall()
    if not rows:  # written under the lock only when there is something to write
        with store.writing(con):
            con.execute(
                "INSERT INTO sync_state (feed, mode) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [feed.table, mode],
            )
        return _State(feed=feed.table, mode=mode)
    return _State(*rows[0])


def _save_state(con: duckdb.DuckDBPyConnection, state: _State) -> None:
    # An UPDATE of a row that exists: no upsert, so no forced checkpoint per page.
    columns = [c for c in _STATE_COLUMNS if c != "feed"]
    con.execute(
        f"UPDATE sync_state SET {', '.join(f'{c} = ?' for c in columns)} WHERE feed = ?",
        [*(getattr(state, c) for c in columns), state.feed],
    )


def _remember_server(
    store: Store, con: duckdb.DuckDBPyConnection, client: ApiClient, features: frozenset[str]
) -> None:
    """The server and its features, for status() offline; written only when they change."""
    remembered = dict(con.execute(
        "SELECT key, value FROM meta WHERE key IN ('server_url', 'features')"
    ).fetchall())
    current = {"server_url": client.base_url, "features": orjson.dumps(sorted(features)).decode()}
    if remembered != current:
        with store.writing(con):
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('server_url', ?), ('features', ?)",
                [current["server_url"], current["features"]],
            )


def _now() -> datetime:
    return datetime.now(UTC)


# -- fetching ahead ------------------------------------------------------------------------

_DONE = object()
# Pages fetched ahead: enough to keep the server busy while DuckDB checkpoints (~0.5 s
# every CHECKPOINT_ROWS); six 10,000-row pages are ~25 MB of Arrow.
PREFETCH_PAGES = 6


def _prefetch(
    fetch: Callable[[Any], tuple[TablePage, Any]], start: Any, depth: int = PREFETCH_PAGES
) -> Iterator[TablePage]:
    """Yield pages while a thread fetches the next ones (``fetch(token) -> page, next``).

    ``next`` None ends the feed. An error in the thread is raised here, after the pages
    fetched before it. Leaving the loop early tells the thread to stop and does not wait
    for it: a request it has under way ends within the client's timeout, and its page is
    dropped (the next sync asks for it again from the checkpoint).
    """
    pages: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        token = start
        try:
            while token is not None and not stop.is_set():
                page, token = fetch(token)
                if not put(page):
                    return
        except BaseException as exc:
            put(exc)
            return
        put(_DONE)

    worker = threading.Thread(target=run, name="sellerbench-sync-fetch", daemon=True)
    worker.start()
    try:
        while True:
            item = pages.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


# -- progress --------------------------------------------------------------------------


@contextlib.contextmanager
def _progress_bar(feed: Feed, enabled: bool) -> Iterator[Any]:
    if not enabled or feed is not SELLERS:  # runs are a handful of rows: no bar
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    bar = tqdm(desc="sync sellers", unit=" rows", unit_scale=True, leave=True)
    try:
        yield bar
    finally:
        bar.close()


class _NoBar:
    total = None

    def update(self, n: int) -> None:
        pass

    def refresh(self) -> None:
        pass


def _set_total(bar: Any, page: TablePage, counts: _Counts) -> None:
    counts.seen += page.table.num_rows
    if bar.total is None and page.total_estimate is not None:
        bar.total = counts.seen - page.table.num_rows + page.total_estimate
        bar.refresh()


