"""`intake_sensor`: requests the REST intake queued become runs, one per collection and job.

Each tick reads the oldest queued requests (at most `MAX_QUEUED_ROWS`) and groups them by collection, so a
burst of posts becomes one run per collection, not one per document. Which job serves each kind of request,
which requests share a run and how it is configured is one table, `sensors.intake_runs.KINDS`.

The run key is the oldest request's id, so a request never runs twice; its tags name every request of
the group, which is how `intake_run_status_sensor` finds the run of each request. Rows are marked
`launched` in the same evaluation; one whose run was never created is put back in the queue by the status
sensor. The queue's `status` column is the real cursor; the sensor cursor only shows the last request seen.
"""

from __future__ import annotations

import json

import dagster as dg

from orca_assets.jobs import embed_collection_job
from orca_assets.partitions import collections_partitions
from orca_assets.prepare_model_job import prepare_model_job
from orca_assets.purge_collection_job import purge_collection_job
from orca_core.embedder import Embedder
from orca_core.tags import REQUEST_IDS_TAG, REQUEST_TAG, SOURCE_INTAKE, SOURCE_TAG
from orca_resources.intake_queue_resource import IntakeQueueResource
from orca_resources.warehouse import WarehouseResource
from sensors.intake_runs import Launch, RequestRejected, group_requests, kind_of

MAX_QUEUED_ROWS = 500
MAX_RUNS_PER_TICK = 20


@dg.sensor(
    jobs=[embed_collection_job, prepare_model_job, purge_collection_job],
    minimum_interval_seconds=3,  # below the daemon's 5 s loop, so every loop picks up new requests
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches one run per collection for the requests the REST intake queued.",
)
def intake_sensor(
    context: dg.SensorEvaluationContext,
    intake_queue: IntakeQueueResource,
    warehouse: WarehouseResource,
    embedder: dg.ResourceParam[Embedder],
) -> dg.SensorResult:
    """One tick: group queued requests, reject what cannot run, request one run per group, mark them launched."""
    queue = intake_queue.queue()
    rows = queue.with_status(["queued"], limit=MAX_QUEUED_ROWS)
    if not rows:
        return dg.SensorResult(skip_reason="no queued intake requests", cursor=context.cursor)
    launch = Launch(
        known=set(context.instance.get_dynamic_partitions(collections_partitions.name)),
        layout=warehouse.layout,
        embedder=embedder,
        storage=warehouse.storage,
    )
    new_partitions: list[str] = []
    run_requests: list[dg.RunRequest] = []
    launched: list[str] = []
    failed = 0
    for group in group_requests(rows):
        if len(run_requests) >= MAX_RUNS_PER_TICK:
            break
        ids = [row.request_id for row in group]
        what = f"{group[0].kind} {group[0].collection}".rstrip()
        tags = {SOURCE_TAG: SOURCE_INTAKE, REQUEST_TAG: ids[0], REQUEST_IDS_TAG: ",".join(ids)}
        try:
            request = kind_of(group[0]).run_request(group, tags, launch)
        except RequestRejected as error:
            queue.set_status(ids, "failed", error=str(error))
            context.log.warning(f"{what}: {len(ids)} request(s) failed: {error}")
            failed += len(ids)
            continue
        if request.partition_key and request.partition_key not in launch.known:
            new_partitions.append(request.partition_key)
            launch.known.add(request.partition_key)
        run_requests.append(request)
        launched.extend(ids)
        context.log.info(f"{what}: one run for {len(ids)} request(s), key {ids[0]}")
    if launched:
        # Marked before the daemon creates the runs: a crash in between leaves them launched without a run,
        # which the status sensor notices and requeues.
        queue.mark_launched(launched, None)
    cursor = json.dumps({"last_request": rows[-1].request_id, "launched": len(launched), "failed": failed})
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=(
            [collections_partitions.build_add_request(new_partitions)] if new_partitions else []
        ),
        cursor=cursor,
        skip_reason=None if run_requests else f"{failed} request(s) failed before launch",
    )
