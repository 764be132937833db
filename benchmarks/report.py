"""The report of a large cache: ours against the report before issue 23, in one run.

    .venv/bin/python benchmarks/report.py            # 1,000,000 sellers, best of 3 rounds
    .venv/bin/python benchmarks/report.py --quick    # 20,000 sellers, one round

A cache is filled directly (benchmarks/export.py's realistic sellers, plus 60 runs of
every outcome). Each report is ``sellerbench report --cache ... --quiet`` in a process
of its own, timed from start to exit (kernel start, notebook, HTML, data files):

- first:  our report into ``reports/first`` (no previous report: no comparison);
- second: our report into ``reports/second`` after 1 % of the sellers changed (flags,
  renames, deletes, new ones): it compares the whole cache with the first's state;
- before: the report as it was before issue 23 (``sellerbench`` at ``PEER_COMMIT``, taken
  with ``git archive`` and put first on PYTHONPATH) on the same cache written by its
  own code (its schema version), the peer the 10.7 s figure came from.

Each round makes all three (a first report in a folder of its own, 1 % of the sellers
changed, the second beside it, then the peer); the best of the rounds is printed, so
load from other processes hits all three alike. After each, no process it started may
be alive (each run carries a marker in its
environment, which its children inherit). The bar (≤ 15 s at 1,000,000 sellers) is
printed with the figures; the exit code is 1 when a process was left behind, else 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from io import BytesIO
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
if "SELLERBENCH_PEER" not in os.environ:  # the peer's cache is built by the peer's code
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from export import build_cache  # noqa: E402  (benchmarks/export.py)

BAR_SECONDS = 15.0
BAR_ROWS = 1_000_000

RUNS = """
INSERT INTO collection_runs (id, name, status, category_ids, started_at, completed_at,
    created_at, updated_at, sellers_found, sellers_new, failed_items, duration_seconds)
SELECT 'run-' || i, 'Sweep ' || i, (['completed', 'completed', 'completed', 'failed',
       'completed', 'cancelled'])[1 + i % 6], ['c1'],
       TIMESTAMPTZ '2025-01-01 00:00:00+00' + INTERVAL (i * 5) DAY,
       TIMESTAMPTZ '2025-01-01 02:00:00+00' + INTERVAL (i * 5) DAY,
       TIMESTAMPTZ '2025-01-01 00:00:00+00' + INTERVAL (i * 5) DAY,
       TIMESTAMPTZ '2025-01-01 00:00:00+00' + INTERVAL (i * 5) DAY,
       {n} // 50 + i * 97, {n} // 500 + i * 13, i % 6 * 3, 7200 + i * 60
FROM range(60) t(i)
"""
# 1 % of the sellers change between the two reports, as a sync would bring it.
CHANGE = """
UPDATE sellers SET flagged = NOT flagged WHERE hash(id) % 300 = 0;
UPDATE sellers SET display_name = display_name || ' (renamed)' WHERE hash(id) % 300 = 1;
UPDATE sellers SET deleted_at = now() WHERE hash(id) % 300 = 2;
INSERT INTO sellers SELECT uuid()::VARCHAR, 'Newcomer ' || i, 'newcomer ' || i, 'ebay',
    NULL, 1, i % 7 = 0, 'run-59', 'run-59', now(), now(), NULL, NULL
FROM range({n} // 300) t(i);
"""


def prepare(work: Path, rows: int) -> Path:
    store = build_cache(work / "cache.duckdb", rows)
    with store.connect() as con:
        con.execute(RUNS.format(n=rows))
        con.execute("CHECKPOINT")
    return store.path


def prepare_peer(work: Path, rows: int, peer: Path) -> Path:
    """The same cache written by the peer's own code (it reads only its schema version)."""
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(peer), "SELLERBENCH_PEER": "1"}
    subprocess.run([sys.executable, __file__, "--prepare", str(work), "--rows", str(rows)],
                   env=env, check=True, timeout=900)
    return work / "cache.duckdb"


def change(cache: Path, rows: int) -> None:
    import duckdb

    with duckdb.connect(str(cache)) as con:
        con.execute(CHANGE.format(n=rows))
        con.execute("CHECKPOINT")


# main just before the report of issue 23 landed (the first parent of its merge,
# 46b322e): the old report, the peer. Fixed, so the peer is the same from any branch or
# clone (a merge base with main would be HEAD itself on main).
PEER_COMMIT = "91300e965fd59a979961facbb70cfc962bdcd97c"


def peer_tree(work: Path) -> Path:
    """The sellerbench package of ``PEER_COMMIT`` (the report before issue 23)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", PEER_COMMIT, "sellerbench"],
                             capture_output=True, check=True).stdout
    target = work / "before"
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def left_behind(marker: str) -> list[int]:
    pids = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.environ().get("SELLERBENCH_BENCH_MARK") == marker:
                pids.append(process.pid)
        except (psutil.Error, OSError):
            continue
    return pids


def report(cache: Path, out: Path, pythonpath: Path | None = None) -> tuple[float, list[int]]:
    """Seconds for ``sellerbench report`` in a process of its own, and the PIDs of the
    processes it started that are still alive after it exited."""
    out.parent.mkdir(parents=True, exist_ok=True)
    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELLERBENCH_")}
    env.update(SELLERBENCH_BENCH_MARK=marker, SELLERBENCH_HOME=str(out.parent / "home"))
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "sellerbench", "report", "--cache", str(cache),
         "--output", str(out), "--quiet"],
        capture_output=True, text=True, env=env, cwd=out.parent, timeout=900,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the report into {out} failed:\n{done.stderr[-3000:]}")
    time.sleep(0.5)  # a kernel told to stop gets half a second to go
    return seconds, left_behind(marker)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=BAR_ROWS)
    parser.add_argument("--quick", action="store_true", help="20,000 sellers")
    parser.add_argument("--keep", action="store_true", help="keep the cache and reports")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (best is kept)")
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)  # prepare_peer
    args = parser.parse_args(argv)
    if args.prepare is not None:
        prepare(args.prepare, args.rows)
        return 0
    rows, repeat = (20_000, 1) if args.quick else (args.rows, args.repeat)
    work = Path(tempfile.mkdtemp(prefix="sellerbench-report-bench-"))
    try:
        started = time.perf_counter()
        cache = prepare(work, rows)
        print(f"cache with {rows:,} sellers and 60 runs built in "
              f"{time.perf_counter() - started:.1f} s at {work}", flush=True)
        (work / "home").mkdir()
        peer = peer_tree(work)
        peer_cache = prepare_peer(work / "peer", rows, peer)
        rounds = []
        for round_ in range(repeat):
            reports = work / f"round{round_}"
            reports.mkdir()
            first = report(cache, reports / "first")
            change(cache, rows)
            change(peer_cache, rows)
            second = report(cache, reports / "second")
            before = report(peer_cache, reports / "before" / "report", peer)
            rounds.append((first, second, before))
            print(f"round {round_ + 1}: {first[0]:.1f} {second[0]:.1f} {before[0]:.1f} s",
                  flush=True)
        first, second, before = (
            (min(r[i][0] for r in rounds), [p for r in rounds for p in r[i][1]])
            for i in range(3))
        load = os.getloadavg()
        print(f"\n{rows:,} sellers, `sellerbench report` start to exit, best of {repeat} "
              f"(seconds); load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on "
              f"{os.cpu_count()} cores")
        print(f"{'report':<44}{'seconds':>9}  left behind")
        for name, (seconds, left) in (
                ("ours, first (no previous report)", first),
                ("ours, second (changes since the first)", second),
                ("before issue 23", before)):
            print(f"{name:<44}{seconds:>9.1f}  {len(left)}")
        ratio = second[0] / before[0]
        print(f"second / before: {ratio:.2f}")
        worst = max(first[0], second[0])
        scale = "" if rows == BAR_ROWS else f" (bar is for {BAR_ROWS:,} sellers)"
        verdict = "PASS" if worst <= BAR_SECONDS else "MISS"
        print(f"{verdict} report ≤ {BAR_SECONDS:.0f} s: {worst:.1f} s{scale}")
        ours_left = first[1] + second[1]
        print(f"{'PASS' if not ours_left else 'MISS'} no process left behind by ours: "
              f"{ours_left or 'none'}")
        return 1 if ours_left else 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
