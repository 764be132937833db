"""Helpers for the server's own tests: an httpx client per role; and the shared server
fixtures again, parametrized over the storage, so the whole server suite runs on SQLite
and on PostgreSQL (``-m "not postgres"`` keeps SQLite only)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sellerbench.server.embedded import EmbeddedServer, start
from tests.seeded import copy_seeded


@pytest.fixture(scope="session")
def server(tmp_path_factory, storage, db_url) -> Iterator[EmbeddedServer]:
    srv = start(n=300, seed=7, data_dir=tmp_path_factory.mktemp("server"), db=db_url(storage))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def base_server(tmp_path_factory, storage, db_url) -> Iterator[EmbeddedServer]:
    srv = start(n=300, seed=7, base_only=True, data_dir=tmp_path_factory.mktemp("base_server"),
                db=db_url(storage))
    yield srv
    srv.stop()


@pytest.fixture
def make_server(tmp_path_factory, storage, db_url) -> Iterator[Callable[..., EmbeddedServer]]:
    started: list[EmbeddedServer] = []

    def factory(n: int = 300, **options: Any) -> EmbeddedServer:
        options.setdefault("data_dir", tmp_path_factory.mktemp("own_server"))
        options.setdefault("db", db_url(storage))
        if options["db"] is None:  # SQLite: a copy of a seeded database (tests/conftest.py)
            copy_seeded(tmp_path_factory, n, options.get("seed", 7), options["data_dir"])
        srv = start(n=n, **options)
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()


@pytest.fixture
def client() -> Iterator[Callable[..., httpx.Client]]:
    """``client(server, role="analyst")``: an httpx.Client with that role's token."""
    opened: list[httpx.Client] = []

    def make(srv: EmbeddedServer, role: str | None = "analyst", **kw) -> httpx.Client:
        headers = {"Authorization": f"Bearer {srv.tokens[role]}"} if role else {}
        c = httpx.Client(base_url=srv.url, headers=headers, timeout=30, **kw)
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()
