"""The command line as a product: each misuse is one line naming the flag or variable and
what it accepts (exit 2), `status` tells whether the API answered, reading commands leave
files alone, `rebuild` keeps the queue, and messages name CLI flags, not Python."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sellerbench import cli
from sellerbench.cache.store import Store
from sellerbench.workbench import connect

ROOT = Path(__file__).resolve().parents[1]
# Python spelled in a terminal message is a defect: `overwrite=True`, `token=...`, calls.
PYTHONISMS = ("=True", "=False", "=...", ".rebuild()", "sb.connect", "Store(", "pass token")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No SELLERBENCH_* from the outside; whatever the CLI sets is put back afterwards."""
    for name in [k for k in os.environ if k.startswith("SELLERBENCH_")] + [
        "SELLERBENCH_TIMEOUT", "SELLERBENCH_HOME"
    ]:
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    monkeypatch.setenv("SELLERBENCH_HOME", str(tmp_path / "home"))
    yield


def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``sellerbench ARGS`` in this process: exit code, stdout, stderr."""
    try:
        code = cli.main(list(args))
    except SystemExit as exc:  # argparse's own exits
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_misuse(code: int, err: str, *names: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for name in names:
        assert name in err, err
    assert not any(p in err for p in PYTHONISMS), err


# -- bad settings and arguments ----------------------------------------------------------


@pytest.mark.parametrize(("variable", "text", "accepts"), [
    ("SELLERBENCH_TIMEOUT", "abc", "seconds > 0"),
    ("SELLERBENCH_TIMEOUT", "0", "seconds > 0"),
    ("SELLERBENCH_LOCK_TIMEOUT", "soon", "seconds >= 0"),
    ("SELLERBENCH_AUTO_PUSH", "maybe", "1 or 0"),
    ("SELLERBENCH_API_URL", "localhost:8765", "http"),
    ("SELLERBENCH_TOKEN", "two words", "one word"),
])
@pytest.mark.parametrize("command", [["status"], ["sync"], ["export", "x.csv"], ["runs"]])
def test_a_bad_variable_is_one_line_naming_it(
    command: list[str], variable: str, text: str, accepts: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    monkeypatch.setenv(variable, text)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(*command, capsys=capsys)
    assert_one_line_misuse(code, err, variable, accepts)
    assert out == ""
    assert "two words" not in err  # a token is never echoed, not even a malformed one
    assert not (tmp_path / "home").exists() and not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(("args", "names"), [
    (["status", "--timeout", "abc"], ["--timeout", "seconds > 0"]),
    (["sync", "--lock-timeout", "-1", "--api-url", "http://127.0.0.1:9", "--token", "t"],
     ["--lock-timeout", "seconds >= 0"]),
    (["status", "--api-url", "127.0.0.1:8765"], ["--api-url", "http"]),
    (["runs", "--limit", "0"], ["--limit", "whole number >= 1"]),
    (["runs", "--limit", "many"], ["--limit", "whole number >= 1"]),
    (["runs", "watch", "--interval", "fast"], ["--interval", "seconds"]),
    (["push", "--wait", "-3"], ["--wait", "seconds >= 0"]),
    (["report", "--since", "yesterday"], ["--since", "2024-05-01"]),
    (["export", "x.csv", "--format", "xlsx"], ["--format", "csv"]),
    (["export", "x.csv", "--columns", " , "], ["--columns"]),
    (["export", "x.csv", "--flagged", "--unflagged"], ["--unflagged", "--flagged"]),
    (["sync"], ["--api-url", "SELLERBENCH_API_URL"]),
    (["sync", "--api-url", "http://127.0.0.1:9"], ["--token", "SELLERBENCH_TOKEN"]),
    (["frobnicate"], ["frobnicate"]),
])
def test_a_bad_flag_is_one_line_naming_it(
    args: list[str], names: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(*args, capsys=capsys)
    assert_one_line_misuse(code, err, *names)


def test_a_misuse_in_a_real_process_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELLERBENCH_")}
    done = subprocess.run(
        [sys.executable, "-m", "sellerbench", "status"], capture_output=True, text=True,
        env={**env, "SELLERBENCH_TIMEOUT": "abc", "SELLERBENCH_HOME": str(tmp_path)},
        timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("sellerbench status: SELLERBENCH_TIMEOUT is 'abc'; it accepts a "
                           "number of seconds > 0, e.g. 10 or 2.5\n")


# -- status --------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_status_says_whether_the_api_answered_and_took_the_token(
    server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = str(tmp_path / "status.duckdb")
    token = server.tokens["viewer"]
    fine = run("status", "--api-url", server.url, "--token", token, "--cache", cache,
               capsys=capsys)
    assert fine[0] == 0, fine[2]
    shown = json.loads(fine[1])
    assert shown["api"]["answered"] is True and shown["api"]["token"] == "accepted"
    assert token not in fine[1] + fine[2]
    assert not Path(cache).exists()  # status never creates a cache

    refused = run("status", "--api-url", server.url, "--token", "sb_nope", "--cache", cache,
                  capsys=capsys)
    assert refused[0] == 1
    assert json.loads(refused[1])["api"]["token"] == "refused"
    assert "refused the token" in refused[2] and refused[2].count("\n") == 1

    down = f"http://127.0.0.1:{_closed_port()}"
    gone = run("status", "--api-url", down, "--token", token, "--cache", cache, capsys=capsys)
    assert gone[0] == 1
    assert json.loads(gone[1])["api"]["answered"] is False
    assert f"the API at {down} did not answer" in gone[2]

    offline = run("status", "--cache", cache, capsys=capsys)
    assert offline[0] == 0 and json.loads(offline[1])["api"]["answered"] is None


# -- reading commands leave files alone ---------------------------------------------------


@pytest.mark.parametrize("command", [
    ["status"], ["export", "out.csv"], ["export", "out.csv", "--source", "cache"], ["runs"],
    ["push", "--pending"], ["report", "--output", "rep"],
])
def test_reading_commands_never_create_a_cache(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "missing.duckdb"
    code, _, err = run(*command, "--cache", str(missing), capsys=capsys)
    assert not missing.exists()
    if command != ["status"]:
        assert code == 1 and f"no cache at {missing}" in err and "sellerbench sync" in err
    assert {p.name for p in tmp_path.iterdir()} <= {"home"}


@pytest.mark.parametrize("command", [["status"], ["sync", "--api-url", "http://127.0.0.1:9",
                                                   "--token", "t"], ["export", "o.csv"],
                                     ["rebuild"], ["push", "--pending"]])
def test_a_file_that_is_not_a_cache_is_refused_and_left_alone(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n", encoding="utf-8")
    code, _, err = run(*command, "--cache", str(notes), capsys=capsys)
    assert_one_line_misuse(code, err, "--cache", "not a DuckDB file")
    assert notes.read_text(encoding="utf-8") == "my notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    (tmp_path / "empty.txt").touch()
    empty = run(*command, "--cache", str(tmp_path / "empty.txt"), capsys=capsys)
    assert_one_line_misuse(empty[0], empty[2], "--cache", "not a DuckDB file")
    assert (tmp_path / "empty.txt").stat().st_size == 0
    (tmp_path / "empty.txt").unlink()
    fresh = run("status", "--cache", str(tmp_path / "new-notes.txt"), capsys=capsys)
    assert_one_line_misuse(fresh[0], fresh[2], "--cache", ".duckdb")


def test_export_from_the_cache_opens_it_read_only(
    server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "c.duckdb"
    wb = connect(server.url, server.tokens["analyst"], cache)
    wb.sync(progress=False)
    wb.close()
    before = cache.stat().st_mtime_ns, cache.read_bytes()
    code, out, err = run("export", str(tmp_path / "all.csv"), "--cache", str(cache),
                         "--quiet", capsys=capsys)
    assert code == 0, err
    assert "from the cache" in out
    assert (cache.stat().st_mtime_ns, cache.read_bytes()) == before


# -- rebuild -------------------------------------------------------------------------------


def _damage_sellers(path: Path) -> None:
    with duckdb.connect(str(path), read_only=True) as con:
        blocks = [r[0] for r in con.execute(
            "SELECT DISTINCT block_id FROM pragma_storage_info('sellers') "
            "WHERE block_id >= 0 ORDER BY 1").fetchall()]
        block_size = 262144
    with open(path, "r+b") as handle:
        for block in blocks:  # header 3 x 4096, then 256 KiB blocks
            handle.seek(3 * 4096 + block * block_size + 64)
            handle.write(b"\xa5" * 4096)


def test_rebuild_moves_a_damaged_cache_aside_and_keeps_the_queue(
    make_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    srv = make_server(n=300, seed=3)
    cache = tmp_path / "cache.duckdb"
    wb = connect(srv.url, srv.tokens["analyst"], cache, auto_push=False)
    wb.sync(progress=False)
    ids = wb.sellers()["id"].tolist()
    wb.flag(ids[:4], True)
    wb.rename(ids[4], "Kept By The CLI Rebuild")
    wb.close()
    with Store(cache).connect() as con:
        con.execute("CHECKPOINT")
        queued = con.execute("SELECT count(*) FROM mutations").fetchone()[0]

    fine = run("rebuild", "--cache", str(cache), capsys=capsys)
    assert fine[0] == 0 and "reads fine; nothing rebuilt" in fine[1]

    _damage_sellers(cache)
    broken = run("status", "--cache", str(cache), capsys=capsys)
    assert broken[0] == 1
    assert f"`sellerbench rebuild --cache {cache}`" in broken[2]
    assert not any(p in broken[2] for p in PYTHONISMS), broken[2]

    code, out, err = run("rebuild", "--cache", str(cache), capsys=capsys)
    assert code == 0, err
    assert f"kept {queued} queued change row(s)" in out
    assert list(tmp_path.glob("cache.duckdb.damaged-*"))
    synced = run("sync", "--quiet", "--api-url", srv.url, "--token", srv.tokens["analyst"],
                 "--cache", str(cache), capsys=capsys)
    assert synced[0] == 0, synced[2]
    wb = connect(srv.url, srv.tokens["analyst"], cache)
    try:
        shown = wb.sellers().set_index("id")
        assert shown.loc[ids[:4], "flagged"].all()
        assert shown.loc[ids[4], "display_name"] == "Kept By The CLI Rebuild"
        assert wb.pending().empty
    finally:
        wb.close()


# -- runs watch, --where, messages ----------------------------------------------------


def test_watching_an_unknown_run_says_so_before_any_progress(
    server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "w.duckdb"
    connect(server.url, server.tokens["viewer"], cache).close()
    code, out, err = run("runs", "watch", "no-such-run", "--api-url", server.url, "--token",
                         server.tokens["viewer"], "--cache", str(cache), capsys=capsys)
    assert out == ""
    assert_one_line_misuse(code, err, "no-such-run", "sellerbench runs")


@pytest.fixture
def synced_cache(server: Any, tmp_path: Path) -> Path:
    cache = tmp_path / "synced.duckdb"
    wb = connect(server.url, server.tokens["viewer"], cache)
    wb.sync(progress=False)
    wb.close()
    return cache


@pytest.mark.parametrize(("where", "names"), [
    ("time_seen > 3", ['"time_seen"', "closest first: times_seen"]),  # the typo, the nearest
    ("times_seen >", ['the --where predicate "times_seen >" is not valid SQL', "character 12"]),
    ("platfrom = 'ebay'", ['"platfrom"', "closest first: platform"]),
])
def test_where_mistakes_name_the_column_or_the_syntax(
    where: str, names: list[str], synced_cache: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "w.csv"
    code, _, err = run("export", str(target), "--where", where, "--cache", str(synced_cache),
                       capsys=capsys)
    assert_one_line_misuse(code, err, *names)
    assert "Binder Error" not in err and "Parser Error" not in err
    assert not target.exists()


def test_messages_name_cli_flags_not_python(
    server: Any, synced_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "exists.csv"
    target.write_text("keep me\n", encoding="utf-8")
    code, _, err = run("export", str(target), "--cache", str(synced_cache), capsys=capsys)
    assert code == 1 and "add --overwrite" in err
    assert target.read_text(encoding="utf-8") == "keep me\n"
    wrong = run("sync", "--quiet", "--api-url", server.url, "--token", "sb_wrong",
                "--cache", str(synced_cache), capsys=capsys)
    assert wrong[0] == 1 and "--token" in wrong[2]
    odd = run("export", str(tmp_path / "x.xlsx"), "--cache", str(synced_cache), capsys=capsys)
    assert odd[0] == 1 and "--format" in odd[2]
    for _, _, message in (wrong, odd, (code, "", err)):
        assert not any(p in message for p in PYTHONISMS), message


def test_library_hints_are_rewritten_for_the_terminal() -> None:
    rewrite = cli.for_the_terminal
    assert rewrite("x.csv exists; pass overwrite=True to replace it") == \
        "x.csv exists; add --overwrite to replace it"
    assert rewrite("the API refused the token (bad); check SELLERBENCH_TOKEN or pass "
                   "token=...") == "the API refused the token (bad); check --token or " \
                                   "SELLERBENCH_TOKEN"
    assert "`sellerbench rebuild --cache /a b/c.duckdb`" in rewrite(
        "cannot be read (x); rebuild it with sellerbench.cache.store.Store('/a b/c.duckdb')"
        ".rebuild(), which moves it aside")


def test_serve_and_report_say_which_extra_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """In a client-only install the server and the report are extras: say which."""
    monkeypatch.setitem(sys.modules, "sellerbench.server.main", None)
    monkeypatch.setitem(sys.modules, "sellerbench.reports.report", None)
    code, _, err = run("serve", "--demo", "300", capsys=capsys)
    assert code == 1 and "pip install 'sellerbench[server]'" in err
    code, _, err = run("report", "--cache", str(tmp_path / "c.duckdb"), capsys=capsys)
    assert code == 1 and "pip install 'sellerbench[report]'" in err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run("--help", capsys=capsys)
    assert code == 0
    for command in ("serve", "sync", "status", "push", "export", "report", "runs", "rebuild"):
        assert command in out


def test_listing_runs_from_the_api_creates_no_cache(
    server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.duckdb"
    code, out, err = run("runs", "--api-url", server.url, "--token", server.tokens["viewer"],
                         "--cache", str(missing), capsys=capsys)
    assert code == 0, err
    assert "live from the API" in out
    assert not missing.exists()
    assert set(tmp_path.iterdir()) <= {tmp_path / "home"}  # no throwaway cache left either
