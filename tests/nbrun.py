"""Run notebooks top to bottom as JupyterLab's kernels would, in this process's
environment: ``python -m tests.nbrun OUT_DIR NOTEBOOK...``.

Prints one JSON line per notebook: its name, the seconds it took, every error output
(ename, evalue) or stderr text that looks like a traceback, and ``blank_widgets``: widgets
the notebook displayed but had closed by its end (after Run All they show as nothing).
The executed notebooks are written to OUT_DIR for a person to read. The kernel starts in
the notebook's folder, as JupyterLab starts it. ``run(..., probe=CODE)`` (used by
tests/test_notebooks.py) runs CODE in the same kernel after the last cell and returns what
it printed as ``probed``: the checks live in the tests, not in the notebooks.
``run(..., env=ENV)`` starts the kernel with exactly ENV (the demo's JupyterLab
environment, in tests/demo_fixtures.py) instead of this process's.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MARK = "SELLERBENCH-OPEN-WIDGETS "
# Run after the last cell, in the same kernel: which widget models are still open.
PROBE = f"""
import json as _json
from ipywidgets import Widget as _Widget
print({MARK!r} + _json.dumps(sorted(getattr(_Widget, "widgets", None) or
      __import__("ipywidgets.widgets.widget", fromlist=["_instances"])._instances)))
"""


def run(path: Path, out_dir: Path, probe: str = "",
        env: dict[str, str] | None = None) -> dict[str, object]:
    notebook = nbformat.read(path, as_version=4)
    if probe:
        notebook.cells.append(nbformat.v4.new_code_cell(probe))
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.monotonic()
    failure = None
    try:
        client.execute(**({"env": env} if env is not None else {}))
    except CellExecutionError as exc:
        failure = str(exc).splitlines()[-1] if str(exc) else repr(exc)
    printed = "".join(o.get("text", "") for o in notebook.cells.pop().get("outputs", []))
    probed = "".join(o.get("text", "") for o in notebook.cells.pop().get("outputs", [])) \
        if probe else ""
    open_models = set(json.loads(printed.split(MARK, 1)[1].splitlines()[0])) \
        if MARK in printed else None
    shown = {o["data"][WIDGET_VIEW]["model_id"] for cell in notebook.cells
             for o in cell.get("outputs", []) if WIDGET_VIEW in o.get("data", {})}
    blank = sorted(shown - open_models) if open_models is not None else ["(not probed)"]
    errors = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(f"{output.get('ename')}: {output.get('evalue')}")
            elif output.get("name") == "stderr" and "Traceback" in output.get("text", ""):
                errors.append(output["text"][-500:])
    nbformat.write(notebook, out_dir / path.name)
    return {"notebook": path.name, "seconds": round(time.monotonic() - started, 1),
            "errors": errors, "failure": failure, "blank_widgets": blank, "probed": probed}


def main() -> int:
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[2:]:
        print(json.dumps(run(Path(name).resolve(), out_dir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
