"""One error shape for every answer that is not a success.

``{"detail": {"code": "...", "message": "..."}}``, for errors the routes raise
(:class:`Problem`), for request validation, for unknown paths and methods, and for
anything unexpected (500). ``error_responses`` documents the shape in OpenAPI for each
status a route can answer with.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ..storage.core import Busy

__all__ = ["ErrorBody", "Problem", "error_responses", "flat_routes", "install_handlers"]

log = logging.getLogger("sellerbench.server")

CODES_BY_STATUS = {
    400: "VALIDATION",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "DUPLICATE",
    413: "TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION",
    429: "RATE_LIMITED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

DESCRIPTIONS = {
    400: "Bad request: INVALID_CURSOR, or VALIDATION (a run with no category)",
    401: "UNAUTHORIZED: no bearer token, or one the server does not know",
    403: "FORBIDDEN: the token's user lacks the permission this endpoint needs",
    404: "NOT_FOUND: no such record (or it is deleted)",
    409: "DUPLICATE (name taken by a live seller) or INVALID_TRANSITION",
    422: "VALIDATION (malformed request) or IDEMPOTENCY_KEY_REUSED",
    429: "RATE_LIMITED: retry after the Retry-After header's seconds",
    503: "UNAVAILABLE: transient, retry",
}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error answer."""

    detail: ErrorDetail


class Problem(Exception):
    """An error answer: HTTP status, API.md code and a message saying what to do."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_json(status: int, code: str, message: str, headers: dict[str, str] | None = None):
    return JSONResponse(
        {"detail": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries: the error schema for each status given."""
    return {s: {"model": ErrorBody, "description": DESCRIPTIONS[s]} for s in statuses}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is malformed"


def flat_routes(routes: list[Any]) -> list[Any]:
    """The app's routes, with included routers opened (FastAPI keeps them nested; the
    routers here are included without prefixes, so their routes match as they are)."""
    flat: list[Any] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        flat += flat_routes(inner.routes) if inner is not None else [route]
    return flat


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first)."""
    by_path: dict[str, set[str]] = {}
    for route in flat_routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            by_path.setdefault(route.path, set()).update(getattr(route, "methods", ()) or ())
    if not by_path:
        return []
    # "/sellers/bulk" is served by its own route, not by "/sellers/{seller_id}"
    best = min(by_path, key=lambda path: path.count("{"))
    return sorted(by_path[best])


def install_handlers(app: FastAPI) -> None:
    """Route every error through the one shape."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return error_json(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_json(422, "VALIDATION", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = getattr(exc, "headers", None)
        if status == 400:  # FastAPI could not parse the body: malformed, so 422
            status, message = 422, f"the body is malformed: {message}"
        elif status == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif status == 405:
            allowed = _allowed_methods(request)
            message = f"{request.method} is not served here; use {', '.join(allowed)}"
            headers = {"Allow": ", ".join(allowed)}
        return error_json(status, CODES_BY_STATUS.get(status, "ERROR"), message, headers)

    @app.exception_handler(Busy)
    async def _busy(request: Request, exc: Busy) -> JSONResponse:
        # a database timeout (PostgreSQL: a busy pool or a slow statement): transient
        return error_json(503, "UNAVAILABLE", f"the database is busy ({exc}); retry",
                          {"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_json(500, "INTERNAL", "the server failed unexpectedly; retry later")
