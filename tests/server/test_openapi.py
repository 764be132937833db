"""/openapi.json is accurate: every documented operation exists, every route is
documented, and every error status documented uses the one error schema."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.routing import APIRoute

from sellerbench.server.http.app import create_app
from sellerbench.server.http.problems import flat_routes
from sellerbench.server.storage.core import SQLiteStorage

ERROR_REF = "#/components/schemas/ErrorBody"


@pytest.fixture(params=[False, True], ids=["full", "base_only"])
def target(request, server, base_server):
    return base_server if request.param else server


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield path, method.upper(), op


def test_every_documented_operation_exists(target, client):
    spec = client(target, role=None).get("/openapi.json").json()
    c = client(target, "admin")
    for path, method, _ in operations(spec):
        concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        if path.endswith("/activity"):
            continue  # a stream that waits for its run; covered by the runs tests
        answer = c.request(method, concrete, params={"flagged": "true"}
                           if "export" in path else None)
        assert answer.status_code != 405, (method, path)
        if answer.status_code == 404:
            message = answer.json()["detail"]["message"]
            assert not message.startswith("no such endpoint"), (method, path)


def test_error_statuses_use_the_error_schema(target, client):
    spec = client(target, role=None).get("/openapi.json").json()
    assert "ErrorBody" in spec["components"]["schemas"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, method, op in operations(spec):
        responses = op["responses"]
        if path != "/health":
            assert {"401", "429", "503"} <= set(responses), (method, path)
        for status, answer in responses.items():
            if status.startswith(("4", "5")):
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (method, path, status)


def test_every_route_is_documented(server, client):
    spec = client(server, role=None).get("/openapi.json").json()
    documented = {(p, m) for p, m, _ in operations(spec)}
    routes = [r for r in flat_routes(server.app.routes) if isinstance(r, APIRoute)]
    assert len(routes) >= 24
    for route in routes:
        if route.include_in_schema:
            for method in route.methods:
                assert (route.path, method) in documented


def test_extensions_are_documented_only_when_served(server, base_server, client):
    full = client(server, role=None).get("/openapi.json").json()
    base = client(base_server, role=None).get("/openapi.json").json()
    params = {p["name"] for p in full["paths"]["/sync/sellers"]["get"]["parameters"]}
    assert "since_rev" in params
    base_params = {p["name"] for p in base["paths"]["/sync/sellers"]["get"]["parameters"]}
    assert "since_rev" not in base_params
    assert "/sellers/bulk/flag" in full["paths"] and "/sellers/bulk/flag" not in base["paths"]
    assert "/sellers/bulk/restore" not in base["paths"]
    create = full["paths"]["/sellers"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" for p in create)


def test_app_factory_in_process(tmp_path):
    """create_app builds without a server (used by ASGI-level tools)."""
    storage = SQLiteStorage(tmp_path / "x.sqlite3")
    try:
        app = create_app(storage, base_only=True)
        assert app.state.settings.features == []
    finally:
        storage.close()
