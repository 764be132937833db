"""The export benchmark runs in quick mode and prints its table (figures, not asserts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "export.py"


def test_quick_benchmark_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "20,000 rows, cache -> file, best of runs (seconds)" in lines
    for fmt in ("csv", "ndjson", "parquet"):
        row = next(line for line in lines if line.startswith(f"{fmt} "))
        assert len(row.split()) == 6  # format, three timings, two ratios
    assert sum(line.strip().startswith(("PASS", "MISS")) for line in lines) == 4
