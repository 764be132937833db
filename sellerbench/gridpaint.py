"""GridPainter: the sellers grid painted in one copy per column instead of one per cell.

Why: Lumino's DataGrid (JupyterLab 4's ``@lumino/datagrid``, which ipydatagrid draws
with) paints every cell into an off-screen buffer canvas and then copies *that cell*
onto the visible canvas with ``drawImage(buffer, ...)``. Where the canvas is drawn in
software (headless Chromium, a browser without GPU raster) each such copy snapshots
the whole buffer and the next cell written into it copies the buffer again
(copy-on-write): the cost of a frame is (cells on screen) x (buffer area). Measured
in headless Debian Chromium at 1M sellers: the grid's buffer is 1024x512, a jump
draws ~136 cells per frame, each copy ~2 ms, so ~270 ms per frame and two frames per
jump (the "..." placeholders at once, the rows when they arrive): 0.5-0.8 s to show
the middle rows, while the kernel answered in 4 ms and the reply crossed in 25 ms.

What: a hidden anywidget placed next to the grid. When the browser shows it, it finds
the DataGrid view(s) of the grid (through the widget manager) and wraps two methods
of *that grid instance only* (other grids on the page keep Lumino's own painting):
while ``_drawCells`` runs, the per-cell copies from the buffer are collected and the
contiguous cells of one column are copied as one strip when the column is done, which
is what Lumino did before it learned merged cells. A cell is drawn only inside its own
row band (taller text is clipped to it), so the strip holds the same pixels the
per-cell copies would have; anything else (a copy from another source, the end of the
pass, an error) flushes first, so the order of canvas operations is unchanged. A frame
then costs ~7 copies instead of ~136.

If the widget manager, ipydatagrid or Lumino change shape, nothing is wrapped and the
grid paints as before; ``GridPainter.batched`` counts the grid views it wrapped
(tests read it).
"""

from __future__ import annotations

from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

__all__ = ["GridPainter"]

_ESM = r"""
const MARK = Symbol.for('sellerbench.batchedBlits');

// Wrap one Lumino DataGrid instance; returns true when it was wrapped just now.
function batchBlits(grid) {
  if (!grid || grid[MARK] || typeof grid._drawCells !== 'function'
      || typeof grid._blitContent !== 'function' || grid._blitContent.length !== 7
      || !(grid._buffer instanceof HTMLCanvasElement)) {
    return false;
  }
  const drawCells = grid._drawCells;
  const blitContent = grid._blitContent;
  let batching = false;
  let strip = null;  // {x, y, w, h}: contiguous cells of one column, not yet copied
  const flush = () => {
    if (strip === null) return;
    const s = strip;
    strip = null;
    blitContent.call(grid, grid._buffer, s.x, s.y, s.w, s.h, s.x, s.y);
  };
  grid._blitContent = function (source, x, y, w, h, tx, ty) {
    if (batching && source === this._buffer && x === tx && y === ty) {
      if (strip !== null && strip.x === x && strip.w === w && strip.y + strip.h === y) {
        strip.h += h;
        return;
      }
      flush();
      strip = {x, y, w, h};
      return;
    }
    flush();
    return blitContent.call(this, source, x, y, w, h, tx, ty);
  };
  grid._drawCells = function (region) {
    batching = true;
    try {
      return drawCells.call(this, region);
    } finally {
      batching = false;
      flush();
    }
  };
  grid[MARK] = {drawCells, blitContent};  // the originals (a test repaints with them)
  return true;
}

async function wrapViews(model) {
  const id = String(model.get('grid_id') || '').replace(/^IPY_MODEL_/, '');
  const manager = model.widget_manager;
  if (!id || !manager || typeof manager.get_model !== 'function') return 0;
  let target;
  try {
    target = await manager.get_model(id);
  } catch (error) {
    return 0;
  }
  let wrapped = 0;
  for (const pending of Object.values((target && target.views) || {})) {
    try {
      const view = await pending;
      if (batchBlits(view && view.grid && view.grid.grid)) wrapped += 1;
    } catch (error) {
      // a view that failed to render has no grid to wrap
    }
  }
  return wrapped;
}

export default {
  render({ model }) {
    // The grid's view is created just before this one (it comes first in the same box);
    // the later looks cover a grid view that finished rendering after this one.
    let alive = true;
    const timers = [0, 300, 1500].map((delay) => setTimeout(async () => {
      if (!alive) return;
      const wrapped = await wrapViews(model);
      if (wrapped && alive) {
        model.set('batched', model.get('batched') + wrapped);
        model.save_changes();
      }
    }, delay));
    return () => {
      alive = false;
      timers.forEach(clearTimeout);
    };
  },
};
"""


class GridPainter(anywidget.AnyWidget):
    """Hidden helper that makes the browser paint one grid column per copy (see above)."""

    _esm = _ESM
    grid_id = traitlets.Unicode("").tag(sync=True)
    batched = traitlets.Int(0).tag(sync=True)  # grid views wrapped in the browser

    def __init__(self, grid: Any, **kwargs: Any) -> None:
        kwargs.setdefault("layout", widgets.Layout(display="none"))
        super().__init__(grid_id=grid.model_id, **kwargs)
