"""Local search answers from the served index's search copy, kept in step by the index's own step."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from orca_assets.jobs import embedding_assets
from orca_core.search import search_index
from orca_core.search_filter import SearchFilter
from orca_core.settings import OrcaSettings
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.search_backend import search_collection
from orca_resources.warehouse import WarehouseResource
from tests.pipeline_helpers import Pipeline, failure_message, metadata

EMBEDDER = HashingEmbedderResource(dimensions=32)
TOPICS = ["harbour pilots guide ships", "glaciers carve valleys", "bread rises with yeast", "owls hunt at night"]


@pytest.fixture
def pipeline(tmp_path) -> Pipeline:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    pipeline = Pipeline(home=tmp_path / "orca", collection="docs", instance=instance)
    for number in range(30):
        text = f"---\nteam: t{number % 3}\n---\n# Doc {number}\n\n{TOPICS[number % 4]} number {number}.\n"
        (pipeline.inbox / f"d{number:02d}.md").write_text(text)
    result = pipeline.run(EMBEDDER)
    assert result.success, failure_message(result)
    return pipeline


def settings(pipeline: Pipeline) -> OrcaSettings:
    return OrcaSettings.from_env({"ORCA_HOME": str(pipeline.home), "ORCA_EMBEDDER": "hashing"})


def ranked(result):
    return [(row["chunk_id"], round(row["score"], 5)) for row in result.results]


@pytest.mark.parametrize("where", [None, SearchFilter(metadata={"team": "t1"}), SearchFilter(doc_id_prefix="d1")])
def test_the_search_copy_answers_as_the_parquet_index(pipeline, where):
    layout = settings(pipeline).layout
    assert (layout.search_dir("docs") / "manifest.json").is_file()
    from_copy = search_collection(settings(pipeline), EMBEDDER, "docs", "pilots guide ships", 7, where)
    from_parquet = search_index(layout.index_path("docs"), EMBEDDER, "pilots guide ships", 7, collection="docs",
                                where=where)  # fmt: skip
    assert ranked(from_copy) == ranked(from_parquet) and len(from_copy.results) == 7
    assert from_copy.results[0].keys() == from_parquet.results[0].keys()


def test_an_edit_reaches_the_copy_as_a_small_segment(pipeline):
    (pipeline.inbox / "d05.md").write_text("# Doc 5\n\nsextants measure the angle of stars.\n")
    result = pipeline.run(EMBEDDER)
    assert result.success, failure_message(result)
    index = metadata(result, "embedding_index")
    assert index["search_copy_rows_written"] == 1 and index["search_copy_rows_deleted"] == 1
    assert index["search_copy_segments"] == 2 and not index["search_copy_rewritten"]
    (top,) = search_collection(settings(pipeline), EMBEDDER, "docs", "sextants stars", 1).results
    assert top["doc_id"] == "d05.md" and "sextants" in top["text"]


def test_without_a_copy_the_parquet_index_answers(pipeline):
    before = ranked(search_collection(settings(pipeline), EMBEDDER, "docs", "owls at night", 5))
    shutil.rmtree(settings(pipeline).layout.search_dir("docs"))
    assert ranked(search_collection(settings(pipeline), EMBEDDER, "docs", "owls at night", 5)) == before


def test_no_copy_is_kept_when_pgvector_answers(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    home = tmp_path / "orca"
    (home / "inbox" / "docs").mkdir(parents=True)
    (home / "inbox" / "docs" / "a.md").write_text("# A\n\nsome text\n")
    result = dg.materialize(embedding_assets, partition_key="docs", instance=instance, raise_on_error=False,
                            resources={"embedder": EMBEDDER,
                                       "warehouse": WarehouseResource(home=str(home), search_copy=False)})  # fmt: skip
    assert result.success, failure_message(result)
    assert not (home / "warehouse" / "docs" / "embedding_index.search").exists()
