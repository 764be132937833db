"""The sellers grid: ``wb.grid()`` in JupyterLab, for millions of sellers.

- ``widget``: ``SellersGrid``, the layout an analyst sees (search, filters, the table, the
  detail panel) and how its parts talk to each other;
- ``actions``: the toolbar, the analyst's hands (keys, drags, copy) and the messages;
- ``layout``: sort keys, column widths, the theme and the grid's state as data;
- ``state``: the state's format and checks, and the static picture for no-kernel views;
- ``theme``: JupyterLab's theme variables turned into the canvas's colours (AA contrast);
- ``watch``: notices a change of the cache made by another process;
- ``actionbox``: a text box whose action carries the text typed (the where box, rename);
- ``painter``: draws the table one strip per column in the browser;
- ``viewport``: the window onto the cache: filters as SQL, order and pages as Arrow;
- ``snapshot``: the filtered sellers' shown columns as one Arrow table, in order;
- ``profiles``: the shape of each shown column under the current filter.

The grid uses the ``Workbench``'s public surface only; the data flows cache -> viewport ->
widget -> browser.
"""

from .widget import SellersGrid

__all__ = ["SellersGrid"]
