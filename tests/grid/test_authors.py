"""The detail panel names who last changed the seller (issue 20), asked of the real
reference server over loopback on a thread of its own: the panel says it, a server
without the ``history`` extension is named as such, a failing server gives one line,
and a click never waits for the server."""

from __future__ import annotations

import time
from pathlib import Path

from sellerbench.grid.authors import ASKING, NOT_OFFERED
from sellerbench.grid.widget import SellersGrid
from sellerbench.workbench import Workbench, connect


def wait_detail(grid: SellersGrid, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while text not in grid.detail.value:
        assert time.monotonic() < deadline, f"no {text!r} in the panel: {grid.detail.value}"
        time.sleep(0.05)
    return grid.detail.value


def open_on(wb: Workbench, seller: str) -> SellersGrid:
    grid = wb.grid(profiles=False)
    grid.select_ids([seller])
    return grid


def test_the_panel_names_the_last_author(wb: Workbench) -> None:
    wb.sync(progress=False)
    seller = wb.sellers()["id"].iloc[0]
    wb.flag([seller])
    wb.push()
    last = wb.client.seller_history(seller)[-1]
    assert last["user"] and last["action"] == "flag"
    grid = open_on(wb, seller)
    try:
        assert ASKING in grid.detail.value  # at once, before the server answered
        panel = wait_detail(grid, "Last changed by</b>")
        assert f"<b>Last changed by</b> {last['user']}" in panel and "(flag)" in panel
        asked = grid.authors.asked
        grid.clear_selection()
        grid.select_ids([seller])  # known: no second request
        assert "Last changed by</b>" in grid.detail.value and grid.authors.asked == asked
    finally:
        grid.close()


def test_a_server_without_history_says_so(base_server, tmp_path: Path) -> None:
    wb = connect(base_server.url, base_server.tokens["analyst"], tmp_path / "c.duckdb")
    try:
        wb.sync(progress=False)
        grid = open_on(wb, wb.sellers()["id"].iloc[0])
        try:
            wait_detail(grid, NOT_OFFERED)
            assert grid.authors.asked == 0  # told by /health, no 404 asked for
        finally:
            grid.close()
    finally:
        wb.close()


def test_a_failing_server_gives_one_line_and_clicks_never_wait(make_server,
                                                             tmp_path: Path) -> None:
    srv = make_server(n=30)
    wb = connect(srv.url, srv.tokens["analyst"], tmp_path / "c.duckdb")
    try:
        wb.sync(progress=False)
        ids = list(wb.sellers()["id"])[:3]
        wb.client.features  # noqa: B018 (known before the server fails)
        srv.faults.fail_rate = 1.0  # every seller request answers 500 (retried, backing off)
        grid = open_on(wb, ids[0])
        try:
            for seller in ids[1:]:
                grid.select_ids([seller])  # while the first request is being retried
            # The clicks came back before the server's answer (the retries of one
            # request back off for seconds): the panel is still asking.
            assert ASKING in grid.detail.value and grid.authors.asked >= 1
            panel = wait_detail(grid, "Last changed by: unknown (", timeout=90)
            assert "Traceback" not in panel and panel.count("unknown") == 1
        finally:
            grid.close()
    finally:
        srv.faults.fail_rate = 0.0
        wb.close()


def test_offline_and_local_sellers_get_no_line(offline_wb: Workbench) -> None:
    grid = offline_wb.grid(profiles=False)
    try:
        grid.select_rows(0)
        assert "Last changed by" not in grid.detail.value and "id-000000" in grid.detail.value
    finally:
        grid.close()
