"""``%sql`` / ``%%sql`` over the cache in a notebook: ``%load_ext sellerbench.magic``.

    %sql SELECT flagged, count(*) FROM visible_sellers GROUP BY ALL

    %%sql -o busy
    SELECT display_name, times_seen FROM visible_sellers
    WHERE times_seen >= :min_seen ORDER BY times_seen DESC

A cell returns a pandas frame with the cache's dtypes (string ids, UTC timestamps,
nullable integers and booleans); ``-o NAME`` also stores it in that variable.
``:name`` is bound to the notebook variable ``name`` as a query parameter, never pasted
into the SQL text. The SQL is read-only, as with ``wb.sql`` (change sellers with
``wb.flag`` and friends, which sync pushes).

Which cache: ``-c PATH`` / ``--cache PATH``; else the Workbench named by ``-w NAME``
/ ``--wb NAME``; else the only Workbench among the notebook's variables; else the
``SELLERBENCH_CACHE`` setting.

Why our own magic rather than jupysql (no longer a dependency): jupysql reaches DuckDB through a
SQLAlchemy URL, which needs duckdb-engine (not a dependency), or through a connection
object that the kernel keeps open, which would hold the cache's write lock for the
kernel's whole life and block ``sellerbench sync`` from another kernel or terminal; it
also needs ``SET GLOBAL python_scan_all_frames=true`` on duckdb 2 to see frames. This
magic opens the cache only while a statement runs (``Store.connect``), like every other
sellerbench read. Load it after jupysql if both are wanted: the last loaded ``%sql`` wins.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
from IPython.core.magic import Magics, line_cell_magic, magics_class

from .cache.frames import sql_frame
from .cache.store import Store
from .errors import SellerbenchError
from .settings import resolve

__all__ = ["SqlMagics", "bind_parameters", "load_ipython_extension"]

_OPTIONS = {"-c": "cache", "--cache": "cache", "-w": "wb", "--wb": "wb", "-o": "out",
            "--out": "out"}
_OPTION = re.compile(r"\s*(-c|--cache|-w|--wb|-o|--out)(?:\s+|=)(\"[^\"]*\"|'[^']*'|\S+)")
# Quoted strings, comments, '::' casts (skipped as they are), or a ':name' parameter.
_TOKENS = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|::|(?<![\w:]):([A-Za-z_]\w*)",
    re.DOTALL,
)


def bind_parameters(query: str, namespace: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Turn ``:name`` into DuckDB's ``$name`` and collect the values from ``namespace``."""
    values: dict[str, Any] = {}

    def swap(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        if name not in namespace:
            raise SellerbenchError(
                f"the query uses :{name} but the notebook has no variable {name!r}; "
                f"define it, or write '::' for a cast"
            )
        values[name] = _plain(namespace[name])
        return f"${name}"

    return _TOKENS.sub(swap, query), values


def _plain(value: Any) -> Any:
    """numpy and pandas scalars as the Python values DuckDB binds."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    if isinstance(value, tuple | set | frozenset | pd.Series):
        return list(value)
    return value


def _split_options(line: str) -> tuple[dict[str, str], str]:
    """Leading ``-c/-w/-o VALUE`` options, then the SQL (left exactly as written)."""
    options: dict[str, str] = {}
    pos = 0
    while match := _OPTION.match(line, pos):
        options[_OPTIONS[match.group(1)]] = match.group(2).strip("\"'")
        pos = match.end()
    rest = line[pos:].strip()
    if re.match(r"-[A-Za-z]|--[A-Za-z]", rest):  # SQL never starts so: a flag we don't know
        raise SellerbenchError(
            f"unknown %sql option {rest.split()[0]}; use -c PATH, -w WORKBENCH or -o VARIABLE"
        )
    return options, rest


@magics_class
class SqlMagics(Magics):
    """``%sql`` (one line) and ``%%sql`` (a cell) over the sellerbench cache."""

    @line_cell_magic
    def sql(self, line: str, cell: str | None = None) -> pd.DataFrame:
        options, query = _split_options(line)
        if cell is not None:
            query = f"{query}\n{cell}".strip()
        if not query:
            raise SellerbenchError("%sql needs a query, e.g. %sql SELECT count(*) FROM sellers")
        if self.shell is None:  # only when the magic is called outside IPython
            raise SellerbenchError("%sql runs inside IPython: %load_ext sellerbench.magic")
        namespace = self.shell.user_ns
        store = self._store(options, namespace)
        query, params = bind_parameters(query, namespace)
        frame = sql_frame(store, query, params or None)
        if "out" in options:
            namespace[options["out"]] = frame
        return frame

    @staticmethod
    def _store(options: dict[str, str], namespace: dict[str, Any]) -> Store:
        from .workbench import Workbench

        if "cache" in options:
            return Store(options["cache"])
        if "wb" in options:
            wb = namespace.get(options["wb"])
            if not isinstance(wb, Workbench):
                raise SellerbenchError(f"-w {options['wb']}: no Workbench by that name")
            return wb.store
        found = {id(v): v for k, v in namespace.items()
                 if isinstance(v, Workbench) and not k.startswith("_")}
        if len(found) > 1:
            raise SellerbenchError(
                "several workbenches are open; say which with %sql -w NAME (or -c PATH)"
            )
        if found:
            return next(iter(found.values())).store
        return Store(resolve("cache"))


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(SqlMagics)
