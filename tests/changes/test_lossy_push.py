"""A large push through a lossy wire (issue 21): 100,000 flags from a filter, bulk calls
several in flight, every kind of network fault on the writes; the server ends exact,
each change landed once (its change counter moved once per seller), nothing pending."""

from __future__ import annotations

from typing import Any

import pytest

from sellerbench.api.client import ApiClient
from sellerbench.changes.push import Backoff
from sellerbench.workbench import connect

from ..netproxy import WRITES, FaultProxy
from ..reliability.relutil import converge, workbench_via

WIRE = {"reset": 0.15, "reset_after": 0.15, "truncate": 0.15, "stall": 0.02, "slow": 0.1}
FAST = Backoff(base=0.01, cap=0.1)
N = 100_000


def _max_rev(url: str, token: str) -> int:
    with ApiClient(url, token) as client:
        page = client.sync_sellers(since_rev=0, limit=1)
        return int(page.max_rev or 0)


@pytest.mark.slow
def test_a_100k_flag_push_through_a_lossy_wire_lands_each_change_once(
    make_server: Any, tmp_path
) -> None:
    srv = make_server(n=N + N // 5, seed=11)  # some of the demo are flagged or gone
    token = srv.tokens["analyst"]
    with FaultProxy(srv.url, seed=21, rates=WIRE, methods=WRITES) as proxy:
        wb = workbench_via(proxy.url, token, tmp_path / "cache.duckdb")
        try:
            converge(lambda: wb.sync(progress=False))
            unflagged = len(wb.sellers(flagged=False))
            assert unflagged >= N
            action = wb.flag(where="NOT flagged")
            assert len(action) == unflagged
            before = _max_rev(srv.url, token)
            # No retries inside the client: every fault reaches the push itself.
            for _ in range(40):
                if wb.push(wait=2.0, backoff=FAST, retries=0).still_pending == 0:
                    break
            assert wb.pending().empty and wb.failed().empty
        finally:
            wb.close()
    assert proxy.fired >= 3, (proxy.counts, proxy.requests)
    # Exactly once: the server's change counter moved once per seller flagged (a
    # repeated bulk call that acted twice would have moved nothing more only because
    # its sellers were flagged already: the counts below say every one is).
    assert _max_rev(srv.url, token) - before == unflagged
    fresh = connect(srv.url, token, tmp_path / "check.duckdb", auto_push=False)
    try:
        fresh.sync(progress=False)
        assert fresh.sellers(flagged=False).empty
        assert len(fresh.sellers(flagged=True)) == len(fresh.sellers())
    finally:
        fresh.close()
