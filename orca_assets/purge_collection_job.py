"""`purge_collection_job`: remove a collection's derived data and partition, never racing a run writing it.

The job is partitioned by collection (the `collections` dynamic partitions): the partition key names the
collection, so the launchpad offers the collections to choose from and every run carries
`dagster/partition=<collection>`. Its run config holds only the options, `delete_inbox` and `wait_seconds`.
The run deletes its own partition; Dagster does not look the key up again once a run has started, so the
remaining steps and the run's end go on normally (tests/orca_assets/test_purge_collection_job.py).

Two ops. `wait_until_collection_idle` looks for runs of `embed_collection_job` of the collection that are
in progress; it waits up to `wait_seconds` for them to end, then refuses (fails, having touched nothing).
`purge_collection` then:

1. cancels the collection's intake requests that are still waiting (queued, or launched without a run yet)
   and were made before this purge run, so no sensor launches work on a collection being removed;
   requests whose run exists are left to the run-status sensor, which records their real outcome;
2. moves the inbox folder aside (only with `delete_inbox`) and the warehouse folder aside, under the
   collection's writer lock, so readers and a crash see the collection whole or gone, never half of it;
3. deletes the `collections` dynamic partition, then the moved folders.

Without `delete_inbox` the documents stay: the inbox sensor registers the folder again as a collection on
its next tick, and the next change or the nightly reindex rebuilds its index from scratch.

Run queue: as a partitioned run, a purge carries `dagster/partition=<collection>`, so dagster.yaml's
per-partition limit keeps it and the collection's embed runs one at a time, however it was launched (the
intake, the launchpad, or `orca purge`, whose in-process run holds queued runs back once it has started).
Embed runs still *queued* are therefore waiting for this purge and do not count as in progress.

With ORCA_PGVECTOR_URL set, orca/definitions.py serves `purge_collection_with_pgvector_job` under the same
name: a third op, `drop_pgvector_table`, drops the collection's table once the rest is gone. Without the
setting the job needs no database and no `pgvector` resource.
"""

# No `from __future__ import annotations`: Dagster reads the ops' context annotations at definition time.
import shutil
import time
import uuid
from pathlib import Path

import dagster as dg
from pydantic import Field

from orca_assets.jobs import embed_collection_job
from orca_assets.partitions import collections_partitions
from orca_core.collection_lock import collection_lock, instance_postgres_url
from orca_core.layout import check_collection
from orca_core.tags import KIND_TAG, PARTITION_TAG, REQUEST_IDS_TAG
from orca_resources.intake_queue_resource import IntakeQueueResource
from orca_resources.pgvector import PgVectorResource  # imports no psycopg2 until a client is made
from orca_resources.warehouse import WarehouseResource

POLL_SECONDS = 1.0
MAX_LISTED_RUNS = 5
_ACTIVE = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


class PurgeConfig(dg.Config):
    """Whether the collection's documents go too, and how long to wait for a run of it (the partition is the
    collection)."""

    delete_inbox: bool = Field(
        False, description="Also delete its inbox folder, i.e. the documents themselves. Off: only the derived "
        "data and the partition go, and the collection is rebuilt from its documents later."
    )
    wait_seconds: int = Field(
        0, ge=0, description="How long to wait for an embed run of the collection in progress (0: refuse at once)."
    )


def _busy_runs(instance: dg.DagsterInstance, collection: str) -> list[dg.DagsterRun]:
    return list(
        instance.get_runs(
            dg.RunsFilter(job_name=embed_collection_job.name, tags={PARTITION_TAG: collection}, statuses=_ACTIVE)
        )
    )


def run_collection(context: dg.OpExecutionContext) -> str:
    """The collection this run purges: its partition key, checked like any collection name."""
    if not context.has_partition_key:
        raise dg.Failure(
            description="purge_collection_job purges one collection: launch it for a partition (the collection)",
            allow_retries=False,
        )
    try:
        return check_collection(context.partition_key)
    except ValueError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None


def _describe(runs: list[dg.DagsterRun]) -> str:
    listed = ", ".join(f"{run.run_id} ({run.status.value.lower()})" for run in runs[:MAX_LISTED_RUNS])
    return listed + (f" and {len(runs) - MAX_LISTED_RUNS} more" if len(runs) > MAX_LISTED_RUNS else "")


@dg.op(description="Wait (up to wait_seconds) until no embed run of the collection is in progress, else refuse.")
def wait_until_collection_idle(context: dg.OpExecutionContext, config: PurgeConfig) -> dg.Output[dict]:
    """The purge plan, once no `embed_collection_job` run of the collection is in progress."""
    collection = run_collection(context)
    started = time.monotonic()
    told = False
    while busy := _busy_runs(context.instance, collection):
        waited = time.monotonic() - started
        if waited >= config.wait_seconds:
            raise dg.Failure(
                description=(
                    f"refusing to purge {collection}: embed_collection_job run(s) of it in progress: "
                    f"{_describe(busy)}" + (f" (still after waiting {waited:.0f}s)" if config.wait_seconds else "")
                    + ". Purging now would race them. Let them finish or cancel them, then purge again, or set "
                    "wait_seconds to wait for them."
                ),
                allow_retries=False,
            )
        if not told:
            context.log.info(f"waiting up to {config.wait_seconds}s for {_describe(busy)} to finish")
            told = True
        time.sleep(min(POLL_SECONDS, max(0.0, config.wait_seconds - waited)))
    waited = round(time.monotonic() - started, 3)
    context.log.info(f"no embed run of {collection} in progress; purging it")
    plan = {"collection": collection, **config.model_dump()}
    return dg.Output(plan, metadata={"collection": collection, "waited_seconds": waited})


def _size(folder: Path) -> tuple[int, int]:
    """(files, bytes) under `folder`."""
    files = [path for path in folder.rglob("*") if path.is_file()]
    return len(files), sum(path.stat().st_size for path in files)


def _move_aside(folder: Path, run_id: str) -> Path | None:
    """Rename `folder` to a hidden sibling (ignored by sensors, catalog and search); None if it is not there."""
    if not folder.is_dir():
        return None
    aside = folder.with_name(f".{folder.name}.purge-{run_id[:8]}-{uuid.uuid4().hex[:6]}")
    folder.rename(aside)
    return aside


def _cancel_waiting_requests(
    context: dg.OpExecutionContext, queue_resource: IntakeQueueResource, collection: str
) -> int:
    """Cancel the collection's requests made before this purge that have no run yet; how many."""
    queue = queue_resource.queue()
    own = set(filter(None, context.run.tags.get(REQUEST_IDS_TAG, "").split(",")))
    rows = queue.with_status(["queued", "launched"], limit=100_000)
    # Requests posted after the purge was asked for are meant to run after it: they are not canceled.
    own_rows = [row for row in rows if row.request_id in own]
    if own_rows:
        cutoff = min(row.created_at for row in own_rows)
    else:
        record = context.instance.get_run_record_by_id(context.run_id)
        cutoff = record.create_timestamp if record is not None else None
    rows = [
        row for row in rows
        if row.collection == collection and row.request_id not in own and (cutoff is None or row.created_at <= cutoff)
    ]
    covered: set[str] = set()
    if any(row.status == "launched" and not row.run_id for row in rows):
        # A run may exist that the status sensor has not attached yet (possibly finished): it reports the outcome.
        for run in context.instance.get_runs(dg.RunsFilter(tags={PARTITION_TAG: collection}), limit=200):
            covered.update(run.tags.get(REQUEST_IDS_TAG, "").split(","))
    waiting = [
        row.request_id for row in rows
        if row.status == "queued" or (not row.run_id and row.request_id not in covered)
    ]
    if waiting:
        queue.set_status(waiting, "canceled", error=f"collection {collection} was purged by run {context.run_id}")
    return len(waiting)


@dg.op(description="Cancel the waiting intake requests, remove the data and partition (and the inbox if asked).")
def purge_collection(
    context: dg.OpExecutionContext, plan: dict, warehouse: WarehouseResource, intake_queue: IntakeQueueResource
) -> dg.Output[dict]:
    """What was removed: warehouse files and bytes, whether the inbox and the partition went, requests canceled."""
    collection, delete_inbox = plan["collection"], plan["delete_inbox"]
    canceled = _cancel_waiting_requests(context, intake_queue, collection)
    inbox, data = warehouse.layout.inbox(collection), warehouse.layout.warehouse(collection)
    inbox_files = _size(inbox)[0] if inbox.is_dir() else 0
    inbox_aside = _move_aside(inbox, context.run_id) if delete_inbox else None
    files, size = _size(data) if data.is_dir() else (0, 0)
    data_aside = None
    # A step of a run outside the queue (`orca materialize`) may be writing right now: let it finish first.
    data.mkdir(parents=True, exist_ok=True)  # the lock's folder, also where the store has the collection only
    with collection_lock(data, collection, postgres_url=instance_postgres_url(context.instance),
                         on_wait=context.log.info):
        data_aside = _move_aside(data, context.run_id)
        stored_files, stored_size = warehouse.storage.purge(warehouse.layout, collection, inbox=delete_inbox)
        files, size = files + stored_files, size + stored_size
    instance = context.instance
    partition = instance.has_dynamic_partition(collections_partitions.name, collection)
    if partition:
        instance.delete_dynamic_partition(collections_partitions.name, collection)
    for aside in (data_aside, inbox_aside):
        if aside is not None:
            shutil.rmtree(aside)
    summary = {
        "collection": collection, "warehouse_files_removed": files, "warehouse_bytes_removed": size,
        "inbox_deleted": inbox_aside is not None or (delete_inbox and warehouse.storage.remote), "inbox_files": inbox_files, "partition_deleted": partition,
        "requests_canceled": canceled,
    }
    kept = "" if delete_inbox else f"; inbox kept ({inbox_files} file(s)), so the collection will be rebuilt from it"
    context.log.info(
        f"purged {collection}: {files} warehouse file(s) ({size} bytes), partition "
        f"{'deleted' if partition else 'was not registered'}, {canceled} waiting request(s) canceled"
        + ("; inbox deleted" if inbox_aside is not None else kept)
    )
    return dg.Output(summary, metadata=summary)


@dg.job(
    description="Remove a collection's index, warehouse data and partition (its inbox only with delete_inbox); "
    "refuses, or waits, while an embed run of it is in progress.",
    tags={KIND_TAG: "purge"},
    partitions_def=collections_partitions,
)
def purge_collection_job() -> None:
    """wait_until_collection_idle -> purge_collection."""
    purge_collection(wait_until_collection_idle())


@dg.op(description="Drop the collection's pgvector table (the job has this op only when ORCA_PGVECTOR_URL is set).")
def drop_pgvector_table(context: dg.OpExecutionContext, summary: dict, pgvector: PgVectorResource) -> dg.Output[dict]:
    """The purge summary with `pgvector_table_dropped`."""
    collection = summary["collection"]
    dropped = pgvector.client().drop(collection)
    context.log.info(f"{collection}: pgvector table {pgvector.schema_name}.{collection} "
                     + ("dropped" if dropped else "did not exist"))
    summary = {**summary, "pgvector_table_dropped": dropped}
    return dg.Output(summary, metadata=summary)


@dg.job(
    name=purge_collection_job.name,  # the same job for sensors, the intake and the launchpad; one more step
    description=purge_collection_job.description,
    tags={KIND_TAG: "purge"},
    partitions_def=collections_partitions,
)
def purge_collection_with_pgvector_job() -> None:
    """wait_until_collection_idle -> purge_collection -> drop_pgvector_table."""
    drop_pgvector_table(purge_collection(wait_until_collection_idle()))
