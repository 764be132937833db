"""Issue 20's grid items in the kernel, no browser: the messages the browser sends are
handed to the widgets' handlers, the replies captured (the browser walk,
tests/browser/test_grid_walk.py, does the same gestures with a mouse)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from sellerbench.changes import mutations
from sellerbench.errors import ConfigError, MutationError
from sellerbench.grid.actions import COPY_LIMIT, selection_tsv
from sellerbench.grid.layout import sort_header_text
from sellerbench.grid.theme import AA, Palette, contrast, parse_colour
from sellerbench.grid.watch import CacheWatcher
from sellerbench.grid.widget import SellersGrid
from sellerbench.workbench import Workbench

from .test_widget import Sent, browser_submits

# JupyterLab 4's dark theme, as the browser resolves its variables.
DARK = {"--jp-layout-color0": "rgb(17, 17, 17)", "--jp-layout-color2": "rgb(66, 66, 66)",
        "--jp-ui-font-color1": "rgba(255, 255, 255, 0.87)",
        "--jp-border-color2": "rgb(97, 97, 97)", "--jp-brand-color1": "rgb(66, 165, 245)",
        "--jp-error-color1": "rgb(244, 67, 54)", "--jp-warn-color1": "rgb(255, 152, 0)"}


@pytest.fixture
def grid(offline_wb: Workbench):
    grid = offline_wb.grid()
    yield grid
    grid.close()


def hands(grid: SellersGrid, **content: Any) -> list[dict[str, Any]]:
    """Send a painter message as the browser does; returns what the painter sent back."""
    sent: list[dict[str, Any]] = []
    grid.painter.send = lambda msg, buffers=None: sent.append(msg)
    grid._on_hands(None, content, [])
    return sent


# -- columns: hiding one keeps the rows ---------------------------------------------------


def test_the_row_colour_reads_only_the_columns_shown(grid: SellersGrid) -> None:
    expr = grid.datagrid.default_renderer.background_color
    assert "'Pending'" in expr.value and "'Flagged'" in expr.value
    grid.columns = [c for c in grid.columns if c != "Pending"]
    # Reading a column the browser does not hold throws in ipydatagrid's bundle
    # ("Cannot read properties of undefined (reading 'name')") and blanks the row.
    assert "'Pending'" not in expr.value and "'Flagged'" in expr.value
    grid.columns = [c for c in grid.columns if c != "Flagged"]
    assert "cell.metadata" not in expr.value
    # Shown again: the colour waits for the browser's first rows of the new schema.
    sent = Sent(grid)
    grid.columns = ["Name", "Pending", "Flagged"]
    assert "cell.metadata" not in expr.value
    grid.datagrid._handle_comm_msg(None, {"type": "data-request", "r1": 0, "r2": 5}, [])
    assert sent.of("data-reply") and "'Pending'" in expr.value and "'Flagged'" in expr.value


def test_hiding_a_column_keeps_widths_filters_and_profiles_in_step(grid: SellersGrid) -> None:
    grid.set_widths({"Name": 333, "Nope": 50})
    assert grid.datagrid.column_widths["Name"] == 333 == grid.profiles.widths["Name"]
    grid.datagrid._transforms = [{"type": "filter", "column": "Platform", "operator": "=",
                                  "value": "ebay"}]
    assert grid.viewport.row_count == 80
    grid.columns = ["Name", "Times seen", "Platform"]  # reordered, Pending etc. hidden
    assert grid.columns == ["Name", "Times seen", "Platform"]
    assert grid.datagrid.column_widths["Name"] == 333  # the analyst's width stays
    assert grid.viewport.row_count == 80  # the header filter of a shown column stays
    grid.columns = ["Name", "Times seen"]
    assert grid.viewport.row_count == 100 and grid.viewport.header_filters == []
    assert grid.datagrid._transforms == []  # the sort is drawn as header text
    assert set(grid.profiles.widths) == {"Name", "Times seen"}


# -- header clicks sort ------------------------------------------------------------------


def test_a_header_click_sorts_then_reverses_and_shift_adds_a_key(grid: SellersGrid) -> None:
    grid.select_rows(3)
    hands(grid, event="sort", column="Times seen", add=False)
    assert grid.viewport.sort_keys == [("Times seen", False)]
    assert grid.datagrid._transforms == []  # no sort icon: arrows in the header text
    assert grid.datagrid.header_renderer.text_value.value == sort_header_text(
        [("Times seen", False)])
    hands(grid, event="sort", column="Times seen", add=False)
    assert grid.viewport.sort_keys == [("Times seen", True)]
    hands(grid, event="sort", column="Name", add=True)
    assert grid.viewport.sort_keys == [("Times seen", True), ("Name", False)]
    frame = grid.viewport.page(0, 99)
    expected = sorted(zip(frame["Times seen"], frame["Name"], strict=True),
                      key=lambda r: (-r[0], r[1]))
    assert list(zip(frame["Times seen"], frame["Name"], strict=True)) == expected
    assert "sorted by Times seen ▼, then Name ▲" in grid.status
    assert grid.datagrid.header_renderer.text_value.value == sort_header_text(
        [("Times seen", True), ("Name", False)])
    # A filter from the header's menu keeps the keys (the header holds no sort).
    grid.datagrid._transforms = [{"type": "filter", "column": "Platform", "operator": "=",
                                  "value": "ebay"}]
    assert grid.viewport.sort_keys == [("Times seen", True), ("Name", False)]
    grid.datagrid._transforms = []
    # A sort from the header's menu replaces them; the header is told no sort transform
    # (ipydatagrid's one icon), its text carries the arrow.
    grid.datagrid._transforms = [{"type": "sort", "column": "Platform", "desc": False}]
    assert grid.viewport.sort_keys == [("Platform", False)]
    assert grid.datagrid._transforms == []
    assert grid.datagrid.header_renderer.text_value.value == sort_header_text(
        [("Platform", False)])
    assert grid.selected_ids == ["id-000003"]  # the selection follows its seller


def test_shift_click_on_a_key_reverses_it_in_place(grid: SellersGrid) -> None:
    grid.header_clicked("Times seen")
    grid.header_clicked("Name", add=True)
    grid.header_clicked("Name", add=True)
    assert grid.viewport.sort_keys == [("Times seen", False), ("Name", True)]
    grid.header_clicked("Platform")
    assert grid.viewport.sort_keys == [("Platform", False)]


# -- messages ----------------------------------------------------------------------------


def test_counts_say_the_sellers_actually_changed(grid: SellersGrid,
                                                 offline_wb: Workbench) -> None:
    # Rows 20..24 with seller 20 already flagged (i % 10 == 0): a drag flags 4.
    hands(grid, event="paint", rows=[21, 22, 20, 23, 24], first=21)
    assert "Flagged 4 sellers (1 already flagged) (right-drag)." in grid.message.value
    grid.select_rows(20, 26)
    grid.flag_selected(True)
    assert "Flagged 2 sellers (5 already flagged)." in grid.message.value
    grid.flag_selected(False)
    assert "Unflagged 7 sellers." in grid.message.value


def test_a_filter_error_clears_once_the_filter_works(grid: SellersGrid) -> None:
    browser_submits(grid.where_box, "times_seen >")
    assert "⚠" in grid.message.value and "sellerbench-error" in grid.message.value
    browser_submits(grid.where_box, "times_seen > 3")
    assert grid.message.value == ""
    assert grid.viewport.row_count == len([i for i in range(100) if i % 7 > 3])
    # An error about something else stays until that works.
    grid.clear_selection()
    grid.buttons["flag"].click()
    assert "⚠ Could not flag" in grid.message.value
    browser_submits(grid.where_box, "times_seen > 2")
    assert "⚠ Could not flag" in grid.message.value


def test_the_delete_question_takes_the_whole_line(grid: SellersGrid) -> None:
    browser_submits(grid.where_box, "times_seen >")
    grid.select_rows(1)
    hands(grid, event="key", key="delete")
    assert grid.confirm_bar.layout.display == "flex"
    assert grid.message.layout.display == "none"  # no longer squeezes the buttons
    grid._hide_confirm()
    assert grid.message.layout.display is None and "⚠" in grid.message.value


# -- detail panel and hover card -----------------------------------------------------------


def test_the_detail_panel_grows_with_its_fields(grid: SellersGrid) -> None:
    grid.select_rows(5)
    assert grid.detail.layout.height is None and grid.detail.layout.overflow is None
    for field in ("platform_id", "times_seen", "updated_at", "deleted_at", "Runs that saw it"):
        assert field in grid.detail.value


def test_the_hover_card_shows_the_row_as_the_grid_does(grid: SellersGrid,
                                                       offline_wb: Workbench) -> None:
    hands(grid, event="paint", rows=[3, 4], first=3)
    sent = hands(grid, event="hover", row=3)
    assert "<td>True</td>" in sent[-1]["html"] and "pending: flag" in sent[-1]["html"]


# -- the clipboard -----------------------------------------------------------------------


def test_copy_puts_tsv_with_a_header_and_the_id_on_the_clipboard(grid: SellersGrid) -> None:
    grid.select_rows(9, 11)
    sent = hands(grid, event="key", key="copy")
    text = sent[-1]["text"]
    assert sent[-1]["event"] == "clipboard"
    lines = text.split("\n")
    assert lines[0].split("\t") == ["id", *grid.columns]
    assert [line.split("\t")[0] for line in lines[1:4]] == ["id-000009", "id-000010",
                                                          "id-000011"]
    assert [line.split("\t")[4] for line in lines[1:4]] == ["no", "yes", "no"]  # Flagged
    assert "Copied 3 sellers" in grid.message.value
    assert grid.copy_selection() == text  # the Copy button does the same
    hands(grid, event="copy-failed", why="Document is not focused.")
    assert "⚠ Could not copy" in grid.message.value and "not focused" in grid.message.value


def test_copy_quotes_what_excel_would_split_and_points_large_selections_to_export(
        grid: SellersGrid, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    text = selection_tsv(pd.DataFrame({"Name": ['Tab\there "q"'], "id": ["x"]}))
    assert text == 'id\tName\nx\t"Tab\there ""q"""\n'
    grid.clear_selection()
    with pytest.raises(MutationError, match="select the sellers to copy"):
        grid.copy_selection()
    grid.select_rows(0, COPY_LIMIT + 5)  # clipped to the 100 rows: fine
    assert grid.copy_selection().count("\n") == 101
    monkeypatch.setattr(SellersGrid, "selected_count", property(lambda _s: COPY_LIMIT + 1))
    with pytest.raises(MutationError, match=r"wb.export\('sellers.csv', where=grid"):
        grid.copy_selection()


# -- another process changes the cache -------------------------------------------------------


def test_a_change_by_another_process_is_noticed(grid: SellersGrid,
                                                offline_wb: Workbench) -> None:
    watcher = grid.watcher
    watcher.stop()  # polled by hand here: no timing
    assert watcher.check() is False
    offline_wb.flag(["id-000001"])  # this kernel: the grid was told, the watcher not again
    assert watcher.check() is False and watcher.check() is False
    # A poll between this kernel's write and the grid being told does not count it.
    mutations.flag(offline_wb.store, ["id-000004"], True)  # written, not told yet
    assert watcher.check() is False
    grid.refresh(["id-000004"])  # what the grid does when told ...
    grid.watcher.told()  # ... and then
    assert watcher.check() is False and watcher.changes == 0
    flagged = grid.viewport.status()["flagged"]
    subprocess.run(
        [sys.executable, "-c",
         "import sys; from sellerbench.cache.store import Store; "
         "from sellerbench.changes import mutations; "
         "mutations.flag(Store(sys.argv[1]), ['id-000002'], True)",
         str(offline_wb.store.path)], check=True, timeout=60)
    assert watcher.check() is False  # seen once: the next poll confirms it
    assert watcher.check() is True
    assert grid.viewport.status()["flagged"] == flagged + 1
    assert "changed outside this grid" in grid.message.value
    assert watcher.check() is False  # once


def test_the_watcher_thread_polls_and_ignores_a_checkpoint(offline_wb: Workbench) -> None:
    seen: list[int] = []
    watcher = CacheWatcher(offline_wb.store, lambda: seen.append(1), interval=0.05)
    watcher.start()
    try:
        with offline_wb.store.connect() as con:
            con.execute("CHECKPOINT")  # the files change, the content not
        time.sleep(0.5)
        assert seen == []
        mutations.flag(offline_wb.store, ["id-000003"], True)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == [1] and watcher.checks > 0
    finally:
        watcher.stop()


# -- the theme ---------------------------------------------------------------------------


@pytest.mark.parametrize("variables", [{}, DARK], ids=["light", "dark"])
def test_every_canvas_text_reaches_aa_in_both_themes(variables: dict[str, str]) -> None:
    palette = Palette.from_css(variables)
    text = parse_colour(palette.text)[0]
    for background in (palette.background, palette.flagged, palette.pending):
        assert contrast(text, parse_colour(background)[0]) >= AA
    assert contrast(parse_colour(palette.header_text)[0],
                    parse_colour(palette.header_background)[0]) >= AA
    assert palette.light == (not variables)


def test_a_theme_change_repaints_the_canvas(grid: SellersGrid) -> None:
    expr = grid.datagrid.default_renderer.background_color
    light = expr.value
    hands(grid, event="theme", vars=DARK, light=False)
    assert grid.palette.light is False and expr.value != light
    assert "#111111" in expr.value and grid.datagrid.grid_style["void_color"] == "#111111"
    assert grid.datagrid.default_renderer.text_color == grid.palette.text
    hands(grid, event="theme", vars={}, light=True)
    assert expr.value == light


# -- state ---------------------------------------------------------------------------------


def test_state_round_trips_through_json(grid: SellersGrid, offline_wb: Workbench) -> None:
    grid.set_search("Seller 0000")
    grid.set_where("times_seen >= 2")
    grid.set_flagged_filter("not flagged")
    grid.columns = ["Times seen", "Name", "Platform", "Flagged"]
    grid.set_widths({"Name": 300})
    grid.header_clicked("Times seen")
    grid.header_clicked("Name", add=True)
    grid.datagrid._transforms = [*grid.datagrid._transforms, {
        "type": "filter", "column": "Platform", "operator": "=", "value": "ebay"}]
    grid.pick("Platform", 0)
    grid.select_rows(1, 3)
    state = json.loads(json.dumps(grid.state))
    again = offline_wb.grid(state=state)
    try:
        assert again.state == state
        assert again.where_sql == grid.where_sql
        assert again.viewport.page(0, 50).equals(grid.viewport.page(0, 50))
        assert again.selected_ids == grid.selected_ids and len(again.selected_ids) == 3
        assert len(offline_wb.sellers(where=again.where_sql)) == again.viewport.row_count
    finally:
        again.close()


@pytest.mark.parametrize("bad, match", [
    ({"colour": 1}, "unknown grid state key"),
    ({"sort": [["Name", "up"]]}, r"\[label, descending\]"),
    ({"where": "times_seen >"}, "syntax|where"),
    ({"columns": ["Nope"]}, "no column 'Nope'"),
    ({"picks": {"Name": "1; DROP TABLE sellers"}}, ""),
    ({"widths": {"Name": 5}}, "20 to 2000"),
    ({"version": 2}, "version 2"),
    ("not a dict", "is a dict"),
])
def test_a_bad_state_says_what_is_wrong(offline_wb: Workbench, bad: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        offline_wb.grid(state=bad)
    assert len(offline_wb.sellers()) == 100


def test_the_static_picture_shows_rows_and_filter(grid: SellersGrid) -> None:
    grid.set_where("times_seen >= 5")
    bundle = grid._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    picture = bundle["text/html"]
    assert "(times_seen &gt;= 5)" in picture and "Seller 000005" in picture
    assert "Seller 000001" not in picture and "Times seen" in picture
    # Text left, numbers right, as in the grid (a notebook right-aligns table cells).
    assert "<td style='text-align:left;padding:2px 8px;white-space:nowrap'>Seller 000005" \
        in picture
    assert "<td style='text-align:right;padding:2px 8px;white-space:nowrap'>5</td>" in picture


def test_nbconvert_html_of_a_saved_notebook_shows_the_picture(grid: SellersGrid) -> None:
    """A notebook saved without widget state (JupyterLab's default), converted with
    nbconvert: the grid's output is its static picture, not an empty box."""
    import nbformat
    from nbconvert import HTMLExporter

    grid.set_where("times_seen = 6")
    bundle = grid._repr_mimebundle_()
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("grid")
    cell.outputs = [nbformat.v4.new_output("display_data", data=bundle)]
    notebook.cells = [cell]
    page, _ = HTMLExporter().from_notebook_node(notebook)
    assert "(times_seen = 6)" in page and "Seller 000006" in page and "Seller 000013" in page
    assert "Seller 000001" not in page


def test_a_terminal_sync_is_noticed(server: Any, tmp_path: Any) -> None:
    """``sellerbench sync`` in a terminal (another process, the real reference server)
    fills the cache the grid shows: the grid shows it without being asked."""
    from sellerbench.workbench import connect

    cache = tmp_path / "shared.duckdb"
    wb = connect(server.url, server.tokens["analyst"], cache)
    grid = wb.grid()
    try:
        grid.watcher.stop()  # polled by hand here: no timing
        assert grid.viewport.row_count == 0 and "never synced" in grid.status
        subprocess.run(
            [sys.executable, "-m", "sellerbench", "sync", "--api-url", server.url,
             "--token", server.tokens["analyst"], "--cache", str(cache), "--quiet"],
            check=True, timeout=120, capture_output=True)
        assert [grid.watcher.check() for _ in range(2)] == [False, True]
        assert grid.viewport.row_count == grid.viewport.status()["total"] > 0
        assert "synced just now" in grid.status
        assert "changed outside this grid" in grid.message.value
    finally:
        grid.close()
        wb.close()
