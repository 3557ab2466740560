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
import re
from datetime import datetime, timedelta, timezone

import dagster as dg

from orca_core.tags import REQUEST_IDS_TAG, REQUEST_TAG
from orca_resources.intake_queue_resource import IntakeQueueResource

PAGE_SIZE = 200
MAX_FINISHED_PER_TICK = 50  # each one reads the run's event log
ORPHAN_SECONDS = 300
MAX_ERROR_CHARS = 2000

_STATUS = {
    dg.DagsterRunStatus.QUEUED: "launched",
    dg.DagsterRunStatus.NOT_STARTED: "launched",
    dg.DagsterRunStatus.STARTING: "launched",
    dg.DagsterRunStatus.STARTED: "running",
    dg.DagsterRunStatus.CANCELING: "running",
    dg.DagsterRunStatus.SUCCESS: "succeeded",
    dg.DagsterRunStatus.FAILURE: "failed",
    dg.DagsterRunStatus.CANCELED: "canceled",
}
# Orca's errors and dg.Failure carry messages written for users; their class path is noise.
_CLASS_PREFIX = re.compile(r"^(?:orca\w*\.[\w.]*|dagster\._core\.definitions\.events\.Failure): ")
_COUNTS = {  # count name -> (asset, metadata key)
    "documents": ("documents", "documents"),
    "documents_added": ("documents", "added"),
    "documents_updated": ("documents", "updated"),
    "documents_unchanged": ("documents", "unchanged"),
    "documents_deleted": ("documents", "deleted"),
    "documents_failed": ("documents", "failed"),
    "chunks": ("chunks", "total"),
    "chunks_added": ("chunks", "added"),
    "chunks_deleted": ("chunks", "deleted"),
    "inputs_sent": ("embeddings", "inputs_sent"),
    "embeddings_reused": ("embeddings", "reused"),
    "embeddings_failed": ("embeddings", "failed"),
    "embed_seconds": ("embeddings", "embed_seconds"),
    "model": ("embeddings", "model"),
    "rows": ("embedding_index", "dagster/row_count"),
}


def run_counts(instance: dg.DagsterInstance, run_id: str) -> dict:
    """The run's numbers, from the materialization metadata and check results in its event log."""
    metadata: dict[str, dict] = {}
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None:
            values = {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}
            metadata[materialization.asset_key.path[-1]] = values
    counts = {name: metadata.get(asset, {}).get(key) for name, (asset, key) in _COUNTS.items()}
    counts = {name: value for name, value in counts.items() if value is not None}
    failed_checks = []
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation is not None and not evaluation.passed:
            failed_checks.append(evaluation.check_name)
    if failed_checks:
        counts["failed_checks"] = sorted(failed_checks)
    return counts


def _message(error) -> str:
    while error is not None and error.cause is not None:
        error = error.cause  # the root cause says what to fix; the wrappers say where
    return _CLASS_PREFIX.sub("", error.message.strip()) if error is not None else ""


def run_error(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """Why the run failed, in a few lines: each failed step's user-facing message, else the run's."""
    messages: list[str] = []
    fallback = ""
    kinds = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    for record in instance.get_records_for_run(run.run_id, of_type=kinds).records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            text = data.user_failure_data.description if data.user_failure_data else None
            messages.append(f"{event.step_key}: {text or _message(data.error) or 'failed'}")
        else:
            data = event.event_specific_data
            fallback = (_message(data.error) if data is not None else "") or entry.message or ""
    text = "\n".join(messages) or fallback or f"run {run.run_id} failed"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


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
        tagged = run.tags.get(REQUEST_IDS_TAG) or run.tags.get(REQUEST_TAG) or ""
        members = {member for member in tagged.split(",") if member} | by_run_id.get(run.run_id, set())
        handled.update(members)
        status = _STATUS.get(run.status, "running")
        error = counts = None
        if status in ("succeeded", "failed", "canceled"):
            if finished >= MAX_FINISHED_PER_TICK:
                continue  # the rest of the finished runs next tick
            finished += 1
            if status == "succeeded":
                counts = run_counts(instance, run.run_id)
            elif status == "failed":
                error = run_error(instance, run)
            else:
                error = f"run {run.run_id} was canceled"
        changed += queue.record_run(members, status, run.run_id, error=error, counts=counts)

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
