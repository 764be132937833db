"""JupyterLab on loopback and Debian's Chromium, driven by Playwright (no pytest here).

Used by the fixtures in ``conftest.py`` and by ``benchmarks/grid.py``:

    lab = start_lab(Path(tmp))          # jupyter lab, temp root/config, random token
    with sync_playwright() as pw:
        browser = launch_chromium(pw)   # /usr/bin/chromium, headless, never downloaded
        page = LabPage(browser.new_page(), lab)
        page.open("x.ipynb"); page.run_all(); page.run("print(1)")
    lab.stop()                          # kernels, then the server, then children, by PID

Every wait is on a condition with a bound; nothing sleeps blindly.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("SELLERBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
# Lab plugins that pop up or phone home: off, so the page only shows the notebook.
DISABLED_PLUGINS = {
    "@jupyterlab/apputils-extension:announcements": True,
    "@jupyterlab/apputils-extension:notification": False,
    "jupysql-plugin": True,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class JupyterLab:
    url: str
    token: str
    root: Path
    process: subprocess.Popen

    def lab_url(self, path: str = "") -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}&reset"

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method,
            headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {self.process.returncode}")
        try:
            return bool(self.api("GET", "/api/status"))
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self) -> None:
        import psutil

        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            children = []
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            for kernel in self.api("GET", "/api/kernels") or []:
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for child in children:  # kernels live in their own sessions: end them by PID
            with contextlib.suppress(psutil.Error):
                child.kill()


def _write_config(config: Path) -> None:
    labconfig = config / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": DISABLED_PLUGINS}))


def start_lab(base: Path, timeout: float = 90) -> JupyterLab:
    """Start ``jupyter lab`` with its root, config and runtime under ``base``."""
    root, config = base / "root", base / "config"
    root.mkdir(parents=True)
    _write_config(config)
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELLERBENCH_")}
    env.update(JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
               IPYTHONDIR=str(base / "ipython"), JUPYTER_PLATFORM_DIRS="1",
               PYTHONPATH=str(REPO))
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1",
        "--port", str(port), f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.port_retries=0", "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={base / 'settings'}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.news_url=", "--ServerApp.disable_check_xsrf=True",
        "--ServerApp.terminals_enabled=False",
    ]
    if os.geteuid() == 0:  # CI containers run as root
        command.append("--allow-root")
    with (base / "jupyterlab.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    lab = JupyterLab(f"http://127.0.0.1:{port}", token, root, process)
    try:
        wait_for(lab.ready, timeout, "jupyter lab to answer /api/status", interval=0.25)
    except BaseException:
        lab.stop()
        raise
    return lab


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless; fails clearly when it is not installed."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(
            f"no Chromium at {CHROMIUM}: apt-get install chromium (scripts/test.sh does)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                      headless=True)


def new_page(browser: Any, width: int = 1400, height: int = 900) -> Any:
    """A page in a fresh context. Uncaught JavaScript errors collect in ``page.js_errors``,
    console errors in ``page.console_errors`` (Lumino catches errors thrown in signal
    handlers, such as ipydatagrid's click handler, and only logs them there)."""
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(30_000)
    page.js_errors = []
    page.console_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    page.on("console", lambda message: page.console_errors.append(message.text)
            if message.type == "error" else None)
    return page


class LabPage:
    """A JupyterLab page showing one notebook, driven the way a person would, plus
    a side door into its kernel for checks (``run``)."""

    def __init__(self, page: Any, lab: JupyterLab) -> None:
        self.page = page
        self.lab = lab

    def open(self, name: str, timeout: float = 60) -> None:
        self.page.goto(self.lab.lab_url(name), timeout=timeout * 1000)
        self.page.wait_for_function(
            """() => {
                const app = window.jupyterapp;
                const panel = app && app.shell.currentWidget;
                const kernel = panel && panel.sessionContext
                    && panel.sessionContext.session && panel.sessionContext.session.kernel;
                return kernel && kernel.connectionStatus === 'connected'
                    && kernel.status === 'idle';
            }""",
            timeout=timeout * 1000, polling=200)

    def command(self, command: str) -> None:
        self.page.evaluate("c => window.jupyterapp.commands.execute(c)", command)

    def command_args(self, command: str, args: dict[str, Any]) -> None:
        """Execute a JupyterLab command with arguments (``apputils:change-theme``)."""
        self.page.evaluate("([c, a]) => window.jupyterapp.commands.execute(c, a)",
                           [command, args])

    def run_all(self) -> None:
        self.command("notebook:run-all-cells")

    def run(self, code: str) -> str:
        """Execute ``code`` in the notebook's kernel; return its printed text.

        Raises AssertionError with the kernel's error when the code fails.
        """
        result = self.page.evaluate(
            """async (code) => {
                const panel = window.jupyterapp.shell.currentWidget;
                const kernel = panel.sessionContext.session.kernel;
                const future = kernel.requestExecute({code, store_history: false});
                let out = '', error = null;
                future.onIOPub = (msg) => {
                    const t = msg.header.msg_type;
                    if (t === 'stream') out += msg.content.text;
                    else if (t === 'execute_result') out += msg.content.data['text/plain'];
                    else if (t === 'error') error = msg.content.ename + ': ' + msg.content.evalue;
                };
                await future.done;
                return {out, error};
            }""",
            code)
        if result["error"]:
            raise AssertionError(f"kernel error running {code!r}: {result['error']}")
        return result["out"]

    def kernel_json(self, expression: str) -> Any:
        return json.loads(self.run(f"import json as _j; print(_j.dumps({expression}))"))

    def wait_kernel(self, expression: str, expected: Any, timeout: float = 30) -> Any:
        """Poll a kernel expression (JSON) until it equals ``expected``."""
        seen: list[Any] = []

        def check() -> bool:
            seen.append(self.kernel_json(expression))
            return seen[-1] == expected

        try:
            wait_for(check, timeout, f"{expression} == {expected!r}", interval=0.2)
        except TimeoutError as exc:
            raise AssertionError(f"{expression} stayed {seen[-1]!r}, wanted {expected!r}") from exc
        return seen[-1]


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A minimal nbformat-4 notebook of code cells."""
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}",
                   "metadata": {}, "outputs": [], "source": source}
                  for i, source in enumerate(cells)],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1))
    return path


def copy_into(lab: JupyterLab, source: Path) -> Path:
    target = lab.root / source.name
    shutil.copy(source, target)
    return target
