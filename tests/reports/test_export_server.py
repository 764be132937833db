"""Exports streamed from the real reference server, routing, and broken downloads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sellerbench.api.client import ApiClient
from sellerbench.cache.store import Store
from sellerbench.errors import ApiError, AuthError, ExportError, TransportError
from sellerbench.workbench import Workbench, connect

from .exportdata import AWKWARD_NAMES

SERVER_NAMES = [name for name in AWKWARD_NAMES if name.isprintable()]


@pytest.fixture(scope="module")
def awkward_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A server of its own: 200 demo sellers plus the awkward names the API accepts
    (no control characters), read-only here."""
    from sellerbench.server.embedded import start

    srv = start(n=200, seed=11, data_dir=tmp_path_factory.mktemp("export_server"))
    with ApiClient(srv.url, srv.tokens["analyst"]) as client:
        for name in SERVER_NAMES:
            client.create_seller(name)
    yield srv
    srv.stop()


@pytest.fixture
def remote(awkward_server: Any, tmp_path: Path) -> Iterator[Workbench]:
    """A workbench on that server whose cache was never synced."""
    wb = connect(awkward_server.url, awkward_server.tokens["viewer"], tmp_path / "c.duckdb")
    yield wb
    wb.close()


def server_names(srv: Any, flagged: bool | None = None) -> list[str]:
    params = {} if flagged is None else {"flagged": str(flagged).lower()}
    response = httpx.get(f"{srv.url}/export/sellers/json", params=params,
                         headers={"Authorization": f"Bearer {srv.tokens['viewer']}"})
    response.raise_for_status()
    return sorted(r["display_name"] for r in response.json())


def test_auto_streams_from_the_server_when_the_cache_was_never_synced(
    remote: Workbench, awkward_server: Any, out: Path
) -> None:
    report = remote.export(out / "all.parquet", progress=False)
    assert report.source == "server"
    assert "never synced" in report.route_reason
    table = pq.read_table(out / "all.parquet").to_pandas()
    assert sorted(table["display_name"]) == server_names(awkward_server)
    assert report.rows == len(table) >= 200 + len(SERVER_NAMES)
    assert str(pq.read_table(out / "all.parquet").schema.field("created_at").type) == \
        "timestamp[us, tz=UTC]"


@pytest.mark.parametrize("suffix", [".csv", ".json", ".ndjson"])
def test_server_route_writes_the_same_layout_as_the_cache(
    remote: Workbench, awkward_server: Any, out: Path, tmp_path: Path, suffix: str
) -> None:
    via_server = remote.export(out / f"server{suffix}", source="server", progress=False)
    synced = connect(awkward_server.url, awkward_server.tokens["viewer"],
                     tmp_path / "synced.duckdb")
    try:
        synced.sync(progress=False)
        via_cache = synced.export(out / f"cache{suffix}", progress=False)
    finally:
        synced.close()
    assert via_cache.source == "cache"
    read = {
        ".csv": lambda p: pd.read_csv(p, dtype=str, keep_default_na=False),
        ".json": lambda p: pd.read_json(p, orient="records", dtype=False),
        ".ndjson": lambda p: pd.read_json(p, lines=True, dtype=False),
    }[suffix]
    from_server = read(out / f"server{suffix}").sort_values("id").reset_index(drop=True)
    from_cache = read(out / f"cache{suffix}").sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(from_server, from_cache)
    assert via_server.rows == via_cache.rows
    if suffix == ".csv":  # the server sends formulas as they are; we neutralise them
        assert "'=HYPERLINK(\"http://x\",\"click\")" in set(from_server["display_name"])


def test_flagged_is_passed_to_the_server(
    remote: Workbench, awkward_server: Any, out: Path
) -> None:
    report = remote.export(out / "flagged.csv", flagged=True, source="server", progress=False)
    frame = pd.read_csv(out / "flagged.csv", dtype=str, keep_default_na=False)
    assert set(frame["flagged"]) <= {"true"}
    assert report.rows == len(server_names(awkward_server, flagged=True))


def test_server_route_applies_the_local_filters_too(remote: Workbench, out: Path) -> None:
    report = remote.export(out / "s.csv", source="server", search="comma",
                           columns=["display_name"], progress=False)
    assert report.rows == 1
    assert pd.read_csv(out / "s.csv")["display_name"].tolist() == ["Comma, Inc."]


def test_server_route_says_pending_changes_are_missing(
    awkward_server: Any, tmp_path: Path, out: Path
) -> None:
    wb = connect(awkward_server.url, awkward_server.tokens["analyst"], tmp_path / "p.duckdb",
                 auto_push=False)
    try:
        wb.sync(progress=False)
        some = wb.sellers().iloc[0]["id"]
        wb.flag([some], not bool(wb.sellers().iloc[0]["flagged"]))
        report = wb.export(out / "srv.csv", source="server", progress=False)
        assert "1 pending change(s) are not in it" in report.route_reason
        auto = wb.export(out / "auto.csv", progress=False)
        assert auto.source == "cache"
    finally:
        wb.close()


def test_a_refused_download_writes_nothing(awkward_server: Any, tmp_path: Path, out: Path) -> None:
    wb = connect(awkward_server.url, "not-a-token", tmp_path / "x.duckdb")
    try:
        with pytest.raises(AuthError) as caught:
            wb.export(out / "all.csv", source="server", progress=False)
    finally:
        wb.close()
    assert "not-a-token" not in str(caught.value)
    assert list(out.iterdir()) == []


# -- a connection that drops mid-stream (a fault a server can't easily produce on cue) --


class _Breaking(httpx.SyncByteStream):
    """Yields the first rows of a CSV, then the connection drops."""

    def __iter__(self) -> Iterator[bytes]:
        yield b"id,display_name,normalized_name,platform,times_seen,flagged,created_at,updated_at\n"
        for i in range(1000):
            yield f"s{i},Seller {i},seller {i},ebay,1,false,2024-01-01T00:00:00Z,".encode()
            yield b"2024-01-01T00:00:00Z\n"
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


def _dropping(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/health":
        return httpx.Response(200, json={"status": "ok", "api_version": "1", "features": []})
    return httpx.Response(200, headers={"Content-Type": "text/csv"}, stream=_Breaking())


def test_a_dropped_download_leaves_nothing_at_the_target(tmp_path: Path, out: Path) -> None:
    client = ApiClient("http://export.test", "secret-token", retries=0,
                       transport=httpx.MockTransport(_dropping))
    wb = Workbench(Store(tmp_path / "c.duckdb"), client)
    target = out / "all.parquet"
    target.write_bytes(b"the previous export")
    try:
        with pytest.raises(TransportError) as caught:
            wb.export(target, source="server", overwrite=True, progress=False)
    finally:
        wb.close()
    assert isinstance(caught.value, ApiError) and caught.value.retryable
    assert "nothing was written" in "".join(getattr(caught.value, "__notes__", []))
    assert "secret-token" not in str(caught.value)
    assert target.read_bytes() == b"the previous export"
    assert sorted(p.name for p in out.iterdir()) == ["all.parquet"]


def test_a_malformed_download_is_an_export_error(tmp_path: Path, out: Path) -> None:
    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Type": "application/json"},
                              content=b'[{"id": "a", "display_name": ')

    client = ApiClient("http://export.test", "t", retries=0,
                       transport=httpx.MockTransport(garbage))
    wb = Workbench(Store(tmp_path / "c.duckdb"), client)
    try:
        with pytest.raises(ExportError):
            wb.export(out / "all.json", source="server", progress=False)
    finally:
        wb.close()
    assert list(out.iterdir()) == []
