"""A TCP proxy that cuts activity-stream connections part-way through, as networks do.

    with CuttingProxy(server.url, cuts=[1500, 900]) as proxy:
        wb = sb.connect(proxy.url, token, cache)

Every byte is forwarded both ways. When a request for ``.../activity`` passes through a
connection, the next budget in ``cuts`` applies to it: after that many bytes of answer
the proxy shuts both sides down, wherever that falls (mid-line, mid-event). Later
activity requests pass untouched once the budgets are spent. ``cut_count`` says how many
connections were cut.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit


class CuttingProxy:
    def __init__(self, target_url: str, cuts: list[int]) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.cuts = list(cuts)
        self.cut_count = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        host, port = self._listener.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self._spawn(self._accept)

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _kill(sock)
        for thread in list(self._threads):
            thread.join(5)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name="test-proxy", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [downstream, upstream]
            link = {"budget": None}
            self._spawn(self._requests, downstream, upstream, link)
            self._spawn(self._answers, upstream, downstream, link)

    def _requests(self, src: socket.socket, dst: socket.socket, link: dict) -> None:
        while True:
            data = _recv(src)
            if not data:
                break
            if b"/activity" in data:
                with self._lock:
                    link["budget"] = self.cuts.pop(0) if self.cuts else None
            try:
                dst.sendall(data)
            except OSError:
                break
        _kill(dst)

    def _answers(self, src: socket.socket, dst: socket.socket, link: dict) -> None:
        while True:
            data = _recv(src)
            if not data:
                break
            budget = link["budget"]
            if budget is not None and len(data) >= budget:
                with contextlib.suppress(OSError):
                    dst.sendall(data[:budget])
                with self._lock:
                    self.cut_count += 1
                _kill(src)
                break
            if budget is not None:
                link["budget"] = budget - len(data)
            try:
                dst.sendall(data)
            except OSError:
                break
        _kill(dst)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _kill(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
