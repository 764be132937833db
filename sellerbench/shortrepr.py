"""Results that fit a notebook: one-line reprs and small HTML summaries, bounded in size.

What an action, a push, a sync or an export returns ends many cells, so its repr is what
the notebook stores. Whatever the size of the work (a million ids), these stay short:
``one_line`` is at most ``MAX_REPR`` characters, ``html_table`` names at most
``MAX_ROWS`` rows of at most ``MAX_CELL`` characters each.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

__all__ = ["MAX_REPR", "html_table", "one_line", "sample"]

MAX_REPR = 1_000  # characters of any result's repr (issue 21)
MAX_CELL = 200  # characters of one value in an HTML summary
MAX_ROWS = 12  # rows of an HTML summary
_SHOWN = 3  # ids a repr names before "..."


def one_line(text: str, limit: int = MAX_REPR) -> str:
    """``text`` on one line (newlines become ``; ``), cut to ``limit`` characters."""
    flat = "; ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def sample(ids: Sequence[str], count: int | None = None) -> str:
    """The first few ids and how many more: ``'a', 'b', 'c' (+999,997 more)``."""
    total = len(ids) if count is None else count
    shown = ", ".join(repr(str(ids[i]))[:60] for i in range(min(_SHOWN, len(ids))))
    more = total - min(total, _SHOWN)
    return shown + (f" (+{more:,} more)" if more else "")


def html_table(title: str, rows: Iterable[tuple[str, object]]) -> str:
    """A small two-column HTML table: ``title`` over (label, value) rows, escaped, bounded."""
    cells = []
    for index, (label, value) in enumerate(rows):
        if index >= MAX_ROWS:
            cells.append("<tr><td colspan='2'>...</td></tr>")
            break
        text = one_line(str(value), MAX_CELL)
        cells.append(
            f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
            f"<td style='text-align:left'>{html.escape(text)}</td></tr>"
        )
    return f"<table><caption>{html.escape(title)}</caption>{''.join(cells)}</table>"
