"""Set-based actions (issue 21): a filter or an Arrow table of ids in, a few statements,
the same queue rows as one-by-one actions; results that fit a notebook."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from sellerbench.cache.store import Store
from sellerbench.cache.sync import SyncReport
from sellerbench.changes.push import PushReport
from sellerbench.changes.result import TOUCH_LIMIT, Action
from sellerbench.errors import ConfigError, MutationError
from sellerbench.reports.exports import ExportReport
from sellerbench.shortrepr import MAX_REPR
from sellerbench.workbench import Workbench

FILL = """
INSERT INTO sellers
SELECT 'id-' || lpad(i::VARCHAR, 7, '0'), 'Seller ' || lpad(i::VARCHAR, 7, '0'),
       'seller ' || lpad(i::VARCHAR, 7, '0'), 'ebay', NULL, (i % 9)::INTEGER, i % 4 = 0,
       NULL, NULL, TIMESTAMPTZ '2026-01-01', TIMESTAMPTZ '2026-01-01', NULL, i
FROM range(?) t(i)
"""
N = 120_000  # above TOUCH_LIMIT: listeners hear "any row"


@pytest.fixture
def big_wb(tmp_path: Path):
    store = Store(tmp_path / "cache.duckdb")
    with store.connect() as con:
        con.execute(FILL, [N])
    wb = Workbench(store, None, auto_push=False)
    heard: list = []
    wb.subscribe(heard.append)
    wb.heard = heard
    yield wb
    wb.close()


def _queue(wb: Workbench, state: str = "pending") -> list[tuple]:
    with wb.store.connect() as con:
        return con.execute(
            "SELECT kind, seller_id, flagged, name, frees, action_id FROM mutations "
            "WHERE state = ? ORDER BY seller_id, seq", [state]
        ).fetchall()


def _flagged(wb: Workbench) -> int:
    return int(wb.sql("SELECT count(*) AS n FROM visible_sellers WHERE flagged")["n"][0])


def test_flag_from_a_filter_queues_one_row_per_seller_and_undo_takes_them_back(big_wb):
    wb = big_wb
    under = wb.sellers(where="times_seen < 9 AND id > 'id-0000005'")
    action = wb.flag(where="times_seen < 9 AND id > 'id-0000005'")
    assert sorted(action) == sorted(under["id"]) and len(action) == len(under) > TOUCH_LIMIT
    rows = _queue(wb)
    assert [r[1] for r in rows] == sorted(under["id"])
    assert {(r[0], r[2]) for r in rows} == {("flag", True)} and len({r[5] for r in rows}) == 1
    assert wb.heard[-1] == "mutation" and wb.heard[-1].sellers is None  # "any row"
    assert _flagged(wb) == len(wb.sellers(where="flagged OR times_seen < 9 AND id > 'id-0000005'"))
    assert wb.undo() == f"undid flag of {len(under):,} seller(s): " \
        f"{len(under):,} queued change(s) removed, never sent"
    assert _queue(wb) == [] and _flagged(wb) == N // 4


def test_a_filter_and_the_same_ids_queue_the_same_rows(tmp_path, big_wb):
    wb = big_wb
    by_filter = wb.unflag(search="seller 00012")
    from_filter = [r[:5] for r in _queue(wb)]
    wb.undo()
    by_ids = wb.flag(pa.array(list(by_filter)).to_pylist(), False)
    assert [r[:5] for r in _queue(wb)] == from_filter
    assert sorted(by_ids) == sorted(by_filter) and len(by_ids) == 100
    assert wb.heard[-1].sellers == frozenset(by_ids)  # small: named one by one


def test_delete_and_restore_from_filters(big_wb):
    wb = big_wb
    gone = wb.delete(where="times_seen = 8")
    assert len(wb.sellers(where="times_seen = 8")) == 0
    assert {r[4] for r in _queue(wb) if r[0] == "delete"} >= {"seller 0000008"}
    with pytest.raises(MutationError, match="cannot flag 1 deleted seller"):
        wb.flag([gone[0]])
    back = wb.restore(where="times_seen = 8")
    assert sorted(back) == sorted(gone)
    assert len(wb.sellers(where="times_seen = 8")) == len(gone)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda wb: wb.flag(["id-0000001", "nope"]), MutationError, "1 unknown seller id"),
        (lambda wb: wb.flag(["id-0000001"], where="true"), MutationError, "not both"),
        (lambda wb: wb.flag(where="no_such_column > 1"), ConfigError, "no_such_column"),
        (lambda wb: wb.flag(where="1; DROP TABLE sellers"), ConfigError, "one SQL predicate"),
        (lambda wb: wb.restore(["id-0000001"]), MutationError, "cannot restore 1 live seller"),
        (lambda wb: wb.flag(), MutationError, "which sellers"),
    ],
)
def test_bad_set_actions_queue_nothing(big_wb, call, error, message):
    with pytest.raises(error, match=message):
        call(big_wb)
    assert _queue(big_wb) == []


def test_a_filter_that_matches_nobody_changes_nothing(big_wb):
    action = big_wb.flag(where="times_seen > 100")
    assert len(action) == 0 and repr(action) == "<Action flag=True: nothing changed>"
    assert big_wb.undo() == "nothing to undo"


def test_an_action_is_a_sequence_of_ids_with_a_one_line_repr():
    ids = pa.array([f"{i:036d}" for i in range(1_000_000)])
    action = Action("flag=True", ids, None)
    text = repr(action)
    assert len(text) <= MAX_REPR and "\n" not in text and "+999,997 more" in text
    assert len(action) == 1_000_000 and action[0] == f"{0:036d}" and action[-1].endswith("999")
    assert action[1:3] == [f"{1:036d}", f"{2:036d}"] and list(action)[5] == f"{5:036d}"
    assert Action("flag=True", ["a", "b"], frozenset()) == ["a", "b"]
    assert Action("flag=True", ["a", "b"], frozenset()) == ["a", "b"]
    assert "<table>" in action._repr_html_() and len(action._repr_html_()) < 2_000
    with pytest.raises(IndexError):
        action[1_000_000]


def test_reports_have_short_reprs_whatever_their_size(tmp_path):
    many = frozenset(f"seller-{i:08d}" for i in range(200_000))
    pushed = PushReport(sent=200_000, calls=20, coalesced=20, succeeded=199_000,
                        failed=1_000, failures=[f"refused {i} " * 20 for i in range(1_000)],
                        note="x" * 5_000, touched=many)
    synced = SyncReport(added=5, pages=3, pushed=pushed)
    exported = ExportReport(1_000_000, tmp_path / ("d" * 3_000) / "out.parquet", "parquet",
                            "cache", 1.5, "why " * 1_000)
    for report in (pushed, synced, exported):
        assert len(repr(report)) <= MAX_REPR and "\n" not in repr(report)
        assert len(report._repr_html_()) <= 4 * MAX_REPR
    assert "199,000" in repr(pushed) or "199000" in repr(pushed)
    assert repr(synced).startswith("<SyncReport synced") and str(datetime.now(UTC).year)


def test_the_client_s_bulk_size_is_the_server_s_limit():
    from sellerbench.api.client import MAX_BULK
    from sellerbench.server.http.models import MAX_BATCH

    assert MAX_BULK == MAX_BATCH


def test_a_push_sends_bulk_calls_of_the_largest_size(make_server, tmp_path):
    from sellerbench.workbench import connect

    srv = make_server(n=30_000, seed=4)
    wb = connect(srv.url, srv.tokens["analyst"], tmp_path / "c.duckdb", auto_push=False)
    try:
        wb.sync(progress=False)
        queued = wb.flag(where="NOT flagged")
        real, lock = wb.client.flag_sellers_bulk, threading.Lock()
        now, most = [0], [0]

        def counted(*args, **kwargs):  # the real call, counting how many are under way
            with lock:
                now[0] += 1
                most[0] = max(most[0], now[0])
            try:
                time.sleep(0.2)
                return real(*args, **kwargs)
            finally:
                with lock:
                    now[0] -= 1

        wb.client.flag_sellers_bulk = counted
        report = wb.push(progress=False)
        assert most[0] == 3  # all three calls under way at once (at most IN_FLIGHT = 4)
        assert report.succeeded == len(queued) > 20_000 and report.still_pending == 0
        assert report.calls == report.coalesced == -(-len(queued) // 10_000)
        assert report.touched is not None and len(report.touched) == len(queued)
        assert len(repr(report)) <= MAX_REPR and "<table>" in report._repr_html_()
        assert wb.sellers(flagged=False).empty
    finally:
        wb.close()


def test_the_grid_acts_on_all_under_its_filter_by_the_filter(big_wb):
    wb = big_wb
    calls: list[tuple] = []
    real_flag, real_delete = wb.flag, wb.delete
    wb.flag = lambda *a, **kw: calls.append(("flag", a, kw)) or real_flag(*a, **kw)
    wb.delete = lambda *a, **kw: calls.append(("delete", a, kw)) or real_delete(*a, **kw)
    grid = wb.grid()
    try:
        grid.set_search("seller 00012")
        grid.select_all()
        flagged = grid.flag_selected(True)
        assert len(flagged) == 100 and calls[-1][1] == ()  # no ids listed
        assert "seller 00012" in calls[-1][2]["where"]
        grid.select_rows(0, 1)
        grid.delete_selected(confirm=True)
        assert calls[-1][0] == "delete" and len(calls[-1][1][0]) == 2  # a part: by ids
    finally:
        grid.close()
    assert len(wb.sellers(where="flagged AND display_name LIKE 'Seller 00012%'")) == 98
