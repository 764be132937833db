"""Settings as data: each has a name, a variable, a CLI flag, a default, what it accepts
and a help line.

The same table drives ``sb.connect()``, the CLI's options, their checks and the README's
configuration section, so the four never disagree. Every value is parsed and checked
here, in one place: a bad one raises ``ConfigError`` naming where it came from (the
variable, the CLI flag or the Python argument) and what it accepts, on one line.

Where data lives (``data_dir()``): ``SELLERBENCH_HOME`` when set, else the per-user data
folder of the platform:

- Linux and other Unix: ``$XDG_DATA_HOME/sellerbench``, by default
  ``~/.local/share/sellerbench``
- macOS: ``~/Library/Application Support/sellerbench``
- Windows: ``%LOCALAPPDATA%\\sellerbench``

The default cache is ``sellerbench.duckdb`` there, and ``sb.demo()`` keeps each demo
server's database, tokens and cache under ``demo/`` there. Nothing is ever written
inside the installed package.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError
from .schema import MAX_BATCH

__all__ = [
    "AUTO_PUSH",
    "LOCK_TIMEOUT",
    "PUSH",
    "SETTINGS",
    "TIMEOUT",
    "PushDefaults",
    "Secret",
    "Setting",
    "check_all",
    "data_dir",
    "default_cache",
    "flag_of",
    "markdown_table",
    "parse",
    "resolve",
    "value",
]


class Secret(str):
    """A str whose repr hides it. The token is held as one, so a local variable holding
    it stays out of tracebacks that print locals (IPython's ``%xmode Verbose``,
    ``pytest -l``); ``str()`` and f-strings still give the value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<hidden>'"


# -- defaults of the calls: the one place each is written ---------------------------------

LOCK_TIMEOUT = 10.0  # seconds a cache held by another process is waited for (Store)
TIMEOUT = 30.0  # seconds one HTTP request may take (ApiClient)
AUTO_PUSH = True  # push right after each change when the API is reachable (Workbench)


@dataclass(frozen=True)
class PushDefaults:
    """What a push does when not told otherwise: ``wb.push()``, ``changes.push.push()``
    and ``sellerbench push`` all read :data:`PUSH`."""

    wait: float = 3.0  # seconds to spend waiting for changes in backoff to come due
    coalesce: bool = True  # bulk calls where the server offers them
    retry_now: bool = True  # an explicit push ignores the backoff of earlier ones
    chunk: int = MAX_BATCH  # changes per bulk call (the API's largest)
    in_flight: int = 4  # calls under way at once (the client keeps 4 connections alive)


PUSH = PushDefaults()


# -- where data lives ------------------------------------------------------------------


def data_dir() -> Path:
    """The folder for the default cache and demo servers (see the module docstring).

    Absolute, so every process started from anywhere (a kernel in ``notebooks/``, a
    terminal in the home folder) means the same folder. Not created here.
    """
    home = os.environ.get("SELLERBENCH_HOME")
    if home:
        return Path(home).expanduser().resolve()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base).resolve() / "sellerbench"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "sellerbench"
    xdg = os.environ.get("XDG_DATA_HOME")
    base_dir = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else \
        Path.home() / ".local" / "share"
    return base_dir.resolve() / "sellerbench"


def default_cache() -> Path:
    """``sellerbench.duckdb`` in ``data_dir()``: the cache when nothing names one."""
    return data_dir() / "sellerbench.duckdb"


# -- parsers: text in, value out, ValueError with what is accepted ------------------------


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("an http:// or https:// URL, e.g. http://127.0.0.1:8765")
    return text.rstrip("/")


def _token(text: str) -> Secret:
    if not text.strip() or any(c.isspace() for c in text.strip()):
        raise ValueError("the API token as one word, without spaces")
    return Secret(text.strip())


def _path(text: str) -> Path:
    if "\x00" in text:
        raise ValueError("a file path")
    return Path(text).expanduser()


def _seconds(minimum: float, strict: bool) -> Callable[[str], float]:
    def seconds(text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isnan(number) or math.isinf(number) or number < minimum or \
                (strict and number == minimum):
            sign = ">" if strict else ">="
            raise ValueError(f"a number of seconds {sign} {minimum:g}, e.g. 10 or 2.5")
        return number

    return seconds


_SIZE = re.compile(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def _size(text: str) -> str:
    if not _SIZE.fullmatch(text.strip()):
        raise ValueError("an amount of memory such as 2GB or 512MiB")
    return text.strip()


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("1 or 0 (also true/false, yes/no, on/off)")


@dataclass(frozen=True)
class Setting:
    """One setting: ``default`` is text (parsed like a value), or None for no value;
    ``default_text`` is how the README shows it."""

    name: str
    env: str
    default: str | Callable[[], str] | None
    accepts: str
    help: str
    parser: Callable[[str], object]
    default_text: str = ""
    cli: bool = True  # also a flag of the commands that open a cache or talk to the API

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def default_value(self) -> str | None:
        return self.default() if callable(self.default) else self.default


SETTINGS: tuple[Setting, ...] = (
    Setting("api_url", "SELLERBENCH_API_URL", None, "an http(s) URL",
            "Base URL of the seller-collection API.", _url, "none (offline)"),
    Setting("token", "SELLERBENCH_TOKEN", None, "a token",
            "Bearer token for the API (never printed).", _token, "none"),
    Setting("cache", "SELLERBENCH_CACHE", lambda: str(default_cache()), "a file path",
            "Path of the DuckDB cache.", _path, "`sellerbench.duckdb` in the data folder"),
    Setting("lock_timeout", "SELLERBENCH_LOCK_TIMEOUT", f"{LOCK_TIMEOUT:g}", "seconds >= 0",
            "Seconds to wait for a cache held by another process before CacheLockedError.",
            _seconds(0, strict=False), f"{LOCK_TIMEOUT:g}"),
    Setting("auto_push", "SELLERBENCH_AUTO_PUSH", str(int(AUTO_PUSH)), "1 or 0",
            "Push queued changes right after each mutation when the API is reachable.",
            _boolean, str(int(AUTO_PUSH)), cli=False),
    Setting("timeout", "SELLERBENCH_TIMEOUT", f"{TIMEOUT:g}", "seconds > 0",
            "Seconds before one HTTP request times out.", _seconds(0, strict=True),
            f"{TIMEOUT:g}"),
    Setting("memory_limit", "SELLERBENCH_MEMORY_LIMIT", None, "a size, e.g. 2GB",
            "DuckDB's memory limit for the cache, set when the file is opened; past it "
            "queries spill to temp_directory.", _size, "DuckDB's (80% of RAM)", cli=False),
    Setting("temp_directory", "SELLERBENCH_TEMP_DIRECTORY", None, "a folder path",
            "Where DuckDB spills what does not fit in memory_limit, set when the file is "
            "opened.", _path, "`<cache>.tmp` beside the cache", cli=False),
    Setting("home", "SELLERBENCH_HOME", lambda: str(data_dir()), "a folder path",
            "The data folder: the default cache and sb.demo()'s servers live here.", _path,
            "the per-user data folder", cli=False),
)
_BY_NAME = {s.name: s for s in SETTINGS}


def flag_of(name: str) -> str:
    """The CLI flag of a setting: ``lock_timeout`` -> ``--lock-timeout``."""
    return _BY_NAME[name].flag


def _source(setting: Setting, origin: str) -> str:
    if origin == "flag":
        return setting.flag
    if origin == "argument":
        return f"the argument {setting.name}="
    return setting.env


def parse(name: str, text: str, origin: str = "env") -> object:
    """Parse one setting's text; ``origin`` ("env", "flag", "argument") names the source
    in the ConfigError a bad value raises."""
    setting = _BY_NAME[name]
    try:
        return setting.parser(text)
    except ValueError as exc:
        shown = "<hidden>" if name == "token" else repr(text)
        raise ConfigError(
            f"{_source(setting, origin)} is {shown}; it accepts {exc}"
        ) from None


def _raw(name: str, given: object, origin: str) -> tuple[str | None, str]:
    setting = _BY_NAME[name]
    if given == "":  # said explicitly: no value (``connect(api_url="")`` is offline)
        return None, origin
    if given is not None:
        if isinstance(given, bool):
            return ("1" if given else "0"), origin
        return str(given), origin
    text = os.environ.get(setting.env)
    if text not in (None, ""):
        return text, "env"
    return setting.default_value(), "default"


def value(name: str, given: object = None, *, origin: str = "argument") -> object:
    """A setting's parsed value: what the caller gave, else its variable, else its default
    (None when it has none). ``origin`` says what ``given`` is, for the error message."""
    text, source = _raw(name, given, origin)
    if text is None:
        return None
    return parse(name, text, source)


def resolve(name: str, given: object = None) -> str | None:
    """The value of a setting as checked text: what the caller gave, else its variable,
    else its default. A bad value raises ConfigError naming it; booleans come back as
    "1" or "0", numbers as given."""
    text, source = _raw(name, given, "argument")
    if text is None:
        return None
    parsed = parse(name, text, source)
    if isinstance(parsed, bool):
        return "1" if parsed else "0"
    if name == "token":
        return parsed if isinstance(parsed, str) else text
    return str(parsed) if isinstance(parsed, Path) else text


def check_all(given: Mapping[str, object] | None = None, *, origin: str = "flag") -> None:
    """Check every setting at once (what the CLI does before anything else)."""
    given = given or {}
    for setting in SETTINGS:
        value(setting.name, given.get(setting.name), origin=origin)


def markdown_table() -> str:
    """The README's configuration table, derived from SETTINGS (a test keeps them equal)."""
    rows = ["| setting | variable | CLI flag | default | accepts | meaning |",
            "|---|---|---|---|---|---|"]
    for s in SETTINGS:
        flag = f"`{s.flag}`" if s.cli else ""
        rows.append(f"| {s.name} | `{s.env}` | {flag} | {s.default_text} | {s.accepts} "
                    f"| {s.help} |")
    return "\n".join(rows)
