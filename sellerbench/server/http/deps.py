"""What routes share: settings, the storage, the caller, JSON answers.

Routes get the storage and settings from ``request.app.state`` (set by ``create_app``),
and the caller from :func:`require`, which answers 401 for a missing or unknown token
and 403 for a user without the permission.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..storage.core import Storage
from .auth import ADMIN, READ, WRITE, TokenBook, User
from .problems import Problem

__all__ = [
    "AdminUser",
    "ReadUser",
    "ServerSettings",
    "WriteUser",
    "json_response", "require", "settings_of", "storage_of"]

API_VERSION = "1.0"
EXTENSIONS = (
    "rev_feed", "flag_set", "bulk_flag", "restore", "idempotency", "arrow", "users", "history",
)

bearer = HTTPBearer(auto_error=False, description="a token from the server's tokens file")


@dataclass
class ServerSettings:
    """How this server instance behaves; ``app.state.settings``."""

    base_only: bool = False
    run_speed: float = 1.0
    api_version: str = API_VERSION
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [] if self.base_only else list(EXTENSIONS)

    @property
    def ext(self) -> bool:
        return not self.base_only


def storage_of(request: Request) -> Storage:
    return request.app.state.storage


def settings_of(request: Request) -> ServerSettings:
    return request.app.state.settings


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """orjson straight to bytes: 10,000-row pages skip pydantic's response validation."""
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def require(permission: str) -> Callable[..., User]:
    """A dependency giving the calling user, who must hold ``permission``."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> User:
        if credentials is None or not credentials.credentials:
            raise Problem(
                401,
                "UNAUTHORIZED",
                "send 'Authorization: Bearer <token>' (tokens are in the server's tokens file)",
                {"WWW-Authenticate": "Bearer"},
            )
        book: TokenBook = request.app.state.tokens
        user = book.user_for(credentials.credentials)
        if user is None:
            raise Problem(
                401, "UNAUTHORIZED", "the token is not known to this server: it is mistyped, "
                "or was revoked or rotated; ask the server's admin for a token "
                "(`sellerbench users rotate NAME`)",
                {"WWW-Authenticate": "Bearer"},
            )
        if not user.can(permission):
            raise Problem(
                403, "FORBIDDEN", f"user '{user.name}' lacks the permission '{permission}'"
            )
        return user

    return dependency


# The caller, checked: use as a parameter type, ``user: ReadUser``.
ReadUser = Annotated[User, Depends(require(READ))]
WriteUser = Annotated[User, Depends(require(WRITE))]
AdminUser = Annotated[User, Depends(require(ADMIN))]
