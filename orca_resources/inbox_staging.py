"""Storing documents in an inbox in groups: staged aside, made durable, then published by renames.

The intake's group commit (orca_intake/group_commit.py) stages the documents of many requests, makes them
durable with one flush, and only then gives them their names, so a scanner never reads half a document
(nor, after a crash, an empty or torn one). A document's source record is renamed into place before the
document itself, so whoever sees the document can already read its origin.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orca_core.layout import source_record
from orca_core.names import validate_doc_id
from orca_resources.inbox import InboxConflict, unlinked


@dataclass(frozen=True)
class NewDocument:
    """One document to store: its id, its bytes, and its source record."""

    doc_id: str
    data: bytes
    source: dict[str, Any]


@dataclass
class StagedDocuments:
    """Documents written under hidden temporary names beside their targets: neither visible nor durable yet.

    The caller makes the temporary files durable (`fsync_file` each, or one file-system flush for many
    stagings at once), then `publish` renames them into place, and the folders it returns must be fsynced
    for the renames to be durable. `discard` removes whatever temporary file is left after a failure.
    """

    inbox_dir: Path
    doc_ids: list[str] = field(default_factory=list)
    moves: list[tuple[Path, Path]] = field(default_factory=list)  # (temporary, target); a source record first
    folders: set[Path] = field(default_factory=set)  # whose entries change: fsync them after `publish`
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def tmp_files(self) -> list[Path]:
        return [tmp for tmp, _ in self.moves]


def source_bytes(document: NewDocument) -> bytes:
    """The bytes of a document's source record, as every storage writes it."""
    return json.dumps(document.source, ensure_ascii=False, sort_keys=True).encode()


def _write_tmp(staged: StagedDocuments, target: Path, data: bytes, watch: Callable[[Path], None] | None) -> None:
    folder = target.parent
    if folder not in staged.folders:
        if not folder.is_dir():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise InboxConflict(f"a document is in the way of folder '{folder.name}'") from None
            # New folders are entries of their parents: fsync those too, up to the folder holding the inbox.
            staged.folders.update(p for p in folder.parents if p.is_relative_to(staged.inbox_dir.parent))
        if watch is not None:
            watch(folder)
        staged.folders.add(folder)
    # One random token per staging and a counter: unique names without a getrandom call per file.
    tmp = target.with_name(f".{target.name[:200]}.{staged.token}{len(staged.moves)}.tmp")
    # os.open/os.write: a buffered `open` adds an fstat and more per file, and hundreds of files are common.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    staged.moves.append((tmp, target))


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


def _targets(inbox_dir: Path, documents: list[NewDocument]) -> list[tuple[Path, Path]]:
    """(source record, document) paths of each document: ValueError for an unsafe id, InboxConflict when any
    folder on the way is a link. The record must be a plain file; a document may replace a link, since a
    rename replaces the link itself and follows nothing."""
    targets = []
    for document in documents:
        doc_id = validate_doc_id(document.doc_id)
        targets.append((unlinked(inbox_dir, source_record(doc_id)), unlinked(inbox_dir, doc_id, last=False)))
    return targets


def stage_documents(
    inbox_dir: Path, documents: Iterable[NewDocument], watch: Callable[[Path], None] | None = None
) -> StagedDocuments:
    """Write each document and its source record beside its target, without fsync; see `StagedDocuments`.

    Raises ValueError for an unsafe id and InboxConflict when a document and a folder would share a path,
    both before the first file is written. `watch(folder)` is called before a file is written into `folder`.
    """
    inbox_dir = Path(inbox_dir)
    documents = list(documents)
    targets = _targets(inbox_dir, documents)
    _check_room(inbox_dir, documents)
    staged = StagedDocuments(inbox_dir)
    try:
        for document, (record, target) in zip(documents, targets):
            _write_tmp(staged, record, source_bytes(document), watch)
            _write_tmp(staged, target, document.data, watch)
            staged.doc_ids.append(document.doc_id)
    except BaseException:
        discard(staged)
        raise
    return staged


def publish(staged: StagedDocuments) -> set[Path]:
    """Rename the (durable) temporary files into place, each source record before its document.

    Returns the folders to fsync. InboxConflict, before any rename, when a folder took a document's place.
    """
    for _, target in staged.moves:
        if target.is_dir():
            raise InboxConflict(f"'{target.name}' is a folder of documents, not a document")
    for tmp, target in staged.moves:
        os.replace(tmp, target)
    return staged.folders


def discard(staged: StagedDocuments) -> None:
    """Remove the temporary files not renamed yet (after a failure)."""
    for tmp in staged.tmp_files:
        tmp.unlink(missing_ok=True)


def fsync_file(path: Path) -> None:
    """Make the data of an existing file durable (fdatasync where the platform has it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        getattr(os, "fdatasync", os.fsync)(fd)
    finally:
        os.close(fd)
