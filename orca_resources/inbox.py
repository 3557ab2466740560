"""Documents in a collection's inbox: their files, where each came from, deletion; never through a link.

Which ids are safe and which names the scanners ignore is orca_core/names.py. Documents are written by
orca_resources/inbox_staging.py (aside, made durable, renamed into place); a document's origin is a sidecar
JSON under `.orca/sources/`, deleted with it. Listing them is `orca_core.catalog.iter_documents`.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

from orca_core.layout import SOURCES_DIR, Layout, legacy_source_record, source_record
from orca_core.names import validate_doc_id
from orca_resources.warehouse import fsync_dir

# A source record holds at most 64 KiB of metadata and a few fields: anything much larger is not one.
MAX_RECORD_BYTES = 1024 * 1024


class InboxConflict(Exception):
    """The document cannot be stored (or removed) where its id points: a folder, a link or another file is there."""


def unlinked(inbox_dir: Path, relative: str | Path, *, last: bool = True) -> Path:
    """`inbox_dir / relative`, once no existing component below `inbox_dir` is a symbolic link.

    Orca writes, reads and deletes inside an inbox without following links: a link planted there (a folder of
    records pointing elsewhere, a loop) must not redirect where a caller's bytes go. `last=False` lets the final
    component be a link (replacing a link by a rename, or unlinking it, does not follow it). InboxConflict
    names the link otherwise. Components that do not exist yet are fine: nothing can be followed there.
    """
    path = Path(inbox_dir)
    parts = Path(relative).parts
    for number, part in enumerate(parts, start=1):
        path = path / part
        if number == len(parts) and not last:
            break
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            break
        except OSError as error:  # a name too long for the file system, a component that is a file
            raise InboxConflict(f"cannot use '{Path(*parts[:number]).as_posix()}': {error.strerror}") from None
        if stat.S_ISLNK(info.st_mode):
            raise InboxConflict(
                f"'{Path(*parts[:number]).as_posix()}' is a symbolic link; Orca does not write, read or delete "
                "through links inside an inbox"
            )
    return Path(inbox_dir) / relative


def collection_inbox(layout: Layout, collection: str) -> Path:
    """The folder documents of `collection` are written to and deleted from; InboxConflict when it is a link
    that the settings do not allow to follow (ORCA_INBOX_FOLLOW_SYMLINKS)."""
    if layout.linked_inbox(collection):
        raise InboxConflict(
            f"the inbox folder of '{collection}' is a symbolic link; Orca does not write or delete through it "
            "(an administrator can allow it with ORCA_INBOX_FOLLOW_SYMLINKS=1)"
        )
    return layout.inbox(collection)


def doc_path(inbox_dir: Path, doc_id: str) -> Path:
    """The file of `doc_id` in `inbox_dir`: ValueError if the id is unsafe, InboxConflict if a folder is a link."""
    return unlinked(inbox_dir, validate_doc_id(doc_id), last=False)


def source_path(inbox_dir: Path, doc_id: str, *, legacy: bool = False) -> Path:
    """The source record of `doc_id` (or where older versions wrote it); InboxConflict when a part is a link."""
    doc_id = validate_doc_id(doc_id)
    return unlinked(inbox_dir, legacy_source_record(doc_id) if legacy else source_record(doc_id))


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
    """Remove a document (a regular file) and its source record; False when there was no such document.

    InboxConflict when the id names something else (a link, a FIFO) or a folder on the way is a link.
    """
    inbox_dir = Path(inbox_dir)
    target = doc_path(inbox_dir, doc_id)
    try:
        info = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISDIR(info.st_mode):
        return False
    if not stat.S_ISREG(info.st_mode):
        raise InboxConflict(f"'{doc_id}' is not a regular file; Orca deletes only documents it wrote or can read")
    target.unlink()
    sidecars = []
    for legacy in (False, True):
        try:
            sidecars.append(source_path(inbox_dir, doc_id, legacy=legacy))
        except InboxConflict:
            pass  # a link among the records: leave it, the document itself is gone
    for sidecar in sidecars:
        sidecar.unlink(missing_ok=True)
    fsync_dir(target.parent)
    _prune_empty_parents(target, inbox_dir)
    for sidecar in sidecars:
        _prune_empty_parents(sidecar, inbox_dir / SOURCES_DIR)
    return True


def read_source(inbox_dir: Path, doc_id: str) -> dict | None:
    """The source record of a document, or None when it has none (dropped into the folder) or it is unreadable."""
    for legacy in (False, True):
        try:
            record = json.loads(read_regular_file(source_path(inbox_dir, doc_id, legacy=legacy), MAX_RECORD_BYTES))
        except (OSError, ValueError, RecursionError, InboxConflict):
            continue
        return record if isinstance(record, dict) else None
    return None


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of `path` if it is a regular file (not a link, FIFO or device) of at most `max_bytes`.

    Opened without following a link and without blocking (a FIFO would wait for a writer forever), then
    checked on the open descriptor, so what is read is what was checked. OSError otherwise.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"larger than {max_bytes} bytes")
    return data
