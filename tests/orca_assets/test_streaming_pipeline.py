"""Unchanged runs leave the published files alone; the streamed index and compaction give what the in-memory
versions gave; a crash while streaming never replaces the published index."""

from __future__ import annotations

import os

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import orca_assets.checks as checks_module
import orca_assets.embedding_store as store_module
import orca_assets.index as index_module
from orca_assets.embedding_store import PARTS_DIR, STORE_FILE, EmbeddingStore, embedding_key
from orca_assets.stored_vectors import vector_matrix
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.warehouse import read_footer, write_parquet_atomic
from tests.documents_fixture import write_collection
from tests.pipeline_helpers import Pipeline, check_results, failure_message, metadata

FILES = ["documents.parquet", "chunks.parquet", "embeddings.parquet", "embedding_index.parquet"]


@pytest.fixture
def pipeline(tmp_path) -> Pipeline:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    return Pipeline(home=tmp_path / "orca", collection="docs", instance=instance)


def identities(pipeline: Pipeline) -> dict[str, tuple[int, int]]:
    folder = pipeline.home / "warehouse" / pipeline.collection
    return {name: (os.stat(folder / name).st_ino, os.stat(folder / name).st_mtime_ns) for name in FILES}


def test_unchanged_run_rewrites_nothing_and_reports_truthfully(pipeline):
    write_collection(pipeline.inbox)
    embedder = HashingEmbedderResource(dimensions=32)
    first = pipeline.run(embedder, chunk_tokens=32)
    assert first.success, failure_message(first)
    before, published = identities(pipeline), pipeline.index()

    again = pipeline.run(embedder, chunk_tokens=32)
    assert again.success, failure_message(again)
    assert identities(pipeline) == before  # same inode and mtime: not one file was written again
    assert pipeline.index().equals(published)
    assert metadata(again, "documents")["rewritten"] is False
    assert metadata(again, "documents")["unchanged"] == 5
    assert metadata(again, "chunks")["rewritten"] is False
    assert metadata(again, "chunks")["total"] == metadata(first, "chunks")["total"]
    assert metadata(again, "embeddings")["store_rewritten"] is False
    assert metadata(again, "embeddings")["inputs_sent"] == 0
    index_meta = metadata(again, "embedding_index")
    assert index_meta["rewritten"] is False
    assert index_meta["dagster/row_count"] == published.num_rows
    assert index_meta["documents"] == metadata(first, "embedding_index")["documents"] == 5
    assert all(check_results(again).values())


def test_delete_after_an_unchanged_run_still_reaches_the_index(pipeline):
    paths = write_collection(pipeline.inbox)
    embedder = HashingEmbedderResource(dimensions=32)
    assert pipeline.run(embedder).success
    assert pipeline.run(embedder).success
    before = identities(pipeline)
    paths["bees.html"].unlink()
    result = pipeline.run(embedder)
    assert result.success, failure_message(result)
    after = identities(pipeline)
    assert all(after[name] != before[name] for name in FILES)  # every stage saw the change
    assert "bees.html" not in set(pipeline.index()["doc_id"].to_pylist())
    assert metadata(result, "chunks")["deleted"] > 0
    assert metadata(result, "embedding_index")["rewritten"] is True
    assert all(check_results(result).values())


def test_forced_run_rewrites_the_index_and_a_model_change_reembeds(pipeline):
    write_collection(pipeline.inbox)
    small = HashingEmbedderResource(dimensions=32)
    assert pipeline.run(small).success
    before = identities(pipeline)
    forced = pipeline.run(small, force=True)
    assert forced.success
    assert metadata(forced, "embeddings")["inputs_sent"] == pipeline.index().num_rows
    assert identities(pipeline)["embedding_index.parquet"] != before["embedding_index.parquet"]
    other = pipeline.run(HashingEmbedderResource(dimensions=48))
    assert other.success, failure_message(other)
    assert metadata(other, "embeddings")["inputs_sent"] > 0
    assert len(pipeline.index()["embedding"][0]) == 48


def test_a_served_index_damaged_in_a_late_batch_is_caught_and_rebuilt(pipeline, monkeypatch):
    monkeypatch.setattr(checks_module, "ROW_GROUP_ROWS", 3)  # several batches even for a small index
    write_collection(pipeline.inbox)
    embedder = HashingEmbedderResource(dimensions=16)
    assert pipeline.run(embedder, chunk_tokens=32).success
    index = pipeline.index()
    assert index.num_rows > 6
    vectors = [list(v) for v in index["embedding"].to_pylist()]
    vectors[-1] = [0.0] * 16
    column = pa.array(vectors, index.schema.field("embedding").type)
    corrupted = index.set_column(index.schema.get_field_index("embedding"), index.schema.field("embedding"), column)
    # Same footer (same orca.inputs): only the checks can tell that the served file is no longer what was built.
    write_parquet_atomic(corrupted.replace_schema_metadata(index.schema.metadata), pipeline.index_path)
    result = pipeline.run(embedder, chunk_tokens=32)
    assert result.success, failure_message(result)
    published = metadata(result, "embedding_index")
    assert (published["rewritten"], published["repaired"]) == (True, True)
    assert set(check_results(result).values()) == {True}
    assert pipeline.index().sort_by("chunk_id").equals(index.sort_by("chunk_id"))


def reference_index(chunk_table: pa.Table, store: pa.Table) -> set[tuple]:
    """The rows the former in-memory build_index produced (last duplicate of a key winning), as a set."""
    identity = store.schema.metadata[b"identity"].decode()
    position = {key: row for row, key in enumerate(store["key"].to_pylist())}
    vectors = vector_matrix(store["embedding"], int(store.schema.metadata[b"dimensions"])).tolist()
    rows = set()
    for chunk in chunk_table.to_pylist():
        found = position.get(embedding_key(identity, chunk["text"]))
        if found is not None:
            rows.add((chunk["chunk_id"], chunk["doc_id"], chunk["chunk_index"], chunk["text"],
                      tuple(vectors[found]), store.schema.metadata[b"model"].decode(), chunk["source"],
                      chunk["page"], chunk["section"], chunk["title"], chunk["metadata"]))
    return rows


def test_streamed_index_equals_the_in_memory_join(tmp_path, monkeypatch):
    monkeypatch.setattr(index_module, "ROW_GROUP_ROWS", 4)  # the store is read in many small batches
    info = HashingEmbedderResource(dimensions=8).model_info()
    texts = [f"text {i % 17}" for i in range(60)]  # repeated texts: one vector serves several chunks
    chunk_table = pa.table({
        "chunk_id": [f"c{i}" for i in range(60)], "doc_id": [f"d{i // 7}" for i in range(60)],
        "chunk_index": pa.array([i % 7 for i in range(60)], pa.int32()), "text": pa.array(texts, pa.large_string()),
        "source": [f"inbox/x/d{i // 7}" for i in range(60)], "page": pa.array([i % 3 + 1 for i in range(60)], pa.int32()),
        "section": [f"S{i % 4}" for i in range(60)], "title": [f"T{i // 7}" for i in range(60)],
        "metadata": ['{"n": %d}' % (i // 7) for i in range(60)],
    })
    pq.write_table(chunk_table, tmp_path / "chunks.parquet")
    store = EmbeddingStore(tmp_path, info)
    distinct = sorted(set(texts))[:-2]  # two texts have no vector: their chunks are left out
    rng = np.random.default_rng(1)
    for start in range(0, len(distinct), 5):
        batch = distinct[start : start + 5]
        store.append_batch([embedding_key(info.identity, t) for t in batch], rng.random((len(batch), 8)))
    store.compact({embedding_key(info.identity, t) for t in distinct})
    target = tmp_path / "embedding_index.parquet"
    rows, documents = index_module.write_index(tmp_path / "chunks.parquet", tmp_path / STORE_FILE, target, "stamp")
    index = pq.read_table(target)
    expected = index_module.INDEX_SCHEMA.set(4, pa.field("embedding", pa.list_(pa.float32(), 8)))
    assert index.schema.remove_metadata() == expected  # vectors of one length: fixed_size_list<float32, 8>
    assert read_footer(target).metadata["orca.inputs"] == "stamp"
    assert read_footer(target).metadata["orca.model"] == info.name
    expected = reference_index(chunk_table, pq.read_table(tmp_path / STORE_FILE))
    found = {(r["chunk_id"], r["doc_id"], r["chunk_index"], r["text"], tuple(r["embedding"]), r["model"], r["source"],
              r["page"], r["section"], r["title"], r["metadata"])
             for r in index.to_pylist()}
    assert found == expected and rows == index.num_rows == len(expected) < 60
    assert documents == len({row[1] for row in expected})


def test_crash_while_streaming_the_index_keeps_the_published_one(pipeline, monkeypatch):
    write_collection(pipeline.inbox)
    embedder = HashingEmbedderResource(dimensions=16)
    assert pipeline.run(embedder, chunk_tokens=32).success
    published = pipeline.index_path.read_bytes()
    (pipeline.inbox / "new.txt").write_text("A new document about glaciers and fjords.", encoding="utf-8")
    monkeypatch.setattr(index_module, "ROW_GROUP_ROWS", 2)
    calls = []

    def dying(*args):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk went away (staged)")
        return real_rows(*args)

    real_rows = index_module._rows
    monkeypatch.setattr(index_module, "_rows", dying)
    result = pipeline.run(embedder, chunk_tokens=32)
    assert not result.success and "disk went away" in failure_message(result)
    assert pipeline.index_path.read_bytes() == published
    assert not [p for p in pipeline.index_path.parent.iterdir() if p.name.endswith(".tmp")]


def test_streamed_compaction_dedupes_filters_and_drops_stale_identities(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "ROW_GROUP_ROWS", 3)
    info = HashingEmbedderResource(dimensions=8).model_info()
    stale = EmbeddingStore(tmp_path, HashingEmbedderResource(dimensions=12).model_info())
    stale.append_batch(["old"], np.ones((1, 12)))
    store = EmbeddingStore(tmp_path, info)
    eye = np.eye(8, dtype=np.float32)
    store.append_batch(["a", "b", "gone"], eye[:3])
    store.compact({"a", "b", "gone"})
    first_version = store.version()
    store.append_batch(["c", "a"], np.stack([eye[3], eye[3]]))  # "a" again (a resumed batch): first one wins
    store.append_batch(["d", "c"], np.stack([eye[0], eye[1]]))
    assert not store.is_compact_for({"a", "b", "c", "d"})
    stored = store.compact({"a", "b", "c", "d"})
    assert sorted(stored["key"].to_pylist()) == ["a", "b", "c", "d"]
    table = pq.read_table(tmp_path / STORE_FILE)
    vectors = dict(zip(table["key"].to_pylist(), vector_matrix(table["embedding"], 8).tolist()))
    assert table.num_rows == 4 and set(vectors) == {"a", "b", "c", "d"}
    assert vectors["a"] == eye[0].tolist() and vectors["c"] == eye[3].tolist() and vectors["d"] == eye[0].tolist()
    assert store.version() not in (None, first_version)
    assert table.schema.metadata[b"identity"] == info.identity.encode()
    assert not (tmp_path / PARTS_DIR).exists()  # parts folded in, the other identity's parts dropped
    assert store.is_compact_for({"a", "b", "c", "d"})
    assert not store.is_compact_for({"a", "b", "c"})
    assert store.known_keys() == {"a", "b", "c", "d"}


def test_streamed_files_keep_row_groups_bounded_and_vectors_without_dictionary(tmp_path):
    from orca_resources.warehouse import StreamWriter, stream_parquet_atomic

    schema = pa.schema([("key", pa.string()), ("embedding", pa.list_(pa.float32(), 4))])
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(4 * 50, dtype=np.float32)), 4)
    one_batch = pa.RecordBatch.from_arrays([pa.array([str(i) for i in range(50)]), vectors], schema=schema)
    target = tmp_path / "vectors.parquet"
    with stream_parquet_atomic(target, schema) as out:
        out.rows = 8  # one batch of 50 rows written at once (a store batch whose vector many chunks share)
        assert isinstance(out, StreamWriter)
        out.write(one_batch)
    metadata = pq.ParquetFile(target).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sum(sizes) == 50 and len(sizes) > 1 and max(sizes) < 16
    assert pq.read_table(target).equals(pa.Table.from_batches([one_batch]))
    encodings = {metadata.row_group(0).column(i).path_in_schema: metadata.row_group(0).column(i).encodings
                 for i in range(metadata.num_columns)}
    assert "RLE_DICTIONARY" in encodings["key"]
    assert not any("DICTIONARY" in e for e in encodings["embedding.list.element"])
