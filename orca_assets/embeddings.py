"""The `embeddings` asset: vectors for every current chunk, computed only for what is new to the embedder."""


import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa

from orca_assets.chunks import chunks
from orca_assets.embedding_store import EmbeddingStore, embedding_key
from orca_assets.partitions import EMBEDDING_GROUP, OLLAMA_POOL, collections_partitions
from orca_assets.unchanged import file_identity, forget, recall, remember
from orca_assets.writer_lock import one_writer_per_collection
from orca_core.embedder import Embedder
from orca_core.layout import CHUNKS_FILE, FAILED_CHUNKS_FILE, PARTS_DIR, STORE_FILE
from orca_resources.errors import EmbedderError
from orca_resources.warehouse import WarehouseResource


class EmbeddingsConfig(dg.Config):
    """Run configuration of the `embeddings` asset."""

    force: bool = False  # re-embed every chunk, ignoring stored vectors


def _distinct_keys(identity: str, texts: pa.ChunkedArray, slice_rows: int = 8192) -> dict[str, int]:
    """Embedding key of every distinct text -> the row of its first chunk, in chunk order.

    Converts the texts to Python a slice at a time, so only the keys (not every text) stay in memory.
    """
    keys: dict[str, int] = {}
    for start in range(0, len(texts), slice_rows):
        for offset, text in enumerate(texts.slice(start, slice_rows).to_pylist()):
            keys.setdefault(embedding_key(identity, text), start + offset)
    return keys


PROGRESS_SECONDS = 1.0


def embeddings_key(identity: str, folder: Path) -> list:
    """The key `embeddings` verifies its store under: the embedder's identity, the chunks, the store and the
    failed chunks (none failed when it was verified)."""
    return [identity, *(file_identity(folder / name) for name in (CHUNKS_FILE, STORE_FILE, FAILED_CHUNKS_FILE))]


def _text_batches(texts: pa.ChunkedArray, rows: list[int], size: int, taken: int = 4096) -> Iterator[list[str]]:
    """The texts at `rows`, `size` at a time, taken from Arrow only as the embedder asks for them."""
    # One contiguous array (the texts are in memory already): `take` on a column of many chunks costs about
    # 0.7 ms per batch, 20x a take on one chunk. And `taken` rows per take, not one batch: a take costs about
    # 0.3 ms however few rows it takes, as much as 32 inputs cost in the rest of the step.
    flat = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    taken = max(taken - taken % size, size)
    for start in range(0, len(rows), taken):
        block = flat.take(pa.array(rows[start : start + taken], pa.int64())).to_pylist()
        for offset in range(0, len(block), size):
            yield block[offset : offset + size]


@dg.asset(
    partitions_def=collections_partitions,
    deps=[chunks],
    group_name=EMBEDDING_GROUP,
    kinds={"ollama", "parquet"},
    pool=OLLAMA_POOL,  # the instance's limit on this pool caps embedding steps sharing the Ollama servers
    description="One vector per distinct chunk text for the current embedder; only new or changed chunks are sent.",
)
@one_writer_per_collection
def embeddings(
    context: dg.AssetExecutionContext,
    config: EmbeddingsConfig,
    embedder: dg.ResourceParam[Embedder],
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    collection = context.partition_key
    info = embedder.model_info()
    folder = warehouse.collection_dir(collection)
    store = EmbeddingStore(folder, info, saved=lambda path: warehouse.saved(collection, path))

    def verified_key() -> list:
        return embeddings_key(info.identity, folder)

    if config.force:
        context.log.info("force: forgetting every stored vector of this collection")
        store.clear()
    elif not (folder / PARTS_DIR).exists() and (recalled := recall(folder, "embeddings", verified_key())) is not None:
        # This model's store was found to hold exactly these very chunks' vectors, with none failed: still so.
        return _unchanged(context, collection, info, recalled["keys"])
    table = warehouse.read(collection, CHUNKS_FILE, columns=["text"])
    if table is None:
        raise dg.Failure(f"no chunks table for {collection!r}: materialize `chunks` first")
    texts = table["text"]
    keys = _distinct_keys(info.identity, texts)  # key -> row of its first chunk; texts stay in Arrow
    known = store.known_keys()
    missing_keys = [key for key in keys if key not in known]
    batch_count = -(-len(missing_keys) // embedder.batch_size)
    context.log.info(
        f"{collection}: {len(keys)} distinct chunks, {len(keys) - len(missing_keys)} already embedded with "
        f"{info.name} ({info.digest[:19]}), {len(missing_keys)} to embed in {batch_count} batches"
    )

    failed: dict[str, str] = {}
    truncated = 0
    sent = 0
    started = time.perf_counter()
    logged_at = float("-inf")  # the first batch is always told
    try:
        batches = _text_batches(texts, [keys[key] for key in missing_keys], embedder.batch_size)
        outcomes = embedder.embed_batches(batches, kind="document")
        for number, outcome in enumerate(outcomes, start=1):
            offset = (number - 1) * embedder.batch_size
            batch_keys = missing_keys[offset : offset + len(outcome)]
            if outcome.failed:
                ok = [i for i in range(len(batch_keys)) if i not in outcome.failed]
                store.append_batch([batch_keys[i] for i in ok], outcome.vectors[ok] if ok else np.empty((0, 0)))
            else:
                store.append_batch(batch_keys, outcome.vectors)
            failed.update({batch_keys[i]: reason for i, reason in outcome.failed.items()})
            truncated += len(outcome.truncated)
            sent += len(batch_keys)
            elapsed = time.perf_counter() - started
            if number == batch_count or elapsed - logged_at >= PROGRESS_SECONDS:
                # Each log line is an event in the instance's storage (a few ms): one per batch would cost
                # more than embedding the batch at a fast server's rate, so progress is told at most every second.
                logged_at = elapsed
                context.log.info(
                    f"batch {number}/{batch_count}: {sent}/{len(missing_keys)} inputs, {len(failed)} failed, "
                    f"{sent / max(elapsed, 1e-9):.1f} inputs/s"
                )
    except EmbedderError as error:
        store.flush()  # the batches that finished are kept for the next run
        raise dg.Failure(
            description=f"embedding failed after {sent} of {len(missing_keys)} inputs: {error}",
            metadata={"error": type(error).__name__, "inputs_sent": sent},
        ) from error
    except BaseException:
        store.flush()  # a cancelled or failing run keeps its finished batches too
        raise
    seconds = time.perf_counter() - started

    wanted = set(keys) - set(failed)
    # Nothing new, nothing gone, no part to fold in: the compacted file is already the answer, and leaving
    # it untouched keeps its version stamp, so the index sees its inputs unchanged too.
    rewritten = bool(sent) or not store.is_compact_for(wanted, known)
    if rewritten:
        stored_rows = store.compact(wanted).num_rows
    else:
        store.drop_stale_identities()
        stored_rows = len(wanted)
    failed_texts = {key: texts[keys[key]].as_py() for key in failed}
    _write_failures(warehouse, collection, failed, failed_texts)
    for failed_key, reason in list(failed.items())[:20]:
        context.log.warning(f"chunk not embedded: {reason}: {failed_texts[failed_key][:80]!r}")
    if failed or (folder / PARTS_DIR).exists():
        forget(folder, "embeddings")  # failed chunks are sent again on every run
    else:
        remember(folder, "embeddings", verified_key(), {"keys": stored_rows})
    return dg.MaterializeResult(
        metadata={
            "inputs_sent": sent,
            "reused": len(keys) - len(missing_keys),
            "failed": len(failed),
            "truncated": truncated,
            "embed_seconds": round(seconds, 3),
            "inputs_per_second": round(sent / seconds, 1) if sent and seconds > 0 else 0.0,
            "model": info.name,
            "digest": info.digest,
            "dimensions": info.dimensions,
            "store_rewritten": rewritten,
            "dagster/row_count": stored_rows,
        }
    )


def _unchanged(context, collection: str, info, keys: int) -> dg.MaterializeResult:
    """The report of a run that found every distinct chunk already embedded, the store compact and nothing failed."""
    context.log.info(
        f"{collection}: {keys} distinct chunks, {keys} already embedded with {info.name} ({info.digest[:19]}), "
        f"0 to embed in 0 batches"
    )
    return dg.MaterializeResult(
        metadata={
            "inputs_sent": 0,
            "reused": keys,
            "failed": 0,
            "truncated": 0,
            "embed_seconds": 0.0,
            "inputs_per_second": 0.0,
            "model": info.name,
            "digest": info.digest,
            "dimensions": info.dimensions,
            "store_rewritten": False,
            "dagster/row_count": keys,
        }
    )


def _write_failures(warehouse: WarehouseResource, collection: str, failed: dict[str, str], texts: dict[str, str]):
    footer = warehouse.footer(collection, FAILED_CHUNKS_FILE)
    if not failed and footer is not None and footer.num_rows == 0:
        return  # still no failures: rewriting the same empty file would only cost an fsync
    table = pa.table(
        {
            "key": pa.array(list(failed), pa.string()),
            "reason": pa.array(list(failed.values()), pa.string()),
            "text": pa.array([texts[key] for key in failed], pa.large_string()),
        }
    )
    warehouse.write(collection, FAILED_CHUNKS_FILE, table)
