"""People of a team server (issue 24), on both storages: users made with the CLI, the
permission matrix per role, revocation and rotation that take within a second (activity
streams of the token end too), who changed what in a seller's history and in a run's
status events, and the ext users API."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest

from sellerbench.cli import main

from .srvutil import error_of
from .test_permissions import ALLOWED, ENDPOINTS

SELLER = str(uuid.uuid4())
EXT_ENDPOINTS = [
    ("GET", f"/sellers/{SELLER}/history", None, "read"),
    ("GET", "/users", None, "admin"),
    ("POST", "/users", {"name": "matrix-made", "role": "viewer"}, "admin"),
    ("POST", "/users/nobody/revoke", None, "admin"),
    ("POST", "/users/nobody/rotate", None, "admin"),
]


def db_of(srv) -> str:
    """What `sellerbench users --db` takes for this server: its file or its URL."""
    path = srv.storage.path
    return str(path) if path is not None else srv.storage.url


def users(db: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``sellerbench users ARGS --db DB`` through the CLI's entry point (in this process:
    a process start costs seconds on a loaded machine; one test below runs real ones)."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["users", *args, "--db", db]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse refusing an argument
            code = int(exc.code or 0)
    done = subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
    if check:
        assert done.returncode == 0, done.stderr
    return done


def add(db: str, name: str, role: str) -> str:
    """A new user's token, as the CLI prints it (its last line)."""
    return users(db, "add", name, "--role", role).stdout.strip().splitlines()[-1]


def http(srv, token: str) -> httpx.Client:
    return httpx.Client(base_url=srv.url, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def refused_within(client: httpx.Client, path: str, seconds: float) -> float:
    """Seconds until ``GET path`` answers 401 (fails after ``seconds``)."""
    began = time.monotonic()
    while True:
        answer = client.get(path)
        elapsed = time.monotonic() - began
        if answer.status_code == 401:
            assert error_of(answer) == (401, "UNAUTHORIZED")
            return elapsed
        assert answer.status_code == 200, answer.text
        assert elapsed < seconds, f"still answered after {elapsed:.2f} s"
        time.sleep(0.02)


@pytest.fixture
def team(make_server):
    return make_server(n=40)


def test_permission_matrix_for_users_made_with_the_cli(team):
    db = db_of(team)
    tokens = {role: add(db, f"{role}-1", role) for role in ("viewer", "analyst", "admin")}
    assert len(set(tokens.values())) == 3 and all(t.startswith("sb_") for t in tokens.values())
    for method, path, body, needs in [*ENDPOINTS, *EXT_ENDPOINTS]:
        kwargs = {"json": body} if body is not None else {}
        for role, token in tokens.items():
            with http(team, token) as c:
                answer = c.request(method, path, **kwargs)
            if role in ALLOWED[needs]:
                assert answer.status_code not in (401, 403), (method, path, role, answer.text)
            else:
                assert error_of(answer) == (403, "FORBIDDEN"), (method, path, role)
        with httpx.Client(base_url=team.url) as anonymous:
            assert error_of(anonymous.request(method, path, **kwargs)) == (401, "UNAUTHORIZED")
    listed = users(db, "list").stdout
    as_json = json.loads(users(db, "list", "--json").stdout)
    assert {"viewer-1", "analyst-1", "admin-1", "analyst", "viewer", "admin"} <= {
        p["name"] for p in as_json}
    assert {p["role"] for p in as_json if p["name"].endswith("-1")} == {
        "viewer", "analyst", "admin"}
    assert all(p["last_seen_at"] for p in as_json if p["name"].endswith("-1"))
    for text in (listed, json.dumps(as_json)):
        for token in [*tokens.values(), *team.tokens.values()]:
            assert token not in text and token[3:20] not in text


def test_cli_refusals_say_what_to_do(team):
    db = db_of(team)
    add(db, "dup", "viewer")
    again = users(db, "add", "dup", "--role", "viewer", check=False)
    assert again.returncode == 1 and "exists already" in again.stderr
    assert "Traceback" not in again.stderr
    bad = users(db, "add", "no spaces", "--role", "viewer", check=False)
    assert bad.returncode == 1 and "a user name is" in bad.stderr
    role = users(db, "add", "x", "--role", "wizard", check=False)
    assert role.returncode == 2 and "invalid choice" in role.stderr
    missing = users(db, "revoke", "nobody", check=False)
    assert missing.returncode == 1 and "no user named 'nobody'" in missing.stderr
    nowhere = users(str(team.data_dir / "absent.sqlite3"), "list", check=False)
    assert nowhere.returncode == 2 and "give --db" in nowhere.stderr
    # the real command, in a process of its own: a token printed once, exit codes
    real = [sys.executable, "-m", "sellerbench", "users"]
    made = subprocess.run([*real, "add", "proc", "--role", "viewer", "--db", db],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    with http(team, token) as c:
        assert c.get("/sync/sellers").status_code == 200
    refused = subprocess.run([*real, "add", "proc", "--role", "viewer", "--db", db],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr


def test_revoke_and_rotate_take_within_a_second(team):
    db = db_of(team)
    token = add(db, "leaver", "analyst")
    other = add(db, "stayer", "analyst")
    with http(team, token) as mine, http(team, other) as theirs:
        assert mine.get("/sync/sellers").status_code == 200
        users(db, "revoke", "leaver")
        assert refused_within(mine, "/sync/sellers", 1.0) < 1.0
        assert theirs.get("/sync/sellers").status_code == 200
        again = users(db, "revoke", "leaver")
        assert "revoked already" in again.stdout
        listed = json.loads(users(db, "list", "--json").stdout)
        assert next(p for p in listed if p["name"] == "leaver")["revoked_at"]
        fresh = users(db, "rotate", "stayer").stdout.strip().splitlines()[-1]
        assert refused_within(theirs, "/sync/sellers", 1.0) < 1.0
        with http(team, fresh) as renewed:
            assert renewed.get("/sync/sellers").status_code == 200
        back = users(db, "rotate", "leaver").stdout.strip().splitlines()[-1]
        with http(team, back) as returned:  # a rotation lifts a revocation
            assert returned.get("/sync/sellers").status_code == 200
        assert mine.get("/sync/sellers").status_code == 401  # the old token stays refused


def test_an_open_activity_stream_of_a_revoked_token_ends(make_server):
    srv = make_server(n=20, run_speed=0.02)  # the run stays running for minutes
    db = db_of(srv)
    watcher = add(db, "watcher", "viewer")
    with http(srv, srv.tokens["admin"]) as admin:
        category = admin.get("/collection/categories").json()["categories"][0]["id"]
        run = admin.post("/collection/runs", json={"name": "long", "category_ids": [category]})
        run_id = run.json()["id"]
        admin.post(f"/collection/runs/{run_id}/start").raise_for_status()
        ended: list[float] = []
        opened = threading.Event()

        def watch() -> None:
            with httpx.stream("GET", f"{srv.url}/collection/runs/{run_id}/activity",
                              headers={"Authorization": f"Bearer {watcher}"},
                              timeout=30) as response:
                assert response.status_code == 200
                for _ in response.iter_lines():
                    opened.set()
            ended.append(time.monotonic())

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        assert opened.wait(10)
        time.sleep(1.0)
        assert not ended  # the stream stays open while the token is good
        users(db, "revoke", "watcher")
        revoked_at = time.monotonic()  # committed: the CLI has exited
        thread.join(10)
        assert ended and ended[0] - revoked_at < 1.0, (ended, revoked_at)
        admin.post(f"/collection/runs/{run_id}/cancel").raise_for_status()


def test_history_and_status_events_name_the_author(team):
    db = db_of(team)
    ann, bob = add(db, "ann", "analyst"), add(db, "bob", "analyst")
    with http(team, ann) as a, http(team, bob) as b, http(team, team.tokens["admin"]) as admin:
        ids = [s["id"] for s in a.get("/sync/sellers", params={"limit": 3}).json()["items"]]
        created = a.post("/sellers", json={"name": "Made by Ann"}).json()["id"]
        a.post(f"/sellers/{ids[0]}/flag", json={"flagged": True}).raise_for_status()
        b.patch(f"/sellers/{ids[0]}", json={"name": "Bob's name"}).raise_for_status()
        b.post("/sellers/bulk/flag", json={"ids": ids, "flagged": False}).raise_for_status()
        a.post("/sellers/bulk/delete", json={"ids": [ids[1]]}).raise_for_status()
        b.post("/sellers/bulk/restore", json={"ids": [ids[1]]}).raise_for_status()
        b.delete(f"/sellers/{created}").raise_for_status()
        b.delete(f"/sellers/{created}").raise_for_status()  # changes nothing: no entry
        a.post(f"/sellers/{ids[2]}/flag", json={"flagged": False})  # unchanged: no entry

        def authored(seller_id: str) -> list[tuple[str, str | None]]:
            items = a.get(f"/sellers/{seller_id}/history").json()["items"]
            revs = [i["rev"] for i in items]
            assert revs == sorted(revs)
            return [(i["action"], i["user"]) for i in items if i["user"] is not None]

        assert authored(ids[0]) == [("flag", "ann"), ("rename", "bob"), ("flag", "bob")]
        assert authored(ids[1])[-2:] == [("delete", "ann"), ("restore", "bob")]
        assert authored(created) == [("create", "ann"), ("delete", "bob")]
        first = a.get(f"/sellers/{ids[0]}/history").json()["items"]
        assert {"display_name": "Bob's name"} in [i["changes"] for i in first]
        assert error_of(a.get(f"/sellers/{uuid.uuid4()}/history")) == (404, "NOT_FOUND")
        # run control: the status events of the run say who asked
        category = admin.get("/collection/categories").json()["categories"][0]["id"]
        run = admin.post("/collection/runs", json={"name": "by admin", "category_ids": [category]})
        run_id = run.json()["id"]
        admin.post(f"/collection/runs/{run_id}/cancel").raise_for_status()
        with admin.stream("GET", f"/collection/runs/{run_id}/activity") as stream:
            data = [json.loads(line[6:]) for line in stream.iter_lines()
                    if line.startswith("data: ")]
        assert [(d["status"], d.get("user")) for d in data] == [("cancelled", "admin")]


def test_users_api(team, client):
    admin = client(team, "admin")
    made = admin.post("/users", json={"name": "api-made", "role": "analyst"})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert error_of(admin.post("/users", json={"name": "api-made", "role": "viewer"})) == (
        409, "DUPLICATE")
    assert error_of(admin.post("/users", json={"name": "x y", "role": "viewer"}))[0] == 422
    assert error_of(admin.post("/users", json={"name": "z", "role": "root"}))[0] == 422
    assert error_of(admin.post("/users/nobody/revoke")) == (404, "NOT_FOUND")
    assert error_of(admin.post("/users/admin/revoke")) == (422, "VALIDATION")  # not yourself
    assert error_of(admin.post("/users/admin/rotate")) == (422, "VALIDATION")
    with http(team, token) as own:
        assert own.get("/sync/sellers").status_code == 200
        assert admin.post("/users/api-made/revoke").json() == {"name": "api-made",
                                                                "revoked": True}
        assert own.get("/sync/sellers").status_code == 401  # this process: at once
    rotated = admin.post("/users/api-made/rotate").json()
    assert rotated["role"] == "analyst" and rotated["token"] != token
    listed = admin.get("/users").json()["users"]
    assert {"name", "role", "created_at", "last_seen_at", "revoked_at"} == set(listed[0])
    assert token not in json.dumps(listed) and rotated["token"] not in json.dumps(listed)


def test_users_api_is_not_served_base_only(make_server, client):
    srv = make_server(n=5, base_only=True)
    admin = client(srv, "admin")
    assert admin.get("/users").status_code == 404
    assert admin.get(f"/sellers/{uuid.uuid4()}/history").status_code in (404, 405)


V1_USERS = """CREATE TABLE IF NOT EXISTS users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    permissions TEXT NOT NULL
);"""


def test_a_version_1_database_is_migrated(storage, db_url, tmp_path):
    """A database written before people had roles keeps its users and tokens."""
    from sellerbench.server.http.auth import TokenBook
    from sellerbench.server.storage import core
    from sellerbench.server.storage.people import hash_token, list_users

    start, end = core.TABLES.index("CREATE TABLE IF NOT EXISTS users"), None
    end = core.TABLES.index(");", start) + 2
    old = core.TABLES[:start] + V1_USERS + core.TABLES[end:]
    old = old[:old.index("CREATE TABLE IF NOT EXISTS changes")] + old[
        old.index("CREATE TABLE IF NOT EXISTS idempotency_keys"):]
    rows = [("user-analyst", "analyst", '["seller_collection.read", "seller_collection.write"]'),
            ("user-boss", "boss", '["seller_collection.read", "seller_collection.write",'
             ' "admin.automation"]'),
            ("user-viewer", "viewer", '["seller_collection.read"]')]
    stamp = "2026-01-02T03:04:05.000000Z"
    url = db_url(storage)
    if url is None:
        import sqlite3

        target: str = str(tmp_path / "v1.sqlite3")
        conn = sqlite3.connect(target)
        conn.executescript(old)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.executemany("INSERT INTO users VALUES (?, ?, ?)", rows)
        conn.execute("INSERT INTO tokens VALUES (?, 'user-boss', ?)", (hash_token("t1"), stamp))
        conn.commit()
        conn.close()
    else:
        import psycopg

        from sellerbench.server.storage.postgres import _statements, pg_tables

        target = url
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in _statements(pg_tables(old)):
                conn.execute(statement)
            conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO users VALUES (%s, %s, %s)", rows)
            conn.execute("INSERT INTO tokens VALUES (%s, 'user-boss', %s)",
                         (hash_token("t1"), stamp))
    migrated = core.connect(target)
    try:
        people = {p.name: p for p in list_users(migrated)}
        assert {n: p.role for n, p in people.items()} == {
            "analyst": "analyst", "boss": "admin", "viewer": "viewer"}
        assert people["boss"].created_at == stamp and people["boss"].revoked_at is None
        user = TokenBook(migrated).user_for("t1")
        assert user is not None and user.name == "boss" and user.can("admin.automation")
        with migrated.read() as conn:
            version = conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        assert version == str(core.SCHEMA_VERSION)
    finally:
        migrated.close()
    core.connect(target).close()  # a second open finds nothing left to migrate


def test_a_revoked_demo_user_stays_revoked_across_a_restart(make_server, tmp_path):
    first = make_server(n=5, data_dir=tmp_path / "demo")
    db, old = db_of(first), dict(first.tokens)
    users(db, "revoke", "viewer")
    first.stop()
    second = make_server(n=5, data_dir=tmp_path / "demo", db=None if first.storage.path
                         else db)
    assert set(second.tokens) == {"analyst", "admin"}  # no new token for the revoked one
    assert second.tokens["analyst"] == old["analyst"]  # the others keep theirs
    written = json.loads((tmp_path / "demo" / "tokens.json").read_text())
    assert set(written) == {"analyst", "admin"}
    with http(second, old["viewer"]) as c:
        assert c.get("/sync/sellers").status_code == 401
