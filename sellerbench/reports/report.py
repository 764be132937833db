"""Report notebooks: run the report notebook headless, write offline HTML.

    sellerbench report --flagged-only --since 2024-05-01 --output report/

``run_report`` executes ``sellerbench/report.ipynb`` (shipped inside the package; its
``parameters`` cell holds ``flagged_only``, ``since`` and ``output_dir``) with papermill
in a Python kernel of this very environment, working in the output folder, then converts
the executed notebook to one HTML file without code cells. The page says when it was
made, from which API and cache. The charts are SVG images embedded in the page (base64)
whose text stays text, so the reader's browser draws seller names in any script with its
own fonts (a PNG would need a CJK font on the machine that made it). The page loads
nothing from the network: no require.js, MathJax, widget or mermaid scripts from a CDN,
so it opens offline, from a mail attachment or a file share. The data files the notebook
writes (``sellers.csv``, ``sellers.parquet``, ``runs.csv``) sit beside ``report.html``,
linked from it. A folder that already holds a report is left alone unless
``overwrite=True`` (``sellerbench report --overwrite``), as with exports.

The helpers the notebook calls live here too, so they are tested without a kernel:
``open_workbench``, ``collect`` (the frames), the three ``plot_*`` functions and
``write_data``.
"""

from __future__ import annotations

import base64
import contextlib
import html as html_text
import io
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ExportError

__all__ = [
    "NOTEBOOK",
    "OUTPUTS",
    "Chart",
    "ReportData",
    "ReportParams",
    "ReportResult",
    "collect",
    "external_references",
    "file_links",
    "open_workbench",
    "plot_flagged_share",
    "plot_sellers_per_run",
    "plot_top_sellers",
    "provenance",
    "run_report",
    "write_data",
]

# Package data (pyproject's [tool.setuptools.package-data]): found wherever we are installed.
NOTEBOOK = Path(__file__).resolve().with_name("report.ipynb")
# What a report writes into its folder; an existing one is kept unless asked.
OUTPUTS = ("report.html", "report.ipynb", "sellers.csv", "sellers.parquet", "runs.csv")
KERNEL_NAME = "python3"
OWN_KERNEL_NAME = "sellerbench-python3"
TOP_SELLERS = 15

# The lab template with every block that would fetch a script from a CDN left empty.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
_TEMPLATE_FILE = "sellerbench_offline.html.j2"


# -- parameters and data ------------------------------------------------------------------


@dataclass(frozen=True)
class ReportParams:
    """The notebook's parameters, checked: ``since`` a date, ``output_dir`` a folder."""

    flagged_only: bool
    since: date | None
    output_dir: Path

    @classmethod
    def of(cls, flagged_only: object, since: object, output_dir: object) -> ReportParams:
        if not isinstance(flagged_only, bool):
            raise ExportError(f"flagged_only must be True or False, not {flagged_only!r}")
        folder = Path(str(output_dir)) if output_dir else default_output_dir()
        folder.mkdir(parents=True, exist_ok=True)
        return cls(flagged_only, parse_since(since), folder.resolve())

    @property
    def flagged(self) -> bool | None:
        return True if self.flagged_only else None

    @property
    def since_sql(self) -> str | None:
        """A predicate for wb.export: ``since`` is a checked date, so the literal is safe."""
        return f"updated_at >= TIMESTAMPTZ '{self.since.isoformat()} 00:00:00+00'" \
            if self.since else None


def parse_since(since: object) -> date | None:
    """``since`` as a date (None, a date, or text like 2024-05-01), else ExportError."""
    if since is None or since == "":
        return None
    if isinstance(since, date):
        return since
    try:
        return date.fromisoformat(str(since))
    except ValueError:
        raise ExportError(f"since must be a date like 2024-05-01, not {since!r}") from None


def default_output_dir() -> Path:
    """Where the notebook writes its data files when run by hand without ``output_dir``."""
    return Path(tempfile.gettempdir()) / "sellerbench-report"


@dataclass
class ReportData:
    """The frames behind the report (pending changes applied, filters applied)."""

    sellers: pd.DataFrame
    runs: pd.DataFrame
    platforms: pd.DataFrame
    top: pd.DataFrame
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    tied: int = 0  # sellers left out of ``top`` though seen as often as its last one


def open_workbench() -> Any:
    """The API in SELLERBENCH_API_URL (synced), else the cache in SELLERBENCH_CACHE
    (offline), else a demo server with demo data (synced)."""
    import sellerbench as sb

    if os.environ.get("SELLERBENCH_API_URL"):
        wb = sb.connect()
    elif os.environ.get("SELLERBENCH_CACHE"):
        return sb.connect(read_only=True)  # a report reads the cache, never changes it
    else:
        wb = sb.demo()
    wb.sync(progress=False)
    return wb


def collect(wb: Any, params: ReportParams) -> ReportData:
    """Read the report's frames from the cache (what the analyst sees) in one connection."""
    since = [params.since.isoformat()] if params.since else []
    sellers_sql = "SELECT * FROM visible_sellers WHERE " + " AND ".join(
        ["TRUE"]
        + (["flagged"] if params.flagged_only else [])
        + (["updated_at >= ?::DATE::TIMESTAMPTZ"] if since else [])
    )
    runs_sql = (
        "SELECT name, status, coalesce(started_at, created_at) AS started_at, sellers_found, "
        "sellers_new FROM collection_runs WHERE deleted_at IS NULL"
        + (" AND coalesce(started_at, created_at) >= ?::DATE::TIMESTAMPTZ" if since else "")
        + " ORDER BY coalesce(started_at, created_at), name"
    )
    with wb.store.connect() as con:
        con.execute("SET TimeZone = 'UTC'")  # a date means midnight UTC
        sellers = con.sql(sellers_sql, params=since).to_arrow_table()
        runs = con.sql(runs_sql, params=since).to_arrow_table()
    sellers, runs = sellers.to_pandas(), runs.to_pandas()
    # Many sellers share a count: ties go by name, so the same ones show every time.
    ranked = sellers.assign(_name=sellers["display_name"].str.casefold()).sort_values(
        ["times_seen", "_name", "id"], ascending=[False, True, True], na_position="last"
    )
    top = ranked.head(TOP_SELLERS)
    tied = 0
    if len(top) == TOP_SELLERS and len(ranked) > TOP_SELLERS:
        last = top["times_seen"].iloc[-1]
        tied = int((ranked["times_seen"].iloc[TOP_SELLERS:] == last).sum())
    summary = pd.DataFrame(
        {
            "sellers": [len(sellers)],
            "flagged": [int(sellers["flagged"].sum())],
            "platforms": [sellers["platform"].nunique()],
            "runs": [len(runs)],
            "flagged only": [params.flagged_only],
            "since": [params.since.isoformat() if params.since else "all time"],
        }
    )
    return ReportData(
        sellers,
        runs,
        _platform_share(sellers),
        top[["id", "display_name", "platform", "times_seen", "flagged"]].reset_index(drop=True),
        summary,
        tied,
    )


def provenance(wb: Any, params: ReportParams, data: ReportData) -> str:
    """The report's first lines (Markdown): what it covers, when it was made, from which
    API and cache, and when that cache last synced. Never the token."""
    scope = "flagged only" if params.flagged_only else "flagged or not"
    period = f"since {params.since:%d %B %Y}" if params.since else "all time"
    made = datetime.now(UTC).strftime("%d %B %Y, %H:%M UTC")
    api = wb.client.base_url if getattr(wb, "client", None) is not None else None
    synced = None
    with contextlib.suppress(Exception):  # an old cache without a sync row says "never"
        synced = wb.status().get("last_sync")
    source = f"the API at `{api}`" if api else "the cache alone (no API, offline)"
    return (
        f"**{len(data.sellers):,} sellers** ({scope}) and **{len(data.runs):,} collection "
        f"runs**, {period}.\n\n"
        f"Made on {made} from {source}; cache `{wb.store.path}`, last synced "
        f"{synced.replace('T', ' ')[:16] + ' UTC' if synced else 'never'}."
    )


def file_links(files: Sequence[Path]) -> str:
    """The data files as a Markdown list of links, relative to the report beside them."""
    return "\n".join(
        f"- [{path.name}]({path.name}) ({path.stat().st_size:,} bytes)" for path in files
    )


def _platform_share(sellers: pd.DataFrame) -> pd.DataFrame:
    if sellers.empty:
        return pd.DataFrame({"platform": [], "sellers": [], "flagged": [], "share": []})
    grouped = sellers.groupby("platform", sort=True)["flagged"]
    frame = pd.DataFrame({"sellers": grouped.size(), "flagged": grouped.sum().astype(int)})
    frame["share"] = frame["flagged"] / frame["sellers"]
    return frame.reset_index()


# -- plots (PNG, so the HTML embeds them) ------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    """A rendered chart as SVG whose text is text: shows inline in a notebook, embeds as
    a base64 image in the HTML. The reader's browser draws the names with its fonts."""

    svg: str
    title: str

    def _repr_svg_(self) -> tuple[str, dict[str, str]]:
        return self.svg, {"alt": self.title}  # the HTML report's alt text

    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode()).decode()


# DejaVu Sans (matplotlib's own) sets the layout; the browser falls back per glyph to the
# reader's fonts for scripts it lacks (CJK, Arabic, ...), since the SVG keeps text as text.
_FONTS = ["DejaVu Sans", "sans-serif"]


def _figure(title: str, height: float = 3.6) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    figure = Figure(figsize=(8, height), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, loc="left", fontsize=12, fontweight="bold")
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


_SVG_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


def _chart(figure: Any, title: str) -> Chart:
    import matplotlib

    buffer = io.StringIO()
    with warnings.catch_warnings(), matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": "sellerbench", "font.family": _FONTS}
    ):
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    # No XML prolog, DOCTYPE (it names a URL) or RDF block: the page needs none of them.
    svg = _SVG_METADATA.sub("", _SVG_PROLOG.sub("", buffer.getvalue()))
    return Chart(svg, title)


def _label(name: object, width: int) -> str:
    """A seller or run name fit for an axis: one line, control characters as spaces."""
    text = "".join(c if c.isprintable() else " " for c in str(name)).strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def _empty(axes: Any, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes,
              fontsize=11, color="#666666")
    axes.set_xticks([])
    axes.set_yticks([])


def plot_sellers_per_run(runs: pd.DataFrame) -> Chart:
    """One bar per run, oldest first: sellers found, and the part found for the first time."""
    title = "Sellers found per run"
    figure, axes = _figure(title)
    if runs.empty:
        _empty(axes, "no collection runs in this period")
        return _chart(figure, title)
    labels = [_label(n, 28) for n in runs["name"]]
    found = runs["sellers_found"].fillna(0).astype(int)
    new = runs["sellers_new"].fillna(0).astype(int)
    axes.bar(range(len(runs)), found, color="#4C78A8", label="found")
    axes.bar(range(len(runs)), new, color="#F58518", label="of which new")
    axes.set_xticks(range(len(runs)), labels, rotation=45, ha="right", fontsize=8)
    axes.set_ylabel("sellers")
    axes.legend(frameon=False)
    return _chart(figure, title)


def plot_flagged_share(platforms: pd.DataFrame) -> Chart:
    """Per platform, the share of sellers flagged, with the counts written beside the bar."""
    title = "Flagged share by platform"
    figure, axes = _figure(title, height=0.6 + 0.5 * max(len(platforms), 2))
    if platforms.empty:
        _empty(axes, "no sellers")
        return _chart(figure, title)
    shares = platforms["share"] * 100
    bars = axes.barh(platforms["platform"], shares, color="#E45756")
    for bar, flagged, total in zip(bars, platforms["flagged"], platforms["sellers"], strict=True):
        axes.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2,
                  f"{flagged:,} of {total:,}", va="center", fontsize=9)
    axes.set_xlim(0, 110)
    axes.set_xlabel("% of sellers flagged")
    axes.invert_yaxis()
    return _chart(figure, title)


def _distinct_labels(top: pd.DataFrame, width: int) -> list[str]:
    """One label per seller: a name cut to ``width``, with the platform and the id's
    start added where two labels would read the same."""
    labels = [_label(n, width) for n in top["display_name"]]
    seen: dict[str, int] = {}
    for label in labels:
        seen[label.casefold()] = seen.get(label.casefold(), 0) + 1
    return [
        label if seen[label.casefold()] == 1 else
        f"{_label(label, width - 16)} ({platform} {str(sid)[:6]})"
        for label, platform, sid in zip(labels, top["platform"], top["id"], strict=True)
    ]


def plot_top_sellers(top: pd.DataFrame, tied: int = 0) -> Chart:
    """One bar per seller, its count written on it, ties in name order; ``tied`` sellers
    seen as often as the last bar but left out are said under the chart."""
    title = f"Top {TOP_SELLERS} sellers by times seen"
    figure, axes = _figure(title, height=1.0 + 0.3 * max(len(top), 3))
    if top.empty:
        _empty(axes, "no sellers")
        return _chart(figure, title)
    colours = ["#E45756" if f else "#54A24B" for f in top["flagged"]]
    seen = top["times_seen"].fillna(0).astype(int)
    positions = list(range(len(top)))
    bars = axes.barh(positions, seen, color=colours)
    axes.set_yticks(positions, _distinct_labels(top, 40), fontsize=8)
    for bar, count in zip(bars, seen, strict=True):
        axes.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {count:,}",
                  va="center", fontsize=8)
    axes.set_xlim(0, max(int(seen.max()), 1) * 1.12)
    note = (f"; {tied:,} more seller(s) seen {int(seen.iloc[-1]):,} times are not shown"
            if tied else "")
    axes.set_xlabel(f"times seen (red: flagged){note}")
    axes.invert_yaxis()
    return _chart(figure, title)


def write_data(wb: Any, params: ReportParams, data: ReportData) -> list[Path]:
    """The data behind the report, beside it: sellers as CSV and Parquet, runs as CSV."""
    out = params.output_dir
    files = []
    for name in ("sellers.csv", "sellers.parquet"):
        report = wb.export(out / name, flagged=params.flagged, where=params.since_sql,
                           source="cache", overwrite=True, progress=False)
        files.append(report.path)
    runs = out / "runs.csv"
    data.runs.to_csv(runs, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    files.append(runs)
    return files


# -- running the notebook --------------------------------------------------------------------


@dataclass(frozen=True)
class ReportResult:
    """Where the report went."""

    html: Path
    notebook: Path
    files: list[Path]
    seconds: float

    def __str__(self) -> str:
        extra = ", ".join(p.name for p in self.files)
        return f"report written to {self.html} in {self.seconds:.1f} s (with {extra})"


def run_report(
    output_dir: str | os.PathLike[str],
    *,
    flagged_only: bool = False,
    since: str | date | None = None,
    notebook: str | os.PathLike[str] | None = None,
    api_url: str | None = None,
    token: str | None = None,
    cache: str | os.PathLike[str] | None = None,
    timeout: float = 600,
    progress: bool = False,
    overwrite: bool = False,
) -> ReportResult:
    """Execute the report notebook headless and write ``report.html`` into ``output_dir``.

    Args:
        output_dir: the folder for ``report.html``, the executed notebook and the data
            files (created when missing).
        flagged_only: only flagged sellers.
        since: only runs started and sellers changed on or after this day (UTC).
        notebook: another report notebook with the same ``parameters`` cell.
        api_url, token, cache: reach the kernel as SELLERBENCH_* variables (never as
            notebook parameters, so the token is not written into the notebook). With
            none of them set anywhere, the notebook starts a demo server.
        timeout: seconds one cell may run.
        progress: show papermill's progress bar.
        overwrite: replace a report already in ``output_dir`` (else ExportError).
    """
    started = time.perf_counter()
    source = Path(notebook) if notebook else NOTEBOOK
    if not source.is_file():
        raise ExportError(f"the report notebook {source} is missing; pass notebook=PATH")
    when = parse_since(since)
    out = Path(output_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; the report needs a folder")
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not overwrite:
        raise ExportError(
            f"{out} already holds a report ({', '.join(existing)}); pass overwrite=True "
            f"to replace it, or choose another folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    executed = out / "report.ipynb"
    parameters = {
        "flagged_only": bool(flagged_only),
        "since": when.isoformat() if when else None,
        "output_dir": str(out),
    }
    settings = {"SELLERBENCH_API_URL": api_url, "SELLERBENCH_TOKEN": token,
                "SELLERBENCH_CACHE": str(cache) if cache else None}
    with _environment(settings):
        _execute(source, executed, parameters, timeout, progress, out)
    html = out / "report.html"
    write_html(executed, html)
    files = [p for p in (out / "sellers.csv", out / "sellers.parquet", out / "runs.csv")
             if p.exists()]
    return ReportResult(html, executed, files, time.perf_counter() - started)


@contextlib.contextmanager
def _environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set the given variables for the kernel we start, then put everything back."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            if value is not None:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _execute(source: Path, executed: Path, parameters: dict[str, Any], timeout: float,
             progress: bool, workdir: Path) -> None:
    import papermill

    try:
        name = kernel_name()
        with tempfile.TemporaryDirectory(prefix="sellerbench-kernel-") as sockets:
            papermill.execute_notebook(
                str(source), str(executed), parameters=parameters, kernel_name=name,
                progress_bar=progress, log_output=False, execution_timeout=timeout,
                cwd=str(workdir), km=_kernel_manager(name, Path(sockets)),
            )
    except papermill.PapermillExecutionError as exc:
        raise ExportError(
            f"the report notebook failed in cell {exc.exec_count}: {exc.ename}: "
            f"{exc.evalue}; the executed notebook is at {executed}"
        ) from exc


def _kernel_manager(name: str, sockets: Path) -> Any:
    """Talk to the kernel over Unix sockets in a private folder where the system has them:
    no TCP port is opened, and ipykernel has no unencrypted-TCP warning to print."""
    from jupyter_client.manager import KernelManager

    if os.name != "posix":
        return KernelManager(kernel_name=name)
    return KernelManager(kernel_name=name, transport="ipc", ip=str(sockets / "kernel"))


def kernel_name() -> str:
    """A kernel that runs this interpreter: ``python3`` when it does, else one we register.

    jupyter_client runs a spec whose command is plain ``python`` with sys.executable; a
    spec naming another interpreter (a user-wide ``python3`` from another install)
    would lack sellerbench, so we then install our own spec into this environment.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    for name in (KERNEL_NAME, OWN_KERNEL_NAME):
        try:
            spec = manager.get_kernel_spec(name)
        except NoSuchKernel:
            continue
        if _runs_this_python(spec.argv):
            return name
    from ipykernel.kernelspec import install

    install(kernel_name=OWN_KERNEL_NAME, display_name="Python 3 (sellerbench)",
            prefix=sys.prefix)
    return OWN_KERNEL_NAME


def _runs_this_python(argv: list[str]) -> bool:
    if not argv:
        return False
    major, minor = sys.version_info[:2]
    if argv[0] in ("python", f"python{major}", f"python{major}.{minor}"):
        return True  # jupyter_client substitutes sys.executable
    try:
        return Path(argv[0]).resolve() == Path(sys.executable).resolve()
    except OSError:
        return False


# -- HTML ------------------------------------------------------------------------------------


def write_html(executed: Path, html: Path) -> None:
    """Convert the executed notebook to offline HTML without code, written atomically."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(executed, as_version=4)
    for cell in notebook.cells:  # warnings and progress bars are not part of the report
        if cell.get("cell_type") == "code":
            cell["outputs"] = [_svg_as_image(o) for o in cell.get("outputs", [])
                               if o.get("name") != "stderr"]
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({_TEMPLATE_FILE: _OFFLINE_TEMPLATE})],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.template_file = _TEMPLATE_FILE
    body, _ = exporter.from_notebook_node(
        notebook, resources={"metadata": {"name": "Seller report"}}
    )
    found = external_references(body)
    if found:
        raise ExportError(f"the report would load from the network: {', '.join(found[:3])}")
    tmp = html.with_name(f".{html.name}.part")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, html)


def _svg_as_image(output: Any) -> Any:
    """An SVG chart as an <img> with a data URI: one self-contained image with its alt
    text, rather than markup inlined into the page."""
    data = output.get("data", {})
    if "image/svg+xml" not in data:
        return output
    svg = data["image/svg+xml"]
    alt = output.get("metadata", {}).get("image/svg+xml", {}).get("alt", "chart")
    uri = Chart(svg if isinstance(svg, str) else "".join(svg), alt).data_uri()
    output["data"] = {"text/html": f'<img alt="{html_text.escape(alt)}" src="{uri}">'}
    output["metadata"] = {}
    return output


_EXTERNAL = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]+)"""
    r"""|@import\s+(?:url\()?\s*["']?((?:https?:)?//[^"')\s]+)"""
    r"""|\bimport\s*\(\s*["']((?:https?:)?//[^"']+)""",
    re.IGNORECASE,
)


def external_references(html: str) -> list[str]:
    """Every script, stylesheet, image, CSS import or JS import the page would fetch."""
    return [next(g for g in match.groups() if g) for match in _EXTERNAL.finditer(html)]
