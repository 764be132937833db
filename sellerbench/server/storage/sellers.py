"""Seller writes, each inside a caller's transaction (:class:`~.storage.Tx`).

Rules every function keeps:

- a row that changes gets a fresh ``rev`` and ``updated_at``; a write that changes
  nothing (same flag, deleting a deleted seller, renaming to the same name) leaves both
  alone and still succeeds;
- a display name is trimmed, 1-200 characters, free of control characters; its
  normalized form is unique among live sellers (409 ``DUPLICATE``);
- ids that are not UUIDs cannot exist, so they are simply "not found";
- a refused single write raises :class:`~.problems.Problem`, which rolls the
  transaction back: nothing is half-written;
- every change is filed with its author (:mod:`.changes`), in the same transaction;
- a row read in order to change it is locked (``tx.for_update``: PostgreSQL's writers
  run concurrently), batches in id order so two batches never wait on each other in a
  circle; a name taken by a concurrent writer is caught by the unique index.

Restore (**ext**): restoring a seller whose normalized name now belongs to a live seller
(or to another seller restored in the same call) refuses the whole call with 409
``DUPLICATE`` naming the ids, so the caller can decide; nothing is restored then.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from typing import Any

from ..http.problems import Problem
from .changes import record, record_many
from .core import Duplicate, Tx
from .records import (
    INSERT_SELLER,
    SELLER_COLUMNS,
    is_uuid,
    normalize_name,
    now_ts,
    seller_record,
    validate_name,
)

__all__ = [
    "bulk_create",
    "bulk_delete",
    "bulk_flag",
    "bulk_restore",
    "create",
    "delete",
    "flag",
    "update",
]

_COLUMNS = ", ".join(SELLER_COLUMNS)
_CHUNK = 500  # ids per IN (...) query, under SQLite's parameter limit


def _ids(ids: Iterable[str]) -> list[str]:
    """Distinct, well-formed ids in the order given."""
    return list(dict.fromkeys(i for i in ids if is_uuid(i)))


def _row(tx: Tx, seller_id: str) -> tuple[Any, ...] | None:
    if not is_uuid(seller_id):
        return None
    return tx.execute(
        f"SELECT {_COLUMNS} FROM sellers WHERE id = ?{tx.for_update}", (seller_id,)
    ).fetchone()


def _live(tx: Tx, seller_id: str) -> dict[str, Any]:
    row = _row(tx, seller_id)
    if row is None or row[SELLER_COLUMNS.index("deleted_at")] is not None:
        raise Problem(404, "NOT_FOUND", f"no live seller with id {seller_id!r}")
    return seller_record(row)


def _name(name: object) -> tuple[str, str]:
    try:
        display = validate_name(name)
    except ValueError as exc:
        raise Problem(422, "VALIDATION", str(exc)) from exc
    return display, normalize_name(display)


def _taken(tx: Tx, normalized: str, other_than: str | None = None) -> bool:
    row = tx.execute(
        "SELECT id FROM sellers WHERE normalized_name = ? AND deleted_at IS NULL", (normalized,)
    ).fetchone()
    return row is not None and row[0] != other_than


def _rows(tx: Tx, ids: list[str], where: str = "") -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows += tx.execute(
            f"SELECT {_COLUMNS} FROM sellers WHERE id IN ({marks}){where} ORDER BY id"
            f"{tx.for_update}", chunk
        ).fetchall()
    return rows


def _insert(tx: Tx, display: str, normalized: str, now: str) -> dict[str, Any]:
    row = (str(uuid.uuid4()), display, normalized, "ebay", None, 0, 0, None, None, now, now,
           None, tx.next_rev())
    try:
        tx.execute(INSERT_SELLER, row)
    except (sqlite3.IntegrityError, Duplicate) as exc:  # the unique index agrees with _taken
        raise Problem(409, "DUPLICATE", f"a live seller is already named {display!r}") from exc
    record(tx, "seller", row[0], "create", row[-1], {"display_name": display}, now)
    return seller_record(row)


def create(tx: Tx, name: object) -> dict[str, Any]:
    """A new seller named ``name``; 409 when the normalized name is live."""
    display, normalized = _name(name)
    if _taken(tx, normalized):
        raise Problem(409, "DUPLICATE", f"a live seller is already named {display!r}")
    return _insert(tx, display, normalized, now_ts())


def bulk_create(tx: Tx, names: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Create what can be created; each refused name gets one line in the errors."""
    created: list[dict[str, Any]] = []
    errors: list[str] = []
    now = now_ts()
    for position, name in enumerate(names):
        try:
            display, normalized = _name(name)
        except Problem as exc:
            errors.append(f"names[{position}]: {exc.message}")
            continue
        if _taken(tx, normalized):
            errors.append(f"names[{position}]: a live seller is already named {display!r}")
            continue
        created.append(_insert(tx, display, normalized, now))
    return created, errors


def _write(tx: Tx, seller_id: str, changes: dict[str, Any]) -> None:
    now, rev = now_ts(), tx.next_rev()
    sets = ", ".join(f"{column} = ?" for column in (*changes, "updated_at", "rev"))
    try:
        tx.execute(f"UPDATE sellers SET {sets} WHERE id = ?",
                   [*changes.values(), now, rev, seller_id])
    except Duplicate as exc:  # a concurrent writer took the name after _taken looked
        raise Problem(409, "DUPLICATE", "a live seller already has this name") from exc
    detail: dict[str, Any] = {}
    if "display_name" in changes:
        detail["display_name"] = changes["display_name"]
    if "flagged" in changes:
        detail["flagged"] = bool(changes["flagged"])
    action = "flag" if "display_name" not in changes else "rename" if len(detail) == 1 else "update"
    record(tx, "seller", seller_id, action, rev, detail, now)


def update(tx: Tx, seller_id: str, *, name: object = None, flagged: bool | None = None):
    """Rename and/or set the flag of a live seller; the seller as it now is."""
    seller = _live(tx, seller_id)
    changes: dict[str, Any] = {}
    if name is not None:
        display, normalized = _name(name)
        if _taken(tx, normalized, other_than=seller_id):
            raise Problem(409, "DUPLICATE", f"a live seller is already named {display!r}")
        if display != seller["display_name"]:
            changes["display_name"] = display
            changes["normalized_name"] = normalized
    if flagged is not None and flagged != seller["flagged"]:
        changes["flagged"] = 1 if flagged else 0
    if changes:
        _write(tx, seller_id, changes)
        seller = _live(tx, seller_id)
    return seller


def flag(tx: Tx, seller_id: str, flagged: bool | None) -> bool:
    """Set the flag (or toggle it when ``flagged`` is None); the flag as it now is."""
    seller = _live(tx, seller_id)
    wanted = (not seller["flagged"]) if flagged is None else flagged
    if wanted != seller["flagged"]:
        _write(tx, seller_id, {"flagged": 1 if wanted else 0})
    return wanted


def delete(tx: Tx, seller_id: str) -> None:
    """Soft-delete; deleting a deleted seller is fine and changes nothing."""
    row = _row(tx, seller_id)
    if row is None:
        raise Problem(404, "NOT_FOUND", f"no seller with id {seller_id!r}")
    if row[SELLER_COLUMNS.index("deleted_at")] is None:
        now, rev = now_ts(), tx.next_rev()
        tx.execute(
            "UPDATE sellers SET deleted_at = ?, updated_at = ?, rev = ? WHERE id = ?",
            (now, now, rev, seller_id),
        )
        record(tx, "seller", seller_id, "delete", rev, None, now)


def bulk_delete(tx: Tx, ids: list[str]) -> int:
    """Soft-delete the live sellers among ``ids``; how many changed."""
    rows = _rows(tx, _ids(ids), " AND deleted_at IS NULL")
    now = now_ts()
    revs = [(row[0], tx.next_rev()) for row in rows]
    tx.executemany(
        "UPDATE sellers SET deleted_at = ?, updated_at = ?, rev = ? WHERE id = ?",
        [(now, now, rev, seller_id) for seller_id, rev in revs],
    )
    record_many(tx, "seller", "delete", revs, None, now)
    return len(rows)


def bulk_flag(tx: Tx, ids: list[str], flagged: bool) -> int:
    """Set the flag on the live sellers among ``ids``; how many changed."""
    value = 1 if flagged else 0
    rows = _rows(tx, _ids(ids), f" AND deleted_at IS NULL AND flagged != {value}")
    now = now_ts()
    revs = [(row[0], tx.next_rev()) for row in rows]
    tx.executemany(
        "UPDATE sellers SET flagged = ?, updated_at = ?, rev = ? WHERE id = ?",
        [(value, now, rev, seller_id) for seller_id, rev in revs],
    )
    record_many(tx, "seller", "flag", revs, {"flagged": flagged}, now)
    return len(rows)


def bulk_restore(tx: Tx, ids: list[str]) -> int:
    """Undo soft deletes, keeping ids and history; 409 (nothing restored) on a name clash."""
    rows = _rows(tx, _ids(ids), " AND deleted_at IS NOT NULL")
    name_at = SELLER_COLUMNS.index("normalized_name")
    clashes: list[str] = []
    wanted: set[str] = set()
    for row in rows:
        normalized = row[name_at]
        if normalized in wanted or _taken(tx, normalized):
            clashes.append(row[0])
        wanted.add(normalized)
    if clashes:
        shown = ", ".join(clashes[:5]) + (" ..." if len(clashes) > 5 else "")
        raise Problem(
            409,
            "DUPLICATE",
            f"{len(clashes)} seller(s) cannot be restored: their name now belongs to a live "
            f"seller ({shown}); rename or delete that seller, or restore the others alone",
        )
    now = now_ts()
    revs = [(row[0], tx.next_rev()) for row in rows]
    tx.executemany(
        "UPDATE sellers SET deleted_at = NULL, updated_at = ?, rev = ? WHERE id = ?",
        [(now, rev, seller_id) for seller_id, rev in revs],
    )
    record_many(tx, "seller", "restore", revs, None, now)
    return len(rows)
