"""What a push reports, and the lease that keeps two processes from pushing one file.

``PushReport`` is what ``wb.push()`` returns: counts, never the ids it touched in its
repr (one line, at most 1,000 characters, whatever the size of the push).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ..shortrepr import html_table, one_line

__all__ = ["LEASE", "PushReport", "claim_lease", "progress_bar", "renew_lease"]


@dataclass
class PushReport:
    """What one push did. ``calls`` are write requests; ``coalesced`` of them were bulk."""

    sent: int = 0
    calls: int = 0
    coalesced: int = 0
    reads: int = 0
    succeeded: int = 0
    failed: int = 0
    still_pending: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    note: str | None = None
    # sellers whose visible rows changed; None: more than TOUCH_LIMIT (any row may have)
    touched: frozenset[str] | None = frozenset()

    def merged(self, later: PushReport) -> PushReport:
        """This report and a later round's, as one (counts added, the later state kept)."""
        return PushReport(
            sent=self.sent + later.sent,
            calls=self.calls + later.calls,
            coalesced=self.coalesced + later.coalesced,
            reads=self.reads + later.reads,
            succeeded=self.succeeded + later.succeeded,
            failed=self.failed + later.failed,
            still_pending=later.still_pending,
            seconds=self.seconds + later.seconds,
            failures=self.failures + later.failures,
            note=later.note or self.note,
            touched=None if self.touched is None or later.touched is None
            else self.touched | later.touched,
        )

    def __str__(self) -> str:
        text = (
            f"pushed {self.succeeded} change(s) in {self.calls} call(s) "
            f"({self.coalesced} bulk) in {self.seconds:.2f} s; {self.failed} refused, "
            f"{self.still_pending} still pending"
        )
        if self.reads:
            text += f"; {self.reads} look-up page(s)"
        if self.failures:
            shown = "; ".join(self.failures[:3])
            more = f" (+{len(self.failures) - 3} more)" if len(self.failures) > 3 else ""
            text += f"\nrefused: {shown}{more} (see wb.failed())"
        if self.note:
            text += f"\n{self.note}"
        return text

    def __repr__(self) -> str:
        return one_line(f"<PushReport {self}>")

    def _repr_html_(self) -> str:
        return html_table("push", [
            ("confirmed", f"{self.succeeded:,}"), ("refused", f"{self.failed:,}"),
            ("still pending", f"{self.still_pending:,}"),
            ("calls", f"{self.calls:,} ({self.coalesced:,} bulk)"),
            ("look-up pages", f"{self.reads:,}"), ("seconds", f"{self.seconds:.2f}"),
            *([("refused", "; ".join(self.failures[:3]))] if self.failures else []),
            *([("note", self.note)] if self.note else []),
        ])


@contextlib.contextmanager
def progress_bar(shown: bool) -> Iterator[Any]:
    """A progress bar of changes sent, drawn only once the push has taken a second."""
    from tqdm.auto import tqdm

    bar = tqdm(desc="push", unit=" changes", unit_scale=True, delay=1.0, leave=False,
               disable=not shown)
    try:
        yield bar
    finally:
        bar.close()


# Two kernels may share a cache (short connections interleave): one pushes at a time,
# or both could send the same change (harmless with keys, a double toggle without).
LEASE = "push_lease"
LEASE_SECONDS = 120.0  # renewed at every flush; a killed pusher's lease is taken over


def claim_lease(con: duckdb.DuckDBPyConnection) -> str | None:
    """Take the push lease; or say who holds it (another live process)."""
    rows = con.execute("SELECT value FROM meta WHERE key = ?", [LEASE]).fetchall()
    here = socket.gethostname()
    if rows:
        pid, host, until = _parse_lease(rows[0][0])
        held = pid != os.getpid() and until > time.time()
        if held and (host != here or _alive(pid)):
            return f"process {pid} on {host}"
    renew_lease(con)
    return None


def renew_lease(con: duckdb.DuckDBPyConnection) -> None:
    value = f"{os.getpid()} {socket.gethostname()} {time.time() + LEASE_SECONDS:.0f}"
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [LEASE, value])


def _parse_lease(value: str) -> tuple[int, str, float]:
    try:
        pid, host, until = value.split(" ")
        return int(pid), host, float(until)
    except ValueError:
        return 0, "", 0.0  # unreadable: treat as expired


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
