"""Every entry point of the grid may run while a cell runs.

With ipykernel 7 and JupyterLab 4.4+, widget messages (data-requests, selections, clicks,
the text boxes' actions, the painter's right-drags, hovers and keys, profile clicks) are
handled on a kernel subshell thread while a cell runs on the main thread. Here a second
thread calls each of the grid's entry points over and over while the main thread runs a
cell-like workload (flags, renames, deletes, undos and reads) against the same
workbench. Checked: no entry point raises anything but an analyst's error (a
SellerbenchError such as "select exactly one seller"), and afterwards the grid shows
exactly the rows its ``where_sql`` selects and a snapshot equal to a fresh rebuild.

Before the workbench serialized its writes per cache file, this test failed with
DuckDB's "Conflict on update" (an undo in the cell against a flag from the grid).
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import threading
import time
import traceback
from typing import Any

import pytest

from sellerbench.cache.store import Store
from sellerbench.errors import SellerbenchError
from sellerbench.grid.widget import SellersGrid
from sellerbench.workbench import Workbench

from .conftest import fill_sellers
from .test_patch import Analyst, assert_same_as_rebuilt

pytestmark = pytest.mark.timeout(300)


def entry_points(grid: SellersGrid, rng: random.Random) -> dict[str, Any]:
    """Each way into the grid, as the browser (or a second cell) would call it."""
    def request() -> None:
        first = rng.randint(0, 250)
        grid.datagrid._handle_comm_msg(None, {"type": "data-request", "r1": first,
                                              "r2": first + 30}, [])

    def browser_selects() -> None:
        first = rng.randint(0, 200)
        grid.datagrid.selections = [{"r1": first, "r2": first + rng.randint(0, 5),
                                     "c1": 0, "c2": 3}]

    def box(target: Any, text: str) -> None:
        target._message(None, {"event": "submit", "value": text}, [])

    def hands(**content: Any) -> None:
        grid._on_hands(None, content, [])

    return {
        "data-request": request,
        "selection": browser_selects,
        "select rows": lambda: grid.select_rows(rng.randint(0, 100), add=rng.random() < .5),
        "select all": grid.select_all,
        "flag": lambda: grid.flag_selected(rng.random() < .6),
        "rename box": lambda: (grid.select_rows(rng.randint(0, 100)),
                               box(grid.rename_text, f"Thread name {rng.randint(0, 10**6)}")),
        "search box": lambda: box(grid.search, rng.choice(["", "seller 0001", "seller 00"])),
        "where box": lambda: box(grid.where_box, rng.choice(["", "times_seen > 2",
                                                              "platform = 'ebay'"])),
        "flagged filter": lambda: grid.set_flagged_filter(
            rng.choice(["all", "flagged", "not flagged", "pending"])),
        "header filter": lambda: setattr(grid.datagrid, "_transforms", rng.choice([
            [], [{"type": "sort", "column": "Times seen", "desc": True}],
            [{"type": "filter", "column": "Platform", "operator": "=", "value": "amazon"}]])),
        "profile pick": lambda: grid.profiles._message(None, {
            "event": "pick", "column": "Times seen", "index": 0}, []),
        "profile clear": lambda: grid.profiles._message(None, {
            "event": "clear", "column": "Times seen"}, []),
        "right-drag": lambda: hands(event="paint", rows=[rng.randint(0, 50) for _ in range(5)],
                                    first=None),
        "hover": lambda: hands(event="hover", row=rng.randint(0, 100)),
        "key select-all": lambda: hands(event="key", key="select-all"),
        "key undo": lambda: hands(event="key", key="undo"),
        "key delete": lambda: (hands(event="key", key="delete"), grid._hide_confirm()),
        "change event": lambda: grid._on_event("flag"),
        "where_sql": lambda: grid.where_sql,
        "selection ids": lambda: setattr(grid, "selection", grid.selection[:3]),
        "status": lambda: grid.status,
        "columns": lambda: setattr(grid, "columns", rng.choice([
            ["Name", "Platform", "Times seen", "Flagged", "Pending", "Id"],
            ["Name", "Times seen", "Flagged", "Pending", "First seen run", "Id"]])),
    }


CELL_ROUNDS = 20  # the deadline version did 33 rounds in its 25 s at load 10
MIN_CALLS = 3
STARVED_AFTER = 240.0  # below the test timeout (300 s), so this message shows


def test_each_entry_point_runs_safely_while_a_cell_runs(tmp_path) -> None:
    store = Store(tmp_path / "cache.duckdb")
    fill_sellers(store, 300)
    wb = Workbench(store, None, auto_push=False)
    grid = SellersGrid(wb, show_ids=True)
    grid.datagrid.send = lambda *_a, **_k: None  # no browser: replies go nowhere
    grid.painter.send = lambda *_a, **_k: None
    wrong: list[str] = []  # errors that are not an analyst's error

    def shown(what: str, exc: BaseException) -> None:
        if not isinstance(exc, SellerbenchError):
            wrong.append(f"{what}: {''.join(traceback.format_exception(exc))}")

    grid._show_error = shown
    grid.datagrid.on_error = shown
    rng = random.Random(12)
    points = entry_points(grid, rng)
    called: dict[str, int] = dict.fromkeys(points, 0)
    stop = threading.Event()

    def widget_thread() -> None:
        names = list(points)
        while not stop.is_set():
            name = rng.choice(names)
            try:
                points[name]()
            except SellerbenchError:
                pass  # an analyst's error (nothing selected, a refused rename)
            except Exception as exc:
                wrong.append(f"{name}: {''.join(traceback.format_exception(exc))}")
            called[name] += 1

    thread = threading.Thread(target=widget_thread, name="subshell")
    thread.start()
    try:
        analyst = Analyst(wb, seed=3)
        # Bounded by rounds, not a clock: CELL_ROUNDS of the cell's work, and on until every
        # entry point ran MIN_CALLS times beside it; STARVED_AFTER s is a failure, not a stop.
        give_up = time.monotonic() + STARVED_AFTER
        rounds = 0
        cell_rng = random.Random(5)
        cell_points = entry_points(grid, cell_rng)  # a cell may use the grid too
        cell_names = ["select rows", "flag", "search box", "where box", "data-request",
                      "selection ids", "status", "where_sql", "flagged filter"]
        while rounds < CELL_ROUNDS or min(called.values()) < MIN_CALLS:
            rounds += 1
            analyst.act()  # the cell: changes through the workbench ...
            wb.sellers(flagged=True)  # ... reads ...
            for _ in range(3):  # ... and the grid's own methods
                with contextlib.suppress(SellerbenchError):
                    cell_points[cell_rng.choice(cell_names)]()
            assert time.monotonic() < give_up, f"entry points starved: {called}"
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert wrong == [], "\n".join(wrong[:3])
    assert min(called.values()) >= MIN_CALLS, called
    # Afterwards the grid is consistent with the cache.
    grid.refresh()
    assert "sellers" in grid.status  # the grid reads the cache again, profiles the rows
    ids = sorted(wb.sql(f"SELECT id FROM visible_sellers WHERE {grid.where_sql}")["id"])
    assert sorted(grid.viewport.ids([(0, grid.viewport.row_count - 1)])) == ids
    assert_same_as_rebuilt(grid.viewport)
    assert grid.profiles.wait(30)
    assert grid.profiles.rows == grid.viewport.row_count
    grid.close()
    wb.close()


EXIT_WHILE_A_PROFILE_RUNS = """
import sys, threading
from sellerbench.grid import profiles
from sellerbench.cache.store import Store
from sellerbench.workbench import Workbench
started = threading.Event()
original = profiles._profile
def slow(con, *args):  # a profile that would run for minutes, inside DuckDB
    started.set()
    con.execute("SELECT count(*) FROM range(100000000000)").fetchall()
    return original(con, *args)
profiles._profile = slow
wb = Workbench(Store(sys.argv[1]), None, auto_push=False)
grid = wb.grid()
grid.datagrid.send = lambda *a, **k: None
grid.datagrid.answer(0, 39)
grid.profiles.refresh()
assert started.wait(60)
"""  # and Python exits with the profile running on its daemon thread


def test_exiting_while_a_profile_runs_ends_python_cleanly(tmp_path) -> None:
    """A kernel shut down while a profile runs exits quietly: a DuckDB query left
    running on a daemon thread while the interpreter exits aborts the process with
    "terminate called after throwing ..." (profiles._stop_all interrupts it)."""
    store = Store(tmp_path / "cache.duckdb")
    fill_sellers(store, 1_000)
    done = subprocess.run([sys.executable, "-c", EXIT_WHILE_A_PROFILE_RUNS, str(store.path)],
                          capture_output=True, text=True, timeout=120)
    assert "terminate called" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
