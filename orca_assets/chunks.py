"""The `chunks` asset: documents cut into overlapping, context-sized pieces, re-cut only when they changed."""


import hashlib
import time

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from orca_assets.chunking import CHUNKER_VERSION, chunk_text, estimate_tokens
from orca_assets.documents import DOCUMENTS_FILE, documents
from orca_assets.collection_lock import one_writer_per_collection
from orca_assets.partitions import collections_partitions
from orca_resources.embedder import Embedder
from orca_resources.warehouse import WarehouseResource

CHUNKS_FILE = "chunks.parquet"

CHUNKS_SCHEMA = pa.schema(
    [
        ("chunk_id", pa.string()),
        ("doc_id", pa.string()),
        ("chunk_index", pa.int32()),
        ("text", pa.large_string()),
        ("source", pa.string()),
        ("content_hash", pa.string()),  # of the document the chunk came from
        ("chunker", pa.string()),
    ]
)

# Room left in the model's context for the task prefix and for tokenizers that count more than estimated.
CONTEXT_MARGIN = 0.9


class ChunksConfig(dg.Config):
    """Run configuration of the `chunks` asset: target size and overlap, in estimated tokens."""

    max_tokens: int = 384
    overlap_tokens: int = 48


def chunk_id(doc_id: str, index: int, text: str) -> str:
    """Stable for the same document, position and text."""
    return hashlib.sha256(f"{doc_id}\0{index}\0{text}".encode()).hexdigest()[:32]


def effective_max_tokens(requested: int, context_length: int, prefix: str) -> int:
    """The chunk size that fits the model: the requested size, capped by its context minus the prefix."""
    room = int(context_length * CONTEXT_MARGIN) - estimate_tokens(prefix)
    return max(16, min(requested, room))


@dg.asset(
    partitions_def=collections_partitions,
    deps=[documents],
    group_name="embedding",
    kinds={"python", "parquet"},
    description="Heading-, paragraph- and sentence-aware chunks of every readable document, sized to the model.",
)
@one_writer_per_collection
def chunks(
    context: dg.AssetExecutionContext,
    config: ChunksConfig,
    embedder: dg.ResourceParam[Embedder],
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    collection = context.partition_key
    started = time.perf_counter()
    info = embedder.model_info()
    max_tokens = effective_max_tokens(config.max_tokens, info.context_length, info.document_prefix)
    overlap = min(config.overlap_tokens, max_tokens // 2 - 1)
    signature = f"v{CHUNKER_VERSION}:{max_tokens}:{overlap}"

    docs = warehouse.read(collection, DOCUMENTS_FILE)
    if docs is None:
        raise dg.Failure(f"no documents table for {collection!r}: materialize `documents` first")
    docs = docs.filter(pc.equal(docs["status"], "ok"))
    previous = warehouse.read(collection, CHUNKS_FILE)
    reusable: dict[str, list[dict]] = {}
    previous_ids: set[str] = set()
    if previous is not None:
        previous_ids = set(previous["chunk_id"].to_pylist())
        for row in previous.filter(pc.equal(previous["chunker"], signature)).to_pylist():
            reusable.setdefault(row["doc_id"], []).append(row)

    rows: list[dict] = []
    rechunked = 0
    for doc in docs.to_pylist():
        kept = reusable.get(doc["doc_id"])
        if kept and kept[0]["content_hash"] == doc["content_hash"] and kept[0]["source"] == doc["source"]:
            rows.extend(sorted(kept, key=lambda row: row["chunk_index"]))
            continue
        rechunked += 1
        for index, text in enumerate(chunk_text(doc["text"], max_tokens=max_tokens, overlap_tokens=overlap)):
            rows.append(
                {
                    "chunk_id": chunk_id(doc["doc_id"], index, text),
                    "doc_id": doc["doc_id"],
                    "chunk_index": index,
                    "text": text,
                    "source": doc["source"],
                    "content_hash": doc["content_hash"],
                    "chunker": signature,
                }
            )
    warehouse.write(collection, CHUNKS_FILE, pa.Table.from_pylist(rows, schema=CHUNKS_SCHEMA))
    current_ids = {row["chunk_id"] for row in rows}
    added = len(current_ids - previous_ids)
    deleted = len(previous_ids - current_ids)
    context.log.info(
        f"{collection}: {len(rows)} chunks from {len(docs)} documents ({rechunked} documents chunked, "
        f"{added} chunks added, {deleted} deleted; max {max_tokens} tokens, overlap {overlap})"
    )
    return dg.MaterializeResult(
        metadata={
            "total": len(rows),
            "added": added,
            "unchanged": len(current_ids & previous_ids),
            "deleted": deleted,
            "documents_chunked": rechunked,
            "max_tokens": max_tokens,
            "overlap_tokens": overlap,
            "seconds": round(time.perf_counter() - started, 3),
            "dagster/row_count": len(rows),
        }
    )
