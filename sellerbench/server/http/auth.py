"""Bearer tokens, users and permissions; the three demo users and their tokens file.

Only a sha256 of each token is stored. The plain tokens exist in the tokens file
(JSON ``{"analyst", "viewer", "admin"}``, mode 0600) and in the ``serve`` banner, and
are reused on the next start while the file still matches the database. The people of a
team (``sellerbench users``) are :mod:`..storage.people`.

Revocation that takes: :class:`TokenBook` remembers what the database said about a token
for at most :data:`REVALIDATE_SECONDS`, then asks again. A token revoked or rotated (by
the CLI, the admin API, or another server process) is therefore refused by every process
within that time plus one request, without a query per request. It also notes when a
user was last seen, in the database at most once per :data:`SEEN_EVERY_SECONDS` per user
and process. A role the server does not know (``ROLES``) grants nothing.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..storage.core import Storage
from ..storage.people import (
    ADMIN,
    READ,
    ROLES,
    WRITE,
    add_token,
    hash_token,
    insert_user,
    new_token,
)
from ..storage.records import now_ts

__all__ = [
    "ADMIN",
    "DEMO_USERS",
    "READ",
    "REVALIDATE_SECONDS",
    "WRITE",
    "TokenBook",
    "User",
    "ensure_demo_tokens",
]

DEMO_USERS: tuple[str, ...] = ("analyst", "viewer", "admin")  # each named after its role
REVALIDATE_SECONDS = 0.5
SEEN_EVERY_SECONDS = 60.0
_CACHE_LIMIT = 10_000  # entries: bounds memory against random-token floods


@dataclass(frozen=True)
class User:
    """The caller: who (``id``, ``name``), what they may do, and by which token."""

    id: str
    name: str
    permissions: frozenset[str]
    role: str = ""
    token_hash: str = ""

    def can(self, permission: str) -> bool:
        return permission in self.permissions


_hash = hash_token


class TokenBook:
    """Resolves bearer tokens to users, trusting what the database said for at most
    ``revalidate`` seconds."""

    def __init__(self, storage: Storage, revalidate: float = REVALIDATE_SECONDS) -> None:
        self._storage = storage
        self._revalidate = revalidate
        self._cache: dict[str, tuple[float, User | None]] = {}
        self._seen: dict[str, float] = {}  # user id -> when this process last wrote it
        self._lock = threading.Lock()

    def user_for(self, token: str) -> User | None:
        """The token's user, or None when the token is unknown or revoked."""
        return self.user_for_hash(_hash(token))

    def user_for_hash(self, digest: str) -> User | None:
        """:meth:`user_for` by the token's sha256 (``User.token_hash``)."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self._revalidate:
            return cached[1]
        with self._storage.read() as conn:
            row = conn.execute(
                "SELECT u.id, u.name, u.role FROM tokens t JOIN users u ON u.id = t.user_id"
                " WHERE t.token_hash = ? AND u.revoked_at IS NULL",
                (digest,),
            ).fetchone()
        user = None
        if row is not None:
            role = row[2]
            user = User(row[0], row[1], frozenset(ROLES.get(role, ())), role, digest)
        with self._lock:
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
            self._cache[digest] = (now, user)
        if user is not None:
            self._note_seen(user.id, now)
        return user

    def forget(self) -> None:
        """Drop everything remembered (the next request of each token asks the database)."""
        with self._lock:
            self._cache.clear()

    def _note_seen(self, user_id: str, now: float) -> None:
        with self._lock:
            if now - self._seen.get(user_id, -SEEN_EVERY_SECONDS) < SEEN_EVERY_SECONDS:
                return
            self._seen[user_id] = now
        try:
            with self._storage.write() as tx:
                tx.execute("UPDATE users SET last_seen_at = ? WHERE id = ?", (now_ts(), user_id))
        except Exception:  # "last seen" must never fail a request; try again next time
            with self._lock:
                self._seen.pop(user_id, None)


def _read_tokens_file(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if k in DEMO_USERS and isinstance(v, str)}


def _write_tokens_file(path: Path, tokens: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(tokens, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def ensure_demo_tokens(storage: Storage, tokens_file: str | Path) -> dict[str, str]:
    """Make sure the three demo users exist and hold working tokens; write the tokens file.

    Tokens in an existing file are kept when the database knows them, so a restarted
    server keeps working for notebooks that already read the file. A demo user revoked
    (``sellerbench users revoke analyst``) stays revoked: it gets no token and is left
    out of the file (``users rotate`` brings it back).
    """
    path = Path(tokens_file)
    known = _read_tokens_file(path)
    tokens: dict[str, str] = {}
    with storage.write() as tx:
        for name in DEMO_USERS:
            user_id = f"user-{name}"
            now = now_ts()
            row = tx.execute(
                "SELECT revoked_at FROM users WHERE id = ?", (user_id,)
            ).fetchone()
            if row is None:
                insert_user(tx, user_id, name, name, now)
            elif row[0] is not None:
                continue
            token = known.get(name)
            if token is not None:
                row = tx.execute(
                    "SELECT user_id FROM tokens WHERE token_hash = ?", (_hash(token),)
                ).fetchone()
                if row is not None and row[0] == user_id:
                    tokens[name] = token
                    continue
            token = new_token(f"sb_{name}_")
            add_token(tx, user_id, token, now)
            tokens[name] = token
    if tokens != known:
        _write_tokens_file(path, tokens)
    return tokens
