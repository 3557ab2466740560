"""Ad hoc jobs (`embed`, `reindex`) and the status of any queued request."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, field_validator

from orca_intake.dependencies import MetricsDep, QueueDep, SettingsDep
from orca_intake.errors import ERROR_RESPONSES, ErrorBody, NotFound
from orca_resources.settings import check_collection

router = APIRouter(prefix="/v1", tags=["jobs"])

JobState = Literal["queued", "launched", "running", "succeeded", "failed", "canceled"]


class JobRequest(BaseModel):
    """An ad hoc job for one collection."""

    model_config = ConfigDict(extra="forbid")

    collection: str = Field(description="An existing collection.")
    kind: Literal["embed", "reindex"] = Field(
        description="`embed`: bring the index up to date with the inbox; `reindex`: rebuild it (with `force`, "
        "embedding every chunk again instead of reusing stored vectors)."
    )
    force: bool = Field(False, description="Forget stored vectors and embed every chunk again.")
    model: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Embedding model for this run, when it should differ from the configured one.",
    )

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        return check_collection(value)


class JobAccepted(BaseModel):
    """The job is committed to the queue; follow it with `GET /v1/jobs/{request_id}`."""

    request_id: str
    collection: str
    kind: str
    status: Literal["queued"] = "queued"


class JobStatus(BaseModel):
    """Where a queued request (documents, delete, embed or reindex) stands, and the Dagster run serving it."""

    request_id: str
    kind: str
    collection: str
    status: JobState
    run_id: str | None = Field(description="The Dagster run, once one was launched.")
    run_url: str | None = Field(description="That run's page in the Dagster webserver.")
    created_at: datetime
    launched_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, Any] | None = Field(description="What the run did (documents, chunks, embedded ...).")
    error: str | None


@router.post(
    "/jobs",
    status_code=202,
    summary="Queue an embed or reindex job",
    responses={**ERROR_RESPONSES, 404: {"model": ErrorBody}},
)
def post_job(job: JobRequest, settings: SettingsDep, queue: QueueDep, metrics: MetricsDep) -> JobAccepted:
    """Queue a job for an existing collection; a sensor turns it into a Dagster run within seconds."""
    if not settings.inbox_dir(job.collection).is_dir():
        raise NotFound(f"collection '{job.collection}' does not exist", code="collection_not_found")
    queued = queue.enqueue(job.kind, job.collection, {"force": job.force, "model": job.model})
    metrics.jobs_queued.labels(job.kind).inc()
    return JobAccepted(request_id=queued.request_id, collection=job.collection, kind=job.kind)


@router.get("/jobs/{request_id}", summary="Status of a request", responses={404: {"model": ErrorBody}})
def get_job(
    request_id: Annotated[str, Path(max_length=64, description="The `request_id` of a 202 answer.")],
    settings: SettingsDep,
    queue: QueueDep,
) -> JobStatus:
    """The request's status, its Dagster run and that run's counts or error."""
    found = queue.get(request_id)
    if found is None:
        raise NotFound(f"no request {request_id!r}", code="job_not_found")
    return JobStatus(
        request_id=found.request_id,
        kind=found.kind,
        collection=found.collection,
        status=found.status,
        run_id=found.run_id,
        run_url=settings.run_url(found.run_id),
        created_at=found.created_at,
        launched_at=found.launched_at,
        finished_at=found.finished_at,
        counts=found.counts,
        error=found.error,
    )
