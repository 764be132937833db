"""The mutation benchmarks run in quick mode and print their figures (no time asserts)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_push_benchmark_quick():
    out = _run("push.py")
    assert re.search(r"bulk calls: +300 flags pushed in +[\d.]+ s \(1 calls, 300 confirmed\)", out)
    assert re.search(r"one per change: +300 flags pushed in +[\d.]+ s \(300 calls", out)
    assert re.search(r"ratio \(one per change / bulk\): [\d.]+x", out)


def test_pending_view_benchmark_quick():
    out = _run("pending_view.py")
    assert "filled 100,000 sellers" in out
    for name in ("first page by name", "count", "flagged count"):
        assert re.search(rf"{name}.*: visible_sellers +[\d.]+ ms, sellers alone +[\d.]+ ms, "
                         rf"ratio [\d.]+x", out), out
