"""Run notebooks top to bottom as JupyterLab's kernels would, in this process's
environment: ``python -m tests.nbrun OUT_DIR NOTEBOOK...``.

Prints one JSON line per notebook: its name, the seconds it took, and every error
output (ename, evalue) or stderr text that looks like a traceback. The executed notebooks
are written to OUT_DIR for a person to read. The kernel starts in the notebook's folder,
as JupyterLab starts it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def run(path: Path, out_dir: Path) -> dict[str, object]:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.monotonic()
    failure = None
    try:
        client.execute()
    except CellExecutionError as exc:
        failure = str(exc).splitlines()[-1] if str(exc) else repr(exc)
    errors = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(f"{output.get('ename')}: {output.get('evalue')}")
            elif output.get("name") == "stderr" and "Traceback" in output.get("text", ""):
                errors.append(output["text"][-500:])
    nbformat.write(notebook, out_dir / path.name)
    return {"notebook": path.name, "seconds": round(time.monotonic() - started, 1),
            "errors": errors, "failure": failure}


def main() -> int:
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[2:]:
        print(json.dumps(run(Path(name).resolve(), out_dir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
