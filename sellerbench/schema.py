"""The contract, defined once: the seller and run records, the name rules, the wire forms.

**Records.** :class:`Seller` and :class:`CollectionRun` are the records of API.md as the
API sends them in JSON (the client's TypedDicts). Each annotation says the field's wire
type, whether it may be null (``| None``; ``NotRequired``: absent unless an extension is
served) and, where JSON alone does not say it, its Arrow type (:data:`Count`,
:data:`Rev`, :data:`Time`). :data:`SELLER` and :data:`RUN` are the same records as
tuples of :class:`Field` (name, Arrow type, DuckDB type, nullable, wire type), and
everything that spells out these columns derives from them:

- client: the Arrow schemas sync pages are parsed against (``api/pages.py``), the types
  a server download is read with (``reports/exports.py``), the rows push writes into the
  cache (``changes/outcomes.py``), run frames (``runs/``), and the present cache tables,
  which ``tests/test_layering.py`` checks against :meth:`Record.duckdb_types`;
- reference server: the Pydantic models ``/openapi.json`` documents
  (``server/http/models.py``), the Arrow schema of the sync feed (``server/http/sync.py``),
  the column lists its SQL reads and writes (``server/storage/``), and its present tables
  (SQLite and PostgreSQL), which ``tests/server/test_storage_schema.py`` checks.

The DDL in the migrations (``cache/store.py``, ``server/storage/core.py``,
``server/storage/postgres.py``) is history, never edited: a new field is a new migration
plus a line here, and those tests fail until both agree. ``tests/test_contract.py``
fails when a second list of the seller's fields appears anywhere in the package.

**Name rules** (a seller's or a run's name): :func:`name_problem`, :func:`normalize_name`.

**Wire forms**: :data:`WIRE_TIME` (how the reference server writes times),
:func:`format_time`, :func:`parse_time`, :data:`NAME_PATTERN` (the names JSON Schema).

**Display forms** (the grid's cells): :data:`SHOWN_TRUE`, :data:`SHOWN_TIME`.
"""

import types
import typing
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired, TypedDict

import pyarrow as pa

__all__ = [
    "ACTIVE",
    "BASE_LIMIT",
    "FINISHED",
    "LOCAL_PREFIX",
    "MAX_BATCH",
    "MAX_NAME_LENGTH",
    "NAME_PATTERN",
    "REV_LIMIT",
    "RUN",
    "RUN_COUNTERS",
    "RUN_STATUSES",
    "SELLER",
    "SHOWN_TIME",
    "SHOWN_TRUE",
    "WIRE_TIME",
    "CollectionRun",
    "Count",
    "Field",
    "Record",
    "Rev",
    "RunStatus",
    "Seller",
    "Time",
    "format_time",
    "name_problem",
    "normalize_name",
    "parse_time",
]

# -- field types: the wire type, annotated with its Arrow type where JSON does not say it --

_TS = pa.timestamp("us", tz="UTC")
Time = Annotated[str, _TS]
"""A time: RFC 3339 text on the wire, a UTC timestamp (microseconds) in Arrow and DuckDB."""
Count = Annotated[int, pa.int32()]
"""A count (``times_seen``, a run's counters): int32 in Arrow, INTEGER in DuckDB."""
Rev = Annotated[int, pa.int64()]
"""**ext** ``rev_feed``: the global change number of the last write."""

RunStatus = Literal["pending", "running", "paused", "completed", "failed", "cancelled"]
RUN_STATUSES: tuple[str, ...] = typing.get_args(RunStatus)
ACTIVE: tuple[str, ...] = RUN_STATUSES[:3]  # GET /collection/runs/active
FINISHED: tuple[str, ...] = RUN_STATUSES[3:]  # GET /collection/runs/history; final

# -- the records --------------------------------------------------------------------------


class Seller(TypedDict):
    """A seller as the API sends it (times are RFC 3339 strings in UTC)."""

    id: str
    display_name: str
    normalized_name: str
    platform: str
    platform_id: str | None
    times_seen: Count
    flagged: bool
    first_seen_run_id: str | None
    last_seen_run_id: str | None
    created_at: Time
    updated_at: Time
    deleted_at: Time | None
    rev: NotRequired[Rev]


class CollectionRun(TypedDict):
    """A collection run as the API sends it (the counters may be null at the origin)."""

    id: str
    name: str
    status: RunStatus
    category_ids: list[str] | None
    started_at: Time | None
    completed_at: Time | None
    paused_at: Time | None
    created_at: Time
    updated_at: Time
    deleted_at: Time | None
    departments_total: Count | None
    departments_completed: Count | None
    categories_total: Count | None
    categories_completed: Count | None
    products_total: Count | None
    products_searched: Count | None
    sellers_found: Count | None
    sellers_new: Count | None
    failed_items: Count | None
    duration_seconds: float | None
    rev: NotRequired[Rev]


# Arrow type -> DuckDB type, and the Arrow type of a plain wire type.
_DUCKDB = {pa.string(): "VARCHAR", pa.bool_(): "BOOLEAN", pa.int32(): "INTEGER",
           pa.int64(): "BIGINT", pa.float64(): "DOUBLE", _TS: "TIMESTAMP WITH TIME ZONE",
           pa.list_(pa.string()): "VARCHAR[]"}
_ARROW: dict[Any, pa.DataType] = {str: pa.string(), bool: pa.bool_(), float: pa.float64(),
                                  list[str]: pa.list_(pa.string())}


@dataclass(frozen=True)
class Field:
    """One field of a record: its name, Arrow and DuckDB types, whether it may be null
    (or absent), and its type on the wire (JSON)."""

    name: str
    arrow: pa.DataType
    duckdb: str
    nullable: bool
    wire: Any


def _field(name: str, hint: Any, required: bool) -> Field:
    """A field from its annotation: ``| None`` or ``NotRequired`` make it nullable,
    ``Annotated[wire, arrow]`` names its Arrow type (else it follows from the wire type)."""
    nullable = not required
    if typing.get_origin(hint) is NotRequired:
        (hint,) = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable, (hint,) = True, args
    arrow = None
    if typing.get_origin(hint) is Annotated:
        hint, arrow = typing.get_args(hint)[:2]
    if arrow is None:
        arrow = _ARROW[str if typing.get_origin(hint) is Literal else hint]
    return Field(name, arrow, _DUCKDB[arrow], nullable, hint)


@dataclass(frozen=True)
class Record:
    """A record of the contract as a tuple of fields, and what derives from it."""

    name: str
    fields: tuple[Field, ...]

    @classmethod
    def of(cls, name: str, typed: type) -> "Record":
        """The record a TypedDict above spells, in its order."""
        hints = typing.get_type_hints(typed, include_extras=True)
        required = typed.__required_keys__  # type: ignore[attr-defined]
        return cls(name, tuple(_field(n, h, n in required) for n, h in hints.items()))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(f.name, f.arrow, nullable=f.nullable) for f in self.fields])

    def duckdb_types(self) -> dict[str, str]:
        return {f.name: f.duckdb for f in self.fields}

    def arrow_type(self, name: str) -> pa.DataType:
        return next(f.arrow for f in self.fields if f.name == name)


SELLER = Record.of("seller", Seller)
RUN = Record.of("run", CollectionRun)
# A run's progress: its counts and its duration (what a watch shows move).
RUN_COUNTERS: tuple[str, ...] = tuple(
    f.name for f in RUN.fields if f.arrow in (pa.int32(), pa.float64())
)

# -- name rules ---------------------------------------------------------------------------

BASE_LIMIT = 100  # rows per sync page at most (API.md), and the default
REV_LIMIT = 10_000  # rows per page at most with since_rev (ext rev_feed)
MAX_BATCH = 10_000  # ids or names in one bulk call: the reference server's limit
MAX_NAME_LENGTH = 200  # characters, after trimming surrounding whitespace
LOCAL_PREFIX = "local:"  # ids of sellers created in a cache, until the server confirms
_C = r"\x00-\x1f\x7f-\x9f"
NAME_PATTERN = rf"^\s*[^\s{_C}](?:[^{_C}]{{0,{MAX_NAME_LENGTH - 2}}}[^\s{_C}])?\s*$"
"""What :func:`name_problem` accepts, as a JSON Schema pattern (for ``/openapi.json``)."""


def name_problem(name: object) -> str | None:
    """What the contract refuses in a seller's (or run's) name, as words that follow "the
    name ...", or None for a valid name (which is then stored as ``name.strip()``)."""
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    trimmed = name.strip()
    if not trimmed:
        return "must not be empty"
    if len(trimmed) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters (this one has {len(trimmed)})"
    for char in trimmed:
        category = unicodedata.category(char)
        if category == "Cc":
            return "must not contain control characters"
        if category == "Cs":
            return "must be valid Unicode (no lone surrogates)"
    return None


def normalize_name(name: str) -> str:
    """Lower-cased, inner whitespace collapsed: the key unique among live sellers."""
    return " ".join(name.split()).lower()


# -- wire and display forms ---------------------------------------------------------------

WIRE_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
"""How the reference server writes every time: RFC 3339, UTC, microseconds, ``Z``; fixed
width, so text order is time order."""


def format_time(moment: datetime) -> str:
    """``moment`` in :data:`WIRE_TIME` (a naive time is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(WIRE_TIME)


def parse_time(text: str) -> datetime:
    """A time the API sent (any RFC 3339 form with a zone) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))


SHOWN_TRUE = "yes"  # a true flag in a grid cell (false shows empty)
SHOWN_TIME = "%Y-%m-%d %H:%M"  # a time in a grid cell: strftime, in DuckDB and Python
