"""The local cache: one DuckDB file holding what the server last said, plus our pending work.

Connections are short-lived: every operation opens the file, does its work in a
transaction, and closes it, so two kernels can share one cache (DuckDB lets one
process write at a time). A busy file is retried for ``lock_timeout`` seconds, then
``CacheLockedError`` names the process that holds it. Results leave the connection as
Arrow tables, never as live relations, so no lock outlives the ``with`` block.

**Threads.** Every connection of this process to one file shares one DuckDB database,
whose transactions are optimistic (two threads writing the same rows would collide at
commit). So every write runs in :meth:`Store.transaction` (or :meth:`Store.writing`),
which holds the file's write lock (``FileLocks.write``) from BEGIN to COMMIT: writes of
one file never overlap, and each is local work (a page, an action), never a network
wait. Reads take no lock: DuckDB gives each a snapshot beside the writer. Pushes and
syncs are ordered by the Workbench (workbench.py), across processes by the lease in
``meta``. No DuckDB error escapes a connection raw: it becomes a ``CacheError``.

**Memory.** One policy, set when the file is opened and never changed while it is open:
DuckDB's ``memory_limit`` and ``temp_directory`` come from the settings of those names
(``SELLERBENCH_MEMORY_LIMIT``, ``SELLERBENCH_TEMP_DIRECTORY``, or ``sb.connect()``);
past the limit queries spill to the folder. Nothing a thread does changes them for
another; large readers (the grid) bound their own peak by how they read.

Tables (readable from the plain duckdb CLI, read-only, when no kernel holds the file):

- ``sellers``          server rows as last pulled, tombstones included (``deleted_at``)
- ``collection_runs``  server runs as last pulled
- ``sync_state``       one checkpoint per feed (``sellers``, ``collection_runs``)
- ``mutations``        the analyst's queued and past changes (see ``mutations.py``)
- ``meta``             schema version, server url and features seen
- view ``visible_sellers``: server rows with pending mutations applied (what the analyst sees)
- view ``pending_changes``: the queue in plain terms (what ``wb.pending()`` lists)

A damaged file (cut short, a block overwritten) raises ``CacheCorruptError`` wherever
the damage is met; ``Store(path).rebuild()`` moves it aside, starts a fresh cache that
keeps the queued changes it can still read, and the next sync refills the rest.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from ..errors import CacheCorruptError, CacheError, CacheLockedError, CacheVersionError
from ..settings import LOCK_TIMEOUT, default_cache, value

__all__ = ["SCHEMA_VERSION", "FileLocks", "Rebuilt", "Store"]


# Each entry moves the schema from version i to i+1. Never edit a landed entry: append
# (a cache written at version 1 is kept in data/fixtures/ and must upgrade to the schema
# of a new cache; tests/reliability/test_cache_files.py checks it, views included).
MIGRATIONS: list[str] = [
    # 0 -> 1
    """
    CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);

    CREATE TABLE sellers (
        id                VARCHAR NOT NULL,
        display_name      VARCHAR NOT NULL,
        normalized_name   VARCHAR NOT NULL,
        platform          VARCHAR NOT NULL,
        platform_id       VARCHAR,
        times_seen        INTEGER NOT NULL,
        flagged           BOOLEAN NOT NULL,
        first_seen_run_id VARCHAR,
        last_seen_run_id  VARCHAR,
        created_at        TIMESTAMPTZ NOT NULL,
        updated_at        TIMESTAMPTZ NOT NULL,
        deleted_at        TIMESTAMPTZ,
        rev               BIGINT
    );

    CREATE TABLE collection_runs (
        id                    VARCHAR NOT NULL,
        name                  VARCHAR NOT NULL,
        status                VARCHAR NOT NULL,
        category_ids          VARCHAR[],
        started_at            TIMESTAMPTZ,
        completed_at          TIMESTAMPTZ,
        paused_at             TIMESTAMPTZ,
        created_at            TIMESTAMPTZ NOT NULL,
        updated_at            TIMESTAMPTZ NOT NULL,
        deleted_at            TIMESTAMPTZ,
        departments_total     INTEGER,
        departments_completed INTEGER,
        categories_total      INTEGER,
        categories_completed  INTEGER,
        products_total        INTEGER,
        products_searched     INTEGER,
        sellers_found         INTEGER,
        sellers_new           INTEGER,
        failed_items          INTEGER,
        duration_seconds      DOUBLE,
        rev                   BIGINT
    );

    -- One checkpoint per feed, written in the same transaction as each page (sync.py).
    CREATE TABLE sync_state (
        feed           VARCHAR PRIMARY KEY,  -- 'sellers' | 'collection_runs'
        mode           VARCHAR NOT NULL,     -- 'rev' | 'base'
        server         VARCHAR,              -- the API url these rows came from
        since_rev      BIGINT,               -- rev mode: highest rev applied
        bulk_until_rev BIGINT,               -- rev mode, pass began empty: revs up to it are new
        cursor         VARCHAR,              -- base mode, a pass under way: next page's cursor
        pass_since     TIMESTAMPTZ,          -- base mode, a pass under way: its updated_since
        pass_high      TIMESTAMPTZ,          -- base mode, a pass under way: newest updated_at
        bulk_pass      BOOLEAN,              -- base mode: the pass under way began empty
        high_water     TIMESTAMPTZ,          -- base mode: newest updated_at of a whole pass
        pass_started   TIMESTAMPTZ,
        last_synced    TIMESTAMPTZ
    );

    -- The analyst's changes (mutations.py). A row is the queue entry AND the overlay:
    -- while state = 'pending' its effect shows in visible_sellers; it leaves the queue
    -- (done) only after the server confirmed it, (failed) after a permanent refusal, or
    -- (undone) when undo took it back before it was ever sent.
    CREATE SEQUENCE mutation_seq START 1;
    CREATE TABLE mutations (
        seq             BIGINT PRIMARY KEY DEFAULT nextval('mutation_seq'),
        id              VARCHAR NOT NULL UNIQUE,  -- uuid4; the Idempotency-Key derives from it
        action_id       VARCHAR NOT NULL,         -- one analyst action (the undo unit)
        origin          VARCHAR NOT NULL,         -- analyst | undo
        kind            VARCHAR NOT NULL,         -- flag | rename | delete | restore | create
        seller_id       VARCHAR NOT NULL,         -- target: server id, or 'local:<uuid>'
        old_id          VARCHAR,                  -- id the analyst knew, when the server's differs
        flagged         BOOLEAN,                  -- flag: the value set; restore: the value back
        name            VARCHAR,                  -- rename / create / restore: the name it takes
        normalized      VARCHAR,                  -- that name normalized (unique among live)
        frees           VARCHAR,                  -- normalized name it gives up (rename, delete)
        prior           JSON,                     -- what the seller showed before, for undo
        state           VARCHAR NOT NULL,         -- pending | done | failed | undone
        step            INTEGER NOT NULL DEFAULT 0,  -- multi-request mutations (base contract)
        batch           VARCHAR,                  -- Idempotency-Key of the call carrying it
        solo            BOOLEAN NOT NULL DEFAULT false,  -- a bulk call refused it: go alone
        sent_at         TIMESTAMPTZ,              -- sent, outcome not known yet
        anchor          TIMESTAMPTZ,              -- a server time before that send
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TIMESTAMPTZ,
        error           VARCHAR,
        created_at      TIMESTAMPTZ NOT NULL,
        finished_at     TIMESTAMPTZ,
        undone_by       VARCHAR                   -- action_id of the undo that reverted it
    );

    -- The net effect of the pending mutations, one row per seller (a small set).
    CREATE VIEW pending_effects AS
    SELECT seller_id,
           arg_max(flagged, seq) FILTER (WHERE flagged IS NOT NULL) AS flagged,
           arg_max(name, seq) FILTER (WHERE name IS NOT NULL) AS name,
           arg_max(normalized, seq) FILTER (WHERE name IS NOT NULL) AS normalized,
           arg_max(kind, seq) FILTER (WHERE kind IN ('delete', 'restore', 'create')) AS life,
           arg_max(created_at, seq)
               FILTER (WHERE kind IN ('delete', 'restore', 'create')) AS life_at,
           min(created_at) FILTER (WHERE kind = 'create') AS created_at,
           max(created_at) AS changed_at
    FROM mutations
    WHERE state = 'pending'
    GROUP BY seller_id;

    -- Server rows with the pending effects on top, tombstones included, plus the
    -- sellers created here that the server has not confirmed yet. Three branches, so
    -- the million rows without pending changes pass through untouched (no per-row
    -- coalesce; filters and top-N sorts reach the table's own columns).
    CREATE VIEW visible_sellers_all AS
    SELECT s.id, s.display_name, s.normalized_name, s.platform, s.platform_id,
           s.times_seen, s.flagged, s.first_seen_run_id, s.last_seen_run_id,
           s.created_at, s.updated_at, s.deleted_at
    FROM sellers s
    WHERE NOT EXISTS (
        SELECT 1 FROM mutations m WHERE m.state = 'pending' AND m.seller_id = s.id)
    UNION ALL
    SELECT s.id,
           coalesce(e.name, s.display_name),
           coalesce(e.normalized, s.normalized_name),
           s.platform, s.platform_id, s.times_seen,
           coalesce(e.flagged, s.flagged),
           s.first_seen_run_id, s.last_seen_run_id, s.created_at,
           greatest(s.updated_at, e.changed_at),
           CASE e.life
               WHEN 'delete' THEN coalesce(s.deleted_at, e.life_at)
               WHEN 'restore' THEN NULL
               ELSE s.deleted_at
           END
    FROM sellers s JOIN pending_effects e ON e.seller_id = s.id
    UNION ALL
    SELECT e.seller_id, e.name, e.normalized, 'ebay', NULL::VARCHAR, 0,
           coalesce(e.flagged, false), NULL::VARCHAR, NULL::VARCHAR, e.created_at,
           e.changed_at, CASE WHEN e.life = 'delete' THEN e.life_at END
    FROM pending_effects e
    WHERE e.created_at IS NOT NULL AND e.seller_id LIKE 'local:%';

    -- What the analyst sees: live sellers, pending changes applied.
    CREATE VIEW visible_sellers AS
    SELECT * FROM visible_sellers_all WHERE deleted_at IS NULL;
    """,
    # 1 -> 2: the queue as the analyst thinks of it, for %sql and the duckdb CLI.
    """
    CREATE VIEW pending_changes AS
    SELECT seq, action_id, kind, seller_id, flagged, name, state, attempts,
           sent_at IS NOT NULL AND state = 'pending' AS in_flight, error, created_at
    FROM mutations
    WHERE state IN ('pending', 'failed');
    """,
    # 2 -> 3: the queue without its two indexes (issue 21). Keeping an index on seq and
    # on the uuid of every row made queueing 1,000,000 flags take ~10 s; uniqueness
    # comes from the sequence and uuid4, and every read of the queue is a scan or a
    # hash join. The table is rebuilt (DuckDB cannot drop a constraint); views rebind.
    """
    CREATE TABLE mutations_v3 (
        seq BIGINT NOT NULL DEFAULT nextval('mutation_seq'), id VARCHAR NOT NULL,
        action_id VARCHAR NOT NULL, origin VARCHAR NOT NULL, kind VARCHAR NOT NULL,
        seller_id VARCHAR NOT NULL, old_id VARCHAR, flagged BOOLEAN, name VARCHAR,
        normalized VARCHAR, frees VARCHAR, prior JSON, state VARCHAR NOT NULL,
        step INTEGER NOT NULL DEFAULT 0, batch VARCHAR, solo BOOLEAN NOT NULL DEFAULT false,
        sent_at TIMESTAMPTZ, anchor TIMESTAMPTZ, attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TIMESTAMPTZ, error VARCHAR, created_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ, undone_by VARCHAR
    );
    INSERT INTO mutations_v3 SELECT * FROM mutations;
    DROP TABLE mutations;
    ALTER TABLE mutations_v3 RENAME TO mutations;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

_LOCK_PID = re.compile(r"\(PID (\d+)\)")
# What DuckDB says when it meets a damaged file (checked on open and on every read): the
# one list (is_damage).
_DAMAGE = ("corrupt", "could not read enough bytes", "not a valid duckdb database",
           "checksum")


def is_damage(exc: BaseException) -> bool:
    """Whether a DuckDB error says the file is damaged (not the query wrong)."""
    text = str(exc).lower()
    return any(mark in text for mark in _DAMAGE)


@dataclass(frozen=True)
class Rebuilt:
    """What ``Store.rebuild()`` did: the fresh cache, where the damaged file went, and
    how many queue rows it kept (``lost`` says why none could be read)."""

    path: Path
    damaged: Path
    kept: int
    lost: str | None = None

    def __str__(self) -> str:
        kept = (f"kept {self.kept} queued change row(s)" if self.lost is None
                else f"the queued changes {self.lost}: they are lost")
        return (f"rebuilt {self.path}: {kept}; the damaged file is {self.damaged}. "
                f"Sync now to pull the server's rows again and push what was kept")


# checkpoint_threshold: an upsert otherwise forces a checkpoint per commit (DEVELOPERS.md).
# No extension is installed or loaded behind the analyst's back: a query naming a
# function of a known extension (CALL dbgen, read from https://...) would otherwise
# download and load code into the kernel. json, parquet and icu are built in.
_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "checkpoint_threshold": "1GB",
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


@dataclass(frozen=True)
class FileLocks:
    """The in-process locks of one cache file, shared by every Store of that path.

    ``write``: held from BEGIN to COMMIT of each write transaction (reentrant, so a
    writer may call helpers that write). ``push``: held by the one push round under way
    (workbench.py's pusher). ``sync``: one pull at a time. ``opening``: held while a
    connection opens or closes: a connection opened while another thread opens or closes
    one on the same database may not see DuckDB's Python table function (``Catalog
    Error: python_arrow_scan does not exist``; duckdb 2.0.1;
    tests/cache/test_store.py::test_connections_open_and_close_beside_a_writer).
    """

    write: threading.RLock = field(default_factory=threading.RLock)
    push: threading.Lock = field(default_factory=threading.Lock)
    sync: threading.Lock = field(default_factory=threading.Lock)
    opening: threading.Lock = field(default_factory=threading.Lock)


_LOCKS: dict[str, FileLocks] = {}
_LOCKS_GUARD = threading.Lock()


def file_locks(path: Path) -> FileLocks:
    """The locks of the file at ``path`` (one set per resolved path in this process)."""
    key = str(path.resolve())
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, FileLocks())


class Store:
    """The cache file. Cheap to create; opens the file only inside ``connect()``."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float = LOCK_TIMEOUT,
        read_only: bool = False,
        memory_limit: str | None = None,
        temp_directory: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else default_cache()
        self.lock_timeout = lock_timeout
        self.read_only = read_only
        self._migrated = False
        self.locks = file_locks(self.path)
        # The memory policy (module docstring): the settings' values, fixed for this Store.
        self.config = dict(_CONFIG)
        limit = value("memory_limit", memory_limit)
        folder = value("temp_directory", temp_directory)
        if limit is not None:
            self.config["memory_limit"] = str(limit)
        if folder is not None:
            self.config["temp_directory"] = str(folder)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- connections -------------------------------------------------------------

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file (waiting up to ``lock_timeout`` for another process), yield, close.

        For reading, and for holding across a sync's pages; every write on it goes
        inside :meth:`writing`. A DuckDB error escaping the block becomes a CacheError.
        """
        con = self._open()
        try:
            if not self._migrated:
                with self.locked():
                    self._migrate(con)
            yield con
        except duckdb.Error as exc:
            raise self.error(exc) from exc
        finally:
            with self.locks.opening:
                con.close()

    @contextlib.contextmanager
    def writing(self, con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
        """BEGIN ... COMMIT on ``con`` holding the file's write lock; any exception rolls
        everything back. Write transactions of one file never overlap in this process."""
        if self.read_only:
            raise CacheError(
                f"the cache {self.path} is open read-only; reopen it read-write to change it"
            )
        with self.locked():
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside BEGIN ... COMMIT under the write lock (see :meth:`writing`)."""
        with self.connect() as con, self.writing(con):
            yield con

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file's write lock (for a write that cannot run in a transaction, such
        as CHECKPOINT)."""
        # Write transactions are short local work, so waiting long means a thread of this
        # process is stuck inside one; say so rather than hang the cell.
        if not self.locks.write.acquire(timeout=max(self.lock_timeout, 30.0)):
            raise CacheLockedError(
                f"the cache {self.path} stayed busy with another thread's write of this "
                f"process; try again, or restart the kernel if it never ends",
                path=str(self.path),
                pid=os.getpid(),
            )
        try:
            yield
        finally:
            self.locks.write.release()

    def error(self, exc: duckdb.Error) -> CacheError:
        """The CacheError an escaping DuckDB error means, with what to do about it."""
        earlier = exc.__cause__ or exc.__context__
        if "transaction is aborted" in str(exc) and isinstance(earlier, duckdb.Error):
            # A statement after the one that failed (a cleanup): the first error says why.
            return self.error(earlier)
        if is_damage(exc):
            # A damaged block is met only when read: say so, whatever was reading it.
            return CacheCorruptError(self._corrupt_message(str(exc)))
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, duckdb.TransactionException):
            return CacheError(
                f"a write to the cache {self.path} collided with another one ({first}); "
                f"nothing of it was kept: try again"
            )
        if isinstance(exc, duckdb.OutOfMemoryException):
            return CacheError(
                f"DuckDB ran out of memory on the cache {self.path} ({first}); nothing of it "
                f"was kept: free memory (other kernels, large frames) and try again"
            )
        return CacheError(f"the cache {self.path} could not do this ({first})")

    def query(self, sql: str, params: list | dict | None = None) -> pa.Table:
        """Run one statement and return its result as an Arrow table (connection closed)."""
        with self.connect() as con:
            return con.sql(sql, params=params).to_arrow_table()  # execute() copies once more

    def _open(self) -> duckdb.DuckDBPyConnection:
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise CacheError(f"no cache at {self.path}; run a sync first")
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.01
        while True:
            try:
                with self.locks.opening:
                    return duckdb.connect(str(self.path), read_only=self.read_only,
                                          config=self.config)
            except duckdb.IOException as exc:
                text = str(exc)
                if "lock" not in text.lower():
                    raise CacheCorruptError(self._corrupt_message(text)) from exc
                if time.monotonic() >= deadline:
                    raise self._locked(text) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
            except (duckdb.SerializationException, duckdb.InternalException) as exc:
                raise CacheCorruptError(self._corrupt_message(str(exc))) from exc
            except duckdb.Error as exc:
                if is_damage(exc):
                    raise CacheCorruptError(self._corrupt_message(str(exc))) from exc
                if "different configuration" in str(exc):
                    raise CacheError(
                        f"the cache {self.path} is open in this process with another "
                        f"memory_limit or temp_directory (settings fixed while it is open); "
                        f"open it with the same settings, or close the other workbench first"
                    ) from exc
                raise CacheError(f"cannot open the cache {self.path}: {exc}") from exc

    def _locked(self, text: str) -> CacheLockedError:
        match = _LOCK_PID.search(text)
        pid = int(match.group(1)) if match else None
        who = f"process {pid}" if pid else "another process"
        return CacheLockedError(
            f"the cache {self.path} is held by {who} and stayed busy for "
            f"{self.lock_timeout:g} s; finish the work there or shut that kernel down, "
            f"or point SELLERBENCH_CACHE at another file",
            path=str(self.path),
            pid=pid,
        )

    def _corrupt_message(self, text: str) -> str:
        return (
            f"the cache {self.path} cannot be read ({text.splitlines()[0]}); rebuild it "
            f"with sellerbench.cache.store.Store({str(self.path)!r}).rebuild(), which moves it "
            f"aside and keeps the queued changes it can still read, then sync again to "
            f"refill it from the server"
        )

    # -- schema ------------------------------------------------------------------

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        version = self._version(con)
        if version > SCHEMA_VERSION:
            raise CacheVersionError(
                f"the cache {self.path} has schema version {version}, newer than this "
                f"sellerbench understands ({SCHEMA_VERSION}); upgrade sellerbench or use "
                f"another cache file"
            )
        if version < SCHEMA_VERSION:
            if self.read_only:
                raise CacheVersionError(
                    f"the cache {self.path} has schema version {version}; open it once "
                    f"read-write to upgrade it to {SCHEMA_VERSION}"
                )
            con.execute("BEGIN TRANSACTION")
            try:
                for step in MIGRATIONS[version:]:
                    con.execute(step)
                con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                    [str(SCHEMA_VERSION)],
                )
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        self._migrated = True

    @staticmethod
    def _version(con: duckdb.DuckDBPyConnection) -> int:
        has_meta = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'meta' "
            "AND database_name = current_database()"
        ).fetchall()[0][0]
        if not has_meta:
            tables = con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"
            ).fetchall()[0][0]
            if tables:
                raise CacheCorruptError(
                    "this DuckDB file is not a sellerbench cache (no meta table); "
                    "point SELLERBENCH_CACHE at another file"
                )
            return 0
        rows = con.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchall()
        row = rows[0] if rows else None
        return int(row[0]) if row else 0

    # -- rebuilding a damaged file -----------------------------------------------------

    def rebuild(self) -> Rebuilt:
        """Move a damaged cache aside and start a fresh one holding the queue it can read.

        The fresh cache has no server rows and no checkpoints: the next sync pushes the
        kept changes and pulls everything again. The damaged file stays beside it as
        ``<name>.damaged-<time>`` (nothing is deleted). A file another process holds
        raises CacheLockedError and is left alone.
        """
        if self.read_only:
            raise CacheError(f"the cache {self.path} is open read-only; rebuild needs write")
        queue, lost = self._salvage_queue()
        damaged = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", ".wal"):
            source = Path(str(self.path) + suffix)
            if source.exists():
                os.replace(source, Path(str(damaged) + suffix))
        self._migrated = False
        kept = 0
        with self.transaction() as con:
            if queue is not None and queue.num_rows:
                kept = self._restore_queue(con, queue)
        return Rebuilt(self.path, damaged, kept, lost)

    def _salvage_queue(self) -> tuple[pa.Table | None, str | None]:
        """The damaged file's mutations table, or None and why it could not be read."""
        if not self.path.exists():
            return None, "could not be read (there is no file)"
        try:
            con = duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error as exc:
            if "lock" in str(exc).lower():
                raise self._locked(str(exc)) from exc
            return None, f"could not be read ({str(exc).splitlines()[0]})"
        try:
            return con.sql("SELECT * FROM mutations").to_arrow_table(), None
        except duckdb.Error as exc:
            return None, f"could not be read ({str(exc).splitlines()[0]})"
        finally:
            with self.locks.opening:
                con.close()

    @staticmethod
    def _restore_queue(con: duckdb.DuckDBPyConnection, queue: pa.Table) -> int:
        """Insert the kept rows as they were (same seq, so the same order) and move the
        sequence past them, so new changes still come after."""
        columns = {r[0] for r in con.execute("DESCRIBE mutations").fetchall()}
        shared = [c for c in queue.column_names if c in columns]
        con.register("sb_kept", queue.select(shared))
        try:
            con.execute("INSERT INTO mutations BY NAME SELECT * FROM sb_kept")
        finally:
            con.unregister("sb_kept")
        top = con.execute("SELECT coalesce(max(seq), 0) FROM mutations").fetchall()[0][0]
        con.execute("SELECT count(nextval('mutation_seq')) FROM range(?)", [top])
        return queue.num_rows

    # -- small helpers used across modules -------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self.connect() as con:
            rows = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
            row = rows[0] if rows else None
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])
