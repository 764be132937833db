"""Browser fixtures: JupyterLab in headless Chromium, for tests of what a person sees.

Reusable by any browser test (the grid here; a screenshot of an HTML report elsewhere):

- ``jupyterlab`` (session): ``jupyter lab`` on 127.0.0.1, a free port, a random token,
  temporary root/config/runtime/settings directories (nothing from the machine's own
  Jupyter setup leaks in); ``.url``, ``.token``, ``.root``, ``.lab_url(path)``.
  Stopped by PID at teardown (kernels, server, then any child still alive).
- ``chromium`` (per test): Debian's ``/usr/bin/chromium`` (never a downloaded browser)
  launched headless by Playwright. Skips when Chromium is not installed. Per test, not
  per session, on purpose: while a Playwright sync instance lives, it marks the main
  thread's asyncio loop as running between its calls, which breaks every later test
  that uses asyncio (nbclient, papermill, another Playwright). Launching costs ~1 s.
- ``chromium_page``: a fresh 1400x900 page; its JavaScript errors collect in
  ``page.js_errors``.
- ``lab_page``: ``chromium_page`` wrapped in ``lab.LabPage`` (open a notebook, run all
  cells, run code in its kernel and get the printed text back).
- ``artifacts``: ``test-artifacts/`` at the repo root (git-ignored) for screenshots.

The machinery lives in ``lab.py`` (no pytest there) so benchmarks can use it too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .lab import ARTIFACTS, CHROMIUM, JupyterLab, LabPage, launch_chromium, new_page, start_lab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    lab = start_lab(tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def chromium_page(chromium: Any) -> Iterator[Any]:
    page = new_page(chromium)
    try:
        yield page
    finally:
        page.context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def lab_page(chromium_page: Any, jupyterlab: JupyterLab) -> LabPage:
    return LabPage(chromium_page, jupyterlab)
