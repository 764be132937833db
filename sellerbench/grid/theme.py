"""The grid's colours, taken from JupyterLab's theme.

The browser reads JupyterLab's CSS variables (``--jp-layout-color0`` and friends, see
``THEME_VARIABLES``) resolved to ``rgb(...)``/``rgba(...)``, on first render and each
time the theme changes (``painter.py`` watches ``data-jp-theme-light`` on the body, which
``apputils:change-theme`` sets), and sends them to the kernel. ``Palette.from_css`` turns
them into the colours the canvas needs (cells, lines, header, selection, flagged and
pending tints); the HTML parts of the grid (messages, status, detail, profiles, hover)
use the CSS variables directly (``GRID_CSS``).

Every text colour is checked against the background it is drawn on: when the theme's
own font colour reaches less than WCAG AA (4.5:1) on a tint, the stronger of black and
white is used instead (``readable``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..schema import SHOWN_TRUE

__all__ = ["AA", "GRID_CSS", "THEME_VARIABLES", "Palette", "contrast", "parse_colour"]

AA = 4.5  # WCAG AA contrast for normal text
RGB = tuple[float, float, float]

# What the browser sends (resolved to rgb/rgba), with JupyterLab 4's light values as the
# fallback for a page that has no JupyterLab theme (Notebook 7 has the same variables).
THEME_VARIABLES = {
    "--jp-layout-color0": "rgb(255, 255, 255)",
    "--jp-layout-color2": "rgb(238, 238, 238)",
    "--jp-ui-font-color1": "rgba(0, 0, 0, 0.87)",
    "--jp-border-color2": "rgb(224, 224, 224)",
    "--jp-brand-color1": "rgb(25, 118, 210)",
    "--jp-error-color1": "rgb(211, 47, 47)",
    "--jp-warn-color1": "rgb(245, 124, 0)",
}

_NUMBERS = re.compile(r"[-+]?\d*\.?\d+")


def parse_colour(text: str) -> tuple[RGB, float]:
    """``rgb(r, g, b)``, ``rgba(r, g, b, a)`` or ``#rrggbb`` as ((r, g, b), alpha)."""
    text = text.strip()
    if text.startswith("#") and len(text) in (4, 7):
        digits = text[1:] if len(text) == 7 else "".join(c * 2 for c in text[1:])
        return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)), 1.0
    numbers = [float(n) for n in _NUMBERS.findall(text)]
    if text.startswith("rgb") and len(numbers) in (3, 4):
        alpha = numbers[3] if len(numbers) == 4 else 1.0
        return (numbers[0], numbers[1], numbers[2]), alpha
    raise ValueError(f"not a colour: {text!r}")


def _over(colour: RGB, alpha: float, base: RGB) -> RGB:
    r, g, b = (alpha * c + (1 - alpha) * d for c, d in zip(colour, base, strict=True))
    return (r, g, b)


def _luminance(colour: RGB) -> float:
    def channel(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio of two opaque colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _rows_test(rows: Sequence[int]) -> str:
    """A Vega test true for the cells of these rows (view positions)."""
    return f"indexof([{','.join(str(int(r)) for r in rows)}], cell.row) >= 0"


def _hex(colour: RGB) -> str:
    return "#" + "".join(f"{round(max(0, min(255, c))):02x}" for c in colour)


def readable(text: RGB, backgrounds: list[RGB]) -> RGB:
    """``text`` if it reaches AA on every background, else black or white, whichever
    reaches the higher worst-case ratio."""
    if min(contrast(text, b) for b in backgrounds) >= AA:
        return text
    return max(((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),
               key=lambda t: min(contrast(t, b) for b in backgrounds))


@dataclass(frozen=True)
class Palette:
    """The canvas colours of one theme, as ``#rrggbb`` (selection: ``rgba``)."""

    light: bool
    background: str
    text: str
    line: str
    header_background: str
    header_text: str
    selection: str  # translucent: drawn over the row's own colour
    selection_border: str
    flagged: str
    pending: str

    @classmethod
    def from_css(cls, variables: dict[str, str] | None = None,
                 light: bool | None = None) -> Palette:
        """The palette of a theme from its CSS variables (missing ones: light defaults)."""
        values = {**THEME_VARIABLES, **{k: v for k, v in (variables or {}).items()
                                        if k in THEME_VARIABLES and isinstance(v, str)}}
        parsed = {}
        for name, text in values.items():
            try:
                parsed[name] = parse_colour(text)
            except ValueError:
                parsed[name] = parse_colour(THEME_VARIABLES[name])
        bg = _over(*parsed["--jp-layout-color0"], (255.0, 255.0, 255.0))
        if light is None:
            light = _luminance(bg) > 0.4
        header = _over(*parsed["--jp-layout-color2"], bg)
        line = _over(*parsed["--jp-border-color2"], bg)
        brand, _ = parsed["--jp-brand-color1"]
        strength = 0.2 if light else 0.35
        flagged = _over(parsed["--jp-error-color1"][0], strength, bg)
        pending = _over(parsed["--jp-warn-color1"][0], strength, bg)
        selection_alpha = 0.2 if light else 0.3
        selected = [_over(brand, selection_alpha, c) for c in (bg, flagged, pending)]
        font = _over(*parsed["--jp-ui-font-color1"], bg)
        text_rgb = readable(font, [bg, flagged, pending, *selected])
        header_text = readable(_over(*parsed["--jp-ui-font-color1"], header), [header])
        r, g, b = (round(c) for c in brand)
        return cls(light=light, background=_hex(bg), text=_hex(text_rgb), line=_hex(line),
                   header_background=_hex(header), header_text=_hex(header_text),
                   selection=f"rgba({r}, {g}, {b}, {selection_alpha})",
                   selection_border=f"rgba({r}, {g}, {b}, 0.9)",
                   flagged=_hex(flagged), pending=_hex(pending))

    def row_colour(self, shown: Sequence[str], flagged_rows: Sequence[int] = (),
                   pending_rows: Sequence[int] = ()) -> str:
        """The Vega expression for a row's background: flagged, pending or plain.

        From the row's Flagged and Pending cells *only when those columns are shown*:
        the browser's ``cell.metadata.data`` throws for a column it does not hold (hiding
        Pending blanked every unflagged row with "Cannot read properties of undefined").
        For a hidden one, from the row numbers the kernel names (``tints.py``)."""
        expr = f"'{self.background}'"
        if "Pending" in shown:
            expr = (f"(cell.metadata.data['Pending'] != '' && "
                    f"cell.metadata.data['Pending'] != '...' ? '{self.pending}' : {expr})")
        elif pending_rows:
            expr = f"({_rows_test(pending_rows)} ? '{self.pending}' : {expr})"
        if "Flagged" in shown:
            expr = (f"(cell.metadata.data['Flagged'] == '{SHOWN_TRUE}' ? '{self.flagged}' : "
                    f"{expr})")
        elif flagged_rows:
            expr = f"({_rows_test(flagged_rows)} ? '{self.flagged}' : {expr})"
        return expr

    def grid_style(self) -> dict[str, Any]:
        """ipydatagrid's ``grid_style`` for this palette. No ``background_color``: where
        it differs from ipydatagrid's own theme colour, ipydatagrid 1.4 drops the cell
        renderer's background (the flagged and pending tints); the cells are painted by
        ``row_colour`` instead."""
        return {
            "void_color": self.background,
            "grid_line_color": self.line, "header_background_color": self.header_background,
            "header_grid_line_color": self.line, "selection_fill_color": self.selection,
            "selection_border_color": self.selection_border,
            "header_selection_fill_color": self.selection,
            "header_selection_border_color": self.line,
            "cursor_fill_color": "rgba(0, 0, 0, 0)",
            "cursor_border_color": self.selection_border,
            "scroll_shadow": {"size": 4, "color1": "rgba(0, 0, 0, 0.12)",
                              "color2": "rgba(0, 0, 0, 0.04)", "color3": "rgba(0, 0, 0, 0)"},
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# The HTML parts follow the theme's variables themselves (and change with it at once).
# Messages use the theme's font colour or its error colour (both >= 4.5:1 on the
# theme's background in JupyterLab's light and dark themes; the browser walk checks it).
GRID_CSS = """
.sellerbench-grid { color: var(--jp-ui-font-color1); }
.sellerbench-grid .sellerbench-error { color: var(--jp-error-color1); }
.sellerbench-grid .sellerbench-info { color: var(--jp-ui-font-color1); }
.sellerbench-grid .sellerbench-info::before { content: "✓ "; }
.sellerbench-grid .sellerbench-status,
.sellerbench-grid .sellerbench-detail,
.sellerbench-grid .sellerbench-message { color: var(--jp-ui-font-color1); }
.sellerbench-profiles { color: var(--jp-ui-font-color1);
  border-bottom: 1px solid var(--jp-border-color2) !important; }
.sellerbench-profile-head { color: var(--jp-ui-font-color1) !important; }
.sellerbench-profile-clear { color: var(--jp-error-color1) !important; }
.sellerbench-profile-bar { background: var(--jp-brand-color1) !important; }
.sellerbench-hover { background: var(--jp-layout-color0) !important;
  color: var(--jp-ui-font-color1) !important; }
"""
