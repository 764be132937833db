"""A team on one server: simulated analysts syncing and pushing while a run collects.

    .venv/bin/python benchmarks/team.py                 # 50 analysts, 60 s, both storages
    .venv/bin/python benchmarks/team.py --quick         # 5 analysts, 5 s (the test suite)
    .venv/bin/python benchmarks/team.py --storage postgresql --analysts 100

Each storage gets a fresh ``sellerbench serve`` on loopback: SQLite with one process, and
PostgreSQL (a throw-away cluster started here, stopped by PID) with ``--workers 2``. Each
analyst is a user of its own (``analyst-NN``, added through the admin API, ext ``users``)
with its own token, its own HTTP connection and its own cache (a dict by seller id, following
``since_rev``): a full sync first, then, until the time is up, every 1-3 s either an
incremental sync (every page to the end) or a push of a small batch (set the flag of 1-3
of its own sellers with ``/sellers/bulk/flag``, and now and then a rename), with an
Idempotency-Key. An admin keeps a collection run going over every category meanwhile,
so the simulator writes sellers too.

Printed per storage: requests per second, p50/p99 of an incremental sync and of a push,
errors (any answer that is not 2xx, or a connection failing three times; a request on a
kept-alive connection the server closed meanwhile is sent again, as sellerbench's client
does, and counted as retried), lost writes (an analyst's
last flag or name of a seller it owns that the server does not hold at the end), and how
many caches equal the server at the end (after the run is cancelled and every analyst
syncs once more), and authors: the changes the server acknowledged to each analyst
(``updated_count``, renames) against the changes its sellers' histories file under its
name (equal: each recorded once, none lost, none under another name). Then the ratio
of the two storages' throughput, measured in this run. Without ``--quick`` it fails when
an incremental sync's p99 is above ``--p99-limit`` (500 ms). Bounded: every analyst
stops at the deadline; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Figures:
    requests: int = 0
    errors: int = 0
    retries: int = 0
    syncs: list[float] = field(default_factory=list)
    pushes: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text)


def start_server(db: str, folder: Path, n: int, workers: int,
                 run_speed: float) -> tuple[subprocess.Popen, str, dict[str, str]]:
    """``sellerbench serve`` on a free port; the process, url and tokens."""
    tokens = folder / "tokens.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sellerbench", "serve", "--port", "0", "--demo", str(n),
         "--db", db, "--tokens-file", str(tokens), "--workers", str(workers),
         "--run-speed", str(run_speed)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )
    for line in proc.stdout:
        ready = re.search(r"ready at (http://\S+)", line)
        if ready:  # keep reading its output, so a full pipe never blocks it
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, ready.group(1), json.loads(tokens.read_text())
    proc.wait(timeout=10)
    raise RuntimeError(f"the server did not start (exit {proc.returncode})")


def stop_server(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


class Analyst:
    """One analyst: a connection, a cache, the sellers it owns and what it last wrote."""

    def __init__(self, index: int, url: str, token: str, figures: Figures) -> None:
        self.index = index
        self.http = httpx.AsyncClient(base_url=url, timeout=60,
                                      headers={"Authorization": f"Bearer {token}"})
        self.figures = figures
        self.cache: dict[str, dict] = {}
        self.since = 0
        self.owned: list[str] = []
        self.flags: dict[str, bool] = {}  # seller id -> the flag this analyst last set
        self.names: dict[str, str] = {}  # seller id -> the name this analyst last gave
        self.changed = 0  # changes the server acknowledged (updated_count, renames)
        self.rng = random.Random(index)

    async def call(self, method: str, path: str, **kw) -> httpx.Response | None:
        self.figures.requests += 1
        for attempt in range(3):
            try:
                response = await self.http.request(method, path, **kw)
                break
            except httpx.TransportError as exc:
                # A kept-alive connection the server closed as we sent on it: sent again,
                # as sellerbench's client does (every write here has an Idempotency-Key).
                if attempt == 2:
                    self.figures.error(f"{method} {path}: {type(exc).__name__}")
                    return None
                self.figures.retries += 1
        if not response.is_success:
            self.figures.error(f"{method} {path}: {response.status_code} {response.text[:200]}")
            return None
        return response

    async def sync(self) -> bool:
        cursor = None
        for _ in range(10_000):
            params = {"since_rev": self.since, "limit": 5000}
            if cursor:
                params["cursor"] = cursor
            response = await self.call("GET", "/sync/sellers", params=params)
            if response is None:
                return False
            page = response.json()
            for item in page["items"]:
                self.cache[item["id"]] = item
            if not page["has_more"]:
                self.since = page["max_rev"]
                return True
            cursor = page["next_cursor"]
        return False

    async def push(self) -> None:
        picks = self.rng.sample(self.owned, min(len(self.owned), self.rng.randint(1, 3)))
        flagged = self.rng.random() < 0.5
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        body = {"ids": picks, "flagged": flagged}
        answer = await self.call("POST", "/sellers/bulk/flag", json=body, headers=headers)
        if answer:
            self.changed += answer.json()["updated_count"]
            for seller_id in picks:
                self.flags[seller_id] = flagged
        if self.rng.random() < 0.3:
            seller_id = self.rng.choice(self.owned)
            name = f"Analyst {self.index} pick {uuid.uuid4().hex[:10]}"
            headers = {"Idempotency-Key": str(uuid.uuid4())}
            if await self.call("PATCH", f"/sellers/{seller_id}", json={"name": name},
                               headers=headers):
                self.names[seller_id] = name
                self.changed += 1

    async def authored(self, name: str) -> int:
        """Changes the histories of the sellers this analyst wrote file under ``name``."""
        count = 0
        for seller_id in {*self.flags, *self.names}:
            response = await self.call("GET", f"/sellers/{seller_id}/history")
            if response is not None:
                count += sum(i["user"] == name for i in response.json()["items"])
        return count

    async def work(self, deadline: float) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(1.0, 3.0))
            if time.monotonic() >= deadline:
                return
            began = time.perf_counter()
            if self.rng.random() < 0.5:
                if await self.sync():
                    self.figures.syncs.append(time.perf_counter() - began)
            else:
                await self.push()
                self.figures.pushes.append(time.perf_counter() - began)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def _name(index: int) -> str:
    return f"analyst-{index:02d}"


async def load(url: str, tokens: dict[str, str], analysts: int, seconds: float) -> dict:
    figures = Figures()
    admin = httpx.AsyncClient(base_url=url, timeout=60,
                              headers={"Authorization": f"Bearer {tokens['admin']}"})
    team: list[Analyst] = []
    try:
        for i in range(analysts):  # a user and a token of its own each
            made = (await admin.post("/users", json={"name": _name(i), "role": "analyst"}))
            team.append(Analyst(i, url, made.raise_for_status().json()["token"], figures))
        categories = (await admin.get("/collection/categories")).json()["categories"]
        run = (await admin.post("/collection/runs", json={
            "name": "team benchmark run", "category_ids": [c["id"] for c in categories],
        })).raise_for_status().json()
        (await admin.post(f"/collection/runs/{run['id']}/start")).raise_for_status()
        await asyncio.gather(*(a.sync() for a in team))  # the first, full sync
        live = sorted(k for k, v in team[0].cache.items() if v["deleted_at"] is None)
        for analyst in team:  # each owns its own slice: its last write must stand
            analyst.owned = live[analyst.index::analysts][:200]
        figures.syncs.clear()
        requests_before = figures.requests
        began = time.monotonic()
        await asyncio.gather(*(a.work(began + seconds) for a in team))
        elapsed = time.monotonic() - began
        requests = figures.requests - requests_before
        await admin.post(f"/collection/runs/{run['id']}/cancel")  # writes stop
        await asyncio.gather(*(a.sync() for a in team))
        truth = Analyst(-1, url, tokens["viewer"], Figures())
        await truth.sync()
        await truth.http.aclose()
        equal = sum(a.cache == truth.cache for a in team)
        counts = await asyncio.gather(*(a.authored(_name(a.index)) for a in team))
        acknowledged = sum(a.changed for a in team)
        misfiled = sum(abs(got - a.changed) for got, a in zip(counts, team, strict=True))
        lost = 0
        for analyst in team:
            for seller_id, flagged in analyst.flags.items():
                lost += truth.cache[seller_id]["flagged"] != flagged
            for seller_id, name in analyst.names.items():
                lost += truth.cache[seller_id]["display_name"] != name
        return {
            "rps": requests / elapsed, "requests": requests, "errors": figures.errors,
            "samples": figures.error_samples, "sync_p50": _pct(figures.syncs, 50),
            "sync_p99": _pct(figures.syncs, 99), "push_p50": _pct(figures.pushes, 50),
            "push_p99": _pct(figures.pushes, 99), "syncs": len(figures.syncs),
            "pushes": len(figures.pushes), "equal": equal, "lost": lost,
            "retries": figures.retries,
            "writes": sum(len(a.flags) + len(a.names) for a in team),
            "acknowledged": acknowledged, "authored": sum(counts), "misfiled": misfiled,
        }
    finally:
        await admin.aclose()
        for analyst in team:
            await analyst.http.aclose()


def auth_cost(db: str, lookups: int = 2000) -> tuple[float, float]:
    """Microseconds per token check: remembered (within REVALIDATE_SECONDS) and asked of
    the database (what a check on every request would cost), on a server's database."""
    from sellerbench.server.http.auth import TokenBook
    from sellerbench.server.storage.core import connect
    from sellerbench.server.storage.people import add_user

    storage = connect(db)
    try:
        token = add_user(storage, f"auth-probe-{uuid.uuid4().hex[:8]}", "viewer")
        remembered, asked = TokenBook(storage), TokenBook(storage, revalidate=0.0)
        costs = []
        for book in (remembered, asked):
            book.user_for(token)
            began = time.perf_counter()
            for _ in range(lookups):
                book.user_for(token)
            costs.append((time.perf_counter() - began) / lookups * 1e6)
        return costs[0], costs[1]
    finally:
        storage.close()


def measure(storage: str, args: argparse.Namespace, folder: Path) -> dict:
    workers = 1
    cluster = None
    if storage == "sqlite":
        db = str(folder / "team.sqlite3")
    else:
        workers = args.workers
        if args.pg_url:
            db = args.pg_url
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.pgcluster
            from tests.pgcluster import start_cluster

            cluster = start_cluster(Path(tempfile.mkdtemp(prefix="sb-team-pg-")))
            db = cluster.database("team")
    run_speed = max(0.05, 36.0 / args.seconds)  # the run lasts about the whole load
    try:
        proc, url, tokens = start_server(db, folder / storage, args.n, workers, run_speed)
        try:
            result = asyncio.run(load(url, tokens, args.analysts, args.seconds))
            result["auth_us"] = auth_cost(db)
        finally:
            stop_server(proc)
    finally:
        if cluster is not None:
            cluster.stop()
    result["label"] = f"{storage} ({workers} process{'es' if workers > 1 else ''})"
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 analysts, 5 s, 2,000 sellers")
    parser.add_argument("--analysts", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--n", type=int, default=20_000, help="demo sellers (default 20,000)")
    parser.add_argument("--workers", type=int, default=2, help="PostgreSQL server processes")
    parser.add_argument("--storage", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--pg-url", default=None,
                        help="an empty PostgreSQL database to use instead of a throw-away one")
    parser.add_argument("--p99-limit", type=float, default=500.0, metavar="MS",
                        help="fail when an incremental sync's p99 is above this "
                        "(default 500; not checked with --quick)")
    args = parser.parse_args()
    if args.quick:
        args.analysts, args.seconds, args.n = 5, 5.0, 2_000
        args.p99_limit = None
    print(f"team: {args.analysts} analysts for {args.seconds:.0f} s, {args.n:,} sellers, "
          "a collection run in progress", flush=True)
    results = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="sb-team-") as tmp:
        for storage in args.storage.split(","):
            folder = Path(tmp)
            (folder / storage).mkdir()
            r = measure(storage, args, folder)
            results[storage] = r
            print(f"{r['label']}: {r['requests']:,} requests, {r['rps']:.1f} req/s; "
                  f"incremental sync p50 {r['sync_p50']:.1f} ms p99 {r['sync_p99']:.1f} ms "
                  f"({r['syncs']}); push p50 {r['push_p50']:.1f} ms p99 {r['push_p99']:.1f} ms "
                  f"({r['pushes']}); errors {r['errors']} (connections retried "
                  f"{r['retries']}); lost writes {r['lost']} of {r['writes']}; "
                  f"caches equal to the server {r['equal']}/{args.analysts}; authors: "
                  f"{r['authored']} changes filed under their analyst for "
                  f"{r['acknowledged']} acknowledged (misfiled {r['misfiled']})",
                  flush=True)
            print(f"  token check: {r['auth_us'][0]:.1f} us remembered, "
                  f"{r['auth_us'][1]:.1f} us asking the database (a check per request)")
            for sample in r["samples"]:
                print(f"  error: {sample}")
            failed |= bool(r["errors"] or r["lost"] or r["equal"] != args.analysts
                           or r["misfiled"])
            if args.p99_limit is not None and not r["sync_p99"] <= args.p99_limit:
                print(f"  incremental sync p99 {r['sync_p99']:.1f} ms is above "
                      f"{args.p99_limit:.0f} ms")
                failed = True
    if "sqlite" in results and "postgresql" in results:
        ratio = results["postgresql"]["rps"] / results["sqlite"]["rps"]
        p99 = results["postgresql"]["push_p99"] / results["sqlite"]["push_p99"]
        print(f"ratio postgresql/sqlite: throughput {ratio:.2f}x, push p99 {p99:.2f}x")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
