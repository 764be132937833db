"""The ``sellerbench`` command: a thin shell over the library.

Each subcommand is a small function taking the parsed arguments; options that are
settings come from ``settings.SETTINGS`` so the CLI, ``sb.connect()`` and the README agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .errors import SellerbenchError
from .settings import SETTINGS

__all__ = ["main"]


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    for setting in SETTINGS:
        if setting.name in ("api_url", "token", "cache"):
            flag = "--" + setting.name.replace("_", "-")
            parser.add_argument(flag, default=None, help=f"{setting.help} [{setting.env}]")


def _workbench(args: argparse.Namespace):
    from .workbench import connect

    return connect(args.api_url, args.token, args.cache)


def _print(value: object) -> None:
    print(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def cmd_serve(args: argparse.Namespace) -> int:
    from .server.main import serve

    return serve(args)


def cmd_sync(args: argparse.Namespace) -> int:
    with _workbench(args) as wb:
        report = wb.sync(progress=not args.quiet, full=args.full)
    print(report)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    with _workbench(args) as wb:
        if args.pending:
            frame = wb.pending()
            print(frame.to_string(index=False) if len(frame) else "nothing queued")
            return 0
        report = wb.push(wait=args.wait, coalesce=not args.one_by_one)
    print(report)
    return 0 if report.still_pending == 0 and report.failed == 0 else 1


def cmd_status(args: argparse.Namespace) -> int:
    with _workbench(args) as wb:
        _print(wb.status())
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from . import runs

    with _workbench(args) as wb:
        if args.action == "watch":
            watcher = runs.watch_text(wb, args.run_id, interval=args.interval)
            return 1 if watcher.message.startswith("stopped") else 0
        print(runs.table(wb, limit=args.limit))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    flagged = True if args.flagged else False if args.unflagged else None
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    with _workbench(args) as wb:
        report = wb.export(
            args.path, flagged=flagged, search=args.search, where=args.where, columns=columns,
            format=args.format, source=args.source, overwrite=args.overwrite,
            neutralize=not args.no_neutralize, progress=not args.quiet,
        )
    print(report)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .reports import run_report

    result = run_report(
        args.output, flagged_only=args.flagged_only, since=args.since,
        api_url=args.api_url, token=args.token, cache=args.cache, progress=not args.quiet,
    )
    print(result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sellerbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the reference API server")
    try:
        from .server.main import add_serve_arguments
    except ImportError:  # the server package is optional for a client-only install
        serve.set_defaults(func=lambda _args: print("the server is not installed") or 1)
    else:
        add_serve_arguments(serve)
        serve.set_defaults(func=cmd_serve)

    sync = sub.add_parser("sync", help="push queued changes, then pull into the cache")
    _add_connection_options(sync)
    sync.add_argument("--full", action="store_true", help="re-read everything from the server")
    sync.add_argument("--quiet", action="store_true", help="no progress bar")
    sync.set_defaults(func=cmd_sync)

    push = sub.add_parser("push", help="send queued seller changes to the API now")
    _add_connection_options(push)
    push.add_argument("--wait", type=float, default=10.0,
                      help="seconds to keep retrying changes that failed for now (default 10)")
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
    runs.add_argument("--limit", type=int, default=20, help="runs to list (default 20)")
    runs.add_argument("--interval", type=float, default=2.0,
                      help="seconds between polls where the activity stream is unavailable")
    _add_connection_options(runs)
    runs.set_defaults(func=cmd_runs)

    export = sub.add_parser("export", help="write the sellers you see to CSV, JSON or Parquet")
    export.add_argument("path", help="file to write; the suffix picks the format")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--flagged", action="store_true", help="only flagged sellers")
    which.add_argument("--unflagged", action="store_true", help="only unflagged sellers")
    export.add_argument("--search", help="names containing this text (case-insensitive)")
    export.add_argument("--where", help="a SQL predicate over visible_sellers (trusted)")
    export.add_argument("--columns", help="comma-separated columns, in order")
    export.add_argument("--format", choices=("csv", "json", "ndjson", "parquet"))
    export.add_argument("--source", choices=("auto", "cache", "server"), default="auto")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")
    export.add_argument("--no-neutralize", action="store_true",
                        help="write CSV cells starting with = + - @ unchanged")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_connection_options(export)
    export.set_defaults(func=cmd_export)

    report = sub.add_parser("report", help="run the report notebook, write offline HTML")
    report.add_argument("--flagged-only", action="store_true", help="only flagged sellers")
    report.add_argument("--since", help="runs and seller changes on or after this date")
    report.add_argument("--output", default="report", help="folder to write (default: report)")
    report.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_connection_options(report)
    report.set_defaults(func=cmd_report)

    status = sub.add_parser("status", help="what the cache holds and what is pending")
    _add_connection_options(status)
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except SellerbenchError as exc:
        print(f"sellerbench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
