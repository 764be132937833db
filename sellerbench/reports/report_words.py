"""Numbers, sizes, dates and durations as a reader says them (English, UTC).

    plural(1, "seller") -> "1 seller";  plural(20000, "seller") -> "20,000 sellers"
    file_size(1536) -> "1.5 KB";  share_words(0.0512) -> "5.1%"
    day_words(date(2026, 12, 7)) -> "7 December 2026";  duration_words(3900) -> "1 h 5 min"
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime

import pandas as pd

__all__ = ["day_words", "duration_words", "file_size", "join_words", "moment_words",
           "plural", "share_words"]

_NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def plural(count: int, noun: str, *, word: bool = False) -> str:
    """``count`` with a thousands separator (or in words under ten) and the noun."""
    number = _NUMBERS[count] if word and 0 <= count < len(_NUMBERS) else f"{count:,}"
    return f"{number} {noun if count == 1 else noun + 's'}"


def join_words(parts: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    parts = [p for p in parts if p]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def share_words(share: float, digits: int = 1) -> str:
    """A share as a percentage with ``digits`` decimals; a tiny share is not "0.0%"."""
    percent = share * 100
    if 0 < percent < 0.5 * 10 ** -digits:
        return f"under {10 ** -digits:g}%"
    return f"{percent:.{digits}f}%"


def file_size(size: int) -> str:
    """Bytes as B, KB or MB (1 KB = 1,024 bytes), one decimal."""
    if size < 1024:
        return f"{size:,} B"
    if size < 1024 * 1024:
        return f"{size / 1024:,.1f} KB"
    return f"{size / 1024 / 1024:,.1f} MB"


def _day(value: date | datetime | pd.Timestamp) -> date:
    return value.date() if isinstance(value, datetime) else value


def day_words(value: object, *, short: bool = False) -> str:
    """``7 December 2026`` (``7 Dec 2026`` when short); empty for a missing day."""
    if value is None or (not isinstance(value, date) and pd.isna(value)):
        return ""
    day = _day(value)
    return f"{day.day} {day:%b %Y}" if short else f"{day.day} {day:%B %Y}"


def moment_words(value: datetime) -> str:
    """``7 December 2026, 16:47 UTC``."""
    return f"{day_words(value)}, {value:%H:%M} UTC"


def duration_words(seconds: object) -> str:
    """``45 s``, ``12 min``, ``1 h 5 min``, ``2 days 3 h``; empty when unknown."""
    if seconds is None or not isinstance(seconds, int | float) or math.isnan(seconds):
        return ""
    total = round(float(seconds))
    if total < 60:
        return f"{total} s"
    minutes, hours = total // 60, total // 3600
    if hours == 0:
        rest = total % 60
        return f"{minutes} min" + (f" {rest} s" if rest and minutes < 10 else "")
    if hours < 48:
        rest = minutes % 60
        return f"{hours} h" + (f" {rest} min" if rest else "")
    return f"{hours // 24} days" + (f" {hours % 24} h" if hours % 24 else "")
