"""What each collection holds: its inbox documents and its served index's summary.

One answer for `orca collections` and the intake's `GET /v1/collections`. Only the index's small columns
(`doc_id`, `model`) are read, never its vectors, and the summary is cached per file version: the index is
replaced by a rename, so a new version has a new inode and mtime.

With an object store (ORCA_STORAGE_URL=s3://...) the collections and their documents are what the store
holds (a run's local copy may be stale or absent), and the index is the readers' copy, refreshed first.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orca_core.layout import Layout
from orca_core.names import is_ignored_name
from orca_core.s3_objects import local_name
from orca_core.search import index_models
from orca_core.storage import Storage

MAX_CACHED_SUMMARIES = 4096


@dataclass(frozen=True)
class IndexSummary:
    """The served index of a collection: rows (chunks), distinct documents, model and when it was published."""

    chunks: int
    documents: int
    model: str | None
    updated_at: datetime


@dataclass(frozen=True)
class CollectionInfo:
    """One collection: documents in its inbox, and its served index (None before the first run)."""

    name: str
    inbox_documents: int
    index: IndexSummary | None


_summaries: dict[Path, tuple[tuple[int, int, int], IndexSummary]] = {}
_lock = threading.Lock()


def index_summary(path: Path) -> IndexSummary | None:
    """The summary of the index at `path`, or None when the collection has none yet (or it is unreadable)."""
    try:
        # One open file for identity and content: the index is replaced by a rename, and reading it by path
        # (pyarrow opens a path more than once) could mix the old file's size with the new file's bytes.
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            with _lock:
                cached = _summaries.get(path)
            if cached is not None and cached[0] == signature:
                return cached[1]
            table = pq.read_table(handle, columns=["doc_id", "model"])
    except (OSError, pa.ArrowException, KeyError):
        return None
    models = index_models(table)
    summary = IndexSummary(
        chunks=table.num_rows,
        documents=pc.count_distinct(table["doc_id"]).as_py() if table.num_rows else 0,
        model=", ".join(models) or None,
        # The index is replaced by one rename per successful run, so its mtime is the last publication.
        updated_at=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
    )
    with _lock:
        if len(_summaries) >= MAX_CACHED_SUMMARIES:
            _summaries.clear()
        _summaries[path] = (signature, summary)
    return summary


def iter_documents(inbox_dir: Path) -> Iterator[str]:
    """Ids of the documents in `inbox_dir` as the documents asset sees them: regular files and links to files,
    recursively, skipping hidden and temporary names, FIFOs, devices and linked folders. A link that cannot be
    followed (broken, or in a loop) counts: the asset lists it as a failed document."""
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
            elif entry.is_file(follow_symlinks=False) or (entry.is_symlink() and not os.path.isdir(entry.path)):
                yield Path(entry.path).relative_to(inbox_dir).as_posix()


def count_documents(inbox_dir: Path) -> int:
    """Documents in an inbox folder as the scanners see them (0 when there is no such folder)."""
    return sum(1 for _ in iter_documents(inbox_dir))


def is_stored_document(name: str) -> bool:
    """True when `name`, a key below a collection's inbox folder on the store, is a document as a run's pull
    and the scanners will see it (source records under `.orca/` and temporary names are not)."""
    return local_name(name) is not None and not is_ignored_name(name)


def _remote(storage: Storage | None) -> bool:
    return storage is not None and storage.remote


def collection_names(layout: Layout, storage: Storage | None = None) -> list[str]:
    """Every collection, sorted: those with objects on an object store, else those with a local folder."""
    return storage.collection_names() if _remote(storage) else layout.collections()


def has_collection(layout: Layout, name: str, storage: Storage | None = None, *, inbox_only: bool = False) -> bool:
    """True when `name` has documents (or, unless `inbox_only`, a warehouse): objects on an object store,
    else a local folder."""
    if not _remote(storage):
        return layout.inbox(name).is_dir() if inbox_only else layout.has_collection(name)
    folders = [storage.inbox_folder(name)] + ([] if inbox_only else [storage.warehouse_folder(name)])
    return any(storage.objects.has_any(folder) for folder in folders)


def describe_collection(layout: Layout, name: str, storage: Storage | None = None) -> CollectionInfo:
    """One collection's inbox documents and index summary."""
    if not _remote(storage):
        return CollectionInfo(name, count_documents(layout.inbox(name)), index_summary(layout.index_path(name)))
    documents = sum(1 for item in storage.objects.list(storage.inbox_folder(name)) if is_stored_document(item.name))
    readers = storage.reader_layout(layout)
    storage.refresh_index(readers, name)  # the store's current version, as a search would read it
    return CollectionInfo(name, documents, index_summary(readers.index_path(name)))


def list_collections(layout: Layout, storage: Storage | None = None) -> list[CollectionInfo]:
    """Every collection (see `collection_names`), sorted by name."""
    return [describe_collection(layout, name, storage) for name in collection_names(layout, storage)]
