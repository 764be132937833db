"""The report benchmark runs in quick mode: its table, and no process left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "report.py"


def test_quick_report_benchmark_prints_the_table_and_leaves_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith("20,000 sellers, `sellerbench report`") for line in lines)
    for name in ("ours, first", "ours, second", "before issue 23"):
        row = next(line for line in lines if line.startswith(name))
        assert row.split()[-1] == "0"  # no process left behind
    assert any(line.startswith(("PASS report", "MISS report")) for line in lines)
    assert "PASS no process left behind by ours: none" in lines
