"""The grid's large reads beside the analyst's own calls (issue 21): one thread changes
the grid's search and sort through its Viewport, another runs wb.sql group-bys, a sort,
string_agg, a self-join, wb.sellers() and wb.export(parquet); a fixed number of rounds.
No call fails and every answer is what the same call answers alone.

The run is ``benchmarks/side_by_side.py`` (its quick size here; 1,000,000 sellers there).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "side_by_side.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("side_by_side", SCRIPT)
    assert spec is not None and spec.loader is not None
    if "side_by_side" not in sys.modules:
        module = importlib.util.module_from_spec(spec)
        sys.modules["side_by_side"] = module  # its dataclasses look themselves up there
        spec.loader.exec_module(module)
    return sys.modules["side_by_side"]


def test_grid_reads_beside_analyst_calls_all_answer_as_alone(tmp_path: Path) -> None:
    bench = _bench()
    result = bench.run(20_000, 3, tmp_path)
    grid, analyst = result["grid"], result["analyst"]
    assert grid.calls == 3 * len(bench.GRID_STEPS)
    assert analyst.calls == 3 * (len(bench.QUERIES) + 2)
    assert grid.failures == [] and analyst.failures == []
    assert grid.differed == [] and analyst.differed == []


def test_the_run_sees_a_grid_that_starves_the_analyst(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check itself can fail: a grid read that lowers the open file's memory limit
    while it reads (what the lean cap did) makes the analyst's calls fail here."""
    import sellerbench.grid.viewport as viewport

    bench = _bench()
    plain = viewport.read_rows

    def starving(con, packed, text):  # type: ignore[no-untyped-def]
        if threading.current_thread() is threading.main_thread():  # the reads alone
            return plain(con, packed, text)
        con.cursor().execute("SET memory_limit = '4MB'")
        try:
            return plain(con, packed, text)
        finally:
            con.cursor().execute("RESET memory_limit")

    monkeypatch.setattr(viewport, "read_rows", starving)
    result = bench.run(20_000, 3, tmp_path)
    assert result["analyst"].failures, result["grid"].failures


def test_quick_benchmark_prints_its_bar() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "side by side at 20,000 sellers" in done.stdout
    assert "bar: no call fails, every answer as alone: ok" in done.stdout
