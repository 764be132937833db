"""The grid as an analyst's instrument, in Python (no browser): ``where_sql`` round trips,
the where box, selections as ids, column choice, column profiles against plain SQL over
the same filter, profile clicks (cross-filter), and the effect on the mutation queue of
each thing the browser's hands send (right-drag, keys, the text boxes' actions)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from sellerbench.errors import ConfigError
from sellerbench.grid.profiles import profile_table
from sellerbench.grid.widget import SellersGrid
from sellerbench.workbench import Workbench

from .conftest import decode_reply, fill_sellers


@pytest.fixture
def grid(offline_wb: Workbench):
    grid = offline_wb.grid()
    yield grid
    grid.close()


def shown_ids(grid: SellersGrid) -> list[str]:
    return grid.viewport.ids([(0, grid.viewport.row_count - 1)])


def sql_ids(wb: Workbench, where: str) -> list[str]:
    return wb.sql(f"SELECT id FROM visible_sellers WHERE {where}")["id"].tolist()


def submit(box: Any, text: str) -> None:
    """What the browser sends on Enter: the text typed, in the same message."""
    box._message(None, {"event": "submit", "value": text}, [])


def hands(grid: SellersGrid, **content: Any) -> None:
    """A message from the GridPainter's listeners in the browser."""
    grid._on_hands(None, content, [])


def assert_where_sql_is_the_grid(grid: SellersGrid, wb: Workbench, tmp_path: Path) -> None:
    where = grid.where_sql
    assert sorted(sql_ids(wb, where)) == sorted(shown_ids(grid))
    if "where" in inspect.signature(wb.sellers).parameters:
        assert len(wb.sellers(where=where)) == grid.viewport.row_count
    report = wb.export(tmp_path / f"w{len(where)}.csv", where=where, progress=False,
                       overwrite=True)
    assert report.rows == grid.viewport.row_count


def test_where_sql_returns_exactly_the_rows_shown(grid: SellersGrid, offline_wb: Workbench,
                                                  tmp_path: Path) -> None:
    assert grid.where_sql == "true"
    submit(grid.search, "seller 00001")  # Seller 000010..000019: ten names
    assert grid.viewport.row_count == 10
    assert_where_sql_is_the_grid(grid, offline_wb, tmp_path)
    grid.set_flagged_filter("not flagged")  # 000010 is flagged
    assert grid.viewport.row_count == 9
    assert_where_sql_is_the_grid(grid, offline_wb, tmp_path)
    grid.datagrid._transforms = [{"type": "filter", "column": "Platform", "operator": "=",
                                  "value": "ebay"}]  # drops 000015
    assert grid.viewport.row_count == 8
    assert_where_sql_is_the_grid(grid, offline_wb, tmp_path)
    grid.pick("Times seen", 0)  # the first bar of the histogram
    low, high, count = grid.profiles.profile("Times seen")["bins"][0]
    shown = grid.viewport.frame()["Times seen"]
    assert ((shown >= low) & (shown < high)).all() and len(shown) == count
    assert_where_sql_is_the_grid(grid, offline_wb, tmp_path)
    submit(grid.where_box, "times_seen >= 0 AND platform_id <> 'p12'")
    assert "p12" not in str(grid.where_sql) or grid.where_box.value
    assert_where_sql_is_the_grid(grid, offline_wb, tmp_path)


def test_where_sql_of_lookup_columns_and_quotes(grid: SellersGrid, offline_wb: Workbench,
                                                tmp_path: Path) -> None:
    grid.select_rows(3, 5)
    grid.flag_selected()
    for transform in (
        {"column": "Pending", "operator": "=", "value": "flag"},
        {"column": "Pending", "operator": "empty"},
        {"column": "First seen run", "operator": "in", "value": ["Alpha"]},
        {"column": "Last seen run", "operator": "!=", "value": "Beta"},
        {"column": "Name", "operator": "contains", "value": "it's"},
        {"column": "Updated", "operator": "isOnSameDay", "value": "2024-01-01"},
    ):
        grid.datagrid._transforms = [{"type": "filter", **transform}]
        assert "⚠" not in grid.message.value, grid.message.value
        assert_where_sql_is_the_grid(grid, offline_wb, tmp_path)
    grid.datagrid._transforms = [{"type": "filter", "column": "Pending", "operator": "=",
                                  "value": "flag"}]
    assert sorted(shown_ids(grid)) == ["id-000003", "id-000004", "id-000005"]


def test_where_box_is_checked_and_bound_like_export(grid: SellersGrid) -> None:
    submit(grid.where_box, "times_seen = 3 AND platform = 'amazon'")
    want = sorted(f"id-{i:06d}" for i in range(100) if i % 7 == 3 and i % 5 == 0)
    assert sorted(shown_ids(grid)) == want
    assert grid.where_sql == "(times_seen = 3 AND platform = 'amazon')"
    submit(grid.where_box, "tims_seen > 3")  # a typo: the column is named, rows stay
    assert "tims_seen" in grid.message.value and "Could not filter" in grid.message.value
    assert sorted(shown_ids(grid)) == want
    submit(grid.where_box, "true; DELETE FROM sellers")
    assert "one SQL predicate" in grid.message.value
    submit(grid.where_box, "")
    assert grid.viewport.row_count == 100 and grid.where_sql == "true"
    with pytest.raises(ConfigError):
        grid.viewport.set_where("1) OR (1")


def test_selection_round_trips_through_ids(grid: SellersGrid) -> None:
    grid.select_rows(10, 12)
    grid.select_rows(40, add=True)
    chosen = grid.selection
    assert chosen == ["id-000010", "id-000011", "id-000012", "id-000040"]
    grid.clear_selection()
    grid.sort_by("Name", descending=True)
    grid.selection = chosen
    assert sorted(grid.selection) == sorted(chosen)
    assert grid.selected_count == 4


def test_columns_chosen_by_the_analyst(grid: SellersGrid) -> None:
    assert [label for label, t in grid.column_toggles.items() if t.value] == grid.columns
    grid.columns = ["Name", "Flagged", "Id"]
    assert grid.columns == ["Name", "Flagged", "Id"]
    sent = []
    grid.datagrid.send = lambda content, buffers=None: sent.append((content, buffers or []))
    grid.datagrid._handle_comm_msg(None, {"type": "data-request", "r1": 0, "r2": 1}, [])
    rows = decode_reply(*[m for m in sent if m[0].get("event_type") == "data-reply"][-1])
    assert rows["Id"] == ["id-000000", "id-000001"]
    assert set(rows) - {"ipydguuid"} == {"#", "Name", "Flagged", "Id"}
    assert grid.column_toggles["Id"].value and not grid.column_toggles["Platform"].value
    grid.column_toggles["Platform"].value = True  # the control puts it in its place
    assert grid.columns == ["Name", "Platform", "Flagged", "Id"]
    assert all(w >= 7 * len(label) + 44 for label, w in grid.datagrid.column_widths.items())
    with pytest.raises(ConfigError, match="no column 'Nope'"):
        grid.columns = ["Name", "Nope"]


def test_profiles_match_plain_sql_over_the_same_filter(
    grid: SellersGrid, offline_wb: Workbench
) -> None:
    grid.select_rows(0, 2)
    grid.flag_selected(False)  # pending unflags: the flag profile counts them
    grid.set_flagged_filter("not flagged")
    submit(grid.where_box, "times_seen > 0")
    assert grid.profiles.wait()
    where, wb = grid.where_sql, offline_wb
    profiles = {p["label"]: p for p in grid.profiles.profiles}
    rows = grid.viewport.row_count
    assert grid.profiles.rows == rows and all(p["rows"] == rows for p in profiles.values())
    platform = wb.sql(f"SELECT platform, count(*) AS n FROM visible_sellers WHERE {where} "
                      f"GROUP BY 1 ORDER BY n DESC, 1")
    assert profiles["Platform"]["values"] == platform.values.tolist()
    times = wb.sql(f"SELECT times_seen FROM visible_sellers WHERE {where}")["times_seen"]
    assert [b[2] for b in profiles["Times seen"]["bins"]] == [
        int(((times >= lo) & (times < hi)).sum()) for lo, hi, _n in profiles["Times seen"]["bins"]]
    assert sum(b[2] for b in profiles["Times seen"]["bins"]) == rows
    flags = wb.sql(f"SELECT count(*) FILTER (WHERE flagged) AS f, count(*) FILTER "
                   f"(WHERE id IN (SELECT seller_id FROM mutations WHERE state = 'pending')) "
                   f"AS p FROM visible_sellers WHERE {where}").iloc[0]
    assert (profiles["Flagged"]["flagged"], profiles["Flagged"]["pending"]) == (
        flags["f"], flags["p"]) == (0, 2)  # row 0 was flagged: now filtered out
    runs = wb.sql(f"SELECT r.name, count(*) AS n FROM (SELECT * FROM visible_sellers "
                  f"WHERE {where}) v JOIN collection_runs r ON r.id = v.first_seen_run_id "
                  f"GROUP BY 1 ORDER BY n DESC, 1")
    assert profiles["First seen run"]["values"] == runs.values.tolist()
    updated = wb.sql(f"SELECT epoch_us(updated_at) AS t FROM visible_sellers WHERE {where}")["t"]
    assert [b[2] for b in profiles["Updated"]["bins"]] == [
        int(((updated >= b[0]) & (updated < b[1])).sum()) for b in profiles["Updated"]["bins"]]
    # Mostly distinct names: their count alone, exact at this size (HyperLogLog's estimate
    # only above EXACT_ROWS rows).
    names = wb.sql(f"SELECT count(DISTINCT display_name) AS n FROM visible_sellers "
                   f"WHERE {where}")["n"].iloc[0]
    assert profiles["Name"]["distinct"] == names == rows
    assert profiles["Name"]["values"] == [] and not profiles["Name"].get("approximate")


def test_a_column_of_many_distinct_values_gets_an_estimate(
    grid: SellersGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sellerbench.grid import profiles as profiles_module

    monkeypatch.setattr(profiles_module, "EXACT_ROWS", 10)
    grid.set_search("Seller")  # a filter change profiles anew under the lowered limit
    assert grid.profiles.wait()
    name, rows = grid.profiles.profile("Name"), grid.viewport.row_count
    assert name["approximate"] and 0.95 * rows <= name["distinct"] <= rows


def test_profile_clicks_cross_filter_and_clear(grid: SellersGrid, offline_wb: Workbench) -> None:
    grid.profiles.wait()
    platform = grid.profiles.profile("Platform")
    index = [v for v, _n in platform["values"]].index("amazon")
    grid.profiles._message(None, {"event": "pick", "column": "Platform", "index": index}, [])
    assert grid.viewport.row_count == 20 and grid.profiles.picked == ["Platform"]
    assert grid.profiles.wait()
    # The other profiles follow: every shown seller is on amazon (i % 5 == 0), so half are even.
    assert grid.profiles.profile("Flagged")["flagged"] == 10
    assert [v for v, _n in grid.profiles.profile("Platform")["values"]] == ["amazon"]
    grid.profiles._message(None, {"event": "pick", "column": "Flagged", "index": "flagged"}, [])
    assert grid.viewport.row_count == 10
    assert sorted(sql_ids(offline_wb, grid.where_sql)) == sorted(shown_ids(grid))
    grid.profiles._message(None, {"event": "clear", "column": "Platform"}, [])
    assert grid.viewport.row_count == 10 and grid.profiles.picked == ["Flagged"]
    grid.pick("Flagged", "flagged")  # the same pick again removes it
    assert grid.viewport.row_count == 100 and grid.profiles.picked == []


def test_profiles_of_a_snapshot_directly(tmp_path: Path) -> None:
    """The profile of a column with many distinct names is its distinct count alone."""
    from sellerbench.cache.store import Store
    from sellerbench.grid.viewport import Viewport

    store = Store(tmp_path / "c.duckdb")
    fill_sellers(store, 3000)
    viewport = Viewport(store)
    snap = viewport._snapshot()
    got = profile_table(snap.table, viewport.columns,
                        {c.label: viewport._source(c.label) for c in viewport.columns},
                        snap.code_names)
    by = {p["label"]: p for p in got}
    assert by["Name"]["values"] == [] and by["Name"]["distinct"] > 2500
    assert by["Times seen"]["bins"] == [[k, k + 1, len(range(k, 3000, 7))] for k in range(7)]
    assert by["Last seen run"]["values"] == [["Beta", 3000]]


# -- the hands: what each browser interaction does to the queue ------------------------------


def test_right_drag_paints_the_flag_on_exactly_those_rows(
    grid: SellersGrid, offline_wb: Workbench
) -> None:
    hands(grid, event="paint", rows=[21, 22, 23, 24, 25], first=21)
    pending = offline_wb.pending()
    assert sorted(pending["seller_id"]) == [f"id-0000{i}" for i in range(21, 26)]
    assert set(pending["change"]) == {"flagged=true"}
    assert "Flagged 5 sellers (right-drag)" in grid.message.value
    # Starting on a flagged row paints the flag off (row 30 is flagged, 31 is not).
    hands(grid, event="paint", rows=[31, 30], first=30)
    flags = offline_wb.sql("SELECT id, flagged FROM visible_sellers "
                           "WHERE id IN ('id-000030', 'id-000031') ORDER BY id")
    assert flags["flagged"].tolist() == [False, False]
    hands(grid, event="paint", rows=[], first=None)  # nothing painted: nothing queued
    hands(grid, event="paint", rows=[10_000], first=10_000)  # off the end: ignored
    assert len(offline_wb.pending()) == 7  # five flags, two unflags


def test_keys_select_all_undo_and_delete_asks(grid: SellersGrid, offline_wb: Workbench) -> None:
    grid.set_flagged_filter("flagged")
    hands(grid, event="key", key="select-all")
    assert grid.selected_count == 10 == grid.viewport.row_count
    grid.set_flagged_filter("all")
    grid.select_rows(3, 4)
    grid.flag_selected()
    assert len(offline_wb.pending()) == 2
    hands(grid, event="key", key="undo")
    assert offline_wb.pending().empty and "Undo:" in grid.message.value
    grid.select_rows(5)
    hands(grid, event="key", key="delete")  # asks, even for one seller
    assert grid.confirm_bar.layout.display == "flex" and offline_wb.pending().empty
    assert "Delete 1 seller?" in grid.confirm_text.value
    grid.confirm_bar.children[1].click()
    assert sorted(offline_wb.pending()["seller_id"]) == ["id-000005"]
    grid.clear_selection()
    hands(grid, event="key", key="delete")
    assert "select the sellers to delete first" in grid.message.value


def test_hover_shows_the_sellers_details(grid: SellersGrid) -> None:
    sent = []
    grid.painter.send = lambda content, buffers=None: sent.append(content)
    hands(grid, event="hover", row=7)
    assert sent[-1]["row"] == 7 and "Seller 000007" in sent[-1]["html"]
    assert "id-000007" in sent[-1]["html"]
    hands(grid, event="hover", row=5000)
    assert sent[-1]["html"] == ""
    assert grid._detail_id is None  # the detail panel stays for the selected seller


def test_rename_uses_the_text_sent_with_the_action(grid: SellersGrid,
                                                   offline_wb: Workbench) -> None:
    """The box's synced value may lag (a prefix); the action carries the text typed."""
    grid.select_rows(8)
    grid.rename_text.value = "Andersson"  # what a lagging state update would hold
    submit(grid.rename_text, "Andersson Daughters (checked)")
    assert offline_wb.sql("SELECT display_name FROM visible_sellers WHERE id = 'id-000008'"
                          )["display_name"].tolist() == ["Andersson Daughters (checked)"]
    assert "Renamed to Andersson Daughters (checked)." in grid.message.value
    assert grid.rename_text.value == ""
    # Escape empties the box and does nothing else.
    grid.rename_text._message(None, {"event": "escape", "value": ""}, [])
    assert len(offline_wb.pending()) == 1


def test_a_new_message_replaces_the_last(grid: SellersGrid) -> None:
    grid.buttons["flag"].click()
    assert "⚠" in grid.message.value
    grid.select_rows(1)
    grid.buttons["flag"].click()
    assert "⚠" not in grid.message.value and "Flagged 1 seller." in grid.message.value
    assert grid.message_bar.layout.height == "32px"  # the line is always there
