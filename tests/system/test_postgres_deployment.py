"""The production shape on PostgreSQL: a real `dagster-daemon run` and the REST intake as separate processes.

DAGSTER_HOME holds deploy/dagster.postgres.yaml pointing at a throwaway server, migrated with
`dagster instance migrate`, and the intake queue lives in the same database. Shown end to end, and proved by
querying PostgreSQL itself: an intake request becomes a sensor-launched run that succeeds; two runs
submitted for one collection at the same moment go through the queue one after the other (the
`dagster/partition` limit) and leave a correct index; the intake's /metrics reads the runs from PostgreSQL;
and a reindex schedule tick (cron every minute) is recorded with its runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from orca_resources.hashing_embedder import HashingEmbedderResource
from tests.orca.test_concurrent_runs import TEXTS, assert_same_index, lone_run_index, read_index, write_inbox
from tests.orca_intake.test_run_metrics import samples
from tests.postgres import PostgresServer
from tests.processes import (
    ManagedProcess,
    console_script,
    free_port,
    orca_env,
    wait_for_url,
    wait_intake_job,
    wait_until,
)

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")
# Adds a collection's partition, as the sensors do for a new inbox folder.
REGISTER = """
import sys
import dagster as dg
with dg.DagsterInstance.from_config(sys.argv[1]) as instance:
    if not instance.has_dynamic_partition("collections", sys.argv[2]):
        instance.add_dynamic_partitions("collections", [sys.argv[2]])
"""


def ticks(deployment: Deployment, kind: str, name: str) -> list[tuple]:
    """Successful ticks of the sensor or schedule `name` in PostgreSQL's schedule storage."""
    return deployment.query(
        "SELECT id FROM job_ticks WHERE type = %s AND status = 'SUCCESS' AND position(%s in tick_body) > 0",
        (kind, f'"{name}"'),
    )


@dataclass
class Deployment:
    """The running processes and where they keep their state."""

    home: Path
    env: dict[str, str]
    server: PostgresServer
    database: str
    intake_url: str
    daemon: ManagedProcess

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.server.query(self.database, sql, params)

    def runs(self, tag: str, value: str) -> list[tuple]:
        """(run_id, status, start_time, end_time) of the runs carrying the tag, from PostgreSQL."""
        return self.query(
            "SELECT r.run_id, r.status, r.start_time, r.end_time FROM runs r JOIN run_tags t ON t.run_id = r.run_id "
            "WHERE t.key = %s AND t.value = %s ORDER BY r.create_timestamp",
            (tag, value),
        )

    def wait_finished(self, tag: str, value: str, count: int, timeout: float = 240) -> list[tuple]:
        def done():
            rows = self.runs(tag, value)
            return rows if len(rows) >= count and all(row[1] in FINISHED for row in rows) else None

        try:
            return wait_until(done, timeout=timeout, interval=1.0)
        except AssertionError:
            raise AssertionError(f"runs {tag}={value}: {self.runs(tag, value)}\n{self.daemon.output()[-5000:]}") from None


def one_tick_soon() -> str:
    """A cron that fires once, 25 to 85 seconds from now: after the daemon has started, before the last test."""
    tick = (datetime.now(timezone.utc) + timedelta(seconds=25)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return f"{tick.minute} {tick.hour} * * *"  # ORCA_TIMEZONE defaults to UTC


@pytest.fixture(scope="module")
def deployment(postgres_server, tmp_path_factory) -> Iterator[Deployment]:
    """Migrate a fresh database, then start the daemon and the intake on it; stop both at the end."""
    database = postgres_server.create_database("orca_deployment")
    home = tmp_path_factory.mktemp("deployment") / "orca"
    (home / "dagster").mkdir(parents=True)
    (home / "inbox").mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.postgres.yaml", home / "dagster" / "dagster.yaml")
    port = free_port()
    env = orca_env(
        home,
        **postgres_server.dagster_env(database),
        ORCA_INTAKE_DB_URL=postgres_server.url(database),
        ORCA_INTAKE_PORT=str(port),
        ORCA_REINDEX_CRON=one_tick_soon(),
    )
    migrate = subprocess.run(
        [console_script("dagster"), "instance", "migrate"], env=env, capture_output=True, text=True, timeout=180
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    logs = home.parent
    daemon = ManagedProcess(
        [console_script("dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
        env=env, log_path=logs / "daemon.log", cwd=ROOT,
    )
    intake = ManagedProcess([sys.executable, "-m", "orca_intake"], env=env, log_path=logs / "intake.log", cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_url(f"{url}/health/live", timeout=60, process=intake)
        yield Deployment(home, env, postgres_server, database, url, daemon)
    finally:
        intake.stop()
        daemon.stop()


@pytest.mark.timeout(600)
def test_an_intake_request_becomes_a_sensor_run_recorded_in_postgres(deployment):
    documents = [{"id": "orcas.txt", "text": "Orcas hunt in pods and share food."}, {"text": "Krill swarm at night."}]
    posted = httpx.post(f"{deployment.intake_url}/v1/collections/whales/documents", json={"documents": documents})
    assert posted.status_code == 202, posted.text
    request_id = posted.json()["request_id"]

    job = wait_intake_job(deployment.intake_url, request_id, timeout=240, log=lambda: deployment.daemon.output()[-5000:])
    assert job["status"] == "succeeded", job
    run_id = job["run_id"]
    assert deployment.query("SELECT status, pipeline_name FROM runs WHERE run_id = %s", (run_id,)) == [
        ("SUCCESS", "embed_collection_job")
    ]
    assert ("orca/request_id", request_id) in deployment.query(
        "SELECT key, value FROM run_tags WHERE run_id = %s", (run_id,)
    )
    assert deployment.query("SELECT status, run_id FROM intake_requests WHERE request_id = %s", (request_id,)) == [
        ("succeeded", run_id)
    ]
    assert ticks(deployment, "SENSOR", "intake_sensor"), "no successful intake_sensor tick in PostgreSQL"
    assert (deployment.home / "warehouse" / "whales" / "embedding_index.parquet").exists()


@pytest.mark.timeout(600)
def test_two_runs_for_one_collection_take_turns_in_the_queue(deployment, tmp_path):
    write_inbox(deployment.home)
    tags = json.dumps({"dagster/partition": "reef", "orca/test": "same-moment"})
    launch = [
        console_script("dagster"), "job", "launch", "-w", str(ROOT / "workspace.yaml"), "-j", "embed_collection_job",
        "--tags", tags,
    ]
    # The partition must exist before a run of it is submitted (the inbox sensor may add it as well).
    subprocess.run(
        [sys.executable, "-c", REGISTER, str(deployment.home / "dagster"), "reef"], env=deployment.env, check=True,
        timeout=120,
    )
    launchers = [subprocess.Popen(launch, env=deployment.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=180)[0] for process in launchers]
    assert [process.returncode for process in launchers] == [0, 0], outputs
    both_queued = time.time()

    mine = deployment.wait_finished("orca/test", "same-moment", count=2)
    assert [row[1] for row in mine] == ["SUCCESS", "SUCCESS"], mine
    # Both were submitted before either ended, so the queue had to hold one back.
    assert min(end for *_, end in mine) > both_queued
    # Every run of the collection (these two, and any the sensors or the schedule added) ran alone.
    spans = sorted((start, end) for _, _, start, end in deployment.wait_finished("dagster/partition", "reef", count=2))
    for (_, first_end), (second_start, _) in zip(spans, spans[1:]):
        assert second_start >= first_end, f"two runs of one collection overlapped: {spans}"
    assert_same_index(read_index(deployment.home), lone_run_index(tmp_path, HashingEmbedderResource()))
    assert len(read_index(deployment.home)) == len(TEXTS)


def test_the_intake_metrics_read_runs_from_postgres(deployment):
    found = samples(httpx.get(f"{deployment.intake_url}/metrics", timeout=30).text)
    assert found[("orca_dagster_up", ())] == 1
    recorded = deployment.query("SELECT count(*) FROM runs WHERE status = 'SUCCESS'")[0][0]
    assert 3 <= found[("orca_dagster_runs", (("status", "success"),))] <= recorded
    assert found[("orca_collection_last_inputs_sent", (("collection", "whales"),))] >= 0
    assert ("orca_collection_last_inputs_per_second", (("collection", "reef"),)) in found


@pytest.mark.timeout(600)
def test_a_schedule_tick_is_recorded_in_postgres_with_its_runs(deployment):
    def scheduled_runs():
        return ticks(deployment, "SCHEDULE", "reindex_schedule") and deployment.runs("orca/source", "schedule")

    wait_until(scheduled_runs, timeout=150, interval=2.0, message=f"no schedule tick:\n{deployment.daemon.output()[-5000:]}")
    first = deployment.runs("orca/source", "schedule")[0][0]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        (status,) = deployment.query("SELECT status FROM runs WHERE run_id = %s", (first,))[0]
        if status in FINISHED:
            break
        time.sleep(1)
    assert status == "SUCCESS"
