"""Exports from the cache: our DuckDB COPY path against pandas and polars, in one run.

    .venv/bin/python benchmarks/export.py            # 1,000,000 rows, a few minutes
    .venv/bin/python benchmarks/export.py --quick    # 20,000 rows, seconds

A cache file is filled directly with realistic sellers (UUIDs, names with unicode,
commas, quotes and leading '=', tz-aware timestamps). Each path is timed end to end,
from the cache file to the finished file:

- ours:   ``wb.export(path)`` (one COPY from visible_sellers; CSV neutralised)
- pandas: ``wb.sellers()`` then ``to_csv`` / ``to_json(orient="records", lines=True)``
          / ``to_parquet``
- polars: ``SELECT * FROM visible_sellers`` read with duckdb's ``.pl()``, then
          ``write_csv`` / ``write_ndjson`` / ``write_parquet``

Fast paths run ``--repeat`` times and keep the best; pandas CSV and JSON (tens of
seconds at 1M rows) run once. JSON is compared as NDJSON on every side. The
acceptance bars are printed with the figures; the exit code is 0 either way.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if "SELLERBENCH_PEER" not in os.environ:  # benchmarks/report.py builds a peer's cache
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sellerbench.cache.store import Store
from sellerbench.workbench import Workbench

FORMATS = ("csv", "ndjson", "parquet")
SUFFIX = {"csv": ".csv", "ndjson": ".ndjson", "parquet": ".parquet"}

FILL = """
INSERT INTO sellers
SELECT
    uuid()::VARCHAR,
    name,
    lower(name),
    (['ebay', 'ebay', 'amazon', 'etsy'])[1 + i % 4],
    CASE WHEN i % 5 = 0 THEN NULL ELSE 'p' || (i * 7919 % 100000000)::VARCHAR END,
    (i * 31 % 40)::INTEGER,
    i % 11 = 0,
    'run-' || (i % 97)::VARCHAR,
    'run-' || (i % 89)::VARCHAR,
    TIMESTAMPTZ '2023-01-01 00:00:00+00'
        + to_microseconds((i * 31_536_000_000 // n)::BIGINT * 1000),
    TIMESTAMPTZ '2024-06-01 12:00:00+02' + to_microseconds((i * 7_777_777)::BIGINT),
    NULL,
    i
FROM (
    SELECT i, n,
        (['Blue', 'Nordic', 'Acme', 'Café', 'Zoë', 'Müller', '=Tricky', '+Plus', 'Sunny',
          'Vintage', '東京', 'O''Brien'])[1 + i % 12]
        || ' ' ||
        (['Traders', 'Goods', 'Outlet', 'Supply, Co.', '"Best" Deals', 'Emporium',
          'Shop', 'Market', 'Wholesale'])[1 + (i // 12) % 9]
        || ' ' || i::VARCHAR AS name
    FROM (SELECT range AS i, {n} AS n FROM range({n}))
)
"""


def build_cache(path: Path, rows: int) -> Store:
    store = Store(path)
    with store.connect() as con:
        con.execute(FILL.format(n=rows))
        con.execute("CHECKPOINT")
    return store


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def timed_both(action: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of this process (every thread: DuckDB's, polars')."""
    started, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - started, time.process_time() - cpu


def ours(wb: Workbench, out: Path, fmt: str) -> Callable[[], object]:
    return lambda: wb.export(out / f"ours{SUFFIX[fmt]}", progress=False, overwrite=True)


def pandas_path(wb: Workbench, out: Path, fmt: str) -> Callable[[], object]:
    def run() -> None:
        frame = wb.sellers()
        target = out / f"pandas{SUFFIX[fmt]}"
        if fmt == "csv":
            frame.to_csv(target, index=False)
        elif fmt == "ndjson":
            frame.to_json(target, orient="records", lines=True, date_format="iso")
        else:
            frame.to_parquet(target, index=False)

    return run


def polars_path(wb: Workbench, out: Path, fmt: str) -> Callable[[], object]:
    def run() -> None:
        with wb.store.connect() as con:
            frame = con.sql("SELECT * FROM visible_sellers").pl()
        target = out / f"polars{SUFFIX[fmt]}"
        if fmt == "csv":
            frame.write_csv(target)
        elif fmt == "ndjson":
            frame.write_ndjson(target)
        else:
            frame.write_parquet(target)

    return run


Best = dict[tuple[str, str], float]


def measure(wb: Workbench, out: Path, repeat: int) -> tuple[Best, Best]:
    """Best wall and CPU time per (path, format); the paths take turns so load noise
    hits all alike."""
    best: Best = {}
    cpu_best: Best = {}
    makers = {"ours": ours, "pandas": pandas_path, "polars": polars_path}
    for round_ in range(repeat):
        order = list(makers)[round_ % 3:] + list(makers)[: round_ % 3]
        for fmt in FORMATS:
            for name in order:
                slow = name == "pandas" and fmt in ("csv", "ndjson")
                if slow and round_ > 0:
                    continue  # tens of seconds each at 1M rows: once is enough
                seconds, cpu = timed_both(makers[name](wb, out, fmt))
                key = (name, fmt)
                best[key] = min(best.get(key, float("inf")), seconds)
                cpu_best[key] = min(cpu_best.get(key, float("inf")), cpu)
                print(f"  round {round_ + 1}: {name:<6} {fmt:<7} {seconds:7.2f} s wall "
                      f"{cpu:7.2f} s cpu", flush=True)
    return best, cpu_best


def json_array(wb: Workbench, out: Path, repeat: int) -> float:
    return min(
        timed(lambda: wb.export(out / "ours.json", progress=False, overwrite=True))
        for _ in range(repeat)
    )


def check_rows(out: Path, rows: int) -> None:
    import duckdb

    for fmt in FORMATS:
        for name in ("ours", "pandas", "polars"):
            path = out / f"{name}{SUFFIX[fmt]}"
            reader = {"csv": "read_csv", "ndjson": "read_json", "parquet": "read_parquet"}[fmt]
            found = duckdb.sql(f"SELECT count(*) FROM {reader}('{path}')").fetchall()[0][0]
            if found != rows:
                raise SystemExit(f"{path.name} holds {found} rows, expected {rows}")


def table(best: Best, title: str) -> None:
    print(f"\n{title}")
    print(f"{'format':<8} {'ours':>8} {'pandas':>8} {'polars':>8} {'pandas/ours':>12} "
          f"{'polars/ours':>12}")
    for fmt in FORMATS:
        o, pd_, pl_ = best[("ours", fmt)], best[("pandas", fmt)], best[("polars", fmt)]
        print(f"{fmt:<8} {o:8.2f} {pd_:8.2f} {pl_:8.2f} {pd_ / o:11.1f}x {pl_ / o:11.2f}x")


def report(best: Best, cpu: Best, rows: int, array_seconds: float) -> None:
    table(best, f"{rows:,} rows, cache -> file, best of runs (seconds)")
    print(f"{'json[]':<8} {array_seconds:8.2f}  (ours, .json array; no peer writes arrays)")
    table(cpu, "the same, CPU seconds of the process (steadier on a shared machine)")
    print("\nacceptance (wall time)")
    csv_ours = best[("ours", "csv")]
    lines = [
        ("CSV >= 20x faster than pandas", best[("pandas", "csv")] / csv_ours >= 20),
        ("CSV no slower than polars", csv_ours <= best[("polars", "csv")]),
    ]
    for fmt in ("ndjson", "parquet"):
        peer = min(best[("pandas", fmt)], best[("polars", fmt)])
        lines.append((f"{fmt} no slower than the faster peer", best[("ours", fmt)] <= peer))
    for text, ok in lines:
        print(f"  {'PASS' if ok else 'MISS'}  {text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 rows, two rounds")
    parser.add_argument("--repeat", type=int, default=5, help="rounds for the fast paths")
    parser.add_argument("--keep", action="store_true", help="keep the cache and files")
    args = parser.parse_args(argv)
    rows, repeat = (20_000, 2) if args.quick else (args.rows, args.repeat)

    work = Path(tempfile.mkdtemp(prefix="sellerbench-export-bench-"))
    try:
        seconds = timed(lambda: build_cache(work / "cache.duckdb", rows))
        print(f"cache with {rows:,} sellers built in {seconds:.1f} s at {work}", flush=True)
        wb = Workbench(Store(work / "cache.duckdb"), None)
        out = work / "out"
        out.mkdir()
        best, cpu = measure(wb, out, repeat)
        array_seconds = json_array(wb, out, repeat)
        check_rows(out, rows)
        report(best, cpu, rows, array_seconds)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
