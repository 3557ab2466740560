"""deploy/dagster.postgres.yaml on a real (throwaway) PostgreSQL server, without a daemon.

The documented set-up is followed as written: the file becomes DAGSTER_HOME/dagster.yaml, credentials come
from DAGSTER_PG_* variables, `dagster instance migrate` creates the tables, and then `orca materialize`
records its run in PostgreSQL, with the embeddings step counted in the "ollama" pool. The intake queue
works on the same server through its SQLAlchemy URL. (Daemon, sensors and schedule: test_postgres_deployment.)
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from orca_resources.intake_queue_resource import SensorQueue
from tests.orca.test_cli import COLLECTION, write_documents
from tests.processes import console_script, orca_env, run_cli

pytestmark = pytest.mark.postgres

POSTGRES_YAML = Path(__file__).resolve().parents[2] / "deploy" / "dagster.postgres.yaml"


def postgres_home(tmp_path: Path) -> Path:
    """An ORCA_HOME whose DAGSTER_HOME holds the PostgreSQL instance configuration."""
    home = tmp_path / "orca"
    (home / "dagster").mkdir(parents=True)
    shutil.copy(POSTGRES_YAML, home / "dagster" / "dagster.yaml")
    return home


def test_migrate_then_a_cli_run_is_recorded_in_postgres(tmp_path, postgres_server, postgres_database, monkeypatch):
    home = postgres_home(tmp_path)
    env = orca_env(home, **postgres_server.dagster_env(postgres_database))
    migrate = subprocess.run(
        [console_script("dagster"), "instance", "migrate"], env=env, capture_output=True, text=True, timeout=180
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    tables = {row[0] for row in postgres_server.query(postgres_database, "SELECT tablename FROM pg_tables")}
    assert {"runs", "run_tags", "event_logs", "jobs", "job_ticks", "concurrency_limits"} <= tables

    for name, value in postgres_server.dagster_env(postgres_database).items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 2
        (limit,) = concurrency.run_queue_config.tag_concurrency_limits
        assert limit == {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}

    write_documents(home)
    result = run_cli(["materialize", COLLECTION], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = postgres_server.query(
        postgres_database,
        "SELECT r.status, r.pipeline_name FROM runs r JOIN run_tags t ON t.run_id = r.run_id "
        "WHERE t.key = 'dagster/partition' AND t.value = %s",
        (COLLECTION,),
    )
    assert rows == [("SUCCESS", "embed_collection_job")]
    # The embeddings step took a slot of the "ollama" pool, which the default limit created.
    pools = postgres_server.query(postgres_database, 'SELECT concurrency_key, "limit" FROM concurrency_limits')
    assert pools == [("ollama", 2)]
    free = postgres_server.query(
        postgres_database, "SELECT count(*) FROM concurrency_slots WHERE concurrency_key = 'ollama' AND run_id IS NOT NULL"
    )
    assert free == [(0,)], "the finished run still holds a pool slot"


def test_the_intake_queue_lives_on_the_same_server(postgres_server, postgres_database):
    queue = SensorQueue(postgres_server.url(postgres_database))
    try:
        queue.ping()
        first = queue.enqueue("documents", "whales", {"documents": 2})
        second = queue.enqueue("embed", "whales", {"force": True})
        queue.mark_launched([first.request_id, second.request_id], None)
        assert [row.request_id for row in queue.active_page(10)] == [first.request_id, second.request_id]
        queue.record_run([first.request_id, second.request_id], "succeeded", "run-1", counts={"rows": 3})
        assert queue.get(first.request_id).counts == {"rows": 3}
        assert queue.get(first.request_id).created_at.tzinfo is not None
        assert queue.depth_by_status()["succeeded"] == 2
        assert set(queue.last_finished(["whales"])) == {"whales"}
    finally:
        queue.close()
    rows = postgres_server.query(
        postgres_database, "SELECT status, run_id FROM intake_requests ORDER BY created_at, request_id"
    )
    assert rows == [("succeeded", "run-1"), ("succeeded", "run-1")]
