"""The cache fixtures kept in ``data/fixtures/``, and how they were made.

``cache-v1.duckdb.gz``: a cache written by sellerbench at schema version 1 (before the
``pending_changes`` view), gzipped (a DuckDB file is mostly empty 256 KiB blocks). It
was synced from a 40-seller demo server, had one change pushed, then queued a change of
every kind offline: the upgrade must keep that queue. Made by
``python -m tests.reliability.cachefixture`` on a checkout at schema version 1 (commit
3d97f2e); run again on a later checkout it would write that later version, so it
refuses to.
"""

from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
from pathlib import Path

from .relutil import ROOT

FIXTURES = ROOT / "data" / "fixtures"
CACHE_V1 = FIXTURES / "cache-v1.duckdb.gz"


def unpack(fixture: Path, target: Path) -> Path:
    """Decompress ``fixture`` to ``target`` (a fresh copy for each test)."""
    with gzip.open(fixture, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def make_cache_v1(target: Path) -> None:
    from sellerbench.cache import store
    from sellerbench.server.embedded import start
    from sellerbench.workbench import connect

    if store.SCHEMA_VERSION != 1:
        sys.exit(f"this checkout writes schema version {store.SCHEMA_VERSION}, not 1")
    with tempfile.TemporaryDirectory() as tmp:
        server = start(n=40, seed=7, data_dir=Path(tmp) / "server")
        try:
            cache = Path(tmp) / "cache.duckdb"
            wb = connect(server.url, server.tokens["analyst"], cache, auto_push=True)
            wb.sync(progress=False)
            live = wb.sellers()["id"].tolist()
            wb.flag(live[0])  # pushed: 'done' rows
            wb.delete(live[8])
            wb.auto_push = False
            wb.flag(live[1:4], True)
            wb.flag(live[4], False)
            wb.rename(live[5], "Renamed In Version One")
            wb.delete(live[6:8])
            wb.restore(live[8])
            wb.create(["Created Offline One", "Created Offline Two"])
            wb.close()
            with store.Store(cache).connect() as con:
                con.execute("CHECKPOINT")
            with open(cache, "rb") as src, gzip.open(target, "wb", compresslevel=9) as dst:
                shutil.copyfileobj(src, dst)
        finally:
            server.stop()


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    make_cache_v1(CACHE_V1)
    print(f"wrote {CACHE_V1} ({CACHE_V1.stat().st_size:,} bytes)")
