"""People of a team server: a user per person, each with a role and tokens of their own.

Used by ``sellerbench users`` (straight on the database, SQLite file or PostgreSQL URL)
and by the **ext** ``users`` routes (:mod:`..http.users`). The rules:

- a role names a set of permission keys (:data:`ROLES`, the one place they are listed);
- a token is ``sb_`` and 32 random bytes (URL-safe base64), shown once when made
  (``add``, ``rotate``); only its sha256 is stored;
- ``revoke`` removes every token of the user and marks the user revoked: the name stays
  (history keeps naming who changed what) and cannot be reused; ``rotate`` replaces every
  token of the user with one new token (a revoked user is rotated back in: that is how a
  revocation is undone);
- ``list`` gives name, role, created, last seen and revoked; never a token nor its hash.

Every refusal is :class:`~sellerbench.errors.UserError` with what to do; nothing is
changed then.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from dataclasses import dataclass

from ...errors import UserError
from .core import Storage, Tx
from .records import now_ts

__all__ = [
    "ADMIN",
    "READ",
    "ROLES",
    "WRITE",
    "NameTaken",
    "Person",
    "UnknownUser",
    "add_user",
    "hash_token",
    "list_users",
    "new_token",
    "revoke_user",
    "rotate_user",
]

READ = "seller_collection.read"
WRITE = "seller_collection.write"
ADMIN = "admin.automation"

ROLES: dict[str, tuple[str, ...]] = {
    "analyst": (READ, WRITE),
    "viewer": (READ,),
    "admin": (READ, WRITE, ADMIN),
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
NAME_RULE = "1-64 characters: letters, digits and . _ @ - (starting with a letter or digit)"


class UnknownUser(UserError):
    """No user has this name."""


class NameTaken(UserError):
    """A user (perhaps revoked) has this name already."""


@dataclass(frozen=True)
class Person:
    """A user as ``users list`` shows it (never a token)."""

    name: str
    role: str
    created_at: str | None
    last_seen_at: str | None
    revoked_at: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "role": self.role, "created_at": self.created_at,
                "last_seen_at": self.last_seen_at, "revoked_at": self.revoked_at}


def hash_token(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token(prefix: str = "sb_") -> str:
    return prefix + secrets.token_urlsafe(32)


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError(f"a user name is {NAME_RULE}; {name!r} is not")
    return name


def check_role(role: object) -> str:
    if role not in ROLES:
        raise UserError(f"a role is one of {', '.join(ROLES)}; {role!r} is not")
    return str(role)


def _user_id(tx: Tx, name: str) -> tuple[str, str | None]:
    row = tx.execute(
        f"SELECT id, revoked_at FROM users WHERE name = ?{tx.for_update}", (name,)
    ).fetchone()
    if row is None:
        raise UnknownUser(f"no user named {name!r} (see `sellerbench users list`)")
    return row[0], row[1]


def insert_user(tx: Tx, user_id: str, name: str, role: str, now: str) -> None:
    """The user row (the ``permissions`` column derived from the role, for older readers)."""
    tx.execute(
        "INSERT INTO users (id, name, permissions, role, created_at) VALUES (?, ?, ?, ?, ?)",
        (user_id, name, json.dumps(list(ROLES[role])), role, now),
    )


def add_token(tx: Tx, user_id: str, token: str, now: str) -> None:
    tx.execute("INSERT INTO tokens VALUES (?, ?, ?)", (hash_token(token), user_id, now))


def add_user(storage: Storage, name: str, role: str) -> str:
    """Create ``name`` with ``role``; its token (shown once, stored as a hash only)."""
    name, role = check_name(name), check_role(role)
    now = now_ts()
    token = new_token()
    with storage.write() as tx:
        tx.lock(f"user {name}")
        if tx.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise NameTaken(
                f"a user named {name!r} exists already (revoked names stay taken, so "
                "history keeps naming its changes); choose another name, or "
                f"`sellerbench users rotate {name}` for a new token"
            )
        user_id = f"user-{uuid.uuid4()}"
        insert_user(tx, user_id, name, role, now)
        add_token(tx, user_id, token, now)
    return token


def list_users(storage: Storage) -> list[Person]:
    """Every user, oldest first."""
    with storage.read() as conn:
        rows = conn.execute(
            "SELECT name, role, created_at, last_seen_at, revoked_at FROM users"
            " ORDER BY created_at, name"
        ).fetchall()
    return [Person(*row) for row in rows]


def revoke_user(storage: Storage, name: str) -> bool:
    """Take every token of ``name`` away; False when it was revoked already."""
    check_name(name)
    with storage.write() as tx:
        user_id, revoked = _user_id(tx, name)
        tx.execute("DELETE FROM tokens WHERE user_id = ?", (user_id,))
        if revoked is None:
            tx.execute("UPDATE users SET revoked_at = ? WHERE id = ?", (now_ts(), user_id))
    return revoked is None


def rotate_user(storage: Storage, name: str) -> str:
    """Replace every token of ``name`` by one new token (shown once); lifts a revocation."""
    check_name(name)
    token = new_token()
    with storage.write() as tx:
        user_id, _ = _user_id(tx, name)
        tx.execute("DELETE FROM tokens WHERE user_id = ?", (user_id,))
        tx.execute("UPDATE users SET revoked_at = NULL WHERE id = ?", (user_id,))
        add_token(tx, user_id, token, now_ts())
    return token
