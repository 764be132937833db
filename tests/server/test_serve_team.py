"""``sellerbench serve --db postgresql://... --workers 2``: one API from two processes.

A run is left running by a previous server; the two workers then:
- resume it once (one "resumed after a server restart" event: one simulator, not two),
  and advance it one product at a time to completion (no product searched twice);
- stream its activity to a client whichever worker the client reaches;
- answer writes and reads consistently across new connections (each may reach either);
- stop, both, when the parent is told to (by PID).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from sellerbench.server.embedded import start as start_embedded

from .test_serve import READY

pytestmark = pytest.mark.postgres


def _serve(tmp_path, db: str, *args: str) -> tuple[str, list[str], subprocess.Popen]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sellerbench", "serve", "--port", "0", "--db", db,
         "--tokens-file", str(tmp_path / "tokens.json"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"serve exited: {proc.stderr.read()}")
            if line.startswith(READY):
                return line.strip().split(" at ")[1], lines, proc
            lines.append(line)
        raise AssertionError("serve never became ready")
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise


def _events(url: str, token: str, run_id: str) -> list[tuple[int, str, dict]]:
    """Every event of the run's stream, until it ends (the run's final status)."""
    events = []
    with httpx.stream("GET", f"{url}/collection/runs/{run_id}/activity", timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status_code == 200
        event_id, kind = None, None
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((event_id, kind, json.loads(line[6:])))
    return events


def test_two_workers_serve_one_api_and_run_the_simulator_once(tmp_path, pg_cluster):
    db = pg_cluster.database()
    # A previous server leaves a run running (slowly) behind.
    first = start_embedded(n=50, seed=9, data_dir=tmp_path / "first", db=db, run_speed=0.01)
    try:
        admin = {"Authorization": f"Bearer {first.tokens['admin']}"}
        with httpx.Client(base_url=first.url, headers=admin, timeout=30) as c:
            categories = [x["id"] for x in c.get("/collection/categories").json()["categories"]]
            run = c.post("/collection/runs",
                         json={"name": "team run", "category_ids": categories[:2]}).json()
            c.post(f"/collection/runs/{run['id']}/start").raise_for_status()
    finally:
        first.stop()
    url, lines, proc = _serve(tmp_path, db, "--workers", "2", "--run-speed", "8")
    try:
        assert sum(READY in line for line in lines) == 0  # the one ready line came last
        tokens = json.loads((tmp_path / "tokens.json").read_text())
        assert tokens["admin"] != first.tokens["admin"] or tokens == first.tokens
        events = _events(url, tokens["viewer"], run["id"])
        ids = [e[0] for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        resumed = [e for e in events if e[2].get("reason") == "resumed after a server restart"]
        assert len(resumed) == 1, resumed  # one simulator took the run over, not two
        searched = [e[2]["products_searched"] for e in events if e[1] == "progress"]
        assert searched == list(range(searched[0], searched[0] + len(searched)))
        assert events[-1][1] == "status" and events[-1][2]["status"] in ("completed", "failed")
        # Writes and reads on fresh connections (each may reach either worker) agree.
        analyst = {"Authorization": f"Bearer {tokens['analyst']}"}
        made = []
        for i in range(12):
            with httpx.Client(base_url=url, headers=analyst, timeout=30) as c:
                made.append(c.post("/sellers", json={"name": f"Team seller {i}"}).json()["id"])
            with httpx.Client(base_url=url, headers=analyst, timeout=30) as c:
                page = c.get("/sync/sellers", params={"since_rev": 0, "limit": 10_000}).json()
                assert set(made) <= {s["id"] for s in page["items"]}
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert len(children) == 2, children
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
