"""The report's content: its parameters, the facts read from the cache, and the page.

The packaged notebook (``report.ipynb``) calls :func:`build` once, then shows each
section (``page.summary_html()``, ``page.runs_html()`` ...). Everything a reader sees is
computed here from the cache, so it is tested without a kernel:

- the summary: what changed since the previous report or a date (sellers new, newly
  flagged and unflagged, renamed, deleted), how the runs went, the flagged share and
  its direction; each a sentence with the numbers in it;
- the runs (a chart of sellers found per run coloured by outcome, and a table with
  dates, outcome, duration, found, new, failed items), the flagged sellers (newly
  flagged first, then by times seen), the platforms, the data files (KB / MB).

A chart is drawn only when it tells something: never one of equal bars (a sentence
says the value instead), its axis scaled to the values. Charts are SVG whose text is
text, so names in any script are drawn by the reader's browser.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from ..cache.filters import SellerFilter
from ..errors import ConfigError
from . import report_charts as charts
from . import report_state as state
from .report_words import (
    day_words,
    duration_words,
    file_size,
    join_words,
    moment_words,
    plural,
    share_words,
)

__all__ = ["FLAGGED_ROWS", "Page", "Period", "ReportParams", "build", "open_workbench"]

FLAGGED_ROWS = 25  # flagged sellers in the page; all of them are in flagged.csv
RECENT_RUNS = 3  # runs told in the summary by name
OUTCOMES = {"completed": "completed", "failed": "failed", "cancelled": "was cancelled",
            "running": "is running", "paused": "is paused", "pending": "has not started"}


# -- parameters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Which runs the report covers: from ``start`` to ``end`` (days, both included)."""

    start: date | None = None
    end: date | None = None

    @classmethod
    def parse(cls, text: object, today: date | None = None) -> Period:
        """None (all runs), ``30d`` (the last 30 days), ``2026-11-01`` (since that day)
        or ``2026-11-01..2026-11-30``; else ConfigError."""
        if text is None or text == "":
            return cls()
        if isinstance(text, Period):
            return text
        value = str(text).strip()
        today = today or datetime.now(UTC).date()
        try:
            if re.fullmatch(r"\d{1,4}d", value):
                return cls(today - timedelta(days=int(value[:-1]) - 1), None)
            first, sep, last = value.partition("..")
            start = date.fromisoformat(first) if first else None
            end = date.fromisoformat(last) if sep and last else None
        except ValueError:
            start = end = None
            value = ""
        if not value or (start and end and end < start):
            raise ConfigError(
                f"period must be like 30d, 2026-11-01 or 2026-11-01..2026-11-30 "
                f"(start before end), not {text!r}"
            )
        return cls(start, end)

    def sql(self) -> str:
        """A predicate over a run's start (dates are checked, so literals are safe)."""
        parts = ["TRUE"]
        if self.start:
            parts.append(f"coalesce(started_at, created_at) >= TIMESTAMPTZ "
                         f"'{self.start.isoformat()} 00:00:00+00'")
        if self.end:
            parts.append(f"coalesce(started_at, created_at) < TIMESTAMPTZ "
                         f"'{(self.end + timedelta(days=1)).isoformat()} 00:00:00+00'")
        return " AND ".join(parts)

    def words(self) -> str:
        if self.start and self.end:
            return f"{day_words(self.start)} to {day_words(self.end)}"
        if self.start:
            return f"since {day_words(self.start)}"
        if self.end:
            return f"until {day_words(self.end)}"
        return "all runs"

    def as_dict(self) -> dict[str, str | None]:
        return {"start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None}


@dataclass(frozen=True)
class ReportParams:
    """The notebook's parameters, checked (ConfigError / ExportError saying what to pass)."""

    title: str
    chosen: SellerFilter
    period: Period
    since: date | Path | None  # a day, a previous report, or None: the newest beside
    output_dir: Path
    provenance: bool

    @classmethod
    def of(cls, *, title: object = None, flagged: object = None, search: object = None,
           where: object = None, period: object = None, since: object = None,
           output_dir: object = None, provenance: object = False) -> ReportParams:
        if title is not None and (not isinstance(title, str) or not title.strip()):
            raise ConfigError(f"title must be some text, not {title!r}")
        if not isinstance(provenance, bool):
            raise ConfigError(f"provenance must be True or False, not {provenance!r}")
        chosen = SellerFilter(flagged=flagged, search=search, where=where)  # type: ignore[arg-type]
        folder = Path(str(output_dir)).expanduser() if output_dir else default_output_dir()
        folder.mkdir(parents=True, exist_ok=True)
        return cls((title or "Seller report").strip(), chosen, Period.parse(period),
                   parse_since(since), folder.resolve(), provenance)

    def filter_words(self) -> str:
        """The filter as a reader says it: "flagged sellers named like 'acme'"."""
        chosen = self.chosen
        who = {True: "flagged sellers", False: "unflagged sellers", None: "all sellers"}
        words = who[chosen.flagged]
        if chosen.search:
            words += f" matching “{chosen.search}”"
        if chosen.where:
            words += f" where {chosen.where}"
        return words


def parse_since(since: object) -> date | Path | None:
    """``since`` as a day (``YYYY-MM-DD``), a previous report's path, or None."""
    if since is None or since == "":
        return None
    if isinstance(since, date):
        return since
    if isinstance(since, os.PathLike):
        return Path(since)
    if not isinstance(since, str):
        raise ConfigError(f"since must be a date or a previous report's folder, not {since!r}")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", since.strip()):
        try:
            return date.fromisoformat(since.strip())
        except ValueError:
            raise ConfigError(f"since {since!r} is not a real day (YYYY-MM-DD)") from None
    return Path(since)


def default_output_dir() -> Path:
    """Where the notebook writes when run by hand without ``output_dir``."""
    from ..settings import data_dir

    return data_dir() / "reports" / datetime.now(UTC).strftime("%Y-%m-%d_%H%M%S")


def open_workbench() -> Any:
    """The API in SELLERBENCH_API_URL (synced), else the cache in SELLERBENCH_CACHE
    (offline, read-only), else a demo server with demo data (synced)."""
    import sellerbench as sb

    if os.environ.get("SELLERBENCH_API_URL"):
        wb = sb.connect()
    elif os.environ.get("SELLERBENCH_CACHE"):
        return sb.connect(read_only=True)  # a report reads the cache, never changes it
    else:
        wb = sb.demo()
    wb.sync(progress=False)
    return wb


# -- the facts -------------------------------------------------------------------------------


@dataclass
class Page:
    """Everything the report shows, read once from the cache."""

    params: ReportParams
    made_at: datetime
    source: str | None  # the API these rows came from
    cache: Path
    checkpoint: dict[str, Any]
    sellers: int
    flagged: int
    platforms: pd.DataFrame  # platform, sellers, flagged, share
    runs: pd.DataFrame  # oldest first
    flagged_rows: pd.DataFrame  # the first FLAGGED_ROWS flagged sellers, by what matters
    changes: state.Changes | None
    files: list[Path]
    trend: list[tuple[datetime, int, int]]  # (made_at, flagged, sellers) per report, now last

    # -- the summary ---------------------------------------------------------------------

    def sentences(self) -> list[str]:
        """The summary: changes, runs, flagged share (plain text, one per item)."""
        return [s for s in (self.change_sentence(), self.runs_sentence(),
                            self.share_sentence()) if s]

    def change_sentence(self) -> str:
        changes = self.changes
        if changes is None:
            return ("This is the first report in this folder: the next one will say "
                    "which sellers are new, newly flagged or unflagged, renamed or deleted.")
        since = (f"the previous report ({moment_words(changes.since)})" if changes.previous
                 else day_words(changes.since.date()))
        parts = [_change_words(c) for c in changes.kinds.values()]
        told = [p for p in parts if p]
        text = f"Since {since}: " + (join_words(told) if told else "no seller changed") + "."
        if changes.previous is None:
            text += (" Flags and renames since a date are not kept in the cache; "
                     "compare with a previous report to see them.")
        return text

    def runs_since(self) -> pd.DataFrame:
        """The runs that started or ended after the previous report (all, without one)."""
        runs = self.runs
        if self.changes is None or runs.empty:
            return runs
        since = pd.Timestamp(self.changes.since)
        started = runs["started_at"] >= since
        ended = runs["completed_at"].notna() & (runs["completed_at"] >= since)
        return runs[started | ended]

    def runs_sentence(self) -> str:
        runs = self.runs_since()
        if self.changes is not None:
            if runs.empty:
                return "No collection run since then."
            lead = f"{plural(len(runs), 'collection run')} since then"
        elif runs.empty:
            return f"No collection run in this period ({self.params.period.words()})."
        else:
            lead = f"{plural(len(runs), 'collection run')} ({self.params.period.words()})"
        outcomes = runs["status"].value_counts()
        tally = join_words([f"{n:,} {OUTCOMES.get(s, s).removeprefix('was ')}"
                            for s, n in outcomes.items()])
        recent = runs.tail(RECENT_RUNS).iloc[::-1]
        told = join_words([_run_words(r) for r in recent.itertuples()])
        head = "the last " + plural(len(recent), "run", word=True) if len(runs) > len(recent) \
            else ("it" if len(recent) == 1 else "they")
        return f"{lead}: {tally}; {head}: {told}." if len(runs) > 1 else f"{lead}: {told}."

    def share_sentence(self) -> str:
        if not self.sellers:
            return "No seller matches this report's filter."
        text = (f"{self.flagged:,} of {self.sellers:,} sellers are flagged "
                f"({share_words(self.flagged / self.sellers)})")
        rows = self.changes.previous.rows if self.changes and self.changes.previous else {}
        before, total = rows.get("flagged"), rows.get("sellers")
        if before is None or not total:
            return text + "."
        then, now = before / total, self.flagged / self.sellers
        way = "up" if now > then else "down" if now < then else "unchanged"
        digits = 1 if share_words(then) != share_words(now) else 2
        if digits == 2:  # 4.7% and 4.7%: say the difference the reader would not see
            text = (f"{self.flagged:,} of {self.sellers:,} sellers are flagged "
                    f"({share_words(now, digits)})")
        was = f"{before:,} of {total:,} ({share_words(then, digits)})"
        return text + (f", {way} from {was} at the previous report." if way != "unchanged"
                       else f", the same share as at the previous report ({was}).")

    # -- sections (HTML fragments) ---------------------------------------------------------

    def header_html(self) -> str:
        scope = f"{self.params.filter_words()}; runs: {self.params.period.words()}"
        return (f"<header><h1>{_e(self.params.title)}</h1><p class='meta'>Made "
                f"{_e(moment_words(self.made_at))} · {_e(scope)}</p></header>")

    def summary_html(self) -> str:
        items = "".join(f"<p>{_e(s)}</p>" for s in self.sentences())
        chart = charts.trend_chart(self.trend)
        return f'<section class="summary">{items}</section>' + (chart.html() if chart else "")

    def runs_html(self) -> str:
        runs = self.runs
        body = "<h2>Collection runs</h2>"
        if runs.empty:
            return body + f"<p>No collection run ({_e(self.params.period.words())}).</p>"
        chart = charts.runs_chart(runs)
        body += chart.html() if chart else f"<p>{_e(charts.why_no_runs_chart(runs))}</p>"
        shown = runs.iloc[::-1].head(charts.MAX_RUNS)
        rows = [
            (day_words(r.started_at, short=True), r.name, OUTCOMES.get(r.status, r.status)
             .removeprefix("was ").removeprefix("is ").removeprefix("has "),
             duration_words(r.duration_seconds), _count(r.sellers_found),
             _count(r.sellers_new), _count(r.failed_items))
            for r in shown.itertuples()
        ]
        classes = [f"run {r.status}" for r in shown.itertuples()]
        body += _table(["Started", "Run", "Outcome", "Took", "Found", "New", "Failed items"],
                       rows, numeric={4, 5, 6}, names={1}, row_classes=classes)
        if len(runs) > len(shown):
            body += f"<p class='note'>{len(runs) - len(shown):,} older runs are in runs.csv.</p>"
        return body

    def flagged_html(self) -> str:
        body = "<h2>Flagged sellers</h2>"
        if self.flagged == 0:
            return body + "<p>No seller in this report is flagged.</p>"
        frame = self.flagged_rows
        rows = [(("● " if r.newly else "") + r.display_name, r.platform, _count(r.times_seen),
                 day_words(r.created_at, short=True), "" if pd.isna(r.last_run) else r.last_run)
                for r in frame.itertuples()]
        body += ("<p class='note'>Newly flagged since the previous report first (●), then "
                 "the most often seen. The data holds no reason for a flag.</p>"
                 if self.changes and self.changes.previous else
                 "<p class='note'>The most often seen first. The data holds no reason "
                 "for a flag.</p>")
        body += _table(["Seller", "Platform", "Times seen", "First seen", "Last seen in"],
                       rows, numeric={2}, names={0, 4})
        rest = self.flagged - len(frame)
        if rest > 0:
            body += (f"<p class='note'>{rest:,} more flagged sellers are in "
                     f"<a href='flagged.csv'>flagged.csv</a>.</p>")
        return body

    def platforms_html(self) -> str:
        body = "<h2>Platforms</h2>"
        frame = self.platforms
        if frame.empty:
            return body + "<p>No seller.</p>"
        chart = charts.share_chart(frame)
        if chart:
            body += chart.html()
        rows = [(r.platform, _count(r.sellers), _count(r.flagged), share_words(r.share))
                for r in frame.itertuples()]
        return body + _table(["Platform", "Sellers", "Flagged", "Flagged share"], rows,
                             numeric={1, 2, 3}, names={0})

    def files_html(self) -> str:
        items = "".join(
            f'<li><a href="{_e(p.name)}">{_e(p.name)}</a>'
            f" ({file_size(p.stat().st_size)}) "
            f"{_e(FILE_WORDS.get(p.name, ''))}</li>"
            for p in self.files
        )
        return f"<h2>Data files</h2><p>Beside this page:</p><ul>{items}</ul>"

    def provenance_html(self) -> str:
        synced = self.checkpoint.get("sellers", {}).get("last_synced")
        when = moment_words(datetime.fromisoformat(synced)) if synced else "never"
        if not self.params.provenance:
            return f"<footer><p>Data as last synced from the API: {_e(when)}.</p></footer>"
        source = self.source or "no API (the cache alone)"
        return (f"<footer><p>Data as last synced from {_e(source)}: {_e(when)}. "
                f"Cache: {_e(str(self.cache))}.</p></footer>")

    def facts(self) -> dict[str, Any]:
        """What the manifest keeps (run_report adds the files' checksums)."""
        chosen = self.params.chosen
        changes = self.changes
        return {
            "made_at": self.made_at.isoformat(), "title": self.params.title,
            "api": self.source, "cache": str(self.cache), "checkpoint": self.checkpoint,
            "filter": {"flagged": chosen.flagged, "search": chosen.search,
                       "where": chosen.where},
            "period": self.params.period.as_dict(),
            "since": None if changes is None else {
                "at": changes.since.isoformat(),
                "report": str(changes.previous.folder) if changes.previous else None,
                "changes": {k: c.count for k, c in changes.kinds.items()}},
            "rows": {"sellers": self.sellers, "flagged": self.flagged,
                     "platforms": len(self.platforms), "runs": len(self.runs)},
        }


FILE_WORDS = {
    "sellers.csv": "every seller in this report, for spreadsheets (cells that would run "
                   "as formulas are written as text)",
    "sellers.parquet": "the same, for other analysts' tools",
    "flagged.csv": "the flagged sellers",
    "runs.csv": "the collection runs",
}


def _change_words(change: state.Change) -> str:
    if change.count == 0:
        return ""
    label = {"new": "new", "flagged": "newly flagged", "unflagged": "newly unflagged",
             "renamed": "renamed", "deleted": "deleted"}[change.kind]
    head = f"{plural(change.count, 'seller')} {label}" if change.kind != "new" \
        else f"{plural(change.count, 'new seller')}"
    shown = change.examples[:RECENT_RUNS]
    if not shown:
        return head
    names = [f"“{old}” → “{new}”" if old is not None else f"“{new}”" for new, old in shown]
    more = change.count - len(shown)
    return f"{head} ({join_words(names + ([f'{more:,} more'] if more > 0 else []))})"


def _run_words(run: Any) -> str:
    outcome = OUTCOMES.get(run.status, run.status)
    text = f"“{run.name}” ({day_words(run.started_at, short=True)}) {outcome}"
    if run.status in ("completed", "failed", "cancelled") and pd.notna(run.duration_seconds):
        text += f" after {duration_words(run.duration_seconds)}"
    if pd.notna(run.sellers_found):
        new = int(run.sellers_new) if pd.notna(run.sellers_new) else 0
        text += f", finding {plural(int(run.sellers_found), 'seller')} ({new:,} new)"
    if run.status == "failed" and pd.notna(run.failed_items) and run.failed_items:
        text += f", {plural(int(run.failed_items), 'failed item')}"
    return text


def _count(value: object) -> str:
    return "" if value is None or pd.isna(value) else f"{int(value):,}"  # type: ignore[call-overload]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(headers: list[str], rows: list[tuple[Any, ...]], *, numeric: set[int],
           names: set[int], row_classes: list[str] | None = None) -> str:
    """A table: ``numeric`` columns right-aligned, ``names`` columns wrap anywhere (a
    long name never widens the page), the others stay on one line."""
    def kind(i: int) -> str:
        return " class=num" if i in numeric else " class=name" if i in names else ""

    head = "".join(f"<th{kind(i)}>{_e(h)}</th>" for i, h in enumerate(headers))
    body = []
    for n, row in enumerate(rows):
        cls = f" class='{_e(row_classes[n])}'" if row_classes else ""
        cells = "".join(f"<td{kind(i)}>{_e(v)}</td>" for i, v in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# -- reading the cache -----------------------------------------------------------------------

_RUNS_SQL = """
SELECT name, status, coalesce(started_at, created_at) AS started_at, completed_at,
       duration_seconds, sellers_found, sellers_new, failed_items
FROM collection_runs WHERE deleted_at IS NULL AND {period}
ORDER BY coalesce(started_at, created_at), name"""

_PLATFORMS_SQL = """
SELECT platform, count(*) AS sellers, count(*) FILTER (WHERE flagged) AS flagged
FROM visible_sellers WHERE {scope} GROUP BY platform ORDER BY sellers DESC, platform"""

_FLAGGED_SQL = """
SELECT s.display_name, s.platform, s.times_seen, s.created_at, r.name AS last_run,
       {newly} AS newly
FROM visible_sellers s
LEFT JOIN collection_runs r ON r.id = s.last_seen_run_id AND r.deleted_at IS NULL
WHERE s.flagged AND {scope}
ORDER BY newly DESC, s.times_seen DESC, lower(s.display_name), s.id LIMIT {limit}"""


def build(params: ReportParams, wb: Any = None) -> Page:
    """Read the report's facts, write its data files and state; ``wb``: an open
    workbench (else :func:`open_workbench`, closed before returning)."""
    own = wb is None
    wb = open_workbench() if own else wb
    try:
        return _build(wb, params)
    finally:
        if own:
            wb.close()


def _build(wb: Any, params: ReportParams) -> Page:
    out = params.output_dir
    made_at = datetime.now(UTC)
    previous = None if isinstance(params.since, date) else \
        state.find_previous(out, params.since)
    scope, values = params.chosen.sql("s")
    with wb.store.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")  # no widget in the kernel's output
        params.chosen.check(con)
        if isinstance(params.since, date):
            changes: state.Changes | None = state.changes_since_date(con, params.chosen,
                                                                     params.since)
        elif previous is not None:
            changes = state.changes_since_report(con, params.chosen, previous)
        else:
            changes = None
        sellers, flagged = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE s.flagged) FROM visible_sellers s "
            f"WHERE {scope}", values).fetchone() or (0, 0)
        platforms = con.execute(_PLATFORMS_SQL.format(scope=params.chosen.sql()[0]),
                                params.chosen.sql()[1]).df()
        runs = con.execute(_RUNS_SQL.format(period=params.period.sql())).df()
        newly = "false" if previous is None else "s." + state.NEWLY_FLAGGED_SQL
        flagged_rows = con.execute(_FLAGGED_SQL.format(
            scope=scope, newly=newly, limit=FLAGGED_ROWS), values).df()
        state.write_state(con, params.chosen, out / state.STATE)
        point = state.checkpoint(con)
        meta = dict(con.execute("SELECT key, value FROM meta WHERE key = 'server_url'")
                    .fetchall())
    platforms["share"] = (platforms["flagged"] / platforms["sellers"]).fillna(0.0)
    files = write_data(wb, params, runs, int(flagged))
    client = getattr(wb, "client", None)
    source = client.base_url if client is not None else meta.get("server_url")
    page = Page(params, made_at, source, Path(wb.store.path), point, int(sellers),
                int(flagged), platforms, runs, flagged_rows, changes, files, [])
    facts = page.facts()
    page.trend = [*state.history(out, facts["filter"]), (made_at, int(flagged), int(sellers))]
    state.write_partial(out, facts)
    return page


def write_data(wb: Any, params: ReportParams, runs: pd.DataFrame, flagged: int) -> list[Path]:
    """The data behind the report, beside it: sellers (CSV, Parquet), the flagged ones
    (CSV, when there are any), the runs (CSV)."""
    out, chosen = params.output_dir, params.chosen
    files = []
    wanted = [("sellers.csv", chosen.flagged), ("sellers.parquet", chosen.flagged)]
    if flagged:
        wanted.append(("flagged.csv", True))
    for name, which in wanted:
        report = wb.export(out / name, flagged=which, search=chosen.search,
                           where=chosen.where, source="cache", overwrite=True, progress=False)
        files.append(report.path)
    path = out / "runs.csv"
    runs.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    files.append(path)
    return files
