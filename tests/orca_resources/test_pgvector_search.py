"""Search answered by the pgvector table: the same hits as the Parquet index, filters that still give k rows,
and clear errors for a missing table, another model and an unreachable database."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from orca_assets.jobs import embedding_assets
from orca_assets.pgvector_table import pgvector_table
from orca_core.layout import source_record
from orca_core.search import IndexNotFound, IndexUnreadable, ModelMismatch
from orca_core.search_filter import SearchFilter
from orca_core.settings import OrcaSettings
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.pgvector import PgVectorResource
from orca_resources.search_backend import search_collection
from tests.pipeline_helpers import Pipeline, failure_message

TOPICS = ["harbour cranes lift containers", "pilots guide ships", "bakers knead sourdough", "glaciers carve valleys"]


@pytest.fixture
def loaded(tmp_path, pgvector_server_url, pg_schema):
    """A collection of 24 documents (six teams) indexed into Parquet and into its pgvector table."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    pipeline = Pipeline(home=tmp_path / "orca", collection="docs", instance=instance)
    for number in range(24):
        folder = pipeline.inbox / ("guides" if number % 2 else "notes")
        folder.mkdir(exist_ok=True)
        front = f"---\nteam: t{number % 6}\nlevel: {number % 3}\n---\n"
        (folder / f"d{number}.md").write_text(front + f"# Doc {number}\n\n{TOPICS[number % 4]} number {number}.\n")
    record = pipeline.inbox / source_record("notes/d0.md")  # posted metadata keeps JSON numbers and booleans
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"request_id": "r1", "metadata": {"n": 3, "ok": True}}))
    result = dg.materialize(
        [*embedding_assets, pgvector_table], partition_key="docs", instance=instance,
        resources={"embedder": HashingEmbedderResource(dimensions=32), "warehouse": pipeline.warehouse,
                   "pgvector": PgVectorResource(url=pgvector_server_url, schema_name=pg_schema)},
        raise_on_error=False,
    )  # fmt: skip
    assert result.success, failure_message(result)
    env = {"ORCA_HOME": str(pipeline.home), "ORCA_EMBEDDER": "hashing"}
    parquet = OrcaSettings.from_env(env)
    pgvector = OrcaSettings.from_env({**env, "ORCA_PGVECTOR_URL": pgvector_server_url, "ORCA_PGVECTOR_SCHEMA": pg_schema})
    return parquet, pgvector


def hits(settings, query="pilots guide ships", k=5, where=None, dimensions=32):
    return search_collection(settings, HashingEmbedderResource(dimensions=dimensions), "docs", query, k, where).results


def test_the_table_answers_as_the_parquet_index_does(loaded):
    parquet, pgvector = loaded
    from_parquet, from_table = hits(parquet), hits(pgvector)
    assert [h["chunk_id"] for h in from_table] == [h["chunk_id"] for h in from_parquet]
    for a, b in zip(from_table, from_parquet):
        assert a["score"] == pytest.approx(b["score"], abs=1e-5)
        assert (a["doc_id"], a["section"], a["title"], a["metadata"]) == (b["doc_id"], b["section"], b["title"], b["metadata"])


def test_filters_narrow_the_table_and_still_give_k_rows(loaded):
    parquet, pgvector = loaded
    for where in (SearchFilter({"team": "t3"}), SearchFilter({"level": "2"}), SearchFilter({}, "guides/"),
                  SearchFilter({"team": "t1"}, "guides/")):  # fmt: skip
        expected = [h["chunk_id"] for h in hits(parquet, k=4, where=where)]
        found = hits(pgvector, k=4, where=where)
        assert [h["chunk_id"] for h in found] == expected and len(found) == min(4, len(expected)), where
    assert {h["metadata"]["level"] for h in hits(pgvector, k=10, where=SearchFilter({"level": "2"}))} == {"2"}
    # Front matter values are strings: a number asked for through the API matches none, in either backend.
    assert hits(pgvector, where=SearchFilter({"level": 2})) == hits(parquet, where=SearchFilter({"level": 2})) == []
    for wanted in ({"n": 3}, {"n": "3"}, {"ok": True}, {"ok": "true"}):  # the API's JSON, the CLI's spelling
        assert [h["doc_id"] for h in hits(pgvector, where=SearchFilter(wanted))] == ["notes/d0.md"], wanted
        assert [h["doc_id"] for h in hits(parquet, where=SearchFilter(wanted))] == ["notes/d0.md"], wanted
    assert hits(pgvector, where=SearchFilter({"n": "4"})) == hits(pgvector, where=SearchFilter({"ok": 1})) == []


def test_a_missing_table_another_model_and_a_dead_database_are_clear_errors(loaded, pgvector_server_url):
    _, pgvector = loaded
    with pytest.raises(IndexNotFound, match="no pgvector table"):
        search_collection(pgvector, HashingEmbedderResource(dimensions=32), "other", "q", 3)
    with pytest.raises(ModelMismatch, match="configured embedder"):
        search_collection(pgvector, _NamedEmbedder(dimensions=32), "docs", "q", 3)
    dead = pgvector.model_copy(update={"pgvector_url": "postgresql://nobody@127.0.0.1:1/none"})
    with pytest.raises(IndexUnreadable, match="unreachable"):
        hits(dead)


class _NamedEmbedder(HashingEmbedderResource):
    """The offline embedder under another model's name: its vectors must not be compared with the table's."""

    def model_info(self):
        from dataclasses import replace

        return replace(super().model_info(), name="nomic-embed-text")
