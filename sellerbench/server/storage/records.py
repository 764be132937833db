"""Timestamps, the seller-name rules, and turning stored rows into API records.

Timestamps are stored as fixed-width RFC 3339 text in UTC with microseconds
(``2026-01-27T18:00:00.123456Z``), so text order is time order and an index on them
serves the sync order directly.
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
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

MAX_NAME_LENGTH = 200

SELLER_COLUMNS: tuple[str, ...] = (
    "id",
    "display_name",
    "normalized_name",
    "platform",
    "platform_id",
    "times_seen",
    "flagged",
    "first_seen_run_id",
    "last_seen_run_id",
    "created_at",
    "updated_at",
    "deleted_at",
    "rev",
)

RUN_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "status",
    "category_ids",
    "started_at",
    "completed_at",
    "paused_at",
    "created_at",
    "updated_at",
    "deleted_at",
    "departments_total",
    "departments_completed",
    "categories_total",
    "categories_completed",
    "products_total",
    "products_searched",
    "sellers_found",
    "sellers_new",
    "failed_items",
    "duration_seconds",
    "rev",
)


def format_ts(moment: datetime) -> str:
    """RFC 3339, UTC, microseconds, ``Z``: the one stored and served form."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_ts() -> str:
    return format_ts(datetime.now(UTC))


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def ts_before(text: str, delta: timedelta) -> str:
    return format_ts(parse_ts(text) - delta)


def is_uuid(text: object) -> bool:
    """Ids the server hands out are UUIDs; anything else cannot name a record."""
    try:
        uuid.UUID(text)  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def normalize_name(name: str) -> str:
    """Lower-cased with inner whitespace collapsed: the key that is unique among live sellers."""
    return " ".join(name.split()).lower()


def validate_name(name: object) -> str:
    """The trimmed display name, or ValueError saying what is wrong with it."""
    if not isinstance(name, str):
        raise ValueError("a name must be a string")
    trimmed = name.strip()
    if not trimmed:
        raise ValueError("a name must not be empty")
    if len(trimmed) > MAX_NAME_LENGTH:
        raise ValueError(f"a name must be at most {MAX_NAME_LENGTH} characters")
    for char in trimmed:
        category = unicodedata.category(char)
        if category == "Cc":
            raise ValueError("a name must not contain control characters")
        if category == "Cs":
            raise ValueError("a name must be valid Unicode (no lone surrogates)")
    return trimmed


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
