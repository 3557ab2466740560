"""Documents in a collection's inbox: their files, where each came from, deletion, listing.

Which ids are safe and which names the scanners ignore is orca_core/names.py. Documents are written by orca_resources/inbox_staging.py (aside, made durable, renamed into place); a
document's origin is a sidecar JSON under `.orca/sources/`, deleted with it. Listing them is
`orca_core.catalog.iter_documents`.
"""

from __future__ import annotations

import json
from pathlib import Path

from orca_core.layout import SOURCES_DIR
from orca_core.names import validate_doc_id
from orca_resources.warehouse import fsync_dir


class InboxConflict(Exception):
    """The document cannot be stored because a folder and a file would need the same path."""


def doc_path(inbox_dir: Path, doc_id: str) -> Path:
    """The file of `doc_id` in `inbox_dir`; ValueError if the id is unsafe or a link would lead outside."""
    path = Path(inbox_dir) / validate_doc_id(doc_id)
    # A validated id cannot climb out by itself, but a symbolic link inside the inbox could redirect a write.
    if not path.parent.resolve().is_relative_to(Path(inbox_dir).resolve()):
        raise ValueError("document id leads outside the inbox through a symbolic link")
    return path


def source_path(inbox_dir: Path, doc_id: str) -> Path:
    return Path(inbox_dir) / SOURCES_DIR / f"{validate_doc_id(doc_id)}.json"


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
