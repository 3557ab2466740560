"""The vector cache behind the `embeddings` asset: one row per (embedding identity, text), persisted per batch.

A key is a hash of the embedder's identity (model name, digest, dimensions, prefix) and the chunk text, so a
chunk is embedded again only when one of those changes. Each finished batch is written as its own part file
at once, so a crashed run resumes without paying again for it; `compact` folds the parts into one file.

Steps of two runs never overlap on one collection (each holds the collection lock, see collection_lock.py),
and the parts do not rely on it either: their names are unique per writer and batch, never numbered from
what is on disk, and `compact` deletes only the parts it has folded in, never one written after it looked,
so no writer can overwrite or delete another's finished batches.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orca_resources.embedder import ModelInfo

from orca_resources.warehouse import read_parquet, write_parquet_atomic

STORE_FILE = "embeddings.parquet"
PARTS_DIR = "embeddings.parts"


def embedding_key(identity: str, text: str) -> str:
    return hashlib.sha256(f"{identity}\0{text}".encode()).hexdigest()[:32]


def store_schema(dimensions: int) -> pa.Schema:
    return pa.schema([("key", pa.string()), ("embedding", pa.list_(pa.float32(), dimensions))])


def vectors_to_arrow(vectors: np.ndarray) -> pa.FixedSizeListArray:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])


class EmbeddingStore:
    """Vectors of one collection for one embedding identity."""

    def __init__(self, folder: Path, info: ModelInfo):
        self.folder = folder
        self.identity = info.identity
        self.schema = store_schema(info.dimensions).with_metadata(
            {
                "identity": info.identity,
                "model": info.name,
                "digest": info.digest,
                "dimensions": str(info.dimensions),
                "normalized": str(info.normalized).lower(),
            }
        )
        self.parts = folder / PARTS_DIR / self.identity
        self._writer = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._next_part = 0

    def clear(self) -> None:
        """Forget every stored vector (a forced re-embed)."""
        (self.folder / STORE_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.folder / PARTS_DIR, ignore_errors=True)

    def _part_files(self) -> list[Path]:
        # Names start with a nanosecond stamp, so sorting them is oldest first.
        return sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []

    def _tables(self, parts: list[Path] | None = None) -> Iterable[pa.Table]:
        compacted = read_parquet(self.folder / STORE_FILE)
        if compacted is not None and (compacted.schema.metadata or {}).get(b"identity") == self.identity.encode():
            yield compacted
        for part in self._part_files() if parts is None else parts:
            table = read_parquet(part)
            if table is not None:  # folded in and removed by a compaction since it was listed
                yield table

    def known_keys(self) -> set[str]:
        keys: set[str] = set()
        for table in self._tables():
            keys.update(table["key"].to_pylist())
        return keys

    def append_batch(self, keys: list[str], vectors: np.ndarray) -> None:
        """Persist one finished batch at once, atomically."""
        if not keys:
            return
        self.parts.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_arrays([pa.array(keys, pa.string()), vectors_to_arrow(vectors)], schema=self.schema)
        self._next_part += 1
        name = f"part-{time.time_ns():020d}-{self._writer}-{self._next_part:06d}.parquet"
        write_parquet_atomic(table, self.parts / name)

    def compact(self, wanted: set[str]) -> pa.Table:
        """Keep the vectors of `wanted` keys only, in one file; drop the parts folded in and stale identities."""
        parts = self._part_files()
        wanted_keys = pa.array(sorted(wanted), pa.string())
        tables = [table.filter(pc.is_in(table["key"], wanted_keys)) for table in self._tables(parts)]
        merged = pa.concat_tables(tables) if tables else self.schema.empty_table()
        merged = merged.cast(self.schema)
        # A batch that was persisted twice (a resumed run) leaves duplicate keys: keep the first.
        if merged.num_rows:
            keys = merged["key"].to_pylist()
            seen: dict[str, int] = {}
            for position, key in enumerate(keys):
                seen.setdefault(key, position)
            if len(seen) != len(keys):
                merged = merged.take(pa.array(sorted(seen.values())))
        write_parquet_atomic(merged, self.folder / STORE_FILE)
        for part in parts:
            part.unlink(missing_ok=True)
        self._drop_stale_identities()
        return merged

    def _drop_stale_identities(self) -> None:
        """Parts of other embedding identities can never be used again once the store moved on."""
        root = self.folder / PARTS_DIR
        if not root.is_dir():
            return
        for folder in root.iterdir():
            if folder.name != self.identity:
                shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # not empty: a part was written after compaction listed them
            self.parts.rmdir()
            root.rmdir()
