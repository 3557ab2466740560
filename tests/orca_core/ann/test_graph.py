import numpy as np
import pytest

import orca_core.ann.writer as writer_module
from orca_core.ann import open_search_copy
from orca_core.ann.graph import graph_codes, read_centre
from orca_core.ann.writer import update_search_copy
from tests.orca_core.ann.index_files import clustered, exact, write_index

ROWS = 3000
DIMENSIONS = 128


@pytest.fixture(autouse=True)
def small_graphs(monkeypatch):
    monkeypatch.setattr(writer_module, "ANN_MIN_ROWS", 64)


def leaning(rows: int, seed: int) -> np.ndarray:
    """Clustered unit vectors that all lean one way, as real embeddings share a common direction."""
    common = np.where(np.random.default_rng(42).random(DIMENSIONS) < 0.5, -0.3, 0.3)
    vectors = clustered(rows, seed=seed, dimensions=DIMENSIONS) + common
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_codes_are_a_bit_per_dimension_above_the_centre():
    vectors = np.array([[0.5, -0.1, 0.2, 0.0, 0.9, -0.4, 0.1, 0.3, 0.7], [0.0] * 9], dtype=np.float32)
    centre = np.full(9, 0.15, dtype=np.float32)
    assert graph_codes(vectors, centre).tolist() == [[0b10101001, 0b10000000], [0, 0]]
    assert graph_codes(vectors[0], centre).tolist() == [0b10101001, 0b10000000]  # a single query too


def test_vectors_sharing_a_direction_are_still_told_apart(tmp_path):
    vectors = leaning(ROWS, seed=0)
    # Unless centred, nearly every bit is the same for every vector: the graph could not tell them apart.
    assert len(np.unique(graph_codes(vectors, np.zeros(DIMENSIONS)), axis=0)) < ROWS / 20
    index = write_index(tmp_path / "index.parquet", [f"c{i}" for i in range(ROWS)], vectors)
    update_search_copy(index, tmp_path / "copy")
    copy = open_search_copy(tmp_path / "copy")
    (segment,) = copy.segments
    assert segment.graph is not None
    assert np.allclose(read_centre(tmp_path / "copy", segment.entry), vectors.mean(axis=0), atol=1e-5)
    queries = leaning(40, seed=3)
    hits = [{int(r["chunk_id"][1:]) for r in copy.search(q, 10)} & set(exact(vectors, q, 10)) for q in queries]
    assert sum(map(len, hits)) / (10 * len(queries)) >= 0.95
