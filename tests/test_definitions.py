"""Orca's code location loads, as the webserver and the daemon load it, and every job resolves."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg

from orca.definitions import build_definitions, defs
from orca_assets.text_splitter import CHUNKER_VERSION
from orca_core.settings import OrcaSettings
from orca_resources.hashing_embedder import MODEL_NAME

JOBS = {"embed_collection_job", "prepare_model_job", "purge_collection_job", "index_freshness_job"}
SENSORS = {"inbox_sensor", "intake_sensor", "intake_run_status_sensor", "index_freshness_sensor"}
ROOT = Path(__file__).resolve().parents[1]


def test_the_code_location_loads_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCA_HOME", str(tmp_path))
    monkeypatch.setenv("ORCA_EMBEDDER", "hashing")
    loaded = dg.Definitions.merge(defs())  # the `@dg.definitions` function the workspace names
    dg.Definitions.validate_loadable(loaded)
    repository = loaded.get_repository_def()
    assert JOBS <= {job.name for job in repository.get_all_jobs()}
    assert SENSORS == {sensor.name for sensor in repository.sensor_defs}
    assert [schedule.name for schedule in repository.schedule_defs] == ["reindex_schedule"]


def test_every_job_resolves_with_its_resources(tmp_path):
    for embedder in ("hashing", "ollama"):
        settings = OrcaSettings.from_env({"ORCA_HOME": str(tmp_path), "ORCA_EMBEDDER": embedder})
        definitions = build_definitions(settings)
        for name in JOBS:
            job = definitions.resolve_job_def(name)
            assert job.name == name
            assert set(job.required_resource_keys) - {"io_manager"} <= set(definitions.resources)  # Dagster's own


def test_resources_carry_the_settings(tmp_path):
    settings = OrcaSettings.from_env(
        {"ORCA_HOME": str(tmp_path), "ORCA_EMBEDDER": "ollama", "OLLAMA_HOST": "gpu:11434", "ORCA_EMBED_MODEL": "m"}
    )
    resources = build_definitions(settings).resources
    assert resources["warehouse"].home == str(tmp_path.resolve())
    assert resources["intake_queue"].url == f"sqlite:///{tmp_path.resolve()}/intake/queue.db"
    assert (resources["embedder"].host, resources["embedder"].model) == ("gpu:11434", "m")
    assert (resources["ollama"].host, resources["ollama"].model) == ("gpu:11434", "m")
    hashing = build_definitions(OrcaSettings.from_env({"ORCA_HOME": str(tmp_path), "ORCA_EMBEDDER": "hashing"}))
    assert type(hashing.resources["embedder"]).__name__ == "HashingEmbedderResource"


def test_the_catalog_shows_owner_tags_code_versions_and_freshness(tmp_path):
    settings = OrcaSettings.from_env(
        {"ORCA_HOME": str(tmp_path), "ORCA_EMBEDDER": "hashing", "ORCA_FRESHNESS_MINUTES": "45",
         "ORCA_REINDEX_CRON": "0 3 * * 0"}
    )
    graph = build_definitions(settings).resolve_asset_graph()
    nodes = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}
    assert set(nodes) == {"documents", "chunks", "embeddings", "embedding_index"}
    for name, node in nodes.items():
        assert node.owners == ["team:orca"] and node.tags["domain"] == "search" and node.description, name
    assert nodes["chunks"].code_version == f"chunker-{CHUNKER_VERSION}"
    assert nodes["embeddings"].code_version.startswith(MODEL_NAME)
    assert nodes["embedding_index"].code_version.startswith(f"chunker-{CHUNKER_VERSION}+{MODEL_NAME}")
    assert "dagster/kind/numpy" in nodes["embeddings"].tags and "dagster/kind/ollama" not in nodes["embeddings"].tags
    policy = nodes["embedding_index"].freshness_policy
    assert policy.fail_window.to_timedelta() == timedelta(days=7, minutes=45)  # weekly reindex + the window
    ollama = build_definitions(OrcaSettings.from_env({"ORCA_HOME": str(tmp_path), "ORCA_EMBED_MODEL": "bge-m3"}))
    node = ollama.resolve_asset_graph().get(dg.AssetKey("embeddings"))
    assert node.code_version == "ollama-bge-m3" and "dagster/kind/ollama" in node.tags


def test_every_check_has_one_result_per_collection(tmp_path):
    graph = build_definitions(OrcaSettings.from_env({"ORCA_HOME": str(tmp_path)})).resolve_asset_graph()
    specs = [spec for assets in graph.assets_defs for spec in assets.check_specs]
    assert len(specs) >= 6 and {spec.name for spec in specs} >= {"failed_documents_check", "index_follows_inbox"}
    assert all(spec.partitions_def and spec.partitions_def.name == "collections" for spec in specs)


def _run(*command: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ORCA_HOME": str(home), "DAGSTER_HOME": str(home), "ORCA_EMBEDDER": "hashing"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_loading_the_code_prints_no_warning(tmp_path):
    done = _run(sys.executable, "-W", "default", "-c", "import orca.definitions as d; d.build_definitions()", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr


def test_dg_and_dagster_load_the_checkout(tmp_path):
    bin_dir = Path(sys.executable).parent
    checked = _run(str(bin_dir / "dg"), "check", "defs", home=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    validated = _run(str(bin_dir / "dagster"), "definitions", "validate", home=tmp_path)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "All code locations passed validation" in validated.stdout + validated.stderr
