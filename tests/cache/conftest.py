"""Fixtures for the sync tests (``wb`` itself is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sellerbench.workbench import Workbench, connect


@pytest.fixture
def make_wb(tmp_path: Path) -> Iterator[Callable[..., Workbench]]:
    """``make_wb(srv, name="cache")``: a workbench on that server with its own cache file."""
    opened: list[Workbench] = []

    def factory(srv: Any, name: str = "cache", role: str = "analyst", **kw: Any) -> Workbench:
        workbench = connect(srv.url, srv.tokens[role], tmp_path / f"{name}.duckdb", **kw)
        opened.append(workbench)
        return workbench

    yield factory
    for workbench in opened:
        workbench.close()
