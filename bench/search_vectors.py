"""Vectors with the structure of real embeddings, for the search benchmarks (made, not downloaded).

Real text embeddings are not uniform on the sphere: they lie near a low-dimensional surface, in topics, so a
point's true neighbours stand apart from the rest. Uniform random vectors have no such structure and no
approximate index has a meaningful recall on them. These vectors are drawn from a latent model: a topic
(one of `TOPICS` centres in a `LATENT`-dimensional space), a point near its centre, lifted to `dimensions` by
one fixed random linear map, plus a little isotropic noise, then scaled to unit length as Orca stores them.
Deterministic for a seed, made a block at a time (a million 768-dimension vectors are 3 GiB).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

LATENT = 48
TOPICS = 1000
SPREAD = 0.6  # a point's distance from its topic's centre, in units of the centres' own spread
NOISE = 0.04  # isotropic noise per dimension after the lift


class VectorSource:
    """The same stream of vectors for a seed; queries come from the same distribution (another seed)."""

    def __init__(self, dimensions: int = 768, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.dimensions = dimensions
        self.centres = rng.standard_normal((TOPICS, LATENT)).astype(np.float32)
        self.lift = (rng.standard_normal((LATENT, dimensions)) / np.sqrt(LATENT)).astype(np.float32)

    def block(self, rows: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        topics = rng.integers(0, TOPICS, rows)
        latent = self.centres[topics] + SPREAD * rng.standard_normal((rows, LATENT), dtype=np.float32)
        vectors = latent @ self.lift + NOISE * rng.standard_normal((rows, self.dimensions), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors

    def blocks(self, rows: int, block_rows: int = 65536, seed: int = 0) -> Iterator[np.ndarray]:
        for number, start in enumerate(range(0, rows, block_rows)):
            yield self.block(min(block_rows, rows - start), seed=seed * 1_000_003 + number + 1)

    def queries(self, rows: int) -> np.ndarray:
        return self.block(rows, seed=999_999_937)
