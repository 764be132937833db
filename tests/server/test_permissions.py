"""The permission matrix: every endpoint x (no token, wrong token, viewer, analyst, admin)."""

from __future__ import annotations

import uuid

import pytest

from .srvutil import error_of

# Ids no server holds, the same in every process: they name the parametrized tests, which
# pytest-xdist's workers must collect alike.
RUN = str(uuid.UUID(int=0x5E11E7BE_0C4A_4E55_9A11_000000000001, version=4))
SELLER = str(uuid.UUID(int=0x5E11E7BE_0C4A_4E55_9A11_000000000002, version=4))

# (method, path, json body, permission needed)
ENDPOINTS = [
    ("GET", "/sync/sellers", None, "read"),
    ("GET", "/sync/collection-runs", None, "read"),
    ("GET", "/export/sellers/csv", None, "read"),
    ("GET", "/export/sellers/json", None, "read"),
    ("GET", "/collection/categories", None, "read"),
    ("GET", "/collection/runs", None, "read"),
    ("GET", "/collection/runs/history", None, "read"),
    ("GET", "/collection/runs/active", None, "read"),
    ("GET", f"/collection/runs/{RUN}", None, "read"),
    ("POST", "/sellers", {"name": "perm check"}, "write"),
    ("POST", "/sellers/bulk", {"names": []}, "write"),
    ("PATCH", f"/sellers/{SELLER}", {"name": "x"}, "write"),
    ("DELETE", f"/sellers/{SELLER}", None, "write"),
    ("POST", "/sellers/bulk/delete", {"ids": []}, "write"),
    ("POST", f"/sellers/{SELLER}/flag", None, "write"),
    ("POST", "/sellers/bulk/flag", {"ids": [], "flagged": True}, "write"),
    ("POST", "/sellers/bulk/restore", {"ids": []}, "write"),
    ("POST", "/collection/runs", {"name": "r", "category_ids": []}, "admin"),
    ("POST", f"/collection/runs/{RUN}/start", None, "admin"),
    ("POST", f"/collection/runs/{RUN}/pause", None, "admin"),
    ("POST", f"/collection/runs/{RUN}/resume", None, "admin"),
    ("POST", f"/collection/runs/{RUN}/cancel", None, "admin"),
]
ALLOWED = {
    "read": {"viewer", "analyst", "admin"},
    "write": {"analyst", "admin"},
    "admin": {"admin"},
}


@pytest.fixture(scope="module")
def matrix_server(tmp_path_factory):
    from sellerbench.server.embedded import start

    srv = start(n=10, data_dir=tmp_path_factory.mktemp("matrix"))
    yield srv
    srv.stop()


@pytest.mark.parametrize(("method", "path", "body", "needs"), ENDPOINTS)
def test_permission_matrix(matrix_server, client, method, path, body, needs):
    anonymous = client(matrix_server, role=None)
    kwargs = {"json": body} if body is not None else {}
    assert error_of(anonymous.request(method, path, **kwargs)) == (401, "UNAUTHORIZED")
    wrong = anonymous.request(method, path, headers={"Authorization": "Bearer wrong"}, **kwargs)
    assert error_of(wrong) == (401, "UNAUTHORIZED")
    for role in ("viewer", "analyst", "admin"):
        answer = client(matrix_server, role).request(method, path, **kwargs)
        if role in ALLOWED[needs]:
            assert answer.status_code not in (401, 403), (role, answer.text)
        else:
            assert error_of(answer) == (403, "FORBIDDEN"), role
