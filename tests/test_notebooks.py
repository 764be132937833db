"""The tutorial notebooks as an analyst runs them: Run All twice in a row, against a real
reference server, in the demo's environment (API, analyst and admin tokens, one absolute
cache shared by every kernel), each kernel started in the notebook's folder. The runs are
tests/demo_fixtures.py's ``notebook_runs``: the same runs tests/test_demo.py checks.

The checks that used to sit in the notebooks (``# NBVAL_CHECK_OUTPUT`` cells printing
"True True") live here: on the outputs a person reads, on variables the notebook left in
its kernel (``nbrun.run(probe=...)``, the probes in tests/demo_fixtures.py), and on the
server before and after each notebook (only 05 changes what the others show, and says so;
06 removes the sellers it creates, leaving their tombstones, and says so).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .demo_fixtures import NOTEBOOKS, texts

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
CHANGES_THE_SERVER = {"05-collection-runs.ipynb"}  # it starts runs, and its intro says so
TOMBSTONES_LEFT = {"06-mutations.ipynb": 5}  # the sellers it created and deleted


@pytest.fixture
def runs(notebook_runs: dict[str, Any]) -> list[dict[str, Any]]:
    """Every notebook run twice in a row (01..06, then 01..06 again), with the server as
    it was before and after each run."""
    return list(notebook_runs["results"])


def _one(results: list[dict[str, Any]], name: str, attempt: int) -> dict[str, Any]:
    return next(r for r in results if r["notebook"] == name and r["attempt"] == attempt)


def test_every_notebook_runs_twice_in_a_row_without_error(
    runs: list[dict[str, Any]],
) -> None:
    assert [(r["notebook"], r["attempt"]) for r in runs] == [
        (p.name, attempt) for attempt in (1, 2) for p in NOTEBOOKS]
    for result in runs:
        assert result["failure"] is None and result["errors"] == [], (
            result["notebook"], result["attempt"], result["failure"], result["errors"])
        assert result["blank_widgets"] == [], result["notebook"]


def test_no_notebook_changes_what_the_others_show_unless_it_says_so(
    runs: list[dict[str, Any]],
) -> None:
    for result in runs:
        name, before, after = result["notebook"], result["before"], result["after"]
        if name in CHANGES_THE_SERVER:
            continue
        assert after["live"] == before["live"], name
        assert after["tombstones"] == before["tombstones"] + TOMBSTONES_LEFT.get(name, 0), name
    intro = nbformat.read(ROOT / "notebooks" / "05-collection-runs.ipynb", as_version=4)
    assert "changes the server the other notebooks read" in intro.cells[0].source
    intro = nbformat.read(ROOT / "notebooks" / "06-mutations.ipynb", as_version=4)
    assert "five more" in intro.cells[0].source  # the tombstones it leaves, said


def test_no_test_scaffolding_shows_in_the_notebooks() -> None:
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            assert "NBVAL" not in cell.source, path.name
            assert not re.search(r"^\s*assert\b", cell.source, re.M), (path.name, cell.source)


def test_outputs_read_as_text_not_as_raw_values(runs: list[dict[str, Any]]) -> None:
    for result in runs:
        for text in texts(result["executed"]):
            assert not re.search(r"\b1[5-9]\d{14}\b", text), (result["notebook"], text)
            assert not re.search(r"&(#x?[0-9a-fA-F]+|gt|lt|quot|amp);", text), text
            assert not re.fullmatch(r"(True|False)( (True|False))*\n?", text), (
                result["notebook"], text)  # a bare check result says nothing to a reader


def test_the_grid_notebook_shows_its_filter_and_its_typo(runs: list[dict[str, Any]]) -> None:
    executed = _one(runs, "02-sellers-grid.ipynb", 2)["executed"]
    printed = "\n".join(texts(executed))
    counted = re.search(r"^(\d+) sellers from wb.sellers\(where=grid.where_sql\)\n(\d+) shown",
                        printed, re.M)
    assert counted and counted.group(1) == counted.group(2), printed
    shown = [o["data"]["text/html"] for cell in executed.cells for o in cell.get("outputs", [])
             if "text/html" in o.get("data", {}) and "tims_seen" in o["data"]["text/html"]]
    assert len(shown) == 1 and "names no column &quot;tims_seen&quot;; closest first: " \
        "times_seen" in shown[0], shown
    assert re.search(r"^\s+Updated: \d{4}-\d\d-\d\d \d\d:\d\d to ", printed, re.M), printed
    assert "0 changes queued" in printed  # the grid's flags were undone: nothing left queued


def test_exports_and_the_report_land_beside_the_notebook(runs: list[dict[str, Any]]) -> None:
    result = _one(runs, "04-export-report.ipynb", 2)
    output = result["folder"] / "output"
    for name in ("flagged.csv", "busy.parquet", "report/report.html", "report/sellers.csv"):
        assert (output / name).is_file(), name
    assert "links to other sites: none (it opens offline)" in "".join(texts(result["executed"]))


def test_the_runs_notebook_reports_a_finished_run(runs: list[dict[str, Any]]) -> None:
    for attempt in (1, 2):
        printed = "\n".join(texts(_one(runs, "05-collection-runs.ipynb", attempt)["executed"]))
        searched = re.search(r"^completed: (\d+) of (\d+) products searched", printed, re.M)
        assert searched and searched.group(1) == searched.group(2), printed
        found = re.search(r"^(\d+) sellers in the cache were seen by this run; it reported "
                          r"(\d+) found", printed, re.M)
        assert found and found.group(1) == found.group(2), printed
        assert "paused running cancelled" in printed
        assert "ConflictError (INVALID_TRANSITION)" in printed


def test_the_mutations_notebook_cleans_up_what_it_made(runs: list[dict[str, Any]]) -> None:
    for attempt in (1, 2):
        printed = "\n".join(texts(_one(runs, "06-mutations.ipynb", attempt)["executed"]))
        assert "MutationError: name already in use by a live seller" in printed
        assert "0 sellers of this notebook left" in printed


def test_what_the_quickstart_and_sql_notebooks_leave_in_the_kernel(
    runs: list[dict[str, Any]],
) -> None:
    quick = json.loads(_one(runs, "01-quickstart.ipynb", 2)["probed"])
    assert quick["mode"] == "rev" and quick["rows"] > 0
    assert quick["dtypes"] == {"id": "string", "display_name": "string",
                               "times_seen": "Int64", "flagged": "boolean",
                               "updated_at": "datetime64[us, UTC]",
                               "deleted_at": "datetime64[us, UTC]"}
    sql = json.loads(_one(runs, "03-ad-hoc-sql.ipynb", 2)["probed"])
    assert 0 < sql["busy"] <= 10 and sql["low"] >= sql["min_seen"]
    assert {"sellers", "collection_runs", "sync_state", "meta"} <= set(sql["tables"])
