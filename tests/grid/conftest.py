"""Fixtures for the grid: a real DuckDB cache in tmp_path, filled directly (no server).

``fill_sellers(store, n)`` writes n sellers with predictable values: seller i is
``id-00000i`` named ``Seller 0000i``, flagged when i % 10 == 0, platform ``amazon``
when i % 5 == 0 else ``ebay``, seen i % 7 times, first seen by run "Alpha" (even i)
or "Beta" (odd i), last seen by "Beta", updated i seconds after 2024-01-01.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sellerbench.cache.store import Store
from sellerbench.workbench import Workbench

RUNS = {"run-a": "Alpha", "run-b": "Beta"}


def fill_sellers(store: Store, n: int) -> None:
    with store.transaction() as con:
        con.execute(
            """
            INSERT INTO sellers (id, display_name, normalized_name, platform, platform_id,
                times_seen, flagged, first_seen_run_id, last_seen_run_id, created_at,
                updated_at, deleted_at, rev)
            SELECT printf('id-%06d', i), printf('Seller %06d', i), printf('seller %06d', i),
                   CASE WHEN i % 5 = 0 THEN 'amazon' ELSE 'ebay' END, printf('p%d', i),
                   CAST(i % 7 AS INTEGER), i % 10 = 0,
                   CASE WHEN i % 2 = 0 THEN 'run-a' ELSE 'run-b' END, 'run-b',
                   TIMESTAMPTZ '2024-01-01 00:00:00+00',
                   TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i), NULL, i
            FROM range(?) t(i)
            """,
            [n],
        )
        for run_id, name in RUNS.items():
            con.execute(
                "INSERT INTO collection_runs (id, name, status, category_ids, started_at, "
                "created_at, updated_at) VALUES (?, ?, 'completed', ['c1'], "
                "TIMESTAMPTZ '2024-01-01 00:00:00+00', now(), now())",
                [run_id, name],
            )


@pytest.fixture
def offline_wb(tmp_path: Path) -> Workbench:
    """A workbench over a 100-seller cache, no API (changes stay pending)."""
    store = Store(tmp_path / "cache.duckdb")
    fill_sellers(store, 100)
    wb = Workbench(store, None, auto_push=False)
    yield wb
    wb.close()


def decode_reply(reply: dict, buffers: list) -> dict[str, list]:
    """The columns of a data-reply as Python lists (what the browser will deserialize)."""
    out = {}
    for name, column in reply["value"]["data"].items():
        if isinstance(column, list):
            out[name] = column
        elif column.get("type") == "raw":
            out[name] = column["value"]
        else:
            raw = buffers[column["value"]]
            out[name] = np.frombuffer(bytes(raw), dtype=column["dtype"]).tolist()
    return out
