"""benchmarks/sync.py runs in its quick mode and prints its figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sync_benchmark_quick() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/sync.py", "--quick"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for label in ("download only, JSON pages (floor)", "download only, Arrow pages (floor)",
                  "sellerbench sync, Arrow pages", "sellerbench sync, JSON pages"):
        assert re.search(re.escape(label) + r"\s+[\d.]+ s\s+[\d,]+ rows/s\s+\d+ MB peak RSS"
                         r"\s+[\d.]+ s client CPU", out), out
    # Every round of changes is counted exactly (one distinct count), every idle sync
    # finds nothing.
    assert re.search(r"incremental, 1,000 changes:\s+[\d.]+ s\s+\(median of 3 rounds, "
                     r"[\d.]+-[\d.]+ s; added/updated/deleted \[\[100, 700, 200\]\]\)", out), out
    assert re.search(r"then again, nothing new:\s+[\d.]+ s\s+"
                     r"\(median of 5, [\d.]+-[\d.]+ s; \[\[0, 0, 0\]\]\)", out), out
    assert re.search(r"sellerbench / floor, Arrow pages:\s+[\d.]+x", out), out
    assert "dlt rest_api -> duckdb" in out
