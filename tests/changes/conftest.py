"""Helpers for the mutation tests: a cache seeded without a server, and a synced one."""

from __future__ import annotations

import pytest

from sellerbench.cache.store import Store
from sellerbench.workbench import Workbench

from .mutation_model import seed_sellers


@pytest.fixture
def offline_wb(tmp_path):
    """A workbench with no API over a cache holding 50 sellers; ``wb.seed_ids`` lists them."""
    store = Store(tmp_path / "cache.duckdb")
    wb = Workbench(store, None, auto_push=False)
    wb.seed_ids = seed_sellers(store, 50, flagged_every=5)
    yield wb
    wb.close()
