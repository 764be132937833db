"""Helpers: a plain-Python model of what the analyst meant, random actions driving both,
and a cache seeded without a server.

The model knows sellers by a model key, holds (name, flagged, deleted) for each, and an
undo stack of snapshots. After the workbench pushed and synced, the server's live
sellers must equal the model's, compared by normalized name -> flagged (ids are not
comparable: a restore on a base-contract server re-creates under a new id).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from sellerbench.api.client import ApiClient
from sellerbench.cache.store import Store
from sellerbench.changes.mutations import normalize_name
from sellerbench.changes.push import Backoff
from sellerbench.workbench import Workbench, connect


@dataclass
class State:
    name: str
    flagged: bool
    deleted: bool


@dataclass
class Model:
    sellers: dict[str, State] = field(default_factory=dict)  # model key = first id seen
    ids: dict[str, str] = field(default_factory=dict)  # model key -> id to call wb with
    undo_stack: list[dict[str, State | None]] = field(default_factory=list)
    counter: int = 0

    @classmethod
    def from_workbench(cls, wb: Workbench) -> Model:
        model = cls()
        for row in wb.sellers().itertuples():
            model.sellers[row.id] = State(row.display_name, bool(row.flagged), False)
            model.ids[row.id] = row.id
        return model

    def live(self) -> list[str]:
        return [k for k, s in self.sellers.items() if not s.deleted]

    def taken(self) -> set[str]:
        return {normalize_name(s.name) for s in self.sellers.values() if not s.deleted}

    def expected(self) -> dict[str, bool]:
        return {normalize_name(s.name): s.flagged for s in self.sellers.values() if not s.deleted}

    def fresh_name(self, rng: random.Random) -> str:
        self.counter += 1
        return f"Chaos {self.counter:05d} {rng.choice(['Shop', 'Store', 'Goods', 'Trade'])}"

    def snapshot(self, keys: list[str]) -> dict[str, State | None]:
        return {k: (State(**vars(self.sellers[k])) if k in self.sellers else None) for k in keys}


def random_action(
    wb: Workbench, model: Model, rng: random.Random, freed: list[str]
) -> tuple[str, int]:
    """Do one random analyst action on ``wb``, mirror it in ``model``; (kind, changes)."""
    live = model.live()
    deleted = [k for k, s in model.sellers.items() if s.deleted]
    roll = rng.random()
    if roll < 0.35 and live:
        keys = rng.sample(live, min(len(live), rng.randint(1, 5)))
        value = rng.random() < 0.5
        model.undo_stack.append(model.snapshot(keys))
        wb.flag([model.ids[k] for k in keys], value)
        for k in keys:
            model.sellers[k].flagged = value
        return "flag", len(keys)
    if roll < 0.55 and live:
        key = rng.choice(live)
        # Now and then take a name another seller gave up a moment ago: push must order it.
        candidates = [n for n in freed if normalize_name(n) not in model.taken()]
        name = candidates[-1] if candidates and rng.random() < 0.3 else model.fresh_name(rng)
        model.undo_stack.append(model.snapshot([key]))
        freed.append(model.sellers[key].name)
        wb.rename(model.ids[key], name)
        model.sellers[key].name = name
        return "rename", 1
    if roll < 0.65 and len(live) > 20:
        keys = rng.sample(live, rng.randint(1, 3))
        model.undo_stack.append(model.snapshot(keys))
        wb.delete([model.ids[k] for k in keys])
        for k in keys:
            model.sellers[k].deleted = True
            freed.append(model.sellers[k].name)
        return "delete", len(keys)
    restorable = [k for k in deleted if normalize_name(model.sellers[k].name) not in model.taken()]
    if roll < 0.75 and restorable:
        key = rng.choice(restorable)
        model.undo_stack.append(model.snapshot([key]))
        wb.restore(model.ids[key])
        model.sellers[key].deleted = False
        return "restore", 1
    if roll < 0.88:
        candidates = [n for n in freed if normalize_name(n) not in model.taken()]
        names = [model.fresh_name(rng) for _ in range(rng.randint(1, 4))]
        if candidates and rng.random() < 0.3:
            names[0] = candidates[-1]
        ids = wb.create(names)
        keys = list(ids)
        model.undo_stack.append({k: None for k in keys})
        for key, name in zip(keys, names, strict=True):
            model.sellers[key] = State(name, False, False)
            model.ids[key] = key
        return "create", len(keys)
    if model.undo_stack:
        wb.undo()
        undone = model.undo_stack.pop()
        for key, before in undone.items():
            if before is None:
                del model.sellers[key]  # an undone create: gone (a tombstone at most)
            else:
                model.sellers[key] = before
        return "undo", len(undone)
    return "none", 0


def server_live(url: str, token: str) -> dict[str, bool]:
    """normalized name -> flagged of every live seller, read with a fresh client."""
    out: dict[str, bool] = {}
    with ApiClient(url, token, backoff=0.01, max_backoff=0.05, retries=20) as client:
        cursor = None
        for _ in range(10_000):
            page = client.sync_sellers(cursor=cursor, limit=100)
            for item in page.items:
                assert item["normalized_name"] not in out, "two live sellers share a name"
                out[item["normalized_name"]] = item["flagged"]
            if not page.has_more:
                return out
            cursor = page.next_cursor
    raise AssertionError("the server's seller list did not end")


def push_until_drained(wb: Workbench, backoff: Backoff, attempts: int) -> None:
    """Push (up to ``attempts`` times, each waiting up to 2 s) until nothing is pending;
    then nothing may be pending and nothing refused."""
    for _ in range(attempts):
        report = wb.push(wait=2.0, backoff=backoff)
        if report.still_pending == 0:
            break
    assert report.still_pending == 0, report
    assert wb.failed().empty, wb.failed()[["kind", "change", "error"]].to_string()


def assert_recovers(url: str, token: str, cache: Path, model: Model, trial: int) -> None:
    """After a kill: open ``cache`` again, push until drained and sync; the server and
    the cache then hold exactly what the analyst meant."""
    wb = connect(url, token, cache, auto_push=False)
    try:
        push_until_drained(wb, Backoff(0.01, 0.05), attempts=20)
        wb.sync(progress=False)
        local = wb.sellers()
    finally:
        wb.close()
    expected = model.expected()
    assert server_live(url, token) == expected, f"trial {trial}"
    assert dict(zip(local.normalized_name, local.flagged, strict=True)) == expected


def seed_sellers(store: Store, n: int, *, flagged_every: int = 0) -> list[str]:
    """Insert ``n`` server-looking sellers straight into the cache (no server needed)."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [str(uuid.UUID(int=i + 1)) for i in range(n)]
    names = [f"Seller {i:07d}" for i in range(n)]
    table = pa.table(
        {
            "id": ids,
            "display_name": names,
            "normalized_name": [name.lower() for name in names],
            "platform": ["ebay"] * n,
            "platform_id": pa.nulls(n, pa.string()),
            "times_seen": pa.array([i % 7 for i in range(n)], pa.int32()),
            "flagged": [bool(flagged_every) and i % flagged_every == 0 for i in range(n)],
            "first_seen_run_id": pa.nulls(n, pa.string()),
            "last_seen_run_id": pa.nulls(n, pa.string()),
            "created_at": pa.array([base] * n, pa.timestamp("us", tz="UTC")),
            "updated_at": pa.array(
                [base + timedelta(seconds=i) for i in range(n)], pa.timestamp("us", tz="UTC")
            ),
            "deleted_at": pa.nulls(n, pa.timestamp("us", tz="UTC")),
            "rev": pa.array(range(1, n + 1), pa.int64()),
        }
    )
    with store.connect() as con:
        con.register("_seed", table)
        con.execute("INSERT INTO sellers SELECT * FROM _seed")
        con.unregister("_seed")
    return ids
