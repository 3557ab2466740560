"""The HNSW graph of a segment, built with usearch and saved for readers to map.

Half-precision vectors in the graph: half the bytes to walk and to map, and with this usearch build on this
machine's CPU 2-4x faster to build and to search than its float32 (bench/ann_libraries.py: its float32
cosine costs 376 ns a distance, half precision 125). A search ranks its candidates again in float32, so the
scores a caller sees are exact.

Building the graph is most of a run's CPU per new chunk (issue 17: about 450 us a vector here). Cheaper
settings were measured and refused on recall: int8 (usearch scales unit vectors by 127, and a 768-dimension
unit vector's components are about 0.036, so they keep 3 bits) with an insertion list of 40 builds in 150 us
a vector and keeps recall@10 at 0.995 at 100,000 rows, but falls to 0.841 at a million (half precision with 64:
0.968; bench 11, `make bench-search`); int8 with 32 falls to 0.90 already at 300,000 rows.
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
BLOCK = 8192  # vectors read and added at a time (24 MiB at 768 dimensions)
LOG_EVERY = 65536  # vectors between two progress lines


def build_graph(folder: Path, entry: SegmentEntry, dimensions: int, log: Callable[[str], None]) -> float:
    """Build and durably save `entry`'s graph from its vectors file; returns the seconds it took."""
    from usearch.index import Index

    started = time.perf_counter()
    stem = folder / entry.stem
    # Read a block at a time, not mapped: the graph holds its own half-precision copy, and mapped pages of the
    # float32 file would count in this process's resident memory besides it.
    vectors = VectorFile(Path(f"{stem}.vectors.npy"))
    graph = Index(ndim=dimensions, metric="cos", dtype="f16", connectivity=CONNECTIVITY, expansion_add=EF_ADD)
    base = np.uint64(entry.number) << np.uint64(ROW_BITS)
    logged = 0
    for start in range(0, entry.rows, BLOCK):
        stop = min(start + BLOCK, entry.rows)
        keys = base | np.arange(start, stop, dtype=np.uint64)
        graph.add(keys, vectors.take(np.arange(start, stop)), threads=os.cpu_count() or 1)
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
    return time.perf_counter() - started
