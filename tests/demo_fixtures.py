"""The demo and the notebooks run in it, once per test run, for two test modules.

``demo`` (session): ``scripts/demo.sh`` as the README gives it, as root here: the API with
500 demo sellers and JupyterLab, each on a free port, in a folder of its own; yields what
it printed and the environment it gave JupyterLab (read from the JupyterLab process).

``notebook_runs`` (session): every notebook in notebooks/, Run All twice in a row (01..06,
then 01..06 again), each kernel started in notebooks/ with exactly the demo's JupyterLab
environment (its API, analyst and admin tokens, its one absolute cache), with the live
sellers and tombstones on the demo's server read before and after each notebook, and the
``PROBES`` run after the last cell of the notebooks named there.

tests/test_demo.py (the demo and the environment) and tests/test_notebooks.py (what each
notebook shows and leaves on the server) both read these runs: the notebooks run twice
per test run, not four times. The scheduler in tests/conftest.py keeps the two modules on
one worker, so the session fixtures start once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from sellerbench.workbench import connect

from . import nbrun

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))

# Kernel-side checks, printed as one JSON line after the notebook's last cell (what they
# print is checked in tests/test_notebooks.py).
PROBES = {
    "01-quickstart.ipynb": """
import json
print(json.dumps({"mode": report.mode, "rows": len(sellers),
                  "dtypes": {c: str(t) for c, t in sellers[columns].dtypes.items()}}))
""",
    "03-ad-hoc-sql.ipynb": """
import json
print(json.dumps({"busy": len(busy), "low": int(busy["times_seen"].min()),
                  "min_seen": min_seen, "tables": sorted(tables)}))
""",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``scripts/demo.sh`` running: ``printed``, ``lab_env``, ``lab_port``, ``folder``,
    ``lab_pid``; stopped (SIGTERM: its trap stops JupyterLab and the API) at the end."""
    if not Path("/proc/self/environ").exists():
        pytest.skip("reads the JupyterLab process's environment from /proc")
    folder = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELLERBENCH_")}
    env.update(SELLERBENCH_DEMO_N="500", SELLERBENCH_PORT=str(_free_port()),
               SELLERBENCH_DEMO_DIR=str(folder / "server"),
               SELLERBENCH_HOME=str(folder / "home"))
    lab_port = _free_port()
    log = (folder / "demo.out").open("w")
    script = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "demo.sh"), "--port", str(lab_port)],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 900  # the first run of bootstrap installs
        while time.monotonic() < deadline and script.poll() is None:
            if "Ctrl-C stops" in (folder / "demo.out").read_text():
                break
            time.sleep(0.5)
        printed = (folder / "demo.out").read_text()
        assert "Ctrl-C stops" in printed, printed[-3000:]
        lab_pid = int((folder / "server" / "lab.pid").read_text())
        yield {"printed": printed, "lab_env": _environ(lab_pid), "lab_port": lab_port,
               "folder": folder, "lab_pid": lab_pid}
    finally:
        script.send_signal(signal.SIGTERM)  # its trap stops JupyterLab and the API
        try:
            script.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(script.pid, signal.SIGKILL)  # the group this test started
            script.wait()
        log.close()


def _server_view(url: str, token: str, cache: Path) -> dict[str, Any]:
    """What every notebook reads: the live sellers (id, name, flag) and the tombstones."""
    wb = connect(url, token, cache)
    try:
        wb.sync(progress=False)
        live = wb.sellers()
        tombstones = int(wb.sellers(include_deleted=True)["deleted_at"].notna().sum())
        return {"live": sorted(zip(live["id"], live["display_name"], live["flagged"],
                                   strict=True)),
                "tombstones": tombstones}
    finally:
        wb.close()


@pytest.fixture(scope="session")
def notebook_runs(demo: dict[str, Any]) -> dict[str, Any]:
    """``results``: one dict per notebook run (nbrun.run's, plus ``attempt``, ``before``,
    ``after``, ``folder`` and the ``executed`` notebook), in the order they ran;
    ``files_before``: what notebooks/ held before the first run; ``out``: the folder of
    the executed copies."""
    env = demo["lab_env"]
    url, token = env["SELLERBENCH_API_URL"], env["SELLERBENCH_TOKEN"]
    observer = demo["folder"] / "observer.duckdb"  # a reader's cache, not the kernels'
    files_before = set(FOLDER.iterdir())
    results: list[dict[str, Any]] = []
    for attempt in (1, 2):
        out = demo["folder"] / f"run{attempt}"
        out.mkdir()
        for path in NOTEBOOKS:
            before = _server_view(url, token, observer)
            result = nbrun.run(path, out, probe=PROBES.get(path.name, ""), env=env)
            result.update(attempt=attempt, before=before, folder=FOLDER,
                          after=_server_view(url, token, observer),
                          executed=nbformat.read(out / path.name, as_version=4))
            results.append(result)
    return {"results": results, "files_before": files_before}


def texts(notebook: Any) -> list[str]:
    """The plain text a person reads in the outputs (printed text and text/plain)."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                found.append(output["text"])
            elif "text/plain" in output.get("data", {}):
                found.append(output["data"]["text/plain"])
    return found

