"""The `embedding_index` asset: the served Parquet index of a collection, replaced in one rename."""


import time
from datetime import datetime, timezone

import dagster as dg
import pyarrow as pa

from orca_assets.chunks import CHUNKS_FILE
from orca_assets.embedding_store import STORE_FILE, embedding_key
from orca_assets.embeddings import embeddings
from orca_assets.collection_lock import one_writer_per_collection
from orca_assets.partitions import collections_partitions
from orca_resources.warehouse import INDEX_FILE, WarehouseResource

INDEX_SCHEMA = pa.schema(
    [
        ("chunk_id", pa.string()),
        ("doc_id", pa.string()),
        ("chunk_index", pa.int32()),
        ("text", pa.string()),
        ("embedding", pa.list_(pa.float32())),
        ("model", pa.string()),
        ("source", pa.string()),
    ]
)


def store_metadata(store: pa.Table) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in (store.schema.metadata or {}).items()}


def build_index(chunk_table: pa.Table, store: pa.Table) -> pa.Table:
    """One row per chunk that has a vector, in chunk order, in the contract's schema."""
    meta = store_metadata(store)
    position = {key: row for row, key in enumerate(store["key"].to_pylist())}
    rows, take = [], []
    for row, text in enumerate(chunk_table["text"].to_pylist()):
        found = position.get(embedding_key(meta["identity"], text))
        if found is not None:
            rows.append(row)
            take.append(found)
    picked = chunk_table.take(pa.array(rows, pa.int64()))
    vectors = store["embedding"].take(pa.array(take, pa.int64())).cast(pa.list_(pa.float32()))
    schema = INDEX_SCHEMA.with_metadata(
        {
            "orca.model": meta["model"],
            "orca.digest": meta["digest"],
            "orca.dimensions": meta["dimensions"],
            "orca.identity": meta["identity"],
            "orca.normalized": meta["normalized"],
            "orca.created_at": datetime.now(timezone.utc).isoformat(),
        }
    )
    return pa.Table.from_arrays(
        [
            picked["chunk_id"],
            picked["doc_id"],
            picked["chunk_index"],
            picked["text"].cast(pa.string()),
            vectors,
            pa.array([meta["model"]] * len(rows), pa.string()),
            picked["source"],
        ],
        schema=schema,
    )


@dg.asset(
    partitions_def=collections_partitions,
    deps=[embeddings],
    group_name="embedding",
    kinds={"parquet"},
    description="The served index: one row per current chunk with its vector "
    "(`warehouse/<collection>/embedding_index.parquet`).",
)
@one_writer_per_collection
def embedding_index(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    collection = context.partition_key
    started = time.perf_counter()
    chunk_table = warehouse.read(collection, CHUNKS_FILE, columns=["chunk_id", "doc_id", "chunk_index", "text", "source"])
    store = warehouse.read(collection, STORE_FILE)
    if chunk_table is None or store is None:
        raise dg.Failure(f"{collection!r} has no chunks or embeddings yet: materialize them first")
    index = build_index(chunk_table, store)
    path = warehouse.write(collection, INDEX_FILE, index)
    meta = store_metadata(store)
    documents = len(set(index["doc_id"].to_pylist()))
    context.log.info(f"{collection}: published {index.num_rows} rows from {documents} documents to {path}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": index.num_rows,
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(field.name, str(field.type)) for field in INDEX_SCHEMA]
            ),
            "documents": documents,
            "chunks_without_vector": chunk_table.num_rows - index.num_rows,
            "model": meta["model"],
            "dimensions": int(meta["dimensions"]),
            "path": dg.MetadataValue.path(str(path)),
            "size_bytes": path.stat().st_size,
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
