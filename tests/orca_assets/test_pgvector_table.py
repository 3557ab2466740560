"""`pgvector_table`: a collection's index kept as a pgvector table, run through Dagster against real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
import psycopg2
import pytest

from orca.definitions import build_definitions
from orca_assets.jobs import embedding_assets
from orca_assets.pgvector_table import pgvector_table
from orca_assets.purge_collection_job import purge_collection_with_pgvector_job
from orca_core.settings import OrcaSettings
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.intake_queue_resource import IntakeQueueResource
from orca_resources.pgvector import PgVectorResource
from tests.pipeline_helpers import Pipeline, failure_message, metadata

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "omicron",
         "sigma", "omega"]


def document(n: int) -> str:
    """A document long enough for a few chunks at 24 tokens, different for every n."""
    return "\n\n".join(f"Part {p} of doc {n}: " + " ".join(WORDS[(n + p + i) % len(WORDS)] for i in range(20))
                       for p in range(3))


@pytest.fixture
def pipeline(tmp_path) -> Pipeline:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    return Pipeline(home=tmp_path / "orca", collection="docs", instance=instance)


def sink_run(pipeline: Pipeline, url: str, schema: str, dimensions: int = 16) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [*embedding_assets, pgvector_table],
        partition_key=pipeline.collection,
        instance=pipeline.instance,
        resources={
            "embedder": HashingEmbedderResource(dimensions=dimensions),
            "warehouse": pipeline.warehouse,
            "pgvector": PgVectorResource(url=url, schema_name=schema),
        },
        run_config={"ops": {"chunks": {"config": {"max_tokens": 24, "overlap_tokens": 8}}}},
        raise_on_error=False,
    )
    assert result.success, failure_message(result)
    return result


def query(url: str, statement: str, *args: object) -> list[tuple]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(statement, args)
        rows = cur.fetchall() if cur.description else []
    conn.close()
    return rows


def check(result: dg.ExecuteInProcessResult) -> tuple[bool, dict]:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "pgvector_sync_check"]
    return evaluation.passed, {key: value.value for key, value in evaluation.metadata.items()}


def test_first_load_then_an_unchanged_run_touches_nothing(pipeline, pgvector_server_url, pg_schema):
    for n in range(10):
        (pipeline.inbox / f"doc{n}.md").write_text(document(n))
    first = metadata(sink_run(pipeline, pgvector_server_url, pg_schema), "pgvector_table")
    index_rows = pipeline.index().num_rows
    assert first["created"] and first["rows"] == first["upserted"] == index_rows > 10
    assert first["table"] == f"{pg_schema}.docs"
    result = sink_run(pipeline, pgvector_server_url, pg_schema)
    again = metadata(result, "pgvector_table")
    assert (again["upserted"], again["deleted"], again["rebuilt"]) == (0, 0, False)
    assert check(result) == (True, {"rows": index_rows, "index_rows": index_rows, "checksum_match": True,
                                    "checksum": check(result)[1]["checksum"]})
    # What an application runs: nearest chunks by cosine distance, filtered on metadata.
    vector = query(pgvector_server_url, f"SELECT embedding::text FROM {pg_schema}.docs LIMIT 1")[0][0]
    found = query(pgvector_server_url, f"SELECT chunk_id, 1 - (embedding <=> %s::vector) AS score FROM "
                  f"{pg_schema}.docs WHERE metadata @> '{{}}' ORDER BY embedding <=> %s::vector LIMIT 3",
                  vector, vector)
    assert len(found) == 3 and found[0][1] == pytest.approx(1.0, abs=1e-5)


def test_an_edit_touches_only_its_rows_and_a_deleted_document_goes(pipeline, pgvector_server_url, pg_schema):
    for n in range(10):
        (pipeline.inbox / f"doc{n}.md").write_text(document(n))
    sink_run(pipeline, pgvector_server_url, pg_schema)
    table = f"{pg_schema}.docs"
    (stamp,) = query(pgvector_server_url, f"SELECT max(updated_at) FROM {table}")[0]
    before = dict(query(pgvector_server_url, f"SELECT chunk_id, doc_id FROM {table}"))
    # doc3 loses its last part and gains a changed first part; doc7 is deleted.
    (pipeline.inbox / "doc3.md").write_text(document(3).split("\n\n")[0].replace("Part 0", "Edited part 0"))
    (pipeline.inbox / "doc7.md").unlink()
    result = metadata(sink_run(pipeline, pgvector_server_url, pg_schema), "pgvector_table")
    after = dict(query(pgvector_server_url, f"SELECT chunk_id, doc_id FROM {table}"))
    assert set(after) == set(pipeline.index()["chunk_id"].to_pylist())
    added, removed = set(after) - set(before), set(before) - set(after)
    assert result["upserted"] == len(added) >= 1 and result["deleted"] == len(removed)
    assert {before[c] for c in removed} == {"doc3.md", "doc7.md"} and {after[c] for c in added} == {"doc3.md"}
    touched = query(pgvector_server_url, f"SELECT DISTINCT doc_id FROM {table} WHERE updated_at > %s", stamp)
    assert touched == [("doc3.md",)]


def test_a_new_dimension_rebuilds_and_swaps_the_table(pipeline, pgvector_server_url, pg_schema):
    for n in range(4):
        (pipeline.inbox / f"doc{n}.md").write_text(document(n))
    sink_run(pipeline, pgvector_server_url, pg_schema, dimensions=16)
    result = metadata(sink_run(pipeline, pgvector_server_url, pg_schema, dimensions=24), "pgvector_table")
    assert result["rebuilt"] and result["rows"] == pipeline.index().num_rows
    table = f"{pg_schema}.docs"
    assert query(pgvector_server_url, f"SELECT DISTINCT vector_dims(embedding) FROM {table}") == [(24,)]
    assert query(pgvector_server_url, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                 "WHERE attrelid = %s::regclass AND attname = 'embedding'", table) == [("vector(24)",)]
    indexes = {name for (name,) in query(pgvector_server_url, "SELECT indexname FROM pg_indexes WHERE schemaname = %s",
                                         pg_schema)}
    assert indexes == {"docs_pkey", "docs_embedding_hnsw", "docs_doc_id", "docs_metadata_gin"}
    assert query(pgvector_server_url, "SELECT to_regclass(%s)", f"{table}__new") == [(None,)]


def test_a_table_damaged_by_hand_is_repaired_by_the_next_run(pipeline, pgvector_server_url, pg_schema):
    for n in range(5):
        (pipeline.inbox / f"doc{n}.md").write_text(document(n))
    sink_run(pipeline, pgvector_server_url, pg_schema)
    table = f"{pg_schema}.docs"
    original = query(pgvector_server_url, f"SELECT chunk_id, text, embedding::text FROM {table} ORDER BY chunk_id")
    query(pgvector_server_url, f"DELETE FROM {table} WHERE doc_id = 'doc1.md'")
    query(pgvector_server_url, f"UPDATE {table} SET text = 'vandalized' WHERE chunk_id = %s", original[0][0])
    result = sink_run(pipeline, pgvector_server_url, pg_schema)
    repaired = metadata(result, "pgvector_table")
    assert repaired["drift_repaired"] and repaired["deleted"] == 0 and repaired["upserted"] >= 2
    assert check(result)[0]
    content = f"SELECT chunk_id, text, embedding::text FROM {table} ORDER BY chunk_id"
    assert query(pgvector_server_url, content) == original
    query(pgvector_server_url, f"TRUNCATE {table}")
    assert metadata(sink_run(pipeline, pgvector_server_url, pg_schema), "pgvector_table")["upserted"] == len(original)


def test_the_sink_is_in_the_graph_only_with_its_setting(tmp_path):
    unset = build_definitions(OrcaSettings.from_env({"ORCA_HOME": str(tmp_path), "ORCA_EMBEDDER": "hashing"}))
    assert "pgvector" not in unset.resources
    assert dg.AssetKey("pgvector_table") not in unset.get_repository_def().asset_graph.get_all_asset_keys()
    settings = OrcaSettings.from_env({"ORCA_HOME": str(tmp_path), "ORCA_EMBEDDER": "hashing",
                                      "ORCA_PGVECTOR_URL": "postgresql://orca:s3cret@db/orca",
                                      "ORCA_PGVECTOR_SCHEMA": "vec"})
    assert "s3cret" not in repr(settings)
    sink = build_definitions(settings)
    dg.Definitions.validate_loadable(sink)
    assert dg.AssetKey("pgvector_table") in sink.get_repository_def().asset_graph.get_all_asset_keys()
    # Every embedding run syncs the table after the index; without the setting the job has the four assets.
    embed_steps = {node.name for node in sink.resolve_job_def("embed_collection_job").graph.node_defs}
    assert "pgvector_table" in embed_steps and "embedding_index" in embed_steps
    assert "pgvector_table" not in {node.name for node in unset.resolve_job_def("embed_collection_job").graph.node_defs}
    assert (sink.resources["pgvector"].url, sink.resources["pgvector"].schema_name) == (settings.pgvector_url, "vec")
    purge = sink.resolve_job_def("purge_collection_job")
    assert "drop_pgvector_table" in {node.name for node in purge.graph.node_defs}
    intake = sink.get_repository_def().get_sensor_def("intake_sensor")  # launches purges through the same job
    (targeted,) = [job for job in intake.jobs if job.name == "purge_collection_job"]
    assert "drop_pgvector_table" in {node.name for node in targeted.graph.node_defs}


def test_loading_the_definitions_without_the_setting_imports_no_psycopg2(tmp_path):
    code = ("import os, sys; os.environ['ORCA_HOME'] = sys.argv[1]; import orca.definitions as d; "
            "d.build_definitions(); print('psycopg2' in sys.modules, 'orca_assets.pgvector_table' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_purging_the_collection_drops_its_table(pipeline, pgvector_server_url, pg_schema, tmp_path):
    (pipeline.inbox / "doc0.md").write_text(document(0))
    sink_run(pipeline, pgvector_server_url, pg_schema)
    assert query(pgvector_server_url, "SELECT to_regclass(%s) IS NOT NULL", f"{pg_schema}.docs") == [(True,)]
    job = dg.Definitions(
        jobs=[purge_collection_with_pgvector_job],
        resources={"warehouse": pipeline.warehouse,
                   "intake_queue": IntakeQueueResource(url=f"sqlite:///{tmp_path}/q.db"),
                   "pgvector": PgVectorResource(url=pgvector_server_url, schema_name=pg_schema)},
    ).resolve_job_def("purge_collection_job")
    result = job.execute_in_process(
        instance=pipeline.instance, tags={"dagster/partition": "docs"},
    )
    assert result.output_for_node("drop_pgvector_table")["pgvector_table_dropped"] is True
    assert query(pgvector_server_url, "SELECT to_regclass(%s) IS NOT NULL", f"{pg_schema}.docs") == [(False,)]
