"""Documents in a collection's inbox: safe ids, which names are ignored, where each came from, deletion.

A document's id is its POSIX path relative to `inbox/<collection>/`. Ids come from users (the REST intake),
so `validate_doc_id` makes sure no id can name a file outside the inbox or one the inbox scanners ignore.
Documents are written by orca_resources/inbox_staging.py (aside, made durable, renamed into place); a
document's origin is a sidecar JSON under `.orca/sources/`, deleted with it.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterator
from pathlib import Path

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


_PARTIAL_EXTENSIONS = frozenset(_PARTIAL_SUFFIXES)  # each is "." + letters: matched against a name's last "."


def _ignored_component(part: str) -> bool:
    """The rule for one non-empty path component (see `is_ignored_name`)."""
    first, last = part[0], part[-1]
    if first == "." or last == "~":
        return True
    if first == "~" and part[:2] == "~$":  # Office lock files
        return True
    if first == "#" and last == "#" and len(part) > 1:  # Emacs autosave
        return True
    lower = part.lower()
    # Same as lower.endswith(_PARTIAL_SUFFIXES), as the suffixes hold one dot each, at a third of the cost.
    return lower[lower.rfind("."):] in _PARTIAL_EXTENSIONS or lower in _NOT_DOCUMENTS


def is_ignored_name(name: str) -> bool:
    """True when any component of `name` is hidden, temporary, partial or an editor file.

    The inbox scanners skip such names (a file still being written, sidecars under `.orca/`), so a posted
    document must not use them either. This is the one definition of the rule.
    """
    # Fast path: the scanners call this once per directory entry, and a scandir name is a single component.
    if "/" not in name and "\\" not in name:
        return bool(name) and _ignored_component(name)
    return any(_ignored_component(part) for part in name.replace("\\", "/").split("/") if part)


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
