"""The instance configurations Orca ships or documents are valid Dagster configuration.

deploy/dagster.postgres.yaml keeps the embedded default's run and pool limits and its run monitoring, and
adds storage for shared use; every `dagster.yaml` snippet of docs/production.md, merged into it, passes
Dagster's instance schema, and where its library is installed here, a real instance is built with it (on
SQLite storage, so no server is needed). Snippets for libraries this project does not install (Docker,
Kubernetes, S3) are checked against the schema only: their own fields are checked by those libraries when
they load. Run config snippets are validated against `embed_collection_job` when they use an executor it has.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "production.md"
POSTGRES_YAML = ROOT / "deploy" / "dagster.postgres.yaml"
FENCE = re.compile(r"```yaml\n(# (dagster\.yaml|run config):[^\n]*\n.*?)```", re.DOTALL)


def snippets(kind: str) -> list[dict]:
    found = [yaml.safe_load(text) for text, label in FENCE.findall(DOC.read_text()) if label == kind]
    assert found, f"docs/production.md has no {kind} snippet"
    return found


def snippet_id(snippet: dict) -> str:
    return "-".join(f"{key}:{value.get('class', '')}" if isinstance(value, dict) else key for key, value in snippet.items())


def modules(config: dict) -> list[str]:
    return [value["module"] for value in config.values() if isinstance(value, dict) and "module" in value]


def test_postgres_config_keeps_the_embedded_defaults_limits():
    default = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    production = yaml.safe_load(POSTGRES_YAML.read_text())
    assert production["run_coordinator"] == default["run_coordinator"]
    assert production["concurrency"]["runs"] == default["concurrency"]["runs"]
    assert production["concurrency"]["pools"]["default_limit"] >= 1
    assert production["run_monitoring"]["enabled"] is True
    assert production["telemetry"] == {"enabled": False}
    credentials = production["storage"]["postgres"]["postgres_db"]
    assert all(set(value) == {"env"} for value in credentials.values()), "credentials must come from the environment"


def test_the_embedded_default_limits_the_ollama_pool_and_monitors_runs_as_production_does(tmp_path):
    default = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    production = yaml.safe_load(POSTGRES_YAML.read_text())
    assert default["concurrency"]["pools"] == production["concurrency"]["pools"]
    assert default["run_monitoring"] == production["run_monitoring"]
    # A real instance on the embedded file (SQLite, as `orca up` makes it) applies both.
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.global_op_concurrency_default_limit == default["concurrency"]["pools"]["default_limit"]
        assert instance.event_log_storage.supports_global_concurrency_limits
    from orca.definitions import build_definitions

    assert build_definitions().resolve_assets_def("embeddings").node_def.pool == "ollama"


@pytest.mark.parametrize("snippet", snippets("dagster.yaml"), ids=snippet_id)
def test_documented_instance_snippet_is_valid(snippet, tmp_path):
    merged = {**yaml.safe_load(POSTGRES_YAML.read_text()), **snippet}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(merged))
    config, _ = dagster_instance_config(str(tmp_path))  # raises DagsterInvalidConfigError when invalid
    for key in snippet:
        assert config[key] == snippet[key]

    installed = [name for name in modules(snippet) if importlib.util.find_spec(name.split(".")[0]) is not None]
    if len(installed) == len(modules(snippet)):
        on_sqlite = {key: value for key, value in merged.items() if key != "storage"}
        home = tmp_path / "sqlite"
        home.mkdir()
        (home / "dagster.yaml").write_text(yaml.safe_dump(on_sqlite))
        with dg.DagsterInstance.from_config(str(home)) as instance:
            for key, value in snippet.items():
                built = {"run_launcher": instance.run_launcher, "compute_logs": instance.compute_log_manager}[key]
                assert type(built).__name__ == value["class"]


@pytest.mark.parametrize("snippet", snippets("run config"), ids=lambda s: next(iter(s["execution"]["config"])))
def test_documented_run_config_snippet(snippet):
    from orca.definitions import build_definitions

    job = build_definitions().resolve_job_def("embed_collection_job")
    if "broker" not in snippet["execution"]["config"]:
        dg.validate_run_config(job, snippet)  # raises when invalid for the job as it is
    else:
        # A Celery config only applies once the job uses celery_executor (docs/production.md says how).
        assert set(snippet["execution"]["config"]) <= {"broker", "backend", "include", "config_source", "retries"}
        assert "orca.definitions" in snippet["execution"]["config"]["include"]
