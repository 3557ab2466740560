"""`purge_collection_job` executed in process on a temporary instance and ORCA_HOME.

The job is partitioned by collection. A purge removes the collection's warehouse folder and its partition
(and its run, which deleted its own partition, still ends as a success), keeps the inbox unless
`delete_inbox`, cancels the collection's intake requests still waiting (and only those, and only that
collection's); with an embed run of the collection in progress it refuses, or waits for it with
`wait_seconds`. Queued embed runs wait behind the purge (its run carries `dagster/partition`), so they do
not block it.
"""

from __future__ import annotations

import threading
import time

import dagster as dg
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

import orca_assets.purge_collection_job as purge_module
from orca_resources.warehouse import WarehouseResource
from tests.op_job_helpers import failure, output_metadata

COLLECTION = "handbook"


@pytest.fixture
def built(sensor_harness):
    """`handbook` with documents and an index built by embed_collection_job; `other`, a neighbour to spare."""
    folder = sensor_harness.inbox(COLLECTION)
    (folder / "tides.md").write_text("Tides rise twice a day near the harbour.", encoding="utf-8")
    (folder / "moons.txt").write_text("The moon pulls the sea; the sun pulls less.", encoding="utf-8")
    sensor_harness.instance.add_dynamic_partitions("collections", [COLLECTION, "other"])
    run = sensor_harness.job().execute_in_process(partition_key=COLLECTION, instance=sensor_harness.instance)
    assert run.success and (sensor_harness.home / "warehouse" / COLLECTION / "embedding_index.parquet").is_file()
    (sensor_harness.inbox("other") / "x.md").write_text("x", encoding="utf-8")
    (sensor_harness.home / "warehouse" / "other").mkdir(parents=True)
    (sensor_harness.home / "warehouse" / "other" / "embedding_index.parquet").write_bytes(b"stand-in")
    return sensor_harness


def purge(harness, op_job, *, partition_key=COLLECTION, tags=None, raise_on_error=True, **config
          ) -> dg.ExecuteInProcessResult:
    job = op_job(
        "purge_collection_job",
        warehouse=WarehouseResource(home=str(harness.home)),
        intake_queue=harness.queue_resource(),
    )
    return job.execute_in_process(
        partition_key=partition_key,
        run_config={"ops": {"wait_until_collection_idle": {"config": config}}},
        instance=harness.instance,
        tags=tags,
        raise_on_error=raise_on_error,
    )


def start_embed_run(harness, status=dg.DagsterRunStatus.STARTED) -> dg.DagsterRun:
    """A run of embed_collection_job for the collection, recorded as in progress (as another process would)."""
    job = harness.job()
    if status == dg.DagsterRunStatus.QUEUED:  # a queued run needs the code origin the daemon would load it from
        location = InProcessCodeLocationOrigin(LoadableTargetOrigin(python_file=__file__))
        origin = RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job.name)
        return harness.instance.add_run(
            dg.DagsterRun(job_name=job.name, status=status, tags={"dagster/partition": COLLECTION},
                          remote_job_origin=origin)
        )
    run = harness.instance.create_run_for_job(
        job, tags={"dagster/partition": COLLECTION}, status=dg.DagsterRunStatus.NOT_STARTED
    )
    harness.instance.handle_run_event(run.run_id, dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_START.value, job_name=job.name, message="started",
    ))
    assert harness.instance.get_run_by_id(run.run_id).status == status
    return run


def finish(harness, run: dg.DagsterRun) -> None:
    harness.instance.handle_run_event(run.run_id, dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name, message="done",
    ))


def test_purge_removes_data_and_partition_keeps_inbox_and_cancels_waiting_requests(built, op_job):
    queue = built.queue
    waiting = queue.enqueue("documents", COLLECTION, {"doc_ids": ["new.md"]}).request_id
    lost = queue.enqueue("embed", COLLECTION, {"force": False}).request_id
    queue.mark_launched([lost], None)  # launched, but its run never came: nothing will ever run it
    finished_run = built.instance.get_runs(dg.RunsFilter(tags={"dagster/partition": COLLECTION}))[0]
    followed = queue.enqueue("embed", COLLECTION, {"force": False}).request_id
    queue.mark_launched([followed], finished_run.run_id)  # its run exists: the status sensor reports it
    elsewhere = queue.enqueue("documents", "other", {"doc_ids": ["x.md"]}).request_id

    result = purge(built, op_job)

    assert result.success
    assert not (built.home / "warehouse" / COLLECTION).exists()
    assert (built.home / "warehouse" / "other" / "embedding_index.parquet").is_file()
    assert sorted(p.name for p in (built.home / "inbox" / COLLECTION).iterdir()) == ["moons.txt", "tides.md"]
    assert built.instance.get_dynamic_partitions("collections") == ["other"]
    assert [p.name for p in (built.home / "warehouse").iterdir()] == ["other"]  # nothing left aside
    for request_id in (waiting, lost):
        row = queue.get(request_id)
        assert row.status == "canceled" and row.error == f"collection {COLLECTION} was purged by run {result.run_id}"
    assert [queue.get(i).status for i in (followed, elsewhere)] == ["launched", "queued"]
    summary = output_metadata(result, "purge_collection")
    assert summary["warehouse_files_removed"] >= 1 and summary["warehouse_bytes_removed"] > 0
    assert (summary["inbox_deleted"], summary["inbox_files"], summary["partition_deleted"]) == (False, 2, True)
    assert summary["requests_canceled"] == 2


def test_delete_inbox_removes_the_documents_too(built, op_job):
    result = purge(built, op_job, delete_inbox=True)
    assert result.success and output_metadata(result, "purge_collection")["inbox_deleted"] is True
    assert not (built.home / "inbox" / COLLECTION).exists() and (built.home / "inbox" / "other").is_dir()
    assert [p.name for p in (built.home / "inbox").iterdir()] == ["other"]


def test_embed_run_in_progress_is_refused_and_nothing_is_touched(built, op_job):
    run = start_embed_run(built)
    result = purge(built, op_job, raise_on_error=False)
    step, message = failure(result)
    assert step == "wait_until_collection_idle"
    assert message.startswith(f"refusing to purge {COLLECTION}: embed_collection_job run(s) of it in progress: "
                              f"{run.run_id} (started). Purging now would race them.")
    assert (built.home / "warehouse" / COLLECTION / "embedding_index.parquet").is_file()
    assert COLLECTION in built.instance.get_dynamic_partitions("collections")


def test_waits_for_the_run_in_progress_when_asked(built, op_job, monkeypatch):
    monkeypatch.setattr(purge_module, "POLL_SECONDS", 0.05)
    run = start_embed_run(built)
    timer = threading.Timer(0.5, finish, args=(built, run))
    timer.start()
    started = time.monotonic()
    try:
        result = purge(built, op_job, wait_seconds=30)
    finally:
        timer.cancel()
    assert result.success and time.monotonic() - started < 10
    assert output_metadata(result, "wait_until_collection_idle")["waited_seconds"] > 0  # it did wait
    assert not (built.home / "warehouse" / COLLECTION).exists()


def test_gives_up_after_wait_seconds(built, op_job, monkeypatch):
    monkeypatch.setattr(purge_module, "POLL_SECONDS", 0.05)
    start_embed_run(built)
    result = purge(built, op_job, wait_seconds=1, raise_on_error=False)
    assert "(still after waiting 1s)" in failure(result)[1]
    assert (built.home / "warehouse" / COLLECTION).is_dir()


def test_queued_embed_runs_wait_behind_the_purge(built, op_job):
    start_embed_run(built, status=dg.DagsterRunStatus.QUEUED)
    # The purge's run carries dagster/partition, so the run queue keeps that queued run behind it.
    result = purge(built, op_job)
    assert result.success and not (built.home / "warehouse" / COLLECTION).exists()
    assert result.dagster_run.tags["dagster/partition"] == COLLECTION


def test_the_run_that_deleted_its_own_partition_ends_as_a_success(built, op_job):
    result = purge(built, op_job)
    assert COLLECTION not in built.instance.get_dynamic_partitions("collections")
    run = built.instance.get_run_by_id(result.run_id)
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == COLLECTION
    # Both steps ran to the end, the second one after the partition was gone.
    assert {event.step_key for event in result.all_events if event.is_step_success} == {
        "wait_until_collection_idle", "purge_collection"
    }
    # The collection can be registered and purged again (its inbox stayed).
    built.instance.add_dynamic_partitions("collections", [COLLECTION])
    assert purge(built, op_job).success


def test_the_collection_is_the_partition_and_the_name_is_checked(built, op_job):
    assert purge_module.purge_collection_job.partitions_def.name == "collections"
    unpartitioned = purge(built, op_job, partition_key=None, raise_on_error=False)
    assert failure(unpartitioned) == (
        "wait_until_collection_idle",
        "purge_collection_job purges one collection: launch it for a partition (the collection)",
    )
    # A run tagged with an invalid name (the launchpad only offers registered ones) touches nothing.
    invalid = purge(built, op_job, partition_key=None, tags={"dagster/partition": "../other"}, raise_on_error=False)
    assert "invalid collection name '../other'" in failure(invalid)[1]
    assert (built.home / "warehouse" / "other").is_dir() and (built.home / "warehouse" / COLLECTION).is_dir()
