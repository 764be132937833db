"""The server's run simulator, run control and activity stream, over loopback HTTP."""

from __future__ import annotations

import json
import threading
import time

import pytest

from sellerbench.server.embedded import start

from .runutil import event_ids, http, insert_run, read_events, run_of, wait_for

FINAL = ("completed", "failed", "cancelled")


@pytest.fixture
def fast(make_server):
    """A server of its own whose runs take about a second."""
    return make_server(n=200, run_speed=4.0)


def test_a_started_run_walks_everything_and_finds_sellers(fast):
    run_id = insert_run(fast)
    with fast.storage.read() as conn:
        rev_before = conn.execute("SELECT value FROM meta WHERE key = 'rev'").fetchone()[0]
    with http(fast) as client:
        started = client.post(f"/collection/runs/{run_id}/start").json()
        assert started["status"] == "running" and started["started_at"]
        assert (started["departments_total"], started["categories_total"]) == (2, 3)
        wait_for(lambda: run_of(fast, run_id)["status"] in FINAL)
    run = run_of(fast, run_id)
    assert run["status"] == "completed"
    assert run["products_searched"] == run["products_total"] > 0
    assert run["categories_completed"] == run["categories_total"] == 3
    assert run["departments_completed"] == run["departments_total"] == 2
    assert run["sellers_found"] >= run["sellers_new"] > 0
    assert run["duration_seconds"] > 0
    with fast.storage.read() as conn:
        found = conn.execute(
            "SELECT id, created_at >= ?, rev, times_seen FROM sellers WHERE last_seen_run_id = ?",
            (started["started_at"], run_id),
        ).fetchall()
        events = [json.loads(r[0]) for r in conn.execute(
            "SELECT data FROM activity_events WHERE run_id = ? AND type = 'seller_found'",
            (run_id,),
        )]
    assert len(found) == run["sellers_found"] == len(events)
    created = {seller_id for seller_id, is_new, _, _ in found if is_new}
    assert created == {e["seller_id"] for e in events if e["new"]}
    assert len(created) == run["sellers_new"]
    # each find is a normal write: a fresh rev, and times_seen counts the run
    assert all(rev > int(rev_before) and seen >= 1 for _, _, rev, seen in found)


def test_the_stream_sends_every_event_in_order_and_ends_after_the_final_status(fast):
    run_id = insert_run(fast)
    with http(fast) as client:
        client.post(f"/collection/runs/{run_id}/start").raise_for_status()
        events = list(read_events(client, run_id))  # returns only because the stream ends
    assert [e.id for e in events] == event_ids(fast, run_id)
    assert [e.id for e in events] == sorted({e.id for e in events})
    assert {e.type for e in events} <= {"progress", "seller_found", "status", "error"}
    assert events[0].type == "status" and events[0].data["status"] == "running"
    assert events[-1].type == "status" and events[-1].data["status"] == "completed"
    progress = [e for e in events if e.type == "progress"]
    assert progress[-1].data["products_searched"] == progress[-1].data["products_total"]
    found = [e for e in events if e.type == "seller_found"]
    assert found and all(e.data["run_id"] == run_id and e.data["seller_id"] for e in found)


def test_last_event_id_replays_every_kept_event_after_it(fast):
    run_id = insert_run(fast)
    with http(fast) as client:
        client.post(f"/collection/runs/{run_id}/start").raise_for_status()
        wait_for(lambda: run_of(fast, run_id)["status"] in FINAL)
        kept = event_ids(fast, run_id)
        middle = kept[len(kept) // 2]
        replay = [e.id for e in read_events(client, run_id, last_event_id=middle)]
        assert replay == [i for i in kept if i > middle]
        # after the final event there is nothing to send: the stream ends at once
        assert list(read_events(client, run_id, last_event_id=kept[-1])) == []
        bad = client.get(f"/collection/runs/{run_id}/activity", headers={"Last-Event-ID": "x"})
        assert bad.status_code == 422 and bad.json()["detail"]["code"] == "VALIDATION"


def test_a_quiet_stream_sends_pings(make_server):
    srv = make_server(n=50)
    srv.app.state.settings.extras["sse_ping_seconds"] = 0.2
    run_id = insert_run(srv)  # pending: nothing happens
    pings = 0
    with http(srv, "viewer") as client, client.stream(
        "GET", f"/collection/runs/{run_id}/activity"
    ) as response:
        for line in response.iter_lines():
            pings += line == ": ping"
            if pings == 3:
                break
    assert pings == 3


def test_transitions_and_the_409s(make_server):
    srv = make_server(n=50, run_speed=0.05)  # slow: the run stays running meanwhile
    run_id = insert_run(srv)
    with http(srv) as client:

        def post(action: str) -> tuple[int, str]:
            r = client.post(f"/collection/runs/{run_id}/{action}")
            body = r.json()
            return r.status_code, body["status"] if r.status_code == 200 else body["detail"]["code"]

        assert post("pause") == (409, "INVALID_TRANSITION")
        assert post("resume") == (409, "INVALID_TRANSITION")
        assert post("start") == (200, "running")
        assert post("start") == (409, "INVALID_TRANSITION")
        assert post("resume") == (409, "INVALID_TRANSITION")
        assert post("pause") == (200, "paused")
        assert post("pause") == (409, "INVALID_TRANSITION")
        assert post("start") == (409, "INVALID_TRANSITION")
        assert post("resume") == (200, "running")
        assert post("cancel") == (200, "cancelled")
        for action in ("start", "pause", "resume", "cancel"):
            assert post(action) == (409, "INVALID_TRANSITION")
        message = client.post(f"/collection/runs/{run_id}/pause").json()["detail"]["message"]
        assert "cancelled" in message and "running" in message
        missing = client.post("/collection/runs/no-such-run/start")
        assert missing.status_code == 404 and missing.json()["detail"]["code"] == "NOT_FOUND"
    statuses = [e.data["status"] for e in read_events(http(srv), run_id) if e.type == "status"]
    assert statuses == ["running", "paused", "running", "cancelled"]
    assert run_of(srv, run_id)["status"] == "cancelled"


def test_a_paused_run_stands_still_and_resumes_where_it_stopped(make_server):
    srv = make_server(n=50, run_speed=2.0)
    run_id = insert_run(srv)
    with http(srv) as client:
        client.post(f"/collection/runs/{run_id}/start").raise_for_status()
        wait_for(lambda: run_of(srv, run_id)["products_searched"] >= 2)
        paused = client.post(f"/collection/runs/{run_id}/pause").json()
        assert paused["paused_at"]
        time.sleep(0.6)  # several products' worth of time at this speed
        still = run_of(srv, run_id)
        assert still["products_searched"] == paused["products_searched"]
        assert still["duration_seconds"] == paused["duration_seconds"]
        resumed = client.post(f"/collection/runs/{run_id}/resume").json()
        assert resumed["paused_at"] is None
        wait_for(lambda: run_of(srv, run_id)["status"] in FINAL)
    assert run_of(srv, run_id)["products_searched"] == run_of(srv, run_id)["products_total"]


def test_a_transition_with_an_idempotency_key_acts_once(make_server):
    srv = make_server(n=50, run_speed=0.05)
    run_id = insert_run(srv)
    with http(srv) as client:
        key = {"Idempotency-Key": "start-once"}
        first = client.post(f"/collection/runs/{run_id}/start", headers=key)
        again = client.post(f"/collection/runs/{run_id}/start", headers=key)
        assert first.status_code == again.status_code == 200
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json() == first.json()
        other = client.post(f"/collection/runs/{run_id}/pause", headers=key)
        assert other.status_code == 422
        assert other.json()["detail"]["code"] == "IDEMPOTENCY_KEY_REUSED"
        client.post(f"/collection/runs/{run_id}/cancel").raise_for_status()
    statuses = [e.data["status"] for e in read_events(http(srv), run_id) if e.type == "status"]
    assert statuses == ["running", "cancelled"]


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_run_control_needs_admin_automation(make_server, role):
    srv = make_server(n=50)
    run_id = insert_run(srv)
    with http(srv, role) as client, http(srv, None) as anonymous:
        for action in ("start", "pause", "resume", "cancel"):
            r = client.post(f"/collection/runs/{run_id}/{action}")
            assert r.status_code == 403
            assert r.json()["detail"]["code"] == "FORBIDDEN"
            assert "admin.automation" in r.json()["detail"]["message"]
            assert anonymous.post(f"/collection/runs/{run_id}/{action}").status_code == 401
        # reading the activity stream needs only read
        with client.stream("GET", f"/collection/runs/{run_id}/activity") as r:
            assert r.status_code == 200
        assert anonymous.get(f"/collection/runs/{run_id}/activity").status_code == 401
    assert run_of(srv, run_id)["status"] == "pending"


def test_after_a_restart_a_running_run_goes_on(tmp_path):
    srv = start(n=50, run_speed=0.5, data_dir=tmp_path)
    try:
        run_id = insert_run(srv)
        with http(srv) as client:
            client.post(f"/collection/runs/{run_id}/start").raise_for_status()
        wait_for(lambda: run_of(srv, run_id)["products_searched"] >= 1)
    finally:
        srv.stop()
    stopped_at = run_of_file(tmp_path, run_id)
    assert stopped_at["status"] == "running"  # left running by the stopped server

    srv = start(n=50, run_speed=4.0, data_dir=tmp_path)
    try:
        wait_for(lambda: run_of(srv, run_id)["products_searched"] > stopped_at["products_searched"])
        wait_for(lambda: run_of(srv, run_id)["status"] in FINAL)
        events = list(read_events(http(srv, "viewer"), run_id))
    finally:
        srv.stop()
    reasons = [e.data.get("reason") for e in events if e.type == "status"]
    assert "resumed after a server restart" in reasons
    assert events[-1].data["status"] == "completed"
    progress = [e.data["products_searched"] for e in events if e.type == "progress"]
    assert progress == list(range(1, len(progress) + 1))  # no product searched twice


def run_of_file(folder, run_id):
    from sellerbench.server.storage.core import SQLiteStorage

    storage = SQLiteStorage(folder / "server.sqlite3")
    try:
        with storage.read() as conn:
            row = conn.execute(
                "SELECT status, products_searched FROM collection_runs WHERE id = ?", (run_id,)
            ).fetchone()
    finally:
        storage.close()
    return {"status": row[0], "products_searched": row[1]}


def test_stopping_the_server_ends_open_streams_and_the_simulator(make_server):
    srv = make_server(n=50, run_speed=0.05)
    run_id = insert_run(srv)
    with http(srv) as client:
        client.post(f"/collection/runs/{run_id}/start").raise_for_status()
    outcome: list[str] = []

    def listen() -> None:
        try:
            for _ in read_events(http(srv, "viewer"), run_id):
                pass
            outcome.append("ended")
        except Exception as exc:  # a connection cut at the graceful timeout
            outcome.append(type(exc).__name__)

    reader = threading.Thread(target=listen)
    reader.start()
    wait_for(lambda: srv.app.state.simulator.open_streams >= 1)
    srv.stop()
    reader.join(15)
    assert not reader.is_alive()
    # The stream ends as a stream (its last chunk sent), not cut when uvicorn's
    # graceful timeout runs out on a connection that would never close.
    assert outcome == ["ended"]
    assert not srv.running
    assert not srv.app.state.simulator.running
    assert srv.app.state.simulator.open_streams == 0
