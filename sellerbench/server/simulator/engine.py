"""The run simulator: started runs walk their categories and products over time.

One thread serves the whole server. Every ``tick`` seconds it gives each running run a
budget of ``PRODUCTS_PER_SECOND * run_speed`` products per second and searches them one by
one, each product in one write transaction that:

- finds 0-4 sellers: a known live seller (picked at random, not yet found by this run)
  gets ``times_seen`` + 1 and ``last_seen_run_id``; a new one is created with a unique
  name. Each is an ordinary write, moving the seller's ``rev`` and ``updated_at``;
- or fails (about one product in twenty): ``failed_items`` + 1 and an ``error`` event;
- moves the run's counters (products, categories, departments, sellers, duration) and
  emits a ``progress`` event, plus ``status`` ``completed`` after the last product.

The plan (which categories, in which department order, how many products each) is fixed
by the run's id, so a run resumed after a restart continues exactly where its counters
stopped. ``run_speed`` scales the pace: at 1 a run searches 4 products a second, so a run
over two categories (4-8 products each) takes a few seconds; 0.05 makes it last minutes.

Events (``activity_events``; ``data`` is JSON, every object carries ``run_id``):

- ``progress``: the run's counters and status, plus ``category_id``, ``department``,
  ``product`` just searched;
- ``seller_found``: ``seller_id``, ``display_name``, ``new`` (bool), ``times_seen``;
- ``status``: ``status``, ``previous``, ``reason`` and the run's counters; the run's
  last event has a final status (``completed``, ``failed``, ``cancelled``);
- ``error``: ``message``, ``category_id``, ``product``.

Transitions (``transition()``, used by the API): start ``pending -> running``, pause
``running -> paused``, resume ``paused -> running``, cancel ``pending|running|paused ->
cancelled``; anything else is :class:`InvalidTransition`. ``duration_seconds`` counts
time spent running only.

After a restart: runs left ``running`` are resumed (a ``status`` event with reason
``resumed after a server restart`` says so); the downtime does not count as duration.
Paused and pending runs stay as they were.

Several server processes on one PostgreSQL database: the tick loop runs in the one
process that holds the storage's leader lock (``storage.try_lead()``); the others apply
transitions only, and take over (recovering as after a restart) if the leader exits.
Every transaction that emits a run's events first locks that run's row, so a run's
events commit in id order. Running time counts from the later of this process's own
clock mark and the run's ``updated_at`` (the last time any process banked it).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ...schema import ACTIVE, FINISHED, RUN_COUNTERS
from ..storage.changes import record
from ..storage.core import Storage, Tx
from ..storage.records import (
    INSERT_SELLER,
    RUN_COLUMNS,
    normalize_name,
    now_ts,
    parse_ts,
    run_record,
)
from .demo import _name as seller_name

if TYPE_CHECKING:
    from ..storage.postgres import PostgresStorage

__all__ = [
    "FINAL",
    "PRODUCTS_PER_SECOND",
    "InvalidTransition",
    "RunNotFound",
    "RunSimulator",
]

log = logging.getLogger("sellerbench.server.simulator.engine")

PRODUCTS_PER_SECOND = 4.0  # at run_speed 1
MAX_STEPS_PER_TICK = 200  # bounds one tick's work at absurd speeds
FAILURE_RATE = 0.05
KNOWN_SHARE = 0.45  # of the sellers a product shows, the share already known
FINAL = FINISHED
STATUS_FIELDS = ("status", *RUN_COUNTERS)

# action -> (statuses it may leave, status it enters)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "start": (("pending",), "running"),
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "cancel": (ACTIVE, "cancelled"),
}
_COLUMNS = ", ".join(RUN_COLUMNS)


class RunNotFound(LookupError):
    """No live run has this id."""


class InvalidTransition(ValueError):
    """The run's status does not allow the action asked."""

    def __init__(self, run_id: str, action: str, status: str) -> None:
        allowed = ", ".join(TRANSITIONS[action][0])
        super().__init__(
            f"cannot {action} run {run_id}: it is {status}; {action} applies to a run that "
            f"is {allowed}"
        )
        self.status = status


@dataclass(frozen=True)
class Step:
    """One product of a run's plan and what finishing it completes."""

    category_id: str
    department: str
    product: str
    ends_category: bool
    ends_department: bool


def plan(run_id: str, categories: list[tuple[str, str, str]]) -> list[Step]:
    """The run's products in order: departments in first-seen order, categories within.

    ``categories`` is ``(id, name, department)`` in the order the run asked for them.
    """
    rng = random.Random(zlib.crc32(run_id.encode()))
    by_department: dict[str, list[tuple[str, str]]] = {}
    for cat_id, name, department in categories:
        by_department.setdefault(department, []).append((cat_id, name))
    steps: list[Step] = []
    for department, cats in by_department.items():
        for c, (cat_id, name) in enumerate(cats):
            count = rng.randint(4, 8)
            for p in range(count):
                last_product = p == count - 1
                steps.append(
                    Step(
                        category_id=cat_id,
                        department=department,
                        product=f"{name} listing #{rng.randrange(100_000, 999_999)}",
                        ends_category=last_product,
                        ends_department=last_product and c == len(cats) - 1,
                    )
                )
    return steps


class RunSimulator:
    """Advances running runs in one background thread; applies run transitions."""

    def __init__(
        self,
        storage: Storage,
        *,
        run_speed: float = 1.0,
        tick: float = 0.05,
        failure_rate: float = FAILURE_RATE,
    ) -> None:
        if not run_speed > 0:
            raise ValueError("run_speed must be a positive number")
        self.storage = storage
        self.run_speed = float(run_speed)
        self.tick = tick
        self.failure_rate = failure_rate
        self.last_event_id = 0  # the newest committed event id: streams poll this cheaply
        self.open_streams = 0  # activity streams being served (kept by activity.py)
        self.leading = False  # this process advances runs (see the module docstring)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The maps below change only inside write transactions, which SQLite serialises,
        # so they need no lock of their own (one here could deadlock against BEGIN IMMEDIATE).
        self._plans: dict[str, list[Step]] = {}
        self._budget: dict[str, float] = {}
        self._since: dict[str, float] = {}  # run id -> time.time() its running time counts from

    def note_event(self, event_id: int) -> None:
        """An event committed (by any process, PostgreSQL's NOTIFY): streams look again."""
        self.last_event_id = max(self.last_event_id, event_id)

    @property
    def products_per_second(self) -> float:
        return PRODUCTS_PER_SECOND * self.run_speed

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Resume runs a previous server left running, then start the tick thread (in
        the leading process; the others wait in that thread to take over)."""
        self._stop.clear()
        lead = getattr(self.storage, "try_lead", None)
        self.leading = lead is None or lead()
        if self.leading:
            self._recover()
        else:
            with self.storage.write() as tx:
                self.last_event_id = _max_event_id(tx)
        self._thread = threading.Thread(target=self._loop, name="run-simulator", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after its current step (each step is one whole transaction)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` was called: open activity streams end."""
        return self._stop.is_set()

    def _recover(self) -> None:
        with self.storage.write() as tx:
            self.last_event_id = _max_event_id(tx)
            ids = [r[0] for r in tx.execute(
                "SELECT id FROM collection_runs WHERE status = 'running' AND deleted_at IS NULL"
                f" ORDER BY id{tx.for_update}"
            )]
            for run_id in ids:
                self._since[run_id] = time.time()
                self._emit(tx, run_id, "status", {
                    "status": "running", "previous": "running",
                    "reason": "resumed after a server restart",
                })
        if ids:
            log.info("resumed %d run(s) left running by the previous server", len(ids))

    # -- transitions (called from request threads) -------------------------------------

    def transition(self, run_id: str, action: str) -> dict[str, Any]:
        """Apply start/pause/resume/cancel in one transaction; return the run record."""
        with self.storage.write() as tx:
            return self.transition_in(tx, run_id, action)

    def transition_in(self, tx: Tx, run_id: str, action: str, by: str | None = None
                      ) -> dict[str, Any]:
        """``transition`` inside the caller's write transaction (the idempotency ledger's);
        ``by``: the name of the user who asked, which the ``status`` event carries."""
        sources, target = TRANSITIONS[action]
        row = _run_row(tx, run_id)
        if row is None:
            raise RunNotFound(run_id)
        run = run_record(row)
        if run["status"] not in sources:
            raise InvalidTransition(run_id, action, run["status"])
        now = now_ts()
        _update_run(tx, run_id, self._changes(tx, run, action, target, now), now)
        after_row = _run_row(tx, run_id)
        assert after_row is not None  # updated just above, in this transaction
        after = run_record(after_row)
        record(tx, "run", run_id, action, after["rev"],
               {"status": target, "previous": run["status"]}, now)
        self._emit(tx, run_id, "status", {
            **_counters(after), "previous": run["status"], "reason": f"{action} requested",
            "user": by,
        })
        if target == "running":
            self._since[run_id] = time.time()
            self._budget[run_id] = 0.0
        else:
            self._forget(run_id)
        return after

    def _changes(
        self, tx: Tx, run: dict[str, Any], action: str, target: str, now: str
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {"status": target}
        if run["status"] == "running":  # leaving running: bank the running time
            changes["duration_seconds"] = self._banked(run)
        if action == "start":
            changes.update(self._totals(tx, run), started_at=now, duration_seconds=0.0)
        elif action == "pause":
            changes["paused_at"] = now
        elif action == "resume":
            changes["paused_at"] = None
        elif action == "cancel":
            changes["completed_at"] = now
        return changes

    def _banked(self, run: dict[str, Any]) -> float:
        # the later of our own mark and the run's last write: another process may have
        # banked (paused, resumed) the run since this one marked it
        stamp = parse_ts(run["updated_at"]).timestamp()
        since = max(self._since.get(run["id"], stamp), stamp)
        return round(float(run["duration_seconds"] or 0.0) + time.time() - since, 3)

    def _totals(self, tx: Tx, run: dict[str, Any]) -> dict[str, Any]:
        steps = self._plan(tx, run)
        return {
            "departments_total": len({s.department for s in steps}),
            "categories_total": len({s.category_id for s in steps}),
            "products_total": len(steps),
        }

    def _forget(self, run_id: str) -> None:
        self._budget.pop(run_id, None)
        self._since.pop(run_id, None)
        self._plans.pop(run_id, None)

    # -- the tick loop --------------------------------------------------------------------

    def _loop(self) -> None:
        while not self.leading:  # another process runs the simulator; take over if it ends
            if self._stop.wait(1.0):
                return
            try:
                # only a storage with try_lead gets here (see start)
                self.leading = cast("PostgresStorage", self.storage).try_lead()
                if self.leading:
                    self._recover()
            except Exception:
                log.exception("the run simulator could not take over; trying again")
        last = time.monotonic()
        while not self._stop.wait(self.tick):
            now = time.monotonic()
            elapsed, last = now - last, now
            try:
                self._advance(elapsed)
            except Exception:  # a bad step must not stop every other run
                log.exception("the run simulator failed a step; retrying next tick")
                self._stop.wait(1.0)

    def _advance(self, elapsed: float) -> None:
        with self.storage.read() as conn:
            running = [r[0] for r in conn.execute(
                "SELECT id FROM collection_runs WHERE status = 'running' AND deleted_at IS NULL"
            )]
        for run_id in running:
            budget = self._budget.get(run_id, 0.0) + elapsed * self.products_per_second
            steps = min(int(budget), MAX_STEPS_PER_TICK)
            self._budget[run_id] = budget - int(budget)
            for _ in range(steps):
                if self._stop.is_set() or not self._step(run_id):
                    break

    def _step(self, run_id: str) -> bool:
        """Search the run's next product in one transaction; False when it cannot go on."""
        with self.storage.write() as tx:
            row = _run_row(tx, run_id)
            if row is None or row[RUN_COLUMNS.index("status")] != "running":
                return False
            run = run_record(row)
            steps = self._plan(tx, run)
            index = int(run["products_searched"] or 0)
            if index >= len(steps):
                self._finish(tx, run, "completed", "every product searched")
                return False
            step = steps[index]
            rng = random.Random(zlib.crc32(f"{run_id}:{index}".encode()))
            counters: dict[str, float] = {k: int(run[k] or 0) for k in (
                "products_searched", "categories_completed", "departments_completed",
                "sellers_found", "sellers_new", "failed_items",
            )}
            if rng.random() < self.failure_rate:
                counters["failed_items"] += 1
                self._emit(tx, run_id, "error", {
                    "message": "the product page did not load (simulated timeout)",
                    "category_id": step.category_id, "product": step.product,
                })
            else:
                for _ in range(rng.choice((0, 1, 1, 2, 2, 3, 4))):
                    found = self._find_seller(tx, run_id, rng)
                    if found is not None:
                        counters["sellers_found"] += 1
                        counters["sellers_new"] += int(found["new"])
                        self._emit(tx, run_id, "seller_found", found)
            counters["products_searched"] += 1
            counters["categories_completed"] += int(step.ends_category)
            counters["departments_completed"] += int(step.ends_department)
            now = now_ts()
            counters["duration_seconds"] = self._banked(run)
            self._since[run_id] = time.time()
            _update_run(tx, run_id, counters, now)
            progress = {**counters, "status": "running", "category_id": step.category_id,
                        "department": step.department, "product": step.product}
            for key in ("products_total", "categories_total", "departments_total"):
                progress[key] = run[key]
            self._emit(tx, run_id, "progress", progress)
            if counters["products_searched"] >= len(steps):
                run.update(counters)
                failed = counters["failed_items"] * 2 > len(steps)
                self._finish(
                    tx, run, "failed" if failed else "completed",
                    "most products failed" if failed else "every product searched",
                )
                return False
            return True

    def _finish(self, tx: Tx, run: dict[str, Any], status: str, reason: str) -> None:
        now = now_ts()
        _update_run(tx, run["id"], {
            "status": status, "completed_at": now, "duration_seconds": self._banked(run),
        }, now)
        after_row = _run_row(tx, run["id"])
        assert after_row is not None  # updated just above, in this transaction
        after = run_record(after_row)
        self._emit(tx, run["id"], "status", {
            **_counters(after), "previous": "running", "reason": reason,
        })
        self._forget(run["id"])

    def _plan(self, tx: Tx, run: dict[str, Any]) -> list[Step]:
        steps = self._plans.get(run["id"])
        if steps is None:
            ids = list(dict.fromkeys(run["category_ids"]))
            marks = ", ".join("?" * len(ids)) or "NULL"
            known = {r[0]: r for r in tx.execute(
                f"SELECT id, name, department FROM categories WHERE id IN ({marks})", ids
            )}
            steps = plan(run["id"], [known[i] for i in ids if i in known])
            self._plans[run["id"]] = steps
        return steps

    # -- sellers -----------------------------------------------------------------------

    def _find_seller(self, tx: Tx, run_id: str, rng: random.Random) -> dict[str, Any] | None:
        if rng.random() < KNOWN_SHARE:
            known = self._bump_known(tx, run_id, rng)
            if known is not None:
                return known
        return self._create(tx, run_id, rng)

    def _bump_known(self, tx: Tx, run_id: str, rng: random.Random) -> dict[str, Any] | None:
        # a random point in the id space and the next live seller at or after it (ids are
        # UUIDs: portable where rowid is SQLite's), wrapping around once
        point = str(uuid.UUID(int=rng.getrandbits(128)))
        sql = (
            "SELECT id, display_name, times_seen FROM sellers WHERE id {} ?"
            " AND deleted_at IS NULL AND (last_seen_run_id IS NULL OR last_seen_run_id <> ?)"
            " ORDER BY id LIMIT 1"
        )
        row = tx.execute(sql.format(">="), (point, run_id)).fetchone()
        if row is None:
            row = tx.execute(sql.format("<"), (point, run_id)).fetchone()
        if row is None:
            return None
        now, rev = now_ts(), tx.next_rev()
        tx.execute(
            "UPDATE sellers SET times_seen = times_seen + 1, last_seen_run_id = ?,"
            " first_seen_run_id = coalesce(first_seen_run_id, ?), updated_at = ?, rev = ?"
            " WHERE id = ?",
            (run_id, run_id, now, rev, row[0]),
        )
        record(tx, "seller", row[0], "seen", rev, {"run_id": run_id}, now)
        return {"seller_id": row[0], "display_name": row[1], "new": False,
                "times_seen": row[2] + 1}

    def _create(self, tx: Tx, run_id: str, rng: random.Random) -> dict[str, Any]:
        base = seller_name(rng.random)
        name, k = base, 1
        while tx.execute(
            "SELECT 1 FROM sellers WHERE normalized_name = ? AND deleted_at IS NULL",
            (normalize_name(name),),
        ).fetchone():
            k += 1
            name = f"{base} {k}"
        seller_id = str(uuid.uuid4())  # random, not seeded: ids must never collide
        now, rev = now_ts(), tx.next_rev()
        tx.execute(INSERT_SELLER, (
            seller_id, name, normalize_name(name), "ebay", str(rng.randrange(10**8, 10**9)),
            1, 0, run_id, run_id, now, now, None, rev,
        ))
        record(tx, "seller", seller_id, "found", rev, {"run_id": run_id, "display_name": name},
               now)
        return {"seller_id": seller_id, "display_name": name, "new": True, "times_seen": 1}

    # -- events ------------------------------------------------------------------------

    def _emit(self, tx: Tx, run_id: str, kind: str, data: dict[str, Any]) -> int:
        cursor = tx.execute(
            "INSERT INTO activity_events (run_id, type, data, created_at) VALUES (?, ?, ?, ?)"
            " RETURNING id",
            (run_id, kind, json.dumps({"run_id": run_id, **data}, ensure_ascii=False),
             now_ts()),
        )
        event_id = int(cursor.fetchone()[0])
        # Streams read this only to learn that something new may be committed; they
        # re-read committed rows (and the max id of their snapshot), so a value set just
        # before the commit costs them one empty query, never a missed event.
        self.last_event_id = max(self.last_event_id, event_id)
        return event_id


def _counters(run: dict[str, Any]) -> dict[str, Any]:
    """The run's status and counters, as ``status`` and ``progress`` events carry them."""
    return {key: run[key] for key in STATUS_FIELDS}


def _max_event_id(tx: Tx) -> int:
    return int(tx.execute("SELECT coalesce(max(id), 0) FROM activity_events").fetchone()[0])


def _run_row(tx: Tx, run_id: str) -> tuple[Any, ...] | None:
    return tx.execute(
        f"SELECT {_COLUMNS} FROM collection_runs WHERE id = ? AND deleted_at IS NULL"
        f"{tx.for_update}", (run_id,)
    ).fetchone()


def _update_run(tx: Tx, run_id: str, changes: dict[str, Any], now: str) -> None:
    """One ordinary run write: the given fields, ``updated_at`` and a fresh ``rev``."""
    fields = {**changes, "updated_at": now, "rev": tx.next_rev()}
    assignments = ", ".join(f"{name} = ?" for name in fields)
    tx.execute(
        f"UPDATE collection_runs SET {assignments} WHERE id = ?", (*fields.values(), run_id)
    )
