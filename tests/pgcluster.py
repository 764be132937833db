"""A throw-away PostgreSQL cluster for tests and benchmarks: initdb in a temporary folder,
the server listening on 127.0.0.1 at a free port, stopped by its PID.

Debian's ``postgresql`` package provides the binaries (``scripts/test.sh`` installs it
when missing). PostgreSQL refuses to run as root, so as root the cluster is made and
run as the ``postgres`` user (``runuser``) in a folder handed to that user.

``Cluster.database(name)`` creates a fresh database and returns its URL, so every server
a test starts gets an empty database of its own on the one session-wide cluster.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

__all__ = ["Cluster", "find_bin", "start_cluster"]


def find_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (15 or newer), or None."""
    found = []
    for folder in glob.glob("/usr/lib/postgresql/*/bin"):
        try:
            version = int(Path(folder).parent.name)
        except ValueError:
            continue
        if version >= 15 and (Path(folder) / "initdb").is_file():
            found.append((version, Path(folder)))
    if found:
        return max(found)[1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    """A running cluster: its URL prefix and the postmaster's PID."""

    root: Path
    port: int
    pid: int
    user: str
    _log: BinaryIO | None = field(default=None, repr=False)
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _count: int = 0

    @property
    def url(self) -> str:
        """The ``postgres`` maintenance database."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def database(self, prefix: str = "t") -> str:
        """A new, empty database; its URL."""
        import psycopg

        self._count += 1
        name = f"{prefix}_{os.getpid()}_{self._count}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT), waiting for the postmaster to exit."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # reap what we started (the postmaster, or runuser around it): a zombie
            # would still answer kill(pid, 0)
            if self._proc is not None:
                self._proc.poll()
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            if self._proc is not None and self._proc.returncode is not None \
                    and self._proc.pid == self.pid:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(10)
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(root: Path, *, timeout: float = 60.0) -> Cluster:
    """initdb in ``root`` (created, must not exist or be empty) and start the server."""
    bindir = find_bin()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
    root.mkdir(parents=True, exist_ok=True)
    data, sockets = root / "data", root / "sock"
    sockets.mkdir(exist_ok=True)
    prefix: list[str] = []
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:  # initdb and postgres refuse root: run as the postgres user
        entry = pwd.getpwnam("postgres")
        for path in (root, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        # the folders above root must let that user in (pytest's temp dirs are 0700)
        prefix, user = ["runuser", "-u", "postgres", "--"], "postgres"
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust",
         "-E", "UTF8", "--locale=C", "--no-sync"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    port = _free_port()
    log = open(root / "server.log", "ab")  # noqa: SIM115 - closed when the cluster stops
    # Settings for a small test machine: few connections are needed, durability is not.
    proc = subprocess.Popen(
        [*prefix, str(bindir / "postgres"), "-D", str(data), "-p", str(port),
         "-h", "127.0.0.1", "-k", str(sockets), "-c", "fsync=off",
         "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
         "-c", "max_connections=200", "-c", "shared_buffers=64MB"],
        stdout=log, stderr=log, start_new_session=True,
    )
    pid_file = data / "postmaster.pid"
    deadline = time.monotonic() + timeout
    while True:
        pid = _ready_pid(pid_file)
        if pid is not None:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not start; see {root / 'server.log'}")
        time.sleep(0.05)
    return Cluster(root=root, port=port, pid=pid, user=user, _log=log, _proc=proc)


def _ready_pid(pid_file: Path) -> int | None:
    """The postmaster's PID once its pid file says it accepts connections."""
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return None
    # line 8 is the status: "ready" once connections are accepted
    if len(lines) >= 8 and lines[7].strip() == "ready":
        return int(lines[0])
    return None
