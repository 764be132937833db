"""PostgreSQL: concurrent writers keep the API's rules, and the feed never waits.

- a writer holding its transaction open caps ``max_rev`` below its rev; the feed answers
  at once meanwhile, and a change committed above it arrives once it ends;
- the same Idempotency-Key sent by many requests at once acts once, every answer alike;
- many toggles of one seller at once: each sees the flag as the one before it left it;
- the same new name from many requests at once: one wins, the others are 409.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import psycopg
import pytest

from sellerbench.server.storage import postgres as pgstorage
from sellerbench.server.storage.core import Busy
from sellerbench.server.storage.records import now_ts

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def storage():
    return "postgresql"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, db_url):
    from sellerbench.server.embedded import start

    server = start(n=100, seed=5, data_dir=tmp_path_factory.mktemp("pgw"),
                   db=db_url("postgresql"))
    yield server
    server.stop()


def _http(srv, role="analyst") -> httpx.Client:
    return httpx.Client(base_url=srv.url, timeout=30,
                        headers={"Authorization": f"Bearer {srv.tokens[role]}"})


def _feed(c: httpx.Client, since: int) -> dict:
    return c.get("/sync/sellers", params={"since_rev": since, "limit": 1000}).json()


def test_an_open_writer_caps_max_rev_and_the_feed_does_not_wait(srv):
    with _http(srv) as c:
        start = _feed(c, 0)["max_rev"]
        ids = [s["id"] for s in _feed(c, 0)["items"][:2]]
        held = threading.Event()
        release = threading.Event()

        def hold() -> None:
            with srv.storage.write() as tx:
                rev = tx.next_rev()
                tx.execute("UPDATE sellers SET updated_at = ?, rev = ? WHERE id = ?",
                           (now_ts(), rev, ids[0]))
                holder.append(rev)
                held.set()
                release.wait(30)

        holder: list[int] = []
        thread = threading.Thread(target=hold)
        thread.start()
        try:
            assert held.wait(30)
            flagged = c.post(f"/sellers/{ids[1]}/flag").raise_for_status().json()
            page = _feed(c, start)  # answers now, while the writer is still open
            assert page["max_rev"] == holder[0] - 1
            assert page["items"] == []  # the flag (rev above the open one) waits
        finally:
            release.set()
            thread.join(30)
        page = _feed(c, start)
        got = {s["id"]: s for s in page["items"]}
        assert set(got) == set(ids) and got[ids[1]]["flagged"] == flagged["flagged"]
        assert page["max_rev"] >= got[ids[1]]["rev"] > got[ids[0]]["rev"] == holder[0]


def test_a_writer_open_too_long_is_refused(srv, monkeypatch):
    monkeypatch.setattr(pgstorage, "MAX_WRITE_SECONDS", 0.0)
    with pytest.raises(Busy), srv.storage.write() as tx:
        tx.execute("SELECT 1")


def test_one_idempotency_key_sent_at_once_acts_once(srv):
    with _http(srv) as c:
        key = str(uuid.uuid4())
        name = f"Concurrent {key[:8]}"

        def send(_: int) -> httpx.Response:
            return c.post("/sellers", json={"name": name}, headers={"Idempotency-Key": key})

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, range(8)))
        assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        live = [s for s in c.get("/export/sellers/json").json() if s["display_name"] == name]
        assert len(live) == 1


def test_toggles_at_once_each_see_the_last(srv):
    with _http(srv) as c:
        seller = _feed(c, 0)["items"][10]
        before = seller["flagged"]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: c.post(f"/sellers/{seller['id']}/flag"),
                                    range(20)))
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        flags = [a.json()["flagged"] for a in answers]
        assert flags.count(True) == flags.count(False) == 10  # strictly alternating
        after = {s["id"]: s for s in _feed(c, 0)["items"]}[seller["id"]]["flagged"]
        assert after == before  # an even number of toggles


def test_the_same_new_name_at_once_one_wins(srv):
    with _http(srv) as c:
        name = f"Race {uuid.uuid4().hex[:8]}"
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: c.post("/sellers", json={"name": name}), range(8)))
        codes = sorted(a.status_code for a in answers)
        assert codes == [201] + [409] * 7, [a.text for a in answers]


AWKWARD = ['Quote "Corner" Shop', "Back\\slash Books", "Müller & Söhne", "東京 🎌 vintage",
           "tab\u00a0nbsp 'q'", "Zero-width\u200bjoiner", "x" * 200]


def test_postgresql_writes_the_json_form_byte_for_byte(srv):
    """The JSON items PostgreSQL writes are what orjson writes for the records."""
    from sellerbench.server.storage import feed

    with _http(srv) as c:
        for name in AWKWARD:
            c.post("/sellers", json={"name": name}).raise_for_status()

    def page(form: str, rev: bool, **kind):
        with srv.storage.read() as conn:  # one snapshot per form: the data is quiet
            if rev:
                return feed.rev_page(conn, feed.SELLERS, cursor=None, form=form, **kind)
            return feed.base_page(conn, feed.SELLERS, cursor=None, form=form, **kind)

    for with_rev in (True, False):
        kind = {"limit": 1000, "updated_since": None, "include_deleted": True,
                "flagged": None, "with_rev": with_rev}
        fast, plain = page("json", False, **kind), page("rows", False, **kind)
        assert fast.form == "json" and plain.form == "rows"
        assert fast.json(feed.SELLERS, with_rev=with_rev) == \
            plain.json(feed.SELLERS, with_rev=with_rev)
    fast = page("json", True, since_rev=0, limit=1000)
    plain = page("rows", True, since_rev=0, limit=1000)
    assert fast.form == "json" and len(fast.rows) > 100
    body = fast.json(feed.SELLERS, with_rev=True)
    assert body == plain.json(feed.SELLERS, with_rev=True)
    assert set(AWKWARD) <= {s["display_name"] for s in orjson.loads(body)["items"]}


def test_a_database_from_a_newer_server_is_refused(pg_cluster):
    from sellerbench.server.storage.core import SCHEMA_VERSION
    from sellerbench.server.storage.postgres import PostgresStorage

    url = pg_cluster.database()
    PostgresStorage(url).close()  # creates the schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = %s WHERE key = 'schema_version'",
                     (str(SCHEMA_VERSION + 1),))
    with pytest.raises(ValueError, match="newer than this server"):
        PostgresStorage(url)


def test_every_process_hears_each_event_through_notify(srv, db_url):
    """Another storage on the same database (as another server process) is told of
    each activity event the server commits."""
    from sellerbench.server.storage.postgres import PostgresStorage

    other = PostgresStorage(srv.storage.url)
    heard: list[int] = []
    other.listen(heard.append)
    try:
        time.sleep(0.3)  # LISTEN is in place before the events
        with httpx.Client(base_url=srv.url, timeout=30,
                          headers={"Authorization": f"Bearer {srv.tokens['admin']}"}) as c:
            categories = [x["id"] for x in c.get("/collection/categories").json()["categories"]]
            run = c.post("/collection/runs", json={"name": "heard", "category_ids":
                                                    categories[:1]}).json()
            c.post(f"/collection/runs/{run['id']}/start").raise_for_status()
            c.post(f"/collection/runs/{run['id']}/cancel").raise_for_status()
        with srv.storage.read() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM activity_events WHERE run_id = ? ORDER BY id", (run["id"],))]
        deadline = time.monotonic() + 10
        while not set(ids) <= set(heard) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ids and set(ids) <= set(heard), (ids, heard)
    finally:
        other.close()


def test_a_busy_pool_is_503_with_retry_after(srv, monkeypatch):
    pool = srv.storage.pool
    monkeypatch.setattr(pool, "timeout", 0.5)
    held = [pool.getconn() for _ in range(pool.max_size)]
    try:
        with _http(srv) as c:
            read = c.get("/sync/sellers", params={"since_rev": 0, "limit": 1})
            write = c.post("/sellers", json={"name": f"Busy {uuid.uuid4().hex[:6]}"})
        for answer in (read, write):
            assert answer.status_code == 503, answer.text
            assert answer.json()["detail"]["code"] == "UNAVAILABLE"
        assert read.headers["Retry-After"] == "1"
    finally:
        for conn in held:
            pool.putconn(conn)
    with _http(srv) as c:  # and answers again once connections free up
        c.get("/sync/sellers", params={"since_rev": 0, "limit": 1}).raise_for_status()


def test_incremental_total_estimate_is_the_same_bound_as_on_sqlite(srv):
    """min(rows in the table, max_rev - since_rev), counted over at most that many rows."""
    with _http(srv) as c:
        top = _feed(c, 0)
        count = top["total_estimate"]
        assert count == len(top["items"])  # exact from 0
        for back in (0, 3, 50, top["max_rev"] - 1):
            since = top["max_rev"] - back
            page = c.get("/sync/sellers", params={"since_rev": since, "limit": 1}).json()
            assert page["total_estimate"] == min(count, page["max_rev"] - since), back
