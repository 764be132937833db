"""A page and its checkpoint commit together, every time, not only when a kill lands well.

The kill tests (tests/cache/test_faults.py, test_crash.py) stop a sync at random moments,
so a gap between a page's commit and its checkpoint's is caught only when a kill falls
inside it. Here the third page's write fails at a chosen point, in process, on every
run: right after its rows are written, or right after its checkpoint is. Either way
the cache must hold exactly the two pages before it, nothing past its checkpoint, and
the next sync must bring exactly what is missing: no row lost, none twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sellerbench.cache import sync as sync_module
from sellerbench.workbench import connect

from ..cache.syncutil import assert_cache_equals_server, cache_sellers
from .relutil import check_cache


class Died(Exception):
    """The process stopped here (as a kill or a full disk would stop it)."""


@pytest.mark.parametrize("point", ["_apply", "_save_state"], ids=["after-rows", "after-state"])
@pytest.mark.parametrize("base_only", [False, True], ids=["rev", "base"])
def test_a_sync_dying_inside_a_page_write_resumes_without_a_gap(
    make_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    base_only: bool, point: str,
) -> None:
    monkeypatch.setattr(sync_module, "REV_PAGE", 100)  # base pages are 100 rows already
    srv = make_server(n=600, base_only=base_only, seed=23)
    wb = connect(srv.url, srv.tokens["analyst"], tmp_path / "cache.duckdb", auto_push=False)
    real = getattr(sync_module, point)
    calls: list[int] = []

    def dies_on_the_third_page(*args: Any, **kw: Any) -> Any:
        result = real(*args, **kw)
        calls.append(1)
        if len(calls) == 3:
            raise Died(point)
        return result

    monkeypatch.setattr(sync_module, point, dies_on_the_third_page)
    try:
        with pytest.raises(Died):
            wb.sync(progress=False)
        monkeypatch.setattr(sync_module, point, real)
        check_cache(wb.store.path)  # rev mode: no row past the checkpoint
        assert len(cache_sellers(wb.store)) == 200, "exactly the pages committed before"
        report = wb.sync(progress=False)
        assert report.added + report.deleted == 400  # resumed: only what was missing
        assert_cache_equals_server(wb.store, srv)
    finally:
        wb.close()
