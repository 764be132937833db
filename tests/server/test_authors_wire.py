"""Authors are recorded exactly once through a lossy wire (tests/netproxy.py): a write
whose answer was lost and is sent again with its Idempotency-Key is replayed, never
recorded a second time, even when another user changed the seller in between."""

from __future__ import annotations

import random
import uuid

import httpx

from sellerbench.api.client import ApiClient
from sellerbench.errors import NotFoundError

from ..netproxy import WRITES, FaultProxy
from .test_people import add, db_of


def _authored(client: ApiClient, seller_id: str) -> list[tuple[str, str, object]]:
    return [(i["action"], i["user"], i["changes"].get("flagged", i["changes"].get(
        "display_name"))) for i in client.seller_history(seller_id) if i["user"] is not None]


def test_a_replay_after_another_users_change_records_no_second_author(make_server):
    srv = make_server(n=20)
    db = db_of(srv)
    ann, bob = add(db, "ann", "analyst"), add(db, "bob", "analyst")
    with ApiClient(srv.url, ann) as a, ApiClient(srv.url, bob) as b:
        seller = a.sync_sellers(limit=1, flagged=False).items[0]["id"]
        key = str(uuid.uuid4())
        with FaultProxy(srv.url, rates={"reset_after": 1.0}, methods=WRITES) as proxy, \
                httpx.Client(base_url=proxy.url, timeout=10) as lossy:
            sent = {"headers": {"Authorization": f"Bearer {ann}", "Idempotency-Key": key},
                    "json": {"flagged": True}}
            try:
                lossy.post(f"/sellers/{seller}/flag", **sent)
                raise AssertionError("the proxy should have lost the answer")
            except httpx.TransportError:
                pass  # ann's write committed; ann cannot know
            b.flag_seller(seller, False)  # bob changes it meanwhile
            proxy.enabled = False
            again = lossy.post(f"/sellers/{seller}/flag", **sent)  # ann's client retries
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        assert _authored(a, seller) == [("flag", "ann", True), ("flag", "bob", False)]
        assert not next(s for s in a.sync_sellers(since_rev=0, limit=10_000).items
                        if s["id"] == seller)["flagged"]


def test_many_writes_through_a_lossy_wire_are_each_recorded_once(make_server):
    srv = make_server(n=60)
    db = db_of(srv)
    tokens = {name: add(db, name, "analyst") for name in ("cleo", "dan")}
    rates = {"reset": 0.1, "reset_after": 0.25, "truncate": 0.15}
    rng = random.Random(11)
    with FaultProxy(srv.url, seed=5, rates=rates, methods=WRITES) as proxy:
        clients = {n: ApiClient(proxy.url, t, timeout=2.0, retries=12, backoff=0.01,
                                max_backoff=0.05) for n, t in tokens.items()}
        try:
            ids = [s["id"] for s in clients["cleo"].sync_sellers(limit=8, flagged=False).items]
            flags = dict.fromkeys(ids, False)
            expected: dict[str, list[tuple[str, str, object]]] = {i: [] for i in ids}
            for step in range(60):
                name = rng.choice(sorted(clients))
                seller = rng.choice(ids)
                key = str(uuid.uuid4())
                if rng.random() < 0.7:
                    wanted = not flags[seller]  # always a change: each lands once
                    clients[name].flag_seller(seller, wanted, idempotency_key=key)
                    flags[seller] = wanted
                    expected[seller].append(("flag", name, wanted))
                else:
                    new = f"{name} names it {step}"
                    clients[name].update_seller(seller, name=new, idempotency_key=key)
                    expected[seller].append(("rename", name, new))
            assert proxy.fired >= 10, proxy.counts
            with ApiClient(srv.url, tokens["cleo"]) as direct:
                for seller in ids:
                    assert _authored(direct, seller) == expected[seller], seller
        finally:
            for client in clients.values():
                client.close()


def test_the_client_says_when_a_server_keeps_no_history(make_server):
    srv = make_server(n=5, base_only=True)
    with ApiClient(srv.url, srv.tokens["viewer"]) as c:
        try:
            c.seller_history(str(uuid.uuid4()))
            raise AssertionError("a base-only server has no history")
        except NotFoundError as exc:
            assert "history" in str(exc)
