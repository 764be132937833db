"""benchmarks/team.py runs in its quick mode on both storages: no error, no lost write,
every analyst's cache equal to the server, every acknowledged change filed once under the
analyst (a user and token of its own) who made it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
def test_team_benchmark_quick(pg_cluster) -> None:  # pg_cluster: skips without PostgreSQL
    done = subprocess.run(
        [sys.executable, "benchmarks/team.py", "--quick"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    for label in ("sqlite \\(1 process\\)", "postgresql \\(2 processes\\)"):
        line = re.search(rf"^{label}: .*$", out, re.M)
        assert line, out
        assert re.search(r"[\d.]+ req/s; incremental sync p50 [\d.]+ ms p99 [\d.]+ ms", line[0])
        assert re.search(r"errors 0 \(connections retried \d+\); lost writes 0 of", line[0])
        assert "caches equal to the server 5/5" in line[0], line[0]
        authors = re.search(r"authors: (\d+) changes filed under their analyst for (\d+) "
                            r"acknowledged \(misfiled 0\)", line[0])
        assert authors and authors[1] == authors[2] and int(authors[1]) > 0, line[0]
    assert re.search(r"ratio postgresql/sqlite: throughput [\d.]+x", out), out
