"""Canceling a request that already has a Dagster run: the run is canceled as the webserver's Terminate does it.

The instance's run coordinator cancels a run still QUEUED in Dagster at once (it never starts), and asks the
run launcher to terminate a STARTED one, which then stops within seconds (CANCELING, then CANCELED). A run
serves every request of its group (one run per collection), so all of them are canceled with it. Imported
only when a cancel needs it: the intake does not import Dagster at start.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from orca_intake.errors import Conflict, ServiceUnavailable
from orca_resources.intake_queue import IntakeQueue, IntakeRequest
from orca_resources.intake_run_outcome import RUN_STATUS, find_run, record_outcome, request_members

RETRY_SECONDS = "5"
# What Dagster's webserver lets a user terminate (dagster's CANCELABLE_RUN_STATUSES).
CANCELABLE = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTED)


@dataclass(frozen=True)
class RunCanceled:
    """The request after the cancel, its run, every request that run served, and whether it is still stopping."""

    row: IntakeRequest
    run_id: str
    requests: list[str]
    stopping: bool


def cancel_run_of(queue: IntakeQueue, instance: dg.DagsterInstance, row: IntakeRequest) -> RunCanceled:
    """Cancel or terminate the run of a launched or running `row`; Conflict when there is nothing to cancel
    now (run finished, not created yet, or starting), ServiceUnavailable when Dagster could not terminate it."""
    run = find_run(queue, instance, row)
    if run is None:
        raise Conflict(
            f"request {row.request_id} is being launched and its Dagster run does not exist yet; "
            f"try again in {RETRY_SECONDS} seconds",
            code="job_launching",
            headers={"Retry-After": RETRY_SECONDS},
        )
    members = request_members(run) | {row.request_id}
    if run.is_finished:
        record_outcome(queue, instance, run, members)
        raise Conflict(
            f"request {row.request_id} has already finished: its run {run.run_id} "
            f"{RUN_STATUS.get(run.status, run.status.value)}",
            code="job_finished",
        )
    if run.status in CANCELABLE:
        try:
            terminated = instance.run_coordinator.cancel_run(run.run_id)
        except Exception as error:  # noqa: BLE001 - whatever the launcher raised, the caller learns it and may retry
            terminated, reason = False, f"{type(error).__name__}: {error}"
        else:
            reason = "the run launcher refused"
        if not terminated:
            raise ServiceUnavailable(
                f"could not terminate run {run.run_id} of request {row.request_id} ({reason}); "
                "terminate it from the Dagster webserver",
                code="terminate_failed",
            )
    elif run.status != dg.DagsterRunStatus.CANCELING:  # NOT_STARTED or STARTING: a launcher is starting it
        raise Conflict(
            f"the run {run.run_id} of request {row.request_id} is starting; try again in {RETRY_SECONDS} seconds",
            code="job_starting",
            headers={"Retry-After": RETRY_SECONDS},
        )
    run = instance.get_run_by_id(run.run_id) or run
    record_outcome(queue, instance, run, members)
    return RunCanceled(
        row=queue.get(row.request_id) or row, run_id=run.run_id, requests=sorted(members), stopping=not run.is_finished
    )
