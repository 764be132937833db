"""docs/guarantees.md, linked from the README: every line names tests pytest still collects.

A guarantee whose test was renamed or deleted would go on claiming a proof that no
longer runs; this fails instead.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "guarantees.md"
NODE = re.compile(r"`(tests/[\w/]+\.py::\w+(?:\[[^\]`]+\])?)`")


def _guarantees() -> list[str]:
    """The page's list items: each is one guarantee."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.startswith("- ")]


def test_the_readme_links_the_guarantees_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/guarantees.md)" in readme, "README.md no longer links docs/guarantees.md"


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
    assert not absent, f"named in docs/guarantees.md but not collected: {absent}"
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
