"""``sellerbench serve`` as a process: ready line, tokens file, data kept on restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

READY = "sellerbench API ready at http://"


def run_serve(tmp_path: Path, *args: str) -> tuple[str, list[str], subprocess.Popen]:
    """Start ``sellerbench serve``; return its url and the lines before the ready line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sellerbench", "serve", "--port", "0",
         "--db", str(tmp_path / "s.sqlite3"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"serve exited: {proc.stderr.read()}")
            if line.startswith(READY):
                url = line.strip().split(" at ")[1]
                return url, lines, proc
            lines.append(line)
        raise AssertionError("serve never became ready")
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(15)


def test_serve_prints_ready_line_and_writes_tokens(tmp_path):
    url, lines, proc = run_serve(tmp_path, "--demo", "40", "--seed", "3")
    try:
        assert url.startswith("http://127.0.0.1:")
        tokens = json.loads((tmp_path / "tokens.json").read_text())
        assert set(tokens) == {"analyst", "viewer", "admin"}
        assert any(tokens["viewer"] in line for line in lines)
        page = httpx.get(
            f"{url}/sync/sellers", params={"since_rev": 0},
            headers={"Authorization": f"Bearer {tokens['viewer']}"},
        ).json()
        assert len(page["items"]) == 40
    finally:
        stop(proc)
    # a restart with --demo keeps the data and the tokens
    url, lines, proc = run_serve(tmp_path, "--demo", "500")
    try:
        assert any("keeping it" in line for line in lines)
        assert json.loads((tmp_path / "tokens.json").read_text()) == tokens
        page = httpx.get(
            f"{url}/sync/sellers", params={"since_rev": 0},
            headers={"Authorization": f"Bearer {tokens['analyst']}"},
        ).json()
        assert len(page["items"]) == 40
    finally:
        stop(proc)


def test_serve_help_describes_every_switch():
    out = subprocess.run(
        [sys.executable, "-m", "sellerbench", "serve", "--help"],
        capture_output=True, text=True, check=True,
    ).stdout
    for flag in ("--host", "--port", "--db", "--demo", "--seed", "--tokens-file",
                 "--base-only", "--run-speed", "--rate-limit", "--fail-rate",
                 "--drop-before-rate", "--drop-after-rate", "--fault-seed", "--workers"):
        assert flag in out


def test_serve_refuses_workers_on_sqlite(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "sellerbench", "serve", "--port", "0", "--workers", "2",
         "--db", str(tmp_path / "s.sqlite3")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "--workers needs a postgresql://" in done.stderr
