"""One segment of the search copy, memory-mapped: its rows, its vectors and (from ANN_MIN_ROWS) its HNSW graph.

Nothing is read up front: the row columns are an Arrow IPC file and the vectors a .npy matrix, both mapped,
and the graph is mapped by usearch (`view=True`). A query touches the graph's pages it walks, the vectors
of its candidates and the texts of its hits; the operating system's page cache holds the rest once for every
process, so resident memory stays near what queries touch, and a new version maps new files beside the old.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa

from orca_core.ann.graph import graph_codes, read_centre
from orca_core.ann.manifest import BITS, ROW_BITS, ROW_MASK, SegmentEntry
from orca_core.ann.vectors import VectorFile
from orca_core.search_filter import SearchFilter, column_mask

EF_SEARCH = 160  # HNSW candidate list per query: recall@10 >= 0.95 at a million rows (graph.py, bench/search.py)
EXACT_ROWS = 16384  # a filter keeping at most this many rows of a segment ranks them exactly
FILTER_MASKS = 8  # masks of recent filters kept per segment (a bit per row each)
MAX_CANDIDATES = 4096
_FILTER_LOCK = threading.Lock()  # past this, a filtered approximate search gives way to exact ranking of the kept rows


@dataclass
class Segment:
    entry: SegmentEntry
    rows_table: pa.Table
    vectors: VectorFile  # (rows, dimensions) float32, unit length
    graph: object | None  # usearch.index.Index, a view of the saved graph
    centre: np.ndarray | None  # the graph's centre (graph.py); None for a float graph, searched with the query
    live: np.ndarray | None = None  # False for deleted rows; None when none are
    _filter_cache: dict = field(default_factory=dict)

    @classmethod
    def open(cls, folder: Path, entry: SegmentEntry) -> Segment:
        source = pa.memory_map(str(folder / entry.rows_file), "r")
        rows_table = pa.ipc.open_file(source).read_all()
        vectors = VectorFile(folder / entry.vectors_file)
        graph = centre = None
        if entry.ann:
            from usearch.index import Index

            graph = Index.restore(str(folder / entry.graph_file), view=True)
            graph.expansion_search = EF_SEARCH
            centre = read_centre(folder, entry) if entry.graph == BITS else None
        return cls(entry, rows_table, vectors, graph, centre)

    def with_deleted(self, keys: np.ndarray) -> Segment:
        """This segment with the rows of `keys` (global keys, any segment) marked deleted; shares the mappings."""
        mine = keys[(keys >> ROW_BITS) == self.entry.number] & ROW_MASK
        live = None
        if len(mine):
            live = np.ones(self.entry.rows, dtype=bool)
            live[mine.astype(np.int64)] = False
        return Segment(self.entry, self.rows_table, self.vectors, self.graph, self.centre, live, self._filter_cache)

    @cached_property
    def pages(self) -> np.ndarray:
        return self.rows_table["page"].fill_null(0).to_numpy().astype(np.int32)

    @cached_property
    def metadata(self) -> tuple[np.ndarray, list[str | None]]:
        encoded = self.rows_table["metadata"].fill_null("{}").combine_chunks().dictionary_encode()
        return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()

    def keep(self, where: SearchFilter | None) -> np.ndarray | None:
        """True for the live rows `where` keeps; None when every row is kept."""
        mask = None
        if where is not None and not where.empty:
            key = repr(where)  # dashboards repeat their filters: the last few masks are kept per segment
            mask = self._filter_cache.get(key)
            if mask is None:
                codes, values = self.metadata if where.metadata else (None, None)
                mask = column_mask(self.entry.rows, where, doc_ids=self.rows_table["doc_id"], pages=self.pages,
                                   metadata_codes=codes, metadata_values=values)  # fmt: skip
                with _FILTER_LOCK:  # the intake searches on several threads
                    while len(self._filter_cache) >= FILTER_MASKS:
                        self._filter_cache.pop(next(iter(self._filter_cache)))
                    self._filter_cache[key] = mask
        if self.live is not None:
            mask = self.live if mask is None else mask & self.live
        return mask

    def search(self, query: np.ndarray, k: int, where: SearchFilter | None) -> tuple[np.ndarray, np.ndarray]:
        """The segment's best rows for a unit-length `query`: (rows, cosine scores), best first, at most k."""
        keep = self.keep(where)
        kept = self.entry.rows if keep is None else int(np.count_nonzero(keep))
        if kept == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if self.graph is None or (where is not None and not where.empty and kept <= EXACT_ROWS):
            return self._exact(query, k, keep)
        # Candidates beyond k are ranked again in float32; a filter or deleted rows widen the net by their share.
        count = max(k, EF_SEARCH) if keep is None else max(k, EF_SEARCH, int(np.ceil(2 * k * self.entry.rows / kept)))
        if keep is not None and count >= self.entry.rows // 2:
            return self._exact(query, k, keep)  # most of the graph would be walked: rank the kept rows instead
        count = min(self.entry.rows, count)
        codes = query if self.centre is None else graph_codes(query, self.centre)
        while True:
            found = self.graph.search(codes, count)
            rows = (found.keys.astype(np.uint64) & np.uint64(ROW_MASK)).astype(np.int64)
            if keep is not None:
                rows = rows[keep[rows]]
            if len(rows) >= min(k, kept) or count >= self.entry.rows:
                return self._rank(query, rows, k)
            if count >= MAX_CANDIDATES:
                return self._exact(query, k, keep)
            count = min(self.entry.rows, count * 4)

    def _rank(self, query: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # The graph compares bits; the scores a caller sees are the float32 ones.
        rows = np.unique(rows)
        scores = np.asarray(self.vectors.take(rows) @ query, dtype=np.float32)
        order = np.lexsort((rows, -scores))[:k]
        return rows[order], scores[order]

    def _exact(self, query: np.ndarray, k: int, keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if keep is None:
            scores = np.asarray(self.vectors.matrix @ query, dtype=np.float32)
            rows = np.arange(self.entry.rows)
        else:
            rows = np.flatnonzero(keep)
            scores = np.asarray(self.vectors.take(rows) @ query, dtype=np.float32)
        if len(rows) > k:
            best = np.argpartition(-scores, k - 1)[:k]
            rows, scores = rows[best], scores[best]
        order = np.lexsort((rows, -scores))
        return rows[order], scores[order]

    def take(self, rows: np.ndarray) -> list[dict]:
        """The hits' columns, texts included. Row by row as zero-copy slices: a take over the file's many record
        batches would first join each column whole (every text of the segment) for a handful of rows."""
        return [self.rows_table.slice(int(row), 1).to_pylist()[0] for row in rows]
