"""The `chunks` asset: documents cut into overlapping, context-sized pieces, re-cut only when they changed."""


import bisect
import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from orca_assets.documents import documents
from orca_assets.partitions import EMBEDDING_GROUP, collections_partitions
from orca_assets.text_splitter import CHUNKER_VERSION, split_document
from orca_assets.unchanged import file_identity, recall, remember
from orca_assets.writer_lock import one_writer_per_collection
from orca_core.embedder import Embedder, ModelInfo
from orca_core.layout import CHUNKS_FILE, DOCUMENTS_FILE
from orca_core.tokens import estimate_tokens
from orca_resources.warehouse import WarehouseResource, open_parquet

CHUNKS_SCHEMA = pa.schema(
    [
        ("chunk_id", pa.string()),
        ("doc_id", pa.string()),
        ("chunk_index", pa.int32()),
        ("text", pa.large_string()),
        ("source", pa.string()),
        ("content_hash", pa.string()),  # of the document the chunk came from
        ("chunker", pa.string()),
        ("page", pa.int32()),  # 1-based page, slide or sheet where the chunk starts; null without pages
        ("section", pa.string()),  # the heading path above the chunk, `Install > Linux`
        ("title", pa.string()),  # the document's
        ("metadata", pa.string()),  # the document's, a JSON object
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


def chunk_settings(config: ChunksConfig, info: ModelInfo) -> tuple[int, int, str]:
    """Chunk size and overlap for this model, and their signature (the chunker's version with both)."""
    max_tokens = effective_max_tokens(config.max_tokens, info.context_length, info.document_prefix)
    overlap = min(config.overlap_tokens, max_tokens // 2 - 1)
    return max_tokens, overlap, f"v{CHUNKER_VERSION}:{max_tokens}:{overlap}"


def chunks_key(signature: str, folder: Path) -> list:
    """The key `chunks` verifies its table under: the settings' signature, the documents table and its own."""
    return [signature, file_identity(folder / DOCUMENTS_FILE), file_identity(folder / CHUNKS_FILE)]


def effective_max_tokens(requested: int, context_length: int, prefix: str) -> int:
    """The chunk size that fits the model: the requested size, capped by its context minus the prefix."""
    room = int(context_length * CONTEXT_MARGIN) - estimate_tokens(prefix)
    return max(16, min(requested, room))


@dg.asset(
    partitions_def=collections_partitions,
    deps=[documents],
    group_name=EMBEDDING_GROUP,
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
    max_tokens, overlap, signature = chunk_settings(config, info)

    folder = warehouse.collection_dir(collection)

    def verified_key() -> list:
        return chunks_key(signature, folder)

    known = recall(folder, "chunks", verified_key())
    if known is not None:
        # The very chunks file verified against this very documents table with these settings: still the same.
        return _unchanged(context, collection, known["total"], known["documents"], max_tokens, overlap, started)
    docs = warehouse.read(collection, DOCUMENTS_FILE, columns=["doc_id", "source", "content_hash", "status"])
    if docs is None:
        raise dg.Failure(f"no documents table for {collection!r}: materialize `documents` first")
    docs = docs.filter(pc.equal(docs["status"], "ok")).drop_columns(["status"])
    inputs = _inputs_digest(signature, docs)
    footer = warehouse.footer(collection, CHUNKS_FILE)
    if footer is not None and footer.metadata.get("orca.inputs") == inputs:
        # Same documents (by content hash and source) and same chunker settings: the chunks are the same.
        remember(folder, "chunks", verified_key(), {"total": footer.num_rows, "documents": len(docs)})
        return _unchanged(context, collection, footer.num_rows, len(docs), max_tokens, overlap, started)

    previous = warehouse.read(collection, CHUNKS_FILE)
    if previous is not None and not set(CHUNKS_SCHEMA.names) <= set(previous.column_names):
        previous = None  # written by a version without some columns: every document is chunked again
    # Rows of documents whose content, source and chunker are unchanged are reused as they are (in Arrow).
    reused = CHUNKS_SCHEMA.empty_table()
    if previous is not None:
        previous = previous.cast(CHUNKS_SCHEMA)
        same = previous.filter(pc.equal(previous["chunker"], signature))
        keys = ["doc_id", "content_hash", "source"]
        # A document's rows share its hash and source: match documents on one row per document, then keep
        # their rows with a filter (which keeps the previous order, where a join would shuffle it).
        matching = same.group_by(keys).aggregate([]).join(docs, keys, join_type="inner")["doc_id"]
        reused = same.filter(pc.is_in(same["doc_id"], value_set=matching.combine_chunks()))
    rechunk = pc.invert(pc.is_in(docs["doc_id"], value_set=pc.unique(reused["doc_id"])))
    to_chunk = set(docs.filter(rechunk)["doc_id"].to_pylist())

    version = uuid.uuid4().hex
    schema = CHUNKS_SCHEMA.with_metadata({"orca.inputs": inputs, "orca.version": version})
    new_ids: list[pa.Array] = []
    with warehouse.stream(collection, CHUNKS_FILE, schema) as out:
        out.write(reused.cast(schema))
        for batch in _documents_to_chunk(warehouse, collection, to_chunk):
            rows = _chunk_rows(batch, max_tokens, overlap, signature)
            out.write(rows)
            new_ids.extend(rows.column(0).chunks)
        total = out.num_rows
    counts = _counts(previous, reused, new_ids, total)
    remember(folder, "chunks", verified_key(), {"total": total, "documents": len(docs)})
    context.log.info(
        f"{collection}: {total} chunks from {len(docs)} documents ({len(to_chunk)} documents chunked, "
        f"{counts['added']} chunks added, {counts['deleted']} deleted; max {max_tokens} tokens, overlap {overlap})"
    )
    return _result(counts, len(to_chunk), max_tokens, overlap, started, rewritten=True)


def _unchanged(context, collection: str, total: int, documents: int, max_tokens: int, overlap: int, started: float):
    context.log.info(f"{collection}: {total} chunks from {documents} documents, all unchanged")
    counts = {"total": total, "added": 0, "unchanged": total, "deleted": 0}
    return _result(counts, 0, max_tokens, overlap, started, rewritten=False)


def _inputs_digest(signature: str, docs: pa.Table) -> str:
    """What the chunks are a function of: the chunker settings and each readable document's hash and source."""
    digest = hashlib.sha256(signature.encode())
    for doc_id, source, content_hash in zip(*(docs[name].to_pylist() for name in ("doc_id", "source", "content_hash"))):
        digest.update(f"{doc_id}\0{source}\0{content_hash}\n".encode())
    return digest.hexdigest()


def _documents_to_chunk(warehouse: WarehouseResource, collection: str, wanted: set[str]) -> Iterator[list[dict]]:
    """The readable documents in `wanted`, with their text, a record batch at a time."""
    if not wanted:
        return
    columns = ["doc_id", "source", "content_hash", "status", "title", "metadata", "pages", "text"]
    with open_parquet(warehouse.path(collection, DOCUMENTS_FILE)) as documents_file:
        for batch in documents_file.iter_batches(batch_size=256, columns=columns):
            rows = [row for row in batch.to_pylist() if row["status"] == "ok" and row["doc_id"] in wanted]
            if rows:
                yield rows


def _chunk_rows(docs: list[dict], max_tokens: int, overlap: int, signature: str) -> pa.Table:
    columns: dict[str, list] = {name: [] for name in CHUNKS_SCHEMA.names}
    for doc in docs:
        pages = doc["pages"]
        for index, chunk in enumerate(split_document(doc["text"], max_tokens=max_tokens, overlap_tokens=overlap)):
            columns["chunk_id"].append(chunk_id(doc["doc_id"], index, chunk.text))
            columns["doc_id"].append(doc["doc_id"])
            columns["chunk_index"].append(index)
            columns["text"].append(chunk.text)
            columns["source"].append(doc["source"])
            columns["content_hash"].append(doc["content_hash"])
            columns["chunker"].append(signature)
            columns["page"].append(bisect.bisect_right(pages, chunk.start) if pages else None)
            columns["section"].append(chunk.section)
            columns["title"].append(doc["title"])
            columns["metadata"].append(doc["metadata"] or "{}")
    return pa.Table.from_pydict(columns, schema=CHUNKS_SCHEMA)


def _counts(previous: pa.Table | None, reused: pa.Table, new_ids: list[pa.Array], total: int) -> dict[str, int]:
    current = pc.unique(pa.chunked_array([*reused["chunk_id"].chunks, *new_ids], pa.string()))
    if previous is None:
        return {"total": total, "added": len(current), "unchanged": 0, "deleted": 0}
    before = pc.unique(previous["chunk_id"])
    unchanged = pc.sum(pc.is_in(current, value_set=before)).as_py() or 0
    return {"total": total, "added": len(current) - unchanged, "unchanged": unchanged, "deleted": len(before) - unchanged}


def _result(counts: dict[str, int], chunked: int, max_tokens: int, overlap: int, started: float, *, rewritten: bool):
    return dg.MaterializeResult(
        metadata={
            **counts,
            "documents_chunked": chunked,
            "max_tokens": max_tokens,
            "overlap_tokens": overlap,
            "rewritten": rewritten,
            "seconds": round(time.perf_counter() - started, 3),
            "dagster/row_count": counts["total"],
        }
    )
