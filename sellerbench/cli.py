"""The ``sellerbench`` command: a thin shell over the library.

Each subcommand is a small function taking the parsed arguments; options that are
settings come from ``settings.SETTINGS`` so the CLI, ``sb.connect()`` and the README agree.

What a person sees in the terminal:

- a bad flag, argument or SELLERBENCH_* variable is one line naming it and what it
  accepts, exit code 2 (never a traceback);
- an error sellerbench raises on purpose is one line, exit code 1, with the fix spelled
  as CLI flags rather than Python arguments (``_for_the_terminal``);
- commands that only read (``status``, ``sql``, ``export``, ``runs``, ``push --pending``) open the
  cache read-only: they never create a cache nor turn another file into one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

from .errors import CacheError, ConfigError, SellerbenchError
from .settings import PUSH, SETTINGS, flag_of, value

__all__ = ["build_parser", "main"]

# Settings that are flags of the commands that talk to a cache or an API.
_CONNECTION = tuple(s.name for s in SETTINGS if s.cli)
# What a new cache file may be called: `--cache notes.txt` is a mistake, not a new cache.
CACHE_SUFFIXES = (".duckdb", ".db", ".ddb")
_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB file


class UsageError(SellerbenchError):
    """A bad flag, argument or variable: one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (``sellerbench export: ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


# -- argument types: each says what it accepts -------------------------------------------


def _number(kind: type, minimum: float, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            number = kind(text)
        except ValueError:
            number = None
        if number is None or number != number or number < minimum or number == float("inf"):
            raise argparse.ArgumentTypeError(f"accepts {what}, not {text!r}")
        return number

    parse.__name__ = what  # argparse names the type in some messages
    return parse


_COUNT = _number(int, 1, "a whole number >= 1")
_SECONDS = _number(float, 0, "a number of seconds >= 0")
_INTERVAL = _number(float, 0.1, "a number of seconds >= 0.1")


def _report_or_day(text: str) -> date | Path:
    """``--since``: a day, or the folder (or report.html) of a report that exists."""
    with contextlib.suppress(ValueError):
        return date.fromisoformat(text)
    if Path(text).expanduser().exists():
        return Path(text).expanduser()
    raise argparse.ArgumentTypeError(
        f"accepts a date like 2024-05-01 or a previous report's folder, not {text!r}"
    )


# -- settings, the cache file and the workbench -----------------------------------------


def _setting(args: argparse.Namespace, name: str) -> Any:
    """A setting's checked value: its flag when given, else its variable or default."""
    given = getattr(args, name, None)
    return value(name, given, origin="flag")


def _check_settings(args: argparse.Namespace) -> None:
    """Every setting checked before anything runs, the flags and the variables alike."""
    for setting in SETTINGS:
        _setting(args, setting.name)


def _cache_path(args: argparse.Namespace, *, must_exist: bool) -> Path:
    """The cache the command will open, refused before DuckDB sees it when it is another
    kind of file, or missing for a command that only reads."""
    path = Path(_setting(args, "cache"))
    shown = flag_of("cache") if getattr(args, "cache", None) else "SELLERBENCH_CACHE"
    if path.is_dir():
        raise UsageError(f"{shown} {path} is a folder; it accepts a DuckDB file path")
    if path.exists():
        with path.open("rb") as handle:
            head = handle.read(12)
        empty_other = not head and path.suffix.lower() not in CACHE_SUFFIXES
        if (len(head) >= 12 and head[8:12] != _DUCKDB_MAGIC) or 0 < len(head) < 12 or \
                empty_other:  # an empty notes.txt is not a cache either
            raise UsageError(
                f"{shown} {path} is not a DuckDB file; it accepts a sellerbench cache "
                f"(or a new file name ending in {' or '.join(CACHE_SUFFIXES)})"
            )
        return path
    if must_exist:
        raise CacheError(
            f"no cache at {path}; `sellerbench sync` creates it (this command only reads)"
        )
    if path.suffix.lower() not in CACHE_SUFFIXES:
        raise UsageError(
            f"{shown} {path} does not exist and is not named like a cache; it accepts a "
            f"file name ending in {' or '.join(CACHE_SUFFIXES)}"
        )
    return path


def _workbench(args: argparse.Namespace, *, read_only: bool = False) -> Any:
    from .workbench import connect

    _check_settings(args)
    cache = _cache_path(args, must_exist=read_only)
    if getattr(args, "timeout", None) is not None:  # connect() reads it from the variable
        os.environ["SELLERBENCH_TIMEOUT"] = str(_setting(args, "timeout"))
    return connect(
        getattr(args, "api_url", None), getattr(args, "token", None), cache,
        lock_timeout=_setting(args, "lock_timeout"), read_only=read_only,
    )


def _print(data: object) -> None:
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


# -- commands ----------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from .server.main import serve

    return serve(args)


def cmd_users(args: argparse.Namespace) -> int:
    """``sellerbench users add|list|revoke|rotate``: the people of a team server, straight
    on its database (the SQLite file or PostgreSQL URL given to ``serve --db``)."""
    from .errors import UserError

    try:
        from .server.main import DEFAULT_DB
        from .server.storage import people
        from .server.storage.core import Busy, Conflict, Duplicate, connect
    except ImportError:  # the server is an extra: sellerbench[server]
        return _server_missing(args)
    db = args.db or str(DEFAULT_DB)
    if not re.match(r"^postgres(ql)?://", db) and not Path(db).is_file():
        raise UsageError(f"no server database at {db}: give --db (the path or postgresql:// "
                         "URL that `sellerbench serve --db` uses)")
    try:
        storage = connect(db)
    except Exception as exc:  # an unreachable server, a wrong URL, a newer schema
        raise ConfigError(f"cannot open the server database: {str(exc).splitlines()[0]}"
                          " (check --db)") from exc
    try:
        if args.action == "list":
            found = [p.as_dict() for p in people.list_users(storage)]
            if args.json:
                _print(found)
            else:
                print(f"{'NAME':<24} {'ROLE':<8} {'CREATED':<20} {'LAST SEEN':<20} REVOKED")
                for p in found:
                    print(f"{p['name']:<24} {p['role']:<8} {_day_time(p['created_at']):<20} "
                          f"{_day_time(p['last_seen_at']):<20} {_day_time(p['revoked_at'])}")
        elif args.action == "add":
            token = people.add_user(storage, args.name, args.role)
            print(f"user {args.name} ({args.role}) added; its token, shown this once:\n{token}")
        elif args.action == "rotate":
            token = people.rotate_user(storage, args.name)
            print(f"user {args.name}: every older token is refused within a second; "
                  f"the new token, shown this once:\n{token}")
        else:
            changed = people.revoke_user(storage, args.name)
            print(f"user {args.name} revoked: its tokens are refused within a second"
                  if changed else f"user {args.name} was revoked already")
    except (Busy, Conflict, Duplicate) as exc:
        raise UserError(f"the database is busy or a concurrent change won ({exc}); "
                        "run the command again") from exc
    finally:
        storage.close()
    return 0


def _day_time(stamp: str | None) -> str:
    return "-" if stamp is None else stamp[:19].replace("T", " ")


def _add_users_parser(sub: Any) -> None:
    users = sub.add_parser("users", help="the people of a team server: add, list, revoke, "
                           "rotate (on its database, while it runs)")
    actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("add", "add a user with a role; prints its token once"),
                       ("list", "names, roles, created, last seen (never a token)"),
                       ("revoke", "take every token of a user away"),
                       ("rotate", "replace a user's tokens with a new one, printed once")):
        action = actions.add_parser(name, help=text)
        if name != "list":
            action.add_argument("name", help="the user's name")
        if name == "add":
            action.add_argument("--role", required=True, choices=("analyst", "viewer", "admin"),
                                help="analyst: read and write sellers; viewer: read only; "
                                "admin: everything, runs and users too")
        if name == "list":
            action.add_argument("--json", action="store_true", help="print JSON")
        action.add_argument("--db", default=None,
                            help="the server's SQLite file or postgresql:// URL "
                            "(default: serve's default)")
    users.set_defaults(func=cmd_users)


def cmd_sync(args: argparse.Namespace) -> int:
    _check_settings(args)
    if not _setting(args, "api_url"):
        raise UsageError("sync needs an API: give --api-url and --token, or set "
                         "SELLERBENCH_API_URL and SELLERBENCH_TOKEN")
    with _workbench(args) as wb:
        report = wb.sync(progress=not args.quiet, full=args.full)
    print(report)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    with _workbench(args, read_only=args.pending) as wb:
        if args.pending:
            frame = wb.pending()
            print(frame.to_string(index=False) if len(frame) else "nothing queued")
            return 0
        report = wb.push(wait=args.wait, coalesce=PUSH.coalesce and not args.one_by_one)
    print(report)
    return 0 if report.still_pending == 0 and report.failed == 0 else 1


def _probe_api(url: str, token: str, timeout: float) -> dict[str, Any]:
    """Did the API answer, and did it take the token? One try each, no retries."""
    from .api.client import ApiClient
    from .errors import ApiError, AuthError

    answer: dict[str, Any] = {"url": url, "answered": False, "token": "not checked"}
    with ApiClient(url, token, timeout=min(timeout, 10.0), retries=0) as client:
        try:
            health = client.health()
        except ApiError as exc:
            answer["error"] = str(exc)
            return answer
        answer.update(answered=True, api_version=health.api_version,
                      features=sorted(health.features))
        try:
            client.categories()  # needs the token's read permission, costs one small page
        except AuthError as exc:
            answer.update(token="refused", error=str(exc))
        except ApiError as exc:
            answer.update(token="not checked", error=str(exc))
        else:
            answer["token"] = "accepted"
    return answer


def cmd_status(args: argparse.Namespace) -> int:
    """What the cache holds (read-only) and whether the API answers and takes the token.
    Exit 0 when both are fine or no API is set; 1 when the API did not answer or refused
    the token."""
    _check_settings(args)
    url, token = _setting(args, "api_url"), _setting(args, "token")
    if url and not token:
        raise ConfigError("an API url is set but no token: give --token or set "
                          "SELLERBENCH_TOKEN")
    cache = _cache_path(args, must_exist=False)
    shown: dict[str, Any]
    if cache.exists():
        from .workbench import Workbench, connect

        with connect(None, None, cache, lock_timeout=_setting(args, "lock_timeout"),
                     read_only=True) as offline:
            shown = offline.status()
        assert isinstance(offline, Workbench)
    else:
        shown = {"cache": str(cache), "note": "no cache yet: `sellerbench sync` creates it"}
    if not url:
        shown["api"] = {"url": None, "answered": None,
                        "note": "no API set (--api-url or SELLERBENCH_API_URL): offline"}
        _print(shown)
        return 0
    api = _probe_api(url, str(token), float(_setting(args, "timeout")))
    shown["server"] = url
    shown["api"] = api
    _print(shown)
    if not api["answered"]:
        print(f"sellerbench status: the API at {url} did not answer: {api.get('error')}",
              file=sys.stderr)
        return 1
    if api["token"] != "accepted":
        print(f"sellerbench status: the API at {url} answered but {api['token']} the token"
              f" ({api.get('error')}); check --token or SELLERBENCH_TOKEN", file=sys.stderr)
        return 1
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from .errors import NotFoundError
    from .runs import control as runs

    if args.action == "list" and args.run_id is not None:
        raise UsageError("runs list takes no run id; use `sellerbench runs watch RUN_ID`")
    with contextlib.ExitStack() as stack:
        if args.action == "list":  # reads: the API when it answers, else the cache
            wb = _reading_workbench(args, stack)
            print(runs.table(wb, limit=args.limit))
            return 0
        # Watching syncs the sellers the runs find into the cache, as `sync` does.
        wb = stack.enter_context(_workbench(args))
        if args.run_id is not None:
            try:
                runs.run(wb, args.run_id)  # before any progress line is printed
            except NotFoundError:
                raise UsageError(
                    f"runs watch: there is no collection run {args.run_id!r}; "
                    f"`sellerbench runs` lists them"
                ) from None
        watcher = runs.watch_text(wb, args.run_id, interval=args.interval)
        return 1 if watcher.message.startswith("stopped") else 0


def _reading_workbench(args: argparse.Namespace, stack: contextlib.ExitStack) -> Any:
    """A workbench for a command that only reads: the cache opened read-only, or, with no
    cache file yet and an API set, a throwaway cache removed when the command ends."""
    _check_settings(args)
    cache = _cache_path(args, must_exist=False)
    if cache.exists():
        return stack.enter_context(_workbench(args, read_only=True))
    if not _setting(args, "api_url"):
        _cache_path(args, must_exist=True)  # raises: no cache, nothing to read
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="sellerbench-"))
    args.cache = str(Path(folder) / "cache.duckdb")
    return stack.enter_context(_workbench(args))


def _check_where(wb: Any, where: str | None) -> None:
    """A --where mistake named before the export starts, in the words wb.sellers and the
    grid use (cache/filters.py): the unknown column and the nearest ones, or the syntax
    error in the predicate as typed."""
    from .cache.filters import SellerFilter

    if where is None or not wb.store.path.exists():
        return
    seller_filter = SellerFilter(where=where)
    with wb.store.connect() as con:
        seller_filter.check(con)


def cmd_export(args: argparse.Namespace) -> int:
    flagged = True if args.flagged else False if args.unflagged else None
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    if args.columns is not None and not columns:
        raise UsageError("--columns is empty; it accepts column names separated by commas")
    # Reading the cache never changes it. With no cache file yet, the server's export
    # streams through a throwaway cache (the workbench needs one) that is removed after.
    _check_settings(args)
    if args.source == "cache":
        _cache_path(args, must_exist=True)
    with contextlib.ExitStack() as stack:
        existing = _cache_path(args, must_exist=False).exists()
        wb = _reading_workbench(args, stack)
        source = args.source if existing else "server"
        _check_where(wb, args.where)
        report = wb.export(
            args.path, flagged=flagged, search=args.search, where=args.where, columns=columns,
            format=args.format, source=source, overwrite=args.overwrite,
            neutralize=not args.no_neutralize, progress=not args.quiet,
        )
    print(report)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    try:
        from .reports.report import run_report
    except ImportError as exc:
        raise SellerbenchError(
            f"the report needs the report extra ({exc.name} is missing): "
            f"pip install 'sellerbench[report]'"
        ) from None
    _check_settings(args)
    url = _setting(args, "api_url")
    # Without an API the report reads the cache as it is: it must exist.
    cache = _cache_path(args, must_exist=not url)
    flagged = True if args.flagged or args.flagged_only else False if args.unflagged else None
    output = args.output or str(Path("reports") / datetime.now(UTC).strftime("%Y-%m-%d_%H%M%S"))
    result = run_report(
        output, title=args.title, flagged=flagged, search=args.search, where=args.where,
        period=args.period, since=args.since, provenance=args.provenance, pdf=args.pdf,
        api_url=url, token=_setting(args, "token"), cache=cache,
        progress=not args.quiet, overwrite=args.overwrite,
    )
    print(result)
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Move a damaged cache aside, keeping the queued changes it can still read."""
    from .cache.store import Store

    _check_settings(args)
    # Another kind of file is refused, never moved aside: only a DuckDB file is rebuilt.
    path = _cache_path(args, must_exist=True)
    store = Store(path, lock_timeout=_setting(args, "lock_timeout"))
    if not args.force:
        problem = _damage(path, float(_setting(args, "lock_timeout")))
        if problem is None:
            print(f"the cache {path} reads fine; nothing rebuilt (--force rebuilds anyway)")
            return 0
    print(store.rebuild())
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    """Run read-only SQL over the cache (opened read-only) and print the result as CSV;
    what writes or changes a setting is refused as ``wb.sql`` refuses it."""
    from .cache.frames import sql_frame

    _check_settings(args)
    with _workbench(args, read_only=True) as wb:
        frame = sql_frame(wb.store, args.query)
    frame.to_csv(sys.stdout, index=False)
    return 0


def _damage(path: Path, lock_timeout: float) -> str | None:
    """Why the cache cannot be read in full, or None when every table reads."""
    from .cache.store import Store
    from .errors import CacheCorruptError, CacheVersionError

    try:
        store = Store(path, lock_timeout=lock_timeout, read_only=True)
        with store.connect() as con:
            for table in ("sellers", "collection_runs", "mutations", "sync_state", "meta"):
                con.execute(f"SELECT count(*), sum(hash(t)) FROM {table} t").fetchall()
    except CacheVersionError:
        return None  # a newer or older file is not a damaged one
    except CacheCorruptError as exc:
        return str(exc)
    except Exception as exc:  # any other failure to read counts as damage here
        return str(exc).splitlines()[0]
    return None


# -- the parser --------------------------------------------------------------------------


def _add_connection_options(parser: argparse.ArgumentParser,
                            names: Sequence[str] = _CONNECTION) -> None:
    for setting in SETTINGS:
        if setting.name in names:
            parser.add_argument(setting.flag, default=None, metavar=setting.name.upper(),
                                help=f"{setting.help} [{setting.env}]")


def _add_seller_filter(parser: argparse.ArgumentParser, old_spelling: bool = False) -> None:
    """The seller filter of ``wb.sellers()`` as flags: --flagged/--unflagged, --search,
    --where (``old_spelling``: --flagged-only too, hidden)."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--flagged", action="store_true", help="only flagged sellers")
    if old_spelling:
        which.add_argument("--flagged-only", action="store_true", help=argparse.SUPPRESS)
    which.add_argument("--unflagged", action="store_true", help="only unflagged sellers")
    parser.add_argument("--search", help="names containing this text (case-insensitive)")
    parser.add_argument("--where", help="a SQL predicate over visible_sellers (trusted)")


def build_parser() -> argparse.ArgumentParser:
    doc = __doc__ or "sellerbench"
    parser = _Parser(prog="sellerbench", description=doc.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the reference API server")
    try:
        from .server.main import add_serve_arguments
    except ImportError:  # the server is an extra: sellerbench[server]
        serve.set_defaults(func=_server_missing)
    else:
        add_serve_arguments(serve)
        serve.set_defaults(func=cmd_serve)

    _add_users_parser(sub)

    sync = sub.add_parser("sync", help="push queued changes, then pull into the cache")
    _add_connection_options(sync)
    sync.add_argument("--full", action="store_true", help="re-read everything from the server")
    sync.add_argument("--quiet", action="store_true", help="no progress bar")
    sync.set_defaults(func=cmd_sync)

    push = sub.add_parser("push", help="send queued seller changes to the API now")
    _add_connection_options(push)
    push.add_argument("--wait", type=_SECONDS, default=PUSH.wait,
                      help="seconds to keep retrying changes that failed for now "
                      f"(default {PUSH.wait:g})")
    push.add_argument("--one-by-one", action="store_true",
                      help="one request per change instead of bulk calls")
    push.add_argument("--pending", action="store_true",
                      help="only list the queue (and refused changes), send nothing")
    push.set_defaults(func=cmd_push)

    runs = sub.add_parser(
        "runs", help="list collection runs, or watch active ones (runs watch [RUN_ID])"
    )
    runs.add_argument("action", nargs="?", choices=("list", "watch"), default="list",
                      help="list (default) or watch progress until the runs end")
    runs.add_argument("run_id", nargs="?", help="watch this run (default: every active run)")
    runs.add_argument("--limit", type=_COUNT, default=20, help="runs to list (default 20)")
    runs.add_argument("--interval", type=_INTERVAL, default=2.0,
                      help="seconds between polls where the activity stream is unavailable")
    _add_connection_options(runs)
    runs.set_defaults(func=cmd_runs)

    export = sub.add_parser("export", help="write the sellers you see to CSV, JSON or Parquet")
    export.add_argument("path", help="file to write; the suffix picks the format")
    _add_seller_filter(export)
    export.add_argument("--columns", help="comma-separated columns, in order")
    export.add_argument("--format", choices=("csv", "json", "ndjson", "parquet"))
    export.add_argument("--source", choices=("auto", "cache", "server"), default="auto")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")
    export.add_argument("--no-neutralize", action="store_true",
                        help="write CSV cells starting with = + - @ unchanged")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_connection_options(export)
    export.set_defaults(func=cmd_export)

    report = sub.add_parser(
        "report", help="run the report notebook, write one HTML page (and a PDF)",
        description="Run the report notebook headless and write report.html (charts as "
        "SVG, no script, A4) with its data files, state and manifest into --output. "
        "What changed is counted since --since, by default the newest report in the "
        "same parent folder.")
    _add_seller_filter(report, old_spelling=True)
    report.add_argument("--title", help='the page\'s heading (default "Seller report")')
    report.add_argument("--period", help="which runs: 30d, 2026-11-01 or "
                        "2026-11-01..2026-11-30 (default: all)")
    report.add_argument("--since", metavar="REPORT_OR_DATE", type=_report_or_day,
                        help="count changes since this report's folder or this day "
                        "(YYYY-MM-DD); default: the newest report beside --output")
    report.add_argument("--output", default=None,
                        help="this report's folder (default: reports/<UTC date_time>)")
    report.add_argument("--pdf", action="store_true", help="also print report.pdf (A4)")
    report.add_argument("--provenance", action="store_true",
                        help="show the API's address and the cache's path on the page")
    report.add_argument("--overwrite", action="store_true",
                        help="replace a report already in the folder")
    report.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_connection_options(report)
    report.set_defaults(func=cmd_report)

    status = sub.add_parser(
        "status", help="what the cache holds, what is pending, whether the API answers"
    )
    _add_connection_options(status)
    status.set_defaults(func=cmd_status)

    sql = sub.add_parser("sql", help="run read-only SQL over the cache, print CSV")
    sql.add_argument("query", help="SELECT ... over visible_sellers, sellers, mutations, ...")
    _add_connection_options(sql, ("cache", "lock_timeout"))
    sql.set_defaults(func=cmd_sql)

    rebuild = sub.add_parser(
        "rebuild", help="move a damaged cache aside, keep its queued changes, start afresh"
    )
    rebuild.add_argument("--force", action="store_true",
                         help="rebuild even when the cache reads fine")
    _add_connection_options(rebuild, ("cache", "lock_timeout"))
    rebuild.set_defaults(func=cmd_rebuild)
    return parser


def _server_missing(_args: argparse.Namespace) -> int:
    raise SellerbenchError(
        "the reference server is not installed: pip install 'sellerbench[server]'"
    )


# Library messages spell fixes as Python; in a terminal they name the CLI's flags.
_FOR_THE_TERMINAL: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"pass overwrite=True to replace it"), "add --overwrite to replace it"),
    (re.compile(r"pass overwrite=True"), "add --overwrite"),
    (re.compile(r"check SELLERBENCH_TOKEN or pass token=\.\.\."),
     "check --token or SELLERBENCH_TOKEN"),
    (re.compile(r"pass token=\.\.\. or set SELLERBENCH_TOKEN"),
     "give --token or set SELLERBENCH_TOKEN"),
    (re.compile(r"pass api_url and token to sb\.connect\(\), or set"),
     "give --api-url and --token, or set"),
    (re.compile(r"rebuild it with sellerbench\.store\.Store\((['\"])(.*?)\1\)\.rebuild\(\)"),
     r"rebuild it with `sellerbench rebuild --cache \2`"),
    (re.compile(r"Store\((['\"])(.*?)\1\)\.rebuild\(\)"), r"`sellerbench rebuild --cache \2`"),
    (re.compile(r"pass format='csv' / 'json' / 'ndjson' / 'parquet'"),
     "give --format csv, json, ndjson or parquet"),
    (re.compile(r"source='server'"), "--source server"),
    (re.compile(r"\bwhere must be\b"), "--where must be"),
    (re.compile(r"\bthe where predicate\b"), "the --where predicate"),
    (re.compile(r"\bcolumns is empty; leave it out"), "--columns is empty; leave it out"),
    (re.compile(r"open it once read-write"), "run `sellerbench sync` once"),
)


def for_the_terminal(message: str) -> str:
    """A library message with its Python fixes spelled as CLI flags."""
    for pattern, replacement in _FOR_THE_TERMINAL:
        message = pattern.sub(replacement, message)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the process exit code (0 fine, 1 failed, 2 misused)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and getattr(args, "func", None) is not _server_missing:  # it says why anyway
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.func(args) or 0)
    except (ConfigError, UsageError) as exc:
        print(f"sellerbench {args.command}: {for_the_terminal(str(exc))}", file=sys.stderr)
        return 2
    except SellerbenchError as exc:
        print(f"sellerbench: {for_the_terminal(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
