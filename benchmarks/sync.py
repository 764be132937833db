"""Full and incremental sync against the reference server on loopback, beside its peers.

    .venv/bin/python benchmarks/sync.py             # 1,000,000 sellers (the server builds
                                                    # them first: about a minute)
    .venv/bin/python benchmarks/sync.py --quick     # 5,000 sellers, seconds

The server runs as a subprocess (``sellerbench serve --demo N`` on a free port). Each
client step runs in a child process of its own, so its peak RSS is its own
(``os.wait4``); its time is measured inside it, from the first request to the last row:

- floor (JSON): the rev feed's pages (10,000 rows) fetched with httpx and parsed with
  orjson, then thrown away: no database. The same for Arrow pages when the server
  offers them. Nothing can sync faster than fetching what it syncs.
- sellerbench: ``wb.sync()`` into a fresh cache (Arrow pages when offered, the default;
  and JSON pages, to compare with the JSON floor).
- dlt (when installed): its REST API source into DuckDB on the same endpoint, the
  configuration the issue names: parquet loader files without compression,
  ``max_table_nesting=0``, merge on ``id``, incremental on ``rev`` with a JSON cursor
  paginator.
- client CPU: the step process's user + system time (``os.wait4``), imports included.
  The server's page rate bounds every wall time here; CPU time shows what each client
  itself costs, whatever the server.
- then three rounds of 1,000 changes through the API (flags, renames, deletes,
  creates), each followed by ``wb.sync()`` on the full cache in a fresh kernel that has
  connected (median of the three); then, in the last kernel, five syncs with nothing
  new (median).

Figures and the acceptance bars are printed; the exit code is 0 either way.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from serverproc import start_server  # noqa: E402

sys.path.insert(0, str(ROOT))

PAGE = 10_000
ARROW = "application/vnd.apache.arrow.stream"


# -- client steps (each runs in its own process) -------------------------------------------


def step_floor(url: str, token: str, arrow: bool) -> dict[str, Any]:
    import httpx
    import orjson
    import pyarrow as pa

    headers = {"Authorization": f"Bearer {token}"}
    if arrow:
        headers["Accept"] = ARROW
    rows, since, started = 0, 0, time.perf_counter()
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        while True:
            response = http.get("/sync/sellers", params={"since_rev": since, "limit": PAGE})
            response.raise_for_status()
            if arrow:
                table = pa.ipc.open_stream(response.content).read_all()
                count, more = table.num_rows, response.headers["X-Has-More"] == "true"
                last = table.column("rev")[-1].as_py() if count else since
            else:
                page = orjson.loads(response.content)
                count, more = len(page["items"]), page["has_more"]
                last = page["items"][-1]["rev"] if count else since
            rows, since = rows + count, last
            if not more:
                break
    return {"seconds": time.perf_counter() - started, "rows": rows}


def step_sync(url: str, token: str, cache: str, arrow: bool, again: bool = False) -> dict:
    """``wb.sync()`` in a kernel that has connected (features known); ``again``: then sync
    once more in the same kernel, with nothing new on the server."""
    from sellerbench.workbench import connect

    with connect(url, token, cache) as wb:
        if not arrow:
            wb.client._features = wb.client.features - {"arrow"}
        wb.client.features  # noqa: B018 - known once connected, as in a notebook
        started = time.perf_counter()
        report = wb.sync(progress=False)
        seconds = time.perf_counter() - started
        result = {"seconds": seconds, "report": str(report),
                  "counts": [report.added, report.updated, report.deleted]}
        if again:  # the median of five: one idle sync is ~60 ms, within the load's noise
            times, counts = [], set()
            for _ in range(5):
                started = time.perf_counter()
                idle = wb.sync(progress=False)
                times.append(time.perf_counter() - started)
                counts.add((idle.added, idle.updated, idle.deleted))
            result["again_seconds"] = sorted(times)[2]
            result["again_range"] = [min(times), max(times)]
            result["again_counts"] = [list(c) for c in sorted(counts)]
        status = wb.status()
        result["rows"] = status["sellers"] + status["deleted"]
    return result


def step_dlt(url: str, token: str, cache: str) -> dict[str, Any]:
    os.environ["DATA_WRITER__DISABLE_COMPRESSION"] = "true"
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(
        {
            "client": {
                "base_url": url,
                "auth": {"type": "bearer", "token": token},
                "paginator": {
                    "type": "cursor", "cursor_path": "next_cursor", "cursor_param": "cursor",
                },
            },
            "resource_defaults": {
                "primary_key": "id",
                "write_disposition": "merge",
                "max_table_nesting": 0,
            },
            "resources": [
                {
                    "name": "sellers",
                    "endpoint": {
                        "path": "sync/sellers",
                        "data_selector": "items",
                        "params": {
                            "limit": PAGE,
                            "since_rev": {
                                "type": "incremental", "cursor_path": "rev", "initial_value": 0,
                            },
                        },
                    },
                }
            ],
        }
    )
    work = Path(cache).parent
    pipeline = dlt.pipeline(
        pipeline_name="sellerbench_bench", destination=dlt.destinations.duckdb(cache),
        dataset_name="bench", pipelines_dir=str(work / "dlt-pipelines"),
    )
    started = time.perf_counter()
    pipeline.run(source, loader_file_format="parquet")
    seconds = time.perf_counter() - started
    import duckdb

    with duckdb.connect(cache, read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM bench.sellers").fetchone()[0]
    return {"seconds": seconds, "rows": rows}


STEPS = {"floor": step_floor, "sync": step_sync, "dlt": step_dlt}


def _child_main(argv: list[str]) -> None:
    name, params = argv[0], json.loads(sys.stdin.read())
    print(json.dumps(STEPS[name](**params)), flush=True)


# -- the parent: server, steps, changes, the table ----------------------------------------


def run_step(name: str, **params: Any) -> dict[str, Any]:
    """Run a step in a child process; add its peak RSS."""
    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
        child = subprocess.Popen(  # parameters on stdin: the token stays off the command line
            [sys.executable, __file__, "--step", name], stdin=subprocess.PIPE,
            stdout=out_file, stderr=err_file, text=True, cwd=ROOT,
        )
        child.stdin.write(json.dumps(params))
        child.stdin.close()
        _, status, usage = os.wait4(child.pid, 0)  # wait4: the child's own peak RSS
        child.returncode = os.waitstatus_to_exitcode(status)
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    if child.returncode != 0:
        raise RuntimeError(f"step {name} failed:\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["rss_mb"] = usage.ru_maxrss / 1024  # Linux: kilobytes
    result["cpu"] = usage.ru_utime + usage.ru_stime  # the client's own work, imports included
    print(f"  ... {name} {params.get('arrow', '')}: {result['seconds']:.2f} s, "
          f"{result['rss_mb']:.0f} MB, {result['cpu']:.1f} s CPU", flush=True)
    return result


def make_changes(url: str, token: str, count: int, tag: str = "") -> None:
    """``count`` changes: 40% flags (bulk), 30% renames, 20% deletes (bulk), 10% creates."""
    from sellerbench.api.client import ApiClient

    with ApiClient(url, token) as api:
        sellers = api.sync_sellers(limit=100).items
        cursor = api.sync_sellers(limit=100).next_cursor
        while len(sellers) < count and cursor:
            page = api.sync_sellers(cursor=cursor, limit=100)
            sellers += page.items
            cursor = page.next_cursor
        flags, renames, deletes = count * 4 // 10, count * 3 // 10, count * 2 // 10
        creates = count - flags - renames - deletes
        for value in (True, False):  # flip each flag: a write that changes nothing isn't one
            api.flag_sellers_bulk([s["id"] for s in sellers[:flags] if s["flagged"] != value],
                                  value)
        for i, seller in enumerate(sellers[flags:flags + renames]):
            api.update_seller(seller["id"], name=f"Benchmark Rename {tag}{i}")
        api.delete_sellers_bulk([s["id"] for s in sellers[flags + renames:count - creates]])
        api.create_sellers_bulk([f"Benchmark New Shop {tag}{i}" for i in range(creates)])


def _dlt_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("dlt") is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="sellers on the server")
    parser.add_argument("--quick", action="store_true", help="5,000 sellers")
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--no-dlt", action="store_true", help="skip the dlt peer")
    args = parser.parse_args()
    n = 5_000 if args.quick else args.n
    changes = min(args.changes, n // 2)
    with tempfile.TemporaryDirectory(prefix="sellerbench-bench-") as tmp:
        work = Path(tmp)
        print(f"building {n:,} demo sellers in the server...", flush=True)
        server, url, tokens = start_server(n, work)
        try:
            token = tokens["analyst"]
            figures = measure(url, token, work, n, changes, dlt=not args.no_dlt)
        finally:
            server.terminate()
            server.wait(timeout=30)
    report(n, changes, figures)


def measure(url: str, token: str, work: Path, n: int, changes: int, *, dlt: bool) -> dict:
    cache = str(work / "cache.duckdb")
    figures: dict[str, Any] = {}
    figures["floor_json"] = run_step("floor", url=url, token=token, arrow=False)
    figures["floor_arrow"] = run_step("floor", url=url, token=token, arrow=True)
    figures["sync_arrow"] = run_step("sync", url=url, token=token, cache=cache, arrow=True)
    figures["sync_json"] = run_step(
        "sync", url=url, token=token, cache=str(work / "json.duckdb"), arrow=False
    )
    if dlt and _dlt_installed():
        figures["dlt"] = run_step("dlt", url=url, token=token, cache=str(work / "dlt.duckdb"))
    # Three rounds of changes, each synced by a fresh kernel (its first sync, the
    # coldest case); the median is reported, the range beside it.
    rounds = []
    for round_no in range(3):
        make_changes(url, token, changes, tag=str(round_no))
        rounds.append(run_step(
            "sync", url=url, token=token, cache=cache, arrow=True, again=round_no == 2
        ))
    times = sorted(r["seconds"] for r in rounds)
    figures["incremental"] = {
        **rounds[2], "seconds": times[1], "range": [times[0], times[2]],
        "counts": sorted({tuple(r["counts"]) for r in rounds}),
    }
    return figures


def report(n: int, changes: int, f: dict[str, Any]) -> None:
    def line(label: str, key: str) -> None:
        if key not in f:
            print(f"  {label:<34} (not run: dlt is not installed, or --no-dlt)")
            return
        row = f[key]
        rate = row["rows"] / row["seconds"] if row["seconds"] else 0.0
        print(f"  {label:<34} {row['seconds']:8.2f} s {rate:12,.0f} rows/s "
              f"{row['rss_mb']:6.0f} MB peak RSS {row['cpu']:7.1f} s client CPU")

    print(f"\nsync of {n:,} sellers from `sellerbench serve` on loopback "
          f"({os.cpu_count()} cores, server and client on the same machine)")
    line("download only, JSON pages (floor)", "floor_json")
    line("download only, Arrow pages (floor)", "floor_arrow")
    line("sellerbench sync, Arrow pages", "sync_arrow")
    line("sellerbench sync, JSON pages", "sync_json")
    line("dlt rest_api -> duckdb", "dlt")
    inc = f["incremental"]
    low, high = inc["range"]
    print(f"  incremental, {changes:,} changes:        {inc['seconds']:8.3f} s   "
          f"(median of 3 rounds, {low:.3f}-{high:.3f} s; added/updated/deleted "
          f"{[list(c) for c in inc['counts']]})")
    low, high = inc["again_range"]
    print(f"  then again, nothing new:           {inc['again_seconds']:8.3f} s   "
          f"(median of 5, {low:.3f}-{high:.3f} s; {inc['again_counts']})")
    ours = f["sync_arrow"]["seconds"]
    print("\nratios (same run):")
    print(f"  sellerbench / floor, Arrow pages: {ours / f['floor_arrow']['seconds']:5.2f}x"
          f"   (bar: at most 2x)")
    print(f"  sellerbench / floor, JSON pages:  "
          f"{f['sync_json']['seconds'] / f['floor_json']['seconds']:5.2f}x")
    print(f"  sellerbench (Arrow) / JSON floor: {ours / f['floor_json']['seconds']:5.2f}x")
    if "dlt" in f:
        print(f"  dlt / sellerbench:                {f['dlt']['seconds'] / ours:5.1f}x"
              f"   (bar: at least 10x)")
        print(f"  dlt / sellerbench, client CPU:    "
              f"{f['dlt']['cpu'] / f['sync_arrow']['cpu']:5.1f}x")
    print(f"  peak RSS of the sync: {f['sync_arrow']['rss_mb']:.0f} MB (bar: at most 600 MB);"
          f" incremental {inc['seconds']:.3f} s (bar: 0.5 s); nothing new "
          f"{inc['again_seconds']:.3f} s (bar: 0.1 s)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--step":
        _child_main(sys.argv[2:])
    else:
        main()
