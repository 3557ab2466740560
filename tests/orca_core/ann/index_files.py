"""Parquet indexes as embedding_index writes them, made directly, for the search copy's tests."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DIMENSIONS = 32


def clustered(rows: int, seed: int = 0, dimensions: int = DIMENSIONS) -> np.ndarray:
    """Unit vectors in 40 tight clusters: true neighbours stand apart, as real embeddings' do."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((40, dimensions))
    vectors = centres[rng.integers(0, 40, rows)] + 0.3 * rng.standard_normal((rows, dimensions))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def write_index(path: Path, ids: list[str], vectors: np.ndarray, *, model: str = "m", team=None) -> Path:
    """An index of one chunk per id; `team(i)` gives row i's metadata team (default: every 100th is infra)."""
    team = team or (lambda i: "infra" if i % 100 == 0 else "other")
    rows = len(ids)
    table = pa.table(
        {
            "chunk_id": ids,
            "doc_id": [f"guides/{i // 10}" if i % 2 else f"notes/{i // 10}" for i in range(rows)],
            "chunk_index": pa.array([i % 10 for i in range(rows)], pa.int32()),
            "text": [f"text of {chunk}" for chunk in ids],
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), vectors.shape[1]),
            "model": [model] * rows,
            "source": [f"inbox/c/{i // 10}" for i in range(rows)],
            "page": pa.array([i % 7 + 1 for i in range(rows)], pa.int32()),
            "section": ["Intro"] * rows,
            "title": ["A title"] * rows,
            "metadata": [json.dumps({"team": team(i)}) for i in range(rows)],
        }
    )
    meta = {"orca.model": model, "orca.dimensions": str(vectors.shape[1]), "orca.created_at": uuid.uuid4().hex}
    pq.write_table(table.replace_schema_metadata(meta), path, row_group_size=256)
    return path


def exact(vectors: np.ndarray, query: np.ndarray, k: int, keep: np.ndarray | None = None) -> list[int]:
    scores = vectors @ (query / np.linalg.norm(query))
    if keep is not None:
        scores = np.where(keep, scores, -np.inf)
    order = np.lexsort((np.arange(len(scores)), -scores))
    return [int(i) for i in order[:k] if np.isfinite(scores[i])]
