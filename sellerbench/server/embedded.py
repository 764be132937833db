"""The reference server in a background thread on a free loopback port.

``start()`` returns once the server accepts requests; ``stop()`` ends the thread and
closes the database (safe to call twice). ``sb.demo()`` and the test fixtures use it::

    server = start(n=300)
    server.url, server.tokens["analyst"], server.data_dir
    server.faults.fail_rate = 0.5     # misbehave from now on
    server.stop()
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from ..settings import data_dir
from .http import activity
from .http.app import create_app
from .http.auth import ensure_demo_tokens
from .http.faults import Faults, wrap
from .simulator import demo
from .storage.core import Storage, connect

__all__ = ["EmbeddedServer", "data_root", "start"]

DB_NAME = "server.sqlite3"
TOKENS_NAME = "tokens.json"


def data_root() -> Path:
    """The per-user data folder (``sellerbench.settings.data_dir()``: SELLERBENCH_HOME,
    else e.g. ``~/.local/share/sellerbench``); demo servers live under ``demo/`` there,
    never inside the installed package or a guessed checkout."""
    return data_dir()


def _fresh_dir() -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = data_root() / "demo" / f"{stamp}-{os.getpid()}-{secrets.token_hex(3)}"
    path.mkdir(parents=True)
    return path


def _bind(port: int) -> socket.socket:
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
    # and without it every response waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@dataclass
class EmbeddedServer:
    """A running reference server: its url, tokens, data directory and fault switches."""

    url: str
    tokens: dict[str, str]
    data_dir: Path
    faults: Faults
    storage: Storage
    app: Any
    demo_summary: dict[str, Any] | None = None
    _server: Any = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _sock: socket.socket | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # never the tokens
        return f"<EmbeddedServer {self.url} data_dir={str(self.data_dir)!r}>"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, join the thread, close the database. Idempotent."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
            self._thread = None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        self.storage.close()

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    n: int = 2000,
    seed: int = 7,
    base_only: bool = False,
    run_speed: float = 1.0,
    data_dir: str | os.PathLike[str] | None = None,
    faults: Faults | None = None,
    port: int = 0,
    startup_timeout: float = 30.0,
    db: str | None = None,
) -> EmbeddedServer:
    """Create demo data (when the database is empty) and serve it on 127.0.0.1.

    ``db``: a ``postgresql://`` URL to keep the data there (the tokens file stays in
    the data folder); by default a SQLite file in the data folder."""
    folder = Path(data_dir) if data_dir is not None else _fresh_dir()
    folder.mkdir(parents=True, exist_ok=True)
    storage = connect(db if db is not None else folder / DB_NAME)
    summary = None
    if n and storage.is_empty():
        summary = demo.generate(storage, n, seed)
    storage.ensure_indexes()
    tokens = ensure_demo_tokens(storage, folder / TOKENS_NAME)
    faults = faults if faults is not None else Faults()
    app = create_app(storage, base_only=base_only, faults=faults, run_speed=run_speed)
    sock = _bind(port)
    config = uvicorn.Config(
        wrap(app, faults), log_level="warning", lifespan="on", access_log=False,
        proxy_headers=False, http="h11", ws="none", timeout_graceful_shutdown=2,
    )
    server = activity.Server(config, app)  # it leaves signals alone off the main thread
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="sellerbench-server", daemon=True
    )
    host, bound_port = sock.getsockname()[:2]
    embedded = EmbeddedServer(
        url=f"http://{host}:{bound_port}", tokens=tokens, data_dir=folder, faults=faults,
        storage=storage, app=app, demo_summary=summary, _server=server, _thread=thread,
        _sock=sock,
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            embedded.stop()
            raise RuntimeError("the embedded server did not start (see the log above)")
        time.sleep(0.01)
    return embedded
