"""`S3Storage`: `inbox/` and `warehouse/` on an S3-compatible object store (ORCA_STORAGE_URL=s3://bucket/prefix).

Keys mirror the local layout below the prefix: `inbox/<collection>/<doc_id>` (one object per document, and
its source record under `.orca/sources/`), `warehouse/<collection>/<file>` for the assets' files (the
per-batch progress parts included), and the served index as versions behind a pointer:

    warehouse/<collection>/embedding_index.current                  the pointer (index_pointer.py)
    warehouse/<collection>/embedding_index/<version>/embedding_index.parquet
    warehouse/<collection>/embedding_index/<version>/manifest.json  the search copy's manifest, if any
    warehouse/<collection>/embedding_index.search/<segment files>   immutable; shared by the versions

A local copy records (orca_core/sync_record.py) the ETag and local (size, mtime_ns) of every file it last
matched with the store, so a pull downloads only what changed and a push uploads only what a step wrote.
A pull makes the copy exactly the store's (files the store lacks are removed), because a step that failed
before its push may have left files the store never accepted. A stale holder of the collection lock is
fenced off at its publish: the pointer switch is conditional on the pointer its pull saw.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

from orca_core.ann.manifest import MANIFEST_FILE, collect_garbage, manifest_from_json, read_manifest
from orca_core.index_pointer import DEFAULT_GRACE_SECONDS, POINTER_SUFFIX, VERSIONS_FOLDER, IndexPointer, Pointer
from orca_core.layout import (
    INBOX_DIR,
    INDEX_FILE,
    LOCK_FILE,
    SEARCH_DIR,
    STAGED_INDEX_FILE,
    WAREHOUSE_DIR,
    LocalLayout,
    check_collection,
    is_valid_collection,
)
from orca_core.s3_objects import Objects, StoredObject, local_name, s3_client, split_url
from orca_core.storage_base import Storage
from orca_core.sync_record import read_record, remove_record, write_record

# Warehouse names that are not mirrored file by file: the served index travels as versions, and the lock,
# the staged index and temporary files are this machine's own.
_NOT_MIRRORED = {LOCK_FILE, INDEX_FILE, STAGED_INDEX_FILE, VERSIONS_FOLDER, POINTER_SUFFIX}


def _mirrored(name: str) -> bool:
    top = name.split("/", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return top not in _NOT_MIRRORED and top != SEARCH_DIR and not (last.startswith(".") and last.endswith(".tmp"))


def _parents(name: str) -> list[str]:
    """`a/b/c.md` -> ["a", "a/b"]."""
    parts = name.split("/")[:-1]
    return ["/".join(parts[: number + 1]) for number in range(len(parts))]


def _identity(path: Path) -> list[int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return [info.st_size, info.st_mtime_ns]


class S3Storage(Storage):
    remote = True

    def __init__(self, url: str, client=None, grace_seconds: float = DEFAULT_GRACE_SECONDS):
        self.url = url
        bucket, prefix = split_url(url)
        self.objects = Objects(client or s3_client(), bucket, prefix)
        self.grace_seconds = grace_seconds

    # -- keys -----------------------------------------------------------------------------------------
    def inbox_folder(self, collection: str) -> str:
        return self.objects.key(INBOX_DIR, check_collection(collection))

    def warehouse_folder(self, collection: str) -> str:
        return self.objects.key(WAREHOUSE_DIR, check_collection(collection))

    def pointer(self, collection: str) -> IndexPointer:
        return IndexPointer(self.objects.client, self.objects.bucket, self.objects.key(WAREHOUSE_DIR), collection)

    def collection_names(self) -> list[str]:
        names = set(self.objects.folders(self.objects.key(INBOX_DIR)))
        names.update(self.objects.folders(self.objects.key(WAREHOUSE_DIR)))
        return sorted(name for name in names if is_valid_collection(name))

    # -- the sync record (orca_core/sync_record.py) ---------------------------------------------------
    def _record(self, layout: LocalLayout, collection: str) -> dict:
        return read_record(layout, collection)

    def _save_record(self, layout: LocalLayout, collection: str, record: dict, *, inbox: bool = False) -> None:
        write_record(layout, collection, record, inbox=inbox)

    # -- pull -----------------------------------------------------------------------------------------
    def pull(self, layout: LocalLayout, collection: str) -> None:
        record = self._record(layout, collection)
        record["inbox"] = self._mirror(self.inbox_folder(collection), layout.inbox(collection), record.get("inbox", {}))
        record["warehouse"] = self._mirror(self.warehouse_folder(collection), layout.warehouse(collection),
                                           record.get("warehouse", {}), only=_mirrored)  # fmt: skip
        pointer = self.pointer(collection).current()
        record["pointer"] = [pointer.key, pointer.etag, pointer.published_at] if pointer else None
        record["index"] = self._fetch_index(layout, collection, pointer, record.get("index"))
        self._save_record(layout, collection, record, inbox=True)

    def _mirror(self, folder: str, local: Path, known: dict, only=lambda name: True) -> dict:
        """Make `local` hold exactly the objects under `folder` (those `only` accepts); the new record."""
        stored: dict[str, StoredObject] = {}
        for item in self.objects.list(folder):
            name = local_name(item.name)
            if name is not None and only(name):
                stored[name] = item
        # A key that is also another key's "folder" (`a.md` and `a.md/b.md`) cannot be a file beside it: the
        # folder wins, as a local inbox can only hold that.
        folders = {parent for name in stored for parent in _parents(name)}
        stored = {name: item for name, item in stored.items() if name not in folders}
        mirrored: dict[str, list] = {}
        for name, item in stored.items():
            before = known.get(name)
            if before and before[0] == item.etag and _identity(local / name) == before[1:]:
                mirrored[name] = before
                continue
            target = local / name
            if target.is_dir():
                shutil.rmtree(target)
            for parent in _parents(name):  # a file this copy kept where a folder now is
                if (local / parent).is_file():
                    (local / parent).unlink()
            mirrored[name] = [item.etag, *self.objects.download(f"{folder}/{name}", target, item.modified)]
        if local.is_dir():
            self._remove_unlisted(local, set(mirrored), only)
        return mirrored

    @staticmethod
    def _remove_unlisted(local: Path, keep: set[str], only) -> None:
        for root, dirs, files in os.walk(local, topdown=False):
            for name in files:
                path = Path(root, name)
                relative = path.relative_to(local).as_posix()
                if relative not in keep and only(relative):
                    path.unlink(missing_ok=True)
            for name in dirs:
                with_path = Path(root, name)
                if only(with_path.relative_to(local).as_posix()):
                    try:
                        with_path.rmdir()  # only when empty
                    except OSError:
                        pass

    def _fetch_index(self, layout: LocalLayout, collection: str, pointer: Pointer | None, known) -> list | None:
        """Make the copy's served index and search copy the version `pointer` names; the record of it."""
        index = layout.index_path(collection)
        if pointer is None:
            index.unlink(missing_ok=True)
            shutil.rmtree(layout.search_dir(collection), ignore_errors=True)
            return None
        if known and known[0] == pointer.key and _identity(index) == known[1:]:
            return known
        manifest = self.objects.get_bytes(pointer.folder + MANIFEST_FILE)
        if manifest is not None:
            self._fetch_search_copy(layout.search_dir(collection), self.warehouse_folder(collection), manifest)
        else:
            shutil.rmtree(layout.search_dir(collection), ignore_errors=True)
        # The file's mtime is the publish time: what a collection's "index updated at" tells.
        return [pointer.key, *self.objects.download(pointer.key, index, pointer.published_at)]

    def _fetch_search_copy(self, folder: Path, warehouse_folder: str, manifest_bytes: bytes) -> None:
        """Download the segment files the manifest names that the copy lacks, then switch its manifest."""
        folder.mkdir(parents=True, exist_ok=True)
        old = read_manifest(folder)
        tmp = folder / f".{MANIFEST_FILE}.{uuid.uuid4().hex[:12]}.tmp"
        tmp.write_bytes(manifest_bytes)
        new = read_manifest_file(tmp)
        if new is None:  # a search copy of a format this code does not read: searches use the Parquet index
            tmp.unlink(missing_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
            return
        for name in sorted(new.files()):
            if not (folder / name).exists():
                self.objects.download(f"{warehouse_folder}/{SEARCH_DIR}/{name}", folder / name)
        os.replace(tmp, folder / MANIFEST_FILE)
        collect_garbage(folder, new.files() | (old.files() if old else set()))

    def refresh_index(self, layout: LocalLayout, collection: str) -> bool:
        record = self._record(layout, collection)
        pointer = self.pointer(collection).current()
        record["index"] = self._fetch_index(layout, collection, pointer, record.get("index"))
        self._save_record(layout, collection, record)
        return pointer is not None

    # -- push -----------------------------------------------------------------------------------------
    def saved(self, layout: LocalLayout, collection: str, path: Path) -> None:
        folder, local = self.warehouse_folder(collection), layout.warehouse(collection)
        name = path.relative_to(local).as_posix()
        record = self._record(layout, collection)
        etag = self.objects.upload(path, f"{folder}/{name}")
        record.setdefault("warehouse", {})[name] = [etag, *_identity(path)]
        self._save_record(layout, collection, record)

    def push(self, layout: LocalLayout, collection: str) -> None:
        record = self._record(layout, collection)
        folder, local = self.warehouse_folder(collection), layout.warehouse(collection)
        known: dict = record.get("warehouse", {})
        present: dict[str, list[int]] = {}
        for path in (p for p in local.rglob("*") if p.is_file()):
            name = path.relative_to(local).as_posix()
            if _mirrored(name):
                present[name] = _identity(path)
        for name, identity in present.items():
            if known.get(name, [None])[1:] != identity:
                known[name] = [self.objects.upload(local / name, f"{folder}/{name}"), *identity]
        gone = [name for name in known if name not in present]
        self.objects.delete([f"{folder}/{name}" for name in gone])
        record["warehouse"] = {name: value for name, value in known.items() if name not in gone}
        self._save_record(layout, collection, record)  # the files are stored: a failed publish need not resend them
        self._publish_index(layout, collection, record)
        self._save_record(layout, collection, record)

    def _publish_index(self, layout: LocalLayout, collection: str, record: dict) -> None:
        index, identity = layout.index_path(collection), _identity(layout.index_path(collection))
        known = record.get("index")
        if identity is None or (known and known[1:] == identity):
            return  # no index yet, or the one the pointer names
        pointer = self.pointer(collection)
        expected = Pointer(*record["pointer"]) if record.get("pointer") else None
        search = layout.search_dir(collection)
        manifest = read_manifest(search)
        segments = f"{self.warehouse_folder(collection)}/{SEARCH_DIR}"

        def upload(version: str) -> None:
            if manifest is not None:
                stored = {item.name for item in self.objects.list(segments)}
                for name in sorted(manifest.files() - stored):
                    self.objects.upload(search / name, f"{segments}/{name}")
                self.objects.upload(search / MANIFEST_FILE, version + MANIFEST_FILE)
            self.objects.upload(index, version + INDEX_FILE)

        published = pointer.publish_version(upload, expected)
        record["pointer"] = [published.key, published.etag, published.published_at]
        record["index"] = [published.key, *identity]
        self.collect(collection)

    def purge(self, layout: LocalLayout, collection: str, *, inbox: bool) -> tuple[int, int]:
        pointer = self.pointer(collection)
        pointer.client.delete_object(Bucket=self.objects.bucket, Key=pointer.pointer_key)  # readers see none at once
        folders = [self.warehouse_folder(collection)] + ([self.inbox_folder(collection)] if inbox else [])
        items = [(f"{folder}/{item.name}", item.size) for folder in folders for item in self.objects.list(folder)]
        self.objects.delete([key for key, _ in items])
        remove_record(layout, collection)
        return len(items), sum(size for _, size in items)

    def collect(self, collection: str, now: float | None = None) -> list[str]:
        """Delete versions past their grace period, and segment files no stored version names any more."""
        pointer = self.pointer(collection)
        deleted = pointer.collect_old_versions(self.grace_seconds, now)
        named: set[str] = set()
        for version in pointer.version_folders():
            manifest = self.objects.get_bytes(version + MANIFEST_FILE)
            if manifest is not None:
                named |= manifest_files(manifest)
        segments = f"{self.warehouse_folder(collection)}/{SEARCH_DIR}"
        cutoff = (time.time() if now is None else now) - self.grace_seconds
        doomed = [f"{segments}/{item.name}" for item in self.objects.list(segments)
                  if item.name not in named and item.modified < cutoff]  # fmt: skip
        self.objects.delete(doomed)
        return deleted + doomed


def read_manifest_file(path: Path):
    """The manifest in the file `path` (read_manifest reads a folder's)."""
    return manifest_from_json(json.loads(path.read_text()))


def manifest_files(data: bytes) -> set[str]:
    manifest = manifest_from_json(json.loads(data))
    return manifest.files() if manifest else set()
