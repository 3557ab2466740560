"""`intake_run_status_sensor`: each launched intake request follows its Dagster run to the end.

Every tick reads a page of `launched`/`running` requests, finds their runs (by run id once known, else by
the `orca/request_id` tag `intake_sensor` puts on the run of each group) and moves every request the run
names in `orca/request_ids` to the run's state: `launched` (queued in Dagster), `running`, then
`succeeded` with the counts of the run's materializations, `failed` with the first error, or `canceled`.
It polls rather than reacting to run events, so it also repairs requests after it was stopped for a while.

A request still `launched` without a run after `ORPHAN_SECONDS` lost its run request (daemon stopped between
the intake sensor's evaluation and run creation) and goes back to `queued`.

Cursor: `{"after": [created_at, request_id]}`, where the next page starts; empty after the last page.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import dagster as dg

from orca_core.tags import REQUEST_TAG
from orca_resources.intake_queue_resource import IntakeQueueResource
from orca_resources.intake_run_outcome import RUN_STATUS, record_outcome, request_members

PAGE_SIZE = 200
MAX_FINISHED_PER_TICK = 50  # each one reads the run's event log
ORPHAN_SECONDS = 300

def _position(raw: str | None) -> tuple[datetime, str] | None:
    try:
        stamp, request_id = json.loads(raw)["after"]
        return datetime.fromisoformat(stamp), str(request_id)
    except (TypeError, ValueError, KeyError):
        return None


@dg.sensor(
    minimum_interval_seconds=4,  # every 5 s daemon loop, not every other one
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Keeps each REST intake request's status, run id, counts and error in step with its run.",
)
def intake_run_status_sensor(
    context: dg.SensorEvaluationContext, intake_queue: IntakeQueueResource
) -> dg.SensorResult:
    """One tick: reconcile a page of active requests with their runs."""
    queue = intake_queue.queue()
    rows = queue.active_page(PAGE_SIZE, _position(context.cursor))
    cursor = None
    if len(rows) == PAGE_SIZE:
        cursor = json.dumps({"after": [rows[-1].created_at.isoformat(), rows[-1].request_id]})
    if not rows:
        return dg.SensorResult(skip_reason="no launched or running intake requests", cursor=cursor)

    instance = context.instance
    runs: dict[str, dg.DagsterRun] = {}
    if known := [row.run_id for row in rows if row.run_id]:
        runs.update((run.run_id, run) for run in instance.get_runs(dg.RunsFilter(run_ids=known)))
    if unknown := [row.request_id for row in rows if not row.run_id]:
        runs.update((run.run_id, run) for run in instance.get_runs(dg.RunsFilter(tags={REQUEST_TAG: unknown})))

    by_run_id: dict[str, set[str]] = {}
    for row in rows:
        if row.run_id:
            by_run_id.setdefault(row.run_id, set()).add(row.request_id)
    handled: set[str] = set()
    changed = finished = 0
    for run in runs.values():
        members = request_members(run) | by_run_id.get(run.run_id, set())
        handled.update(members)
        if RUN_STATUS.get(run.status, "running") in ("succeeded", "failed", "canceled"):
            if finished >= MAX_FINISHED_PER_TICK:
                continue  # the rest of the finished runs next tick
            finished += 1
        changed += record_outcome(queue, instance, run, members)

    cutoff = datetime.now(timezone.utc) - timedelta(seconds=ORPHAN_SECONDS)
    lost = [row for row in rows if row.request_id not in handled]
    if gone := [row.request_id for row in lost if row.run_id]:
        queue.set_status(gone, "failed", error="its run no longer exists in the Dagster instance")
        changed += len(gone)
    if orphans := [row.request_id for row in lost if not row.run_id and (row.launched_at or cutoff) < cutoff]:
        context.log.warning(f"{len(orphans)} launched request(s) never got a run; queueing them again")
        changed += queue.requeue(orphans)
    return dg.SensorResult(
        cursor=cursor, skip_reason=None if changed else f"{len(rows)} active request(s), no change"
    )
