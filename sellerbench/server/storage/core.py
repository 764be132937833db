"""Where the server keeps its data: SQLite (one process, the default) or PostgreSQL (a
team: several processes, concurrent writers; :mod:`.pgstorage`), behind one interface:

- ``storage.read()``  -> a context manager giving a connection inside one read
  transaction (one consistent snapshot for a page and its ``max_rev``);
- ``storage.write()`` -> a context manager giving a :class:`Tx`: one write transaction,
  committed when the block ends, rolled back if it raises. ``tx.next_rev()`` hands out
  the global change number;
- ``storage.close()``.

How ``rev`` stays a feed that never loses a change:

- SQLite: writers are serialised (``BEGIN IMMEDIATE``) and the counter is stored in the
  same transaction, so rev order is commit order and ``max_rev`` is the stored counter.
- PostgreSQL: revs come from a sequence, so they can commit out of order; each writer
  registers (an advisory lock) before its first rev, and a feed page caps itself at a
  *safe* rev below every still-running writer, read before the page's snapshot. The
  full argument and its time bound are in :mod:`.pgstorage`.

Statements are written once in the portable subset (``?`` placeholders, ``RETURNING``,
``ON CONFLICT``); ``Tx.for_update`` is the row lock a read-before-write takes (nothing
on SQLite, where the writer holds the whole database). Errors both storages raise to the
routes: :class:`Duplicate` (a unique index refused a write), :class:`Conflict` (a
concurrent transaction won a race: run the transaction again), :class:`Busy` (a
timeout; 503). SQLite-only parts (pragmas) stay in this module.

Tables (stable: the run simulator writes ``collection_runs`` and ``activity_events``):

- ``meta(key, value)``: ``rev`` (the last change number handed out), ``schema_version``
- ``users(id, name, permissions, role, created_at, last_seen_at, revoked_at)``: a person;
  ``role`` names the permissions (``http.auth.ROLES``, the one place they are listed);
  ``permissions`` is written from the role for older readers and not read
- ``tokens(token_hash, user_id, created_at)``: sha256 of each bearer token, never the token
- ``changes(rev, entity, entity_id, action, user_id, at, detail JSON)``: who changed what,
  one row per change (keyed by the rev the change took; ``user_id`` NULL: the simulator)
- ``sellers``: the Seller fields of API.md, ``flagged`` as 0/1, plus ``rev``
- ``collection_runs``: the CollectionRun fields, ``category_ids`` as a JSON list, plus ``rev``
- ``categories(id, name, department)``
- ``activity_events(id INTEGER increasing, run_id, type, data JSON text, created_at)``
- ``idempotency_keys(user_id, key, method, path, body_hash, status, response, created_at)``
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, cast

from .catalog import CATEGORIES

__all__ = [
    "SCHEMA_VERSION",
    "Busy",
    "Conflict",
    "Duplicate",
    "SQLiteStorage",
    "Storage",
    "Tx",
    "connect",
    "is_postgres",
    "open_storage",
]

SCHEMA_VERSION = 2

# What brings an older database up to each version (the portable subset: PostgreSQL runs
# them through the same type translation as TABLES). A fresh database gets TABLES at the
# current version directly; these run only on a database that recorded an older one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (  # people: a role per user, when they came and were last seen, revocation
        "ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'viewer'",
        "ALTER TABLE users ADD COLUMN created_at TEXT",
        "ALTER TABLE users ADD COLUMN last_seen_at TEXT",
        "ALTER TABLE users ADD COLUMN revoked_at TEXT",
        "UPDATE users SET role = CASE WHEN permissions LIKE '%admin.automation%' THEN 'admin'"
        " WHEN permissions LIKE '%seller_collection.write%' THEN 'analyst' ELSE 'viewer' END",
        "UPDATE users SET created_at = coalesce((SELECT min(t.created_at) FROM tokens t"
        " WHERE t.user_id = users.id), '1970-01-01T00:00:00.000000Z')",
    ),
}

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('rev', '0');

CREATE TABLE IF NOT EXISTS users (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    permissions  TEXT NOT NULL,
    role         TEXT NOT NULL DEFAULT 'viewer',
    created_at   TEXT,
    last_seen_at TEXT,
    revoked_at   TEXT
);

CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS sellers (
    id                TEXT PRIMARY KEY,
    display_name      TEXT NOT NULL,
    normalized_name   TEXT NOT NULL,
    platform          TEXT NOT NULL DEFAULT 'ebay',
    platform_id       TEXT,
    times_seen        INTEGER NOT NULL DEFAULT 0,
    flagged           INTEGER NOT NULL DEFAULT 0,
    first_seen_run_id TEXT,
    last_seen_run_id  TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    deleted_at        TEXT,
    rev               INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS collection_runs (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    status                TEXT NOT NULL,
    category_ids          TEXT NOT NULL,
    started_at            TEXT,
    completed_at          TEXT,
    paused_at             TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    deleted_at            TEXT,
    departments_total     INTEGER NOT NULL DEFAULT 0,
    departments_completed INTEGER NOT NULL DEFAULT 0,
    categories_total      INTEGER NOT NULL DEFAULT 0,
    categories_completed  INTEGER NOT NULL DEFAULT 0,
    products_total        INTEGER NOT NULL DEFAULT 0,
    products_searched     INTEGER NOT NULL DEFAULT 0,
    sellers_found         INTEGER NOT NULL DEFAULT 0,
    sellers_new           INTEGER NOT NULL DEFAULT 0,
    failed_items          INTEGER NOT NULL DEFAULT 0,
    duration_seconds      REAL,
    rev                   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS categories (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    department TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS activity_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     TEXT NOT NULL,
    type       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS changes (
    rev       INTEGER PRIMARY KEY,
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    action    TEXT NOT NULL,
    user_id   TEXT,
    at        TEXT NOT NULL,
    detail    TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    user_id    TEXT NOT NULL,
    key        TEXT NOT NULL,
    method     TEXT NOT NULL,
    path       TEXT NOT NULL,
    body_hash  TEXT NOT NULL,
    status     INTEGER NOT NULL,
    response   BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);
"""

# Created after bulk demo inserts (building an index once is much faster than
# maintaining it row by row), and on every open so an older file gets them too.
INDEXES = """
CREATE INDEX IF NOT EXISTS sellers_sync ON sellers (updated_at DESC, id DESC);
CREATE UNIQUE INDEX IF NOT EXISTS sellers_rev ON sellers (rev);
CREATE UNIQUE INDEX IF NOT EXISTS sellers_live_name ON sellers (normalized_name)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS sellers_flagged_sync ON sellers (updated_at DESC, id DESC)
    WHERE flagged = 1;
CREATE INDEX IF NOT EXISTS sellers_tombstones ON sellers (updated_at DESC, flagged)
    WHERE deleted_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_sync ON collection_runs (updated_at DESC, id DESC);
CREATE UNIQUE INDEX IF NOT EXISTS runs_rev ON collection_runs (rev);
CREATE INDEX IF NOT EXISTS runs_status ON collection_runs (status, created_at DESC);
CREATE INDEX IF NOT EXISTS runs_created ON collection_runs (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS activity_run ON activity_events (run_id, id);
CREATE INDEX IF NOT EXISTS idempotency_age ON idempotency_keys (created_at);
CREATE INDEX IF NOT EXISTS changes_entity ON changes (entity_id, rev);
"""


class Duplicate(Exception):
    """A unique index refused the write (PostgreSQL: a concurrent writer took the name)."""


class Conflict(Exception):
    """A concurrent transaction won a race (deadlock, the same idempotency key): the
    transaction was rolled back and may simply run again."""


class Busy(Exception):
    """The database did not answer in time (a timeout): a 503, retry later."""


class Tx:
    """One write transaction: the connection plus the global change counter."""

    dialect = "sqlite"
    for_update = ""  # the writer holds the whole database: no row lock needed
    user_id: str | None = None  # whose write this is (changes.record files it)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.start_rev = int(conn.execute("SELECT value FROM meta WHERE key = 'rev'").fetchone()[0])
        self.rev = self.start_rev

    def next_rev(self) -> int:
        """A fresh change number, larger than every committed one."""
        self.rev += 1
        return self.rev

    def execute(self, sql: str, params: tuple | list | dict = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def lock(self, name: str) -> None:
        """Wait for any other transaction holding ``name`` (nothing to do here: SQLite's
        writer already holds the whole database)."""

    def executemany(self, sql: str, rows) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    def _save_rev(self) -> None:
        if self.rev != self.start_rev:
            self.conn.execute("UPDATE meta SET value = ? WHERE key = 'rev'", (str(self.rev),))


class Storage(Protocol):
    """What the server needs from a database (SQLite or PostgreSQL)."""

    @property
    def path(self) -> Path | None: ...  # read-only: a file for SQLite, None for PostgreSQL

    def read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...

    def write(self) -> contextlib.AbstractContextManager[Tx]: ...

    def bulk_write(self) -> contextlib.AbstractContextManager[Tx]: ...

    def is_empty(self) -> bool: ...

    def ensure_indexes(self) -> None: ...

    def close(self) -> None: ...


class SQLiteStorage:
    """SQLite in WAL mode; one connection per thread, all closed by ``close()``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        found = self._schema_version()
        if found is not None and found > SCHEMA_VERSION:
            raise ValueError(
                f"the database {str(self.path)!r} has schema version {found}, newer than "
                f"this server's {SCHEMA_VERSION}: upgrade sellerbench"
            )
        self._connect().executescript(TABLES)  # every statement is IF NOT EXISTS
        with self.write() as tx:
            for version in range(found or SCHEMA_VERSION, SCHEMA_VERSION):
                for statement in MIGRATIONS[version + 1]:
                    tx.execute(statement)
            tx.execute(
                "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key)"
                " DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),)
            )
            tx.executemany("INSERT OR IGNORE INTO categories VALUES (?, ?, ?)", CATEGORIES)

    def _schema_version(self) -> int | None:
        """The version an existing database recorded (1 before it was recorded), or None
        for a fresh file."""
        conn = self._connect()
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 1

    def __repr__(self) -> str:
        return f"<SQLiteStorage {str(self.path)!r}>"

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("the storage is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # autocommit mode (isolation_level=None): transactions are ours, explicit.
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA cache_size = -65536")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one read transaction: every query sees the same snapshot."""
        conn = self._connect()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def write(self) -> Iterator[Tx]:
        """One write transaction, serialised with every other writer."""
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            tx = Tx(conn)
            yield tx
            tx._save_rev()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextlib.contextmanager
    def bulk_write(self) -> Iterator[Tx]:
        """One big write into a database nobody else uses yet (the demo data).

        A rollback journal instead of WAL (every page would otherwise be written twice,
        to the WAL and back), no fsync until the end, a large page cache, and the
        indexes built once at the end of the transaction rather than row by row.
        """
        conn = self._connect()
        conn.execute("PRAGMA journal_mode = DELETE")  # stays WAL if others are connected
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -131072")
        try:
            with self.write() as tx:
                yield tx
                for statement in INDEXES.split(";"):
                    if statement.strip():
                        tx.execute(statement)
        finally:
            conn.execute("PRAGMA cache_size = -65536")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA journal_mode = WAL")

    # -- housekeeping -------------------------------------------------------------------

    def is_empty(self) -> bool:
        """True when the database holds no sellers and no runs (a fresh file)."""
        return holds_nothing(self)

    def ensure_indexes(self) -> None:
        conn = self._connect()
        conn.executescript(INDEXES)
        conn.execute("PRAGMA optimize")

    def close(self) -> None:
        """Close every thread's connection; later use raises. Safe to call twice."""
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


def holds_nothing(storage: Storage) -> bool:
    """True when ``storage`` holds no sellers and no runs (either storage's is_empty)."""
    with storage.read() as conn:
        sellers = conn.execute("SELECT 1 FROM sellers LIMIT 1").fetchone()
        runs = conn.execute("SELECT 1 FROM collection_runs LIMIT 1").fetchone()
    return sellers is None and runs is None


def is_postgres(db: object) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


def connect(db: str | Path) -> Storage:
    """The storage for ``db``: a PostgreSQL URL, else a SQLite file path (created)."""
    if is_postgres(db):
        from .postgres import PostgresStorage  # psycopg only when asked for

        # PgRead and PgTx stand in for sqlite3.Connection and Tx by duck typing (the
        # methods the server calls), which the Protocol's types cannot say.
        return cast(Storage, PostgresStorage(str(db)))
    return SQLiteStorage(db)


def open_storage(path: str | Path) -> Storage:
    """Open (creating if needed) the storage at ``path`` with its indexes in place."""
    storage = connect(path)
    storage.ensure_indexes()
    return storage
