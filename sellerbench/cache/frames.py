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

from ..errors import SellerbenchError
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


# Statements that only read: SQL in a notebook must not edit the cache behind sync's back.
_READ_STATEMENTS = frozenset({"SELECT", "EXPLAIN", "PRAGMA", "CALL"})


def sql_frame(
    store: Store, query: str, params: Sequence[Any] | dict[str, Any] | None = None
) -> pd.DataFrame:
    """Run read-only SQL over the cache with bound parameters; the last result as a frame."""
    check_read_only(query)
    with store.connect() as con:
        try:
            return to_frame(_read(con, query, params))
        except duckdb.Error as exc:
            if is_damage(exc):
                raise store.error(exc) from exc  # the file, not the query: CacheCorruptError
            raise SellerbenchError(f"the query failed: {first_line(exc)}") from exc


def check_read_only(query: str) -> None:
    """SellerbenchError unless ``query`` is statements that only read."""
    if not isinstance(query, str):
        raise SellerbenchError(f"the query must be SQL text, not {type(query).__name__}")
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise SellerbenchError(f"the query cannot be parsed: {first_line(exc)}") from exc
    if not statements:
        raise SellerbenchError("the query is empty")
    for statement in statements:
        kind = statement.type.name
        if kind not in _READ_STATEMENTS:
            raise SellerbenchError(
                f"SQL over the cache is read-only ({kind} refused): change sellers with "
                f"wb.flag / wb.rename / wb.delete / wb.restore / wb.create, which sync "
                f"pushes to the API"
            )


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
