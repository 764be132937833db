"""Misbehaviour switches: 429 + Retry-After, injected 503s, connections dropped before and
after the write, determinism for a seed."""

from __future__ import annotations

import httpx
import pytest

from sellerbench.server.http.faults import Faults

from .srvutil import error_of


def names(c) -> set[str]:
    items = c.get("/sync/sellers", params={"since_rev": 0, "limit": 10_000}).json()["items"]
    return {s["display_name"] for s in items}


def test_drop_before_write_closes_without_response_and_writes_nothing(make_server, client):
    srv = make_server(n=5, faults=Faults(drop_before_rate=1.0))
    c = client(srv)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        c.post("/sellers", json={"name": "never written"})
    assert "never written" not in names(c)  # reads are not dropped
    assert srv.faults.counts["drop_before"] == 1


def test_drop_after_write_commits_then_closes(make_server, client):
    srv = make_server(n=5, faults=Faults(drop_after_rate=1.0))
    c = client(srv)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        c.post("/sellers", json={"name": "written anyway"}, headers={"Idempotency-Key": "d1"})
    assert "written anyway" in names(c)
    # the retry with the same key gets the stored answer, not a duplicate
    srv.faults.drop_after_rate = 0.0
    retry = c.post("/sellers", json={"name": "written anyway"}, headers={"Idempotency-Key": "d1"})
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"


def test_injected_failures_are_503_in_the_error_shape(make_server, client):
    srv = make_server(n=5, faults=Faults(fail_rate=1.0))
    c = client(srv)
    assert error_of(c.get("/sync/sellers")) == (503, "UNAVAILABLE")
    assert error_of(c.post("/sellers", json={"name": "no"})) == (503, "UNAVAILABLE")
    assert c.get("/health").status_code == 200  # health is never faulted
    srv.faults.fail_rate = 0.0
    assert "no" not in names(c)


def test_rate_limit_answers_429_with_retry_after(make_server, client):
    srv = make_server(n=5, faults=Faults(rate_limit=2))
    c = client(srv)
    answers = [c.get("/collection/categories") for _ in range(6)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert error_of(limited[0]) == (429, "RATE_LIMITED")
    assert int(limited[0].headers["Retry-After"]) >= 1


def test_fault_decisions_repeat_for_a_seed():
    def pattern(seed: int) -> list[str | None]:
        faults = Faults(fail_rate=0.3, drop_before_rate=0.3, drop_after_rate=0.3, seed=seed)
        return [faults.decide("POST") for _ in range(50)]

    assert pattern(5) == pattern(5)
    assert pattern(5) != pattern(6)
    assert {"fail", "drop_before", "drop_after", None} == set(pattern(5))


def test_bad_switches_are_refused():
    with pytest.raises(ValueError, match="fail_rate"):
        Faults(fail_rate=1.5)
    with pytest.raises(ValueError, match="rate_limit"):
        Faults(rate_limit=0)


def test_a_runaway_token_exhausts_its_own_bucket_not_the_teams(make_server, client):
    srv = make_server(n=5, faults=Faults(token_rate_limit=5, rate_limit=1000))
    runaway, colleague = client(srv, "analyst"), client(srv, "viewer")
    answers = [runaway.get("/collection/categories") for _ in range(30)]
    limited = [a for a in answers if a.status_code == 429]
    assert len(limited) >= 15, [a.status_code for a in answers]
    assert error_of(limited[0]) == (429, "RATE_LIMITED")
    assert int(limited[0].headers["Retry-After"]) >= 1
    # the colleague's own bucket is full: the runaway took nothing from it
    assert [colleague.get("/collection/categories").status_code for _ in range(5)] == [200] * 5
    assert srv.faults.counts["token_rate_limited"] == len(limited)
    assert "rate_limited" not in srv.faults.counts  # the server's bucket never ran dry
    with pytest.raises(ValueError, match="token_rate_limit"):
        Faults(token_rate_limit=0)
