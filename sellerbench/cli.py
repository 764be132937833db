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


def cmd_status(args: argparse.Namespace) -> int:
    with _workbench(args) as wb:
        _print(wb.status())
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
