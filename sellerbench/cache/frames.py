"""Reading the cache back: sellers, runs and read-only SQL as pandas frames, and status.

Every reader here opens its own short connection and takes no lock: DuckDB gives each a
consistent snapshot beside a writer in another thread (store.py, "Threads"). Which
sellers a frame holds is a :class:`~sellerbench.cache.filters.SellerFilter`, the same filter
the grid, exports and the report use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import pandas as pd
import pyarrow as pa

from ..errors import QueryError
from .filters import SellerFilter, first_line
from .store import is_damage

if TYPE_CHECKING:
    from ..api.client import ApiClient
    from .store import Store

__all__ = ["check_read_only", "runs_frame", "sellers_frame", "sql_frame", "status", "to_frame"]


def _pandas_type(kind: pa.DataType) -> Any:
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pd.StringDtype()
    if pa.types.is_boolean(kind):
        return pd.BooleanDtype()
    if pa.types.is_integer(kind):
        return pd.Int64Dtype()
    return None


def to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow result as a frame with string ids, UTC timestamps, nullable ints/bools."""
    columns = []
    for column in table.columns:
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
        columns.append(column)
    table = pa.table(columns, names=table.column_names)
    return table.to_pandas(types_mapper=_pandas_type)


def sellers_frame(store: Store, chosen: SellerFilter) -> pd.DataFrame:
    """Cached sellers with pending changes applied, newest change first."""
    predicate, params = chosen.sql()
    query = f"SELECT * FROM {chosen.relation} WHERE {predicate} ORDER BY updated_at DESC, id"
    with store.connect() as con:
        chosen.check(con)
        return to_frame(_read(con, query, params))


def runs_frame(store: Store) -> pd.DataFrame:
    """Cached collection runs (not deleted), newest first."""
    query = (
        "SELECT * EXCLUDE (rev) FROM collection_runs WHERE deleted_at IS NULL "
        "ORDER BY created_at DESC, id"
    )
    with store.connect() as con:
        return to_frame(_read(con, query, []))


# What to use instead of each kind of statement SQL over the cache refuses. Only SELECT
# (DESCRIBE, SHOW, SUMMARIZE and FROM parse as one), EXPLAIN and PIVOT (MULTI) are run,
# inside a READ ONLY transaction: whatever DuckDB would write (a sequence's nextval, an
# EXPLAIN ANALYZE of an INSERT) fails there too.
_INSTEAD: dict[str, str] = {
    "INSERT": "change sellers with wb.flag / wb.rename / wb.delete / wb.restore / "
              "wb.create, which sync pushes to the API",
    "DDL": "keep tables of your own in pandas (wb.sql(...) returns a frame) or in a "
           "DuckDB file of your own (duckdb.connect('mine.duckdb'))",
    "PRAGMA": "read settings and table shapes with SELECT: DESCRIBE sellers, "
              "SELECT * FROM duckdb_settings(), SELECT * FROM pragma_table_info('sellers')",
    "CALL": "call table functions in a SELECT: SELECT * FROM function(...)",
    "SET": "the cache's settings are shared by every thread of this kernel; DuckDB's "
           "memory limit and temp folder are sellerbench settings (SELLERBENCH_MEMORY_LIMIT, "
           "SELLERBENCH_TEMP_DIRECTORY)",
    "ATTACH": "open another DuckDB file with duckdb.connect(path) and read the frames "
              "from here into it",
    "COPY": "write files with wb.export(path, ...) or from the frame "
            "(wb.sql(...).to_parquet(path))",
    "LOAD": "sellerbench loads no extension into the kernel; use a DuckDB connection of "
            "your own (duckdb.connect()) for extensions",
    "TRANSACTION": "each query runs in a read-only transaction of its own",
    "PREPARE": "bind values with params= (wb.sql(query, [value]))",
    "VACUUM": "sellerbench maintains the cache file itself (sync checkpoints it)",
}
_KINDS = {
    "UPDATE": "INSERT", "DELETE": "INSERT", "MERGE_INTO": "INSERT",
    "CREATE": "DDL", "CREATE_FUNC": "DDL", "DROP": "DDL", "ALTER": "DDL",
    "VARIABLE_SET": "SET", "DETACH": "ATTACH", "EXPORT": "COPY", "COPY_DATABASE": "COPY",
    "EXTENSION": "LOAD", "EXECUTE": "PREPARE", "ANALYZE": "VACUUM",
}
_READ_STATEMENTS = frozenset({"SELECT", "EXPLAIN", "MULTI"})


def sql_frame(
    store: Store, query: str, params: Sequence[Any] | dict[str, Any] | None = None
) -> pd.DataFrame:
    """Run read-only SQL over the cache with bound parameters; the last result as a frame."""
    check_read_only(query)
    with store.connect() as con:
        try:
            con.execute("BEGIN TRANSACTION READ ONLY")
            try:
                return to_frame(_read(con, query, params))
            finally:
                con.execute("ROLLBACK")
        except duckdb.Error as exc:
            if is_damage(exc):
                raise store.error(exc) from exc  # the file, not the query: CacheCorruptError
            if "read-only mode" in str(exc):
                raise QueryError(
                    f"SQL over the cache is read-only: this query writes "
                    f"({first_line(exc)}); {_INSTEAD['INSERT']}"
                ) from exc
            raise QueryError(f"the query failed: {first_line(exc)}") from exc


def check_read_only(query: str) -> None:
    """QueryError unless ``query`` is statements that only read (DuckDB's own parser
    says which kind each statement is); the message says what to use instead."""
    if not isinstance(query, str):
        raise QueryError(f"the query must be SQL text, not {type(query).__name__}")
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryError(f"the query cannot be parsed: {first_line(exc)}") from exc
    if not statements:
        raise QueryError("the query is empty")
    for statement in statements:
        try:
            kind = statement.type.name
        except ValueError:  # a kind this duckdb's Python enum does not name (UPDATE EXTENSIONS)
            kind = "EXTENSION"
        if kind not in _READ_STATEMENTS:
            instead = _INSTEAD.get(_KINDS.get(kind, kind), _INSTEAD["INSERT"])
            raise QueryError(f"SQL over the cache is read-only ({kind} refused): {instead}")


def _read(
    con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | dict[str, Any] | None
) -> pa.Table:
    con.execute("SET TimeZone = 'UTC'")
    return con.sql(query, params=params).to_arrow_table()


def status(store: Store, client: ApiClient | None) -> dict[str, Any]:
    """Counts, checkpoints and the server, as a plain dict (never the token)."""
    with store.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        live, flagged, deleted = con.execute(
            "SELECT count(*) FILTER (WHERE deleted_at IS NULL), "
            "count(*) FILTER (WHERE deleted_at IS NULL AND flagged), "
            "count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM visible_sellers_all"
        ).fetchall()[0]
        runs = con.execute(
            "SELECT count(*) FROM collection_runs WHERE deleted_at IS NULL"
        ).fetchall()[0][0]
        queue_rows = dict(
            con.execute(
                "SELECT state, count(*) FROM mutations WHERE state IN ('pending', 'failed') "
                "GROUP BY ALL"
            ).fetchall()
        )
        states = con.execute(
            "SELECT mode, last_synced, since_rev, high_water FROM sync_state "
            "WHERE feed = 'sellers'"
        ).fetchall()
        meta = dict(con.execute(
            "SELECT key, value FROM meta WHERE key IN ('server_url', 'features')"
        ).fetchall())
    state = states[0] if states else None
    known = client.known_features if client is not None else None  # no request for status
    features = sorted(known) if known is not None else orjson.loads(meta.get("features", "[]"))
    return {
        "cache": str(store.path),
        "server": client.base_url if client is not None else meta.get("server_url"),
        "mode": state[0] if state else None,
        "last_sync": state[1].isoformat() if state and state[1] else None,
        "since_rev": state[2] if state else None,
        "sellers": live,
        "flagged": flagged,
        "deleted": deleted,
        "runs": runs,
        "pending": queue_rows.get("pending", 0),
        "failed": queue_rows.get("failed", 0),
        "features": features,
    }
