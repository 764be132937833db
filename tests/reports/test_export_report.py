"""The report: ``sellerbench report`` headless over a real cache, read as a reader would.

The pages are made once per module (a kernel each): a first report, then a second one
beside it after a flag, a rename, a delete, a new seller and a new run written into the
cache. The tests read the HTML: the summary's sentences against the cache's numbers, the
changes exact, no chart of equal bars, no script, nothing from the network, no local
path unless --provenance, and no process left behind.
"""

from __future__ import annotations

import base64
import html as html_text
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest

from sellerbench.cache.store import Store
from sellerbench.errors import ConfigError, ExportError
from sellerbench.reports import report as reports
from sellerbench.reports import report_charts as charts
from sellerbench.workbench import Workbench

from .exportdata import AWKWARD_NAMES, fill

SVG_URI = "data:image/svg+xml;base64,"
STATUSES = ["completed", "completed", "failed", "completed", "cancelled", "completed"]


def add_runs(store: Store, count: int = 6, first: int = 0) -> None:
    """Runs 60 days apart from 1 January 2024: found 100 + 10 i, new 10 + i."""
    with store.connect() as con:
        for i in range(first, first + count):
            con.execute(
                """INSERT INTO collection_runs (id, name, status, category_ids, started_at,
                    completed_at, created_at, updated_at, sellers_found, sellers_new,
                    failed_items, duration_seconds)
                SELECT 'run-' || $i, 'Sweep ' || $i, $status, ['c1'],
                    TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL ($i * 60) DAY,
                    TIMESTAMPTZ '2024-01-01 01:05:00+00' + INTERVAL ($i * 60) DAY,
                    TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL ($i * 60) DAY,
                    TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL ($i * 60) DAY,
                    100 + $i * 10, 10 + $i, CASE WHEN $status = 'failed' THEN 7 ELSE 0 END,
                    3900""",
                {"i": i, "status": STATUSES[i % len(STATUSES)]},
            )


def summary(page: str) -> list[str]:
    """The summary's sentences as a reader reads them (tags gone, entities decoded)."""
    section = re.search(r'<section class="summary">(.*?)</section>', page, re.DOTALL)
    assert section, "the page has no summary"
    return [html_text.unescape(re.sub(r"<[^>]+>", "", p))
            for p in re.findall(r"<p>(.*?)</p>", section.group(1), re.DOTALL)]


def visible_text(page: str) -> str:
    body = re.sub(r"<style>.*?</style>", " ", page, flags=re.DOTALL)
    return html_text.unescape(re.sub(r"<[^>]+>", " ", body))


def svgs(page: str) -> list[str]:
    return [base64.b64decode(b).decode() for b in re.findall(r'src="data:image/svg\+xml;base64,'
                                                             r'([^"]+)"', page)]


def bar_lengths(svg: str) -> list[float]:
    """The length of each bar a chart draws (its path, from the ``bar-N`` group)."""
    lengths = []
    for path in re.findall(r'<g id="bar-\d+">\s*<path d="([^"]+)"', svg):
        xs = [float(x) for x in re.findall(r"[ML]\s*([-\d.]+)\s+[-\d.]+", path)]
        lengths.append(round(max(xs) - min(xs), 2))
    return lengths


# -- charts and helpers, without a kernel ----------------------------------------------------


def runs_frame(found: list[int], statuses: list[str] | None = None) -> pd.DataFrame:
    n = len(found)
    return pd.DataFrame({
        "name": [f"Run {i}" for i in range(n)], "status": statuses or ["completed"] * n,
        "started_at": pd.date_range("2026-01-01", periods=n, freq="7D", tz="UTC"),
        "completed_at": pd.NaT, "duration_seconds": 60.0, "sellers_found": found,
        "sellers_new": [f // 3 for f in found], "failed_items": 0,
    })


def test_no_chart_of_equal_bars_and_axes_fit_the_values() -> None:
    assert charts.runs_chart(runs_frame([240] * 5)) is None
    assert charts.why_no_runs_chart(runs_frame([240] * 5)) == "Every run found 240 sellers."
    chart = charts.runs_chart(runs_frame([100, 240, 180], ["completed", "failed", "completed"]))
    assert chart is not None
    lengths = bar_lengths(chart.svg)
    assert len(lengths) == 3 and len(set(lengths)) == 3
    assert ">failed</text>" in chart.svg and "· failed" in chart.svg  # the outcome is said
    same = pd.DataFrame({"platform": ["ebay", "etsy"], "sellers": [100, 200],
                         "flagged": [5, 10], "share": [0.05, 0.05]})
    assert charts.share_chart(same) is None
    near_five = same.assign(flagged=[5, 11], share=[0.05, 0.055])
    shares = charts.share_chart(near_five)
    assert shares is not None
    ticks = [float(t) for t in re.findall(r">(\d+(?:\.\d+)?)%</text>", shares.svg)]
    assert ticks and max(ticks) < 10  # scaled to about 5 %, not 0-100 %


def test_names_in_any_script_stay_text_for_the_reader_fonts() -> None:
    """A PNG drawn where no CJK font is installed shows empty boxes; the SVG keeps each
    name as text, which the reader's browser draws with its own fonts."""
    names = ["山田商店", "김민준 상회", "متجر الأمل", "Ωmega Shop"]
    frame = runs_frame([10, 20, 30, 40]).assign(name=names)
    chart = charts.runs_chart(frame)
    assert chart is not None
    for name in names:
        assert name in chart.svg
    assert "sans-serif" in chart.svg
    assert "<!DOCTYPE" not in chart.svg and "<metadata" not in chart.svg


def test_external_references_are_found() -> None:
    page = """<script src="https://cdn.example/require.js"></script>
    <link rel="stylesheet" href="//fonts.example/css">
    <style>@import url("https://fonts.example/x.css");</style>
    <script type="module">const m = await import("https://cdnjs.example/mermaid.mjs")</script>
    <img src="data:image/png;base64,AAAA"> <a href="https://example.com">a link is fine</a>"""
    assert reports.external_references(page) == [
        "https://cdn.example/require.js", "//fonts.example/css",
        "https://fonts.example/x.css", "https://cdnjs.example/mermaid.mjs",
    ]


def test_the_kernel_runs_this_interpreter() -> None:
    assert reports._runs_this_python(["python", "-m", "ipykernel_launcher"])
    assert reports._runs_this_python([sys.executable])
    assert not reports._runs_this_python(["/nowhere/python9"])
    assert reports.kernel_name() in (reports.KERNEL_NAME, reports.OWN_KERNEL_NAME)


def test_bad_parameters_are_refused_before_a_kernel_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="period must be like 30d"):
        reports.run_report(tmp_path / "r", period="last week", cache=tmp_path / "c.duckdb")
    with pytest.raises(ExportError, match=r"neither a date .* nor a finished report"):
        reports.run_report(tmp_path / "r", since=tmp_path, cache=tmp_path / "c.duckdb")
    with pytest.raises(ConfigError, match="flagged must be True, False or None"):
        reports.run_report(tmp_path / "r", flagged="yes", cache=tmp_path / "c.duckdb")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="title must be some text"):
        reports.run_report(tmp_path / "r", title=" ", cache=tmp_path / "c.duckdb")
    assert not (tmp_path / "r" / "report.ipynb").exists()


def test_a_where_naming_no_column_is_one_line_before_a_kernel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from sellerbench.cli import main

    store = Store(tmp_path / "cache.duckdb")
    fill(store, AWKWARD_NAMES)
    code = main(["report", "--cache", str(store.path), "--where", "nosuch > 1",
                 "--output", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1  # a misuse, as for export
    assert "nosuch" in err and "Traceback" not in err
    assert not (tmp_path / "r" / "report.ipynb").exists()


# -- sellerbench report, headless ------------------------------------------------------------


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two reports side by side in ``reports/``, the cache changed between them."""
    from sellerbench.cli import main

    folder = tmp_path_factory.mktemp("report")
    store = Store(folder / "cache.duckdb")
    fill(store, AWKWARD_NAMES)
    add_runs(store)
    before = _children()
    base = ["report", "--cache", str(store.path), "--quiet"]
    first = main([*base, "--output", str(folder / "reports" / "w1")])
    with store.connect() as con:  # what a sync would bring: a flag, a rename, a delete
        con.execute("UPDATE sellers SET flagged = true WHERE display_name = '東京セラー'")
        con.execute("UPDATE sellers SET display_name = 'Plain Seller Ltd' "
                    "WHERE display_name = 'Plain Seller'")
        con.execute("UPDATE sellers SET deleted_at = now() WHERE display_name = '@handle'")
    fill(store, ["Newcomer GmbH"], start=500)
    with store.connect() as con:  # a run that ended after the first report
        con.execute(
            "INSERT INTO collection_runs (id, name, status, started_at, completed_at, "
            "created_at, updated_at, sellers_found, sellers_new, failed_items, "
            "duration_seconds) VALUES ('run-6', 'Sweep 6', 'completed', now() - "
            "INTERVAL 65 MINUTE, now(), now(), now(), 160, 16, 0, 3900)")
    second = main([*base, "--output", str(folder / "reports" / "w2"), "--title",
                   "Weekly sellers"])
    left = _children() - before
    yield {"codes": (first, second), "first": folder / "reports" / "w1",
           "second": folder / "reports" / "w2", "cache": store.path, "left": left,
           "page": (folder / "reports" / "w2" / "report.html").read_text(encoding="utf-8")}


def test_reports_leave_no_process_behind(rendered: dict[str, Any]) -> None:
    assert rendered["codes"] == (0, 0)
    assert rendered["left"] == set()
    assert not list(reports.NOTEBOOK.parent.glob("kernel*"))  # no kernel sockets left
    assert reports.NOTEBOOK.parent.name == "reports"  # package data, not notebooks/


def test_the_folder_holds_the_page_its_data_state_and_manifest(
    rendered: dict[str, Any],
) -> None:
    import json

    names = sorted(p.name for p in rendered["second"].iterdir())
    assert names == ["flagged.csv", "manifest.json", "report.html", "report.ipynb",
                     "runs.csv", "sellers.csv", "sellers.parquet", "state.parquet"]
    manifest = json.loads((rendered["second"] / "manifest.json").read_text())
    assert manifest["rows"] == {"sellers": len(AWKWARD_NAMES), "flagged": 9, "platforms": 2,
                                "runs": 7}
    assert manifest["since"]["report"] == str(rendered["first"])
    assert manifest["filter"] == {"flagged": None, "search": None, "where": None}
    assert set(manifest["files"]) == {"state.parquet", "report.html", "sellers.csv",
                                      "sellers.parquet", "flagged.csv", "runs.csv"}
    import hashlib

    for name, facts in manifest["files"].items():
        data = (rendered["second"] / name).read_bytes()
        assert facts == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    sellers = pd.read_csv(rendered["second"] / "sellers.csv", dtype=str,
                          keep_default_na=False)
    assert len(sellers) == len(AWKWARD_NAMES)  # 14 - 1 deleted + 1 new
    assert "'=HYPERLINK(\"http://x\",\"click\")" in set(sellers["display_name"])
    flagged = pd.read_csv(rendered["second"] / "flagged.csv", dtype=str)
    assert set(flagged["flagged"]) == {"true"} and len(flagged) == 9


def test_the_summary_says_exactly_what_changed(rendered: dict[str, Any]) -> None:
    sentences = summary(rendered["page"])
    made = re.search(r"Since the previous report \((\d+ \w+ \d{4}, \d\d:\d\d UTC)\): ",
                     sentences[0])
    assert made, sentences[0]
    assert sentences[0] == (
        f"Since the previous report ({made.group(1)}): 1 new seller (“Newcomer GmbH”), "
        "1 seller newly flagged (“東京セラー”), 1 seller renamed (“Plain Seller” → "
        "“Plain Seller Ltd”) and 1 seller deleted (“@handle”)."
    )
    flagged = rendered["page"].split("<h2>Flagged sellers</h2>", 1)[1]
    sellers = [html_text.unescape(c) for c in re.findall(r'<tr><td class="name">([^<]*)</td>',
                                                          flagged)]
    assert sellers[:3] == ["● 東京セラー", "● Newcomer GmbH", "=HYPERLINK(\"http://x\",\"click\")"]
    assert not [s for s in sellers[2:] if s.startswith("●")]  # newly flagged first, only
    today = datetime.now(UTC)
    assert sentences[1] == (
        f"1 collection run since then: “Sweep 6” ({today.day} {today:%b %Y}) completed "
        "after 1 h 5 min, finding 160 sellers (16 new)."
    )


def test_the_summary_numbers_match_the_cache(rendered: dict[str, Any]) -> None:
    wb = Workbench(Store(rendered["cache"], read_only=True), None)
    try:
        sellers = wb.sellers()
    finally:
        wb.close()
    flagged, total = int(sellers["flagged"].sum()), len(sellers)
    share = f"{flagged / total:.1%}"
    assert summary(rendered["page"])[2] == (
        f"{flagged} of {total} sellers are flagged ({share}), up from 7 of 14 (50.0%) at "
        f"the previous report."
    )
    first = summary((rendered["first"] / "report.html").read_text(encoding="utf-8"))
    assert first[0].startswith("This is the first report in this folder")
    assert first[1] == (
        "6 collection runs (all runs): 4 completed, 1 failed and 1 cancelled; the last "
        "three runs: “Sweep 5” (27 Oct 2024) completed after 1 h 5 min, finding 150 "
        "sellers (15 new), “Sweep 4” (28 Aug 2024) was cancelled after 1 h 5 min, finding "
        "140 sellers (14 new) and “Sweep 3” (29 Jun 2024) completed after 1 h 5 min, "
        "finding 130 sellers (13 new)."
    )


def test_the_page_is_offline_without_script_code_or_local_paths(
    rendered: dict[str, Any],
) -> None:
    page = rendered["page"]
    assert reports.external_references(page) == []
    assert not re.search(r"<script\b", page, re.IGNORECASE)
    assert not re.search(r"\bon\w+\s*=", page)  # no inline handlers either
    text = visible_text(page)
    assert "Weekly sellers" in text and "<title>Weekly sellers</title>" in page
    for hidden in (str(rendered["cache"]), str(rendered["second"]), "/tmp", "127.0.0.1"):
        assert hidden not in page
    for code in ("report_page", "display(HTML", "papermill", "Parameters"):
        assert code not in text
    links = re.findall(r'<a href="([^"]+)"', page)
    assert {"sellers.csv", "sellers.parquet", "flagged.csv", "runs.csv"} <= set(links)
    assert re.search(r"sellers\.csv\s+\(\d+(\.\d)? (B|KB)\)", text)  # a size a reader reads
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings == ["Collection runs", "Flagged sellers", "Platforms", "Data files"]
    assert 'class="run failed"' in page  # a failed run stands out in the table


def test_no_chart_in_the_page_has_equal_bars(rendered: dict[str, Any]) -> None:
    bars = [bar_lengths(svg) for svg in svgs(rendered["page"])]
    assert [b for b in bars if b], "the page has no bar chart"
    for lengths in bars:
        assert not lengths or (len(lengths) >= 2 and len(set(lengths)) > 1), lengths


def test_an_existing_report_is_kept_unless_overwrite(rendered: dict[str, Any]) -> None:
    from sellerbench.cli import main

    page = rendered["second"] / "report.html"
    before = page.read_bytes()
    args = ["report", "--cache", str(rendered["cache"]), "--output", str(rendered["second"]),
            "--quiet"]
    assert main(args) == 1
    assert page.read_bytes() == before
    with pytest.raises(ExportError, match="already holds a report"):
        reports.run_report(rendered["second"], cache=rendered["cache"])


def test_provenance_shows_the_cache_and_a_replaced_report_is_compared_with(
    rendered: dict[str, Any], tmp_path: Path,
) -> None:
    """--overwrite of the newest report compares with the report it replaces."""
    import shutil

    folder = tmp_path / "again"
    shutil.copytree(rendered["second"], folder)
    result = reports.run_report(folder, cache=rendered["cache"], provenance=True,
                                overwrite=True, flagged=True)
    page = result.html.read_text(encoding="utf-8")
    assert str(rendered["cache"]) in visible_text(page)
    assert summary(page)[0].endswith(": no seller changed.")


def test_the_cli_leaves_no_process_behind(rendered: dict[str, Any], tmp_path: Path) -> None:
    """The command in a process of its own: when it has exited, no process it started
    (they inherit the marker in their environment) is still alive."""
    marker = uuid.uuid4().hex
    env = {**os.environ, "SELLERBENCH_TEST_MARK": marker}
    done = subprocess.run(
        [sys.executable, "-m", "sellerbench", "report", "--cache", str(rendered["cache"]),
         "--output", str(tmp_path / "cli"), "--quiet"],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Parent appears to have exited" not in done.stderr
    left = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.environ().get("SELLERBENCH_TEST_MARK") == marker:
                left.append(process.pid)
        except (psutil.Error, OSError):
            continue
    assert left == []


def test_report_against_an_api_never_writes_the_token(server: Any, tmp_path: Path) -> None:
    token = server.tokens["viewer"]
    before = os.environ.get("SELLERBENCH_TOKEN")
    result = reports.run_report(tmp_path / "out", api_url=server.url, token=token,
                                cache=tmp_path / "cache.duckdb")
    assert result.html.exists() and result.notebook.exists()
    for path in (result.html, result.notebook, result.manifest):
        assert path is not None and token not in path.read_text(encoding="utf-8")
    assert server.url not in result.html.read_text(encoding="utf-8")  # no --provenance
    assert len(pd.read_parquet(tmp_path / "out" / "sellers.parquet")) > 0
    assert os.environ.get("SELLERBENCH_TOKEN") == before  # put back as it was
