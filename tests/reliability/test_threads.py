"""One workbench, many threads (issue 12): JupyterLab runs widget messages on a subshell
thread while a cell runs, run watchers sync in the background, analysts sync in a thread.

Written against the public surface only (``connect``, Workbench methods, the error tree),
so the same tests judge the library before and after it serializes writes per cache
file. What they demand, from the issue's acceptance:

- every call either returns or raises a ``SellerbenchError`` subclass: a raw DuckDB (or
  any other) exception reaching a thread is a failure, listed with its traceback;
- every change lands exactly once: after faults stop and the queue drains, the server
  holds each thread's last write (flags alternate and every rename takes a fresh name,
  so a lost write, a write applied twice (a base-contract flag *toggles*) or an old one
  replayed late all show), sellers no thread touched are unchanged, and the cache
  equals the server after the final sync.

A call that raised a SellerbenchError may or may not have queued its change, so its
value is accepted as well as the last confirmed one until the next call on that seller
returns.
"""

from __future__ import annotations

import random
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sellerbench.api.client import ApiClient
from sellerbench.errors import SellerbenchError
from sellerbench.workbench import Workbench, connect

from ..netproxy import WRITES, FaultProxy
from .relutil import check_cache

JOIN_SECONDS = 120.0  # a thread still running by then is reported as hung, with its stack


# -- bookkeeping shared by the tests ---------------------------------------------------------


@dataclass
class Outcomes:
    """What every thread's calls did: counts, SellerbenchErrors by type, foreign errors."""

    calls: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # "kind: ErrorType" -> count
    foreign: list[str] = field(default_factory=list)  # formatted tracebacks
    foreign_types: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, kind: str, action: Callable[[], Any]) -> tuple[bool, Any]:
        """Run ``action``; (True, result) when it returned, (False, None) when it raised.
        A SellerbenchError is allowed (counted); anything else is recorded as foreign."""
        try:
            result = action()
        except SellerbenchError as exc:
            with self.lock:
                self.calls[kind] += 1
                self.errors[f"{kind}: {type(exc).__name__}"] += 1
            return False, None
        except Exception as exc:  # exactly what the test is looking for
            with self.lock:
                self.calls[kind] += 1
                name = f"{type(exc).__module__}.{type(exc).__name__}"
                self.foreign_types[f"{kind}: {name}"] += 1
                if len(self.foreign) < 400:
                    self.foreign.append(f"[{threading.current_thread().name}] {kind}:\n"
                                        + "".join(traceback.format_exception(exc)))
            return False, None
        with self.lock:
            self.calls[kind] += 1
        return True, result

    def report(self) -> str:
        return (f"calls {dict(self.calls)}; SellerbenchErrors {dict(self.errors)}; "
                f"foreign {dict(self.foreign_types)}")

    def assert_no_foreign(self) -> None:
        if self.foreign_types:
            shown = "\n".join(self.foreign[:3])
            raise AssertionError(
                f"{sum(self.foreign_types.values())} call(s) raised something other than a "
                f"SellerbenchError: {dict(self.foreign_types)}\nfirst tracebacks:\n{shown}"
            )


@dataclass
class Expect:
    """What one seller must hold on the server: the last confirmed value of each field,
    plus the values of calls that raised since (they may have been queued)."""

    flagged: set[bool]
    name: set[str]
    asked: tuple[str, bool] = ("", False)  # the last (name, flag) asked, raised or not


class Ledger:
    """One thread's record of its last write per seller."""

    def __init__(self, start: dict[str, tuple[str, bool]]) -> None:
        self.sellers = {sid: Expect({flagged}, {name}, (name, flagged))
                        for sid, (name, flagged) in start.items()}

    def last_flag(self, sid: str) -> bool:
        """The flag value last confirmed (or asked for) on ``sid``: the next write flips it."""
        return next(iter(self.sellers[sid].flagged)) if len(self.sellers[sid].flagged) == 1 \
            else False

    def wrote(self, sid: str, ok: bool, *, flagged: bool | None = None,
              name: str | None = None) -> None:
        expect = self.sellers[sid]
        expect.asked = (expect.asked[0] if name is None else name,
                        expect.asked[1] if flagged is None else flagged)
        if flagged is not None:
            expect.flagged = {flagged} if ok else expect.flagged | {flagged}
        if name is not None:
            expect.name = {name} if ok else expect.name | {name}


def differences(ledgers: list[Ledger], actual: dict[str, tuple[str, bool]]) -> list[str]:
    """Each seller whose server state is not one its thread allows, as a short line."""
    out = []
    for ledger in ledgers:
        for sid, expect in ledger.sellers.items():
            if sid not in actual:
                out.append(f"{sid}: not live on the server (expected {expect})")
                continue
            name, flagged = actual[sid]
            wrong = []
            if flagged not in expect.flagged:
                wrong.append(f"flagged {flagged}, expected {sorted(expect.flagged)}")
            if name not in expect.name:
                wrong.append(f"name {name!r}, expected {sorted(expect.name)}")
            if wrong:
                out.append(f"{sid}: " + "; ".join(wrong))
    return out


def strictly(ledgers: list[Ledger], actual: dict[str, tuple[str, bool]]) -> str:
    """How many sellers differ from the last write asked, counting calls that raised as
    landed (what the analyst believes; a figure for the report, not an assertion)."""
    asked = {sid: e.asked for ledger in ledgers for sid, e in ledger.sellers.items()}
    flags = sum(1 for sid, a in asked.items() if actual.get(sid, ("", None))[1] != a[1])
    names = sum(1 for sid, a in asked.items() if actual.get(sid, (None,))[0] != a[0])
    return f"against the last write asked: {flags} of {len(asked)} flags, {names} names differ"


def queue_text(queue: pd.DataFrame) -> str:
    shown = queue[[c for c in ("kind", "seller_id", "change", "state", "error")
                   if c in queue.columns]].head(8)
    return shown.to_string(max_colwidth=160)


def summary(diff: list[str], what: str) -> str:
    flags = sum("flagged" in line for line in diff)
    names = sum("name " in line for line in diff)
    head = "\n  ".join(diff[:8])
    return (f"{len(diff)} seller(s) differ from {what} ({flags} flag, {names} name):\n  {head}")


def server_state(url: str, token: str) -> dict[str, tuple[str, bool]]:
    """id -> (display_name, flagged) of every live seller, read without faults."""
    out: dict[str, tuple[str, bool]] = {}
    with ApiClient(url, token, retries=20, backoff=0.01, max_backoff=0.05) as client:
        cursor = None
        for _ in range(1_000):
            page = client.sync_sellers(cursor=cursor, limit=100)
            for item in page.items:
                out[item["id"]] = (item["display_name"], bool(item["flagged"]))
            if not page.has_more:
                return out
            cursor = page.next_cursor
    raise AssertionError("the server's seller list did not end")


def cache_state(wb: Workbench) -> dict[str, tuple[str, bool]]:
    frame = wb.sellers()
    return {r.id: (r.display_name, bool(r.flagged)) for r in frame.itertuples()}


def drain(wb: Workbench, outcomes: Outcomes, attempts: int = 30) -> pd.DataFrame:
    """Push and sync until nothing is pending (at most ``attempts`` rounds); the queue left."""
    queue = pd.DataFrame()
    for _ in range(attempts):
        outcomes.call("final push", lambda: wb.push(wait=2.0))
        outcomes.call("final sync", lambda: wb.sync(progress=False))
        ok, queue = outcomes.call("final pending", wb.pending)
        if ok and (queue.empty or (queue["state"] == "failed").all()):
            return queue  # empty, or only refusals that no further push changes
    return queue


def verdict(
    outcomes: Outcomes,
    stray: list[str],
    queue: pd.DataFrame,
    ledgers: list[Ledger],
    start: dict[str, tuple[str, bool]],
    final: dict[str, tuple[str, bool]],
    caches: dict[str, dict[str, tuple[str, bool]]],
) -> list[str]:
    """Everything wrong at the end, one paragraph each: foreign exceptions, dead threads,
    an undrained queue, server state vs the threads' last writes, sellers nobody touched
    that changed, and each named cache vs the server."""
    problems = []
    if outcomes.foreign_types:
        problems.append(f"{sum(outcomes.foreign_types.values())} non-SellerbenchError "
                        f"exception(s) reached a thread: {dict(outcomes.foreign_types)}\n"
                        + "\n".join(outcomes.foreign[:2]))
    if stray:
        problems.append(f"{len(stray)} thread(s) died of an exception:\n" + "\n".join(stray[:2]))
    if not queue.empty:
        problems.append(f"{len(queue)} change(s) never drained:\n{queue_text(queue)}")
    diff = differences(ledgers, final)
    if diff:
        problems.append(summary(diff, "the threads' last writes on the server"))
    touched = {sid for ledger in ledgers for sid in ledger.sellers}
    others = [f"{sid}: {start[sid]} -> {final.get(sid)}"
              for sid in start if sid not in touched and final.get(sid) != start[sid]]
    if len(final) != len(start) or others:
        problems.append(f"{len(final)} live sellers on the server (expected {len(start)}); "
                        f"untouched sellers changed: {others[:5]}")
    for label, cached in caches.items():
        stale = [f"{sid}: {label} {cached.get(sid)}, server {final.get(sid)}"
                 for sid in sorted(final.keys() | cached.keys())
                 if cached.get(sid) != final.get(sid)]
        if stale:
            problems.append(f"{len(stale)} seller(s) differ between {label} and server after "
                            f"the final sync: {stale[:5]}")
    return problems


def run_threads(threads: list[threading.Thread], started: float | None = None) -> str:
    """Start (unless started), join within JOIN_SECONDS of ``started``; for the threads
    still running (hung), their names and where each one is, else ''."""
    for thread in threads:
        if not thread.is_alive() and thread.ident is None:
            thread.start()
    deadline = (started or time.monotonic()) + JOIN_SECONDS
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    hung = [t for t in threads if t.is_alive()]
    if not hung:
        return ""
    others = [t for t in threading.enumerate() if t not in hung and t.is_alive()]
    return (f"{len(hung)} thread(s) still running after {JOIN_SECONDS:.0f} s: "
            f"{[t.name for t in hung]}\n" + stacks([*hung, *others]))


def stacks(threads: list[threading.Thread]) -> str:
    """Where each thread is: its frames in sellerbench and tests, and its innermost one."""
    frames = sys._current_frames()
    out = []
    for thread in threads:
        frame = frames.get(thread.ident)
        if frame is None:
            continue
        summary = traceback.extract_stack(frame)
        ours = [f for f in summary[:-1] if "/sellerbench/" in f.filename or "/tests/" in f.filename]
        shown = traceback.format_list([*ours[-8:], summary[-1]])
        out.append(f"--- {thread.name}:\n{''.join(shown)}")
    return "".join(out)


@pytest.fixture
def stray() -> Iterator[list[str]]:
    """Exceptions that ended any thread (ours or the library's background threads)."""
    seen: list[str] = []
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        seen.append(f"[{args.thread.name if args.thread else '?'}] "
                    + "".join(traceback.format_exception(args.exc_value)))

    threading.excepthook = hook
    yield seen
    threading.excepthook = previous


def worker(
    wb: Workbench, ledger: Ledger, outcomes: Outcomes, *, tag: str, seed: int, ops: int,
    sync_every: int = 0,
) -> None:
    """Flag, unflag and rename this thread's own sellers (one call at a time); with
    ``sync_every``, a wb.sync() after every that many calls."""
    rng = random.Random(seed)
    own = sorted(ledger.sellers)
    for n in range(ops):
        if sync_every and n % sync_every == sync_every - 1:
            outcomes.call("sync", lambda: wb.sync(progress=False))
        roll = rng.random()
        if roll < 0.35:
            sid = rng.choice(own)
            value = not ledger.last_flag(sid)
            ok, _ = outcomes.call("flag", lambda sid=sid, value=value: wb.flag(sid, value))
            ledger.wrote(sid, ok, flagged=value)
        elif roll < 0.55:
            ids = rng.sample(own, 3)
            value = rng.random() < 0.5
            ok, _ = outcomes.call("flag many", lambda ids=ids, value=value: wb.flag(ids, value))
            for sid in ids:
                ledger.wrote(sid, ok, flagged=value)
        else:
            sid = rng.choice(own)
            name = f"{tag} {own.index(sid):02d} v{n:03d}"
            ok, _ = outcomes.call("rename", lambda sid=sid, name=name: wb.rename(sid, name))
            ledger.wrote(sid, ok, name=name)


def split(ids: list[str], seed: int, groups: int, size: int) -> list[list[str]]:
    chosen = random.Random(seed).sample(sorted(ids), groups * size)
    return [chosen[i * size:(i + 1) * size] for i in range(groups)]


# -- 1. the reproduction ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("base_only", [False, True], ids=["full", "base-only"])
def test_threads_share_one_workbench_under_faults(make_server, tmp_path, stray, base_only):
    """Four threads flag, unflag and rename their own 60 sellers through one workbench
    (auto-push on) while a fifth pushes and syncs, through a proxy that drops 5% of write
    requests and 10% of write responses and a server that answers 5% with 503."""
    server = make_server(n=1000, base_only=base_only, seed=12)
    token = server.tokens["analyst"]
    outcomes = Outcomes()
    with FaultProxy(server.url, seed=12, methods=WRITES,
                    rates={"reset": 0.05, "reset_after": 0.10}) as proxy:
        wb = connect(proxy.url, token, tmp_path / "cache.duckdb", auto_push=True)
        try:
            proxy.enabled = False
            wb.sync(progress=False)  # the first sync is not what is tested
            start = cache_state(wb)  # the live ones (the demo data holds a few tombstones)
            assert len(start) > 900
            groups = split(list(start), seed=12, groups=4, size=60)
            ledgers = [Ledger({sid: start[sid] for sid in group}) for group in groups]

            proxy.enabled = True
            server.faults.fail_rate = 0.05
            writers_done = threading.Event()

            def pusher() -> None:
                for _ in range(400):
                    if writers_done.is_set():
                        return
                    outcomes.call("push", lambda: wb.push(wait=0.0))
                    outcomes.call("sync", lambda: wb.sync(progress=False))
                    time.sleep(0.02)

            writers = [
                threading.Thread(
                    target=worker, name=f"writer-{i}", daemon=True,
                    args=(wb, ledgers[i], outcomes),
                    kwargs={"tag": f"Thread{i}", "seed": 100 + i, "ops": 50},
                )
                for i in range(4)
            ]
            background = threading.Thread(target=pusher, name="pusher", daemon=True)
            began = time.monotonic()
            background.start()
            hung = run_threads(writers, began)
            writers_done.set()
            hung = hung or run_threads([background], began)
            assert not hung, f"{outcomes.report()}\n{hung}"

            faults = {**proxy.counts, **server.faults.counts}
            proxy.enabled = False
            server.faults.fail_rate = 0.0
            queue = drain(wb, outcomes)
            final = server_state(server.url, token)
            cached = cache_state(wb)
        finally:
            wb.close()

    mode = "base-only" if base_only else "full"
    print(f"\n{mode}: {outcomes.report()}; faults {faults}; {strictly(ledgers, final)}")
    problems = verdict(outcomes, stray, queue, ledgers, start, final, {"cache": cached})
    assert not problems, (f"{mode} ({outcomes.report()}; {strictly(ledgers, final)}):\n"
                          + "\n\n".join(problems))
    assert faults.get("reset", 0) and faults.get("reset_after", 0) and faults.get("fail", 0), (
        f"the faults never fired: {faults}")


# -- 2. reads while others write ---------------------------------------------------------------


def reader(wb: Workbench, outcomes: Outcomes, odd: list[str], *, live: int, runs: int,
           out: Path, seed: int, rounds: int) -> None:
    """Every read entry point in turn; each frame must be whole (no seller missing or
    twice, whatever the writers are doing), else a line in ``odd``."""
    rng = random.Random(seed)
    name = threading.current_thread().name

    def check(what: str, fact: bool, detail: Any) -> None:
        if not fact:
            odd.append(f"[{name}] {what}: {detail}")

    reads = ["sellers", "sql", "status", "pending", "runs", "export"]
    for k in range(rounds):
        kind = reads[k % len(reads)] if k < len(reads) else rng.choice(reads)
        if kind == "sellers":
            ok, frame = outcomes.call(kind, wb.sellers)
            if ok:
                check(kind, len(frame) == live and frame.id.is_unique
                      and frame.normalized_name.is_unique,
                      f"{len(frame)} rows, {frame.id.nunique()} ids, "
                      f"{frame.normalized_name.nunique()} names (expected {live})")
        elif kind == "sql":
            ok, frame = outcomes.call(kind, lambda: wb.sql(
                "SELECT count(*) AS n, count(DISTINCT id) AS ids, "
                "count(DISTINCT normalized_name) AS names FROM visible_sellers"))
            if ok:
                row = frame.iloc[0].to_dict()
                check(kind, row == {"n": live, "ids": live, "names": live}, row)
        elif kind == "status":
            ok, status = outcomes.call(kind, wb.status)
            if ok:
                check(kind, status["sellers"] == live and status["pending"] >= 0
                      and status["failed"] == 0, status)
        elif kind == "pending":
            ok, frame = outcomes.call(kind, wb.pending)
            if ok:
                check(kind, set(frame["state"]) <= {"pending"}, set(frame["state"]))
        elif kind == "runs":
            ok, frame = outcomes.call(kind, wb.runs)
            if ok:
                check(kind, len(frame) == runs and frame.id.is_unique, f"{len(frame)} runs")
        else:
            target = out / f"{name}-{k}.csv"
            ok, report = outcomes.call(kind, lambda target=target: wb.export(
                target, source="cache", progress=False))
            if ok:
                rows = len(pd.read_csv(target))
                check(kind, report.rows == live == rows,
                      f"report says {report.rows}, file holds {rows} (expected {live})")


def writer(wb: Workbench, outcomes: Outcomes, own: list[str], *, tag: str, seed: int,
           ops: int) -> None:
    """Flag, rename, undo (which may take back another thread's action) and sync."""
    rng = random.Random(seed)
    for n in range(ops):
        roll = rng.random()
        if roll < 0.35:
            ids = rng.sample(own, rng.randint(1, 3))
            value = rng.random() < 0.5
            outcomes.call("flag", lambda ids=ids, value=value: wb.flag(ids, value))
        elif roll < 0.65:
            sid = rng.choice(own)
            name = f"{tag} {own.index(sid):02d} v{n:03d}"
            outcomes.call("rename", lambda sid=sid, name=name: wb.rename(sid, name))
        elif roll < 0.85:
            outcomes.call("undo", wb.undo)
        else:
            outcomes.call("sync", lambda: wb.sync(progress=False))


def test_reads_while_threads_write(make_server, tmp_path, stray):
    """Three threads read through every entry point (sellers, sql, status, pending, runs,
    export) while two flag, rename, undo and sync: nothing but SellerbenchError escapes,
    every frame read is whole, and the cache equals the server once the queue drains."""
    server = make_server(n=300, seed=13)
    token = server.tokens["analyst"]
    outcomes = Outcomes()
    odd: list[str] = []
    wb = connect(server.url, token, tmp_path / "cache.duckdb", auto_push=True)
    try:
        wb.sync(progress=False)
        start = cache_state(wb)
        runs = len(wb.runs())
        groups = split(list(start), seed=13, groups=2, size=20)
        exports = tmp_path / "exports"
        exports.mkdir()
        threads = [
            threading.Thread(target=writer, name=f"writer-{i}", daemon=True,
                             args=(wb, outcomes, groups[i]),
                             kwargs={"tag": f"Writer{i}", "seed": 200 + i, "ops": 30})
            for i in range(2)
        ] + [
            threading.Thread(target=reader, name=f"reader-{i}", daemon=True,
                             args=(wb, outcomes, odd),
                             kwargs={"live": len(start), "runs": runs, "out": exports,
                                     "seed": 300 + i, "rounds": 24})
            for i in range(3)
        ]
        hung = run_threads(threads)
        assert not hung, f"{outcomes.report()}\n{hung}"
        queue = drain(wb, outcomes)
        final = server_state(server.url, token)
        cached = cache_state(wb)
    finally:
        wb.close()
    print(f"\nreads/writes: {outcomes.report()}; {len(odd)} inconsistent read(s)")
    problems = verdict(outcomes, stray, queue, [], start, final, {"cache": cached})
    # No ledger here (undo crosses threads): the untouched-seller check must skip ours.
    touched = {sid for group in groups for sid in group}
    problems = [p for p in problems if not p.startswith(f"{len(final)} live sellers")]
    others = [sid for sid in start if sid not in touched and final.get(sid) != start[sid]]
    if len(final) != len(start) or others:
        problems.append(f"{len(final)} live sellers (expected {len(start)}); sellers no "
                        f"thread touched changed: {others[:5]}")
    if odd:
        problems.append(f"{len(odd)} read(s) returned an inconsistent result:\n  "
                        + "\n  ".join(odd[:8]))
    reads = sum(outcomes.calls[k] for k in ("sellers", "sql", "status", "pending", "runs",
                                             "export"))
    assert reads == 72, outcomes.calls  # every reader finished its rounds
    assert not problems, f"({outcomes.report()}):\n" + "\n\n".join(problems)


# -- 3. two workbenches on one cache file ----------------------------------------------------


def test_two_workbenches_on_one_cache_in_threads(make_server, tmp_path, stray):
    """Two sb.connect() on the SAME cache file in one process, each used from its own
    thread (flag, rename, sync; auto-push on): they must not corrupt each other."""
    server = make_server(n=300, seed=14)
    token = server.tokens["analyst"]
    path = tmp_path / "cache.duckdb"
    outcomes = Outcomes()
    first = connect(server.url, token, path, auto_push=True)
    second = connect(server.url, token, path, auto_push=True)
    try:
        first.sync(progress=False)
        start = cache_state(first)
        groups = split(list(start), seed=14, groups=2, size=30)
        ledgers = [Ledger({sid: start[sid] for sid in group}) for group in groups]
        threads = [
            threading.Thread(target=worker, name=f"workbench-{i}", daemon=True,
                             args=(wb, ledgers[i], outcomes),
                             kwargs={"tag": f"Bench{i}", "seed": 400 + i, "ops": 40,
                                     "sync_every": 8})
            for i, wb in enumerate((first, second))
        ]
        hung = run_threads(threads)
        assert not hung, f"{outcomes.report()}\n{hung}"
        queue = drain(first, outcomes)
        outcomes.call("final sync", lambda: second.sync(progress=False))
        final = server_state(server.url, token)
        caches = {"first workbench": cache_state(first), "second workbench": cache_state(second)}
    finally:
        first.close()
        second.close()
    print(f"\ntwo workbenches: {outcomes.report()}; {strictly(ledgers, final)}")
    problems = verdict(outcomes, stray, queue, ledgers, start, final, caches)
    try:
        check_cache(path)
    except AssertionError as exc:
        problems.append(f"the cache file breaks an invariant: {exc}")
    assert not problems, (f"({outcomes.report()}; {strictly(ledgers, final)}):\n"
                          + "\n\n".join(problems))


# -- 4. auto-push in threads leaves the client as configured ---------------------------------


def failed_attempts(server: Any, wb: Workbench, outcomes: Outcomes, sid: str) -> int:
    """With the API failing every request: queue one change on ``sid`` (nothing else is
    queued) and push it once; how many times the server was asked (an explicit push
    retries a failing call)."""
    server.faults.fail_rate = 1.0
    outcomes.call("flag", lambda: wb.flag(sid, True))  # its auto-push fails: it stays queued
    before = server.faults.counts.get("fail", 0)
    outcomes.call("push", lambda: wb.push(wait=0.0))
    return server.faults.counts.get("fail", 0) - before


def test_concurrent_auto_push_leaves_client_configuration(make_server, tmp_path, stray):
    """Auto-pushes from three threads while the API goes down and up must not change what
    a later explicit push does: it still retries a failing call as often as it did before
    (observed as requests the server answered 503), and the client's configured retry
    count, where it has one, is what it was."""
    server = make_server(n=200, seed=15)
    token = server.tokens["analyst"]
    outcomes = Outcomes()
    wb = connect(server.url, token, tmp_path / "cache.duckdb", auto_push=True)
    try:
        wb.sync(progress=False)
        start = cache_state(wb)
        ids = sorted(start)
        configured = getattr(wb.client, "retries", None)
        baseline = failed_attempts(server, wb, outcomes, ids[0])
        if baseline < 2:
            pytest.skip(f"an explicit push asks a failing server {baseline} time(s): it does "
                        f"not retry within a call, so there is no retry count to observe")
        server.faults.fail_rate = 0.0
        drain(wb, outcomes)

        groups = split(ids[2:], seed=15, groups=3, size=20)
        ledgers = [Ledger({sid: start[sid] for sid in group}) for group in groups]
        flapping = threading.Event()

        def flap() -> None:  # the API down and up every 20-60 ms
            rng = random.Random(15)
            while not flapping.is_set():
                server.faults.fail_rate = 1.0 - server.faults.fail_rate
                time.sleep(rng.uniform(0.02, 0.06))

        flapper = threading.Thread(target=flap, name="flapper", daemon=True)
        flapper.start()
        threads = [
            threading.Thread(target=worker, name=f"auto-push-{i}", daemon=True,
                             args=(wb, ledgers[i], outcomes),
                             kwargs={"tag": f"Auto{i}", "seed": 500 + i, "ops": 25})
            for i in range(3)
        ]
        hung = run_threads(threads)
        flapping.set()
        flapper.join(5)
        assert not hung, f"{outcomes.report()}\n{hung}"
        server.faults.fail_rate = 0.0
        drain(wb, outcomes)  # so the probe's push sends the probe alone, as the first did

        after = failed_attempts(server, wb, outcomes, ids[1])
        now_configured = getattr(wb.client, "retries", None)
        server.faults.fail_rate = 0.0
        queue = drain(wb, outcomes)
        final = server_state(server.url, token)
        cached = cache_state(wb)
    finally:
        wb.close()
    # The two probe sellers were flagged (True) by failed_attempts().
    probes = Ledger({ids[0]: (start[ids[0]][0], True), ids[1]: (start[ids[1]][0], True)})
    print(f"\nauto-push: {outcomes.report()}; an explicit push against a failing API asked "
          f"{baseline} time(s) before, {after} after; retries {configured} -> {now_configured}")
    problems = verdict(outcomes, stray, queue, [*ledgers, probes], start, final,
                       {"cache": cached})
    if after != baseline:
        problems.append(f"after concurrent auto-pushes an explicit push asked the failing API "
                        f"{after} time(s), before them {baseline}: the retry setting changed")
    if configured != now_configured:
        problems.append(f"wb.client.retries was {configured}, is {now_configured} after "
                        f"concurrent auto-pushes")
    assert not problems, f"({outcomes.report()}):\n" + "\n\n".join(problems)


# -- the concurrency core: listeners, the pusher, close ------------------------------------


def _sellerbench_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sellerbench-")]


def test_a_listener_may_sync_and_push_from_a_syncs_push(make_server, tmp_path, stray):
    """A listener that calls wb.sync() and wb.push() when a sync's push tells it: the
    sync returns, and so do the listener's calls (they were once told with the sync
    lock held, and the sync hung for good)."""
    server = make_server(n=40, seed=3)
    wb = connect(server.url, server.tokens["analyst"], tmp_path / "cache.duckdb",
                 auto_push=False)
    try:
        wb.sync(progress=False)
        ids = wb.sellers()["id"].tolist()
        heard: list[str] = []

        def listener(event: str) -> None:
            heard.append(str(event))
            if event == "push" and heard.count("push") == 1:
                wb.flag(ids[1])
                heard.append(f"listener push: {wb.push().sent}")
                heard.append(f"listener sync: {wb.sync(progress=False).mode}")

        wb.subscribe(listener)
        wb.flag(ids[0])
        syncing = threading.Thread(target=lambda: heard.append(
            f"sync: {wb.sync(progress=False).pushed.sent}"), name="syncing", daemon=True)
        syncing.start()
        syncing.join(60)
        assert not syncing.is_alive(), f"the sync hung; heard {heard}"
        assert "listener push: 1" in heard and "listener sync: rev" in heard
        assert "sync: 1" in heard and wb.pending().empty
    finally:
        wb.close()
    assert not stray


def test_push_waits_for_the_round_that_holds_its_change(make_server, tmp_path, stray):
    """A change made while a push round runs is not in that round: wb.push() then waits
    for the next one (the generation that holds it), and returns with it sent."""
    server = make_server(n=40, seed=4)
    wb = connect(server.url, server.tokens["analyst"], tmp_path / "cache.duckdb",
                 auto_push=False)
    try:
        wb.sync(progress=False)
        ids = wb.sellers()["id"].tolist()
        later: dict[str, Any] = {}
        flagged = threading.Event()

        def change_and_push() -> None:
            wb.flag(ids[1])
            flagged.set()
            later["report"] = wb.push()

        def listener(event: str) -> None:  # told by the first round, before it ends
            if event == "push" and "thread" not in later:
                later["thread"] = threading.Thread(target=change_and_push, daemon=True)
                later["thread"].start()
                assert flagged.wait(30)
                time.sleep(0.2)  # its push() asks while this round still runs

        wb.subscribe(listener)
        wb.flag(ids[0])
        first = wb.push()
        later["thread"].join(60)
        assert first.sent == 1
        assert later["report"].sent == 1, later["report"]
        assert wb.pending().empty
    finally:
        wb.close()
    assert not stray


def test_close_leaves_no_thread_behind(make_server, tmp_path, stray):
    """Auto-pushes from several threads, a sync, then close(): no sellerbench thread is
    left (the pusher stops; no round chains another thread), and a push asked after
    close is refused with what to do, the change kept."""
    server = make_server(n=60, seed=5)
    before = set(_sellerbench_threads())
    wb = connect(server.url, server.tokens["analyst"], tmp_path / "cache.duckdb",
                 auto_push=True)
    wb.sync(progress=False)
    ids = wb.sellers()["id"].tolist()

    def flagger(part: list[str]) -> None:
        for sid in part:
            wb.flag(sid)

    threads = [threading.Thread(target=flagger, args=(ids[i::3][:10],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert any(t.name == "sellerbench-push" for t in _sellerbench_threads())
    wb.close()
    assert set(_sellerbench_threads()) <= before, _sellerbench_threads()
    with pytest.raises(SellerbenchError, match="closed"):
        wb._pusher.ask({"client": wb.client})
    assert not stray


def test_a_listener_that_changes_sellers_on_each_push_is_sent_by_later_rounds(
    make_server, tmp_path, stray
):
    """With auto-push on, a listener flags a seller whenever a push tells it: each such
    change joins the next round (no round inside a round), and all of them go out."""
    server = make_server(n=40, seed=6)
    wb = connect(server.url, server.tokens["analyst"], tmp_path / "cache.duckdb",
                 auto_push=True)
    try:
        wb.sync(progress=False)
        ids = wb.sellers()["id"].tolist()[:6]
        left = list(ids[1:])
        depth: list[int] = []

        def listener(event: str) -> None:
            if event == "push" and left:
                depth.append(sum(1 for f in traceback.extract_stack()
                                 if f.name == "_push_round"))
                wb.flag(left.pop())

        wb.subscribe(listener)
        wb.flag(ids[0])
        deadline = time.monotonic() + 60
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
        wb.push()
        assert not left and wb.pending().empty
        assert set(depth) == {1}, depth  # every change in a round of its own, never nested
        assert wb.sellers(flagged=True)["id"].isin(ids).sum() == len(ids)
    finally:
        wb.close()
    assert not stray
