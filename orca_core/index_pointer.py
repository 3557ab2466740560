"""Publishing a collection's index on an S3-compatible object store without ever showing a reader a torn one.

A local index is one file replaced by rename, and a reader that opened it keeps reading that file. An object
store has no rename, and pyarrow reads a Parquet object in several ranged GETs without `If-Match`: an object
replaced in place during a read fails the read or, worse, mixes two versions. So on S3 each publish writes a
new, immutable version under `<collection>/embedding_index/<version>/` (the Parquet index, and the search
copy's manifest when there is one) and then switches a small pointer object,
`<collection>/embedding_index.current` (JSON naming the version's Parquet key), with a conditional PUT:

- `If-None-Match: *` for a collection's first publish, `If-Match: <the pointer's ETag as read>` after that.
  Two publishers that started from the same pointer cannot both win: the loser's PUT fails with 412, it
  removes its own version object and raises `StalePublish`. This also fences off a stale holder of the
  collection lock (a run that lost its lock and kept going): its publish cannot overwrite a newer one.
- Readers resolve the pointer once per read (`current`) and read the version it names. Versions stay for
  `grace_seconds` after they stopped being current (`collect_old_versions`), so a read that resolved the
  pointer just before a publish still finds its object.

Every S3 call goes through one boto3 client, which reads the endpoint and credentials from the standard AWS
settings (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_REGION`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orca_core.layout import INDEX_FILE
from orca_core.s3_objects import Objects, error_code, is_missing, s3_client

__all__ = ["IndexPointer", "Pointer", "StalePublish", "s3_client"]

POINTER_SUFFIX = "embedding_index.current"
VERSIONS_FOLDER = "embedding_index"
DEFAULT_GRACE_SECONDS = 3600.0


class StalePublish(Exception):
    """Another publisher switched the pointer since this one read it; this version was not published."""


@dataclass(frozen=True)
class Pointer:
    """What a collection's pointer object says, and its ETag (the condition of the next switch)."""

    key: str  # the current version's Parquet key
    etag: str
    published_at: float

    @property
    def folder(self) -> str:
        """The version's folder (`.../embedding_index/<version>/`): every object of the version is under it."""
        return self.key.rsplit("/", 1)[0] + "/"


class IndexPointer:
    """The pointer and versions of one collection's index under `s3://bucket/prefix/`."""

    def __init__(self, client: Any, bucket: str, prefix: str, collection: str):
        self.client, self.bucket = client, bucket
        base = f"{prefix.strip('/')}/{collection}" if prefix.strip("/") else collection
        self.pointer_key = f"{base}/{POINTER_SUFFIX}"
        self.versions_prefix = f"{base}/{VERSIONS_FOLDER}/"

    def current(self) -> Pointer | None:
        """The pointer as it is now, or None before the first publish."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.pointer_key)
        except Exception as error:
            if is_missing(error):
                return None
            raise
        body = json.loads(answer["Body"].read())
        return Pointer(key=body["key"], etag=answer["ETag"], published_at=float(body["published_at"]))

    def publish(self, data: bytes, expected: Pointer | None) -> Pointer:
        """Publish `data` as the new version's Parquet index (see `publish_version`)."""
        return self.publish_version(
            lambda folder: self.client.put_object(Bucket=self.bucket, Key=folder + INDEX_FILE, Body=data), expected
        )

    def publish_version(self, upload: Callable[[str], Any], expected: Pointer | None) -> Pointer:
        """Let `upload(folder)` write a new version's objects under `folder` (its Parquet index as
        `folder + INDEX_FILE`) and make it current, provided the pointer is still `expected` (None: no pointer
        yet). Raises `StalePublish` (after removing the new version) when another publish won."""
        stamp = time.time()
        folder = f"{self.versions_prefix}{time.strftime('%Y%m%dT%H%M%S', time.gmtime(stamp))}-{uuid.uuid4().hex}/"
        upload(folder)
        key = folder + INDEX_FILE
        body = json.dumps({"key": key, "published_at": stamp}).encode()
        condition = {"IfMatch": expected.etag} if expected is not None else {"IfNoneMatch": "*"}
        try:
            answer = self.client.put_object(Bucket=self.bucket, Key=self.pointer_key, Body=body, **condition)
        except Exception as error:
            if error_code(error) not in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                raise
            self._delete(self._listed(folder))
            raise StalePublish(f"the index of s3://{self.bucket}/{self.pointer_key} changed since it was read; "
                               "this run's version was not published") from error
        return Pointer(key=key, etag=answer["ETag"], published_at=stamp)

    def _listed(self, prefix: str) -> list[dict]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item for page in pages for item in page.get("Contents", [])]

    def _delete(self, items: list[dict]) -> None:
        Objects(self.client, self.bucket).delete([item["Key"] for item in items])

    def collect_old_versions(self, grace_seconds: float = DEFAULT_GRACE_SECONDS, now: float | None = None) -> list[str]:
        """Delete the objects of versions that are not current and were last modified more than `grace_seconds`
        ago (so a reader that resolved an older pointer can still finish); the keys deleted."""
        pointer = self.current()
        cutoff = (time.time() if now is None else now) - grace_seconds
        doomed = [
            item for item in self._listed(self.versions_prefix)
            if (pointer is None or not item["Key"].startswith(pointer.folder)) and item["LastModified"].timestamp() < cutoff
        ]
        self._delete(doomed)
        return [item["Key"] for item in doomed]

    def version_folders(self) -> list[str]:
        """The folders of every version still stored (current or within its grace period)."""
        return sorted({item["Key"].rsplit("/", 1)[0] + "/" for item in self._listed(self.versions_prefix)})
