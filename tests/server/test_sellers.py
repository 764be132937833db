"""Seller writes: create, bulk, rename, flag, delete, restore, validation, no-op writes."""

from __future__ import annotations

import uuid

import pytest

from .srvutil import error_of


@pytest.fixture
def own(make_server, client):
    """(server, analyst client) of a fresh 40-seller server."""
    srv = make_server(n=40)
    return srv, client(srv)


def seller(c, seller_id: str) -> dict:
    """The seller as the rev feed has it (tombstones included)."""
    for item in c.get("/sync/sellers", params={"since_rev": 0, "limit": 10_000}).json()["items"]:
        if item["id"] == seller_id:
            return item
    raise AssertionError(f"{seller_id} not in the feed")


def max_rev(c) -> int:
    return c.get("/sync/sellers", params={"since_rev": 0, "limit": 1}).json()["max_rev"]


def test_create_trims_normalizes_and_refuses_duplicates(own):
    _, c = own
    made = c.post("/sellers", json={"name": "  Müller   &  Söhne  NEW  "})
    assert made.status_code == 201
    body = made.json()
    assert body["display_name"] == "Müller   &  Söhne  NEW"
    assert body["normalized_name"] == "müller & söhne new"
    assert (body["platform"], body["times_seen"], body["flagged"]) == ("ebay", 0, False)
    assert body["deleted_at"] is None and body["rev"] > 0
    again = c.post("/sellers", json={"name": "müller & SÖHNE new"})
    assert error_of(again) == (409, "DUPLICATE")


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": "x" * 10_000},
        {"name": "bad\x00name"},
        {"name": "tab\tinside"},
        {"name": 42},
        {"name": None},
        {"names": ["a"]},
        {},
        [],
        "just a string",
        {"name": "ok", "extra": 1},
    ],
)
def test_create_refuses_bad_bodies(own, body):
    _, c = own
    before = max_rev(c)
    assert error_of(c.post("/sellers", json=body)) == (422, "VALIDATION")
    assert max_rev(c) == before


@pytest.mark.parametrize(
    "raw", [b'{"name": "x"', b'{"name": "\\ud800 lone surrogate"}', b"\xff\xfe", b""]
)
def test_malformed_json_is_422(own, raw):
    _, c = own
    answer = c.post("/sellers", content=raw, headers={"Content-Type": "application/json"})
    assert error_of(answer) == (422, "VALIDATION")


def test_unparseable_form_body_is_422(own):
    _, c = own
    answer = c.post("/sellers", content=b"--x\r\n", headers={
        "Content-Type": "multipart/form-data; boundary=x"})
    assert error_of(answer) == (422, "VALIDATION")


def test_200_characters_is_fine(own):
    _, c = own
    assert c.post("/sellers", json={"name": "y" * 200}).status_code == 201


def test_bulk_create_reports_each_refusal(own):
    _, c = own
    body = c.post("/sellers/bulk", json={"names": ["bulk one", "Bulk  One", "", "bulk two"]})
    result = body.raise_for_status().json()
    assert (result["success_count"], result["failed_count"]) == (2, 2)
    assert [s["display_name"] for s in result["created"]] == ["bulk one", "bulk two"]
    assert len(result["errors"]) == 2 and result["errors"][0].startswith("names[1]")
    too_many = c.post("/sellers/bulk", json={"names": ["n"] * 10_001})
    assert error_of(too_many) == (422, "VALIDATION")
    assert error_of(c.post("/sellers/bulk", json={"names": [1, 2]})) == (422, "VALIDATION")


def test_rename_and_flag_set_via_patch(own):
    _, c = own
    s = c.post("/sellers", json={"name": "rename me"}).json()
    renamed = c.patch(f"/sellers/{s['id']}", json={"name": "Renamed Shop"}).json()
    assert renamed["display_name"] == "Renamed Shop" and renamed["rev"] > s["rev"]
    assert renamed["updated_at"] > s["updated_at"]
    flagged = c.patch(f"/sellers/{s['id']}", json={"flagged": True}).json()
    assert flagged["flagged"] is True and flagged["display_name"] == "Renamed Shop"
    # the case of a seller's own name may change
    assert c.patch(f"/sellers/{s['id']}", json={"name": "RENAMED shop"}).status_code == 200
    other = c.post("/sellers", json={"name": "taken name"}).json()
    clash = c.patch(f"/sellers/{other['id']}", json={"name": "renamed   SHOP"})
    assert error_of(clash) == (409, "DUPLICATE")
    assert error_of(c.patch(f"/sellers/{s['id']}", json={})) == (422, "VALIDATION")
    assert error_of(c.patch(f"/sellers/{s['id']}", json={"flagged": "yes"})) == (
        422, "VALIDATION")


def test_unknown_and_deleted_ids_are_404(own):
    _, c = own
    for missing in (str(uuid.uuid4()), "not-a-uuid", "bulk", "%ED%A0%80"):
        assert error_of(c.patch(f"/sellers/{missing}", json={"name": "z"})) == (404, "NOT_FOUND")
        assert error_of(c.delete(f"/sellers/{missing}")) == (404, "NOT_FOUND")
        if missing != "bulk":  # POST /sellers/bulk/flag is a route of its own
            assert error_of(c.post(f"/sellers/{missing}/flag")) == (404, "NOT_FOUND")
    s = c.post("/sellers", json={"name": "soon gone"}).json()
    assert c.delete(f"/sellers/{s['id']}").status_code == 204
    assert error_of(c.patch(f"/sellers/{s['id']}", json={"name": "z"})) == (404, "NOT_FOUND")
    assert error_of(c.post(f"/sellers/{s['id']}/flag")) == (404, "NOT_FOUND")


def test_no_op_writes_keep_rev_and_updated_at(own):
    _, c = own
    s = c.post("/sellers", json={"name": "steady"}).json()
    rev = max_rev(c)
    assert c.post(f"/sellers/{s['id']}/flag", json={"flagged": False}).json() == {
        "flagged": False}
    assert c.patch(f"/sellers/{s['id']}", json={"name": " steady "}).status_code == 200
    assert c.post("/sellers/bulk/flag", json={"ids": [s["id"]], "flagged": False}).json() == {
        "updated_count": 0}
    assert c.post("/sellers/bulk/restore", json={"ids": [s["id"]]}).json() == {
        "restored_count": 0}
    assert max_rev(c) == rev and seller(c, s["id"]) == s
    assert c.delete(f"/sellers/{s['id']}").status_code == 204
    gone = seller(c, s["id"])
    assert gone["deleted_at"] is not None
    rev = max_rev(c)
    assert c.delete(f"/sellers/{s['id']}").status_code == 204
    assert c.post("/sellers/bulk/delete", json={"ids": [s["id"]]}).json() == {"deleted_count": 0}
    assert max_rev(c) == rev and seller(c, s["id"]) == gone


def test_flag_toggles_without_body_and_sets_with_one(own):
    _, c = own
    s = c.post("/sellers", json={"name": "flag me"}).json()
    assert c.post(f"/sellers/{s['id']}/flag").json() == {"flagged": True}
    assert c.post(f"/sellers/{s['id']}/flag").json() == {"flagged": False}
    assert c.post(f"/sellers/{s['id']}/flag", json={"flagged": True}).json() == {"flagged": True}
    assert c.post(f"/sellers/{s['id']}/flag", json={"flagged": True}).json() == {"flagged": True}
    bad = c.post(f"/sellers/{s['id']}/flag", json={"flagged": 1})
    assert error_of(bad) == (422, "VALIDATION")


def test_bulk_flag_delete_restore(own):
    _, c = own
    made = c.post("/sellers/bulk", json={"names": [f"bulk seller {i}" for i in range(5)]})
    ids = [s["id"] for s in made.json()["created"]]
    junk = [str(uuid.uuid4()), "nonsense"]
    assert c.post("/sellers/bulk/flag", json={"ids": ids + junk, "flagged": True}).json() == {
        "updated_count": 5}
    assert all(seller(c, i)["flagged"] for i in ids)
    assert c.post("/sellers/bulk/delete", json={"ids": ids[:3] + junk}).json() == {
        "deleted_count": 3}
    before = seller(c, ids[0])
    assert c.post("/sellers/bulk/restore", json={"ids": ids[:3]}).json() == {
        "restored_count": 3}
    after = seller(c, ids[0])
    assert after["deleted_at"] is None and after["created_at"] == before["created_at"]
    assert after["flagged"] is True and after["rev"] > before["rev"]


def test_restore_refuses_when_the_name_is_live_again(own):
    _, c = own
    old = c.post("/sellers", json={"name": "Phoenix Antiques"}).json()
    c.delete(f"/sellers/{old['id']}")
    c.post("/sellers", json={"name": "phoenix antiques"}).raise_for_status()
    keep = c.post("/sellers", json={"name": "Innocent Bystander"}).json()
    c.delete(f"/sellers/{keep['id']}")
    rev = max_rev(c)
    refused = c.post("/sellers/bulk/restore", json={"ids": [old["id"], keep["id"]]})
    assert error_of(refused) == (409, "DUPLICATE")
    assert old["id"] in refused.json()["detail"]["message"]
    assert max_rev(c) == rev  # nothing restored, not even the innocent one
    assert c.post("/sellers/bulk/restore", json={"ids": [keep["id"]]}).json() == {
        "restored_count": 1}


def test_every_write_moves_rev_in_commit_order(own):
    _, c = own
    start = max_rev(c)
    s = c.post("/sellers", json={"name": "rev walker"}).json()
    c.post(f"/sellers/{s['id']}/flag")
    c.patch(f"/sellers/{s['id']}", json={"name": "rev walker 2"})
    page = c.get("/sync/sellers", params={"since_rev": start}).json()
    assert [i["id"] for i in page["items"]] == [s["id"]]
    assert page["items"][0]["rev"] == start + 3 == page["max_rev"]


def test_base_only_writes(make_server, client):
    srv = make_server(n=10, base_only=True)
    c = client(srv)
    s = c.post("/sellers", json={"name": "base seller"}).json()
    assert "rev" not in s
    assert c.post(f"/sellers/{s['id']}/flag", json={"flagged": False}).json() == {
        "flagged": True}  # base toggles, whatever the body says
    assert error_of(c.patch(f"/sellers/{s['id']}", json={"flagged": True})) == (
        422, "VALIDATION")
    assert "rev" not in c.patch(f"/sellers/{s['id']}", json={"name": "base 2"}).json()
    bulk = c.post("/sellers/bulk", json={"names": ["b1", "b2"]}).json()
    assert bulk == {"success_count": 2, "failed_count": 0, "errors": []}
    assert error_of(c.post("/sellers/bulk/flag", json={"ids": [], "flagged": True})) == (
        404, "NOT_FOUND")
    assert error_of(c.post("/sellers/bulk/restore", json={"ids": []}))[0] == 404
    # the Idempotency-Key header means nothing here: both requests act
    first = c.post("/sellers/bulk", json={"names": ["k1"]}, headers={"Idempotency-Key": "k"})
    second = c.post("/sellers/bulk", json={"names": ["k2"]}, headers={"Idempotency-Key": "k"})
    assert first.json()["success_count"] == second.json()["success_count"] == 1
