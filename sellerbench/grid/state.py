"""The grid's state as data, and its static picture.

``grid.state`` is a plain dict (JSON-ready: save it with ``json.dump``, give it back with
``wb.grid(state=...)`` or ``grid.state = ...``)::

    {"version": 1,
     "search": "acme",                     # the search box
     "flagged": "all",                     # all | flagged | not flagged | pending
     "where": "times_seen >= 3",           # the where box ("" for none)
     "sort": [["Times seen", true], ["Name", false]],   # keys, first first: [label, desc]
     "header_filters": [{"type": "filter", "column": "Platform", "operator": "=",
                         "value": "ebay"}],  # ipydatagrid's filter transforms
     "picks": {"Platform": "platform = 'ebay'"},  # profile clicks: label -> predicate
     "columns": ["Name", "Times seen", ...],      # shown, in order
     "widths": {"Name": 220, ...},                # pixels
     "selection": ["<seller id>", ...]}           # selected sellers

Every key is optional; an unknown key or a value of the wrong type is ``ConfigError``
naming it. ``grid.where_sql`` stays the exact filter of a restored grid.

``static_html``: what a notebook shows where no kernel runs (nbconvert HTML, a viewer):
the filter as text, the status line and the first rows, as plain HTML in the output's
``text/html`` next to the widget's own mimetype.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..errors import ConfigError
from .viewport import FLAGGED_CHOICES

__all__ = ["STATE_KEYS", "STATIC_ROWS", "check_state", "static_html"]

STATE_VERSION = 1
STATIC_ROWS = 20  # rows of the static picture
STATE_KEYS = {"version": int, "search": str, "flagged": str, "where": str, "sort": list,
              "header_filters": list, "picks": dict, "columns": list, "widths": dict,
              "selection": list}


def check_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """The state checked for shape (keys, types, values); ConfigError says what is wrong."""
    if not isinstance(state, Mapping):
        raise ConfigError(f"a grid state is a dict (grid.state gives one), not "
                          f"{type(state).__name__}")
    unknown = sorted(set(state) - set(STATE_KEYS))
    if unknown:
        raise ConfigError(f"unknown grid state key(s) {', '.join(map(repr, unknown))}; "
                          f"keys: {', '.join(STATE_KEYS)}")
    for key, kind in STATE_KEYS.items():
        if key in state and not isinstance(state[key], kind):
            raise ConfigError(f"grid state {key!r} must be a {kind.__name__}, not "
                              f"{type(state[key]).__name__}")
    if state.get("version", STATE_VERSION) != STATE_VERSION:
        raise ConfigError(f"grid state version {state['version']!r} is not known "
                          f"(this sellerbench writes version {STATE_VERSION})")
    if "flagged" in state and state["flagged"] not in FLAGGED_CHOICES:
        raise ConfigError(f"grid state 'flagged' must be one of {FLAGGED_CHOICES}")
    for key in state.get("sort", []):
        if (not isinstance(key, list | tuple) or len(key) != 2 or not isinstance(key[0], str)
                or not isinstance(key[1], bool)):
            raise ConfigError(f"grid state 'sort' holds [label, descending] pairs, not {key!r}")
    for width in state.get("widths", {}).values():
        if not isinstance(width, int) or not 20 <= width <= 2000:
            raise ConfigError(f"grid state 'widths' are pixels from 20 to 2000, not {width!r}")
    for item in state.get("selection", []):
        if not isinstance(item, str):
            raise ConfigError(f"grid state 'selection' holds seller ids, not {item!r}")
    for item in state.get("header_filters", []):
        if not isinstance(item, dict) or item.get("type") != "filter":
            raise ConfigError(f"grid state 'header_filters' holds filter transforms "
                              f"({{'type': 'filter', 'column': ..., 'operator': ..., "
                              f"'value': ...}}), not {item!r}")
    return dict(state)


def static_html(rows: pd.DataFrame, *, where_sql: str, status: str, sort: str) -> str:
    """The grid as plain HTML: filter, order and status as text, then the first rows.
    Numbers are right-aligned, text left-aligned, as in the grid (a notebook's HTML
    tables right-align every cell unless told)."""
    align = ["right" if pd.api.types.is_numeric_dtype(rows[c]) else "left"
             for c in rows.columns]
    head = "".join(f"<th style='text-align:{a};padding:2px 8px'>{html.escape(str(c))}</th>"
                   for c, a in zip(rows.columns, align, strict=True))
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:{a};padding:2px 8px;white-space:nowrap'>"
                         f"{html.escape('' if v is None else str(v))}</td>"
                         for v, a in zip(row, align, strict=True))
        + "</tr>"
        for row in rows.itertuples(index=False))
    more = f" (first {len(rows)} rows)" if len(rows) == STATIC_ROWS else ""
    return (
        "<div class='sellerbench-static'>"
        f"<div><b>Sellers grid</b> — {html.escape(status)}{html.escape(more)}</div>"
        f"<div>Filter: <code>{html.escape(where_sql)}</code></div>"
        f"<div>Order: {html.escape(sort)}</div>"
        f"<table style='border-collapse:collapse;font-size:12px'><thead><tr>{head}</tr>"
        f"</thead><tbody>{body}</tbody></table>"
        "<div><i>A picture of the grid when it was shown; run the notebook for the "
        "live grid.</i></div></div>"
    )
