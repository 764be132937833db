"""`sellerbench sync` and `sellerbench status`, run as a user would, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SELLERBENCH_")}
    return subprocess.run(
        [sys.executable, "-m", "sellerbench", *args], capture_output=True, text=True,
        cwd=ROOT, env={**clean, **(env or {})}, timeout=120,
    )


def test_sync_then_status(server: Any, tmp_path: Path) -> None:
    token = server.tokens["analyst"]
    cache = str(tmp_path / "cli.duckdb")
    options = ["--api-url", server.url, "--token", token, "--cache", cache]
    synced = _run("sync", *options)
    assert synced.returncode == 0, synced.stderr
    assert "synced (rev feed)" in synced.stdout and "sellers added" in synced.stdout
    assert "sync sellers" in synced.stderr  # the progress bar, in text
    again = _run("sync", "--quiet", *options)
    assert "0 sellers added, 0 updated, 0 deleted" in again.stdout and again.stderr == ""
    status = _run("status", *options)
    assert status.returncode == 0
    shown = json.loads(status.stdout)
    assert shown["sellers"] + shown["deleted"] == 300 and shown["mode"] == "rev"
    assert token not in synced.stdout + synced.stderr + status.stdout + status.stderr


def test_settings_come_from_the_environment(base_server: Any, tmp_path: Path) -> None:
    env = {"SELLERBENCH_API_URL": base_server.url,
           "SELLERBENCH_TOKEN": base_server.tokens["viewer"],
           "SELLERBENCH_CACHE": str(tmp_path / "env.duckdb")}
    synced = _run("sync", "--quiet", env=env)
    assert synced.returncode == 0, synced.stderr
    assert "synced (base feed)" in synced.stdout
    offline = {"SELLERBENCH_CACHE": env["SELLERBENCH_CACHE"]}
    status = json.loads(_run("status", env=offline).stdout)  # no API: what the cache knows
    assert status["mode"] == "base" and status["server"] == base_server.url


def test_errors_are_one_clear_line(server: Any, tmp_path: Path) -> None:
    cache = str(tmp_path / "bad.duckdb")
    wrong = _run("sync", "--quiet", "--api-url", server.url, "--token", "nope", "--cache", cache)
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert wrong.stderr.startswith("sellerbench: 401") and "SELLERBENCH_TOKEN" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    offline = _run("sync", "--cache", cache)  # a missing setting: a misuse, exit 2
    assert offline.returncode == 2 and "sync needs an API" in offline.stderr


def test_sql_reads_and_refuses_what_writes(server: Any, tmp_path: Path) -> None:
    """`sellerbench sql` prints CSV of what reads and refuses what writes, in one line
    saying what to use instead, with the cache left as it was."""
    cache = str(tmp_path / "sql.duckdb")
    options = ["--api-url", server.url, "--token", server.tokens["analyst"], "--cache", cache]
    assert _run("sync", "--quiet", *options).returncode == 0
    read = _run("sql", "SELECT count(*) AS n FROM sellers", "--cache", cache)
    assert read.returncode == 0, read.stderr
    assert read.stdout.splitlines() == ["n", "300"]
    for statement, instead in (("DELETE FROM sellers", "wb.flag"),
                               ("PRAGMA threads=1", "SELLERBENCH_MEMORY_LIMIT"),
                               ("CALL checkpoint()", "SELECT * FROM")):
        refused = _run("sql", statement, "--cache", cache)
        assert refused.returncode == 1 and refused.stdout == ""
        assert refused.stderr.startswith("sellerbench: SQL over the cache is read-only")
        assert instead in refused.stderr and "Traceback" not in refused.stderr
    assert _run("sql", "SELECT count(*) AS n FROM sellers", "--cache", cache).stdout == read.stdout
