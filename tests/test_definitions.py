"""Orca's code location loads, as the webserver and the daemon load it, and every job resolves."""

from __future__ import annotations

import dagster as dg

from orca.definitions import build_definitions, defs
from orca_core.settings import OrcaSettings

JOBS = {"embed_collection_job", "prepare_model_job", "purge_collection_job"}
SENSORS = {"inbox_sensor", "intake_sensor", "intake_run_status_sensor"}


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
