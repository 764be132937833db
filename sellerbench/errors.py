"""One exception tree for everything sellerbench raises on purpose.

    SellerbenchError
     ├── ConfigError              a setting is missing or malformed
     ├── CacheError               the local DuckDB cache cannot be used
     │    ├── CacheLockedError    another process holds the cache file
     │    ├── CacheVersionError   the file was written by a newer sellerbench
     │    └── CacheCorruptError   the file is truncated or not a cache
     ├── ApiError                 the API answered, or could not be reached
     │    ├── TransportError      network failure, timeout, dropped connection (retryable)
     │    ├── ServerError         5xx (retryable)
     │    ├── RateLimitedError    429, carries retry_after (retryable)
     │    ├── AuthError           401 / 403: wrong token or missing permission
     │    ├── NotFoundError       404
     │    ├── ConflictError       409: DUPLICATE or INVALID_TRANSITION
     │    ├── ApiValidationError  400 / 422: the request was malformed or refused
     │    └── ProtocolError       the response was not what the contract promises
     │         └── SyncError      a sync met a bad page (names it); the cache kept the pages before
     ├── MutationError            a seller change was refused before anything was queued
     ├── ExportError              an export could not be written
     └── UserError                a team server's user could not be added, revoked or rotated

Every message says what happened and what to do. A token never appears in a message,
a repr or a log line: errors carry the request's method and URL, never its headers.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "ApiValidationError",
    "AuthError",
    "CacheCorruptError",
    "CacheError",
    "CacheLockedError",
    "CacheVersionError",
    "ConfigError",
    "ConflictError",
    "ExportError",
    "MutationError",
    "NotFoundError",
    "ProtocolError",
    "RateLimitedError",
    "SellerbenchError",
    "ServerError",
    "SyncError",
    "TransportError",
    "UserError",
]


class SellerbenchError(Exception):
    """Base of every error sellerbench raises on purpose."""


class ConfigError(SellerbenchError):
    """A setting is missing or malformed."""


class CacheError(SellerbenchError):
    """The local DuckDB cache cannot be used."""


class CacheLockedError(CacheError):
    """Another process holds the cache file open for writing."""

    def __init__(self, message: str, *, path: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.pid = pid


class CacheVersionError(CacheError):
    """The cache file was written by a newer sellerbench than this one."""


class CacheCorruptError(CacheError):
    """The cache file is truncated, corrupt, or not a sellerbench cache."""


class ApiError(SellerbenchError):
    """The API answered with an error, or could not be reached.

    ``status`` is the HTTP status (None when no response arrived), ``code`` the
    contract's error code (``DUPLICATE``, ``VALIDATION`` ...), ``retryable`` whether
    trying the same request again can help.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.method = method
        self.url = url

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        status = f"{self.status} {self.code or ''}".strip() + ": " if self.status else ""
        return f"{status}{self.message}{where}"


class TransportError(ApiError):
    """The request never got an answer: connection refused or dropped, timeout."""

    retryable = True


class ServerError(ApiError):
    """The server answered 5xx."""

    retryable = True


class RateLimitedError(ApiError):
    """The server answered 429; ``retry_after`` is in seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class AuthError(ApiError):
    """401 (the token is wrong or missing) or 403 (a permission is missing)."""


class NotFoundError(ApiError):
    """404: the seller or run does not exist (or is deleted)."""


class ConflictError(ApiError):
    """409: a duplicate name, or a run transition that is not allowed."""


class ApiValidationError(ApiError):
    """400 / 422: the server refused the request as malformed."""


class ProtocolError(ApiError):
    """The response does not follow the contract (malformed page, wrong shape)."""


class SyncError(ProtocolError):
    """A sync met a malformed page; the message names the page (its request) and the
    cache keeps every page committed before it."""


class MutationError(SellerbenchError):
    """A seller change was refused before anything was applied or queued."""


class ExportError(SellerbenchError):
    """An export could not be written; nothing was left at the target path."""


class UserError(SellerbenchError):
    """A user of a team server could not be added, listed, revoked or rotated (an unknown
    or taken name, a bad role); nothing was changed."""
