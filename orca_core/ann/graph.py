"""The HNSW graph of a segment, built with usearch and saved for readers to map.

Int8 vectors in the graph (usearch scales the unit vectors to -127..127): a quarter of float32's bytes to walk
and to map, and the cheapest distance this usearch build has on this machine's CPU. A search ranks its
candidates again in float32, so the scores a caller sees are exact, and the graph only has to bring the true
neighbours among them. Building it is most of a run's CPU per new chunk (issue 17), so the settings are the
cheapest measured that keep recall (vectors with the structure of real embeddings, bench/search_vectors.py,
100,000 rows, 2 threads; recall@10 after the float32 re-ranking):

| graph | build CPU per vector | recall@10 |
|---|---|---|
| half precision, M 16, expansion 64 (before) | 528 us | 1.000 |
| int8, M 16, expansion 32 | 148 us | 0.987 |
| int8, M 16, expansion 40 (these) | 174 us | 0.995 |

Graphs saved with other settings are still read: usearch keeps its settings in the file.
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
EF_ADD = 40  # candidate list while inserting
BLOCK = 8192  # vectors read and added at a time (24 MiB at 768 dimensions)
LOG_EVERY = 65536  # vectors between two progress lines


def build_graph(folder: Path, entry: SegmentEntry, dimensions: int, log: Callable[[str], None]) -> float:
    """Build and durably save `entry`'s graph from its vectors file; returns the seconds it took."""
    from usearch.index import Index

    started = time.perf_counter()
    stem = folder / entry.stem
    # Read a block at a time, not mapped: the graph holds its own int8 copy, and mapped pages of the
    # float32 file would count in this process's resident memory besides it.
    vectors = VectorFile(Path(f"{stem}.vectors.npy"))
    graph = Index(ndim=dimensions, metric="cos", dtype="i8", connectivity=CONNECTIVITY, expansion_add=EF_ADD)
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
