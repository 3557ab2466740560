"""What each collection holds: inbox documents, index chunks, model, and its last finished request."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from orca_core import catalog
from orca_core.settings import OrcaSettings
from orca_intake.dependencies import CollectionDep, QueueDep, SettingsDep
from orca_intake.errors import ERROR_RESPONSES, ErrorBody, NotFound
from orca_resources.intake_queue import IntakeRequest

router = APIRouter(prefix="/v1", tags=["collections"])


class LastRun(BaseModel):
    """The most recently finished intake request of the collection."""

    request_id: str
    kind: str
    status: str
    run_id: str | None
    run_url: str | None
    finished_at: datetime | None
    error: str | None


class CollectionInfo(BaseModel):
    """A collection as its inbox and served index show it; index fields are null before the first run."""

    name: str
    documents: int = Field(description="Files in the inbox (hidden and temporary names not counted).")
    indexed_documents: int | None = Field(description="Distinct documents in the served index.")
    chunks: int | None = Field(description="Rows of the served index.")
    model: str | None = Field(description="The model that built the index.")
    index_updated_at: datetime | None
    last_run: LastRun | None


class CollectionList(BaseModel):
    """Every collection under ORCA_HOME (or on the object store ORCA_STORAGE_URL names), sorted by name."""

    collections: list[CollectionInfo]


def _describe(settings: OrcaSettings, name: str, last: IntakeRequest | None) -> CollectionInfo:
    found = catalog.describe_collection(settings.layout, name, settings.storage)
    summary = found.index
    return CollectionInfo(
        name=name,
        documents=found.inbox_documents,
        indexed_documents=summary.documents if summary else None,
        chunks=summary.chunks if summary else None,
        model=summary.model if summary else None,
        index_updated_at=summary.updated_at if summary else None,
        last_run=LastRun(
            request_id=last.request_id,
            kind=last.kind,
            status=last.status,
            run_id=last.run_id,
            run_url=settings.run_url(last.run_id),
            finished_at=last.finished_at,
            error=last.error,
        )
        if last
        else None,
    )


@router.get("/collections", summary="List collections", responses={401: ERROR_RESPONSES[401]})
def list_collections(settings: SettingsDep, queue: QueueDep) -> CollectionList:
    """Collections with an inbox or warehouse folder (objects on an object store), with what their inbox and
    index hold."""
    names = catalog.collection_names(settings.layout, settings.storage)
    last = queue.last_finished(names) if names else {}
    return CollectionList(collections=[_describe(settings, name, last.get(name)) for name in names])


@router.get(
    "/collections/{collection}",
    summary="Describe a collection",
    responses={**ERROR_RESPONSES, 404: {"model": ErrorBody}},
)
def get_collection(collection: CollectionDep, settings: SettingsDep, queue: QueueDep) -> CollectionInfo:
    """One collection's documents, chunks, model and last finished request; 404 when it does not exist."""
    if not catalog.has_collection(settings.layout, collection, settings.storage):
        raise NotFound(f"collection '{collection}' does not exist", code="collection_not_found")
    return _describe(settings, collection, queue.last_finished([collection]).get(collection))
