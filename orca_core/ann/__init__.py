"""The served index's search copy: what `orca search` and `POST /v1/search` read when no pgvector is set.

The Parquet index is the lake format; loading it whole for every new version does not scale (a million
768-dimension chunks are 3 GiB of vectors and half a minute of reading). The search copy holds the same rows
as segments that a searching process memory-maps instead of reading:

    embedding_index.search/
      manifest.json               the current version: its segments, its deleted rows, the index it mirrors
      seg-000001.rows.arrow       the rows' columns but the vectors (Arrow IPC, uncompressed: mapped, not read)
      seg-000001.vectors.npy      the unit-length float32 vectors, one contiguous matrix (mapped)
      seg-000001.hnsw.usearch     an HNSW graph over the segment (usearch, a bit per dimension); only from ANN_MIN_ROWS
      seg-000001.centre.npy       the segment's mean vector, the graph's bits are set above it (graph.py)
      deleted-000002.npy          keys of rows that left the index since their segment was written

An update after a run writes only what changed: a new segment of the added or changed rows, and the keys of
the rows that left. A process that searches maps the new segment and keeps the ones it already has, so the
first query after a 1% change costs a 1% segment, not a reload, and memory never holds two versions. When
the changes pile up (COMPACT_SHARE of the rows) or the model changes, the copy is written again as one
segment. The manifest is replaced by a rename: a reader sees one version or the next, never a mix.

Why usearch (Apache-2.0): it maps a saved graph (`view=True`) instead of loading it, stores bits, int8
or half-precision vectors, and is released every few weeks; faiss's HNSW answered faster but maps its graph only
through a little-documented flag, and hnswlib cannot map at all and has had no release since 2023 (docs/search.md).
"""

from orca_core.ann.manifest import ANN_MIN_ROWS, COMPACT_SHARE, Manifest, read_manifest
from orca_core.ann.reader import open_search_copy, search_copy

__all__ = ["ANN_MIN_ROWS", "COMPACT_SHARE", "Manifest", "open_search_copy", "read_manifest", "search_copy"]
