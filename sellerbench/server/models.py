"""Request and response models: what ``/openapi.json`` documents.

Request bodies are strict (no type coercion, no unknown fields), so a wrong type is a
422 instead of a guess. Responses are built as plain dicts for speed and serialised
with orjson; these models describe them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BulkCreateBody",
    "BulkCreateResult",
    "BulkFlagBody",
    "CategoryList",
    "CollectionRun",
    "CreateRunBody",
    "CreateSellerBody",
    "DeletedCount",
    "FlagBody",
    "FlagState",
    "Health",
    "IdsBody",
    "PatchSellerBody",
    "PatchSellerExtBody",
    "RestoredCount",
    "RunList",
    "RunPage",
    "Seller",
    "SellerPage",
    "UpdatedCount",
]

MAX_BATCH = 10_000

RunStatus = Literal["pending", "running", "paused", "completed", "failed", "cancelled"]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class Seller(BaseModel):
    id: str
    display_name: str
    normalized_name: str
    platform: str
    platform_id: str | None
    times_seen: int = Field(ge=0)
    flagged: bool
    first_seen_run_id: str | None
    last_seen_run_id: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    rev: int | None = Field(None, description="ext: the change number of the last write")


class CollectionRun(BaseModel):
    id: str
    name: str
    status: RunStatus
    category_ids: list[str]
    started_at: datetime | None
    completed_at: datetime | None
    paused_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    departments_total: int
    departments_completed: int
    categories_total: int
    categories_completed: int
    products_total: int
    products_searched: int
    sellers_found: int
    sellers_new: int
    failed_items: int
    duration_seconds: float | None
    rev: int | None = Field(None, description="ext: the change number of the last write")


class _Page(BaseModel):
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")
    has_more: bool
    total_estimate: int | None
    max_rev: int | None = Field(
        None, description="ext rev_feed: the newest change number when the page was read"
    )


class SellerPage(_Page):
    items: list[Seller]


class RunPage(_Page):
    items: list[CollectionRun]


class Health(BaseModel):
    status: Literal["ok"]
    api_version: str
    features: list[str]


class CreateSellerBody(Strict):
    name: str


class BulkCreateBody(Strict):
    names: list[str] = Field(max_length=MAX_BATCH)


class BulkCreateResult(BaseModel):
    success_count: int
    failed_count: int
    errors: list[str]
    created: list[Seller] | None = Field(None, description="ext: the sellers created")


class PatchSellerBody(Strict):
    name: str


class PatchSellerExtBody(Strict):
    name: str | None = None
    flagged: bool | None = Field(None, description="ext flag_set")


class FlagBody(Strict):
    flagged: bool


class FlagState(BaseModel):
    flagged: bool


class IdsBody(Strict):
    ids: list[str] = Field(max_length=MAX_BATCH)


class BulkFlagBody(Strict):
    ids: list[str] = Field(max_length=MAX_BATCH)
    flagged: bool


class DeletedCount(BaseModel):
    deleted_count: int


class UpdatedCount(BaseModel):
    updated_count: int


class RestoredCount(BaseModel):
    restored_count: int


class Category(BaseModel):
    id: str
    name: str
    department: str


class CategoryList(BaseModel):
    categories: list[Category]


class RunList(BaseModel):
    runs: list[CollectionRun]
    total: int


class CreateRunBody(Strict):
    name: str
    category_ids: list[str] = Field(default_factory=list, max_length=1000)
