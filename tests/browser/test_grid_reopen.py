"""A notebook with a grid, opened from disk in JupyterLab with a fresh kernel (the grid's
widget models are gone): its output is drawn as the grid's static picture (the
``text/html`` of its bundle: the first rows as a table), not as the widget manager's
"Error displaying widget: model not found". That holds for an untrusted notebook (one
received or written by nbclient, like ``notebooks/``); docs/grid.md, "Without a kernel",
says why a notebook the analyst saved in JupyterLab (trusted) shows the error instead.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from .lab import REPO, LabPage, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

# Scroll the notebook to the first output holding a widget view (JupyterLab 4 only
# renders the cells in sight) and say how it was drawn.
GRID_OUTPUT_JS = """
async () => {
  const notebook = window.jupyterapp.shell.currentWidget.content;
  const index = notebook.widgets.findIndex((cell) => cell.model.type === 'code'
    && cell.model.outputs.toJSON().some((o) => o.data
      && o.data['application/vnd.jupyter.widget-view+json']));
  if (index < 0) return null;
  await notebook.scrollToItem(index, 'start');
  const cell = notebook.widgets[index];
  const outputs = [...cell.node.querySelectorAll('.jp-OutputArea-output')];
  return outputs.map((o) => ({mime: o.dataset.mimeType || '', text: o.textContent.slice(0, 400),
                              tables: o.querySelectorAll('table tr').length}));
}
"""


def test_a_grid_reopened_from_disk_shows_its_picture(lab_page: LabPage, artifacts: Any) -> None:
    lab = lab_page
    shutil.copy(REPO / "notebooks" / "02-sellers-grid.ipynb", lab.lab.root / "reopen.ipynb")
    lab.open("reopen.ipynb")

    def drawn() -> Any:
        found = lab.page.evaluate(GRID_OUTPUT_JS)
        return found if found and any(o["tables"] for o in found) else None

    outputs = wait_for(drawn, 30, "the grid's output drawn")
    picture = next(o for o in outputs if o["tables"])
    assert picture["mime"] == "text/html", outputs
    assert "Name" in picture["text"] and picture["tables"] >= 10, picture
    assert not any("Error displaying widget" in o["text"] for o in outputs), outputs
    lab.page.screenshot(path=str(artifacts / "grid-reopened.png"), full_page=True)
    assert lab.page.js_errors == []
