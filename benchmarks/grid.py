"""The sellers grid at 10,000 and 1,000,000 cached sellers, against ipydatagrid's own grids.

    .venv/bin/python benchmarks/grid.py                 # kernel side + browser, 10k and 1M
    .venv/bin/python benchmarks/grid.py --no-browser    # kernel side only
    .venv/bin/python benchmarks/grid.py --quick         # kernel side, 2,000 rows, seconds
    .venv/bin/python benchmarks/grid.py --sizes 5000000 --ours-only   # the grid at 5M

Caches are filled directly with DuckDB (UUID ids, 20 runs, every 7th seller flagged,
names in id order so that row 0 under the default sort is a flagged one).

Kernel side (this process, the messages handed to the widgets directly):
  build     ``wb.grid()`` (ours: SQL into an Arrow snapshot) or the frame + widget
            (peers: ``wb.sql(...)`` into pandas, then ``StreamingDataGrid(df)`` /
            ``DataGrid(df)`` including the state it ships)
  page@0, page@mid   answering one 40-row ``data-request`` (median of 7)
  flag 10k  ours: select 10,000 rows, Flag, answer the visible rows again
  rows read s  ours: until the whole snapshot is in (from 2,000,000 sellers it is read
            on its own thread while the first rows are answered early: "build s")
  filter s, profiles s   ours: from a filter change (flagged filter, nothing selected)
            until its first rows are answered, and until the column profiles of the new
            rows are computed (on their worker thread); the peer: the same profiles as
            plain SQL over the cache under the same filter (``grid.where_sql``)

Browser (JupyterLab + headless Chromium, a fresh kernel per grid):
  first rows   from "run the cell" to row 0 painted in the flagged colour (pixels of the
               grid's canvas, read in the page every animation frame)
  middle       from the scrollbar drag to the middle until its rows are painted (their
               data-reply arrived, then two animation frames); "middle rows in": arrived
  flag 10k     ours: 10,000 visible rows selected, from the Flag click to the visible rows
               all painted flagged
  kernel MB    RSS of the kernel before the grid, once its first rows show ("first"),
               at the end ("open": after the jump and the 10k flag), and its peak
               (sampled every 10 ms)
  painter      ours: grid views whose painting the GridPainter batched (1 = one copy
               per column; 0 = Lumino's copy per cell). The peers paint as ipydatagrid
               does: the same batching would speed them up too (it is in the browser).

Where a jump's time went before the painter (1M, load ~2): ~270 ms drawing the "..."
frame at once, the data-request ~40 ms later (the debounce), the reply 20-25 ms after
that (the kernel answers in ~4 ms), then ~300 ms drawing the rows: Lumino copies each
cell from its buffer canvas (1024x512) to the screen, and a software canvas copies the
whole buffer for each (~2 ms x ~136 cells a frame). With one copy per column a frame
takes ~15-40 ms.

Plain ``DataGrid(df)`` ships the whole frame; at 1,000,000 rows it is capped at 100,000
(the cap is printed). The acceptance bars are printed with the figures; exit code 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sellerbench.cache.store import Store
from sellerbench.grid.widget import FLAGGED_COLOUR
from sellerbench.workbench import Workbench

# pandas' tz-aware timestamps going through bqplot's serializer, once per page.
warnings.filterwarnings("ignore", message="no explicit representation of timezones")
PLAIN_CAP = 100_000
PAGE = 40
FILL = """
INSERT INTO sellers
SELECT uuid()::VARCHAR, printf('Seller %07d', i), printf('seller %07d', i),
       (['ebay', 'ebay', 'amazon', 'etsy'])[1 + i % 4], 'p' || i::VARCHAR,
       (i * 31 % 40)::INTEGER, i % 7 = 0,
       printf('run-%02d', i % 20), printf('run-%02d', (i + 3) % 20),
       TIMESTAMPTZ '2023-01-01 00:00:00+00' + to_seconds(i),
       TIMESTAMPTZ '2024-06-01 00:00:00+00' + to_seconds(i * 7 % 86400), NULL, i
FROM range(?) t(i)
"""
RUNS = """
INSERT INTO collection_runs (id, name, status, category_ids, started_at, created_at, updated_at)
SELECT printf('run-%02d', r), printf('Sweep %02d', r), 'completed', ['c1'],
       TIMESTAMPTZ '2023-01-01 00:00:00+00' + to_days(r), now(), now()
FROM range(20) t(r)
"""
PEER_SQL = ("SELECT id, display_name, platform, times_seen, flagged, first_seen_run_id, "
            "last_seen_run_id, updated_at FROM visible_sellers ORDER BY display_name LIMIT {n}")


def fill(path: Path, n: int) -> Store:
    store = Store(path)
    with store.transaction() as con:
        con.execute(FILL, [n])
        con.execute(RUNS)
    return store


def median_ms(action: Callable[[], Any], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


# -- kernel side ---------------------------------------------------------------------------


def kernel_side(store: Store, n: int, peers: bool = True) -> dict[str, dict[str, Any]]:
    import pandas as pd
    from ipydatagrid import DataGrid, StreamingDataGrid

    wb = Workbench(store, None, auto_push=False)
    out: dict[str, dict[str, Any]] = {}
    mid = n // 2

    build, grid = timed(wb.grid)
    grid.datagrid.send = lambda *a, **k: None
    with grid._lock:  # on a large cache the rows are still being read: wait for them
        read, _ = timed(grid.viewport._snapshot)
    ours = {"build s": build, "rows read s": build + read,
            "page@0 ms": median_ms(lambda: grid.datagrid.answer(0, PAGE - 1)),
            "page@mid ms": median_ms(lambda: grid.datagrid.answer(mid, mid + PAGE - 1))}
    grid.select_rows(mid, min(mid + 9_999, n - 1))
    ours["flag 10k s"], _ = timed(lambda: (grid.flag_selected(),
                                           grid.datagrid.answer(mid, mid + PAGE - 1)))
    wb.undo()
    ours["re-sort s"], _ = timed(lambda: (grid.sort_by("Updated", True),
                                          grid.datagrid.answer(0, PAGE - 1)))
    # A filter change (nothing selected: a selection would wait for the whole read to
    # follow its sellers): the rows are answered first, the profiles follow on their
    # worker; both counted from the change.
    grid.clear_selection()
    grid.profiles.wait(120)
    start = time.perf_counter()
    grid.set_flagged_filter("not flagged")
    grid.datagrid.answer(0, PAGE - 1)
    ours["filter s"] = time.perf_counter() - start
    grid.profiles.wait(120)
    ours["profiles s"] = time.perf_counter() - start
    where = grid.where_sql
    grid.close()
    out["ours"] = ours
    # The peer: the same profiles as plain SQL over the cache under the same filter.
    out["profiles as SQL on the cache"] = {"profiles s": timed(
        lambda: sql_profiles(wb, where))[0]}
    if not peers:
        wb.close()
        return out

    def stream_peer() -> Any:
        frame = wb.sql(PEER_SQL.format(n=n)).set_index("id")
        return StreamingDataGrid(frame)

    build, peer = timed(stream_peer)
    peer.send = lambda *a, **k: None

    def ask(first: int) -> None:
        peer._handle_comm_msg(None, {"type": "data-request", "r1": first,
                                     "r2": first + PAGE - 1, "c1": 0, "c2": 6}, [])

    out["StreamingDataGrid(df)"] = {"build s": build, "page@0 ms": median_ms(lambda: ask(0)),
                                    "page@mid ms": median_ms(lambda: ask(mid))}
    peer.close()

    rows = min(n, PLAIN_CAP)

    def plain_peer() -> tuple[Any, int]:
        frame = wb.sql(PEER_SQL.format(n=rows)).set_index("id")
        widget = DataGrid(frame)
        state = widget.get_state()
        shipped = len(json.dumps(state, default=lambda b: len(b))) + sum(
            v["value"].nbytes for v in state["_data"]["data"].values()
            if isinstance(v, dict) and isinstance(v.get("value"), memoryview))
        widget.close()
        return widget, shipped

    build, (_, shipped) = timed(plain_peer)
    label = "DataGrid(df)" + (f" [{rows:,} rows: capped]" if rows < n else "")
    out[label] = {"build s": build, "shipped MB": shipped / 1e6}  # pages: in the browser
    wb.close()
    del pd
    return out


def sql_profiles(wb: Workbench, where: str) -> None:
    """What the grid's profiles hold, computed by plain SQL on the cache file."""
    source = f"(SELECT * FROM visible_sellers WHERE {where})"
    wb.sql(f"SELECT platform, count(*) n FROM {source} GROUP BY 1 ORDER BY n DESC LIMIT 5")
    wb.sql(f"SELECT times_seen // 4 b, count(*) FROM {source} GROUP BY 1")
    wb.sql(f"SELECT epoch_us(updated_at) // 1000000000 b, count(*) FROM {source} GROUP BY 1")
    wb.sql(f"SELECT count(*) FILTER (WHERE flagged), approx_count_distinct(display_name) "
           f"FROM {source}")
    for column in ("first_seen_run_id", "last_seen_run_id"):
        wb.sql(f"SELECT {column}, count(*) n FROM {source} GROUP BY 1 ORDER BY n DESC LIMIT 5")


# -- browser ---------------------------------------------------------------------------------

# Installed before JupyterLab loads: timestamps (page clock) of data-replies and pointers.
INIT_SCRIPT = """
(() => {
  window.__replies = [];
  window.__pointer = [];
  const decoder = new TextDecoder();
  const Original = window.WebSocket;
  window.WebSocket = class extends Original {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        const t = performance.now();
        let text = event.data;
        if (typeof text !== 'string') {
          try { text = decoder.decode(event.data); } catch (e) { return; }
        }
        if (!text.includes('data-reply')) return;
        const match = text.match(/"r1":\\s*(\\d+)/);
        const entry = {t, r1: match ? Number(match[1]) : -1, painted: null};
        window.__replies.push(entry);
        requestAnimationFrame(() => requestAnimationFrame(() => {
          entry.painted = performance.now();
        }));
      });
    }
  };
  for (const type of ['pointerdown', 'pointermove', 'pointerup']) {
    document.addEventListener(type, (e) => {
      window.__pointer.push({t: performance.now(), type, y: e.clientY});
    }, true);
  }
})();
"""

# Run the active cell and wait (every animation frame) until row 0 of the grid in it is
# painted in the flagged colour. Returns milliseconds, or -1 on timeout.
FIRST_ROWS_JS = """
async ({rgb, timeoutMs}) => {
  const app = window.jupyterapp;
  const notebook = app.shell.currentWidget.content;
  const cell = notebook.activeCell;
  const t0 = performance.now();
  app.commands.execute('notebook:run-cell');
  return await new Promise((resolve) => {
    const check = () => {
      const now = performance.now();
      if (now - t0 > timeoutMs) return resolve(-1);
      const canvas = cell.node.querySelector('.lm-DataGrid canvas');
      if (canvas && canvas.width > 100) {
        const row = canvas.getContext('2d').getImageData(0, 30, Math.min(canvas.width, 700), 1);
        for (let i = 0; i < row.data.length; i += 4) {
          if (row.data[i] === rgb[0] && row.data[i + 1] === rgb[1] && row.data[i + 2] === rgb[2])
            return resolve(now - t0);
        }
      }
      requestAnimationFrame(check);
    };
    check();
  });
}
"""

# Rows 0..count-1 of the visible body all show the flagged colour somewhere.
ALL_FLAGGED_JS = """
({rgb, count}) => {
  const cell = window.jupyterapp.shell.currentWidget.content.activeCell;
  const canvas = cell.node.querySelector('.lm-DataGrid canvas');
  const ctx = canvas.getContext('2d');
  for (let r = 0; r < count; r++) {
    const row = ctx.getImageData(0, 20 + r * 20 + 10, Math.min(canvas.width, 700), 1).data;
    let found = false;
    for (let i = 0; i < row.length; i += 4) {
      if (row[i] === rgb[0] && row[i + 1] === rgb[1] && row[i + 2] === rgb[2]) {
        found = true; break;
      }
    }
    if (!found) return false;
  }
  return true;
}
"""

SETUP = """
import threading, time, psutil
import sellerbench as sb
from ipydatagrid import DataGrid, StreamingDataGrid, TextRenderer, VegaExpr
_proc = psutil.Process(); _peak = [0]
def _sample():
    while True:
        _peak[0] = max(_peak[0], _proc.memory_info().rss); time.sleep(0.01)
threading.Thread(target=_sample, daemon=True).start()
wb = sb.connect(cache={cache!r}, auto_push=False)
PEER = TextRenderer(background_color=VegaExpr(
    "cell.metadata.data['flagged'] ? '{colour}' : default_value"))
"""
GRIDS = {
    "ours": "grid = wb.grid(height='420px')\ngrid",
    "StreamingDataGrid(df)": (
        "df = wb.sql({sql!r}).set_index('id')\n"
        "grid = StreamingDataGrid(df, default_renderer=PEER, "
        "layout={{'height': '420px'}})\ngrid"),
    "DataGrid(df)": (
        "df = wb.sql({sql!r}).set_index('id')\n"
        "grid = DataGrid(df, default_renderer=PEER, layout={{'height': '420px'}})\ngrid"),
}


def _rgb() -> list[int]:
    return [int(FLAGGED_COLOUR[i:i + 2], 16) for i in (1, 3, 5)]


def browser_run(lab: Any, browser: Any, cache: Path, n: int, kind: str) -> dict[str, Any]:
    from tests.browser.lab import LabPage, new_page, wait_for, write_notebook

    rows = min(n, PLAIN_CAP) if kind == "DataGrid(df)" else n
    name = f"bench-{kind[:4].lower()}-{n}.ipynb"
    cells = [SETUP.format(cache=str(cache), colour=FLAGGED_COLOUR),
             GRIDS[kind].format(sql=PEER_SQL.format(n=rows))]
    write_notebook(lab.root / name, cells)
    page = new_page(browser)
    page.add_init_script(INIT_SCRIPT)
    lab_page = LabPage(page, lab)
    result: dict[str, Any] = {"rows": rows}
    try:
        lab_page.open(name)
        lab_page.run("pass")
        page.evaluate("() => { const nb = window.jupyterapp.shell.currentWidget.content; "
                      "nb.activeCellIndex = 0; }")
        lab_page.command("notebook:run-cell")
        lab_page.wait_kernel("'wb' in globals() and 'PEER' in globals()", True, timeout=120)
        result["kernel MB before"] = lab_page.kernel_json("_proc.memory_info().rss / 1e6")
        page.evaluate("() => { window.jupyterapp.shell.currentWidget.content"
                      ".activeCellIndex = 1; }")
        first = page.evaluate(FIRST_ROWS_JS, {"rgb": _rgb(), "timeoutMs": 300_000})
        result["first rows s"] = first / 1000 if first >= 0 else None
        result["kernel MB first"] = lab_page.kernel_json("_proc.memory_info().rss / 1e6")
        if kind != "DataGrid(df)":
            result["middle s"], result["middle rows in s"] = _jump_to_middle(page, n, wait_for)
        if kind == "ours":
            result["kernel MB peak unflagged"] = lab_page.kernel_json("_peak[0] / 1e6")
            result["flag 10k s"] = _flag_visible(page, lab_page, wait_for)
            result["painter"] = lab_page.kernel_json("grid.painter.batched")
        result["kernel MB open"] = lab_page.kernel_json("_proc.memory_info().rss / 1e6")
        result["kernel MB peak"] = lab_page.kernel_json("_peak[0] / 1e6")
        result["js errors"] = len(page.js_errors)
        lab_page.run("wb.close()")
    finally:
        page.context.close()
        for session in lab.api("GET", "/api/sessions") or []:
            lab.api("DELETE", f"/api/sessions/{session['id']}")
    return result


def _scrollbar(page: Any) -> tuple[Any, Any]:
    cell = "window.jupyterapp.shell.currentWidget.content.activeCell.node"
    thumb = page.evaluate_handle(
        f"() => {cell}.querySelector('.lm-ScrollBar[data-orientation=\"vertical\"] "
        ".lm-ScrollBar-thumb')").as_element()
    track = page.evaluate_handle(
        f"() => {cell}.querySelector('.lm-ScrollBar[data-orientation=\"vertical\"] "
        ".lm-ScrollBar-track')").as_element()
    return thumb.bounding_box(), track.bounding_box()


def _jump_to_middle(page: Any, n: int,
                    wait_for: Callable[..., Any]) -> tuple[float | None, float | None]:
    """Seconds from the drag to the middle until its rows are painted, and until they
    arrived (the rest is the browser drawing them)."""
    thumb, track = _scrollbar(page)
    x, y = thumb["x"] + thumb["width"] / 2, thumb["y"] + thumb["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.evaluate("() => { window.__pointer = []; }")
    page.mouse.move(x, track["y"] + track["height"] / 2, steps=1)
    page.mouse.up()

    def arrived() -> Any:
        return page.evaluate(
            """(least) => {
                const moved = window.__pointer.find(p => p.type === 'pointermove');
                const reply = window.__replies.find(r => r.r1 >= least && r.painted !== null
                                                     && moved && r.t > moved.t);
                return reply ? [reply.painted - moved.t, reply.t - moved.t] : null;
            }""", int(n * 0.3))

    try:
        painted, arrived_ms = wait_for(arrived, 60, "rows for the middle", interval=0.05)
    except TimeoutError:
        return None, None
    return painted / 1000, arrived_ms / 1000


def _flag_visible(page: Any, lab_page: Any, wait_for: Callable[..., Any]) -> float | None:
    shown, count = lab_page.kernel_json("[grid.datagrid._last_range[0], grid.viewport.row_count]")
    first = max(0, min(shown, count - 10_000))  # 10,000 rows that include the visible ones
    lab_page.run(f"grid.select_rows({first}, {first + 9_999})")
    lab_page.wait_kernel("grid.selected_count", min(10_000, count))
    button = page.locator(".sellerbench-flag")
    button.wait_for()
    start = time.perf_counter()
    button.click()
    try:
        wait_for(lambda: page.evaluate(ALL_FLAGGED_JS, {"rgb": _rgb(), "count": 12}), 60,
                 "the visible rows painted flagged", interval=0.02)
    except TimeoutError:
        return None
    return time.perf_counter() - start


def browser_side(caches: dict[int, Path], peers: bool = True
                 ) -> dict[int, dict[str, dict[str, Any]]]:
    from playwright.sync_api import sync_playwright

    from tests.browser.lab import launch_chromium, start_lab

    results: dict[int, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="gridbench-lab-") as base:
        lab = start_lab(Path(base) / "lab")
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                try:
                    for n, cache in caches.items():
                        results[n] = {kind: browser_run(lab, browser, cache, n, kind)
                                      for kind in GRIDS if peers or kind == "ours"}
                finally:
                    browser.close()
        finally:
            lab.stop()
    return results


# -- report ------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "timeout"
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_table(title: str, rows: dict[str, dict[str, Any]]) -> None:
    columns = sorted({k for row in rows.values() for k in row}, key=_column_order)
    print(f"\n{title}")
    print("  " + "grid".ljust(38) + "".join(c.rjust(18) for c in columns))
    for name, row in rows.items():
        print("  " + name.ljust(38) + "".join(_fmt(row.get(c, "-")).rjust(18) for c in columns))


def _column_order(name: str) -> tuple[int, str]:
    order = ["rows", "build s", "rows read s", "first rows s", "page@0 ms", "page@mid ms",
             "middle rows in s",
             "middle s",
             "flag 10k s", "re-sort s", "filter s", "profiles s", "shipped MB",
             "kernel MB before", "kernel MB first",
             "kernel MB open",
             "kernel MB peak unflagged", "kernel MB peak", "painter", "js errors"]
    return (order.index(name) if name in order else 99, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 rows, kernel side only")
    parser.add_argument("--no-browser", action="store_true", help="kernel side only")
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated row counts")
    parser.add_argument("--ours-only", action="store_true",
                        help="no ipydatagrid peers (for 5,000,000: a 5M pandas frame is "
                             "the peers' cost, not ours)")
    args = parser.parse_args(argv)
    sizes = [2_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    browser = not (args.quick or args.no_browser)
    with tempfile.TemporaryDirectory(prefix="gridbench-") as tmp:
        caches: dict[int, Path] = {}
        for n in sizes:
            seconds, _ = timed(lambda n=n: fill(Path(tmp) / f"cache-{n}.duckdb", n))
            caches[n] = Path(tmp) / f"cache-{n}.duckdb"
            print(f"filled {n:,} sellers in {seconds:.1f} s")
            kernel = kernel_side(Store(caches[n]), n, peers=not args.ours_only)
            print_table(f"kernel side, {n:,} cached sellers", kernel)
            ours, sql = kernel["ours"], kernel["profiles as SQL on the cache"]
            print(f"  profiles ratio (plain SQL on the cache / ours): "
                  f"{sql['profiles s'] / ours['profiles s']:.2f}x")
            if n == 1_000_000:
                print(f"  acceptance at 1M: profiles <= 0.5 s after a filter change; "
                      f"ours {ours['profiles s']:.3f} s")
            if not args.ours_only:
                peer = kernel["StreamingDataGrid(df)"]
                print(f"  page@mid ratio (StreamingDataGrid(df) / ours): "
                      f"{peer['page@mid ms'] / ours['page@mid ms']:.2f}x; "
                      f"build ratio: {peer['build s'] / ours['build s']:.2f}x")
        if browser:
            for n, rows in browser_side(caches, peers=not args.ours_only).items():
                print_table(f"browser (JupyterLab, headless Chromium), {n:,} cached sellers",
                            rows)
                ours = rows["ours"]
                if n >= 5_000_000:
                    print("  acceptance at 5M: first rows <= 3 s, kernel <= 800 MB")
                    print(f"  ours: first rows {_fmt(ours.get('first rows s'))} s, "
                          f"middle {_fmt(ours.get('middle s'))} s, "
                          f"flag 10k {_fmt(ours.get('flag 10k s'))} s, "
                          f"kernel {_fmt(ours.get('kernel MB peak'))} MB peak")
                elif n >= 1_000_000:
                    print("  acceptance at 1M: first rows <= 2 s, middle <= 0.3 s, "
                          "flag 10k <= 2 s, kernel < 400 MB")
                    print(f"  ours: first rows {_fmt(ours.get('first rows s'))} s, "
                          f"middle {_fmt(ours.get('middle s'))} s, "
                          f"flag 10k {_fmt(ours.get('flag 10k s'))} s, "
                          f"kernel {_fmt(ours.get('kernel MB first'))} MB with the grid open, "
                          f"{_fmt(ours.get('kernel MB open'))} MB after the flag, "
                          f"{_fmt(ours.get('kernel MB peak'))} MB peak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
