"""Categories, run lists, one run, creating a run."""

from __future__ import annotations

import uuid

import pytest

from .srvutil import error_of


def test_categories(server, client):
    cats = client(server, "viewer").get("/collection/categories").json()["categories"]
    assert len(cats) >= 12
    assert all(set(c) == {"id", "name", "department"} for c in cats)


def test_run_lists_and_one_run(server, client):
    c = client(server, "viewer")
    everything = c.get("/collection/runs", params={"limit": 100}).json()
    assert everything["total"] >= 6 and len(everything["runs"]) == everything["total"]
    created = [r["created_at"] for r in everything["runs"]]
    assert created == sorted(created, reverse=True)
    page = c.get("/collection/runs", params={"limit": 2, "offset": 1}).json()
    assert [r["id"] for r in page["runs"]] == [r["id"] for r in everything["runs"][1:3]]
    history = c.get("/collection/runs/history").json()
    assert history["total"] >= 6
    assert {r["status"] for r in history["runs"]} <= {"completed", "failed", "cancelled"}
    active = c.get("/collection/runs/active").json()
    assert all(r["status"] in ("pending", "running", "paused") for r in active["runs"])
    one = everything["runs"][0]
    assert c.get(f"/collection/runs/{one['id']}").json()["id"] == one["id"]
    for missing in (str(uuid.uuid4()), "nope"):
        assert error_of(c.get(f"/collection/runs/{missing}")) == (404, "NOT_FOUND")


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"offset": -1}])
def test_run_list_bounds(server, client, params):
    assert error_of(client(server).get("/collection/runs", params=params)) == (
        422, "VALIDATION")


def test_create_run(make_server, client):
    srv = make_server(n=10)
    admin = client(srv, "admin")
    cats = [c["id"] for c in admin.get("/collection/categories").json()["categories"][:3]]
    run = admin.post("/collection/runs", json={"name": "Weekly", "category_ids": cats})
    assert run.status_code == 201
    body = run.json()
    assert (body["status"], body["category_ids"], body["categories_total"]) == (
        "pending", cats, 3)
    assert body["id"] in {r["id"] for r in admin.get("/collection/runs/active").json()["runs"]}
    none = admin.post("/collection/runs", json={"name": "Empty", "category_ids": []})
    assert error_of(none) == (400, "VALIDATION")
    missing = admin.post("/collection/runs", json={"name": "Missing"})
    assert error_of(missing) == (400, "VALIDATION")
    unknown = admin.post("/collection/runs", json={"name": "x", "category_ids": ["cat-nope"]})
    assert error_of(unknown) == (422, "VALIDATION")
    nameless = admin.post("/collection/runs", json={"name": " ", "category_ids": cats})
    assert error_of(nameless) == (422, "VALIDATION")
    analyst = client(srv, "analyst")
    refused = analyst.post("/collection/runs", json={"name": "mine", "category_ids": cats})
    assert error_of(refused) == (403, "FORBIDDEN")
