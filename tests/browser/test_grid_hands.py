"""The grid's hands-on interactions in JupyterLab, driven by real mouse and keyboard events
in headless Chromium, each checked through its effect in the kernel (the queue, the
selection, the filter):

- typing a name at full speed and clicking Rename at once renames the seller to exactly
  what was typed; Enter in the name box does the same; Escape empties it;
- typing a search and pressing Enter at once filters by exactly what was typed; the
  where box too;
- right-button drag over five rows flags exactly those five; Ctrl+A selects every seller
  under the filter; Ctrl+Z after a flag leaves nothing pending; Delete asks first;
- hovering a row shows its details; clicking a profile bar filters the grid and
  ``wb.sellers(where=grid.where_sql)`` has exactly the grid's rows.

Screenshots are kept in test-artifacts/.
"""

from __future__ import annotations

from typing import Any

import pytest

from .lab import LabPage, wait_for, write_notebook
from .test_grid_browser import CELLS, GridOnPage

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def open_grid(lab: LabPage, name: str) -> GridOnPage:
    write_notebook(lab.lab.root / name, CELLS)
    lab.open(name)
    lab.run_all()
    lab.page.locator(".sellerbench-status-text").wait_for(timeout=90_000)
    lab.wait_kernel("grid.datagrid.replies > 0", True, timeout=60)
    return GridOnPage(lab)


def pending_ids(lab: LabPage, kind: str) -> list[str]:
    return lab.kernel_json(f"sorted(wb.pending().query(\"kind == '{kind}'\")['seller_id'])")


BUSY_KERNEL_JS = """
(seconds) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  kernel.requestExecute({code: `import time; time.sleep(${seconds})`, store_history: false});
}
"""


def keep_kernel_busy(lab: LabPage, seconds: float) -> None:
    """A cell that runs ``seconds`` on the main thread, started and not waited for: while
    it runs, the browser holds back the widgets' state updates (one at a time, each
    waiting for the kernel's answer) but not their custom messages."""
    lab.page.evaluate(BUSY_KERNEL_JS, seconds)


def test_typed_text_reaches_the_kernel_whole(lab_page: LabPage, artifacts: Any) -> None:
    lab = lab_page
    grid = open_grid(lab, "grid_typing.ipynb")
    page = lab.page
    name = "Andersson Daughters (checked) — ünïcode & 'quotes'"
    grid.click(4)
    seller = lab.kernel_json("grid.viewport.ids([(4, 4)])")[0]
    lab.wait_kernel("grid.selected_ids", [seller])
    box = page.locator(".sellerbench-rename input")
    grid_top = grid.canvas.bounding_box()["y"]
    keep_kernel_busy(lab, 2)  # as when the grid or a cell keeps the kernel busy
    box.press_sequentially(name)  # full speed, no delay between keys ...
    page.locator(".sellerbench-rename button").click()  # ... and Rename at once
    lab.wait_kernel(f"wb.sql(\"SELECT display_name FROM visible_sellers WHERE id = "
                    f"'{seller}'\")['display_name'].tolist()", [name])
    wait_for(lambda: box.input_value() == "", 10, "the name box to empty after the rename")
    assert "Renamed to" in page.locator(".sellerbench-message").inner_text()
    assert grid.canvas.bounding_box()["y"] == grid_top  # the message line did not move it
    changes = lab.kernel_json("wb.pending()['change'].tolist()")
    assert len(changes) == 1 and name in changes[0], changes  # the queue holds it whole

    # Enter in the name box renames too; Escape empties it and does nothing else.
    lab.run(f"grid.selection = [{seller!r}]")
    box.press_sequentially("Second Name Ltd")
    box.press("Enter")
    lab.wait_kernel(f"wb.sql(\"SELECT display_name FROM visible_sellers WHERE id = "
                    f"'{seller}'\")['display_name'].tolist()", ["Second Name Ltd"])
    box.press_sequentially("never sent")
    box.press("Escape")
    assert box.input_value() == ""
    assert lab.kernel_json("len(wb.pending())") == 2

    # A search typed at full speed and Enter at once filters by all of it.
    search = page.locator(".sellerbench-search input")
    keep_kernel_busy(lab, 2)
    search.press_sequentially("Second Name L")
    search.press("Enter")
    lab.wait_kernel("[grid.search.value, grid.viewport.row_count]", ["Second Name L", 1])
    search.press("Escape")
    lab.wait_kernel("grid.viewport.row_count", lab.kernel_json("len(wb.sellers())"))

    where = page.locator(".sellerbench-where input")
    where.press_sequentially("times_seen >= 3 AND platform = 'ebay'")
    page.locator(".sellerbench-where button").click()
    expected = lab.kernel_json(
        "len(wb.sellers(where=\"times_seen >= 3 AND platform = 'ebay'\"))")
    lab.wait_kernel("grid.viewport.row_count", expected)
    assert lab.kernel_json("len(wb.sellers(where=grid.where_sql))") == expected
    page.screenshot(path=str(artifacts / "grid-typed.png"), full_page=True)
    assert page.js_errors == []
    lab.run("wb.close()")


def test_right_drag_keys_hover_and_profiles(lab_page: LabPage, artifacts: Any) -> None:
    lab = lab_page
    grid = open_grid(lab, "grid_hands.ipynb")
    page = lab.page
    lab.run("grid.set_flagged_filter('not flagged')")
    lab.wait_kernel("grid.viewport.row_count", lab.kernel_json("len(wb.sellers(flagged=False))"))

    # Right-button drag over rows 3..7: exactly those five are flagged, queued.
    five = lab.kernel_json("grid.viewport.ids([(3, 7)])")
    mouse = page.mouse
    mouse.move(*grid.point(3))
    mouse.down(button="right")
    mouse.move(*grid.point(7), steps=8)
    page.screenshot(path=str(artifacts / "grid-right-drag.png"), full_page=True)
    mouse.up(button="right")
    lab.wait_kernel("sorted(wb.pending().query(\"kind == 'flag'\")['seller_id'])", sorted(five))
    assert lab.kernel_json("wb.pending()['change'].unique().tolist()") == ["flagged=true"]
    assert page.locator(".lm-Menu").count() == 0  # no context menu came up

    # Ctrl+Z in the grid undoes that flag: nothing pending.
    grid.click(1)
    page.keyboard.press("Control+z")
    lab.wait_kernel("len(wb.pending())", 0)

    # Ctrl+A selects every seller under the filter (not only the rows on screen).
    grid.click(2)
    page.keyboard.press("Control+a")
    lab.wait_kernel("grid.selected_count == grid.viewport.row_count == "
                    "len(wb.sellers(flagged=False))", True)

    # Delete asks first and deletes nothing until confirmed.
    grid.click(5)
    lab.wait_kernel("grid.selected_count", 1)
    page.keyboard.press("Delete")
    confirm = page.locator(".sellerbench-confirm")
    confirm.wait_for(state="visible", timeout=15_000)
    assert lab.kernel_json("len(wb.pending())") == 0
    page.locator("button", has_text="Cancel").click()

    # Hovering a row shows its details.
    mouse.move(*grid.point(9, x=100))
    mouse.move(*grid.point(9, x=104))
    popup = page.locator(".sellerbench-hover")
    # The row's seller as the kernel has it when the card shows (an undo above may still
    # be moving rows under the "not flagged" filter).
    wait_for(lambda: popup.is_visible() and lab.kernel_json(
        "grid.viewport.page(9, 9)['Name'].iloc[0]") in popup.inner_text(), 15,
        "the hover popup with the seller's name")
    page.screenshot(path=str(artifacts / "grid-hover.png"), full_page=True)

    # A profile click filters the grid; where_sql gives exactly its rows.
    lab.run("grid.set_flagged_filter('all')")
    lab.wait_kernel("grid.profiles.busy", False)
    value = page.locator(".sellerbench-profile[data-column='Platform'] "
                         ".sellerbench-profile-value").first
    value.click()
    lab.wait_kernel("grid.profiles.picked", ["Platform"])
    lab.wait_kernel("len(wb.sellers(where=grid.where_sql)) == grid.viewport.row_count "
                    "< len(wb.sellers())", True)
    page.locator(".sellerbench-profile[data-column='Times seen'] "
                 ".sellerbench-profile-bar").first.click()
    lab.wait_kernel("sorted(grid.profiles.picked)", ["Platform", "Times seen"])
    lab.wait_kernel("len(wb.sellers(where=grid.where_sql)) == grid.viewport.row_count", True)
    page.locator(".sellerbench-profile-clear").first.click()
    lab.wait_kernel("len(grid.profiles.picked)", 1)
    # The profiles scroll sideways with the grid's columns.
    mouse.move(*grid.point(3, x=200))
    mouse.wheel(400, 0)
    wait_for(lambda: page.evaluate(
        "() => document.querySelector('.sellerbench-profiles').scrollLeft") > 0, 10,
        "the profile strip to follow the grid's horizontal scroll")
    page.screenshot(path=str(artifacts / "grid-profiles.png"), full_page=True)

    # The column chooser: Platform off; the browser asks for the new columns' rows.
    replies = lab.kernel_json("grid.datagrid.replies")
    page.locator(".sellerbench-columns").click()
    page.locator(".sellerbench-column-toggle", has_text="Platform").click()
    lab.wait_kernel("'Platform' in grid.columns", False)
    lab.wait_kernel(f"grid.datagrid.replies > {replies}", True)
    assert page.locator(".sellerbench-profile[data-column='Platform']").count() == 0 or \
        wait_for(lambda: page.locator(".sellerbench-profile[data-column='Platform']")
                 .count() == 0, 15, "the Platform profile to go")
    assert page.js_errors == []
    lab.run("wb.close()")
