"""Posted and deleted documents on an object store (ORCA_STORAGE_URL=s3://bucket/prefix).

The keys mirror the local inbox (orca_core/layout.py): a document is the object `inbox/<collection>/<doc_id>`
and its source record `inbox/<collection>/.orca/sources/<doc_id>/record.json`. Each is one PUT, the record
before the document, so whoever sees a document can already read where it came from. An answered PUT is
durable, so there is nothing to stage or flush: the queue row is committed once every PUT of the request
has been answered (orca_intake/group_commit.py).

Before the first PUT of a request its ids are checked against the store as the local inbox checks its
folders: a document where a "folder" of documents is (objects under `<doc_id>/`), or under a document
(`a.md/b.md` when `a.md` is one), is an InboxConflict, since a run's local copy could not hold both as files.
Two requests racing to create both can still pass their checks together; nothing on S3 can refuse the second.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from functools import partial
from pathlib import PurePosixPath

from orca_core.layout import legacy_source_record, source_record
from orca_core.names import validate_doc_id
from orca_core.s3_objects import Objects, error_code, is_missing
from orca_core.storage import Storage
from orca_intake.errors import InvalidInput, ServiceUnavailable
from orca_resources.inbox import InboxConflict
from orca_resources.inbox_staging import NewDocument, source_bytes

log = logging.getLogger("orca_intake")

MAX_KEY_BYTES = 1024  # S3's limit on a key; an id within the local limits may still make a longer record key


@dataclass(frozen=True)
class RemoteInbox:
    """A collection's inbox on an object store: the key prefix of its documents (no trailing slash)."""

    objects: Objects
    folder: str

    def key(self, relative: str | PurePosixPath) -> str:
        return f"{self.folder}/{PurePosixPath(relative).as_posix()}"


def remote_inbox(storage: Storage, collection: str) -> RemoteInbox:
    return RemoteInbox(storage.objects, storage.inbox_folder(collection))


def store_errors() -> tuple[type[Exception], ...]:
    """What boto3 raises when the store refuses or cannot be reached (imported only with an object store)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError


def unavailable(error: Exception, what: str) -> ServiceUnavailable:
    """The 503 for a store failure; the endpoint and keys go to the log, not to the caller."""
    log.error("object store failure while trying to %s: %s", what, error)
    reason = error_code(error) or type(error).__name__
    return ServiceUnavailable(f"could not {what} on the object store ({reason})", code="storage_unavailable")


def _exists(objects: Objects, key: str) -> bool:
    try:
        objects.client.head_object(Bucket=objects.bucket, Key=key)
    except Exception as error:
        if is_missing(error):
            return False
        raise
    return True


def _not_a_document(inbox: RemoteInbox, folder: str, doc_id: str) -> None:
    if _exists(inbox.objects, inbox.key(folder)):
        raise InboxConflict(f"'{doc_id}' needs a folder '{folder}', but that is a document")


def _not_a_folder(inbox: RemoteInbox, doc_id: str) -> None:
    if inbox.objects.has_any(inbox.key(doc_id)):
        raise InboxConflict(f"'{doc_id}' is a folder of documents, not a document")


def _probes(inbox: RemoteInbox, documents: list[NewDocument]) -> list[Callable[[], None]]:
    """The store checks of a request's ids; ValueError (unsafe id) or InboxConflict (within the request) first."""
    ids = {validate_doc_id(document.doc_id) for document in documents}
    for doc_id in ids:
        if len(inbox.key(source_record(doc_id)).encode()) > MAX_KEY_BYTES:
            raise ValueError(
                f"document id {doc_id!r} is too long for the object store: the key of its source record "
                f"would be longer than {MAX_KEY_BYTES} bytes"
            )
    folders: set[str] = set()
    probes: list[Callable[[], None]] = []
    for document in documents:
        parents = document.doc_id.split("/")[:-1]
        for depth in range(1, len(parents) + 1):
            folder = "/".join(parents[:depth])
            if folder in ids:
                raise InboxConflict(f"'{document.doc_id}' needs a folder '{folder}', but that is a document")
            if folder not in folders:
                folders.add(folder)
                probes.append(partial(_not_a_document, inbox, folder, document.doc_id))
        probes.append(partial(_not_a_folder, inbox, document.doc_id))
    return probes


def _put(inbox: RemoteInbox, document: NewDocument) -> None:
    inbox.objects.put_bytes(inbox.key(source_record(document.doc_id)), source_bytes(document))
    inbox.objects.put_bytes(inbox.key(document.doc_id), document.data)


def _settle(outcomes: list[BaseException | None], running: dict[int, list[Future]], what: str) -> None:
    """Wait for every future (none is left running behind an answer); a request's first failure is its outcome."""
    errors = store_errors()
    for number, futures in running.items():
        for future in futures:
            error = future.exception()
            if error is not None and outcomes[number] is None:
                outcomes[number] = unavailable(error, what) if isinstance(error, errors) else error


def store_requests(pool: Executor, requests: list[tuple[RemoteInbox, list[NewDocument]]]) -> list[BaseException | None]:
    """Check, then store the documents of several requests at once (`pool` runs the checks and the PUTs).

    One outcome per request: None when every document is stored, else the error to answer it with
    (InvalidInput, InboxConflict, ServiceUnavailable). A request refused by its checks stored nothing; one
    that failed on a PUT may have stored some documents, which its retry replaces.
    """
    outcomes: list[BaseException | None] = [None] * len(requests)
    checks: dict[int, list[Future]] = {}
    for number, (inbox, documents) in enumerate(requests):
        try:
            checks[number] = [pool.submit(probe) for probe in _probes(inbox, documents)]
        except ValueError as error:
            outcomes[number] = InvalidInput(str(error), code="invalid_doc_id")
        except InboxConflict as error:
            outcomes[number] = error
    _settle(outcomes, checks, "check the documents' ids")
    puts = {
        number: [pool.submit(_put, inbox, document) for document in documents]
        for number, (inbox, documents) in enumerate(requests)
        if outcomes[number] is None
    }
    _settle(outcomes, puts, "store the documents")
    return outcomes


def delete_document(inbox: RemoteInbox, doc_id: str) -> bool:
    """Delete a document and its source record (either name); False when the store has no such document."""
    doc_id = validate_doc_id(doc_id)
    key = inbox.key(doc_id)
    if not _exists(inbox.objects, key):
        return False  # absent, or only a "folder" of documents
    keys = [key, inbox.key(source_record(doc_id)), inbox.key(legacy_source_record(doc_id))]
    try:
        inbox.objects.delete(keys)  # raises when the store lists keys it could not delete
    except OSError as error:
        log.error("the object store did not delete %s: %s", doc_id, error)
        raise ServiceUnavailable(f"could not delete {doc_id!r} on the object store", code="storage_unavailable") from None
    return True
