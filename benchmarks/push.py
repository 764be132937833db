"""Pushing queued flags: bulk calls beside one request per change, full and base-only servers.

    .venv/bin/python benchmarks/push.py                      # 10,000 flags, both servers
    .venv/bin/python benchmarks/push.py --flags 100000       # 100,000 (bulk; base: 10,000)
    .venv/bin/python benchmarks/push.py --flags 1000000 --no-base --no-single
    .venv/bin/python benchmarks/push.py --quick              # 300 flags, seconds

The reference server runs as a subprocess (``sellerbench serve --demo N`` on a free
port). A workbench syncs it, queues N flags (``flagged=True``; every one a real change)
and pushes them with bulk calls (10,000 ids each, 4 in flight); then queues N unflags
and pushes them one request per change (``coalesce=False``), the peer in the same run,
so both pushes change N sellers. Each push is timed from the call to its return, the
queue's bookkeeping in the cache included.

Base-only server (``--base-only``: no bulk flag, no flag_set, no idempotency): every
flag is a toggle of one seller, one request each, so its limit is the request rate of
one server; it runs at ``--base-flags`` (default: N, at most 10,000) and prints the
rate and what N would take at that rate.

The acceptance bars (10,000 flags in at most 2 s; 100,000 in 5 s; 1,000,000 in 40 s,
bulk calls, full server) are printed beside the figures; the exit code is 0 unless a
push left something behind.
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

BARS = {10_000: 2.0, 100_000: 5.0, 1_000_000: 40.0}  # issues 4 and 21: bulk, full server


CHUNK: dict[str, int] = {}  # --chunk: ids per bulk call (default: the API's largest)


def timed_push(wb, ids: list[str], value: bool, coalesce: bool) -> tuple[float, float, object]:
    started = time.perf_counter()
    wb.flag(ids, value)
    queued = time.perf_counter() - started
    started = time.perf_counter()
    report = wb.push(coalesce=coalesce, wait=30.0, progress=False, **CHUNK)
    return queued, time.perf_counter() - started, report


def complete(report, n: int) -> bool:
    return report.still_pending == 0 and report.failed == 0 and report.succeeded == n


def run_full(n: int, folder: Path, single: bool) -> int:
    from sellerbench.workbench import connect

    started = time.perf_counter()
    server, url, tokens = start_server(n + n // 5 + 200, folder)  # some are flagged or gone
    print(f"full server: {n + n // 5 + 200:,} demo sellers in "
          f"{time.perf_counter() - started:.0f} s")
    ok = True
    try:
        wb = connect(url, tokens["analyst"], folder / "cache.duckdb", auto_push=False)
        try:
            wb.sync(progress=False)
            ids = wb.sellers(flagged=False)["id"].head(n).tolist()
            if len(ids) < n:
                raise RuntimeError(f"the demo has only {len(ids)} unflagged sellers")
            q_bulk, bulk, report = timed_push(wb, ids, True, coalesce=True)
            print(f"queueing {n:,} flags (check + one transaction): {q_bulk:.2f} s")
            print(f"bulk calls:       {n:,} flags pushed in {bulk:6.2f} s "
                  f"({report.calls} calls, {report.succeeded:,} confirmed)")
            ok = complete(report, n)
            if single:
                _, one, one_report = timed_push(wb, ids, False, coalesce=False)
                print(f"one per change:   {n:,} flags pushed in {one:6.2f} s "
                      f"({one_report.calls} calls, {one_report.succeeded:,} confirmed)")
                print(f"ratio (one per change / bulk): {one / bulk:.1f}x")
                ok = ok and complete(one_report, n)
        finally:
            wb.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    if n in BARS:
        verdict = "met" if bulk <= BARS[n] else "NOT met"
        print(f"bar: {n:,} flags with bulk calls in at most {BARS[n]:g} s: {verdict}")
    return 0 if ok else 1


def run_base(n: int, folder: Path) -> int:
    from sellerbench.workbench import connect

    server, url, tokens = start_server(n + n // 5 + 200, folder, base_only=True)
    try:
        wb = connect(url, tokens["analyst"], folder / "base.duckdb", auto_push=False)
        try:
            wb.sync(progress=False)
            ids = wb.sellers(flagged=False)["id"].head(n).tolist()
            _, took, report = timed_push(wb, ids, True, coalesce=True)
        finally:
            wb.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    rate = n / took
    print(f"base-only server: {n:,} flags pushed in {took:6.2f} s "
          f"({report.calls} calls, {report.succeeded:,} confirmed; one toggle per seller)")
    print(f"base-only limit: {rate:,.0f} toggles/s: 100,000 flags would take "
          f"~{100_000 / rate:,.0f} s, 1,000,000 ~{1_000_000 / rate:,.0f} s")
    return 0 if complete(report, n) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 flags instead of 10,000")
    parser.add_argument("--flags", type=int, default=None, help="how many flags to push")
    parser.add_argument("--base-flags", type=int, default=None,
                        help="flags pushed to the base-only server (default: min(N, 10,000))")
    parser.add_argument("--no-base", action="store_true", help="skip the base-only server")
    parser.add_argument("--no-single", action="store_true",
                        help="skip the one-request-per-change peer")
    parser.add_argument("--chunk", type=int, default=None, help="ids per bulk call")
    args = parser.parse_args(argv)
    if args.chunk:
        CHUNK["chunk"] = args.chunk
    n = args.flags or (300 if args.quick else 10_000)
    code = 0
    with tempfile.TemporaryDirectory(prefix="sellerbench-push-") as folder:
        code |= run_full(n, Path(folder) / "full", single=not args.no_single)
    if not args.no_base:
        with tempfile.TemporaryDirectory(prefix="sellerbench-push-base-") as folder:
            code |= run_base(args.base_flags or min(n, 10_000), Path(folder))
    if code:
        print("a push left something behind", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
