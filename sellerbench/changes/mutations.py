"""Seller changes made in the notebook: checked, shown at once, queued, pushed exactly once.

A change is a row in the cache's ``mutations`` table. That row is both the queue entry
and the overlay: while it is ``pending`` the view ``visible_sellers`` (store.py) shows
its effect on top of the server's rows, so there is no second copy of seller state to
keep in step, and a pull that replaces server rows cannot make a pending change flicker
back (rebase is the view itself). A row leaves the queue when the server confirmed it
(``done``; the confirmed value is written into ``sellers`` in the same transaction), when
the server refused it for good (``failed``, with the reason), or when undo took it back
before it was ever sent (``undone``).

Every public change here works the same way on the store it is given: check the input
against what the analyst sees (unknown ids, bad names, a name already live) and raise
``MutationError`` with nothing queued; else write all its rows in ONE write transaction
(checked and queued under the file's write lock, so two threads cannot both take the
same name); return an :class:`Action` saying which ids it acted on and which sellers'
rows it touched. Pushing and telling listeners is the ``Workbench``'s part (auto-push
never raises into the cell: what it cannot send stays queued). Sending is ``push.py``.

Ids: a seller created here is ``local:<uuid>`` until the server confirms the create;
then its rows move to the server id and both ids keep working in every call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import duckdb
import pandas as pd
import pyarrow as pa

from ..errors import MutationError
from ..schema import LOCAL_PREFIX, MAX_NAME_LENGTH, name_problem, normalize_name
from .result import TOUCH_LIMIT, Action
from .sets import act_on_set, flag_inverses, other_inverses

if TYPE_CHECKING:
    from ..cache.filters import SellerFilter
    from ..cache.store import Store

__all__ = [
    "LOCAL_PREFIX",
    "MAX_NAME_LENGTH",
    "Action",
    "Undone",
    "check_name",
    "create",
    "delete",
    "failed_frame",
    "flag",
    "normalize_name",
    "pending_frame",
    "rename",
    "resolve_ids",
    "restore",
    "undo",
]

_MAX_LISTED = 5  # ids named in one error message


# -- names (the rules are the contract's: schema.py) -------------------------------------


def check_name(name: object) -> str:
    """The trimmed name, or MutationError saying what the contract refuses in it."""
    problem = name_problem(name)
    if problem is None:
        assert isinstance(name, str)
        return name.strip()
    shown = f": {name.strip()[:40]!r}" if isinstance(name, str) else ""
    raise MutationError(f"a seller name {problem}{shown}")


# -- what one change queues ----------------------------------------------------------------


class _Done(NamedTuple):
    """A queue row of the action undo takes back."""

    seq: int
    kind: str
    seller_id: str
    flagged: bool | None
    name: str | None
    prior: str | None
    state: str
    attempts: int
    batch: str | None

    @property
    def prior_values(self) -> dict[str, Any]:
        return json.loads(self.prior) if self.prior else {}


@dataclass(frozen=True)
class Undone:
    """What ``undo`` did: its description, the sellers it touched, and whether it queued
    reverting changes (which then want a push)."""

    text: str
    touched: frozenset[str] | None  # None: more than TOUCH_LIMIT sellers
    queued: bool


@dataclass
class Change:
    """One row to queue (see the ``mutations`` table in store.py)."""

    kind: str
    seller_id: str
    flagged: bool | None = None
    name: str | None = None
    frees: str | None = None
    prior: dict[str, Any] = field(default_factory=dict)
    old_id: str | None = None

    @property
    def normalized(self) -> str | None:
        return normalize_name(self.name) if self.name is not None else None


@dataclass(frozen=True)
class Seller:
    """A seller as the analyst sees it (a row of ``visible_sellers_all``)."""

    id: str
    name: str
    normalized: str
    flagged: bool
    deleted: bool


_QUEUE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("action_id", pa.string()),
        ("origin", pa.string()),
        ("kind", pa.string()),
        ("seller_id", pa.string()),
        ("old_id", pa.string()),
        ("flagged", pa.bool_()),
        ("name", pa.string()),
        ("normalized", pa.string()),
        ("frees", pa.string()),
        ("prior", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)


def queue(
    con: duckdb.DuckDBPyConnection, changes: list[Change], *, action_id: str, origin: str
) -> None:
    """Insert the rows of one action (set-based: one statement for any number of rows)."""
    if not changes:
        return
    now = datetime.now(UTC)
    table = pa.table(
        {
            "id": [str(uuid.uuid4()) for _ in changes],
            "action_id": [action_id] * len(changes),
            "origin": [origin] * len(changes),
            "kind": [c.kind for c in changes],
            "seller_id": [c.seller_id for c in changes],
            "old_id": [c.old_id for c in changes],
            "flagged": [c.flagged for c in changes],
            "name": [c.name for c in changes],
            "normalized": [c.normalized for c in changes],
            "frees": [c.frees for c in changes],
            "prior": [json.dumps(c.prior, ensure_ascii=False) for c in changes],
            "created_at": [now] * len(changes),
        },
        schema=_QUEUE_SCHEMA,
    )
    con.register("_new_mutations", table)
    try:
        # ORDER BY keeps seq in the order the analyst gave the ids.
        con.execute(
            "INSERT INTO mutations (id, action_id, origin, kind, seller_id, old_id, flagged,"
            " name, normalized, frees, prior, state, created_at) "
            "SELECT id, action_id, origin, kind, seller_id, old_id, flagged, name, normalized,"
            " frees, prior::JSON, 'pending', created_at FROM _new_mutations"
        )
    finally:
        con.unregister("_new_mutations")


# -- reading what the analyst sees -------------------------------------------------------


def _as_ids(ids: str | Iterable[str]) -> list[str]:
    """The ids asked for, de-duplicated in order; a clear error for anything else."""
    if isinstance(ids, str):
        ids = [ids]
    elif isinstance(ids, pd.Series | pd.Index):
        ids = ids.tolist()
    elif isinstance(ids, pd.DataFrame):
        if "id" not in ids.columns:
            raise MutationError("a frame of sellers needs an 'id' column")
        ids = ids["id"].tolist()
    try:
        listed = list(ids)
    except TypeError:
        raise MutationError(f"expected a seller id or a list of ids, got {ids!r}") from None
    for item in listed:
        if not isinstance(item, str) or not item:
            raise MutationError(f"seller ids are non-empty strings; got {item!r}")
    if not listed:
        raise MutationError("no seller ids given: nothing was changed")
    return list(dict.fromkeys(listed))


def resolve(con: duckdb.DuckDBPyConnection, ids: list[str]) -> list[str]:
    """Map ids the analyst holds to today's targets (a landed create's server id)."""
    current = list(ids)
    for _ in range(4):  # an id moves at most once per create / re-create: bounded
        rows = con.execute(
            "SELECT old_id, arg_max(seller_id, seq) FROM mutations "
            "WHERE old_id IN (SELECT unnest(?::VARCHAR[])) AND seller_id <> old_id "
            "AND state IN ('pending', 'done') GROUP BY old_id",
            [list(set(current))],
        ).fetchall()
        moved = dict(rows)
        if not moved:
            break
        current = [moved.get(i, i) for i in current]
    return current


def sellers_by_id(con: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, Seller]:
    rows = con.execute(
        "SELECT id, display_name, normalized_name, flagged, deleted_at IS NOT NULL "
        "FROM visible_sellers_all WHERE id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    ).fetchall()
    return {r[0]: Seller(*r) for r in rows}


def _known(con: duckdb.DuckDBPyConnection, ids: list[str]) -> list[Seller]:
    """The sellers behind ``ids`` (resolved), or MutationError naming the unknown ones."""
    targets = resolve(con, ids)
    found = sellers_by_id(con, targets)
    missing = [given for given, target in zip(ids, targets, strict=True) if target not in found]
    if missing:
        failed = _failed_creates(con, missing)
        shown = ", ".join(missing[:_MAX_LISTED]) + (" ..." if len(missing) > _MAX_LISTED else "")
        why = f"; {failed}" if failed else ""
        raise MutationError(
            f"{len(missing)} unknown seller id(s): {shown}{why}. Nothing was changed; "
            f"sync first if they are new on the server"
        )
    return [found[t] for t in targets]


def _failed_creates(con: duckdb.DuckDBPyConnection, ids: list[str]) -> str:
    rows = con.execute(
        "SELECT old_id, error FROM mutations WHERE kind = 'create' AND state = 'failed' "
        "AND old_id IN (SELECT unnest(?::VARCHAR[])) LIMIT 1",
        [ids],
    ).fetchall()
    return f"the create of {rows[0][0]} failed: {rows[0][1]}" if rows else ""


def _require(sellers: list[Seller], *, deleted: bool, verb: str) -> None:
    wrong = [s for s in sellers if s.deleted != deleted]
    if wrong:
        state = "live" if deleted else "deleted"
        shown = ", ".join(f"{s.id} ({s.name!r})" for s in wrong[:_MAX_LISTED])
        hint = "" if deleted else "; restore them first"
        raise MutationError(
            f"cannot {verb} {len(wrong)} {state} seller(s): {shown}{hint}. Nothing was changed"
        )


def live_names(con: duckdb.DuckDBPyConnection, normalized: list[str]) -> dict[str, str]:
    """normalized name -> id of the live (visible) seller holding it, for those taken."""
    rows = con.execute(
        "SELECT normalized_name, id FROM visible_sellers "
        "WHERE normalized_name IN (SELECT unnest(?::VARCHAR[]))",
        [normalized],
    ).fetchall()
    return dict(rows)


def _refuse_taken(taken: dict[str, str], names: dict[str, str]) -> None:
    if taken:
        shown = ", ".join(f"{names[n]!r} (seller {sid})" for n, sid in list(taken.items())[:5])
        raise MutationError(f"name already in use by a live seller: {shown}. Nothing was changed")


# -- the public changes ----------------------------------------------------------------


def flag(
    store: Store,
    ids: str | Iterable[str] | None,
    flagged: bool = True,
    *,
    chosen: SellerFilter | None = None,
) -> Action:
    """Set ``flagged`` on live sellers: ``ids``, or every seller under ``chosen``."""
    if not isinstance(flagged, bool):
        raise MutationError(f"flagged must be True or False, not {flagged!r}")
    return _act_on_set(store, "flag", ids, chosen, flagged=flagged)


def _act_on_set(
    store: Store,
    kind: str,
    ids: str | Iterable[str] | None,
    chosen: SellerFilter | None,
    flagged: bool | None = None,
) -> Action:
    if (ids is None) == (chosen is None):
        raise MutationError(
            f"{kind}: give the sellers' ids, or a filter (where=..., search=...), not both"
            if ids is not None else
            f"{kind}: which sellers? Give their ids, or a filter (where=..., search=...)"
        )
    wanted = None if ids is None else _as_ids(ids)
    return act_on_set(store, kind, wanted, chosen, flagged=flagged)


def rename(store: Store, id: str, name: str) -> Action:
    """Give a live seller a new display name (unique among live sellers, case-blind)."""
    wanted = _as_ids(id)
    if len(wanted) != 1:
        raise MutationError("rename takes one seller id")
    new_name = check_name(name)

    def changes(con: duckdb.DuckDBPyConnection) -> list[Change]:
        (seller,) = _known(con, wanted)
        _require([seller], deleted=False, verb="rename")
        if new_name == seller.name:
            return []  # nothing to change, nothing to send
        target = normalize_name(new_name)
        taken = {n: sid for n, sid in live_names(con, [target]).items() if sid != seller.id}
        _refuse_taken(taken, {target: new_name})
        return [
            Change(
                "rename",
                seller.id,
                name=new_name,
                frees=seller.normalized,
                prior={"name": seller.name, "flagged": seller.flagged},
            )
        ]

    action = _act(store, changes, "rename")
    return action if len(action) else Action("rename", resolve_ids(store, wanted), frozenset())


def delete(
    store: Store, ids: str | Iterable[str] | None, *, chosen: SellerFilter | None = None
) -> Action:
    """Soft-delete live sellers (the server keeps a tombstone; ``restore`` brings them back)."""
    return _act_on_set(store, "delete", ids, chosen)


def restore(
    store: Store, ids: str | Iterable[str] | None, *, chosen: SellerFilter | None = None
) -> Action:
    """Bring deleted sellers back with their names and flags.

    Where the server has no restore endpoint (the base contract), push re-creates the
    seller by name instead: it comes back under a new id (``wb.sellers()`` shows it once
    the create lands; the old id keeps working in calls).
    """
    return _act_on_set(store, "restore", ids, chosen)


def create(store: Store, names: str | Iterable[str]) -> Action:
    """Create sellers; returns their ids: ``local:<uuid>`` until the server confirms."""
    given = [names] if isinstance(names, str) else list(names)
    if not given:
        raise MutationError("no names given: nothing was created")
    checked = [check_name(n) for n in given]
    by_norm: dict[str, str] = {}
    for name in checked:
        norm = normalize_name(name)
        if norm in by_norm:
            raise MutationError(
                f"the same name is given twice: {by_norm[norm]!r} and {name!r}. "
                f"Nothing was changed"
            )
        by_norm[norm] = name

    def changes(con: duckdb.DuckDBPyConnection) -> list[Change]:
        _refuse_taken(live_names(con, list(by_norm)), by_norm)
        out = []
        for name in checked:
            local = f"{LOCAL_PREFIX}{uuid.uuid4()}"
            out.append(Change("create", local, name=name, flagged=False, old_id=local))
        return out

    return _act(store, changes, "create")


def _act(
    store: Store, build: Callable[[duckdb.DuckDBPyConnection], list[Change]], kind: str
) -> Action:
    """Check and queue one analyst action (a few rows) in one write transaction."""
    if store.read_only:
        raise MutationError("this cache is open read-only; reopen it read-write to change it")
    action_id = str(uuid.uuid4())
    with store.transaction() as con:
        changes = build(con)
        queue(con, changes, action_id=action_id, origin="analyst")
    if not changes:
        return Action(kind, [], frozenset())
    return Action(kind, [c.old_id or c.seller_id for c in changes],
                  frozenset(_sellers_of(changes)))


def _sellers_of(changes: list[Change]) -> set[str]:
    """Every seller id whose visible row the changes touch (listeners patch just those)."""
    return {c.seller_id for c in changes} | {c.old_id for c in changes if c.old_id}


def resolve_ids(store: Store, ids: list[str]) -> list[str]:
    """Today's ids of ``ids`` (a create that landed has its server id now)."""
    with store.connect() as con:
        return resolve(con, ids)


# -- undo -------------------------------------------------------------------------------------


def undo(store: Store, *, restore_missing: bool = False) -> Undone:
    """Take back the analyst's latest action not yet undone; says what was done.

    Changes never sent leave the queue (one UPDATE); changes the server has (or may have)
    seen get their inverses queued set-based (``sets.flag_inverses``,
    ``sets.other_inverses``). Repeated calls walk further back. ``restore_missing``: the
    server is known to have no restore endpoint (the description warns of new ids).
    """
    if store.read_only:
        raise MutationError("this cache is open read-only; reopen it read-write to undo")
    undo_id = str(uuid.uuid4())
    with store.transaction() as con:
        action = _last_action(con)
        if action is None:
            return Undone("nothing to undo", frozenset(), False)
        total, kinds, unsent = con.execute(
            f"SELECT count(*), list(DISTINCT kind ORDER BY kind), count(*) FILTER ({_UNSENT}) "
            "FROM mutations WHERE action_id = ?",
            [action],
        ).fetchall()[0]
        one = _rows(con, "action_id = ?", [action])[0] if total == 1 else None
        if one is not None and "name" not in one.prior_values:  # a set flag's prior
            seller = sellers_by_id(con, [one.seller_id]).get(one.seller_id)
            name = seller.name if seller is not None else one.seller_id
            one = one._replace(prior=json.dumps({"name": name}))
        touched: set[str] | None = None
        if total <= TOUCH_LIMIT:
            found = con.execute(
                "SELECT seller_id FROM mutations WHERE action_id = ?", [action]
            ).fetchall()
            touched = {r[0] for r in found}
        con.execute(
            f"UPDATE mutations SET state = CASE WHEN {_UNSENT} THEN 'undone' ELSE state END, "
            f"undone_by = ?, finished_at = CASE WHEN {_UNSENT} THEN now() ELSE finished_at "
            "END WHERE action_id = ?",
            [undo_id, action],
        )
        flags, skipped, flag_touched = flag_inverses(con, action, undo_id)
        others, more, other_touched, restores = other_inverses(con, action, undo_id)
    if touched is not None and flag_touched is not None and other_touched is not None:
        touched |= flag_touched | other_touched
    else:
        touched = None
    text = _describe_undo(kinds, total, one, unsent, flags + others, skipped + more,
                          restore_missing and restores)
    return Undone(text, None if touched is None else frozenset(touched),
                  bool(flags or others))


# A queued change undo can simply drop: never sent, not part of a bulk call's body.
_UNSENT = "state = 'pending' AND attempts = 0 AND batch IS NULL"


def _rows(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[_Done]:
    return [_Done(*r) for r in con.execute(
        f"SELECT {', '.join(_Done._fields)} FROM mutations WHERE {where} ORDER BY seq DESC",
        params,
    ).fetchall()]


def _last_action(con: duckdb.DuckDBPyConnection) -> str | None:
    rows = con.execute(
        "SELECT action_id FROM mutations WHERE origin = 'analyst' AND undone_by IS NULL "
        "GROUP BY action_id HAVING bool_or(state IN ('pending', 'done')) "
        "ORDER BY max(seq) DESC LIMIT 1"
    ).fetchall()
    return rows[0][0] if rows else None


def _describe_undo(
    kinds: list[str], total: int, one: _Done | None, unsent: int, reverting: int,
    skipped: list[str], base_restores: bool,
) -> str:
    what = _one(one) if one is not None else f"{'/'.join(kinds)} of {total:,} seller(s)"
    parts = []
    if unsent:
        parts.append(f"{unsent:,} queued change(s) removed, never sent")
    if reverting:
        parts.append(f"{reverting:,} reverting change(s) queued")
    if base_restores:
        parts.append(
            "the server has no restore endpoint, so deleted sellers are re-created by "
            "name and get a NEW id (times_seen and run history start over)"
        )
    parts.extend(skipped[:_MAX_LISTED])
    if len(skipped) > _MAX_LISTED:
        parts.append(f"{len(skipped) - _MAX_LISTED:,} more left as they are")
    return f"undid {what}: " + "; ".join(parts or ["nothing left to revert"])


def _one(row: _Done) -> str:
    kind, sid, name, prior = row.kind, row.seller_id, row.name, row.prior_values
    flagged = row.flagged
    if kind == "flag":
        return f"flag={flagged} of {prior.get('name', sid)!r}"
    if kind == "rename":
        return f"rename of {prior.get('name')!r} to {name!r}"
    if kind == "create":
        return f"create of {name!r}"
    return f"{kind} of {prior.get('name', sid)!r}"


# -- the queue as frames --------------------------------------------------------------------

_FRAME_SQL = """
SELECT id, action_id, kind, seller_id, old_id,
       CASE kind WHEN 'flag' THEN 'flagged=' || flagged::VARCHAR
                 WHEN 'delete' THEN 'delete'
                 ELSE 'name=' || name END AS change,
       state, attempts, sent_at IS NOT NULL AND state = 'pending' AS in_flight,
       next_attempt_at, error, created_at, finished_at
FROM mutations WHERE state IN ({states}) ORDER BY seq
"""


def _frame(store: Store, states: str) -> pd.DataFrame:
    with store.connect() as con:
        con.execute("SET TimeZone = 'UTC'")  # frames in UTC, like every other frame
        table = con.sql(_FRAME_SQL.format(states=states)).to_arrow_table()
    return table.to_pandas()


def pending_frame(store: Store) -> pd.DataFrame:
    """The queue: changes not confirmed yet, and those refused (``state='failed'``, ``error``)."""
    return _frame(store, "'pending', 'failed'")


def failed_frame(store: Store) -> pd.DataFrame:
    """Changes the server refused for good, with the reason in ``error``."""
    return _frame(store, "'failed'")
