"""A SellerbenchError in a notebook cell, as a real kernel shows it (nbclient over
jupyter_client): one error line with what to do, the cell line that raised it and the
``%tb`` hint, not the 9.7K-character traceback chain; ``%tb`` then prints the whole
chain; other exceptions keep IPython's usual traceback. And a misspelt ``where`` column
reads the same in ``wb.sellers``, the grid's where box and the CLI."""

from __future__ import annotations

import html
import re
import socket
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from sellerbench import cli
from sellerbench.workbench import Workbench

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed on leaving: nothing listens there


def _run_cells(cells: list[str], folder: Path) -> list[list[dict[str, Any]]]:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    NotebookClient(notebook, timeout=180, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return [list(cell.outputs) for cell in notebook.cells]


def _shown(outputs: list[dict[str, Any]]) -> str:
    """What the cell's error output shows: its traceback lines, colours removed."""
    errors = [o for o in outputs if o["output_type"] == "error"]
    assert len(errors) == 1, outputs
    return ANSI.sub("", "\n".join(errors[0]["traceback"]))


@pytest.fixture(scope="module")
def kernel_outputs(
    server: Any, tmp_path_factory: pytest.TempPathFactory
) -> list[list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("kernel")
    dead = f"http://127.0.0.1:{_closed_port()}"
    return _run_cells([
        "import sellerbench as sb\n"
        f"gone = sb.connect(api_url={dead!r}, token='t', cache='gone.duckdb')",
        "x = 1\ngone.sync(progress=False)",
        "%tb",
        f"wb = sb.connect(api_url={server.url!r}, token={server.tokens['analyst']!r}, "
        "cache='cache.duckdb')\nwb.sync(progress=False);",
        "wb.sellers(where='tims_seen >= 2')",
        "1 / 0",
    ], folder)


def test_an_unreachable_api_is_one_error_line_in_a_cell(
    kernel_outputs: list[list[dict[str, Any]]],
) -> None:
    shown = _shown(kernel_outputs[1])
    lines = shown.splitlines()
    assert lines[0].startswith("TransportError: no answer from the API"), shown
    assert "check that the server at" in lines[0]  # what to do
    assert lines[1] == ("In [2], line 2: gone.sync(progress=False) · "
                        "full traceback: run %tb in the next cell")
    assert len(lines) == 2 and len(shown) < 600, shown  # it was 9.7K characters
    assert "Traceback" not in shown and "site-packages" not in shown


def test_tb_shows_the_whole_chain(kernel_outputs: list[list[dict[str, Any]]]) -> None:
    shown = _shown(kernel_outputs[2])
    assert "ConnectError" in shown  # the httpx error the TransportError was raised from
    assert "sellerbench/api" in shown and "Traceback (most recent call last)" in shown
    assert len(shown) > 3000


def test_other_errors_keep_the_usual_traceback(
    kernel_outputs: list[list[dict[str, Any]]],
) -> None:
    shown = _shown(kernel_outputs[5])
    assert "Traceback (most recent call last)" in shown and "ZeroDivisionError" in shown


WHERE_TYPO = 'the where predicate "tims_seen >= 2" names no column "tims_seen"; closest first: '


def test_a_misspelt_column_reads_the_same_in_a_cell_the_grid_and_the_cli(
    kernel_outputs: list[list[dict[str, Any]]], wb: Workbench, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    in_cell = _shown(kernel_outputs[4]).splitlines()[0]
    assert in_cell.startswith("ConfigError: " + WHERE_TYPO + "times_seen"), in_cell
    message = in_cell.removeprefix("ConfigError: ")

    wb.sync(progress=False)
    grid = wb.grid()
    try:
        grid.where_box._message(None, {"event": "submit", "value": "tims_seen >= 2"}, [])
        in_grid = html.unescape(re.sub(r"<[^>]+>", "", grid.message.value))
    finally:
        grid.close()
    assert in_grid.endswith(message), in_grid

    target = tmp_path / "typo.csv"
    code = cli.main(["export", str(target), "--where", "tims_seen >= 2",
                     "--cache", str(wb.store.path)])
    err = capsys.readouterr().err
    assert code == 2 and not target.exists()
    assert err == f"sellerbench export: {message.replace('the where', 'the --where')}\n"


def test_a_syntax_error_quotes_what_was_typed(wb: Workbench) -> None:
    from sellerbench.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        wb.sellers(where="times_seen >")
    message = str(caught.value)
    assert message.startswith('the where predicate "times_seen >" is not valid SQL: '
                              'syntax error at or near ">" at character 12; ')
    assert '")"' not in message  # the parentheses the filter wraps it in are never shown
