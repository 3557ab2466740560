"""A run that dies during embedding resumes without paying again for batches that had finished,
and the offline embedder drives the whole pipeline with no server at all."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import dagster as dg
import pytest

import orca_assets.embedding_store as store_module
from orca_core.embedder import BatchOutcome, ModelInfo
from orca_resources.errors import EmbedderUnavailable
from orca_resources.hashing_embedder import HashingEmbedderResource
from tests.documents_fixture import write_collection
from tests.pipeline_helpers import Pipeline, check_results, failure_message, metadata


class DyingEmbedder:
    """Delegates to a real embedder and loses the server after `batches_before_death` batches."""

    def __init__(self, inner: HashingEmbedderResource, batches_before_death: int, error: Exception | None = None):
        self.inner = inner
        self.error = error or EmbedderUnavailable("connection reset by peer (staged)")
        self.batch_size = inner.batch_size
        self.batches_before_death = batches_before_death
        self.inputs = 0

    def model_info(self) -> ModelInfo:
        return self.inner.model_info()

    def embed_query(self, text: str):
        return self.inner.embed_query(text)

    def embed_batches(self, batches: Iterable[Sequence[str]], kind="document") -> Iterator[BatchOutcome]:
        for number, outcome in enumerate(self.inner.embed_batches(batches, kind), start=1):
            if number > self.batches_before_death:
                raise self.error
            self.inputs += len(outcome)
            yield outcome


@pytest.fixture
def pipeline(tmp_path) -> Pipeline:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    return Pipeline(home=tmp_path / "orca", collection="docs", instance=instance)


def test_crashed_run_resumes_from_persisted_batches(pipeline):
    write_collection(pipeline.inbox)
    hashing = HashingEmbedderResource(dimensions=64, batch_size=2)
    dying = DyingEmbedder(hashing, batches_before_death=2)
    crashed = pipeline.run(dying, chunk_tokens=32)
    assert not crashed.success
    assert "connection reset" in failure_message(crashed)
    assert not pipeline.index_path.exists()
    assert dying.inputs == 4

    resumed = pipeline.run(hashing, chunk_tokens=32)
    assert resumed.success, failure_message(resumed)
    rows = pipeline.index().num_rows
    embedded = metadata(resumed, "embeddings")
    assert embedded["reused"] == 4
    assert embedded["inputs_sent"] == rows - 4
    assert all(check_results(resumed).values())


def test_a_run_stopped_by_any_error_keeps_its_finished_batches(pipeline):
    # Batches wait in memory for up to a second before they are written (orca_assets/embedding_store.py);
    # whatever stops the step, they are written on the way out.
    write_collection(pipeline.inbox)
    hashing = HashingEmbedderResource(dimensions=64, batch_size=2)
    crashed = pipeline.run(DyingEmbedder(hashing, 3, RuntimeError("a bug in the embedder (staged)")), chunk_tokens=32)
    assert not crashed.success and "a bug in the embedder" in failure_message(crashed)
    resumed = pipeline.run(hashing, chunk_tokens=32)
    assert resumed.success, failure_message(resumed)
    assert metadata(resumed, "embeddings")["reused"] == 6


def test_a_part_torn_by_a_power_loss_is_skipped_and_its_batch_embedded_again(pipeline, monkeypatch):
    # Parts are not fsynced (orca_assets/embedding_store.py): after a power loss the newest may be cut short.
    monkeypatch.setattr(store_module, "PART_SECONDS", 0.0)  # a part per batch, so that one of two is torn
    write_collection(pipeline.inbox)
    hashing = HashingEmbedderResource(dimensions=64, batch_size=2)
    assert not pipeline.run(DyingEmbedder(hashing, batches_before_death=2), chunk_tokens=32).success
    parts = sorted((pipeline.home / "warehouse" / "docs" / "embeddings.parts").rglob("part-*.arrow"))
    assert len(parts) == 2
    parts[-1].write_bytes(parts[-1].read_bytes()[:100])

    resumed = pipeline.run(hashing, chunk_tokens=32)
    assert resumed.success, failure_message(resumed)
    embedded = metadata(resumed, "embeddings")
    assert embedded["reused"] == 2  # the intact part only
    assert embedded["inputs_sent"] == pipeline.index().num_rows - 2
    assert all(check_results(resumed).values())
    assert not any((pipeline.home / "warehouse" / "docs" / "embeddings.parts").rglob("part-*"))


def test_hashing_embedder_names_its_model_in_the_index(pipeline):
    write_collection(pipeline.inbox)
    result = pipeline.run(HashingEmbedderResource())
    assert result.success, failure_message(result)
    index = pipeline.index()
    assert set(index["model"].to_pylist()) == {"orca-hashing-v1"}
    assert len(index["embedding"][0]) == 768
    assert all(check_results(result).values())
