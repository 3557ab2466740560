"""Documents in a collection's inbox: safe ids, atomic writes, and where each document came from.

A document's id is its POSIX path relative to `inbox/<collection>/`. Ids come from users (the REST intake),
so `validate_doc_id` makes sure no id can name a file outside the inbox or one the inbox scanners ignore.
Every file is written to a hidden temporary name beside its target, fsynced and renamed into place, so a
scanner never reads half a document. A document's origin is a sidecar JSON under `.orca/sources/`, written
before the document itself (so whoever sees the document can already read its origin) and deleted with it.
"""

from __future__ import annotations

import json
import os
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orca_resources.warehouse import fsync_dir

SOURCES_DIR = Path(".orca") / "sources"
# The loaders' supported types; a posted document without one of these suffixes is stored as `<id>.txt`.
DOCUMENT_SUFFIXES: frozenset[str] = frozenset({".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".json", ".jsonl"})
MAX_DOC_ID_BYTES = 1024
MAX_COMPONENT_BYTES = 255  # NAME_MAX of common file systems
# Names editors and copy tools use while writing; the inbox scanners skip them, so a document must not use them.
_PARTIAL_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".swp", ".swo", ".crdownload", ".download", ".filepart")
_NOT_DOCUMENTS = frozenset({"thumbs.db", "desktop.ini"})


class InboxConflict(Exception):
    """The document cannot be stored because a folder and a file would need the same path."""


def is_ignored_name(name: str) -> bool:
    """True when any component of `name` is hidden, temporary, partial or an editor file.

    The inbox scanners skip such names (a file still being written, sidecars under `.orca/`), so a posted
    document must not use them either. This is the one definition of the rule.
    """
    for part in name.replace("\\", "/").split("/"):
        if not part:
            continue
        lower = part.lower()
        if (
            part.startswith(".")
            or part.endswith("~")
            or part.startswith("~$")  # Office lock files
            or (len(part) > 1 and part.startswith("#") and part.endswith("#"))  # Emacs autosave
            or lower.endswith(_PARTIAL_SUFFIXES)
            or lower in _NOT_DOCUMENTS
        ):
            return True
    return False


def validate_doc_id(doc_id: str) -> str:
    """Return `doc_id` if it is a safe relative POSIX path inside an inbox, else raise ValueError saying why."""
    if not isinstance(doc_id, str) or not doc_id:
        raise ValueError("document id must be a non-empty string")
    if any(unicodedata.category(ch) == "Cc" for ch in doc_id):
        raise ValueError("document id must not contain NUL or other control characters")
    if "\\" in doc_id:
        raise ValueError("document id must use '/' as separator, not '\\'")
    try:
        size = len(doc_id.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("document id is not valid Unicode (lone surrogate)") from None
    if size > MAX_DOC_ID_BYTES:
        raise ValueError(f"document id is longer than {MAX_DOC_ID_BYTES} bytes")
    if doc_id.startswith("/"):
        raise ValueError("document id must be a relative path, not an absolute one")
    for part in doc_id.split("/"):
        if part in ("", ".", ".."):
            raise ValueError("document id must not contain empty, '.' or '..' path components")
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise ValueError(f"each path component of a document id must be at most {MAX_COMPONENT_BYTES} bytes")
        if part != part.strip():
            raise ValueError("path components of a document id must not start or end with spaces")
    if is_ignored_name(doc_id):
        raise ValueError(
            "document id must not have hidden or temporary components (leading '.', trailing '~', "
            "'.tmp', '.part', ...): the inbox ignores such files"
        )
    return doc_id


def doc_path(inbox_dir: Path, doc_id: str) -> Path:
    """The file of `doc_id` in `inbox_dir`; ValueError if the id is unsafe or a link would lead outside."""
    path = Path(inbox_dir) / validate_doc_id(doc_id)
    # A validated id cannot climb out by itself, but a symbolic link inside the inbox could redirect a write.
    if not path.parent.resolve().is_relative_to(Path(inbox_dir).resolve()):
        raise ValueError("document id leads outside the inbox through a symbolic link")
    return path


def source_path(inbox_dir: Path, doc_id: str) -> Path:
    return Path(inbox_dir) / SOURCES_DIR / f"{validate_doc_id(doc_id)}.json"


@dataclass(frozen=True)
class NewDocument:
    """One document to store: its id, its bytes, and its source record."""

    doc_id: str
    data: bytes
    source: dict[str, Any]


def _write_aside(target: Path, data: bytes) -> None:
    """Write `data` to a hidden temporary name beside `target`, fsync it and rename it over `target`."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InboxConflict(f"a document is in the way of folder '{target.parent.name}'") from None
    tmp = target.with_name(f".{target.name[:200]}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if target.is_dir():
            raise InboxConflict(f"'{target.name}' is a folder of documents, not a document")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _check_room(inbox_dir: Path, documents: list[NewDocument]) -> None:
    """Refuse up front (before writing anything) ids whose file or folders collide with existing ones."""
    ids = {document.doc_id for document in documents}
    for document in documents:
        parents = document.doc_id.split("/")[:-1]
        for depth in range(1, len(parents) + 1):
            folder = "/".join(parents[:depth])
            if folder in ids or (inbox_dir / folder).is_file():
                raise InboxConflict(f"'{document.doc_id}' needs a folder '{folder}', but that is a document")
        if (inbox_dir / document.doc_id).is_dir():
            raise InboxConflict(f"'{document.doc_id}' is a folder of documents, not a document")


def write_documents(inbox_dir: Path, documents: Iterable[NewDocument]) -> list[str]:
    """Store each document (source record first) atomically; return their ids once all are durable.

    Raises ValueError for an unsafe id and InboxConflict when a document and a folder would share a path;
    both are detected before the first file is written.
    """
    inbox_dir = Path(inbox_dir)
    documents = list(documents)
    for document in documents:
        doc_path(inbox_dir, document.doc_id)
    _check_room(inbox_dir, documents)
    touched: set[Path] = set()
    written = []
    for document in documents:
        target = doc_path(inbox_dir, document.doc_id)
        sidecar = source_path(inbox_dir, document.doc_id)
        _write_aside(sidecar, json.dumps(document.source, ensure_ascii=False, sort_keys=True).encode())
        _write_aside(target, document.data)
        touched.update({sidecar.parent, target.parent})
        written.append(document.doc_id)
    # One fsync per folder after all renames instead of one per file: 1,000 documents stay one quick request.
    for folder in touched:
        fsync_dir(folder)
    return written


def write_document(inbox_dir: Path, doc_id: str, data: bytes, source: dict[str, Any]) -> None:
    """Store one document and its source record atomically (source record first)."""
    write_documents(inbox_dir, [NewDocument(doc_id, data, source)])


def _prune_empty_parents(path: Path, stop: Path) -> None:
    # An emptied sub-folder left behind would block a later document with the folder's name.
    for folder in path.parents:
        if folder == stop or not folder.is_relative_to(stop):
            return
        try:
            folder.rmdir()
        except OSError:
            return


def delete_document(inbox_dir: Path, doc_id: str) -> bool:
    """Remove a document and its source record; False when there was no such document."""
    inbox_dir = Path(inbox_dir)
    target = doc_path(inbox_dir, doc_id)
    if not (target.is_symlink() or target.is_file()):
        return False
    target.unlink()
    sidecar = source_path(inbox_dir, doc_id)
    sidecar.unlink(missing_ok=True)
    fsync_dir(target.parent)
    _prune_empty_parents(target, inbox_dir)
    _prune_empty_parents(sidecar, inbox_dir / SOURCES_DIR)
    return True


def read_source(inbox_dir: Path, doc_id: str) -> dict | None:
    """The source record of a document, or None when it has none (dropped into the folder) or it is unreadable."""
    try:
        with open(source_path(inbox_dir, doc_id), "rb") as handle:
            record = json.load(handle)
    except (OSError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def iter_documents(inbox_dir: Path) -> Iterator[str]:
    """Ids of the files in `inbox_dir`, recursively, skipping hidden and temporary names; links not followed."""
    stack = [Path(inbox_dir)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # removed while walking, or unreadable: nothing to count there
        for entry in entries:
            if is_ignored_name(entry.name):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file():
                yield Path(entry.path).relative_to(inbox_dir).as_posix()
