"""`POST /v1/search`: the chunks of a collection closest to a query, by cosine similarity."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orca_core.layout import check_collection
from orca_core.search_filter import SearchFilter
from orca_intake.dependencies import EmbedderDep, SettingsDep
from orca_intake.errors import JSON_BODY_ERROR_RESPONSES, ErrorBody
from orca_intake.json_body import BoundedJSONRoute
from orca_resources.search_backend import search_collection

router = APIRouter(prefix="/v1", tags=["search"], route_class=BoundedJSONRoute)

MAX_QUERY_CHARS = 8192


MetadataValue = str | int | float | bool | None


class SearchFilterBody(BaseModel):
    """Rows must match every part given; the k best matching chunks come back whenever k match."""

    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, MetadataValue] = Field(
        default_factory=dict, max_length=32, description="Exact values of metadata keys: `{\"team\": \"infra\"}`."
    )
    doc_id_prefix: str | None = Field(None, max_length=1024, description="Only documents whose id starts so.")
    page_min: int | None = Field(None, ge=1, description="Only chunks starting on this page (1-based) or later.")
    page_max: int | None = Field(None, ge=1, description="Only chunks starting on this page or earlier.")

    @model_validator(mode="after")
    def _page_range(self) -> SearchFilterBody:
        if self.page_min is not None and self.page_max is not None and self.page_min > self.page_max:
            raise ValueError(f"the page range {self.page_min}-{self.page_max} is empty")
        return self

    def to_filter(self) -> SearchFilter:
        return SearchFilter(dict(self.metadata), self.doc_id_prefix or None, self.page_min, self.page_max)


class SearchRequest(BaseModel):
    """A query against one collection's served index."""

    model_config = ConfigDict(extra="forbid")

    collection: str
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    k: int = Field(5, ge=1, le=100, description="How many chunks to return.")
    filter: SearchFilterBody | None = Field(None, description="Narrow the search before ranking.")

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
    page: int | None = Field(description="1-based page, slide or sheet where the chunk starts; null without pages.")
    section: str | None = Field(description="The heading path above the chunk, `Install > Linux`.")
    title: str | None = Field(description="The document's title.")
    metadata: dict = Field(description="The document's metadata: posted with it, front matter, format properties.")
    score: float


class SearchResponse(BaseModel):
    """The top chunks, best first, the model that ranked them and which embedder embedded the query."""

    collection: str
    model: str
    embedder: str = Field(
        description="`ollama` or `hashing`: the embedder that built the index when it is available here, else the "
        "configured one."
    )
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
    """Embed the query (query prefix included) with the embedder that built the collection's index when it is
    available here (the offline one always is), else the configured one, and rank the index: its pgvector table
    when ORCA_PGVECTOR_URL is set, else its served index."""
    where = body.filter.to_filter() if body.filter is not None else None
    found = search_collection(settings, embedder, body.collection, body.query, body.k, where)
    return SearchResponse(
        collection=body.collection,
        model=found.model,
        embedder=found.embedder,
        results=[SearchHit(**row) for row in found.results],
    )
