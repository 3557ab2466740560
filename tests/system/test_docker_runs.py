"""Runs in containers, for real: a private dockerd, a PostgreSQL instance, `dagster-daemon` with
deploy/docker/dagster.docker.yaml merged into deploy/dagster.postgres.yaml, and the run image built by
deploy/docker/build-run-image.sh. A dropped document reaches the index through a run in its own container
(in-process executor inside); a run container killed mid-run is marked failed by run monitoring, and the
rerun resumes paying at most one batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tests.docker_daemon import DockerUnavailable, host_volumes, start_daemon
from tests.processes import ManagedProcess, console_script, orca_env, wait_until

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "orca-run:test"
CONTAINER_TAG = "docker/container_id"


@pytest.fixture(scope="module")
def docker_daemon():
    try:
        daemon = start_daemon()
        daemon.build_run_image(IMAGE)
    except DockerUnavailable as error:
        pytest.fail(f"Docker is required for these tests (.ci/run installs docker.io): {error}", pytrace=False)
    yield daemon
    daemon.stop()


def docker_instance_yaml(home: Path) -> dict:
    """deploy/dagster.postgres.yaml with deploy/docker/dagster.docker.yaml merged in, bound to this test's paths."""
    config = yaml.safe_load((ROOT / "deploy" / "dagster.postgres.yaml").read_text())
    docker = yaml.safe_load((ROOT / "deploy" / "docker" / "dagster.docker.yaml").read_text())
    config["compute_logs"] = docker["compute_logs"]
    launcher = docker["run_launcher"]
    launcher["config"]["image"] = IMAGE
    launcher["config"]["container_kwargs"]["volumes"] = host_volumes(home)
    env_vars = launcher["config"]["env_vars"]
    env_vars[:] = [f"PATH={Path(sys.prefix) / 'bin'}:/usr/bin:/bin" if name.startswith("PATH=") else name
                   for name in env_vars]
    config["run_launcher"] = launcher
    config["run_monitoring"]["poll_interval_seconds"] = 2  # notice a dead container within seconds here
    return config


@pytest.fixture
def deployment(tmp_path, docker_daemon, postgres_server, postgres_database, s3_server, s3_bucket):
    home = tmp_path / "orca"
    (home / "dagster").mkdir(parents=True)
    (home / "inbox" / "docs").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text(yaml.safe_dump(docker_instance_yaml(home)))
    env = orca_env(home, DOCKER_HOST=docker_daemon.host, ORCA_LOG_BUCKET=s3_bucket,
                   **postgres_server.dagster_env(postgres_database), **s3_server.env())

    def start(**overrides: str) -> ManagedProcess:
        daemon_env = {**env, **overrides}
        return ManagedProcess([console_script("dagster-daemon"), "run", "-m", "orca.definitions"],
                              env=daemon_env, log_path=tmp_path / "daemon.log", cwd=ROOT)

    yield home, env, start


def instance_for(env: dict, home: Path, monkeypatch) -> dg.DagsterInstance:
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(name, env[name])
    return dg.DagsterInstance.from_config(str(home / "dagster"))


def finished_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return [run for run in instance.get_runs(dg.RunsFilter(job_name="embed_collection_job")) if run.is_finished]


def kill_run_container(docker_daemon, instance: dg.DagsterInstance, daemon: ManagedProcess) -> dg.DagsterRun:
    """Kill the container of the one embed run in progress; return the run once run monitoring failed it."""
    (run,) = instance.get_runs(dg.RunsFilter(job_name="embed_collection_job"))
    assert docker_daemon.docker("kill", run.tags[CONTAINER_TAG]).returncode == 0
    failed = wait_until(lambda: (r := instance.get_run_by_id(run.run_id)).is_finished and r, timeout=120,
                        message=f"the killed run was not marked finished:\n{daemon.output()[-4000:]}")
    assert failed.status == dg.DagsterRunStatus.FAILURE
    return failed


def relaunch(instance: dg.DagsterInstance, daemon: ManagedProcess, env: dict, previous: dg.DagsterRun) -> dg.DagsterRun:
    """Launch the collection's run again as an operator would (`dagster job launch`); return it once it succeeded."""
    launch = subprocess.run(
        [console_script("dagster"), "job", "launch", "-m", "orca.definitions", "-j", "embed_collection_job",
         "--tags", json.dumps({"dagster/partition": "docs"})], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=180)
    assert launch.returncode == 0, launch.stdout + launch.stderr
    rerun = wait_until(lambda: [r for r in finished_runs(instance) if r.run_id != previous.run_id], timeout=300,
                       interval=1, message=f"the rerun did not finish:\n{daemon.output()[-4000:]}")[0]
    assert rerun.status == dg.DagsterRunStatus.SUCCESS, daemon.output()[-4000:]
    return rerun


def test_a_dropped_document_is_indexed_by_a_run_in_its_own_container(deployment, docker_daemon, s3_server, monkeypatch):
    home, env, start = deployment
    (home / "inbox" / "docs" / "tides.md").write_text("# Tides\n\nThe tide rises twice a day.", encoding="utf-8")
    with start() as daemon, instance_for(env, home, monkeypatch) as instance:
        runs = wait_until(lambda: finished_runs(instance), timeout=240, interval=1,
                          message=f"no run finished; daemon log:\n{daemon.output()[-4000:]}")
        run = runs[0]
        container = run.tags[CONTAINER_TAG]
        assert run.status == dg.DagsterRunStatus.SUCCESS, docker_daemon.docker("logs", container).stderr[-4000:]
        inspected = json.loads(docker_daemon.docker("inspect", container).stdout)[0]
        assert inspected["Config"]["Image"] == IMAGE
        assert inspected["Config"]["Labels"]["dagster/run_id"] == run.run_id
        assert inspected["State"]["ExitCode"] == 0
        # The run's steps shared its container's one process: the in-process executor.
        logs = [entry.user_message for entry in instance.all_logs(run.run_id)]
        assert any("Executing steps in process" in message for message in logs)
        # Its steps' output went to the object store, where every webserver reads it.
        stored = s3_server.client().list_objects_v2(Bucket=env["ORCA_LOG_BUCKET"], Prefix="compute-logs/")
        assert any(run.run_id in item["Key"] for item in stored.get("Contents", [])), stored.get("Contents")
    import pyarrow.parquet as pq

    index = pq.read_table(home / "warehouse" / "docs" / "embedding_index.parquet")
    assert index["doc_id"].to_pylist() == ["tides.md"]


def test_a_killed_run_container_is_marked_failed_and_the_rerun_resumes(
    deployment, docker_daemon, ollama_standin_factory, monkeypatch
):
    home, env, start = deployment
    standin = ollama_standin_factory(cost_fixed_s=0.02)  # about 0.6 s per batch of 32 on its one slot
    total = 320
    for number in range(total):
        (home / "inbox" / "docs" / f"note-{number:03d}.txt").write_text(
            f"Note {number}: lighthouse {number} keeps its lamp lit for {number * 3} ships.", encoding="utf-8")
    with start(ORCA_EMBEDDER="ollama", OLLAMA_HOST=standin.url) as daemon, instance_for(env, home, monkeypatch) as instance:
        wait_until(lambda: standin.stats.embed_requests >= 3, timeout=240, interval=0.05,
                   message=f"no embedding started; daemon log:\n{daemon.output()[-4000:]}")
        run = kill_run_container(docker_daemon, instance, daemon)
        finished = standin.stats.inputs_embedded
        assert 0 < finished < total and not (home / "warehouse" / "docs" / "embedding_index.parquet").exists()
        rerun = relaunch(instance, daemon, {**env, "ORCA_EMBEDDER": "ollama", "OLLAMA_HOST": standin.url}, run)
        assert rerun.tags[CONTAINER_TAG] != run.tags[CONTAINER_TAG]
    # The store kept every batch stored before the kill: only requests in flight then (2 per host) are paid again.
    paid_again = standin.stats.inputs_embedded - total
    assert paid_again <= 2 * 32, f"the rerun re-embedded {paid_again} inputs computed before the kill"
    import pyarrow.parquet as pq

    assert pq.read_table(home / "warehouse" / "docs" / "embedding_index.parquet").num_rows == total
