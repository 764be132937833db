"""The report's charts: SVG whose text stays text, drawn only when they tell something.

A chart whose bars would all be equal is not drawn (the caller says the value in a
sentence instead); axes are scaled to the values, never 0-100 % for values near 5 %.
Each bar carries ``id="bar-N"`` in the SVG, so a test can measure the bars a reader sees.
The figures are 6.7 inches wide: the text width of an A4 page with 2 cm margins.
"""

from __future__ import annotations

import base64
import html
import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .report_words import day_words, share_words

__all__ = ["MAX_RUNS", "Chart", "runs_chart", "share_chart", "trend_chart", "why_no_runs_chart"]

MAX_RUNS = 20  # runs in the chart and the table; all of them are in runs.csv
WIDTH = 6.7
COLOURS = {"completed": "#4C78A8", "failed": "#D62728", "cancelled": "#9D9D9D",
           "running": "#72B7B2", "paused": "#B279A2", "pending": "#D8D8D8"}
NEW_COLOUR = "#F58518"
# DejaVu Sans (matplotlib's own) sets the layout; the browser falls back per glyph to the
# reader's fonts for scripts it lacks (CJK, Arabic, ...), since the SVG keeps text as text.
FONTS = ["DejaVu Sans", "sans-serif"]


@dataclass(frozen=True)
class Chart:
    """A chart as SVG text, with the sentence a reader without images gets (alt)."""

    svg: str
    alt: str

    def _repr_svg_(self) -> tuple[str, dict[str, str]]:
        return self.svg, {"alt": self.alt}

    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode()).decode()

    def html(self) -> str:
        """An <img> with the SVG inline as a data URI: one self-contained image."""
        return (f"<figure><img alt=\"{html.escape(self.alt)}\" src=\"{self.data_uri()}\">"
                f"</figure>")


def _figure(height: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    figure = Figure(figsize=(WIDTH, height), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=8)
    return figure, axes


_SVG_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


def _svg(figure: Any) -> str:
    import matplotlib

    buffer = io.StringIO()
    with warnings.catch_warnings(), matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": "sellerbench", "font.family": FONTS}
    ):
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    # No XML prolog, DOCTYPE (it names a URL) or RDF block: the page needs none of them.
    return _SVG_METADATA.sub("", _SVG_PROLOG.sub("", buffer.getvalue()))


def label(name: object, width: int) -> str:
    """A name fit for an axis: one line, control characters as spaces, cut with '…'."""
    text = "".join(c if c.isprintable() else " " for c in str(name)).strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def _all_equal(values: pd.Series) -> bool:
    return values.nunique(dropna=False) <= 1


def why_no_runs_chart(runs: pd.DataFrame) -> str:
    """The sentence said instead of a chart of the runs."""
    found = runs["sellers_found"].fillna(0).astype(int)
    if len(runs) == 1:
        return "One run in this period (below)."
    return f"Every run found {int(found.iloc[0]):,} sellers."


def runs_chart(runs: pd.DataFrame) -> Chart | None:
    """Sellers found per run (the newest MAX_RUNS, oldest at the top), the part found for
    the first time in orange, coloured by outcome; None when the bars would be equal."""
    runs = runs.tail(MAX_RUNS)
    found = runs["sellers_found"].fillna(0).astype(int)
    if len(runs) < 2 or _all_equal(found):
        return None
    new = runs["sellers_new"].fillna(0).astype(int)
    figure, axes = _figure(0.7 + 0.32 * len(runs))
    positions = list(range(len(runs)))
    colours = [COLOURS.get(s, "#888888") for s in runs["status"]]
    bars = axes.barh(positions, found, color=colours, height=0.7)
    axes.barh(positions, new, color=NEW_COLOUR, height=0.35)
    for i, bar in enumerate(bars):
        bar.set_gid(f"bar-{i}")
    labels = [f"{day_words(s, short=True)}  {label(n, 30)}"
              for s, n in zip(runs["started_at"], runs["name"], strict=True)]
    axes.set_yticks(positions, labels, fontsize=8)
    top = int(found.max())
    for bar, count, fresh, status in zip(bars, found, new, runs["status"], strict=True):
        note = f" {count:,} ({fresh:,} new)" + ("" if status == "completed" else f" · {status}")
        axes.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2, note,
                  va="center", fontsize=7.5,
                  color="#B00000" if status == "failed" else "#333333")
    axes.set_xlim(0, top * 1.35)
    axes.set_xlabel("sellers found (orange: found for the first time)", fontsize=8)
    axes.invert_yaxis()
    from matplotlib.patches import Patch

    seen = list(dict.fromkeys(runs["status"]))
    figure.legend(handles=[Patch(color=COLOURS.get(s, "#888888"), label=s) for s in seen],
                  frameon=False, fontsize=7.5, loc="outside upper right", ncol=len(seen))
    alt = (f"Sellers found by each of {len(runs)} runs, from {found.min():,} to "
           f"{top:,}; outcomes: {', '.join(seen)}.")
    return Chart(_svg(figure), alt)


def share_chart(platforms: pd.DataFrame) -> Chart | None:
    """The flagged share per platform, the axis scaled to the largest share; None with
    fewer than two platforms or when every share is the same."""
    if len(platforms) < 2 or _all_equal(platforms["share"].round(6)):
        return None
    figure, axes = _figure(0.6 + 0.36 * len(platforms))
    shares = platforms["share"] * 100
    positions = list(range(len(platforms)))
    bars = axes.barh(positions, shares, color="#D62728", height=0.6)
    axes.set_yticks(positions, [label(p, 24) for p in platforms["platform"]], fontsize=8)
    top = float(shares.max())
    for i, (bar, share, flagged, total) in enumerate(zip(
            bars, platforms["share"], platforms["flagged"], platforms["sellers"], strict=True)):
        bar.set_gid(f"bar-{i}")
        axes.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2,
                  f" {share_words(share)} ({int(flagged):,} of {int(total):,})",
                  va="center", fontsize=7.5)
    right = top * 1.45 if top > 0 else 1
    axes.set_xlim(0, right)
    axes.set_xticks([t for t in axes.get_xticks() if 0 <= t <= min(right, 100)])
    axes.xaxis.set_major_formatter(lambda value, _pos: f"{value:g}%")
    axes.set_xlabel("share of sellers flagged", fontsize=8)
    axes.invert_yaxis()
    alt = "Flagged share per platform: " + ", ".join(
        f"{p} {share_words(s)}" for p, s in zip(platforms["platform"], platforms["share"],
                                                strict=True))
    return Chart(_svg(figure), alt)


def trend_chart(points: list[tuple[Any, int, int]]) -> Chart | None:
    """The flagged share at each report (made_at, flagged, sellers), oldest first, the
    axis scaled to the values; None with fewer than three reports or an unchanged share."""
    shares = pd.Series([f / n if n else 0.0 for _, f, n in points]) * 100
    if len(points) < 3 or _all_equal(shares.round(6)):
        return None
    figure, axes = _figure(2.2)
    positions = list(range(len(points)))
    axes.plot(positions, shares, color="#D62728", marker="o", linewidth=1.5)
    for x, share in zip(positions, shares, strict=True):
        axes.annotate(f"{share:.1f}%", (x, share), textcoords="offset points",
                      xytext=(0, 6), ha="center", fontsize=7.5)
    axes.set_xticks(positions, [day_words(when, short=True) for when, _, _ in points],
                    fontsize=7.5)
    low, high = float(shares.min()), float(shares.max())
    pad = (high - low) * 0.35
    axes.set_ylim(max(low - pad, 0), high + pad)
    axes.yaxis.set_major_formatter(lambda value, _pos: f"{value:g}%")
    axes.set_ylabel("flagged share", fontsize=8)
    alt = (f"Flagged share at each of {len(points)} reports, from {shares.iloc[0]:.1f}% to "
           f"{shares.iloc[-1]:.1f}%.")
    return Chart(_svg(figure), alt)
