"""Reading the cache: frames with sensible dtypes, search, SQL, status."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from sellerbench.errors import QueryError, SellerbenchError
from sellerbench.workbench import Workbench, connect


@pytest.fixture
def synced(wb: Workbench) -> Workbench:
    wb.sync(progress=False)
    return wb


def test_sellers_frame_dtypes(synced: Workbench) -> None:
    df = synced.sellers()
    assert len(df) == synced.status()["sellers"] and len(df) > 0
    assert df["id"].dtype == pd.StringDtype() and df["display_name"].dtype == pd.StringDtype()
    assert df["times_seen"].dtype == pd.Int64Dtype()
    assert df["flagged"].dtype == pd.BooleanDtype()
    for column in ("created_at", "updated_at", "deleted_at"):
        assert str(df[column].dtype) == "datetime64[us, UTC]"
    assert df["deleted_at"].isna().all()
    assert df["updated_at"].is_monotonic_decreasing


def test_flagged_filter_and_deleted(synced: Workbench) -> None:
    flagged = synced.sellers(flagged=True)
    assert len(flagged) > 0 and flagged["flagged"].all()
    assert len(flagged) + len(synced.sellers(flagged=False)) == len(synced.sellers())
    everything = synced.sellers(include_deleted=True)
    assert len(everything) - len(synced.sellers()) == synced.status()["deleted"]


def test_search_is_a_bound_case_insensitive_substring(synced: Workbench) -> None:
    name = synced.sellers()["display_name"].iloc[0]
    part = name[1:5].swapcase()
    found = synced.sellers(search=part)
    assert name in set(found["display_name"])
    lower = part.lower()
    matches = found["display_name"].str.lower().str.contains(lower, regex=False) | found[
        "normalized_name"
    ].str.contains(lower, regex=False)
    assert matches.all()
    assert synced.sellers(search="' OR 1=1 --").empty
    assert synced.sellers(search="%").empty  # no LIKE wildcards: a literal percent sign


def test_runs_frame(synced: Workbench, server: Any) -> None:
    runs = synced.runs()
    assert len(runs) >= 1 and runs["id"].dtype == pd.StringDtype()
    assert runs["sellers_found"].dtype == pd.Int64Dtype()
    assert str(runs["started_at"].dtype) == "datetime64[us, UTC]"
    assert runs["created_at"].is_monotonic_decreasing


def test_sql_binds_parameters_and_returns_a_frame(synced: Workbench) -> None:
    df = synced.sql(
        "SELECT flagged, count(*) AS n FROM visible_sellers WHERE times_seen >= ? "
        "GROUP BY flagged ORDER BY flagged", [0]
    )
    assert list(df.columns) == ["flagged", "n"] and df["n"].dtype == pd.Int64Dtype()
    assert df["n"].sum() == synced.status()["sellers"]
    named = synced.sql("SELECT count(*) AS n FROM sellers WHERE flagged = $f", {"f": True})
    assert named["n"].iloc[0] >= synced.status()["flagged"]


@pytest.mark.parametrize(
    ("statement", "instead"),
    [("DELETE FROM sellers", "wb.flag"), ("UPDATE sellers SET flagged = true", "wb.flag"),
     ("INSERT INTO meta VALUES ('a', 'b')", "wb.flag"),
     ("DROP TABLE sellers", "pandas"), ("CREATE TABLE mine AS SELECT 1", "pandas"),
     ("CREATE OR REPLACE MACRO m() AS 1", "pandas"),
     ("ALTER TABLE sellers ADD COLUMN x INT", "pandas"),
     ("ATTACH 'other.duckdb'", "duckdb.connect"), ("DETACH other", "duckdb.connect"),
     ("SELECT 1; DELETE FROM sellers", "wb.flag"),
     ("PRAGMA memory_limit='1MB'", "SELLERBENCH_MEMORY_LIMIT"), ("PRAGMA table_info('sellers')",
                                                        "DESCRIBE sellers"),
     ("CALL pragma_version()", "SELECT * FROM function"), ("CHECKPOINT", "SELECT * FROM"),
     ("SET memory_limit = '1MB'", "SELLERBENCH_MEMORY_LIMIT"),
     ("RESET threads", "SELLERBENCH_MEMORY_LIMIT"), ("SET VARIABLE x = 1", "settings"),
     ("COPY sellers TO 'out.csv'", "wb.export"), ("EXPORT DATABASE 'folder'", "wb.export"),
     ("INSTALL httpfs", "extensions"), ("LOAD httpfs", "extensions"),
     ("UPDATE EXTENSIONS", "extensions"), ("BEGIN TRANSACTION", "read-only transaction"),
     ("VACUUM", "maintains"), ("PREPARE p AS SELECT 1", "params=")],
)
def test_sql_is_read_only(synced: Workbench, statement: str, instead: str) -> None:
    """DuckDB's parser names each statement's kind; all but reads are refused, and the
    message says what to use instead."""
    before = synced.status()["sellers"]
    with pytest.raises(QueryError, match="read-only") as refused:
        synced.sql(statement)
    assert instead in str(refused.value)
    assert synced.status()["sellers"] == before
    assert synced.sql("SELECT current_setting('memory_limit') AS m")["m"].iloc[0] != "1.0 MiB"


def test_sql_runs_in_a_read_only_transaction(synced: Workbench) -> None:
    """A SELECT that would write (a sequence's nextval, EXPLAIN ANALYZE of an insert) is
    stopped by DuckDB itself: the query runs in a READ ONLY transaction."""
    seq = synced.sql("SELECT max(seq) AS s FROM mutations")["s"].iloc[0]
    for query in ("SELECT nextval('mutation_seq')",
                  "EXPLAIN ANALYZE INSERT INTO meta VALUES ('x', 'y')"):
        with pytest.raises(QueryError, match="read-only: this query writes"):
            synced.sql(query)
    assert synced.sql("SELECT max(seq) AS s FROM mutations")["s"].iloc[0] is seq
    assert synced.sql("SELECT count(*) AS n FROM meta WHERE key = 'x'")["n"].iloc[0] == 0
    # What reads still runs: DESCRIBE, SHOW, SUMMARIZE, PIVOT, EXPLAIN, table functions.
    assert len(synced.sql("DESCRIBE sellers")) > 5
    assert "sellers" in set(synced.sql("SHOW TABLES")["name"])
    assert len(synced.sql("SUMMARIZE SELECT times_seen FROM sellers")) == 1
    assert len(synced.sql("PIVOT (SELECT flagged FROM sellers) ON flagged USING count(*)")) == 1
    assert len(synced.sql("EXPLAIN SELECT * FROM visible_sellers")) == 1
    assert len(synced.sql("SELECT * FROM duckdb_settings() WHERE name = 'threads'")) == 1


def test_sql_errors_are_clear(synced: Workbench) -> None:
    with pytest.raises(SellerbenchError, match="the query failed"):
        synced.sql("SELECT no_such_column FROM sellers")
    with pytest.raises(SellerbenchError, match="cannot be parsed"):
        synced.sql("SELEC 1")


def test_status_reports_counts_mode_and_never_the_token(synced: Workbench, server: Any) -> None:
    status = synced.status()
    assert status["mode"] == "rev" and status["server"] == server.url
    assert status["sellers"] + status["deleted"] == 300
    assert status["pending"] == 0 and status["last_sync"]
    assert "rev_feed" in status["features"]
    assert server.tokens["analyst"] not in repr(status)


def test_status_works_offline_from_what_was_remembered(
    synced: Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SELLERBENCH_API_URL", raising=False)
    with connect(cache=synced.store.path) as offline:
        status = offline.status()
        frame = offline.sellers()
    assert status["server"] == synced.client.base_url and "rev_feed" in status["features"]
    assert len(frame) == status["sellers"]


def test_fresh_cache_reads_empty_frames(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SELLERBENCH_API_URL", raising=False)
    with connect(cache=tmp_path / "empty.duckdb") as wb:
        assert wb.sellers().empty and wb.runs().empty
        assert wb.sellers()["id"].dtype == pd.StringDtype()
        assert wb.status()["last_sync"] is None


def test_two_syncs_at_once_in_one_process_both_finish(wb: Any) -> None:
    """A cell's sync and a background sync (the run watcher's) must not collide."""
    import threading

    wb.sync(progress=False)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            wb.sync(progress=False, full=True)
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert wb.sql("select count(*) as n from sellers")["n"][0] > 0
