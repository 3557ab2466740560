"""`POST /v1/search`: the chunks of a collection closest to a query, by cosine similarity."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from orca_core.layout import check_collection
from orca_core.search import search_index
from orca_intake.dependencies import EmbedderDep, SettingsDep
from orca_intake.errors import JSON_BODY_ERROR_RESPONSES, ErrorBody
from orca_intake.json_body import BoundedJSONRoute

router = APIRouter(prefix="/v1", tags=["search"], route_class=BoundedJSONRoute)

MAX_QUERY_CHARS = 8192


class SearchRequest(BaseModel):
    """A query against one collection's served index."""

    model_config = ConfigDict(extra="forbid")

    collection: str
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    k: int = Field(5, ge=1, le=100, description="How many chunks to return.")

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        return check_collection(value)

    @field_validator("query")
    @classmethod
    def _query_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the query is blank")
        value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError, a ValueError: reported as 422
        return value


class SearchHit(BaseModel):
    """One chunk and its cosine similarity to the query."""

    chunk_id: str
    doc_id: str
    chunk_index: int
    text: str
    source: str | None
    score: float


class SearchResponse(BaseModel):
    """The top chunks, best first, and the model that ranked them."""

    collection: str
    model: str
    results: list[SearchHit]


@router.post(
    "/search",
    summary="Search a collection",
    responses={
        **JSON_BODY_ERROR_RESPONSES,
        404: {"model": ErrorBody, "description": "The collection has no index yet."},
        409: {"model": ErrorBody, "description": "The index was built by another model than the configured one."},
        503: {"model": ErrorBody, "description": "The embedder is unavailable."},
    },
)
def search(body: SearchRequest, settings: SettingsDep, embedder: EmbedderDep) -> SearchResponse:
    """Embed the query with the configured embedder (query prefix included) and rank the collection's index."""
    found = search_index(settings.layout.index_path(body.collection), embedder, body.query, body.k, collection=body.collection)
    return SearchResponse(
        collection=body.collection, model=found.model, results=[SearchHit(**row) for row in found.results]
    )
