"""Bearer tokens, users and permissions; the three demo users and their tokens file.

Only a sha256 of each token is stored. The plain tokens exist in the tokens file
(JSON ``{"analyst", "viewer", "admin"}``, mode 0600) and in the ``serve`` banner, and
are reused on the next start while the file still matches the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from ..storage.core import Storage
from ..storage.records import now_ts

__all__ = [
    "ADMIN",
    "DEMO_USERS",
    "READ",
    "WRITE",
    "TokenBook",
    "User",
    "ensure_demo_tokens",
]

READ = "seller_collection.read"
WRITE = "seller_collection.write"
ADMIN = "admin.automation"

DEMO_USERS: dict[str, tuple[str, ...]] = {
    "analyst": (READ, WRITE),
    "viewer": (READ,),
    "admin": (READ, WRITE, ADMIN),
}


@dataclass(frozen=True)
class User:
    id: str
    name: str
    permissions: frozenset[str]

    def can(self, permission: str) -> bool:
        return permission in self.permissions


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class TokenBook:
    """Resolves bearer tokens to users, caching what the database said."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._cache: dict[str, User | None] = {}
        self._lock = threading.Lock()

    def user_for(self, token: str) -> User | None:
        digest = _hash(token)
        with self._lock:
            if digest in self._cache:
                return self._cache[digest]
        with self._storage.read() as conn:
            row = conn.execute(
                "SELECT u.id, u.name, u.permissions FROM tokens t JOIN users u ON u.id = t.user_id"
                " WHERE t.token_hash = ?",
                (digest,),
            ).fetchone()
        user = User(row[0], row[1], frozenset(json.loads(row[2]))) if row else None
        with self._lock:
            if len(self._cache) > 10_000:  # bound memory against random-token floods
                self._cache.clear()
            self._cache[digest] = user
        return user


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
    server keeps working for notebooks that already read the file.
    """
    path = Path(tokens_file)
    known = _read_tokens_file(path)
    tokens: dict[str, str] = {}
    with storage.write() as tx:
        for name, permissions in DEMO_USERS.items():
            user_id = f"user-{name}"
            tx.execute(
                "INSERT INTO users VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE"
                " SET permissions = excluded.permissions",
                (user_id, name, json.dumps(list(permissions))),
            )
            token = known.get(name)
            if token is not None:
                row = tx.execute(
                    "SELECT user_id FROM tokens WHERE token_hash = ?", (_hash(token),)
                ).fetchone()
                if row is not None and row[0] == user_id:
                    tokens[name] = token
                    continue
            token = f"sb_{name}_{secrets.token_urlsafe(24)}"
            tx.execute(
                "INSERT INTO tokens VALUES (?, ?, ?)", (_hash(token), user_id, now_ts())
            )
            tokens[name] = token
    if tokens != known:
        _write_tokens_file(path, tokens)
    return tokens
