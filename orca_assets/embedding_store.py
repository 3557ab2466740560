"""The vector cache behind the `embeddings` asset: one row per (embedding identity, text), persisted as it comes.

A key is a hash of the embedder's identity (model name, digest, dimensions, prefix) and the chunk text, so a
chunk is embedded again only when one of those changes. Each finished batch is written as a part file at once,
unless the last part was written less than `PART_SECONDS` (20 ms) ago: then it waits for the next one, with
those that follow within that time (at most `PART_ROWS` vectors). Whatever stops the step where it can see it
(a failed server, a cancelled run) writes what waits. So a crashed run resumes without paying again for what
had finished, except, for a process killed outright, the batches of its last 20 ms: one batch, unless the
servers answer faster than that. A part per batch cost about 0.8 ms of CPU each (open, write, rename), a fifth
of the step's CPU per input at a fleet's rate; this way a run writes at most 50 parts a second. `compact`
folds the parts into one Parquet file. A part is an uncompressed Arrow IPC file: it lives only until the run's
compaction (parts written as Parquet by an earlier version are still read).

Parts are renamed into place but not fsynced: a killed run loses none that was written (the page cache
outlives the process), and only a power loss can lose or tear the latest ones, which readers skip, so their
texts are embedded again. Two fsyncs per part would protect what is, after all, a cache of vectors; the
compacted store, the truth the index is built from, is made durable when it is written.

Steps of two runs never overlap on one collection (each holds the collection lock, see writer_lock.py),
and the parts do not rely on it either: their names are unique per writer and part, never numbered from
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
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from orca_assets.stored_vectors import as_vector_bytes, vector_type, vectors_to_arrow
from orca_core.embedder import ModelInfo
from orca_core.layout import PARTS_DIR, STORE_FILE
from orca_resources.warehouse import ROW_GROUP_ROWS, open_parquet, read_footer, stream_parquet_atomic

PART_SUFFIXES = (".arrow", ".parquet")
# Made once: without options, every new IPC writer reads an environment variable to pick its format.
IPC_OPTIONS = pa.ipc.IpcWriteOptions()  # Arrow IPC parts; Parquet ones from before are still folded in
PART_SECONDS = 0.02  # the least time between two parts: the most embedding work a process killed outright loses
PART_ROWS = 4096  # and the most vectors waiting in memory (12 MiB at 768 dimensions)


def embedding_key(identity: str, text: str) -> str:
    return hashlib.sha256(f"{identity}\0{text}".encode()).hexdigest()[:32]


def store_schema(dimensions: int) -> pa.Schema:
    return pa.schema([("key", pa.string()), ("embedding", vector_type(dimensions))])


class EmbeddingStore:
    """Vectors of one collection for one embedding identity."""

    def __init__(
        self, folder: Path, info: ModelInfo, saved: Callable[[Path], None] = lambda path: None,
        part_seconds: float | None = None,
    ):
        self.folder = folder
        self.saved = saved  # told of each part once it is in place (an object store uploads it: storage.py)
        self.identity = info.identity
        self.dimensions = info.dimensions
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
        self._parts_dir = str(self.parts)
        self._writer = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._next_part = 0
        self.part_seconds = PART_SECONDS if part_seconds is None else part_seconds
        self._pending: list[tuple[list[str], np.ndarray]] = []  # finished batches not yet in a part
        self._pending_rows = 0
        self._flushed_at = float("-inf")  # when the last part was written: the first batch is written at once

    def clear(self) -> None:
        """Forget every stored vector (a forced re-embed)."""
        self._pending, self._pending_rows = [], 0
        (self.folder / STORE_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.folder / PARTS_DIR, ignore_errors=True)

    def _part_files(self) -> list[Path]:
        # Names start with a nanosecond stamp, so sorting them is oldest first.
        if not self.parts.is_dir():
            return []
        return sorted(path for path in self.parts.glob("part-*") if path.suffix in PART_SUFFIXES)

    def _compacted(self) -> contextlib.AbstractContextManager:
        return open_parquet(self.folder / STORE_FILE)

    def _is_mine(self, compacted) -> bool:
        return compacted is not None and (compacted.schema_arrow.metadata or {}).get(b"identity") == self.identity.encode()

    def _sources(self, parts: list[Path] | None = None, compacted: bool = True) -> Iterator[Iterator[pa.RecordBatch]]:
        """Record batches (key, embedding) of the compacted file when it is of this identity (and `compacted`),
        then of each part; each source is open while it is iterated."""
        if compacted:
            with self._compacted() as store:
                if self._is_mine(store):
                    yield store.iter_batches(batch_size=ROW_GROUP_ROWS, columns=["key", "embedding"])
        for part in self._part_files() if parts is None else parts:
            try:
                if part.suffix == ".arrow":
                    # Read, not mapped: mapped pages of every part would count in the step's resident memory.
                    with pa.OSFile(str(part)) as source:
                        try:
                            reader = pa.ipc.open_file(source)
                        except pa.ArrowInvalid:
                            continue  # torn by a power loss (parts are not fsynced): its texts are embedded again
                        yield (reader.get_batch(i) for i in range(reader.num_record_batches))
                else:
                    with open_parquet(part) as parquet:
                        if parquet is not None:
                            yield parquet.iter_batches(batch_size=ROW_GROUP_ROWS, columns=["key", "embedding"])
            except FileNotFoundError:
                continue  # folded in and removed by a compaction since it was listed

    def known_keys(self) -> set[str]:
        """Keys with a stored vector (the compacted file's key column only, never its vectors)."""
        keys: set[str] = set()
        with self._compacted() as store:
            if self._is_mine(store):
                keys.update(store.read(columns=["key"])["key"].to_pylist())
        for batches in self._sources(compacted=False):
            for batch in batches:
                keys.update(batch.column(0).to_pylist())
        for batch_keys, _ in self._pending:
            keys.update(batch_keys)
        return keys

    def version(self) -> str | None:
        """The compacted file's write stamp: it changes whenever the file is rewritten (None if absent or stale)."""
        footer = read_footer(self.folder / STORE_FILE)
        if footer is None or footer.metadata.get("identity") != self.identity:
            return None
        return footer.metadata.get("orca.version")

    def is_compact_for(self, wanted: set[str], known: set[str] | None = None) -> bool:
        """True when the compacted file holds exactly the `wanted` keys and no part waits to be folded in.

        `known`: what `known_keys()` returned since the last write, to spare reading the keys again (with no
        part, they are the compacted file's keys, which compaction never duplicates).
        """
        if self._pending or self._part_files() or self.version() is None:
            return False
        return (self.known_keys() if known is None else known) == wanted

    def append_batch(self, keys: list[str], vectors: np.ndarray) -> None:
        """Keep one finished batch: written at once, or with those that follow when the last part is too recent."""
        if not keys:
            return
        self._pending.append((keys, vectors))
        self._pending_rows += len(keys)
        if self._pending_rows >= PART_ROWS or time.monotonic() - self._flushed_at >= self.part_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the batches kept so far as one part, atomically (a reader never sees a part being written).

        Runs on the step's thread, so it is kept to the system calls it needs (open, write, rename): plain
        strings rather than paths, the folder made only when an open finds it missing.
        """
        if not self._pending:
            return
        pending, self._pending, self._pending_rows = self._pending, [], 0
        self._flushed_at = time.monotonic()
        keys = [key for batch_keys, _ in pending for key in batch_keys]
        vectors = pending[0][1] if len(pending) == 1 else np.concatenate([v for _, v in pending])
        batch = pa.RecordBatch.from_arrays([pa.array(keys, pa.string()), vectors_to_arrow(vectors)], schema=self.schema)
        self._next_part += 1
        name = f"part-{time.time_ns():020d}-{self._writer}-{self._next_part:06d}.arrow"
        folder = self._parts_dir
        target, tmp = f"{folder}/{name}", f"{folder}/.{name}.tmp"
        try:
            sink = pa.OSFile(tmp, "wb")
        except FileNotFoundError:  # the first part, or another writer's compaction removed the folder since
            os.makedirs(folder, exist_ok=True)
            sink = pa.OSFile(tmp, "wb")
        try:
            with sink, pa.ipc.new_file(sink, self.schema, options=IPC_OPTIONS) as writer:
                writer.write_batch(batch)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self.saved(Path(target))

    def compact(self, wanted: set[str]) -> pa.Table:
        """Keep the vectors of `wanted` keys only, in one file; drop the parts folded in and stale identities.

        Streams: sources are read batch by batch and written as they come, so memory holds one batch of
        vectors plus the set of keys seen (a batch persisted twice by a resumed run leaves duplicates: the
        first is kept). Returns the stored keys (a one-column table).
        """
        self.flush()
        parts = self._part_files()
        seen: set[str] = set()
        written: list[pa.Array] = []
        schema = self.schema.with_metadata({**self.schema.metadata, b"orca.version": uuid.uuid4().hex.encode()})
        with stream_parquet_atomic(self.folder / STORE_FILE, schema) as out:
            for batches in self._sources(parts):
                for batch in batches:
                    # Python set lookups: pc.is_in would hash the whole wanted set again for every part.
                    keep = []
                    batch_keys = batch.column(0).to_pylist()
                    for key in batch_keys:
                        keep.append(key in wanted and key not in seen)
                        seen.add(key)
                    if not all(keep):
                        batch = batch.filter(pa.array(keep, pa.bool_()))
                    if batch.num_rows:
                        batch = pa.RecordBatch.from_arrays(
                            [batch.column(0), as_vector_bytes(batch.column(1), self.dimensions)], schema=schema
                        )
                        out.write(batch)
                        # A copy: a part's columns share one buffer, so keeping its key column would keep its
                        # vectors too, and every part's vectors would stay in memory until the end.
                        written.append(pa.array([key for key, kept in zip(batch_keys, keep) if kept], pa.string()))
        for part in parts:
            part.unlink(missing_ok=True)
        self.drop_stale_identities()
        return pa.table({"key": pa.chunked_array(written, pa.string())})

    def drop_stale_identities(self) -> None:
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
