"""Sending the queue: in order per seller, coalesced, idempotent, exactly once in effect.

One push is a few rounds. A round takes the *head* of every seller's queue (its oldest
pending change; later ones wait, so a seller's changes land in the order made, and a
follow-up of an offline create waits for the create), holds back a change that takes a
name while an older pending change still holds or frees that name, groups the rest into
calls (bulk where the server advertises it), and then:

1. writes down, in one transaction, that these calls are about to go (``attempts``,
   ``sent_at``; a bulk call's member list and key in ``batch``), so a crash or kill at
   any later point leaves a row saying "outcome unknown", never a silent gap;
2. sends them;
3. records the outcomes in one transaction, writing what the server confirmed into
   ``sellers`` (so the seller does not flicker back when the row leaves the queue).

Outcomes: confirmed -> ``done``. A 4xx -> ``failed`` with the reason (a bulk call that
gets one is split into single calls first, so one bad row cannot sink the others).
No answer, 5xx -> stays pending, *uncertain*, with backoff. 429 -> stays pending,
known not applied, retried after ``Retry-After``.

Exactly once, by contract level:

- **ext** (``idempotency``): every call carries an Idempotency-Key derived from the
  mutation id (a bulk call: from its sorted member ids, fixed in ``batch`` before the
  first send), so an uncertain call is re-sent as the same request and the server
  answers from its ledger instead of acting twice.
- **base**: no keys, flags only *toggle*, no restore. A set-style write (rename,
  delete) is simply repeated. A toggle is never repeated blindly: after an unknown
  outcome, or when the cache already shows the target value, the seller's current
  state is read first (GET /sync/sellers?updated_since=<a server time from before the
  send>: a write we cannot see there did not happen), and the toggle is sent only if
  it is still needed; its answer (the new value) is checked. A create after an unknown
  outcome looks for the name the same way before trying again. A restore becomes a
  re-create by name (a new id) plus, when the seller was flagged, a flag.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from ..api.client import MAX_BULK
from ..errors import (
    ApiError,
    AuthError,
    ConflictError,
    MutationError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from ..schema import BASE_LIMIT
from ..settings import PUSH
from .outcomes import (
    Call,
    Mut,
    Outcome,
    Result,
    read_heads,
    record,
    registered,
    sellers_touched,
)
from .report import LEASE, PushReport, claim_lease, progress_bar, renew_lease
from .result import TOUCH_LIMIT

if TYPE_CHECKING:
    from ..api.client import ApiClient
    from ..cache.store import Store

__all__ = ["IN_FLIGHT", "MAX_BULK", "Backoff", "PushReport", "has_pending", "push"]

TRANSIENT = (TransportError, ServerError, ProtocolError)
IN_FLIGHT = PUSH.in_flight
SCAN_PAGE = BASE_LIMIT  # the base contract's largest page
MAX_SCAN_PAGES = 2_000  # a look-up reads at most this many pages, then retries later
_FLUSH_EVERY = 2.0  # seconds between outcome flushes within a round (crash safety)
_STORM = 6  # consecutive transient failures that end a round early (likely offline)


@dataclass(frozen=True)
class Backoff:
    """Delay before retrying a change that failed transiently: base * 2**(n-1), capped."""

    base: float = 0.5
    cap: float = 60.0

    def delay(self, attempts: int) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        return random.uniform(ceiling / 2, ceiling)  # jitter: retries of many do not align


# -- the public entry point ------------------------------------------------------------------


def push(
    store: Store,
    client: ApiClient,
    *,
    wait: float = PUSH.wait,
    coalesce: bool = PUSH.coalesce,
    backoff: Backoff | None = None,
    retry_now: bool = PUSH.retry_now,
    chunk: int = PUSH.chunk,
    in_flight: int = PUSH.in_flight,
    progress: bool = True,
    max_rounds: int = 10_000,
) -> PushReport:
    """Send the queue of ``store`` through ``client``; returns a PushReport (``touched``:
    the sellers whose visible rows it changed). Transient trouble never raises here.

    ``wait``: seconds this call may spend waiting for changes in backoff to come due.
    ``coalesce``: bulk calls where the server offers them (False: one call per change).
    ``retry_now``: ignore the backoff left by earlier pushes (an explicit push).
    ``chunk``: changes per bulk call (the API's largest, ``MAX_BULK``); ``in_flight``:
    calls under way at once; ``progress``: a progress bar once a push takes over 1 s.
    Raises AuthError when the token may not write (nothing is lost: all stays queued).
    The caller serializes pushes of one file in this process (``Workbench``); the lease
    in ``meta`` keeps out other processes.
    """
    if store.read_only:
        raise MutationError("this cache is open read-only; reopen it read-write to push")
    pusher = Pusher(store, client, backoff=backoff or Backoff(), coalesce=coalesce,
                    chunk=min(max(1, chunk), MAX_BULK), in_flight=max(1, in_flight))
    started = time.monotonic()
    try:
        with progress_bar(progress) as pusher.progress:
            pusher.run(wait=wait, retry_now=retry_now, max_rounds=max_rounds)
    finally:
        pusher.report.seconds = time.monotonic() - started
        pusher.report.still_pending = _finish(store, release=pusher.leased)
        pusher.report.touched = (
            frozenset(pusher.touched) if len(pusher.touched) <= TOUCH_LIMIT else None)
    return pusher.report


def has_pending(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the queue holds anything to push (one cheap read)."""
    return bool(con.execute(
        "SELECT EXISTS (SELECT 1 FROM mutations WHERE state = 'pending')"
    ).fetchall()[0][0])


def _finish(store: Store, *, release: bool) -> int:
    """Release our lease (if held); how many changes are still pending."""
    with store.transaction() as con:
        if release:
            con.execute(
                "DELETE FROM meta WHERE key = ? AND value LIKE ?", [LEASE, f"{os.getpid()} %"]
            )
        query = "SELECT count(*) FROM mutations WHERE state = 'pending'"
        return con.execute(query).fetchall()[0][0]


# -- the engine -----------------------------------------------------------------------------


class Pusher:
    def __init__(
        self, store: Store, client: ApiClient, *, backoff: Backoff, coalesce: bool,
        chunk: int, in_flight: int,
    ) -> None:
        self.store = store
        self.client = client
        self.backoff = backoff
        self.coalesce = coalesce
        self.chunk = chunk
        self.in_flight = in_flight
        self.progress: Any = None  # the progress bar (push() sets it)
        self.report = PushReport()
        self.leased = False
        self.features: frozenset[str] = frozenset()
        self.touched: set[str] = set()  # sellers whose visible rows this push changed

    # -- rounds ----------------------------------------------------------------------

    def run(self, *, wait: float, retry_now: bool, max_rounds: int) -> None:
        try:
            self.features = self.client.features
        except (*TRANSIENT, RateLimitedError) as exc:
            self.report.note = f"the API is not reachable now ({exc}); changes stay queued"
            return
        with self.store.transaction() as con:
            holder = claim_lease(con)
            if holder is not None:
                self.report.note = (
                    f"{holder} is pushing this cache right now; its changes and yours go out "
                    f"with it (push again once it is done)"
                )
                return
            self.leased = True
            if retry_now:
                con.execute(
                    "UPDATE mutations SET next_attempt_at = NULL "
                    "WHERE state = 'pending' AND next_attempt_at IS NOT NULL"
                )
            heads = read_heads(con)
        self.progress.total = len(heads)
        deadline = time.monotonic() + wait
        for _ in range(max_rounds):
            progressed = None
            if heads:
                progressed, heads = self._round(heads)
            if progressed is False:
                return  # the API stopped answering: leave the rest for later
            if progressed:
                continue
            with self.store.connect() as con:
                due = self._next_due(con)
            if due is None or due > deadline:
                return
            time.sleep(max(0.0, due - time.monotonic()))
            with self.store.connect() as con:
                heads = read_heads(con)

    def _next_due(self, con: duckdb.DuckDBPyConnection) -> float | None:
        row = con.execute(
            "SELECT min(next_attempt_at) FROM mutations WHERE state = 'pending'"
        ).fetchall()[0]
        if row[0] is None:
            return None
        return time.monotonic() + (row[0] - datetime.now(UTC)).total_seconds()

    def _round(self, heads: list[Mut]) -> tuple[bool | None, list[Mut]]:
        """Send one round. Returns (True if it did something, None if nothing was ready,
        False when the API stopped answering; the next round's heads)."""
        outcomes: list[Outcome] = []
        need_read = [m for m in heads if self._needs_read(m)]
        if need_read:
            outcomes += self._look_up(need_read)
        settled = {m.id for o in outcomes for m in o.muts if o.result != Result.RESOLVED}
        calls = self._plan([m for m in heads if m.id not in settled])
        with self.store.transaction() as con:
            # 'resolved' outcomes only refresh the cached server rows.
            self._record(con, outcomes)
            calls = self._still_pending(con, calls)
            if calls:
                self._mark_sending(con, calls)
            else:
                heads = read_heads(con)
        if not calls:
            return (True if any(o.result != Result.RESOLVED for o in outcomes) else None), heads
        return self._send(calls)

    # -- what needs the server's state first (base contract) --------------------------------

    @property
    def _idempotent(self) -> bool:
        return "idempotency" in self.features

    def _toggles(self) -> bool:
        return "flag_set" not in self.features

    def _recreates(self, m: Mut) -> bool:
        """A restore the server cannot do: step 0 re-creates by name, step 1+ flags."""
        return m.kind == "restore" and "restore" not in self.features

    def _is_flag(self, m: Mut) -> bool:
        return m.kind == "flag" or (self._recreates(m) and m.step >= 1)

    def _is_create(self, m: Mut) -> bool:
        return m.kind == "create" or (self._recreates(m) and m.step == 0)

    def _needs_read(self, m: Mut) -> bool:
        if self._is_flag(m) and self._toggles():
            uncertain = m.sent_at is not None and not self._idempotent
            already = m.sent_at is None and m.server_flagged == m.flagged
            return uncertain or already
        if self._is_create(m):
            # step >= 1 on a create: the server said it landed without saying its id.
            landed = m.kind == "create" and m.step >= 1
            return landed or (m.sent_at is not None and not self._idempotent)
        return False

    def _look_up(self, muts: list[Mut]) -> list[Outcome]:
        """Read the server's current rows for ``muts`` (base contract: by time window)."""
        anchors = [m.anchor if m.sent_at is not None else m.server_updated for m in muts]
        known = [a for a in anchors if a is not None]
        since = min(known) if len(known) == len(anchors) else None
        want_ids = {m.seller_id for m in muts if self._is_flag(m)}
        want_names = {m.normalized for m in muts if self._is_create(m) and m.normalized}
        try:
            by_id, by_name = self._scan(since, want_ids, want_names)
        except AuthError:
            raise
        except (*TRANSIENT, RateLimitedError, ApiError) as exc:
            return [self._transient(muts, f"could not read the server's state: {exc}")]
        out: list[Outcome] = []
        for m in muts:
            if self._is_flag(m):
                out.append(self._settle_flag(m, by_id.get(m.seller_id)))
            else:
                out.append(self._settle_create(m, by_name.get(m.normalized or "")))
        return out

    def _scan(
        self, since: datetime | None, ids: set[str], names: set[str]
    ) -> tuple[dict[str, dict], dict[str, dict]]:
        by_id: dict[str, dict] = {}
        by_name: dict[str, dict] = {}
        cursor = None
        for _ in range(MAX_SCAN_PAGES):
            page = self.client.sync_sellers(
                cursor=cursor, limit=SCAN_PAGE, updated_since=since, include_deleted=True
            )
            self.report.reads += 1
            for item in page.items:  # newest first: the first sight of an id is its state
                by_id.setdefault(item["id"], item)
                if item["deleted_at"] is None and item["normalized_name"] in names:
                    by_name.setdefault(item["normalized_name"], item)
            if (ids <= by_id.keys() and names <= by_name.keys()) or not page.has_more:
                return {i: by_id[i] for i in ids if i in by_id}, by_name
            cursor = page.next_cursor
        raise TransportError("the look-up of the server's state is too long; will retry")

    def _settle_flag(self, m: Mut, row: dict | None) -> Outcome:
        """After a look-up: done if the server holds the value, else a toggle is due."""
        rows = [row] if row is not None else []
        if row is not None:
            m.server_flagged, m.server_deleted = bool(row["flagged"]), row["deleted_at"] is not None
            m.server_updated = _parse_ts(row["updated_at"])
        if m.server_deleted:
            return Outcome([m], Result.FAILED, _gone(m), rows=rows)
        m.resolved, m.sent_at, m.anchor = True, None, None
        if m.server_flagged == m.flagged:
            return Outcome([m], Result.DONE, rows=rows, flags={m.seller_id: bool(m.flagged)})
        return Outcome([m], Result.RESOLVED, rows=rows)

    def _settle_create(self, m: Mut, row: dict | None) -> Outcome:
        if row is not None:
            return self._created(m, row)
        if m.kind == "create" and m.step >= 1:
            return Outcome(
                [m], Result.FAILED,
                f"the server reported {m.name!r} created, but it is gone again (renamed "
                f"or deleted by someone else)",
            )
        m.resolved, m.sent_at, m.anchor = True, None, None
        return Outcome([m], Result.RESOLVED)

    def _created(self, m: Mut, row: dict) -> Outcome:
        """A create (or base re-create) landed as ``row``; a restore may still owe a flag."""
        outcome = Outcome([m], Result.DONE, rows=[row], moved={m.id: row["id"]})
        if m.kind == "restore" and m.flagged and not row["flagged"]:
            outcome.result = Result.ADVANCE
        return outcome

    # -- planning calls -------------------------------------------------------------------

    def _plan(self, heads: list[Mut]) -> list[Call]:
        calls: list[Call] = []
        batches: dict[str, list[Mut]] = {}
        loose: dict[tuple[str, object], list[Mut]] = {}
        for m in heads:
            if m.batch is not None:
                batches.setdefault(m.batch, []).append(m)
                continue
            action = self._action(m)
            group: tuple[str, object] = (action, m.flagged if action == "flag_bulk" else None)
            # Sent alone before with no answer: again alone, as the same request (its key
            # must meet the same body, or a create could land twice).
            alone = m.solo or not self.coalesce or (m.sent_at is not None and not m.resolved)
            if action.endswith("_bulk") and alone:
                group = (action, m.id)
            loose.setdefault(group, []).append(m)
        for key, muts in batches.items():
            if len(muts) == muts[0].batch_size:  # never a part: same key, same body
                calls.append(self._call(_BULK[muts[0].kind], muts, key))
        for (action, _), muts in loose.items():
            for start in range(0, len(muts), self.chunk if action.endswith("_bulk") else 1):
                part = muts[start : start + (self.chunk if action.endswith("_bulk") else 1)]
                calls.append(self._call(action, part, None))
        calls.sort(key=lambda c: c.muts[0].seq)
        return calls

    def _action(self, m: Mut) -> str:
        ext = self.features
        if self._is_flag(m):
            if "flag_set" not in ext:
                return "toggle"
            return "flag_bulk" if "bulk_flag" in ext and self.coalesce and not m.solo else "flag"
        if m.kind == "rename":
            return "rename"
        if m.kind == "delete":
            return "delete_bulk" if self.coalesce and not m.solo else "delete"
        if m.kind == "restore":
            return "restore_bulk" if "restore" in ext else "recreate"
        bulk_create = self._idempotent and self.coalesce and not m.solo
        return "create_bulk" if bulk_create else "create"

    def _call(self, action: str, muts: list[Mut], key: str | None) -> Call:
        """A call; a bulk call of one (not a required bulk endpoint) goes out single."""
        if action in ("flag_bulk", "delete_bulk", "create_bulk") and len(muts) == 1 and not key:
            action = action.removesuffix("_bulk")
        if key is None and self._idempotent:
            if action.endswith("_bulk"):
                digest = hashlib.sha256(",".join(sorted(m.id for m in muts)).encode())
                key = f"sb-bulk-{digest.hexdigest()[:48]}"
            else:
                m = muts[0]
                key = f"sb-{m.id}" + (f"-{m.step}" if m.step else "")
        return Call(action, muts, key, muts[0].flagged)

    # -- sending ------------------------------------------------------------------------

    @staticmethod
    def _still_pending(con: duckdb.DuckDBPyConnection, calls: list[Call]) -> list[Call]:
        """The calls all of whose changes are still pending, read in the transaction that
        marks them sent: an undo in another thread (or kernel) may have taken one back
        since the heads were read, and a change taken back must never go out."""
        ids = pa.table({"id": pa.array([m.id for call in calls for m in call.muts], pa.string())})
        if not ids.num_rows:
            return calls
        with registered(con, "_calling", ids):
            rows = con.execute(
                "SELECT id FROM mutations WHERE state = 'pending' "
                "AND id IN (SELECT id FROM _calling)"
            ).fetchall()
        pending = {r[0] for r in rows}
        return [c for c in calls if all(m.id in pending for m in c.muts)]

    def _mark_sending(self, con: duckdb.DuckDBPyConnection, calls: list[Call]) -> None:
        """Before anything goes out: attempts, 'sent, outcome unknown', batch, anchor."""
        need_anchor = not self._idempotent
        # A time the server has passed (base look-ups): its newest timestamp we hold.
        newest = con.execute("SELECT max(updated_at) FROM sellers").fetchall()[0][0]
        now = datetime.now(UTC)
        ids, batches, sent, anchors = [], [], [], []
        for call in calls:
            for m in call.muts:
                ids.append(m.id)
                batches.append(call.key if call.bulk else None)
                fresh = m.sent_at is None or m.resolved
                sent.append(now if fresh else m.sent_at)
                anchor = m.server_updated if self._is_flag(m) else newest
                anchors.append((anchor if fresh else m.anchor) if need_anchor else None)
        table = pa.table(
            {
                "id": pa.array(ids, pa.string()),
                "batch": pa.array(batches, pa.string()),
                "sent_at": pa.array(sent, pa.timestamp("us", tz="UTC")),
                "anchor": pa.array(anchors, pa.timestamp("us", tz="UTC")),
            }
        )
        with registered(con, "_sending", table):
            con.execute(
                "UPDATE mutations SET attempts = attempts + 1, sent_at = s.sent_at, "
                "anchor = s.anchor, batch = coalesce(s.batch, mutations.batch) "
                "FROM _sending s WHERE mutations.id = s.id"
            )

    def _send(self, calls: list[Call]) -> tuple[bool, list[Mut]]:
        """Make the calls, ``in_flight`` at a time, recording outcomes as they come (at
        least every 2 s); returns (False if the API stopped answering, the next heads).

        A 429 or a storm of transient failures stops new calls (those in flight finish);
        the calls never made are recorded as not sent."""
        outcomes: list[Outcome] = []
        flushed = time.monotonic()
        storm, alive, stop = 0, True, False
        denied: AuthError | None = None
        retry_after: float | None = None
        waiting = iter(calls)
        running: dict[Future[Outcome], Call] = {}
        with ThreadPoolExecutor(self.in_flight, "sellerbench-push-call") as pool:
            while True:
                while not stop and len(running) < self.in_flight:
                    call = next(waiting, None)
                    if call is None:
                        break
                    running[pool.submit(self._execute, call)] = call
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    call = running.pop(future)
                    self._counted(call)
                    try:
                        outcome = future.result()
                    except AuthError as exc:
                        denied, stop = exc, True
                        outcome = Outcome(call.muts, Result.UNSENT, str(exc))
                    outcomes.append(outcome)
                    self.progress.update(len(call.muts))
                    failing = outcome.result in (Result.UNCERTAIN, Result.RETRY)
                    storm = storm + 1 if failing else 0
                    if outcome.result == Result.RETRY or storm >= _STORM:
                        # Rate limited, or the API keeps failing: stop hammering.
                        if not stop and outcome.result == Result.RETRY:
                            retry_after = outcome.retry_after
                        alive = alive and outcome.result == Result.RETRY
                        stop = True
                if time.monotonic() - flushed > _FLUSH_EVERY:
                    with self.store.transaction() as con:
                        self._record(con, outcomes)
                    outcomes, flushed = [], time.monotonic()
        unsent = [Outcome(c.muts, Result.UNSENT) for c in waiting]
        if retry_after and denied is None:
            self._defer(unsent, retry_after)
        outcomes += unsent
        with self.store.transaction() as con:
            self._record(con, outcomes)
            heads = read_heads(con)
        if denied is not None:
            raise denied
        return alive, heads

    def _defer(self, outcomes: list[Outcome], seconds: float) -> None:
        for o in outcomes:
            if o.result == Result.UNSENT:
                o.retry_after = seconds

    def _counted(self, call: Call) -> None:
        self.report.calls += 1
        self.report.sent += len(call.muts)
        if call.bulk:
            self.report.coalesced += 1

    def _execute(self, call: Call) -> Outcome:
        """One call's outcome (runs on a worker thread; AuthError passes through)."""
        try:
            return self._dispatch(call)
        except AuthError:
            raise
        except RateLimitedError as exc:
            return Outcome(call.muts, Result.RETRY, str(exc), retry_after=exc.retry_after)
        except TRANSIENT as exc:
            return self._transient(call.muts, str(exc))
        except ApiError as exc:
            return self._refused(call, exc)

    def _transient(self, muts: list[Mut], error: str) -> Outcome:
        return Outcome(muts, Result.UNCERTAIN, error)

    def _refused(self, call: Call, exc: ApiError) -> Outcome:
        """A 4xx: split a bulk call into single ones, else this change failed for good."""
        if len(call.muts) > 1:
            return Outcome(call.muts, Result.SPLIT, str(exc))
        (m,) = call.muts
        if isinstance(exc, ConflictError) and self._is_create(m):
            if m.sent_at is not None and not m.resolved and not self._idempotent:
                # Our own earlier, unanswered create may hold the name: look it up next.
                return Outcome([m], Result.UNCERTAIN, str(exc), retry_after=0.0)
            return Outcome([m], Result.FAILED, f"the name {m.name!r} is taken on the server")
        if isinstance(exc, NotFoundError) and m.kind == "delete":
            return Outcome([m], Result.DONE, deleted=[m.seller_id])  # gone is what was asked
        if isinstance(exc, NotFoundError):
            return Outcome([m], Result.FAILED, _gone(m))
        if isinstance(exc, ConflictError) and m.kind in ("rename", "restore"):
            return Outcome([m], Result.FAILED, f"the name {m.name!r} is taken on the server")
        return Outcome([m], Result.FAILED, f"the server refused {m.label}: {exc}")

    def _dispatch(self, call: Call) -> Outcome:
        c, key, muts = self.client, call.key, call.muts
        m = muts[0]
        ids = [x.seller_id for x in muts]
        if call.action == "flag":
            row = c.update_seller(m.seller_id, flagged=m.flagged, idempotency_key=key)
            return Outcome(muts, Result.DONE, rows=[dict(row)])
        if call.action == "flag_bulk":
            changed = c.flag_sellers_bulk(ids, bool(call.flagged), idempotency_key=key)
            # The server skips sellers that are gone: a count other than the cache
            # predicts means one of them may be; single calls will say which.
            expected = sum(x.server_flagged != call.flagged for x in muts)
            if changed != expected and len(muts) > 1:
                return Outcome(muts, Result.SPLIT, f"bulk flag changed {changed} of {expected}")
            return Outcome(muts, Result.DONE, flags={i: bool(call.flagged) for i in ids})
        if call.action == "toggle":
            value = c.flag_seller(m.seller_id, None, idempotency_key=key)
            result = Result.DONE if value == m.flagged else Result.ADVANCE
            return Outcome(muts, result, flags={m.seller_id: value})
        if call.action == "rename":
            return Outcome(muts, Result.DONE, rows=[dict(c.update_seller(m.seller_id, name=m.name,
                                                                     idempotency_key=key))])
        if call.action == "delete":
            c.delete_seller(m.seller_id, idempotency_key=key)
            return Outcome(muts, Result.DONE, deleted=ids)
        if call.action == "delete_bulk":
            c.delete_sellers_bulk(ids, idempotency_key=key)
            return Outcome(muts, Result.DONE, deleted=ids)
        if call.action == "restore_bulk":
            c.restore_sellers_bulk(ids, idempotency_key=key)
            return Outcome(muts, Result.DONE, restored=ids)
        if call.action in ("create", "recreate"):
            return self._created(m, dict(c.create_seller(m.name or "", idempotency_key=key)))
        if call.action == "create_bulk":
            names = [x.name or "" for x in muts]
            return self._bulk_created(muts, c.create_sellers_bulk(names, key))
        raise AssertionError(f"unknown push action {call.action}")

    def _bulk_created(self, muts: list[Mut], result: Any) -> Outcome:
        created = result.get("created")
        if created is None:  # the server did not say which: find them by name
            return Outcome(muts, Result.LOOKUP)
        by_name = {row["normalized_name"]: row for row in created}
        errors = " ".join(result.get("errors") or [])
        outcome = Outcome(muts, Result.MIXED)
        for m in muts:
            row = by_name.get(m.normalized or "")
            if row is None:
                outcome.per_mut[m.id] = (Result.FAILED, f"the server did not create {m.name!r}: "
                                         f"{errors or 'no reason given'}")
            else:
                outcome.rows.append(row)
                outcome.moved[m.id] = row["id"]
                outcome.per_mut[m.id] = (Result.DONE, None)
        return outcome

    # -- recording ------------------------------------------------------------------------

    def _record(self, con: duckdb.DuckDBPyConnection, outcomes: list[Outcome]) -> None:
        if outcomes and self.leased:
            renew_lease(con)
        if len(self.touched) <= TOUCH_LIMIT:  # beyond it listeners hear "any row"
            self.touched |= sellers_touched(outcomes)
        for m, result, error in record(con, outcomes, self._next_attempt):
            self._count(m, result, error)

    def _next_attempt(self, o: Outcome, now: datetime) -> datetime | None:
        if o.result in (Result.UNCERTAIN, Result.RETRY, Result.MIXED) or (
            o.result == Result.UNSENT and o.retry_after is not None
        ):
            if o.retry_after is not None:
                return now + timedelta(seconds=o.retry_after)
            return now + timedelta(seconds=self.backoff.delay(max(m.attempts for m in o.muts)))
        return None

    def _count(self, m: Mut, result: str, error: str | None) -> None:
        if result == Result.DONE:
            self.report.succeeded += 1
        elif result == Result.FAILED:
            self.report.failed += 1
            self.report.failures.append(error or m.label)


_BULK = {
    "flag": "flag_bulk",
    "delete": "delete_bulk",
    "restore": "restore_bulk",
    "create": "create_bulk",
}


def _gone(m: Mut) -> str:
    return (
        f"{m.label} was rolled back: the seller no longer exists on the server "
        f"(deleted there meanwhile)"
    )


def _parse_ts(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

