"""Shared fixtures: the real reference server over loopback.

- ``server``: session-wide, 300 demo sellers, every extension on. Treat it as
  read-mostly: tests that need exact counts or mutate heavily use ``make_server``.
- ``base_server``: session-wide, ``--base-only`` (no extensions, flag toggles).
- ``make_server(n=300, base_only=False, faults=None, seed=7, run_speed=1.0)``: a fresh
  server of its own, stopped when the test ends; its SQLite database is a copy of one
  seeded once per worker (``copy_seeded``), not seeded anew.

Each has ``.url``, ``.tokens`` (``analyst``, ``viewer``, ``admin``), ``.data_dir``,
``.faults`` (switches that may be changed while it runs) and ``.stop()``.

- ``wb``: a connected Workbench (analyst) on ``server`` with a fresh cache in tmp_path.

PostgreSQL: ``pg_cluster`` is one throw-away cluster for the session (tests/pgcluster.py,
started on first use); ``storage`` is a session parameter over ``sqlite`` and
``postgresql`` (marked ``postgres``) for suites that run on both, and ``db_url(storage)``
gives a fresh database for it (None: SQLite in the data folder).

Running side by side (pytest-xdist, ``scripts/test.sh``): each worker gets a
``SELLERBENCH_HOME`` of its own (a folder under the run's, or a temporary one), so no two
workers share the default cache or ``sb.demo()``'s folders; servers take free ports and
folders of their own. ``--dist loadscope`` is tests/schedule.py's ``CostFirstScheduling``
(the hook below): each test module on one worker, so its module-scoped servers start
once, but for the few long modules split per test or joined there, the longest first.

The demo and the notebooks run in it (``demo``, ``notebook_runs``) are session fixtures
from tests/demo_fixtures.py, read by tests/test_demo.py and tests/test_notebooks.py.

Markers: every test under ``tests/reliability/`` is ``slow`` (the quick subset,
``-m "not slow and not browser"``, skips them as the README says).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sellerbench.server.embedded import EmbeddedServer, start
from sellerbench.workbench import Workbench, connect
from tests.demo_fixtures import demo, notebook_runs  # noqa: F401 (fixtures, for two modules)
from tests.pgcluster import Cluster, find_bin, start_cluster
from tests.seeded import copy_seeded

STORAGES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
TESTS = Path(__file__).resolve().parent


_MADE_HOME: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """A data folder of this process's own: per worker under the run's SELLERBENCH_HOME,
    or a temporary one when none is set (removed at the end)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    home = os.environ.get("SELLERBENCH_HOME")
    if home and worker:
        own = Path(home) / worker
        own.mkdir(parents=True, exist_ok=True)
        os.environ["SELLERBENCH_HOME"] = str(own)
    elif not home:
        _MADE_HOME.append(tempfile.mkdtemp(prefix=f"sb-home-{worker or 'main'}-"))
        os.environ["SELLERBENCH_HOME"] = _MADE_HOME[-1]


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadscope``: tests/schedule.py's order (the other modes: xdist's own)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from tests.schedule import CostFirstScheduling

    return CostFirstScheduling(config, log)


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _MADE_HOME:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.resolve().is_relative_to(TESTS / "reliability"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    if find_bin() is None:
        pytest.skip("PostgreSQL is not installed (scripts/test.sh installs Debian's postgresql)")
    cluster = start_cluster(Path(tempfile.mkdtemp(prefix="sb-pg-")))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session", params=STORAGES)
def storage(request: pytest.FixtureRequest) -> str:
    """"sqlite" or "postgresql": which storage the servers of a test use."""
    return request.param


@pytest.fixture(scope="session")
def db_url(request: pytest.FixtureRequest) -> Callable[[str], str | None]:
    """``db_url(storage)``: a fresh PostgreSQL database's URL, or None for SQLite."""

    def make(kind: str) -> str | None:
        if kind == "sqlite":
            return None
        return request.getfixturevalue("pg_cluster").database()

    return make


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = start(n=300, seed=7, data_dir=tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def base_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    srv = start(n=300, seed=7, base_only=True, data_dir=tmp_path_factory.mktemp("base_server"))
    yield srv
    srv.stop()


@pytest.fixture
def make_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., EmbeddedServer]]:
    """A fresh server per call, from a copy of a seeded database (``copy_seeded``)."""
    started: list[EmbeddedServer] = []

    def factory(n: int = 300, **options: Any) -> EmbeddedServer:
        options.setdefault("data_dir", tmp_path_factory.mktemp("own_server"))
        if options.get("db") is None:  # SQLite: a copy of a seeded database
            copy_seeded(tmp_path_factory, n, options.get("seed", 7), Path(options["data_dir"]))
        srv = start(n=n, **options)
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()


@pytest.fixture
def wb(server: EmbeddedServer, tmp_path: Path) -> Iterator[Workbench]:
    """A workbench on the session server (every extension) with a fresh cache, not synced."""
    workbench = connect(server.url, server.tokens["analyst"], tmp_path / "cache.duckdb")
    yield workbench
    workbench.close()
