"""Stored rows as API records, and the server's use of the contract's rules (schema.py).

Timestamps are stored as fixed-width RFC 3339 text in UTC with microseconds
(``schema.WIRE_TIME``: ``2026-01-27T18:00:00.123456Z``), so text order is time order and
an index on them serves the sync order directly.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from ...schema import RUN, SELLER, format_time, name_problem, normalize_name, parse_time

__all__ = [
    "INSERT_RUN",
    "INSERT_SELLER",
    "RUN_COLUMNS",
    "SELLER_COLUMNS",
    "format_ts",
    "is_uuid",
    "normalize_name",
    "now_ts",
    "parse_ts",
    "run_record",
    "seller_record",
    "validate_name",
]

# The stored tables hold the records' fields in the contract's order (the present tables
# are checked against it: tests/server/test_storage_schema.py).
SELLER_COLUMNS = SELLER.names
RUN_COLUMNS = RUN.names
INSERT_SELLER = (f"INSERT INTO sellers ({', '.join(SELLER_COLUMNS)})"
                 f" VALUES ({', '.join('?' * len(SELLER_COLUMNS))})")
INSERT_RUN = (f"INSERT INTO collection_runs ({', '.join(RUN_COLUMNS)})"
              f" VALUES ({', '.join('?' * len(RUN_COLUMNS))})")
format_ts = format_time
parse_ts = parse_time


def now_ts() -> str:
    return format_ts(datetime.now(UTC))


def ts_before(text: str, delta: timedelta) -> str:
    return format_ts(parse_ts(text) - delta)


def is_uuid(text: object) -> bool:
    """Ids the server hands out are UUIDs; anything else cannot name a record."""
    try:
        uuid.UUID(text)  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def validate_name(name: object) -> str:
    """The trimmed display name, or ValueError saying what is wrong with it."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(f"a name {problem}")
    assert isinstance(name, str)
    return name.strip()


def seller_record(row: tuple[Any, ...], *, with_rev: bool = True) -> dict[str, Any]:
    """A Seller as the API serves it, from a row in ``SELLER_COLUMNS`` order."""
    record = dict(zip(SELLER_COLUMNS, row, strict=True))
    record["flagged"] = bool(record["flagged"])
    if not with_rev:
        del record["rev"]
    return record


def run_record(row: tuple[Any, ...], *, with_rev: bool = True) -> dict[str, Any]:
    """A CollectionRun as the API serves it, from a row in ``RUN_COLUMNS`` order."""
    record = dict(zip(RUN_COLUMNS, row, strict=True))
    record["category_ids"] = json.loads(record["category_ids"])
    if not with_rev:
        del record["rev"]
    return record
