"""Who changed what: one ``changes`` row per change, written in the change's transaction.

A write that changes a row takes a fresh ``rev``; :func:`record` files that rev with the
entity, the action, the author (``tx.user_id``, set by
:func:`~.idempotency.perform` from the caller's token; None for the run simulator) and
what changed. Being in the same transaction as the write and as the Idempotency-Key's
stored answer, a change is recorded exactly when it happened: a replayed request runs
nothing and records nothing; a write that changed nothing records nothing.

Actions: sellers ``create``, ``rename``, ``flag``, ``delete``, ``restore``, and (the
simulator) ``found`` (a new seller) and ``seen``; runs ``create``, ``start``, ``pause``,
``resume``, ``cancel``.
"""

from __future__ import annotations

import json
from typing import Any

from .core import Tx
from .records import now_ts

__all__ = ["author_of", "history", "record", "record_many"]

_INSERT = "INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?, ?)"


def author_of(tx: Tx) -> str | None:
    """The user id a transaction writes for (None: the server itself)."""
    return getattr(tx, "user_id", None)


def record(tx: Tx, entity: str, entity_id: str, action: str, rev: int,
           detail: dict[str, Any] | None = None, at: str | None = None) -> None:
    """File the change that took ``rev``."""
    tx.execute(_INSERT, (rev, entity, entity_id, action, author_of(tx), at or now_ts(),
                         json.dumps(detail or {}, ensure_ascii=False)))


def record_many(tx: Tx, entity: str, action: str, revs: list[tuple[str, int]],
                detail: dict[str, Any] | None = None, at: str | None = None) -> None:
    """File one change per ``(entity_id, rev)``, all with the same action and detail."""
    if not revs:
        return
    user, when = author_of(tx), at or now_ts()
    text = json.dumps(detail or {}, ensure_ascii=False)
    tx.executemany(_INSERT, [(rev, entity, entity_id, action, user, when, text)
                             for entity_id, rev in revs])


def history(conn: Any, entity_id: str) -> list[dict[str, Any]]:
    """The changes of one seller or run, oldest first: rev, at, action, user (a name, or
    None for the server's own simulator) and what changed."""
    rows = conn.execute(
        "SELECT c.rev, c.at, c.action, u.name, c.detail FROM changes c"
        " LEFT JOIN users u ON u.id = c.user_id WHERE c.entity_id = ? ORDER BY c.rev",
        (entity_id,),
    ).fetchall()
    return [{"rev": r[0], "at": r[1], "action": r[2], "user": r[3],
             "changes": json.loads(r[4])} for r in rows]
