"""The README's demo command as a new user runs it (as root here, where the tests run as
root): it brings up the API and JupyterLab, prints the lines that point a terminal at the
same server and cache, and every notebook in notebooks/ runs top to bottom with no error
in exactly the environment the demo gave JupyterLab (read from the JupyterLab process),
leaving the widgets it displayed open (a closed one is blank after Run All), and printing
what is stored in each cell marked ``# NBVAL_CHECK_OUTPUT`` (as ``--nbval-lax`` compares
it: this is the suite's one run of the notebooks)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
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


def test_the_demo_prints_the_lab_url_and_the_terminal_lines(demo: dict[str, Any]) -> None:
    printed, env = demo["printed"], demo["lab_env"]
    url = re.search(r"JupyterLab:\s+(http://127\.0\.0\.1:\d+/lab\?token=\w+)", printed)
    assert url, printed
    answer = httpx.get(url.group(1).replace("/lab?", "/api/status?"), timeout=30)
    assert answer.status_code == 200
    for name in ("SELLERBENCH_API_URL", "SELLERBENCH_TOKEN", "SELLERBENCH_CACHE"):
        assert f"export {name}={env[name]}\n" in printed
    assert Path(env["SELLERBENCH_CACHE"]).is_absolute()
    assert env["SELLERBENCH_ADMIN_TOKEN"] != env["SELLERBENCH_TOKEN"]
    command = Path(f"/proc/{demo['lab_pid']}/cmdline").read_bytes().split(b"\0")
    assert (b"--allow-root" in command) == (os.geteuid() == 0)  # root needs it, users don't


# What a checked cell may print differently here than under a fresh ``sb.demo()`` (as
# nbval's --nbval-sanitize-with would): 06-mutations deletes, then undoes, the first seller
# by name, and the notebooks before it changed the demo server this run shares.
SANITIZE = [(re.compile(r"undid delete of '[^'\n]*'"), "undid delete of '<a seller>'")]


def _checked_outputs(path: Path) -> dict[str, str]:
    """The text of each ``# NBVAL_CHECK_OUTPUT`` cell that has outputs, by cell id."""
    texts = {}
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code" or "NBVAL_CHECK_OUTPUT" not in "".join(cell["source"]):
            continue
        parts = [o.get("text") or o.get("data", {}).get("text/plain", "")
                 for o in cell.get("outputs", [])]
        text = "".join("".join(p) if isinstance(p, list) else p for p in parts)
        for pattern, replacement in SANITIZE:
            text = pattern.sub(replacement, text)
        texts[cell["id"]] = text
    return texts


def test_every_notebook_runs_without_error_in_the_lab_environment(
    demo: dict[str, Any], tmp_path: Path
) -> None:
    before = set((ROOT / "notebooks").iterdir())
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "nbrun.py"), str(tmp_path),
         *map(str, NOTEBOOKS)],
        cwd=ROOT / "notebooks", env=demo["lab_env"], capture_output=True, text=True,
        timeout=1500,
    )
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["notebook"] for r in results] == [p.name for p in NOTEBOOKS], done.stderr[-3000:]
    for result in results:
        assert result["failure"] is None and result["errors"] == [], result
        assert result["blank_widgets"] == [], result  # Run All leaves its widgets on screen
    for path in NOTEBOOKS:  # what nbval --nbval-lax checked: stored outputs, where stored
        stored, printed = _checked_outputs(path), _checked_outputs(tmp_path / path.name)
        assert {k: printed.get(k) for k, v in stored.items() if v} == \
            {k: v for k, v in stored.items() if v}, path.name
    # Nothing landed beside the notebooks: the kernels used the demo's absolute cache.
    assert set((ROOT / "notebooks").iterdir()) - before <= {
        ROOT / "notebooks" / ".ipynb_checkpoints"}
    assert not (ROOT / "notebooks" / "data").exists()


def test_a_terminal_with_the_printed_lines_shares_the_kernels_cache(
    demo: dict[str, Any]
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
