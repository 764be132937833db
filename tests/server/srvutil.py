"""Assertions shared by the server tests."""

from __future__ import annotations

import httpx


def error_of(response: httpx.Response) -> tuple[int, str]:
    """(status, code) of an error answer, checking it has the one error shape."""
    body = response.json()
    assert set(body) == {"detail"}, body
    assert set(body["detail"]) == {"code", "message"}, body
    assert body["detail"]["message"], body
    return response.status_code, body["detail"]["code"]
