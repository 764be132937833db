"""Cache files from elsewhere: an older schema, a newer one, a truncated or damaged file.

- A cache written at schema version 1 (``data/fixtures/cache-v1.duckdb.gz``, made by
  that version) upgrades in place: every queued change is kept and still shows.
- A newer file is refused with CacheVersionError and left exactly as it was.
- A damaged file (cut short, or a block overwritten) gives CacheCorruptError wherever
  the damage is met, never a bare DuckDB error, and ``Store.rebuild()`` moves it aside,
  keeps the queued changes it can still read, and a sync refills the rest.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sellerbench.cache.store import SCHEMA_VERSION, Store
from sellerbench.errors import CacheCorruptError, CacheVersionError
from sellerbench.workbench import connect

from ..cache.syncutil import assert_cache_equals_server
from .cachefixture import CACHE_V1, unpack

BLOCK = 262_144  # DuckDB's block size; blocks start after three 4 KiB headers
HEADERS = 3 * 4096


def _rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _schema(path: Path) -> list[tuple]:
    """Every column and every view's definition (an edited view is a schema change too)."""
    return _rows(
        path,
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "ORDER BY table_name, column_name",
    ) + _rows(path, "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1")


QUEUE = "SELECT * EXCLUDE (prior), prior::VARCHAR FROM mutations ORDER BY seq"
VISIBLE = "SELECT id, display_name, flagged FROM visible_sellers ORDER BY id"


def test_a_version_1_cache_upgrades_keeping_its_queue(tmp_path: Path) -> None:
    old = unpack(CACHE_V1, tmp_path / "v1.duckdb")
    assert _rows(old, "SELECT value FROM meta WHERE key = 'schema_version'") == [("1",)]
    queue, visible = _rows(old, QUEUE), _rows(old, VISIBLE)
    pending = _rows(old, "SELECT kind FROM mutations WHERE state = 'pending' ORDER BY seq")
    assert len(pending) == 10 and {r[0] for r in pending} == {
        "flag", "rename", "delete", "restore", "create"
    }

    wb = connect(None, None, old, auto_push=False)  # offline: the upgrade needs no server
    try:
        assert wb.store.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert _rows(old, QUEUE) == queue  # every row kept, byte for byte
        assert _rows(old, VISIBLE) == visible  # and what the analyst sees
        assert len(wb.pending()) == 10
        shown = _rows(old, "SELECT kind, state FROM pending_changes ORDER BY seq")
        assert shown == [(r[0], "pending") for r in pending]
        # The queue goes on after the upgrade: the next change comes after the old ones.
        target = visible[0][0]
        wb.flag(target, not visible[0][2])
        seqs = [r[0] for r in _rows(old, "SELECT seq FROM mutations ORDER BY seq")]
        assert seqs[-1] > max(r[0] for r in queue) and len(seqs) == len(queue) + 1
    finally:
        wb.close()


def test_an_upgraded_cache_has_the_schema_of_a_new_one(tmp_path: Path) -> None:
    """Guards the rule that a landed migration is never edited, only appended to."""
    old = unpack(CACHE_V1, tmp_path / "v1.duckdb")
    with Store(old).connect():
        pass
    with Store(tmp_path / "new.duckdb").connect():
        pass
    assert _schema(old) == _schema(tmp_path / "new.duckdb")


def test_a_newer_cache_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.duckdb"
    with Store(path).connect() as con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                    [str(SCHEMA_VERSION + 1)])
        con.execute("CHECKPOINT")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for read_only in (False, True):
        with pytest.raises(CacheVersionError, match="newer") as caught:
            connect(None, None, path, read_only=read_only)
        assert "upgrade sellerbench" in str(caught.value)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


# -- damaged files ---------------------------------------------------------------------


@pytest.fixture
def queued(make_server: Any, tmp_path: Path):
    """A synced cache of 300 sellers with changes queued (not pushed), closed."""
    srv = make_server(n=300, seed=9)
    cache = tmp_path / "cache.duckdb"
    wb = connect(srv.url, srv.tokens["analyst"], cache, auto_push=False)
    wb.sync(progress=False)
    ids = wb.sellers()["id"].tolist()
    wb.flag(ids[:5], True)
    wb.rename(ids[5], "Kept Through A Rebuild")
    wb.delete(ids[6])
    wb.create(["Created Before The Damage"])
    wb.close()
    with Store(cache).connect() as con:
        con.execute("CHECKPOINT")  # everything in the file, nothing in a WAL
    return srv, cache, ids


def _blocks(path: Path, table: str) -> list[int]:
    return [r[0] for r in _rows(
        path, f"SELECT DISTINCT block_id FROM pragma_storage_info('{table}') "
        "WHERE block_id >= 0 ORDER BY 1"
    )]


def _overwrite_block(path: Path, block: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(HEADERS + block * BLOCK + 512)
        handle.write(b"\xa5" * 8192)


def _every_way_in(path: Path, *, must_fail: bool = True) -> None:
    """Whatever the analyst does first, damage they meet is a CacheCorruptError that
    says how to rebuild (a cut that left every used block whole may meet nothing)."""
    try:
        wb = connect(None, None, path, auto_push=False)
    except CacheCorruptError as exc:
        assert "rebuild()" in str(exc)
        return
    met = 0
    try:
        for action in (wb.sellers, lambda: wb.sql("SELECT * FROM sellers"), wb.status,
                       wb.pending):
            try:
                action()
            except CacheCorruptError as exc:
                assert "rebuild()" in str(exc)
                met += 1
    finally:
        wb.close()
    assert met or not must_fail, "the damage went unnoticed"


def test_damaged_seller_rows_are_a_clear_error_and_rebuild_keeps_the_queue(
    queued, tmp_path: Path
) -> None:
    srv, cache, ids = queued
    queue = _rows(cache, QUEUE)
    for block in _blocks(cache, "sellers"):
        _overwrite_block(cache, block)
    _every_way_in(cache)

    report = Store(cache).rebuild()
    assert report.kept == len(queue) and report.lost is None
    assert report.damaged.exists() and report.damaged != cache
    assert _rows(cache, QUEUE) == queue

    wb = connect(srv.url, srv.tokens["analyst"], cache, auto_push=False)
    try:
        wb.sync(progress=False)  # pushes the kept queue, then refills the cache
        assert wb.pending().empty and wb.failed().empty
        shown = wb.sellers().set_index("id")
        assert shown.loc[ids[:5], "flagged"].all()
        assert shown.loc[ids[5], "display_name"] == "Kept Through A Rebuild"
        assert ids[6] not in shown.index
        assert "Created Before The Damage" in set(shown["display_name"])
        assert_cache_equals_server(wb.store, srv)
    finally:
        wb.close()


def test_a_damaged_queue_is_reported_and_the_rest_rebuilt(queued) -> None:
    srv, cache, _ = queued
    for block in _blocks(cache, "mutations"):
        _overwrite_block(cache, block)
    report = Store(cache).rebuild()
    assert report.kept == 0 and "could not be read" in report.lost
    assert "could not be read" in str(report)
    wb = connect(srv.url, srv.tokens["analyst"], cache, auto_push=False)
    try:
        wb.sync(progress=False)
        assert_cache_equals_server(wb.store, srv)
    finally:
        wb.close()


@pytest.mark.parametrize("keep", [0.0, 0.004, 0.5, 0.95])
def test_a_truncated_cache_is_a_clear_error_and_rebuilds(queued, keep: float) -> None:
    srv, cache, _ = queued
    queued_rows = len(_rows(cache, QUEUE))
    with open(cache, "r+b") as handle:
        handle.truncate(int(cache.stat().st_size * keep))
    _every_way_in(cache, must_fail=False)
    report = Store(cache).rebuild()
    assert report.kept in (0, queued_rows)  # a table is read whole or not at all
    wb = connect(srv.url, srv.tokens["analyst"], cache, auto_push=False)
    try:
        wb.sync(progress=False)
        assert wb.pending().empty and wb.failed().empty
        assert_cache_equals_server(wb.store, srv)
    finally:
        wb.close()
