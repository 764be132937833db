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
    # The base contract: one toggle per seller, and the rate that limits it.
    assert re.search(r"base-only server: +300 flags pushed in +[\d.]+ s \(300 calls, "
                     r"300 confirmed; one toggle per seller\)", out), out
    assert re.search(r"base-only limit: [\d,]+ toggles/s", out), out


def test_actions_benchmark_quick():
    out = _run("actions.py")
    for label in ("flag 20,000 from a filter", "undo \\(never sent\\)",
                  "peer: flag 20,000 by ids \\(a list\\)", "push [\\d,]+ flags \\(4 in flight\\)"):
        assert re.search(rf"{label} +[\d.]+ s \(CPU +[\d.]+ s\) +RSS growth +-?\d+ MB +"
                         rf"repr \d+ chars", out), (label, out)
    assert re.search(r"server flagged after the push: ([\d,]+) of \1 live", out), out


def test_pending_view_benchmark_quick():
    out = _run("pending_view.py")
    assert "filled 100,000 sellers" in out
    for name in ("first page by name", "count", "flagged count"):
        assert re.search(rf"{name}.*: visible_sellers +[\d.]+ ms, sellers alone +[\d.]+ ms, "
                         rf"ratio [\d.]+x", out), out
