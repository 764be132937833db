"""``sellerbench serve``: the reference API server in the foreground.

Prints the demo tokens, then exactly one line ``sellerbench API ready at http://HOST:PORT``
once it accepts requests. Ctrl-C stops it.

``--db`` is a SQLite file (the default, one process) or a ``postgresql://`` URL. With
PostgreSQL, ``--workers N`` forks N server processes after the schema, demo data and
tokens are in place; they share the listening socket (the kernel spreads connections)
and the database, the run simulator runs in one of them (a leader lock), and activity
streams hear every process's events (LISTEN/NOTIFY). The parent waits for them and
passes a stop signal on, by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from .http import activity
from .http.app import create_app
from .http.auth import ensure_demo_tokens
from .http.faults import Faults, wrap
from .simulator import demo
from .storage.core import Storage, connect, is_postgres

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
    add("--db", default=str(DEFAULT_DB),
        help=f"SQLite file, or a postgresql:// URL for a team (default {DEFAULT_DB})")
    add("--workers", type=int, default=1, metavar="N",
        help="server processes sharing the port (PostgreSQL only; default 1)")
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
        help="answer 429 with Retry-After above N requests per second (the whole server)")
    add("--token-rate-limit", type=_positive, default=None, metavar="N_PER_SEC",
        help="answer 429 with Retry-After above N requests per second of one token "
             "(per server process)")
    add("--fail-rate", type=_rate, default=0.0, metavar="F",
        help="share of requests answered 503 without acting (0-1)")
    add("--drop-before-rate", type=_rate, default=0.0, metavar="F",
        help="share of writes whose connection is dropped before the write (0-1)")
    add("--drop-after-rate", type=_rate, default=0.0, metavar="F",
        help="share of writes whose connection is dropped after the write committed (0-1)")
    add("--fault-seed", type=int, default=0, help="seed of the fault decisions (default 0)")


class _AnnouncingServer(activity.Server):
    """Prints the ready line once the sockets accept connections."""

    announce = True  # a worker other than the first stays quiet

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit and self.announce:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            if ":" in host:
                host = f"[{host}]"
            print(f"sellerbench API ready at http://{host}:{port}", flush=True)


def _faults(args: argparse.Namespace) -> Faults:
    return Faults(
        rate_limit=args.rate_limit, token_rate_limit=args.token_rate_limit,
        fail_rate=args.fail_rate,
        drop_before_rate=args.drop_before_rate, drop_after_rate=args.drop_after_rate,
        seed=args.fault_seed,
    )


def _uvicorn(args: argparse.Namespace, storage: Storage, faults: Faults) -> _AnnouncingServer:
    app = create_app(storage, base_only=args.base_only, faults=faults, run_speed=args.run_speed)
    config = uvicorn.Config(
        wrap(app, faults), host=args.host, port=args.port, log_level="warning",
        lifespan="on", access_log=False, proxy_headers=False, http="h11", ws="none",
        timeout_graceful_shutdown=5,
    )
    return _AnnouncingServer(config, app)


def serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted; the process exit code."""
    db = str(args.db)
    team = is_postgres(db)
    if args.workers < 1:
        print("sellerbench serve: --workers must be 1 or more", file=sys.stderr)
        return 2
    if args.workers > 1 and not team:
        print("sellerbench serve: --workers needs a postgresql:// --db (SQLite serialises "
              "every write in one file: one process serves it best)", file=sys.stderr)
        return 2
    try:
        storage = connect(db)
    except Exception as exc:  # an unreachable server, a wrong URL, a newer schema
        print(f"sellerbench serve: cannot open {_shown(db)}: {exc}", file=sys.stderr)
        return 2
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
            print(f"demo data: {_shown(db)} already holds data; keeping it", flush=True)
        storage.ensure_indexes()
        folder = DEFAULT_DB.parent if team else Path(db).parent
        tokens_file = args.tokens_file or folder / "tokens.json"
        tokens = ensure_demo_tokens(storage, tokens_file)
        for name, token in tokens.items():
            print(f"{name} token: {token}", flush=True)
        print(f"tokens written to {tokens_file}", flush=True)
        if args.workers > 1:
            storage.close()  # no pool threads across fork: each worker opens its own
            return _serve_workers(args, db)
        server = _uvicorn(args, storage, _faults(args))
        server.run()
        return 0 if server.started else 1
    except ValueError as exc:
        print(f"sellerbench serve: {exc}", file=sys.stderr)
        return 2
    finally:
        storage.close()


def _shown(db: str) -> str:
    """``db`` without a password."""
    if not is_postgres(db) or "@" not in db:
        return db
    scheme, rest = db.split("://", 1)
    user, host = rest.rsplit("@", 1)
    return f"{scheme}://{user.split(':', 1)[0]}@{host}"


def _serve_workers(args: argparse.Namespace, db: str) -> int:
    """Fork ``args.workers`` servers on one listening socket; wait for them."""
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    sys.stdout.flush()
    children: list[int] = []
    for index in range(args.workers):
        pid = os.fork()
        if pid == 0:  # a worker: its own storage, app and event loop
            code = 1
            try:
                code = _worker(args, db, sock, announce=index == 0)
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.append(pid)
    sock.close()

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    worst = 0
    for pid in children:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
        if os.waitstatus_to_exitcode(status) != 0:
            worst = 1
    return worst


def _worker(args: argparse.Namespace, db: str, sock: socket.socket, announce: bool) -> int:
    # uvicorn raises the stop signal again once it has stopped; a handler of our own
    # catches it, so the worker exits with its own code rather than "killed by SIGTERM"
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    storage = connect(db)
    try:
        server = _uvicorn(args, storage, _faults(args))
        server.announce = announce
        server.run(sockets=[sock])
        return 0 if server.started else 1
    finally:
        storage.close()
