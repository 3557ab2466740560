"""`POST` and `DELETE` documents of a collection: write into (or remove from) the inbox, then queue.

The inbox is `inbox/<collection>/` under ORCA_HOME, or on the object store ORCA_STORAGE_URL names
(orca_intake/s3_documents.py)."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from orca_core.settings import OrcaSettings
from orca_intake import s3_documents, submissions
from orca_intake.dependencies import CollectionDep, ExistingInboxDep, MetricsDep, QueueDep, SettingsDep, WriterDep
from orca_intake.errors import ERROR_RESPONSES, ErrorBody, InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from orca_intake.json_body import is_json, media_type, parse_json
from orca_intake.s3_documents import RemoteInbox
from orca_resources import inbox

router = APIRouter(prefix="/v1", tags=["documents"])
# A thousand documents, each with a metadata object of its own, fit with room to spare.
MAX_DOCUMENT_CONTAINERS = 1_000_000


class DocumentIn(BaseModel):
    """One document posted as JSON."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(
        None,
        description="Its path in the collection's inbox, e.g. `guides/setup.md`. Without a supported suffix "
        "(.txt .md .markdown .rst .html .htm .json .jsonl) `.txt` is added; without an id a random name is used.",
    )
    text: str = Field(description="The document's content, as it would be in a file of its type.")
    metadata: dict[str, Any] | None = Field(None, description="Kept with the document's source record.")


class DocumentBatch(BaseModel):
    """The JSON body of `POST /v1/collections/{collection}/documents`."""

    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(min_length=1)


class DocumentsAccepted(BaseModel):
    """The documents are in the inbox and the request is committed to the queue."""

    request_id: str
    collection: str
    documents: list[str] = Field(description="Document ids (paths in the inbox).")
    status: Literal["queued"] = "queued"


_UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["files"],
    "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "metadata": {"type": "string", "description": "Optional JSON object kept with every uploaded file."},
    },
}
_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/DocumentBatch"}},
        "multipart/form-data": {"schema": _UPLOAD_SCHEMA},
    },
}


async def _json_documents(request: Request, settings: OrcaSettings) -> list[submissions.Submission]:
    body = await request.body()
    try:
        # Off the event loop, and refused unparsed when its shape is out of bounds (orca_intake/json_body.py).
        payload = await run_in_threadpool(parse_json, body, max_containers=MAX_DOCUMENT_CONTAINERS)
    except (ValueError, RecursionError) as error:  # also invalid UTF-8
        raise InvalidInput(f"the body is not valid JSON: {error}", code="invalid_json") from None
    documents = payload.get("documents") if isinstance(payload, dict) else None
    if isinstance(documents, list) and len(documents) > settings.intake_max_documents:
        raise PayloadTooLarge(
            f"{len(documents)} documents in one request; the limit is {settings.intake_max_documents}",
            code="too_many_documents",
        )
    try:
        batch = DocumentBatch.model_validate(payload)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False, include_context=False)]
        ) from None
    return [
        submissions.from_json_document(i, doc.id, doc.text, doc.metadata, settings)
        for i, doc in enumerate(batch.documents)
    ]


def _form_metadata(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        metadata = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        metadata = None
    if not isinstance(metadata, dict):
        raise InvalidInput("the form field 'metadata' must be a JSON object", code="invalid_metadata")
    return submissions.check_metadata(metadata, "form field 'metadata'")


async def _uploaded_documents(request: Request, settings: OrcaSettings) -> list[submissions.Submission]:
    try:
        async with request.form(max_files=settings.intake_max_documents, max_fields=16) as form:
            unexpected = sorted(set(form.keys()) - {"files", "metadata"})
            if unexpected:
                raise InvalidInput(
                    f"unexpected form field(s) {', '.join(map(repr, unexpected))}: send documents as 'files'",
                    code="invalid_form",
                )
            uploads = form.getlist("files")
            if not uploads or not all(isinstance(u, UploadFile) for u in uploads):
                raise InvalidInput("send one or more files in the form field 'files'", code="invalid_form")
            metadata = _form_metadata(form.get("metadata"))
            found = []
            for upload in uploads:
                # One byte over the limit is enough to know a file is too large, without reading all of it.
                suffix = PurePosixPath(upload.filename or "").suffix.lower()
                data = await upload.read(submissions.max_bytes(suffix, settings) + 1)
                found.append(await run_in_threadpool(submissions.from_upload, upload.filename, data, metadata, settings))
            return found
    except StarletteHTTPException as error:
        if error.status_code != 400:
            raise
        if "too many files" in str(error.detail).lower():
            message = f"more than {settings.intake_max_documents} files in one request"
            raise PayloadTooLarge(message, code="too_many_documents") from None
        raise InvalidInput(f"malformed multipart body: {error.detail}", code="invalid_form") from None


@router.post(
    "/collections/{collection}/documents",
    status_code=202,
    summary="Add or replace documents",
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses={**ERROR_RESPONSES, 409: {"model": ErrorBody}, 415: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def post_documents(
    request: Request,
    collection: CollectionDep,
    settings: SettingsDep,
    queue: QueueDep,
    writer: WriterDep,
    metrics: MetricsDep,
) -> DocumentsAccepted:
    """Write each document atomically into `inbox/<collection>/` (local or on the object store) and queue one
    request for them.

    Send JSON (`{"documents": [{"id", "text", "metadata"}]}`) or a multipart form with one or more `files`
    (UTF-8 text of a supported type; the file name is the document id). A document with an existing id
    replaces it. The reply comes once the documents are durable and the request is committed.
    """
    kind = media_type(request)
    if is_json(kind):
        found = await _json_documents(request, settings)
    elif kind == "multipart/form-data":
        found = await _uploaded_documents(request, settings)
    else:
        raise UnsupportedMediaType(
            f"send documents as application/json or multipart/form-data, not {kind or 'an untyped body'}"
        )
    request_id = await submissions.store(writer, settings, queue, collection, found)
    metrics.documents_accepted.inc(len(found))
    metrics.jobs_queued.labels("documents").inc()
    return DocumentsAccepted(request_id=request_id, collection=collection, documents=[s.doc_id for s in found])


@router.delete(
    "/collections/{collection}/documents/{doc_id:path}",
    status_code=202,
    summary="Delete a document",
    responses={**ERROR_RESPONSES, 404: {"model": ErrorBody}},
)
def delete_document(
    collection: CollectionDep,
    doc_id: Annotated[
        str,
        Path(
            description="The document's id: a relative POSIX path without control characters.",
            # Documented, not enforced here: check_doc_id below answers a readable 422. An id with a control
            # character (which no document can have) does not even match this route.
            json_schema_extra={"minLength": 1, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]+$"},
        ),
    ],
    inbox_dir: ExistingInboxDep,
    queue: QueueDep,
    metrics: MetricsDep,
) -> DocumentsAccepted:
    """Remove the document from the inbox and queue a request; the next run drops its chunks from the index.

    `doc_id` is the id a 202 answer listed (for a JSON document posted without a suffix, with its `.txt`).
    """
    submissions.check_doc_id(doc_id, f"document id {doc_id!r}")
    if isinstance(inbox_dir, RemoteInbox):
        deleted = s3_documents.delete_document(inbox_dir, doc_id)
    else:
        deleted = inbox.delete_document(inbox_dir, doc_id)
    if not deleted:
        raise NotFound(f"collection '{collection}' has no document {doc_id!r}", code="document_not_found")
    queued = queue.enqueue("delete", collection, {"doc_id": doc_id})
    metrics.documents_deleted.inc()
    metrics.jobs_queued.labels("delete").inc()
    return DocumentsAccepted(request_id=queued.request_id, collection=collection, documents=[doc_id])
