"""Settings as data: each has a name, an environment variable, a default and a help line.

The same table drives ``sb.connect()``, the CLI's options and the README's configuration
section, so the three never disagree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["SETTINGS", "Secret", "Setting", "resolve"]


class Secret(str):
    """A str whose repr hides it. The token is held as one, so a local variable holding
    it stays out of tracebacks that print locals (IPython's ``%xmode Verbose``,
    ``pytest -l``); ``str()`` and f-strings still give the value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<hidden>'"


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("api_url", "SELLERBENCH_API_URL", None, "Base URL of the seller-collection API."),
    Setting("token", "SELLERBENCH_TOKEN", None, "Bearer token for the API (never printed)."),
    Setting("cache", "SELLERBENCH_CACHE", "data/sellerbench.duckdb", "Path of the DuckDB cache."),
    Setting(
        "lock_timeout",
        "SELLERBENCH_LOCK_TIMEOUT",
        "10",
        "Seconds to wait for a cache held by another process before CacheLockedError.",
    ),
    Setting(
        "auto_push",
        "SELLERBENCH_AUTO_PUSH",
        "1",
        "Push queued changes right after each mutation when the API is reachable (1/0).",
    ),
    Setting("timeout", "SELLERBENCH_TIMEOUT", "30", "Seconds before one HTTP request times out."),
)
_BY_NAME = {s.name: s for s in SETTINGS}


def resolve(name: str, given: object = None) -> str | None:
    """The value of a setting: what the caller gave, else its variable, else its default."""
    if given is not None:
        return str(given)
    setting = _BY_NAME[name]
    value = os.environ.get(setting.env)
    return value if value not in (None, "") else setting.default
