"""The reference server as a subprocess, for benchmarks that measure a client against it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_server(
    n: int, folder: Path, *, base_only: bool = False
) -> tuple[subprocess.Popen, str, dict[str, str]]:
    """Start `sellerbench serve --demo N` on a free port; return the process, url, tokens.
    ``base_only``: with every extension switched off (the origin's base contract)."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = folder / "tokens.json"
    server = subprocess.Popen(
        [sys.executable, "-m", "sellerbench", "serve", "--port", "0", "--demo", str(n),
         "--db", str(folder / "server.sqlite3"), "--tokens-file", str(tokens),
         *(["--base-only"] if base_only else [])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )
    for line in server.stdout:
        ready = re.search(r"ready at (http://\S+)", line)
        if ready:  # keep reading its output, so a full pipe never blocks it
            threading.Thread(target=server.stdout.read, daemon=True).start()
            return server, ready.group(1), json.loads(tokens.read_text())
    server.wait(timeout=10)
    raise RuntimeError(f"the server did not start (exit {server.returncode})")
