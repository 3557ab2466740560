"""The vector cache behind the `embeddings` asset: one row per (embedding identity, text), persisted per batch.

A key is a hash of the embedder's identity (model name, digest, dimensions, prefix) and the chunk text, so a
chunk is embedded again only when one of those changes. Each finished batch is written as its own part file
at once, so a crashed run resumes without paying again for it; `compact` folds the parts into one file.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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
        self._next_part = 0

    def clear(self) -> None:
        """Forget every stored vector (a forced re-embed)."""
        (self.folder / STORE_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.folder / PARTS_DIR, ignore_errors=True)

    def _tables(self) -> Iterable[pa.Table]:
        compacted = read_parquet(self.folder / STORE_FILE)
        if compacted is not None and (compacted.schema.metadata or {}).get(b"identity") == self.identity.encode():
            yield compacted
        if self.parts.is_dir():
            for part in sorted(self.parts.glob("part-*.parquet")):
                yield pq.read_table(part)

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
        if self._next_part == 0:
            existing = sorted(self.parts.glob("part-*.parquet"))
            self._next_part = int(existing[-1].stem.split("-")[1]) + 1 if existing else 1
        table = pa.Table.from_arrays([pa.array(keys, pa.string()), vectors_to_arrow(vectors)], schema=self.schema)
        write_parquet_atomic(table, self.parts / f"part-{self._next_part:06d}.parquet")
        self._next_part += 1

    def compact(self, wanted: set[str]) -> pa.Table:
        """Keep the vectors of `wanted` keys only, in one file; drop the parts and stale identities."""
        tables = [table.filter(pc.is_in(table["key"], pa.array(sorted(wanted), pa.string()))) for table in self._tables()]
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
        shutil.rmtree(self.folder / PARTS_DIR, ignore_errors=True)
        return merged
