"""The seller and run records, defined once.

Each record is a tuple of :class:`Field` (name, Arrow type, DuckDB type, nullable), in
the contract's order (API.md). Everything that spells out these columns derives from
here: the Arrow schemas sync pages are parsed against (``pages.py``), the types a server
download is read with (``exports.py``), the server rows push writes into the cache
(``outcomes.py``), run frames built from API records (``runs.py``), and the present
cache tables, which ``tests/cache/test_store.py`` checks against :meth:`Record.duckdb_types`
(the DDL in ``store.MIGRATIONS`` is history, never edited; a new column is a new
migration plus a field here, and that test fails until both agree).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

__all__ = ["RUN", "SELLER", "Field", "Record"]

_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Field:
    name: str
    arrow: pa.DataType
    duckdb: str
    nullable: bool


@dataclass(frozen=True)
class Record:
    """A record of the contract as a tuple of fields, and what derives from it."""

    name: str
    fields: tuple[Field, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(f.name, f.arrow, nullable=f.nullable) for f in self.fields])

    def duckdb_types(self) -> dict[str, str]:
        return {f.name: f.duckdb for f in self.fields}

    def arrow_type(self, name: str) -> pa.DataType:
        return next(f.arrow for f in self.fields if f.name == name)


def _text(name: str, nullable: bool = False) -> Field:
    return Field(name, pa.string(), "VARCHAR", nullable)


def _time(name: str, nullable: bool = False) -> Field:
    return Field(name, _TS, "TIMESTAMP WITH TIME ZONE", nullable)


def _int(name: str, nullable: bool = True) -> Field:
    return Field(name, pa.int32(), "INTEGER", nullable)


SELLER = Record(
    "seller",
    (
        _text("id"),
        _text("display_name"),
        _text("normalized_name"),
        _text("platform"),
        _text("platform_id", True),
        _int("times_seen", False),
        Field("flagged", pa.bool_(), "BOOLEAN", False),
        _text("first_seen_run_id", True),
        _text("last_seen_run_id", True),
        _time("created_at"),
        _time("updated_at"),
        _time("deleted_at", True),
        Field("rev", pa.int64(), "BIGINT", True),  # ext: present only with rev_feed
    ),
)

RUN = Record(
    "run",
    (
        _text("id"),
        _text("name"),
        _text("status"),
        Field("category_ids", pa.list_(pa.string()), "VARCHAR[]", True),
        _time("started_at", True),
        _time("completed_at", True),
        _time("paused_at", True),
        _time("created_at"),
        _time("updated_at"),
        _time("deleted_at", True),
        _int("departments_total"),
        _int("departments_completed"),
        _int("categories_total"),
        _int("categories_completed"),
        _int("products_total"),
        _int("products_searched"),
        _int("sellers_found"),
        _int("sellers_new"),
        _int("failed_items"),
        Field("duration_seconds", pa.float64(), "DOUBLE", True),
        Field("rev", pa.int64(), "BIGINT", True),
    ),
)
