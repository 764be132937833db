"""The one seller filter: which sellers a frame, an export, the grid or a report shows.

    SellerFilter(flagged=True, search="acme", where="times_seen >= 3").sql()
    -> ("flagged = ? AND (contains(lower(display_name), lower(?)) OR ...) AND (times_seen >= 3)",
        [True, "acme", "acme", "acme", "acme"])

Every reader of sellers (``wb.sellers``, ``wb.export``, the grid, the report) builds its
WHERE clause here, so a filter means the same thing everywhere and a bad value gets the
same ``ConfigError`` wherever it is passed:

- ``flagged``: True, False or None (any); anything else is refused (``bool("false")`` is
  True, so a string would silently pick the flagged sellers).
- ``search``: a case-insensitive substring of the seller's name, or exactly its id or
  platform id (an analyst pastes an id as often as part of a name). Always bound.
- ``include_deleted``: tombstones too (the relation is ``visible_sellers_all``).
- ``pending``: only sellers with a change still queued.
- ``where``: one SQL predicate over the ``visible_sellers`` columns, trusted SQL run by the
  analyst over their own cache, still checked: one predicate (no ``;``, no comment, no
  parenthesis that closes more than it opened), and bound against the relation by
  :meth:`SellerFilter.check` so a typo names the column at fault instead of a DuckDB
  Binder Error.

The where messages are made here once, and ``wb.sellers``, ``wb.export``, the grid's where
box and the CLI's ``--where`` show them as they are (the CLI writes ``--where`` for
``where``): a misspelt column is named with the nearest columns, closest first
(``the where predicate "tims_seen >= 2" names no column "tims_seen"; closest first:
times_seen, ...``); a syntax error quotes the predicate as typed and the character where
it breaks, never the parentheses the filter wraps it in.

Values are bound as parameters. :meth:`SellerFilter.inline` renders the same predicate
with the values written as SQL literals, for a predicate handed back to the analyst
(``grid.where_sql``) that ``wb.sellers(where=...)`` accepts as it is.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np

from ..errors import ConfigError

__all__ = ["SellerFilter", "check_where", "literal"]

_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
PENDING_SQL = "id IN (SELECT seller_id FROM mutations WHERE state = 'pending')"


def check_text(name: str, value: object) -> None:
    """A str that DuckDB can take (no lone surrogate), else ConfigError naming ``name``."""
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{name} must be valid Unicode text (it holds a lone surrogate)"
        ) from None


def check_where(where: object) -> str:
    """``where`` as one SQL predicate (stripped), or ConfigError saying what is wrong."""
    if not isinstance(where, str) or not where.strip():
        raise ConfigError("where must be a non-empty SQL predicate, e.g. \"times_seen > 3\"")
    check_text("where", where)
    bare = _QUOTED.sub("''", where)  # strings and quoted names may hold anything
    if ";" in bare or "--" in bare or "/*" in bare:
        raise ConfigError(
            "where must be one SQL predicate: no ';', no comments, no second statement"
        )
    if not _balanced(bare):
        raise ConfigError("where has unbalanced parentheses; it must be one SQL predicate")
    # Parsed as typed (no wrapping parentheses, which _balanced makes safe to leave out),
    # so a syntax error points at what the analyst wrote.
    prefix, typed = "SELECT * FROM t WHERE ", where.strip()
    try:
        statements = duckdb.extract_statements(prefix + typed)
    except duckdb.Error as exc:
        raise ConfigError(syntax_message(typed, exc, len(prefix))) from exc
    if len(statements) != 1:
        raise ConfigError("where must be one SQL predicate, not several statements")
    return where.strip()


def _balanced(text: str) -> bool:
    """No ')' closes more than was opened, so the predicate cannot escape its parentheses."""
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _quoted(where: str) -> str:
    return f'"{where.strip()}"'


def syntax_message(where: str, exc: BaseException, offset: int) -> str:
    """``where`` does not parse: DuckDB's reason, the predicate as typed and the character
    (1-based) where it breaks; ``offset`` is where ``where`` starts in the parsed text."""
    reason = _plain(exc)
    lines = str(exc).splitlines()
    at = ""
    for number, line in enumerate(lines[:-1]):
        if line.startswith("LINE 1: ") and "^" in lines[number + 1]:
            column = lines[number + 1].index("^") - len("LINE 1: ") - offset
            if 0 <= column <= len(where):
                at = f" at character {column + 1}"
            break
    return (f"the where predicate {_quoted(where)} is not valid SQL: {reason}{at}; write one "
            f"predicate over the sellers' columns, e.g. times_seen >= 3 AND platform = 'ebay'")


def unknown_column_message(where: str, column: str, columns: Sequence[str]) -> str:
    """The where predicate names a column the sellers do not have: name it, and the
    nearest columns closest first (every column when none is near)."""
    near = difflib.get_close_matches(column, columns, n=3, cutoff=0.5)
    listed = (f"closest first: {', '.join(near)}" if near
              else f"the columns are {', '.join(columns)}")
    return f"the where predicate {_quoted(where)} names no column \"{column}\"; {listed}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def literal(value: Any) -> str:
    """``value`` as a DuckDB SQL literal (strings quoted, quotes doubled)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return f"'{value}'::DOUBLE"
        return repr(float(value))
    if isinstance(value, str):
        check_text("a filter value", value)
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, Sequence):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise ConfigError(f"cannot write {type(value).__name__} {value!r} as a SQL value")


def inline(sql: str, params: Sequence[Any]) -> str:
    """``sql`` with each ``?`` outside quotes replaced by the next parameter as a literal."""
    out: list[str] = []
    values = iter(params)
    pos = 0
    for match in re.finditer(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?", sql):
        out.append(sql[pos:match.start()])
        out.append(literal(next(values)) if match.group() == "?" else match.group())
        pos = match.end()
    out.append(sql[pos:])
    return "".join(out)


@dataclass(frozen=True)
class SellerFilter:
    """Which sellers to show; checked when made (``ConfigError`` for a bad value)."""

    flagged: bool | None = None
    search: str | None = None
    include_deleted: bool = False
    pending: bool = False
    where: str | None = None

    def __post_init__(self) -> None:
        if self.flagged is not None and not isinstance(self.flagged, bool | np.bool_):
            raise ConfigError(f"flagged must be True, False or None, not {self.flagged!r}")
        if self.flagged is not None:
            object.__setattr__(self, "flagged", bool(self.flagged))
        if self.search is not None:
            check_text("search", self.search)
            object.__setattr__(self, "search", self.search.strip() or None)
        for name in ("include_deleted", "pending"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise ConfigError(f"{name} must be True or False, not {getattr(self, name)!r}")
        if self.where is not None:
            object.__setattr__(self, "where", check_where(self.where))

    @property
    def relation(self) -> str:
        """The view these sellers come from (tombstones only with ``include_deleted``)."""
        return "visible_sellers_all" if self.include_deleted else "visible_sellers"

    def clauses(self, alias: str = "") -> tuple[list[str], list[Any]]:
        """The conditions (ANDed) and their parameters; ``alias`` prefixes column names."""
        col = (alias + ".") if alias else ""
        clauses: list[str] = []
        params: list[Any] = []
        if self.flagged is not None:
            clauses.append(f"{col}flagged = ?")
            params.append(self.flagged)
        if self.search:
            clauses.append(
                f"(contains(lower({col}display_name), lower(?)) "
                f"OR contains({col}normalized_name, lower(?)) "
                f"OR {col}id = ? OR {col}platform_id = ?)"
            )
            params += [self.search] * 4
        if self.pending:
            clauses.append(col + PENDING_SQL)
        if self.where is not None:
            clauses.append(f"({self.where})")
        return clauses, params

    def sql(self, alias: str = "") -> tuple[str, list[Any]]:
        """One predicate (``true`` when nothing filters) and its parameters."""
        clauses, params = self.clauses(alias)
        return (" AND ".join(clauses) if clauses else "true"), params

    def inline(self, alias: str = "") -> str:
        """The predicate with its values written in as literals (for ``where=`` elsewhere)."""
        return inline(*self.sql(alias))

    def check(self, con: duckdb.DuckDBPyConnection) -> None:
        """Bind the predicate against the relation without reading a row: a misspelt
        column or a wrong type in ``where`` becomes ConfigError naming it."""
        if self.where is None:
            return
        predicate, params = self.sql()
        cursor = con.cursor()
        try:
            cursor.execute(
                f"SELECT 1 FROM {self.relation} WHERE {predicate} LIMIT 0", params or None
            )
        except duckdb.Error as exc:
            raise ConfigError(self._unfit_message(cursor, exc)) from exc
        finally:
            cursor.close()

    def _unfit_message(self, cursor: duckdb.DuckDBPyConnection, exc: duckdb.Error) -> str:
        where = self.where or ""
        missing = re.search(r'Referenced column "([^"]+)" not found', str(exc))
        if missing:
            described = cursor.execute(f"SELECT * FROM {self.relation} LIMIT 0").description
            return unknown_column_message(where, missing.group(1),
                                          [str(d[0]) for d in described or []])
        hint = next((line.strip() for line in str(exc).splitlines()
                     if line.startswith("Did you mean")), "")
        return (f"the where predicate {_quoted(where)} does not fit the sellers' columns: "
                f"{_plain(exc)}{' ' + hint if hint else ''}")


def _plain(exc: BaseException) -> str:
    """DuckDB's first line without its error class (``Binder Error: ...`` -> ``...``)."""
    text = first_line(exc)
    return re.sub(r"^[A-Za-z ]+Error: ", "", text)
