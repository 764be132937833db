"""The grid benchmark runs in quick mode and prints its table (figures, not asserts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "grid.py"


def test_quick_benchmark_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "kernel side, 2,000 cached sellers" in out
    for name in ("ours", "StreamingDataGrid(df)", "DataGrid(df)"):
        assert name in out
    assert "page@mid ratio" in out
    assert "profiles ratio (plain SQL on the cache / ours)" in out and "profiles s" in out
