"""The `orca` command line, run as real subprocesses against a temporary ORCA_HOME.

`orca materialize` must build the served index, record its run in the instance under DAGSTER_HOME,
leave an unchanged collection out (no run), send nothing on an unchanged `--rerun`, re-embed on `--force`, and fail with a plain message and the
right exit code; `orca search` must find the right document and refuse what it cannot answer.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
import yaml

from orca.home import FALLBACK_DAGSTER_YAML, project_file
from orca_resources.hashing_embedder import HashingEmbedder
from tests.processes import orca_env, run_cli

COLLECTION = "handbook"
INDEX_COLUMNS = {
    "chunk_id", "doc_id", "chunk_index", "text", "embedding", "model", "source", "page", "section", "title", "metadata",
}  # fmt: skip

DOCUMENTS = {
    "baking/sourdough.md": "# Sourdough bread\n\nFeed the sourdough starter with flour and water the night before. "
    "Knead the dough, let it rise slowly, shape the loaf and bake the sourdough bread in a hot oven.\n",
    "volcanoes.txt": "Volcanoes erupt when magma rises through the crust. Lava flows, ash clouds and volcanic "
    "bombs follow. Some volcanoes sleep for centuries between eruptions.\n",
    "chess.md": "# Chess openings\n\nThe Sicilian Defence answers the king's pawn with the c-pawn. The Queen's "
    "Gambit offers a pawn for the centre. Openings shape the middlegame of a chess game.\n",
}


def write_documents(home: Path, collection: str = COLLECTION) -> Path:
    """Write DOCUMENTS into `home`'s inbox for `collection` and return that folder."""
    inbox = home / "inbox" / collection
    for name, text in DOCUMENTS.items():
        path = inbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return inbox


def count(label: str, output: str) -> int:
    """The number printed before `label` in the summary table, e.g. `3 inputs sent`."""
    found = re.search(rf"(\d[\d,]*) {re.escape(label)}", output)
    assert found, f"no '{label}' in the summary:\n{output}"
    return int(found.group(1).replace(",", ""))


def latest_metadata(dagster_home: Path, asset: str) -> dict:
    """The metadata of the newest materialization of `asset` for the collection, read from the instance."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[COLLECTION]), limit=1
        ).records
        assert records, f"no materialization of {asset} recorded in {dagster_home}"
        return {k: getattr(v, "value", v) for k, v in records[0].asset_materialization.metadata.items()}


@pytest.fixture(scope="module")
def materialized(tmp_path_factory) -> tuple[Path, dict, object]:
    """A home with three documents, materialized once by the CLI; tests below only read it or re-run it."""
    home = tmp_path_factory.mktemp("orca-home")
    write_documents(home)
    env = orca_env(home)
    return home, env, run_cli(["materialize", COLLECTION], env=env)


@pytest.mark.timeout(300)
def test_materialize_builds_the_index_and_records_the_run(materialized):
    home, _env, result = materialized
    assert result.returncode == 0, result.stdout + result.stderr
    assert count("added", result.stdout) == len(DOCUMENTS)
    assert count("inputs sent", result.stdout) > 0
    assert re.search(r"[1-9]\d* passed · 0 failed", result.stdout), result.stdout

    index_path = home / "warehouse" / COLLECTION / "embedding_index.parquet"
    index = pq.read_table(index_path)
    assert set(index.column_names) == INDEX_COLUMNS
    assert set(index["doc_id"].to_pylist()) == set(DOCUMENTS)
    assert str(index_path) in result.stdout.replace("\n", "")

    dagster_home = home / "dagster"
    assert (dagster_home / "dagster.yaml").read_text() == project_file("dagster.yaml").read_text()
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.has_dynamic_partition("collections", COLLECTION)
        runs = instance.get_runs(dg.RunsFilter(job_name="embed_collection_job", tags={"dagster/partition": COLLECTION}))
    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS]
    assert runs[0].run_id in result.stdout


@pytest.mark.timeout(600)
def test_rerun_sends_nothing_and_force_embeds_everything_again(materialized):
    home, env, first = materialized
    assert first.returncode == 0, first.stdout + first.stderr
    rows = pq.read_metadata(home / "warehouse" / COLLECTION / "embedding_index.parquet").num_rows
    first_run = latest_metadata(home / "dagster", "embeddings")

    unchanged = run_cli(["materialize", COLLECTION], env=env)
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert f"Up to date, not run: {COLLECTION}" in unchanged.stdout
    assert latest_metadata(home / "dagster", "embeddings") == first_run  # no run, so no new materialization

    again = run_cli(["materialize", COLLECTION, "--rerun"], env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert count("inputs sent", again.stdout) == 0
    assert count("unchanged", again.stdout) == len(DOCUMENTS)
    assert latest_metadata(home / "dagster", "embeddings")["inputs_sent"] == 0

    forced = run_cli(["materialize", COLLECTION, "--force"], env=env)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert count("inputs sent", forced.stdout) == rows
    assert latest_metadata(home / "dagster", "embeddings")["inputs_sent"] == rows


@pytest.mark.timeout(300)
def test_search_puts_the_matching_document_first(materialized):
    _home, env, first = materialized
    assert first.returncode == 0, first.stdout + first.stderr
    result = run_cli(["search", COLLECTION, "sourdough starter flour loaf", "-k", "3"], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    positions = {doc: result.stdout.find(doc) for doc in DOCUMENTS if doc in result.stdout}
    assert min(positions, key=positions.get) == "baking/sourdough.md", result.stdout


@pytest.mark.timeout(300)
def test_search_filters_and_shows_where_each_hit_is(materialized):
    _home, env, first = materialized
    assert first.returncode == 0, first.stdout + first.stderr
    result = run_cli(["search", COLLECTION, "sourdough starter flour loaf", "--doc-prefix", "baking/"], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "baking/sourdough.md" in result.stdout and "volcanoes.txt" not in result.stdout
    assert "Sourdough bread" in result.stdout  # the title (and section) of the hit
    nothing = run_cli(["search", COLLECTION, "sourdough", "--where", "team=infra"], env=env)
    assert nothing.returncode == 0 and "No results" in nothing.stdout, nothing.stdout
    bad = run_cli(["search", COLLECTION, "sourdough", "--pages", "9-2"], env=env)
    assert bad.returncode == 2 and "orca search: error: the page range 9-2 is empty" in bad.stderr


@pytest.mark.timeout(300)
def test_search_uses_the_embedder_that_built_the_index(materialized, ollama_standin):
    """The offline embedder built this index; with Ollama configured (as after `orca up` fell back), search still
    answers, with the offline embedder, says so, and never calls Ollama."""
    _home, env, first = materialized
    assert first.returncode == 0, first.stdout + first.stderr
    ollama = {"ORCA_EMBEDDER": "ollama", "OLLAMA_HOST": ollama_standin.url, "ORCA_EMBED_MODEL": "nomic-embed-text"}
    table = run_cli(["search", COLLECTION, "volcanoes"], env={**env, **ollama})
    assert table.returncode == 0, table.stderr
    assert "volcanoes.txt" in table.stdout and "orca-hashing-v1 (hashing)" in table.stderr
    answer = run_cli(["search", COLLECTION, "volcanoes", "--json", "-k", "2"], env={**env, **ollama})
    assert answer.returncode == 0, answer.stderr
    found = json.loads(answer.stdout)
    assert (found["collection"], found["query"], found["model"], found["embedder"]) == (
        COLLECTION, "volcanoes", "orca-hashing-v1", "hashing"
    )
    assert [hit["doc_id"] for hit in found["results"]][:1] == ["volcanoes.txt"] and len(found["results"]) == 2
    assert set(found["results"][0]) >= {"chunk_id", "doc_id", "text", "score", "page", "section", "metadata"}
    assert ollama_standin.stats.requests["/api/embed"] == 0


@pytest.mark.timeout(120)
def test_search_refuses_an_index_built_by_another_model(tmp_path, write_index):
    """Only the offline embedder stands in for another: an index of an Ollama model is refused with the way out."""
    home = tmp_path / "home"
    write_index(home / "warehouse" / COLLECTION / "embedding_index.parquet", ["volcanoes erupt"],
                HashingEmbedder(), model="nomic-embed-text")  # fmt: skip
    result = run_cli(["search", COLLECTION, "volcanoes"], env=orca_env(home))
    assert result.returncode == 1
    assert "not comparable" in result.stderr
    assert f"orca materialize {COLLECTION}" in result.stderr


@pytest.mark.timeout(120)
def test_search_before_materialize_says_what_to_do(tmp_path):
    write_documents(tmp_path)
    result = run_cli(["search", COLLECTION, "anything"], env=orca_env(tmp_path))
    assert result.returncode == 1
    assert "has no index yet" in result.stderr
    assert f"`orca materialize {COLLECTION}`" in result.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "args",
    [["materialize", "Bad/Name"], ["search", "../etc", "q"], ["materialize", "-x"], ["materialize", COLLECTION, "Bad/Name"],
     ["purge", "Bad/Name"], ["purge", COLLECTION, "--wait", "-1"], ["status", "--runs", "-1"]],
)
def test_bad_usage_exits_2_with_a_message(tmp_path, args):
    result = run_cli(args, env=orca_env(tmp_path))
    assert result.returncode == 2
    assert re.search(r"^orca( \w+)?: error: ", result.stderr, re.MULTILINE), result.stderr
    assert not (tmp_path / "dagster").exists(), "bad usage must not touch ORCA_HOME"


@pytest.mark.timeout(300)
def test_missing_model_fails_the_run_with_the_pull_command(tmp_path, ollama_standin):
    write_documents(tmp_path)
    env = orca_env(tmp_path, ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama_standin.url, ORCA_EMBED_MODEL="not-pulled-yet")
    result = run_cli(["materialize", COLLECTION], env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ollama pull not-pulled-yet" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "warehouse" / COLLECTION / "embedding_index.parquet").exists()


@pytest.mark.timeout(120)
def test_materialize_without_an_inbox_folder_says_where_documents_go(tmp_path):
    result = run_cli(["materialize", "nothing-here"], env=orca_env(tmp_path))
    assert result.returncode == 1
    assert str(tmp_path / "inbox" / "nothing-here") in result.stderr.replace("\n", "")


@pytest.mark.timeout(120)
def test_collections_lists_what_the_index_holds(materialized):
    home, env, first = materialized
    assert first.returncode == 0, first.stdout + first.stderr
    (home / "inbox" / "empty-one").mkdir(exist_ok=True)
    result = run_cli(["collections"], env=env)
    assert result.returncode == 0, result.stderr
    rows = pq.read_metadata(home / "warehouse" / COLLECTION / "embedding_index.parquet").num_rows
    line = next(line for line in result.stdout.splitlines() if COLLECTION in line)
    assert re.search(rf"\b{len(DOCUMENTS)}\b.*\b{len(DOCUMENTS)}\b.*\b{rows}\b", line), result.stdout
    assert re.search(r"empty-one.*never", result.stdout)


@pytest.mark.timeout(120)
def test_collections_json_is_one_object_of_the_documented_shape(materialized):
    home, env, first = materialized
    assert first.returncode == 0, first.stdout + first.stderr
    (home / "inbox" / "empty-two").mkdir(exist_ok=True)
    result = run_cli(["collections", "--json"], env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # the whole of stdout
    assert set(document) == {"location", "collections"} and document["location"] == str(home)
    listed = {entry["name"]: entry for entry in document["collections"]}
    assert list(listed) == sorted(listed)
    assert listed["empty-two"] == {"name": "empty-two", "inbox_documents": 0, "index": None}
    index = listed[COLLECTION]["index"]
    assert listed[COLLECTION]["inbox_documents"] == len(DOCUMENTS)
    assert set(index) == {"documents", "chunks", "model", "updated_at"} and index["documents"] == len(DOCUMENTS)
    assert index["chunks"] == pq.read_metadata(home / "warehouse" / COLLECTION / "embedding_index.parquet").num_rows
    assert index["model"] == "orca-hashing-v1" and datetime.fromisoformat(index["updated_at"]).tzinfo is not None


def test_every_command_help_ends_with_an_example():
    from orca.cli import COMMANDS, build_parser

    parser = build_parser()
    (commands,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    assert {"status", "purge"} <= set(commands.choices) and len(commands.choices) == len(COMMANDS)
    for name, command in commands.choices.items():
        epilog = command.format_help().rstrip().rsplit("Example:\n", 1)
        assert len(epilog) == 2 and epilog[1].startswith(f"  orca {name}"), (name, command.format_help())


def test_fallback_dagster_yaml_says_what_the_project_file_says():
    project = yaml.safe_load(project_file("dagster.yaml").read_text())
    assert yaml.safe_load(FALLBACK_DAGSTER_YAML) == project
    assert project["telemetry"] == {"enabled": False}
    assert project["run_coordinator"]["class"] == "QueuedRunCoordinator"
