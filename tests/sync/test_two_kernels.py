"""Two kernels, one cache: DuckDB lets one process write; we wait, then say who holds it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sellerbench.errors import CacheLockedError
from sellerbench.workbench import Workbench, connect

_HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    print("released", flush=True)
    """
)


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )
    assert child.stdout.readline().strip() == "held"
    return child


def _stop(child: subprocess.Popen) -> None:
    child.kill()
    child.wait(timeout=30)
    child.stdout.close()


@pytest.fixture
def synced(server: Any, tmp_path: Path) -> Workbench:
    with connect(server.url, server.tokens["analyst"], tmp_path / "c.duckdb") as wb:
        wb.sync(progress=False)
    return wb


def test_a_held_cache_waits_then_names_the_holder(synced: Workbench, server: Any) -> None:
    path = synced.store.path
    other = connect(server.url, server.tokens["analyst"], path, lock_timeout=0.8)
    child = _hold(path, 60)
    try:
        with other:
            for operation in (other.sellers, lambda: other.sync(progress=False), other.status):
                started = time.monotonic()
                with pytest.raises(CacheLockedError) as caught:
                    operation()
                assert time.monotonic() - started >= 0.7  # it waited before giving up
                assert caught.value.pid == child.pid
                assert f"process {child.pid}" in str(caught.value)
    finally:
        _stop(child)


def test_waiting_succeeds_once_the_holder_lets_go(synced: Workbench, server: Any) -> None:
    path = synced.store.path
    child = _hold(path, 1.0)
    try:
        with connect(server.url, server.tokens["analyst"], path, lock_timeout=30) as other:
            assert other.sync(progress=False).added == 0
            assert len(other.sellers()) == other.status()["sellers"]
        assert child.stdout.readline().strip() == "released"
    finally:
        _stop(child)


def test_between_operations_another_process_may_use_the_cache(synced: Workbench) -> None:
    """Short-lived connections: a workbench open here doesn't block a second process."""
    with connect(cache=synced.store.path, api_url="", token="") as mine:
        mine.sellers()
        child = _hold(synced.store.path, 0)
        assert child.stdout.readline().strip() == "released"
        _stop(child)
        assert len(mine.sellers()) > 0


def test_plain_duckdb_opens_the_cache_read_only(synced: Workbench) -> None:
    con = duckdb.connect(str(synced.store.path), read_only=True)
    try:
        tables = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
        live = con.execute("SELECT count(*) FROM visible_sellers").fetchone()[0]
        mode = con.execute("SELECT mode FROM sync_state WHERE feed = 'sellers'").fetchone()[0]
    finally:
        con.close()
    assert {"sellers", "collection_runs", "sync_state", "meta", "mutations"} <= tables
    assert live == synced.status()["sellers"] and mode == "rev"
