"""Each fact once (issue 22): the seller and run records, the name rules and the push
defaults are written in one place, and the client and the reference server derive from
it. These tests read the package's source (a second list of the seller's fields fails
here wherever it appears) and compare what derives: the client's TypedDicts and Arrow
schemas, the server's Pydantic models and sync-feed Arrow schema, the stored columns."""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import textwrap
import typing
from dataclasses import fields
from pathlib import Path

import pyarrow as pa
import pytest

import sellerbench
from sellerbench import schema
from sellerbench.schema import RUN, SELLER, Record
from sellerbench.settings import PUSH

PACKAGE = Path(sellerbench.__file__).parent
CONTRACT = PACKAGE / "schema.py"
# The tables' DDL: migrations are history, never edited; the present tables are checked
# against the records (tests/test_layering.py, tests/server/test_storage_schema.py).
DDL = (PACKAGE / "cache" / "store.py", PACKAGE / "server" / "storage" / "core.py")
# A literal spelling all of a record's fields but at most this many is a second copy of
# the record (a chosen few, like the grid's hover card of nine, are a selection).
SPARE = 2


def _spelt(node: ast.AST) -> list[str]:
    """The names a literal spells: its strings, the first item of each of its tuples
    (``[("id", pa.string()), ...]``) or calls (``[pa.field("id", ...), ...]``), a dict's
    keys, a class body's annotated names (a TypedDict, a Pydantic model, a dataclass)."""
    if isinstance(node, ast.Dict):
        items: list[ast.AST | None] = list(node.keys)
    elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = list(node.elts)
    elif isinstance(node, ast.ClassDef):
        return [s.target.id for s in node.body
                if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
    else:
        return []
    names = []
    for item in items:
        if isinstance(item, ast.Tuple) and item.elts:
            item = item.elts[0]
        elif isinstance(item, ast.Call) and item.args:
            item = item.args[0]
        if isinstance(item, ast.Constant) and isinstance(item.value, str):
            names.append(item.value)
    return names


def _words(node: ast.AST) -> set[str]:
    """The words of a string literal (an SQL column list: ``"INSERT INTO sellers (id, ..."``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return set(re.findall(r"\w+", node.value))
    if isinstance(node, ast.JoinedStr):
        return set().union(*(_words(v) for v in node.values)) if node.values else set()
    return set()


def second_definitions(source: str, record: Record) -> list[int]:
    """Lines of ``source`` where a literal (or an SQL text) spells most of ``record``'s
    fields."""
    wanted = set(record.names)
    enough = len(wanted) - SPARE
    return sorted({node.lineno for node in ast.walk(ast.parse(source))
                   if len(wanted.intersection(_spelt(node))) >= enough
                   or len(wanted & _words(node)) >= enough})


def test_the_scan_finds_a_second_field_list() -> None:
    """The check below would pass on anything if the scan saw nothing."""
    as_tuple = f"COLUMNS = {SELLER.names!r}"
    as_schema = "S = pa.schema([" + ", ".join(f"({n!r}, pa.string())" for n in RUN.names) + "])"
    as_class = "class Seller(BaseModel):\n" + "".join(f"    {n}: str\n" for n in SELLER.names)
    as_dict = "KINDS = {" + ", ".join(f"{n!r}: 'text'" for n in SELLER.names) + "}"
    as_sql = f'SQL = "INSERT INTO sellers ({", ".join(SELLER.names)}) VALUES ..."'
    assert second_definitions(as_tuple, SELLER) == [1]
    assert second_definitions(as_schema, RUN) == [1]
    assert second_definitions(as_class, SELLER) == [1]
    assert second_definitions(as_dict, SELLER) == [1]
    assert second_definitions(as_sql, SELLER) == [1]
    few = f"COLUMNS = {SELLER.names[:4]!r}"
    assert second_definitions(few, SELLER) == []


@pytest.mark.parametrize("record", [SELLER, RUN], ids=["seller", "run"])
def test_the_records_fields_are_listed_only_in_the_contract(record: Record) -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == CONTRACT or path in DDL:
            continue
        for line in second_definitions(path.read_text(), record):
            found.append(f"{path.relative_to(PACKAGE)}:{line}")
    assert found == [], (
        f"a second list of the {record.name}'s fields: derive it from schema.{record.name.upper()}"
    )
    assert second_definitions(CONTRACT.read_text(), record), "the contract lists it once"


def _is_time(f: schema.Field) -> bool:
    return f.arrow == pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize("record", [SELLER, RUN], ids=["seller", "run"])
def test_the_servers_models_agree_with_the_record(record: Record) -> None:
    from datetime import datetime

    from sellerbench.server.http import models

    model = models.Seller if record is SELLER else models.CollectionRun
    assert list(model.model_fields) == list(record.names)
    for f in record.fields:
        info = model.model_fields[f.name]
        wire = datetime if _is_time(f) else f.wire
        assert info.annotation == (wire | None if f.nullable else wire), f.name
        # absent only where the record says the field is an extension (rev)
        assert info.is_required() is (f.name != "rev"), f.name


def test_the_arrow_schemas_agree_with_the_record() -> None:
    from sellerbench.api import pages
    from sellerbench.server.http import sync

    assert SELLER.arrow_schema() == pages.SELLER_SCHEMA
    assert RUN.arrow_schema() == pages.RUN_SCHEMA
    served = sync.SELLER_ARROW_SCHEMA
    assert served.names == list(SELLER.names)
    assert [f.type for f in served] == [f.arrow for f in SELLER.fields]


def test_times_seen_has_one_type_everywhere() -> None:
    from sellerbench.api import pages
    from sellerbench.reports import exports
    from sellerbench.server.http import models, sync

    assert SELLER.arrow_type("times_seen") == pa.int32()
    assert pages.SELLER_SCHEMA.field("times_seen").type == pa.int32()
    assert sync.SELLER_ARROW_SCHEMA.field("times_seen").type == pa.int32()
    assert exports.SELLER_TYPES["times_seen"] == "INTEGER"
    assert models.Seller.model_fields["times_seen"].annotation is int


def test_the_clients_typeddicts_are_the_contracts() -> None:
    from sellerbench.api import client

    assert client.Seller is schema.Seller and client.CollectionRun is schema.CollectionRun
    hints = typing.get_type_hints(schema.Seller)
    assert list(hints) == list(SELLER.names)


def test_the_name_rules_are_written_once() -> None:
    """Normalising and checking a name happen in the contract; elsewhere they are called."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == CONTRACT:
            continue
        source = path.read_text()
        assert ".split()).lower()" not in source, f"{path.name} normalises a name itself"
        assert "unicodedata.category" not in source, f"{path.name} checks a name itself"
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in (
                        "MAX_NAME_LENGTH", "LOCAL_PREFIX", "MAX_BATCH", "MAX_BULK"
                    ):
                        pytest.fail(f"{path.name} writes {target.id} again")


def _defaults(function: object) -> dict[str, str]:
    """The source of each keyword-only default of ``function``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))
    args = node.args
    spelt = dict(zip([a.arg for a in args.kwonlyargs], args.kw_defaults, strict=True))
    return {name: ast.unparse(expr) for name, expr in spelt.items() if expr is not None}


def _defaults_read_push(function: object) -> dict[str, str]:
    """For each push default of ``function``, the source of its default expression."""
    spelt = _defaults(function)
    return {f.name: spelt[f.name] for f in fields(PUSH) if f.name in spelt}


def test_the_settings_defaults_are_read_where_they_apply() -> None:
    from sellerbench.api.client import ApiClient
    from sellerbench.cache.store import Store
    from sellerbench.workbench import Workbench

    assert _defaults(Store.__init__)["lock_timeout"] == "LOCK_TIMEOUT"
    assert _defaults(ApiClient.__init__)["timeout"] == "TIMEOUT"
    assert _defaults(Workbench.__init__)["auto_push"] == "AUTO_PUSH"


def test_every_push_default_is_read_from_settings() -> None:
    from sellerbench import cli
    from sellerbench.changes import push
    from sellerbench.workbench import Workbench

    for function in (push.push, Workbench.push):
        spelt = _defaults_read_push(function)
        assert set(spelt) == {f.name for f in fields(PUSH)}, function
        for name, expr in spelt.items():
            assert expr == f"PUSH.{name}", f"{function.__qualname__}({name}={expr})"
    parser = cli.build_parser()
    push_parser = next(
        a for a in parser._subparsers._group_actions  # type: ignore[union-attr]
        if isinstance(a, argparse._SubParsersAction)
    ).choices["push"]
    assert push_parser.get_default("wait") == PUSH.wait
