"""The index's blocking checks: each one catches its fault, and a new index that fails one is never served."""

from __future__ import annotations

import os

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest

import orca_assets.checks as checks_module
import orca_assets.index as index_module
from orca_assets.checks import IndexFile, chunk_coverage, deleted_documents, embedding_dimension, embedding_values
from orca_assets.checks import judge_index as real_judge
from orca_core.embedder import BatchOutcome
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.warehouse import write_parquet_atomic
from tests.documents_fixture import write_collection
from tests.pipeline_helpers import Pipeline, check_results, failure_message, metadata


class DoublingEmbedder(HashingEmbedderResource):
    """The offline embedder, but its vectors are twice as long as the unit vectors it claims to give."""

    def embed_batches(self, batches, kind="document"):
        for outcome in super().embed_batches(batches, kind):
            yield BatchOutcome(vectors=outcome.vectors * 2)


@pytest.fixture
def built(pipeline) -> Pipeline:
    write_collection(pipeline.inbox)
    result = pipeline.run(HashingEmbedderResource(dimensions=16), chunk_tokens=32)
    assert result.success, failure_message(result)
    assert pipeline.index().num_rows > 6
    return pipeline


def rewritten(pipeline: Pipeline, path, change) -> IndexFile:
    """A copy of the served index at `path` with `change(table)` applied, footer metadata kept."""
    index = pipeline.index()
    write_parquet_atomic(change(index).replace_schema_metadata(index.schema.metadata), path)
    return IndexFile(path, pipeline.warehouse, pipeline.collection)


def with_vector(table: pa.Table, row: int, vector: list[float]) -> pa.Table:
    vectors = [list(v) for v in table["embedding"].to_pylist()]
    vectors[row] = vector
    column = pa.array(vectors, pa.list_(pa.float32()))  # variable length, so a short vector can be staged
    field = table.schema.field("embedding").with_type(column.type)
    return table.set_column(table.schema.get_field_index("embedding"), field, column)


def test_every_check_passes_the_index_it_built(built):
    index = IndexFile(built.index_path, built.warehouse, built.collection)
    for judge in (embedding_dimension, embedding_values, chunk_coverage, deleted_documents):
        assert judge(index).passed, judge.__name__


def test_a_zero_vector_in_the_last_batch_is_found(built, tmp_path, monkeypatch):
    monkeypatch.setattr(checks_module, "ROW_GROUP_ROWS", 3)  # several batches even for a small index
    index = rewritten(built, tmp_path / "zero.parquet", lambda t: with_vector(t, t.num_rows - 1, [0.0] * 16))
    verdict = embedding_values(index)
    assert not verdict.passed and verdict.metadata["zero_rows"] == 1 and "zero rows: 1" in verdict.why
    assert embedding_dimension(index).passed


def test_a_short_vector_and_a_nan_are_found(built, tmp_path):
    short = rewritten(built, tmp_path / "short.parquet", lambda t: with_vector(t, 0, [0.5] * 4))
    assert embedding_dimension(short).metadata["wrong_rows"] == 1
    assert not embedding_values(short).passed
    nan = rewritten(built, tmp_path / "nan.parquet", lambda t: with_vector(t, 0, [float("nan")] * 16))
    assert embedding_values(nan).metadata["non_finite_rows"] == 1


def test_missing_duplicated_and_stale_rows_are_found(built, tmp_path):
    missing = rewritten(built, tmp_path / "missing.parquet", lambda t: t.slice(1))
    assert chunk_coverage(missing).metadata["missing_chunks"] == 1
    doubled = rewritten(built, tmp_path / "doubled.parquet", lambda t: pa.concat_tables([t, t.slice(0, 1)]))
    assert chunk_coverage(doubled).metadata["duplicated_chunks"] == 1
    stale = rewritten(
        built, tmp_path / "stale.parquet",
        lambda t: t.set_column(1, "doc_id", pa.array(["gone.md"] * t.num_rows, pa.string())),
    )
    verdict = deleted_documents(stale)
    assert not verdict.passed and "gone.md" in verdict.why


def test_a_new_index_that_fails_a_check_is_not_served(built):
    served = built.index()
    (built.inbox / "new.md").write_text("# New\n\nA document whose vectors come out twice too long.\n")
    result = built.run(DoublingEmbedder(dimensions=16), chunk_tokens=32)
    assert not result.success
    message = failure_message(result)
    assert "embedding_values_check" in message and "off unit norm rows" in message, message
    assert "the previous index is still served" in message
    verdicts = check_results(result)
    assert verdicts["embedding_values_check"] is False and verdicts["embedding_dimension_check"] is True
    assert not [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("embedding_index")]
    assert built.index().equals(served)  # same rows, same file: the staged index went nowhere
    assert not (built.index_path.parent / "embedding_index.staged.parquet").exists()

    fixed = built.run(HashingEmbedderResource(dimensions=16), chunk_tokens=32, force=True)
    assert fixed.success, failure_message(fixed)
    assert "new.md" in set(built.index()["doc_id"].to_pylist())
    assert metadata(fixed, "embedding_index")["rewritten"] is True
    assert np.isclose(np.linalg.norm(built.index()["embedding"][0].as_py()), 1.0, atol=1e-3)


def test_an_unchanged_run_reuses_the_verdicts_of_the_very_same_file(built, monkeypatch):
    def must_not_judge(index):
        raise AssertionError("an unchanged, already judged index must not be read again")

    with monkeypatch.context() as patched:
        patched.setattr(index_module, "judge_index", must_not_judge)
        again = built.run(HashingEmbedderResource(dimensions=16), chunk_tokens=32)
        assert again.success, failure_message(again)
        assert set(check_results(again).values()) == {True}
    stat = built.index_path.stat()
    os.utime(built.index_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # touched: judged again
    judged = []
    monkeypatch.setattr(index_module, "judge_index", lambda index: judged.append(index) or real_judge(index))
    assert built.run(HashingEmbedderResource(dimensions=16), chunk_tokens=32).success
    assert len(judged) == 1
