"""Seller mutations: POST /sellers, /sellers/bulk, PATCH and DELETE /sellers/{id},
POST /sellers/bulk/delete, /sellers/{id}/flag and (**ext**) /sellers/bulk/flag and
/sellers/bulk/restore.

Base-only mode registers the base shapes only: PATCH takes ``name`` alone, the flag
endpoint toggles and ignores any body, the ext bulk routes do not exist (404) and the
Idempotency-Key header is not read.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from ..storage import sellers
from ..storage.idempotency import IdempotencyKey, Outcome, RequestHash, perform
from .deps import ServerSettings, WriteUser
from .models import (
    BulkCreateBody,
    BulkCreateResult,
    BulkFlagBody,
    CreateSellerBody,
    DeletedCount,
    FlagBody,
    FlagState,
    IdsBody,
    PatchSellerBody,
    PatchSellerExtBody,
    RestoredCount,
    Seller,
    UpdatedCount,
)
from .problems import error_responses

__all__ = ["build_router", "install"]


def install(app: FastAPI) -> None:
    app.include_router(build_router(app.state.settings))


def build_router(settings: ServerSettings) -> APIRouter:
    router = APIRouter(tags=["sellers"])
    ext = settings.ext

    def strip(record: dict[str, Any]) -> dict[str, Any]:
        if not ext:
            record = {k: v for k, v in record.items() if k != "rev"}
        return record

    def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
        return error_responses(401, 403, 422, 429, 503, *statuses)

    # The ext routes take the Idempotency-Key header; base routes never see it.
    if ext:

        @router.post("/sellers", status_code=201, response_model=Seller,
                     responses=errors(409), summary="Create a seller")
        def create_seller(request: Request, body: CreateSellerBody, user: WriteUser,
                          digest: RequestHash, key: IdempotencyKey = None) -> Response:
            return perform(request, user, key, digest,
                           lambda tx: Outcome(201, sellers.create(tx, body.name)))

        @router.post("/sellers/bulk", response_model=BulkCreateResult, responses=errors(),
                     summary="Create many sellers; refused names are listed in errors")
        def bulk_create(request: Request, body: BulkCreateBody, user: WriteUser,
                        digest: RequestHash, key: IdempotencyKey = None) -> Response:
            def action(tx) -> Outcome:
                created, problems = sellers.bulk_create(tx, body.names)
                return Outcome(200, {"success_count": len(created),
                                     "failed_count": len(problems), "errors": problems,
                                     "created": created})
            return perform(request, user, key, digest, action)

        @router.post("/sellers/bulk/delete", response_model=DeletedCount, responses=errors(),
                     summary="Soft-delete many sellers")
        def bulk_delete(request: Request, body: IdsBody, user: WriteUser,
                        digest: RequestHash, key: IdempotencyKey = None) -> Response:
            return perform(request, user, key, digest, lambda tx: Outcome(
                200, {"deleted_count": sellers.bulk_delete(tx, body.ids)}))

        @router.post("/sellers/bulk/flag", response_model=UpdatedCount, responses=errors(),
                     summary="ext bulk_flag: set the flag of many sellers")
        def bulk_flag(request: Request, body: BulkFlagBody, user: WriteUser,
                      digest: RequestHash, key: IdempotencyKey = None) -> Response:
            return perform(request, user, key, digest, lambda tx: Outcome(
                200, {"updated_count": sellers.bulk_flag(tx, body.ids, body.flagged)}))

        @router.post("/sellers/bulk/restore", response_model=RestoredCount,
                     responses=errors(409),
                     summary="ext restore: undo soft deletes (409 if a name is live again)")
        def bulk_restore(request: Request, body: IdsBody, user: WriteUser,
                         digest: RequestHash, key: IdempotencyKey = None) -> Response:
            return perform(request, user, key, digest, lambda tx: Outcome(
                200, {"restored_count": sellers.bulk_restore(tx, body.ids)}))

        @router.patch("/sellers/{seller_id}", response_model=Seller,
                      responses=errors(404, 409),
                      summary="Rename a seller; ext flag_set: set its flag")
        def patch_seller(request: Request, seller_id: str, body: PatchSellerExtBody,
                         user: WriteUser, digest: RequestHash,
                         key: IdempotencyKey = None) -> Response:
            return perform(request, user, key, digest, lambda tx: Outcome(
                200, sellers.update(tx, seller_id, name=body.name, flagged=body.flagged)))

        @router.delete("/sellers/{seller_id}", status_code=204, response_class=Response,
                       responses=errors(404), summary="Soft-delete a seller (again is 204)")
        def delete_seller(request: Request, seller_id: str, user: WriteUser,
                          digest: RequestHash, key: IdempotencyKey = None) -> Response:
            def action(tx) -> Outcome:
                sellers.delete(tx, seller_id)
                return Outcome(204)
            return perform(request, user, key, digest, action)

        @router.post("/sellers/{seller_id}/flag", response_model=FlagState,
                     responses=errors(404),
                     summary="Toggle the flag; ext flag_set: a body {flagged} sets it")
        def flag_seller(request: Request, seller_id: str, user: WriteUser,
                        digest: RequestHash, body: FlagBody | None = None,
                        key: IdempotencyKey = None) -> Response:
            wanted = body.flagged if body is not None else None
            return perform(request, user, key, digest, lambda tx: Outcome(
                200, {"flagged": sellers.flag(tx, seller_id, wanted)}))

        return router

    @router.post("/sellers", status_code=201, response_model=Seller,
                 responses=errors(409), summary="Create a seller")
    def create_seller_base(request: Request, body: CreateSellerBody,
                           user: WriteUser) -> Response:
        return perform(request, user, None, None,
                       lambda tx: Outcome(201, strip(sellers.create(tx, body.name))))

    @router.post("/sellers/bulk", response_model=BulkCreateResult, responses=errors(),
                 summary="Create many sellers; refused names are listed in errors")
    def bulk_create_base(request: Request, body: BulkCreateBody, user: WriteUser) -> Response:
        def action(tx) -> Outcome:
            created, problems = sellers.bulk_create(tx, body.names)
            return Outcome(200, {"success_count": len(created),
                                 "failed_count": len(problems), "errors": problems})
        return perform(request, user, None, None, action)

    @router.post("/sellers/bulk/delete", response_model=DeletedCount, responses=errors(),
                 summary="Soft-delete many sellers")
    def bulk_delete_base(request: Request, body: IdsBody, user: WriteUser) -> Response:
        return perform(request, user, None, None, lambda tx: Outcome(
            200, {"deleted_count": sellers.bulk_delete(tx, body.ids)}))

    @router.patch("/sellers/{seller_id}", response_model=Seller, responses=errors(404, 409),
                  summary="Rename a seller")
    def patch_seller_base(request: Request, seller_id: str, body: PatchSellerBody,
                          user: WriteUser) -> Response:
        return perform(request, user, None, None, lambda tx: Outcome(
            200, strip(sellers.update(tx, seller_id, name=body.name))))

    @router.delete("/sellers/{seller_id}", status_code=204, response_class=Response,
                   responses=errors(404), summary="Soft-delete a seller (again is 204)")
    def delete_seller_base(request: Request, seller_id: str, user: WriteUser) -> Response:
        def action(tx) -> Outcome:
            sellers.delete(tx, seller_id)
            return Outcome(204)
        return perform(request, user, None, None, action)

    @router.post("/sellers/{seller_id}/flag", response_model=FlagState, responses=errors(404),
                 summary="Toggle the flag (any body is ignored)")
    def flag_seller_base(request: Request, seller_id: str, user: WriteUser) -> Response:
        return perform(request, user, None, None, lambda tx: Outcome(
            200, {"flagged": sellers.flag(tx, seller_id, None)}))

    return router
