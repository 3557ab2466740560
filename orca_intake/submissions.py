"""Posted documents: checked the way the `documents` asset will read them, then stored and queued.

Everything a run would reject (a bad id, invalid UTF-8, NUL bytes, an empty or oversized text, broken JSON
in a `.json` document) is refused here with a 4xx answer naming the document, instead of becoming a failed
document minutes later in a run.
"""

from __future__ import annotations

import codecs
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from fastapi.concurrency import run_in_threadpool

from orca_core import catalog, formats, names
from orca_core.formats.text import extract_text
from orca_core.settings import OrcaSettings
from orca_intake.errors import Forbidden, InvalidInput, PayloadTooLarge
from orca_intake.group_commit import DocumentWriter, StoreJob
from orca_intake.s3_documents import remote_inbox, store_errors, unavailable
from orca_resources import inbox
from orca_resources.inbox_staging import NewDocument
from orca_resources.intake_queue import IntakeQueue

MAX_METADATA_BYTES = 64 * 1024


@dataclass(frozen=True)
class Submission:
    """One document ready to be written: its id (path in the inbox), its bytes and its metadata."""

    doc_id: str
    data: bytes
    metadata: dict[str, Any]


def _where(label: str) -> dict[str, str]:
    return {"document": label}


def check_doc_id(doc_id: str, label: str) -> str:
    try:
        return names.validate_doc_id(doc_id)
    except ValueError as error:
        raise InvalidInput(f"{label}: {error}", code="invalid_doc_id", details=_where(label)) from None


def json_doc_id(requested: str | None, label: str) -> str:
    """The inbox path of a JSON document: its id, with `.txt` added unless it names a plain-text type."""
    if requested is None:
        return f"{uuid.uuid4().hex}.txt"
    requested = check_doc_id(names.normalize_doc_id(requested), label)
    # Text posted as JSON is text, whatever its id says: `report.pdf` is stored as `report.pdf.txt`.
    if PurePosixPath(requested).suffix.lower() in formats.TEXT_SUFFIXES:
        return requested
    return check_doc_id(f"{requested}.txt", label)


def check_metadata(metadata: dict[str, Any] | None, label: str) -> dict[str, Any]:
    if not metadata:
        return {}
    try:
        size = len(json.dumps(metadata, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except (ValueError, TypeError, RecursionError):
        raise InvalidInput(
            f"{label}: metadata must be plain JSON (valid Unicode, no NaN or Infinity, not nested too deeply)",
            code="invalid_metadata",
            details=_where(label),
        ) from None
    if size > MAX_METADATA_BYTES:
        raise InvalidInput(
            f"{label}: metadata is {size} bytes, more than {MAX_METADATA_BYTES}",
            code="invalid_metadata",
            details=_where(label),
        )
    return metadata


def max_bytes(suffix: str, settings: OrcaSettings) -> int:
    """The largest document of this type: ORCA_INTAKE_MAX_TEXT_BYTES for plain text; packaged formats (PDF,
    Office...) up to what the documents asset reads of them (and the request body limit)."""
    return formats.MAX_PACKAGED_BYTES if formats.is_packaged(suffix) else settings.intake_max_text_bytes


def check_size(size: int, limit: int, label: str) -> None:
    """413 for a document larger than the documents asset would read."""
    if size > limit:
        raise PayloadTooLarge(
            f"{label} is {size} bytes, more than the limit of {limit} bytes per document",
            code="document_too_large",
            details=_where(label),
        )


def check_converts(doc_id: str, data: bytes, label: str) -> None:
    """Refuse a document the run would refuse: converted as the `documents` asset converts it (orca_core/formats),
    invalid for its type (broken JSON, a `.pdf` that is an HTML page, an encrypted file) or with nothing left
    (HTML of scripts, JSON of numbers, a scanned PDF)."""
    try:
        formats.extract(PurePosixPath(doc_id).suffix.lower(), data)
    except formats.DocumentError as error:
        raise InvalidInput(f"{label}: {error.reason}", code="invalid_document", details=_where(label)) from None


def from_json_document(
    index: int, requested_id: str | None, text: str, metadata: dict | None, settings: OrcaSettings
) -> Submission:
    label = f"documents[{index}]" + (f" ({requested_id!r})" if requested_id is not None else "")
    doc_id = json_doc_id(requested_id, label)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{label}: text is not valid Unicode (lone surrogate)", code="invalid_text", details=_where(label)
        ) from None
    check_size(len(data), settings.intake_max_text_bytes, label)
    try:
        extract_text(PurePosixPath(doc_id).suffix.lower(), data)
    except formats.DocumentError as error:
        raise InvalidInput(f"{label}: {error.reason}", code="invalid_text", details=_where(label)) from None
    return Submission(doc_id, data, check_metadata(metadata, label))


def from_upload(filename: str | None, data: bytes, metadata: dict, settings: OrcaSettings) -> Submission:
    """An uploaded file keeps its (validated) name; it must convert as the run will convert it.

    Converting a PDF or an Office file is CPU work: call this off the event loop."""
    if not filename:
        raise InvalidInput("an uploaded file has no filename", code="invalid_doc_id")
    label = f"file {filename!r}"
    doc_id = check_doc_id(names.normalize_doc_id(filename), label)
    suffix = PurePosixPath(doc_id).suffix.lower()
    if suffix not in formats.DOCUMENT_SUFFIXES:
        raise InvalidInput(
            f"{label}: unsupported file type '{suffix or '(none)'}'; use one of "
            f"{', '.join(sorted(formats.DOCUMENT_SUFFIXES))}",
            code="unsupported_file_type",
            details=_where(label),
        )
    check_size(len(data), max_bytes(suffix, settings), label)
    if formats.is_packaged(suffix):
        check_converts(doc_id, data, label)
        return Submission(doc_id, data, metadata)
    try:
        data.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"{label} is not valid UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "save it as UTF-8",
            code="invalid_encoding",
            details=_where(label),
        ) from None
    try:
        extract_text(suffix, data)
    except formats.DocumentError as error:
        raise InvalidInput(f"{label}: {error.reason}", code="invalid_text", details=_where(label)) from None
    return Submission(doc_id, data, metadata)


def check_room_for(settings: OrcaSettings, collection: str) -> None:
    """403 when posting to `collection` would create one more collection than ORCA_MAX_COLLECTIONS allows.

    Each collection is a partition and its own runs: a caller must not be able to create them without end.
    Posts racing to create the last ones may overshoot by the few that run at the same moment. With an
    object store this lists the store (network calls): run it in a worker thread."""
    storage = settings.storage
    if storage.remote:
        # Most posts go to a collection that has documents: one 1-key listing, and no listing of all of them.
        if catalog.has_collection(settings.layout, collection, storage, inbox_only=True):
            return
        names = storage.collection_names()
        full = collection not in names and len(names) >= settings.max_collections
    else:
        layout = settings.layout
        full = not layout.has_collection(collection) and len(layout.collections()) >= settings.max_collections
    if full:
        raise Forbidden(
            f"this Orca holds {settings.max_collections} collections, its limit (ORCA_MAX_COLLECTIONS): "
            f"'{collection}' cannot be created; post to an existing collection or purge one",
            code="collection_limit",
        )


def check_unique(submissions: list[Submission]) -> None:
    seen: set[str] = set()
    for submission in submissions:
        if submission.doc_id in seen:
            raise InvalidInput(
                f"document id {submission.doc_id!r} appears more than once in the request",
                code="duplicate_doc_id",
                details=_where(submission.doc_id),
            )
        seen.add(submission.doc_id)


async def store(
    writer: DocumentWriter, settings: OrcaSettings, queue: IntakeQueue, collection: str, submissions: list[Submission]
) -> str:
    """Write every document (and its source record) into the inbox, then commit the queue row; its id.

    Returns once the documents are durable and the row committed, together with the other requests of the
    writer's group (orca_intake/group_commit.py); raises the domain error of a failure (4xx or 503).
    """
    check_unique(submissions)
    request_id = uuid.uuid4().hex
    received_at = datetime.now(UTC).isoformat()
    documents = [
        NewDocument(
            s.doc_id, s.data, {"request_id": request_id, "metadata": s.metadata, "received_at": received_at}
        )
        for s in submissions
    ]
    payload = {"doc_ids": [s.doc_id for s in submissions], "metadata": sum(1 for s in submissions if s.metadata)}
    row = ("documents", collection, payload, request_id)
    if settings.storage.remote:
        target = remote_inbox(settings.storage, collection)
        try:
            await run_in_threadpool(check_room_for, settings, collection)
        except store_errors() as error:
            raise unavailable(error, "count the collections") from None
    else:
        target = inbox.collection_inbox(settings.layout, collection)
        check_room_for(settings, collection)
    await writer.store(StoreJob(queue, target, documents, row))
    return request_id
