"""The sellers grid: ``wb.grid()`` in JupyterLab, for millions of sellers.

- ``widget``: ``SellersGrid``, the layout an analyst sees (search, filters, the table, the
  detail panel) and how its parts talk to each other;
- ``actions``: the toolbar, the analyst's hands (keys, drags) and the messages;
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
