"""benchmarks/server_demo.py runs in its quick mode and prints its figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_server_demo_benchmark_quick() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/server_demo.py", "--quick"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"demo data: 20,000 sellers in [\d.]+ s \([\d,]+ rows/s\)", out), out
    assert re.search(r"live sellers seen once \(expected [\d,]+\)", out), out
    assert re.search(r"ratio peer/demo [\d.]+x", out), out
