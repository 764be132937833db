"""Report notebooks: run the report notebook headless, write one HTML page a manager reads.

    sellerbench report --flagged --period 30d --title "Weekly sellers" --output reports/w49

``run_report`` executes ``sellerbench/reports/report.ipynb`` (shipped inside the
package; its ``parameters`` cell holds the title, the filter, the period, ``since`` and
the output folder) with papermill in a Python kernel of this very environment, then
converts the executed notebook to one HTML file without code: its own small stylesheet,
charts as SVG images inside the page, no script, laid out for A4 and for a phone. The
kernel is shut down and waited for before ``run_report`` returns (papermill leaves a
kernel it did not start running), so no process is left behind.

Beside ``report.html`` the folder holds the data files (``sellers.csv``,
``sellers.parquet``, ``flagged.csv``, ``runs.csv``), the executed notebook, the sellers'
state and ``manifest.json`` (report_state.py), which the next report reads to say what
changed. ``since`` is a previous report, a day, or by default the newest report beside
this one. ``pdf=True`` prints the same HTML to ``report.pdf`` on A4 with the system's
Chromium. The page hides the API's address and local paths unless ``provenance=True``.

The content (sentences, tables, charts) is built in report_page.py, report_charts.py
and report_words.py, tested without a kernel.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypedDict

from ..cache.filters import SellerFilter
from ..errors import ConfigError, ExportError
from . import report_state
from .report_page import Period, parse_since

__all__ = [
    "NOTEBOOK",
    "OUTPUTS",
    "ReportOptions",
    "ReportResult",
    "external_references",
    "kernel_name",
    "run_report",
    "write_html",
    "write_pdf",
]

# Package data (pyproject's [tool.setuptools.package-data]): found wherever we are installed.
NOTEBOOK = Path(__file__).resolve().with_name("report.ipynb")
# What a report writes into its folder; an existing one is kept unless asked.
OUTPUTS = ("report.html", "report.pdf", "report.ipynb", "manifest.json", "state.parquet",
           "sellers.csv", "sellers.parquet", "flagged.csv", "runs.csv")
KERNEL_NAME = "python3"
OWN_KERNEL_NAME = "sellerbench-python3"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# The page's look: one column as wide as A4's text (17 cm), readable on a phone.
STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       color: #1d1d1d; background: #fff; margin: 0 auto; padding: 1.2rem;
       max-width: 17cm; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem; border-bottom: 1px solid #ddd;
     padding-bottom: .2rem; break-after: avoid; }
.meta, .note, footer { color: #555; font-size: .85rem; }
.summary p { margin: .5rem 0; font-size: 1rem; }
.summary { border-left: 4px solid #4C78A8; padding: .1rem .8rem; background: #f6f8fb; }
figure { margin: .5rem 0; break-inside: avoid; }
figure img { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; margin: .4rem 0; }
th, td { text-align: left; padding: .25rem .4rem; border-bottom: 1px solid #e6e6e6;
         vertical-align: top; white-space: nowrap; }
td.name, th.name { white-space: normal; overflow-wrap: anywhere; min-width: 7em; }
th { background: #f3f3f3; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr { break-inside: avoid; }
tr.failed td { color: #B00000; font-weight: 600; }
tr.cancelled td { color: #6b6b6b; }
a { color: #1f5fa8; }
@page { size: A4; margin: 2cm; }
@media print { body { padding: 0; max-width: none; font-size: 11pt; }
               .summary { background: none; } }
@media screen and (max-width: 600px) {
  body { padding: .7rem; font-size: 14px; }
  table { font-size: .78rem; display: block; overflow-x: auto; }  /* the table scrolls */
}
"""


@dataclass(frozen=True)
class ReportResult:
    """Where the report went."""

    html: Path
    notebook: Path
    files: list[Path]
    seconds: float
    manifest: Path | None = None
    pdf: Path | None = None

    def __str__(self) -> str:
        extra = ", ".join(p.name for p in self.files)
        pdf = f" and {self.pdf.name}" if self.pdf else ""
        return f"report written to {self.html}{pdf} in {self.seconds:.1f} s (with {extra})"


class ReportOptions(TypedDict, total=False):
    """What ``wb.report()`` hands on to :func:`run_report` (whose defaults they take)."""

    title: str | None
    flagged: bool | None
    search: str | None
    where: str | None
    period: str | None
    since: str | date | os.PathLike[str] | None
    provenance: bool
    pdf: bool
    overwrite: bool


def run_report(
    output_dir: str | os.PathLike[str],
    *,
    title: str | None = None,
    flagged: bool | None = None,
    search: str | None = None,
    where: str | None = None,
    period: str | None = None,
    since: str | date | os.PathLike[str] | None = None,
    provenance: bool = False,
    pdf: bool = False,
    notebook: str | os.PathLike[str] | None = None,
    api_url: str | None = None,
    token: str | None = None,
    cache: str | os.PathLike[str] | None = None,
    timeout: float = 600,
    progress: bool = False,
    overwrite: bool = False,
    flagged_only: bool | None = None,
) -> ReportResult:
    """Execute the report notebook headless and write ``report.html`` into ``output_dir``.

    Args:
        output_dir: the report's folder (created when missing); reports kept side by
            side in one parent folder compare with each other.
        title: the page's heading (default "Seller report").
        flagged, search, where: the seller filter, as in ``wb.sellers`` and exports.
        period: which runs: ``30d``, ``2026-11-01`` or ``2026-11-01..2026-11-30``.
        since: what the changes are counted from: a previous report's folder (or its
            report.html), a day (``YYYY-MM-DD``), or None: the newest report beside.
        provenance: show the API's address and the cache's path on the page.
        pdf: also print the page to ``report.pdf`` (A4) with the system's Chromium.
        notebook: another report notebook with the same ``parameters`` cell.
        api_url, token, cache: reach the kernel as SELLERBENCH_* variables (never as
            notebook parameters, so the token is not written into the notebook). With
            none of them set anywhere, the notebook starts a demo server.
        timeout: seconds one cell may run.
        progress: show papermill's progress bar.
        overwrite: replace a report already in ``output_dir`` (else ExportError).
        flagged_only: the old spelling of ``flagged=True``.
    """
    started = time.perf_counter()
    source = Path(notebook) if notebook else NOTEBOOK
    if not source.is_file():
        raise ExportError(f"the report notebook {source} is missing; pass notebook=PATH")
    if flagged_only:
        flagged = True
    checked_since = parse_since(since)
    Period.parse(period)  # ConfigError before a kernel starts
    _check_filter(SellerFilter(flagged=flagged, search=search, where=where), cache)
    if title is not None and (not isinstance(title, str) or not title.strip()):
        raise ConfigError(f"title must be some text, not {title!r}")
    if pdf:
        chromium()  # ConfigError when there is none, before the report is made
    out = Path(output_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; the report needs a folder")
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not overwrite:
        raise ExportError(
            f"{out} already holds a report ({', '.join(existing)}); pass overwrite=True "
            f"(--overwrite) to replace it, or choose another folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    # The report to compare with is found here, so a wrong --since is said before a
    # kernel starts, and a report about to be replaced can still be the one.
    previous = None if isinstance(checked_since, date) else \
        report_state.find_previous(out, checked_since)
    kept = _keep(previous.folder) if previous and previous.folder == out else None
    for name in ("report.pdf", report_state.MANIFEST):  # a replaced report is re-made whole
        (out / name).unlink(missing_ok=True)
    compare = checked_since if isinstance(checked_since, date) else \
        (kept or (previous.folder if previous else None))
    executed = out / "report.ipynb"
    parameters = {
        "title": title, "flagged": flagged, "search": search, "where": where,
        "period": None if period is None else str(period), "provenance": bool(provenance),
        "since": None if compare is None else str(compare), "output_dir": str(out),
    }
    settings = {"SELLERBENCH_API_URL": api_url, "SELLERBENCH_TOKEN": token,
                "SELLERBENCH_CACHE": str(cache) if cache else None}
    try:
        with _environment(settings):
            _execute(source, executed, parameters, timeout, progress, out)
    finally:
        if kept is not None:
            shutil.rmtree(kept.parent, ignore_errors=True)
    html = out / "report.html"
    write_html(executed, html, report_state.partial_title(out))
    printed = None
    if pdf:
        printed = out / "report.pdf"
        write_pdf(html, printed)
    files = [out / name for name in ("sellers.csv", "sellers.parquet", "flagged.csv",
                                     "runs.csv") if (out / name).exists()]
    manifest = report_state.write_manifest(
        out, [html, *([printed] if printed else []), *files])
    return ReportResult(html, executed, files, time.perf_counter() - started, manifest,
                        printed)


def _check_filter(chosen: SellerFilter, cache: str | os.PathLike[str] | None) -> None:
    """A ``where`` that names no column of the cache: ConfigError now, not from a kernel."""
    path = Path(cache) if cache else None
    if chosen.where is None or path is None or not path.is_file():
        return
    from ..cache.store import Store

    with Store(path, read_only=True).connect() as con:
        chosen.check(con)


def _keep(folder: Path) -> Path:
    """A report about to be replaced, kept to compare with: its manifest and state are
    copied to a temporary folder for the run (removed after)."""
    keep = Path(tempfile.mkdtemp(prefix="sellerbench-previous-")) / folder.name
    keep.mkdir()
    for name in (report_state.MANIFEST, report_state.STATE):
        shutil.copy2(folder / name, keep / name)
    return keep
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

    name = kernel_name()
    with tempfile.TemporaryDirectory(prefix="sellerbench-kernel-") as sockets:
        km = _kernel_manager(name, Path(sockets))
        try:
            papermill.execute_notebook(
                str(source), str(executed), parameters=parameters, kernel_name=name,
                progress_bar=progress, log_output=False, execution_timeout=timeout,
                cwd=str(workdir), km=km,
            )
        except papermill.PapermillExecutionError as exc:
            raise ExportError(
                f"the report notebook failed in cell {exc.exec_count}: {exc.ename}: "
                f"{exc.evalue}; the executed notebook is at {executed}"
            ) from None
        finally:
            stop_kernel(km)


def stop_kernel(km: Any, grace: float = 5.0) -> None:
    """Shut the kernel down and wait for it: papermill (nbclient) leaves a kernel whose
    manager it was handed running, ~300 MB for minutes. A kernel that does not leave
    within ``grace`` seconds is killed with its process group."""
    if not km.has_kernel:
        return
    process = getattr(km.provisioner, "process", None)
    pid = getattr(process, "pid", None)
    with contextlib.suppress(Exception):  # a kernel that died: only its process may remain
        km.shutdown_kernel(now=False)
    if pid is None:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(pid), signal.SIGKILL) if os.name == "posix" \
                else os.kill(pid, signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        waited = pid  # reaped already (by the provisioner)
    except OSError:
        return False
    if waited == pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


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




# -- HTML and PDF ----------------------------------------------------------------------------


def write_html(executed: Path, html: Path, title: str = "Seller report") -> None:
    """The executed notebook as one page without code, written atomically: the outputs
    of its cells (HTML fragments) and its Markdown, inside this module's stylesheet."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(executed, as_version=4)
    notebook.metadata.pop("widgets", None)  # DuckDB's progress bars in the kernel
    for cell in notebook.cells:  # only what the page shows: no stderr, no progress bars
        if cell.get("cell_type") == "code":
            cell["outputs"] = [o for o in cell.get("outputs", [])
                               if "text/html" in o.get("data", {})]
    exporter = HTMLExporter(template_name="basic", exclude_input=True,
                            exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(notebook)
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{_plain(body)}</body></html>\n"
    )
    found = external_references(page)
    if found or re.search(r"<script\b", page, re.IGNORECASE):
        raise ExportError(
            f"the report would run a script or load from the network "
            f"({', '.join(found[:3]) or '<script>'}); remove that output from the notebook"
        )
    tmp = html.with_name(f".{html.name}.part")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, html)


def _escape(text: object) -> str:
    import html as html_text

    return html_text.escape(str(text))


_WRAPPERS = re.compile(r"</?div\b[^>]*>", re.IGNORECASE)


def _plain(body: str) -> str:
    """nbconvert's cell and output wrappers are layout for a notebook, not a page."""
    return re.sub(r"\n\s*\n+", "\n", _WRAPPERS.sub("", body))


def chromium() -> str:
    """The system's Chromium: SELLERBENCH_CHROMIUM, else the first on PATH."""
    named = os.environ.get("SELLERBENCH_CHROMIUM")
    if named:
        if not Path(named).is_file():
            raise ConfigError(f"SELLERBENCH_CHROMIUM={named} is not a file; point it at "
                              f"a Chromium or Chrome executable")
        return named
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise ConfigError("a PDF needs Chromium: install it (apt-get install chromium) or set "
                      "SELLERBENCH_CHROMIUM to its executable")


def write_pdf(html: Path, pdf: Path) -> None:
    """Print ``html`` to ``pdf`` on A4 with the system's Chromium, as nbconvert's webpdf
    exporter does (Playwright, print media, ``page.pdf``), but with the browser's path:
    webpdf launches only a browser Playwright downloaded, which cannot be done here."""
    executable = chromium()
    failure: list[BaseException] = []

    def render() -> None:  # Playwright's sync API needs a thread without an asyncio loop
        try:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=executable, handle_sigint=False, handle_sigterm=False,
                    handle_sighup=False,
                    args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update"])
                try:
                    page = browser.new_page()
                    page.route("**/*", lambda route: route.continue_()
                               if route.request.url.startswith(("file:", "data:"))
                               else route.abort())
                    page.goto(html.as_uri(), wait_until="load")
                    page.emulate_media(media="print")
                    tmp = pdf.with_name(f".{pdf.name}.part")
                    page.pdf(path=str(tmp), format="A4", print_background=True,
                             prefer_css_page_size=True)
                    os.replace(tmp, pdf)
                finally:
                    browser.close()
        except BaseException as exc:  # told on the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=render, name="sellerbench-pdf", daemon=True)
    worker.start()
    worker.join()
    if failure:
        said = str(failure[0]).strip()
        raise ExportError(
            f"the PDF could not be printed with {executable}: "
            f"{said.splitlines()[0] if said else repr(failure[0])}; the HTML report is at {html}"
        ) from None


_EXTERNAL = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]+)"""
    r"""|@import\s+(?:url\()?\s*["']?((?:https?:)?//[^"')\s]+)"""
    r"""|\bimport\s*\(\s*["']((?:https?:)?//[^"']+)""",
    re.IGNORECASE,
)


def external_references(html: str) -> list[str]:
    """Every script, stylesheet, image, CSS import or JS import the page would fetch."""
    return [next(g for g in match.groups() if g) for match in _EXTERNAL.finditer(html)]
