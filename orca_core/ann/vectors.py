"""A segment's unit vectors (a .npy float32 matrix), read by position without mapping what is not asked for.

A memory-mapped read of one row makes the kernel map the pages around it too (fault-around, 64 KiB, even
with MADV_RANDOM): ranking 96 candidates per query mapped the whole 293 MiB of vectors of 100,000 chunks into
the process after 200 queries, which counts in its resident memory. Reading the candidates' rows with
`preadv` into a fresh array costs one system call per run of neighbouring rows and leaves the file in the page
cache only. Scans of every row (small segments, and exact scans) still map the file.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np

MAX_RUNS = 2048  # more separate runs than this in one read: the mapped matrix gathers them faster


class VectorFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = open(path, "rb", buffering=0)  # noqa: SIM115 - lives as long as the segment
        version = np.lib.format.read_magic(self.handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(self.handle)
        if dtype != np.float32 or len(shape) != 2:
            raise ValueError(f"{path} is not a float32 matrix")
        self.rows, self.dimensions = shape
        self.offset = self.handle.tell()
        self.row_bytes = self.dimensions * 4

    @cached_property
    def matrix(self) -> np.ndarray:
        """The whole matrix, mapped (for scans of every row)."""
        return np.load(self.path, mmap_mode="r")

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of `rows` (sorted, distinct), as a new array."""
        if len(rows) == 0:
            return np.zeros((0, self.dimensions), np.float32)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        if len(breaks) >= MAX_RUNS:
            return np.asarray(self.matrix[rows])
        out = np.empty((len(rows), self.dimensions), np.float32)
        buffer = memoryview(out).cast("B")
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [len(rows)]])
        fd = self.handle.fileno()
        for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
            want = (stop - start) * self.row_bytes
            got = os.preadv(
                fd,
                [buffer[start * self.row_bytes : stop * self.row_bytes]],
                self.offset + int(rows[start]) * self.row_bytes,
            )
            if got != want:
                raise OSError(f"{self.path}: short read ({got} of {want} bytes)")
        return out
