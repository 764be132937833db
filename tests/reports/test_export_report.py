"""The report: its helpers, ``sellerbench report`` headless, and the HTML in Chromium."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sellerbench.cache.store import Store
from sellerbench.errors import ExportError
from sellerbench.reports import report as reports
from sellerbench.workbench import Workbench

from .exportdata import AWKWARD_NAMES, fill

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
SVG_URI = "data:image/svg+xml;base64,"


def add_runs(store: Store) -> None:
    with store.connect() as con:
        con.execute(
            """
            INSERT INTO collection_runs (id, name, status, category_ids, started_at,
                created_at, updated_at, sellers_found, sellers_new)
            SELECT 'run-' || i, 'Sweep ' || i, 'completed', ['c1'],
                TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (i * 60) DAY,
                TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (i * 60) DAY,
                TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (i * 60) DAY,
                100 + i * 10, 10 + i
            FROM range(6) t(i)
            """
        )


@pytest.fixture
def report_wb(tmp_path: Path) -> Iterator[Workbench]:
    store = Store(tmp_path / "cache.duckdb")
    fill(store, AWKWARD_NAMES)
    add_runs(store)
    wb = Workbench(store, None)
    yield wb
    wb.close()


# -- helpers, without a kernel ------------------------------------------------------------


def test_params_are_checked(tmp_path: Path) -> None:
    params = reports.ReportParams.of(True, "2024-05-01", tmp_path / "new")
    assert params.since == date(2024, 5, 1) and params.output_dir.is_dir()
    assert params.since_sql == "updated_at >= TIMESTAMPTZ '2024-05-01 00:00:00+00'"
    assert reports.ReportParams.of(False, None, None).output_dir == \
        reports.default_output_dir().resolve()
    with pytest.raises(ExportError, match="since must be a date"):
        reports.ReportParams.of(False, "May 1st'; DROP", tmp_path)
    with pytest.raises(ExportError, match="flagged_only"):
        reports.ReportParams.of("yes", None, tmp_path)


def test_collect_applies_flagged_only_and_since(report_wb: Workbench, tmp_path: Path) -> None:
    everything = reports.collect(report_wb, reports.ReportParams.of(False, None, tmp_path))
    assert len(everything.sellers) == len(AWKWARD_NAMES)
    assert len(everything.runs) == 6
    assert everything.platforms["sellers"].sum() == len(AWKWARD_NAMES)
    assert list(everything.top["times_seen"]) == sorted(everything.top["times_seen"],
                                                        reverse=True)
    narrow = reports.collect(report_wb, reports.ReportParams.of(True, "2024-06-15", tmp_path))
    assert narrow.sellers["flagged"].all()
    assert len(narrow.sellers) == sum(1 for i in range(len(AWKWARD_NAMES)) if i % 2 == 0)
    assert len(narrow.runs) == 3  # runs on days 180, 240 and 300 of 2024
    assert narrow.summary.loc[0, "since"] == "2024-06-15"


def test_plots_are_svgs_even_without_data(report_wb: Workbench, tmp_path: Path) -> None:
    data = reports.collect(report_wb, reports.ReportParams.of(False, None, tmp_path))
    nothing = reports.collect(report_wb, reports.ReportParams.of(False, "2099-01-01", tmp_path))
    for source in (data, nothing):
        plots = [reports.plot_sellers_per_run(source.runs),
                 reports.plot_flagged_share(source.platforms),
                 reports.plot_top_sellers(source.top, source.tied)]
        for plot in plots:
            svg, metadata = plot._repr_svg_()
            assert svg.startswith("<svg") and metadata["alt"] == plot.title
            assert "<!DOCTYPE" not in svg and "<metadata" not in svg  # they name URLs
            assert not re.search(r"href=\"https?:", svg)
            assert plot.data_uri().startswith(SVG_URI)


def test_names_in_any_script_stay_text_for_the_reader_fonts(tmp_path: Path) -> None:
    """A PNG drawn where no CJK font is installed shows empty boxes; the SVG keeps each
    name as text, which the reader's browser draws with its own fonts."""
    names = ["山田商店", "김민준 상회", "متجر الأمل", "Ωmega Shop"]
    top = pd.DataFrame({"id": [f"id-{i}" for i in range(4)], "display_name": names,
                        "platform": "ebay", "times_seen": [9, 8, 7, 6],
                        "flagged": [True, False, False, False]})
    svg = reports.plot_top_sellers(top).svg
    for name in names:
        assert f">{name}</text>" in svg
    assert "sans-serif" in svg  # the browser's fallback chain, not matplotlib's glyphs


def test_top_sellers_tell_ties_apart(tmp_path: Path) -> None:
    store = Store(tmp_path / "ties.duckdb")
    names = [f"Shop {chr(ord('a') + i)}" for i in range(20)] + ["SHOP A"[:4] + " Z", "Big"]
    fill(store, names)
    with store.connect() as con:
        con.execute("UPDATE sellers SET times_seen = 4")
        con.execute("UPDATE sellers SET times_seen = 9 WHERE display_name = 'Big'")
    wb = Workbench(store, None)
    try:
        data = reports.collect(wb, reports.ReportParams.of(False, None, tmp_path / "o"))
    finally:
        wb.close()
    assert list(data.top["display_name"])[:3] == ["Big", "Shop a", "Shop b"]  # ties by name
    assert data.tied == len(names) - reports.TOP_SELLERS
    chart = reports.plot_top_sellers(data.top, data.tied).svg
    assert f"{data.tied} more seller(s) seen 4 times are not shown" in chart
    assert len(re.findall(r">\s*4</text>", chart)) >= 14  # each bar carries its count
    same = pd.DataFrame({"id": ["aaaaaa-1", "bbbbbb-2"], "display_name": ["x" * 60, "x" * 60 + "y"],
                         "platform": ["ebay", "etsy"], "times_seen": [3, 3],
                         "flagged": [False, False]})
    labels = reports._distinct_labels(same, 40)
    assert len(set(labels)) == 2 and "ebay aaaaaa" in labels[0]


def test_write_data_uses_the_export_filters(report_wb: Workbench, tmp_path: Path) -> None:
    params = reports.ReportParams.of(True, None, tmp_path / "files")
    data = reports.collect(report_wb, params)
    files = reports.write_data(report_wb, params, data)
    assert [f.name for f in files] == ["sellers.csv", "sellers.parquet", "runs.csv"]
    csv = pd.read_csv(files[0], dtype=str, keep_default_na=False)
    assert len(csv) == len(data.sellers) and set(csv["flagged"]) == {"true"}
    assert len(pd.read_parquet(files[1])) == len(data.sellers)
    reports.write_data(report_wb, params, data)  # a second run replaces the files


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
    import sys

    assert reports._runs_this_python(["python", "-m", "ipykernel_launcher"])
    assert reports._runs_this_python([sys.executable])
    assert not reports._runs_this_python(["/nowhere/python9"])
    assert reports.kernel_name() in (reports.KERNEL_NAME, reports.OWN_KERNEL_NAME)


# -- sellerbench report, headless ------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``sellerbench report`` over an offline cache: flagged only, since a date."""
    from sellerbench.cli import main

    folder = tmp_path_factory.mktemp("report")
    store = Store(folder / "cache.duckdb")
    fill(store, AWKWARD_NAMES)
    add_runs(store)
    output = folder / "out"
    code = main(["report", "--cache", str(store.path), "--flagged-only",
                 "--since", "2024-03-01", "--output", str(output), "--quiet"])
    return {"code": code, "output": output, "html": output / "report.html",
            "cache": store.path}


def test_report_command_writes_html_and_data(rendered: dict[str, Any]) -> None:
    assert rendered["code"] == 0
    assert not list(reports.NOTEBOOK.parent.glob("kernel*"))  # no kernel sockets left behind
    assert reports.NOTEBOOK.parent.name == "reports"  # package data, not notebooks/
    names = sorted(p.name for p in rendered["output"].iterdir())
    assert names == ["report.html", "report.ipynb", "runs.csv", "sellers.csv",
                     "sellers.parquet"]
    sellers = pd.read_csv(rendered["output"] / "sellers.csv", dtype=str,
                          keep_default_na=False)
    assert set(sellers["flagged"]) == {"true"}
    assert "'+441234" not in set(sellers["display_name"])  # odd rows are unflagged
    assert "'=HYPERLINK(\"http://x\",\"click\")" in set(sellers["display_name"])
    runs = pd.read_csv(rendered["output"] / "runs.csv")
    assert len(runs) == 5  # the run of 1 January is before --since


def test_report_html_is_offline_and_has_no_code(rendered: dict[str, Any]) -> None:
    html = rendered["html"].read_text(encoding="utf-8")
    assert reports.external_references(html) == []
    tags = re.findall(r"<(?:script|link)\b[^>]*>", html, flags=re.IGNORECASE)
    assert not [t for t in tags if re.search(r"(src|href)\s*=", t, re.IGNORECASE)]
    images = re.findall(r'<img alt="([^"]+)" src="data:image/svg\+xml;base64,', html)
    assert images == ["Sellers found per run", "Flagged share by platform",
                      "Top 15 sellers by times seen"]
    assert "from sellerbench.reports import report as reports" not in html  # no code cells
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?https?:", html)  # no web resource
    text = re.sub(r"<[^>]+>", " ", html)
    for how_to in ("papermill", "sellerbench report", "Run it", "Parameters"):
        assert how_to not in text  # the page is the report, not the notebook's manual
    made = re.search(r"Made on (\d{2} \w+ \d{4}, \d{2}:\d{2} UTC) from (.*?); cache", text)
    assert made and "the cache alone" in made.group(2)
    assert str(rendered["cache"]) in text
    links = re.findall(r'<a href="([^"]+)"', html)
    assert {"sellers.csv", "sellers.parquet", "runs.csv"} <= set(links)
    assert 'class="highlight hl-ipython3"' not in html
    assert "Sellers found per run" in html and "Flagged share by platform" in html


def test_an_existing_report_is_kept_unless_overwrite(rendered: dict[str, Any]) -> None:
    from sellerbench.cli import main

    before = rendered["html"].read_bytes()
    args = ["report", "--cache", str(rendered["cache"]), "--output", str(rendered["output"]),
            "--quiet"]
    assert main(args) == 1
    assert rendered["html"].read_bytes() == before
    with pytest.raises(ExportError, match="already holds a report"):
        reports.run_report(rendered["output"], cache=rendered["cache"])


def _look_at(html: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    fetched: list[str] = []
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})

        def only_the_file(route: Any) -> None:
            url = route.request.url
            if url.startswith(("file:", "data:")):
                route.continue_()
            else:
                fetched.append(url)
                route.abort()

        page.route("**/*", only_the_file)
        page.goto(html.as_uri(), wait_until="load")
        images = page.evaluate(
            "Array.from(document.images).map(i => ({w: i.naturalWidth, h: i.naturalHeight,"
            " done: i.complete, shown: i.getBoundingClientRect().width}))"
        )
        page.screenshot(path=str(ARTIFACTS / "export-report.png"), full_page=True)
        browser.close()
    finally:
        playwright.stop()
    return {"fetched": fetched, "images": images}


@pytest.mark.browser
def test_report_renders_in_headless_chromium(rendered: dict[str, Any]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    # Playwright's sync API refuses a thread whose asyncio loop is marked running, which
    # the in-process kernel client of earlier tests can leave behind: use a fresh thread.
    seen: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: seen.update(_look_at(rendered["html"])),
                              daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert "images" in seen, "the browser did not finish within 120 s"
    fetched, images = seen["fetched"], seen["images"]
    assert fetched == []
    assert len(images) == 3
    assert all(i["done"] and i["w"] > 0 and i["h"] > 0 and i["shown"] > 0 for i in images)
    assert (ARTIFACTS / "export-report.png").stat().st_size > 10_000



def test_report_against_an_api_never_writes_the_token(server: Any, tmp_path: Path) -> None:
    token = server.tokens["viewer"]
    before = os.environ.get("SELLERBENCH_TOKEN")
    result = reports.run_report(tmp_path / "out", api_url=server.url, token=token,
                                cache=tmp_path / "cache.duckdb")
    assert result.html.exists() and result.notebook.exists()
    for path in (result.html, result.notebook):
        assert token not in path.read_text(encoding="utf-8")
    assert len(pd.read_parquet(tmp_path / "out" / "sellers.parquet")) > 0
    assert os.environ.get("SELLERBENCH_TOKEN") == before  # put back as it was
