"""sync against the real reference server: rev and base modes, counts, tombstones, windows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sellerbench.api.client import ApiClient
from sellerbench.cache import sync as sync_module
from sellerbench.errors import AuthError, ConfigError
from sellerbench.workbench import Workbench, connect

from .syncutil import assert_cache_equals_server, cache_sellers, server_sellers


def _write(srv: Any) -> ApiClient:
    return ApiClient(srv.url, srv.tokens["analyst"])


def test_full_sync_equals_the_server(wb: Workbench, server: Any) -> None:
    report = wb.sync(progress=False)
    served = server_sellers(server)
    tombstones = sum(1 for row in served.values() if row[-1] is not None)
    assert report.mode == "rev" and report.pages >= 2
    assert (report.added, report.updated, report.deleted) == (
        len(served) - tombstones, 0, tombstones
    )
    assert report.runs >= 1 and report.seconds > 0
    assert "sellers added" in str(report) and "rev feed" in str(report)
    assert_cache_equals_server(wb.store, server)


def test_sync_with_nothing_new_changes_nothing(wb: Workbench, server: Any) -> None:
    wb.sync(progress=False)
    again = wb.sync(progress=False)
    assert (again.added, again.updated, again.deleted, again.runs) == (0, 0, 0, 0)
    assert_cache_equals_server(wb.store, server)


def _change_server(srv: Any) -> tuple[int, int, int]:
    """Create 3, rename 2, flag 2, delete 2: (added, updated, deleted) to expect."""
    with _write(srv) as api:
        live = api.sync_sellers(limit=100).items
        for name in ("Fresh Shop One", "Fresh Shop Two", "Fresh Shop Three"):
            api.create_seller(name)
        api.update_seller(live[0]["id"], name="Renamed Shop Zero")
        api.update_seller(live[1]["id"], name="Renamed Shop One")
        settable = "flag_set" in api.features
        for seller in live[2:4]:
            api.flag_seller(seller["id"], not seller["flagged"] if settable else None)
        api.delete_sellers_bulk([live[4]["id"], live[5]["id"]])
    return 3, 4, 2


@pytest.mark.parametrize("base_only", [False, True], ids=["rev", "base"])
def test_incremental_sync_applies_only_the_changes(
    make_server: Any, make_wb: Any, base_only: bool
) -> None:
    srv = make_server(n=250, base_only=base_only)
    wb = make_wb(srv)
    assert wb.sync(progress=False).mode == ("base" if base_only else "rev")
    expected = _change_server(srv)
    report = wb.sync(progress=False)
    assert (report.added, report.updated, report.deleted) == expected
    assert_cache_equals_server(wb.store, srv)


def test_counts_are_exact_in_rev_mode(make_server: Any, make_wb: Any) -> None:
    srv = make_server(n=120)
    wb = make_wb(srv)
    wb.sync(progress=False)
    with _write(srv) as api:
        live = api.sync_sellers(limit=100).items
        api.create_sellers_bulk(["Count A", "Count B"])
        api.update_seller(live[0]["id"], name="Count Renamed")
        api.update_seller(live[0]["id"], flagged=not live[0]["flagged"])  # same seller twice
        api.delete_sellers_bulk([live[1]["id"], live[2]["id"], live[3]["id"]])
        api.delete_seller(live[4]["id"])
        api.restore_sellers_bulk([live[4]["id"]])  # deleted and back: an update
    report = wb.sync(progress=False)
    assert (report.added, report.updated, report.deleted) == (2, 2, 3)
    assert_cache_equals_server(wb.store, srv)


def test_tombstones_stay_in_the_cache_but_not_in_frames(make_server: Any, make_wb: Any) -> None:
    srv = make_server(n=30)
    wb = make_wb(srv)
    wb.sync(progress=False)
    victim = wb.sellers()["id"].iloc[0]
    with _write(srv) as api:
        api.delete_seller(victim)
    assert wb.sync(progress=False).deleted == 1
    assert victim not in set(wb.sellers()["id"])
    everything = wb.sellers(include_deleted=True)
    assert everything.loc[everything["id"] == victim, "deleted_at"].notna().all()
    assert cache_sellers(wb.store)[victim][-1] is not None


def test_base_mode_full_sync_equals_the_server(base_server: Any, make_wb: Any) -> None:
    wb = make_wb(base_server)
    report = wb.sync(progress=False)
    assert report.mode == "base" and report.pages >= 4  # 300 sellers, 100 a page
    assert report.added + report.deleted == 300
    assert_cache_equals_server(wb.store, base_server)
    assert wb.sync(progress=False).added == 0


def test_base_mode_rows_sharing_updated_at_across_pages(make_server: Any, make_wb: Any) -> None:
    srv = make_server(n=400, base_only=True)
    wb = make_wb(srv)
    wb.sync(progress=False)
    with _write(srv) as api:
        ids = [s["id"] for s in api.sync_sellers(limit=100).items]
        ids += [s["id"] for s in api.sync_sellers(
            cursor=api.sync_sellers(limit=100).next_cursor, limit=100).items]
        assert api.delete_sellers_bulk(ids[:150]) == 150  # one transaction: one timestamp
        first = api.sync_sellers(limit=100, include_deleted=True).items
        stamps = {s["updated_at"] for s in first}
    assert len(stamps) == 1, "the server should stamp one bulk write with one time"
    report = wb.sync(progress=False)
    assert report.deleted == 150
    assert_cache_equals_server(wb.store, srv)


def test_base_mode_overlap_catches_a_late_commit(make_server: Any, make_wb: Any) -> None:
    """A write whose updated_at is older than what we had read when it committed."""
    srv = make_server(n=50, base_only=True)
    wb = make_wb(srv)
    with _write(srv) as api:
        api.create_seller("Newest Shop")  # the high-water mark: now
    wb.sync(progress=False)
    with wb.store.connect() as con:
        high = con.execute(
            "SELECT high_water FROM sync_state WHERE feed = 'sellers'"
        ).fetchone()[0]
    late = (high - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with _write(srv) as api:
        victim = api.sync_sellers(limit=100).items[-1]["id"]
    with srv.storage.write() as tx:  # as if a slow transaction committed only now
        tx.execute(
            "UPDATE sellers SET display_name = 'Late Writer', updated_at = ? WHERE id = ?",
            (late, victim),
        )
    report = wb.sync(progress=False)
    assert report.updated == 1
    assert cache_sellers(wb.store)[victim][1] == "Late Writer"
    assert_cache_equals_server(wb.store, srv)


@pytest.mark.parametrize("base_only", [False, True], ids=["rev", "base"])
def test_writer_during_sync(
    make_server: Any, make_wb: Any, monkeypatch: pytest.MonkeyPatch, base_only: bool
) -> None:
    """Rows change between pages, behind and ahead of the sync: none is lost."""
    srv = make_server(n=600, base_only=base_only)
    monkeypatch.setattr(sync_module, "REV_PAGE", 50)
    wb = make_wb(srv)
    writer = _write(srv)
    ids = [s["id"] for s in writer.sync_sellers(since_rev=None, limit=100).items]
    real = wb.client.sync_page
    fetched = []

    def page_then_write(*args: Any, **kw: Any):
        page = real(*args, **kw)
        fetched.append(1)
        if len(fetched) in (2, 4):  # between pages: touch early and late rows
            n = len(fetched)
            writer.update_seller(ids[n], name=f"Changed During Sync {n}")
            writer.delete_seller(ids[-n])
            writer.create_seller(f"Born During Sync {n}")
        return page

    monkeypatch.setattr(wb.client, "sync_page", page_then_write)
    wb.sync(progress=False)
    writer.close()
    assert_cache_equals_server(wb.store, srv)


def test_full_resync_rebuilds_the_cache(make_server: Any, make_wb: Any) -> None:
    srv = make_server(n=40)
    wb = make_wb(srv)
    wb.sync(progress=False)
    with wb.store.connect() as con:
        con.execute("DELETE FROM sellers WHERE rowid % 2 = 0")  # damage it
    report = wb.sync(progress=False, full=True)
    assert report.added + report.deleted == 40
    assert_cache_equals_server(wb.store, srv)


def test_another_server_replaces_the_cache(make_server: Any, tmp_path) -> None:
    one, two = make_server(n=30, seed=1), make_server(n=20, seed=2)
    cache = tmp_path / "shared.duckdb"
    with connect(one.url, one.tokens["analyst"], cache) as wb:
        wb.sync(progress=False)
    with connect(two.url, two.tokens["analyst"], cache) as wb:
        wb.sync(progress=False)
        assert_cache_equals_server(wb.store, two)


def test_sync_tells_listeners(wb: Workbench) -> None:
    events: list[str] = []
    wb.subscribe(events.append)
    wb.sync(progress=False)
    assert events == ["sync"]


def test_wrong_token_stops_sync_with_auth_error(server: Any, tmp_path) -> None:
    with connect(server.url, "not-the-token", tmp_path / "c.duckdb") as wb:
        with pytest.raises(AuthError, match="SELLERBENCH_TOKEN"):
            wb.sync(progress=False)
        assert cache_sellers(wb.store) == {}


def test_offline_workbench_cannot_sync(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SELLERBENCH_API_URL", raising=False)
    with connect(cache=tmp_path / "c.duckdb") as wb, pytest.raises(ConfigError, match="API"):
        wb.sync()


def test_progress_bar_in_a_terminal(wb: Workbench, capsys: pytest.CaptureFixture) -> None:
    wb.sync(progress=True)
    err = capsys.readouterr().err
    assert "sync sellers" in err and "rows" in err
