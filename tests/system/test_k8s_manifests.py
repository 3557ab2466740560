"""deploy/k8s checked offline, as far as that goes without a cluster or the chart: the Helm values agree with
Orca's instance settings (deploy/dagster.postgres.yaml) and load Orca's code location; every Orca variable they
set is one Orca reads; the intake's Deployment, Service and volume fit together and probe routes the intake
serves; the intake and the code location (so every run) use the same object store, each pod with a local copy
of its own."""

from __future__ import annotations

from pathlib import Path

import yaml

from orca_core.settings import OrcaSettings

ROOT = Path(__file__).resolve().parents[2]
VALUES = yaml.safe_load((ROOT / "deploy" / "k8s" / "values.yaml").read_text())
MANIFESTS = {doc["kind"]: doc for doc in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "intake.yaml").read_text())}
INSTANCE = yaml.safe_load((ROOT / "deploy" / "dagster.postgres.yaml").read_text())
KNOWN_VARIABLES = {f"ORCA_{name.upper()}" for name in OrcaSettings.model_fields} | {"OLLAMA_HOST", "DAGSTER_HOME"}


def test_the_code_location_is_orcas_and_runs_inherit_its_environment():
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "orca.definitions"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert set(deployment["env"]) <= KNOWN_VARIABLES, set(deployment["env"]) - KNOWN_VARIABLES
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    secrets = {secret["name"] for secret in VALUES["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]}
    assert secrets == {secret["name"] for secret in deployment["envSecrets"]}


def test_the_instance_settings_match_the_postgres_deployment():
    coordinator = VALUES["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    runs = INSTANCE["concurrency"]["runs"]
    assert queued["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    assert queued["dequeueIntervalSeconds"] == INSTANCE["run_coordinator"]["config"]["dequeue_interval_seconds"]
    assert VALUES["concurrency"]["pools"]["defaultLimit"] == INSTANCE["concurrency"]["pools"]["default_limit"]
    monitoring = VALUES["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] is INSTANCE["run_monitoring"]["enabled"] is True
    assert monitoring["maxRuntimeSeconds"] == INSTANCE["run_monitoring"]["max_runtime_seconds"]
    assert monitoring["freeSlotsAfterRunEndSeconds"] == INSTANCE["run_monitoring"]["free_slots_after_run_end_seconds"]
    assert VALUES["telemetry"] == INSTANCE["telemetry"] == {"enabled": False}


def test_the_intake_deployment_service_and_volume_fit_together(intake_client):
    deployment, service = MANIFESTS["Deployment"], MANIFESTS["Service"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = pod["spec"]["containers"]
    assert container["command"][:3] == ["python", "-m", "orca_intake"]
    port = container["ports"][0]
    assert container["command"][container["command"].index("--port") + 1] == str(port["containerPort"])
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    for probe in ("readinessProbe", "livenessProbe"):  # routes the intake serves (a 503 is an answer)
        assert intake_client.get(container[probe]["httpGet"]["path"]).status_code in (200, 503)
    assert {item["name"] for item in container["env"]} <= KNOWN_VARIABLES
    # The intake, the code location and (through includeConfigInLaunchedRuns) every run share the object store;
    # each pod's ORCA_HOME is a copy of its own, on an emptyDir: no volume is shared, none needs ReadWriteMany.
    assert "PersistentVolumeClaim" not in MANIFESTS
    (volume,) = pod["spec"]["volumes"]
    (code,) = VALUES["dagster-user-deployments"]["deployments"]
    assert "emptyDir" in volume and "emptyDir" in code["volumes"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["ORCA_STORAGE_URL"] == code["env"]["ORCA_STORAGE_URL"]
    assert OrcaSettings.from_env({"ORCA_STORAGE_URL": env["ORCA_STORAGE_URL"]}).storage_url.startswith("s3://")
    home = env["ORCA_HOME"]
    assert home == code["env"]["ORCA_HOME"] == container["volumeMounts"][0]["mountPath"] == code["volumeMounts"][0]["mountPath"]
