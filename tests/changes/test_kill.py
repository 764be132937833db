"""Acceptance: kill -9 at random points during a push, then restart and push again.

Each trial queues random changes, lets a separate process push them, kills it with
SIGKILL after a random delay (before, during or after its requests and commits), then
opens the cache again, pushes until the queue drains and syncs. After every trial the
server must hold exactly what the analyst meant: nothing lost, nothing twice.
"""

from __future__ import annotations

import random

import pytest

from sellerbench.workbench import connect

from ..reliability.relutil import child, kill_after
from .mutation_model import Model, assert_recovers, random_action

TRIALS = 10  # per contract level: 20 in all
CHILD = """
import sys
from sellerbench.workbench import connect
wb = connect(sys.argv[1], None, sys.argv[2], auto_push=False)
wb.client.backoff = 0.005
print("ready", flush=True)
wb.push(coalesce=sys.argv[3] == "1")
print("done", flush=True)
"""


def _push_and_kill(url: str, token: str, cache, coalesce: bool, delay: float) -> str:
    proc = child(CHILD, url, str(cache), "1" if coalesce else "0", token=token)
    # "finished" only if the push ran to its end: a kill after it counts for nothing.
    return "finished" if "done" in kill_after(proc, "ready", delay)[1] else "killed"


@pytest.mark.slow
@pytest.mark.parametrize("base_only", [False, True], ids=["full", "base-only"])
def test_kill_minus_nine_during_push(make_server, tmp_path, base_only):
    server = make_server(n=120, base_only=base_only, seed=13)
    token = server.tokens["analyst"]
    cache = tmp_path / "cache.duckdb"
    wb = connect(server.url, token, cache, auto_push=False)
    wb.sync(progress=False)
    model = Model.from_workbench(wb)
    wb.close()
    rng = random.Random(21 if base_only else 20)
    freed: list[str] = []
    outcomes = []
    for trial in range(TRIALS):
        wb = connect(server.url, token, cache, auto_push=False)
        changes = 0
        while changes < 30:
            changes += random_action(wb, model, rng, freed)[1]
        wb.close()
        coalesce = trial % 3 == 2
        # A push of 30 changes is done in ~0.2-0.5 s on loopback: kill within that.
        outcomes.append(_push_and_kill(server.url, token, cache, coalesce, rng.uniform(0, 0.4)))
        assert_recovers(server.url, token, cache, model, trial)
    assert "killed" in outcomes, outcomes  # at least some kills landed mid-push
    print(f"\n{'base-only' if base_only else 'full'}: {outcomes}")
