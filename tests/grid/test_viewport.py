"""The viewport: filters -> SQL, sorts -> order, pages -> rows, ranges <-> ids (no widgets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sellerbench.cache.store import Store
from sellerbench.errors import ConfigError
from sellerbench.grid.viewport import Viewport, merge_ranges, runs_of
from sellerbench.workbench import Workbench

from .conftest import fill_sellers


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "cache.duckdb")
    fill_sellers(store, 100)
    return store


def test_page_shows_display_values_in_name_order(store: Store) -> None:
    page = Viewport(store).page(0, 2)
    assert list(page.index) == [0, 1, 2]
    assert page.index.name == "#"
    assert list(page["Name"]) == ["Seller 000000", "Seller 000001", "Seller 000002"]
    assert list(page["Flagged"]) == ["yes", "", ""]
    assert list(page["Platform"]) == ["amazon", "ebay", "ebay"]
    assert list(page["First seen run"]) == ["Alpha", "Beta", "Alpha"]
    assert list(page["Last seen run"]) == ["Beta"] * 3
    assert list(page["Times seen"]) == [0, 1, 2]
    assert list(page["Updated"]) == ["2024-01-01 00:00"] * 3
    assert list(page["Id"]) == ["id-000000", "id-000001", "id-000002"]
    assert list(page["Pending"]) == ["", "", ""]


def test_page_deep_in_the_order_and_clipped_at_the_end(store: Store) -> None:
    viewport = Viewport(store)
    page = viewport.page(95, 120)
    assert list(page.index) == [95, 96, 97, 98, 99]
    assert list(page["Name"]) == [f"Seller {i:06d}" for i in range(95, 100)]
    assert not page.isna().any().any()
    assert viewport.page(100, 110).empty


def test_sort_descending_and_ties_keep_a_stable_order(store: Store) -> None:
    viewport = Viewport(store)
    viewport.set_sort("Times seen", descending=True)
    page = viewport.frame()
    assert list(page["Times seen"]) == sorted(page["Times seen"], reverse=True)
    sixes = page[page["Times seen"] == 6]["Name"].tolist()
    assert sixes == sorted(sixes)  # ties in the cache's scan order (insertion order here)
    viewport.set_sort("Updated", descending=True)
    assert viewport.page(0, 0)["Name"].tolist() == ["Seller 000099"]
    viewport.set_sort("First seen run")
    assert viewport.frame()["First seen run"].tolist() == ["Alpha"] * 50 + ["Beta"] * 50
    assert viewport.builds == 1  # re-sorting reuses the snapshot: no new query


def test_unknown_sort_column_is_a_config_error(store: Store) -> None:
    with pytest.raises(ConfigError, match="no column 'Nope'"):
        Viewport(store).set_sort("Nope")


def test_search_matches_name_case_insensitively_or_exact_ids(store: Store) -> None:
    viewport = Viewport(store)
    viewport.set_search("  seller 00004 ")
    assert viewport.frame()["Name"].tolist() == [f"Seller {i:06d}" for i in range(40, 50)]
    viewport.set_search("id-000007")
    assert viewport.frame()["id"].tolist() == ["id-000007"]
    viewport.set_search("p12")  # platform id
    assert viewport.frame()["id"].tolist() == ["id-000012"]


def test_search_text_is_bound_never_pasted(store: Store) -> None:
    viewport = Viewport(store)
    viewport.set_search("x'); DROP TABLE sellers; --")
    assert viewport.row_count == 0
    viewport.set_search("")
    assert viewport.row_count == 100


def test_flagged_filter(store: Store) -> None:
    viewport = Viewport(store)
    viewport.set_flagged("flagged")
    assert viewport.frame()["id"].tolist() == [f"id-{i:06d}" for i in range(0, 100, 10)]
    viewport.set_flagged("not flagged")
    assert viewport.row_count == 90
    with pytest.raises(ConfigError, match="flagged filter"):
        viewport.set_flagged("maybe")


def test_header_filter_transforms_become_sql(store: Store) -> None:
    viewport = Viewport(store)
    viewport.set_transforms([
        {"type": "filter", "column": "Platform", "operator": "in", "value": ["amazon"]},
        {"type": "filter", "column": "Times seen", "operator": ">=", "value": 5},
        {"type": "sort", "column": "Name", "desc": True},
    ])
    frame = viewport.frame()
    assert set(frame["Platform"]) == {"amazon"}
    assert (frame["Times seen"] >= 5).all()
    assert frame["Name"].tolist() == sorted(frame["Name"], reverse=True)
    viewport.set_transforms([
        {"type": "filter", "column": "Flagged", "operator": "=", "value": "yes"},
        {"type": "filter", "column": "Name", "operator": "stringContains", "value": "0005"},
    ])
    assert viewport.frame()["id"].tolist() == ["id-000050"]
    viewport.set_transforms([])
    assert viewport.row_count == 100
    assert viewport.sort == ("Name", False)


def test_unknown_filter_operator_is_refused(store: Store) -> None:
    viewport = Viewport(store)
    with pytest.raises(ConfigError, match="operator 'regex'"):
        viewport.set_transforms([{"type": "filter", "column": "Name", "operator": "regex",
                                  "value": "."}])
    assert viewport.header_filters == []


def test_ranges_to_ids_and_back(store: Store) -> None:
    viewport = Viewport(store)
    viewport.set_sort("Updated", descending=True)  # row r shows seller 99 - r
    ids = viewport.ids([(3, 5), (4, 6), (10, 10), (200, 300)])
    assert ids == [f"id-{99 - r:06d}" for r in (3, 4, 5, 6, 10)]
    assert viewport.positions(ids).tolist() == [3, 4, 5, 6, 10]
    assert viewport.positions(["missing"]).tolist() == []


def test_merge_ranges_and_runs_of() -> None:
    assert merge_ranges([(5, 7), (1, 2), (3, 3), (6, 9), (-4, 0), (20, 30)], 10) == [(0, 3),
                                                                                     (5, 9)]
    assert merge_ranges([(4, 2)], 10) == []
    assert runs_of(np.array([1, 2, 3, 7, 9, 10])) == [(1, 3), (7, 7), (9, 10)]
    assert runs_of(np.array([], dtype=np.int64)) == []


def test_pending_changes_show_and_filter(store: Store) -> None:
    wb = Workbench(store, None, auto_push=False)
    wb.flag(["id-000001", "id-000002"], True)
    wb.rename("id-000002", "Zed")
    viewport = Viewport(store)
    viewport.set_flagged("pending")
    frame = viewport.frame()
    assert frame["id"].tolist() == ["id-000001", "id-000002"]
    assert frame["Pending"].tolist() == ["flag", "flag, rename"]
    assert frame["Name"].tolist() == ["Seller 000001", "Zed"]
    assert frame["Flagged"].tolist() == ["yes", "yes"]


def test_status_counts(store: Store) -> None:
    wb = Workbench(store, None, auto_push=False)
    wb.flag(["id-000001"], True)
    viewport = Viewport(store)
    viewport.set_search("seller 00000")
    status = viewport.status()
    assert (status["total"], status["flagged"], status["pending"], status["shown"]) == (
        100, 11, 1, 10)
    assert status["last_synced"] is None


def test_detail_has_every_field_the_runs_and_pending_changes(store: Store) -> None:
    Workbench(store, None, auto_push=False).flag(["id-000004"], True)
    info = Viewport(store).detail("id-000004")
    assert info["seller"]["display_name"] == "Seller 000004"
    assert {"id", "normalized_name", "platform_id", "created_at", "updated_at",
            "first_seen_run_id", "last_seen_run_id"} <= set(info["seller"])
    assert [(r["seen"], r["name"]) for r in info["runs"]] == [("first seen", "Alpha"),
                                                             ("last seen", "Beta")]
    assert [m["kind"] for m in info["pending"]] == ["flag"]
    assert Viewport(store).detail("nobody") is None


def test_unique_values_for_the_header_filter(store: Store) -> None:
    viewport = Viewport(store)
    assert viewport.unique_values("Platform") == ["amazon", "ebay"]
    assert viewport.unique_values("Flagged") == ["", "yes"]
    assert len(viewport.unique_values("Name", limit=7)) == 7


def test_rows_taken_across_batches_keep_their_order() -> None:
    import pyarrow as pa

    from sellerbench.grid.snapshot import Snapshot

    batches = [pa.record_batch({"__id": [f"id-{i}" for i in range(a, a + 4)],
                                "key": [(i * 7) % 12 for i in range(a, a + 4)]})
               for a in (0, 4, 8)]
    snap = Snapshot(pa.Table.from_batches(batches), {}, {})
    snap.sort("key", descending=False)
    whole = pa.Table.from_batches(batches).take(snap.order)
    assert snap.rows(0, 12).equals(whole)
    assert snap.rows(3, 5).equals(whole.slice(3, 5))
    assert snap.rows(12, 3).num_rows == 0


def test_uuid_ids_are_held_packed_and_read_back_as_text(tmp_path: Path) -> None:
    """Canonical UUIDs are held in 16 bytes (40 MB -> 16 MB at 1M sellers); every way
    out (pages, ids, positions, frames, Id sort, patches) gives the same text back, and a
    seller created here (``local:...``) turns the snapshot back to text ids."""
    import uuid

    import pyarrow as pa

    store = Store(tmp_path / "cache.duckdb")
    fill_sellers(store, 60)
    ids = sorted(str(uuid.UUID(int=(i * 7919 + 13) << 64 | i)) for i in range(60))
    with store.transaction() as con:
        con.execute("UPDATE sellers SET id = (?::VARCHAR[])[rev + 1]", [ids])
    wb = Workbench(store, None, auto_push=False)
    viewport = Viewport(store)
    wb.subscribe(lambda event: viewport.invalidate(event.sellers))
    viewport.set_sort("Id")
    assert viewport._snapshot().table.schema.field("__id").type == pa.binary(16)
    assert viewport.ids([(0, 59)]) == ids
    assert list(viewport.page(0, 4)["Id"]) == ids[:5]
    assert viewport.positions([ids[7], ids[3], "local:x", "ID-NOT-HELD"]).tolist() == [3, 7]
    assert viewport.frame()["id"].tolist() == ids
    viewport.set_sort("Name")
    wb.flag([ids[10], ids[11]], True)  # a patch, ids still packed
    frame = viewport.frame()
    assert viewport.patches >= 1 and set(frame["id"]) == set(ids)
    assert frame.set_index("id").loc[[ids[10], ids[11]], "Flagged"].tolist() == ["yes"] * 2
    (local,) = wb.create(["Brand New Shop"])
    assert viewport._snapshot().table.schema.field("__id").type == pa.string()
    assert local in viewport.ids([(0, 60)])
    assert viewport.positions([local, ids[0]]).size == 2
