"""The SellersGrid widget in Python, no browser: the messages the browser sends are
handed to the widget's handler directly, and the replies it would send are captured."""

from __future__ import annotations

from typing import Any

import pytest

from sellerbench.errors import MutationError
from sellerbench.grid.widget import SellersDataGrid, SellersGrid, _ago
from sellerbench.workbench import Workbench, connect

from .conftest import decode_reply, fill_sellers


class Sent:
    """Captures what the data grid sends to the browser."""

    def __init__(self, grid: SellersGrid) -> None:
        self.messages: list[tuple[dict[str, Any], list[Any]]] = []
        grid.datagrid.send = lambda content, buffers=None: self.messages.append(
            (content, buffers or []))

    def of(self, kind: str) -> list[tuple[dict[str, Any], list[Any]]]:
        return [m for m in self.messages if m[0].get("event_type") == kind]


@pytest.fixture
def grid(offline_wb: Workbench):
    grid = offline_wb.grid()
    yield grid
    grid.close()


def request(grid: SellersGrid, sent: Sent, r1: int, r2: int) -> dict[str, list]:
    grid.datagrid._handle_comm_msg(None, {"type": "data-request", "r1": r1, "r2": r2,
                                          "c1": 1, "c2": 2}, [])
    return decode_reply(*sent.of("data-reply")[-1])


def browser_selects(grid: SellersGrid, *rows: tuple[int, int]) -> None:
    """What the browser syncs after a click / shift-click / drag: row rectangles."""
    grid.datagrid.selections = [{"r1": a, "r2": b, "c1": 0, "c2": 3} for a, b in rows]


def browser_submits(box: Any, text: str) -> None:
    """What the browser sends on Enter (or the box's button): the text typed, with it."""
    box._message(None, {"event": "submit", "value": text}, [])


def test_data_request_gets_every_column_of_the_rows_asked(grid: SellersGrid) -> None:
    sent = Sent(grid)
    rows = request(grid, sent, 10, 14)
    reply = sent.of("data-reply")[-1][0]
    assert (reply["r1"], reply["r2"], reply["c1"], reply["c2"]) == (10, 14, 0, 7)
    assert rows["#"] == [10, 11, 12, 13, 14]
    assert rows["Name"] == [f"Seller {i:06d}" for i in range(10, 15)]
    assert rows["Flagged"] == ["yes", "", "", "", ""]
    assert "Id" not in rows  # ids are hidden unless show_ids=True
    assert grid.datagrid._row_count == 100


def test_data_request_past_the_end_is_clipped_or_silent(grid: SellersGrid) -> None:
    sent = Sent(grid)
    assert request(grid, sent, 98, 140)["#"] == [98, 99]
    grid.datagrid._handle_comm_msg(None, {"type": "data-request", "r1": 150, "r2": 160}, [])
    grid.datagrid._handle_comm_msg(None, {"type": "data-request", "r1": -1, "r2": -1}, [])
    assert len(sent.of("data-reply")) == 1
    assert grid.message.value == ""


def test_model_ships_empty_index_columns_so_a_click_does_not_throw(grid: SellersGrid) -> None:
    # The browser's click handler reads _data.data[<index column>][row]: it must exist.
    model = grid.datagrid._data
    assert model["schema"]["primaryKey"] == ["#", "ipydguuid"]
    assert {name: len(values) for name, values in model["data"].items()} == {
        "#": 0, "ipydguuid": 0}
    state = grid.datagrid.get_state("_data")["_data"]
    assert set(state["data"]) == {"#", "ipydguuid"}


def test_a_streaming_cell_click_message_is_harmless(grid: SellersGrid) -> None:
    # A streaming click arrives without primary_key_row; ipydatagrid's handler raised on it.
    clicks: list[dict] = []
    grid.datagrid.on_cell_click(clicks.append)
    grid.datagrid._handle_comm_msg(None, {"event_type": "cell-click", "region": "body",
                                          "column": "Name", "column_index": 0, "row": 3,
                                          "cell_value": "Seller 000003"}, [])
    assert grid.message.value == ""
    assert [(c["row"], c["primary_key_row"], c["cell_value"]) for c in clicks] == [
        (3, 3, "Seller 000003")]
    assert grid.datagrid._DataGrid__handle_custom_msg not in grid.datagrid._msg_callbacks.callbacks


def test_browser_selection_maps_to_ids_and_detail(grid: SellersGrid) -> None:
    browser_selects(grid, (2, 4), (3, 6), (9, 9))
    assert grid.selected_ids == [f"id-{i:06d}" for i in (2, 3, 4, 5, 6, 9)]
    assert grid.selected_count == 6
    assert "6 selected" in grid.status_line.value
    assert "Seller 000009" in grid.detail.value  # the row clicked last
    assert "Alpha" not in grid.detail.value and "Beta" in grid.detail.value
    browser_selects(grid)
    assert grid.selected_ids == []
    assert "Select a seller" in grid.detail.value


def test_python_selection_helpers(grid: SellersGrid) -> None:
    grid.select_rows(5, 7)
    grid.select_rows(20, add=True)
    assert grid.selected_ids == ["id-000005", "id-000006", "id-000007", "id-000020"]
    assert grid.datagrid.selected_row_ranges() == [(5, 7), (20, 20)]
    assert grid.select_ids(["id-000050", "id-000051", "nobody"]) == 2
    assert grid.datagrid.selections[0]["r1"] == 50
    grid.select_all()
    assert grid.selected_count == 100
    grid.clear_selection()
    assert grid.selected_ids == []
    seen: list[Any] = []
    grid.datagrid.observe(seen.append, "selections")
    grid.datagrid.select(1, 0, 2, 0)  # ipydatagrid's own select() now notifies observers
    assert seen and grid.selected_ids == ["id-000001", "id-000002"]


def test_flag_goes_through_the_queue_and_shows_at_once(grid: SellersGrid,
                                                       offline_wb: Workbench) -> None:
    sent = Sent(grid)
    grid.select_rows(1, 3)
    assert grid.flag_selected() == ["id-000001", "id-000002", "id-000003"]
    pending = offline_wb.pending()
    assert sorted(pending["seller_id"]) == ["id-000001", "id-000002", "id-000003"]
    assert set(pending["change"]) == {"flagged=true"}
    assert sent.of("tick")  # the browser is told to fetch its rows again
    rows = request(grid, sent, 0, 4)
    assert rows["Flagged"] == ["yes", "yes", "yes", "yes", ""]
    assert rows["Pending"] == ["", "flag", "flag", "flag", ""]
    assert "13 flagged · 3 pending" in grid.status_line.value
    assert "Flagged 3 sellers" in grid.message.value
    grid.flag_selected(False)
    assert request(grid, sent, 1, 3)["Flagged"] == ["", "", ""]


def test_buttons_without_a_selection_show_a_message_not_a_traceback(grid: SellersGrid,
                                                                    capsys) -> None:
    grid.buttons["flag"].click()
    assert "Could not flag: select the sellers to flag first" in grid.message.value
    grid.select_rows(1, 2)
    browser_submits(grid.rename_text, "x")
    assert "select exactly one seller to rename (2 selected)" in grid.message.value
    assert "Traceback" not in capsys.readouterr().err


def test_rename_one_seller(grid: SellersGrid, offline_wb: Workbench) -> None:
    grid.select_rows(4)
    browser_submits(grid.rename_text, "  Fresh Name  ")
    assert "Renamed to Fresh Name" in grid.message.value
    assert grid.rename_text.value == ""
    # Renamed rows move (sorted by name); the selection follows the seller.
    assert grid.selected_ids == ["id-000004"]
    assert grid.selected_frame()["Name"].tolist() == ["Fresh Name"]
    grid.select_rows(5)
    # the same normalized name: refused by the queue
    browser_submits(grid.rename_text, "fresh   name")
    assert "Could not rename:" in grid.message.value
    assert grid.message.value.count("⚠") == 1


def test_delete_needs_confirmation_above_the_threshold_then_undo(
    grid: SellersGrid, offline_wb: Workbench
) -> None:
    grid.confirm_delete_above = 3
    grid.select_rows(10, 14)
    grid.buttons["delete"].click()
    assert grid.confirm_bar.layout.display == "flex"
    assert "Delete 5 sellers?" in grid.confirm_text.value
    assert offline_wb.pending().empty
    with pytest.raises(MutationError, match="needs confirmation"):
        grid.delete_selected()
    assert grid.delete_selected(confirm=True) == [f"id-{i:06d}" for i in range(10, 15)]
    assert grid.confirm_bar.layout.display == "none"
    assert grid.viewport.row_count == 95
    assert "95 sellers" in grid.status_line.value
    assert grid.selected_ids == []  # the deleted rows are gone, and so is their selection
    grid.buttons["undo"].click()
    assert "Undo:" in grid.message.value
    assert grid.viewport.row_count == 100
    grid.select_rows(1)
    grid.buttons["delete"].click()  # one seller: no confirmation asked
    assert grid.viewport.row_count == 99


def test_selection_follows_its_sellers_when_the_order_changes(grid: SellersGrid) -> None:
    grid.select_rows(41, 43)
    grid.flag_selected()
    grid.sort_by("Flagged", descending=True)  # flagged rows move to the top
    assert grid.viewport.sort == ("Flagged", True)
    assert grid.selected_ids == ["id-000041", "id-000042", "id-000043"]
    # Ties keep the cache's scan order, so where among the flagged rows these three land
    # is not fixed; what is: the selection sits on exactly these sellers, below no
    # unflagged row.
    ranges = grid.datagrid.selected_row_ranges()
    assert sorted(grid.viewport.ids(ranges)) == ["id-000041", "id-000042", "id-000043"]
    shown = grid.viewport.frame()
    last = max(b for _, b in ranges)
    assert (shown["Flagged"].iloc[: last + 1] == "yes").all()
    grid.set_search("seller 00004")  # a filter keeps the selection on what stays shown
    assert grid.selected_ids == ["id-000041", "id-000042", "id-000043"]
    assert "10 shown of 100 sellers" in grid.status_line.value


def test_header_transforms_from_the_browser_sort_and_filter(grid: SellersGrid) -> None:
    sent = Sent(grid)
    grid.datagrid._transforms = [
        {"type": "sort", "column": "Name", "desc": True},
        {"type": "filter", "column": "Platform", "operator": "in", "value": ["amazon"]},
    ]
    assert grid.datagrid._row_count == 20
    assert request(grid, sent, 0, 0)["Name"] == ["Seller 000095"]
    grid.datagrid._transforms = [{"type": "filter", "column": "Name", "operator": "regex",
                                  "value": "x"}]
    assert "Could not sort or filter" in grid.message.value


def test_unique_values_request(grid: SellersGrid) -> None:
    sent = Sent(grid)
    grid.datagrid._handle_comm_msg(None, {"type": "unique-values-request",
                                          "column": "Platform"}, [])
    content, buffers = sent.of("unique-values-reply")[-1]
    assert content["column"] == "Platform"
    assert decode_reply(content, buffers)["Platform"] == ["amazon", "ebay"]


def test_search_box_and_flagged_filter_widgets(grid: SellersGrid) -> None:
    browser_submits(grid.search, "Seller 00002")
    assert grid.viewport.row_count == 10
    grid.flagged_filter.value = "flagged"
    assert grid.selected_ids == [] and grid.viewport.row_count == 1
    assert "1 shown of 100 sellers" in grid.status_line.value
    grid.search._message(None, {"event": "escape", "value": ""}, [])  # Escape clears it
    assert grid.search.value == ""
    grid.flagged_filter.value = "all"
    assert grid.viewport.row_count == 100


def test_changes_from_other_cells_show_without_rebuilding(grid: SellersGrid,
                                                           offline_wb: Workbench) -> None:
    sent = Sent(grid)
    offline_wb.flag(["id-000002"], True)  # another cell
    assert sent.of("tick")  # the browser is asked to fetch its rows again ...
    assert request(grid, sent, 2, 2)["Flagged"] == ["yes"]  # ... and gets them fresh
    assert "11 flagged · 1 pending" in grid.status_line.value
    # One re-read, at the request, of the one seller's row (the flag named it).
    assert (grid.viewport.builds, grid.viewport.patches) == (1, 1)
    offline_wb.undo()
    assert request(grid, sent, 2, 2)["Flagged"] == [""]
    assert "10 flagged · 0 pending" in grid.status_line.value
    assert (grid.viewport.builds, grid.viewport.patches) == (1, 2)
    # A change that names no sellers (a sync, a refresh) rebuilds.
    grid.refresh()
    assert request(grid, sent, 2, 2)["Flagged"] == [""] and grid.viewport.builds == 2


def test_many_changes_in_one_cell_cost_one_reread(grid: SellersGrid,
                                                    offline_wb: Workbench) -> None:
    reads = grid.viewport.builds, grid.viewport.patches
    for i in range(1, 6):
        offline_wb.flag([f"id-{i:06d}"], True)
    assert (grid.viewport.builds, grid.viewport.patches) == reads
    assert "15 flagged · 5 pending" in grid.status
    assert (grid.viewport.builds, grid.viewport.patches) == (reads[0], reads[1] + 1)


def test_close_stops_following_the_workbench(offline_wb: Workbench) -> None:
    grid = offline_wb.grid()
    assert grid._on_event in offline_wb._listeners
    grid.close()
    assert grid._on_event not in offline_wb._listeners
    offline_wb.flag(["id-000001"], True)  # no error from a closed grid


def test_the_painter_sits_right_after_the_grid_and_closes_with_it(
    offline_wb: Workbench,
) -> None:
    grid = offline_wb.grid()
    body = grid.children[-2]
    # Right after the grid in the same box: the grid's view exists when the painter's
    # renders (tests/browser checks what it does there).
    assert list(body.children[1:3]) == [grid.datagrid, grid.painter]
    assert grid.painter.grid_id == grid.datagrid.model_id
    assert grid.painter.layout.display == "none"
    assert "_drawCells" in grid.painter._esm and grid.painter.batched == 0
    grid.close()
    assert grid.painter.comm is None


def test_the_datagrid_api_works_on_the_streaming_grid(grid: SellersGrid) -> None:
    datagrid: SellersDataGrid = grid.datagrid
    sent = Sent(grid)
    request(grid, sent, 3, 4)
    assert datagrid.get_visible_data()["Name"].tolist() == ["Seller 000003", "Seller 000004"]
    assert len(datagrid.data) == 100
    grid.select_rows(3)
    assert datagrid.selected_cell_values[0] == "Seller 000003"
    with pytest.raises(MutationError, match=r"wb\.rename"):
        datagrid.set_cell_value("Name", 3, "x")


def test_show_ids_and_errors_in_a_page_request_are_shown(offline_wb: Workbench) -> None:
    grid = offline_wb.grid(show_ids=True)
    sent = Sent(grid)
    assert request(grid, sent, 0, 0)["Id"] == ["id-000000"]
    grid.viewport.invalidate()
    offline_wb.store.path.unlink()
    offline_wb.store.path.write_text("not a database")
    grid.datagrid._handle_comm_msg(None, {"type": "data-request", "r1": 0, "r2": 3}, [])
    assert "Could not show these rows: the cache" in grid.message.value
    grid.close()


def test_sync_button_offline_and_online(offline_wb: Workbench, server, tmp_path) -> None:
    grid = offline_wb.grid()
    grid.buttons["sync"].click()
    assert "Could not sync: this workbench has no API" in grid.message.value
    grid.close()
    wb = connect(server.url, server.tokens["analyst"], tmp_path / "online.duckdb")
    try:
        grid = wb.grid()
        assert "0 sellers" in grid.status_line.value and "never synced" in grid.status_line.value
        grid.buttons["sync"].click()
        assert "Synced:" in grid.message.value
        assert "synced just now" in grid.status_line.value
        assert grid.viewport.row_count == grid.viewport.status()["total"] > 0
        grid.close()
    finally:
        wb.close()


def test_ago() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert _ago(now - timedelta(seconds=10), now) == "just now"
    assert _ago(now - timedelta(minutes=2), now) == "2 min ago"
    assert _ago(now - timedelta(hours=3), now) == "3 h ago"
    assert _ago(now - timedelta(days=1), now) == "1 day ago"
    assert _ago(now - timedelta(days=4), now) == "4 days ago"


def test_select_all_of_a_huge_view_stays_all_across_a_refresh(tmp_path, monkeypatch) -> None:
    # A select-all above PIN_LIMIT rows is pinned as "all", never copied id by id.
    from sellerbench.cache.store import Store
    from sellerbench.grid import widget as grid_module

    monkeypatch.setattr(grid_module, "PIN_LIMIT", 200)
    store = Store(tmp_path / "c.duckdb")
    fill_sellers(store, 300)
    wb = Workbench(store, None, auto_push=False)
    grid = wb.grid()
    grid.select_all()
    grid.refresh()
    assert grid._pinned == "all"
    wb.create(["A brand new seller"])
    assert grid.selected_count == 301
    grid.close()


def test_a_selection_of_every_filtered_row_stays_on_those_sellers(grid: SellersGrid) -> None:
    grid.set_flagged_filter("flagged")
    grid.select_all()  # all 10 flagged rows
    grid.set_flagged_filter("all")
    assert grid.selected_ids == [f"id-{i:06d}" for i in range(0, 100, 10)]


def test_requests_on_a_subshell_thread_never_build_twice(grid: SellersGrid,
                                                         offline_wb: Workbench) -> None:
    # ipykernel 7 may handle the browser's data-requests on a subshell thread while a
    # cell runs on the main thread: the snapshot must be built once per change, and
    # every reply must hold whole rows.
    import threading

    sent = Sent(grid)
    stop = threading.Event()
    errors: list[BaseException] = []

    def browser() -> None:
        while not stop.is_set():
            try:
                grid.datagrid._handle_comm_msg(None, {"type": "data-request", "r1": 0,
                                                      "r2": 9}, [])
            except BaseException as exc:  # pragma: no cover - the assertion reports it
                errors.append(exc)

    threads = [threading.Thread(target=browser) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        builds = grid.viewport.builds
        for i in range(1, 6):
            grid.select_rows(i)
            grid.flag_selected()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == [] and grid.message.value.startswith("<span class='sellerbench-info'>")
    assert grid.viewport.builds - builds <= 5  # at most one per change
    assert len(sent.of("data-reply")) > 5
    assert request(grid, sent, 0, 9)["Flagged"][:6] == ["yes"] * 6
