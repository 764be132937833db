"""The fast forms of sync pages equal the plain ones: SQLite-written JSON items are the
bytes orjson writes for the records, "lines" read as CSV are the table built from rows,
and a stored value that breaks the line format falls back to rows, in the same answer."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sellerbench.server.http import sync as api_sync
from sellerbench.server.storage import feed
from sellerbench.server.storage.records import format_ts

ARROW = "application/vnd.apache.arrow.stream"
NAMES = [
    'Quote "Corner" Shop', "Back\\slash Books", "Müller & Söhne, Antiquitäten",
    "東京レトロ 🎌 vintage", "=SUM(A1) Deals", "tab\u00a0nbsp and 'single' quotes",
    "x" * 200, "Zero-width\u200bjoiner", "Ελληνικές Αντίκες",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A small server of this module's own, plus sellers with awkward names, one of
    them flagged, one renamed, one deleted."""
    from sellerbench.server.embedded import start

    srv = start(n=120, seed=3, data_dir=tmp_path_factory.mktemp("forms"))
    import httpx

    with httpx.Client(base_url=srv.url, timeout=30,
                      headers={"Authorization": f"Bearer {srv.tokens['analyst']}"}) as c:
        made = [c.post("/sellers", json={"name": name}).raise_for_status().json()
                for name in NAMES]
        c.patch(f"/sellers/{made[0]['id']}", json={"flagged": True}).raise_for_status()
        c.patch(f"/sellers/{made[1]['id']}", json={"name": 'Re"named\\'}).raise_for_status()
        c.delete(f"/sellers/{made[2]['id']}").raise_for_status()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def storage():
    """SQLite only: the printf forms are SQLite's (PostgreSQL pages are always rows)."""
    return "sqlite"


def pages(srv, **kind):
    """The same page in every form, read in one snapshot."""
    with srv.storage.read() as conn:
        if "since_rev" in kind:
            return {form: feed.rev_page(conn, feed.SELLERS, cursor=None, form=form, **kind)
                    for form in ("rows", "json", "lines")}
        return {form: feed.base_page(conn, feed.SELLERS, cursor=None, form=form, **kind)
                for form in ("rows", "json")}


@pytest.mark.parametrize("since_rev", [0, 50, 10**6])
def test_rev_pages_agree_in_every_form(server, since_rev):
    page = pages(server, since_rev=since_rev, limit=10_000)
    assert page["json"].form == "json" and page["lines"].form == "lines"
    assert page["json"].json(feed.SELLERS, with_rev=True) == \
        page["rows"].json(feed.SELLERS, with_rev=True)
    table = api_sync.lines_table(page["lines"])
    assert table is not None
    assert table.equals(api_sync.rows_table(page["rows"]))
    assert table.num_rows == len(page["rows"].rows)


@pytest.mark.parametrize("with_rev", [True, False])
@pytest.mark.parametrize(
    "filters",
    [{}, {"include_deleted": True}, {"flagged": True}, {"flagged": False},
     {"updated_since": "2025-06-01T00:00:00.000000Z"}],
)
def test_base_pages_agree_and_count_exactly(server, with_rev, filters):
    kind = {"limit": 100, "updated_since": None, "include_deleted": False, "flagged": None,
            "with_rev": with_rev, **filters}
    page = pages(server, **kind)
    assert page["json"].json(feed.SELLERS, with_rev=with_rev) == \
        page["rows"].json(feed.SELLERS, with_rev=with_rev)
    where = [] if kind["include_deleted"] else ["deleted_at IS NULL"]
    if kind["flagged"] is not None:
        where.append(f"flagged = {int(kind['flagged'])}")
    if kind["updated_since"]:
        where.append(f"updated_at >= '{kind['updated_since']}'")
    with server.storage.read() as conn:
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        exact = conn.execute(f"SELECT count(*) FROM sellers{clause}").fetchone()[0]
    assert page["json"].total_estimate == exact


def test_awkward_names_survive_both_answers(server, client):
    c = client(server)
    body = c.get("/sync/sellers", params={"since_rev": 0, "limit": 10_000}).json()
    names = {s["display_name"] for s in body["items"]}
    assert {'Re"named\\', *NAMES[2:]} <= names
    answer = c.get("/sync/sellers", params={"since_rev": 0, "limit": 10_000},
                   headers={"Accept": ARROW})
    table = pa.ipc.open_stream(answer.content).read_all()
    assert as_api(table) == body["items"]


def as_api(table: pa.Table) -> list[dict]:
    """Arrow rows written the way the JSON answer writes them."""
    rows = table.to_pylist()
    for row in rows:
        for key in ("created_at", "updated_at", "deleted_at"):
            if row[key] is not None:
                row[key] = format_ts(row[key])
    return rows


def test_a_value_that_breaks_the_line_format_falls_back_to_rows(make_server, client):
    srv = make_server(n=20)
    with srv.storage.write() as tx:  # no API writes this; an imported database might
        tx.execute("UPDATE sellers SET platform_id = ?, rev = ? WHERE rowid = 3",
                   (f"a{feed.FIELD_SEP}b\nc", tx.next_rev()))
    with srv.storage.read() as conn:
        lines = feed.rev_page(conn, feed.SELLERS, since_rev=0, cursor=None, limit=100,
                              form="lines")
    assert api_sync.lines_table(lines) is None
    c = client(srv)
    body = c.get("/sync/sellers", params={"since_rev": 0, "limit": 100}).json()
    answer = c.get("/sync/sellers", params={"since_rev": 0, "limit": 100},
                   headers={"Accept": ARROW})
    table = pa.ipc.open_stream(answer.content).read_all()
    assert as_api(table) == body["items"]
    assert f"a{feed.FIELD_SEP}b\nc" in table.column("platform_id").to_pylist()


def test_empty_pages_in_every_form(server):
    page = pages(server, since_rev=10**9, limit=10)
    assert page["json"].json(feed.SELLERS, with_rev=True) == \
        page["rows"].json(feed.SELLERS, with_rev=True)
    assert api_sync.lines_table(page["lines"]).equals(api_sync.rows_table(page["rows"]))
