"""Exported files read back with pandas, pyarrow and duckdb equal the rows exported."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest

from sellerbench.workbench import Workbench

from .exportdata import AWKWARD_NAMES, neutralized

TEXT = ("id", "display_name", "normalized_name", "platform", "platform_id", "last_seen_run_id")
TIMES = ("created_at", "updated_at")


def expected_rows(wb: Workbench) -> list[dict[str, Any]]:
    table = wb.store.query("SELECT * FROM visible_sellers ORDER BY id")
    return table.to_pylist()


def normalise(row: dict[str, Any], *, csv: bool) -> dict[str, Any]:
    """The comparable part of a row, whatever reader produced it."""
    out: dict[str, Any] = {}
    for name in TEXT:
        value = row[name]
        if value is None or (isinstance(value, float) and pd.isna(value)):
            value = None
        out[name] = "" if csv and value is None else value
    out["times_seen"] = int(row["times_seen"])
    flagged = row["flagged"]
    out["flagged"] = flagged if isinstance(flagged, bool) else str(flagged).lower() == "true"
    for name in TIMES:
        stamp = pd.Timestamp(row[name])
        out[name] = stamp.tz_convert(UTC) if stamp.tzinfo else stamp.tz_localize(UTC)
    return out


def as_written(row: dict[str, Any], *, csv: bool) -> dict[str, Any]:
    """What the export promises for a cached row: text neutralised in CSV only."""
    written = dict(row)
    if csv:
        for name in TEXT:
            written[name] = neutralized(row[name])
    return normalise(written, csv=csv)


def check(read: list[dict[str, Any]], wb: Workbench, *, csv: bool) -> None:
    want = [as_written(r, csv=csv) for r in expected_rows(wb)]
    got = sorted((normalise(r, csv=csv) for r in read), key=lambda r: r["id"])
    assert len(got) == len(AWKWARD_NAMES)
    assert got == want


def test_csv_reads_back_everywhere_neutralised(wb: Workbench, out: Path) -> None:
    path = out / "sellers.csv"
    report = wb.export(path, progress=False)
    assert (report.rows, report.format, report.source) == (len(AWKWARD_NAMES), "csv", "cache")

    by_pandas = pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
    check(by_pandas, wb, csv=True)

    by_arrow = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={k: pa.string() for k in TEXT}, strings_can_be_null=False
        ),
    ).to_pylist()
    check(by_arrow, wb, csv=True)

    by_duckdb = duckdb.sql(f"SELECT * FROM read_csv('{path}', all_varchar = true)")
    check([dict(zip(by_duckdb.columns, r, strict=True)) for r in by_duckdb.fetchall()],
          wb, csv=True)


def test_csv_neutralises_exactly_the_formula_starts(wb: Workbench, out: Path) -> None:
    path = out / "sellers.csv"
    wb.export(path, progress=False)
    names = set(pd.read_csv(path, dtype=str, keep_default_na=False)["display_name"])
    assert "'=HYPERLINK(\"http://x\",\"click\")" in names
    assert {"'+441234", "'-5 Stars", "'@handle", "'\tTabbed", "'\rReturned"} <= names
    # Not formula starts: left alone, including a name already starting with a quote.
    assert {"Comma, Inc.", 'The "Best" Deals', "Two\nLines", "'Already quoted"} <= names
    # Numbers and timestamps are never prefixed.
    frame = pd.read_csv(path, keep_default_na=False)
    assert frame["times_seen"].dtype.kind == "i"
    assert all(stamp.endswith("Z") for stamp in frame["created_at"])


def test_csv_opt_out_writes_names_unchanged(wb: Workbench, out: Path) -> None:
    path = out / "raw.csv"
    wb.export(path, neutralize=False, progress=False)
    by_pandas = pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
    want = sorted(r["display_name"] for r in expected_rows(wb))
    assert sorted(r["display_name"] for r in by_pandas) == want


@pytest.mark.parametrize("suffix", [".ndjson", ".jsonl"])
def test_ndjson_reads_back_everywhere_unchanged(wb: Workbench, out: Path, suffix: str) -> None:
    path = out / f"sellers{suffix}"
    report = wb.export(path, progress=False)
    assert report.format == "ndjson"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(AWKWARD_NAMES)  # one object a line: newlines stay escaped

    check(pd.read_json(path, lines=True, dtype=False).to_dict("records"),
          wb, csv=False)
    check(pajson.read_json(path).to_pylist(), wb, csv=False)
    rel = duckdb.sql(f"SELECT * FROM read_json('{path}', format = 'newline_delimited')")
    check([dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()], wb, csv=False)


def test_json_is_one_array(wb: Workbench, out: Path) -> None:
    path = out / "sellers.json"
    wb.export(path, progress=False)
    records = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(records, list)
    check(records, wb, csv=False)
    check(pd.read_json(path, orient="records", dtype=False)
          .to_dict("records"), wb, csv=False)
    check(pa.Table.from_pylist(records).to_pylist(), wb, csv=False)
    rel = duckdb.sql(f"SELECT * FROM read_json('{path}', format = 'array')")
    check([dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()], wb, csv=False)
    assert records[0]["created_at"].endswith("Z")  # ISO-8601 in UTC


def test_parquet_reads_back_everywhere_with_types(wb: Workbench, out: Path) -> None:
    path = out / "sellers.parquet"
    wb.export(path, progress=False)
    check(pd.read_parquet(path).to_dict("records"), wb, csv=False)
    table = pq.read_table(path)
    assert str(table.schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    check(table.to_pylist(), wb, csv=False)
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
    check([dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()], wb, csv=False)


def test_tombstones_are_not_exported(wb: Workbench, out: Path) -> None:
    path = out / "sellers.parquet"
    wb.export(path, progress=False)
    assert "gone" not in set(pq.read_table(path).column("id").to_pylist())


def test_empty_exports_are_valid_files(wb: Workbench, out: Path) -> None:
    nobody = "display_name = 'nobody'"
    assert wb.export(out / "e.csv", where=nobody, progress=False).rows == 0
    assert (out / "e.csv").read_text().startswith("id,display_name,")
    wb.export(out / "e.json", where=nobody, progress=False)
    assert json.loads((out / "e.json").read_text()) == []
    wb.export(out / "e.parquet", where=nobody, progress=False)
    assert pq.read_table(out / "e.parquet").num_rows == 0


def test_gzip_suffix_compresses(wb: Workbench, out: Path) -> None:
    report = wb.export(out / "sellers.csv.gz", progress=False)
    assert report.format == "csv"
    frame = pd.read_csv(out / "sellers.csv.gz", dtype=str, keep_default_na=False)
    assert len(frame) == report.rows == len(AWKWARD_NAMES)
