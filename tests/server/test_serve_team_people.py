"""Issue 24's acceptance on ``sellerbench serve --db postgresql://... --workers 2``: two
analysts added with the CLI flag sellers through either process; every change's history
names its author; one is revoked: its next request on *each* process (a kept-alive
connection to each, told apart through /proc) is 401 within a second, while the other
analyst keeps working on both; ``users list`` never shows a token."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from .test_people import add, users
from .test_serve_team import _serve

pytestmark = pytest.mark.postgres


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _worker_of(server_port: int, client_port: int, workers: list[int]) -> int | None:
    """The worker PID holding the server side of the connection from ``client_port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if int(local.split(":")[1], 16) == server_port and \
                int(remote.split(":")[1], 16) == client_port:
            for pid in workers:
                if inode in _socket_inodes(pid):
                    return pid
    return None


def _one_per_worker(
    url: str, token: str, workers: list[int]
) -> dict[int, http.client.HTTPConnection]:
    """A kept-alive connection to each worker process, each having answered once."""
    parts = urlsplit(url)
    kept: dict[int, http.client.HTTPConnection] = {}
    for _ in range(60):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        status = _get(conn, token)
        assert status == 200
        owner = _worker_of(parts.port, conn.sock.getsockname()[1], workers)
        if owner is not None and owner not in kept:
            kept[owner] = conn
        else:
            conn.close()
        if len(kept) == len(workers):
            return kept
    raise AssertionError(f"connections never reached every worker: {list(kept)}")


def _get(conn: http.client.HTTPConnection, token: str) -> int:
    conn.request("GET", "/sync/sellers?limit=1", headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    response.read()
    return response.status


def test_two_analysts_on_two_workers_and_a_revocation_that_takes(tmp_path, pg_cluster):
    db = pg_cluster.database()
    url, _, proc = _serve(tmp_path, db, "--workers", "2", "--demo", "200")
    try:
        workers = [int(p) for p in subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()]
        assert len(workers) == 2
        tokens = {name: add(db, name, "analyst") for name in ("ann", "bob")}
        with httpx.Client(base_url=url, timeout=30) as probe:
            page = probe.get("/sync/sellers", params={"limit": 40, "flagged": "false"},
                             headers={"Authorization": f"Bearer {tokens['ann']}"}).json()
        ids = [s["id"] for s in page["items"]]
        mine = {"ann": ids[:20], "bob": ids[20:]}
        for name, token in tokens.items():
            for seller in mine[name]:  # a fresh connection each: either worker answers
                with httpx.Client(base_url=url, timeout=30,
                                  headers={"Authorization": f"Bearer {token}"}) as c:
                    c.post(f"/sellers/{seller}/flag", json={"flagged": True}).raise_for_status()
        for name, sellers in mine.items():
            for seller in sellers:
                with httpx.Client(base_url=url, timeout=30,
                                  headers={"Authorization": f"Bearer {tokens['bob']}"}) as c:
                    items = c.get(f"/sellers/{seller}/history").json()["items"]
                assert [(i["action"], i["user"]) for i in items if i["user"]] == [
                    ("flag", name)], (seller, items)
        ann_conns = _one_per_worker(url, tokens["ann"], workers)
        bob_conns = _one_per_worker(url, tokens["bob"], workers)
        users(db, "revoke", "ann")
        revoked = time.monotonic()  # committed: the command has returned
        refused_after = {}
        for pid, conn in ann_conns.items():
            while (status := _get(conn, tokens["ann"])) == 200:
                assert time.monotonic() - revoked < 1.0, f"worker {pid} still lets ann in"
                time.sleep(0.02)
            assert status == 401
            refused_after[pid] = time.monotonic() - revoked
        for pid, conn in bob_conns.items():
            assert _get(conn, tokens["bob"]) == 200, f"worker {pid} refused bob"
        print(f"ann refused by each worker after: "
              f"{', '.join(f'{s * 1000:.0f} ms' for s in refused_after.values())}")
        assert set(refused_after) == set(workers)
        listed = users(db, "list").stdout + users(db, "list", "--json").stdout
        assert "ann" in listed and "bob" in listed
        demo = json.loads((tmp_path / "tokens.json").read_text())
        for token in [*tokens.values(), *demo.values()]:
            assert token not in listed and token[3:20] not in listed
        for conn in [*ann_conns.values(), *bob_conns.values()]:
            conn.close()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
