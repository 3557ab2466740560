"""The embedding assets end to end against the Ollama stand-in on a real port: incremental runs, deletes,
model changes, and faults that must end in a retry that succeeds or a clear failure with the index untouched."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest

from orca_resources.ollama import OllamaResource
from tests.documents_fixture import write_collection
from tests.pipeline_helpers import Pipeline, check_results, failure_message, index_vectors, metadata, warning_checks

PREFIX = "search_document: "
CONTRACT_COLUMNS = ["chunk_id", "doc_id", "chunk_index", "text", "embedding", "model", "source", "page", "section", "title", "metadata"]


@pytest.fixture
def pipeline(tmp_path) -> Pipeline:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    return Pipeline(home=tmp_path / "orca", collection="docs", instance=instance)


def ollama(standin, **overrides) -> OllamaResource:
    settings = dict(host=standin.url, batch_size=3, max_retries=3, backoff_initial=0.01, backoff_max=0.05)
    settings.update(overrides)
    return OllamaResource(**settings)


def expected_vectors(standin, table, model="nomic-embed-text") -> np.ndarray:
    return np.stack([standin.vector_for(model, PREFIX + text) for text in table["text"].to_pylist()])


def test_collection_materializes_end_to_end(pipeline, ollama_standin):
    write_collection(pipeline.inbox)
    (pipeline.inbox / "broken.txt").write_bytes(b"\x00\x01binary\x00")
    result = pipeline.run(ollama(ollama_standin))
    assert result.success, failure_message(result)

    index = pipeline.index()
    assert index.column_names == CONTRACT_COLUMNS
    assert str(index.schema.field("chunk_index").type) == "int32"
    assert set(index["doc_id"].to_pylist()) == {"guide.md", "ports/harbour.txt", "bees.html", "volcano.json", "tokyo.txt"}
    assert set(index["model"].to_pylist()) == {"nomic-embed-text"}
    assert "alert" not in " ".join(index["text"].to_pylist())
    # Each row carries exactly the vector the server returned for that chunk's text: a shuffle would fail here.
    np.testing.assert_array_equal(index_vectors(index), expected_vectors(ollama_standin, index))
    assert len(set(index["chunk_id"].to_pylist())) == index.num_rows

    docs = metadata(result, "documents")
    assert (docs["added"], docs["failed"], docs["deleted"]) == (5, 1, 0)
    assert metadata(result, "embeddings")["inputs_sent"] == ollama_standin.stats.inputs_embedded > 0
    assert metadata(result, "embedding_index")["dagster/row_count"] == index.num_rows
    assert warning_checks(result) == {"failed_documents_check": False}  # broken.txt: a warning, the run succeeds
    assert check_results(result) == {
        "embedding_dimension_check": True,
        "embedding_values_check": True,
        "chunk_coverage_check": True,
        "deleted_documents_check": True,
    }
    failed = pq.read_table(pipeline.home / "warehouse/docs/documents.parquet").to_pylist()
    reasons = {row["doc_id"]: row["error"] for row in failed if row["status"] == "failed"}
    assert "binary" in reasons["broken.txt"]


def test_second_run_sends_nothing_and_edit_sends_only_its_chunks(pipeline, ollama_standin):
    paths = write_collection(pipeline.inbox)
    resource = ollama(ollama_standin)
    assert pipeline.run(resource).success
    before = pipeline.index()

    ollama_standin.reset_stats()
    again = pipeline.run(resource)
    assert again.success
    assert metadata(again, "embeddings")["inputs_sent"] == 0
    assert ollama_standin.stats.inputs_embedded == 0
    assert metadata(again, "documents")["unchanged"] == 5

    paths["ports/harbour.txt"].write_text("The lighthouse keeper writes down every passing ship.\n", encoding="utf-8")
    ollama_standin.reset_stats()
    edited = pipeline.run(resource)
    assert edited.success
    after = pipeline.index()
    harbour_texts = {PREFIX + t for t, d in zip(after["text"].to_pylist(), after["doc_id"].to_pylist()) if d == "ports/harbour.txt"}
    assert set(ollama_standin.stats.inputs) == harbour_texts
    assert metadata(edited, "documents")["updated"] == 1
    untouched = before.filter(dg_not_doc(before, "ports/harbour.txt"))
    assert set(untouched["chunk_id"].to_pylist()) <= set(after["chunk_id"].to_pylist())


def dg_not_doc(table, doc_id):
    import pyarrow.compute as pc

    return pc.not_equal(table["doc_id"], doc_id)


def test_deleted_document_leaves_the_index(pipeline, ollama_standin):
    paths = write_collection(pipeline.inbox)
    resource = ollama(ollama_standin)
    assert pipeline.run(resource).success
    paths["bees.html"].unlink()
    ollama_standin.reset_stats()
    result = pipeline.run(resource)
    assert result.success
    assert "bees.html" not in set(pipeline.index()["doc_id"].to_pylist())
    assert metadata(result, "documents")["deleted"] == 1
    assert ollama_standin.stats.inputs_embedded == 0
    assert all(check_results(result).values())


def test_model_or_digest_change_reembeds_everything(pipeline, ollama_standin):
    write_collection(pipeline.inbox)
    assert pipeline.run(ollama(ollama_standin)).success
    rows = pipeline.index().num_rows

    ollama_standin.add_model("other-embed", dimensions=32)
    ollama_standin.reset_stats()
    result = pipeline.run(ollama(ollama_standin, model="other-embed"))
    assert result.success, failure_message(result)
    index = pipeline.index()
    assert metadata(result, "embeddings")["inputs_sent"] == rows
    assert set(index["model"].to_pylist()) == {"other-embed"}
    assert len(index["embedding"][0]) == 32
    # other-embed has no task prefix.
    np.testing.assert_array_equal(
        index_vectors(index), np.stack([ollama_standin.vector_for("other-embed", t) for t in index["text"].to_pylist()])
    )

    ollama_standin.set_digest("other-embed", "f" * 64)
    ollama_standin.reset_stats()
    repulled = pipeline.run(ollama(ollama_standin, model="other-embed"))
    assert metadata(repulled, "embeddings")["inputs_sent"] == rows


def test_force_reembeds_everything(pipeline, ollama_standin):
    write_collection(pipeline.inbox)
    resource = ollama(ollama_standin)
    assert pipeline.run(resource).success
    rows = pipeline.index().num_rows
    forced = pipeline.run(resource, force=True)
    assert forced.success
    assert metadata(forced, "embeddings")["inputs_sent"] == rows


def test_missing_model_fails_clearly_and_keeps_the_index(pipeline, ollama_standin):
    write_collection(pipeline.inbox)
    assert pipeline.run(ollama(ollama_standin)).success
    published = pipeline.index_path.read_bytes()
    (pipeline.inbox / "new.txt").write_text("A new document about glaciers.", encoding="utf-8")
    result = pipeline.run(ollama(ollama_standin, model="absent-model"))
    assert not result.success
    assert "ollama pull absent-model" in failure_message(result)
    assert pipeline.index_path.read_bytes() == published


def test_busy_server_is_retried(pipeline, ollama_standin):
    write_collection(pipeline.inbox)
    ollama_standin.fail_next(503, {"error": "server busy, please try again.  maximum pending requests exceeded"}, times=2)
    result = pipeline.run(ollama(ollama_standin))
    assert result.success, failure_message(result)
    np.testing.assert_array_equal(index_vectors(pipeline.index()), expected_vectors(ollama_standin, pipeline.index()))


def test_nan_vector_is_retried(pipeline, ollama_standin):
    write_collection(pipeline.inbox)
    ollama_standin.corrupt_next("nan")
    result = pipeline.run(ollama(ollama_standin))
    assert result.success, failure_message(result)
    assert np.isfinite(index_vectors(pipeline.index())).all()
    assert all(check_results(result).values())


@pytest.mark.parametrize("policy", ["truncate", "fail"])
def test_too_long_chunk_is_isolated(pipeline, ollama_standin, policy):
    write_collection(pipeline.inbox)
    # The model claims a long context but really takes less: the reported failure mode.
    ollama_standin.real_context_tokens = 40
    result = pipeline.run(ollama(ollama_standin, too_long_policy=policy, batch_size=8))
    assert result.success, failure_message(result)
    embedded = metadata(result, "embeddings")
    index = pipeline.index()
    if policy == "truncate":
        assert embedded["truncated"] >= 1 and embedded["failed"] == 0
    else:
        assert embedded["failed"] >= 1 and embedded["truncated"] == 0
        assert all(len(PREFIX + t) <= 160 for t in index["text"].to_pylist())
    assert all(check_results(result).values())


def test_refused_connection_fails_clearly_and_keeps_the_index(pipeline, ollama_standin):
    write_collection(pipeline.inbox)
    assert pipeline.run(ollama(ollama_standin)).success
    published = pipeline.index_path.read_bytes()
    (pipeline.inbox / "more.txt").write_text("Another document about rivers and deltas.", encoding="utf-8")
    url = ollama_standin.url
    ollama_standin.stop()
    result = pipeline.run(OllamaResource(host=url, max_retries=1, backoff_initial=0.01, backoff_max=0.02))
    assert not result.success
    assert "unavailable" in failure_message(result).lower() or "connect" in failure_message(result).lower()
    assert pipeline.index_path.read_bytes() == published
