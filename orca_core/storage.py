"""Where `inbox/` and `warehouse/` live (ORCA_STORAGE_URL): the local folder, or an S3-compatible object store.

Orca's steps, scanners and searches work on files: Parquet read through one open handle, memory-mapped
search segments, folder locks. So every process works on a local copy laid out by `orca_core.layout`, and a
`Storage` keeps that copy and the store in step:

- `LocalStorage` (the default, `ORCA_HOME`): the copy is the store. Nothing moves; the served index is one
  file replaced by rename, as ever.
- `S3Storage` (`s3://bucket/prefix`, orca_core/s3_storage.py): a writing step first `pull`s its collection
  (the inbox's objects and the warehouse's files that changed since this copy last saw them) and, when it
  succeeds, `push`es what it wrote; the served index is published as an immutable version behind a pointer
  switched by a conditional write (orca_core/index_pointer.py). Readers `refresh_index` before they read.
  A run's container needs no disk shared with any other machine: its copy starts empty and is filled from
  the store, and a killed run's per-batch progress is already on the store (`saved`).

Every pull, push and refresh happens under the collection's lock (orca_core/collection_lock.py), except
the readers', which only ever add complete files and switch a manifest by rename.
"""

from __future__ import annotations

import functools
from pathlib import Path

from orca_core.layout import LocalLayout
from orca_core.storage_base import Storage, StorageError

__all__ = ["LocalStorage", "Storage", "StorageError", "check_storage_url", "open_storage"]


class LocalStorage(Storage):
    """The local folder is the store: every operation is already done."""

    def __init__(self, home: Path):
        self.url = str(home)

    def pull(self, layout: LocalLayout, collection: str) -> None:
        return None

    def push(self, layout: LocalLayout, collection: str) -> None:
        return None

    def saved(self, layout: LocalLayout, collection: str, path: Path) -> None:
        return None

    def refresh_index(self, layout: LocalLayout, collection: str) -> bool:
        return layout.index_path(collection).exists()

    def collection_names(self) -> list[str]:
        return LocalLayout(Path(self.url)).collections()


def check_storage_url(url: str | None) -> str | None:
    """ORCA_STORAGE_URL as given, once it is a local folder or `s3://bucket[/prefix]`; ValueError otherwise."""
    if url and url.startswith("s3://"):
        from orca_core.s3_objects import split_url

        split_url(url)
    elif url and "://" in url:
        raise ValueError("use a local folder or s3://bucket/prefix")
    return url


@functools.lru_cache(maxsize=16)
def open_storage(url: str | None, home: Path) -> Storage:
    """The storage `url` names (ORCA_STORAGE_URL): unset or a local path is `home`'s folder, `s3://` an object store.

    One per URL and process: a boto3 client costs tens of milliseconds to make, and is safe to share."""
    if url and url.startswith("s3://"):
        from orca_core.s3_storage import S3Storage  # boto3 is imported only where an object store is used

        return S3Storage(url)
    if url and Path(url).expanduser().resolve() != Path(home).expanduser().resolve():
        raise StorageError(
            f"ORCA_STORAGE_URL={url!r}: a local storage is ORCA_HOME itself; set ORCA_HOME to that folder instead"
        )
    return LocalStorage(Path(home))
