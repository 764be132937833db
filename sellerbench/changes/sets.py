"""Set-based actions: flag, delete, restore (and undo of flags) of N sellers in a few
SQL statements, whatever N is.

The sellers come in as an Arrow table of ids (registered in DuckDB, never looped over in
Python) or as the filter itself (a :class:`~sellerbench.cache.filters.SellerFilter`, the
one filter of frames, exports and the grid). One write transaction then

1. stages the targets in a temporary table ``_sb_act``: each id resolved to today's id
   (a created seller's ``local:`` id leads to its server id) and joined to what the
   analyst sees (``visible_sellers_all``);
2. checks them (unknown ids, wrong state, names taken), raising ``MutationError`` with
   nothing queued;
3. queues one ``mutations`` row per seller with a single ``INSERT ... SELECT``.

A filter of live sellers (flag, delete) needs neither: its rows are known and live by
construction, so it is one ``INSERT ... SELECT`` from ``visible_sellers``.

The queue rows are the same as one-by-one actions made, so push, rebase (the view),
undo and every guarantee read them as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from ..errors import MutationError
from .result import TOUCH_LIMIT, Action

if TYPE_CHECKING:
    from ..cache.filters import SellerFilter
    from ..cache.store import Store

__all__ = ["act_on_set", "flag_inverses", "other_inverses", "resolved_sql"]

_MAX_LISTED = 5  # sellers named in one error message

# Where an id the analyst holds leads: a create (or a base re-create) that landed moved
# its rows from ``old_id`` to the server's id. Followed up to three hops.
_MOVED = (
    "SELECT old_id, arg_max(seller_id, seq) AS new_id FROM mutations "
    "WHERE old_id IS NOT NULL AND seller_id <> old_id AND state IN ('pending', 'done') "
    "GROUP BY old_id"
)


def resolved_sql(source: str, column: str) -> str:
    """``source``'s rows with ``target``: today's id of their ``column``."""
    return (
        f"WITH moved AS ({_MOVED}) "
        f"SELECT src.*, coalesce(m3.new_id, m2.new_id, m1.new_id, src.{column}) AS target "
        f"FROM {source} src LEFT JOIN moved m1 ON m1.old_id = src.{column} "
        "LEFT JOIN moved m2 ON m2.old_id = m1.new_id "
        "LEFT JOIN moved m3 ON m3.old_id = m2.new_id"
    )


# What each kind queues per seller (columns of ``mutations``), from a row of _sb_act.
# A flag's prior is one of two constants (undo needs only the value; a seller's name is
# read when a description needs it): building a JSON object per row costs ~1 s a million.
_VALUES = {
    "flag": "$flagged, NULL, NULL, NULL, CASE WHEN flagged THEN '{\"flagged\": true}'::JSON "
            "ELSE '{\"flagged\": false}'::JSON END",
    "delete": "NULL, NULL, NULL, normalized_name, "
              "json_object('name', display_name, 'flagged', flagged)",
    "restore": "flagged, display_name, normalized_name, NULL, json_object('name', display_name)",
}


def act_on_set(
    store: Store,
    kind: str,
    ids: list[str] | None,
    chosen: SellerFilter | None,
    *,
    flagged: bool | None = None,
) -> Action:
    """Queue ``kind`` (flag, delete, restore) for ``ids`` or every seller under ``chosen``."""
    if store.read_only:
        raise MutationError("this cache is open read-only; reopen it read-write to change it")
    label = kind if kind != "flag" else f"flag={flagged}"
    if chosen is not None and kind != "restore" and not chosen.include_deleted:
        with store.transaction() as con:
            chosen.check(con)
            targets, touched = _queue_filter(con, kind, chosen, flagged)
        return Action(label, targets, touched)
    with store.transaction() as con:
        if chosen is not None:
            chosen.check(con)
            _stage_filter(con, kind, chosen)
        else:
            assert ids is not None
            _stage_ids(con, ids)
        try:
            _check(con, kind)
            con.execute(
                "INSERT INTO mutations (id, action_id, origin, kind, seller_id, flagged, name,"
                " normalized, frees, prior, state, created_at) "
                f"SELECT $action || '.' || pos, $action, 'analyst', $kind, target, "
                f"{_VALUES[kind]}, 'pending', now() FROM _sb_act"
                # Given ids keep their order in the queue; a filter's have none to keep.
                + (" ORDER BY pos" if chosen is None else ""),
                {"action": str(uuid.uuid4()), "kind": kind, **(
                    {"flagged": flagged} if kind == "flag" else {})},
            )
            targets = con.sql("SELECT target FROM _sb_act ORDER BY pos").to_arrow_table()
            touched = _touched(con, targets.num_rows)
        finally:
            con.execute("DROP TABLE IF EXISTS _sb_act")
    return Action(label, targets.column(0).combine_chunks(), touched)


def _queue_filter(
    con: duckdb.DuckDBPyConnection, kind: str, chosen: SellerFilter, flagged: bool | None
) -> tuple[pa.Array, frozenset[str] | None]:
    """Flag or delete every live seller under ``chosen``: one INSERT ... SELECT from the
    view (they are known and live by construction: nothing to stage or check)."""
    predicate, params = chosen.sql()
    action = str(uuid.uuid4())
    con.execute(
        "INSERT INTO mutations (id, action_id, origin, kind, seller_id, flagged, name,"
        " normalized, frees, prior, state, created_at) "
        f"SELECT ? || '.' || id, ?, 'analyst', ?, id, {_VALUES[kind].replace('$flagged', '?')}, "
        f"'pending', now() FROM visible_sellers WHERE ({predicate})",
        [action, action, kind, *([flagged] if kind == "flag" else []), *params],
    )
    targets = con.sql(
        "SELECT seller_id FROM mutations WHERE action_id = ?", params=[action]
    ).to_arrow_table().column(0).combine_chunks()
    touched = None if len(targets) > TOUCH_LIMIT else frozenset(targets.to_pylist())
    return targets, touched


def _stage_ids(con: duckdb.DuckDBPyConnection, ids: list[str]) -> None:
    want = pa.table({"given": pa.array(ids, pa.string()),
                     "pos": pa.array(range(len(ids)), pa.int64())})
    con.register("_sb_want", want)
    try:
        con.execute(
            "CREATE TEMP TABLE _sb_act AS "
            f"WITH r AS ({resolved_sql('_sb_want', 'given')}) "
            "SELECT r.given, r.pos, r.target, v.id IS NOT NULL AS known, "
            "v.deleted_at IS NOT NULL AS deleted, v.flagged, v.display_name, "
            "v.normalized_name FROM r LEFT JOIN visible_sellers_all v ON v.id = r.target "
            "QUALIFY row_number() OVER (PARTITION BY r.target ORDER BY r.pos) = 1"
        )
    finally:
        con.unregister("_sb_want")


def _stage_filter(con: duckdb.DuckDBPyConnection, kind: str, chosen: SellerFilter) -> None:
    predicate, params = chosen.sql()
    tombstones = " AND deleted_at IS NOT NULL" if kind == "restore" else ""
    con.execute(
        "CREATE TEMP TABLE _sb_act AS SELECT id AS given, row_number() OVER () AS pos, "
        "id AS target, true AS known, deleted_at IS NOT NULL AS deleted, flagged, "
        f"display_name, normalized_name FROM {chosen.relation} "
        f"WHERE ({predicate}){tombstones}",
        params or None,
    )


def _check(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    """Refuse unknown ids, sellers in the wrong state and (restore) names taken."""
    unknown = _listed(con, "NOT known", "given")
    if unknown:
        count, shown = unknown
        why = _failed_create(con)
        raise MutationError(
            f"{count} unknown seller id(s): {shown}{why}. Nothing was changed; "
            f"sync first if they are new on the server"
        )
    live_wanted = kind != "restore"
    wrong = _listed(con, "deleted" if live_wanted else "NOT deleted",
                    "target || ' (''' || display_name || ''')'")
    if wrong:
        count, shown = wrong
        state = "deleted" if live_wanted else "live"
        hint = "; restore them first" if live_wanted else ""
        raise MutationError(
            f"cannot {kind} {count} {state} seller(s): {shown}{hint}. Nothing was changed"
        )
    if kind == "restore":
        _refuse_taken_names(con)


def _listed(con: duckdb.DuckDBPyConnection, where: str, shown: str) -> tuple[int, str] | None:
    count, names = con.execute(
        f"SELECT count(*), list({shown} ORDER BY pos)[1:{_MAX_LISTED}] FROM _sb_act "
        f"WHERE {where}"
    ).fetchall()[0]
    if not count:
        return None
    return count, ", ".join(names) + (" ..." if count > _MAX_LISTED else "")


def _failed_create(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.execute(
        "SELECT old_id, error FROM mutations WHERE kind = 'create' AND state = 'failed' "
        "AND old_id IN (SELECT given FROM _sb_act WHERE NOT known) LIMIT 1"
    ).fetchall()
    return f"; the create of {rows[0][0]} failed: {rows[0][1]}" if rows else ""


def _refuse_taken_names(con: duckdb.DuckDBPyConnection) -> None:
    taken = con.execute(
        "SELECT a.display_name, v.id FROM _sb_act a "
        "JOIN visible_sellers v ON v.normalized_name = a.normalized_name "
        f"ORDER BY a.pos LIMIT {_MAX_LISTED}"
    ).fetchall()
    if taken:
        shown = ", ".join(f"{name!r} (seller {sid})" for name, sid in taken)
        raise MutationError(f"name already in use by a live seller: {shown}. Nothing was changed")
    twice = con.execute(
        "SELECT list(display_name ORDER BY pos) FROM _sb_act GROUP BY normalized_name "
        "HAVING count(*) > 1 LIMIT 1"
    ).fetchall()
    if twice:
        raise MutationError(
            f"these deleted sellers share one name and only one can be live: "
            f"{', '.join(repr(n) for n in twice[0][0][:_MAX_LISTED])}. Restore one of them; "
            f"nothing was changed"
        )


def _touched(con: duckdb.DuckDBPyConnection, count: int) -> frozenset[str] | None:
    """The sellers whose visible rows changed; None (any row) above TOUCH_LIMIT."""
    if count > TOUCH_LIMIT:
        return None
    rows = con.execute("SELECT given, target FROM _sb_act").fetchall()
    return frozenset(i for row in rows for i in row)


def flag_inverses(
    con: duckdb.DuckDBPyConnection, action: str, undo_id: str
) -> tuple[int, list[str], frozenset[str] | None]:
    """Queue the flags that put back what ``action``'s sent flags changed (set-based).

    Returns how many were queued, what was skipped (sellers deleted or gone meanwhile)
    and the sellers they touch (None above TOUCH_LIMIT)."""
    con.execute(
        "CREATE TEMP TABLE _sb_undo AS "
        f"WITH seen AS (SELECT seq, seller_id, prior FROM mutations WHERE action_id = $1 "
        "AND kind = 'flag' AND state IN ('pending', 'done')), "
        f"r AS ({resolved_sql('seen', 'seller_id')}) "
        "SELECT r.seq, r.target, coalesce((r.prior->>'flagged')::BOOLEAN, false) AS back, "
        "v.id IS NOT NULL AS known, v.deleted_at IS NOT NULL AS deleted, v.display_name "
        "FROM r LEFT JOIN visible_sellers_all v ON v.id = r.target",
        [action],
    )
    try:
        queued = con.execute(
            "INSERT INTO mutations (id, action_id, origin, kind, seller_id, flagged, prior,"
            " state, created_at) "
            "SELECT uuid()::VARCHAR, $1, 'undo', 'flag', target, back, "
            "json_object('name', display_name), 'pending', now() FROM _sb_undo "
            "WHERE known AND NOT deleted ORDER BY seq DESC",
            [undo_id],
        ).fetchall()[0][0]
        skipped = _said(con, "_sb_undo", "display_name", _FLAGS_SAID)
        touched: frozenset[str] | None = None
        if queued <= TOUCH_LIMIT:
            rows = con.execute("SELECT target FROM _sb_undo WHERE known").fetchall()
            touched = frozenset(r[0] for r in rows)
    finally:
        con.execute("DROP TABLE IF EXISTS _sb_undo")
    return queued, skipped, touched


def _said(con: duckdb.DuckDBPyConnection, table: str, shown: str,
          cases: Sequence[tuple[str, str, str]]) -> list[str]:
    """What undo left as it is, one line per case (``where`` over ``table``, the line for
    one seller, named by ``shown``, and for many)."""
    out = []
    for where, one, many in cases:
        count, first = con.execute(
            f"SELECT count(*), min(coalesce('''' || {shown} || '''', target)) FROM {table} "
            f"WHERE {where}"
        ).fetchall()[0]
        if count:
            out.append(one.format(first) if count == 1 else many.format(f"{count:,}"))
    return out


_FLAGS_SAID = (
    ("NOT known", "{} is no longer known", "{} sellers are no longer known"),
    ("known AND deleted", "{} is deleted now; its flag was left as is",
     "{} sellers are deleted now; their flags were left as is"),
)


# What undo queues for each sent change other than a flag, from a row of ``_sb_back``
# (columns of ``mutations``: kind, flagged, name, normalized, frees, prior). A landed
# delete or rename names the seller's normalized name in ``frees`` (what it gave up), so
# the name to take back never needs normalizing again here.
_INVERSE = """
CASE WHEN kind IN ('create', 'restore') THEN 'delete'
     WHEN kind = 'delete' THEN 'restore' ELSE 'rename' END,
CASE WHEN kind = 'delete' THEN old_flagged END,
CASE WHEN kind IN ('rename', 'delete') THEN old_name END,
CASE WHEN kind IN ('rename', 'delete') THEN old_normalized END,
CASE WHEN kind = 'delete' THEN NULL ELSE normalized_name END,
CASE WHEN kind IN ('create', 'restore') THEN json_object('name', display_name, 'flagged', flagged)
     WHEN kind = 'delete' THEN json_object('name', old_name)
     ELSE json_object('name', display_name) END
"""
# Why a sent change is left as it is (NULL: it is taken back, or nothing is left to do).
_LEFT = """
CASE WHEN NOT known THEN 'unknown'
     WHEN kind = 'delete' AND NOT deleted THEN 'back'
     WHEN kind IN ('create', 'restore') AND deleted THEN 'gone'
     WHEN kind = 'rename' AND deleted THEN 'deleted'
     WHEN kind IN ('rename', 'delete') AND holder IS NOT NULL AND holder <> target THEN 'taken'
     WHEN kind = 'rename' AND old_name = display_name THEN 'same'
END
"""


def other_inverses(
    con: duckdb.DuckDBPyConnection, action: str, undo_id: str
) -> tuple[int, list[str], frozenset[str] | None, bool]:
    """Queue what puts back ``action``'s sent deletes, restores, creates and renames
    (set-based, in the reverse order of the action): a delete is restored under its old
    name, a create or restore deleted, a rename renamed back.

    Left as they are: sellers gone meanwhile, a rename of a seller deleted since, a name
    a live seller holds now (the sellers one action deleted were live together: their
    names differ). Returns how many were queued, what was left and why, the sellers touched
    (None above TOUCH_LIMIT), and whether a restore was queued."""
    con.execute(
        "CREATE TEMP TABLE _sb_back AS "
        "WITH seen AS (SELECT seq, kind, seller_id, prior, frees FROM mutations "
        "WHERE action_id = $1 AND kind <> 'flag' AND state IN ('pending', 'done')), "
        f"r AS ({resolved_sql('seen', 'seller_id')}), "
        "holders AS (SELECT normalized_name, any_value(id) AS holder FROM visible_sellers "
        "WHERE normalized_name IN (SELECT frees FROM seen) GROUP BY normalized_name), "
        "b AS (SELECT r.seq, r.kind, r.target, r.prior->>'name' AS old_name, "
        "coalesce((r.prior->>'flagged')::BOOLEAN, false) AS old_flagged, "
        "r.frees AS old_normalized, v.id IS NOT NULL AS known, "
        "v.deleted_at IS NOT NULL AS deleted, v.display_name, v.normalized_name, v.flagged, "
        "h.holder FROM r LEFT JOIN visible_sellers_all v ON v.id = r.target "
        "LEFT JOIN holders h ON h.normalized_name = r.frees) "
        f"SELECT *, {_LEFT} AS left_as_is FROM b",
        [action],
    )
    try:
        queued = con.execute(
            "INSERT INTO mutations (id, action_id, origin, kind, flagged, name, normalized,"
            " frees, prior, seller_id, state, created_at) "
            f"SELECT uuid()::VARCHAR, $1, 'undo', {_INVERSE}, target, 'pending', now() "
            "FROM _sb_back WHERE left_as_is IS NULL ORDER BY seq DESC",
            [undo_id],
        ).fetchall()[0][0]
        left = _said(con, "_sb_back", "coalesce(old_name, display_name)", _OTHERS_SAID)
        restores = bool(con.execute(
            "SELECT count(*) FROM _sb_back WHERE left_as_is IS NULL AND kind = 'delete'"
        ).fetchall()[0][0])
        touched: frozenset[str] | None = None
        if queued <= TOUCH_LIMIT:
            rows = con.execute(
                "SELECT target FROM _sb_back WHERE left_as_is IS NULL").fetchall()
            touched = frozenset(r[0] for r in rows)
    finally:
        con.execute("DROP TABLE IF EXISTS _sb_back")
    return queued, left, touched, restores


# Why sent changes were left as they are, as undo's description says it (one, many).
_OTHERS_SAID = tuple((f"left_as_is = '{why}'", one, many) for why, one, many in (
    ("unknown", "{} is no longer known", "{} sellers are no longer known"),
    ("deleted", "{} is deleted now; its rename was left as is",
     "{} sellers are deleted now; their renames were left as they are"),
    ("taken", "the name {} is taken by another seller now",
     "{} names are taken by other sellers now"),
))
