"""Searching a collection's search copy; shared by `orca search` and `/v1/search` (through search_backend).

Each process keeps the open copy of a few collections. A query stats the manifest; when it has changed, the
copy is opened again, keeping every segment it already had mapped (a 1% change maps one small segment) and
dropping the ones the new version no longer names.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orca_core.ann.manifest import MANIFEST_FILE, Manifest, read_manifest
from orca_core.ann.segment import Segment
from orca_core.embedder import Embedder
from orca_core.search import ModelMismatch, SearchResult, SearchRow, check_model, normalize_rows, search_row
from orca_core.search_filter import SearchFilter

CACHED_COPIES = 16  # mapped, not loaded: a copy costs address space and the pages its queries touched


@dataclass(frozen=True)
class SearchCopy:
    folder: Path
    manifest: Manifest
    signature: tuple[int, int]  # the manifest file's inode and mtime
    segments: list[Segment]

    @property
    def models(self) -> tuple[str, ...]:
        return (self.manifest.model,) if self.manifest.model else ()

    def search(self, query_vector: np.ndarray, k: int, where: SearchFilter | None = None) -> list[SearchRow]:
        """The k chunks most similar (cosine) to the query among the live rows `where` keeps, best first."""
        if k <= 0 or self.manifest.rows == 0:
            return []
        query = normalize_rows(np.asarray(query_vector, dtype=np.float32).reshape(1, -1))[0]
        if query.shape[0] != self.manifest.dimensions:
            raise ModelMismatch(
                f"the query has {query.shape[0]} dimensions but the index has {self.manifest.dimensions}: "
                "rebuild the index with the configured embedder"
            )
        hits: list[tuple[float, int, int]] = []  # (score, segment position, row)
        for position, segment in enumerate(self.segments):
            rows, scores = segment.search(query, k, where)
            hits.extend(zip(scores.tolist(), [position] * len(rows), rows.tolist(), strict=True))
        hits.sort(key=lambda hit: (-hit[0], hit[1], hit[2]))
        hits = hits[:k]
        columns: dict[tuple[int, int], dict] = {}
        for position in {hit[1] for hit in hits}:  # one take per segment: a hit's texts are read only now
            rows = sorted(row for _, p, row in hits if p == position)
            columns.update(
                zip([(position, row) for row in rows], self.segments[position].take(np.array(rows)), strict=True)
            )
        return [search_row(columns[position, row], score) for score, position, row in hits]


_copies: OrderedDict[Path, SearchCopy] = OrderedDict()
_lock = threading.Lock()


def _signature(folder: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(folder / MANIFEST_FILE)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def open_search_copy(folder: Path) -> SearchCopy | None:
    """The current search copy in `folder`, reusing what this process has mapped; None when there is none."""
    folder = Path(folder)
    with _lock:
        signature = _signature(folder)
        cached = _copies.get(folder)
        if signature is None:
            _copies.pop(folder, None)
            return None
        if cached is not None and cached.signature == signature:
            _copies.move_to_end(folder)
            return cached
        for _ in range(3):  # a writer may replace the manifest (and collect old files) between two reads
            manifest = read_manifest(folder)
            if manifest is None:
                return None
            try:
                copy = _open(folder, manifest, signature, cached)
                break
            except FileNotFoundError:
                signature = _signature(folder)
        else:
            return None
        _copies[folder] = copy
        _copies.move_to_end(folder)
        while len(_copies) > CACHED_COPIES:
            _copies.popitem(last=False)
        return copy


def _open(folder: Path, manifest: Manifest, signature, cached: SearchCopy | None) -> SearchCopy:
    mapped = {segment.entry: segment for segment in cached.segments} if cached else {}
    deleted = np.load(folder / manifest.deleted) if manifest.deleted else np.zeros(0, np.uint64)
    segments = [(mapped.get(entry) or Segment.open(folder, entry)).with_deleted(deleted) for entry in manifest.segments]
    return SearchCopy(folder, manifest, signature, segments)


def search_copy(copy: SearchCopy, embedder: Embedder, query: str, k: int, *, collection: str,
                where: SearchFilter | None = None) -> SearchResult:  # fmt: skip
    """Embed `query` and rank the copy's rows; ModelMismatch when another model built it."""
    configured = embedder.model_info().name
    check_model(copy, configured, collection)
    if copy.manifest.rows == 0:
        return SearchResult(configured, [])
    return SearchResult(configured, copy.search(embedder.embed_query(query), k, where))
