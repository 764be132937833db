"""Helpers for the reliability suite: clients through a proxy, converging, cache checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from sellerbench.api.client import ApiClient
from sellerbench.cache.store import SCHEMA_VERSION, Store
from sellerbench.errors import ServerError, TransportError
from sellerbench.workbench import Workbench, connect

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def patient_client(url: str, token: str, *, timeout: float = 1.0) -> ApiClient:
    """A client with a short read timeout (stalls end fast) and quick retries."""
    return ApiClient(url, token, timeout=timeout, backoff=0.01, max_backoff=0.05)


def workbench_via(url: str, token: str, cache: Path, **kw: Any) -> Workbench:
    """A workbench whose client talks to ``url`` (a proxy) with a short timeout."""
    wb = connect(url, token, cache, auto_push=False, **kw)
    wb.client.close()
    wb.client = patient_client(url, token)
    return wb


def converge(action: Callable[[], T], attempts: int = 40) -> T:
    """Run ``action`` until it gets through the faults, as an analyst re-runs a cell."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return action()
        except (TransportError, ServerError) as exc:
            last = exc
    raise AssertionError(f"never got through in {attempts} attempts: {last}")


def check_cache(path: Path, *, revs: bool = True) -> dict[str, Any]:
    """Open the cache read-only with plain DuckDB and check what must always hold.

    ``revs``: no cached row is past its feed's checkpoint (true until a push writes the
    rows the server confirmed). Returns a few facts (rows, queue) for the caller.
    """
    con = duckdb.connect(str(path), read_only=True)
    try:
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),), version
        for table in ("sellers", "collection_runs"):
            dupes = con.execute(
                f"SELECT count(*) - count(DISTINCT id) FROM {table}"
            ).fetchone()[0]
            assert dupes == 0, f"{table} holds an id twice"
        bad_states = con.execute(
            "SELECT count(*) FROM mutations "
            "WHERE state NOT IN ('pending', 'done', 'failed', 'undone')"
        ).fetchone()[0]
        assert bad_states == 0
        feeds = con.execute("SELECT feed, since_rev, mode FROM sync_state").fetchall()
        for feed, since_rev, mode in feeds:
            if revs and mode == "rev" and since_rev is not None:
                table = "sellers" if feed == "sellers" else "collection_runs"
                above = con.execute(
                    f"SELECT count(*) FROM {table} WHERE rev > ?", [since_rev]
                ).fetchone()[0]
                assert above == 0, f"{table} holds rows past its checkpoint {since_rev}"
        queue = con.execute(
            "SELECT state, count(*) FROM mutations GROUP BY ALL"
        ).fetchall()
        rows = con.execute("SELECT count(*) FROM sellers").fetchone()[0]
        visible = con.execute("SELECT count(*) FROM visible_sellers").fetchone()[0]
    finally:
        con.close()
    return {"rows": rows, "visible": visible, "queue": dict(queue), "feeds": feeds}


def store_opens(path: Path) -> None:
    with Store(path).connect() as con:
        con.execute("SELECT count(*) FROM visible_sellers").fetchone()


def child(code: str, *args: str, token: str | None = None) -> subprocess.Popen:
    """A Python child running ``code`` from the repo root; the token only in its env."""
    env = dict(os.environ)
    if token is not None:
        env["SELLERBENCH_TOKEN"] = token
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env=env,
    )


def kill_after(
    proc: subprocess.Popen, ready: str, delay: float, *, limit: float = 60
) -> tuple[str, list[str]]:
    """Wait for the child's ``ready`` line, let it work ``delay`` s, SIGKILL it.

    Returns "killed" or "finished" (it ended before the kill landed) and the lines it
    printed after ``ready``."""
    try:
        line = proc.stdout.readline().strip()
        assert line == ready, f"child said {line!r}"
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=limit)
        lines = proc.stdout.read().splitlines()
        return ("killed" if proc.returncode == -signal.SIGKILL else "finished"), lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
