"""Watching runs from the notebook: the widget, resuming cut streams, polling, cleanup."""

from __future__ import annotations

import threading

import httpx
import psutil
import pytest

import sellerbench as sb
from sellerbench.api.client import ApiClient
from sellerbench.cache.store import Store
from sellerbench.runs import control as runs
from sellerbench.workbench import Workbench

from ..netproxy import FaultProxy
from .runutil import TWO_DEPARTMENTS, event_ids, wait_for

WATCH_THREADS = ("sellerbench-watch", "sellerbench-activity")


@pytest.fixture
def srv(make_server):
    return make_server(n=200, run_speed=3.0)


@pytest.fixture
def admin(srv, tmp_path):
    with sb.connect(srv.url, srv.tokens["admin"], tmp_path / "cache.duckdb") as wb:
        yield wb


def watch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(WATCH_THREADS)]


def client_connections(srv) -> int:
    """Open TCP connections from this process to the server (its own side excluded)."""
    port = int(srv.url.rsplit(":", 1)[1])
    return sum(
        1 for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def found_by(srv, run_id: str) -> set[str]:
    with srv.storage.read() as conn:
        return {r[0] for r in conn.execute(
            "SELECT id FROM sellers WHERE last_seen_run_id = ?", (run_id,)
        )}


def cached_found_by(wb, run_id: str) -> set[str]:
    return set(wb.sql("SELECT id FROM sellers WHERE last_seen_run_id = ?", [run_id])["id"])


def test_watch_a_demo_run_to_completion(srv, admin):
    admin.sync(progress=False)
    run = admin.start_run("watched run", TWO_DEPARTMENTS)
    widget = admin.watch(run["id"], sync_every=0.5)
    try:
        assert widget.wait(60), widget.watcher
        state = widget.watcher.runs[run["id"]]
        assert state.status == "completed"
        assert state.event_ids == event_ids(srv, run["id"])
        panel = widget._panels[run["id"]]
        products = panel.bars["products"]
        assert products.value == products.max == state.counter("products_total")
        assert panel.bars["categories"].value == 3 and panel.bars["departments"].value == 2
        assert "completed" in panel.title.value
        assert f"sellers found <b>{state.counter('sellers_found')}</b>" in panel.counters.value
        # sellers found triggered syncs, debounced: far fewer syncs than sellers found
        found = [i for i in state.recent if i.type == "seller_found"]
        assert 1 <= widget.watcher.syncs < len(found)
    finally:
        widget.close()
    assert cached_found_by(admin, run["id"]) == found_by(srv, run["id"])
    assert admin.runs().set_index("id").loc[run["id"], "status"] == "completed"


def test_a_cut_stream_resumes_with_no_event_lost_or_shown_twice(srv, tmp_path):
    # Cut three connections at awkward places: inside the first event, mid-way, late.
    with FaultProxy(srv.url, cuts=[40, 1500, 2900]) as proxy, sb.connect(
        proxy.url, srv.tokens["admin"], tmp_path / "cache.duckdb"
    ) as wb:
        run = wb.start_run("cut run", TWO_DEPARTMENTS)
        widget = wb.watch(run["id"], sync_every=0.5)
        try:
            assert widget.wait(60), widget.watcher
            state = widget.watcher.runs[run["id"]]
        finally:
            widget.close()
        assert proxy.cut_count == 3
        # the cut inside the answer's headers is retried by the client's stream() itself
        assert state.reconnects >= 2
        assert state.source == "stream"  # resumed the stream, did not fall back to polling
        assert state.event_ids == event_ids(srv, run["id"])  # none lost, none twice
        assert state.status == "completed"
        assert cached_found_by(wb, run["id"]) == found_by(srv, run["id"])
    assert not watch_threads()


def test_a_stream_dropped_under_the_watcher_resumes(make_server, tmp_path):
    srv = make_server(n=200, run_speed=1.5)
    with sb.connect(srv.url, srv.tokens["admin"], tmp_path / "cache.duckdb") as wb:
        run = wb.start_run("dropped", TWO_DEPARTMENTS)
        watcher = runs.watcher(wb, run["id"], sync_sellers=False)
        try:
            wait_for(lambda: len(watcher.runs[run["id"]].event_ids) >= 5)
            assert watcher.drop_stream(run["id"])
            assert watcher.wait(60)
        finally:
            watcher.close()
        state = watcher.runs[run["id"]]
        assert state.reconnects >= 1 and state.duplicates_dropped == 0
        assert state.event_ids == event_ids(srv, run["id"])


def test_nothing_is_left_behind_when_the_widget_is_closed_mid_run(make_server, tmp_path):
    srv = make_server(n=200, run_speed=0.3)  # long enough to close it mid-run
    with sb.connect(srv.url, srv.tokens["admin"], tmp_path / "cache.duckdb") as wb:
        run = wb.start_run("closed early", TWO_DEPARTMENTS)
        wb.active_runs()  # the client's keep-alive connection exists before watching
        threads_before = set(threading.enumerate())
        connections_before = client_connections(srv)
        widget = wb.watch(run["id"])
        wait_for(lambda: srv.app.state.simulator.open_streams == 1)
        wait_for(lambda: widget.watcher.runs[run["id"]].event_ids)
        widget.close()
        assert widget.watcher.done
        assert not watch_threads()
        left = {t for t in threading.enumerate() if t.name != "AnyIO worker thread"}
        assert left <= threads_before
        wait_for(lambda: srv.app.state.simulator.open_streams == 0, timeout=10)
        assert client_connections(srv) <= connections_before
        assert wb.run(run["id"])["status"] == "running"  # closing a widget stops no run
        wb.cancel_run(run["id"])


def test_closing_the_workbench_closes_its_watchers(make_server, tmp_path):
    srv = make_server(n=100, run_speed=0.3)
    wb = sb.connect(srv.url, srv.tokens["admin"], tmp_path / "cache.duckdb")
    run = wb.start_run("outlives its workbench", TWO_DEPARTMENTS)
    widget = wb.watch(run["id"])
    engine = runs.watcher(wb)
    wait_for(lambda: srv.app.state.simulator.open_streams == 2)
    wb.close()
    assert widget.watcher.done and engine.done
    assert not watch_threads()
    wait_for(lambda: srv.app.state.simulator.open_streams == 0, timeout=10)


def test_a_refused_token_stops_the_watcher_with_the_reason(srv, tmp_path):
    with sb.connect(srv.url, "sb_not_a_token", tmp_path / "cache.duckdb") as wb:
        watcher = runs.watcher(wb)
        assert watcher.wait(10)
        assert watcher.message.startswith("stopped") and "token" in watcher.message
        assert "sb_not_a_token" not in watcher.message
    assert not watch_threads()


def test_nothing_is_left_behind_when_the_runs_end(srv, admin):
    first = admin.start_run("one", ["cat-media-comics"])
    second = admin.start_run("two", ["cat-fashion-watches"])
    connections_before = client_connections(srv)  # the client's keep-alive one
    watcher = runs.watcher(admin, sync_every=0.5)  # every active run
    assert watcher.wait(60)
    assert {first["id"], second["id"]} <= set(watcher.runs)
    assert all(s.status == "completed" for s in watcher.runs.values())
    assert watcher.message == "all runs ended"
    wait_for(lambda: not watch_threads(), timeout=5)  # ended on their own, no close()
    wait_for(lambda: srv.app.state.simulator.open_streams == 0, timeout=10)
    assert client_connections(srv) <= connections_before


class NoStreamTransport(httpx.BaseTransport):
    """The real server, except that the activity stream is missing (an older server)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.refused = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/activity"):
            self.refused += 1
            body = {"detail": {"code": "NOT_FOUND", "message": "no such endpoint"}}
            return httpx.Response(404, json=body, request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_polls_active_runs_where_the_stream_is_not_available(srv, tmp_path):
    transport = NoStreamTransport()
    client = ApiClient(srv.url, srv.tokens["admin"], transport=transport)
    with Workbench(Store(tmp_path / "cache.duckdb"), client) as wb:
        run = wb.start_run("polled", TWO_DEPARTMENTS)
        widget = wb.watch(run["id"], interval=0.2, sync_every=0.5)
        try:
            assert widget.wait(60), widget.watcher
            state = widget.watcher.runs[run["id"]]
        finally:
            widget.close()
        assert transport.refused == 1 and state.source == "poll"
        assert state.status == "completed"
        assert state.counter("products_searched") == state.counter("products_total")
        assert widget.watcher.syncs >= 1
        assert cached_found_by(wb, run["id"]) == found_by(srv, run["id"])
    assert not watch_threads()  # polling stopped with the run


def test_text_mode_prints_progress_until_the_run_ends(srv, admin):
    import io

    run = admin.start_run("in a terminal", ["cat-media-books"])
    out = io.StringIO()
    watcher = runs.watch_text(admin, run["id"], out=out, sync_sellers=False)
    lines = out.getvalue().splitlines()
    assert watcher.done and lines[-1] == "all runs ended"
    assert any("completed" in line and run["id"][:8] in line for line in lines)
    assert any("running" in line for line in lines)


def test_run_control_for_admins_and_a_clear_message_for_others(srv, admin, tmp_path):
    with sb.connect(srv.url, srv.tokens["analyst"], tmp_path / "analyst.duckdb") as analyst:
        with pytest.raises(sb.AuthError, match=r"admin\.automation"):
            analyst.start_run("not mine", TWO_DEPARTMENTS)
        run = admin.start_run("controlled", TWO_DEPARTMENTS)
        for verb in (analyst.pause_run, analyst.resume_run, analyst.cancel_run):
            with pytest.raises(sb.AuthError, match=r"admin\.automation") as caught:
                verb(run["id"])
            assert srv.tokens["analyst"] not in str(caught.value)
    from sellerbench.errors import ApiValidationError, ConflictError

    assert admin.pause_run(run["id"])["status"] == "paused"
    assert admin.resume_run(run["id"])["status"] == "running"
    assert admin.cancel_run(run["id"])["status"] == "cancelled"
    with pytest.raises(ConflictError) as conflict:
        admin.resume_run(run["id"])
    assert conflict.value.code == "INVALID_TRANSITION"
    with pytest.raises(ApiValidationError, match="unknown run action"):
        runs.control(admin, run["id"], "explode")


def test_active_runs_live_and_from_the_cache_when_offline(make_server, tmp_path):
    srv = make_server(n=100, run_speed=0.05)
    cache = tmp_path / "cache.duckdb"
    with sb.connect(srv.url, srv.tokens["admin"], cache) as wb:
        run = wb.start_run("long one", TWO_DEPARTMENTS)
        live = wb.active_runs()
        assert live.attrs["source"] == "api" and list(live["id"]) == [run["id"]]
        assert wb.run(run["id"])["status"] == "running"
        wb.sync(progress=False)
        wb.cancel_run(run["id"])
    dead = ApiClient("http://127.0.0.1:9", srv.tokens["admin"], retries=0, timeout=2)
    with Workbench(Store(cache), dead) as offline:
        cached = offline.active_runs()
        assert cached.attrs["source"] == "cache"
        assert list(cached["id"]) == [run["id"]] and cached["status"][0] == "running"
        seen = offline.run(run["id"])  # as the cache last saw it, shaped like the API's
        assert seen["status"] == "running" and seen["category_ids"] == TWO_DEPARTMENTS
        assert seen["started_at"] == run["started_at"]
        assert list(cached.columns) == list(offline.runs().columns)


def test_plot_history_shows_found_and_new_sellers_per_run(srv, admin):
    admin.sync(progress=False)
    fig = runs.plot_history(admin)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["sellers found", "new sellers"]
    finished = admin.runs().query("status in ('completed', 'failed', 'cancelled')")
    assert len(ax.get_lines()[0].get_xdata()) == len(finished) > 0
    fig.canvas.draw()  # the legend stands beside the axes, never over a run's point
    assert not ax.get_legend().get_window_extent().overlaps(ax.get_window_extent())


def test_cli_lists_runs_and_watches_one(srv, admin, tmp_path, capsys):
    from sellerbench.cli import main

    run = admin.start_run("from the cli", ["cat-media-comics"])
    options = ["--api-url", srv.url, "--token", srv.tokens["viewer"],
               "--cache", str(tmp_path / "cli.duckdb")]
    assert main(["runs", "watch", run["id"], *options]) == 0
    watched = capsys.readouterr().out
    assert "completed" in watched and "all runs ended" in watched
    assert main(["runs", *options]) == 0
    listed = capsys.readouterr().out
    assert "from the cli" in listed and "completed" in listed
    assert srv.tokens["viewer"] not in watched + listed


def test_the_watchers_syncs_run_while_a_cell_changes_sellers(srv, admin):
    """ipykernel 7: the watcher syncs on its thread while a cell flags and renames on the
    main thread, and the widget is closed from a third: nothing but completed work, no
    error from either side, and every change the cell made is pushed and synced."""
    admin.sync(progress=False)
    ids = list(admin.sellers()["id"][:30])
    run = admin.start_run("busy cell", TWO_DEPARTMENTS)
    widget = admin.watch(run["id"], sync_every=0.2)
    expected: dict[str, tuple[bool, str]] = {}
    for round_ in range(6):
        for i, seller in enumerate(ids):
            flagged = (i + round_) % 2 == 0
            name = f"busy cell {i} r{round_}"
            admin.flag(seller, flagged)
            admin.rename(seller, name)
            expected[seller] = (flagged, name)
    assert widget.wait(60)
    closer = threading.Thread(target=widget.close)
    closer.start()
    closer.join(10)
    assert not closer.is_alive()
    assert not [e for e in widget.watcher.errors if e.startswith("sync failed")]
    assert widget.watcher.syncs >= 1
    admin.push()
    admin.sync(progress=False)
    assert admin.pending().empty
    shown = admin.sellers().set_index("id").loc[ids]
    assert {s: (bool(r.flagged), r.display_name) for s, r in shown.iterrows()} == expected
    marks = ",".join("?" * len(ids))
    with srv.storage.read() as conn:
        server = {r[0]: (bool(r[1]), r[2]) for r in conn.execute(
            f"SELECT id, flagged, display_name FROM sellers WHERE id IN ({marks})", ids)}
    assert server == expected
