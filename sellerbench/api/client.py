"""The API client: one method per endpoint of API.md over one keep-alive ``httpx.Client``.

    client = ApiClient("http://127.0.0.1:8765", token)
    client.features                      # frozenset from GET /health, fetched once
    page = client.sync_sellers(since_rev=0, limit=10_000)      # Page of Seller dicts
    table_page = client.sync_page("sellers", since_rev=0)      # TablePage: pyarrow.Table

Errors map onto ``errors.py``: 401/403 AuthError, 404 NotFoundError, 409 ConflictError,
400/422 ApiValidationError, 429 RateLimitedError, 5xx ServerError, no answer
TransportError, a body that breaks the contract ProtocolError. Each carries the request's
method and URL, never its headers: the token appears in no message, repr or log line.

Retries (exponential backoff with jitter, ``retries`` times) cover what a repeat cannot
make worse:

- a connection that never got through (refused, connect timeout): always retried;
- 429: always retried after ``Retry-After`` (the server did nothing);
- a request that may have been acted on (dropped connection, read timeout, 5xx): retried
  only when repeating it is harmless: reads, DELETE, writes that *set* a value (rename,
  explicit flag, bulk flag/delete/restore), and any write carrying an ``Idempotency-Key``
  when the server advertises ``idempotency``. Other writes (a create or a base-contract
  flag *toggle* without a key, run transitions) raise at once, so the caller decides:
  a TransportError says the outcome is unknown, a ServerError that the server failed.
"""

from __future__ import annotations

import contextlib
import copy
import email.utils
import random
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict
from urllib.parse import quote

import httpx
import orjson

from ..errors import (
    ApiError,
    ApiValidationError,
    AuthError,
    ConfigError,
    ConflictError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from ..schema import MAX_BATCH, CollectionRun, Seller
from ..settings import TIMEOUT, Secret
from .pages import RUN_SCHEMA, SELLER_SCHEMA, TablePage, parse_arrow_page, parse_json_page

__all__ = [
    "MAX_BULK",
    "RUN_SCHEMA",
    "SELLER_SCHEMA",
    "ApiClient",
    "BulkCreateResult",
    "Category",
    "CollectionRun",
    "Health",
    "Page",
    "RunList",
    "Seller",
    "TablePage",
]

Feed = Literal["sellers", "collection-runs"]
ARROW_STREAM = "application/vnd.apache.arrow.stream"
# The most ids (or names) one bulk call carries: the reference server's limit (a longer
# list is 422 VALIDATION). API.md names no limit for the origin; a bulk call it refuses
# is split into single calls, so nothing is lost there either.
MAX_BULK = MAX_BATCH

# -- records (Seller and CollectionRun: the contract's, schema.py) ------------------


class Category(TypedDict):
    id: str
    name: str
    department: str


class BulkCreateResult(TypedDict):
    success_count: int
    failed_count: int
    errors: list[str]
    created: NotRequired[list[Seller]]  # ext: the server advertises it by sending it


@dataclass(frozen=True)
class Health:
    status: str
    api_version: str
    features: frozenset[str]


@dataclass(frozen=True)
class Page:
    """One page of a sync feed, items as dicts."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    has_more: bool
    total_estimate: int | None
    max_rev: int | None = None


@dataclass(frozen=True)
class RunList:
    runs: list[CollectionRun]
    total: int


# -- the client ------------------------------------------------------------------------


class ApiClient:
    """A keep-alive client for one API server and one token."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = TIMEOUT,
        retries: int = 4,
        transport: httpx.BaseTransport | None = None,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
    ) -> None:
        token = Secret(token) if isinstance(token, str) else token  # before anything can raise
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.timeout = timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        # Shared with every with_options() view: the features seen, fetched once.
        self._shared: dict[str, frozenset[str] | None] = {"features": None}
        self._owner = True
        token = _checked_token(token)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=_timeout(timeout),
            transport=transport,
            limits=httpx.Limits(max_keepalive_connections=4, keepalive_expiry=30.0),
        )

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (a ``with_options`` view leaves them to its parent)."""
        if self._owner:
            self._http.close()

    def with_options(
        self, *, retries: int | None = None, timeout: float | None = None
    ) -> ApiClient:
        """A view of this client with other retries or timeout, sharing its connections.

        Settings are per view, never changed in place: an auto-push that wants one try
        per request takes ``client.with_options(retries=0)`` and every other thread's
        client keeps its retries (httpx clients are safe to share between threads).
        """
        view = copy.copy(self)
        view._owner = False
        if retries is not None:
            view.retries = retries
        if timeout is not None:
            view.timeout = timeout
        return view

    # -- features ---------------------------------------------------------------------

    @property
    def features(self) -> frozenset[str]:
        """The extensions the server advertises in GET /health (fetched once)."""
        known = self._shared["features"]
        if known is None:
            known = self._shared["features"] = self.health().features
        return known

    @property
    def known_features(self) -> frozenset[str] | None:
        """The features if already fetched, else None (no request)."""
        return self._shared["features"]

    def refresh_features(self) -> frozenset[str]:
        self._shared["features"] = None
        return self.features

    def health(self) -> Health:
        body = self._json("GET", "/health", safe=True)
        features = _expect(body, "features", list, "GET /health")
        if not all(isinstance(f, str) for f in features):
            raise self._protocol("GET", "/health", "'features' must be a list of strings")
        return Health(
            status=str(body.get("status", "")),
            api_version=str(body.get("api_version", "")),
            features=frozenset(features),
        )

    # -- sync feeds ---------------------------------------------------------------------

    def sync_sellers(
        self,
        cursor: str | None = None,
        limit: int | None = None,
        updated_since: datetime | str | None = None,
        include_deleted: bool | None = None,
        flagged: bool | None = None,
        since_rev: int | None = None,
    ) -> Page:
        """One page of GET /sync/sellers, items validated as Seller dicts."""
        params = _feed_params(cursor, limit, updated_since, include_deleted, flagged, since_rev)
        return self._dict_page("sellers", params, since_rev is not None)

    def sync_runs(
        self,
        cursor: str | None = None,
        limit: int | None = None,
        updated_since: datetime | str | None = None,
        include_deleted: bool | None = None,
        since_rev: int | None = None,
    ) -> Page:
        """One page of GET /sync/collection-runs, items validated as CollectionRun dicts."""
        params = _feed_params(cursor, limit, updated_since, include_deleted, None, since_rev)
        return self._dict_page("collection-runs", params, since_rev is not None)

    def sync_page(
        self,
        feed: Feed,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        updated_since: datetime | str | None = None,
        include_deleted: bool | None = None,
        since_rev: int | None = None,
        arrow: bool = False,
    ) -> TablePage:
        """One page of a sync feed parsed straight into Arrow (the bulk path of sync).

        ``arrow=True`` asks for an Arrow IPC stream (the ``arrow`` extension, rev feed only).
        The table has exactly the columns of the feed's schema, in order; unknown extra
        fields are dropped. A page that breaks the contract raises ProtocolError.
        """
        params = _feed_params(cursor, limit, updated_since, include_deleted, None, since_rev)
        headers = {"Accept": ARROW_STREAM} if arrow else None
        response = self._request("GET", f"/sync/{feed}", params=params, headers=headers, safe=True)
        fail = self._page_failure(feed, response)
        if arrow:
            return parse_arrow_page(feed, response.content, response.headers, fail=fail)
        return parse_json_page(feed, response.content, rev=since_rev is not None, fail=fail)

    # -- seller writes ------------------------------------------------------------------

    def create_seller(self, name: str, idempotency_key: str | None = None) -> Seller:
        body = self._json(
            "POST", "/sellers", json={"name": name}, key=idempotency_key, safe=False
        )
        return _record(body, "POST /sellers")

    def create_sellers_bulk(
        self, names: Sequence[str], idempotency_key: str | None = None
    ) -> BulkCreateResult:
        body = self._json(
            "POST", "/sellers/bulk", json={"names": list(names)}, key=idempotency_key, safe=False
        )
        for field in ("success_count", "failed_count"):
            _expect(body, field, int, "POST /sellers/bulk")
        _expect(body, "errors", list, "POST /sellers/bulk")
        return body

    def update_seller(
        self,
        seller_id: str,
        name: str | None = None,
        flagged: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Seller:
        """PATCH a seller: a new name and/or (ext ``flag_set``) a flag value."""
        payload: dict[str, Any] = {}
        if name is not None:
            payload["name"] = name
        if flagged is not None:
            payload["flagged"] = flagged
        path = f"/sellers/{_seg(seller_id)}"
        body = self._json("PATCH", path, json=payload, key=idempotency_key, safe=True)
        return _record(body, f"PATCH {path}")

    def delete_seller(self, seller_id: str, idempotency_key: str | None = None) -> None:
        self._request(
            "DELETE", f"/sellers/{_seg(seller_id)}", key=idempotency_key, safe=True
        )

    def delete_sellers_bulk(
        self, ids: Sequence[str], idempotency_key: str | None = None
    ) -> int:
        """Soft-delete many sellers; returns ``deleted_count``."""
        body = self._json(
            "POST", "/sellers/bulk/delete", json={"ids": list(ids)}, key=idempotency_key,
            safe=True,
        )
        return _expect(body, "deleted_count", int, "POST /sellers/bulk/delete")

    def flag_seller(
        self,
        seller_id: str,
        flagged: bool | None = None,
        idempotency_key: str | None = None,
    ) -> bool:
        """Flag a seller. ``flagged=None`` is the base contract's *toggle* (not retried
        after an unknown outcome); a value *sets* it (ext ``flag_set``). Returns the flag."""
        path = f"/sellers/{_seg(seller_id)}/flag"
        payload = None if flagged is None else {"flagged": flagged}
        body = self._json(
            "POST", path, json=payload, key=idempotency_key, safe=flagged is not None
        )
        return _expect(body, "flagged", bool, f"POST {path}")

    def flag_sellers_bulk(
        self, ids: Sequence[str], flagged: bool, idempotency_key: str | None = None
    ) -> int:
        """Set the flag of many sellers (ext ``bulk_flag``); returns ``updated_count``."""
        body = self._json(
            "POST", "/sellers/bulk/flag", json={"ids": list(ids), "flagged": flagged},
            key=idempotency_key, safe=True,
        )
        return _expect(body, "updated_count", int, "POST /sellers/bulk/flag")

    def restore_sellers_bulk(
        self, ids: Sequence[str], idempotency_key: str | None = None
    ) -> int:
        """Undo soft deletes (ext ``restore``); returns ``restored_count``."""
        body = self._json(
            "POST", "/sellers/bulk/restore", json={"ids": list(ids)}, key=idempotency_key,
            safe=True,
        )
        return _expect(body, "restored_count", int, "POST /sellers/bulk/restore")

    def seller_history(self, seller_id: str) -> list[dict[str, Any]]:
        """Every change of a seller, oldest first (ext ``history``): dicts with ``rev``,
        ``at``, ``action``, ``user`` (who made it; None: the server's run simulator) and
        ``changes``. A server without the extension raises NotFoundError saying so."""
        if "history" not in self.features:
            raise NotFoundError(
                "this server keeps no seller history (the 'history' extension of the "
                "sellerbench reference server); ask its admin who changed what",
                status=404, code="NOT_FOUND", method="GET",
                url=f"{self.base_url}/sellers/{seller_id}/history",
            )
        path = f"/sellers/{_seg(seller_id)}/history"
        body = self._json("GET", path, safe=True)
        return _expect(body, "items", list, f"GET {path}")

    # -- collection ----------------------------------------------------------------------

    def categories(self) -> list[Category]:
        body = self._json("GET", "/collection/categories", safe=True)
        return _expect(body, "categories", list, "GET /collection/categories")

    def list_runs(self, limit: int | None = None, offset: int | None = None) -> RunList:
        return self._run_list("/collection/runs", limit, offset)

    def run_history(self, limit: int | None = None, offset: int | None = None) -> RunList:
        return self._run_list("/collection/runs/history", limit, offset)

    def active_runs(self) -> RunList:
        return self._run_list("/collection/runs/active", None, None)

    def get_run(self, run_id: str) -> CollectionRun:
        path = f"/collection/runs/{_seg(run_id)}"
        return _record(self._json("GET", path, safe=True), f"GET {path}")

    def create_run(
        self, name: str, category_ids: Sequence[str], idempotency_key: str | None = None
    ) -> CollectionRun:
        body = self._json(
            "POST", "/collection/runs", json={"name": name, "category_ids": list(category_ids)},
            key=idempotency_key, safe=False,
        )
        return _record(body, "POST /collection/runs")

    def start_run(self, run_id: str) -> CollectionRun:
        return self._transition(run_id, "start")

    def pause_run(self, run_id: str) -> CollectionRun:
        return self._transition(run_id, "pause")

    def resume_run(self, run_id: str) -> CollectionRun:
        return self._transition(run_id, "resume")

    def cancel_run(self, run_id: str) -> CollectionRun:
        return self._transition(run_id, "cancel")

    def _transition(self, run_id: str, verb: str) -> CollectionRun:
        path = f"/collection/runs/{_seg(run_id)}/{verb}"
        return _record(self._json("POST", path, safe=False), f"POST {path}")

    def _run_list(self, path: str, limit: int | None, offset: int | None) -> RunList:
        params = {k: v for k, v in (("limit", limit), ("offset", offset)) if v is not None}
        body = self._json("GET", path, params=params, safe=True)
        runs = _expect(body, "runs", list, f"GET {path}")
        return RunList(runs=runs, total=_expect(body, "total", int, f"GET {path}"))

    # -- streaming (exports, activity stream) -------------------------------------------

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """Open a streamed response (checked: an error status raises, mapped).

        Opening is retried like any read; once the body flows, a failure raises
        TransportError and the caller resumes (Last-Event-ID) or starts again.
        """
        attempt = 0
        while True:
            request = self._http.build_request(
                method, path, params=params, headers=headers, timeout=_timeout(self.timeout)
            )
            try:
                response = self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                attempt = self._retry_or_raise(attempt, self._transport_error(exc, request))
                continue
            if response.status_code < 400:
                break
            try:
                response.read()
                error = self._status_error(response)
            finally:
                response.close()
            attempt = self._retry_or_raise(attempt, error, safe=method in ("GET", "HEAD"))
        try:
            yield response
        except httpx.TransportError as exc:
            raise self._transport_error(exc, request) from exc
        finally:
            response.close()

    # -- plumbing -------------------------------------------------------------------------

    def _dict_page(self, feed: str, params: dict[str, Any], rev: bool) -> Page:
        response = self._request("GET", f"/sync/{feed}", params=params, safe=True)
        fail = self._page_failure(feed, response)
        checked = parse_json_page(feed, response.content, rev=rev, fail=fail)  # one validation
        items = orjson.loads(response.content)["items"]
        return Page(
            items, checked.next_cursor, checked.has_more, checked.total_estimate, checked.max_rev
        )

    def _page_failure(self, feed: str, response: httpx.Response) -> Callable[[str], ApiError]:
        url = str(response.request.url)
        return lambda what: self._protocol("GET", url, f"the {feed} page {what}")

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = self._request(method, path, **kw)
        return self._decode(response)

    def _decode(self, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise self._protocol(
                response.request.method, str(response.request.url), f"the body is not JSON ({exc})"
            ) from exc

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        key: str | None = None,
        safe: bool,
    ) -> httpx.Response:
        """Send with retries; ``safe`` says repeating after an unknown outcome is harmless."""
        headers = dict(headers or {})
        if key is not None:
            headers["Idempotency-Key"] = key
            safe = safe or "idempotency" in self.features
        content = orjson.dumps(json) if json is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            request = self._http.build_request(
                method, path, params=params, content=content, headers=headers,
                timeout=_timeout(self.timeout),
            )
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                error = self._transport_error(exc, request)
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout |
                                      httpx.PoolTimeout)
                attempt = self._retry_or_raise(attempt, error, safe=safe or not sent)
                continue
            if response.status_code < 400:
                return response
            attempt = self._retry_or_raise(attempt, self._status_error(response), safe=safe)

    def _retry_or_raise(self, attempt: int, error: ApiError, *, safe: bool = True) -> int:
        """Sleep before the next attempt, or raise ``error`` when no retry may help."""
        rate_limited = isinstance(error, RateLimitedError)
        if not error.retryable or attempt >= self.retries or not (safe or rate_limited):
            if error.retryable and attempt >= self.retries and attempt:
                error.message += f"; gave up after {attempt + 1} attempts"
            elif error.retryable and not (safe or rate_limited):
                error.message += (
                    "; not retried, since repeating this write could apply it twice: "
                    "check the server's state before trying again"
                )
            raise error
        delay = min(self.max_backoff, self.backoff * 2**attempt)
        delay = random.uniform(delay / 2, delay)  # jitter: clients that failed together spread
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                raise error
            delay = max(delay, error.retry_after)
        time.sleep(delay)
        return attempt + 1

    def _transport_error(self, exc: httpx.TransportError, request: httpx.Request) -> ApiError:
        kind = type(exc).__name__
        return TransportError(
            f"no answer from the API ({kind}: {exc or 'connection dropped'}); check that the "
            f"server at {self.base_url} is up and reachable",
            method=request.method,
            url=str(request.url),
        )

    def _status_error(self, response: httpx.Response) -> ApiError:
        status = response.status_code
        code, message = _error_detail(response)
        where = {"method": response.request.method, "url": str(response.request.url)}
        if status == 401:
            return AuthError(
                f"the API refused the token ({message}); check SELLERBENCH_TOKEN or pass "
                f"token=...", status=status, code=code, **where,
            )
        if status == 403:
            return AuthError(
                f"the token lacks the permission this needs ({message}); use a token whose "
                f"user holds it", status=status, code=code, **where,
            )
        if status == 429:
            return RateLimitedError(
                f"rate limited ({message})", status=status, code=code,
                retry_after=_retry_after(response.headers.get("Retry-After")), **where,
            )
        kind: type[ApiError] = {
            404: NotFoundError,
            409: ConflictError,
            400: ApiValidationError,
            422: ApiValidationError,
        }.get(status, ServerError if status >= 500 else ApiError)
        return kind(message, status=status, code=code, **where)

    def _protocol(self, method: str, url: str, what: str) -> ProtocolError:
        if url.startswith("/"):
            url = self.base_url + url
        return ProtocolError(
            f"the API broke its contract: {what}", method=method, url=url
        )


# -- helpers -----------------------------------------------------------------------------


def _timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(seconds, 10.0))


def _checked_token(token: str) -> Secret:
    """The token without surrounding whitespace (a file's newline), or ConfigError.

    A character an HTTP header cannot carry would otherwise fail inside httpx/h11 with
    an error that quotes the whole header, token included (and as a retried "no answer").
    The message here says where the character is, never the token.
    """
    if not isinstance(token, str):
        raise ConfigError(f"the token must be a string, not {type(token).__name__}")
    token = Secret(token.strip())  # a Secret: this frame's locals may be printed
    if not token:
        raise ConfigError("the token is empty: pass token=... or set SELLERBENCH_TOKEN")
    for position, char in enumerate(token, 1):
        if not "!" <= char <= "~":  # visible ASCII only (RFC 6750 token characters)
            raise ConfigError(
                f"the token holds a character an HTTP header cannot carry (character "
                f"{position} of {len(token)}, {unicodedata.name(char, 'a control character')}"
                f"); copy it again without spaces or line breaks"
            )
    return token


def _seg(value: str) -> str:
    """One path segment, escaped so an id cannot reach another endpoint."""
    return quote(str(value), safe="")


def _feed_params(
    cursor: str | None,
    limit: int | None,
    updated_since: datetime | str | None,
    include_deleted: bool | None,
    flagged: bool | None,
    since_rev: int | None,
) -> dict[str, Any]:
    if isinstance(updated_since, datetime):
        updated_since = updated_since.isoformat().replace("+00:00", "Z")
    raw = {
        "cursor": cursor,
        "limit": limit,
        "updated_since": updated_since,
        "include_deleted": None if include_deleted is None else str(include_deleted).lower(),
        "flagged": None if flagged is None else str(flagged).lower(),
        "since_rev": since_rev,
    }
    return {k: v for k, v in raw.items() if v is not None}


def _error_detail(response: httpx.Response) -> tuple[str | None, str]:
    """The contract's (code, message), or a short excerpt of whatever came instead."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        text = response.text.strip().replace("\n", " ")[:200]
        return None, text or response.reason_phrase or "no details"
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        return detail.get("code"), str(detail.get("message") or detail.get("code") or detail)
    if detail is not None:
        return None, str(detail)[:200]
    return None, str(body)[:200]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def _expect(body: Any, field: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``body[field]``, checked to be of ``kind`` (a bool is not an int here)."""
    if not isinstance(body, dict):
        raise ProtocolError(f"the API broke its contract: {where} answered "
                            f"{type(body).__name__}, not an object")
    if field not in body:
        raise ProtocolError(f"the API broke its contract: {where} answered without {field!r}")
    value = body[field]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(
            f"the API broke its contract: {where} sent {field!r} as "
            f"{type(value).__name__}, expected {getattr(kind, '__name__', kind)}"
        )
    return value


def _record(body: Any, where: str) -> Any:
    _expect(body, "id", str, where)
    return body
