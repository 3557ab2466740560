"""What a Dagster run means for the intake requests it serves: their status, counts and error.

One home for the rule, used by `intake_run_status_sensor` (which polls every active request) and by the
intake's `GET /v1/jobs/{id}` (which looks at the request's run at once, so a caller learns `succeeded` as soon
as the run ends instead of at the sensor's next tick). Both write through `IntakeQueue.record_run`, which only
moves unfinished rows forward, so the two never disagree.
"""

from __future__ import annotations

import re

import dagster as dg

from orca_core.tags import REQUEST_IDS_TAG, REQUEST_TAG
from orca_resources.intake_queue import IntakeRequest

MAX_ERROR_CHARS = 2000

RUN_STATUS = {  # Dagster's run status -> the intake request's
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
CLASS_PREFIX = re.compile(r"^(?:orca\w*\.[\w.]*|dagster\._core\.definitions\.events\.Failure): ")
COUNTS = {  # count name -> (asset, metadata key)
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
    counts = {name: metadata.get(asset, {}).get(key) for name, (asset, key) in COUNTS.items()}
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
    return CLASS_PREFIX.sub("", error.message.strip()) if error is not None else ""


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



def request_members(run: dg.DagsterRun) -> set[str]:
    """The intake requests `run` serves, from its tags."""
    tagged = run.tags.get(REQUEST_IDS_TAG) or run.tags.get(REQUEST_TAG) or ""
    return {member for member in tagged.split(",") if member}


def record_outcome(queue, instance: dg.DagsterInstance, run: dg.DagsterRun, members: set[str]) -> int:
    """Move `members` to what `run`'s state means for them (with counts or error once it ended); rows changed."""
    status = RUN_STATUS.get(run.status, "running")
    error = counts = None
    if status == "succeeded":
        counts = run_counts(instance, run.run_id)
    elif status == "failed":
        error = run_error(instance, run)
    elif status == "canceled":
        error = f"run {run.run_id} was canceled"
    return queue.record_run(members, status, run.run_id, error=error, counts=counts)


def find_run(queue, instance: dg.DagsterInstance, row: IntakeRequest) -> dg.DagsterRun | None:
    """The run serving `row`, or None (not launched, or launched and the daemon has not created its run yet)."""
    if row.run_id:
        runs = instance.get_runs(dg.RunsFilter(run_ids=[row.run_id]), limit=1)
    else:
        # The run is tagged with its group's oldest request: one of the collection's launched requests.
        heads = [other.request_id for other in queue.with_status(["launched"]) if other.collection == row.collection]
        found = instance.get_runs(dg.RunsFilter(tags={REQUEST_TAG: heads})) if heads else []
        runs = [run for run in found if row.request_id in request_members(run)][:1]
    return runs[0] if runs else None


def refresh_request(queue, instance: dg.DagsterInstance, row: IntakeRequest) -> IntakeRequest:
    """`row` brought up to date with its run, when it has one that moved on; else `row` as it was."""
    if row.status not in ("launched", "running"):
        return row
    run = find_run(queue, instance, row)
    if run is None or RUN_STATUS.get(run.status, "running") == row.status:
        return row
    record_outcome(queue, instance, run, request_members(run) | {row.request_id})
    return queue.get(row.request_id) or row
