"""Helpers for the mutation tests: a cache seeded without a server, and a synced one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from sellerbench.store import Store
from sellerbench.workbench import Workbench


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


@pytest.fixture
def offline_wb(tmp_path):
    """A workbench with no API over a cache holding 50 sellers; ``wb.seed_ids`` lists them."""
    store = Store(tmp_path / "cache.duckdb")
    wb = Workbench(store, None, auto_push=False)
    wb.seed_ids = seed_sellers(store, 50, flagged_every=5)
    yield wb
    wb.close()
