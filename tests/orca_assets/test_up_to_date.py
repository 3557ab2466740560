"""A collection is found up to date exactly when a run would change nothing (orca_assets/up_to_date.py): every
change a run would act on, and every doubt about the last run's end, is a reason to run."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from orca_assets.chunks import ChunksConfig
from orca_assets.up_to_date import stale_reason
from orca_core.tags import PARTITION_TAG
from orca_resources.hashing_embedder import HashingEmbedder, HashingEmbedderResource
from orca_resources.warehouse import WarehouseResource
from tests.documents_fixture import write_collection
from tests.pipeline_helpers import Pipeline

EMBEDDER = HashingEmbedderResource()


def reason(pipeline: Pipeline, **kwargs) -> str | None:
    info = kwargs.pop("info", EMBEDDER.embedder().model_info())
    return stale_reason(pipeline.collection, pipeline.warehouse, info, pipeline.instance, **kwargs)


@pytest.fixture
def current(pipeline: Pipeline) -> Pipeline:
    """The collection materialized once, successfully: up to date."""
    write_collection(pipeline.inbox)
    assert "never materialized" in reason(pipeline)
    assert pipeline.run(EMBEDDER).success
    assert reason(pipeline) is None
    return pipeline


def test_a_second_run_changes_nothing_and_leaves_it_up_to_date(current):
    result = current.run(EMBEDDER)
    assert result.success
    assert reason(current) is None


@pytest.mark.parametrize("change", ["add", "edit", "touch", "delete"])
def test_any_change_in_the_inbox_is_a_reason(current, change):
    target = current.inbox / "guide.md"
    if change == "add":
        (current.inbox / "new.txt").write_text("A new note about tides.\n")
    elif change == "edit":
        target.write_text(target.read_text() + "\nOne more line.\n")
    elif change == "touch":
        stat = target.stat()
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    else:
        target.unlink()
    assert "inbox changed" in reason(current)
    assert current.run(EMBEDDER).success
    assert reason(current) is None


def test_another_model_or_other_chunk_settings_are_reasons(current):
    assert "chunks" in reason(current, info=HashingEmbedder(384).model_info())
    assert "chunks" in reason(current, chunks_config=ChunksConfig(max_tokens=64, overlap_tokens=8))


def test_a_served_index_replaced_since_its_run_is_a_reason(current):
    index = current.index_path
    data = index.read_bytes()
    index.unlink()
    index.write_bytes(data)  # the same bytes, another file: not the one the run checked and left
    assert "not the one its last run left" in reason(current)


def test_a_failed_run_after_the_last_success_is_a_reason(current):
    # A file where the store belongs: the embeddings step fails, after documents and chunks succeeded.
    (current.inbox / "new.txt").write_text("A new note about tides.\n")
    store = current.home / "warehouse" / current.collection / "embeddings.parquet"
    store.unlink()
    store.mkdir()
    assert not current.run(EMBEDDER).success
    store.rmdir()
    assert reason(current) is not None
    assert current.run(EMBEDDER).success
    assert reason(current) is None


def test_a_run_in_progress_is_a_reason(current):
    job = dg.Definitions(assets=[dg.AssetSpec("anything")]).resolve_implicit_global_asset_job_def()
    current.instance.create_run_for_job(job, tags={PARTITION_TAG: current.collection},
                                        status=dg.DagsterRunStatus.STARTED)
    assert "in progress" in reason(current)


def test_a_failed_document_is_retried_by_every_run(current):
    (current.inbox / "broken.pdf").write_bytes(b"%PDF-1.7 not really a pdf")
    assert current.run(EMBEDDER).success  # a bad document fails alone
    assert "failed" in reason(current)


def test_a_follower_the_last_run_did_not_materialize_is_a_reason(current):
    # pgvector_table joins the job when ORCA_PGVECTOR_URL is set: a run from before the setting did not sync it.
    assert "pgvector_table" in reason(current, followers=("pgvector_table",))


def test_an_inbox_in_object_storage_is_left_to_a_run(current):
    remote = WarehouseResource(home=str(current.home), storage_url="s3://bucket/orca")
    info = EMBEDDER.embedder().model_info()
    assert "object storage" in stale_reason(current.collection, remote, info, current.instance)


def test_a_look_creates_nothing(pipeline):
    assert "never materialized" in reason(pipeline)
    assert not (pipeline.home / "warehouse").exists()
