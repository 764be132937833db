"""The FastAPI app factory: ``create_app(storage, base_only=..., faults=..., run_speed=...)``.

What the app holds, for routes and plug-ins:

- ``app.state.storage``   the :class:`~sellerbench.server.storage.core.Storage`
- ``app.state.settings``  :class:`~sellerbench.server.http.deps.ServerSettings`
  (``base_only``, ``ext``, ``run_speed``, ``features``)
- ``app.state.tokens``    the :class:`~sellerbench.server.http.auth.TokenBook`
- ``app.state.on_startup`` / ``app.state.on_shutdown``: lists of callables
  ``hook(app)``, sync or async, run by the lifespan (startup in order, shutdown in
  reverse). Background work (the run simulator) starts and stops here, so it runs the
  same under ``sellerbench serve``, the embedded server and the test fixtures.

Where routers plug in: ``_install_plugins`` below. A module that serves more routes
(the run simulator, the activity stream) exposes ``install(app)`` which calls
``app.include_router(...)`` and appends its hooks; adding it is one line there.

``faults`` (a :class:`~sellerbench.server.http.faults.Faults`) is kept on
``app.state.faults``; the misbehaviour middleware that reads it wraps the app from
outside (``faults.wrap(app)``), because dropping a connection needs the server's own
``send``, which Starlette's middleware stack hides.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from ..storage.core import Storage
from . import sync as api_sync
from .auth import TokenBook
from .deps import ServerSettings
from .models import Health
from .problems import install_handlers

__all__ = ["create_app"]


async def _run_hooks(app: FastAPI, hooks: list[Any]) -> None:
    for hook in hooks:
        result = hook(app)
        if inspect.isawaitable(result):
            await result


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    await _run_hooks(app, app.state.on_startup)
    try:
        yield
    finally:
        await _run_hooks(app, list(reversed(app.state.on_shutdown)))


def _install_plugins(app: FastAPI) -> None:
    """Routers and background services from other modules: one ``install(app)`` line each."""
    from . import activity, people
    from . import collection as api_collection
    from . import export as api_export
    from . import sellers as api_sellers

    api_sellers.install(app)
    api_export.install(app)
    api_collection.install(app)
    activity.install(app)  # run control, the activity stream, the run simulator
    people.install(app)  # ext: users (admin) and seller history


def create_app(
    storage: Storage,
    *,
    base_only: bool = False,
    faults: Any = None,
    run_speed: float = 1.0,
) -> FastAPI:
    """The API over ``storage``; every extension on unless ``base_only``."""
    settings = ServerSettings(base_only=base_only, run_speed=run_speed)
    app = FastAPI(
        title="seller-collection API (sellerbench reference server)",
        version=settings.api_version,
        description="The contract of API.md. Extensions served: "
        + (", ".join(settings.features) or "none (base contract only)"),
        lifespan=_lifespan,
    )
    app.state.storage = storage
    app.state.settings = settings
    app.state.tokens = TokenBook(storage)
    app.state.faults = faults
    app.state.on_startup = []
    app.state.on_shutdown = []
    install_handlers(app)

    @app.get("/health", response_model=Health, tags=["health"], summary="Liveness and features")
    def health() -> dict[str, Any]:
        return {"status": "ok", "api_version": settings.api_version,
                "features": settings.features}

    app.include_router(api_sync.build_router(settings))
    _install_plugins(app)
    return app
