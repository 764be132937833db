"""Issue #8's security suite, against the real reference server over loopback HTTP.

1. Permissions: every endpoint of the server's own /openapi.json (a new endpoint cannot
   escape: the documented set must equal the matrix in ``permissions.py``), for every
   demo role, a user with no permission, no token, an unknown token, another scheme.
2. The token shows nowhere: reprs, display forms, errors (401, 403, 404, 409, 422, 429,
   503, no answer, a malformed token), DEBUG logs of a sync, push and export, the
   committed notebooks, IPython's verbose tracebacks (which print frame locals).
3. SQL injection: search text, flagged filters, the grid's header filters, export
   ``where=`` and ``columns=``, ``wb.sql`` parameters and the ``%sql`` magic's
   ``:name`` binding, mutation names, the server's query parameters and path ids.
   ``where=`` is trusted SQL on purpose (the analyst's own cache, like ``wb.sql``):
   the suite proves it stays one predicate, runs no second statement and no DDL.
4. Export targets: a directory, a missing folder, an existing file, ``..``, symlinks;
   a failed export leaves nothing behind; the server's exports and the activity stream
   refuse strangers (401) and users without ``seller_collection.read`` (403).
5. Loopback: ``sellerbench serve`` binds 127.0.0.1 unless told otherwise, and so do the
   embedded server and ``sb.demo()``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import psutil
import pytest

import sellerbench as sb
from sellerbench import cli
from sellerbench.api.client import ApiClient
from sellerbench.cache.frames import sql_frame
from sellerbench.errors import (
    ApiValidationError,
    AuthError,
    CacheError,
    ConfigError,
    ConflictError,
    ExportError,
    MutationError,
    NotFoundError,
    RateLimitedError,
    SellerbenchError,
    ServerError,
    TransportError,
)
from sellerbench.grid.viewport import Viewport
from sellerbench.magic import bind_parameters
from sellerbench.runs import control as runs
from sellerbench.server.embedded import EmbeddedServer, start
from sellerbench.server.http.problems import flat_routes
from sellerbench.settings import SETTINGS
from sellerbench.workbench import Workbench, connect

from .leaks import (
    BEARER,
    TOKEN_SHAPE,
    assert_hidden,
    error_renderings,
    notebook_texts,
    renderings,
)
from .permissions import (
    DOC_PATHS,
    EXT_ONLY,
    HELD,
    PERMISSIONS,
    STRANGERS,
    add_user_without_permissions,
    auth_headers,
    judge,
    request_for,
    schema_operations,
)
from .relutil import ROOT

# Seller names built to break naive SQL (all valid names: no control characters).
NAMES = [
    "'; DROP TABLE sellers; --",
    "x' OR '1'='1",
    '"',
    'say "hi" ); DROP TABLE mutations; --',
    "back\\slash",
    "\\'; DELETE FROM sellers; --",
    "100% _real_",
    "Ünïcødé ßeller 🛒",
    "); DELETE FROM sellers WHERE (1=1",
    "$1 ? :name",
]
# Search texts that no name holds, or that are patterns elsewhere.
SEARCHES = [*NAMES, "'", "%", "_", "\\", "\x00", "x\x00' OR 1=1 --", "\u202e", "--"]
CALLERS = (*STRANGERS, *HELD)
pytestmark = pytest.mark.timeout(60)  # each test, its module fixtures included


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sec_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """A server of this module's own (it gains sellers), plus a user with no permission."""
    srv = start(n=40, seed=11, data_dir=tmp_path_factory.mktemp("security"))
    srv.tokens = {**srv.tokens, "nobody": add_user_without_permissions(srv)}
    with ApiClient(srv.url, srv.tokens["admin"]) as admin:
        result = admin.create_sellers_bulk(NAMES)
    assert result["failed_count"] == 0, result["errors"]
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def sec_base_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = start(n=10, seed=11, base_only=True, data_dir=tmp_path_factory.mktemp("sec_base"))
    srv.tokens = {**srv.tokens, "nobody": add_user_without_permissions(srv)}
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def synced(sec_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory):
    """A synced analyst workbench that the read-only injection tests share."""
    wb = connect(sec_server.url, sec_server.tokens["analyst"],
                 tmp_path_factory.mktemp("synced") / "cache.duckdb", auto_push=False)
    wb.sync(progress=False)
    yield wb
    wb.close()


@pytest.fixture
def own_wb(sec_server: EmbeddedServer, tmp_path: Path) -> Iterator[Workbench]:
    wb = connect(sec_server.url, sec_server.tokens["analyst"], tmp_path / "own.duckdb",
                 auto_push=False)
    yield wb
    wb.close()


def quick_client(url: str, token: str, **kw: Any) -> ApiClient:
    """No retries, so every error surfaces at once."""
    return ApiClient(url, token, retries=0, timeout=5.0, backoff=0.01, max_backoff=0.02, **kw)


def cache_facts(wb: Workbench) -> dict[str, Any]:
    """What an injection must not change: the tables, the rows, the queue."""
    with wb.store.connect() as con:
        tables = sorted(r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() UNION ALL "
            "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall())
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("sellers", "mutations", "collection_runs", "visible_sellers")}
    return {"tables": tables, **counts}


def server_counts(srv: EmbeddedServer) -> tuple[int, int, int]:
    with srv.storage.read() as conn:
        return tuple(conn.execute(
            "SELECT (SELECT count(*) FROM sellers), (SELECT count(*) FROM users), "
            "(SELECT count(*) FROM collection_runs)").fetchone())


def parts_under(folder: Path) -> list[Path]:
    """Temporary files an export could have left (``.<name>.<hex>.part``)."""
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


# -- 1. permissions -------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["sec_server", "sec_base_server"])
def test_every_endpoint_answers_each_caller_as_api_md_prescribes(which, request):
    """Every (method, path) of /openapi.json x every caller: 401 for strangers (with
    WWW-Authenticate), 403 FORBIDDEN naming the permission and the user for a role
    without it, and neither 401, 403 nor 5xx where the role holds it."""
    srv: EmbeddedServer = request.getfixturevalue(which)
    expected = set(PERMISSIONS) - (EXT_ONLY if which == "sec_base_server" else set())
    documented = schema_operations(srv.url)
    assert documented == expected, (
        f"endpoints without a row in the matrix: {sorted(documented - expected)}; "
        f"rows the server does not serve: {sorted(expected - documented)}"
    )
    # Nothing is served outside the schema but FastAPI's own documentation pages.
    undocumented = {r.path for r in flat_routes(srv.app.routes)} - {p for _, p in documented}
    assert undocumented == DOC_PATHS
    wrong = []
    with httpx.Client(base_url=srv.url, timeout=10) as http:
        for method, path in sorted(documented):
            for caller in CALLERS:
                answer = http.request(headers=auth_headers(caller, srv.tokens),
                                      **request_for(method, path))
                verdict = judge(method, path, caller, PERMISSIONS[(method, path)], answer)
                if verdict is not None:
                    wrong.append(str(verdict))
    assert not wrong, "\n".join(wrong)


def test_idempotency_replay_never_crosses_users_or_permissions(sec_server):
    """An Idempotency-Key stored for the analyst gives the viewer a 403, not the
    stored answer, and gives the admin a fresh action of its own."""
    key = f"sec-{uuid.uuid4()}"
    body = {"name": f"idem {uuid.uuid4().hex}"}
    with httpx.Client(base_url=sec_server.url, timeout=10) as http:
        def post(role: str) -> httpx.Response:
            return http.post("/sellers", json=body, headers={
                **auth_headers(role, sec_server.tokens), "Idempotency-Key": key})

        first = post("analyst")
        assert first.status_code == 201
        assert post("analyst").json()["id"] == first.json()["id"]  # a replay
        assert post("viewer").status_code == 403
        assert post("no token").status_code == 401
        # scoped to the user: the admin's request is its own, and the name is taken now
        assert post("admin").status_code == 409


def test_client_maps_401_and_403_to_auth_errors_naming_the_permission(sec_server):
    with quick_client(sec_server.url, sec_server.tokens["viewer"]) as viewer, \
            pytest.raises(AuthError) as refused:
        viewer.create_seller("not allowed")
    assert refused.value.status == 403 and refused.value.code == "FORBIDDEN"
    assert "seller_collection.write" in str(refused.value)
    with quick_client(sec_server.url, sec_server.tokens["nobody"]) as nobody:
        with pytest.raises(AuthError) as unread:
            nobody.sync_sellers()
        assert nobody.health().status == "ok"  # /health is public (API.md)
    assert "seller_collection.read" in str(unread.value)


# -- 2. the token shows nowhere -----------------------------------------------------------


def test_reprs_and_display_forms_never_show_the_token(sec_server, own_wb):
    """Workbench, client, store, reports, status, settings, the server handle, the grid
    and the run watcher: repr, str and every IPython display form."""
    own_wb.sync(progress=False)
    ids = own_wb.sellers()["id"].head(2).tolist()
    own_wb.flag(ids)
    push = own_wb.push()
    sync = own_wb.sync(progress=False)
    export = own_wb.export(own_wb.store.path.parent / "out.csv", progress=False)
    grid = own_wb.grid()
    watcher = runs.watcher(own_wb, stream=False, sync_sellers=False)
    try:
        objects: list[Any] = [
            own_wb, own_wb.client, own_wb.store, push, sync, export, own_wb.status(),
            vars(own_wb), vars(own_wb.client), sec_server, sec_server.app.state.settings, SETTINGS,
            own_wb.client._http.headers, grid, grid.status, grid.message, grid.viewport,
            watcher,
        ]
        texts = [text for obj in objects for text in renderings(obj)]
        for role, token in sec_server.tokens.items():
            assert_hidden(token, texts, f"a repr ({role})")
        assert not any(BEARER.search(t) for t in texts)
    finally:
        watcher.close()
        grid.close()


def _error_cases(srv: EmbeddedServer, tmp_path: Path) -> Iterator[tuple[str, str, Any]]:
    """(what, secret, call) for every error the client raises; ``call`` raises it."""
    tokens = srv.tokens
    wrong = f"sb_analyst_{uuid.uuid4().hex}WRONG"
    yield "401", wrong, lambda: quick_client(srv.url, wrong).sync_sellers()
    yield "403", tokens["viewer"], lambda: quick_client(srv.url, tokens["viewer"]).create_seller(
        "forbidden")
    yield "403 read", tokens["nobody"], lambda: quick_client(srv.url, tokens["nobody"]).categories()
    analyst = tokens["analyst"]
    yield "404", analyst, lambda: quick_client(srv.url, analyst).get_run(str(uuid.uuid4()))
    yield "409", analyst, lambda: quick_client(srv.url, analyst).create_seller(NAMES[0])
    yield "422", analyst, lambda: quick_client(srv.url, analyst).sync_sellers(limit=0)
    yield "400", analyst, lambda: quick_client(srv.url, analyst).sync_sellers(cursor="x' OR 1=1")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    yield "no answer", analyst, lambda: quick_client(f"http://127.0.0.1:{closed}", analyst).health()
    # A token read with its file's newline is used without it (here: 401, unknown); a
    # character a header cannot carry is refused before any request, without echoing
    # the token (httpx's own error quotes the whole header value).
    for tail in ("\n", "\r\nX-Injected: 1", "\x00", "é"):
        secret = f"sb_analyst_{uuid.uuid4().hex}"
        bad = secret + tail
        yield f"token with {tail!r}", secret, lambda bad=bad: quick_client(
            srv.url, bad).categories()
    yield "sync 401", wrong, lambda: _sync_once(srv.url, wrong, tmp_path / "w.duckdb")
    # raised inside sb.connect(), whose frame holds the token (verbose tracebacks print it)
    garbage = tmp_path / "garbage.duckdb"
    garbage.write_bytes(b"not a database at all" * 100)
    yield "a damaged cache", analyst, lambda: connect(srv.url, analyst, garbage)


def _sync_once(url: str, token: str, cache: Path) -> Any:
    with connect(url, token, cache) as wb:
        return wb.sync(progress=False)


@contextlib.contextmanager
def _faults(srv: EmbeddedServer, **switches: Any) -> Iterator[None]:
    before = {name: getattr(srv.faults, name) for name in switches}
    for name, value in switches.items():
        setattr(srv.faults, name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(srv.faults, name, value)


def test_errors_never_show_the_token(sec_server, tmp_path):
    """401/403/404/409/422/400, no answer, a malformed token: message, repr, notes, the
    chained traceback and IPython's verbose traceback (frame locals) hold no token."""
    raised: dict[str, type] = {}
    for what, secret, call in _error_cases(sec_server, tmp_path):
        with pytest.raises(SellerbenchError) as caught:
            call()
            pytest.fail(f"the {what} case raised nothing")
        raised[what] = type(caught.value)
        texts = error_renderings(caught.value)
        assert_hidden(secret, texts, f"the {what} error")
        for token in sec_server.tokens.values():
            assert_hidden(token, texts, f"the {what} error")
    assert raised["401"] is AuthError and raised["403"] is AuthError
    assert raised["404"] is NotFoundError and raised["409"] is ConflictError
    assert raised["422"] is ApiValidationError and raised["400"] is ApiValidationError
    assert raised["no answer"] is TransportError
    assert raised["token with '\\n'"] is AuthError
    assert all(raised[f"token with {tail!r}"] is ConfigError
               for tail in ("\r\nX-Injected: 1", "\x00", "é"))
    assert issubclass(raised["a damaged cache"], CacheError)


def test_5xx_429_and_dropped_connection_errors_never_show_the_token(sec_server):
    token = sec_server.tokens["analyst"]
    seen: list[BaseException] = []
    with quick_client(sec_server.url, token) as client:
        with _faults(sec_server, fail_rate=1.0), pytest.raises(ServerError) as failed:
            client.sync_sellers()
        seen.append(failed.value)
        with _faults(sec_server, rate_limit=0.001), \
                pytest.raises(RateLimitedError) as limited:
            for _ in range(3):  # the bucket holds one request
                client.sync_sellers(limit=1)
        seen.append(limited.value)
        with _faults(sec_server, drop_before_rate=1.0), pytest.raises(TransportError) as dropped:
            client.create_seller(f"dropped {uuid.uuid4().hex}")
        seen.append(dropped.value)
    assert [e.status for e in seen] == [503, 429, None]
    for error in seen:
        assert_hidden(token, error_renderings(error), type(error).__name__)


def test_debug_logs_of_sync_push_and_export_never_show_the_token(sec_server, own_wb, caplog):
    caplog.set_level(logging.DEBUG)  # the root: sellerbench, httpx, httpcore, the server
    for name in ("sellerbench", "httpx", "httpcore", "uvicorn"):
        caplog.set_level(logging.DEBUG, logger=name)
    own_wb.sync(progress=False)
    own_wb.flag(own_wb.sellers()["id"].head(3).tolist())
    own_wb.push()
    own_wb.sync(progress=False)
    own_wb.export(own_wb.store.path.parent / "srv.csv", source="server", progress=False)
    with pytest.raises(AuthError):
        _sync_once(sec_server.url, "sb_admin_notarealtokenatall000",
                   own_wb.store.path.parent / "x.duckdb")
    records = caplog.records
    assert any(r.name.startswith("httpx") for r in records), "httpx logged nothing at DEBUG"
    assert any(r.name.startswith("httpcore") for r in records)
    texts = [caplog.text] + [r.getMessage() for r in records] + [repr(r.args) for r in records]
    for token in [*sec_server.tokens.values(), "sb_admin_notarealtokenatall000"]:
        assert_hidden(token, texts, "a DEBUG log record")
    assert not any(BEARER.search(t) or "authorization" in t.lower() for t in texts)


def test_committed_notebooks_and_files_hold_no_token():
    """Every committed notebook's sources and outputs; no tokens file is tracked."""
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    outputs_seen = 0
    for path in notebooks:
        sources, outputs = notebook_texts(path)
        outputs_seen += len(outputs)
        for text in sources + outputs:
            assert not TOKEN_SHAPE.search(text), f"{path.name} holds a token"
            assert not BEARER.search(text), f"{path.name} holds a bearer header"
            assert "Authorization:" not in text, path.name
    assert outputs_seen > 0, "the notebooks were committed without outputs: nothing checked"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True, timeout=30).stdout.splitlines()
    assert not [p for p in tracked if Path(p).name == "tokens.json"]


def test_grid_and_widgets_show_errors_without_the_token(sec_server, tmp_path):
    """A grid whose token is refused shows the error in the widget: no token there,
    nor in the workbench's, the grid's or the error's display forms."""
    secret = f"sb_analyst_{uuid.uuid4().hex}"
    wb = connect(sec_server.url, secret, tmp_path / "g.duckdb", auto_push=False)
    grid = wb.grid()
    try:
        grid._guard("sync", grid.sync)
        shown = grid.message.value
        assert "refused the token" in shown  # the error did reach the widget
        texts = [shown, *renderings(grid), *renderings(wb), *renderings(grid.status)]
        assert_hidden(secret, texts, "the grid")
    finally:
        grid.close()
        wb.close()


# -- 3. SQL injection -------------------------------------------------------------------------


def _expected_search(frame: Any, text: str) -> set[str]:
    needle = text.lower()
    return {r.id for r in frame.itertuples()
            if needle in r.display_name.lower() or needle in r.normalized_name.lower()}


def test_search_text_matches_literally(synced):
    """wb.sellers(search=), the grid's search box and export(search=) treat every
    payload as plain text; the cache's tables, rows and queue are unchanged."""
    before = cache_facts(synced)
    everyone = synced.sellers()
    assert set(NAMES) <= set(everyone["display_name"])
    viewport = Viewport(synced.store)
    out = synced.store.path.parent
    for i, text in enumerate(SEARCHES):
        found = set(synced.sellers(search=text)["id"])
        assert found == _expected_search(everyone, text), repr(text)
        if text in NAMES:
            assert everyone.loc[everyone.display_name == text, "id"].iloc[0] in found
        viewport.set_search(text)
        shown = set(viewport.ids([(0, viewport.row_count - 1)])) if viewport.row_count else set()
        needle = text.strip()  # the grid trims what is typed in its box
        grid_expected = {r.id for r in everyone.itertuples()
                         if needle.lower() in r.display_name.lower() or needle in
                         (r.id, r.platform_id if isinstance(r.platform_id, str) else None)}
        assert shown == grid_expected, repr(text)
        report = synced.export(out / f"search{i}.csv", search=text, progress=False)
        assert report.rows == len(found), repr(text)
    assert cache_facts(synced) == before


def test_flagged_filters_take_booleans_only(synced, sec_server):
    """A string where a flag belongs is refused with a clear error, never read as truthy;
    a search that is not text is refused the same way."""
    before = cache_facts(synced)
    flagged = synced.sellers(flagged=True)
    assert len(flagged) < len(synced.sellers())
    for payload in ("x' OR '1'='1", "false", "'; DROP TABLE sellers; --", 1):
        with pytest.raises(SellerbenchError, match="flagged"):
            synced.sellers(flagged=payload)
        with pytest.raises(ConfigError, match="flagged"):
            synced.export(synced.store.path.parent / "f.csv", flagged=payload, progress=False)
    for search in ("\ud800", 5):  # a lone surrogate, a number: refused, not a duckdb error
        with pytest.raises(ConfigError, match="search"):
            synced.sellers(search=search)
    with pytest.raises(ConfigError):
        synced.export(synced.store.path.parent / "s.csv", search="\ud800", progress=False)
    viewport = Viewport(synced.store)
    with pytest.raises(ConfigError):
        viewport.set_flagged("flagged' OR '1'='1")
    with httpx.Client(base_url=sec_server.url, timeout=10, headers=auth_headers(
            "viewer", sec_server.tokens)) as http:
        for path in ("/sync/sellers", "/export/sellers/csv"):
            answer = http.get(path, params={"flagged": "x' OR '1'='1"})
            assert answer.status_code == 422, answer.text
    assert cache_facts(synced) == before


def test_grid_header_filters_bind_their_values(synced):
    """Filter values are bound parameters; an unknown operator or column is refused."""
    before = cache_facts(synced)
    viewport = Viewport(synced.store)
    label = next(c.label for c in viewport.columns if c.sql.endswith("display_name"))
    for op in ("=", "contains", "startswith", "in"):
        for text in NAMES:
            value = [text] if op == "in" else text
            viewport.set_transforms([{"type": "filter", "column": label, "operator": op,
                                      "value": value}])
            names = set(viewport.frame()[label]) if viewport.row_count else set()
            assert text in names and all(text in n for n in names), (op, text)
    with pytest.raises(ConfigError):
        viewport.set_transforms([{"type": "filter", "column": label,
                                  "operator": "= '' OR 1=1 --", "value": "x"}])
    with pytest.raises(ConfigError):
        viewport.set_sort("Name\"; DROP TABLE sellers; --")
    with pytest.raises(ConfigError):
        viewport.unique_values("x') UNION SELECT token FROM secrets --")
    assert cache_facts(synced) == before


WHERE_REFUSED = [
    "1=1; DROP TABLE sellers",
    "true) OR (true",
    "flagged) UNION SELECT * FROM mutations --",
    "true -- and the rest",
    "true /* hidden */",
    "E'\\' '; DROP TABLE sellers; SELECT ''",
    "1 IN (SELECT 1 FROM query('DROP TABLE sellers'))",
    "1 IN (SELECT 1 FROM query('SELECT 1; DROP TABLE sellers'))",
    "(SELECT count(*) FROM sellers) > 0); COPY sellers TO '/tmp/leak.csv'; SELECT (1",
    "",
]


def test_export_where_is_one_predicate_and_never_a_second_statement(synced):
    """``where=`` is trusted SQL over the analyst's own cache (documented in exports.py);
    it still cannot run a second statement, DDL, a comment, or escape its parentheses."""
    before = cache_facts(synced)
    out = synced.store.path.parent / "where"
    out.mkdir()
    for i, where in enumerate(WHERE_REFUSED):
        with pytest.raises(ConfigError):
            synced.export(out / f"w{i}.csv", where=where, progress=False)
    # A quote inside a literal is data: it selects exactly the seller of that name.
    report = synced.export(out / "literal.csv", where="display_name = 'x'' OR ''1''=''1'",
                           progress=False)
    assert report.rows == 1
    # The predicate cannot undo the other filters: it is ANDed inside parentheses.
    flagged = len(synced.sellers(flagged=True))
    report = synced.export(out / "anded.csv", flagged=True, where="true OR true",
                           progress=False)
    assert report.rows == flagged
    assert sorted(p.name for p in out.iterdir()) == ["anded.csv", "literal.csv"]
    assert cache_facts(synced) == before
    assert not Path("/tmp/leak.csv").exists()


def test_export_columns_are_names_never_sql(synced):
    before = cache_facts(synced)
    out = synced.store.path.parent / "columns"
    out.mkdir()
    for columns in (["id", "'; DROP TABLE sellers; --"], ['display_name" FROM sellers; --'],
                    ["id) TO '/tmp/x.csv' (FORMAT csv); DROP TABLE sellers; --"],
                    ["*"], ["id", "id"], [], ["rev"]):
        with pytest.raises(ExportError):
            synced.export(out / "c.csv", columns=columns, progress=False)
    assert list(out.iterdir()) == []
    report = synced.export(out / "ok.csv", columns=["id", "display_name"], progress=False)
    assert report.rows == len(synced.sellers())
    assert cache_facts(synced) == before


def test_sql_parameters_are_bound_and_sql_stays_read_only(synced):
    before = cache_facts(synced)
    for text in [*NAMES, "\x00", "\\x00", "\u202e"]:
        echoed = synced.sql("SELECT ? AS v", [text])
        assert echoed["v"].iloc[0] == text
        found = synced.sql("SELECT id FROM visible_sellers WHERE display_name = $name",
                           {"name": text})
        assert len(found) == (1 if text in NAMES else 0), repr(text)
    for statement in ("DROP TABLE sellers", "SELECT 1; DROP TABLE sellers",
                      "DELETE FROM mutations", "SELECT * FROM query('DROP TABLE sellers')",
                      "ATTACH ':memory:' AS other", "COPY sellers TO '/tmp/leak2.csv'",
                      "PRAGMA threads=1", "SET threads=1", "USE memory", "VACUUM",
                      "LOAD json", "EXPORT DATABASE '/tmp/leak3'", "DETACH other"):
        with pytest.raises(SellerbenchError):
            synced.sql(statement)
    # the %sql magic binds :name from the notebook's variables, never pastes it
    for text in NAMES:
        query, params = bind_parameters(
            "SELECT count(*) AS n FROM visible_sellers WHERE display_name = :name",
            {"name": text})
        assert text not in query and params == {"name": text}
        assert sql_frame(synced.store, query, params)["n"].iloc[0] == 1
    # No extension comes in behind a query: neither downloaded nor loaded on demand.
    for statement in ("CALL dbgen(sf=0)", "SELECT * FROM read_csv('https://127.0.0.1/x')"):
        with pytest.raises(SellerbenchError):
            synced.sql(statement)
    settings = synced.sql(
        "SELECT current_setting('autoinstall_known_extensions') AS install, "
        "current_setting('autoload_known_extensions') AS load"
    )
    assert not settings["install"].iloc[0] and not settings["load"].iloc[0]
    assert cache_facts(synced) == before
    assert not Path("/tmp/leak2.csv").exists() and not Path("/tmp/leak3").exists()


def test_mutation_names_and_ids_reach_the_server_as_data(sec_server, own_wb):
    """Payload names are created and renamed through the API literally; payload ids
    and query values are refused (404/400/422 or MutationError), nothing else moves."""
    own_wb.sync(progress=False)
    sellers_before, users_before, runs_before = server_counts(sec_server)
    fresh = [f"{name} #{uuid.uuid4().hex[:6]}" for name in NAMES[:4]]
    own_wb.create(fresh)
    target = own_wb.sellers(search="100% _real_")["id"].iloc[0]
    renamed = f"'); UPDATE sellers SET flagged = 1; -- {uuid.uuid4().hex[:6]}"
    own_wb.rename(target, renamed)
    for bad in ("x' OR '1'='1", "../../health", "\x00"):
        with pytest.raises(MutationError):
            own_wb.flag(bad)
    with pytest.raises(MutationError):
        own_wb.create(["bad\x00name"])
    report = own_wb.push()
    assert report.failed == 0 and report.still_pending == 0, str(report)
    own_wb.sync(progress=False)
    names = set(own_wb.sellers()["display_name"])
    assert set(fresh) | {renamed} <= names
    assert server_counts(sec_server) == (sellers_before + len(fresh), users_before, runs_before)
    with sec_server.storage.read() as conn:
        flagged_everywhere = conn.execute(
            "SELECT count(*) = sum(flagged) FROM sellers").fetchone()[0]
    assert not flagged_everywhere
    client = own_wb.client
    for bad_id in ("x' OR '1'='1", "../../health", "..%2F..%2Fhealth", "1; DROP TABLE sellers"):
        with pytest.raises(NotFoundError):
            client.get_run(bad_id)
        with pytest.raises(NotFoundError):
            client.update_seller(bad_id, name="never")
    with pytest.raises(ApiValidationError):
        client.sync_sellers(updated_since="2024-01-01T00:00:00Z' OR '1'='1")
    with pytest.raises(ApiValidationError):
        client.sync_sellers(cursor="'; DROP TABLE sellers; --")
    assert server_counts(sec_server) == (sellers_before + len(fresh), users_before, runs_before)


# -- 4. export targets, server exports and the activity stream ----------------------------


def test_export_targets_refused_clearly_and_nothing_lost(synced, tmp_path):
    out = tmp_path / "exports"
    out.mkdir()
    keep = out / "keep.csv"
    keep.write_text("precious\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("outside\n")
    (out / "folder.csv").mkdir()
    refused = {
        "a directory": out / "folder.csv",
        "a directory without a suffix": out,
        "a missing folder": out / "missing" / "x.csv",
        "an existing file": keep,
        "'..' through a missing folder": out / "missing" / ".." / "y.csv",
        "a dangling symlink": out / "dangling.csv",
        "a symlink to a file elsewhere": out / "link.csv",
    }
    (out / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")
    (out / "link.csv").symlink_to(outside)
    messages = {}
    for what, target in refused.items():
        with pytest.raises(ExportError) as caught:
            synced.export(target, progress=False)
        messages[what] = str(caught.value)
    assert "directory" in messages["a directory"]
    assert "does not exist" in messages["a missing folder"]
    assert "overwrite=True" in messages["an existing file"]
    assert keep.read_text() == "precious\n" and outside.read_text() == "outside\n"
    assert not (out / "missing").exists() and not (tmp_path / "nowhere.csv").exists()
    # '..' is an ordinary path: it lands where it resolves to.
    (out / "sub").mkdir()
    report = synced.export(out / "sub" / ".." / "up.csv", progress=False)
    assert (out / "up.csv").is_file() and report.rows == len(synced.sellers())
    # overwrite replaces the link itself: the file it pointed to is never written through
    synced.export(out / "link.csv", overwrite=True, progress=False)
    assert outside.read_text() == "outside\n" and not (out / "link.csv").is_symlink()
    assert parts_under(tmp_path) == []


def test_a_failed_export_leaves_nothing(synced, sec_server, tmp_path):
    target = tmp_path / "fails.csv"
    with pytest.raises(ExportError):  # fails inside DuckDB's COPY, after the temp file opened
        synced.export(target, where="CAST(display_name AS INTEGER) > 0", progress=False)
    wrong = connect(sec_server.url, f"sb_viewer_{uuid.uuid4().hex}", tmp_path / "w.duckdb")
    try:
        with pytest.raises(AuthError):
            wrong.export(tmp_path / "srv.csv", source="server", progress=False)
    finally:
        wrong.close()
    nobody = connect(sec_server.url, sec_server.tokens["nobody"], tmp_path / "n.duckdb")
    try:
        with pytest.raises(AuthError, match=r"seller_collection\.read"):
            nobody.export(tmp_path / "srv.json", source="server", progress=False)
    finally:
        nobody.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.duckdb", "w.duckdb"]


def test_server_exports_and_activity_stream_refuse_strangers(sec_server):
    """401 without or with a wrong token, 403 without seller_collection.read, and the
    stream of a real run opens for the viewer (read) and ends."""
    with quick_client(sec_server.url, sec_server.tokens["admin"]) as admin:
        run_id = admin.run_history(limit=1).runs[0]["id"]
    paths = ["/export/sellers/csv", "/export/sellers/json",
             f"/collection/runs/{run_id}/activity"]
    expected = {"no token": 401, "unknown token": 401, "basic scheme": 401,
                "empty bearer": 401, "nobody": 403}
    with httpx.Client(base_url=sec_server.url, timeout=10) as http:
        for path in paths:
            for caller, status in expected.items():
                headers = {**auth_headers(caller, sec_server.tokens), "Last-Event-ID": "0"}
                with http.stream("GET", path, headers=headers) as answer:
                    answer.read()
                    assert answer.status_code == status, (path, caller)
                    assert b"sb_" not in answer.content  # no token echoed
            with http.stream("GET", path, headers=auth_headers("viewer", sec_server.tokens)) \
                    as answer:
                assert answer.status_code == 200, path
                body = answer.read()  # a finished run's stream ends by itself
            assert body
    stream = f"/collection/runs/{run_id}/activity"
    with quick_client(sec_server.url, f"sb_viewer_{uuid.uuid4().hex}") as stranger, \
            pytest.raises(AuthError), stranger.stream("GET", stream):
        pass


# -- 5. loopback by default --------------------------------------------------------------------


def _ready_line(proc: subprocess.Popen, limit: float = 30.0) -> str:
    """The ``ready at`` line of ``sellerbench serve``, waiting at most ``limit`` s."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        readable, _, _ = select.select([proc.stdout], [], [], 0.5)
        if readable:
            line = proc.stdout.readline()
            if not line:
                break
            if "ready at" in line:
                return line.strip()
    raise AssertionError(f"serve never said it was ready: {proc.stderr.read()[-500:]}")


def test_serve_binds_loopback_unless_told_otherwise(tmp_path):
    args = cli.build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sellerbench", "serve", "--port", "0",
         "--db", str(tmp_path / "s.sqlite3")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        line = _ready_line(proc)
        assert line.startswith("sellerbench API ready at http://127.0.0.1:"), line
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections("inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
        proc.stderr.close()


def test_embedded_server_and_demo_bind_loopback(tmp_path, monkeypatch):
    monkeypatch.setenv("SELLERBENCH_HOME", str(tmp_path))  # sb.demo keeps its data there
    wb = sb.demo(n=5, cache=tmp_path / "demo.duckdb")
    try:
        server = wb._server
        assert server.url.startswith("http://127.0.0.1:")
        port = int(server.url.rsplit(":", 1)[1])
        mine = [c.laddr for c in psutil.Process(os.getpid()).net_connections("inet")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
        assert mine and all(addr.ip == "127.0.0.1" for addr in mine), mine
        assert str(server.data_dir).startswith(str(tmp_path))
    finally:
        wb.close()


def test_duckdb_keeps_no_secret_in_the_cache(own_wb):
    """The cache file (which analysts share and attach) never stores the token."""
    own_wb.sync(progress=False)
    token = own_wb.client._http.headers["Authorization"].split()[1]
    with own_wb.store.connect() as con:
        con.execute("CHECKPOINT")
    own_wb.close()
    data = own_wb.store.path.read_bytes()
    assert token.encode() not in data
    con = duckdb.connect(str(own_wb.store.path), read_only=True)
    try:
        meta = con.execute("SELECT key, value FROM meta").fetchall()
    finally:
        con.close()
    assert meta and not any(token in str(v) for _, v in meta)
