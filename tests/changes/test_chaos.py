"""Acceptance: exactly once in effect against a server that drops, fails and throttles.

1,000 random analyst actions over 200 sellers, pushed every few dozen actions (so
changes are in flight, uncertain, or backed off while more queue behind them), a sync
now and then (rebase), then push until the queue drains and sync. The server's live
sellers, read with a fresh client, must equal the model: nothing lost, nothing twice.
"""

from __future__ import annotations

import random

import pytest

from sellerbench.changes.push import Backoff
from sellerbench.server.http.faults import Faults
from sellerbench.workbench import connect

from .mutation_model import Model, random_action, server_live

FAST = Backoff(base=0.01, cap=0.1)


def _misbehave(faults: Faults, **switches: float | None) -> None:
    for name, value in switches.items():
        setattr(faults, name, value)
    faults._tokens = float(faults.rate_limit or 0)  # a full bucket to start with


# PostgreSQL runs the full contract only: base-only adds no storage path, and each run
# costs two minutes of the suite's budget. A stress test: not in the quick subset.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("base_only", "storage"),
    [(False, "sqlite"), (True, "sqlite"),
     pytest.param(False, "postgresql", marks=pytest.mark.postgres)],
    ids=["full", "base-only", "full-postgresql"],
)
def test_chaos_exactly_once(make_server, tmp_path, base_only, storage, db_url):
    server = make_server(n=200, base_only=base_only, seed=11, db=db_url(storage))
    token = server.tokens["analyst"]
    wb = connect(server.url, token, tmp_path / "cache.duckdb", auto_push=False)
    wb.client.backoff, wb.client.max_backoff = 0.005, 0.05
    try:
        wb.sync(progress=False)
        model = Model.from_workbench(wb)
        assert len(model.sellers) == 200
        # Switched on only now: the first sync is not what is tested.
        _misbehave(server.faults, drop_before_rate=0.10, drop_after_rate=0.10, fail_rate=0.05)
        rng = random.Random(5 if base_only else 4)
        freed: list[str] = []
        kinds: dict[str, int] = {}
        changes = actions = pushes = 0
        next_push, next_sync = rng.randint(30, 120), 400
        while changes < 1000:
            kind, count = random_action(wb, model, rng, freed)
            kinds[kind] = kinds.get(kind, 0) + count
            changes, actions = changes + count, actions + 1
            if changes >= next_push:
                pushes += 1
                # Two pushes meet a tight rate limit: 429s with Retry-After (>= 1 s each).
                _misbehave(server.faults, rate_limit=5.0 if pushes in (2, 5) else None)
                wb.push(wait=0, backoff=FAST)
                next_push += rng.randint(30, 120)
            if changes >= next_sync:
                wb.sync(progress=False)  # pulls while changes are pending: rebase
                next_sync += 400
        _misbehave(server.faults, rate_limit=None)
        for _ in range(40):
            report = wb.push(wait=2.0, backoff=FAST)
            if report.still_pending == 0:
                break
        assert report.still_pending == 0, report
        wb.sync(progress=False)

        assert wb.failed().empty, wb.failed()[["kind", "change", "error"]].to_string()
        counts = dict(server.faults.counts)
        _misbehave(server.faults, drop_before_rate=0.0, drop_after_rate=0.0, fail_rate=0.0,
                   rate_limit=None)  # read the result without faults
        expected = model.expected()
        actual = server_live(server.url, token)
        missing = {n: f for n, f in expected.items() if n not in actual}
        extra = {n: f for n, f in actual.items() if n not in expected}
        wrong = {n: (f, actual[n]) for n, f in expected.items() if n in actual and actual[n] != f}
        assert not missing and not extra and not wrong, (missing, extra, wrong)
        # The cache agrees with the server once everything is confirmed.
        local = wb.sellers()
        assert dict(zip(local.normalized_name, local.flagged, strict=True)) == actual
        assert kinds.get("undo", 0) > 20 and kinds.get("create", 0) > 50, kinds
        assert min(counts.get(k, 0) for k in ("drop_before", "drop_after", "fail",
                                               "rate_limited")) > 0, counts
        print(f"\n{'base-only' if base_only else 'full'}: {changes} changes in {actions} "
              f"actions {kinds}; faults {counts}")
    finally:
        wb.close()
