"""The permission matrix of API.md, and the callers that walk it.

``PERMISSIONS`` names, for every (method, path) the reference server serves, the
permission key API.md gives it (None: public). The security suite compares this table
with the server's own ``/openapi.json``, so an endpoint added without an entry here
fails the suite instead of escaping it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from sellerbench.server.embedded import EmbeddedServer
from sellerbench.server.http.auth import ADMIN, READ, WRITE, _hash
from sellerbench.server.storage.records import now_ts

PERMISSIONS: dict[tuple[str, str], str | None] = {
    ("GET", "/health"): None,
    ("GET", "/sync/sellers"): READ,
    ("GET", "/sync/collection-runs"): READ,
    ("GET", "/export/sellers/csv"): READ,
    ("GET", "/export/sellers/json"): READ,
    ("GET", "/collection/categories"): READ,
    ("GET", "/collection/runs"): READ,
    ("GET", "/collection/runs/history"): READ,
    ("GET", "/collection/runs/active"): READ,
    ("GET", "/collection/runs/{run_id}"): READ,
    ("GET", "/collection/runs/{run_id}/activity"): READ,
    ("POST", "/sellers"): WRITE,
    ("POST", "/sellers/bulk"): WRITE,
    ("PATCH", "/sellers/{seller_id}"): WRITE,
    ("DELETE", "/sellers/{seller_id}"): WRITE,
    ("POST", "/sellers/bulk/delete"): WRITE,
    ("POST", "/sellers/{seller_id}/flag"): WRITE,
    ("POST", "/sellers/bulk/flag"): WRITE,
    ("POST", "/sellers/bulk/restore"): WRITE,
    ("POST", "/collection/runs"): ADMIN,
    ("POST", "/collection/runs/{run_id}/start"): ADMIN,
    ("POST", "/collection/runs/{run_id}/pause"): ADMIN,
    ("POST", "/collection/runs/{run_id}/resume"): ADMIN,
    ("POST", "/collection/runs/{run_id}/cancel"): ADMIN,
    ("GET", "/sellers/{seller_id}/history"): READ,
    ("GET", "/users"): ADMIN,
    ("POST", "/users"): ADMIN,
    ("POST", "/users/{name}/revoke"): ADMIN,
    ("POST", "/users/{name}/rotate"): ADMIN,
}
# Extensions a --base-only server does not serve at all (404 there).
EXT_ONLY = {("POST", "/sellers/bulk/flag"), ("POST", "/sellers/bulk/restore"),
            ("GET", "/sellers/{seller_id}/history"), ("GET", "/users"), ("POST", "/users"),
            ("POST", "/users/{name}/revoke"), ("POST", "/users/{name}/rotate")}
# FastAPI's documentation routes: public, outside the schema, and serving no data.
DOC_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

# The permissions each caller holds: the three demo users, plus a user the suite adds
# with no permission at all (so read endpoints meet a 403 too).
HELD: dict[str, frozenset[str]] = {
    "viewer": frozenset({READ}),
    "analyst": frozenset({READ, WRITE}),
    "admin": frozenset({READ, WRITE, ADMIN}),
    "nobody": frozenset(),
}
# Callers the server must not know: no header, an unknown token, the admin's token
# under another scheme, an empty bearer.
STRANGERS = ("no token", "unknown token", "basic scheme", "empty bearer")


def add_user_without_permissions(server: EmbeddedServer) -> str:
    """A token for a user ``nobody`` holding no permission (a role the server does not
    know grants nothing); returns the token."""
    token = f"sb_nobody_{uuid.uuid4().hex}"
    with server.storage.write() as tx:
        tx.execute(
            "INSERT INTO users (id, name, permissions, role) VALUES (?, ?, ?, 'none')"
            " ON CONFLICT (id) DO NOTHING",
            ("user-nobody", "nobody", json.dumps([])),
        )
        tx.execute("INSERT INTO tokens VALUES (?, ?, ?)", (_hash(token), "user-nobody", now_ts()))
    return token


def schema_operations(url: str) -> set[tuple[str, str]]:
    """Every (METHOD, path) the server's /openapi.json documents."""
    schema = httpx.get(f"{url}/openapi.json", timeout=10).json()
    verbs = {"get", "post", "put", "patch", "delete", "head", "options"}
    return {(m.upper(), path) for path, ops in schema["paths"].items() for m in ops if m in verbs}


def auth_headers(caller: str, tokens: dict[str, str]) -> dict[str, str]:
    if caller == "no token":
        return {}
    if caller == "unknown token":
        return {"Authorization": f"Bearer sb_unknown_{uuid.uuid4().hex}"}
    if caller == "basic scheme":
        return {"Authorization": f"Basic {tokens['admin']}"}
    if caller == "empty bearer":
        return {"Authorization": "Bearer"}
    return {"Authorization": f"Bearer {tokens[caller]}"}


def request_for(method: str, path: str) -> dict[str, Any]:
    """A well-formed request that changes nothing shared: unknown ids, empty lists, a
    fresh seller name, a run with no category (refused with 400)."""
    concrete = path.replace("{seller_id}", str(uuid.uuid4())).replace(
        "{run_id}", str(uuid.uuid4())
    ).replace("{name}", f"nobody-{uuid.uuid4().hex[:8]}")
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/sellers"): {"name": f"matrix {uuid.uuid4().hex}"},
        ("POST", "/sellers/bulk"): {"names": []},
        ("PATCH", "/sellers/{seller_id}"): {"name": "matrix rename"},
        ("POST", "/sellers/bulk/delete"): {"ids": []},
        ("POST", "/sellers/bulk/flag"): {"ids": [], "flagged": True},
        ("POST", "/sellers/bulk/restore"): {"ids": []},
        ("POST", "/collection/runs"): {"name": "matrix run", "category_ids": []},
        ("POST", "/users"): {"name": f"matrix-{uuid.uuid4().hex[:8]}", "role": "viewer"},
    }
    request: dict[str, Any] = {"method": method, "url": concrete}
    if (method, path) in bodies:
        request["json"] = bodies[(method, path)]
    return request


@dataclass
class Verdict:
    """One cell of the matrix that went wrong."""

    method: str
    path: str
    caller: str
    status: int
    body: str

    def __str__(self) -> str:
        return f"{self.method} {self.path} as {self.caller}: {self.status} {self.body[:160]}"


def error_detail(response: httpx.Response) -> tuple[str, str] | None:
    """(code, message) of the contract's error shape, or None if the body is not it."""
    try:
        body = response.json()
    except ValueError:
        return None
    detail = body.get("detail") if isinstance(body, dict) else None
    if not (isinstance(body, dict) and set(body) == {"detail"} and isinstance(detail, dict)):
        return None
    if set(detail) != {"code", "message"}:
        return None
    return detail["code"], detail["message"]


def judge(
    method: str, path: str, caller: str, needs: str | None, response: httpx.Response
) -> Verdict | None:
    """None when the answer is what API.md prescribes for this caller, else a Verdict."""
    status = response.status_code
    wrong = Verdict(method, path, caller, status, response.text)
    if needs is None or (caller in HELD and needs in HELD[caller]):
        return wrong if status in (401, 403) or status >= 500 else None
    detail = error_detail(response)
    if caller in STRANGERS:
        ok = status == 401 and detail is not None and detail[0] == "UNAUTHORIZED"
        return None if ok and response.headers.get("WWW-Authenticate") == "Bearer" else wrong
    ok = status == 403 and detail is not None and detail[0] == "FORBIDDEN"
    # The message names the missing permission key and the user, never a token.
    return None if ok and needs in detail[1] and caller in detail[1] else wrong
