"""The package as a new user gets it: a wheel installed into a fresh virtual environment
outside the repository, on Python 3.11 and 3.13, running ``serve --demo``, ``sync``,
``status``, ``export`` and ``report`` from a folder of its own.

The wheel is built once per run (under a lock in the run's temporary folder, so also once
when pytest-xdist workers share this module) from a copy of the files the package is made
of, so nothing in the checkout can leak in. pip's download cache is the user's usual one,
so a second run installs without the network.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sellerbench.reports import report as reports

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _interpreter(version: str) -> list[str] | None:
    """A command that runs this Python version, or None where it is not installed."""
    if sys.version_info[:2] == tuple(int(p) for p in version.split(".")):
        return [getattr(sys, "_base_executable", sys.executable)]
    candidate = shutil.which(f"python{version}")
    if candidate is None:
        return None
    for env in ({}, {"PYENV_VERSION": _pyenv_version(version)}):
        done = subprocess.run([candidate, "-c", "import sys; print(sys.version)"],
                              capture_output=True, text=True, env={**os.environ, **env})
        if done.returncode == 0 and done.stdout.startswith(version):
            return ["env", *(f"{k}={v}" for k, v in env.items()), candidate]
    return None


def _pyenv_version(version: str) -> str:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(p.name for p in root.glob(f"{version}.*")) if root.is_dir() else []
    return found[-1] if found else f"{version}.0"


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The wheel, built once per run: the first worker to get here builds it under a lock
    in the run's shared temporary folder, the others (pytest-xdist) install that one."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if worker_id != "master" else base  # the run's, across workers
    dist = shared / "sellerbench-wheel"
    dist.mkdir(exist_ok=True)
    with (shared / "sellerbench-wheel.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        built = list(dist.glob("sellerbench-*.whl"))
        if not built:
            source = tmp_path_factory.mktemp("wheel-source")
            for name in ("pyproject.toml", "README.md"):
                shutil.copy2(ROOT / name, source / name)
            shutil.copytree(ROOT / "sellerbench", source / "sellerbench",
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                            str(dist), str(source)], check=True, timeout=600, capture_output=True)
            built = list(dist.glob("sellerbench-*.whl"))
    assert len(built) == 1
    return built[0]


def test_the_wheel_carries_what_runs_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "sellerbench/reports/report.ipynb" in names and "sellerbench/py.typed" in names
    assert not [n for n in names if n.startswith(("notebooks/", "tests/", "data/"))]
    assert not [n for n in names if "pgcluster" in n]  # test support stays in tests/
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode().split("\n\n", 1)[0]  # no README
    assert "Requires-Python: >=3.11\n" in text
    requires = [line for line in text.splitlines() if line.startswith("Requires-Dist:")]
    assert requires and not [line for line in requires if "jupysql" in line.lower()]
    client = [line for line in text.splitlines()
              if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not [line for line in client if re.search(r"fastapi|uvicorn|papermill|jupyterlab|"
                                                     r"matplotlib|nbconvert", line)]


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for p in folder.rglob("*") if p.is_file()}


class Venv:
    def __init__(self, folder: Path, work: Path, home: Path) -> None:
        self.bin = folder / "bin"
        self.work = work
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SELLERBENCH_", "VIRTUAL_ENV", "PYTHON"))}
        self.env.update(SELLERBENCH_HOME=str(home), PATH=f"{self.bin}:{os.environ['PATH']}")
        self.env.pop("PYENV_VERSION", None)

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / "sellerbench"), *args], cwd=self.work,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def site_packages(self) -> Path:
        done = subprocess.run([str(self.bin / "python"), "-c",
                               "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True, env=self.env)
        return Path(done.stdout.strip())


@pytest.fixture(params=["3.11", "3.13"])
def venv(request: pytest.FixtureRequest, wheel: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    python = _interpreter(request.param)
    if python is None:
        pytest.skip(f"no Python {request.param} here")
    base = tmp_path_factory.mktemp(f"outside-{request.param}")  # not under the checkout
    assert not base.resolve().is_relative_to(ROOT)
    folder = base / "venv"
    subprocess.run([*python, "-m", "venv", str(folder)], check=True, timeout=300)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip>=24"], check=True, timeout=600,
                   capture_output=True)
    installed = subprocess.run(
        [*pip, "-c", str(ROOT / "constraints.txt"), f"{wheel}[server,report]"],
        timeout=1200, capture_output=True, text=True,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    work, home = base / "work", base / "home"
    work.mkdir()
    yield Venv(folder, work, home)


@pytest.mark.timeout(1800)
def test_serve_sync_status_export_report_from_the_wheel(venv: Venv) -> None:
    site = venv.site_packages()
    assert (site / "sellerbench" / "reports" / "report.ipynb").is_file()
    before = _files(site)
    serve = subprocess.Popen(
        [str(venv.bin / "sellerbench"), "serve", "--demo", "300", "--port", "0"],
        cwd=venv.work, env=venv.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        url = None
        deadline = time.monotonic() + 180
        assert serve.stdout is not None
        while url is None and time.monotonic() < deadline:
            line = serve.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"API ready at (http://127\.0\.0\.1:\d+)", line)
            url = match.group(1) if match else None
        assert url, "".join(lines)
        token = next(line.split(": ", 1)[1].strip() for line in lines
                     if line.startswith("analyst token:"))
        api = ["--api-url", url, "--token", token]

        synced = venv.run("sync", "--quiet", *api)
        assert synced.returncode == 0, synced.stderr
        assert "synced (rev feed)" in synced.stdout
        cache = Path(venv.env["SELLERBENCH_HOME"]) / "sellerbench.duckdb"
        assert cache.is_file()  # the documented default: the data folder

        status = venv.run("status", *api)
        assert status.returncode == 0, status.stderr
        shown = json.loads(status.stdout)
        assert shown["api"]["token"] == "accepted" and shown["cache"] == str(cache)
        assert shown["sellers"] > 0

        exported = venv.run("export", "flagged.csv", "--flagged", "--quiet")
        assert exported.returncode == 0, exported.stderr
        assert (venv.work / "flagged.csv").stat().st_size > 0

        reported = venv.run("report", "--output", "report", "--quiet", *api, timeout=600)
        assert reported.returncode == 0, reported.stderr
        html = (venv.work / "report" / "report.html").read_text(encoding="utf-8")
        assert reports.external_references(html) == []
        assert not re.search(r"(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", html)
        assert "<h2>Collection runs</h2>" in html and url not in html  # no API address
        assert token not in html
        again = venv.run("report", "--output", "report", "--quiet", *api)
        assert again.returncode == 1 and "--overwrite" in again.stderr
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
    assert _files(site) == before, "something was written into site-packages"
    assert not list(site.glob("notebooks")) and not list(site.glob("data"))
