"""Orca beyond one machine, end to end: a PostgreSQL instance, inbox/ and warehouse/ on an object store
(SeaweedFS), one `dagster-daemon` launching each run in a container (DockerRunLauncher), the intake and the
webserver as processes, and the Ollama stand-in.

Each run container is a machine of its own: it is given no folder of the daemon's host (only the interpreter,
the virtualenv and the code, read-only) and keeps its local copy in its own /tmp. So a document that reaches
the served index proves that nothing relies on a shared local folder."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import dagster as dg
import httpx
import pytest
import yaml

from tests.docker_daemon import host_volumes
from tests.processes import (
    ManagedProcess,
    console_script,
    free_port,
    orca_env,
    wait_for_url,
    wait_intake_job,
    wait_until,
)
from tests.system.test_docker_runs import (  # noqa: F401 - the module's dockerd fixture, shared here
    CONTAINER_TAG,
    ROOT,
    docker_daemon,
    docker_instance_yaml,
    finished_runs,
    instance_for,
    kill_run_container,
    relaunch,
)

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.slow]
PREFIX = "orca"
RUN_HOME = "/tmp/orca-run"  # inside each run container: its own disk, never the host's


def s3_instance_yaml(home: Path) -> dict:
    """The Docker instance config for object storage: no ORCA_HOME bind; the store's URL goes along."""
    config = docker_instance_yaml(home)
    launcher = config["run_launcher"]["config"]
    launcher["container_kwargs"]["volumes"] = host_volumes()
    launcher["env_vars"] = [f"ORCA_HOME={RUN_HOME}" if name == "ORCA_HOME" else name for name in launcher["env_vars"]]
    launcher["env_vars"].append("ORCA_STORAGE_URL")
    return config


@pytest.fixture
def deployment(tmp_path, docker_daemon, postgres_server, postgres_database, s3_server, s3_bucket):  # noqa: F811
    home = tmp_path / "orca"
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text(yaml.safe_dump(s3_instance_yaml(home)))
    port, web_port = free_port(), free_port()
    env = orca_env(home, DOCKER_HOST=docker_daemon.host, ORCA_LOG_BUCKET=s3_bucket,
                   ORCA_STORAGE_URL=f"s3://{s3_bucket}/{PREFIX}", ORCA_INTAKE_PORT=str(port),
                   ORCA_INTAKE_DB_URL=postgres_server.url(postgres_database),
                   **postgres_server.dagster_env(postgres_database), **s3_server.env())
    processes: list[ManagedProcess] = []

    def start(**overrides: str) -> tuple[ManagedProcess, str]:
        run_env = {**env, **overrides}
        processes.append(ManagedProcess([console_script("dagster-daemon"), "run", "-m", "orca.definitions"],
                                        env=run_env, log_path=tmp_path / "daemon.log", cwd=ROOT))
        processes.append(ManagedProcess([sys.executable, "-m", "orca_intake"], env=run_env,
                                        log_path=tmp_path / "intake.log", cwd=ROOT))
        processes.append(ManagedProcess([console_script("dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port),
                                         "-m", "orca.definitions"], env=run_env, log_path=tmp_path / "web.log", cwd=ROOT))
        wait_for_url(f"http://127.0.0.1:{port}/health/live", timeout=90, process=processes[1])
        wait_for_url(f"http://127.0.0.1:{web_port}/server_info", timeout=120, process=processes[2])
        return processes[0], f"http://127.0.0.1:{port}"

    yield home, env, start, web_port
    for process in processes:
        process.stop()


def served_doc_ids(s3_server, bucket: str) -> set[str]:
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    client = s3_server.client()
    try:
        pointer = json.loads(client.get_object(Bucket=bucket, Key=f"{PREFIX}/warehouse/docs/embedding_index.current")["Body"].read())
    except client.exceptions.NoSuchKey:
        return set()
    fs = pafs.S3FileSystem(access_key=s3_server.env()["AWS_ACCESS_KEY_ID"], region=s3_server.env()["AWS_REGION"],
                           secret_key=s3_server.env()["AWS_SECRET_ACCESS_KEY"], endpoint_override=s3_server.endpoint,
                           scheme="http")
    return set(pq.read_table(f"{bucket}/{pointer['key']}", filesystem=fs, columns=["doc_id"])["doc_id"].to_pylist())


def test_posted_and_dropped_documents_reach_the_index_on_the_store_through_containers(
    deployment, docker_daemon, s3_server, s3_bucket, monkeypatch  # noqa: F811
):
    home, env, start, web_port = deployment
    daemon, intake = start()
    posted = httpx.post(f"{intake}/v1/collections/docs/documents", timeout=30,
                        json={"documents": [{"id": "tides.md", "text": "# Tides\n\nThe tide rises twice a day."}]})
    assert posted.status_code == 202, posted.text
    request_id = posted.json()["request_id"]

    job = wait_intake_job(intake, request_id, timeout=300, log=lambda: daemon.output()[-4000:])
    assert job["status"] == "succeeded", job
    assert served_doc_ids(s3_server, s3_bucket) == {"tides.md"}

    # A document dropped as an object: the inbox sensor lists the store and a container run indexes it. A
    # reader searches through the intake all the while: it sees the old index or the new one, never an error.
    answers: list[tuple[int, list[str]]] = []
    stop = threading.Event()

    def reader() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                found = client.post(f"{intake}/v1/search", json={"collection": "docs", "query": "tides", "k": 5})
                answers.append((found.status_code, sorted(row["doc_id"] for row in found.json().get("results", []))))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        s3_server.client().put_object(Bucket=s3_bucket, Key=f"{PREFIX}/inbox/docs/reefs.md",
                                      Body=b"# Reefs\n\nCoral reefs shelter a quarter of sea life.")
        wait_until(lambda: served_doc_ids(s3_server, s3_bucket) == {"tides.md", "reefs.md"}, timeout=300,
                   interval=1, message=f"the dropped object was not indexed:\n{daemon.output()[-4000:]}")
        wait_until(lambda: answers and answers[-1][1] == ["reefs.md", "tides.md"], timeout=30, interval=0.2,
                   message=f"the intake's searches never saw the new index: {answers[-3:]}")
    finally:
        stop.set()
        thread.join(60)
    assert {status for status, _ in answers} == {200}
    assert {tuple(ids) for _, ids in answers} <= {("tides.md",), ("reefs.md", "tides.md")}
    found = httpx.post(f"{intake}/v1/search", json={"collection": "docs", "query": "coral reefs", "k": 2}, timeout=30)
    assert found.status_code == 200, found.text
    assert found.json()["results"][0]["doc_id"] == "reefs.md"

    with instance_for(env, home, monkeypatch) as instance:
        # The run publishes the index before it ends: its success is recorded a moment after searches see it.
        wait_until(lambda: len(finished_runs(instance)) >= 2, timeout=60, interval=0.5,
                   message=f"the dropped object's run did not finish:\n{daemon.output()[-4000:]}")
        runs = finished_runs(instance)
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        assert all(run.tags.get(CONTAINER_TAG) for run in runs)  # every run had a container of its own
    # Nothing was written into the daemon's host folders: the runs' copies lived and died in their containers.
    assert not (home / "warehouse").exists() and not (home / "inbox").exists()
    # The webserver, another process on the same instance, shows the runs.
    query = {"query": "{ runsOrError { ... on Runs { results { runId status } } } }"}
    answer = httpx.post(f"http://127.0.0.1:{web_port}/graphql", json=query, timeout=30).json()
    statuses = {run["runId"]: run["status"] for run in answer["data"]["runsOrError"]["results"]}
    assert all(statuses.get(run.run_id) == "SUCCESS" for run in runs)


def test_a_killed_run_container_fails_and_the_rerun_resumes_from_the_store(
    deployment, docker_daemon, s3_server, s3_bucket, ollama_standin_factory, monkeypatch  # noqa: F811
):
    home, env, start, _ = deployment
    standin = ollama_standin_factory(cost_fixed_s=0.02)  # about 0.6 s per batch of 32 on its one slot
    total = 320
    client = s3_server.client()
    for number in range(total):
        body = f"Note {number}: lighthouse {number} keeps its lamp lit for {number * 3} ships.".encode()
        client.put_object(Bucket=s3_bucket, Key=f"{PREFIX}/inbox/docs/note-{number:03d}.txt", Body=body)
    daemon, _ = start(ORCA_EMBEDDER="ollama", OLLAMA_HOST=standin.url)
    with instance_for(env, home, monkeypatch) as instance:
        wait_until(lambda: standin.stats.embed_requests >= 3, timeout=300, interval=0.05,
                   message=f"no embedding started; daemon log:\n{daemon.output()[-4000:]}")
        run = kill_run_container(docker_daemon, instance, daemon)
        assert served_doc_ids(s3_server, s3_bucket) == set()
        # The inbox sensor sees no new change; a reindex is asked for as an operator would.
        relaunch(instance, daemon, {**env, "ORCA_EMBEDDER": "ollama", "OLLAMA_HOST": standin.url}, run)
    paid_again = standin.stats.inputs_embedded - total
    assert paid_again <= 2 * 32, f"the rerun re-embedded {paid_again} inputs computed before the kill"
    assert len(served_doc_ids(s3_server, s3_bucket)) == total
