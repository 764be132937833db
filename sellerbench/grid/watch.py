"""CacheWatcher: notice a change of the cache made by another process.

A sync in a terminal (``sellerbench sync``) or a flag in another kernel writes the same
DuckDB file; the workbench of this kernel is not told. The grid polls instead:

- every ``interval`` seconds (2 s), ``os.stat`` of the cache file and its write-ahead
  log (``<cache>.wal``): two system calls, no DuckDB connection, nothing read;
- only when one of them changed: a cheap version query (``VERSION_SQL``): the sync
  checkpoints (``sync_state``), the newest queued change and the pending count, and the
  seller count. A checkpoint of the WAL into the file (DuckDB does it when the last
  connection closes) changes the files but not the version: no refresh for it.
- a new version still unmarked at the next poll calls ``on_change()`` (the grid
  re-reads its rows and says so): a change is shown 2 to 4 s after it was written.

The grid calls ``told()`` after a change it was told about (its own flag, a sync in this
kernel): the next poll re-bases on the cache as it is (``mark()``), so the change is not
counted a second time, and the action does not wait for the version query. A busy or
missing cache is tried again at the next tick; the thread is a daemon, ``stop()`` ends it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import SellerbenchError

__all__ = ["VERSION_SQL", "CacheWatcher"]

VERSION_SQL = """
SELECT (SELECT CAST(list(s ORDER BY s.feed) AS VARCHAR) FROM sync_state s),
       (SELECT max(seq) FROM mutations),
       (SELECT count(*) FROM mutations WHERE state = 'pending'),
       (SELECT count(*) FROM sellers)
"""


def _files(path: Path) -> tuple[Any, ...]:
    out: list[Any] = []
    for name in (path, path.with_name(path.name + ".wal")):
        try:
            st = os.stat(name)
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


class CacheWatcher:
    """Polls a store's files; calls ``on_change`` when another process changed it."""

    def __init__(self, store: Any, on_change: Callable[[], None], *,
                 interval: float = 2.0) -> None:
        self.store = store
        self.on_change = on_change
        self.interval = interval
        self.checks = 0  # version queries run (tests read it)
        self.changes = 0  # changes noticed
        self._stop = threading.Event()
        self._files: tuple[Any, ...] | None = None
        self._version: tuple[Any, ...] | None = None
        self._candidate: tuple[Any, ...] | None = None  # a new version seen once
        self._rebase = False  # told() since the last poll
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.mark()
        self._thread = threading.Thread(target=self._run, name="sellerbench-grid-watch",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def told(self) -> None:
        """A change this kernel made was shown: the next poll takes the cache as it is
        then as known (``mark`` on the watcher's thread, off the caller's time)."""
        self._rebase = True

    def mark(self) -> None:
        """The cache as it is now is known (a change this kernel was told about)."""
        self._rebase = False
        self._files = _files(Path(self.store.path))
        self._candidate = None
        try:
            self._version = self._read_version()
        except (SellerbenchError, OSError):
            self._version = None

    def _read_version(self) -> tuple[Any, ...]:
        with self.store.connect() as con:
            row = con.execute(VERSION_SQL).fetchone()
        return tuple(row) if row else ()

    def check(self) -> bool:
        """One poll: True when another process changed the cache (``on_change`` called).

        A new version is acted on only when the next poll still sees it unmarked: a
        change of this kernel is written before the grid is told (and marks it), and a
        poll in between must not take it for another process's (that would re-read
        every row instead of the changed ones)."""
        if self._rebase:
            self.mark()
            return False
        if self._candidate is None:
            files = _files(Path(self.store.path))
            if files == self._files:
                return False
            self._files = files
        try:
            version = self._read_version()
        except (SellerbenchError, OSError):
            return False  # busy (another process writes): the next tick looks again
        if version == self._version:
            self._candidate = None
            return False  # a checkpoint, a read that touched the files, or marked
        if version != self._candidate:
            self._candidate = version  # seen once: looked at again next tick
            return False
        self._version, self._candidate = version, None
        self.changes += 1
        self.on_change()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.checks += 1
            try:
                self.check()
            except Exception:  # a watcher must never die of one bad tick
                continue
