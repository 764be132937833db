"""Export behaviour over a cache: formats, filters, atomicity, routing, pending changes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from sellerbench.cache.store import Store
from sellerbench.errors import ConfigError, ExportError
from sellerbench.reports import exports
from sellerbench.workbench import Workbench

from .exportdata import AWKWARD_NAMES


def ids_in(path: Path) -> list[str]:
    return sorted(pq.read_table(path).column("id").to_pylist())


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


# -- formats ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.csv", "csv"), ("a.json", "json"), ("a.ndjson", "ndjson"), ("a.jsonl", "ndjson"),
     ("a.parquet", "parquet"), ("A.PARQUET", "parquet"), ("a.json.gz", "json")],
)
def test_format_from_suffix(wb: Workbench, out: Path, name: str, fmt: str) -> None:
    assert wb.export(out / name, progress=False).format == fmt


def test_format_argument_wins_over_suffix(wb: Workbench, out: Path) -> None:
    report = wb.export(out / "sellers.txt", format="parquet", progress=False)
    assert report.format == "parquet"
    assert pq.read_table(out / "sellers.txt").num_rows == len(AWKWARD_NAMES)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("sellers.xlsx", {}, "cannot tell the format"),
        ("sellers", {}, "cannot tell the format"),
        ("sellers.csv", {"format": "xml"}, "unknown export format"),
        ("sellers.parquet.gz", {}, "drop the .gz"),
        ("sellers.csv", {"source": "elsewhere"}, "source must be one of"),
        ("sellers.csv", {"columns": ["id", "colour"]}, "unknown column(s) 'colour'"),
        ("sellers.csv", {"columns": []}, "columns is empty"),
        ("sellers.csv", {"source": "server"}, "needs an API"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    wb: Workbench, out: Path, name: str, options: dict, message: str
) -> None:
    with pytest.raises(ExportError) as caught:
        wb.export(out / name, progress=False, **options)
    assert message in str(caught.value)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"flagged": "yes"}, "flagged must be"),
        ({"where": "true; DROP TABLE sellers"}, "one SQL predicate"),
        ({"where": "true -- comment"}, "one SQL predicate"),
        ({"where": "true) UNION ALL SELECT * FROM visible_sellers WHERE (true"},
         "unbalanced parentheses"),
        ({"where": "times_seen >"}, "not valid SQL"),
        ({"where": "colour = 'red'"}, 'names no column "colour"'),
    ],
)
def test_a_bad_filter_is_the_same_config_error_as_in_frames(
    wb: Workbench, out: Path, options: dict, message: str
) -> None:
    """One filter (sellerbench.cache.filters): a bad value is the same ConfigError whether it is
    passed to an export or to wb.sellers, and no file appears."""
    with pytest.raises(ConfigError) as caught:
        wb.export(out / "sellers.csv", progress=False, **options)
    assert message in str(caught.value)
    with pytest.raises(ConfigError) as frame_error:
        wb.sellers(**options)
    assert str(frame_error.value) == str(caught.value)
    assert list(out.iterdir()) == []


def test_missing_folder_is_an_error(wb: Workbench, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        wb.export(tmp_path / "nowhere" / "sellers.csv")


# -- overwriting and atomicity ----------------------------------------------------------


def test_refuses_to_overwrite_unless_asked(wb: Workbench, out: Path) -> None:
    target = out / "sellers.csv"
    target.write_text("precious")
    with pytest.raises(ExportError, match="overwrite=True"):
        wb.export(target, progress=False)
    assert target.read_text() == "precious"
    report = wb.export(target, overwrite=True, progress=False)
    assert report.rows == len(pd.read_csv(target)) == len(AWKWARD_NAMES)
    assert leftovers(out) == []


def test_a_file_appearing_during_the_export_is_not_clobbered(
    wb: Workbench, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = out / "sellers.csv"
    real_copy = exports._copy

    def copy_then_race(*args, **kwargs):
        rows = real_copy(*args, **kwargs)
        target.write_text("someone else's")  # another process wins the race
        return rows

    monkeypatch.setattr(exports, "_copy", copy_then_race)
    with pytest.raises(ExportError, match="exists"):
        wb.export(target, progress=False)
    assert target.read_text() == "someone else's"
    assert leftovers(out) == []


def test_a_failing_query_leaves_nothing_and_keeps_the_old_file(
    wb: Workbench, out: Path
) -> None:
    target = out / "sellers.csv"
    target.write_text("old")
    # The cast fails on the first non-numeric name, after COPY has started writing.
    with pytest.raises(ExportError, match="the export failed"):
        wb.export(target, where="CAST(display_name AS INTEGER) > 0", overwrite=True,
                  progress=False)
    assert target.read_text() == "old"
    assert leftovers(out) == []


def test_an_interrupted_export_leaves_nothing(
    wb: Workbench, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(exports, "_watch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        wb.export(out / "sellers.parquet")
    assert list(out.iterdir()) == []


# -- filters ----------------------------------------------------------------------------


def test_flagged_filter(wb: Workbench, out: Path) -> None:
    flagged = wb.export(out / "f.parquet", flagged=True, progress=False)
    unflagged = wb.export(out / "u.parquet", flagged=False, progress=False)
    assert flagged.rows + unflagged.rows == len(AWKWARD_NAMES)
    assert set(pq.read_table(out / "f.parquet").column("flagged").to_pylist()) == {True}
    assert set(pq.read_table(out / "u.parquet").column("flagged").to_pylist()) == {False}


def test_search_matches_the_sellers_frame(wb: Workbench, out: Path) -> None:
    for text in ["zoë", "MÜLLER", "comma", "'", "%", "_"]:
        target = out / f"search-{abs(hash(text))}.parquet"
        report = wb.export(target, search=text, progress=False)
        frame = wb.sellers(search=text)
        assert ids_in(target) == sorted(frame["id"]), text
        assert report.rows == len(frame)


def test_where_predicate_and_literal_semicolons(wb: Workbench, out: Path) -> None:
    report = wb.export(out / "w.parquet", where="times_seen >= 3 AND platform = 'ebay'",
                       progress=False)
    table = pq.read_table(out / "w.parquet").to_pandas()
    assert report.rows == len(table) > 0
    assert (table["times_seen"] >= 3).all() and set(table["platform"]) == {"ebay"}
    # A ';' inside a string literal is data, not a second statement.
    report = wb.export(out / "semi.parquet", where="display_name <> 'a;b)'", progress=False)
    assert report.rows == len(AWKWARD_NAMES)
    report = wb.export(out / "quoted.parquet", where='("display_name" = \'Comma, Inc.\')',
                       progress=False)
    assert report.rows == 1


def test_where_cannot_undo_the_other_filters(wb: Workbench, out: Path) -> None:
    # Wrapped in parentheses: "OR true" stays inside and flagged=True still applies.
    wb.export(out / "w.parquet", flagged=True, where="false OR true", progress=False)
    assert set(pq.read_table(out / "w.parquet").column("flagged").to_pylist()) == {True}


def test_columns_pick_and_order(wb: Workbench, out: Path) -> None:
    wb.export(out / "c.csv", columns=["display_name", "id"], progress=False)
    frame = pd.read_csv(out / "c.csv", dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["display_name", "id"]
    wb.export(out / "one.csv", columns="id", progress=False)
    assert list(pd.read_csv(out / "one.csv").columns) == ["id"]


# -- what the analyst sees ---------------------------------------------------------------


def test_pending_changes_are_in_the_export(wb: Workbench, out: Path) -> None:
    wb.flag(["s0001"], True)
    wb.rename("s0003", "Renamed Locally")
    wb.delete(["s0005"])
    assert len(wb.pending()) == 3  # offline: nothing was pushed
    wb.export(out / "mine.parquet", progress=False)
    table = pq.read_table(out / "mine.parquet").to_pandas().set_index("id")
    assert bool(table.loc["s0001", "flagged"]) is True
    assert table.loc["s0003", "display_name"] == "Renamed Locally"
    assert "s0005" not in table.index
    assert len(table) == len(AWKWARD_NAMES) - 1


def test_timestamps_are_utc_iso(wb: Workbench, out: Path) -> None:
    wb.export(out / "t.csv", columns=["id", "created_at"], progress=False)
    frame = pd.read_csv(out / "t.csv", dtype=str).set_index("id")
    # Cached as 10:30 at +02:00: written as 08:30 UTC with microseconds.
    assert frame.loc["s0000", "created_at"] == "2024-01-15T08:30:00.123456Z"


# -- routing and progress ----------------------------------------------------------------


def test_auto_uses_a_synced_cache(wb: Workbench, out: Path) -> None:
    report = wb.export(out / "a.csv", progress=False)
    assert report.source == "cache"
    assert "pending changes" in report.route_reason
    assert str(report).startswith(f"exported {len(AWKWARD_NAMES)} rows to ")


def test_auto_on_an_empty_offline_cache_exports_nothing_and_says_why(
    tmp_path: Path, out: Path
) -> None:
    wb = Workbench(Store(tmp_path / "empty.duckdb"), None)
    report = wb.export(out / "a.csv", progress=False)
    assert (report.source, report.rows) == ("cache", 0)
    assert "no API configured" in report.route_reason


def test_large_exports_show_a_progress_bar(
    store: Store, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with store.connect() as con:  # enough rows that the COPY takes a moment
        con.execute(
            "INSERT INTO sellers SELECT 'id' || range, 'Seller ' || range, 'seller ' || range, "
            "'ebay', NULL, 1, false, NULL, NULL, now(), now(), NULL, range FROM range(300000)"
        )
    bars = []

    class Bar:
        n = 0.0

        def __init__(self, **options):
            bars.append(options)

        def update(self, step):
            self.n += step

        def close(self):
            bars.append(("closed", self.n))

    monkeypatch.setattr(exports, "_bar", Bar)
    monkeypatch.setattr(exports, "PROGRESS_AFTER", 0.0)
    report = Workbench(store, None).export(out / "big.json")
    assert report.rows == 300_000
    assert bars[0]["unit"] == "%" and bars[-1] == ("closed", 100)
    bars.clear()
    Workbench(store, None).export(out / "quiet.json", progress=False)
    assert bars == []


def test_cli_export(wb: Workbench, out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sellerbench.cli import main

    target = out / "flagged.csv"
    code = main(["export", str(target), "--cache", str(wb.store.path), "--flagged",
                 "--columns", "id,display_name", "--quiet"])
    assert code == 0
    assert "exported" in capsys.readouterr().out
    frame = pd.read_csv(target, dtype=str)
    assert list(frame.columns) == ["id", "display_name"]
    assert len(frame) == sum(1 for i in range(len(AWKWARD_NAMES)) if i % 2 == 0)
    assert main(["export", str(target), "--cache", str(wb.store.path)]) == 1
    assert "overwrite" in capsys.readouterr().err

