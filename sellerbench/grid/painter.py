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

The analyst's hands: having found the grid's view, the painter also listens on it (the
origin system's grid is used this way) and sends one custom message per gesture, which
``SellersGrid`` (``actions.py``) acts on through the mutation queue:

- right-button drag: the rows passed are banded at once and sent on release as
  ``{event: "paint", rows, first}``; the kernel flags them, or unflags them when ``first``
  is flagged (the browser cannot know the flag of a row it has not drawn). The context
  menu and Lumino's own selection never see the right button.
- hover (600 ms still, never within 1.2 s of a click, drag or wheel):
  ``{event: "hover", row}``; the kernel answers with the row as the grid shows it,
  in a card beside the pointer (not over it, nor over the rows under it).
- keys in the grid: Ctrl+A (``select-all``: every seller under the filter, not only the
  rows drawn), Ctrl+Z (``undo``), Ctrl+C (``copy``: the kernel answers with the text,
  written to the clipboard here), Delete (``delete``: asks first).
- a click in a column header (not on its resize border nor on ipydatagrid's filter
  icon): ``{event: "sort", column, add}`` (``add``: Shift held); Lumino never sees it, so
  it selects nothing. After a drag in the header, the columns' widths as drawn
  (``{event: "widths"}``): ipydatagrid 1.4 does not always send a resize.
- the theme: JupyterLab's CSS variables resolved to colours (``{event: "theme"}``), on
  render and whenever the body's theme attributes change (theme.py). The grid's element
  carries ``data-lm-suppress-shortcuts`` so JupyterLab's notebook shortcuts (Ctrl+A
  selects every cell, Z undoes a cell action) leave these keys to the grid.
"""

from __future__ import annotations

import json
from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

from .theme import GRID_CSS, THEME_VARIABLES

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

// The analyst's hands on one grid view: right-button drag paints the flag, hovering a
// row asks for its details, Ctrl+A / Ctrl+Z / Delete act on the grid. Each sends one
// message to the kernel, which decides (the browser does not know the flags of rows
// it has not drawn) and acts through the mutation queue.
const HANDS = Symbol.for('sellerbench.hands');

function rowAt(grid, event) {
  const hit = grid.hitTest(event.clientX, event.clientY);
  if (!hit || hit.region !== 'body' || hit.row < 0) return null;
  return { row: hit.row, top: event.clientY - hit.y, height: hit.height };
}

// The clipboard: the async API where the page may use it, else a hidden textarea and
// execCommand (a page served over plain http from another host has no async API).
function copyText(text, failed) {
  const fallback = (why) => {
    const area = document.createElement('textarea');
    area.value = text;
    area.style.cssText = 'position:fixed;left:-9999px;top:0;opacity:0';
    document.body.appendChild(area);
    area.select();
    let done = false;
    try { done = document.execCommand('copy'); } catch (error) { done = false; }
    area.remove();
    if (!done) failed(String(why || 'the browser refused to copy'));
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).catch((error) => fallback(error && error.message));
  } else {
    fallback('');
  }
}

// JupyterLab's theme, as resolved colours: sent on render and on every theme change.
const THEME_VARIABLES = __THEME_VARIABLES__;
function themeColours() {
  const probe = document.createElement('span');
  probe.style.display = 'none';
  document.body.appendChild(probe);
  const out = {};
  for (const name of THEME_VARIABLES) {
    probe.style.color = '';
    probe.style.color = `var(${name})`;
    const value = getComputedStyle(probe).color;
    if (getComputedStyle(document.body).getPropertyValue(name).trim()) out[name] = value;
  }
  probe.remove();
  const flag = document.body.dataset.jpThemeLight;
  return { vars: out, light: flag === undefined ? null : flag === 'true' };
}

function followTheme(model) {
  let last = '';
  const send = () => {
    const theme = themeColours();
    const key = JSON.stringify(theme);
    if (key === last) return;
    last = key;
    model.send({ event: 'theme', ...theme });
  };
  send();
  const observer = new MutationObserver(() => setTimeout(send, 50));
  observer.observe(document.body, { attributes: true,
    attributeFilter: ['data-jp-theme-light', 'data-jp-theme-name', 'class'] });
  // The theme's stylesheet may land after the attribute changes: look again.
  const slow = setInterval(send, 2000);
  return () => { observer.disconnect(); clearInterval(slow); };
}

function attachHands(view, model) {
  const grid = view && view.grid && view.grid.grid;
  const el = view && view.el;
  if (!grid || !el || el[HANDS] || typeof grid.hitTest !== 'function') return false;
  el[HANDS] = true;
  // JupyterLab's notebook shortcuts (Ctrl+A selects cells, Z undoes a cell action)
  // must not see keys pressed in the grid; the grid's own handler gets them instead.
  el.setAttribute('data-lm-suppress-shortcuts', 'true');
  if (grid.node.tabIndex < 0) grid.node.tabIndex = 0;
  el.style.position = el.style.position || 'relative';
  const layer = document.createElement('div');  // painted bands, shown during a drag
  layer.className = 'sellerbench-paint-layer';
  layer.style.cssText = 'position:absolute;left:0;top:0;right:0;bottom:0;pointer-events:none';
  el.appendChild(layer);
  const popup = document.createElement('div');
  popup.className = 'sellerbench-hover';
  popup.style.cssText = 'position:fixed;display:none;z-index:10000;max-width:560px;'
    + 'background:var(--jp-layout-color0,#fff);color:var(--jp-ui-font-color0,#000);'
    + 'border:1px solid var(--jp-border-color1,#999);box-shadow:0 2px 6px rgba(0,0,0,.25);'
    + 'padding:6px 8px;font-size:12px;pointer-events:none;white-space:nowrap';
  document.body.appendChild(popup);

  // The column profiles above the grid (profiles.py) scroll sideways with its columns.
  const syncProfiles = () => {
    const strip = el.parentElement && el.parentElement.querySelector('.sellerbench-profiles');
    if (strip && strip.scrollLeft !== grid.scrollX) strip.scrollLeft = grid.scrollX;
  };
  if (typeof grid.scrollTo === 'function') {
    const scrollTo = grid.scrollTo;
    grid.scrollTo = function (x, y) {
      const result = scrollTo.call(this, x, y);
      syncProfiles();
      return result;
    };
  }

  let painting = null;  // {rows: Set, first}
  const band = (spot) => {
    const box = el.getBoundingClientRect();
    const div = document.createElement('div');
    div.style.cssText = 'position:absolute;left:0;right:0;background:rgba(229,57,53,.28)';
    div.style.top = (spot.top - box.top) + 'px';
    div.style.height = spot.height + 'px';
    layer.appendChild(div);
  };
  const paintAt = (event) => {
    const spot = rowAt(grid, event);
    if (!spot || painting.rows.has(spot.row)) return;
    painting.rows.add(spot.row);
    band(spot);
  };
  const onMove = (event) => { if (painting) { paintAt(event); event.preventDefault(); } };
  const onUp = (event) => {
    if (!painting || event.button !== 2) return;
    document.removeEventListener('mousemove', onMove, true);
    document.removeEventListener('mouseup', onUp, true);
    const rows = Array.from(painting.rows);
    const first = painting.first;
    painting = null;
    if (rows.length) {
      model.send({ event: 'paint', rows, first });
      setTimeout(() => { layer.textContent = ''; }, 4000);  // the kernel's tick repaints
    }
    event.preventDefault();
    event.stopPropagation();
  };
  el.addEventListener('mousedown', (event) => {
    if (event.button !== 2) {
      grid.node.focus({ preventScroll: true });
      return;
    }
    const spot = rowAt(grid, event);
    event.preventDefault();
    event.stopPropagation();  // Lumino's own handler would start a selection
    if (!spot) return;
    layer.textContent = '';
    painting = { rows: new Set(), first: spot.row };
    paintAt(event);
    document.addEventListener('mousemove', onMove, true);
    document.addEventListener('mouseup', onUp, true);
  }, true);
  el.addEventListener('contextmenu', (event) => {
    event.preventDefault();
    event.stopPropagation();
  }, true);

  // The hover card: only after the pointer rests on a row (600 ms), never in the
  // second after a click, a drag or a wheel (it would cover what was just clicked),
  // placed beside the pointer so it covers neither the row nor the rows below it.
  let hoverTimer = 0;
  let hoverRow = null;
  let quietUntil = 0;
  const hideHover = (quiet) => {
    clearTimeout(hoverTimer);
    hoverRow = null;
    popup.style.display = 'none';
    if (quiet) quietUntil = Date.now() + 1200;
  };
  el.addEventListener('mousedown', () => hideHover(true), true);
  el.addEventListener('wheel', () => hideHover(true), { capture: true, passive: true });
  el.addEventListener('mousemove', (event) => {
    if (event.buttons) return;
    clearTimeout(hoverTimer);
    const x = event.clientX, y = event.clientY;
    const spotNow = rowAt(grid, event);
    if (!spotNow || spotNow.row !== hoverRow) popup.style.display = 'none';
    const rest = (delay) => {
      hoverTimer = setTimeout(() => {
        // Still in the quiet second after a click: a pointer left resting here gets its
        // card once the second is over (not never).
        if (Date.now() < quietUntil) { rest(quietUntil - Date.now()); return; }
        const spot = rowAt(grid, { clientX: x, clientY: y });
        if (!spot) { popup.style.display = 'none'; hoverRow = null; return; }
        if (spot.row === hoverRow && popup.style.display !== 'none') return;
        hoverRow = spot.row;
        popup.dataset.x = x; popup.dataset.y = y;
        model.send({ event: 'hover', row: spot.row });
      }, delay);
    };
    rest(600);
  });
  el.addEventListener('mouseleave', () => hideHover(false));
  model.on('msg:custom', (content) => {
    if (content.event === 'hover' && content.row === hoverRow && Date.now() >= quietUntil) {
      popup.innerHTML = content.html;
      popup.style.display = content.html ? 'block' : 'none';
      const x = Number(popup.dataset.x), y = Number(popup.dataset.y);
      const w = popup.offsetWidth, h = popup.offsetHeight;
      // Right of the pointer, its top level with the pointer's row; to the left when
      // there is no room on the right; kept on screen.
      let left = x + 28;
      if (left + w > window.innerWidth - 8) left = Math.max(8, x - 28 - w);
      const top = Math.max(8, Math.min(y - 10, window.innerHeight - h - 8));
      popup.style.left = left + 'px';
      popup.style.top = top + 'px';
    } else if (content.event === 'painted') {
      layer.textContent = '';
    } else if (content.event === 'clipboard') {
      copyText(content.text, (why) => model.send({ event: 'copy-failed', why }));
    }
  });
  // A column resized by its header border: the widths go to the kernel (the profile
  // strip follows them, and they are part of the grid's state). ipydatagrid 1.4 sends
  // them only in some cases; the grid's own sizes after the drag are the truth.
  const sendWidths = () => {
    const widths = {};
    const count = grid.dataModel ? grid.dataModel.columnCount('body') : 0;
    for (let i = 0; i < count; i++) {
      let name = null;
      try { name = grid.dataModel.metadata('column-header', 0, i).name; } catch (e) { name = null; }
      if (name) widths[String(name)] = Math.round(grid.columnSize('body', i));
    }
    model.send({ event: 'widths', widths });
  };
  el.addEventListener('mousedown', (event) => {
    if (event.button !== 0) return;
    const hit = grid.hitTest(event.clientX, event.clientY);
    if (!hit || hit.region !== 'column-header') return;
    const up = () => {
      document.removeEventListener('mouseup', up, true);
      setTimeout(sendWidths, 50);
    };
    document.addEventListener('mouseup', up, true);
  }, true);
  // A header click sorts (again: the other way; Shift adds a key) and selects nothing;
  // the resize border and ipydatagrid's filter icon at the right keep their jobs.
  el.addEventListener('mousedown', (event) => {
    if (event.button !== 0) return;
    const hit = grid.hitTest(event.clientX, event.clientY);
    if (!hit || hit.region !== 'column-header' || hit.column < 0) return;
    if (hit.x < 8 || hit.x > hit.width - 24) return;
    let name = null;
    try {
      name = grid.dataModel.metadata('column-header', 0, hit.column).name;
    } catch (error) {
      name = null;
    }
    if (!name) return;
    event.preventDefault();
    event.stopPropagation();
    grid.node.focus({ preventScroll: true });
    model.send({ event: 'sort', column: String(name), add: event.shiftKey });
  }, true);
  el.addEventListener('keydown', (event) => {
    const accel = event.ctrlKey || event.metaKey;
    let key = null;
    if (accel && !event.shiftKey && (event.key === 'a' || event.key === 'A')) key = 'select-all';
    else if (accel && !event.shiftKey && (event.key === 'z' || event.key === 'Z')) key = 'undo';
    else if (accel && !event.shiftKey && (event.key === 'c' || event.key === 'C')) key = 'copy';
    else if (!accel && (event.key === 'Delete' || event.key === 'Backspace')) key = 'delete';
    if (!key) return;
    event.preventDefault();
    event.stopPropagation();
    model.send({ event: 'key', key });
  }, true);
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
      if (model.get('hands')) attachHands(view, model);
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
    const unfollow = followTheme(model);
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
      unfollow();
      timers.forEach(clearTimeout);
    };
  },
};
"""


class GridPainter(anywidget.AnyWidget):
    """Hidden helper that makes the browser paint one grid column per copy (see above)."""

    _esm = _ESM.replace("__THEME_VARIABLES__", json.dumps(list(THEME_VARIABLES)))
    _css = GRID_CSS
    grid_id = traitlets.Unicode("").tag(sync=True)
    batched = traitlets.Int(0).tag(sync=True)  # grid views wrapped in the browser
    hands = traitlets.Bool(True).tag(sync=True)  # listen for drags, hovers and keys

    def __init__(self, grid: Any, **kwargs: Any) -> None:
        kwargs.setdefault("layout", widgets.Layout(display="none"))
        super().__init__(grid_id=grid.model_id, **kwargs)
