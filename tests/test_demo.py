"""The README's demo command as a new user runs it (as root here, where the tests run as
root): it brings up the API and JupyterLab, prints the lines that point a terminal at the
same server and cache, and every notebook in notebooks/ runs top to bottom with no error,
twice in a row (an analyst runs a notebook again), in exactly the environment the demo gave
JupyterLab (read from the JupyterLab process), leaving the widgets it displayed open (a
closed one is blank after Run All) and writing its files only to notebooks/output/, where
JupyterLab's file browser shows them. What the notebooks print is checked in
tests/test_notebooks.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from .demo_fixtures import FOLDER, NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_the_demo_prints_the_lab_url_and_the_terminal_lines(demo: dict[str, Any]) -> None:
    printed, env = demo["printed"], demo["lab_env"]
    url = re.search(r"JupyterLab:\s+(http://127\.0\.0\.1:\d+/lab\?token=\w+)", printed)
    assert url, printed
    answer = httpx.get(url.group(1).replace("/lab?", "/api/status?"), timeout=30)
    assert answer.status_code == 200
    tree = re.search(r"Notebook 7:\s+(http://127\.0\.0\.1:\d+/tree\?token=\w+)", printed)
    assert tree and tree.group(1) == url.group(1).replace("/lab?", "/tree?"), printed
    page = httpx.get(tree.group(1), timeout=30)  # Notebook 7's file list, same server
    assert page.status_code == 200 and "notebook" in page.text.lower()
    for name in ("SELLERBENCH_API_URL", "SELLERBENCH_TOKEN", "SELLERBENCH_CACHE"):
        assert f"export {name}={env[name]}\n" in printed
    assert Path(env["SELLERBENCH_CACHE"]).is_absolute()
    assert env["SELLERBENCH_ADMIN_TOKEN"] != env["SELLERBENCH_TOKEN"]
    command = Path(f"/proc/{demo['lab_pid']}/cmdline").read_bytes().split(b"\0")
    assert (b"--allow-root" in command) == (os.geteuid() == 0)  # root needs it, users don't


def test_every_notebook_runs_twice_without_error_in_the_lab_environment(
    notebook_runs: dict[str, Any],
) -> None:
    results = notebook_runs["results"]
    assert [(r["notebook"], r["attempt"]) for r in results] == [
        (p.name, attempt) for attempt in (1, 2) for p in NOTEBOOKS]
    for result in results:
        assert result["failure"] is None and result["errors"] == [], result
        assert result["blank_widgets"] == [], result  # Run All leaves its widgets shown
    # Only output/ (04's exports and report) landed beside the notebooks: the kernels used
    # the demo's absolute cache.
    assert set(FOLDER.iterdir()) - notebook_runs["files_before"] <= {
        FOLDER / ".ipynb_checkpoints", FOLDER / "output"}
    assert (FOLDER / "output" / "report" / "report.html").is_file()
    assert not (FOLDER / "data").exists()


def test_a_terminal_with_the_printed_lines_shares_the_kernels_cache(
    demo: dict[str, Any], notebook_runs: dict[str, Any]
) -> None:
    lines = dict(re.findall(r"^\s+export (SELLERBENCH_\w+)=(\S+)$", demo["printed"], re.M))
    terminal = {k: v for k, v in os.environ.items() if not k.startswith("SELLERBENCH_")}
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "sellerbench"), "status"], cwd=Path.home(),
        env={**terminal, **lines}, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["cache"] == demo["lab_env"]["SELLERBENCH_CACHE"]
    assert shown["api"]["token"] == "accepted"
    assert shown["sellers"] > 0  # what the notebooks synced is what the terminal sees
