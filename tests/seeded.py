"""Servers started from a copy of a seeded database instead of seeding each anew."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from sellerbench.server.embedded import DB_NAME, start


def copy_seeded(factory: pytest.TempPathFactory, n: int, seed: int, folder: Path) -> None:
    """Put a copy of a SQLite database seeded with ``n`` demo sellers from ``seed`` into
    ``folder``, so the server started there skips the seeding (it seeds empty databases
    only). The seeded database is made once per worker for each (n, seed) by the server
    itself, its tokens removed: each copy mints tokens of its own, as a fresh server does.
    """
    target = folder / DB_NAME
    if not n or target.exists():
        return
    template = factory.getbasetemp() / "seeded" / f"{n}-{seed}" / DB_NAME
    if not template.exists():
        making = template.parent.with_name(template.parent.name + ".making")
        shutil.rmtree(making, ignore_errors=True)  # what a failed attempt left
        start(n=n, seed=seed, data_dir=making).stop()
        with contextlib.closing(sqlite3.connect(making / DB_NAME)) as con:
            con.execute("DELETE FROM tokens")
            con.commit()
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        making.rename(template.parent)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
