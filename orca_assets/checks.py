"""Asset checks on the served index: right dimension, sound vectors, one row per chunk, no deleted documents."""


import warnings
from collections.abc import Iterator

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orca_assets.index import embedding_index
from orca_assets.partitions import collections_partitions
from orca_core.layout import CHUNKS_FILE, DOCUMENTS_FILE, FAILED_CHUNKS_FILE
from orca_resources.warehouse import ROW_GROUP_ROWS, Footer, WarehouseResource, open_parquet, read_footer, read_parquet

UNIT_NORM_TOLERANCE = 1e-3

# Partitioned checks are a preview feature we rely on knowingly (results per collection in the UI); its
# warning would otherwise repeat in every process that loads the code.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning)


def _footer(warehouse: WarehouseResource, collection: str) -> Footer:
    footer = read_footer(warehouse.index_path(collection))
    if footer is None:
        raise dg.Failure(f"{collection!r} has no published index")
    return footer


def _index_column(warehouse: WarehouseResource, collection: str, column: str) -> pa.ChunkedArray:
    """One column of the index (never the vectors: those are streamed, see _vector_batches)."""
    table = read_parquet(warehouse.index_path(collection), columns=[column])
    if table is None:
        raise dg.Failure(f"{collection!r} has no published index")
    return table[column]


def _vector_batches(warehouse: WarehouseResource, collection: str) -> Iterator[pa.Array]:
    """The index's vectors a row group at a time, so a check holds one batch of vectors, not the index."""
    with open_parquet(warehouse.index_path(collection)) as index:
        if index is None:
            raise dg.Failure(f"{collection!r} has no published index")
        for batch in index.iter_batches(batch_size=ROW_GROUP_ROWS, columns=["embedding"]):
            yield batch.column(0)


def _matrix(vectors: pa.Array, dimension: int) -> np.ndarray:
    values = vectors.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(len(vectors), dimension) if len(vectors) else np.empty((0, dimension))


@dg.asset_check(
    asset=embedding_index,
    partitions_def=collections_partitions,
    description="Every vector has the dimension the model reports.",
)
def embedding_dimension_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    expected = int(_footer(warehouse, context.partition_key).metadata["orca.dimensions"])
    wrong = 0
    for vectors in _vector_batches(warehouse, context.partition_key):
        wrong += len(vectors) - (pc.sum(pc.equal(pc.list_value_length(vectors), expected)).as_py() or 0)
    return dg.AssetCheckResult(passed=wrong == 0, metadata={"expected_dimension": expected, "wrong_rows": wrong})


@dg.asset_check(
    asset=embedding_index,
    partitions_def=collections_partitions,
    description="Every vector is finite and, for normalising embedders, of unit norm.",
)
def embedding_values_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    footer = _footer(warehouse, context.partition_key)
    normalized = footer.metadata.get("orca.normalized", "true") == "true"
    if footer.num_rows == 0:
        return dg.AssetCheckResult(passed=True, metadata={"rows": 0})
    # One pass over the vectors: the dimension check and the value counts read each batch once.
    lengths: set[int | None] = set()
    counts = dict.fromkeys(("non_finite_rows", "zero_rows", "off_unit_norm_rows"), 0)
    low, high = np.inf, -np.inf
    for vectors in _vector_batches(warehouse, context.partition_key):
        lengths.update(pc.unique(pc.list_value_length(vectors)).to_pylist())
        if len(lengths) != 1 or None in lengths:
            continue  # mixed dimensions, or a missing vector: the answer is known, only their count is wanted
        matrix = _matrix(vectors, next(iter(lengths)))
        finite = np.isfinite(matrix).all(axis=1)
        norms = np.linalg.norm(np.where(np.isfinite(matrix), matrix, 0.0), axis=1)
        zero = norms < 1e-6
        off_unit = np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE if normalized else np.zeros_like(zero)
        counts["non_finite_rows"] += int((~finite).sum())
        counts["zero_rows"] += int(zero.sum())
        counts["off_unit_norm_rows"] += int(off_unit.sum())
        low, high = min(low, float(norms.min())), max(high, float(norms.max()))
    if len(lengths) != 1 or None in lengths:
        return dg.AssetCheckResult(passed=False, metadata={"distinct_dimensions": len(lengths)})
    return dg.AssetCheckResult(
        passed=not any(counts.values()),
        metadata={**counts, "min_norm": low, "max_norm": high},
    )


@dg.asset_check(
    asset=embedding_index,
    partitions_def=collections_partitions,
    description="Every current chunk has exactly one row (failed chunks excepted).",
)
def chunk_coverage_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    collection = context.partition_key
    index_ids = _index_column(warehouse, collection, "chunk_id")
    distinct = pc.unique(index_ids)
    duplicated = len(index_ids) - len(distinct)
    chunk_table = warehouse.read(collection, CHUNKS_FILE, columns=["chunk_id", "text"])
    if chunk_table is None:
        chunk_table = pa.table({"chunk_id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    chunk_ids = pc.unique(chunk_table["chunk_id"])
    failed = warehouse.read(collection, FAILED_CHUNKS_FILE, columns=["text"])
    if failed is not None and failed.num_rows:
        excused_mask = pc.is_in(chunk_table["text"], value_set=failed["text"].combine_chunks())
        excused = pc.unique(chunk_table.filter(excused_mask)["chunk_id"])
    else:
        excused = pa.array([], pa.string())
    covered = pa.concat_arrays([excused.cast(pa.string()), distinct.cast(pa.string())])
    missing = _count(pc.invert(pc.is_in(chunk_ids, value_set=covered)))
    stray = _count(pc.invert(pc.is_in(distinct, value_set=chunk_ids)))
    return dg.AssetCheckResult(
        passed=not missing and not duplicated and not stray,
        metadata={
            "missing_chunks": missing,
            "duplicated_chunks": _count(pc.greater(pc.value_counts(index_ids).field("counts"), 1)) if duplicated else 0,
            "rows_for_unknown_chunks": stray,
            "failed_chunks": len(excused),
        },
    )


def _count(mask: pa.Array) -> int:
    return pc.sum(mask).as_py() or 0


@dg.asset_check(
    asset=embedding_index,
    partitions_def=collections_partitions,
    description="No row belongs to a document that is gone from the inbox.",
)
def deleted_documents_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    collection = context.partition_key
    docs = warehouse.read(collection, DOCUMENTS_FILE, columns=["doc_id", "status"])
    current = set(docs.filter(pc.equal(docs["status"], "ok"))["doc_id"].to_pylist()) if docs is not None else set()
    stale = set(pc.unique(_index_column(warehouse, collection, "doc_id")).to_pylist()) - current
    return dg.AssetCheckResult(
        passed=not stale,
        metadata={"rows_for_deleted_documents": len(stale), "examples": ", ".join(sorted(stale)[:5]) or "none"},
    )


index_checks = [embedding_dimension_check, embedding_values_check, chunk_coverage_check, deleted_documents_check]
