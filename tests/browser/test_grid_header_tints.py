"""Issue 20, what was left, in JupyterLab in headless Chromium with real mouse clicks, in
the light theme and then (switched while the grid is open) the dark one:

- every sort key has its arrow in the column header, numbered when there are several:
  after a header click, a second click and a Shift+click, the header *draws* the texts
  ``Times seen ▼1`` and ``Name ▲2`` (read from the canvas: ``fillText`` is recorded by an
  init script) and ipydatagrid's single sort icon is gone;
- with the Flagged and Pending columns hidden (the column chooser), a flagged row and a
  pending row are still painted in their tints (canvas pixels), in both themes;
- a click on a row: the detail panel names who last changed the seller on the server;
- no page error and no console TypeError on the way.

Screenshots: test-artifacts/grid-arrows-*.png, grid-tints-*.png, grid-author-light.png.
"""

from __future__ import annotations

from typing import Any

import pytest

from .lab import LabPage, wait_for, write_notebook
from .test_grid_browser import GridOnPage, _hex
from .test_grid_walk import CELLS, header_point, type_errors

pytestmark = [pytest.mark.browser, pytest.mark.timeout(400)]


# Every text drawn on a canvas, in order (the grid is a canvas: its text is not in the DOM).
RECORD_TEXT_JS = """
(() => {
  const texts = [];
  window.__drawnTexts = texts;
  const fill = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
    texts.push(String(text));
    if (texts.length > 20000) texts.splice(0, 10000);
    return fill.call(this, text, ...rest);
  };
})();
"""


def drawn(page: Any) -> list[str]:
    """The texts drawn since the last call."""
    return page.evaluate("() => window.__drawnTexts.splice(0)")


def check_tints(lab: LabPage, grid: GridOnPage, rows: dict[str, int], name: str,
                artifacts: Any) -> None:
    """The flagged and the pending row carry their tints; a plain row neither."""
    flagged = _hex(lab.kernel_json("grid.palette.flagged"))
    pending = _hex(lab.kernel_json("grid.palette.pending"))
    wait_for(lambda: flagged in grid.row_colours(rows["flagged"]), 20,
             f"the flagged row tinted with Flagged hidden ({name})")
    wait_for(lambda: pending in grid.row_colours(rows["pending"]), 20,
             f"the pending row tinted with Pending hidden ({name})")
    plain = grid.row_colours(rows["plain"])
    assert flagged not in plain and pending not in plain, (name, plain)
    lab.page.screenshot(path=str(artifacts / f"grid-tints-{name}.png"), full_page=True)


def test_header_arrows_and_tints_of_hidden_columns(lab_page: LabPage, artifacts: Any) -> None:
    lab = lab_page
    page = lab.page
    page.add_init_script(RECORD_TEXT_JS)
    write_notebook(lab.lab.root / "grid_arrows.ipynb", CELLS)
    lab.open("grid_arrows.ipynb")
    lab.run_all()
    page.locator(".sellerbench-status-text").wait_for(timeout=90_000)
    lab.wait_kernel("grid.datagrid.replies > 0", True, timeout=60)
    lab.wait_kernel("grid.painter.batched", 1, timeout=30)
    grid = GridOnPage(lab)
    mouse = page.mouse

    # 1. The default order is drawn as an arrow on Name.
    wait_for(lambda: "Name ▲" in page.evaluate("() => window.__drawnTexts"), 20,
             "'Name ▲' drawn in the header")
    drawn(page)
    mouse.click(*header_point(grid, lab, "Times seen"))
    lab.wait_kernel("grid.viewport.sort_keys", [["Times seen", False]])
    wait_for(lambda: "Times seen ▲" in drawn(page), 20, "'Times seen ▲' drawn")
    mouse.click(*header_point(grid, lab, "Times seen"))
    lab.wait_kernel("grid.viewport.sort_keys", [["Times seen", True]])
    page.keyboard.down("Shift")
    mouse.click(*header_point(grid, lab, "Name"))
    page.keyboard.up("Shift")
    lab.wait_kernel("grid.viewport.sort_keys", [["Times seen", True], ["Name", False]])
    texts: list[str] = []
    wait_for(lambda: texts.extend(drawn(page)) or {"Times seen ▼1", "Name ▲2"} <= set(texts),
             20, "'Times seen ▼1' and 'Name ▲2' drawn in the header")
    header = [t for t in texts if t.startswith(("Name", "Times seen", "Platform"))]
    assert "Platform" in header and not any("▲" in t or "▼" in t for t in header
                                           if t.startswith("Platform")), header
    assert lab.kernel_json("grid.datagrid._transforms") == []  # no second, stock icon
    page.screenshot(path=str(artifacts / "grid-arrows-light.png"), full_page=True)

    # 2. A click on a row: the detail panel names who last changed it on the server
    # (asked off the widget thread), in one line.
    grid.click(3)
    detail = page.locator(".sellerbench-detail")
    wait_for(lambda: "Last changed by" in detail.inner_text()
             and "asking" not in detail.inner_text(), 30, "the last author in the panel")
    assert "Traceback" not in detail.inner_text()
    detail.screenshot(path=str(artifacts / "grid-author-light.png"))

    # 3. Hide Flagged and Pending with the column chooser: the tints stay.
    lab.run("grid.sort_by('Name')")
    rows = lab.kernel_json(
        "(lambda f: {'flagged': int(f.query(\"Flagged == 'yes' and Pending == ''\").index[0]),"
        " 'plain': [int(i) for i in f.query(\"Flagged == '' and Pending == ''\").index]})"
        "(grid.viewport.page(0, 15))")
    plain = [r for r in rows.pop("plain") if r != rows["flagged"]]
    rows["pending"], rows["plain"] = plain[0], plain[1]
    # A suffix keeps the renamed row in its place under the sort by name.
    lab.run(f"_r = {rows['pending']}; wb.rename(grid.viewport.ids([(_r, _r)])[0], "
            f"grid.viewport.page(_r, _r)['Name'].iloc[0] + ' (renamed)')")
    lab.wait_kernel(f"grid.viewport.page({rows['pending']}, {rows['pending']})"
                    f"['Pending'].iloc[0]", "rename")
    page.locator(".sellerbench-columns").click()
    for label in ("Flagged", "Pending"):
        page.locator(".sellerbench-column-toggle", has_text=label).click()
    lab.wait_kernel("[c for c in grid.columns if c in ('Flagged', 'Pending')]", [])
    page.locator(".sellerbench-columns").click()
    lab.run("grid.clear_selection()")
    check_tints(lab, grid, rows, "light", artifacts)
    assert type_errors(page) == []

    # 4. Dark, switched while the grid is open: the tints are the dark theme's.
    lab.command_args("apputils:change-theme", {"theme": "JupyterLab Dark"})
    lab.wait_kernel("grid.palette.light", False, timeout=30)
    check_tints(lab, grid, rows, "dark", artifacts)
    drawn(page)
    mouse.click(*header_point(grid, lab, "Name"))  # sorted by Name: now the other way
    lab.wait_kernel("grid.viewport.sort_keys", [["Name", True]])
    wait_for(lambda: "Name ▼" in drawn(page), 20, "'Name ▼' drawn in the dark")
    page.screenshot(path=str(artifacts / "grid-arrows-dark.png"), full_page=True)
    assert type_errors(page) == []
    lab.command_args("apputils:change-theme", {"theme": "JupyterLab Light"})
    lab.wait_kernel("grid.palette.light", True, timeout=30)
    lab.run("wb.close()")
