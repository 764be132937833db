"""A walk through the grid as a person meets it (issue 20), in JupyterLab in headless
Chromium, with real mouse and keyboard, in the light theme and then, switched while the
grid is open (``apputils:change-theme``), in the dark one. Checked from what is drawn
(canvas pixels, computed styles, element boxes), and the kernel's state as a side door:

- hiding Pending (the column chooser) keeps every row drawn; showing it again too;
- a header click sorts (again: the other way) and selects nothing; Shift+click adds a
  second key; the arrow is drawn on the sorted column;
- resizing Name by 120 px: the profile strip's Name card follows, and the next ones too;
- a where-box error goes once the filter works; the Delete question is never squeezed;
- a right-drag over 5 rows, one flagged, says "Flagged 4 sellers"; the hover card then
  shows the row as the grid does, and no card comes up right after a click;
- the detail panel shows every field without an inner scroll;
- a flag written by another process shows without a click;
- Ctrl+C and the Copy button put the selection on the clipboard as TSV with a header
  row and the id, and say "Copied N sellers";
- every text (canvas and HTML) reaches 4.5:1 in both themes, and rows are dark in dark.

Any page error, or a console TypeError, during the walk fails it. Screenshots are kept
in test-artifacts/ (grid-walk-*.png).
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from sellerbench.grid.theme import AA, contrast, parse_colour

from .lab import LabPage, wait_for, write_notebook
from .test_grid_browser import HEADER_H, ROW_H, ROW_HEADER_W, GridOnPage

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

CELLS = [
    "import sellerbench as sb\n"
    "wb = sb.demo(n=300)\n"
    "wb.auto_push = False  # keep changes in the queue, so wb.pending() shows them\n"
    "report = wb.sync(progress=False)",
    "grid = wb.grid(height='420px')\ngrid",
]

# Text of the grid's HTML parts with its colour and the colour it stands on.
TEXT_COLOURS_JS = """
() => {
  const out = [];
  const roots = [...document.querySelectorAll('.sellerbench-grid, .sellerbench-hover')];
  const bgOf = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const bg = getComputedStyle(e).backgroundColor;
      if (bg && bg !== 'transparent' && !bg.startsWith('rgba(0, 0, 0, 0)')) return bg;
    }
    return getComputedStyle(document.body).backgroundColor;
  };
  for (const root of roots) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!n.textContent.trim() || !el || el.closest('select, option, canvas')) continue;
      const box = el.getBoundingClientRect();
      if (!box.width || !box.height || getComputedStyle(el).visibility === 'hidden') continue;
      out.push({text: n.textContent.trim().slice(0, 40), color: getComputedStyle(el).color,
                background: bgOf(el), cls: el.className});
    }
  }
  return out;
}
"""


def _rgb(text: str) -> tuple[float, float, float]:
    return parse_colour(text)[0]


def html_contrasts(page: Any) -> list[tuple[float, dict[str, str]]]:
    """(ratio, item) of every visible text of the grid's HTML parts."""
    out = []
    for item in page.evaluate(TEXT_COLOURS_JS):
        (colour, alpha), background = parse_colour(item["color"]), _rgb(item["background"])
        shown = tuple(alpha * c + (1 - alpha) * b for c, b in zip(colour, background,
                                                                  strict=True))
        out.append((contrast(shown, background), item))  # type: ignore[arg-type]
    return out


def shot(page: Any, clip: dict[str, float]) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB")


def cell_contrast(page: Any, grid: GridOnPage, row: int, x: float = 4,
                  width: float = 150) -> tuple[float, tuple[int, int, int]]:
    """Contrast of the text drawn in a cell: its commonest colour (the background) and
    the pixel farthest from it (the text's core)."""
    px, py = grid.point(row, x=x)
    image = shot(page, {"x": px, "y": py - ROW_H / 2 + 2, "width": width, "height": ROW_H - 4})
    raw = image.tobytes()
    pixels = [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]
    background = Counter(pixels).most_common(1)[0][0]
    return max(contrast(p, background) for p in pixels), background


def header_point(grid: GridOnPage, lab: LabPage, label: str, dx: float = 30) -> tuple[float, float]:
    """A point inside a column's header, ``dx`` px from its left edge."""
    widths = lab.kernel_json("grid.datagrid.column_widths")
    columns = lab.kernel_json("grid.columns")
    box = grid.canvas.bounding_box()
    left = box["x"] + ROW_HEADER_W + sum(widths[c] for c in columns[:columns.index(label)])
    return left + dx, box["y"] + HEADER_H / 2


def type_errors(page: Any) -> list[str]:
    return [e for e in page.console_errors if "TypeError" in e] + list(page.js_errors)


def check_theme(lab: LabPage, grid: GridOnPage, name: str, artifacts: Any) -> None:
    page = lab.page
    lab.run("grid.clear_selection()")
    lab.wait_kernel("grid.selected_count", 0)
    flagged_row = lab.kernel_json("int(grid.viewport.page(0, 19).query(\"Flagged == 'yes'\")"
                                  ".index[0])")
    pending_row = lab.kernel_json("[int(i) for i in grid.viewport.page(0, 17).query("
                                  "\"Pending != '' and Flagged == ''\").index][:1]")
    plain_rows = lab.kernel_json("[int(i) for i in grid.viewport.page(0, 17).query("
                                 "\"Pending == '' and Flagged == ''\").index]")
    if not pending_row:  # a rename with a suffix keeps the row in its place
        pending_row = plain_rows[:1]
        lab.run(f"_r = {pending_row[0]}; wb.rename(grid.viewport.ids([(_r, _r)])[0], "
                f"grid.viewport.page(_r, _r)['Name'].iloc[0] + ' (renamed)')")
        lab.wait_kernel(f"grid.viewport.page({pending_row[0]}, {pending_row[0]})"
                        f"['Pending'].iloc[0]", "rename")
    pending_row = pending_row[0]
    plain_row = next(r for r in plain_rows if r != pending_row)
    backgrounds = []
    for row in (flagged_row, pending_row, plain_row):
        _ratio, background = wait_for(
            lambda row=row: (lambda r: r if r[0] >= AA else None)(cell_contrast(page, grid, row)),
            20, f"row {row}'s text at 4.5:1 in {name}")
        dark = sum(background) / 3 < 100
        assert dark == (name == "dark"), (name, row, background)
        backgrounds.append(background)
    assert len(set(backgrounds)) == 3, backgrounds  # flagged, pending, plain: three tints
    low = [(round(r, 2), i) for r, i in html_contrasts(page) if r < AA]
    assert low == [], low
    page.screenshot(path=str(artifacts / f"grid-walk-{name}.png"), full_page=True)


def test_walk_through_every_gesture_light_then_dark(lab_page: LabPage, artifacts: Any) -> None:
    lab = lab_page
    page = lab.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.lab.url)
    write_notebook(lab.lab.root / "grid_walk.ipynb", CELLS)
    lab.open("grid_walk.ipynb")
    lab.run_all()
    page.locator(".sellerbench-status-text").wait_for(timeout=90_000)
    lab.wait_kernel("grid.datagrid.replies > 0", True, timeout=60)
    lab.wait_kernel("grid.painter.batched", 1, timeout=30)
    grid = GridOnPage(lab)
    message = page.locator(".sellerbench-message")
    mouse = page.mouse

    # 1. Hiding Pending keeps the rows: every row's Name is still drawn.
    lab.run("wb.rename(grid.viewport.ids([(1, 1)])[0], 'Pending Row Ltd')")
    page.locator(".sellerbench-columns").click()
    page.locator(".sellerbench-column-toggle", has_text="Pending").click()
    lab.wait_kernel("'Pending' in grid.columns", False)
    for row in (0, 2, 5):
        wait_for(lambda row=row: cell_contrast(page, grid, row)[0] >= AA, 20,
                 f"row {row} drawn with Pending hidden")
    assert type_errors(page) == []
    page.screenshot(path=str(artifacts / "grid-walk-hidden.png"), full_page=True)
    page.locator(".sellerbench-column-toggle", has_text="Pending").click()
    lab.wait_kernel("grid.columns[4:5]", ["Pending"])
    page.locator(".sellerbench-columns").click()

    # 2. A header click sorts and selects nothing; again: the other way; Shift adds a key.
    before = shot(page, {"x": header_point(grid, lab, "Times seen", 0)[0],
                         "y": grid.canvas.bounding_box()["y"], "width": 60, "height": HEADER_H})
    mouse.click(*header_point(grid, lab, "Times seen"))
    lab.wait_kernel("grid.viewport.sort_keys", [["Times seen", False]])
    assert lab.kernel_json("grid.selected_count") == 0
    mouse.click(*header_point(grid, lab, "Times seen"))
    lab.wait_kernel("grid.viewport.sort_keys", [["Times seen", True]])
    page.keyboard.down("Shift")
    mouse.click(*header_point(grid, lab, "Name"))
    page.keyboard.up("Shift")
    lab.wait_kernel("grid.viewport.sort_keys", [["Times seen", True], ["Name", False]])
    assert lab.kernel_json("grid.selected_count") == 0
    seen = lab.kernel_json("grid.viewport.page(0, 30)['Times seen'].tolist()")
    assert seen == sorted(seen, reverse=True)
    wait_for(lambda: shot(page, {"x": header_point(grid, lab, "Times seen", 0)[0],
                                 "y": grid.canvas.bounding_box()["y"], "width": 60,
                                 "height": HEADER_H}).tobytes() != before.tobytes(),
             10, "the sort arrow drawn on Times seen")

    # 3. Resize Name by 120 px: the profile cards follow the columns.
    lab.wait_kernel("grid.profiles.busy", False)
    name_width = lab.kernel_json("grid.datagrid.column_widths['Name']")
    edge_x, edge_y = header_point(grid, lab, "Platform", 1)  # Name's right border
    mouse.move(edge_x, edge_y)
    mouse.down()
    mouse.move(edge_x + 60, edge_y, steps=4)
    mouse.move(edge_x + 120, edge_y, steps=4)
    mouse.up()
    lab.wait_kernel(f"abs(grid.datagrid.column_widths['Name'] - {name_width + 120}) <= 3", True)
    for label in ("Name", "Platform", "Times seen"):
        left = header_point(grid, lab, label, 0)[0]
        card = page.locator(f".sellerbench-profile[data-column='{label}']")
        wait_for(lambda card=card, left=left: abs(card.bounding_box()["x"] - left) <= 2, 10,
                 f"the {label} profile over its column")
    assert lab.kernel_json("grid.viewport.sort_keys")[0] == ["Times seen", True]

    # 4. A where-box error goes once the filter works.
    where = page.locator(".sellerbench-where input")
    where.fill("times_seen >")
    where.press("Enter")
    wait_for(lambda: "⚠" in message.inner_text(), 15, "the where-box error")
    where.fill("times_seen >= 0")
    where.press("Enter")
    wait_for(lambda: "⚠" not in message.inner_text(), 15, "the where-box error to go")
    assert lab.kernel_json("grid.where_sql") == "(times_seen >= 0)"

    # 5. Right-drag over rows 2..6 with row 4 flagged: "Flagged 4 sellers".
    lab.run("grid.sort_by('Name'); wb.flag(grid.viewport.ids([(4, 4)]))\n"
            "wb.flag(grid.viewport.ids([(2, 3), (5, 6)]), False)")
    lab.wait_kernel("[bool(f) for f in grid.viewport.flags([(2, 6)])]",
                    [False, False, True, False, False])
    mouse.move(*grid.point(2))
    mouse.down(button="right")
    mouse.move(*grid.point(6), steps=8)
    mouse.up(button="right")
    wait_for(lambda: "Flagged 4 sellers" in message.inner_text(), 20, "Flagged 4 sellers")
    assert "1 already flagged" in message.inner_text()

    # 6. The hover card shows the row as drawn (flagged), beside the pointer, and not
    # right after a click.
    popup = page.locator(".sellerbench-hover")
    mouse.move(*grid.point(5, x=100))
    mouse.move(*grid.point(5, x=104))
    wait_for(lambda: popup.is_visible() and "True" in popup.inner_text(), 15,
             "the hover card with flagged True")
    card, (px, py) = popup.bounding_box(), grid.point(5, x=104)
    assert not (card["x"] <= px <= card["x"] + card["width"]
                and card["y"] <= py <= card["y"] + card["height"])  # not under the pointer
    grid.click(8)
    page.wait_for_timeout(900)
    assert not popup.is_visible()

    # 7. The detail panel shows every field: no inner scroll, "Runs that saw it" in view.
    detail = page.locator(".sellerbench-detail")
    wait_for(lambda: "platform_id" in detail.inner_text(), 15, "the detail of row 8")
    sizes = detail.evaluate("e => [e.scrollHeight, e.clientHeight]")
    assert sizes[0] <= sizes[1] + 1, sizes
    assert "Runs that saw it" in detail.inner_text() or "No cached run" in detail.inner_text()

    # 8. Delete asks on the whole line: its buttons are not cut.
    where.fill("times_seen >")
    where.press("Enter")
    wait_for(lambda: "⚠" in message.inner_text(), 15, "an error on the line")
    grid.click(9)
    page.keyboard.press("Delete")
    bar = page.locator(".sellerbench-confirm")
    bar.wait_for(state="visible", timeout=15_000)
    line = page.locator(".sellerbench-grid > .widget-hbox").nth(3).bounding_box()
    for button in ("Delete them", "Cancel"):
        box = page.locator("button", has_text=button).bounding_box()
        assert box["x"] + box["width"] <= line["x"] + line["width"] + 1, button
        assert page.locator("button", has_text=button).evaluate(
            "b => b.scrollWidth <= b.clientWidth"), button
    page.screenshot(path=str(artifacts / "grid-walk-confirm.png"), full_page=True)
    page.locator("button", has_text="Cancel").click()

    # 9. Ctrl+C and Copy: TSV with a header row and the id; "Copied N sellers".
    grid.click(2)
    grid.click(4, modifiers=["Shift"])
    lab.wait_kernel("grid.selected_count", 3)
    page.keyboard.press("Control+c")
    wait_for(lambda: "Copied 3 sellers" in message.inner_text(), 15, "Copied 3 sellers")
    text = page.evaluate("() => navigator.clipboard.readText()")
    lines = text.strip("\n").split("\n")
    assert lines[0].split("\t")[:2] == ["id", "Name"] and len(lines) == 4, text
    assert [line.split("\t")[0] for line in lines[1:]] == lab.kernel_json("grid.selected_ids")
    page.evaluate("() => navigator.clipboard.writeText('')")
    page.locator(".sellerbench-copy").click()
    wait_for(lambda: page.evaluate("() => navigator.clipboard.readText()") == text, 15,
             "the Copy button's text on the clipboard")

    # 10. Another process flags a seller: the grid shows it without being asked.
    target = lab.kernel_json("grid.viewport.ids([(12, 12)])[0]")
    flagged_before = lab.kernel_json("grid.viewport.status()['flagged']")
    path = lab.kernel_json("str(wb.store.path)")
    lab.run("import gc; gc.collect()")
    subprocess.run(
        [sys.executable, "-c",
         "import sys; from sellerbench.cache.store import Store; "
         "from sellerbench.changes import mutations; "
         "mutations.flag(Store(sys.argv[1]), [sys.argv[2]], True)", path, target],
        check=True, timeout=60)
    wait_for(lambda: "changed outside" in message.inner_text(), 20, "the external change")
    lab.wait_kernel("grid.viewport.status()['flagged']", flagged_before + 1)

    assert type_errors(page) == []
    check_theme(lab, grid, "light", artifacts)

    # 11. Dark, switched while the grid is open.
    lab.command_args("apputils:change-theme", {"theme": "JupyterLab Dark"})
    wait_for(lambda: page.evaluate("() => document.body.dataset.jpThemeLight") == "false", 30,
             "the dark theme")
    lab.wait_kernel("grid.palette.light", False, timeout=30)
    check_theme(lab, grid, "dark", artifacts)
    mouse.click(*header_point(grid, lab, "Name"))  # sorted by Name: now the other way
    lab.wait_kernel("grid.viewport.sort_keys", [["Name", True]])
    assert type_errors(page) == []
    lab.command_args("apputils:change-theme", {"theme": "JupyterLab Light"})
    lab.wait_kernel("grid.palette.light", True, timeout=30)
    lab.run("wb.close()")
