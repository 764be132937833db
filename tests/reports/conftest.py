"""Fixtures for the export tests: a cache in tmp_path filled directly, with awkward names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sellerbench.cache.store import Store
from sellerbench.workbench import Workbench

from .exportdata import AWKWARD_NAMES, fill


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "cache.duckdb")


@pytest.fixture
def wb(store: Store) -> Iterator[Workbench]:
    """An offline workbench over a cache holding the awkward names (and a tombstone)."""
    fill(store, AWKWARD_NAMES)
    with store.connect() as con:
        con.execute(
            "INSERT INTO sellers SELECT 'gone', 'Deleted Seller', 'deleted seller', 'ebay', "
            "NULL, 1, true, NULL, NULL, now(), now(), now(), 99"
        )
    workbench = Workbench(store, None)
    yield workbench
    workbench.close()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder
