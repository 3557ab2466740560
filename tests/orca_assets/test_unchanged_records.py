"""An unchanged run reports the figures each step recorded when it last verified its output (orca_assets/
unchanged.py) instead of reading the tables again; a record is trusted only for the very files it names, so a
touched, edited or replaced file, or a document that fails, sends the step back to reading."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import orca_assets.checks as checks_module
import orca_assets.index as index_module
import orca_resources.warehouse as warehouse_module
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.warehouse import write_parquet_atomic
from tests.documents_fixture import write_collection
from tests.pipeline_helpers import Pipeline, check_results, failure_message, metadata, warning_checks


@pytest.fixture
def tables_read(monkeypatch) -> list[str]:
    """The names of the Parquet files whose data (not just footer) the steps read."""
    names: list[str] = []

    def counting(read):
        def read_parquet(path: Path, columns=None):
            names.append(Path(path).name)
            return read(path, columns)

        return read_parquet

    for module in (warehouse_module, index_module, checks_module):
        monkeypatch.setattr(module, "read_parquet", counting(module.read_parquet))
    return names


def folder(pipeline: Pipeline) -> Path:
    return pipeline.home / "warehouse" / pipeline.collection


def test_an_unchanged_run_reads_no_table_and_reports_the_same_figures(pipeline, tables_read):
    write_collection(pipeline.inbox)
    embedder = HashingEmbedderResource(dimensions=16)
    first = pipeline.run(embedder, chunk_tokens=32)
    assert first.success, failure_message(first)
    tables_read.clear()

    again = pipeline.run(embedder, chunk_tokens=32)
    assert again.success, failure_message(again)
    assert tables_read == []
    assets = ("documents", "chunks", "embeddings", "embedding_index")
    docs, chunks, vectors, index = (metadata(again, name) for name in assets)
    assert (docs["unchanged"], docs["documents"], docs["rewritten"]) == (5, 5, False)
    total = metadata(first, "chunks")["total"]
    assert (chunks["total"], chunks["unchanged"], chunks["rewritten"]) == (total, total, False)
    assert (vectors["inputs_sent"], vectors["store_rewritten"]) == (0, False)
    assert vectors["reused"] == vectors["dagster/row_count"] == metadata(first, "embeddings")["dagster/row_count"]
    assert (index["documents"], index["rewritten"]) == (5, False)
    assert index["dagster/row_count"] == metadata(first, "embedding_index")["dagster/row_count"]
    assert all(check_results(again).values()) and len(check_results(again)) == 4
    assert warning_checks(again) == {"failed_documents_check": True}


def test_a_touched_file_is_read_again_and_then_recorded_anew(pipeline, tables_read):
    paths = write_collection(pipeline.inbox)
    embedder = HashingEmbedderResource(dimensions=16)
    assert pipeline.run(embedder).success
    stat = paths["guide.md"].stat()
    os.utime(paths["guide.md"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # same content

    touched = pipeline.run(embedder)
    assert touched.success, failure_message(touched)
    assert metadata(touched, "documents")["rewritten"] is True  # the new mtime is stored
    assert "documents.parquet" in tables_read  # the chunks step checked the rewritten table
    assert metadata(touched, "chunks")["rewritten"] is False
    assert metadata(touched, "embedding_index")["rewritten"] is False
    tables_read.clear()
    assert pipeline.run(embedder).success
    assert tables_read == []


def test_a_replaced_store_is_not_trusted(pipeline):
    write_collection(pipeline.inbox)
    embedder = HashingEmbedderResource(dimensions=16)
    assert pipeline.run(embedder).success
    store = folder(pipeline) / "embeddings.parquet"
    table = pq.read_table(store)
    # The same footer (identity, version stamp) with one vector fewer: only the file's identity tells.
    write_parquet_atomic(table.slice(1), store)

    result = pipeline.run(embedder)
    assert result.success, failure_message(result)
    assert metadata(result, "embeddings")["inputs_sent"] == 1
    assert metadata(result, "embeddings")["store_rewritten"] is True
    assert all(check_results(result).values())


def test_a_failing_document_keeps_the_documents_step_reading(pipeline, tables_read):
    write_collection(pipeline.inbox)
    (pipeline.inbox / "broken.txt").write_bytes(b"\x00\x01binary\x00")
    embedder = HashingEmbedderResource(dimensions=16)
    assert pipeline.run(embedder).success
    assert not (folder(pipeline) / "documents.verified.json").exists()
    tables_read.clear()

    again = pipeline.run(embedder)
    assert again.success, failure_message(again)
    assert metadata(again, "documents")["failed"] == 1
    assert warning_checks(again) == {"failed_documents_check": False}
    assert "documents.parquet" in tables_read
    (pipeline.inbox / "broken.txt").unlink()
    fixed = pipeline.run(embedder)
    assert (metadata(fixed, "documents")["failed"], metadata(fixed, "documents")["deleted"]) == (0, 0)
    assert (folder(pipeline) / "documents.verified.json").exists()
