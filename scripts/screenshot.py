"""The README's picture of the grid: ``.venv/bin/python scripts/screenshot.py``.

Starts a throw-away JupyterLab (tests/browser/lab.py), opens a notebook that shows
``wb.grid()`` over ``sb.demo()``, flags a few sellers so their colour shows, and saves
the grid's output area as docs/img/grid.png (palette PNG, kept small). Needs the ``dev``
extra and Debian's chromium.
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.lab import LabPage, launch_chromium, new_page, start_lab, write_notebook  # noqa: E402

TARGET = ROOT / "docs" / "img" / "grid.png"
CELLS = [
    "import sellerbench as sb\n"
    "wb = sb.demo(n=2_000)\n"
    "wb.auto_push = False\n"
    "report = wb.sync(progress=False)\n"
    "busy = wb.sellers(where='times_seen >= 5')['id'].tolist()[:40]\n"
    "wb.flag(busy)",
    "grid = wb.grid(height='380px')\ngrid",
]


def main() -> int:
    from PIL import Image, ImageChops
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="sb-shot-") as tmp:
        lab = start_lab(Path(tmp))
        try:
            write_notebook(lab.root / "grid.ipynb", CELLS)
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                page = LabPage(new_page(browser, width=1300, height=900), lab)
                page.open("grid.ipynb")
                page.command("application:toggle-left-area")  # the file browser: closed
                page.run_all()
                grid = page.page.locator(".sellerbench-datagrid .lm-DataGrid").first
                grid.wait_for(state="visible", timeout=120_000)
                page.wait_kernel("grid.profiles.wait(30)", True, timeout=60)
                page.page.wait_for_timeout(1500)  # the profiles' bars and the rows painted
                area = page.page.locator(".jp-OutputArea-output").last
                shot = area.screenshot()
                browser.close()
        finally:
            lab.stop()
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    blank = Image.new("RGB", image.size, (255, 255, 255))
    box = ImageChops.difference(image, blank).getbbox()  # drop the white below the grid
    if box:
        image = image.crop((0, 0, image.width, min(image.height, box[3] + 8)))
    image = image.quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    image.save(TARGET, optimize=True)
    print(f"{TARGET.relative_to(ROOT)}: {image.width}x{image.height}, "
          f"{TARGET.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
