"""Helpers for the server's own tests: an httpx client per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from sellerbench.server.embedded import EmbeddedServer


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

