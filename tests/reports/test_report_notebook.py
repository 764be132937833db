"""A report made from a notebook (``wb.report`` in a kernel, as notebook 04 does) leaves
no process behind: the kernel that made it counts its own children after."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from sellerbench.cache.store import Store

from .exportdata import AWKWARD_NAMES, fill
from .test_export_report import add_runs

CELL = """
import json, psutil
import sellerbench as sb
before = {{p.pid for p in psutil.Process().children(recursive=True)}}
wb = sb.connect(cache={cache!r})
result = wb.report({output!r}, title="From a notebook")
wb.close()
after = {{p.pid for p in psutil.Process().children(recursive=True)}}
print(json.dumps({{"left": sorted(after - before), "html": str(result.html)}}))
"""


def test_a_report_from_a_notebook_leaves_no_process(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache.duckdb")
    fill(store, AWKWARD_NAMES)
    add_runs(store)
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(
        CELL.format(cache=str(store.path), output=str(tmp_path / "reports" / "nb"))))
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(o.get("text", "") for o in notebook.cells[0].outputs
                      if o.get("name") == "stdout")
    seen = json.loads(printed.strip().splitlines()[-1])
    assert seen["left"] == []
    assert "From a notebook" in Path(seen["html"]).read_text(encoding="utf-8")
