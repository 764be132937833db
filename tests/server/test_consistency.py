"""Feeds stay correct while other clients write: the base cursor skips nothing that was not
touched, and the rev feed followed incrementally ends up equal to the server's state."""

from __future__ import annotations

import random
import threading
import time

import httpx

N = 1_200


def writer(url: str, token: str, ids: list[str], touched: set[str], stop: threading.Event,
           seed: int, written: list[str] | None = None) -> None:
    """Flag, rename and delete random sellers until told to stop (bounded)."""
    rng = random.Random(seed)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as c:
        for step in range(2_000):
            if stop.is_set():
                return
            seller_id = rng.choice(ids)
            touched.add(seller_id)  # before the write: a write in flight counts as touched
            action = rng.random()
            if action < 0.6:
                c.post(f"/sellers/{seller_id}/flag")
            elif action < 0.9:
                c.patch(f"/sellers/{seller_id}", json={"name": f"renamed {seed}-{step}"})
            else:
                c.delete(f"/sellers/{seller_id}")
            if written is not None:
                written.append(seller_id)


def _wait_for_writes(written: list[str], count: int) -> None:
    """Until the writer has done ``count`` writes (pages are served in ~2 ms: without
    this a traversal can end before the writer's first write)."""
    deadline = time.monotonic() + 30
    while len(written) < count:
        assert time.monotonic() < deadline, "the writer stopped writing"
        time.sleep(0.001)


def test_base_traversal_sees_untouched_rows_exactly_once(make_server, client):
    srv = make_server(n=N)
    c = client(srv, "viewer")
    before = {s["id"] for s in c.get("/export/sellers/json").json()}
    touched: set[str] = set()
    stop = threading.Event()
    written: list[str] = []
    thread = threading.Thread(
        target=writer,
        args=(srv.url, srv.tokens["analyst"], sorted(before), touched, stop, 1, written),
    )
    thread.start()
    seen: list[str] = []
    try:
        cursor = None
        for page_no in range(1_000):
            _wait_for_writes(written, 3 * page_no)  # writes land between every two pages
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = c.get("/sync/sellers", params=params).raise_for_status().json()
            seen += [s["id"] for s in page["items"]]
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
    finally:
        stop.set()
        thread.join(60)
    assert touched, "the writer ran during the traversal"
    for seller_id in before - touched:
        assert seen.count(seller_id) == 1, seller_id


def test_rev_feed_followed_during_writes_converges(make_server, client):
    srv = make_server(n=N)
    c = client(srv, "viewer")
    ids = [s["id"] for s in c.get("/export/sellers/json").json()]
    stop = threading.Event()
    written: list[str] = []
    threads = [
        threading.Thread(target=writer,
                         args=(srv.url, srv.tokens["analyst"], ids, set(), stop, seed, written))
        for seed in (2, 3)
    ]
    for t in threads:
        t.start()
    mirror: dict[str, dict] = {}
    since = 0

    def pull(during_writes: bool = True) -> None:
        nonlocal since
        cursor = None
        for _ in range(1_000):
            if during_writes:  # writes land between every two pages
                _wait_for_writes(written, len(written) + 2)
            params = {"since_rev": since, "limit": 150, **({"cursor": cursor} if cursor else {})}
            page = c.get("/sync/sellers", params=params).raise_for_status().json()
            for item in page["items"]:
                mirror[item["id"]] = item
            if not page["has_more"]:
                since = page["max_rev"]
                return
            cursor = page["next_cursor"]

    try:
        for _ in range(4):
            pull()
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    pull(during_writes=False)
    truth = c.get("/sync/sellers", params={"since_rev": 0, "limit": 10_000}).json()["items"]
    assert mirror == {s["id"]: s for s in truth}
