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
     ├── QueryError               SQL over the cache was refused (it writes) or failed
     ├── MutationError            a seller change was refused before anything was queued
     ├── ExportError              an export could not be written
     └── UserError                a team server's user could not be added, revoked or rotated

Every message says what happened and what to do. A token never appears in a message,
a repr or a log line: errors carry the request's method and URL, never its headers.

In a notebook (IPython) a ``SellerbenchError`` shows as its message alone: the class name
and message, the cell line that raised it, and a hint that ``%tb`` prints the full
traceback (the frames inside sellerbench and the chained DuckDB/httpx error). IPython asks
the exception itself through ``_render_traceback_``; ``%tb`` asks it again, and then it
answers with the full traceback. Any other exception keeps IPython's usual traceback.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

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
    "QueryError",
    "RateLimitedError",
    "SellerbenchError",
    "ServerError",
    "SyncError",
    "TransportError",
    "UserError",
]


FULL_TRACEBACK_HINT = "full traceback: run %tb in the next cell"


class SellerbenchError(Exception):
    """Base of every error sellerbench raises on purpose."""

    def _render_traceback_(self) -> list[str]:
        """The lines IPython shows for this error in a cell: the message alone, or the
        whole traceback when ``%tb`` asks (see the module docstring)."""
        return _short_traceback(self)


def _short_traceback(exc: BaseException) -> list[str]:
    """What a cell shows for ``exc``: ``Name: message``, where in the cell, the hint."""
    shell = _ipython()
    if shell is not None and _asked_by_tb_magic():
        return list(shell.InteractiveTB.structured_traceback(
            type(exc), exc, exc.__traceback__))
    red, dim, plain = ("\x1b[0;31m", "\x1b[2m", "\x1b[0m") if shell is not None else ("", "", "")
    lines = [f"{red}{type(exc).__name__}{plain}: {exc}"]
    where = _cell_line(shell, exc.__traceback__)
    lines.append(f"{dim}{where + ' · ' if where else ''}{FULL_TRACEBACK_HINT}{plain}")
    return lines


def _ipython() -> Any:
    module = sys.modules.get("IPython")
    get = getattr(module, "get_ipython", None)
    return get() if get is not None else None


def _asked_by_tb_magic() -> bool:
    """True when IPython's ``%tb`` magic (IPython.core.magics.execution.tb) is rendering."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "tb" and code.co_filename.endswith(
                ("magics/execution.py", "magics\\execution.py")):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _cell_line(shell: Any, tb: TracebackType | None) -> str:
    """``In [3], line 2: wb.sync()`` for the last frame of the traceback in a cell."""
    compiler = getattr(shell, "compile", None)
    names = getattr(compiler, "_filename_map", None)
    if not isinstance(names, dict):
        return ""
    found = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename in names:
            import linecache

            text = linecache.getline(code.co_filename, tb.tb_lineno).strip()
            found = f"In [{names[code.co_filename]}], line {tb.tb_lineno}: {text}"
        tb = tb.tb_next
    return found


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


class QueryError(SellerbenchError):
    """SQL over the cache (``wb.sql``, ``%sql``, ``sellerbench sql``) was refused because
    it writes or changes a setting, or it failed; the message says what to use instead."""


class MutationError(SellerbenchError):
    """A seller change was refused before anything was applied or queued."""


class ExportError(SellerbenchError):
    """An export could not be written; nothing was left at the target path."""


class UserError(SellerbenchError):
    """A user of a team server could not be added, listed, revoked or rotated (an unknown
    or taken name, a bad role); nothing was changed."""
