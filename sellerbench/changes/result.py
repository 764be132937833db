"""What an analyst action returns: a small, read-only sequence of the ids it acted on.

``wb.flag(...)``, ``wb.delete(...)``, ``wb.restore(...)`` and ``wb.create(...)`` return an
:class:`Action`. It is a ``Sequence[str]`` of the sellers' ids (server ids where known, a
created seller's ``local:`` id), so ``len(result)``, ``result[0]``, iterating,
``list(result)`` and ``result == [...]`` work as they did when these returned a list.
The ids stay in one Arrow array (a million ids: ~40 MB, no Python strings) until
something asks for them; the repr is one line whatever the count.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import pyarrow as pa

from ..shortrepr import html_table, one_line, sample

__all__ = ["TOUCH_LIMIT", "Action"]

# Above this many sellers an action (or a push) tells listeners "any row may have
# changed" (None) instead of naming every seller; the grid re-reads instead of patching
# rows (its own PATCH_LIMIT is the same: a rebuild then costs about the same).
TOUCH_LIMIT = 100_000


class Action(Sequence[str]):
    """The ids an action acted on (a Sequence: ``len(action)`` is how many), what it did
    (``kind``) and ``touched``:
    the sellers whose visible rows it changed, or None when there were more than
    ``TOUCH_LIMIT`` of them (listeners then hear "any row")."""

    __slots__ = ("_ids", "_list", "kind", "touched")

    def __init__(
        self, kind: str, ids: pa.Array | Sequence[str], touched: frozenset[str] | None
    ) -> None:
        self.kind = kind
        self._ids = ids if isinstance(ids, pa.Array) else pa.array(list(ids), pa.string())
        self._list: list[str] | None = None
        self.touched = touched

    @property
    def ids(self) -> list[str]:
        """The ids as a list (made on first use)."""
        if self._list is None:
            self._list = self._ids.to_pylist()
        return self._list

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return self.ids[index]
        if index < 0:
            index += len(self._ids)
        if not 0 <= index < len(self._ids):
            raise IndexError("Action index out of range")
        return str(self._ids[index].as_py())

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Action):
            return self.kind == other.kind and self._ids.equals(other._ids)
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == len(self) and list(other) == self.ids
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if not len(self):
            return f"<Action {self.kind}: nothing changed>"
        return one_line(f"<Action {self.kind}: {len(self):,} seller(s): {sample(self)}>")

    def _repr_html_(self) -> str:
        return html_table(
            f"Action {self.kind}",
            [("sellers", f"{len(self):,}"), ("ids", sample(self) or "none")],
        )
