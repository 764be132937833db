"""What a report remembers and what changed since: exact counts over a real DuckDB cache."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sellerbench.cache.filters import SellerFilter
from sellerbench.cache.store import Store
from sellerbench.errors import ConfigError, ExportError
from sellerbench.reports import report_state as state
from sellerbench.reports.report_page import Period, parse_since
from sellerbench.reports.report_words import (
    day_words,
    duration_words,
    file_size,
    join_words,
    plural,
    share_words,
)

from .exportdata import fill

NAMES = [f"Shop {i:02d}" for i in range(12)]  # s0000..s0011; even ones flagged


def snapshot(store: Store, folder: Path, chosen: SellerFilter, made: str) -> state.Previous:
    """A finished report in ``folder``: its state and a manifest (as run_report leaves)."""
    folder.mkdir(parents=True)
    with store.connect() as con:
        state.write_state(con, chosen, folder / state.STATE)
    state.write_partial(folder, {"made_at": made, "title": "t", "rows": {}})
    state.write_manifest(folder, [])
    found = state.read_manifest(folder)
    assert found is not None
    return found


def change(store: Store) -> None:
    """A flag, an unflag, a rename, a delete and two new sellers, as a sync leaves them."""
    with store.connect() as con:
        con.execute("UPDATE sellers SET flagged = true WHERE id = 's0001'")
        con.execute("UPDATE sellers SET flagged = false WHERE id = 's0002'")
        con.execute("UPDATE sellers SET display_name = 'Shop Renamed' WHERE id = 's0003'")
        con.execute("UPDATE sellers SET deleted_at = now() WHERE id = 's0004'")
    fill(store, ["Brand New A", "Brand New B"], start=100)  # s0100 flagged, s0101 not


def test_changes_since_a_report_are_exact(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache.duckdb")
    fill(store, NAMES)
    everyone = SellerFilter()
    previous = snapshot(store, tmp_path / "r1", everyone, "2026-12-01T10:00:00+00:00")
    change(store)
    with store.connect() as con:
        changes = state.changes_since_report(con, everyone, previous)
    counts = {k: c.count for k, c in changes.kinds.items()}
    assert counts == {"new": 2, "flagged": 1, "unflagged": 1, "renamed": 1, "deleted": 1}
    assert changes.kinds["renamed"].examples == [("Shop Renamed", "Shop 03")]
    assert changes.kinds["new"].examples == [("Brand New A", None), ("Brand New B", None)]
    assert changes.kinds["deleted"].examples == [("Shop 04", None)]
    assert changes.since == datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_a_filtered_report_counts_a_newly_flagged_seller_as_flagged_not_new(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "cache.duckdb")
    fill(store, NAMES)
    flagged = SellerFilter(flagged=True)
    previous = snapshot(store, tmp_path / "r1", flagged, "2026-12-01T10:00:00+00:00")
    change(store)
    with store.connect() as con:
        changes = state.changes_since_report(con, flagged, previous)
    counts = {k: c.count for k, c in changes.kinds.items()}
    # s0001 flagged now (in scope now), s0002 unflagged (was in scope), s0003 renamed
    # but unflagged (never in scope), s0004 deleted and flagged (was in scope), one new
    # flagged seller.
    assert counts == {"new": 1, "flagged": 1, "unflagged": 1, "renamed": 0, "deleted": 1}


def test_changes_since_a_day_are_what_the_cache_can_tell(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache.duckdb")
    fill(store, NAMES)  # created in 2024
    change(store)
    with store.connect() as con:
        con.execute("UPDATE sellers SET created_at = now() WHERE id LIKE 's01%'")
        changes = state.changes_since_date(con, SellerFilter(), date(2025, 1, 1))
    assert set(changes.kinds) == {"new", "deleted"}
    assert (changes.count("new"), changes.count("deleted")) == (2, 1)
    assert changes.count("renamed") is None


def test_the_previous_report_is_the_newest_finished_one_beside(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache.duckdb")
    fill(store, NAMES)
    reports = tmp_path / "reports"
    snapshot(store, reports / "b", SellerFilter(), "2026-12-02T00:00:00+00:00")
    snapshot(store, reports / "a", SellerFilter(), "2026-12-03T00:00:00+00:00")
    (reports / "unfinished").mkdir()
    (reports / "unfinished" / state.STATE).write_bytes(b"no manifest: not a report")
    found = state.find_previous(reports / "new", None)
    assert found is not None and found.folder == reports / "a"  # by when, not by name
    named = state.find_previous(reports / "new", reports / "b" / "report.html")
    assert named is not None and named.folder == reports / "b"
    with pytest.raises(ExportError, match=r"neither a date .* nor a finished report"):
        state.find_previous(reports / "new", reports / "unfinished")
    assert state.find_previous(tmp_path / "lonely" / "new", None) is None


def test_the_manifest_holds_checksums_and_is_written_last(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache.duckdb")
    fill(store, NAMES)
    folder = tmp_path / "r"
    snapshot(store, folder, SellerFilter(), "2026-12-01T10:00:00+00:00")
    manifest = json.loads((folder / state.MANIFEST).read_text())
    assert manifest["format"] == state.MANIFEST_FORMAT
    facts = manifest["files"][state.STATE]
    assert facts["bytes"] == (folder / state.STATE).stat().st_size
    assert len(facts["sha256"]) == 64
    assert not (folder / state.PARTIAL).exists()
    with pytest.raises(ExportError, match="left no facts"):
        state.write_manifest(folder, [])


def test_words_a_reader_reads() -> None:
    assert plural(1, "seller") == "1 seller" and plural(20000, "seller") == "20,000 sellers"
    assert plural(3, "run", word=True) == "three runs"
    assert join_words(["a", "", "b", "c"]) == "a, b and c"
    assert file_size(512) == "512 B" and file_size(1536) == "1.5 KB"
    assert file_size(5 * 1024 * 1024) == "5.0 MB"
    assert share_words(0.0512) == "5.1%" and share_words(0.0004) == "under 0.1%"
    assert share_words(0.0473, 2) == "4.73%" and share_words(0) == "0.0%"
    assert day_words(date(2026, 12, 7)) == "7 December 2026"
    assert day_words(datetime(2026, 12, 7, 23, tzinfo=UTC), short=True) == "7 Dec 2026"
    assert day_words(None) == "" and duration_words(float("nan")) == ""
    assert [duration_words(s) for s in (45, 76, 720, 3900, 200_000)] == \
        ["45 s", "1 min 16 s", "12 min", "1 h 5 min", "2 days 7 h"]


def test_period_and_since_are_checked() -> None:
    today = date(2026, 12, 7)
    assert Period.parse("30d", today) == Period(date(2026, 11, 8), None)
    assert Period.parse("2026-11-01..2026-11-30") == Period(date(2026, 11, 1),
                                                            date(2026, 11, 30))
    assert Period.parse(None).words() == "all runs"
    assert Period.parse("2026-11-01").words() == "since 1 November 2026"
    for bad in ("last week", "2026-12-01..2026-11-01", "2026-13-01"):
        with pytest.raises(ConfigError, match="period must be like 30d"):
            Period.parse(bad)
    assert parse_since("2026-11-01") == date(2026, 11, 1)
    assert parse_since("reports/w48") == Path("reports/w48")
    with pytest.raises(ConfigError, match="not a real day"):
        parse_since("2026-02-30")


def test_the_trend_is_the_flagged_share_at_each_report_with_the_same_filter(
    tmp_path: Path,
) -> None:
    from sellerbench.reports import report_charts as charts

    reports = tmp_path / "reports"
    for day, flagged, facts in ((1, 50, {"flagged": None, "search": None, "where": None}),
                                (2, 60, {"flagged": None, "search": None, "where": None}),
                                (3, 99, {"flagged": True, "search": None, "where": None})):
        folder = reports / f"r{day}"
        folder.mkdir(parents=True)
        (folder / state.STATE).write_bytes(b"")
        state.write_partial(folder, {"made_at": f"2026-12-0{day}T09:00:00+00:00",
                                     "filter": facts,
                                     "rows": {"flagged": flagged, "sellers": 1000}})
        state.write_manifest(folder, [])
    points = state.history(reports / "now", {"flagged": None, "search": None, "where": None})
    assert [(p[0].day, p[1], p[2]) for p in points] == [(1, 50, 1000), (2, 60, 1000)]
    assert charts.trend_chart(points) is None  # two reports are not a trend yet
    now = (datetime(2026, 12, 4, tzinfo=UTC), 55, 1000)
    chart = charts.trend_chart([*points, now])
    assert chart is not None and "5.5%" in chart.svg and "4 Dec 2026" in chart.svg
    ticks = [float(t) for t in re.findall(r">(\d+(?:\.\d+)?)%</text>", chart.svg)]
    assert ticks and min(ticks) > 0  # the axis starts near the values, not at 0
    flat = [(p[0], 50, 1000) for p in points] + [(now[0], 50, 1000)]
    assert charts.trend_chart(flat) is None


def test_changes_since_a_day_say_what_the_cache_cannot_tell(tmp_path: Path) -> None:
    import pandas as pd

    from sellerbench.reports.report_page import Page, ReportParams

    changes = state.Changes(datetime(2026, 12, 1, tzinfo=UTC), None, {
        "new": state.Change("new", 4, [("A", None), ("B", None), ("C", None)]),
        "deleted": state.Change("deleted", 0, []),
    })
    params = ReportParams.of(output_dir=tmp_path / "r", since="2026-12-01")
    runs = pd.DataFrame({"name": ["Late"], "status": ["failed"],
                         "started_at": [pd.Timestamp("2026-12-02 09:00", tz="UTC")],
                         "completed_at": [pd.Timestamp("2026-12-02 09:10", tz="UTC")],
                         "duration_seconds": [600.0], "sellers_found": [1200],
                         "sellers_new": [30], "failed_items": [4]})
    page = Page(params, datetime(2026, 12, 7, tzinfo=UTC), None, tmp_path, {}, 10, 0,
                pd.DataFrame(), runs, pd.DataFrame(), changes, [], [])
    assert page.sentences() == [
        "Since 1 December 2026: 4 new sellers (“A”, “B”, “C” and 1 more). Flags and "
        "renames since a date are not kept in the cache; compare with a previous report "
        "to see them.",
        "1 collection run since then: “Late” (2 Dec 2026) failed after 10 min, finding "
        "1,200 sellers (30 new), 4 failed items.",
        "0 of 10 sellers are flagged (0.0%).",
    ]


def test_an_empty_cache_makes_a_page_that_says_so(tmp_path: Path) -> None:
    from sellerbench.reports.report_page import ReportParams, build
    from sellerbench.workbench import Workbench

    wb = Workbench(Store(tmp_path / "empty.duckdb"), None)
    try:
        page = build(ReportParams.of(output_dir=tmp_path / "reports" / "r"), wb)
    finally:
        wb.close()
    assert page.sentences()[1:] == ["No collection run in this period (all runs).",
                                    "No seller matches this report's filter."]
    assert "No collection run" in page.runs_html()
    assert "No seller in this report is flagged." in page.flagged_html()
    assert "<img" not in page.platforms_html() + page.runs_html()
    assert [p.name for p in page.files] == ["sellers.csv", "sellers.parquet", "runs.csv"]


def test_names_are_text_in_the_page_never_markup(tmp_path: Path) -> None:
    from sellerbench.reports.report_page import ReportParams, build
    from sellerbench.workbench import Workbench

    store = Store(tmp_path / "cache.duckdb")
    fill(store, ["<script>alert('x')</script>", "<img src=x onerror=alert(1)>", "Plain"])
    previous = snapshot(store, tmp_path / "reports" / "r1", SellerFilter(),
                        "2026-12-01T10:00:00+00:00")
    with store.connect() as con:
        con.execute("UPDATE sellers SET display_name = '<b>bold</b>' WHERE id = 's0002'")
    wb = Workbench(store, None)
    try:
        page = build(ReportParams.of(output_dir=tmp_path / "reports" / "r2",
                                     since=str(previous.folder)), wb)
    finally:
        wb.close()
    html = page.summary_html() + page.flagged_html() + page.header_html()
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;" in html
