"""How the vector store (`embeddings.parquet` and its parts) holds a vector: its float32 bytes, one fixed-size value.

The store is Orca's own cache, read only by Orca, so it keeps vectors in the cheapest layout Parquet has: a
fixed-size binary value of `4 x dimensions` bytes, little-endian float32, with no compression (floats of a real
model hardly compress: 8% smaller under zstd). Parquet writes a `fixed_size_list<float32>` column with a
repetition and a definition level per float; for 41,000 vectors of 768 floats the list column cost 11-15 us of
CPU per vector to write and 8-12 to read (zstd), the bytes 2.4 and 1.4 (bench/FINDINGS.md, row 14). The
served index keeps the contract's `fixed_size_list<float32>` (`as_float_lists`).

Stores and parts written as float lists by earlier versions are still read: every reader goes through
`vector_matrix` or `as_vector_bytes`, which take either layout.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

FLOAT32 = np.dtype("<f4")


def vector_type(dimensions: int) -> pa.DataType:
    return pa.binary(dimensions * FLOAT32.itemsize)


def vectors_to_arrow(vectors: np.ndarray) -> pa.FixedSizeBinaryArray:
    """A (rows, dimensions) matrix as the store's column; no copy when it is already contiguous float32."""
    matrix = np.ascontiguousarray(vectors, dtype=FLOAT32)
    rows, dimensions = matrix.shape
    return pa.FixedSizeBinaryArray.from_buffers(vector_type(dimensions), rows, [None, pa.py_buffer(matrix)])


def vector_matrix(column: pa.Array | pa.ChunkedArray, dimensions: int) -> np.ndarray:
    """The (rows, dimensions) float32 vectors of a column: the store's raw bytes (a view, no copy) or float lists,
    as the index and older stores hold them (a copy)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_fixed_size_binary(column.type):
        if column.type.byte_width != dimensions * FLOAT32.itemsize:
            raise ValueError(f"stored vectors of {column.type.byte_width} bytes, not {dimensions} float32")
        data = np.frombuffer(column.buffers()[1], dtype=FLOAT32, count=(column.offset + len(column)) * dimensions)
        return data[column.offset * dimensions :].reshape(len(column), dimensions)
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=FLOAT32).reshape(len(column), dimensions)


def as_vector_bytes(column: pa.Array, dimensions: int) -> pa.FixedSizeBinaryArray:
    """A store column in the current layout, whichever layout it was read in."""
    if pa.types.is_fixed_size_binary(column.type) and column.type == vector_type(dimensions):
        return column
    return vectors_to_arrow(vector_matrix(column, dimensions))


def as_float_lists(column: pa.Array, dimensions: int) -> pa.FixedSizeListArray:
    """A store column as the index's `fixed_size_list<float32, dimensions>` (the float32 buffer is shared)."""
    matrix = vector_matrix(column, dimensions)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), dimensions)
