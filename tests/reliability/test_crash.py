"""kill -9 at random moments, where the other kill tests do not reach.

tests/cache kills a first sync right after a page arrived, and tests/changes kills
pushes. These kill at random times (inside DuckDB's writes, commits and CHECKPOINTs):

- during a first bulk load, again and again, each run resuming the last;
- during a sync that first pushes queued changes and then pulls new rows under them
  (the rebase);
- inside one analyst action's transaction (thousands of queue rows at once).

After every kill the file opens with plain DuckDB, holds no row twice and no row past
its checkpoint, loses no queued change and holds no half action; then the work
converges to exactly the server's state.
"""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sellerbench.api.client import ApiClient
from sellerbench.cache.store import Store
from sellerbench.workbench import connect

from ..cache.syncutil import assert_cache_equals_server
from ..changes.mutation_model import Model, State, assert_recovers, random_action, seed_sellers
from .relutil import check_cache, child, kill_after

SYNC_CHILD = textwrap.dedent(
    """
    import sys
    from sellerbench.cache import sync
    from sellerbench.workbench import connect

    sync.REV_PAGE = int(sys.argv[3])
    sync.CHECKPOINT_ROWS = int(sys.argv[4])  # CHECKPOINTs often: kills land in them too
    wb = connect(sys.argv[1], None, sys.argv[2], auto_push=False)
    wb.client.backoff = 0.005
    print("ready", flush=True)
    wb.sync(progress=False)
    print("done", flush=True)
    """
)


def _revs(srv: Any) -> dict[str, int]:
    """id -> rev of every seller on the server (rev feed)."""
    out: dict[str, int] = {}
    with ApiClient(srv.url, srv.tokens["analyst"]) as api:
        since = 0
        for _ in range(1000):
            page = api.sync_sellers(since_rev=since, limit=10_000)
            out.update((i["id"], i["rev"]) for i in page.items)
            if not page.has_more:
                return out
            since = max(i["rev"] for i in page.items)
    raise AssertionError("the rev feed did not end")


def _cached_ids(path: Path) -> set[str]:
    with Store(path).connect() as con:
        return {r[0] for r in con.execute("SELECT id FROM sellers").fetchall()}


@pytest.mark.parametrize("base_only", [False, True], ids=["rev", "base"])
def test_kill_during_the_first_bulk_load_again_and_again(
    make_server: Any, tmp_path: Path, base_only: bool
) -> None:
    srv = make_server(n=3000 if not base_only else 6000, base_only=base_only, seed=17)
    cache = tmp_path / "cache.duckdb"
    revs = _revs(srv) if not base_only else {}
    rng = random.Random(40 + base_only)
    outcomes = []
    for _ in range(4):
        proc = child(SYNC_CHILD, srv.url, str(cache), "400", "800", token=srv.tokens["analyst"])
        # Either load takes well under a second on loopback (base: 6,000 rows in pages
        # of 100, ~0.9 s; rev: 3,000 in pages of 400, ~0.3 s), and each trial resumes
        # where the last was killed: kill early.
        delay = rng.uniform(0.02, 0.5 if base_only else 0.3)
        outcomes.append(kill_after(proc, "ready", delay)[0])
        if not cache.exists():
            continue  # killed before the file was made
        facts = check_cache(cache)
        held = _cached_ids(cache)
        if not base_only and facts["feeds"]:
            # Exactly the server's rows up to the checkpoint: pages and checkpoints
            # were committed together.
            since = dict((f[0], f[1]) for f in facts["feeds"]).get("sellers") or 0
            assert held == {i for i, rev in revs.items() if rev <= since}
    assert "killed" in outcomes, outcomes
    print(f"\nkills during bulk loads: {outcomes}")
    wb = connect(srv.url, srv.tokens["analyst"], cache, auto_push=False)
    try:
        wb.sync(progress=False)
        assert_cache_equals_server(wb.store, srv)
    finally:
        wb.close()


# -- a sync that pushes, then pulls under the queue ---------------------------------------


def _queue(path: Path) -> dict[str, str]:
    with Store(path).connect() as con:
        return dict(con.execute("SELECT id, state FROM mutations").fetchall())


def test_kill_during_a_sync_that_pushes_and_rebases(make_server: Any, tmp_path: Path) -> None:
    srv = make_server(n=200, seed=19)
    token = srv.tokens["analyst"]
    cache = tmp_path / "cache.duckdb"
    wb = connect(srv.url, token, cache, auto_push=False)
    wb.sync(progress=False)
    model = Model.from_workbench(wb)
    wb.close()
    rng = random.Random(41)
    freed: list[str] = []
    outcomes = []
    for trial in range(3):
        # New rows on the server for the pull to bring in under the queued changes.
        with ApiClient(srv.url, token) as other:
            made = other.create_sellers_bulk([f"Remote {trial} {i:04d}" for i in range(400)])
        wb = connect(srv.url, token, cache, auto_push=False)
        changes = 0
        while changes < 25:
            changes += random_action(wb, model, rng, freed)[1]
        wb.close()
        before = _queue(cache)
        # Pages of 10: the push and the 400 rows' pull take ~0.5 s, so kills land in
        # both (the sync is done in ~0.1 s with pages of 100 on loopback).
        proc = child(SYNC_CHILD, srv.url, str(cache), "10", "200000", token=token)
        outcomes.append(kill_after(proc, "ready", rng.uniform(0.02, 0.4))[0])

        check_cache(cache, revs=False)
        after = _queue(cache)
        lost = {(m, after.get(m)) for m, state in before.items()
                if state == "pending" and after.get(m) not in ("pending", "done")}
        assert not lost, f"queued changes lost or refused by the kill: {lost}"
        for seller in made["created"]:
            model.sellers[seller["id"]] = State(seller["display_name"], False, False)
            model.ids[seller["id"]] = seller["id"]
        assert_recovers(srv.url, token, cache, model, trial)
    assert "killed" in outcomes, outcomes
    print(f"\nkills during push-then-pull syncs: {outcomes}")


# -- inside one action's transaction --------------------------------------------------------

ACTION_CHILD = textwrap.dedent(
    """
    import sys
    from sellerbench.cache.store import Store
    from sellerbench.workbench import Workbench

    wb = Workbench(Store(sys.argv[1]), None, auto_push=False)
    ids = [line.strip() for line in open(sys.argv[2])]
    size, first = int(sys.argv[3]), int(sys.argv[4])
    print("ready", flush=True)
    for action in range(first, len(ids) // size):
        chunk = ids[action * size:(action + 1) * size]
        print("begin", action, flush=True)
        if action % 3 == 2:
            wb.delete(chunk)
        else:
            wb.flag(chunk, True)
        print("done", action, flush=True)
    """
)


def test_kill_inside_an_action_leaves_all_of_it_or_none(tmp_path: Path) -> None:
    cache = tmp_path / "cache.duckdb"
    ids = seed_sellers(Store(cache), 30_000)
    listing = tmp_path / "ids.txt"
    listing.write_text("\n".join(ids))
    size, first, rng = 1500, 0, random.Random(42)
    outcomes = []
    for _ in range(4):
        proc = child(ACTION_CHILD, str(cache), str(listing), str(size), str(first))
        outcome, lines = kill_after(proc, "ready", rng.uniform(0.3, 1.5))
        # The last line says where it died: "begin n" with no "done n" is inside action n.
        outcomes.append(f"{outcome} after {lines[-1] if lines else 'ready'!r}")
        check_cache(cache)
        with Store(cache).connect() as con:
            rows = dict(con.execute(
                "SELECT seller_id, kind FROM mutations WHERE state = 'pending'"
            ).fetchall())
            visible = {r[0]: r[1] for r in con.execute(
                "SELECT id, flagged FROM visible_sellers").fetchall()}
        started = 0
        for action in range(len(ids) // size):
            chunk = ids[action * size : (action + 1) * size]
            queued = sum(sid in rows for sid in chunk)
            assert queued in (0, size), f"action {action}: {queued} of {size} rows queued"
            if queued:
                started = action + 1
                kind = "delete" if action % 3 == 2 else "flag"
                assert {rows[sid] for sid in chunk} == {kind}
                if kind == "delete":
                    assert not any(sid in visible for sid in chunk)
                else:
                    assert all(visible[sid] for sid in chunk)
        first = started  # the next child goes on after the last whole action
    assert any(o.startswith("killed") for o in outcomes), outcomes
    assert first > 0, "no action completed before the kills"
    print(f"\nkills inside actions: {outcomes}")
