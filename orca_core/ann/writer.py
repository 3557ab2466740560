"""Bringing a collection's search copy up to date with its served Parquet index, writing only what changed.

A row is the same when its chunk id (document, position, text), model, source, page, section, title and
metadata are: such rows stay where they are. Rows of the index that are new or differ go into one new
segment (with its own graph when it is large enough); rows of the copy the index no longer has are added to
the deleted keys. Only the row groups of the index that hold a new row are read. The first copy, a model or
dimension change, and changes past COMPACT_SHARE of the rows write the whole copy again as one segment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orca_core.ann.graph import build_graph
from orca_core.ann.manifest import (
    ANN_MIN_ROWS,
    COMPACT_SHARE,
    MAX_SEGMENTS,
    ROW_BITS,
    ROW_MASK,
    Manifest,
    SegmentEntry,
    collect_garbage,
    read_manifest,
    segment_number,
    write_manifest,
)
from orca_core.search import normalize_rows

ROW_COLUMNS = ["chunk_id", "doc_id", "chunk_index", "text", "source", "page", "section", "title", "metadata", "model"]
ROW_TYPES = {"chunk_index": pa.int32(), "page": pa.int32()}
SAME_ROW = ["chunk_id", "model", "source", "page", "section", "title", "metadata"]  # what makes a row the same
Log = Callable[[str], None]


@dataclass(frozen=True)
class CopyUpdate:
    """What an update did: rows written to a new segment, rows deleted, whether it wrote the whole copy."""

    rows: int
    added: int
    deleted: int
    rewritten: bool
    unchanged: bool
    segments: int
    seconds: float
    graph_cpu_seconds: float = 0.0  # CPU of building the new segment's graph, most of a first copy's cost


def index_source(meta: dict[bytes, bytes], rows: int) -> str:
    """Which version of the Parquet index a copy mirrors: its creation stamp, row count and inputs."""
    get = lambda key: meta.get(key, b"").decode()
    return f"{get(b'orca.created_at')};{rows};{get(b'orca.inputs')}"


def update_search_copy(index_path: Path, folder: Path, log: Log = lambda _: None) -> CopyUpdate:
    """Make the copy in `folder` mirror the index at `index_path` (one writer at a time: the collection lock)."""
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(index_path)) as handle:  # one open file: a rename meanwhile cannot mix two versions
        parquet = pq.ParquetFile(handle, pre_buffer=False)  # row group by row group; see open_parquet
        meta = parquet.schema_arrow.metadata or {}
        rows = parquet.metadata.num_rows
        model, dimensions = meta.get(b"orca.model", b"").decode(), int(meta.get(b"orca.dimensions", b"0") or 0)
        source = index_source(meta, rows)
        old = read_manifest(folder)
        if old is not None and old.source == source:
            return CopyUpdate(old.rows, 0, 0, False, True, len(old.segments), time.perf_counter() - started)
        keys = row_keys(parquet.read(columns=[c for c in SAME_ROW if c in parquet.schema_arrow.names]))
        rewrite = old is None or old.model != model or old.dimensions != dimensions
        deleted, added = np.zeros(0, np.uint64), np.ones(rows, dtype=bool)
        if not rewrite:
            deleted, added = _diff(folder, old, keys)
            pending = old.deleted_rows + len(deleted) + sum(s.rows for s in old.segments[1:]) + int(added.sum())
            rewrite = pending > COMPACT_SHARE * max(rows, 1) or len(old.segments) >= MAX_SEGMENTS
            if rewrite:
                deleted, added = np.zeros(0, np.uint64), np.ones(rows, dtype=bool)
        number = old.next_number() if old else _free_number(folder)
        segments = [] if rewrite or old is None else list(old.segments)
        graph_cpu = 0.0
        if added.any():
            entry, graph_cpu = _write_segment(folder, number, parquet, added, dimensions, log)
            segments.append(entry)
        all_deleted = (
            deleted if rewrite or old is None or not old.deleted else np.union1d(np.load(folder / old.deleted), deleted)
        )
        version = (old.version if old else 0) + 1
        deleted_file = None
        if len(all_deleted):
            deleted_file = f"deleted-{version:06d}.npy"
            _save_durably(folder / deleted_file, np.sort(all_deleted).astype(np.uint64))
        manifest = Manifest(version, model, dimensions, source, segments, deleted_file, len(all_deleted))
    write_manifest(folder, manifest)
    collect_garbage(folder, manifest.files() | (old.files() if old else set()))
    seconds = time.perf_counter() - started
    log(f"search copy: {int(added.sum())} rows written, {len(deleted)} deleted, {len(segments)} segment(s)"
        f"{' (rewritten)' if rewrite else ''} in {seconds:.1f} s")  # fmt: skip
    return CopyUpdate(manifest.rows, int(added.sum()), len(deleted), rewrite, False, len(segments), seconds, graph_cpu)


def row_keys(table: pa.Table) -> pa.Array:
    """One string per row naming everything that makes it the same row (SAME_ROW)."""
    columns = [table[name].cast(pa.string()) for name in SAME_ROW if name in table.column_names]
    if table.num_rows == 0:
        return pa.array([], pa.string())
    joined = pc.binary_join_element_wise(*columns, "\x1f", null_handling="replace", null_replacement="\x00")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def _diff(folder: Path, old: Manifest, keys: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(keys of the copy's live rows the index no longer has, mask of the index rows the copy lacks)."""
    deleted_before = np.load(folder / old.deleted) if old.deleted else np.zeros(0, np.uint64)
    gone, live_keys = [], []
    for entry in old.segments:
        with pa.memory_map(str(folder / entry.rows_file)) as source:
            table = pa.ipc.open_file(source).read_all()
            mine = row_keys(table)
            live = np.ones(entry.rows, dtype=bool)
            dead = deleted_before[(deleted_before >> ROW_BITS) == entry.number] & ROW_MASK
            live[dead.astype(np.int64)] = False
            stays = pc.is_in(mine, value_set=keys).to_numpy(zero_copy_only=False)
            gone_rows = np.flatnonzero(live & ~stays).astype(np.uint64)
            gone.append((np.uint64(entry.number) << np.uint64(ROW_BITS)) | gone_rows)
            live_keys.append(mine.filter(pa.array(live)))
    current = pa.concat_arrays(live_keys) if live_keys else pa.array([], pa.string())
    added = ~pc.is_in(keys, value_set=current).to_numpy(zero_copy_only=False)
    return (np.concatenate(gone) if gone else np.zeros(0, np.uint64)), added


def _write_segment(folder: Path, number: int, parquet: pq.ParquetFile, picked: np.ndarray, dimensions: int,
                   log: Log) -> tuple[SegmentEntry, float]:  # fmt: skip
    """The index rows `picked` as segment `number`: rows file, unit-length vectors, and a graph if large enough;
    returns the segment and the graph's CPU seconds."""
    entry = SegmentEntry(number, int(picked.sum()), ann=int(picked.sum()) >= ANN_MIN_ROWS)
    names = set(parquet.schema_arrow.names)
    schema = pa.schema([(c, ROW_TYPES.get(c, pa.string())) for c in ROW_COLUMNS])
    vectors_path, rows_path = folder / entry.vectors_file, folder / entry.rows_file
    # Written, not mapped: pages dirtied through a mapping count in this process's resident memory (the
    # vectors of 200,000 chunks are 585 MiB), pages written with write() only in the page cache.
    vectors = open(vectors_path, "wb")  # noqa: SIM115 - closed below, after the last batch
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": (entry.rows, dimensions)}  # fmt: skip
    np.lib.format.write_array_header_1_0(vectors, header)
    written, offset, total = 0, 0, np.zeros(dimensions, np.float64)
    with vectors, pa.OSFile(str(rows_path), "wb") as sink, pa.ipc.new_file(sink, schema) as out:
        for group in range(parquet.metadata.num_row_groups):
            size = parquet.metadata.row_group(group).num_rows
            mask = picked[offset : offset + size]
            offset += size
            if not mask.any():
                continue
            batch = parquet.read_row_group(group)
            if not mask.all():
                batch = batch.filter(pa.array(mask))
            columns = [
                batch[c].cast(ROW_TYPES.get(c, pa.string()))
                if c in names
                else pa.nulls(batch.num_rows, ROW_TYPES.get(c, pa.string()))
                for c in ROW_COLUMNS
            ]
            out.write_table(pa.Table.from_arrays(columns, schema=schema))
            unit = _unit(batch["embedding"], dimensions)
            vectors.write(memoryview(unit).cast("B"))  # its buffer, not a copy of it
            total += unit.sum(axis=0)  # float32 within a row group, float64 across them
            written += batch.num_rows
    if written != entry.rows:
        raise RuntimeError(f"{vectors_path}: wrote {written} vectors of {entry.rows}")
    for path in (vectors_path, rows_path):
        _fsync(path)
    if not entry.ann:
        return entry, 0.0
    return entry, build_graph(folder, entry, (total / entry.rows).astype(np.float32), log)


def _free_number(folder: Path) -> int:
    """A segment number no file in `folder` uses: the files of a damaged manifest's copy may still be mapped by
    a reader, so they are replaced by new names, never rewritten in place."""
    numbers = [segment_number(path.name) for path in folder.iterdir()]
    return max((number for number in numbers if number is not None), default=0) + 1


def _unit(column: pa.ChunkedArray, dimensions: int) -> np.ndarray:
    # Normalised as the Parquet index's search does (normalize_rows): the same float32 bits, so rows of equal
    # score tie in both and come back in the same order.
    values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return normalize_rows(values.reshape(-1, dimensions))


def _save_durably(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())
