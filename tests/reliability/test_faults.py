"""Sync and push through a TCP proxy that resets, stalls, truncates and dribbles.

The server's own fault switches act inside HTTP (a 503, a dropped write); these faults
act on the wire, where a real network fails: a connection reset before or after the
server acted, an answer cut inside its headers or body, an answer that never comes (the
client's read timeout), an answer that arrives a few bytes at a time. The client must
retry what is safe, never take a cut page for a whole one, and converge: after the
analyst re-runs the cell enough times, the cache equals the server, and every queued
change landed exactly once.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from sellerbench.api.client import ApiClient
from sellerbench.cache import sync as sync_module
from sellerbench.changes.push import Backoff

from ..cache.syncutil import assert_cache_equals_server
from ..changes.mutation_model import Model, push_until_drained, random_action, server_live
from ..netproxy import FaultProxy
from .relutil import check_cache, converge, workbench_via

WIRE = {"reset": 0.06, "reset_after": 0.06, "truncate": 0.08, "stall": 0.01, "slow": 0.08}
# Reads are always safe to repeat: a sync meets more of everything.
READS = {"reset": 0.08, "reset_after": 0.08, "truncate": 0.14, "stall": 0.02, "slow": 0.1}
FAST = Backoff(base=0.01, cap=0.1)


def _server_writes(srv: Any, rng: random.Random, n: int) -> None:
    """Another client changes the server directly (not through the proxy)."""
    with ApiClient(srv.url, srv.tokens["analyst"]) as other:
        live = [i["id"] for i in other.sync_sellers(limit=100).items]
        for _ in range(n):
            roll, target = rng.random(), rng.choice(live)
            if roll < 0.4 and "bulk_flag" in other.features:
                other.flag_sellers_bulk(rng.sample(live, 5), rng.random() < 0.5)
            elif roll < 0.4:
                other.flag_seller(target)  # the base contract toggles
            elif roll < 0.6:
                other.update_seller(target, name=f"Wire renamed {rng.randrange(10**9)}")
            elif roll < 0.75:
                other.delete_seller(target)
                live.remove(target)
            else:
                other.create_seller(f"Wire created {rng.randrange(10**12)}")


@pytest.mark.parametrize("base_only", [False, True], ids=["rev-arrow", "base"])
def test_sync_through_a_faulty_wire_converges(
    make_server: Any, tmp_path, monkeypatch: pytest.MonkeyPatch, base_only: bool
) -> None:
    monkeypatch.setattr(sync_module, "REV_PAGE", 40)  # 1,000 rows: 25 pages a pass
    srv = make_server(n=1000 if not base_only else 500, base_only=base_only, seed=3)
    rng = random.Random(8)
    with FaultProxy(srv.url, seed=1 if base_only else 2, rates=READS) as proxy:
        wb = workbench_via(proxy.url, srv.tokens["analyst"], tmp_path / "cache.duckdb")
        try:
            converge(lambda: wb.sync(progress=False))  # the first, bulk load
            for _ in range(4):  # then incremental ones while another client writes
                _server_writes(srv, rng, 8)
                converge(lambda: wb.sync(progress=False))
            assert_cache_equals_server(wb.store, srv)
            check_cache(wb.store.path)
        finally:
            wb.close()
    assert proxy.fired >= 8, (proxy.counts, proxy.requests)
    assert {"reset", "truncate"} <= proxy.counts.keys(), proxy.counts


@pytest.mark.parametrize("base_only", [False, True], ids=["full", "base"])
def test_push_through_a_faulty_wire_lands_each_change_once(
    make_server: Any, tmp_path, base_only: bool
) -> None:
    srv = make_server(n=120, base_only=base_only, seed=5)
    token = srv.tokens["analyst"]
    rng = random.Random(30 + base_only)
    with FaultProxy(srv.url, seed=4 + base_only, rates=WIRE) as proxy:
        wb = workbench_via(proxy.url, token, tmp_path / "cache.duckdb")
        try:
            proxy.enabled = False  # the starting point is not what is tested
            wb.sync(progress=False)
            model = Model.from_workbench(wb)
            proxy.enabled = True
            freed: list[str] = []
            changes = 0
            while changes < 80:
                changes += random_action(wb, model, rng, freed)[1]
                if rng.random() < 0.15:
                    wb.push(wait=0, backoff=FAST)  # changes in flight while more queue
            push_until_drained(wb, FAST, attempts=40)
            converge(lambda: wb.sync(progress=False))
            local = wb.sellers()
        finally:
            wb.close()
    assert server_live(srv.url, token) == model.expected()
    assert dict(zip(local.normalized_name, local.flagged, strict=True)) == model.expected()
    assert proxy.fired >= 8, (proxy.counts, proxy.requests)
