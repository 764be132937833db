"""A large cache: the snapshot is read on its own thread, the first rows are answered early.

Every test holds the background read at a gate (``held``), so what the grid answers
*while* it reads is seen, then lets it land. ``early_above = 0`` makes a 150-seller
cache take the path a 5,000,000-seller one takes.

The cache is built so that the sort's ties come in a different order from a read than
from the early query (ties by id): 50 more "amazon" sellers written in descending id
order. Without ``Snapshot.align`` the early rows 20..59 would move when the read lands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

import sellerbench.grid.viewport as viewport_module
from sellerbench.cache.store import Store
from sellerbench.errors import CacheError
from sellerbench.grid.viewport import Viewport
from sellerbench.workbench import Workbench

from .conftest import fill_sellers


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "cache.duckdb")
    fill_sellers(store, 100)
    with store.transaction() as con:
        con.execute(
            """
            INSERT INTO sellers (id, display_name, normalized_name, platform, platform_id,
                times_seen, flagged, first_seen_run_id, last_seen_run_id, created_at,
                updated_at, deleted_at, rev)
            SELECT printf('id-9%05d', i), printf('Tied %06d', i), printf('tied %06d', i),
                   'amazon', NULL, 1, false, 'run-a', 'run-b',
                   TIMESTAMPTZ '2024-01-01 00:00:00+00',
                   TIMESTAMPTZ '2024-01-01 00:00:00+00', NULL, 1000 + i
            FROM range(49, -1, -1) t(i)
            """
        )
    return store


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Background reads of the snapshot wait for this gate (set it to let them land)."""
    gate = threading.Event()
    real = viewport_module.read_rows

    def waiting(con: Any, packed: str, text: str) -> Any:
        assert gate.wait(30), "the test never let the read land"
        return real(con, packed, text)

    monkeypatch.setattr(viewport_module, "read_rows", waiting)
    monkeypatch.setattr(viewport_module, "EARLY_ROWS", 60)
    yield gate
    gate.set()


def early_viewport(store: Store) -> Viewport:
    viewport = Viewport(store)
    viewport.early_above = 0
    return viewport


def test_early_rows_stay_where_they_were_shown_when_the_snapshot_lands(
        store: Store, held: threading.Event) -> None:
    viewport = early_viewport(store)
    viewport.set_sort("Platform")
    early = viewport.page(0, 59)
    early_ids = viewport.ids([(0, 59)])
    assert viewport.reading and viewport.builds == 0
    assert viewport.row_count == 150
    assert list(early["Platform"]) == ["amazon"] * 60  # all ties: 20 + 50 amazon sellers

    held.set()
    landed = viewport.ids([(0, 149)])
    assert viewport.builds == 1 and not viewport.reading
    assert landed[:60] == early_ids
    assert viewport.page(0, 59).equals(early)
    # The same rows and the same keys in order as a read made without early rows.
    plain = Viewport(store)
    plain.set_sort("Platform")
    assert sorted(plain.ids([(0, 149)])) == sorted(landed)
    assert list(plain.page(0, 149)["Platform"]) == list(viewport.page(0, 149)["Platform"])


def test_rows_past_the_early_ones_wait_for_the_snapshot(
        store: Store, held: threading.Event) -> None:
    viewport = early_viewport(store)
    assert viewport.row_count == 150
    answered: list[Any] = []
    reader = threading.Thread(target=lambda: answered.append(viewport.page(100, 109)))
    reader.start()
    reader.join(0.5)
    assert reader.is_alive() and not answered  # not made up from the early rows
    held.set()
    reader.join(30)
    assert list(answered[0].index) == list(range(100, 110))
    assert viewport.builds == 1


def test_a_filter_change_drops_the_read_under_way(store: Store, held: threading.Event) -> None:
    viewport = early_viewport(store)
    assert viewport.row_count == 150
    first = viewport._build
    assert first is not None
    viewport.set_flagged("flagged")
    assert first.cancelled
    assert viewport.row_count == 10  # early: counted under the new filter
    held.set()
    assert len(viewport.ids([(0, 149)])) == 10
    assert viewport.builds == 1  # the dropped read was never taken in


def test_a_change_during_the_read_shows_once_it_lands(
        store: Store, held: threading.Event) -> None:
    wb = Workbench(store, None, auto_push=False)
    viewport = early_viewport(store)
    assert viewport.row_count == 150
    wb.flag(["id-000001"])
    viewport.invalidate(["id-000001"])  # as the grid does with the change's sellers
    held.set()
    row = viewport.positions(["id-000001"])[0]
    assert viewport.page(row, row)["Flagged"].tolist() == ["yes"]
    assert viewport.page(row, row)["Pending"].tolist() == ["flag"]
    wb.close()


def test_a_failed_read_is_a_cache_error_and_the_next_read_starts_anew(
        store: Store, held: threading.Event, monkeypatch: pytest.MonkeyPatch) -> None:
    held.set()
    real = viewport_module.read_rows

    def broken(con: Any, packed: str, text: str) -> Any:
        raise duckdb.IOException("IO Error: could not read the file")

    monkeypatch.setattr(viewport_module, "read_rows", broken)
    viewport = early_viewport(store)
    assert viewport.row_count == 150
    with pytest.raises(CacheError):
        viewport.ids([(0, 149)])
    monkeypatch.setattr(viewport_module, "read_rows", real)
    assert len(viewport.ids([(0, 149)])) == 150


def test_the_grid_answers_early_then_asks_the_browser_again(
        store: Store, held: threading.Event, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(viewport_module, "EARLY_ABOVE", 0)
    wb = Workbench(store, None, auto_push=False)
    grid = wb.grid()
    sent: list[dict[str, Any]] = []
    grid.datagrid.send = lambda message, buffers=None: sent.append(message)
    reply = grid.datagrid.answer(0, 19)
    assert reply is not None and (reply["r1"], reply["r2"]) == (0, 19)
    assert grid.viewport.reading
    grid.select_rows(3)
    chosen = grid.selected_ids
    assert chosen == grid.viewport.ids([(3, 3)])  # from the early rows, while reading
    assert grid.status.startswith("150 sellers")

    held.set()
    deadline = time.monotonic() + 30
    while not any(m.get("event_type") == "tick" for m in sent) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(m.get("event_type") == "tick" for m in sent)  # the browser asks again
    assert grid.profiles.wait(30)
    assert grid.profiles.profile("Platform")["values"][0] == ["ebay", 80]
    assert grid.viewport.builds == 1
    assert grid.selected_ids == chosen  # the row clicked early is the same seller
    grid.close()
    wb.close()
