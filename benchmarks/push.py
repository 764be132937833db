"""Pushing queued flags: coalesced bulk calls beside one request per change, same run.

    .venv/bin/python benchmarks/push.py            # 10,000 flags
    .venv/bin/python benchmarks/push.py --quick    # 300 flags, seconds

The reference server runs as a subprocess (``sellerbench serve --demo N`` on a free
port). A workbench syncs it, queues N flags (``flagged=True``; every one a real change)
and pushes them with bulk calls; then queues N unflags and pushes them one request per
change (``coalesce=False``), so both pushes change N sellers. Each push is timed from
the call to its return, the queue's bookkeeping in the cache included. The acceptance
bar (10,000 flags in at most 2 s with bulk calls) is printed beside the figures; the
exit code is 0 unless a push left something behind.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from serverproc import start_server  # noqa: E402

sys.path.insert(0, str(ROOT))

BAR_SECONDS = 2.0  # issue 4: 10,000 queued flags pushed with bulk calls


def timed_push(wb, ids: list[str], value: bool, coalesce: bool) -> tuple[float, float, object]:
    started = time.perf_counter()
    wb.flag(ids, value)
    queued = time.perf_counter() - started
    started = time.perf_counter()
    report = wb.push(coalesce=coalesce, wait=30.0)
    return queued, time.perf_counter() - started, report


def run(n: int, folder: Path) -> int:
    from sellerbench.workbench import connect

    server, url, tokens = start_server(n + n // 5 + 200, folder)  # some are flagged or gone
    try:
        wb = connect(url, tokens["analyst"], folder / "cache.duckdb", auto_push=False)
        try:
            wb.sync(progress=False)
            ids = wb.sellers(flagged=False)["id"].head(n).tolist()
            if len(ids) < n:
                raise RuntimeError(f"the demo has only {len(ids)} unflagged sellers")
            q_bulk, bulk, bulk_report = timed_push(wb, ids, True, coalesce=True)
            q_one, single, one_report = timed_push(wb, ids, False, coalesce=False)
        finally:
            wb.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"queueing {n:,} flags (check + one transaction): {q_bulk:.2f} s and {q_one:.2f} s")
    print(f"bulk calls:       {n:,} flags pushed in {bulk:6.2f} s "
          f"({bulk_report.calls} calls, {bulk_report.succeeded:,} confirmed)")
    print(f"one per change:   {n:,} flags pushed in {single:6.2f} s "
          f"({one_report.calls} calls, {one_report.succeeded:,} confirmed)")
    print(f"ratio (one per change / bulk): {single / bulk:.1f}x")
    if n >= 10_000:
        verdict = "met" if bulk <= BAR_SECONDS else "NOT met"
        print(f"bar: 10,000 flags with bulk calls in at most {BAR_SECONDS:g} s: {verdict}")
    left = bulk_report.still_pending + one_report.still_pending
    failed = bulk_report.failed + one_report.failed
    if left or failed or bulk_report.succeeded != n or one_report.succeeded != n:
        print(f"push incomplete: {left} pending, {failed} failed", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 flags instead of 10,000")
    parser.add_argument("--flags", type=int, default=None, help="how many flags to push")
    args = parser.parse_args(argv)
    n = args.flags or (300 if args.quick else 10_000)
    with tempfile.TemporaryDirectory(prefix="sellerbench-push-") as folder:
        return run(n, Path(folder))


if __name__ == "__main__":
    sys.exit(main())
