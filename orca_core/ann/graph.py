"""The HNSW graph of a segment, built with usearch and saved for readers to map.

The graph holds int8 vectors: a search ranks its candidates again with the float32 vectors (segment.py), so
the graph only has to find them, and the scores a caller sees are exact. Each vector enters the graph scaled
so that its largest component is 1 (`graph_vectors`): cosine does not change, and usearch's int8 (a value
times 127) then uses its whole range instead of the 3 bits a 768-dimension unit vector's components (about
0.036) would keep. Queries are scaled the same way.

Building the graph is most of a run's CPU per new chunk (issue 17). Measured on bench 11's vectors, M 16,
recall@10 with the float32 re-ranking at a million rows (a graph's quality only shows at that size: every
setting below keeps 0.99 or more at 100,000):

| graph | insertion list (EF_ADD) | CPU per vector at 40,000 rows | recall@10 at 1M, search list 96 / 160 |
| --- | --- | --- | --- |
| half precision | 64 | 742 us | 0.968 (bench 11) |
| half precision | 40 | 448 us | 0.871 / 0.911 |
| int8 | 40 | 269 us | 0.854 / 0.892 (the same scaled) |
| int8 | 64 | 440 us | 0.961 / 0.982 |

The insertion list, not the precision, decides recall at a million rows; int8 distances cost less than
half-precision ones, so int8 with 64 builds in about 0.6 of the time for the same recall. (Absolute figures
from one session on the shared machine, which was about twice as slow as usual; compare within the column.)
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
EF_ADD = 64  # candidate list while inserting
DTYPE = "i8"  # what the graph stores and compares (see above)
BLOCK = 8192  # vectors read and added at a time (24 MiB at 768 dimensions)
LOG_EVERY = 65536  # vectors between two progress lines


def build_graph(folder: Path, entry: SegmentEntry, dimensions: int, log: Callable[[str], None]) -> float:
    """Build and durably save `entry`'s graph from its vectors file; returns the CPU seconds it took, all of
    this process's threads (usearch inserts on every core, so wall time hides what it costs)."""
    from usearch.index import Index

    started, cpu = time.perf_counter(), time.process_time()
    stem = folder / entry.stem
    # Read a block at a time, not mapped: the graph holds its own int8 copy, and mapped pages of the float32
    # file would count in this process's resident memory besides it.
    vectors = VectorFile(Path(f"{stem}.vectors.npy"))
    graph = Index(ndim=dimensions, metric="cos", dtype=DTYPE, connectivity=CONNECTIVITY, expansion_add=EF_ADD)
    base = np.uint64(entry.number) << np.uint64(ROW_BITS)
    logged = 0
    for start in range(0, entry.rows, BLOCK):
        stop = min(start + BLOCK, entry.rows)
        keys = base | np.arange(start, stop, dtype=np.uint64)
        graph.add(keys, graph_vectors(vectors.take(np.arange(start, stop))), threads=os.cpu_count() or 1)
        if entry.rows > LOG_EVERY and (stop - logged >= LOG_EVERY or stop == entry.rows):
            logged = stop
            rate = stop / max(time.perf_counter() - started, 1e-9)
            log(f"search copy: graph of segment {entry.number}: {stop}/{entry.rows} vectors ({rate:,.0f}/s)")
    vectors.handle.close()
    target = Path(f"{stem}.hnsw.usearch")
    tmp = target.with_name(f".{target.name}.tmp")
    graph.save(str(tmp))
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    return time.process_time() - cpu


def graph_vectors(vectors: np.ndarray) -> np.ndarray:
    """`vectors` (one per row, or one) scaled so that each one's largest component is 1, as the graph takes them
    when it is built and when it is searched: the same cosine, and the whole of int8's range."""
    vectors = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(vectors).max(axis=-1, keepdims=True)
    return np.divide(vectors, peak, out=np.zeros_like(vectors), where=peak > 0)
