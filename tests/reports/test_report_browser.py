"""The report as a reader sees it: in headless Chromium on a screen, printed on A4 and on
a phone; and its PDF. Screenshots are kept in test-artifacts/ (where the browser tests
keep theirs): report-screen.png, report-print-a4.png, report-phone.png."""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sellerbench.cache.store import Store
from sellerbench.reports import report as reports
from tests.browser.lab import ARTIFACTS, CHROMIUM, launch_chromium

from .exportdata import AWKWARD_NAMES, fill
from .test_export_report import add_runs, summary

pytestmark = pytest.mark.browser

A4_WIDTH = 794  # CSS pixels of 210 mm at 96 dpi
PHONE = (390, 844)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> reports.ReportResult:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    folder = tmp_path_factory.mktemp("seen")
    store = Store(folder / "cache.duckdb")
    fill(store, AWKWARD_NAMES + [f"Long seller name number {i} " * 3 for i in range(40)])
    add_runs(store, 12)
    return reports.run_report(folder / "report", cache=store.path, pdf=True,
                              title="Sellers, week 49")


def in_thread(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Playwright's sync API refuses a thread whose asyncio loop is marked running, which
    the in-process kernel client of earlier tests can leave behind: use a fresh thread."""
    seen: dict[str, Any] = {}
    failure: list[BaseException] = []

    def run() -> None:
        try:
            seen.update(work())
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=180)
    if failure:
        raise failure[0]
    assert seen, "the browser did not finish within 180 s"
    return seen


LAYOUT = """() => ({
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  body: document.body.getBoundingClientRect().width,
  images: Array.from(document.images).map(i => ({done: i.complete && i.naturalWidth > 0,
      left: i.getBoundingClientRect().left, right: i.getBoundingClientRect().right})),
  tables: Array.from(document.querySelectorAll('table')).map(
      t => t.getBoundingClientRect().right),
})"""


def look(html: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    fetched: list[str] = []
    out: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for name, width, height, media in (("screen", 1100, 900, "screen"),
                                               ("print-a4", A4_WIDTH, 1123, "print"),
                                               ("phone", *PHONE, "screen")):
                page = browser.new_context(viewport={"width": width, "height": height},
                                           is_mobile=name == "phone").new_page()
                page.route("**/*", lambda route: route.continue_()
                           if route.request.url.startswith(("file:", "data:"))
                           else (fetched.append(route.request.url), route.abort()))
                page.emulate_media(media=media, color_scheme="light")
                page.goto(html.as_uri(), wait_until="load")
                out[name] = page.evaluate(LAYOUT)
                out[name]["width"] = width
                page.screenshot(path=str(ARTIFACTS / f"report-{name}.png"), full_page=True)
                page.context.close()
        finally:
            browser.close()
    out["fetched"] = fetched
    return out


def test_the_page_fits_a_screen_an_a4_page_and_a_phone(made: reports.ReportResult) -> None:
    seen = in_thread(lambda: look(made.html))
    assert seen["fetched"] == []
    for name in ("screen", "print-a4", "phone"):
        layout = seen[name]
        assert layout["overflow"] <= 0, f"{name}: the page scrolls sideways"
        assert layout["images"] and all(i["done"] for i in layout["images"]), name
        for image in layout["images"]:  # no chart cut at the page's edge
            assert image["left"] >= 0 and image["right"] <= layout["width"], (name, image)
        assert all(right <= layout["width"] for right in layout["tables"]), name
        assert (ARTIFACTS / f"report-{name}.png").stat().st_size > 10_000


def test_the_pdf_is_a4_with_the_same_content(made: reports.ReportResult) -> None:
    from pypdf import PdfReader

    assert made.pdf is not None and made.pdf.read_bytes().startswith(b"%PDF")
    pdf = PdfReader(made.pdf)
    for page in pdf.pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert abs(width - 595.3) < 2 and abs(height - 841.9) < 2  # A4 in points
    text = " ".join(page.extract_text() for page in pdf.pages)
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text))  # ligatures: fi, fl
    page_html = made.html.read_text(encoding="utf-8")
    for sentence in summary(page_html):
        assert re.sub(r"\s+", " ", sentence)[:60] in text
    for heading in ("Sellers, week 49", "Collection runs", "Flagged sellers", "Platforms",
                    "Data files"):
        assert heading in text
