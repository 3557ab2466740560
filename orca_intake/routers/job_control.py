"""`GET /v1/jobs`: requests newest first, filtered and paged; `POST /v1/jobs/{id}/cancel`: cancel one.

The list answers each request's status as last recorded (the status sensor keeps launched and running ones
in step with their runs within seconds; `GET /v1/jobs/{id}` reads the run at once). A cancel takes a
request out of the queue when it is still queued there; once it has a Dagster run, the run is canceled or
terminated (orca_intake/job_cancel.py), and with it every request that run serves. A cancel stops work,
it does not undo a post: documents a canceled request wrote stay in the inbox, and the collection's next run
indexes them unless they are deleted.

A request the intake sensor is launching in the same instant may still get its run (the sensor read it as
queued a moment before): its row stays `canceled`, and the run does what any run of the collection does.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from orca_core.layout import check_collection
from orca_intake.dependencies import QueueDep, SettingsDep
from orca_intake.errors import ERROR_RESPONSES, Conflict, ErrorBody, InvalidInput, NotFound, ServiceUnavailable
from orca_intake.routers.jobs import JobState, JobStatus, job_status
from orca_intake.run_metrics import shared_instance
from orca_resources.intake_queue import FINISHED_STATUSES

router = APIRouter(prefix="/v1", tags=["jobs"])

DEFAULT_LIMIT, MAX_LIMIT = 50, 500


class JobList(BaseModel):
    """One page of requests, newest first."""

    data: list[JobStatus]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class JobCanceled(BaseModel):
    """What a cancel did: `canceled` at once, or `running` while the terminated run stops (then `canceled`)."""

    request_id: str
    status: Literal["canceled", "running"]
    run_id: str | None = Field(description="The Dagster run that was canceled or terminated, if any.")
    canceled_requests: list[str] = Field(
        description="Every request the cancel applies to: this one, and the others its run served."
    )
    message: str


def encode_cursor(created_at: datetime, request_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), request_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a `next_cursor` names, or 422 for anything else."""
    try:
        stamp, request_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        found = datetime.fromisoformat(stamp)
        if not isinstance(request_id, str) or found.tzinfo is None:
            raise ValueError(cursor)
        return found, request_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "cursor is not a `next_cursor` of an earlier answer of this endpoint", code="invalid_cursor"
        ) from None


@router.get("/jobs", summary="List requests", responses={401: ERROR_RESPONSES[401], 422: ERROR_RESPONSES[422]})
def list_jobs(
    settings: SettingsDep,
    queue: QueueDep,
    collection: Annotated[
        str | None,
        Query(
            description="Only this collection's requests.", max_length=63,
            json_schema_extra={"pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
        ),
    ] = None,
    status: Annotated[
        list[JobState] | None, Query(description="Only requests in these statuses (repeat the parameter).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Requests per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=400, description="The `next_cursor` of the previous page.")
    ] = None,
) -> JobList:
    """Every kind of request (documents, deletes, jobs), newest first, with its stored status."""
    if collection is not None:
        try:
            check_collection(collection)
        except ValueError as error:
            raise InvalidInput(str(error), code="invalid_collection") from None
    before = decode_cursor(cursor) if cursor is not None else None
    # One more than asked tells whether another page follows.
    rows = queue.page(collection=collection, statuses=status, limit=limit + 1, before=before)
    more, rows = len(rows) > limit, rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].request_id) if more else None
    return JobList(data=[job_status(row, settings) for row in rows], next_cursor=next_cursor)


@router.post(
    "/jobs/{request_id}/cancel",
    summary="Cancel a request, or terminate its run",
    responses={
        202: {"model": JobCanceled, "description": "Its run was asked to stop and is stopping."},
        401: ERROR_RESPONSES[401],
        404: {"model": ErrorBody},
        409: {"model": ErrorBody, "description": "Already finished, or its run is being created (retry)."},
        503: {"model": ErrorBody, "description": "Dagster could not terminate the run."},
    },
)
def cancel_job(
    request_id: Annotated[str, Path(max_length=64, description="The `request_id` of a 202 answer.")],
    settings: SettingsDep,
    queue: QueueDep,
    request: Request,
    response: Response,
) -> JobCanceled:
    """200 `canceled`: the request (still queued) will never run, or its run was still queued in Dagster and
    was canceled with every request it served. 202 `running`: its started run was terminated and stops within
    seconds. 409 for a finished request, 404 for an unknown one."""
    found = queue.get(request_id)
    if found is None:
        raise NotFound(f"no request {request_id!r}", code="job_not_found")
    if found.status == "queued":
        if queue.cancel_queued(request_id):
            message = "canceled before it was launched: no run will be started for it"
            return JobCanceled(
                request_id=request_id, status="canceled", run_id=None, canceled_requests=[request_id], message=message
            )
        found = queue.get(request_id) or found  # the intake sensor launched it meanwhile
    if found.status in FINISHED_STATUSES:
        raise Conflict(f"request {request_id} has already finished ({found.status})", code="job_finished")
    instance = shared_instance(request.app.state, settings.dagster_home)
    if instance is None:
        raise ServiceUnavailable(
            f"request {request_id} is {found.status} but DAGSTER_HOME {settings.dagster_home} does not exist",
            code="dagster_unavailable",
        )
    from orca_intake.job_cancel import cancel_run_of  # imports Dagster: only when needed

    outcome = cancel_run_of(queue, instance, found)
    stopping = outcome.stopping
    if stopping:
        response.status_code = 202
    others = len(outcome.requests) - 1
    served = f" (and {others} other request(s) it served)" if others else ""
    message = (
        f"run {outcome.run_id} was terminated and is stopping{served}"
        if stopping
        else f"run {outcome.run_id} was canceled{served}"
    )
    return JobCanceled(
        request_id=request_id,
        status="running" if stopping else "canceled",
        run_id=outcome.run_id,
        canceled_requests=outcome.requests,
        message=message,
    )
