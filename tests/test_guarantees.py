"""The README's "What sellerbench guarantees": every line names tests pytest still collects.

A guarantee whose test was renamed or deleted would go on claiming a proof that no
longer runs; this fails instead.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## What sellerbench guarantees"
NODE = re.compile(r"`(tests/[\w/]+\.py::\w+(?:\[[^\]`]+\])?)`")


def _section() -> list[str]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert HEADING in lines, f"README.md has no {HEADING!r} section"
    start = lines.index(HEADING) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def _guarantees() -> list[str]:
    return [line for line in _section() if line.startswith("- ")]


def test_every_guarantee_names_a_test() -> None:
    lines = _guarantees()
    assert len(lines) >= 20, "the guarantees section lost its lines"
    unproved = [line for line in lines if not NODE.search(line)]
    assert not unproved, f"guarantees naming no test: {unproved}"


def test_every_named_test_is_collected() -> None:
    named = sorted({node for line in _guarantees() for node in NODE.findall(line)})
    files = {n.split("::")[0] for n in named}
    missing_files = sorted(f for f in files if not (ROOT / f).is_file())
    assert not missing_files, f"named test files that do not exist: {missing_files}"
    # Collect the whole files, so the answer names exactly the tests that are gone.
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         *sorted(files)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    collected = {line.strip() for line in listed.stdout.splitlines() if "::" in line}
    # A parametrized test is collected as name[id]: its bare name counts as collected.
    absent = [n for n in named if not any(c == n or c.startswith(n + "[") for c in collected)]
    assert not absent, f"named in README.md but not collected: {absent}"
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
