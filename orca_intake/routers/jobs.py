"""Ad hoc jobs (`embed`, `reindex`, and the op jobs `prepare_model` and `purge`) and any request's status."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orca_core import catalog
from orca_core.layout import check_collection
from orca_core.settings import OrcaSettings
from orca_intake.dependencies import MetricsDep, QueueDep, SettingsDep
from orca_intake.errors import ERROR_RESPONSES, JSON_BODY_ERROR_RESPONSES, ErrorBody, NotFound
from orca_intake.json_body import BoundedJSONRoute
from orca_intake.run_metrics import shared_instance
from orca_resources.intake_queue import IntakeRequest

router = APIRouter(prefix="/v1", tags=["jobs"], route_class=BoundedJSONRoute)
log = logging.getLogger("orca_intake")

JobState = Literal["queued", "launched", "running", "succeeded", "failed", "canceled"]


# Which optional fields each kind accepts; another one set is refused rather than silently ignored.
KIND_FIELDS = {
    "embed": {"force", "model"},
    "reindex": {"force", "model"},
    "purge": {"delete_inbox"},
    "prepare_model": {"force_pull"},
}


class JobRequest(BaseModel):
    """An ad hoc job: for one collection, or (`prepare_model`) for the embedding model itself."""

    model_config = ConfigDict(extra="forbid")

    collection: str | None = Field(None, description="An existing collection (not for `prepare_model`).")
    kind: Literal["embed", "reindex", "purge", "prepare_model"] = Field(
        description="`embed`: bring the index up to date with the inbox; `reindex`: rebuild it (with `force`, "
        "embedding every chunk again instead of reusing stored vectors); `purge`: remove the collection's "
        "index, data and partition (its documents too with `delete_inbox`); `prepare_model`: check the Ollama "
        "hosts, pull the configured model where it is missing (all of it again with `force_pull`), confirm "
        "its shape and load it."
    )
    force: bool = Field(False, description="Forget stored vectors and embed every chunk again.")
    model: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Embedding model for this run, when it should differ from the configured one.",
    )
    delete_inbox: bool = Field(False, description="`purge` only: delete the collection's documents as well.")
    force_pull: bool = Field(False, description="`prepare_model` only: pull even where the model is present.")

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str | None) -> str | None:
        return None if value is None else check_collection(value)

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> "JobRequest":
        if (self.collection is None) != (self.kind == "prepare_model"):
            raise ValueError(
                "`prepare_model` takes no collection" if self.collection else f"`{self.kind}` needs a collection"
            )
        defaults = {name: field.default for name, field in type(self).model_fields.items()}
        stray = sorted(
            name for name in self.model_fields_set - {"collection", "kind"}
            if name not in KIND_FIELDS[self.kind] and getattr(self, name) != defaults[name]
        )
        if stray:
            raise ValueError(f"not an option of kind `{self.kind}`: {', '.join(stray)}")
        return self

    def payload(self) -> dict[str, Any]:
        """What the queue row keeps for the sensor that launches the run."""
        if self.kind == "purge":
            return {"delete_inbox": self.delete_inbox}
        if self.kind == "prepare_model":
            return {"force_pull": self.force_pull}
        return {"force": self.force, "model": self.model}


class JobAccepted(BaseModel):
    """The job is committed to the queue; follow it with `GET /v1/jobs/{request_id}`."""

    request_id: str
    collection: str | None
    kind: str
    status: Literal["queued"] = "queued"


class JobStatus(BaseModel):
    """Where a queued request (documents, delete, embed or reindex) stands, and the Dagster run serving it."""

    request_id: str
    kind: str
    collection: str | None = Field(description="The collection; null for `prepare_model`.")
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
    summary="Queue an embed, reindex, purge or prepare_model job",
    responses={**JSON_BODY_ERROR_RESPONSES, 404: {"model": ErrorBody}},
)
def post_job(job: JobRequest, settings: SettingsDep, queue: QueueDep, metrics: MetricsDep) -> JobAccepted:
    """Queue a job (for an existing collection); a sensor turns it into a Dagster run within seconds."""
    if job.collection is not None:
        # A collection whose inbox is gone may still hold an index worth purging.
        layout, storage = settings.layout, settings.storage
        exists = catalog.has_collection(layout, job.collection, storage, inbox_only=True) or (
            job.kind == "purge" and catalog.has_collection(layout, job.collection, storage)
        )
        if not exists:
            raise NotFound(f"collection '{job.collection}' does not exist", code="collection_not_found")
    # The queue's collection column is required; a prepare_model request belongs to no collection.
    queued = queue.enqueue(job.kind, job.collection or "", job.payload())
    metrics.jobs_queued.labels(job.kind).inc()
    return JobAccepted(request_id=queued.request_id, collection=job.collection, kind=job.kind)


@router.get(
    "/jobs/{request_id}",
    summary="Status of a request",
    responses={401: ERROR_RESPONSES[401], 404: {"model": ErrorBody}},
)
def get_job(
    request_id: Annotated[str, Path(max_length=64, description="The `request_id` of a 202 answer.")],
    settings: SettingsDep,
    queue: QueueDep,
    request: Request,
) -> JobStatus:
    """The request's status, its Dagster run and that run's counts or error."""
    found = queue.get(request_id)
    if found is None:
        raise NotFound(f"no request {request_id!r}", code="job_not_found")
    if found.status in ("launched", "running") and (instance := shared_instance(request.app.state, settings.dagster_home)):
        # Read from the run itself: a caller learns the end as soon as the run ends, not at the status sensor's
        # next tick (which records the same, through the same rule).
        from orca_resources.intake_run_outcome import refresh_request  # imports Dagster: only when needed

        try:
            found = refresh_request(queue, instance, found)
        except Exception as error:  # noqa: BLE001 - the stored status is still a true answer, only older
            log.warning(f"could not read the run of request {request_id} ({error}); answering the stored status")
    return job_status(found, settings)


def job_status(found: IntakeRequest, settings: OrcaSettings) -> JobStatus:
    """The answer for one queue row, as stored."""
    return JobStatus(
        request_id=found.request_id,
        kind=found.kind,
        collection=found.collection or None,
        status=found.status,
        run_id=found.run_id,
        run_url=settings.run_url(found.run_id),
        created_at=found.created_at,
        launched_at=found.launched_at,
        finished_at=found.finished_at,
        counts=found.counts,
        error=found.error,
    )
