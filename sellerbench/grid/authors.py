"""AuthorLookup: who last changed a seller, for the grid's detail panel, asked off-thread.

The server keeps each seller's changes with their author (``GET /sellers/{id}/history``,
the reference server's ``history`` extension; ``ApiClient.seller_history``). The detail
panel shows the last one: ``Last changed by ana@example.com, 2026-12-07 14:02 (flag)``.

Asked on a thread of its own, never on the thread that handles the widget messages:
with ipykernel 7 a click's message runs on a kernel subshell thread while a cell runs,
and a slow or unreachable server must not hold the grid (its lock, its next click).
Only the latest seller asked for is fetched (a run of clicks down the rows asks once
for the row it stops on); answers are kept per seller until the workbench reports a
change. Whatever the server answers, the panel gets one line of text, never a traceback:

- a server without the extension: ``history not offered by this server``;
- no API (an offline workbench) or a seller only in this cache (``local:`` id): no line;
- an error (unreachable, refused, a timeout): ``last author unknown: <what happened>``.
"""

from __future__ import annotations

import contextlib
import html
import threading
from collections.abc import Callable
from typing import Any

from ..errors import NotFoundError, SellerbenchError

__all__ = ["AuthorLookup", "author_line"]

ASKING = "<i>Last changed by: asking the server…</i>"
NOT_OFFERED = "<i>Last changed by: history not offered by this server.</i>"


def author_line(items: list[dict[str, Any]]) -> str:
    """The detail panel's line for a seller's history (oldest first)."""
    if not items:
        return "<i>Last changed by: no change recorded on the server.</i>"
    last = items[-1]
    user = last.get("user") or "the server's collection runs"
    when = str(last.get("at") or "")[:16].replace("T", " ")
    action = last.get("action")
    tail = f" ({html.escape(str(action))})" if action else ""
    return (f"<b>Last changed by</b> {html.escape(str(user))}"
            f"{', ' + html.escape(when) if when else ''}{tail}")


class AuthorLookup:
    """The last author of sellers, fetched on a worker thread (see the module docstring).

    ``line(seller_id)`` answers at once: the known line, or "asking…" while the worker
    fetches it, then calls ``on_known(seller_id)`` (on the worker thread).
    """

    def __init__(self, client: Any, on_known: Callable[[str], None]) -> None:
        self.client = client
        self.on_known = on_known
        self.asked = 0  # requests made to the server (tests read it)
        self._known: dict[str, str] = {}
        self._wanted: str | None = None
        self._turn = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def line(self, seller_id: str) -> str:
        """HTML for the panel, "" when there is nothing to say (no API, a local seller)."""
        if self.client is None or seller_id.startswith("local:"):
            return ""
        with self._turn:
            if seller_id in self._known:
                return self._known[seller_id]
            if self._closed:
                return ""
            self._wanted = seller_id
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, daemon=True,
                                                name="sellerbench-grid-authors")
                self._thread.start()
            self._turn.notify_all()
        return ASKING

    def forget(self) -> None:
        """A change happened: the next look asks the server again."""
        with self._turn:
            self._known.clear()

    def close(self) -> None:
        with self._turn:
            self._closed = True
            self._turn.notify_all()

    def _work(self) -> None:
        while True:
            with self._turn:
                while self._wanted is None and not self._closed:
                    self._turn.wait()
                if self._closed or self._wanted is None:
                    return
                seller_id, self._wanted = self._wanted, None
            found = self._fetch(seller_id)
            with self._turn:
                self._known[seller_id] = found
                if self._closed:
                    return
            # The panel may be gone or closing: then there is nothing to show it in.
            with contextlib.suppress(Exception):
                self.on_known(seller_id)

    def _fetch(self, seller_id: str) -> str:
        try:
            if "history" not in self.client.features:
                return NOT_OFFERED
            self.asked += 1
            return author_line(self.client.seller_history(seller_id))
        except NotFoundError:
            return "<i>Last changed by: the server does not know this seller.</i>"
        except SellerbenchError as exc:
            return f"<i>Last changed by: unknown ({html.escape(_first_line(exc))}).</i>"
        except Exception as exc:  # never a traceback in the panel
            return f"<i>Last changed by: unknown ({html.escape(type(exc).__name__)}).</i>"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
