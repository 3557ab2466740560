"""The store keeps vectors as raw float32 bytes, uncompressed, reads the float lists of earlier versions, and
gathers batches that follow a part closely into the next one."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import orca_assets.embedding_store as store_module
import orca_assets.index as index_module
from orca_assets.embedding_store import PARTS_DIR, STORE_FILE, EmbeddingStore, embedding_key
from orca_assets.stored_vectors import as_float_lists, as_vector_bytes, vector_matrix, vectors_to_arrow
from orca_resources.hashing_embedder import HashingEmbedderResource

INFO = HashingEmbedderResource(dimensions=8).model_info()


def parts(folder) -> list:
    return sorted((folder / PARTS_DIR).rglob("part-*.arrow"))


def test_bytes_and_float_lists_give_the_same_matrix():
    vectors = np.random.default_rng(3).standard_normal((5, 8)).astype(np.float32)
    raw = vectors_to_arrow(vectors)
    lists = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 8)
    assert raw.type == pa.binary(32)
    np.testing.assert_array_equal(vector_matrix(raw, 8), vectors)
    np.testing.assert_array_equal(vector_matrix(raw.slice(2, 2), 8), vectors[2:4])  # a slice keeps its offset
    np.testing.assert_array_equal(vector_matrix(lists, 8), vectors)
    np.testing.assert_array_equal(vector_matrix(pa.chunked_array([raw[:2], raw[2:]]), 8), vectors)
    np.testing.assert_array_equal(vector_matrix(as_vector_bytes(lists, 8), 8), vectors)
    assert as_float_lists(raw, 8).equals(lists)
    with pytest.raises(ValueError, match="not 4 float32"):
        vector_matrix(raw, 4)


def test_the_store_file_holds_uncompressed_bytes_without_dictionary_or_statistics(tmp_path):
    store = EmbeddingStore(tmp_path, INFO)
    store.append_batch(["a", "b"], np.eye(8, dtype=np.float32)[:2])
    store.compact({"a", "b"})
    column = pq.ParquetFile(tmp_path / STORE_FILE).metadata.row_group(0).column(1)
    assert column.path_in_schema == "embedding" and column.physical_type == "FIXED_LEN_BYTE_ARRAY"
    assert column.compression == "UNCOMPRESSED" and not column.is_stats_set
    assert not any("DICTIONARY" in encoding for encoding in column.encodings)
    assert pq.ParquetFile(tmp_path / STORE_FILE).metadata.row_group(0).column(0).compression == "ZSTD"


def test_a_store_and_a_part_of_float_lists_are_still_read(tmp_path):
    # As earlier versions wrote them: vectors as fixed_size_list<float32>, in the store and in a part.
    vectors = np.random.default_rng(4).standard_normal((3, 8)).astype(np.float32)
    schema = pa.schema([("key", pa.string()), ("embedding", pa.list_(pa.float32(), 8))]).with_metadata(
        EmbeddingStore(tmp_path, INFO).schema.metadata
    )
    lists = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 8)
    keys = [embedding_key(INFO.identity, text) for text in ("one", "two", "three")]
    pq.write_table(pa.table({"key": keys[:2], "embedding": lists[:2]}, schema=schema), tmp_path / STORE_FILE)
    part = tmp_path / PARTS_DIR / INFO.identity / "part-00000000000000000001-old-000001.arrow"
    part.parent.mkdir(parents=True)
    with pa.OSFile(str(part), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        writer.write_table(pa.table({"key": keys[2:], "embedding": lists[2:]}, schema=schema))

    store = EmbeddingStore(tmp_path, INFO)
    assert store.known_keys() == set(keys)
    store.compact(set(keys))
    table = pq.read_table(tmp_path / STORE_FILE)
    assert table.schema.field("embedding").type == pa.binary(32)
    np.testing.assert_array_equal(vector_matrix(table["embedding"], 8), vectors)

    # The index built from an old store has the contract's float lists with the same values.
    pq.write_table(pa.table({"key": keys[:2], "embedding": lists[:2]}, schema=schema), tmp_path / STORE_FILE)
    pq.write_table(pa.table({
        "chunk_id": ["c1", "c2"], "doc_id": ["d", "d"], "chunk_index": pa.array([0, 1], pa.int32()),
        "text": ["one", "two"], "source": ["s", "s"], "page": pa.array([None, None], pa.int32()),
        "section": pa.array([None, None], pa.string()), "title": pa.array([None, None], pa.string()),
        "metadata": ["{}", "{}"],
    }), tmp_path / "chunks.parquet")
    target = tmp_path / "index.parquet"
    index_module.write_index(tmp_path / "chunks.parquet", tmp_path / STORE_FILE, target)
    index = pq.read_table(target).sort_by("chunk_id")
    assert index.schema.field("embedding").type == pa.list_(pa.float32(), 8)
    np.testing.assert_array_equal(np.array(index["embedding"].to_pylist(), np.float32), vectors[:2])


def test_batches_that_follow_a_part_closely_share_the_next(tmp_path, monkeypatch):
    eye = np.eye(8, dtype=np.float32)
    store = EmbeddingStore(tmp_path, INFO, part_seconds=3600)
    store.append_batch(["a"], eye[:1])
    assert len(parts(tmp_path)) == 1  # the first batch is written at once
    store.append_batch(["b"], eye[1:2])
    store.append_batch(["c"], eye[2:3])
    assert len(parts(tmp_path)) == 1  # kept in memory, yet known and not compact
    assert store.known_keys() == {"a", "b", "c"}
    assert not store.is_compact_for({"a", "b", "c"})
    store.flush()
    assert len(parts(tmp_path)) == 2
    assert EmbeddingStore(tmp_path, INFO).known_keys() == {"a", "b", "c"}  # another reader sees them all

    monkeypatch.setattr(store_module, "PART_ROWS", 3)  # the memory bound writes a part however recent the last
    store.append_batch(["d", "e"], eye[3:5])
    assert len(parts(tmp_path)) == 2
    store.append_batch(["f"], eye[5:6])
    assert len(parts(tmp_path)) == 3

    slow = EmbeddingStore(tmp_path, INFO, part_seconds=0.05)  # batches further apart than that: a part each
    slow.append_batch(["g"], eye[6:7])
    time.sleep(0.06)
    slow.append_batch(["h"], eye[7:8])
    assert len(parts(tmp_path)) == 5
    stored = store.compact({"a", "b", "c", "d", "e", "f", "g", "h"})
    assert sorted(stored["key"].to_pylist()) == ["a", "b", "c", "d", "e", "f", "g", "h"]
