"""The test loop: tests/schedule.py's units and their order, with three stand-in workers
(what xdist's controller does with them, without starting any); and the quick subset
deselects what the README says it does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.schedule import COSTS, SPREAD, TOGETHER, CostFirstScheduling

ROOT = Path(__file__).resolve().parents[1]
CHAOS = [f"tests/changes/test_chaos.py::test_chaos_exactly_once[{p}]"
         for p in ("full", "base-only", "full-postgresql")]
DEMO = ["tests/test_demo.py::test_the_demo_prints_the_lab_url_and_the_terminal_lines",
        "tests/test_notebooks.py::test_every_notebook_runs_twice_in_a_row_without_error"]
SHORT = [f"tests/cache/test_short.py::test_{i}" for i in range(4)]


class Worker:
    """What the scheduler calls on a worker: the tests it is sent, in order."""

    def __init__(self, name: str) -> None:
        self.name, self.sent, self.shutting_down = name, [], False
        self.gateway = SimpleNamespace(id=name)

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def _scheduler(collection: list[str]) -> tuple[CostFirstScheduling, list[Worker]]:
    config: Any = SimpleNamespace(getvalue=lambda name: ["3*popen"] if name == "tx" else None,
                                  option=SimpleNamespace(loadscopereorder=True))
    sched = CostFirstScheduling(config)
    workers = [Worker(f"gw{i}") for i in range(3)]
    for worker in workers:
        sched.add_node(worker)  # type: ignore[arg-type]
        sched.add_node_collection(worker, list(collection))  # type: ignore[arg-type]
    sched.schedule()
    return sched, workers


def test_the_chaos_runs_go_to_three_workers_and_the_demo_modules_to_one() -> None:
    collection = SHORT + DEMO + CHAOS  # the long ones collected last
    sched, workers = _scheduler(collection)
    first = {w.name: collection[w.sent[0]] for w in workers}
    # The three costliest units first, one to each worker (the demo's unit starts with
    # its first test), though collected after the short module.
    ranked = sorted([*CHAOS, "the demo and its notebook runs"], key=lambda u: -COSTS[u])
    expected = {DEMO[0] if unit in TOGETHER.values() else unit for unit in ranked[:3]}
    assert set(first.values()) == expected, first
    # The demo's two modules travel together: whoever got one got both.
    holders = {w.name for w in workers for i in w.sent if collection[i] in DEMO}
    assert len(holders) == 1
    # A worker holding a single long test takes one more unit (it cannot start its test
    # without a next one), never two.
    for worker in workers:
        units = {sched._split_scope(collection[i]) for i in worker.sent}
        assert len(units) <= 2, (worker.name, units)


def test_every_named_unit_is_a_test_here() -> None:
    for module in [*SPREAD, *TOGETHER]:
        assert (ROOT / module).is_file(), module
    for unit in COSTS:
        if unit in TOGETHER.values():
            continue
        module, _, test = unit.partition("::")
        assert (ROOT / module).is_file(), unit
        if test:
            assert module in SPREAD, unit  # a test's own unit only where tests are spread
            name = test.split("[", 1)[0]
            assert re.search(rf"^def {name}\(", (ROOT / module).read_text(), re.M), unit


# What the README says the quick subset leaves out, and where those tests live.
LEFT_OUT = {
    "reliability": ("tests/reliability/",),
    "stress": ("tests/changes/test_chaos.py", "tests/changes/test_kill.py",
               "tests/changes/test_lossy_push.py"),
    "wheel": ("tests/test_wheel.py",),
    "demo": ("tests/test_demo.py",),
    "notebook": ("tests/test_notebooks.py",),
    "browser": ("tests/browser/", "tests/reports/test_report_browser.py"),
}


def test_the_quick_subset_is_what_the_readme_says() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    said = re.search(r'`bash scripts/test.sh -m "not slow and not browser"` is the quick '
                     r"subset \(no ([^)]*) tests\)", readme)
    assert said, "the README no longer names the quick subset"
    assert set(re.split(r", | or ", said.group(1))) == set(LEFT_OUT), said.group(1)

    # One collection of every test with its marks (what -m "not slow and not browser" reads).
    done = subprocess.run([sys.executable, "-c", COLLECT], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    every = {test: set(marks) for line in done.stdout.splitlines()
             if line.startswith("MARKS ") for test, *marks in [line.split()[1:]]}
    quick = [t for t, marks in every.items() if not {"slow", "browser"} & marks]
    for kind, places in LEFT_OUT.items():
        assert [t for t in every if t.startswith(places)], kind  # such tests exist
        assert not [t for t in quick if t.startswith(places)], kind
    # Nothing else is left out.
    assert sorted(set(every) - set(quick)) == sorted(
        t for t in every if t.startswith(sum(LEFT_OUT.values(), ())))


COLLECT = """
import pytest

class Marks:
    def pytest_collection_finish(self, session):
        for item in session.items:
            marks = sorted({mark.name for mark in item.iter_markers()})
            print("MARKS", item.nodeid.replace(" ", "_"), *marks)

raise SystemExit(pytest.main(["-p", "no:cacheprovider", "-q", "--collect-only", "tests"],
                             plugins=[Marks()]))
"""
