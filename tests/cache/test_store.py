"""The cache file: schema creation, locking between processes, newer and corrupt files."""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import pytest

from sellerbench.cache.store import SCHEMA_VERSION, Store
from sellerbench.errors import CacheCorruptError, CacheLockedError, CacheVersionError

HOLD = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
print(time.time(), flush=True)
"""


def _hold(path, seconds):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_new_cache_has_schema_and_readable_tables(tmp_path):
    store = Store(tmp_path / "c.duckdb")
    with store.connect():
        pass
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    con = duckdb.connect(str(store.path), read_only=True)
    names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()
    assert {"sellers", "collection_runs", "sync_state", "mutations", "meta"} <= names


def test_locked_by_another_process_names_its_pid(tmp_path):
    store = Store(tmp_path / "c.duckdb", lock_timeout=0.3)
    with store.connect():
        pass
    holder = _hold(store.path, 30)
    try:
        with pytest.raises(CacheLockedError) as info, store.connect():
            pass
        assert info.value.pid == holder.pid
        assert str(holder.pid) in str(info.value)
    finally:
        holder.kill()
        holder.wait()


def test_waits_for_a_short_lock_then_succeeds(tmp_path):
    """The store waits while another process holds the file and gets in soon after it is
    let go: well inside ``lock_timeout`` (it polls at most 0.25 s apart), not at its end."""
    store = Store(tmp_path / "c.duckdb", lock_timeout=20)
    with store.connect():
        pass
    holder = _hold(store.path, 1.0)
    with store.connect() as con:
        entered = time.time()
        assert con.execute("SELECT count(*) FROM sellers").fetchone()[0] == 0
    released = float(holder.stdout.readline())  # the holder's clock after its close()
    holder.wait()
    assert entered >= released, "got in while the other process still held the file"
    assert entered - released < 5, f"got in {entered - released:.1f} s after the release"


def test_newer_schema_is_refused(tmp_path):
    store = Store(tmp_path / "c.duckdb")
    with store.connect() as con:
        con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(CacheVersionError, match="newer"), Store(store.path).connect():
        pass


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "c.duckdb"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheCorruptError, match="sync again"), Store(path).connect():
        pass


def test_foreign_duckdb_file_is_refused(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (x INT)")
    con.close()
    with pytest.raises(CacheCorruptError, match="not a sellerbench cache"), Store(path).connect():
        pass


def test_transaction_rolls_back_on_error(tmp_path):
    store = Store(tmp_path / "c.duckdb")
    with pytest.raises(RuntimeError), store.transaction() as con:
        con.execute("INSERT INTO meta VALUES ('x', '1')")
        raise RuntimeError("boom")
    assert store.get_meta("x") is None


def test_a_connection_is_ready_for_any_api_after_opening(tmp_path):
    """duckdb 2 refuses con.sql() while an execute() result is half-read; opening (and
    migrating) must leave no such result behind."""
    store = Store(tmp_path / "c.duckdb")
    for _ in range(2):  # a new file, then an existing one
        with store.connect() as con:
            assert con.sql("SELECT 42").fetchall() == [(42,)]
        store._migrated = False


def test_writes_from_many_threads_never_collide(tmp_path):
    """Write transactions on one file never overlap in a process (the store's write lock),
    so threads writing the same rows never meet DuckDB's optimistic-concurrency conflict
    (without the lock: "Conflict on tuple deletion" in most runs of this test)."""
    import threading

    from sellerbench.errors import SellerbenchError

    path = tmp_path / "cache.duckdb"
    Store(path).set_meta("shared", "0")
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        store = Store(path)  # a Store of its own: the lock is the file's, not the object's
        for i in range(40):
            try:
                store.set_meta("shared", f"{k}-{i}")
                with store.transaction() as con:
                    value = con.execute("SELECT value FROM meta WHERE key = 'shared'").fetchall()
                    con.execute("UPDATE meta SET value = ? WHERE key = 'shared'",
                                [value[0][0] + "+"])
            except SellerbenchError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Store(path).get_meta("shared").endswith("+")


def _limit(con):
    return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_the_memory_policy_is_set_once_when_the_file_opens(tmp_path, monkeypatch):
    """memory_limit and temp_directory are settings, given to DuckDB when the file
    opens; every connection of the process sees them, and another policy for the open
    file is refused with what to do (never changed under another thread's feet)."""
    from sellerbench.errors import CacheError, ConfigError

    spill = tmp_path / "spill"
    store = Store(tmp_path / "c.duckdb", memory_limit="300MB", temp_directory=spill)
    with store.connect() as con, store.connect() as other:
        assert _limit(con) == _limit(other) == "286.1 MiB"
        assert other.execute("SELECT current_setting('temp_directory')").fetchone()[0] == \
            str(spill)
        with pytest.raises(CacheError, match="another memory_limit or temp_directory"), \
                Store(store.path, memory_limit="1GB").connect():
            pass
    monkeypatch.setenv("SELLERBENCH_MEMORY_LIMIT", "200MB")
    with Store(store.path).connect() as con:  # closed meanwhile: the setting takes effect
        assert _limit(con) == "190.7 MiB"
    from sellerbench.workbench import connect

    with connect(cache=store.path, memory_limit="250MB") as wb:  # the argument wins
        assert wb.sql("SELECT current_setting('memory_limit') AS m")["m"][0] == "238.4 MiB"
    monkeypatch.setenv("SELLERBENCH_MEMORY_LIMIT", "lots")
    with pytest.raises(ConfigError, match="SELLERBENCH_MEMORY_LIMIT is 'lots'; it accepts"):
        Store(store.path)


def test_connections_open_and_close_beside_a_writer(tmp_path):
    """Two threads open, read Arrow through and close connections while a third writes:
    without the file's ``opening`` lock some of them do not see DuckDB's Python table
    function (duckdb 2.0.1: "python_arrow_scan does not exist", in every run of this)."""
    import threading

    import pyarrow as pa

    store = Store(tmp_path / "c.duckdb")
    table = pa.table({"key": ["a"], "value": ["b"]})
    errors: list[str] = []
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            with store.transaction() as con:
                con.register("sb_t", table)
                con.execute("INSERT OR REPLACE INTO meta SELECT key || ?, value FROM sb_t",
                            [str(i % 50)])
                con.unregister("sb_t")

    def opener():
        for _ in range(400):
            try:
                with store.connect() as con:
                    con.register("sb_p", table)
                    con.execute("SELECT count(*) FROM sb_p").fetchall()
            except Exception as exc:
                errors.append(repr(exc))

    with store.connect():
        pass
    write = threading.Thread(target=writer)
    write.start()
    openers = [threading.Thread(target=opener) for _ in range(2)]
    for t in openers:
        t.start()
    for t in openers:
        t.join()
    stop.set()
    write.join()
    assert errors == []


def test_running_out_of_memory_in_a_write_says_so_and_keeps_nothing(tmp_path):
    """An action's insert that runs out of memory is told as that, not as the cleanup
    statement after it ("Current transaction is aborted", once told as a collision)."""
    from sellerbench.errors import CacheError
    from sellerbench.workbench import Workbench
    from tests.grid.conftest import fill_sellers

    fill_sellers(Store(tmp_path / "c.duckdb"), 200_000)
    store = Store(tmp_path / "c.duckdb", memory_limit="16MB")
    wb = Workbench(store, None, auto_push=False)
    ids = wb.sql("SELECT id FROM sellers")["id"].tolist()
    with pytest.raises(CacheError, match="ran out of memory") as info:
        wb.flag(ids)
    assert "collided" not in str(info.value)
    assert wb.status()["pending"] == 0
    wb.close()
