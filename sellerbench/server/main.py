"""``sellerbench serve``: the reference API server in the foreground.

Prints the demo tokens, then exactly one line ``sellerbench API ready at http://HOST:PORT``
once it accepts requests. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from . import activity, demo
from .app import create_app
from .auth import ensure_demo_tokens
from .faults import Faults, wrap
from .storage import SQLiteStorage

__all__ = ["add_serve_arguments", "serve"]

DEFAULT_DB = Path("data") / "server.sqlite3"


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1, not {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sellerbench serve``."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8765, help="TCP port; 0 picks a free one (default 8765)")
    add("--db", type=Path, default=DEFAULT_DB, help=f"SQLite database (default {DEFAULT_DB})")
    add("--demo", type=int, default=0, metavar="N",
        help="create N demo sellers and a run history when the database is empty")
    add("--seed", type=int, default=7, help="seed of the demo data (default 7)")
    add("--tokens-file", type=Path, default=None,
        help="where the demo tokens are written as JSON (default tokens.json beside --db)")
    add("--base-only", action="store_true",
        help="serve the base contract only: no extensions, POST /sellers/{id}/flag toggles")
    add("--run-speed", type=_positive, default=1.0,
        help="how fast simulated collection runs advance (2 = twice as fast)")
    add("--rate-limit", type=_positive, default=None, metavar="N_PER_SEC",
        help="answer 429 with Retry-After above N requests per second")
    add("--fail-rate", type=_rate, default=0.0, metavar="F",
        help="share of requests answered 503 without acting (0-1)")
    add("--drop-before-rate", type=_rate, default=0.0, metavar="F",
        help="share of writes whose connection is dropped before the write (0-1)")
    add("--drop-after-rate", type=_rate, default=0.0, metavar="F",
        help="share of writes whose connection is dropped after the write committed (0-1)")
    add("--fault-seed", type=int, default=0, help="seed of the fault decisions (default 0)")


class _AnnouncingServer(activity.Server):
    """Prints the ready line once the sockets accept connections."""

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            if ":" in host:
                host = f"[{host}]"
            print(f"sellerbench API ready at http://{host}:{port}", flush=True)


def serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted; the process exit code."""
    db = Path(args.db)
    storage = SQLiteStorage(db)
    try:
        if args.demo and storage.is_empty():
            summary = demo.generate(storage, args.demo, args.seed)
            print(
                f"demo data: {summary['sellers']} sellers ({summary['flagged']} flagged, "
                f"{summary['deleted']} deleted), {summary['runs']} runs "
                f"in {summary['seconds']:.1f} s",
                flush=True,
            )
        elif args.demo:
            print(f"demo data: {db} already holds data; keeping it", flush=True)
        storage.ensure_indexes()
        tokens_file = args.tokens_file or db.parent / "tokens.json"
        tokens = ensure_demo_tokens(storage, tokens_file)
        for name, token in tokens.items():
            print(f"{name} token: {token}", flush=True)
        print(f"tokens written to {tokens_file}", flush=True)
        faults = Faults(
            rate_limit=args.rate_limit, fail_rate=args.fail_rate,
            drop_before_rate=args.drop_before_rate, drop_after_rate=args.drop_after_rate,
            seed=args.fault_seed,
        )
        app = create_app(
            storage, base_only=args.base_only, faults=faults, run_speed=args.run_speed
        )
        config = uvicorn.Config(
            wrap(app, faults), host=args.host, port=args.port, log_level="warning",
            lifespan="on", access_log=False, proxy_headers=False, http="h11", ws="none",
            timeout_graceful_shutdown=5,
        )
        server = _AnnouncingServer(config, app)
        server.run()
        return 0 if server.started else 1
    except ValueError as exc:
        print(f"sellerbench serve: {exc}", file=sys.stderr)
        return 2
    finally:
        storage.close()
