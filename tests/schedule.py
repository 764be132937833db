"""How ``scripts/test.sh`` hands the tests to its pytest-xdist workers (``--dist loadscope``,
replaced by ``CostFirstScheduling`` through the ``pytest_xdist_make_scheduler`` hook in
tests/conftest.py).

xdist's own loadscope keeps each module on one worker (its module-scoped servers start
once) and hands the modules out in collection order, two at a time. With a few modules
much longer than the rest, that leaves a long module starting last and one worker
running alone at the end. This keeps the module as the unit, and changes three things:

- ``SPREAD``: modules whose tests share no module-scoped fixture, and each run for a
  minute or more, are split into one unit per test, so their tests run side by side on
  different workers (each test still starts its own server: nothing is shared).
- ``TOGETHER``: modules that share a session fixture too costly to start twice go to one
  worker as one unit (the demo and its notebook runs, tests/demo_fixtures.py).
- The units are handed out longest first (``COSTS``: seconds measured for each unit on
  this machine, see docs/figures.md "The test loop"; a unit not listed counts as short),
  and a worker gets its next unit only when it has run all but the last test it holds
  (the last one waits for the next test before it runs: xdist's protocol), not one test
  earlier: a worker on a long test does not take a unit another worker could start.

Which tests run, and how each runs, is unchanged: only where and in what order.
"""

from __future__ import annotations

from xdist.scheduler.loadscope import LoadScopeScheduling
from xdist.workermanage import WorkerController

# One unit per test: each test starts its own server (make_server), nothing module-wide.
SPREAD = {
    "tests/changes/test_chaos.py",
    "tests/changes/test_kill.py",
    "tests/test_wheel.py",  # the wheel is built once per run under a lock; one venv per test
}
# One unit for several modules: they share a session fixture.
TOGETHER = {
    "tests/test_demo.py": "the demo and its notebook runs",
    "tests/test_notebooks.py": "the demo and its notebook runs",
}
# Seconds per unit (setup, call and teardown of its tests), the larger of two whole runs
# on this machine with the load at 6-13 (2026-12-07: `pytest -n 3 --dist loadscope tests`
# before this scheduler, 1324 s; `CI=true bash .ci/run` with it, pytest 1100 s): only the
# order counts. Units not listed (under 25 s in both) follow in collection order.
CHAOS = "tests/changes/test_chaos.py::test_chaos_exactly_once"
KILL = "tests/changes/test_kill.py::test_kill_minus_nine_during_push"
WHEEL = "tests/test_wheel.py::test_serve_sync_status_export_report_from_the_wheel"
COSTS: dict[str, float] = {
    f"{CHAOS}[full]": 227,
    f"{WHEEL}[3.13]": 203,
    f"{WHEEL}[3.11]": 186,
    "tests/grid/test_patch.py": 167,
    f"{CHAOS}[base-only]": 163,
    "tests/changes/test_benchmarks.py": 155,
    "tests/reliability/test_threads.py": 134,
    f"{CHAOS}[full-postgresql]": 128,
    "the demo and its notebook runs": 110,
    "tests/reliability/test_model.py": 97,
    "tests/runs/test_watch.py": 87,
    "tests/reliability/test_crash.py": 83,
    f"{KILL}[base-only]": 80,
    f"{KILL}[full]": 79,
    "tests/grid/test_threads.py": 73,
    "tests/cache/test_cli.py": 66,
    "tests/server/test_sellers.py": 63,
    "tests/reports/test_report_bench.py": 63,
    "tests/server/test_people.py": 62,
    "tests/changes/test_push.py": 61,
    "tests/reliability/test_faults.py": 60,
    "tests/reports/test_export_report.py": 58,
    "tests/browser/test_grid_hands.py": 58,
    "tests/test_guarantees.py": 57,
    "tests/browser/test_grid_walk.py": 53,
    "tests/grid/test_gestures.py": 52,
    "tests/reliability/test_security.py": 51,
    "tests/changes/test_lossy_push.py": 49,
    "tests/test_benchmarks_sync.py": 49,
    "tests/grid/test_widget.py": 48,
    "tests/grid/test_analyst.py": 47,
    "tests/reliability/test_fuzz_pages.py": 47,
    "tests/cache/test_frames.py": 46,
    "tests/server/test_benchmark_team.py": 41,
    "tests/changes/test_sets.py": 40,
    "tests/browser/test_grid_browser.py": 40,
    "tests/reliability/test_side_by_side.py": 39,
    "tests/cache/test_sync.py": 35,
    "tests/reliability/test_fuzz_api.py": 34,
    "tests/reliability/test_cache_files.py": 33,
    "tests/browser/test_notebook7.py": 32,
    "tests/cache/test_faults.py": 30,
    "tests/server/test_serve.py": 30,
    "tests/reports/test_report_demo.py": 26,
    "tests/server/test_serve_team.py": 26,
}


class CostFirstScheduling(LoadScopeScheduling):
    """loadscope with the units of ``SPREAD``/``TOGETHER``, longest first, handed out late."""

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        if module in SPREAD:
            return nodeid
        return TOGETHER.get(module, module)

    def _assign_work_unit(self, node: WorkerController) -> None:
        # The costliest unit waiting (the first of equals: collection order otherwise).
        scope = max(self.workqueue, key=lambda unit: COSTS.get(unit, 0.0))
        self.workqueue.move_to_end(scope, last=False)
        super()._assign_work_unit(node)

    def _reschedule(self, node: WorkerController) -> None:
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
            return
        # Pending 1: the worker holds one test it cannot start without a next one.
        if self._pending_of(self.assigned_work[node]) <= 1:
            self._assign_work_unit(node)
