"""Where a token could show: every text an object or an error offers to a notebook.

``renderings(obj)`` gathers repr, str and what IPython would display (every MIME type
of its display formatter); ``error_renderings(exc)`` adds the full chained traceback
and IPython's verbose traceback, which prints each frame's local variables.
``assert_hidden(secret, texts)`` fails naming the first text that shows it.
"""

from __future__ import annotations

import json
import os
import re
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from IPython.core.formatters import DisplayFormatter
from IPython.core.ultratb import VerboseTB

# What a demo token looks like (auth.ensure_demo_tokens) and what carries one in HTTP.
TOKEN_SHAPE = re.compile(r"sb_(?:analyst|viewer|admin|nobody)_[A-Za-z0-9_-]{16,}")
BEARER = re.compile(r"Bearer\s+[A-Za-z0-9._~+/-]{8,}")

_FORMATTER = DisplayFormatter()


def renderings(obj: Any) -> list[str]:
    """repr, str and every IPython display form of ``obj`` (HTML, pretty text, ...)."""
    texts = [repr(obj), str(obj)]
    data, metadata = _FORMATTER.format(obj)
    texts += [value if isinstance(value, str) else repr(value) for value in data.values()]
    texts.append(repr(metadata))
    return texts


def error_renderings(exc: BaseException) -> list[str]:
    """What a notebook can show of an error: repr, str, notes, the chained traceback,
    and IPython's verbose traceback (which prints the locals of every frame)."""
    texts = renderings(exc)
    texts.append("".join(traceback.format_exception(exc)))
    texts += [str(note) for note in getattr(exc, "__notes__", [])]
    verbose = VerboseTB(theme_name="nocolor", include_vars=True)
    texts += verbose.structured_traceback(type(exc), exc, _past_tests(exc.__traceback__))
    return texts


def _past_tests(tb: TracebackType | None) -> TracebackType | None:
    """The traceback from the first frame outside tests/: the test's own frames hold
    the token on purpose (it made the call), the library's must not."""
    while tb is not None and f"{os.sep}tests{os.sep}" in tb.tb_frame.f_code.co_filename:
        tb = tb.tb_next
    return tb


def assert_hidden(secret: str, texts: Iterable[str], where: str = "") -> int:
    """No text holds ``secret``; returns how many texts were looked at."""
    seen = 0
    for text in texts:
        seen += 1
        assert secret not in text, f"the token shows in {where}: {text[:300]!r}"
    return seen


def notebook_texts(path: Path) -> tuple[list[str], list[str]]:
    """(sources, outputs) of a committed notebook, each cell's output as JSON text."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    sources, outputs = [], []
    for cell in notebook.get("cells", []):
        source = cell.get("source", "")
        sources.append(source if isinstance(source, str) else "".join(source))
        outputs += [json.dumps(output) for output in cell.get("outputs", [])]
    return sources, outputs
