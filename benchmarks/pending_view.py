"""What the analyst sees at scale: the visible_sellers view beside the bare sellers table.

    .venv/bin/python benchmarks/pending_view.py            # 1,000,000 cached sellers
    .venv/bin/python benchmarks/pending_view.py --quick    # 100,000, seconds

A cache is filled with N server rows (SQL, no server needed) and 1,000 pending changes
are queued through the public API (flags, renames, deletes, creates). Then each query
runs on ``visible_sellers`` (server rows with the pending changes on top) and on its
peer, the same query on ``sellers`` alone (what a cache without a queue would run);
the median of 5 runs on one open connection is printed with the ratio. The time to
queue one change (its checks run against the view) is printed too. Exit code 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FILL = """
INSERT INTO sellers
SELECT uuid()::VARCHAR, 'Seller ' || lpad(i::VARCHAR, 7, '0'),
       'seller ' || lpad(i::VARCHAR, 7, '0'), 'ebay', NULL, (i % 9)::INTEGER, i % 25 = 0,
       NULL, NULL, TIMESTAMPTZ '2026-01-01' + to_seconds(i),
       TIMESTAMPTZ '2026-01-01' + to_seconds(i), NULL, i
FROM range(?) t(i)
"""

QUERIES = {
    "first page by name (ORDER BY display_name LIMIT 50)": (
        "SELECT * FROM visible_sellers ORDER BY display_name LIMIT 50",
        "SELECT * EXCLUDE (rev) FROM sellers WHERE deleted_at IS NULL "
        "ORDER BY display_name LIMIT 50",
    ),
    "count": (
        "SELECT count(*) FROM visible_sellers",
        "SELECT count(*) FROM sellers WHERE deleted_at IS NULL",
    ),
    "flagged count": (
        "SELECT count(*) FROM visible_sellers WHERE flagged",
        "SELECT count(*) FROM sellers WHERE deleted_at IS NULL AND flagged",
    ),
}


def median_ms(con, sql: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        con.execute(sql).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(n: int, folder: Path) -> None:
    from sellerbench.cache.store import Store
    from sellerbench.workbench import Workbench

    store = Store(folder / "cache.duckdb")
    wb = Workbench(store, None, auto_push=False)
    started = time.perf_counter()
    with store.connect() as con:
        con.execute(FILL, [n]).fetchall()
        ids = [r[0] for r in con.execute(
            "SELECT id FROM sellers USING SAMPLE 1000 ROWS (reservoir, 7)").fetchall()]
    print(f"filled {n:,} sellers in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    wb.flag(ids[:600], True)
    for i, seller in enumerate(ids[600:800]):
        wb.rename(seller, f"Pending Rename {i}")
    wb.delete(ids[800:900])
    wb.create([f"Pending Create {i}" for i in range(100)])
    took = time.perf_counter() - started
    print(f"queued 1,000 changes in 403 actions in {took:.1f} s "
          f"({took / 403 * 1000:.0f} ms per action, checks against the view included)")
    with store.connect() as con:
        for name, (view_sql, peer_sql) in QUERIES.items():
            view, peer = median_ms(con, view_sql), median_ms(con, peer_sql)
            print(f"{name}: visible_sellers {view:7.1f} ms, sellers alone {peer:7.1f} ms, "
                  f"ratio {view / peer:.1f}x")
    wb.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 sellers")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sellerbench-view-") as folder:
        run(100_000 if args.quick else 1_000_000, Path(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
