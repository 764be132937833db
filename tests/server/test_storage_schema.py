"""The reference server's present tables hold the contract's records (schema.py): the
``sellers`` and ``collection_runs`` tables a fresh database gets (SQLite, and PostgreSQL
through its type translation) have exactly the record's fields, in its order, each stored
in the type its wire type is kept in, and NOT NULL wherever the record never sends null.
A field added to the record without a migration (or the reverse) fails here."""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest

from sellerbench.schema import RUN, SELLER, Field, Record
from sellerbench.server.storage.core import Storage, connect

TABLES = (("sellers", SELLER), ("collection_runs", RUN))

# How each wire type is stored: times as fixed-width text, flags as 0/1, lists as JSON.
SQLITE = {str: "TEXT", bool: "INTEGER", int: "INTEGER", float: "REAL", list[str]: "TEXT"}
POSTGRES = {str: "text", bool: "integer", int: "integer", float: "double precision",
            list[str]: "text"}


def _stored(f: Field, types: dict) -> str:
    wire = str if typing.get_origin(f.wire) is Literal else f.wire  # a run's status: text
    if f.name == "rev" and types is POSTGRES:
        return "bigint"  # revs outgrow 32 bits
    return types[wire]


def _columns(storage: Storage, table: str) -> list[tuple[str, str, bool]]:
    """(name, declared type, NOT NULL) of each column of ``table``, in table order."""
    with storage.read() as conn:
        if storage.path is not None:
            rows = conn.execute(f"PRAGMA table_info({table})").fetchall()
            return [(r[1], r[2], bool(r[3] or r[5])) for r in rows]  # or the primary key
        rows = conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_name = ? ORDER BY ordinal_position", (table,)
        ).fetchall()
        return [(r[0], r[1], r[2] == "NO") for r in rows]


@pytest.fixture
def fresh(storage: str, db_url: Callable[[str], str | None], tmp_path: Path
          ) -> Iterator[Storage]:
    opened = connect(db_url(storage) or tmp_path / "server.db")
    yield opened
    opened.close()


@pytest.mark.parametrize(("table", "record"), TABLES, ids=[t for t, _ in TABLES])
def test_the_present_tables_hold_the_records_fields(
    fresh: Storage, table: str, record: Record
) -> None:
    columns = _columns(fresh, table)
    assert [name for name, *_ in columns] == list(record.names), table
    types = SQLITE if fresh.path is not None else POSTGRES
    for (name, kind, not_null), f in zip(columns, record.fields, strict=True):
        assert kind == _stored(f, types), (table, name)
        if not f.nullable:
            assert not_null, f"{table}.{name}: the record never sends null, the table allows it"
