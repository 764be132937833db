"""Store fresh outputs in the tutorial notebooks: ``.venv/bin/python scripts/notebook_outputs.py``.

A notebook opened from the repository (on a forge, in nbconvert, in JupyterLab before its
kernel runs) shows what was stored in it: without outputs a reader sees code only, and the
grid's static picture (its first rows and filter as text) is never there. This runs each
notebook once, top to bottom, against a throw-away reference server with the demo's data,
in a copy of notebooks/ (what they write lands in the copy), and writes the executed
notebooks back. tests/reliability/test_security.py checks that no output holds a token.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    from sellerbench.server.embedded import start

    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="sb-outputs-") as tmp:
        base = Path(tmp)
        server = start(n=20_000, seed=7, data_dir=base / "server", run_speed=4.0)
        try:
            os.environ.update({
                "SELLERBENCH_API_URL": server.url,
                "SELLERBENCH_TOKEN": server.tokens["analyst"],
                "SELLERBENCH_ADMIN_TOKEN": server.tokens["admin"],
                "SELLERBENCH_CACHE": str(base / "cache.duckdb"),
                "SELLERBENCH_HOME": str(base / "home"),
            })
            folder = base / "notebooks"
            folder.mkdir()
            for path in notebooks:
                shutil.copy(path, folder / path.name)
                notebook = nbformat.read(folder / path.name, as_version=4)
                NotebookClient(notebook, timeout=600, kernel_name="python3",
                               resources={"metadata": {"path": str(folder)}}).execute()
                errors = [o for cell in notebook.cells for o in cell.get("outputs", [])
                          if o.get("output_type") == "error"]
                if errors:
                    print(f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}",
                          file=sys.stderr)
                    return 1
                nbformat.write(notebook, path)
                print(f"{path.name}: outputs stored", flush=True)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
