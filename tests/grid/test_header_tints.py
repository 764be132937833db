"""Issue 20, what was left: an arrow on every sorted column's header (with its number
when there are several), and row tints that follow the row's state whatever columns are
shown. In the kernel (the browser walk, tests/browser/test_grid_header_tints.py, checks
the drawn header text and the pixels)."""

from __future__ import annotations

from typing import Any

import pytest

from sellerbench.grid.layout import sort_header_text
from sellerbench.grid.widget import SellersGrid
from sellerbench.workbench import Workbench


@pytest.fixture
def grid(offline_wb: Workbench):
    grid = offline_wb.grid()
    yield grid
    grid.close()


class Order:
    """What the grid sends, and when the row colour changes, in one sequence."""

    def __init__(self, grid: SellersGrid) -> None:
        self.events: list[tuple[str, Any]] = []
        grid.datagrid.send = lambda content, buffers=None: self.events.append(
            ("send", content))
        grid.datagrid.default_renderer.background_color.observe(
            lambda change: self.events.append(("colour", change["new"])), "value")


def request(grid: SellersGrid, r1: int, r2: int) -> None:
    grid.datagrid._handle_comm_msg(None, {"type": "data-request", "r1": r1, "r2": r2}, [])


def test_header_text_names_every_sort_key_in_order() -> None:
    one = sort_header_text([("Name", False)])
    assert one == "(cell.value == 'Name' ? default_value + ' ▲' : default_value)"
    two = sort_header_text([("Times seen", True), ("Name", False)])
    assert "'Times seen' ? default_value + ' ▼1'" in two
    assert "'Name' ? default_value + ' ▲2'" in two
    assert "\\'" in sort_header_text([("O'Brien", False)])  # quoted for Vega


def test_shift_click_keys_each_get_their_arrow(grid: SellersGrid) -> None:
    text = grid.datagrid.header_renderer.text_value
    assert text.value == sort_header_text([("Name", False)])  # the default order, drawn
    grid.header_clicked("Times seen")
    grid.header_clicked("Times seen")
    grid.header_clicked("Platform", add=True)
    assert text.value == sort_header_text([("Times seen", True), ("Platform", False)])
    assert grid.datagrid._transforms == []  # ipydatagrid's single icon: not drawn
    # A header filter goes to the header; the arrows stay.
    grid.datagrid._transforms = [{"type": "filter", "column": "Platform", "operator": "=",
                                  "value": "ebay"}]
    assert grid.viewport.sort_keys == [("Times seen", True), ("Platform", False)]
    assert text.value == sort_header_text([("Times seen", True), ("Platform", False)])
    # State round trip keeps them.
    saved = grid.state
    grid.header_clicked("Name")
    grid.state = saved
    assert text.value == sort_header_text([("Times seen", True), ("Platform", False)])


def test_hidden_flagged_rows_keep_their_tint(grid: SellersGrid, offline_wb: Workbench) -> None:
    offline_wb.flag(grid.viewport.ids([(2, 2), (5, 5)]))
    flagged = [i for i, f in enumerate(grid.viewport.flags([(0, 99)])) if f]
    assert {2, 5} <= set(flagged) and len(flagged) < 100
    grid.columns = [c for c in grid.columns if c != "Flagged"]
    order = Order(grid)
    request(grid, 0, 19)
    colours = [e for e in order.events if e[0] == "colour"]
    assert colours, order.events
    shown = ",".join(str(r) for r in flagged if r <= 19)
    assert f"indexof([{shown}], cell.row) >= 0" in colours[-1][1]
    assert "cell.metadata.data['Flagged']" not in colours[-1][1]
    # The colour went before the rows it names.
    kinds = [e[0] if e[0] == "colour" else e[1].get("event_type") for e in order.events]
    assert kinds.index("colour") < kinds.index("data-reply")
    # Sorted the other way: the same sellers are on other rows, and so is the tint.
    grid.header_clicked("Name")
    request(grid, 80, 99)
    flagged = [r for r, f in enumerate(grid.viewport.flags([(0, 99)])) if f and r >= 80]
    assert flagged and flagged != [r for r in flagged if r <= 19]
    shown = ",".join(str(r) for r in flagged)
    assert (f"indexof([{shown}], cell.row)"
            in grid.datagrid.default_renderer.background_color.value)


def test_hidden_pending_rows_keep_their_tint(grid: SellersGrid, offline_wb: Workbench) -> None:
    seller = grid.viewport.ids([(3, 3)])[0]
    offline_wb.rename(seller, grid.viewport.page(3, 3)["Name"].iloc[0] + " (renamed)")
    grid._prepare()
    row = int(grid.viewport.positions([seller])[0])
    assert grid.viewport.page(row, row)["Pending"].iloc[0] == "rename"
    pending = grid.viewport.page(0, 19).query("Pending != ''").index.tolist()
    assert row in pending
    grid.columns = ["Name", "Platform", "Times seen"]  # Flagged and Pending hidden
    request(grid, 0, 19)
    expr = grid.datagrid.default_renderer.background_color.value
    assert "cell.metadata" not in expr  # never a column the browser lacks
    shown = ",".join(str(r) for r in pending)
    assert f"indexof([{shown}], cell.row) >= 0 ? '{grid.palette.pending}'" in expr
    # Shown again: the cells are read (after the first rows of the new schema).
    grid.columns = ["Name", "Pending", "Flagged"]
    request(grid, 0, 19)
    expr = grid.datagrid.default_renderer.background_color.value
    assert "cell.metadata.data['Pending']" in expr and "indexof" not in expr


def test_hiding_a_sorted_column_drops_its_key_and_arrow(grid: SellersGrid) -> None:
    grid.header_clicked("Times seen")
    grid.header_clicked("Platform", add=True)
    grid.header_clicked("Name", add=True)
    assert "sorted by Times seen ▲, then Platform ▲, then Name ▲" in grid.status
    grid.columns = ["Name", "Platform", "Flagged"]  # Times seen hidden
    assert grid.viewport.sort_keys == [("Platform", False), ("Name", False)]
    assert grid.datagrid.header_renderer.text_value.value == sort_header_text(
        [("Platform", False), ("Name", False)])
    assert "sorted by Platform ▲, then Name ▲" in grid.status_line.value
    frame = grid.viewport.page(0, 99)
    pairs = list(zip(frame["Platform"], frame["Name"], strict=True))
    assert pairs == sorted(pairs)
    grid.columns = ["Flagged"]  # no key left: the first column
    assert grid.viewport.sort_keys == [("Flagged", False)]
    assert "sorted by" not in grid.status_line.value
