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


_SYNC_ELSEWHERE = textwrap.dedent(
    """
    import sys
    from sellerbench.workbench import connect
    with connect(sys.argv[1], sys.argv[2], sys.argv[3]) as wb:
        print(wb.sync(progress=False).updated, flush=True)
    """
)


def _rename(srv: Any, ids: list[str], tag: str) -> None:
    from sellerbench.api.client import ApiClient

    with ApiClient(srv.url, srv.tokens["analyst"]) as api:
        for n, seller_id in enumerate(ids):
            api.update_seller(seller_id, name=f"{tag} {n}")


def test_a_sync_after_another_kernel_synced_reads_from_the_cache_checkpoint(
    make_server: Any, make_wb: Any
) -> None:
    """A sync asks for the first pages before it opens the cache, from where the last
    sync of this process left each feed; another kernel moved the checkpoint since:
    the sync goes on from the cache's checkpoint and counts only what is new to it."""
    from ..cache.syncutil import assert_cache_equals_server

    srv = make_server(n=300)
    wb = make_wb(srv)
    wb.sync(progress=False)
    ids = list(wb.sellers()["id"][:12])
    _rename(srv, ids[:5], "Seen Elsewhere")
    other = subprocess.run(
        [sys.executable, "-c", _SYNC_ELSEWHERE, srv.url, srv.tokens["analyst"],
         str(wb.store.path)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert other.stdout.strip() == "5"
    _rename(srv, ids[5:12], "Seen Here")
    report = wb.sync(progress=False)
    assert (report.added, report.updated, report.deleted) == (0, 7, 0)
    assert_cache_equals_server(wb.store, srv)
    again = wb.sync(progress=False)  # from the cache's checkpoint, nothing new
    assert (again.added, again.updated, again.deleted, again.pages) == (0, 0, 0, 2)
    _rename(srv, ids[:2], "Seen Early")
    report = wb.sync(progress=False)
    assert (report.added, report.updated, report.deleted) == (0, 2, 0)
    assert_cache_equals_server(wb.store, srv)


def test_a_cache_put_back_to_an_older_copy_syncs_from_its_own_checkpoint(
    make_server: Any, make_wb: Any
) -> None:
    """A cache file replaced by an older copy syncs from the copy's own checkpoint, not
    from where this process last left it (which would skip the changes in between)."""
    import shutil

    from ..cache.syncutil import assert_cache_equals_server

    srv = make_server(n=300)
    wb = make_wb(srv)
    wb.sync(progress=False)
    backup = wb.store.path.with_name("backup.duckdb")
    shutil.copy(wb.store.path, backup)
    ids = list(wb.sellers()["id"][:6])
    _rename(srv, ids, "Changed After The Copy")
    assert wb.sync(progress=False).updated == 6
    shutil.copy(backup, wb.store.path)
    assert wb.sync(progress=False).updated == 6
    assert_cache_equals_server(wb.store, srv)
