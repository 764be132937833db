"""The grid's large reads beside an analyst's own calls, on one cache, in two threads.

    .venv/bin/python benchmarks/side_by_side.py             # 1,000,000 sellers, 12 rounds
    .venv/bin/python benchmarks/side_by_side.py --quick     # 20,000 sellers, 2 rounds

Issue 21's run: one thread changes the grid's search and sort (each a large read
through the grid's ``Viewport``: the snapshot of every shown row) while another runs
what an analyst runs in a cell: ``wb.sql`` group-bys, a sort of every seller, a
``string_agg``, a self-join, ``wb.sellers()`` and ``wb.export(...parquet)``. Both run a
fixed number of rounds (not a deadline); every answer is compared with what the same
call answered alone, before the threads started. The cache is filled directly with
DuckDB (as ``benchmarks/grid.py`` does), no server: nothing here talks to the API.

Printed: calls per side, failures (any exception: the bar is none), answers that
differed from the call alone (the bar is none), wall time, and the peak RSS of this
process (psutil, sampled every 50 ms). Exit code 1 when a bar fails.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow.parquet as pq
from grid import fill

from sellerbench.grid.viewport import Viewport
from sellerbench.workbench import Workbench

# The grid's side: (search, sort column, descending); each change is one large read.
GRID_STEPS: tuple[tuple[str, str, bool], ...] = (
    ("", "Name", False), ("seller 00", "Name", True), ("", "Updated", True),
    ("7", "Name", False), ("", "Times seen", True), ("seller 1", "Updated", False),
)
# The analyst's side: what a cell runs, each answering one fingerprint.
QUERIES: dict[str, str] = {
    "group-by": "SELECT platform, flagged, count(*) AS n, round(avg(times_seen), 6) AS a "
                "FROM visible_sellers GROUP BY ALL ORDER BY ALL",
    "sort": "SELECT id FROM visible_sellers ORDER BY display_name DESC, id",
    "string_agg": "SELECT platform, md5(string_agg(display_name, ',' ORDER BY display_name)) "
                  "AS h, count(*) AS n FROM visible_sellers GROUP BY 1 ORDER BY 1",
    "self-join": "SELECT count(*) AS n, sum(a.times_seen + b.times_seen) AS s "
                 "FROM visible_sellers a JOIN visible_sellers b ON a.platform_id = b.platform_id",
}


@dataclass
class Tally:
    """What one side did: calls, failures (any exception), answers unlike the call alone."""

    calls: int = 0
    failures: list[str] = field(default_factory=list)
    differed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, name: str, call: Callable[[], Any], alone: Any) -> None:
        try:
            got = call()
        except Exception as exc:  # every failure is the finding
            with self.lock:
                self.calls += 1
                self.failures.append(f"{name}: {type(exc).__name__}: {str(exc)[:300]}")
            return
        with self.lock:
            self.calls += 1
            if got != alone:
                self.differed.append(f"{name}: {str(got)[:200]} alone {str(alone)[:200]}")


def _digest(values: Any) -> str:
    return hashlib.md5("\x1f".join(map(str, values)).encode()).hexdigest()


def analyst_calls(wb: Workbench, folder: Path) -> dict[str, Callable[[], Any]]:
    """Each analyst call as a function returning a small fingerprint of its answer."""
    out = folder / "export.parquet"

    def sql(query: str) -> Callable[[], Any]:
        return lambda: _digest(wb.sql(query).itertuples(index=False, name=None))

    def sellers() -> Any:
        frame = wb.sellers()
        return len(frame), _digest(frame["id"])

    def export() -> Any:
        report = wb.export(out, overwrite=True, progress=False)
        return report.rows, pq.read_metadata(out).num_rows

    return {**{name: sql(q) for name, q in QUERIES.items()},
            "wb.sellers()": sellers, "wb.export(parquet)": export}


def grid_read(viewport: Viewport, step: tuple[str, str, bool]) -> Any:
    """One search-and-sort change and its read: the rows shown and the first page's
    sort-column values (ties may come in any order; their values may not)."""
    search, label, descending = step
    viewport.set_search(search)
    viewport.set_sort(label, descending)
    count = viewport.row_count
    return count, tuple(viewport.page(0, 39)[label].astype(str))


def run(n: int, rounds: int, folder: Path) -> dict[str, Any]:
    """Fill a cache of ``n`` sellers in ``folder`` and run both sides ``rounds`` times."""
    store = fill(folder / "cache.duckdb", n)
    wb = Workbench(store, None, auto_push=False)
    viewport = Viewport(store)
    calls = analyst_calls(wb, folder)
    alone_calls = {name: call() for name, call in calls.items()}
    alone_grid = [grid_read(viewport, step) for step in GRID_STEPS]
    grid, analyst = Tally(), Tally()
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        import psutil

        me = psutil.Process(os.getpid())
        while not done.wait(0.05):
            peak[0] = max(peak[0], me.memory_info().rss)

    def grid_side() -> None:
        for _ in range(rounds):
            for step, alone in zip(GRID_STEPS, alone_grid, strict=True):
                grid.check(f"grid {step}", lambda s=step: grid_read(viewport, s), alone)

    def analyst_side() -> None:
        for _ in range(rounds):
            for name, call in calls.items():
                analyst.check(name, call, alone_calls[name])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=grid_side, name="grid-side"),
               threading.Thread(target=analyst_side, name="analyst-side")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    wb.close()
    return {"n": n, "rounds": rounds, "seconds": seconds, "peak_mb": peak[0] / 2**20,
            "grid": grid, "analyst": analyst}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 sellers, 2 rounds")
    parser.add_argument("--n", type=int, default=1_000_000, help="sellers in the cache")
    parser.add_argument("--rounds", type=int, default=12, help="rounds of each side")
    args = parser.parse_args(argv)
    n, rounds = (20_000, 2) if args.quick else (args.n, args.rounds)
    print(f"load before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="sellerbench-side-") as folder:
        result = run(n, rounds, Path(folder))
    print(f"load after: {os.getloadavg()[0]:.2f}")
    grid, analyst = result["grid"], result["analyst"]
    print(f"side by side at {n:,} sellers, {rounds} rounds each: {result['seconds']:.1f} s, "
          f"peak RSS {result['peak_mb']:.0f} MB")
    print(f"  grid reads:     {grid.calls:4d} calls, {len(grid.failures)} failed, "
          f"{len(grid.differed)} answered otherwise than alone")
    print(f"  analyst calls:  {analyst.calls:4d} calls, {len(analyst.failures)} failed, "
          f"{len(analyst.differed)} answered otherwise than alone")
    for line in [*grid.failures, *grid.differed, *analyst.failures, *analyst.differed][:20]:
        print("   ", line)
    bad = grid.failures or grid.differed or analyst.failures or analyst.differed
    print("bar: no call fails, every answer as alone:", "FAIL" if bad else "ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
