"""Local folders of a collection: its inbox and its Parquet warehouse, with atomic writes.

Every file a reader may open is written aside and renamed into place, so neither a reader nor a crash
ever sees half of it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from orca_resources.settings import check_collection

INDEX_FILE = "embedding_index.parquet"


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` in one rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet_atomic(table: pa.Table, target: Path) -> None:
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table | None:
    """Read a Parquet file, or None when it does not exist yet.

    Reads through one open file: pyarrow opens a path more than once, and a rename in between (an atomic
    replace) would mix the old file's footer with the new file's bytes.
    """
    try:
        with open(path, "rb") as handle:
            return pq.read_table(handle, columns=columns)
    except FileNotFoundError:
        return None


class WarehouseResource(dg.ConfigurableResource):
    """Where collections live on disk: `<home>/inbox/<collection>/` and `<home>/warehouse/<collection>/`."""

    home: str = ".orca"

    @property
    def root(self) -> Path:
        return Path(self.home).expanduser().resolve()

    def inbox_dir(self, collection: str) -> Path:
        return self.root / "inbox" / check_collection(collection)

    def collection_dir(self, collection: str) -> Path:
        path = self.root / "warehouse" / check_collection(collection)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def path(self, collection: str, name: str) -> Path:
        return self.collection_dir(collection) / name

    def index_path(self, collection: str) -> Path:
        return self.path(collection, INDEX_FILE)

    def read(self, collection: str, name: str, columns: list[str] | None = None) -> pa.Table | None:
        return read_parquet(self.path(collection, name), columns)

    def write(self, collection: str, name: str, table: pa.Table) -> Path:
        target = self.path(collection, name)
        write_parquet_atomic(table, target)
        return target

    def collections(self) -> list[str]:
        """Collections that have an inbox folder, sorted."""
        inbox = self.root / "inbox"
        if not inbox.is_dir():
            return []
        return sorted(p.name for p in inbox.iterdir() if p.is_dir() and not p.name.startswith("."))
