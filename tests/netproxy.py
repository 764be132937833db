"""A TCP proxy that misbehaves the way networks do, between a client and the real server.

    with FaultProxy(server.url, seed=3, rates={"reset": 0.1, "truncate": 0.1}) as proxy:
        client = ApiClient(proxy.url, token, timeout=1.0)

    with FaultProxy(server.url, cuts=[1500, 900]) as proxy:  # activity streams cut
        wb = sb.connect(proxy.url, token, cache)

Every byte is forwarded both ways unless a fault fires. A fault is drawn per HTTP
request (a chunk from the client that starts with a method), from ``random.Random(seed)``:

- ``reset``: the request is never forwarded; the client's connection is reset (RST).
  The server did nothing.
- ``reset_after``: the request is forwarded; when its answer starts to come back the
  client's connection is reset instead. The server acted; the client cannot know.
- ``truncate``: the answer is cut after a random number of bytes (inside the headers or
  the body) and the connection closed, as a proxy or a crashed server would.
- ``stall``: the answer is held back for ``stall`` seconds (longer than the client's
  read timeout), then the connection is closed. The server acted.
- ``slow``: the answer arrives a few bytes at a time with pauses (its first
  ``slow_bytes``; the rest at full speed, so a big page stays bounded in time).

``exempt`` request paths (``/health`` by default) are never faulted; with ``methods``
(e.g. ``WRITES``) only requests of those methods are (reads pass untouched). ``counts`` says how
many of each fired; ``enabled`` switches every fault off and on while it runs.

``cuts`` are not drawn: each request whose path holds one of ``cut_paths`` (the activity
stream by default) takes the next budget in ``cuts`` (None once they are spent), and
after that many bytes of answer on its connection, wherever that falls (mid-line,
mid-event), the proxy shuts both sides down. The budget stays with the connection until
the next such request, so a stream that ended short of it still gets its cut on the
next answer there. ``cut_count`` says how many connections were cut.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

FAULTS = ("reset", "reset_after", "truncate", "stall", "slow")
_METHODS = (b"GET ", b"POST ", b"PATCH ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ")
WRITES = ("POST", "PATCH", "PUT", "DELETE")


class FaultProxy:
    def __init__(
        self,
        target_url: str,
        *,
        seed: int = 0,
        rates: Mapping[str, float] | None = None,
        exempt: tuple[str, ...] = ("/health",),
        methods: tuple[str, ...] | None = None,
        stall: float = 1.5,
        slow_bytes: int = 2048,
        cuts: Sequence[int] = (),
        cut_paths: tuple[str, ...] = ("/activity",),
    ) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rates = dict(rates or {})
        unknown = set(self.rates) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {unknown}")
        self.exempt = exempt
        self.methods = methods
        self.stall = stall
        self.slow_bytes = slow_bytes
        self.cuts = list(cuts)
        self.cut_paths = cut_paths
        self.cut_count = 0
        self.enabled = True
        self.counts: dict[str, int] = {}
        self.requests = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        host, port = self._listener.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self._spawn(self._accept)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def fired(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)
        for thread in list(self._threads):
            thread.join(5)

    # -- plumbing ----------------------------------------------------------------------

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name="fault-proxy", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(downstream)
                continue
            with self._lock:
                self._sockets = [s for s in self._sockets if s.fileno() != -1]
                self._sockets += [downstream, upstream]
            link: dict = {"fault": None, "budget": None, "cut": None}
            self._spawn(self._requests, downstream, upstream, link)
            self._spawn(self._answers, upstream, downstream, link)

    def _draw(self, path: str, method: str = "GET") -> tuple[str | None, float]:
        """This request's fault (or None) and a number in [0, 1) to place it."""
        with self._lock:
            self.requests += 1
            roll, where = self._rng.random(), self._rng.random()
            spared = self.methods is not None and method not in self.methods
            if not self.enabled or path in self.exempt or spared:
                return None, where
            for name in FAULTS:
                rate = self.rates.get(name, 0.0)
                if roll < rate:
                    self.counts[name] = self.counts.get(name, 0) + 1
                    return name, where
                roll -= rate
        return None, where

    def _requests(self, src: socket.socket, dst: socket.socket, link: dict) -> None:
        """Client -> server; decides each request's fault as it starts."""
        while True:
            data = _recv(src)
            if not data:
                break
            if data.startswith(_METHODS):
                path = _path(data)
                method = data.split(b" ", 1)[0].decode("latin-1")
                fault, where = self._draw(path, method)
                # A cut inside the first 900 bytes: the headers (~150-300) or the body.
                link["fault"], link["budget"] = fault, 1 + int(where * 900)
                if any(part in path for part in self.cut_paths):
                    with self._lock:
                        link["cut"] = self.cuts.pop(0) if self.cuts else None
                if fault == "reset":
                    _reset(src)
                    break
            try:
                dst.sendall(data)
            except OSError:
                break
        _close(dst)

    def _answers(self, src: socket.socket, dst: socket.socket, link: dict) -> None:
        """Server -> client, applying the current request's fault."""
        slow_left = 0
        while True:
            data = _recv(src)
            if not data:
                break
            if link["cut"] is not None and not _spend(dst, data, link, "cut"):
                with self._lock:
                    self.cut_count += 1
                break
            fault = link["fault"]
            if fault == "reset_after":
                _reset(dst)
                break
            if fault == "stall":
                self._closed.wait(self.stall)
                break
            if fault == "truncate" and not _spend(dst, data, link, "budget"):
                break
            if fault == "slow":
                link["fault"], slow_left = None, self.slow_bytes
            if slow_left:
                head, data = data[:slow_left], data[slow_left:]
                slow_left -= len(head)
                if not self._dribble(dst, head):
                    break
            try:
                if data:
                    dst.sendall(data)
            except OSError:
                break
        _close(dst)
        _close(src)

    def _dribble(self, dst: socket.socket, data: bytes) -> bool:
        """Send ``data`` in pieces of 1-64 bytes with 1-3 ms between them."""
        rng = random.Random(len(data))
        at = 0
        while at < len(data) and not self._closed.is_set():
            step = rng.randint(1, 64)
            try:
                dst.sendall(data[at : at + step])
            except OSError:
                return False
            at += step
            time.sleep(rng.uniform(0.001, 0.003))
        return True


def _path(head: bytes) -> str:
    """The path of the request line that starts ``head``, without its query."""
    return head.split(b" ", 2)[1].split(b"?", 1)[0].decode("latin-1") if b" " in head else ""


def _spend(dst: socket.socket, data: bytes, link: dict, budget: str) -> bool:
    """Take ``data`` from the link's ``budget``; once it runs out, send only what is left
    of it and say False: the answer is cut there."""
    left = link[budget]
    if len(data) < left:
        link[budget] = left - len(data)
        return True
    with contextlib.suppress(OSError):
        dst.sendall(data[:left])
    return False


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer or a middlebox does.

    SHUT_RD first: it wakes the other thread of the link blocked in ``recv`` on this
    socket (sends nothing). Without it the close only drops this thread's reference,
    the kernel keeps the socket open for that ``recv``, and the RST is never sent: the
    client waits out its whole read timeout instead of seeing the reset."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
