"""PostgreSQL: the rev feed misses nothing when writers commit out of rev order.

Eight writers per round take revs in order (writer 0 the lowest), then commit in the
reverse order, each holding its transaction open until a client following the feed
has synced at least once after the previous commit. A feed that answered the highest
rev handed out (not the safe one) would move the client past the revs still open,
and the client would never see them. The client here is both a plain mirror following
``since_rev`` over HTTP and a real Workbench cache; each must end equal to the server.
"""

from __future__ import annotations

import itertools
import random
import threading
import time

import httpx
import pytest

from sellerbench.server.storage.records import now_ts
from sellerbench.workbench import connect

pytestmark = pytest.mark.postgres

WRITERS = 8
ROUNDS = 5


@pytest.fixture(scope="module")
def storage():
    return "postgresql"


class Follower:
    """A client syncing in a loop: an HTTP mirror and a Workbench, counting its syncs."""

    def __init__(self, srv, cache_path) -> None:
        self.http = httpx.Client(base_url=srv.url, timeout=30,
                                 headers={"Authorization": f"Bearer {srv.tokens['viewer']}"})
        self.wb = connect(srv.url, srv.tokens["viewer"], cache_path, auto_push=False)
        self.mirror: dict[str, dict] = {}
        self.deliveries: dict[tuple[str, int], int] = {}  # (id, rev) -> times delivered
        self.since = 0
        self.syncs = 0
        self.max_revs: list[int] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def pull(self) -> None:
        cursor = None
        for _ in range(1_000):
            params = {"since_rev": self.since, "limit": 50}
            if cursor:
                params["cursor"] = cursor
            page = self.http.get("/sync/sellers", params=params).raise_for_status().json()
            for item in page["items"]:
                self.mirror[item["id"]] = item
                key = (item["id"], item["rev"])
                self.deliveries[key] = self.deliveries.get(key, 0) + 1
            if not page["has_more"]:
                self.max_revs.append(page["max_rev"])
                self.since = page["max_rev"]
                return
            cursor = page["next_cursor"]
        raise AssertionError("the feed did not end")

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.pull()
                self.wb.sync(progress=False)
                self.syncs += 1
        except BaseException as exc:  # reported by the test
            self.error = exc

    def wait_syncs(self, count: int) -> None:
        """Until ``count`` more whole syncs (mirror and Workbench) have run."""
        target = self.syncs + count
        deadline = time.monotonic() + 30
        while self.syncs < target:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, "the follower stopped syncing"
            time.sleep(0.002)


def _round(storage, ids: list[str], follower: Follower, commits: list[int]) -> None:
    """WRITERS transactions that take revs in order and commit in reverse order."""
    turn = [threading.Event() for _ in range(WRITERS + 1)]
    done = [threading.Event() for _ in range(WRITERS + 1)]
    done[WRITERS].set()  # the last writer waits for nobody
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            turn[i].wait(30)
            with storage.write() as tx:
                rev = tx.next_rev()
                tx.execute(
                    "UPDATE sellers SET flagged = 1 - flagged, updated_at = ?, rev = ?"
                    " WHERE id = ?", (now_ts(), rev, ids[i]),
                )
                turn[i + 1].set()  # the next writer takes a higher rev while we hold ours
                assert done[i + 1].wait(30), "the writer above never committed"
                follower.wait_syncs(2)  # the client has looked since that commit
            commits.append(rev)
        except BaseException as exc:
            errors.append(exc)
        finally:
            turn[i + 1].set()
            done[i].set()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    turn[0].set()
    for t in threads:
        t.join(120)
    assert not errors, errors


def test_out_of_order_commits_lose_no_row(make_server, tmp_path):
    srv = make_server(n=200)
    truth_sql = "SELECT id, flagged, rev, deleted_at FROM sellers"
    with srv.storage.read() as conn:
        ids = sorted(r[0] for r in conn.execute(truth_sql).fetchall())
    rng = random.Random(15)
    follower = Follower(srv, tmp_path / "cache.duckdb")
    thread = threading.Thread(target=follower.run)
    thread.start()
    commits: list[int] = []
    try:
        follower.wait_syncs(1)
        for _ in range(ROUNDS):
            _round(srv.storage, rng.sample(ids, WRITERS), follower, commits)
        follower.wait_syncs(2)  # every writer has committed: the feed must catch up
    finally:
        follower.stop.set()
        thread.join(60)
    assert follower.error is None, follower.error
    try:
        # The commits really were out of rev order: every round in reverse.
        inversions = sum(1 for a, b in itertools.pairwise(commits) if a > b)
        assert inversions >= ROUNDS * (WRITERS - 1)
        assert follower.max_revs == sorted(follower.max_revs), "max_rev went backwards"
        with srv.storage.read() as conn:
            truth = {r[0]: (bool(r[1]), r[2], r[3]) for r in conn.execute(truth_sql)}
        mirror = {k: (v["flagged"], v["rev"], v["deleted_at"]) for k, v in follower.mirror.items()}
        assert mirror == truth, "the mirror missed a committed change"
        assert set(follower.deliveries.values()) == {1}, "a change was delivered twice"
        cache = follower.wb.sql("SELECT id, flagged, deleted_at IS NOT NULL AS gone FROM sellers")
        assert len(cache) == len(truth) and cache["id"].is_unique
        got = {r.id: (bool(r.flagged), bool(r.gone)) for r in cache.itertuples()}
        assert got == {k: (v[0], v[2] is not None) for k, v in truth.items()}
    finally:
        follower.wb.close()
        follower.http.close()
