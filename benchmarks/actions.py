"""Actions at scale: flag N sellers from a filter, undo it, push it; by ids as the peer.

    .venv/bin/python benchmarks/actions.py            # 1,000,000 sellers
    .venv/bin/python benchmarks/actions.py --quick    # 20,000 sellers, seconds
    .venv/bin/python benchmarks/actions.py --no-push  # the local part only

Local part (no server): a cache is filled with N server rows (SQL), then

1. ``wb.flag(where="true")`` flags every one of the N sellers from a filter, and
   ``wb.undo()`` takes it back (never sent: the queue rows leave in one UPDATE);
2. the peer, in the same run: ``wb.flag(ids)`` of the same N ids held in a Python
   list (what a cell does with ``wb.sellers()["id"]``), and its undo.

Each is timed from the call to its return; the process's resident memory (RSS) is read
before the first action and after each one (growth = the kernel's cost). The repr of
each result is measured too (at most 1,000 characters).

Push part: the reference server runs as a subprocess with the same N sellers
(``sellerbench serve --demo N``); a workbench syncs it, flags all N from a filter and
pushes them; the server's flagged count must then be N and nothing pending. Then it
deletes 100,000 of them (all, if fewer), pushes, undoes the delete (restores queued
set-based) and pushes the restores: the server's live count must be back.

The acceptance bars (issue 21; 1,000,000 sellers: flag <= 2 s, undo <= 2 s, RSS growth
<= 400 MB, push <= 40 s) are printed beside the figures; the exit code is 0 unless an
action lost something.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from serverproc import start_server  # noqa: E402

sys.path.insert(0, str(ROOT))

FILL = """
INSERT INTO sellers
SELECT uuid()::VARCHAR, 'Seller ' || lpad(i::VARCHAR, 7, '0'),
       'seller ' || lpad(i::VARCHAR, 7, '0'), 'ebay', NULL, (i % 9)::INTEGER, false,
       NULL, NULL, TIMESTAMPTZ '2026-01-01' + to_seconds(i),
       TIMESTAMPTZ '2026-01-01' + to_seconds(i), NULL, i
FROM range(?) t(i)
"""
BARS = {"flag": 2.0, "undo": 2.0, "rss_mb": 400.0, "push": 40.0}  # at 1,000,000


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux /proc)."""
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def timed(label: str, call, base_rss: float) -> tuple[float, object]:
    started, cpu = time.perf_counter(), time.process_time()
    result = call()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"{label:<38} {took:6.2f} s (CPU {cpu:5.2f} s)   "
          f"RSS growth {rss_mb() - base_rss:5.0f} MB   repr {len(repr(result)):,} chars")
    return took, result


def flagged_count(wb) -> int:
    return int(wb.sql("SELECT count(*) AS n FROM visible_sellers WHERE flagged")["n"][0])


def local_part(n: int, folder: Path) -> int:
    from sellerbench.cache.store import Store
    from sellerbench.workbench import Workbench

    store = Store(folder / "local.duckdb")
    wb = Workbench(store, None, auto_push=False)
    try:
        with store.connect() as con:
            con.execute(FILL, [n]).fetchall()
        print(f"local cache: {n:,} sellers")
        base = rss_mb()
        flag_s, action = timed(f"flag {n:,} from a filter", lambda: wb.flag(where="true"), base)
        ok = len(action) == n and flagged_count(wb) == n
        undo_s, _ = timed("undo (never sent)", wb.undo, base)
        ok = ok and flagged_count(wb) == 0
        grown = rss_mb() - base
        ids = wb.sql("SELECT id FROM sellers")["id"].tolist()
        base_ids = rss_mb()
        ids_s, by_ids = timed(f"peer: flag {n:,} by ids (a list)", lambda: wb.flag(ids), base_ids)
        ok = ok and len(by_ids) == n and flagged_count(wb) == n
        timed("peer: undo (never sent)", wb.undo, base_ids)
        ok = ok and flagged_count(wb) == 0
    finally:
        wb.close()
    print(f"filter / ids: {flag_s / ids_s:.2f}x the time of the peer")
    if n >= 1_000_000:
        for name, value in (("flag", flag_s), ("undo", undo_s), ("rss_mb", grown)):
            unit = "MB" if name == "rss_mb" else "s"
            verdict = "met" if value <= BARS[name] else "NOT met"
            print(f"bar: {name} at most {BARS[name]:g} {unit}: {verdict}")
    if not ok:
        print("an action lost sellers", file=sys.stderr)
    return 0 if ok else 1


def push_part(n: int, folder: Path) -> int:
    from sellerbench.workbench import connect

    started = time.perf_counter()
    server, url, tokens = start_server(n, folder)
    print(f"server: {n:,} demo sellers in {time.perf_counter() - started:.0f} s")
    try:
        wb = connect(url, tokens["analyst"], folder / "cache.duckdb", auto_push=False)
        try:
            wb.sync(progress=False)
            live = int(wb.sql("SELECT count(*) AS n FROM visible_sellers")["n"][0])
            unflagged = live - flagged_count(wb)
            timed(f"flag {unflagged:,} unflagged from a filter",
                              lambda: wb.flag(where="NOT flagged"), rss_mb())
            push_s, report = timed(f"push {unflagged:,} flags (4 in flight)",
                                   lambda: wb.push(wait=30.0, progress=False), rss_mb())
            print(f"  {report}")
            ok = report.succeeded == unflagged and report.still_pending == 0
            server_flagged = _server_flagged(folder / "server.sqlite3")
            ok = ok and server_flagged == live
            print(f"server flagged after the push: {server_flagged:,} of {live:,} live")
            ok = undo_pushed_deletes(wb, min(live, 100_000), live, folder) and ok
        finally:
            wb.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    if n >= 1_000_000:
        verdict = "met" if push_s <= BARS["push"] else "NOT met"
        print(f"bar: push at most {BARS['push']:g} s: {verdict}")
    if not ok:
        print("the push left something behind", file=sys.stderr)
    return 0 if ok else 1


def undo_pushed_deletes(wb, k: int, live: int, folder: Path) -> bool:
    """Delete ``k`` sellers, push, undo (restores queued set-based), push the restores:
    the server must hold ``live`` live sellers again."""
    first = wb.sql(f"SELECT id FROM visible_sellers ORDER BY id LIMIT 1 OFFSET {k - 1}")
    where = f"id <= '{first['id'][0]}'"
    wb.delete(where=where)
    timed(f"push {k:,} deletes", lambda: wb.push(wait=30.0, progress=False), rss_mb())
    _, said = timed(f"undo of {k:,} pushed deletes", wb.undo, rss_mb())
    print(f"  {said}")
    _, report = timed(f"push {k:,} restores", lambda: wb.push(wait=30.0, progress=False),
                      rss_mb())
    back = _server_live(folder / "server.sqlite3")
    print(f"server live after the restores: {back:,} of {live:,}")
    return report.still_pending == 0 and back == live


def _server_live(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as con:
        query = "SELECT count(*) FROM sellers WHERE deleted_at IS NULL"
        return int(con.execute(query).fetchone()[0])


def _server_flagged(db: Path) -> int:
    """The server's flagged live sellers, read from its own database file."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        query = "SELECT count(*) FROM sellers WHERE flagged = 1 AND deleted_at IS NULL"
        return int(con.execute(query).fetchone()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 sellers")
    parser.add_argument("--sellers", type=int, default=None)
    parser.add_argument("--no-push", action="store_true", help="the local part only")
    args = parser.parse_args(argv)
    n = args.sellers or (20_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="sellerbench-actions-") as folder:
        code = local_part(n, Path(folder))
        if not args.no_push:
            code |= push_part(n, Path(folder))
    return code


if __name__ == "__main__":
    sys.exit(main())
