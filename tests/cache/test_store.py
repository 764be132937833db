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


def _lean_limit():
    """LEAN_MEMORY as DuckDB shows a limit."""
    from sellerbench.cache.store import LEAN_MEMORY

    return _limit(duckdb.connect(":memory:").execute(f"SET memory_limit = '{LEAN_MEMORY}'"))


def test_lean_reads_cap_memory_and_the_outermost_puts_the_limit_back(tmp_path):
    """Store.lean: DuckDB's limit is the file's; nested lean reads share one cap and
    the analyst's own limit comes back when the outermost ends, also after a failure."""
    store = Store(tmp_path / "c.duckdb")
    with store.connect() as con:
        con.execute("SET memory_limit = '1GiB'")
        before = _limit(con)
        lean = _lean_limit()
        with store.connect() as other:
            with store.lean(con):
                assert _limit(con) == lean
                with store.lean(other):
                    assert _limit(other) == lean
                assert _limit(con) == lean  # the outer read still runs: still capped
            assert _limit(con) == before
            with pytest.raises(duckdb.Error), store.lean(other):
                other.execute("SELECT * FROM no_such_table")  # a failing read puts it back too
            assert _limit(other) == before
            with store.lean(other, cap=False):
                assert _limit(other) == before


def test_a_write_lifts_the_cap_while_it_runs(tmp_path):
    """A write (a sync's page, an action's queue: what it holds until COMMIT cannot be
    evicted) never runs under a lean read's cap, its own thread's or another's; the
    cap comes back when it commits. An action's check, reading lean inside its own
    write, is capped; its queue after the check is not."""
    import threading

    store = Store(tmp_path / "c.duckdb")
    seen = []
    reading = threading.Event()
    written = threading.Event()

    def writer():
        reading.wait(10)
        with store.transaction() as w:
            seen.append(("another thread's write", _limit(w)))
            w.execute("INSERT INTO meta VALUES ('lean-test', 'x')")
        written.set()

    with store.connect() as keep:  # the file stays open (its settings with it)
        keep.execute("SET memory_limit = '2GiB'")
        before = _limit(keep)
        lean = _lean_limit()
        thread = threading.Thread(target=writer)
        thread.start()
        with store.connect() as con, store.lean(con):
            seen.append(("a lean read", _limit(con)))
            reading.set()
            assert written.wait(10), "the write waited for the lean read"
            seen.append(("the read after the write", _limit(con)))
            with store.connect() as w, store.writing(w):
                seen.append(("its own thread's write", _limit(w)))
                with store.lean(w):
                    seen.append(("a check inside the write", _limit(w)))
                seen.append(("the queue after the check", _limit(w)))
            seen.append(("the read after its write", _limit(con)))
        seen.append(("after the read", _limit(keep)))
        thread.join(10)
    assert seen == [
        ("a lean read", lean),
        ("another thread's write", before),
        ("the read after the write", lean),
        ("its own thread's write", before),
        ("a check inside the write", lean),
        ("the queue after the check", before),
        ("the read after its write", lean),
        ("after the read", before),
    ]


def test_running_out_of_memory_in_a_write_says_so_and_keeps_nothing(tmp_path):
    """An action's insert that runs out of memory is told as that, not as the cleanup
    statement after it ("Current transaction is aborted", once told as a collision)."""
    from sellerbench.errors import CacheError
    from sellerbench.workbench import Workbench
    from tests.grid.conftest import fill_sellers

    store = Store(tmp_path / "c.duckdb")
    fill_sellers(store, 200_000)
    wb = Workbench(store, None, auto_push=False)
    ids = wb.sql("SELECT id FROM sellers")["id"].tolist()
    with store.connect() as keep:  # the file stays open with its small limit
        keep.execute("SET memory_limit = '16MB'")
        with pytest.raises(CacheError, match="ran out of memory") as info:
            wb.flag(ids)
    assert "collided" not in str(info.value)
    assert wb.status()["pending"] == 0
    wb.close()
