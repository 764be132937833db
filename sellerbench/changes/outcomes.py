"""What a push learns, and writing it into the cache.

A round of push reads the *heads* of the queue (``read_heads``) as :class:`Mut` rows,
groups them into :class:`Call` requests, and turns each answer (or its absence) into an
:class:`Outcome`. ``record`` then moves the mutations in one statement per kind of
change (set-based: a push of 10,000 changes is not 10,000 statements) and writes what
the server confirmed into ``sellers``, the server's state as far as we know it.

Results an outcome can carry (:class:`Result`), and what they do to a mutation row:

- ``done`` / ``failed``: it leaves the queue (``failed`` keeps the reason);
- ``uncertain``: sent, no answer: stays pending, "outcome unknown" (``sent_at``) kept;
- ``retry`` / ``unsent`` / ``split``: surely not acted on (429, never sent, a refused
  bulk call to be split into single calls): "outcome unknown" is put back as it was;
- ``advance``: a step of a multi-request change is done (base contract), the next is due;
- ``lookup``: the server acted but did not say on what: find it by name next round;
- ``resolved``: a look-up settled the server's state; nothing to move, rows to write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

from ..schema import SELLER

__all__ = [
    "MUT_COLUMNS",
    "Call",
    "Mut",
    "Outcome",
    "Result",
    "Settled",
    "apply_to_sellers",
    "read_heads",
    "record",
    "registered",
    "sellers_touched",
    "upsert_rows",
]

# -- rows ------------------------------------------------------------------------------


class Result(StrEnum):
    """What an answer (or its absence) means for the mutations of a call."""

    DONE = "done"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    RETRY = "retry"
    UNSENT = "unsent"
    ADVANCE = "advance"
    SPLIT = "split"
    LOOKUP = "lookup"
    RESOLVED = "resolved"
    MIXED = "mixed"  # a bulk create: each mutation's own result is in per_mut


class Settled(NamedTuple):
    """One mutation row as ``record`` moved it."""

    mut: Mut
    result: Result
    error: str | None

MUT_COLUMNS = (
    "seq, id, kind, seller_id, old_id, flagged, name, normalized, frees, prior, step, "
    "batch, solo, sent_at, anchor, attempts"
)


@dataclass
class Mut:
    """A pending mutation as push handles it, plus the cached server row of its seller."""

    seq: int
    id: str
    kind: str
    seller_id: str
    old_id: str | None
    flagged: bool | None
    name: str | None
    normalized: str | None
    frees: str | None
    prior: Any
    step: int
    batch: str | None
    solo: bool
    sent_at: datetime | None
    anchor: datetime | None
    attempts: int
    server_flagged: bool | None = None
    server_updated: datetime | None = None
    server_deleted: bool = False
    batch_size: int = 0  # pending members of its batch
    resolved: bool = False  # a look-up this round settled what the server holds

    @property
    def label(self) -> str:
        what = {"flag": f"flag={self.flagged}", "rename": f"rename to {self.name!r}"}
        return f"{what.get(self.kind, self.kind)} of {self.seller_id}"


@dataclass
class Call:
    """One request to make: ``action`` names the endpoint, ``muts`` what it carries."""

    action: str
    muts: list[Mut]
    key: str | None = None
    flagged: bool | None = None

    @property
    def bulk(self) -> bool:
        return self.action.endswith("_bulk")


@dataclass
class Outcome:
    """What happened to the mutations of one call (or one look-up)."""

    muts: list[Mut]
    result: Result
    error: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    flags: dict[str, bool] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)  # mutation id -> server id
    retry_after: float | None = None
    per_mut: dict[str, tuple[Result, str | None]] = field(default_factory=dict)


def read_heads(con: duckdb.DuckDBPyConnection) -> list[Mut]:
    """Each seller's oldest pending change that is due and not waiting for a name."""
    # Joins, not correlated subqueries: those made this quadratic in the queue's length
    # (30,000 pending flags: ~9 s per read; now a few hash joins).
    rows = con.execute(
        f"""
        WITH p AS (SELECT * FROM mutations WHERE state = 'pending'),
        heads AS (
            SELECT * FROM p QUALIFY row_number() OVER (
                PARTITION BY seller_id ORDER BY seq) = 1
        ),
        batches AS (SELECT batch, count(*) AS n FROM p WHERE batch IS NOT NULL GROUP BY batch),
        -- the oldest pending change holding or freeing each name
        names AS (
            SELECT name_key, min(seq) AS first_seq FROM (
                SELECT frees AS name_key, seq FROM p WHERE frees IS NOT NULL
                UNION ALL
                SELECT normalized, seq FROM p WHERE normalized IS NOT NULL
            ) GROUP BY name_key
        )
        SELECT {", ".join("h." + c.strip() for c in MUT_COLUMNS.split(","))},
               s.flagged, s.updated_at, s.deleted_at IS NOT NULL, coalesce(b.n, 0)
        FROM heads h
        LEFT JOIN sellers s ON s.id = h.seller_id
        LEFT JOIN batches b ON b.batch = h.batch
        LEFT JOIN names n ON n.name_key = h.normalized
        WHERE (h.next_attempt_at IS NULL OR h.next_attempt_at <= now())
          AND NOT (h.step = 0 AND h.normalized IS NOT NULL AND n.first_seq < h.seq)
        ORDER BY h.seq
        """
    ).fetchall()
    out = []
    for r in rows:
        mut = Mut(*r[:16])
        mut.server_flagged, mut.server_updated = r[16], r[17]
        mut.server_deleted, mut.batch_size = bool(r[18]), r[19]
        out.append(mut)
    return out


def record(
    con: duckdb.DuckDBPyConnection,
    outcomes: list[Outcome],
    next_at: Callable[[Outcome, datetime], datetime | None],
) -> list[Settled]:
    """Move the rows of ``outcomes`` (inside the caller's transaction) and write what the
    server confirmed into ``sellers``; returns (mutation, result, error) for each row."""
    settled: list[Settled] = []
    if not outcomes:
        return settled
    now = datetime.now(UTC)
    cols: dict[str, list[Any]] = {k: [] for k in ("id", "o_result", "o_error", "o_next",
                                             "o_sent", "o_new")}
    moves: dict[str, list[Any]] = {"old": [], "new": [], "seq": []}
    lost: dict[str, list] = {"local": [], "error": []}
    for o in outcomes:
        if o.result == Result.RESOLVED:
            continue  # nothing changes for the mutation; its rows are applied below
        due = next_at(o, now)  # one per call: a batch stays together
        if not o.per_mut and not o.moved and not (
                o.result == Result.FAILED and any(m.kind == "create" for m in o.muts)):
            _uniform(cols, o, due)  # the common case (a bulk call): column at a time
            settled.extend(Settled(m, o.result, o.error) for m in o.muts)
            continue
        for m in o.muts:
            result, error = o.per_mut.get(m.id, (o.result, o.error))
            new = o.moved.get(m.id)
            for name, value in zip(
                cols, (m.id, result, error, due if result not in (Result.DONE, Result.FAILED)
                       else None, m.sent_at, new), strict=True
            ):
                cols[name].append(value)
            if new is not None and new != m.seller_id:
                for key, moved in zip(moves, (m.seller_id, new, m.seq), strict=True):
                    moves[key].append(moved)
            settled.append(Settled(m, result, error))
            if result == Result.FAILED and m.kind == "create":
                lost["local"].append(m.seller_id)
                lost["error"].append(error or "refused")
    ts = pa.timestamp("us", tz="UTC")
    types = {"o_next": ts, "o_sent": ts}
    table = pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in cols.items()})
    apply_to_sellers(con, outcomes)
    if table.num_rows:
        with registered(con, "_outcomes", table):
            con.execute(_RECORD_SQL, [now])
    if moves["old"]:
        # Later changes of these sellers now go to the server's id.
        with registered(con, "_moves", pa.table(moves)):
            con.execute(
                "UPDATE mutations SET seller_id = mv.new FROM _moves mv "
                "WHERE mutations.seller_id = mv.old AND mutations.state = 'pending' "
                "AND mutations.seq > mv.seq"
            )
    if lost["local"]:
        with registered(con, "_lost", pa.table(lost)):
            con.execute(
                "UPDATE mutations SET state = 'failed', finished_at = $1, "
                "error = 'its seller was never created: ' || l.error FROM _lost l "
                "WHERE mutations.seller_id = l.local AND mutations.state = 'pending'",
                [now],
            )
    return settled


def _uniform(cols: dict[str, list[Any]], o: Outcome, due: datetime | None) -> None:
    """Append the rows of an outcome whose mutations all fare alike."""
    n = len(o.muts)
    cols["id"] += [m.id for m in o.muts]
    cols["o_result"] += [o.result] * n
    cols["o_error"] += [o.error] * n
    cols["o_next"] += [None if o.result in (Result.DONE, Result.FAILED) else due] * n
    cols["o_sent"] += [m.sent_at for m in o.muts]
    cols["o_new"] += [None] * n


# How each result moves a row. ``sent_at`` of the outcome table is the value before this
# round's mark: a request that surely did not act (429, never sent, refused bulk) puts
# it back, so "outcome unknown" stays true only for calls that may have acted.
_RECORD_SQL = """
UPDATE mutations SET
    state = CASE WHEN o.o_result IN ('done', 'failed') THEN o.o_result ELSE mutations.state END,
    finished_at = CASE WHEN o.o_result IN ('done', 'failed') THEN $1
                       ELSE mutations.finished_at END,
    error = CASE WHEN o.o_result IN ('done', 'advance') THEN NULL
                 ELSE coalesce(o.o_error, mutations.error) END,
    sent_at = CASE
        WHEN o.o_result IN ('uncertain', 'lookup') THEN mutations.sent_at
        WHEN o.o_result IN ('retry', 'unsent', 'split') THEN o.o_sent
        ELSE NULL END,
    anchor = CASE WHEN o.o_result IN ('done', 'failed', 'advance') THEN NULL
                  ELSE mutations.anchor END,
    attempts = mutations.attempts - CASE WHEN o.o_result = 'unsent' THEN 1 ELSE 0 END,
    next_attempt_at = o.o_next,
    step = mutations.step + CASE WHEN o.o_result IN ('advance', 'lookup') THEN 1 ELSE 0 END,
    batch = CASE WHEN o.o_result IN ('advance', 'split', 'lookup') THEN NULL
                 ELSE mutations.batch END,
    solo = mutations.solo OR o.o_result = 'split',
    old_id = CASE WHEN o.o_new IS NOT NULL AND o.o_new <> mutations.seller_id
                  THEN coalesce(mutations.old_id, mutations.seller_id) ELSE mutations.old_id END,
    seller_id = coalesce(o.o_new, mutations.seller_id)
FROM _outcomes o
WHERE mutations.id = o.id
"""


def apply_to_sellers(con: duckdb.DuckDBPyConnection, outcomes: list[Outcome]) -> None:
    """Write what the server confirmed into ``sellers``: it is the server's state now."""
    rows = {r["id"]: r for o in outcomes for r in o.rows}
    flags = {k: v for o in outcomes for k, v in o.flags.items()}
    deleted = [i for o in outcomes if o.result == Result.DONE for i in o.deleted]
    restored = [i for o in outcomes if o.result == Result.DONE for i in o.restored]
    if rows:
        upsert_rows(con, list(rows.values()))
    if flags:
        table = pa.table({"id": list(flags), "flagged": list(flags.values())})
        with registered(con, "_flags", table):
            con.execute(
                "UPDATE sellers SET flagged = f.flagged FROM _flags f WHERE sellers.id = f.id"
            )
    for ids, change in ((deleted, "coalesce(deleted_at, now())"), (restored, "NULL")):
        if ids:
            with registered(con, "_lives", pa.table({"id": pa.array(ids, pa.string())})):
                con.execute(f"UPDATE sellers SET deleted_at = {change} "
                            "WHERE id IN (SELECT id FROM _lives)")


def sellers_touched(outcomes: list[Outcome]) -> set[str]:
    """Every seller id whose visible row ``record`` may change for these outcomes (its
    mutations' sellers, the rows and flags it writes, the ids it moves them to)."""
    touched: set[str] = set()
    for o in outcomes:
        touched.update(i for m in o.muts for i in (m.seller_id, m.old_id) if i)
        touched.update(r["id"] for r in o.rows)
        touched.update([*o.flags, *o.deleted, *o.restored, *o.moved.values()])
    return touched


def upsert_rows(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Write the server's rows (API records; timestamps as ISO text) into ``sellers``."""
    # Timestamps arrive as text and are cast by DuckDB; every other field as it is typed.
    table = pa.table(
        {
            f.name: pa.array(
                [r.get(f.name) for r in rows],
                pa.string() if pa.types.is_timestamp(f.arrow) else f.arrow,
            )
            for f in SELLER.fields
        }
    )
    names = ", ".join(SELLER.names)
    select = ", ".join(
        f"{f.name}::{f.duckdb}" if pa.types.is_timestamp(f.arrow) else f.name
        for f in SELLER.fields
    )
    with registered(con, "_server_rows", table):
        con.execute("DELETE FROM sellers WHERE id IN (SELECT id FROM _server_rows)")
        con.execute(f"INSERT INTO sellers ({names}) SELECT {select} FROM _server_rows")


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    con.register(name, table)
    try:
        yield
    finally:
        con.unregister(name)
