"""Who is who, over HTTP (**ext**, not served with ``--base-only``):

- ``users`` (``admin.automation``): ``GET /users`` (name, role, created, last seen,
  revoked; never a token), ``POST /users`` ``{"name", "role"}`` -> 201 with the token,
  shown this once, ``POST /users/{name}/revoke``, ``POST /users/{name}/rotate`` (-> the
  new token). An admin cannot revoke or rotate their own user here (422). The same
  rules as ``sellerbench users`` (:mod:`..storage.people`).
- ``history`` (``seller_collection.read``): ``GET /sellers/{id}/history``: every change of
  the seller, oldest first, each with the user who made it (None: the run simulator).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, Field

from ...errors import UserError
from ..storage import people
from ..storage.changes import history
from ..storage.core import Busy, Conflict, Duplicate
from ..storage.records import is_uuid
from .auth import User
from .deps import AdminUser, ReadUser, json_response, storage_of
from .models import Strict
from .problems import Problem, error_responses

__all__ = ["install"]

Role = Literal["analyst", "viewer", "admin"]


class PersonOut(BaseModel):
    name: str
    role: Role
    created_at: str | None
    last_seen_at: str | None
    revoked_at: str | None


class PersonList(BaseModel):
    users: list[PersonOut]


class NewUserBody(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$",
                      description=people.NAME_RULE)
    role: Role


class IssuedToken(BaseModel):
    name: str
    role: Role
    token: str = Field(description="shown this once; the server keeps only its sha256")


class Revoked(BaseModel):
    name: str
    revoked: bool = Field(description="false when the user was revoked already")


class Change(BaseModel):
    rev: int
    at: str
    action: str
    user: str | None = Field(description="who made the change; null: the run simulator")
    changes: dict[str, Any]


class SellerHistory(BaseModel):
    seller_id: str
    items: list[Change]


def install(app: FastAPI) -> None:
    if app.state.settings.ext:
        app.include_router(router)


router = APIRouter()
_ADMIN_ERRORS = error_responses(401, 403, 404, 409, 422, 429, 503)


def _people(call: Any, *args: Any) -> Any:
    """Run a people operation; its refusals as the contract's errors."""
    try:
        return call(*args)
    except people.UnknownUser as exc:
        raise Problem(404, "NOT_FOUND", str(exc)) from exc
    except people.NameTaken as exc:
        raise Problem(409, "DUPLICATE", str(exc)) from exc
    except UserError as exc:
        raise Problem(422, "VALIDATION", str(exc)) from exc
    except (Duplicate, Conflict) as exc:
        raise Problem(409, "DUPLICATE", "a concurrent request took this user name") from exc
    except Busy as exc:
        raise Problem(503, "UNAVAILABLE", f"the database is busy ({exc}); retry") from exc


def _not_yourself(caller: str, name: str, verb: str) -> None:
    """The API never takes away the token a request came with (the last admin would lock
    everyone out of it); the CLI, on the server's database, can."""
    if caller == name:
        raise Problem(422, "VALIDATION", f"an admin cannot {verb} their own user through the "
                      f"API; run `sellerbench users {verb} {name}` where the server runs")


def _role_of(request: Request, name: str) -> str:
    for person in people.list_users(storage_of(request)):
        if person.name == name:
            return person.role
    raise Problem(404, "NOT_FOUND", f"no user named {name!r}")


@router.get("/users", response_model=PersonList, tags=["users"],
            responses=error_responses(401, 403, 429, 503),
            summary="ext users: every user (never a token)")
def list_users(request: Request, _user: AdminUser) -> Response:
    found = _people(people.list_users, storage_of(request))
    return json_response({"users": [p.as_dict() for p in found]})


@router.post("/users", status_code=201, response_model=IssuedToken, tags=["users"],
             responses=_ADMIN_ERRORS, summary="ext users: add a user; its token, shown once")
def add_user(request: Request, body: NewUserBody, _user: AdminUser) -> Response:
    token = _people(people.add_user, storage_of(request), body.name, body.role)
    request.app.state.tokens.forget()
    return json_response({"name": body.name, "role": body.role, "token": token}, 201)


@router.post("/users/{name}/revoke", response_model=Revoked, tags=["users"],
             responses=_ADMIN_ERRORS,
             summary="ext users: take every token of a user away (refused within a second)")
def revoke_user(request: Request, name: str, user: AdminUser) -> Response:
    changed = _tokens_of(request, user, name, "revoke", people.revoke_user)
    return json_response({"name": name, "revoked": changed})


@router.post("/users/{name}/rotate", response_model=IssuedToken, tags=["users"],
             responses=_ADMIN_ERRORS,
             summary="ext users: replace a user's tokens with a new one, shown once")
def rotate_user(request: Request, name: str, user: AdminUser) -> Response:
    token = _tokens_of(request, user, name, "rotate", people.rotate_user)
    return json_response({"name": name, "role": _role_of(request, name), "token": token})


def _tokens_of(request: Request, user: User, name: str, verb: str, act: Any) -> Any:
    """Revoke or rotate ``name``'s tokens (never one's own); the token book forgets at
    once, so an old token is refused from the next request."""
    _not_yourself(user.name, name, verb)
    result = _people(act, storage_of(request), name)
    request.app.state.tokens.forget()
    return result


@router.get("/sellers/{seller_id}/history", response_model=SellerHistory, tags=["sellers"],
            responses=error_responses(401, 403, 404, 422, 429, 503),
            summary="ext history: every change of a seller and who made it, oldest first")
def seller_history(request: Request, seller_id: str, _user: ReadUser) -> Response:
    items: list[dict[str, Any]] = []
    found = None
    if is_uuid(seller_id):
        with storage_of(request).read() as conn:
            found = conn.execute("SELECT 1 FROM sellers WHERE id = ?", (seller_id,)).fetchone()
            if found is not None:
                items = history(conn, seller_id)
    if found is None:
        raise Problem(404, "NOT_FOUND", f"no seller with id {seller_id!r}")
    return json_response({"seller_id": seller_id, "items": items})
