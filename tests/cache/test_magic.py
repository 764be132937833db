"""%sql / %%sql over the cache, run through a real IPython shell."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from sellerbench.errors import SellerbenchError
from sellerbench.magic import bind_parameters
from sellerbench.workbench import Workbench


@pytest.fixture
def shell(wb: Workbench) -> Iterator[InteractiveShell]:
    wb.sync(progress=False)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "sellerbench.magic")
    ip.user_ns["wb"] = wb
    yield ip
    ip.user_ns.clear()
    InteractiveShell.clear_instance()


def test_line_magic_returns_a_frame(shell: InteractiveShell, wb: Workbench) -> None:
    df = shell.run_line_magic("sql", "SELECT count(*) AS n FROM visible_sellers")
    assert isinstance(df, pd.DataFrame) and df["n"].iloc[0] == wb.status()["sellers"]


def test_cell_magic_binds_notebook_variables(shell: InteractiveShell, wb: Workbench) -> None:
    shell.user_ns["min_seen"] = 3
    shell.user_ns["wanted"] = True
    df = shell.run_cell_magic(
        "sql", "-o busy",
        "SELECT id, times_seen::BIGINT AS seen FROM visible_sellers\n"
        "WHERE times_seen >= :min_seen AND flagged = :wanted  -- :not_a_param\n"
        "AND display_name <> ':also_not'",
    )
    assert shell.user_ns["busy"] is df
    assert (df["seen"] >= 3).all() and df["id"].dtype == pd.StringDtype()
    expected = wb.sellers(flagged=True)
    assert len(df) == int((expected["times_seen"] >= 3).sum())


def test_magic_output_in_a_cell(shell: InteractiveShell) -> None:
    result = shell.run_cell("%sql SELECT 41 + 1 AS answer")
    assert result.success and result.result["answer"].iloc[0] == 42


def test_magic_refuses_writes_and_unknown_variables(shell: InteractiveShell) -> None:
    with pytest.raises(SellerbenchError, match="read-only"):
        shell.run_line_magic("sql", "DELETE FROM sellers")
    with pytest.raises(SellerbenchError, match="no variable 'nowhere'"):
        shell.run_line_magic("sql", "SELECT :nowhere")
    with pytest.raises(SellerbenchError, match="unknown %sql option"):
        shell.run_line_magic("sql", "-x SELECT 1")


def test_which_cache(shell: InteractiveShell, wb: Workbench, tmp_path: Any) -> None:
    path = str(wb.store.path)
    by_path = shell.run_line_magic("sql", f"-c '{path}' SELECT count(*) AS n FROM sellers")
    by_name = shell.run_line_magic("sql", "-w wb SELECT count(*) AS n FROM sellers")
    assert by_path["n"].iloc[0] == by_name["n"].iloc[0] > 0
    shell.user_ns["second"] = Workbench(wb.store.__class__(tmp_path / "other.duckdb"), None)
    with pytest.raises(SellerbenchError, match="several workbenches"):
        shell.run_line_magic("sql", "SELECT 1")
    with pytest.raises(SellerbenchError, match="no Workbench"):
        shell.run_line_magic("sql", "-w nobody SELECT 1")


def test_bind_parameters_leaves_strings_casts_and_comments_alone() -> None:
    query, values = bind_parameters(
        "SELECT ':x', 1::INT, \"col:y\" /* :z */ FROM t WHERE a = :a AND b IN :bs",
        {"a": 1, "bs": (1, 2)},
    )
    assert query == "SELECT ':x', 1::INT, \"col:y\" /* :z */ FROM t WHERE a = $a AND b IN $bs"
    assert values == {"a": 1, "bs": [1, 2]}
