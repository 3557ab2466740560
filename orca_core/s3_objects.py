"""The few object-store operations Orca needs, on one boto3 client: list, download into a file, upload a file.

boto3 (Apache-2.0, AWS's own SDK) reads the endpoint and credentials from the standard settings
(`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`) by
itself. Keys come from anyone who can write the bucket, so a key becomes a local path only when every one of
its components is a plain name (`local_name`): `..`, empty components and control characters never reach
the file system.
"""

from __future__ import annotations

import os
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

MAX_COMPONENT_BYTES = 255  # a Linux file name


@dataclass(frozen=True)
class StoredObject:
    """One listed object: its key below the listed prefix, ETag, size and last modification (epoch seconds)."""

    name: str
    etag: str
    size: int
    modified: float


def s3_client(**overrides: Any):
    """A boto3 S3 client configured from the standard AWS settings (endpoint and credentials included).

    Its responses' timestamps are parsed by `datetime.fromisoformat` where they are ISO 8601 (every listed
    object's LastModified): botocore's default, dateutil, spends about two thirds of a listing's time on them
    (100,000 objects: 8.6 s of listing with it, 3.2 s without; measured by bench/s3_inbox.py's author)."""
    import boto3
    import botocore.session

    session = botocore.session.Session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    return boto3.Session(botocore_session=session).client("s3", **overrides)


def _timestamp(text: str):
    from botocore.parsers import DEFAULT_TIMESTAMP_PARSER

    try:
        parsed = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return DEFAULT_TIMESTAMP_PARSER(text)  # HTTP-date headers, epoch numbers
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def split_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix"); ValueError for anything else."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{url!r} is not an object store URL: use s3://bucket or s3://bucket/prefix")
    return parsed.netloc, parsed.path.strip("/")


def error_code(error: Exception) -> str:
    """The S3 error code (or HTTP status) of a botocore error, else ''."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "")


def is_missing(error: Exception) -> bool:
    return error_code(error) in ("NoSuchKey", "404", "NotFound")


def local_name(name: str) -> str | None:
    """`name` (a key below a prefix) when it is safe as a relative local path, else None."""
    if not name or name.endswith("/") or "\\" in name:
        return None  # folder markers, and separators a local path would read differently
    for part in name.split("/"):
        if part in ("", ".", "..") or len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
            return None
        if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in part):
            return None
    return name


class Objects:
    """One bucket through one client; every key is below `prefix`."""

    def __init__(self, client: Any, bucket: str, prefix: str = ""):
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def key(self, *parts: str) -> str:
        return "/".join(part.strip("/") for part in (self.prefix, *parts) if part.strip("/"))

    def list(self, folder: str, delimiter: str | None = None) -> Iterator[StoredObject]:
        """The objects under `folder/` (a key from `key`), as names relative to it, page by page."""
        start = f"{folder}/"
        extra = {"Delimiter": delimiter} if delimiter else {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start, **extra):
            for item in page.get("Contents", []):
                yield StoredObject(item["Key"][len(start):], item["ETag"], item["Size"], item["LastModified"].timestamp())

    def folders(self, folder: str) -> list[str]:
        """The names of the "folders" directly under `folder/` (common prefixes of a delimited listing)."""
        start = f"{folder}/"
        names: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start, Delimiter="/"):
            names.extend(item["Prefix"][len(start):].rstrip("/") for item in page.get("CommonPrefixes", []))
        return names

    def has_any(self, folder: str) -> bool:
        """True when at least one object is stored under `folder/` (`""`: anywhere): one listing of one key."""
        answer = self.client.list_objects_v2(Bucket=self.bucket, Prefix=f"{folder}/" if folder else "", MaxKeys=1)
        return bool(answer.get("Contents"))

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as error:
            if is_missing(error):
                return None
            raise

    def download(self, key: str, target: Path, modified: float | None = None) -> tuple[int, int]:
        """Write the object into `target` (aside, then renamed), with its mtime set to `modified`; returns the
        file's (size, mtime_ns) as written."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name[:200]}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            self.client.download_file(self.bucket, key, str(tmp))
            if modified is not None:
                os.utime(tmp, (modified, modified))
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        info = target.stat()
        return info.st_size, info.st_mtime_ns

    def upload(self, path: Path, key: str, **conditions: str) -> str:
        """PUT the file at `path` as `key` in one request; returns the new ETag."""
        with open(path, "rb") as handle:
            return self.client.put_object(Bucket=self.bucket, Key=key, Body=handle, **conditions)["ETag"]

    def put_bytes(self, key: str, data: bytes, **conditions: str) -> str:
        return self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **conditions)["ETag"]

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start:start + 1000]]
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):  # a multi-delete answers 200 even when some keys were refused
                first = answer["Errors"][0]
                raise OSError(f"s3://{self.bucket}/{first.get('Key')}: could not delete ({first.get('Code')}: "
                              f"{first.get('Message')}), and {len(answer['Errors']) - 1} more")
