"""The `embedding_index` asset: the served Parquet index of a collection, replaced in one rename.

A new index is first written to a staged file beside the served one; the blocking checks (orca_assets/
checks.py) judge that file, and only when all pass does it replace the served index. A failing check leaves
the previous index served and fails the run with the check's name and reason.

The index is built as a stream: the chunk rows (no vectors) stay in memory, the vector store is read one
record batch at a time, and each batch's rows are written as they are joined, so memory holds one batch of
vectors, never the whole store or the whole index. Row order follows the store (it is not part of the
contract). The footer records which versions of `chunks.parquet` and `embeddings.parquet` it was built
from (`orca.inputs`); when both are unchanged, the published index is left as it is.
"""


import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orca_assets.checks import (
    INDEX_CHECK_SPECS,
    IndexFile,
    check_results,
    failures,
    judge_index,
    remember_verdicts,
    remembered_verdicts,
)
from orca_assets.embedding_store import embedding_key
from orca_assets.embeddings import embeddings
from orca_assets.partitions import EMBEDDING_GROUP, collections_partitions
from orca_assets.search_copy import sync_search_copy
from orca_assets.stored_vectors import as_float_lists
from orca_assets.unchanged import file_identity, recall, remember
from orca_assets.writer_lock import one_writer_per_collection
from orca_core.layout import CHUNKS_FILE, STAGED_INDEX_FILE, STORE_FILE
from orca_resources.warehouse import (
    ROW_GROUP_ROWS,
    Footer,
    WarehouseResource,
    open_parquet,
    publish_file,
    read_footer,
    read_parquet,
    stream_parquet_atomic,
)

INDEX_SCHEMA = pa.schema(
    [
        ("chunk_id", pa.string()),
        ("doc_id", pa.string()),
        ("chunk_index", pa.int32()),
        ("text", pa.string()),
        ("embedding", pa.list_(pa.float32())),  # fixed_size_list<float32, dimensions> in a written index
        ("model", pa.string()),
        ("source", pa.string()),
        ("page", pa.int32()),  # 1-based page, slide or sheet where the chunk starts; null without pages
        ("section", pa.string()),  # the heading path above the chunk, `Install > Linux`; null when none
        ("title", pa.string()),  # the document's title; null when unknown
        ("metadata", pa.string()),  # the document's metadata, a JSON object (`{}` when none)
    ]
)
# The materialization's metadata entry naming the served file it ended with (see published_identity).
FILE_IDENTITY = "file_identity"
CHUNK_COLUMNS = ["chunk_id", "doc_id", "chunk_index", "text", "source", "page", "section", "title", "metadata"]


def store_metadata(schema: pa.Schema) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in (schema.metadata or {}).items()}


def index_schema(meta: dict[str, str], inputs: str | None) -> pa.Schema:
    """The contract's schema with the model's identity (and what the index was built from) in its metadata."""
    fields = {
        "orca.model": meta["model"],
        "orca.digest": meta["digest"],
        "orca.dimensions": meta["dimensions"],
        "orca.identity": meta["identity"],
        "orca.normalized": meta["normalized"],
        "orca.created_at": datetime.now(timezone.utc).isoformat(),
    }
    if inputs:
        fields["orca.inputs"] = inputs
    # Vectors of one length, as DuckDB arrays, Lance and numpy views expect them (no offsets to walk).
    vectors = pa.field("embedding", pa.list_(pa.float32(), int(meta["dimensions"])))
    return INDEX_SCHEMA.set(INDEX_SCHEMA.get_field_index("embedding"), vectors).with_metadata(fields)


def chunk_keys(identity: str, texts: pa.ChunkedArray, slice_rows: int = 8192) -> pa.Array:
    """The embedding key of every chunk text, computed a slice at a time (no list of every text in Python)."""
    pieces = [
        pa.array([embedding_key(identity, text) for text in texts.slice(start, slice_rows).to_pylist()], pa.string())
        for start in range(0, len(texts), slice_rows)
    ]
    return pa.concat_arrays(pieces) if pieces else pa.array([], pa.string())


def write_index(chunks_path: Path, store_path: Path, target: Path, inputs: str | None = None) -> tuple[int, int]:
    """Join chunks to their vectors batch by batch into `target` (atomically); returns (rows, documents)."""
    chunk_table = read_parquet(chunks_path, columns=CHUNK_COLUMNS)
    with open_parquet(store_path) as store:
        if chunk_table is None or store is None:
            raise FileNotFoundError(chunks_path if chunk_table is None else store_path)
        meta = store_metadata(store.schema_arrow)
        # Where each chunk's vector is in the store (first occurrence), from the key column alone.
        store_keys = store.read(columns=["key"])["key"]
        found = pc.index_in(chunk_keys(meta["identity"], chunk_table["text"]), value_set=store_keys)
        del store_keys
        position = found.to_numpy(zero_copy_only=False)  # nulls become NaN
        has_vector = np.flatnonzero(~np.isnan(position))
        order = has_vector[np.argsort(position[has_vector], kind="stable")]  # chunk rows in store order
        store_row = position[order].astype(np.int64)
        schema = index_schema(meta, inputs)
        dimensions = int(meta["dimensions"])
        documents: set[str] = set()
        offset = 0
        with stream_parquet_atomic(target, schema) as out:
            for batch in store.iter_batches(batch_size=ROW_GROUP_ROWS, columns=["embedding"]):
                lo, hi = np.searchsorted(store_row, [offset, offset + batch.num_rows])
                if hi > lo:
                    picked = chunk_table.take(pa.array(order[lo:hi]))
                    vectors = as_float_lists(batch.column(0).take(pa.array(store_row[lo:hi] - offset)), dimensions)
                    out.write(_rows(picked, vectors, meta["model"], schema))
                    documents.update(pc.unique(picked["doc_id"]).to_pylist())
                offset += batch.num_rows
        return out.num_rows, len(documents)


def _rows(picked: pa.Table, vectors: pa.Array, model: str, schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [
            picked["chunk_id"].combine_chunks(),
            picked["doc_id"].combine_chunks(),
            picked["chunk_index"].combine_chunks(),
            picked["text"].combine_chunks().cast(pa.string()),
            vectors.cast(schema.field("embedding").type),
            pa.array([model] * picked.num_rows, pa.string()),
            picked["source"].combine_chunks(),
            picked["page"].combine_chunks(),
            picked["section"].combine_chunks(),
            picked["title"].combine_chunks(),
            picked["metadata"].combine_chunks(),
        ],
        schema=schema,
    )


def index_inputs(chunks: Footer | None, store: Footer | None) -> str | None:
    """Versions of the chunks and of the vector store, or None when either is unstamped (always rebuild)."""
    if chunks is None or store is None:
        return None
    versions = chunks.metadata.get("orca.version"), store.metadata.get("orca.version")
    return f"chunks:{versions[0]};embeddings:{versions[1]}" if all(versions) else None


def published_identity(path: Path) -> str:
    """The served file as it stands (inode, size, mtime): the run that published or verified it records this with
    its materialization, so a later look can tell the file is still the one that run left (orca_assets/up_to_date.py)."""
    return ":".join(str(part) for part in file_identity(path) or ["absent"])


def _documents(path: Path, inputs: str | None, folder: Path) -> int:
    """How many documents the served index holds: recorded for this very file, or counted from its doc_id column."""
    key = [inputs, file_identity(path)]
    if (known := recall(folder, "embedding_index", key)) is not None:
        return known["documents"]
    documents = pc.count_distinct(read_parquet(path, columns=["doc_id"])["doc_id"]).as_py()
    remember(folder, "embedding_index", key, {"documents": documents})
    return documents


@dg.asset(
    partitions_def=collections_partitions,
    deps=[embeddings],
    group_name=EMBEDDING_GROUP,
    kinds={"parquet"},
    check_specs=INDEX_CHECK_SPECS,
    description="The served index: one row per current chunk with its vector "
    "(`warehouse/<collection>/embedding_index.parquet`). A new index is staged and published only when its "
    "blocking checks pass.",
)
@one_writer_per_collection
def embedding_index(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    collection = context.partition_key
    started = time.perf_counter()
    path = warehouse.index_path(collection)
    chunk_footer, store_footer = warehouse.footer(collection, CHUNKS_FILE), warehouse.footer(collection, STORE_FILE)
    if chunk_footer is None or store_footer is None:
        raise dg.Failure(f"{collection!r} has no chunks or embeddings yet: materialize them first")
    inputs = index_inputs(chunk_footer, store_footer)
    published = read_footer(path)
    unchanged = inputs is not None and published is not None and published.metadata.get("orca.inputs") == inputs
    repaired = False
    served = IndexFile(path, warehouse, collection)
    if unchanged:
        # Judged when published, and the very same file since (inode, size, mtime): those verdicts still hold.
        remembered = remembered_verdicts(served, inputs)
        verdicts = remembered or judge_index(served)
        if failed := failures(verdicts):
            # Same inputs, yet the served file fails: it was damaged after it was published. Build it again.
            context.log.warning(f"{collection}: the served index fails its checks ({failed}); rebuilding it")
            unchanged, repaired = False, True
        else:
            rows = published.num_rows
            documents = _documents(path, inputs, path.parent)
            context.log.info(f"{collection}: chunks and vectors unchanged; {path} ({rows} rows) left as it is")
    if not unchanged:
        staged = warehouse.path(collection, STAGED_INDEX_FILE)
        rows, documents = write_index(warehouse.path(collection, CHUNKS_FILE), warehouse.path(collection, STORE_FILE),
                                      staged, inputs)
        verdicts = judge_index(IndexFile(staged, warehouse, collection))
        yield from check_results(verdicts)
        if failed := failures(verdicts):
            staged.unlink()
            served = "the previous index is still served" if published is not None else "no index is served yet"
            raise dg.Failure(
                description=f"{collection}: the new index failed its blocking checks, so it was not published "
                f"({served}): {failed}",
                metadata={"failed_checks": ", ".join(c.name for c, v in verdicts if not v.passed)},
            )
        publish_file(staged, path)
        remember_verdicts(served, inputs, verdicts)
        remember(path.parent, "embedding_index", [inputs, file_identity(path)], {"documents": documents})
        context.log.info(f"{collection}: published {rows} rows from {documents} documents to {path}")
    else:
        if remembered is None:
            remember_verdicts(served, inputs, verdicts)
        yield from check_results(verdicts)
    copy = sync_search_copy(context, warehouse, collection)
    meta = (published if unchanged else read_footer(path)).metadata
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(field.name, str(field.type)) for field in INDEX_SCHEMA]
            ),
            "documents": documents,
            "chunks_without_vector": chunk_footer.num_rows - rows,
            "model": meta["orca.model"],
            "dimensions": int(meta["orca.dimensions"]),
            "rewritten": not unchanged,
            "repaired": repaired,
            "path": dg.MetadataValue.path(str(path)),
            "size_bytes": path.stat().st_size,
            FILE_IDENTITY: published_identity(path),
            "seconds": round(time.perf_counter() - started, 3),
            **copy,
        }
    )
