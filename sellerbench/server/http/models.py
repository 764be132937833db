"""Request and response models: what ``/openapi.json`` documents.

Request bodies are strict (no type coercion, no unknown fields), so a wrong type is a
422 instead of a guess. Responses are built as plain dicts for speed and serialised
with orjson; these models describe them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic.json_schema import SkipJsonSchema

from ...schema import MAX_BATCH, MAX_NAME_LENGTH, NAME_PATTERN, RUN, SELLER, Record
from ..storage.catalog import CATEGORIES

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

# What validate_name accepts, for the docs (the rules themselves: schema.name_problem).
NAME_DOC: dict = {"pattern": NAME_PATTERN,
                  "description": f"1-{MAX_NAME_LENGTH} characters after trimming, "
                  "no control characters"}


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


def _model_of(record: Record, title: str) -> type[BaseModel]:
    """The response model of a record of the contract: a wire time is documented as a
    date-time, a status by its values, a count as >= 0, ``rev`` as the extension it is."""
    fields: dict[str, Any] = {}
    for f in record.fields:
        kind: Any = datetime if f.arrow == pa.timestamp("us", tz="UTC") else f.wire
        if f.nullable:
            kind = kind | None
        if f.name == "rev":
            fields[f.name] = (kind, Field(
                None, description="ext: the change number of the last write"))
        elif kind in (int, int | None):
            fields[f.name] = (kind, Field(ge=0))
        else:
            fields[f.name] = (kind, ...)
    return create_model(title, **fields)


# The records' models; to a type checker, any model (their fields are the contract's).
if TYPE_CHECKING:
    Seller = BaseModel
    CollectionRun = BaseModel
else:
    Seller = _model_of(SELLER, "Seller")
    CollectionRun = _model_of(RUN, "CollectionRun")


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
    name: str = Field(min_length=1, json_schema_extra=NAME_DOC)


class BulkCreateBody(Strict):
    names: list[str] = Field(max_length=MAX_BATCH)


class BulkCreateResult(BaseModel):
    success_count: int
    failed_count: int
    errors: list[str]
    created: list[Seller] | None = Field(None, description="ext: the sellers created")


class PatchSellerBody(Strict):
    name: str = Field(min_length=1, json_schema_extra=NAME_DOC)


class PatchSellerExtBody(Strict):
    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra={"minProperties": 1})

    # None means "not given"; an explicit null is refused below, as the schema says
    name: str | SkipJsonSchema[None] = Field(None, json_schema_extra=NAME_DOC)
    flagged: bool | SkipJsonSchema[None] = Field(None, description="ext flag_set")

    @model_validator(mode="after")
    def _no_nulls(self) -> PatchSellerExtBody:
        for field in self.model_fields_set:
            if getattr(self, field) is None:
                raise ValueError(f"{field} must not be null")
        if not self.model_fields_set:
            raise ValueError("give 'name', 'flagged' or both")
        return self


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


def _run_body_schema(schema: dict) -> None:
    # Documented as required with known ids; the route answers 400 for no category
    # (as the origin does) and 422 for unknown ids.
    schema["required"] = ["name", "category_ids"]
    schema["properties"]["category_ids"]["minItems"] = 1
    schema["properties"]["category_ids"]["items"]["enum"] = [c[0] for c in CATEGORIES]


class CreateRunBody(Strict):
    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra=_run_body_schema)

    name: str = Field(min_length=1, json_schema_extra=NAME_DOC)
    category_ids: list[str] = Field(default_factory=list, max_length=1000)
