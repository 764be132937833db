"""How fast the reference server creates demo data and serves the rev feed.

    .venv/bin/python benchmarks/server_demo.py            # N = 1,000,000
    .venv/bin/python benchmarks/server_demo.py --n 200000
    .venv/bin/python benchmarks/server_demo.py --quick    # N = 20,000 (the test suite runs this)

Prints, for N demo sellers: generation time and rows/s, database size, and then, over
HTTP against the embedded server, the time of 10,000-row ``since_rev`` pages while
walking the whole feed (every live seller must be seen exactly once). The peer figure
measured in the same run is a plain ``executemany`` of the same rows, built beforehand,
into an empty table with no indexes: the floor any SQLite loader pays, so ``ratio`` says
how much generating the rows and building the indexes add on top.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from sellerbench.server.embedded import start
from sellerbench.server.simulator import demo


def peer_insert(n: int, seed: int, folder: Path) -> float:
    """Rows/s of a bare executemany of the same rows (built beforehand) into a table with
    no indexes; at most 200,000 rows, so the peer does not hold a million tuples."""
    n = min(n, 200_000)
    rng = random.Random(seed)
    start_us = int(demo.ANCHOR.timestamp() * 1_000_000) - demo.SPAN_SECONDS * 1_000_000
    runs = demo._runs(rng, demo._Clock(), start_us, 0)
    rows = list(demo._sellers(n, rng, start_us, runs, len(runs)))
    conn = sqlite3.connect(folder / "peer.sqlite3", isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute(f"CREATE TABLE sellers ({', '.join(f'c{i}' for i in range(13))})")
    began = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO sellers VALUES ({', '.join('?' * 13)})", rows)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - began
    conn.close()
    return n / seconds


def walk_feed(url: str, token: str, limit: int) -> tuple[int, int, list[float]]:
    """(live rows seen, pages, per-page seconds) walking since_rev=0 to the end."""
    seen: set[str] = set()
    live = 0
    timings: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        cursor = None
        for _ in range(100_000):
            params = {"since_rev": 0, "limit": limit}
            if cursor:
                params["cursor"] = cursor
            began = time.perf_counter()
            answer = client.get("/sync/sellers", params=params).raise_for_status()
            timings.append(time.perf_counter() - began)  # served and received, not parsed
            page = answer.json()
            for item in page["items"]:
                if item["id"] in seen:
                    raise AssertionError(f"{item['id']} seen twice")
                seen.add(item["id"])
                live += item["deleted_at"] is None
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
    return live, len(timings), timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="demo sellers")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="N = 20,000, for the test suite")
    args = parser.parse_args(argv)
    n = 20_000 if args.quick else args.n

    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        server = start(n=n, seed=args.seed, data_dir=folder / "server")
        ready = time.perf_counter() - began
        try:
            summary = server.demo_summary or {}
            size_mb = (folder / "server" / "server.sqlite3").stat().st_size / 1e6
            print(f"demo data: {n:,} sellers in {summary['seconds']:.2f} s "
                  f"({n / summary['seconds']:,.0f} rows/s), database {size_mb:,.0f} MB; "
                  f"server ready after {ready:.2f} s")
            with httpx.Client() as probe:
                probe.get(f"{server.url}/health").raise_for_status()
            live, pages, timings = walk_feed(server.url, server.tokens["viewer"], 10_000)
            expected = n - summary["deleted"]
            print(f"rev feed: {pages} pages of <= 10,000, {live:,} live sellers seen once "
                  f"(expected {expected:,}); page median {statistics.median(timings):.3f} s, "
                  f"max {max(timings):.3f} s")
            if live != expected:
                print("MISMATCH: the feed did not return every live seller", file=sys.stderr)
                return 1
        finally:
            server.stop()
        peer = peer_insert(n, args.seed, folder)
        rate = n / summary["seconds"]
        print(f"peer (bare executemany of pre-built rows, no indexes): {peer:,.0f} rows/s; "
              f"ratio peer/demo {peer / rate:.1f}x (what generating rows and building "
              "indexes cost on top)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
