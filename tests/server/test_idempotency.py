"""Idempotency-Key (ext): replay without acting, reuse refused, per user, on every write."""

from __future__ import annotations

import pytest

from .srvutil import error_of


@pytest.fixture
def own(make_server, client):
    srv = make_server(n=20)
    return srv, client(srv)


def max_rev(c) -> int:
    return c.get("/sync/sellers", params={"since_rev": 0, "limit": 1}).json()["max_rev"]


def test_replay_returns_the_stored_answer_without_acting(own):
    _, c = own
    key = {"Idempotency-Key": "create-once"}
    first = c.post("/sellers", json={"name": "once only"}, headers=key)
    rev = max_rev(c)
    second = c.post("/sellers", json={"name": "once only"}, headers=key)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert max_rev(c) == rev


def test_same_key_other_request_is_refused(own):
    _, c = own
    key = {"Idempotency-Key": "k-1"}
    c.post("/sellers", json={"name": "first body"}, headers=key).raise_for_status()
    other_body = c.post("/sellers", json={"name": "second body"}, headers=key)
    assert error_of(other_body) == (422, "IDEMPOTENCY_KEY_REUSED")
    seller_id = c.post("/sellers", json={"name": "x1"}).json()["id"]
    other_path = c.post(f"/sellers/{seller_id}/flag", headers=key)
    assert error_of(other_path) == (422, "IDEMPOTENCY_KEY_REUSED")


def test_keys_are_scoped_per_user(own, client):
    srv, analyst = own
    admin = client(srv, "admin")
    key = {"Idempotency-Key": "shared-key"}
    a = analyst.post("/sellers/bulk", json={"names": ["per user a"]}, headers=key).json()
    b = admin.post("/sellers/bulk", json={"names": ["per user b"]}, headers=key).json()
    assert a["success_count"] == b["success_count"] == 1


def test_toggle_replayed_does_not_toggle_back(own):
    _, c = own
    seller_id = c.post("/sellers", json={"name": "toggle"}).json()["id"]
    key = {"Idempotency-Key": "toggle-1"}
    for _ in range(3):
        assert c.post(f"/sellers/{seller_id}/flag", headers=key).json() == {"flagged": True}


def test_delete_replay_is_204_and_refusals_are_not_stored(own):
    _, c = own
    seller_id = c.post("/sellers", json={"name": "to delete"}).json()["id"]
    key = {"Idempotency-Key": "del-1"}
    assert c.delete(f"/sellers/{seller_id}", headers=key).status_code == 204
    replay = c.delete(f"/sellers/{seller_id}", headers=key)
    assert replay.status_code == 204 and replay.headers["Idempotent-Replayed"] == "true"
    # a refused write stores nothing: the same key may be retried once it can succeed
    c.post("/sellers", json={"name": "clash"}).raise_for_status()
    retry = {"Idempotency-Key": "create-clash"}
    assert error_of(c.post("/sellers", json={"name": "clash"}, headers=retry))[1] == "DUPLICATE"
    assert error_of(c.post("/sellers", json={"name": "clash"}, headers=retry))[1] == "DUPLICATE"


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_bad_keys_are_422(own, key):
    _, c = own
    answer = c.post("/sellers", json={"name": "bad key"}, headers={"Idempotency-Key": key})
    assert error_of(answer) == (422, "VALIDATION")


def test_255_character_key_is_fine(own):
    _, c = own
    answer = c.post("/sellers", json={"name": "long key"}, headers={"Idempotency-Key": "k" * 255})
    assert answer.status_code == 201
