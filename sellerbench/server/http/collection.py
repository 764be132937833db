"""Categories and collection runs: the reads, and creating a run.

Starting, pausing, resuming and cancelling runs, the simulator that advances them and
the activity stream live in ``simulator.py`` and ``activity.py``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request, Response

from ...schema import ACTIVE, FINISHED
from ..storage.changes import record
from ..storage.core import Tx
from ..storage.idempotency import IdempotencyKey, Outcome, RequestHash, perform
from ..storage.records import INSERT_RUN, RUN_COLUMNS, is_uuid, now_ts, run_record, validate_name
from .deps import AdminUser, ReadUser, json_response, settings_of, storage_of
from .models import CategoryList, CollectionRun, CreateRunBody, RunList
from .problems import Problem, error_responses

__all__ = ["ACTIVE", "FINISHED", "create_run", "install", "router"]

_SELECT = f"SELECT {', '.join(RUN_COLUMNS)} FROM collection_runs"

router = APIRouter(tags=["collection runs"])


def install(app: FastAPI) -> None:
    app.include_router(router)


def create_run(tx: Tx, name: object, category_ids: list[str]) -> dict[str, Any]:
    """A pending run over ``category_ids``; 400 with none, 422 for unknown ones."""
    if not category_ids:
        raise Problem(400, "VALIDATION", "a run needs at least one category (category_ids)")
    try:
        display = validate_name(name)
    except ValueError as exc:
        raise Problem(422, "VALIDATION", str(exc)) from exc
    wanted = list(dict.fromkeys(category_ids))
    known = {
        row[0]: row[1]
        for row in tx.execute("SELECT id, department FROM categories").fetchall()
    }
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise Problem(
            422, "VALIDATION",
            f"unknown category ids: {', '.join(unknown[:5])} (see GET /collection/categories)",
        )
    now = now_ts()
    row: dict[str, Any] = {column: 0 for column in RUN_COLUMNS}
    row.update(
        id=str(uuid.uuid4()), name=display, status="pending", category_ids=json.dumps(wanted),
        started_at=None, completed_at=None, paused_at=None, created_at=now, updated_at=now,
        deleted_at=None, departments_total=len({known[c] for c in wanted}),
        categories_total=len(wanted), duration_seconds=None, rev=tx.next_rev(),
    )
    tx.execute(INSERT_RUN, [row[c] for c in RUN_COLUMNS])
    record(tx, "run", row["id"], "create", row["rev"], {"name": display}, now)
    return run_record(tuple(row[c] for c in RUN_COLUMNS))


def _run_list(request: Request, where: str, params: list[Any], limit: int | None,
              offset: int) -> Response:
    with_rev = settings_of(request).ext
    clause = f" WHERE deleted_at IS NULL{where}"
    page = " LIMIT ? OFFSET ?" if limit is not None else ""
    args = [*params, limit, offset] if limit is not None else params
    with storage_of(request).read() as conn:
        rows = conn.execute(
            f"{_SELECT}{clause} ORDER BY created_at DESC, id DESC{page}", args
        ).fetchall()
        total = conn.execute(
            f"SELECT count(*) FROM collection_runs{clause}", params
        ).fetchone()[0]
    return json_response(
        {"runs": [run_record(r, with_rev=with_rev) for r in rows], "total": total}
    )


LIMIT_Q = Query(50, ge=1, le=1000, description="runs per page")
OFFSET_Q = Query(0, ge=0, le=2**62, description="runs to skip")
READ_ERRORS = error_responses(401, 403, 422, 429, 503)


@router.get("/collection/categories", response_model=CategoryList,
            responses=error_responses(401, 403, 429, 503),
            summary="What a run can collect from")
def categories(request: Request, _user: ReadUser) -> Response:
    with storage_of(request).read() as conn:
        rows = conn.execute(
            "SELECT id, name, department FROM categories ORDER BY department, name"
        ).fetchall()
    return json_response(
        {"categories": [{"id": r[0], "name": r[1], "department": r[2]} for r in rows]}
    )


@router.get("/collection/runs", response_model=RunList, responses=READ_ERRORS,
            summary="Runs, newest first")
def runs(request: Request, _user: ReadUser, limit: int = LIMIT_Q,
         offset: int = OFFSET_Q) -> Response:
    return _run_list(request, "", [], limit, offset)


@router.get("/collection/runs/history", response_model=RunList, responses=READ_ERRORS,
            summary="Finished runs (completed, failed, cancelled), newest first")
def history(request: Request, _user: ReadUser, limit: int = LIMIT_Q,
            offset: int = OFFSET_Q) -> Response:
    return _run_list(request, " AND status IN (?, ?, ?)", list(FINISHED), limit, offset)


@router.get("/collection/runs/active", response_model=RunList,
            responses=error_responses(401, 403, 429, 503),
            summary="Runs that are pending, running or paused")
def active(request: Request, _user: ReadUser) -> Response:
    return _run_list(request, " AND status IN (?, ?, ?)", list(ACTIVE), None, 0)


@router.get("/collection/runs/{run_id}", response_model=CollectionRun,
            responses=error_responses(401, 403, 404, 422, 429, 503), summary="One run")
def run(request: Request, run_id: str, _user: ReadUser) -> Response:
    row = None
    if is_uuid(run_id):
        with storage_of(request).read() as conn:
            row = conn.execute(
                f"{_SELECT} WHERE id = ? AND deleted_at IS NULL", (run_id,)
            ).fetchone()
    if row is None:
        raise Problem(404, "NOT_FOUND", f"no run with id {run_id!r}")
    return json_response(run_record(row, with_rev=settings_of(request).ext))


@router.post("/collection/runs", status_code=201, response_model=CollectionRun,
             responses=error_responses(400, 401, 403, 422, 429, 503),
             summary="Create a pending run (start it with POST .../start)")
def create(request: Request, body: CreateRunBody, user: AdminUser, digest: RequestHash,
           key: IdempotencyKey = None) -> Response:
    with_rev = settings_of(request).ext

    def action(tx: Tx) -> Outcome:
        record = create_run(tx, body.name, body.category_ids)
        if not with_rev:
            record.pop("rev")
        return Outcome(201, record)

    return perform(request, user, key, digest, action)
