"""The HNSW graph of a segment, built with usearch and saved for readers to map.

The graph holds one bit per dimension: whether the vector's component lies above the segment's mean (its
centre, saved beside the graph). It only has to find candidates: a search ranks them again with the float32
vectors (segment.py), so the scores a caller sees are exact. Comparing 96-byte codes by Hamming distance
costs a fraction of int8 or half-precision cosine, and building the graph is most of a run's CPU per new chunk
(issue 17). The centre matters for real embeddings, which share a common direction: without it many bits
would be the same for every chunk and tell the graph nothing (tests/orca_core/ann/test_graph.py).

Measured on bench 11's vectors, M 16, recall@10 after the float32 re-ranking at a million rows (a graph's
quality only shows at that size: every setting below keeps 0.99 or more at 100,000):

| graph | insertion list (EF_ADD) | CPU per vector, 40,000 rows | recall@10 at 1M (search list) |
| --- | --- | --- | --- |
| half precision | 64 | 742 us | 0.968 (96) |
| half precision | 40 | 448 us | 0.871 (96), 0.911 (160) |
| int8, scaled to a largest component of 1 | 40 | 269 us | 0.854 (96), 0.892 (160) |
| int8, scaled the same | 64 | 440 us | 0.961 (96), 0.982 (160) |
| bits, centred | 64 | 67 us (int8: 254 that day); 158 us building a million | 0.924 (96), 0.971 (160), 0.986 (256) |
| bits, centred | 40 | 108 us building a million | 0.886 (160), 0.937 (400) |

The insertion list decides recall at a million rows more than the precision does; bits cost about a quarter
of int8's CPU and need a longer search list (EF_SEARCH in segment.py) for the same recall. Up to 200,000 rows
the short list loses next to nothing, so a segment of at most SMALL_ROWS is built with it (bits, search list
160, 300 queries of bench 11's vectors, same day):

| rows | insertion list 64 | 40 | 32 |
| --- | --- | --- | --- |
| 40,000 | 76 us, recall 1.000 | 41 us, 1.000 | 35 us, 1.000 |
| 100,000 | 88 us, 1.000 | 48 us, 1.000 | 42 us, 0.995 |
| 200,000 | 89 us, 1.000 | 50 us, 0.996 | 40 us, 0.984 |

(Absolute figures from sessions on a shared machine of varying speed; compare within a row's day.)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from orca_core.ann.manifest import ROW_BITS, SegmentEntry
from orca_core.ann.vectors import VectorFile

CONNECTIVITY = 16  # HNSW's M: links per node
EF_ADD = 64  # candidate list while inserting, in a large segment
EF_ADD_SMALL = 40  # and in a segment of at most SMALL_ROWS, where it keeps the same recall for 55% of the CPU
SMALL_ROWS = 200_000
DTYPE = "b1"  # what the graph stores: a bit per dimension (see above)
METRIC = "hamming"
BLOCK = 8192  # vectors read and added at a time (24 MiB at 768 dimensions)
LOG_EVERY = 65536  # vectors between two progress lines


def build_graph(folder: Path, entry: SegmentEntry, centre: np.ndarray, log: Callable[[str], None]) -> float:
    """Build and durably save `entry`'s graph from its vectors file, and `centre` (the vectors' mean, which the
    writer sums as it writes them); returns the CPU seconds it took, all of this process's threads (usearch
    inserts on every core, so wall time hides what it costs)."""
    from usearch.index import Index

    started, cpu = time.perf_counter(), time.process_time()
    # Read a block at a time, not mapped: mapped pages of the float32 file would count in this process's
    # resident memory beside the graph's own codes.
    vectors = VectorFile(folder / entry.vectors_file)
    graph = Index(ndim=len(centre), metric=METRIC, dtype=DTYPE, connectivity=CONNECTIVITY,
                  expansion_add=insertion_list(entry.rows))
    base = np.uint64(entry.number) << np.uint64(ROW_BITS)
    logged = 0
    for start in range(0, entry.rows, BLOCK):
        stop = min(start + BLOCK, entry.rows)
        rows = np.arange(start, stop)
        graph.add(base | rows.astype(np.uint64), graph_codes(vectors.take(rows), centre), threads=os.cpu_count() or 1)
        if entry.rows > LOG_EVERY and (stop - logged >= LOG_EVERY or stop == entry.rows):
            logged = stop
            rate = stop / max(time.perf_counter() - started, 1e-9)
            log(f"search copy: graph of segment {entry.number}: {stop}/{entry.rows} vectors ({rate:,.0f}/s)")
    vectors.handle.close()
    with open(folder / entry.centre_file, "wb") as handle:
        np.save(handle, centre, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())
    target = folder / entry.graph_file
    tmp = target.with_name(f".{target.name}.tmp")
    graph.save(str(tmp))
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    return time.process_time() - cpu


def insertion_list(rows: int) -> int:
    """The candidate list for inserting into a graph of `rows`: a short one is enough until the graph is large."""
    return EF_ADD_SMALL if rows <= SMALL_ROWS else EF_ADD


def read_centre(folder: Path, entry: SegmentEntry) -> np.ndarray:
    """The centre `build_graph` saved for `entry`'s graph."""
    return np.load(folder / entry.centre_file, allow_pickle=False)


def graph_codes(vectors: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """`vectors` (one per row, or one) as the graph takes them when it is built and when it is searched: a bit
    per dimension, set where the component lies above the centre's, packed eight to a byte."""
    return np.packbits(np.asarray(vectors, dtype=np.float32) > centre, axis=-1)
