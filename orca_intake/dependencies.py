"""FastAPI dependencies and their `Annotated` aliases, so endpoints declare what they need in one word.

The settings, queue, writer and embedder belong to the app (`app.state`, opened by its lifespan); tests
replace any of them with `app.dependency_overrides`. The dependencies are `async def` because they only
read attributes: a plain `def` dependency costs a hop to the worker-thread pool on every request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool

from orca_core.catalog import has_collection
from orca_core.embedder import Embedder
from orca_core.layout import check_collection
from orca_core.settings import OrcaSettings
from orca_intake.auth import Principal, authenticate
from orca_intake.errors import InvalidInput, NotFound
from orca_intake.group_commit import DocumentWriter
from orca_intake.metrics import IntakeMetrics
from orca_intake.s3_documents import RemoteInbox, remote_inbox
from orca_resources.inbox import collection_inbox
from orca_resources.intake_queue import IntakeQueue


async def app_settings(request: Request) -> OrcaSettings:
    """The app's settings (`create_app(settings)`), without a dependency override: an override makes FastAPI
    rebuild the dependency's tree on every request."""
    return request.app.state.settings


async def get_queue(request: Request) -> IntakeQueue:
    return request.app.state.queue


async def get_writer(request: Request) -> DocumentWriter:
    return request.app.state.writer


async def get_embedder(request: Request) -> Embedder:
    return request.app.state.embedder


async def get_metrics(request: Request) -> IntakeMetrics:
    return request.app.state.metrics


async def valid_collection(
    collection: Annotated[
        str,
        PathParam(
            description="Collection name: `[a-z0-9][a-z0-9_-]{0,62}`.",
            # Documented for clients (and schema-driven tests); the check below answers a readable 422.
            json_schema_extra={"pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
        ),
    ],
) -> str:
    """The path's collection name, or 422 saying what a name may contain."""
    try:
        return check_collection(collection)
    except ValueError as error:
        raise InvalidInput(str(error), code="invalid_collection") from None


SettingsDep = Annotated[OrcaSettings, Depends(app_settings)]
QueueDep = Annotated[IntakeQueue, Depends(get_queue)]
WriterDep = Annotated[DocumentWriter, Depends(get_writer)]
EmbedderDep = Annotated[Embedder, Depends(get_embedder)]
MetricsDep = Annotated[IntakeMetrics, Depends(get_metrics)]
AuthDep = Annotated[Principal, Depends(authenticate)]
CollectionDep = Annotated[str, Depends(valid_collection)]


async def existing_inbox(collection: CollectionDep, settings: SettingsDep) -> Path | RemoteInbox:
    """The inbox of a collection that exists, or 404 (409 for a folder that is a link Orca may not follow).

    With an object store, the collection's inbox there: it exists when it holds objects."""
    storage = settings.storage
    if storage.remote:
        inbox = remote_inbox(storage, collection)
        exists = await run_in_threadpool(has_collection, settings.layout, collection, storage, inbox_only=True)
    else:
        inbox = collection_inbox(settings.layout, collection)
        exists = inbox.is_dir()
    if not exists:
        raise NotFound(
            f"collection '{collection}' does not exist: post documents to it to create it",
            code="collection_not_found",
        )
    return inbox


ExistingInboxDep = Annotated[Path | RemoteInbox, Depends(existing_inbox)]
