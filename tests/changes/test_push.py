"""Pushing the queue to the real reference server: coalescing, keys, refusals, rebase,
offline creates, undo, restarts, and the base contract's toggles."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time

import pytest

from sellerbench.api.client import ApiClient
from sellerbench.cache.store import Store
from sellerbench.changes.push import Backoff
from sellerbench.errors import AuthError
from sellerbench.workbench import Workbench, connect

from .mutation_model import seed_sellers, server_live

FAST = Backoff(base=0.01, cap=0.05)


@pytest.fixture
def open_wb(tmp_path):
    """``open_wb(server, role="analyst", name="cache")``: synced workbench + request log."""
    opened: list[Workbench] = []

    def factory(server, role: str = "analyst", name: str = "cache", **kw) -> Workbench:
        kw.setdefault("auto_push", False)
        wb = connect(server.url, server.tokens[role], tmp_path / f"{name}.duckdb", **kw)
        wb.client.backoff, wb.client.max_backoff = 0.005, 0.02
        wb.log = []
        wb.client._http.event_hooks["request"].append(
            lambda r: wb.log.append((r.method, r.url.path, r.headers.get("Idempotency-Key")))
        )
        opened.append(wb)
        wb.sync(progress=False)
        wb.log.clear()
        return wb

    yield factory
    for wb in opened:
        wb.close()


def _other(server) -> ApiClient:
    """Another analyst's client: changes the server behind the workbench's back."""
    return ApiClient(server.url, server.tokens["analyst"], backoff=0.005)


def _writes(wb) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in wb.log if m != "GET"]


def _assert_cache_is_server(wb, server) -> None:
    """After a sync, what the analyst sees is what the server holds."""
    wb.sync(progress=False)
    local = wb.sellers()
    assert dict(zip(local.normalized_name, local.flagged, strict=True)) == server_live(
        server.url, server.tokens["analyst"]
    )


def _ids(wb, n: int) -> list[str]:
    return sorted(wb.sellers()["id"])[:n]


def test_bulk_calls_are_coalesced(make_server, open_wb):
    server = make_server(n=80)
    wb = open_wb(server)
    ids = _ids(wb, 70)
    live_before = len(wb.sellers())
    wb.flag(ids[:30], True)
    wb.flag(ids[30:50], False)
    wb.delete(ids[50:60])
    wb.create([f"Coalesced {i}" for i in range(5)])
    wb.rename(ids[60], "Renamed Alone")
    report = wb.push()
    assert report.still_pending == 0 and report.failed == 0
    assert report.succeeded == 66
    assert sorted(_writes(wb)) == sorted(
        [
            ("POST", "/sellers/bulk/flag"),
            ("POST", "/sellers/bulk/flag"),
            ("POST", "/sellers/bulk/delete"),
            ("POST", "/sellers/bulk"),
            ("PATCH", f"/sellers/{ids[60]}"),
        ]
    )
    assert report.calls == 5 and report.coalesced == 4
    wb.log.clear()
    wb.restore(ids[50:60])
    wb.push()
    assert _writes(wb) == [("POST", "/sellers/bulk/restore")]
    _assert_cache_is_server(wb, server)
    shown = wb.sellers().set_index("id")
    assert len(shown) == live_before + 5 and shown.loc[ids[:30], "flagged"].all()


def test_one_request_per_change_when_not_coalescing(make_server, open_wb):
    server = make_server(n=30)
    wb = open_wb(server)
    wb.flag(_ids(wb, 12), True)
    report = wb.push(coalesce=False)
    assert report.calls == 12 and report.coalesced == 0 and report.succeeded == 12
    assert {p for _, p in _writes(wb)} == {f"/sellers/{i}" for i in _ids(wb, 12)}


def test_keys_come_from_mutation_ids_and_survive_retries_and_restarts(
    make_server, open_wb, tmp_path
):
    server = make_server(n=30)
    wb = open_wb(server)
    ids = _ids(wb, 6)
    wb.flag(ids[:5], True)
    wb.rename(ids[5], "Keyed Rename")
    server.faults.drop_after_rate = 1.0  # every write lands, every answer is lost
    report = wb.push(wait=0, backoff=FAST)
    assert report.succeeded == 0 and report.still_pending == 6
    first = {(m, p): k for m, p, k in wb.log if m != "GET"}
    assert all(k for k in first.values())
    # The client retried each call: always with the same key.
    assert len({k for m, p, k in wb.log if m != "GET"}) == 2
    with wb.store.connect() as con:
        rows = dict(con.execute("SELECT kind, id FROM mutations WHERE kind = 'rename'").fetchall())
        flag_ids = [r[0] for r in con.execute(
            "SELECT id FROM mutations WHERE kind = 'flag' ORDER BY id").fetchall()]
        batches = {r[0] for r in con.execute(
            "SELECT batch FROM mutations WHERE kind = 'flag'").fetchall()}
    assert first[("PATCH", f"/sellers/{ids[5]}")] == f"sb-{rows['rename']}"
    bulk_key = "sb-bulk-" + hashlib.sha256(",".join(flag_ids).encode()).hexdigest()[:48]
    assert first[("POST", "/sellers/bulk/flag")] == bulk_key
    assert batches == {bulk_key}  # the batch was fixed before the first send
    wb.close()

    server.faults.drop_after_rate = 0.0
    again = connect(server.url, server.tokens["analyst"], tmp_path / "cache.duckdb",
                    auto_push=False)
    log = []
    again.client._http.event_hooks["request"].append(
        lambda r: log.append((r.method, r.url.path, r.headers.get("Idempotency-Key")))
    )
    try:
        report = again.push()
        assert report.succeeded == 6 and report.still_pending == 0
        assert {(m, p): k for m, p, k in log if m != "GET"} == first
    finally:
        again.close()
    live = server_live(server.url, server.tokens["analyst"])
    assert "keyed rename" in live and sum(live.values()) >= 5


@pytest.mark.parametrize("base_only", [False, True], ids=["full", "base-only"])
def test_a_refusal_rolls_back_only_that_change(make_server, open_wb, base_only):
    server = make_server(n=30, base_only=base_only)
    wb = open_wb(server)
    a, b, c, gone = wb.sellers(flagged=False)["id"][:4]  # flagging them changes them
    old_name = wb.sellers().set_index("id").loc[a, "display_name"]
    wb.rename(a, "Contested Name")
    wb.flag([b, c, gone], True)
    with _other(server) as other:
        other.create_seller("contested name")  # someone else takes the name first
        other.delete_seller(gone)  # and deletes a seller we are flagging
    report = wb.push(backoff=FAST)
    assert report.failed == 2 and report.still_pending == 0
    failed = wb.failed().set_index("seller_id")
    assert "taken on the server" in failed.loc[a, "error"]
    assert "deleted there meanwhile" in failed.loc[gone, "error"]
    pending = wb.pending()
    assert set(pending["state"]) == {"failed"} and pending["error"].notna().all()
    shown = wb.sellers().set_index("id")
    assert shown.loc[a, "display_name"] == old_name  # its effect is gone from the view
    assert shown.loc[[b, c], "flagged"].all()
    wb.sync(progress=False)
    assert gone not in set(wb.sellers()["id"])
    live = server_live(server.url, server.tokens["analyst"])
    assert live["contested name"] is False and old_name.lower() in {n for n in live}


def test_a_pull_keeps_pending_changes_visible_until_confirmed(make_server, open_wb):
    server = make_server(n=20)
    wb = open_wb(server)
    target = _ids(wb, 1)[0]
    wb.flag(target, True)
    with _other(server) as other:
        other.update_seller(target, name="Renamed Elsewhere")
    server.faults.drop_before_rate = 1.0  # writes never arrive; reads do
    wb.sync(progress=False)
    row = wb.sellers().set_index("id").loc[target]
    assert row["display_name"] == "Renamed Elsewhere"  # the pull
    assert row["flagged"]  # and the pending flag on top of it
    assert len(wb.pending()) == 1
    server.faults.drop_before_rate = 0.0
    wb.sync(progress=False)
    assert wb.pending().empty
    row = wb.sellers().set_index("id").loc[target]
    assert row["display_name"] == "Renamed Elsewhere" and row["flagged"]


@pytest.mark.parametrize("base_only", [False, True], ids=["full", "base-only"])
def test_offline_create_with_follow_ups(make_server, open_wb, base_only):
    server = make_server(n=20, base_only=base_only)
    wb = open_wb(server)
    (local,) = wb.create(["Offline Shop"])
    wb.flag(local)
    wb.rename(local, "Offline Shop Ltd")
    server.faults.drop_before_rate = 1.0  # the create cannot get through
    wb.push(wait=0, backoff=FAST)
    assert [p for _, p in _writes(wb)] and all(p.startswith("/sellers") and "/flag" not in p
                                               and not p.startswith("/sellers/")
                                               for _, p in _writes(wb))
    assert len(wb.pending()) == 3
    server.faults.drop_before_rate = 0.0
    wb.log.clear()
    report = wb.push(backoff=FAST)
    assert report.still_pending == 0 and report.failed == 0
    writes = _writes(wb)
    assert writes[0] == ("POST", "/sellers")  # the create goes first
    server_id = writes[1][1].split("/")[2]
    assert all(server_id in p for _, p in writes[1:])
    shown = wb.sellers().set_index("id")
    assert local not in shown.index and shown.loc[server_id, "display_name"] == "Offline Shop Ltd"
    assert wb.flag(local, False) == [server_id]  # the local id keeps working
    wb.push()
    live = server_live(server.url, server.tokens["analyst"])
    assert live["offline shop ltd"] is False and "offline shop" not in live


def test_a_name_given_up_is_taken_only_after(make_server, open_wb):
    server = make_server(n=20)
    wb = open_wb(server)
    a, b = _ids(wb, 2)
    name_a = wb.sellers().set_index("id").loc[a, "display_name"]
    wb.rename(a, "Moved Away")
    wb.delete(b)
    name_b = wb.sellers(include_deleted=True).set_index("id").loc[b, "display_name"]
    wb.create([name_a, name_b])
    report = wb.push(backoff=FAST)
    assert report.failed == 0 and report.still_pending == 0
    live = server_live(server.url, server.tokens["analyst"])
    assert {"moved away", name_a.lower(), name_b.lower()} <= set(live)


def test_undo_levels_pushed_and_not(make_server, open_wb):
    server = make_server(n=20)
    wb = open_wb(server)
    x, y, z = _ids(wb, 3)
    before = server_live(server.url, server.tokens["analyst"])
    wb.flag(x, not before[wb.sellers().set_index("id").loc[x, "normalized_name"]])
    wb.push()
    wb.rename(y, "Undo Me")
    wb.push()
    wb.delete(z)  # never pushed
    wb.log.clear()
    assert "never sent" in wb.undo()
    assert _writes(wb) == []
    assert "reverting change(s) queued" in wb.undo()
    assert "reverting change(s) queued" in wb.undo()
    assert wb.undo() == "nothing to undo"
    wb.push()
    assert server_live(server.url, server.tokens["analyst"]) == before


def test_undo_of_pushed_deletes_creates_and_renames_is_set_based_and_exact(
    make_server, open_wb
):
    """Undo of sent changes other than flags (sets.other_inverses): 150 pushed deletes
    come back under their names and flags, 40 pushed creates go, a pushed rename goes
    back; a name another seller took meanwhile is left as it is and said."""
    server = make_server(n=200)
    wb = open_wb(server)
    before = server_live(server.url, server.tokens["analyst"])
    ids = _ids(wb, 151)
    wb.flag(ids[:30], True)
    wb.push()
    before = server_live(server.url, server.tokens["analyst"])
    shown = wb.sellers().set_index("id")
    taken = shown.loc[ids[150], "display_name"]
    flagged = set(wb.sellers(where="flagged")["id"])
    wb.delete(ids[:150])
    wb.push()
    with wb.store.connect() as con:
        queued = con.execute("SELECT count(*) FROM mutations").fetchall()[0][0]
    message = wb.undo()
    assert message == "undid delete of 150 seller(s): 150 reverting change(s) queued", message
    assert set(wb.sellers(where="flagged")["id"]) == flagged  # shown at once, as they were
    with wb.store.connect() as con:
        assert con.execute("SELECT count(*) FROM mutations").fetchall()[0][0] == queued + 150
    wb.push(backoff=FAST)
    assert server_live(server.url, server.tokens["analyst"]) == before

    made = wb.create([f"Made Here {i:02d}" for i in range(40)])
    wb.push()
    assert len(server_live(server.url, server.tokens["analyst"])) == len(before) + 40
    assert "40 reverting change(s) queued" in wb.undo()
    wb.push(backoff=FAST)
    assert server_live(server.url, server.tokens["analyst"]) == before
    assert wb.sellers(where=f"id IN ({', '.join(repr(i) for i in made)})").empty

    wb.rename(ids[0], "Renamed And Back")
    wb.push()
    assert "1 reverting change(s) queued" in wb.undo()
    wb.push(backoff=FAST)
    assert server_live(server.url, server.tokens["analyst"]) == before

    # A deleted seller's name taken meanwhile by another analyst: that delete stays, said.
    wb.delete([ids[150], ids[149]])
    wb.push()
    with _other(server) as other:
        other.create_seller(taken)
    wb.sync(progress=False)
    message = wb.undo()
    assert "1 reverting change(s) queued" in message, message
    assert f"the name {taken!r} is taken by another seller now" in message, message
    wb.push(backoff=FAST)
    live = server_live(server.url, server.tokens["analyst"])
    assert live == before  # the 150th is the other analyst's new seller, unflagged
    assert not wb.sellers(where=f"display_name = '{taken}'")["id"].isin([ids[150]]).any()


def test_undo_of_a_delete_on_base_recreates_with_a_new_id(make_server, open_wb):
    server = make_server(n=20, base_only=True)
    wb = open_wb(server)
    z = _ids(wb, 1)[0]
    wb.flag(z, True)
    name = wb.sellers().set_index("id").loc[z, "display_name"]
    wb.delete(z)
    wb.push()
    message = wb.undo()
    assert "NEW id" in message
    report = wb.push(backoff=FAST)
    assert report.failed == 0 and report.still_pending == 0
    shown = wb.sellers().set_index("display_name")
    assert shown.loc[name, "id"] != z and shown.loc[name, "flagged"]
    assert wb.flag(z, False) == [shown.loc[name, "id"]]  # the old id leads to the new one
    wb.push()
    assert server_live(server.url, server.tokens["analyst"])[name.lower()] is False


def test_queued_offline_then_pushed_after_a_restart(make_server, open_wb, tmp_path):
    server = make_server(n=20)
    wb = open_wb(server)
    ids = _ids(wb, 3)
    wb.close()
    offline = Workbench(Store(tmp_path / "cache.duckdb"), None, auto_push=False)
    offline.flag(ids, True)
    offline.create(["Queued While Offline"])
    offline.close()
    back = connect(server.url, server.tokens["analyst"], tmp_path / "cache.duckdb",
                   auto_push=False)
    try:
        assert len(back.pending()) == 4
        report = back.push()
        assert report.succeeded == 4 and report.still_pending == 0
    finally:
        back.close()
    live = server_live(server.url, server.tokens["analyst"])
    assert live["queued while offline"] is False
    assert sum(live.values()) >= 3


def test_auto_push_sends_at_once_and_never_raises_into_the_cell(make_server, open_wb, caplog):
    server = make_server(n=20)
    wb = open_wb(server, auto_push=True)
    a, b = _ids(wb, 2)
    wb.flag(a, True)
    assert wb.pending().empty
    server.faults.drop_before_rate = 1.0
    wb.flag(b, True)  # the API fails: the change stays queued, no exception
    assert len(wb.pending()) == 1
    server.faults.drop_before_rate = 0.0
    wb.push()
    assert wb.pending().empty
    viewer = open_wb(server, role="viewer", name="viewer", auto_push=True)
    viewer.flag(a, False)  # refused for the token: a note, the change stays queued
    assert "not pushed yet" in caplog.text  # logged (Jupyter shows WARNING on stderr)
    with pytest.raises(AuthError):
        viewer.push()
    assert len(viewer.pending()) == 1 and viewer.failed().empty


def test_base_contract_never_toggles_twice(make_server, open_wb):
    server = make_server(n=20, base_only=True)
    wb = open_wb(server)
    x, y = _ids(wb, 2)
    state = wb.sellers().set_index("id")
    wb.flag(x, not state.loc[x, "flagged"])
    wb.flag(y, bool(state.loc[y, "flagged"]))  # already so: read first, send nothing
    wb.create(["Landed Once"])
    server.faults.drop_after_rate = 1.0  # the toggle and the create land; answers are lost
    wb.push(wait=0, backoff=FAST)
    server.faults.drop_after_rate = 0.0
    report = wb.push(backoff=FAST)
    assert report.still_pending == 0 and report.failed == 0
    writes = _writes(wb)
    assert writes.count(("POST", f"/sellers/{x}/flag")) == 1
    assert ("POST", f"/sellers/{y}/flag") not in writes
    assert writes.count(("POST", "/sellers")) == 1
    live = server_live(server.url, server.tokens["analyst"])
    assert "landed once" in live
    wb.sync(progress=False)
    shown = wb.sellers().set_index("id")
    assert shown.loc[x, "flagged"] != state.loc[x, "flagged"]
    assert shown.loc[y, "flagged"] == state.loc[y, "flagged"]
    assert (wb.sellers()["display_name"] == "Landed Once").sum() == 1


def test_one_pusher_at_a_time_and_a_dead_holder_is_taken_over(make_server, open_wb):
    server = make_server(n=10)
    wb = open_wb(server)
    wb.flag(_ids(wb, 1), True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lease = f"{holder.pid} {socket.gethostname()} {time.time() + 60:.0f}"
        with wb.store.connect() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('push_lease', ?)", [lease])
        report = wb.push()
        assert report.calls == 0 and report.still_pending == 1
        assert f"process {holder.pid}" in report.note
    finally:
        holder.kill()
        holder.wait()
    report = wb.push()  # the holder is gone: its lease is taken over
    assert report.succeeded == 1 and report.still_pending == 0
    with wb.store.connect() as con:
        assert con.execute("SELECT count(*) FROM meta WHERE key = 'push_lease'").fetchall() == [
            (0,)
        ]


def test_listeners_hear_of_changes_and_pushes(make_server, open_wb):
    server = make_server(n=10)
    wb = open_wb(server)
    heard: list[str] = []
    wb.subscribe(heard.append)
    wb.flag(_ids(wb, 2), True)
    wb.undo()
    wb.create(["Heard Of"])
    wb.push()
    assert heard == ["mutation", "mutation", "mutation", "push"]


def test_auto_push_with_the_api_down_keeps_working(tmp_path):
    wb = connect("http://127.0.0.1:9", "not-a-real-token", tmp_path / "c.duckdb",
                 auto_push=True)
    try:
        ids = seed_sellers(wb.store, 3)
        assert wb.flag(ids[:2], True) == ids[:2]  # no exception: queued
        assert wb.create(["Made While Down"])[0].startswith("local:")
        assert len(wb.pending()) == 3
        report = wb.push(wait=0)
        assert report.still_pending == 3 and "not reachable" in report.note
    finally:
        wb.close()


def test_restore_on_base_says_the_id_changes(make_server, open_wb, caplog):
    server = make_server(n=10, base_only=True)
    wb = open_wb(server)
    z = _ids(wb, 1)[0]
    name = wb.sellers().set_index("id").loc[z, "display_name"]
    wb.delete(z)
    wb.push()
    assert wb.restore(z) == [z]
    assert "get NEW ids" in caplog.text
    assert wb.push(backoff=FAST).succeeded == 1
    (new_id,) = wb.sellers().set_index("display_name").loc[[name], "id"]
    assert new_id != z
    assert name.lower() in server_live(server.url, server.tokens["analyst"])
