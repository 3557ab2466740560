"""Asset checks on the served index: right dimension, sound vectors, one row per chunk, no deleted documents."""


import warnings
from collections import Counter

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orca_assets.chunks import CHUNKS_FILE
from orca_assets.embeddings import FAILED_CHUNKS_FILE
from orca_assets.index import embedding_index
from orca_assets.partitions import collections_partitions
from orca_assets.documents import DOCUMENTS_FILE
from orca_resources.warehouse import INDEX_FILE, WarehouseResource

UNIT_NORM_TOLERANCE = 1e-3

# Partitioned checks are a preview feature we rely on knowingly (results per collection in the UI); its
# warning would otherwise repeat in every process that loads the code.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning)


def _index(warehouse: WarehouseResource, collection: str) -> pa.Table:
    table = warehouse.read(collection, INDEX_FILE)
    if table is None:
        raise dg.Failure(f"{collection!r} has no published index")
    return table


def _matrix(index: pa.Table) -> np.ndarray:
    lists = index["embedding"].combine_chunks()
    return lists.values.to_numpy(zero_copy_only=False).reshape(index.num_rows, -1) if index.num_rows else np.empty((0, 0))


@dg.asset_check(
    asset=embedding_index,
    partitions_def=collections_partitions,
    description="Every vector has the dimension the model reports.",
)
def embedding_dimension_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    index = _index(warehouse, context.partition_key)
    expected = int(index.schema.metadata[b"orca.dimensions"])
    lengths = pc.list_value_length(index["embedding"])
    wrong = index.num_rows - pc.sum(pc.equal(lengths, expected)).as_py() if index.num_rows else 0
    return dg.AssetCheckResult(passed=wrong == 0, metadata={"expected_dimension": expected, "wrong_rows": wrong})


@dg.asset_check(
    asset=embedding_index,
    partitions_def=collections_partitions,
    description="Every vector is finite and, for normalising embedders, of unit norm.",
)
def embedding_values_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    index = _index(warehouse, context.partition_key)
    normalized = index.schema.metadata.get(b"orca.normalized", b"true") == b"true"
    if index.num_rows == 0:
        return dg.AssetCheckResult(passed=True, metadata={"rows": 0})
    lengths = set(pc.list_value_length(index["embedding"]).to_pylist())
    if len(lengths) != 1:
        return dg.AssetCheckResult(passed=False, metadata={"distinct_dimensions": len(lengths)})
    matrix = _matrix(index)
    finite = np.isfinite(matrix).all(axis=1)
    norms = np.linalg.norm(np.where(np.isfinite(matrix), matrix, 0.0), axis=1)
    zero = norms < 1e-6
    off_unit = np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE if normalized else np.zeros_like(zero)
    return dg.AssetCheckResult(
        passed=bool(finite.all() and not zero.any() and not off_unit.any()),
        metadata={
            "non_finite_rows": int((~finite).sum()),
            "zero_rows": int(zero.sum()),
            "off_unit_norm_rows": int(off_unit.sum()),
            "min_norm": float(norms.min()),
            "max_norm": float(norms.max()),
        },
    )


@dg.asset_check(
    asset=embedding_index,
    partitions_def=collections_partitions,
    description="Every current chunk has exactly one row (failed chunks excepted).",
)
def chunk_coverage_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    collection = context.partition_key
    index_ids = Counter(_index(warehouse, collection)["chunk_id"].to_pylist())
    chunk_table = warehouse.read(collection, CHUNKS_FILE, columns=["chunk_id", "text"])
    chunk_ids = set(chunk_table["chunk_id"].to_pylist()) if chunk_table is not None else set()
    failed = warehouse.read(collection, FAILED_CHUNKS_FILE, columns=["text"])
    failed_texts = set(failed["text"].to_pylist()) if failed is not None else set()
    excused = {
        row["chunk_id"] for row in (chunk_table.to_pylist() if chunk_table is not None else []) if row["text"] in failed_texts
    }
    missing = chunk_ids - excused - set(index_ids)
    duplicated = [chunk for chunk, count in index_ids.items() if count > 1]
    stray = set(index_ids) - chunk_ids
    return dg.AssetCheckResult(
        passed=not missing and not duplicated and not stray,
        metadata={
            "missing_chunks": len(missing),
            "duplicated_chunks": len(duplicated),
            "rows_for_unknown_chunks": len(stray),
            "failed_chunks": len(excused),
        },
    )


@dg.asset_check(
    asset=embedding_index,
    partitions_def=collections_partitions,
    description="No row belongs to a document that is gone from the inbox.",
)
def deleted_documents_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    collection = context.partition_key
    docs = warehouse.read(collection, DOCUMENTS_FILE, columns=["doc_id", "status"])
    current = set(docs.filter(pc.equal(docs["status"], "ok"))["doc_id"].to_pylist()) if docs is not None else set()
    stale = set(_index(warehouse, collection)["doc_id"].to_pylist()) - current
    return dg.AssetCheckResult(
        passed=not stale,
        metadata={"rows_for_deleted_documents": len(stale), "examples": ", ".join(sorted(stale)[:5]) or "none"},
    )


index_checks = [embedding_dimension_check, embedding_values_check, chunk_coverage_check, deleted_documents_check]
