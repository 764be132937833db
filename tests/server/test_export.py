"""Streamed exports: header first, every live seller once, filters, odd names intact."""

from __future__ import annotations

import csv
import io
import json

import pytest

N = 5_000  # more than a few internal chunks


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    from sellerbench.server.embedded import start

    srv = start(n=N, seed=11, data_dir=tmp_path_factory.mktemp("export"))
    yield srv
    srv.stop()


def live_count(c, **params) -> int:
    return c.get("/sync/sellers", params={"limit": 1, **params}).json()["total_estimate"]


def test_csv_streams_every_live_seller(big, client):
    c = client(big, "viewer")
    with c.stream("GET", "/export/sellers/csv") as answer:
        assert answer.headers["content-type"].startswith("text/csv")
        assert "content-length" not in answer.headers  # streamed, not buffered
        chunks = list(answer.iter_bytes())
    text = b"".join(chunks).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["id", "display_name", "normalized_name"]
    assert "deleted_at" not in rows[0]
    body = rows[1:]
    assert len(body) == len({r[0] for r in body}) == live_count(c)
    names = {r[1] for r in body}
    assert any('"' in n for n in names) and any("," in n for n in names)
    assert any(n[0] in "=+-@" for n in names)


def test_csv_flagged_filter(big, client):
    c = client(big)
    text = c.get("/export/sellers/csv", params={"flagged": True}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and all(r["flagged"] == "true" for r in rows)
    assert len(rows) == live_count(c, flagged=True)


def test_json_export_is_one_array_of_sellers(big, client):
    c = client(big)
    items = json.loads(c.get("/export/sellers/json").content)
    assert len(items) == live_count(c)
    assert all(s["deleted_at"] is None for s in items)
    unflagged = json.loads(c.get("/export/sellers/json", params={"flagged": False}).content)
    assert len(unflagged) == live_count(c, flagged=False)
    assert not any(s["flagged"] for s in unflagged)


def test_empty_export(make_server, client):
    srv = make_server(n=0)
    c = client(srv)
    assert c.get("/export/sellers/json").json() == []
    assert c.get("/export/sellers/csv").text.splitlines()[0].startswith("id,")


def test_streams_hold_one_chunk_at_a_time(big):
    """The generators behind the endpoints: every piece holds at most CHUNK rows, so the
    server's memory does not grow with the table."""
    from sellerbench.server.http.export import CHUNK, csv_stream, json_stream

    for stream in (csv_stream(big.storage, None, True), json_stream(big.storage, None, True)):
        sizes = [len(piece) for piece in stream]
        assert len(sizes) >= N // CHUNK
        assert max(sizes) < CHUNK * 600  # a row is a few hundred bytes
